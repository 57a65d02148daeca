"""Builds dist/kps-failed-task-cleaner.zip for the runtime template.yml declares, reproducibly.

Wheels for that Python version on Linux x86_64 (binary only, exactly requirements.txt, no
dependency resolution) go into a staging folder beside handler.py and function/. Entries are
sorted, dated 1980-01-01 and given fixed permissions, so the same sources give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yml"
ZIP_NAME = "kps-failed-task-cleaner.zip"
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


def _install(staging: Path, python_version: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-compile",
            "--only-binary=:all:",
            "--platform",
            PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            "--target",
            str(staging),
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        check=True,
    )


def _wanted(relative: Path) -> bool:
    """No caches, scripts or installer records; from *.dist-info only the metadata and licences."""
    parts = relative.parts
    if "__pycache__" in parts or relative.suffix == ".pyc" or parts[0] == "bin":
        return False
    info = next((p for p in parts if p.endswith(".dist-info")), None)
    return info is None or relative.name.upper().startswith(KEPT_METADATA) or "licenses" in parts


def _files(staging: Path) -> dict[str, Path]:
    files = {
        str(p.relative_to(staging)): p for p in staging.rglob("*") if p.is_file() and _wanted(p.relative_to(staging))
    }
    files["handler.py"] = ROOT / "handler.py"
    for source in sorted((ROOT / "function").rglob("*.py")):
        if "__pycache__" not in source.parts:
            files[str(source.relative_to(ROOT))] = source
    return files


def _write_zip(files: dict[str, Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=EPOCH)
            entry.external_attr = 0o100644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, files[name].read_bytes(), compresslevel=9)


def build(target: Path | None = None) -> Path:
    target = target or ROOT / "dist" / ZIP_NAME
    python_version = RUNTIMES[template_runtime()]
    with tempfile.TemporaryDirectory(prefix="kps-package-") as staging:
        _install(Path(staging), python_version)
        _write_zip(_files(Path(staging)), target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / ZIP_NAME)
    target = build(parser.parse_args().output)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    with zipfile.ZipFile(target) as archive:
        count = len(archive.namelist())
    print(
        f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: {target.stat().st_size:,} bytes, "
        f"{count} files, Python {RUNTIMES[template_runtime()]} linux x86_64, sha256 {digest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
