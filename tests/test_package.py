"""The deployable tree and its zip: the same files, reproducible, lean, and working on their own in the
runtime's Python."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import PROJECT, SECURITY_TOKEN, load_event, payload_of_result

from devtools.package import RUNTIMES, ZIP_NAME, Package, build, runtime_python, template_runtime, tree_files

RUNTIME_VERSION = RUNTIMES[template_runtime()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Package:
    return build(tmp_path_factory.mktemp("first") / "dist")


@pytest.fixture(scope="module")
def package(built) -> Path:
    return built.zip


def test_two_builds_give_the_same_bytes(package, tmp_path):
    again = build(tmp_path / "dist").zip
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(package.read_bytes()).hexdigest()


def test_the_folder_and_the_zip_hold_exactly_the_same_files(built):
    """The fgs component uploads the folder (codeUri), the console the zip: they must be one and the same."""
    assert built.folder.name == "package" and built.zip.name == ZIP_NAME and built.zip.parent == built.folder.parent
    with zipfile.ZipFile(built.zip) as archive:
        assert archive.namelist() == tree_files(built.folder)
        for name in archive.namelist():
            assert archive.read(name) == (built.folder / name).read_bytes(), name
    assert (built.folder / "handler.py").is_file() and (built.folder / "function" / "cleaner.py").is_file()
    assert not list(built.folder.rglob("*.zip")), "no zip inside the tree: it would be deployed inside the zip"


def test_a_rebuild_leaves_nothing_stale_in_the_folder(tmp_path):
    stale = tmp_path / "dist" / "package" / "function" / "removed_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("raise SystemExit('stale')\n")
    assert not build(tmp_path / "dist").folder.joinpath("function", "removed_module.py").exists()


def test_the_zip_holds_the_function_and_its_dependencies_only(package):
    with zipfile.ZipFile(package) as archive:
        entries = archive.infolist()
    names = [e.filename for e in entries]
    assert names == sorted(names)
    assert {"handler.py", "function/__init__.py", "function/cleaner.py"} <= set(names)
    tops = {name.split("/")[0] for name in names if "/" in name and ".dist-info" not in name}
    assert tops == {
        "function",
        "huaweicloudsdkcore",
        "pyasn1",
        "requests",
        "urllib3",
        "idna",
        "charset_normalizer",
        "certifi",
        "structlog",
        "__pycache__",
    }
    assert not [
        n
        for n in names
        if n.startswith(("tests/", "devtools/", "events/", "bin/")) or n.endswith(("/RECORD", "/WHEEL"))
    ]
    tag = "cpython-" + RUNTIME_VERSION.replace(".", "")
    compiled = [n for n in names if n.endswith(".pyc")]
    assert all(n.endswith(f".{tag}.pyc") and "__pycache__/" in n for n in compiled), "bytecode of the runtime only"
    if runtime_python(RUNTIME_VERSION) is not None:
        assert {f"function/__pycache__/cleaner.{tag}.pyc", f"requests/__pycache__/sessions.{tag}.pyc"} <= set(compiled)
    assert {e.date_time for e in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert {e.external_attr >> 16 for e in entries} == {0o100644}
    assert package.stat().st_size < 10 * 1024 * 1024


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
settings, event = json.loads(sys.argv[2]), json.loads(sys.argv[3])

class Context:  # what FunctionGraph passes: empty strings for what is absent
    def getRequestID(self): return "zip-only-request"
    def getRemainingTimeInMilliSeconds(self): return 30000
    def getUserData(self, key, default=""): return settings.get(key, default)
    def getSecurityAccessKey(self): return settings["agency_ak"]
    def getSecuritySecretKey(self): return settings["agency_sk"]
    def getSecurityToken(self): return settings["agency_token"]
    def getToken(self): return ""
    def getFunctionName(self): return "kps-failed-task-cleaner"
    def getVersion(self): return "latest"

import handler
payload = handler.handler(event, Context())
import requests, structlog, huaweicloudsdkcore.signer.signer as signer
print("PAYLOAD " + json.dumps(payload))
print("FROM " + json.dumps([requests.__file__, structlog.__file__, signer.__file__]))
"""


def test_the_handler_runs_from_the_zip_alone(package, kps, tmp_path):
    python = runtime_python(RUNTIME_VERSION)
    if python is None:
        pytest.skip(f"no Python {RUNTIME_VERSION} on this machine to run the package as FunctionGraph would")
    with zipfile.ZipFile(package) as archive:
        archive.extractall(tmp_path / "code")
    shipped = set((tmp_path / "code").rglob("*"))
    from conftest import AGENCY_AK, AGENCY_SK

    settings = {
        "KPS_ENDPOINT": kps.url,
        "KPS_REGION": "cn-north-4",
        "agency_ak": AGENCY_AK,
        "agency_sk": AGENCY_SK,
        "agency_token": SECURITY_TOKEN,
    }
    done = subprocess.run(
        [
            python,
            "-S",
            "-E",
            "-c",
            CHILD,
            str(tmp_path / "code"),
            json.dumps(settings),
            json.dumps(load_event("timer.json")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    payload = json.loads(next(line for line in lines if line.startswith("PAYLOAD "))[8:])
    assert payload_of_result(payload)["ok"] is True and payload["results"][0]["failed_task_count"] == 3
    sources = json.loads(next(line for line in lines if line.startswith("FROM "))[5:])
    assert all(path.startswith(str(tmp_path / "code")) for path in sources), sources
    assert [(r.method, r.auth, r.status) for r in kps.requests] == [("GET", "aksk", 200), ("DELETE", "aksk", 200)]
    assert set((tmp_path / "code").rglob("*")) == shipped, "the shipped bytecode was used: nothing was compiled"
    assert kps.requests[-1].path == f"/v3/{PROJECT}/failed-tasks"
