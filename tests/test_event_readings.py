"""Issues 9.2, 9.9 and 15.1-15.3, as red-teamed: an event says exactly what it means or is refused. JSON text
that repeats a key, a message that is not a JSON object, a key that is not exactly a field (a typo, a space,
a separator, another alphabet), base64 where the platform documents none, a real event with no reader, API
Gateway's keys without its shape, a region KPS_TARGETS would ignore: each is refused, nothing sent."""

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


def eventgrid_list(*changes: dict) -> dict:
    event = load_event("eventgrid.json")
    return {"events": [{**event, **change, "id": f"id-{i}"} for i, change in enumerate(changes)]}


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
}


@pytest.mark.parametrize("event", list(DUPLICATES.values()), ids=list(DUPLICATES))
def test_json_text_that_repeats_a_request_field_is_refused(kps, invoke, event):
    """json.loads keeps the last value: '{"dry_run": true, "dry_run": false}' deleted B."""
    assert_refused(invoke(event), kps, "more than once")


def test_any_key_given_twice_is_refused(kps, invoke):
    assert_refused(invoke(f'{{"project_id": "{B}", "context": 1, "context": 2}}'), kps, "more than once")


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
    "Kafka message, JSON in a JSON string": kafka(json.dumps(json.dumps({"project_id": B}))),
    "timer user_event, JSON in a JSON string": timer(json.dumps(json.dumps({"project_id": B}))),
}


@pytest.mark.parametrize("event", list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_a_message_meant_as_json_that_is_no_object_is_refused_not_read_as_the_defaults(kps, invoke, event):
    """Each of these cleaned the configured project, status succeeded, no warning."""
    assert_refused(invoke(event), kps)


READABLE = {  # each builds an event carrying the request's fields
    "SMN message with a BOM": lambda p: smn("\ufeff" + json.dumps(p)),
    "API Gateway body with a BOM": lambda p: apig_event("\ufeff" + json.dumps(p)),
    "event text with a BOM": lambda p: "\ufeff " + json.dumps(p),
    "event bytes with a BOM": lambda p: ("\ufeff" + json.dumps(p)).encode(),
}


@pytest.mark.parametrize("build", list(READABLE.values()), ids=list(READABLE))
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_bom_is_stripped(kps, invoke, build, dry_run):
    run = invoke(build({"project_id": B, "dry_run": dry_run}))
    assert run.payload["status"] == "succeeded", run.payload
    assert run.payload["dry_run"] is dry_run
    assert [r["project_id"] for r in run.payload["results"]] == [B]
    assert deletes(kps) == ([] if dry_run else [B_TASKS])


@pytest.mark.parametrize("message", ["", "  ", "null", "{}", '""'])
def test_an_empty_message_means_the_defaults(kps, invoke, message):
    run = invoke(timer(message))
    assert run.payload["status"] == "succeeded"
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]


@pytest.mark.parametrize("message", ["nightly cleanup", "please clean", "42", "true", f"project_id={B}"])
def test_plain_text_and_json_that_is_no_object_are_refused(kps, invoke, message):
    assert_refused(invoke(timer(message)), kps)


def _b64(payload: dict, encode: Any = base64.b64encode) -> str:
    return encode(json.dumps(payload).encode()).decode()


