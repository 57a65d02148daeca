"""Builds dist/package/ (the deployable tree) and dist/kps-failed-task-cleaner.zip from that same tree, for the
runtime template.yml declares, reproducibly.

The folder is what template.yml's ``codeUri`` names: Serverless Devs' fgs component zips the folder itself
(``startZip`` in its ``src/utils/util.ts`` lists ``codeUri`` with ``fs.readdirSync``), so a path to a zip fails.
The zip, made from the same files, is for the console, OBS and Terraform. Wheels for that Python version on Linux
x86_64 (binary only, requirements.txt's pins with their hashes, no dependency resolution) go beside handler.py and
function/: only the distributions requirements.in names, what the function imports. requirements.txt locks the
whole closure so that a plain ``pip install -r requirements.txt`` works; huaweicloudsdkcore's other declared
dependencies (pymongo, simplejson, PyYAML, ...) are never imported by its signer, and leaving them out keeps
the package small and its cold start short (the zip-only test runs the function without them). Everything is
compiled to bytecode by that Python version, hash-checked-free (FunctionGraph's code directory is read-only:
without shipped .pyc files every cold start compiles every module from source). Zip entries are sorted, dated
1980-01-01 and given fixed permissions, so the same sources give the same bytes.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
DIST = ROOT / "dist"
ZIP_NAME = "kps-failed-task-cleaner.zip"
FOLDER_NAME = "package"
RUNTIMES = {"Python3.9": "3.9", "Python3.10": "3.10", "Python3.12": "3.12"}
PLATFORM = "manylinux2014_x86_64"
EPOCH = (1980, 1, 1, 0, 0, 0)
KEPT_METADATA = ("METADATA", "LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")


def template_runtime() -> str:
    """The one runtime every function in template.yml declares."""
    import yaml

    services = yaml.safe_load(TEMPLATE.read_text())["services"]
    runtimes = {service["props"]["function"]["runtime"] for service in services.values()}
    if len(runtimes) != 1 or not runtimes <= set(RUNTIMES):
        raise SystemExit(f"template.yml must declare one runtime of {sorted(RUNTIMES)}, found {sorted(runtimes)}")
    return runtimes.pop()


def runtime_python(version: str) -> str | None:
    """An interpreter of the runtime's version: this one, pythonX.Y on PATH, or a pyenv build."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(f"python{version}"), *sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python"))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def _compile(staging: Path, python: str) -> None:
    """unchecked-hash .pyc: valid whatever the files' dates, identical for identical sources."""
    subprocess.run(
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "1",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(staging),
            "-p",
            "",
            str(staging),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def pip_install_for(python_version: str, target: Path, *requirements: str) -> None:
    """Installs binary wheels for another Python version on Linux x86_64 into a folder."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--platform",
            PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            "--target",
            str(target),
            *requirements,
        ],
        check=True,
    )


def packaged_names() -> set[str]:
    """The distributions requirements.in names (normalized): what the function imports at run time."""
    names = set()
    for line in (ROOT / "requirements.in").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            names.add(_normalized(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]))
    return names


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def packaged_requirements() -> str:
    """requirements.txt's pins (each with its markers and hashes) of the packaged distributions only."""
    wanted, kept, keep = packaged_names(), [], False
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            keep = _normalized(line.split("==", 1)[0]) in wanted
        if keep and not line.lstrip().startswith("#"):
            kept.append(line)
    return "\n".join(kept) + "\n"


def _install(staging: Path, python_version: str) -> None:
    """requirements.txt's pins of the packaged distributions: no resolution and no extras; every file must
    match a hash. The markers are read for the runtime's Python version (pip's --python-version)."""
    with tempfile.TemporaryDirectory(prefix="kps-requirements-") as folder:
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text(packaged_requirements())
        pip_install_for(
            python_version, staging, "--no-deps", "--no-compile", "--require-hashes", "-r", str(requirements)
        )


def _wanted(relative: Path, cache_tag: str) -> bool:
    """Bytecode of the runtime only; no scripts or installer records; from *.dist-info only the
    metadata and licences."""
    parts = relative.parts
    if relative.suffix == ".pyc":
        return parts[-2] == "__pycache__" and relative.name.endswith(f".{cache_tag}.pyc")
    if "__pycache__" in parts or parts[0] == "bin":
        return False
    info = next((p for p in parts if p.endswith(".dist-info")), None)
    return info is None or relative.name.upper().startswith(KEPT_METADATA) or "licenses" in parts


def _add_sources(staging: Path) -> None:
    shutil.copy2(ROOT / "handler.py", staging / "handler.py")
    for source in (ROOT / "function").glob("*.py"):
        (staging / "function").mkdir(exist_ok=True)
        shutil.copy2(source, staging / "function" / source.name)


def _files(staging: Path, cache_tag: str) -> dict[str, Path]:
    return {
        str(p.relative_to(staging)): p
        for p in staging.rglob("*")
        if p.is_file() and _wanted(p.relative_to(staging), cache_tag)
    }


def _write_folder(files: dict[str, Path], folder: Path) -> None:
    """The deployable tree, replaced whole: nothing from an earlier build stays behind."""
    if folder.exists():
        shutil.rmtree(folder)
    for name, source in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / name)
        (folder / name).chmod(0o644)


def tree_files(folder: Path) -> list[str]:
    """The folder's files as zip entry names, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _write_zip(folder: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for name in tree_files(folder):
            entry = zipfile.ZipInfo(name, date_time=EPOCH)
            entry.external_attr = 0o100644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, (folder / name).read_bytes(), compresslevel=9)


class Package(NamedTuple):
    folder: Path  # what template.yml's codeUri names
    zip: Path  # the same files, for the console or OBS


def build(dist: Path = DIST) -> Package:
    """``dist/package/`` and ``dist/kps-failed-task-cleaner.zip``, the zip written from the folder."""
    package = Package(dist / FOLDER_NAME, dist / ZIP_NAME)
    python_version = RUNTIMES[template_runtime()]
    python = runtime_python(python_version)
    if python is None:
        print(
            f"warning: no Python {python_version} here: the package ships without bytecode (slower cold starts)",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="kps-package-") as staging:
        _install(Path(staging), python_version)
        _add_sources(Path(staging))
        if python is not None:
            _compile(Path(staging), python)
        _write_folder(_files(Path(staging), "cpython-" + python_version.replace(".", "")), package.folder)
    _write_zip(package.folder, package.zip)
    return package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=DIST, help="where package/ and the zip go (default dist/)")
    package = build(parser.parse_args().dist)
    digest = hashlib.sha256(package.zip.read_bytes()).hexdigest()
    size = sum((package.folder / name).stat().st_size for name in tree_files(package.folder))
    print(
        f"{_shown(package.folder)}/: {len(tree_files(package.folder))} files, {size:,} bytes unpacked "
        f"(template.yml codeUri)\n{_shown(package.zip)}: {package.zip.stat().st_size:,} bytes, same files, "
        f"Python {RUNTIMES[template_runtime()]} linux x86_64, sha256 {digest}"
    )
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
