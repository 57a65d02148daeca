"""Issue 9.2 and 9.9, as red-teamed: no reading of an event changes what the request means. JSON text that
repeats a field, a message that looks like JSON but is not an object, a key that resembles a field, a
``dry_run`` that is not clearly false, API Gateway's keys without its shape, a region KPS_TARGETS would
ignore: each is refused (nothing sent) or, for a dry run, taken on the safe side (no DELETE)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, apig_event, deletes, load_event

B = OTHER_PROJECT  # the project the caller names; PROJECT is the configured one
B_TASKS = f"/v3/{B}/failed-tasks"


@pytest.fixture(autouse=True)
def configured_project(settings):
    settings["KPS_PROJECT_ID"] = PROJECT


def kafka(*messages: Any) -> dict:
    event = load_event("kafka.json")
    event["records"][0]["messages"] = list(messages)
    return event


def smn(message: str) -> dict:
    event = load_event("smn.json")
    event["record"][0]["smn"]["message"] = message
    return event


def eventgrid(data: Any) -> dict:
    event = load_event("eventgrid.json")
    event["data"] = data
    return event


def timer(user_event: str) -> dict:
    event = load_event("timer.json")
    event["user_event"] = user_event
    return event


def assert_refused(run, kps, words: str = "") -> None:
    assert run.payload["status"] == "rejected", run.payload
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert words in run.payload["error"]["message"]
    assert kps.requests == []
    if "statusCode" in run.result:
        assert run.result["statusCode"] == 400


DRY_TWICE = f'{{"project_id": "{B}", "dry_run": true, "dry_run": false}}'
PROJECT_TWICE = f'{{"project_id": "{B}", "project_id": "{PROJECT}"}}'
DUPLICATES = {
    "event text": DRY_TWICE,
    "event bytes": DRY_TWICE.encode(),
    "event text, project twice": PROJECT_TWICE,
    "API Gateway body, base64": apig_event(DRY_TWICE),
    "API Gateway body, plain": apig_event(PROJECT_TWICE, encoded=False),
    "Kafka message": kafka(DRY_TWICE),
    "older Kafka message": {"messages": [PROJECT_TWICE], "topic_id": "t"},
    "SMN message": smn(PROJECT_TWICE),
    "EventGrid data": eventgrid(DRY_TWICE),
    "timer user_event": timer(PROJECT_TWICE),
    "targets entry": f'{{"targets": [{{"project_id": "{B}", "region": "a", "region": "{REGION}"}}]}}',
    "region twice": f'{{"project_id": "{B}", "region": "eu-west-101", "region": "{REGION}"}}',
    "targets twice": f'{{"targets": "all", "targets": [{{"project_id": "{B}"}}]}}',
    "embedded JSON text": {"project_id": B, "note": '{"dry_run": true, "dry_run": false}'},
    "embedded base64": {"project_id": B, "note": base64.b64encode(DRY_TWICE.encode()).decode()},
    "JSON string holding it": json.dumps(PROJECT_TWICE),
}


@pytest.mark.parametrize("event", list(DUPLICATES.values()), ids=list(DUPLICATES))
def test_json_text_that_repeats_a_request_field_is_refused(kps, invoke, event):
    """json.loads keeps the last value: '{"dry_run": true, "dry_run": false}' deleted B."""
    assert_refused(invoke(event), kps, "more than once")


def test_a_repeated_key_that_is_no_request_field_is_read(kps, invoke):
    run = invoke(f'{{"project_id": "{B}", "note": 1, "note": 2}}')
    assert deletes(kps) == [B_TASKS]
    assert run.payload["status"] == "succeeded"


UNREADABLE = {
    "Kafka message, trailing comma": kafka(f'{{"project_id": "{B}", "dry_run": true,}}'),
    "SMN message, single quotes": smn(f"{{'project_id': '{B}', 'dry_run': True}}"),
    "Kafka message, an array": kafka(json.dumps([{"project_id": B}])),
    "EventGrid data, an array": eventgrid(json.dumps([{"project_id": B}])),
    "EventGrid data, an array object": eventgrid([{"project_id": B}]),
    "timer user_event, a JSON string of text": timer(json.dumps("nightly")),
    "SMN message, an array after a BOM and spaces": smn("\ufeff  [1]"),
    "Kafka message, JSON string holding broken JSON": kafka(json.dumps(f'{{"project_id": "{B}",}}')),
    "Kafka message, not text": kafka(42),
    "API Gateway body, a JSON string of an array": apig_event(json.dumps(json.dumps([1]))),
}


@pytest.mark.parametrize("event", list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_a_message_meant_as_json_that_is_no_object_is_refused_not_read_as_the_defaults(kps, invoke, event):
    """Each of these cleaned the configured project, status succeeded, no warning."""
    assert_refused(invoke(event), kps)


def _twice(payload: dict) -> str:
    return json.dumps(json.dumps(payload))


READABLE = {  # each builds an event carrying the request's fields
    "SMN message with a BOM": lambda p: smn("\ufeff" + json.dumps(p)),
    "Kafka message, JSON in a JSON string": lambda p: kafka(_twice(p)),
    "older Kafka message, JSON in a JSON string": lambda p: {"messages": [_twice(p)], "topic_id": "t"},
    "EventGrid data, JSON in a JSON string": lambda p: eventgrid(_twice(p)),
    "timer user_event, JSON in a JSON string": lambda p: timer(_twice(p)),
    "API Gateway body with a BOM": lambda p: apig_event("\ufeff" + json.dumps(p)),
    "event text with a BOM": lambda p: "\ufeff " + json.dumps(p),
    "event bytes with a BOM": lambda p: ("\ufeff" + json.dumps(p)).encode(),
}


@pytest.mark.parametrize("build", list(READABLE.values()), ids=list(READABLE))
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_bom_is_stripped_and_json_in_a_json_string_is_read_once(kps, invoke, build, dry_run):
    run = invoke(build({"project_id": B, "dry_run": dry_run}))
    assert run.payload["status"] == "succeeded", run.payload
    assert run.payload["dry_run"] is dry_run
    assert [r["project_id"] for r in run.payload["results"]] == [B]
    assert deletes(kps) == ([] if dry_run else [B_TASKS])


@pytest.mark.parametrize("message", ["nightly cleanup", "", "please clean", "42", "null", "true"])
def test_plain_text_messages_still_mean_the_defaults(kps, invoke, message):
    run = invoke(timer(message))
    assert run.payload["status"] == "succeeded"
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]


def _b64(payload: dict, encode: Any = base64.b64encode) -> str:
    return encode(json.dumps(payload).encode()).decode()


DRY_BASE64 = {
    "unpadded": _b64({"dry_run": True, "x": "ab"}).rstrip("="),
    "URL-safe": _b64({"dry_run": True, "k": "?>?>"}, base64.urlsafe_b64encode),
    "MIME, line breaks": _b64({"dry_run": True, "pad": "x" * 80}, base64.encodebytes),
    "padded": _b64({"dry_run": "yes"}),
}


@pytest.mark.parametrize("message", list(DRY_BASE64.values()), ids=list(DRY_BASE64))
def test_a_dry_run_in_any_base64_variant_sends_no_delete(kps, invoke, message):
    assert "\n" in DRY_BASE64["MIME, line breaks"] and "_" in DRY_BASE64["URL-safe"] + "-"
    run = invoke(kafka(json.dumps({"project_id": B}), message))
    assert run.payload["dry_run"] is True
    assert deletes(kps) == []


LOOK_ALIKES = {
    "DRY_RUN": ({"project_id": B, "DRY_RUN": True}, "dry_run"),
    "Dry_Run": ({"project_id": B, "Dry_Run": "true"}, "dry_run"),
    "zero-width space": ({"project_id": B, "dry_run\u200b": True}, "dry_run"),
    "dry-run": ({"project_id": B, "dry-run": True}, "dry_run"),
    "dryRun": ({"project_id": B, "dryRun": True}, "dry_run"),
    "Project_id": ({"Project_id": B}, "project_id"),
    "PROJECT_ID": ({"PROJECT_ID": B}, "project_id"),
    "projectId": ({"projectId": B}, "project_id"),
    "project_id with a BOM": ({"\ufeffproject_id": B}, "project_id"),
    "full-width": ({"\uff50\uff52\uff4f\uff4a\uff45\uff43\uff54\uff3f\uff49\uff44": B}, "project_id"),
    "Region": ({"project_id": B, "Region": "eu-west-101"}, "region"),
    "Targets": ({"Targets": [{"project_id": B}]}, "targets"),
    "sweep beside Project_id": ({"targets": "all", "Project_id": B}, "project_id"),
    "sweep beside project_id zwsp": ({"targets": "all", "project_id\u200b": B}, "project_id"),
    "in a targets entry": ({"targets": [{"Project_ID": B, "region": REGION}]}, "project_id"),
    "region in a targets entry": ({"targets": [{"project_id": B, "REGION": "eu-west-101"}]}, "region"),
    "in a Kafka message": (kafka(json.dumps({"project_id": B, "DRY_RUN": True})), "dry_run"),
    "in an SMN message": (smn(json.dumps({"projectId": B})), "project_id"),
    "in a query string": (apig_event(None, query={"project_id": B, "DRY_RUN": "true"}), "dry_run"),
    "in path parameters": (apig_event(None, path={"Project_Id": B}), "project_id"),
}


@pytest.mark.parametrize(("event", "meant"), list(LOOK_ALIKES.values()), ids=list(LOOK_ALIKES))
def test_a_key_that_resembles_a_request_field_is_refused(kps, invoke, settings, event, meant):
    """{"project_id": B, "DRY_RUN": true} deleted B; {"Project_id": B} deleted the configured project."""
    settings["KPS_IAM_ENDPOINT"] = kps.url
    assert_refused(invoke(event), kps, f"did you mean {meant}?")


@pytest.mark.parametrize("key", ["Project_id", "DRY_RUN", "projectId", "region\u200b"])
def test_a_trigger_event_with_a_look_alike_at_its_top_level_is_ambiguous(kps, invoke, key):
    assert_refused(invoke({**load_event("timer.json"), key: B}), kps, "ambiguous")


ASKING = [1, 1.0, "y", "t", "", [True], {"value": True}, "TRUE", " On ", "2", -1]
CLEARLY_FALSE = [False, None, 0, "false", " FALSE ", "0", "no", "Off"]


@pytest.mark.parametrize("value", ASKING, ids=repr)
def test_a_dry_run_in_a_targets_entry_that_is_not_clearly_false_sends_no_delete(kps, invoke, value):
    """{"targets": [{"project_id": B, "dry_run": 1.0}]} deleted B: entries were never looked at."""
    run = invoke({"targets": [{"project_id": B, "dry_run": value}]})
    assert run.payload["dry_run"] is True
    assert run.payload["status"] == "succeeded"
    assert deletes(kps) == []


@pytest.mark.parametrize("value", CLEARLY_FALSE, ids=repr)
def test_a_clearly_false_dry_run_anywhere_still_deletes(kps, invoke, value):
    run = invoke({"targets": [{"project_id": B, "dry_run": value}], "options": {"dry_run": value}})
    assert run.payload["dry_run"] is False
    assert deletes(kps) == [B_TASKS]


@pytest.mark.parametrize("key", ["DryRun", "dry-run", "DRY_RUN"])
def test_a_dry_run_look_alike_deep_in_the_event_sends_no_delete(kps, invoke, key):
    run = invoke({"project_id": B, "options": {key: "y"}})
    assert run.payload["dry_run"] is True
    assert deletes(kps) == []


def _apig_without(key: str, null: bool = False) -> dict:
    event = apig_event({"project_id": B}, method="DELETE")
    if null:
        event[key] = None
    else:
        del event[key]
    return event


PARTIAL_APIG = {
    "no path": _apig_without("path"),
    "no headers": _apig_without("headers"),
    "no requestContext": _apig_without("requestContext"),
    "no httpMethod": _apig_without("httpMethod"),
    "path null": _apig_without("path", null=True),
    "headers null": _apig_without("headers", null=True),
    "requestContext null": _apig_without("requestContext", null=True),
    "httpMethod alone": {"httpMethod": "GET"},
    "requestContext alone": {"requestContext": {"requestId": "r"}},
    "httpMethod on a timer event": {**load_event("timer.json"), "httpMethod": "DELETE"},
    "requestContext on a Kafka event": {**load_event("kafka.json"), "requestContext": {"requestId": "r"}},
}


@pytest.mark.parametrize("event", list(PARTIAL_APIG.values()), ids=list(PARTIAL_APIG))
def test_api_gateway_keys_without_its_whole_shape_are_refused(kps, invoke, event):
    """A GET with no path was read as a direct call and deleted the configured project."""
    assert_refused(invoke(event), kps, "API Gateway")


@pytest.mark.parametrize("kps_targets", ["all", f"{REGION}:{PROJECT}"])
@pytest.mark.parametrize("event", [{"region": "ap-southeast-1"}, {"region": "ap-southeast-1", "targets": None}])
def test_a_region_that_kps_targets_would_ignore_is_refused(kps, invoke, settings, kps_targets, event):
    """With KPS_TARGETS=all, {"region": "ap-southeast-1"} swept every region."""
    settings.update(KPS_TARGETS=kps_targets, KPS_IAM_ENDPOINT=kps.url)
    assert_refused(invoke(event), kps, "KPS_TARGETS")


def test_a_region_with_a_project_still_overrides_kps_targets(kps, invoke, settings):
    settings["KPS_TARGETS"] = f"{REGION}:{PROJECT}"
    run = invoke({"project_id": B, "region": REGION})
    assert deletes(kps) == [B_TASKS]
    assert run.payload["status"] == "succeeded"