BASE64_B = {  # base64 where the platform documents none: not decoded, so refused, never read as the defaults
    "Kafka message": kafka,
    "SMN message": smn,
    "timer user_event": timer,
    "EventGrid data (text)": eventgrid,
}
VARIANTS = {
    "padded": _b64({"project_id": B}),
    "unpadded": _b64({"project_id": B, "x": "ab"}).rstrip("="),
    "URL-safe": _b64({"project_id": B, "k": "?>?>"}, base64.urlsafe_b64encode),
    "MIME": _b64({"project_id": B, "pad": "x" * 80}, base64.encodebytes),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("carrier", list(BASE64_B))
def test_a_base64_message_naming_b_never_cleans_a(kps, invoke, carrier, variant):
    """Issue 15.2: the dry-run scan decoded base64, the reader did not: a base64 message naming B cleaned A."""
    assert_refused(invoke(BASE64_B[carrier](VARIANTS[variant])), kps)


def test_eventgrid_data_base64_is_decoded_once_and_read(kps, invoke):
    event = eventgrid(None)
    del event["data"]
    event["data_base64"] = _b64({"project_id": B})
    run = invoke(event)
    assert deletes(kps) == [B_TASKS]
    assert [r["project_id"] for r in run.payload["results"]] == [B]


NEAR_KEYS = {
    "a typo": ({"project": B}, "project_id"),
    "a space": ({"project id": B}, "project_id"),
    "a trailing space": ({"project_id ": B}, "project_id"),
    "a leading space": ({" project_id": B}, "project_id"),
    "a hyphen": ({"project-id": B}, "project_id"),
    "a dot": ({"project.id": B}, "project_id"),
    "Cyrillic o": ({"pr\u043eject_id": B}, "project_id"),
    "Greek rho": ({"p\u03c1oject_id": B}, "project_id"),
    "DRY_RUN": ({"project_id": B, "DRY_RUN": True}, "dry_run"),
    "zero-width space": ({"project_id": B, "dry_run\u200b": True}, "dry_run"),
    "dry-run": ({"project_id": B, "dry-run": True}, "dry_run"),
    "dry run": ({"project_id": B, "dry run": True}, "dry_run"),
    "dryRun": ({"project_id": B, "dryRun": True}, "dry_run"),
    "projectId": ({"projectId": B}, "project_id"),
    "project_id with a BOM": ({"\ufeffproject_id": B}, "project_id"),
    "full-width": ({"\uff50\uff52\uff4f\uff4a\uff45\uff43\uff54\uff3f\uff49\uff44": B}, "project_id"),
    "Region": ({"project_id": B, "Region": "eu-west-101"}, "region"),
    "Targets": ({"Targets": [{"project_id": B}]}, "targets"),
    "sweep beside Project_id": ({"targets": "all", "Project_id": B}, "project_id"),
    "in a targets entry": ({"targets": [{"Project_ID": B, "region": REGION}]}, "project_id"),
    "region in a targets entry": ({"targets": [{"project_id": B, "REGION": "eu-west-101"}]}, "region"),
    "in a Kafka message": (kafka(json.dumps({"project_id": B, "DRY_RUN": True})), "dry_run"),
    "in an SMN message": (smn(json.dumps({"projectId": B})), "project_id"),
    "in a query string": (apig_event(None, query={"project_id": B, "DRY_RUN": "true"}), "dry_run"),
    "in path parameters": (apig_event(None, path={"Project_Id": B}), "project_id"),
    "a query key as a structure": (apig_event(None, query={"project_id[0]": B}), "project_id"),
}


@pytest.mark.parametrize(("event", "meant"), list(NEAR_KEYS.values()), ids=list(NEAR_KEYS))
def test_a_key_that_is_not_exactly_a_field_is_refused_with_a_suggestion(kps, invoke, settings, event, meant):
    """Issue 15.1: {"project": B}, "project id", "project_id ", a Cyrillic o... cleaned the configured A."""
    settings["KPS_IAM_ENDPOINT"] = kps.url
    assert_refused(invoke(event), kps, f"did you mean {meant}?")


@pytest.mark.parametrize("key", ["Project_id", "DRY_RUN", "projectId", "region\u200b", "project_id"])
def test_a_trigger_event_with_a_request_key_at_its_top_level_is_refused(kps, invoke, key):
    assert_refused(invoke({**load_event("timer.json"), key: B}), kps, "unknown keys")


def test_kps_targets_all_with_a_stray_key_does_not_sweep(kps, invoke, settings):
    """Issue 15.1: with KPS_TARGETS=all, {"project": B} swept every project."""
    settings.update(KPS_TARGETS="all", KPS_IAM_ENDPOINT=kps.url)
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    assert_refused(invoke({"project": B}), kps, "did you mean project_id?")


UNKNOWN_REAL_EVENTS = {  # real FunctionGraph events this function has no reader for, naming B somewhere
    "DIS": {"ShardID": "shardId-0", "Message": {"records": [{"data": _b64({"project_id": B})}]}, "Tag": "latest"},
    "DDS": {"records": [{"event_source": "dds", "dds": {"full_document": json.dumps({"project_id": B})}}]},
    "RabbitMQ-like": {"trigger_type": "RABBITMQ", "records": [{"messages": [json.dumps({"project_id": B})]}]},
    "IoTDA-like": {"resource": "device.message", "event": "report", "notify_data": {"body": {"project_id": B}}},
    "OBS": {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": B}}}]},
    "LTS": {"lts": {"data": _b64({"project_id": B})}},
}


@pytest.mark.parametrize("event", list(UNKNOWN_REAL_EVENTS.values()), ids=list(UNKNOWN_REAL_EVENTS))
def test_a_real_event_with_no_reader_is_refused_not_read_as_the_defaults(kps, invoke, event):
    assert_refused(invoke(event), kps)


def test_the_eventgrid_wrapper_and_the_otc_smn_shape_are_read(kps, invoke):
    """Issue 15.1: both were taken for a direct call with the defaults and cleaned A."""
    cloudevent = {k: v for k, v in load_event("eventgrid.json").items() if k != "data"}
    invoke({"events": [{**cloudevent, "data": {"project_id": B}}]})
    invoke({"record": smn(json.dumps({"project_id": B}))["record"]})
    assert deletes(kps) == [B_TASKS, B_TASKS]


@pytest.mark.parametrize("region", [None, "absent"])
def test_a_targets_entry_with_region_null_takes_the_events_region(kps, invoke, region):
    """Issue 15.7: {"region": null} in an entry went to KPS_REGION instead of the event's region."""
    entry = {"project_id": B} if region == "absent" else {"project_id": B, "region": None}
    run = invoke({"region": "ap-southeast-1", "targets": [entry]})
    assert [r["region"] for r in run.payload["results"]] == ["ap-southeast-1"]


def test_a_workflow_context_is_accepted_and_never_read(kps, invoke):
    run = invoke({"project_id": B, "context": {"run": 7, "dry": True, "project": PROJECT}})
    assert run.payload["dry_run"] is False
    assert deletes(kps) == [B_TASKS]


@pytest.mark.parametrize("meant", [{"dry_run": True}, {"project_id": B}, {"run": 1, "targets": "all"}])
def test_a_context_carrying_request_fields_is_refused(kps, invoke, meant):
    """{"context": {"dry_run": true}} deleted and {"context": {"project_id": B}} cleaned A: nothing reads
    a context, so a request field in it is refused rather than silently ignored."""
    assert_refused(invoke({"context": meant}), kps, "context never carries request fields")


NAMES_NOTHING = ["", "{}", "null", '{"dry_run": null}', '{"context": {"run": 1}}', '{"dry_run": true}']
HOLDS_NOTHING = ("", "null")  # a pipeline's message that decodes to nothing: refused as such, before the batch rule


def _batch_refusal(blank: str, otherwise: str) -> str:
    return "holds nothing" if blank in HOLDS_NOTHING else otherwise


@pytest.mark.parametrize("blank", NAMES_NOTHING)
@pytest.mark.parametrize("first", [True, False])
def test_a_batch_naming_b_beside_a_message_naming_nothing_is_refused(kps, invoke, blank, first):
    """Red team 15r: a Kafka batch with one message naming B and one naming nothing cleaned B and the
    configured A (the defaults of a lone empty event, applied per message)."""
    kps.seed(B, 1)
    named = json.dumps({"project_id": B})
    messages = (named, blank) if first else (blank, named)
    words = _batch_refusal(blank, f"message {1 if first else 0} of the batch names no project_id")
    assert_refused(invoke(kafka(*messages)), kps, words)


@pytest.mark.parametrize("blank", NAMES_NOTHING[:4])
def test_a_message_naming_nothing_in_a_batch_never_adds_a_sweep(kps, invoke, settings, blank):
    """Red team 15r: with KPS_TARGETS=all the blank message swept every project IAM lists, A and B."""
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}, {"id": B, "name": REGION}])
    settings.update(KPS_TARGETS="all", KPS_IAM_ENDPOINT=kps.url)
    named = {"targets": [{"project_id": B}]}
    for event in (kafka(json.dumps(named), blank), eventgrid_list({"data": named}, {"data": blank})):
        assert_refused(invoke(event), kps, _batch_refusal(blank, "every message names its targets, or none does"))


