"""Recognises each FunctionGraph trigger by its event's full shape and pulls out the request fields
it carries.

The result is a list of field sets (one per message: Kafka and SMN deliver batches); an empty
field set means "use the configured defaults". Nothing here decides where a request goes.

The shapes (``SHAPES``) are data, taken from the example events Huawei publishes for each trigger
(FunctionGraph developer guide, "Supported Event Sources", and the same samples in the FunctionGraph
runtimes' event types, e.g. github.com/opentelekomcloud-community/otc-functiongraph-go-runtime,
``go-runtime/events/*``; for EventGrid, the EG user guide's "Events" page, usermanual-eg/eg-ug-015.html, and
CloudEvents 1.0: id, specversion, source, type required). An event is a trigger's
only when it has every key of that shape with the right type, so a stray key never turns a direct call
into a trigger; an event that both matches a shape and names request fields at its top level is refused
as ambiguous, never guessed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Callable, NamedTuple, Union

from .errors import Rejected

Fields = dict  # a request's fields as the caller sent them, not yet validated
REQUEST_FIELDS = frozenset({"project_id", "region", "dry_run", "targets"})
MAX_VALUES = 100_000  # values an event may hold, nested JSON text included, to be read at all
MAX_NESTING = 64
_TRUE = frozenset({"true", "1", "yes", "on"})
_BASE64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")

# A check: a type (or tuple of types) the value must have; a string the value must equal; a dict, a
# nested shape; a one-item list, a non-empty list whose every item passes that check.
Check = Union[type, tuple, str, dict, list]


class Shape(NamedTuple):
    trigger: str
    required: dict[str, Check]
    optional: frozenset[str] = frozenset()  # other keys of the real event: not request fields here


def _is(value: Any, check: Check) -> bool:
    if isinstance(check, str):
        return value == check
    if isinstance(check, dict):
        return isinstance(value, dict) and all(k in value and _is(value[k], c) for k, c in check.items())
    if isinstance(check, list):
        return isinstance(value, list) and bool(value) and all(_is(item, check[0]) for item in value)
    types = check if isinstance(check, tuple) else (check,)
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


_TIMER = Shape("timer", {"version": str, "time": str, "trigger_type": "TIMER", "trigger_name": str, "user_event": str})
_APIG = Shape(  # shared and dedicated gateways alike
    "apig",
    {"requestContext": dict, "httpMethod": str, "headers": dict, "path": str},
    frozenset({"body", "queryStringParameters", "pathParameters", "isBase64Encoded"}),
)
_KAFKA_METADATA = {"event_version": str, "event_time": (int, str), "trigger_type": "KAFKA", "region": str}
SHAPES: tuple[Shape, ...] = (
    _TIMER,
    _APIG,
    Shape(  # CloudEvents 1.0: the four required attributes; the rest (data, subject, time...) optional
        "eventgrid",
        {"specversion": str, "id": str, "source": str, "type": str},
        frozenset({"data", "subject", "time", "datacontenttype", "dataschema"}),
    ),
    Shape(
        "smn",
        {
            "record": [{"event_source": "smn", "smn": {"message": str, "message_id": str, "topic_urn": str}}],
            "functionname": str,
            "requestId": str,
            "timestamp": str,
        },
    ),
    Shape("kafka", {**_KAFKA_METADATA, "instance_id": str, "records": [{"messages": list, "topic_id": str}]}),
    Shape(  # DMS for Kafka's older shape: one topic's messages at the top level
        "kafka", {"messages": list, "topic_id": str}, frozenset({*_KAFKA_METADATA, "instance_id"})
    ),
    Shape("obs", {"Records": [{"eventName": str, "s3": dict}]}),
    Shape("lts", {"lts": {"data": str}}),
    Shape("cts", {"cts": {"trace_id": str, "trace_name": str, "service_type": str, "resource_type": str}}),
)


class TriggerEvent(NamedTuple):
    trigger: str
    field_sets: list[Fields]
    correlation_id: str | None = None
    is_http: bool = False
    error: Rejected | None = None
    http_method: str = ""  # API Gateway only, upper-cased
    dry_run_anywhere: bool = False  # some part of the event, at any depth, asks for a dry run


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


def _read_timer(event: dict) -> TriggerEvent:
    return TriggerEvent("timer", [_object_or_defaults(event["user_event"])])


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
    return TriggerEvent(
        "apig", [fields], _text(event["requestContext"].get("requestId")), True, http_method=_http_method(event)
    )


def _http_method(event: dict) -> str:
    return str(event.get("httpMethod") or "").upper()[:16]


def _read_eventgrid(event: dict) -> TriggerEvent:
    return TriggerEvent("eventgrid", [_object_or_defaults(event.get("data"))], _text(event["id"]))


def _read_smn(event: dict) -> TriggerEvent:
    messages = [record["smn"] for record in event["record"]]
    return TriggerEvent("smn", [_object_or_defaults(m["message"]) for m in messages], _text(messages[0]["message_id"]))


def _read_kafka(event: dict) -> TriggerEvent:
    batches = [r["messages"] for r in event["records"]] if "records" in event else [event["messages"]]
    return TriggerEvent("kafka", [_object_or_defaults(m) for batch in batches for m in batch] or [{}])


_READERS: dict[str, Callable[[dict], TriggerEvent]] = {
    "timer": _read_timer,
    "apig": _read_apig,
    "eventgrid": _read_eventgrid,
    "smn": _read_smn,
    "kafka": _read_kafka,
}


def _matching(event: dict) -> list[Shape]:
    return [shape for shape in SHAPES if _is(event, shape.required)]


def _is_apig(event: Any) -> bool:
    return isinstance(event, dict) and _is(event, _APIG.required)


def read_event(event: Any) -> TriggerEvent:
    """Classifies the event and reads its fields. Never raises: a bad event comes back with ``error``
    set, and still names its trigger, so that an API Gateway caller gets an API Gateway answer."""
    try:
        return _read(event)
    except Rejected as rejection:
        if _is_apig(event):  # the method still counts: a PUT with a bad body is a 405, not a 400
            return TriggerEvent("apig", [], is_http=True, error=rejection, http_method=_http_method(event))
        return TriggerEvent("direct", [], error=rejection)


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
    dry_run_anywhere = _asks_for_dry_run(event)
    shapes = _matching(event)
    if len(shapes) > 1:
        names = " and ".join(sorted({f"{s.trigger} ({', '.join(s.required)})" for s in shapes}))
        raise _invalid(f"ambiguous event: it has the shapes of {names}")
    if not shapes:
        return TriggerEvent("direct", [event], dry_run_anywhere=dry_run_anywhere)
    [shape] = shapes
    stray = sorted(REQUEST_FIELDS.intersection(event) - set(shape.required) - shape.optional)
    if stray:
        raise _invalid(
            f"ambiguous event: it has the shape of a {shape.trigger} event and request fields at its top level"
            f" ({', '.join(stray)}); send the fields inside the trigger's message, or send them alone"
        )
    reader = _READERS.get(shape.trigger)  # OBS, LTS, CTS carry no project information: the defaults
    incoming = reader(event) if reader else TriggerEvent(shape.trigger, [{}])
    return incoming._replace(dry_run_anywhere=dry_run_anywhere)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return value is True or (type(value) is int and value == 1)


def _embedded(text: str) -> Any:
    """JSON text inside a string (a message, a body), also base64-encoded; None if there is none."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        if len(text) % 4 or not _BASE64.fullmatch(text):
            return None
        try:
            stripped = base64.b64decode(text, validate=True).decode("utf-8").lstrip()
        except (binascii.Error, ValueError):
            return None
        if not stripped.startswith(("{", "[")):
            return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def _asks_for_dry_run(event: dict) -> bool:
    """Whether any part of the event, at any depth and inside any JSON text, asks for a dry run: the
    safe side wins wherever the request came from, so no reading of the event can lose it. An event
    too large or too deep to look through is refused."""
    stack: list[tuple[Any, int]] = [(event, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES or depth > MAX_NESTING:
            raise _invalid(f"the event holds more than {MAX_VALUES} values or {MAX_NESTING} levels of nesting")
        if isinstance(value, dict):
            if _truthy(value.get("dry_run")):
                return True
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and len(value) >= 2:
            inner = _embedded(value)
            if inner is not None:
                stack.append((inner, depth + 1))
    return False


def _json_type(value: Any) -> str:
    names: dict[type, str] = {list: "an array", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
