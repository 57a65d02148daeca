"""Recognises each FunctionGraph trigger's event shape and pulls out the request fields it carries.

The result is a list of field sets (one per message: Kafka and SMN deliver batches); an empty
field set means "use the configured defaults". Nothing here decides where a request goes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable, NamedTuple

from .errors import Rejected

Fields = dict  # a request's fields as the caller sent them, not yet validated
REQUEST_FIELDS = frozenset({"project_id", "region", "dry_run", "targets"})


class TriggerEvent(NamedTuple):
    trigger: str
    field_sets: list[Fields]
    correlation_id: str | None = None
    is_http: bool = False
    error: Rejected | None = None


def _invalid(message: str) -> Rejected:
    return Rejected("InvalidEvent", message)


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise _invalid(f"{what} is not valid JSON") from None


def _object_or_defaults(value: Any) -> Fields:
    """A message that is a JSON object carries fields; anything else means "use the defaults"."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_timer(event: dict) -> bool:
    return str(event.get("trigger_type", "")).upper() == "TIMER"


def _read_timer(event: dict) -> TriggerEvent:
    return TriggerEvent("timer", [_object_or_defaults(event.get("user_event"))])


def _is_apig(event: dict) -> bool:
    return isinstance(event.get("requestContext"), dict) and "httpMethod" in event


def _apig_body(event: dict) -> Fields:
    body = event.get("body")
    if body is None or body == "":
        return {}
    if not isinstance(body, str):
        raise _invalid("body must be a string")
    if event.get("isBase64Encoded", True) is not False:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _invalid("body is not base64-encoded UTF-8 text (isBase64Encoded is true)") from None
    if not body.strip():
        return {}
    parsed = _loads(body, "body")
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise _invalid("body must be a JSON object")
    return parsed


def _parameters(event: dict, key: str) -> Fields:
    value = event.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{key} must be an object")
    return value


def _structured_fields(query: Fields) -> list[str]:
    """Query keys such as ``project_id[0]``: a field sent as a structure a query string cannot carry.
    Ignored, they would leave the configured default project to be cleaned instead of the one meant."""
    return sorted(str(k)[:64] for k in query if str(k).split("[", 1)[0] in REQUEST_FIELDS and "[" in str(k))


def _read_apig(event: dict) -> TriggerEvent:
    """Body, then query string, then path parameters: the more specific source wins."""
    structured = _structured_fields(_parameters(event, "queryStringParameters"))
    if structured:
        raise _invalid(f"query parameters take plain values, got {', '.join(structured[:5])}")
    fields = {
        **_apig_body(event),
        **_parameters(event, "queryStringParameters"),
        **_parameters(event, "pathParameters"),
    }
    return TriggerEvent("apig", [fields], _text(event["requestContext"].get("requestId")), is_http=True)


def _is_eventgrid(event: dict) -> bool:
    return "specversion" in event


def _read_eventgrid(event: dict) -> TriggerEvent:
    return TriggerEvent("eventgrid", [_object_or_defaults(event.get("data"))], _text(event.get("id")))


def _smn_messages(event: dict) -> list[dict]:
    records = event.get("record")
    if not isinstance(records, list):
        return []
    return [r["smn"] for r in records if isinstance(r, dict) and isinstance(r.get("smn"), dict)]


def _is_smn(event: dict) -> bool:
    return bool(_smn_messages(event))


def _read_smn(event: dict) -> TriggerEvent:
    messages = _smn_messages(event)
    return TriggerEvent(
        "smn", [_object_or_defaults(m.get("message")) for m in messages], _text(messages[0].get("message_id"))
    )


def _kafka_messages(event: dict) -> list[Any] | None:
    records = event.get("records")
    if isinstance(records, list) and any(isinstance(r, dict) and "messages" in r for r in records):
        batches = [r.get("messages") for r in records if isinstance(r, dict)]
    elif isinstance(event.get("messages"), list):
        batches = [event["messages"]]  # the older shape: messages at the top level
    else:
        return None
    return [m for batch in batches if isinstance(batch, list) for m in batch]


def _is_kafka(event: dict) -> bool:
    return str(event.get("trigger_type", "")).upper() == "KAFKA" or _kafka_messages(event) is not None


def _read_kafka(event: dict) -> TriggerEvent:
    messages = _kafka_messages(event) or []
    return TriggerEvent("kafka", [_object_or_defaults(m) for m in messages] or [{}])


def _defaults(name: str) -> Callable[[dict], TriggerEvent]:
    return lambda event: TriggerEvent(name, [{}])


def _has_list(key: str) -> Callable[[dict], bool]:
    return lambda event: isinstance(event.get(key), list)


def _has_object(key: str) -> Callable[[dict], bool]:
    return lambda event: isinstance(event.get(key), dict)


# Order matters: the most specific shapes first. Triggers that carry no project information
# (OBS, LTS, CTS) run with the configured defaults.
_READERS: tuple[tuple[Callable[[dict], bool], Callable[[dict], TriggerEvent]], ...] = (
    (_is_timer, _read_timer),
    (_is_apig, _read_apig),
    (_is_eventgrid, _read_eventgrid),
    (_is_smn, _read_smn),
    (_is_kafka, _read_kafka),
    (_has_list("Records"), _defaults("obs")),
    (_has_object("lts"), _defaults("lts")),
    (_has_object("cts"), _defaults("cts")),
)


def read_event(event: Any) -> TriggerEvent:
    """Classifies the event and reads its fields. Never raises: a bad event comes back with ``error``
    set, and still names its trigger, so that an API Gateway caller gets an API Gateway answer."""
    try:
        return _read(event)
    except Rejected as rejection:
        trigger = "apig" if isinstance(event, dict) and _is_apig(event) else "direct"
        return TriggerEvent(trigger, [], is_http=trigger == "apig", error=rejection)


def _read(event: Any) -> TriggerEvent:
    if isinstance(event, (bytes, bytearray)):
        try:
            event = bytes(event).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("the event is not UTF-8 text") from None
    if isinstance(event, str):
        event = _loads(event, "the event") if event.strip() else None
    if event is None:
        return TriggerEvent("direct", [{}])
    if not isinstance(event, dict):
        raise _invalid(f"the event must be a JSON object, got {_json_type(event)}")
    for matches, read in _READERS:
        if matches(event):
            return read(event)
    return TriggerEvent("direct", [event])


def _json_type(value: Any) -> str:
    names: dict[type, str] = {list: "an array", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
