"""Property: whatever JSON arrives, through whatever trigger shape, the handler returns the documented
payload, never raises, and nothing ever leaves for a path other than /v3/<32 hex>/failed-tasks."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from conftest import PROJECT
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

SAFE_PATH = re.compile(r"/v3/[0-9a-f]{32}/failed-tasks")
PAYLOAD_KEYS = {"ok", "status", "dry_run", "trigger", "request_id", "results", "error", "duration_ms"}
RESULT_KEYS = {
    "project_id",
    "region",
    "ok",
    "outcome",
    "http_status",
    "kps_request_id",
    "failed_task_count",
    "attempts",
    "error",
    "duration_ms",
    "warning",
}
EXAMPLES = 2000

TRICKS = [
    "../" + PROJECT[3:],
    "..%2f" + PROJECT[5:],
    "%2e%2e" + PROJECT[6:],
    PROJECT.upper(),
    PROJECT + "\n",
    " " + PROJECT,
    PROJECT + "?x=1",
    PROJECT[:16] + "/" + PROJECT[17:],
    PROJECT + "#",
    PROJECT[:31] + "g",
    "",
    ".",
    "..",
    "/",
    "\x00" * 32,
    "\uff10" * 32,  # full-width zeros
    PROJECT + "/../" + PROJECT,
    "http://evil.example/",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
project_ids = st.one_of(
    st.text("0123456789abcdef", min_size=32, max_size=32), st.sampled_from(TRICKS), st.text(max_size=40), json_values
)
regions = st.one_of(
    st.sampled_from(["cn-north-4", "ap-southeast-1", "kms.evil.example", "cn-north-4/..", ""]),
    st.text(max_size=30),
    json_values,
)
dry_runs = st.one_of(st.booleans(), st.sampled_from(["true", "false", "yes", "maybe", ""]), json_values)
field_sets = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "project_id": project_ids,
            "region": regions,
            "dry_run": dry_runs,
            "endpoint": st.just("https://evil.example"),
            "KPS_ENDPOINT": st.just("http://127.0.0.2:9"),
        },
    ),
    json_values,
)

fuzzing = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def as_text(draw: st.DrawFn, value: Any) -> Any:
    """The same fields as JSON text, as broken JSON, as arbitrary text, or as the raw value."""
    return draw(st.sampled_from([json.dumps(value), json.dumps(value)[:-1], value]) | st.text(max_size=30))


@st.composite
def events(draw: st.DrawFn) -> Any:  # noqa: PLR0911 - one return per trigger shape
    fields = draw(field_sets)
    text = draw(as_text(fields))
    shape = draw(
        st.sampled_from(["timer", "apig", "eventgrid", "smn", "kafka", "kafka-old", "direct", "raw", "string"])
    )
    if shape == "timer":
        return {"version": "v1.0", "trigger_type": "TIMER", "trigger_name": "t", "user_event": text}
    if shape == "apig":
        encoded = draw(st.sampled_from([True, False, None, "yes"]))
        body = text if isinstance(text, str) else json.dumps(text)
        if encoded is not False and draw(st.booleans()):
            body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode()
        event = {
            "body": draw(st.sampled_from([body, body[:-1], None, 7])),
            "httpMethod": "POST",
            "path": "/x",
            "requestContext": {"requestId": draw(st.text(max_size=10)), "apiId": "a", "stage": "RELEASE"},
            "queryStringParameters": draw(st.one_of(field_sets, st.none())),
            "pathParameters": draw(st.one_of(field_sets, st.none())),
            "headers": {},
        }
        if encoded is not None:
            event["isBase64Encoded"] = encoded
        return event
    if shape == "eventgrid":
        return {"specversion": "1.0", "id": draw(st.text(max_size=10)), "source": "s", "type": "t", "data": text}
    if shape == "smn":
        return {"record": [{"event_source": "smn", "smn": {"message": text, "message_id": "m"}}]}
    if shape == "kafka":
        return {"trigger_type": "KAFKA", "records": [{"messages": draw(st.lists(as_text(fields), max_size=3))}]}
    if shape == "kafka-old":
        return {"messages": draw(st.lists(as_text(fields), max_size=3)), "topic_id": "t"}
    if shape == "direct":
        return fields
    if shape == "raw":
        return draw(json_values)
    return text


def safe(request: Any) -> bool:
    """DeleteAllFailedTask, or a ListFailedTask page: nothing else may leave."""
    if not SAFE_PATH.fullmatch(request.path):
        return False
    if request.method == "DELETE":
        return not request.query
    return (
        request.method == "GET"
        and set(request.query) == {"limit", "offset"}
        and all(v.isdigit() for v in request.query.values())
    )


def check(result: Any) -> dict[str, Any]:
    if isinstance(result, dict) and "statusCode" in result:
        assert result["statusCode"] in (200, 400, 403, 500, 502, 504)
        assert result["headers"] == {"Content-Type": "application/json"}
        assert result["isBase64Encoded"] is False
        result = json.loads(result["body"])
    assert set(result) == PAYLOAD_KEYS
    assert result["status"] in ("succeeded", "failed", "partial", "rejected")
    for target in result["results"]:
        assert set(target) - {"sample"} == RESULT_KEYS
        assert re.fullmatch(r"[0-9a-f]{32}", target["project_id"])
    json.dumps(result)
    return result


def test_any_event_returns_a_payload_and_only_safe_paths_leave(kps, invoke, settings):
    settings.update(KPS_PROJECT_ID=PROJECT, KPS_MAX_ATTEMPTS="1")
    seen: list[str] = []

    @fuzzing
    @given(event=events())
    def run(event: Any) -> None:
        before = len(kps.requests)
        payload = check(invoke(event).result)
        sent = kps.requests[before:]
        assert all(safe(r) for r in sent), sent
        if payload["status"] == "rejected":
            assert sent == []
        seen.append(payload["trigger"])

    run()
    assert len(seen) >= EXAMPLES
    assert {"timer", "apig", "eventgrid", "smn", "kafka", "direct"} <= set(seen)


def test_huge_and_deeply_nested_events(kps, invoke, settings):
    settings["LOG_EVENT"] = "true"
    nested: Any = {"project_id": PROJECT}
    for _ in range(5000):
        nested = {"a": [nested]}
    cases = [
        {"project_id": "a" * 5_000_000},
        "[" * 100_000 + "]" * 100_000,
        nested,
        {"project_id": PROJECT, "padding": ["x" * 1000] * 5000},
        {"record": [{"smn": {"message": "{" * 50_000}}]},
    ]
    for event in cases:
        run = invoke(event)
        check(run.result)
        assert len(run.out) < 200_000, "a huge event is logged bounded"
    assert [(r.method, r.path) for r in kps.requests] == [
        ("GET", f"/v3/{PROJECT}/failed-tasks"),
        ("DELETE", f"/v3/{PROJECT}/failed-tasks"),
    ]
