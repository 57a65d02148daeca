"""`python -m devtools event TRIGGER`: an event of that trigger's real shape, like `sam local generate-event`.

The shapes are FunctionGraph's (its console test-event templates and Huawei's trigger docs), as the
handler reads them: the request fields travel where each trigger carries a message.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Callable

from .demo import DEMO_PROJECT, DEMO_REGION
from .serve import apig_event

Fields = dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _text(fields: Fields) -> str:
    return json.dumps(fields) if fields else ""


def _timer(fields: Fields) -> dict[str, Any]:
    """``user_event`` is always a string: the trigger's "additional information"."""
    return {
        "version": "v1.0",
        "time": _now(),
        "trigger_type": "TIMER",
        "trigger_name": "kps-nightly-cleanup",
        "user_event": _text(fields),
    }


def _apig(fields: Fields) -> dict[str, Any]:
    body = json.dumps(fields).encode() if fields else b""
    headers = {"content-type": "application/json", "host": "example.apic.cn-north-4.huaweicloudapis.com"}
    return apig_event("POST", headers=headers, body=body)


def _eventgrid(fields: Fields) -> dict[str, Any]:
    """One CloudEvents 1.0 object."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "ops.cleanup",
        "type": "kps.failed-tasks.clean",
        "subject": f"projects/{fields.get('project_id', DEMO_PROJECT)}",
        "time": _now(),
        "datacontenttype": "application/json",
        "data": fields,
    }


def _smn(fields: Fields) -> dict[str, Any]:
    topic = f"urn:smn:{DEMO_REGION}:{DEMO_PROJECT}:kps-cleanup"
    return {
        "record": [
            {
                "event_version": "1.0",
                "event_source": "smn",
                "event_subscription_urn": f"{topic}:{uuid.uuid4().hex}",
                "smn": {
                    "topic_urn": topic,
                    "timestamp": _now(),
                    "message_attributes": None,
                    "message": _text(fields),
                    "type": "notification",
                    "message_id": uuid.uuid4().hex,
                    "subject": "clean failed key pair tasks",
                },
            }
        ],
        "functionname": "kps-failed-task-cleaner",
        "requestId": str(uuid.uuid4()),
        "timestamp": _now(),
    }


def _kafka(fields: Fields) -> dict[str, Any]:
    return {
        "event_version": "v1.0",
        "event_time": int(dt.datetime.now(dt.timezone.utc).timestamp()),
        "trigger_type": "KAFKA",
        "region": DEMO_REGION,
        "instance_id": str(uuid.uuid4()),
        "records": [{"messages": [_text(fields)], "topic_id": "kps-cleanup"}],
    }


def _obs(fields: Fields) -> dict[str, Any]:
    """An OBS notification carries no request fields: the function runs with its settings."""
    if fields:
        raise ValueError("an OBS event carries no request fields (the function uses its settings); drop them")
    return {
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "aws:s3",
                "eventRegion": DEMO_REGION,
                "eventTime": _now(),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": "ops-triggers", "arn": "arn:aws:s3:::ops-triggers"},
                    "object": {"key": "kps/clean-now", "size": 0},
                },
            }
        ]
    }


def _direct(fields: Fields) -> dict[str, Any]:
    """A direct invocation or a workflow step: the fields themselves."""
    return dict(fields)


GENERATORS: dict[str, Callable[[Fields], dict[str, Any]]] = {
    "timer": _timer,
    "apig": _apig,
    "eventgrid": _eventgrid,
    "smn": _smn,
    "kafka": _kafka,
    "obs": _obs,
    "direct": _direct,
}


def parse_targets(text: str) -> str | list[dict[str, str]]:
    """``all``, or ``PROJECT[:REGION],...``."""
    if text.strip().lower() == "all":
        return "all"
    targets = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        project_id, _, region = entry.partition(":")
        targets.append({"project_id": project_id, **({"region": region} if region else {})})
    if not targets:
        raise ValueError("--targets needs `all` or PROJECT[:REGION],...")
    return targets


def request_fields(
    project_id: str | None = None, region: str | None = None, dry_run: bool = False, targets: str | None = None
) -> Fields:
    fields: Fields = {}
    if targets is not None:
        fields["targets"] = parse_targets(targets)
    if project_id is not None:
        fields["project_id"] = project_id
    if region is not None:
        fields["region"] = region
    if dry_run:
        fields["dry_run"] = True
    return fields


def generate(trigger: str, fields: Fields) -> dict[str, Any]:
    return GENERATORS[trigger](fields)
