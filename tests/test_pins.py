"""The pins: every runtime and development requirement locked with hashes, none with a known vulnerability."""

from __future__ import annotations

import re
import sys
from importlib.metadata import distribution

import pytest
from conftest import ROOT
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
RUNTIMES = ("3.9", "3.10", "3.12")
# Fixed-in versions of the advisories named in the README (Runtime dependencies).
FLOORS = {"urllib3": "2.6.3", "pyasn1": "0.6.4"}


def locked(name: str) -> list[tuple[str, str, str | None, int]]:
    """(package, version, marker, hash count) for each pin of a lock file."""
    lines = (ROOT / name).read_text().splitlines()
    pins = []
    for index, line in enumerate(lines):
        match = PIN.match(line)
        if match:
            hashes = 0
            for follow in lines[index + 1 :]:
                if not follow.startswith("    --hash=sha256:"):
                    break
                hashes += 1
            pins.append((match.group(1).lower(), match.group(2), match.group(3), hashes))
    return pins


def for_python(pins: list, version: str) -> dict[str, str]:
    environment = {"python_version": version, "python_full_version": f"{version}.0", "sys_platform": "linux"}
    chosen: dict[str, str] = {}
    for name, pinned, marker, _ in pins:
        if marker is None or Marker(marker).evaluate(environment):
            assert name not in chosen, f"{name} pinned twice for Python {version}"
            chosen[name] = pinned
    return chosen


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_every_line_is_an_exact_pin_with_hashes(name):
    text = (ROOT / name).read_text()
    pins = locked(name)
    assert pins and all(hashes >= 1 for *_, hashes in pins)
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(requirement_lines) == len(pins), "every requirement is name==version"


@pytest.mark.parametrize("python", RUNTIMES)
def test_no_runtime_pin_below_a_security_fix(python):
    chosen = for_python(locked("requirements.txt"), python)
    assert set(chosen) >= {"huaweicloudsdkcore", "pyasn1", "requests", "urllib3", "structlog", "certifi", "idna"}
    for name, floor in FLOORS.items():
        assert Version(chosen[name]) >= Version(floor), (python, name, chosen[name])
    if python != "3.9":  # the current lines, which need 3.10
        assert Version(chosen["urllib3"]) >= Version("2.7.0")
        assert Version(chosen["requests"]) >= Version("2.33")
        assert Version(chosen["structlog"]) >= Version("26")


@pytest.mark.parametrize("python", RUNTIMES)
def test_the_dev_lock_holds_the_runtime_pins_unchanged(python):
    runtime = for_python(locked("requirements.txt"), python)
    development = for_python(locked("requirements-dev.txt"), python)
    assert {name: development.get(name) for name in runtime} == runtime
    assert "huaweicloudsdkfunctiongraph" in development, "make expose's client: development only"
    assert "huaweicloudsdkfunctiongraph" not in runtime


def test_requirements_txt_is_a_closure_plain_pip_installs():
    """Every dependency a runtime pin declares (read from the installed metadata, for this Python) is pinned too, at
    a version the declaration accepts: `pip install -r requirements.txt` needs nothing else and meets no conflict
    (a lock compiled --no-deps, or one that overrides a declared bound, fails here)."""
    pins = for_python(locked("requirements.txt"), f"{sys.version_info.major}.{sys.version_info.minor}")
    environment = {**default_environment(), "extra": ""}
    problems = []
    for name, pinned in pins.items():
        installed = distribution(name)
        assert installed.version == pinned, (name, installed.version, pinned)
        for declared in map(Requirement, installed.requires or []):
            if declared.marker is not None and not declared.marker.evaluate(environment):
                continue
            needed = canonicalize_name(declared.name)
            if needed not in pins or not declared.specifier.contains(pins[needed], prereleases=True):
                problems.append(f"{name} {pinned} needs {declared}, locked {pins.get(needed)}")
    assert problems == []
