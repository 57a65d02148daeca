"""Property: whatever JSON arrives, through whatever trigger shape, the handler returns the documented
payload, never raises, and nothing ever leaves for a path other than /v3/<32 hex>/failed-tasks."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from conftest import OTHER_PROJECT, PROJECT, ROOT, apig_event, deletes
from hypothesis import HealthCheck, assume, given
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

SHAPES = ["timer", "eventgrid", "smn", "kafka", "kafka-old", "obs", "lts", "cts", "direct"]
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


KAFKA_METADATA = {"event_version": "v1.0", "event_time": 1, "trigger_type": "KAFKA", "region": "r", "instance_id": "i"}
SMN_ENVELOPE = {"functionname": "f", "requestId": "r", "timestamp": "t"}


def shaped(shape: str, message: Any, event_id: str = "e") -> dict[str, Any]:
    """An event of ``shape`` as the platform sends it (the shapes of events/*.json), carrying ``message``
    (JSON text, or a field set for EventGrid's ``data``) where that trigger carries its fields."""
    text = message if isinstance(message, str) else json.dumps(message)
    encoded = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    build = {
        "timer": lambda: {
            "version": "1",
            "time": "t",
            "trigger_type": "TIMER",
            "trigger_name": "n",
            "user_event": text,
        },
        "eventgrid": lambda: {"specversion": "1.0", "id": event_id, "source": "s", "type": "t", "data": message},
        "smn": lambda: {
            "record": [{"event_source": "smn", "smn": {"message": text, "message_id": "m", "topic_urn": "u"}}],
            **SMN_ENVELOPE,
        },
        "kafka": lambda: {**KAFKA_METADATA, "records": [{"messages": [text], "topic_id": "t"}]},
        "kafka-old": lambda: {"messages": [text], "topic_id": "t"},
        "obs": lambda: {"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]},
        "lts": lambda: {"lts": {"data": encoded}},
        "cts": lambda: {"cts": {"trace_id": "i", "trace_name": "n", "service_type": "s", "resource_type": "r"}},
    }
    if shape in build:
        return build[shape]()
    return message if isinstance(message, dict) else {"note": text}  # direct


@st.composite
def events(draw: st.DrawFn) -> Any:
    fields = draw(field_sets)
    text = draw(as_text(fields))
    shape = draw(st.sampled_from([*SHAPES, "apig", "raw", "string"]))
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
    if shape == "raw":
        return draw(json_values)
    if shape == "string":
        return text
    if shape == "direct":
        return fields
    message = text if shape != "eventgrid" else draw(st.sampled_from([fields, text]))
    return shaped(shape, message, draw(st.text(max_size=10)))


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
    assert {"timer", "apig", "eventgrid", "smn", "kafka", "obs", "lts", "cts", "direct"} <= set(seen)


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
        assert check(run.result)["status"] == "rejected"
        assert len(run.out) < 200_000, "a huge event is logged bounded"
    assert kps.requests == []


HOSTILE_BODIES = {  # built cheaply; API Gateway forwards bodies up to 12 MB
    "6 MB of empty objects": lambda: "[" + "{}," * 2_000_000 + "{}]",
    "12 MB of empty objects": lambda: "[" + "{}," * 4_000_000 + "{}]",
    "6 MB of one string": lambda: '{"project_id": "' + "a" * 6_000_000 + '"}',
    "64 KB + 1 of spaces": lambda: " " * (64 * 1024 + 1),
}


@pytest.mark.parametrize("build", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
@pytest.mark.parametrize("encoded", [True, False])
def test_a_hostile_body_is_refused_before_it_is_parsed(kps, invoke, build, encoded):
    body = build()
    run = invoke(apig_event(body, encoded=encoded))
    assert run.result["statusCode"] == 400
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert "is longer than" in run.payload["error"]["message"]
    assert kps.requests == []


PEAK = """
import base64, json, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
from function.triggers import read_event
body = base64.b64encode(("[" + "{}," * 2_000_000 + "{}]").encode()).decode()
event = {"body": body, "requestContext": {"requestId": "r"}, "httpMethod": "POST", "headers": {}, "path": "/"}
tracemalloc.start()
incoming = read_event(event)
print(json.dumps({"peak": tracemalloc.get_traced_memory()[1], "code": incoming.error.code}))
"""


def test_a_6_mb_body_of_empty_objects_costs_no_memory_to_refuse():
    """Issue 15.6: [{},{},...] of 4.5-6 MB took the function to 250-333 MB before it was refused."""
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-c", PEAK, root], capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout)
    assert measured["code"] == "InvalidEvent"
    assert measured["peak"] < 1_000_000, measured


ASKING_EXAMPLES = 400
DRY_RUNS = [True, "true", False, "false", None]
ASKS = (True, "true")


@st.composite
def events_with_stray_keys(draw: st.DrawFn) -> tuple[dict[str, Any], bool, str | None]:
    """An event of any shape, its fields anywhere, with keys of other shapes and request fields mixed in
    at its top level. Returns the event, whether any part of it asks for a dry run, and the project its
    top level names (None if none)."""
    asked: list[bool] = []

    def message() -> dict[str, Any]:
        fields: dict[str, Any] = {}
        project, dry_run = draw(st.sampled_from([PROJECT, OTHER_PROJECT, None])), draw(st.sampled_from(DRY_RUNS))
        if project:
            fields["project_id"] = project
        if dry_run is not None:
            fields["dry_run"] = dry_run
        asked.append(dry_run in ASKS)
        return fields

    stray = {  # one key of some trigger's shape, carrying a message of its own where that key does
        "messages": lambda: [json.dumps(message())],
        "records": lambda: [{"messages": [json.dumps(message())], "topic_id": "t"}],
        "user_event": lambda: json.dumps(message()),
        "data": message,
        "body": lambda: base64.b64encode(json.dumps(message()).encode()).decode(),
        "record": lambda: [{"event_source": "smn", "smn": {"message": json.dumps(message())}}],
        "Records": lambda: [{"eventName": "x", "s3": {}}],
        "specversion": lambda: "1.0",
        "trigger_type": lambda: draw(st.sampled_from(["KAFKA", "TIMER"])),
        "topic_id": lambda: "t",
        "lts": lambda: {"data": "eA=="},
        "cts": lambda: {"trace_id": "i"},
        "requestContext": lambda: {"requestId": "r"},
        "httpMethod": lambda: "DELETE",
    }
    shape = draw(st.sampled_from(SHAPES))
    event = shaped(shape, message() if shape not in ("obs", "cts") else {})  # those carry no fields
    for key in draw(st.lists(st.sampled_from(sorted(stray)), unique=True, max_size=3)):
        if key not in event:
            event[key] = stray[key]()
    top_project = draw(st.sampled_from([OTHER_PROJECT, None]))
    if top_project and "project_id" not in event:
        event["project_id"] = top_project
    top_dry_run = draw(st.sampled_from(DRY_RUNS))
    if top_dry_run is not None and "dry_run" not in event:
        event["dry_run"] = top_dry_run
    asks = any(asked) if "dry_run" not in event else any(asked) or event["dry_run"] in ASKS
    named = event.get("project_id") if isinstance(event.get("project_id"), str) else None
    return event, asks, named


def test_stray_keys_never_lose_a_dry_run_or_move_a_named_project(kps, invoke, settings):
    """Issue 9.2's invariants over every shape: whenever any part of the event asks for a dry run, no
    DELETE is sent; a project named at the top level never leads to a DELETE on another project."""
    settings.update(KPS_PROJECT_ID=PROJECT, KPS_MAX_ATTEMPTS="1")
    outcomes: list[tuple[str, bool]] = []

    @hypothesis_settings(fuzzing, max_examples=ASKING_EXAMPLES, derandomize=True)
    @given(case=events_with_stray_keys())
    def run(case: tuple[dict[str, Any], bool, str | None]) -> None:
        event, asks, named = case
        kps.clear_log()
        payload = check(invoke(event).result)
        sent = deletes(kps)
        if asks:
            assert sent == [], (event, payload)
            assert payload["dry_run"] is True or payload["status"] == "rejected"
        if named:
            assert set(sent) <= {f"/v3/{named}/failed-tasks"}, (event, sent)
        outcomes.append((payload["status"], asks))

    run()
    assert len(outcomes) >= ASKING_EXAMPLES
    statuses = {status for status, _ in outcomes}
    assert {"succeeded", "rejected"} <= statuses, "both readings (direct, refused as ambiguous) were tried"
    assert any(asks for _, asks in outcomes) and not all(asks for _, asks in outcomes)


NEAR_EXAMPLES = 300
FIELD_NAMES = ["project_id", "region", "targets", "dry_run", "context"]
CONFUSABLES = {"o": "\u043e", "a": "\u0430", "e": "\u0435", "p": "\u0440", "c": "\u0441", "i": "\u0456", "r": "\u0433"}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", " ", "\t", "\u00a0"]


@st.composite
def near_keys(draw: st.DrawFn) -> tuple[str, str]:
    """A key close to a field name: an edit, another separator, another case, a confusable letter, an
    invisible or white-space character. Returns (field, key); the key is never the field itself."""
    name = draw(st.sampled_from(FIELD_NAMES))
    at = draw(st.integers(0, len(name)))
    kind = draw(st.sampled_from(["edit", "separator", "case", "confusable", "invisible"]))
    if kind == "edit":
        letter = draw(st.characters(codec="utf-8", exclude_categories=["Cs"]))
        key = draw(
            st.sampled_from(
                [name[:at] + letter + name[at:], name[:at] + name[at + 1 :], name[:at] + letter + name[at + 1 :]]
            )
        )
    elif kind == "separator":
        key = name.replace("_", draw(st.sampled_from([" ", "-", ".", "", "__", "/", ":", "\u2010", "\uff3f"])))
    elif kind == "case":
        key = draw(st.sampled_from([name.upper(), name.title(), name.capitalize(), name.swapcase()]))
    elif kind == "confusable":
        letters = [i for i, c in enumerate(name) if c in CONFUSABLES]
        i = draw(st.sampled_from(letters))
        key = name[:i] + CONFUSABLES[name[i]] + name[i + 1 :]
    else:
        key = name[:at] + draw(st.sampled_from(INVISIBLE)) + name[at:]
    assume(key != name and key not in FIELD_NAMES)
    return name, key


def test_generated_keys_near_every_field_are_refused_with_nothing_sent(kps, invoke, settings):
    """Issue 15.1 as a class: a key meant as a field but not exactly it is refused wherever fields are read."""
    settings.update(KPS_PROJECT_ID=PROJECT, KPS_TARGETS="all", KPS_IAM_ENDPOINT=kps.url)
    kps.set_iam_projects([{"id": PROJECT, "name": "cn-north-4", "enabled": True}])
    places = {
        "direct": lambda fields: fields,
        "kafka": lambda fields: shaped("kafka", fields),
        "smn": lambda fields: shaped("smn", fields),
        "timer": lambda fields: shaped("timer", fields),
        "eventgrid": lambda fields: shaped("eventgrid", fields),
        "targets entry": lambda fields: {"targets": [{"project_id": OTHER_PROJECT, **fields}]},
    }
    seen: list[str] = []

    @hypothesis_settings(fuzzing, max_examples=NEAR_EXAMPLES)
    @given(near=near_keys(), place=st.sampled_from(sorted(places)), value=st.sampled_from([OTHER_PROJECT, True, "x"]))
    def run(near: tuple[str, str], place: str, value: Any) -> None:
        _, key = near
        before = len(kps.requests)
        payload = check(invoke(places[place]({key: value})).result)
        assert payload["status"] == "rejected" and payload["error"]["code"] == "InvalidEvent", (key, payload)
        assert kps.requests[before:] == []
        seen.append(place)

    run()
    assert len(seen) >= NEAR_EXAMPLES and set(seen) == set(places)


STRAY_EXAMPLES = 300


def _with_stray(shape: str, key: str, value: Any, where: str) -> dict[str, Any]:
    """A well-formed event of ``shape`` naming OTHER_PROJECT, with one stray key at ``where``: its top
    level, a nested object of its envelope, or the request inside its message."""
    request = {"project_id": OTHER_PROJECT}
    if where == "message":
        return shaped(shape, {**request, key: value})
    event = shaped(shape, request)
    targets = [event]
    if where == "nested" and shape == "smn":
        targets = [event["record"][0], event["record"][0]["smn"]]
    elif where == "nested" and shape == "kafka":
        targets = [event["records"][0]]
    for target in targets:
        target[key] = value
    return event


def test_generated_events_of_every_shape_with_a_stray_key_are_refused(kps, invoke, settings):
    """Issue 15.1: a trigger event with a key its envelope or the model does not have is refused, never read
    with the defaults (KPS_PROJECT_ID is PROJECT; the events name OTHER_PROJECT)."""
    settings.update(KPS_PROJECT_ID=PROJECT)
    seen: list[tuple[str, str]] = []

    @hypothesis_settings(fuzzing, max_examples=STRAY_EXAMPLES)
    @given(
        shape=st.sampled_from(["timer", "eventgrid", "smn", "kafka", "kafka-old", "direct"]),
        key=st.text(min_size=1, max_size=12).map(lambda k: "x_" + k),
        value=json_values,
        where=st.sampled_from(["top", "nested", "message"]),
    )
    def run(shape: str, key: str, value: Any, where: str) -> None:
        before = len(kps.requests)
        payload = check(invoke(_with_stray(shape, key, value, where)).result)
        assert payload["status"] == "rejected" and payload["error"]["code"] == "InvalidEvent", payload
        assert kps.requests[before:] == []
        seen.append((shape, where))

    run()
    assert len(seen) >= STRAY_EXAMPLES


def _allocated_peak(call: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_context_is_bounded_before_it_is_encoded(kps, invoke):
    """Red team 15r: ``context`` was JSON-encoded whole to be measured: a 1 MB string of control characters
    became 6 MB of JSON text before its 4,096-character bound was checked."""
    for context in ("\u0001" * 1_000_000, ["\u0001" * 4000] * 1000, {f"k{i}": "\u0001" for i in range(200_000)}):
        run, peak = _allocated_peak(lambda: invoke({"project_id": PROJECT, "context": context}))  # noqa: B023
        assert run.payload["error"]["code"] == "InvalidEvent" and kps.requests == []
        assert "larger than 4096" in run.payload["error"]["message"]
        assert peak < 1_000_000, f"refusing a too-large context allocated {peak / 1e6:.1f} MB"
    deep: list = []
    for _ in range(1200):  # under the bound as text; deeper than 3.9's encoder goes, not 3.12's
        deep = [deep]
    run = invoke({"project_id": PROJECT, "context": deep})
    assert run.payload["error"]["code"] == "InvalidEvent" and kps.requests == []
    assert "deeper than 32 levels" in run.payload["error"]["message"]
    for levels, refused in ((32, False), (33, True)):  # the rule's edge, the same on every Python
        deep = []
        for _ in range(levels):
            deep = [deep]
        run = invoke({"project_id": PROJECT, "context": deep, "dry_run": True})
        assert (run.payload["status"] == "rejected") is refused, levels


def test_context_of_non_json_types_is_refused_not_encoded_whole(kps, invoke):
    """Red team 15rb: the size walk counted a tuple (any non-JSON container) as one character, so a tuple of a
    million strings passed it and was ``json.dumps``-ed whole (~20 MB) before the bound refused it. A parsed JSON
    event holds only dict, list, str, int, float, bool and None: anything else (and a non-string key) is refused."""
    for context in (tuple("abcdef" for _ in range(1_000_000)), {"a": {1, 2}}, {1: "a"}, [object()]):
        run, peak = _allocated_peak(lambda: invoke({"project_id": PROJECT, "context": context}))  # noqa: B023
        assert run.payload["error"]["code"] == "InvalidEvent" and kps.requests == []
        assert "context is not JSON" in run.payload["error"]["message"]
        assert peak < 2_000_000, f"measuring the context allocated {peak / 1e6:.1f} MB"


_CLOUDEVENT = {"specversion": "1.0", "id": "e-1", "source": "s", "type": "t"}
_MANY_KEYS = {f"k{i}": 0 for i in range(430_000)}  # ~6 MB as JSON: a synchronous invocation's most


@pytest.mark.parametrize("where", ["direct", "cloudevent", "smn-message", "select"])
def test_a_6_mb_event_of_unknown_keys_is_refused_without_describing_every_key(kps, invoke, where):
    """Red team 15rb: a parsed event's unknown keys were all described (``named()`` building a string for each)
    to show five: ~30 MB of the function's own for 6 MB of short keys. Only the first five are looked at."""
    smn_record = {"event_source": "smn", "smn": {"message": "{}", "message_id": "m", "topic_urn": "u", **_MANY_KEYS}}
    event = {
        "direct": _MANY_KEYS,
        "cloudevent": {**_CLOUDEVENT, "data": {}, **_MANY_KEYS},
        "smn-message": {"record": [smn_record]},
        "select": {"project_id": PROJECT, "select": _MANY_KEYS},
    }[where]
    run, peak = _allocated_peak(lambda: invoke(event))
    assert run.payload["error"]["code"] == "InvalidEvent" and kps.requests == []
    assert peak < 4_000_000, f"refusing the event allocated {peak / 1e6:.1f} MB"


class _Unprintable:
    """A key whose text cannot be made: a Python caller's own object."""

    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


@pytest.mark.parametrize(
    "event",
    [
        {10**5000: 1},  # str() of an integer past 4,300 digits raises ValueError (3.11+)
        {"project_id": PROJECT, "select": {10**5000: 1}},
        {"project_id": PROJECT, "select": {"older_than_hours": 10**5000}},
        {"project_id": PROJECT, "select": {"older_than_hours": -(10**5000)}},
        {**_CLOUDEVENT, "data": {}, 10**5000: 1},
        {**_CLOUDEVENT, "data": {_Unprintable(): 1}},
        {_Unprintable(): 1},
        {"targets": [{_Unprintable(): 1}]},
    ],
    ids=[
        "huge-int-key",
        "huge-int-select-key",
        "huge-int-age",
        "huge-negative-age",
        "huge-int-envelope-key",
        "unprintable-data-key",
        "unprintable-key",
        "unprintable-entry-key",
    ],
)
def test_odd_keys_in_a_parsed_event_are_refused_in_the_payload(kps, invoke, event):
    """Red team 15rb: a key whose text cannot be made (``str()`` of it raises) escaped read_event, which says it
    never raises, and the handler raised with no payload. A key that is not a string is unknown and described
    by that alone; an out-of-range age is described, never written out."""
    run = invoke(event)
    assert kps.requests == []
    assert run.payload["status"] == "rejected" and run.payload["error"]["code"] == "InvalidEvent"
    assert "0" * 100 not in run.payload["error"]["message"]


def test_a_bug_in_the_reader_ends_in_the_payload_as_an_internal_error(kps, invoke, monkeypatch):
    """The reader is called inside the handler's guard: whatever it raises is an InternalError payload, logged,
    and nothing is sent."""
    from function import cleaner

    def broken(event: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cleaner, "read_event", broken)
    run = invoke({"project_id": PROJECT})
    assert run.payload["status"] == "failed" and run.payload["error"]["code"] == "InternalError"
    assert kps.requests == []


def test_log_event_does_not_copy_a_large_refused_event(kps, invoke, settings):
    """Red team 15r (held since the logs rework; kept as a regression test): LOG_EVENT=true logged the
    event's structure by listing every item of a dict, ~27 MB for 300,000 keys before its refusal."""
    settings["LOG_EVENT"] = "true"
    event = {f"k{i}": 0 for i in range(300_000)}
    run, peak = _allocated_peak(lambda: invoke(event))
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert peak < 4_000_000, f"logging a refused event allocated {peak / 1e6:.1f} MB"


def test_a_callers_long_credential_header_stays_under_the_memory_bound(tmp_path):
    """Red team 15r (held since the logs rework; kept as a regression test): a caller's X-Auth-Token was
    registered as a secret before anything was bounded: 1 MB of one letter cost +109 MB resident."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT / "tests")!r}); sys.path.insert(0, {str(ROOT)!r})
        from conftest import apig_event
        from devtools.context import FakeContext
        from handler import handler
        event = apig_event({{"project": "x"}})
        event["headers"]["x-auth-token"] = "T" * 1_000_000
        def peak_kb():  # VmHWM, reset first: ru_maxrss would carry the forking test process's own peak
            return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
        open("/proc/self/clear_refs", "w").write("5")
        before = peak_kb()
        result = handler(event, FakeContext(user_data={{"KPS_ENDPOINT": "http://127.0.0.1:9", "KPS_REGION":
            "cn-north-4", "KPS_AUTH_TOKEN": "MIIT-settings-token-0123456789abcdef", "KPS_PROJECT_ID": "{PROJECT}"}}))
        after = peak_kb()
        print(json.dumps({{"status": result["statusCode"], "grew_mb": (after - before) / 1024}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=True
    )
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 400
    assert outcome["grew_mb"] < 32, outcome


CALLER_TOKEN = "Qw7eRt9yUi0pAs2dFg4hJk6lZx8cVb1nM3" * 118  # 4,012 characters, no known token prefix
PASTED = {
    "as dry_run": {"project_id": PROJECT, "dry_run": CALLER_TOKEN},
    "as region": {"project_id": PROJECT, "region": CALLER_TOKEN},
    "as project_id": {"project_id": CALLER_TOKEN},
    "as a targets entry's project_id": {"targets": [{"project_id": CALLER_TOKEN}]},
    "as targets": {"targets": CALLER_TOKEN},
    "as a key": {"project_id": PROJECT, CALLER_TOKEN: 1},
    "as a key of a targets entry": {"targets": [{"project_id": PROJECT, CALLER_TOKEN: 1}]},
    "as a short key": {"project_id": PROJECT, CALLER_TOKEN[:30]: 1},
    "as a select key": {"project_id": PROJECT, "select": {CALLER_TOKEN[:60]: 1}},
    "as a select operate_type": {"project_id": PROJECT, "select": {"operate_type": [CALLER_TOKEN[:200]]}},
}


@pytest.mark.parametrize("event", list(PASTED.values()), ids=list(PASTED))
@pytest.mark.parametrize("http", [False, True])
def test_a_callers_token_pasted_in_a_request_reaches_no_line_or_payload(kps, invoke, event, http):
    """Refusal reasons quoted caller values (``got 'MIIC-caller-...'``) and were logged in the ``rejected``
    line: they now name the field and the value's type and size, and a key only when it is short and plain."""
    run = invoke(apig_event(event) if http else event)
    assert run.payload["status"] == "rejected" and kps.requests == []
    assert run.lines("rejected")
    seen = (json.dumps(run.result) + run.out + run.err).lower()
    for piece in (CALLER_TOKEN[:24], CALLER_TOKEN[100:124]):
        assert piece.lower() not in seen