def test_a_batch_of_messages_asking_for_the_defaults_means_them_once(kps, invoke):
    invoke(kafka("{}", "{}", '{"dry_run": null}'))
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]


def test_a_batch_where_every_message_names_its_targets_is_read(kps, invoke):
    invoke(kafka(json.dumps({"project_id": B}), json.dumps({"targets": [{"project_id": PROJECT}]})))
    assert sorted(deletes(kps)) == sorted([B_TASKS, f"/v3/{PROJECT}/failed-tasks"])


def test_a_region_without_a_project_is_refused(kps, invoke):
    """A project ID belongs to one region: the default project "in another region" is never meant, so a
    region alone (a direct request, a message, a query string) names nothing and is refused (with
    KPS_TARGETS too: below)."""
    for event in (
        {"region": "ap-southeast-1"},
        kafka(json.dumps({"region": REGION})),
        apig_event(query={"region": REGION}),
    ):
        assert_refused(invoke(event), kps, "region without project_id or targets names no project")


CLOUDEVENT_NOTHING = {
    "data-absent": {},
    "data-null": {"data": None},
    "data-null-text": {"data": "null"},
    "data-null-text-padded": {"data": " null "},
    "data-empty-text": {"data": ""},
    "data-json-empty-string": {"data": '""'},
    "data_base64-empty": {"data_base64": ""},
    "data_base64-null": {"data_base64": base64.b64encode(b"null").decode()},
}


