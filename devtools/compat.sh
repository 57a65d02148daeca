#!/usr/bin/env bash
# Runs the test suite on this machine's Python (.venv, made by `make venv`) and on every FunctionGraph
# Python runtime this machine has (3.9, 3.10, 3.12), each in its own virtual environment under
# .venv-compat/. A missing interpreter is reported, not fatal. The runtimes run in two lanes at once:
# the machine has two cores and most tests wait on sockets, so this halves the wall time.
# Arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=$(cksum < requirements-dev.txt | cut -d' ' -f1)
logs=.test-logs
rm -rf "$logs" && mkdir -p "$logs"

find_python() {
  local candidate
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$1".*/bin/python 2>/dev/null | sort -V | tail -n 1) \
                   "$(command -v "python$1" 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && "$candidate" -c 'import venv' >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
}

make_venv() {  # $1 the interpreter, $2 the venv: made anew unless it holds this lock already
  if [ ! -f "$2/.installed-$stamp" ]; then
    rm -rf "$2"
    "$1" -m venv "$2"
    # The same lock as .venv: its markers give each Python version the newest releases that install there.
    "$2/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-dev.txt
    touch "$2/.installed-$stamp"
  fi
}

venvs=(.venv) installs=()
for version in 3.9 3.10 3.12; do
  python=$(find_python "$version")
  if [ -z "$python" ]; then
    echo "compat: no Python $version on this machine, skipped"
    continue
  fi
  venvs+=(".venv-compat/$version")
  make_venv "$python" ".venv-compat/$version" & installs+=($!)  # at once: mostly waiting on downloads
done
for pid in "${installs[@]}"; do wait "$pid"; done

run_lane() {  # runs each venv given, one after the other; its log is $logs/<n>.log
  local venv status=0
  for venv in "$@"; do
    local log="$logs/$(basename "$venv").log"
    echo "== Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')" > "$log"
    "$venv/bin/python" -m pytest -q -W error::DeprecationWarning "${PYTEST_ARGS[@]}" >> "$log" 2>&1 \
      || { echo "FAILED (exit $?)" >> "$log"; status=1; }
  done
  return $status
}

PYTEST_ARGS=("$@")
lane_a=() lane_b=()
for i in "${!venvs[@]}"; do
  if (( i % 2 == 0 )); then lane_a+=("${venvs[$i]}"); else lane_b+=("${venvs[$i]}"); fi
done
status=0
run_lane "${lane_a[@]}" & a=$!
if (( ${#lane_b[@]} )); then run_lane "${lane_b[@]}" & b=$!; fi
wait "$a" || status=1
if [ -n "${b:-}" ]; then wait "$b" || status=1; fi

count() {  # the number before "$1" on pytest's closing line in log $2 (0 when absent)
  grep -E ' in [0-9.]+s' "$2" | tail -n 1 | grep -Eo "[0-9]+ $1" | awk '{n += $1} END {print n + 0}' || true
}
passed=0 failed=0
for venv in "${venvs[@]}"; do
  log="$logs/$(basename "$venv").log"
  cat "$log"
  passed=$((passed + $(count passed "$log")))
  failed=$((failed + $(count failed "$log") + $(count error "$log")))
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "compat: ${#venvs[@]} runtimes, one line above each"
echo "total: $passed passed, $failed failed"
exit "$status"
