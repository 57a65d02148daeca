"""Every trigger shape reaches the right project, and the payload names the trigger."""

from __future__ import annotations

import base64
import functools
import json

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, RUNTIME_PROJECT, apig_event, deletes, load_event

TASKS = f"/v3/{PROJECT}/failed-tasks"
OTHER_TASKS = f"/v3/{OTHER_PROJECT}/failed-tasks"


@pytest.mark.parametrize(
    ("event_file", "trigger"),
    [
        ("timer.json", "timer"),
        ("eventgrid.json", "eventgrid"),
        ("smn.json", "smn"),
        ("kafka.json", "kafka"),
        ("rocketmq.json", "rocketmq"),
        ("direct.json", "direct"),
    ],
)
def test_sample_events_clean_the_project_they_name(kps, invoke, event_file, trigger):
    run = invoke(load_event(event_file))
    assert run.payload["trigger"] == trigger
    assert run.payload["status"] == "succeeded"
    assert deletes(kps) == [TASKS]
    assert kps.failed_tasks(PROJECT) == []
    [result] = run.payload["results"]
    assert result["project_id"] == PROJECT
    assert result["region"] == REGION
    assert result["outcome"] == "deleted"
    assert result["http_status"] == 200
    assert result["kps_request_id"]


def test_apig_sample_answers_with_the_gateway_response_object(kps, invoke):
    run = invoke(load_event("apig.json"))
    assert set(run.result) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert run.result["statusCode"] == 200
    assert run.result["headers"] == {"Content-Type": "application/json"}
    assert run.result["isBase64Encoded"] is False
    assert isinstance(run.result["body"], str)
    assert run.payload["trigger"] == "apig"
    assert deletes(kps) == [TASKS]


def test_apig_plain_body_when_not_base64(kps, invoke):
    run = invoke(apig_event({"project_id": OTHER_PROJECT}, encoded=False))
    assert run.result["statusCode"] == 200
    assert deletes(kps) == [OTHER_TASKS]


def test_apig_base64_is_the_default_when_the_flag_is_absent(kps, invoke):
    event = apig_event({"project_id": OTHER_PROJECT})
    del event["isBase64Encoded"]
    assert invoke(event).result["statusCode"] == 200
    assert deletes(kps) == [OTHER_TASKS]


def test_apig_query_string_and_path_parameters_carry_fields(kps, invoke):
    run = invoke(apig_event(None, query={"project_id": OTHER_PROJECT, "dry_run": "false"}))
    assert run.result["statusCode"] == 200
    assert deletes(kps) == [OTHER_TASKS]
    kps.clear_log()
    run = invoke(apig_event({"dry_run": False}, path={"project_id": OTHER_PROJECT}))
    assert deletes(kps) == [OTHER_TASKS]
    kps.clear_log()
    run = invoke(apig_event({"project_id": PROJECT}, path={"project_id": OTHER_PROJECT}))
    assert run.result["statusCode"] == 400, "a field in two places is ambiguous"
    assert "given twice" in run.payload["error"]["message"]
    assert kps.requests == []


def test_apig_empty_body_uses_the_defaults(kps, invoke, settings):
    settings["KPS_PROJECT_ID"] = OTHER_PROJECT
    run = invoke(apig_event(None))
    assert run.result["statusCode"] == 200
    assert deletes(kps) == [OTHER_TASKS]


@pytest.mark.parametrize("text", ["nightly cleanup", "project_id=" + OTHER_PROJECT])
def test_a_plain_text_message_is_refused(kps, invoke, settings, text):
    """Plain text names nothing; read as the defaults, ``project_id=B`` would clean the configured project."""
    settings["RUNTIME_PROJECT_ID"] = RUNTIME_PROJECT
    for event in (load_event("timer.json") | {"user_event": text}, apig_event(text)):
        run = invoke(event)
        assert run.payload["error"]["code"] == "InvalidEvent"
        assert "plain text is refused" in run.payload["error"]["message"]
    assert kps.requests == []


def test_eventgrid_data_as_json_text(kps, invoke):
    event = load_event("eventgrid.json")
    event["data"] = json.dumps({"project_id": OTHER_PROJECT})
    run = invoke(event)
    assert run.payload["trigger"] == "eventgrid"
    assert deletes(kps) == [OTHER_TASKS]