@pytest.mark.parametrize("data", list(CLOUDEVENT_NOTHING.values()), ids=list(CLOUDEVENT_NOTHING))
def test_a_cloudevent_whose_data_holds_nothing_is_refused_never_the_defaults(kps, invoke, settings, data):
    """Red teams 15r and 15rb: a CloudEvent with no data, or data that decodes to nothing (JSON text ``null``,
    empty text, empty or ``null`` base64), names nothing (like OBS, LTS, CTS), yet cleaned A, and with
    KPS_TARGETS=all swept every project. Decoded first, then refused: only ``data: {}`` means the defaults."""
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    settings.update(KPS_TARGETS="all", KPS_IAM_ENDPOINT=kps.url)
    event = {**eventgrid({}), **data}
    if "data" not in data:
        del event["data"]
    assert_refused(invoke(event), kps, "data holds nothing")
    assert_refused(invoke({"events": [event]}), kps, "data holds nothing")


PIPELINE_NOTHING = ["", "  ", "null", " null ", '""']


@pytest.mark.parametrize("blank", PIPELINE_NOTHING)
def test_a_pipeline_message_holding_nothing_is_refused_never_a_sweep(kps, invoke, settings, blank):
    """The same rule for every pipeline: a Kafka / RocketMQ record or an SMN message that decodes to nothing
    (a tombstone, a heartbeat, a producer's bug) is no request; read as the defaults it swept every project."""
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    settings.update(KPS_TARGETS="all", KPS_IAM_ENDPOINT=kps.url)
    rocketmq = load_event("rocketmq.json")
    rocketmq["records"][0]["messages"] = [blank]
    for event in (kafka(blank), smn(blank), rocketmq):
        assert_refused(invoke(event), kps, "message holds nothing")


@pytest.mark.parametrize("blank", ["", "null", " null "])
def test_nothing_from_a_sender_addressing_the_function_means_the_defaults(kps, invoke, blank):
    """A timer's user_event and an HTTP body are written for this function: there nothing means the defaults,
    as a direct call's ``null`` / ``{}`` / ``""`` does; ``{}`` does everywhere."""
    runs = [invoke(timer(blank)), invoke(apig_event(blank)), invoke(kafka("{}")), invoke(smn("{}"))]
    assert [run.payload["status"] for run in runs] == ["succeeded"] * 4
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"] * 4


def test_a_number_too_long_for_any_field_is_refused_for_that(kps, invoke):
    """A 5,000-digit number was refused as "not JSON text" (Python 3.11 stops at 4,300 digits)."""
    message = json.dumps({"project_id": B}).replace("}", ', "dry_run": ' + "9" * 5000 + "}")
    assert_refused(invoke(kafka(message)), kps, "has 5000 digits")


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
    assert_refused(invoke(event), kps, "region without project_id or targets")


def test_a_region_with_a_project_still_overrides_kps_targets(kps, invoke, settings):
    settings["KPS_TARGETS"] = f"{REGION}:{PROJECT}"
    run = invoke({"project_id": B, "region": REGION})
    assert deletes(kps) == [B_TASKS]
    assert run.payload["status"] == "succeeded"
