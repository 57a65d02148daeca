"""`python -m devtools event TRIGGER`: an event of that trigger's real shape, like `sam local generate-event`.

The shapes are FunctionGraph's (its console test-event templates and Huawei's trigger docs), as the
handler reads them: the request fields travel where each trigger carries a message.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any, Callable

from .demo import DEMO_PROJECT, DEMO_REGION
from .serve import apig_event

Fields = dict[str, Any]
# The function refuses these three always (docs/triggers.md): their events carry no request, so they exist here
# to show that refusal (make invoke answers InvalidEvent), never to clean.
REFUSED = ("cts", "lts", "obs")
MAX_TARGETS = 100
METHODS = ("GET", "POST", "DELETE")


class EventError(ValueError):
    """What was given cannot make an event the function would read as meant: an error, not an event."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _text(fields: Fields) -> str:
    """A message's JSON text; ``{}`` for the defaults (a pipeline's empty message is refused: docs/triggers.md)."""
    return json.dumps(fields)


def _timer(fields: Fields) -> dict[str, Any]:
    """``user_event`` is always a string: the trigger's "additional information"."""
    return {
        "version": "v1.0",
        "time": _now(),
        "trigger_type": "TIMER",
        "trigger_name": "kps-nightly-cleanup",
        "user_event": _text(fields),
    }


