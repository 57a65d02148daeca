"""api/payload.schema.json is exact: it rejects what the code must never answer, and names the code's own codes."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import PAYLOAD_SCHEMA, PAYLOAD_VALIDATOR, PROJECT, ROOT

from function.errors import FAILURE_STATUS, REJECTION_STATUS

RESULT = {
    "project_id": PROJECT,
    "region": "cn-north-4",
    "ok": True,
    "outcome": "deleted",
    "http_status": 200,
    "kps_request_id": "0f1e2d3c",
    "failed_task_count": 3,
    "attempts": 2,
    "error": None,
    "duration_ms": 12.5,
    "warning": None,
}
REJECTED = {"ok": False, "status": "rejected", "results": []}
PAYLOAD = {
    "ok": True,
    "status": "succeeded",
    "dry_run": False,
    "trigger": "timer",
    "request_id": "r-1",
    "results": [RESULT],
    "error": None,
    "duration_ms": 13.0,
}
DENIED = {"code": "KPS.9003", "message": "no permission", "retryable": False}
FAILED = {**RESULT, "ok": False, "outcome": "failed", "error": DENIED}
TASK = dict.fromkeys(
    ("task_id", "operate_type", "server_id", "server_name", "keypair_name", "task_error_code", "task_time"), "x"
)


def valid(payload: dict) -> bool:
    return PAYLOAD_VALIDATOR.is_valid(payload)


def changed(path: str, value: object) -> dict:
    """PAYLOAD with one key set (``results.0.error``) or deleted (value ``...``)."""
    payload = copy.deepcopy(PAYLOAD)
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return payload


def test_the_examples_are_valid():
    assert valid(PAYLOAD)
    assert valid({**PAYLOAD, "ok": False, "status": "partial", "results": [RESULT, FAILED]})
    assert valid({**PAYLOAD, "dry_run": True, "results": [{**RESULT, "outcome": "would_delete", "sample": [TASK]}]})
    assert valid({**PAYLOAD, **REJECTED, "error": {"code": "InvalidEvent", "message": "m"}})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("status", "done"),
        ("status", "SUCCEEDED"),
        ("results", ...),
        ("error", ...),
        ("extra", 1),
        ("ok", False),  # ok must say the same as status
        ("error", {"code": "InvalidEvent", "message": "m"}),  # succeeded with a request error
        ("duration_ms", -1),
        ("trigger", ""),
        ("results.0.project_id", PROJECT.upper()),
        ("results.0.project_id", PROJECT[:31]),
        ("results.0.outcome", "skipped"),
        ("results.0.outcome", "would_delete"),  # a real run never says would_delete
        ("results.0.attempts", -1),
        ("results.0.failed_task_count", "3"),
        ("results.0.http_status", 42),
        ("results.0.extra", None),
        ("results.0.error", {"code": "KPS.9003", "message": "m", "retryable": False}),  # ok but an error
        ("results.0.duration_ms", ...),
        ("results.0.sample", [TASK] * 51),
        ("results.0.sample", [{**TASK, "task_error_msg": "may hold anything"}]),
        ("results.0.sample", [{**TASK, "task_time": 1764356400000}]),
    ],
)
def test_the_schema_rejects(path, value):
    assert not valid(changed(path, value))


@pytest.mark.parametrize(
    "payload",
    [
        {**PAYLOAD, "ok": False, "status": "partial", "results": [FAILED]},  # partial needs one success
        {**PAYLOAD, "ok": False, "status": "rejected", "error": {"code": "InvalidEvent", "message": "m"}},  # results
        {**PAYLOAD, **REJECTED, "error": {"code": "Nope", "message": "m"}},
        {**PAYLOAD, **REJECTED, "error": {"code": "InternalError", "message": "m"}},  # a failure, not a refusal
        {**PAYLOAD, "dry_run": True},  # a dry run never says deleted
        {**PAYLOAD, "ok": False, "status": "failed", "results": [{**FAILED, "error": None}]},
    ],
)
def test_the_schema_rejects_inconsistent_payloads(payload):
    assert not valid(payload)


def test_request_error_codes_are_exactly_the_codes_the_code_uses():
    defs = PAYLOAD_SCHEMA["$defs"]
    assert set(defs["rejectionCode"]["enum"]) == set(REJECTION_STATUS)
    assert set(defs["failureCode"]["enum"]) == set(FAILURE_STATUS)


def test_openapi_answers_with_this_schema_for_every_status_but_the_gateways_own():
    import yaml

    spec = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text())
    assert spec["components"]["schemas"]["Payload"] == {"$ref": "payload.schema.json"}
    operations = spec["paths"]["/kps-failed-task-cleaner"]
    assert set(operations) == {"get", "post", "delete"}
    for method, operation in operations.items():
        statuses = set(operation["responses"])
        assert statuses == {"200", "400", "401", "403", "405", "413", "500", "502", "504"}, method
        for status, response in operation["responses"].items():
            resolved = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            schema = json.dumps(resolved["content"]["application/json"]["schema"])
            expected = {"401": ["GatewayError"], "413": ["GatewayError"], "400": ["GatewayError", "/Payload"]}
            for name in expected.get(status, ["#/components/schemas/Payload"]):
                assert name in schema, (method, status)
            if status in ("401", "413"):
                assert "/Payload" not in schema, (method, status)
        backend = operation["x-apigateway-backend"]
        assert backend["type"] == "FUNCTION" and backend["functionEndpoints"]["invocation-type"] == "sync"
        assert backend["functionEndpoints"]["timeout"] <= 60000
    assert operations["get"]["parameters"] and "requestBody" not in operations["get"]
    assert {s["x-apigateway-auth-type"] for s in spec["components"]["securitySchemes"].values()} == {"IAM"}
    assert "APIGW.0101" in spec["components"]["responses"]["NotFound"]["description"]
