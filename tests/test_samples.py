"""Issue 15.3: every published sample event (tests/samples/, sources in SOURCES.md) is recognised as its
trigger and read or refused as docs/triggers.md says; a read trigger's published shape, carrying a request
where that trigger carries its messages, is read exactly."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import OTHER_PROJECT, deletes

from function.triggers import read_event

SAMPLES = Path(__file__).parent / "samples"
# file -> the trigger it is recognised as. Read triggers refuse their published demo content (plain text, or
# JSON with keys that are no request fields); the others are refused as triggers that carry no request.
EXPECTED = {
    "otc-python/apig.json": "apig",
    "otc-python/apig-base64.json": "apig",
    "otc-python/apig-path-parameters.json": "apig",
    "otc-python/cts.json": "cts",
    "otc-python/cts-functiongraph.json": "cts",
    "otc-python/cts-ecs-unwrapped.json": "direct",
    "otc-python/cts-evs-unwrapped.json": "direct",
    "otc-python/dds.json": "dds",
    "otc-python/kafka.json": "kafka",
    "otc-python/kafka-opensource.json": "kafka",
    "otc-python/lts.json": "lts",
    "otc-python/obs.json": "obs",
    "otc-python/rocketmq.json": "rocketmq",
    "otc-python/smn.json": "smn",
    "otc-python/smn-two-records.json": "smn",
    "otc-python/timer.json": "timer",
    "otc-python/timer-text.json": "timer",
    "otc-go/apig.json": "apig",
    "otc-go/cts.json": "cts",
    "otc-go/dds.json": "dds",
    "otc-go/dis.json": "dis",
    "otc-go/kafka.json": "kafka",
    "otc-go/lts.json": "lts",
    "otc-go/obs.json": "obs",
    "otc-go/smn.json": "smn",
    "otc-go/timer.json": "timer",
    "huawei/dds.json": "dds",
    "huawei/dis.json": "dis",
    "huawei/gaussdb-mongo.json": "dds",
    "huawei/kafka.json": "kafka",
    "huawei/lts.json": "lts",
    "otc-java/apig.json": "apig",  # a plain-text body ("Hello OpenTelekomWorld!", base64): refused
    "otc-java/async-notification.json": "direct",  # an asynchronous invocation's result notification
    "otc-java/dds.json": "dds",
    "otc-java/kafka.json": "kafka",
    "otc-java/obs.json": "obs",
    "otc-java/rocketmq.json": "rocketmq",
    "otc-java/smn.json": "smn",  # OTC's shape: record alone
    "otc-java/timer.json": "timer",
    "otc-java/timer-2.json": "timer",
    "otc-csharp/apig.json": "apig",
    "otc-csharp/cts-functiongraph.json": "cts",
    "otc-csharp/cts-login.json": "cts",
    "otc-csharp/kafka.json": "kafka",
    "otc-csharp/smn.json": "smn",
}
REQUEST = {"project_id": OTHER_PROJECT, "dry_run": True}


def _apig(event: dict, text: str) -> None:
    event["body"] = base64.b64encode(text.encode()).decode() if event.get("isBase64Encoded", True) else text
    event["queryStringParameters"], event["pathParameters"] = {}, {}


def _smn(event: dict, text: str) -> None:
    for record in event["record"]:
        record["smn"]["message"] = text


def _mq(event: dict, text: str) -> None:
    for record in event["records"]:
        record["messages"] = [text] * len(record["messages"])


CARRY: dict[str, Callable[[dict, str], None]] = {  # puts a request where each read trigger carries messages
    "timer": lambda event, text: event.update(user_event=text),
    "apig": _apig,
    "smn": _smn,
    "kafka": _mq,
    "rocketmq": _mq,
}


def load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def test_every_sample_file_is_expected():
    assert sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_published_sample_is_recognised_and_its_demo_content_refused(kps, invoke, name):
    run = invoke(load(name))
    assert run.payload["trigger"] == EXPECTED[name]
    assert run.payload["status"] == "rejected"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []


@pytest.mark.parametrize("name", sorted(n for n, t in EXPECTED.items() if t in CARRY))
def test_a_published_shape_carrying_a_request_is_read_exactly(kps, invoke, name):
    event = load(name)
    CARRY[EXPECTED[name]](event, json.dumps(REQUEST))
    incoming = read_event(event)
    assert incoming.error is None, incoming.error
    assert incoming.trigger == EXPECTED[name]
    assert incoming.field_sets and all(fields == REQUEST for fields in incoming.field_sets)
    run = invoke(event)
    assert run.payload["status"] == "succeeded", run.payload
    assert [r["project_id"] for r in run.payload["results"]] == [OTHER_PROJECT]
    assert deletes(kps) == []


CLOUDEVENT = {
    "specversion": "1.0",
    "id": "6f2d1c0b-9a8e-4d7c-b6a5-4f3e2d1c0b9a",
    "source": "ops.cleanup",
    "type": "kps.failed-tasks.clean",
    "subject": "kps",
    "time": "2026-11-29T03:00:00Z",
    "datacontenttype": "application/json",
}
CLOUDEVENTS = {
    "data, an object": {**CLOUDEVENT, "data": REQUEST},
    "data, JSON text": {**CLOUDEVENT, "data": json.dumps(REQUEST)},
    "data_base64": {**CLOUDEVENT, "data_base64": base64.b64encode(json.dumps(REQUEST).encode()).decode()},
    "the events wrapper": {"events": [{**CLOUDEVENT, "data": REQUEST}, {**CLOUDEVENT, "id": "2", "data": REQUEST}]},
}


@pytest.mark.parametrize("event", list(CLOUDEVENTS.values()), ids=list(CLOUDEVENTS))
def test_eventgrid_in_each_form_is_read_exactly(event):
    incoming = read_event(event)
    assert incoming.error is None, incoming.error
    assert incoming.trigger == "eventgrid"
    assert incoming.field_sets and all(fields == REQUEST for fields in incoming.field_sets)
