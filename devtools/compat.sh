#!/usr/bin/env bash
# Runs the test suite on every FunctionGraph Python runtime this machine has (3.9, 3.10, 3.12),
# each in its own virtual environment under .venv-compat/. A missing interpreter is reported, not fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=$(cksum < requirements-dev.txt | cut -d' ' -f1)
for version in 3.9 3.10 3.12; do
  python=""
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python 2>/dev/null | sort -V | tail -n 1) \
                   "$(command -v "python$version" 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && "$candidate" -c 'import venv' >/dev/null 2>&1; then python=$candidate; break; fi
  done
  if [ -z "$python" ]; then
    echo "compat: no Python $version on this machine, skipped"
    continue
  fi
  venv=".venv-compat/$version"
  if [ ! -f "$venv/.installed-$stamp" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # The same lock as .venv: its markers give each Python version the newest releases that install there.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-dev.txt
    touch "$venv/.installed-$stamp"
  fi
  echo "compat: Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
  "$venv/bin/python" -m pytest -q -W error::DeprecationWarning "$@"
done