def test_kafka_older_top_level_messages_shape(kps, invoke):
    event = {"messages": [json.dumps({"project_id": OTHER_PROJECT})], "topic_id": "kps-cleanup"}
    run = invoke(event)
    assert run.payload["trigger"] == "kafka"
    assert deletes(kps) == [OTHER_TASKS]


def test_kafka_batch_cleans_each_distinct_project_once(kps, invoke):
    event = load_event("kafka.json")
    messages = [json.dumps({"project_id": p}) for p in (PROJECT, OTHER_PROJECT, PROJECT)]
    event["records"][0]["messages"] = messages
    run = invoke(event)
    assert sorted(deletes(kps)) == sorted([TASKS, OTHER_TASKS])
    assert [r["project_id"] for r in run.payload["results"]] == [PROJECT, OTHER_PROJECT]


@pytest.mark.parametrize("event", [None, {}, "", "null", "{}"])
def test_empty_events_use_the_defaults(kps, invoke, settings, event):
    settings["KPS_PROJECT_ID"] = OTHER_PROJECT
    run = invoke(event)
    assert run.payload["trigger"] == "direct"
    assert run.payload["status"] == "succeeded"
    assert deletes(kps) == [OTHER_TASKS]


def test_json_string_event_is_parsed(kps, invoke):
    run = invoke(json.dumps(load_event("timer.json")))
    assert run.payload["trigger"] == "timer"
    assert deletes(kps) == [TASKS]


@pytest.mark.parametrize("trigger", ["obs", "lts", "cts"])
def test_triggers_without_project_information_are_refused(kps, invoke, settings, trigger):
    """An upload, a log line or an audit record names no project: never "clean the default project"."""
    settings["KPS_PROJECT_ID"] = OTHER_PROJECT
    run = invoke(load_event(f"{trigger}.json"))
    assert run.payload["trigger"] == trigger
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert "carries no request" in run.payload["error"]["message"]
    assert kps.requests == []


@pytest.mark.parametrize("event", [[1, 2], 42, 3.5, True, "not json", "[1]", b"\xff\xfe"])
def test_events_that_are_not_objects_are_rejected(kps, invoke, event):
    run = invoke(event)
    assert run.payload["status"] == "rejected"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert run.payload["results"] == []
    assert kps.requests == []


@pytest.mark.parametrize(
    "event",
    [
        {**apig_event(None), "body": "%%%not base64%%%"},
        apig_event("not json"),
        apig_event("[1, 2]"),
        {**apig_event(None), "body": base64.b64encode(b"\xff\xfe").decode()},
        {**apig_event(None), "queryStringParameters": "project_id=x"},
    ],
)
def test_bad_apig_requests_get_a_400_gateway_answer(kps, invoke, event):
    run = invoke(event)
    assert run.result["statusCode"] == 400
    assert run.payload["trigger"] == "apig"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []


def test_an_unknown_field_is_refused_with_a_suggestion(kps, invoke):
    run = invoke({"project_id": PROJECT, "project": OTHER_PROJECT})
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert "'project' (did you mean project_id?)" in run.payload["error"]["message"]
    assert kps.requests == []


SAMPLES = ["timer", "apig", "eventgrid", "smn", "kafka", "obs", "lts", "cts"]
# One key of a trigger's shape, alone beside request fields: no trigger, and no request either.
STRAY_KEYS = {
    "messages": [],
    "topic_id": "kps-cleanup",
    "records": [{"messages": [], "topic_id": "t"}],
    "Records": [],
    "specversion": "1.0",
    "trigger_type": "KAFKA",
    "user_event": "{}",
    "lts": {},
    "cts": {},
    "record": [],
    "events": [],
}


@pytest.mark.parametrize("key", list(STRAY_KEYS))
def test_a_stray_trigger_key_beside_request_fields_is_refused(kps, invoke, settings, key):
    """Issue 9.2: {"project_id": B, "dry_run": true, "messages": []} was read as Kafka and cleaned A."""
    settings["KPS_PROJECT_ID"] = PROJECT
    run = invoke({"project_id": OTHER_PROJECT, "dry_run": True, key: STRAY_KEYS[key]})
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("field", [{"project_id": OTHER_PROJECT}, {"dry_run": False}, {"targets": "all"}])
def test_a_trigger_event_with_request_fields_at_its_top_level_is_refused(kps, invoke, sample, field):
    event = {**load_event(f"{sample}.json"), **field}
    run = invoke(event)
    assert run.payload["status"] == "rejected"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []
    if sample == "apig":
        assert run.result["statusCode"] == 400