def _query_value(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if name == "dry_run":
        return "true" if value else "false"
    if name == "targets" and value != "all":
        raise EventError("a list of targets travels in a body: use --method POST or DELETE")
    return str(value)


def _apig(fields: Fields, method: str = "POST", query: Fields | None = None) -> dict[str, Any]:
    """GET carries the fields as its query string (a GET body is not read); POST and DELETE as the JSON body."""
    query = dict(query or {})
    if method == "GET":
        query, fields = {**fields, **query}, {}
    body = json.dumps(fields).encode() if fields else b""
    headers = {"content-type": "application/json", "host": "example.apic.cn-north-4.huaweicloudapis.com"}
    strings = {name: _query_value(name, value) for name, value in query.items()}
    return apig_event(method, headers=headers, body=body, query=strings)


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


def _kafka(fields: Fields, trigger_type: str = "KAFKA") -> dict[str, Any]:
    """DMS for Kafka's shape; RocketMQ's is the same but for its ``trigger_type``."""
    return {
        "event_version": "v1.0",
        "event_time": int(dt.datetime.now(dt.timezone.utc).timestamp()),
        "trigger_type": trigger_type,
        "region": DEMO_REGION,
        "instance_id": str(uuid.uuid4()),
        "records": [{"messages": [_text(fields)], "topic_id": "kps-cleanup"}],
    }


def _obs(fields: Fields) -> dict[str, Any]:
    """An OBS notification: it carries no request, so the function refuses it (REFUSED)."""
    _no_fields("obs", fields)
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


def _no_fields(trigger: str, fields: Fields) -> None:
    if fields:
        raise EventError(f"{trigger.upper()} events carry no request fields (and the function refuses them); drop them")


def _cts(fields: Fields) -> dict[str, Any]:
    """A CTS trace notification, like the sample in events/cts.json: no request, so the function refuses it."""
    _no_fields("cts", fields)
    now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    return {
        "cts": {
            "time": now,
            "user": {
                "name": "ops-admin",
                "id": uuid.uuid4().hex,
                "domain": {"name": "example", "id": uuid.uuid4().hex},
            },
            "request": {},
            "response": {},
            "code": 200,
            "service_type": "KPS",
            "resource_type": "keypair",
            "resource_name": "KeyPair-0",
            "resource_id": "KeyPair-0",
            "trace_name": "associateKeypair",
            "trace_type": "ConsoleAction",
            "record_time": now,
            "trace_id": str(uuid.uuid4()),
            "trace_status": "normal",
        }
    }


def _lts(fields: Fields) -> dict[str, Any]:
    """An LTS subscription (``data`` is base64 of the logs): no request, so the function refuses it."""
    _no_fields("lts", fields)
    logs = json.dumps({"logs": [{"message": "kps failed task"}]}, separators=(",", ":")).encode()
    return {"lts": {"data": base64.b64encode(logs).decode("ascii")}}


def _direct(fields: Fields) -> dict[str, Any]:
    """A direct invocation or a workflow step: the fields themselves."""
    return dict(fields)


GENERATORS: dict[str, Callable[[Fields], dict[str, Any]]] = {
    "timer": _timer,
    "apig": _apig,
    "eventgrid": _eventgrid,
    "smn": _smn,
    "kafka": _kafka,
    "rocketmq": lambda fields: _kafka(fields, "ROCKETMQ"),
    "obs": _obs,
    "cts": _cts,
    "lts": _lts,
    "direct": _direct,
}


def _as_event_error(call: Callable[[], Any]) -> Any:
    """The function's own rules, their refusal as a one-line error (imported late: serve's worker picks the tree)."""
    from function.errors import Rejected

    try:
        return call()
    except Rejected as refused:
        raise EventError(refused.message) from None


def validate(fields: Fields) -> Fields:
    """The fields as the function's request model reads them; anything it refuses is an error."""
    from function.triggers import read_fields

    return _as_event_error(lambda: read_fields(fields, "the request fields"))


def _function_reads(event: Any) -> None:
    """The generated event read by the function itself (the trigger, the union of body / query / path, the
    targets against demo settings, GET's dry run): an event it would refuse is never printed."""
    from function.cleaner import _dry_run
    from function.settings import SettingSource, load_settings
    from function.targets import resolve_targets
    from function.triggers import read_event

    incoming = read_event(json.loads(json.dumps(event)))
    if incoming.error is not None:
        raise EventError(incoming.error.message)
    settings = load_settings(SettingSource(None, {"KPS_REGION": DEMO_REGION, "KPS_PROJECT_ID": DEMO_PROJECT}))
    _as_event_error(lambda: (resolve_targets(incoming.field_sets, settings), _dry_run(incoming, settings)))


def parse_targets(text: str) -> str | list[dict[str, str]]:
    """``all``, or ``PROJECT[:REGION],...`` (counted before anything is built)."""
    if text.strip().lower() == "all":
        return "all"
    if text.count(",") >= MAX_TARGETS:
        raise EventError(f"--targets names more than {MAX_TARGETS} targets")
    targets = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        project_id, _, region = entry.partition(":")
        targets.append({"project_id": project_id, **({"region": region} if region else {})})
    if not targets:
        raise EventError("--targets needs `all` or PROJECT[:REGION],...")
    return targets


def _body_fields(body: str) -> Fields:
    """JSON text as the function reads it: bounded, a key given twice refused."""
    from function.triggers import _json_text

    parsed = _as_event_error(lambda: _json_text(body, "--body"))
    if not isinstance(parsed, dict):
        raise EventError("--body is a JSON object of request fields")
    return parsed


def request_fields(
    project_id: str | None = None,
    region: str | None = None,
    dry_run: bool = False,
    targets: str | None = None,
    *,
    body: str | None = None,
    select: str | None = None,
) -> Fields:
    """The fields from the options and ``--body``, validated; a field given both ways is an error."""
    fields: Fields = {}
    if targets is not None:
        fields["targets"] = parse_targets(targets)
    if project_id is not None:
        fields["project_id"] = project_id
    if region is not None:
        fields["region"] = region
    if dry_run:
        fields["dry_run"] = True
    if select is not None:
        fields["select"] = _body_fields(select)
    if body is not None:
        extra = _body_fields(body)
        twice = sorted(set(extra) & set(fields))
        if twice:
            raise EventError(f"given twice, as an option and in --body: {', '.join(twice)}")
        fields.update(extra)
    validate(fields)
    return fields


def _query_fields(pairs: list[str]) -> dict[str, str]:
    query: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise EventError(f"--query takes FIELD=VALUE, got {pair[:40]!r}")
        if name in query:
            raise EventError(f"--query {name} given twice: a repeated query key is ambiguous")
        query[name] = value
    return query


def generate(
    trigger: str, fields: Fields, *, method: str | None = None, query: list[str] | None = None
) -> dict[str, Any]:
    """An event of ``trigger``'s shape carrying exactly ``fields``, read by the function before it is returned:
    an event the function would refuse is an error instead (cts, lts and obs excepted: see REFUSED)."""
    validate(fields)
    if trigger != "apig":
        if method is not None or query:
            raise EventError("--method and --query are API Gateway's: use the apig trigger")
        event = GENERATORS[trigger](fields)
        if trigger not in REFUSED:
            _function_reads(event)
        return event
    verb = "POST" if method is None else method.upper()
    if verb not in METHODS:
        raise EventError(f"--method is one of {', '.join(METHODS)} (the function refuses others 405)")
    queried = _query_fields(query or [])
    twice = sorted(set(queried) & set(fields))
    if twice:
        raise EventError(f"given twice, in the query and as fields: {', '.join(twice)}")
    event = _apig(fields, verb, queried)
    _function_reads(event)
    return event
