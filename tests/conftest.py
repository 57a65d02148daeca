"""Shared fixtures: a real KPS emulator on loopback, FunctionGraph-like contexts, log capture."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.context import FakeContext  # noqa: E402
from devtools.kps_emulator import KpsEmulator, LoggedRequest  # noqa: E402
from devtools.serve import Gateway, LocalServer  # noqa: E402
from handler import handler  # noqa: E402

PROJECT = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09"
OTHER_PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
RUNTIME_PROJECT = "ffeeddccbbaa99887766554433221100"
REGION = "cn-north-4"
AK, SK = "TESTACCESSKEY0000001", "test-secret-key-0123456789abcdef"
AGENCY_AK, AGENCY_SK = "AGENCYTEMPKEY0000001", "agency-temp-secret-0123456789"
SECURITY_TOKEN = "agency-security-token-" + "x" * 40
TOKEN = "MIIT-settings-token-0123456789abcdef"
AGENCY_TOKEN = "MIIT-agency-token-fedcba9876543210"
EVENTS = ROOT / "events"
PAYLOAD_SCHEMA = json.loads((ROOT / "api" / "payload.schema.json").read_text())
PAYLOAD_VALIDATOR = Draft202012Validator(PAYLOAD_SCHEMA)


def assert_valid_payload(payload: Any) -> None:
    """Every payload the suite sees goes through here: the schema and the code cannot drift apart."""
    errors = sorted(PAYLOAD_VALIDATOR.iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, "payload breaks api/payload.schema.json:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}" for e in errors[:10]
    )


def payload_of_result(result: Any) -> dict[str, Any]:
    """The payload a handler answered (the body of an API Gateway response), checked against the schema."""
    if isinstance(result, dict) and "statusCode" in result:
        assert set(result) == {"statusCode", "headers", "body", "isBase64Encoded"}, "API Gateway's response shape"
        assert result["headers"].get("Content-Type") == "application/json"
        result = json.loads(result["body"])
    assert_valid_payload(result)
    return result


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the settings they set: no stray KPS_*, SDK keys or proxies from the machine."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(("KPS_", "HUAWEICLOUD_", "RUNTIME_", "LOG_")) or upper.endswith("_PROXY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def kps() -> Any:
    with KpsEmulator() as emulator:
        emulator.add_key(AK, SK)
        emulator.add_key(AGENCY_AK, AGENCY_SK, SECURITY_TOKEN)
        emulator.add_token(TOKEN)
        emulator.add_token(AGENCY_TOKEN)
        emulator.seed(PROJECT, 3)
        yield emulator


@dataclass
class Invocation:
    result: Any
    out: str
    logs: list[dict[str, Any]] = field(default_factory=list)
    err: str = ""

    @property
    def payload(self) -> dict[str, Any]:
        return payload_of_result(self.result)

    def lines(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if line.get("message") == message]


@pytest.fixture
def settings(kps: KpsEmulator) -> dict[str, str]:
    """The function's environment variables, as FunctionGraph hands them to getUserData."""
    return {"KPS_ENDPOINT": kps.url, "KPS_REGION": REGION, "KPS_AUTH_TOKEN": TOKEN, "KPS_BACKOFF_BASE_SECONDS": "0.01"}


@pytest.fixture
def delete_only(settings: dict[str, str]) -> None:
    """For tests about the DELETE call itself: no ListFailedTask call before it."""
    settings["KPS_COUNT_BEFORE_DELETE"] = "false"


@pytest.fixture
def invoke(capsys: pytest.CaptureFixture[str], settings: dict[str, str]) -> Any:
    """Calls the real handler; returns the result with the JSON log lines it printed."""

    def call(event: Any = None, context: FakeContext | None = None, **context_args: Any) -> Invocation:
        if context is None:
            context = FakeContext(user_data=context_args.pop("user_data", settings), **context_args)
        capsys.readouterr()
        result = handler(event, context)
        captured = capsys.readouterr()
        logs = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
        assert not [line for line in logs if "dropped_keys" in line], "a line logged a key not in logs.FIELDS"
        json.dumps(result)  # every result is JSON-serialisable
        invocation = Invocation(result, captured.out, logs, captured.err)
        invocation.payload  # noqa: B018 - validated against the schema even when the test never reads it
        return invocation

    return call


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def apig_event(
    body: Any = None, *, encoded: bool = True, query: dict | None = None, path: dict | None = None, method: str = "POST"
) -> dict[str, Any]:
    text = "" if body is None else (body if isinstance(body, str) else json.dumps(body))
    event = load_event("apig.json")
    event.update(
        body=base64.b64encode(text.encode()).decode() if encoded else text,
        isBase64Encoded=encoded,
        queryStringParameters=query or {},
        pathParameters=path or {},
        httpMethod=method,
    )
    return event


def deletes(kps: KpsEmulator) -> list[str]:
    return [r.path for r in kps.requests if r.method == "DELETE"]


def settled(kps: KpsEmulator, method: str | None = None, at_least: int = 0) -> list[LoggedRequest]:
    """The emulator's log once it has caught up with the client: at least ``at_least`` requests (of ``method``)
    received and every request it received done (answered, dropped, or its late answer routed). A client that
    gave up returns before the emulator has read or finished its request; on a loaded machine, much before.
    Waited for (30 s at most), never timed."""
    give_up = time.monotonic() + 30
    while True:
        logged = kps.requests
        received = len([r for r in logged if method in (None, r.method)])
        if received >= at_least and all(r.ended is not None for r in logged):
            return logged
        assert time.monotonic() < give_up, f"the emulator never caught up: {logged}"
        time.sleep(0.01)


def http(url: str, method: str = "POST", body: Any = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, method=method, headers={"X-Auth-Token": "x"} if headers is None else headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def served(settings: dict[str, str]) -> Any:
    """make serve's gateway in this process, recording the events it hands the handler; its log goes to ``out``."""
    events: list[dict] = []

    def recording_handler(event: Any, context: Any) -> Any:
        events.append(event)
        return handler(event, context)

    out = io.StringIO()
    gateway = Gateway(recording_handler, lambda: FakeContext(user_data={**settings, "LOG_EVENT": "true"}))
    with LocalServer(gateway, port=0, out=out) as server:
        yield server.url, events, out