def test_kafka_region_is_part_of_its_shape_not_a_request_field(kps, invoke):
    event = load_event("kafka.json")
    event["region"] = "ap-southeast-1"  # the Kafka instance's region: not where to clean
    run = invoke(event)
    assert run.payload["status"] == "succeeded"
    assert [r["region"] for r in run.payload["results"]] == [REGION]


def test_an_event_with_two_trigger_shapes_is_refused(kps, invoke):
    run = invoke({**load_event("timer.json"), **load_event("cts.json")})
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert "ambiguous" in run.payload["error"]["message"]
    assert kps.requests == []


@pytest.mark.parametrize("missing", ["time", "trigger_name", "user_event", "version"])
def test_a_partial_shape_is_refused(kps, invoke, settings, missing):
    settings["KPS_PROJECT_ID"] = OTHER_PROJECT
    event = load_event("timer.json")
    del event[missing]
    run = invoke(event)
    assert run.payload["trigger"] == "timer"
    assert f"lacks {missing}" in run.payload["error"]["message"]
    assert kps.requests == []


@pytest.mark.parametrize(
    "event",
    [
        {"project_id": OTHER_PROJECT, "notes": {"dry_run": True}},
        {"project_id": OTHER_PROJECT, "user_event": json.dumps({"dry_run": "true"})},
        {"project_id": OTHER_PROJECT, "body": base64.b64encode(b'{"dry_run": true}').decode()},
        {"project_id": OTHER_PROJECT, "messages": [json.dumps([{"x": {"dry_run": "yes"}}])]},
        {"project_id": OTHER_PROJECT, "options": [{"dry_run": 1}]},
        {"targets": [{"project_id": OTHER_PROJECT, "dry_run": True}]},
    ],
)
def test_a_dry_run_anywhere_but_a_request_field_is_refused_not_guessed(kps, invoke, event):
    run = invoke(event)
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []


def test_a_dry_run_in_one_kafka_message_makes_the_batch_a_dry_run(kps, invoke):
    event = load_event("kafka.json")
    event["records"][0]["messages"].append(json.dumps({"project_id": OTHER_PROJECT, "dry_run": True}))
    run = invoke(event)
    assert run.payload["dry_run"] is True
    assert deletes(kps) == []


@pytest.mark.parametrize(
    "event",
    [
        {"targets": "all", "project_id": OTHER_PROJECT},
        {"targets": "ALL", "project_id": OTHER_PROJECT},
        {"targets": "all", "region": "cn-north-4"},
    ],
)
def test_a_sweep_beside_a_project_or_region_is_refused(kps, invoke, settings, event):
    """Issue 9.9: {"targets": "all", "project_id": P} swept every project instead."""
    settings["KPS_IAM_ENDPOINT"] = kps.url
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    run = invoke(event)
    assert run.payload["status"] == "rejected"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"project_id": PROJECT, "pad": list(range(100_001))}, id="100,001 values"),
        pytest.param({"project_id": PROJECT, "pad": functools.reduce(lambda v, _: [v], range(70), [])}, id="70 deep"),
        pytest.param({"project_id": PROJECT, "context": list(range(100_001))}, id="a context too large"),
    ],
)
def test_an_event_too_large_or_deep_is_refused_without_a_scan(kps, invoke, event):
    run = invoke(event)
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []


@pytest.mark.parametrize("sweep", ["ALL", "All", " all", "all ", "\u0430ll"])
def test_a_sweep_is_asked_for_by_exactly_all(kps, invoke, settings, sweep):
    """A sweep is every project the credentials see: only the exact lower-case ``all`` asks for one, in JSON and
    in a query string alike; any other spelling is refused before IAM is asked."""
    settings["KPS_IAM_ENDPOINT"] = kps.url
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    for event in ({"targets": sweep}, apig_event(query={"targets": sweep})):
        run = invoke(event)
        assert (run.payload["status"], run.payload["error"]["code"]) == ("rejected", "InvalidEvent")
    assert kps.requests == []


def test_a_query_string_asking_for_all_sweeps_over_http(kps, invoke, settings):
    """docs/triggers.md: over HTTP a sweep is ``targets=all`` in the query string (or the body)."""
    settings["KPS_IAM_ENDPOINT"] = kps.url
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    run = invoke(apig_event(query={"targets": "all"}))
    assert run.result["statusCode"] == 200 and deletes(kps) == [TASKS]
