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
as ambiguous, never guessed. Likewise refused rather than read one way: a request field given twice in JSON
text, a key that resembles a field (``DRY_RUN``), a message meant as JSON that is no object, API Gateway's
keys without its shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from typing import Any, Callable, NamedTuple, Union

from .errors import Rejected
from .logs import shorten
from .selection import KEYS as SELECTION_KEYS

Fields = dict  # a request's fields as the caller sent them, not yet validated
REQUEST_FIELDS = frozenset({"project_id", "region", "dry_run", "targets", "select"})
MAX_VALUES = 100_000  # values an event may hold, nested JSON text included, to be read at all
MAX_NESTING = 64
_FALSE = frozenset({"false", "0", "no", "off"})
# Base64 as senders write it: standard or URL-safe alphabet, padded or not, MIME line breaks.
_BASE64 = re.compile(r"[A-Za-z0-9+/\-_\s]{8,}={0,2}\s*")
_URLSAFE = str.maketrans("-_", "+/")
_JSON_START = ("{", "[", '"')  # text that is meant as JSON, whether or not it parses

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


def normalised(key: str) -> str:
    """A key as a reader would take it: NFKC, without format characters (zero-width spaces, BOMs),
    case-folded, without ``-`` and ``_``: ``Dry-Run``, ``dryRun`` and ``dry_run\u200b`` all give ``dryrun``."""
    if key.isascii():
        return key.lower().replace("-", "").replace("_", "")
    text = "".join(c for c in unicodedata.normalize("NFKC", key) if unicodedata.category(c) != "Cf")
    return text.casefold().replace("-", "").replace("_", "")


_FIELD_NAMES = {normalised(name): name for name in REQUEST_FIELDS}


def look_alike(key: Any) -> str | None:
    """The request field that ``key`` resembles without being it (``DRY_RUN``, ``projectId``), if any:
    ignored, it would leave the default (a deletion, the configured project) in place of what was meant."""
    if not isinstance(key, str) or key in REQUEST_FIELDS:
        return None
    return _FIELD_NAMES.get(normalised(key))


def _is_field(key: Any) -> bool:
    return key in REQUEST_FIELDS or look_alike(key) is not None


def _shown_key(key: Any) -> str:
    return shorten(repr(key), 48)


def _unique(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook``: a request field given twice is refused; ``json`` would keep the last one,
    which need not be the one the sender's own reader (or a reviewer) takes."""
    built: dict = {}
    for key, value in pairs:
        if key in built and (_is_field(key) or key in SELECTION_KEYS):
            raise _invalid(f"the JSON text gives the key {_shown_key(key)} more than once")
        built[key] = value
    return built


def _stripped(text: str) -> str:
    """Without surrounding white space or a byte order mark (which ``json`` refuses)."""
    return text.strip().lstrip("\ufeff").strip()


def _loads(text: str, what: str) -> Any:
    """JSON text, strictly read; a JSON string that holds JSON text is read once more."""
    try:
        parsed = json.loads(text, object_pairs_hook=_unique)
        if isinstance(parsed, str) and _stripped(parsed).startswith(_JSON_START):
            parsed = json.loads(_stripped(parsed), object_pairs_hook=_unique)
    except (ValueError, RecursionError):
        raise _invalid(f"{what} is not valid JSON") from None
    return parsed


def _message_fields(value: Any, what: str) -> Fields:
    """A message's fields. An object, or JSON text of one, carries fields; plain text (a timer's
    "nightly cleanup") or nothing means "use the defaults". Text meant as JSON (starting with ``{``,
    ``[`` or ``"``) that is not an object is refused: read as the defaults, it would clean the
    configured project in place of the one it names."""
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    if not isinstance(value, str):
        raise _invalid(f"{what} must be an object or text, got {_json_type(value)}")
    text = _stripped(value)
    if not text.startswith(_JSON_START):
        return {}
    parsed = _loads(text, what)
    if not isinstance(parsed, dict):
        raise _invalid(f"{what} is JSON text but not an object, got {_json_type(parsed)}")
    return parsed


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_timer(event: dict) -> TriggerEvent:
    return TriggerEvent("timer", [_message_fields(event["user_event"], "user_event")])


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
    body = _stripped(body)
    if not body:
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
    return sorted(shorten(str(k), 64) for k in query if "[" in str(k) and _is_field(str(k).split("[", 1)[0]))


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
    return shorten(str(event.get("httpMethod") or "").upper(), 16)


def _read_eventgrid(event: dict) -> TriggerEvent:
    return TriggerEvent("eventgrid", [_message_fields(event.get("data"), "data")], _text(event["id"]))


def _read_smn(event: dict) -> TriggerEvent:
    messages = [record["smn"] for record in event["record"]]
    fields = [_message_fields(m["message"], "an SMN message") for m in messages]
    return TriggerEvent("smn", fields, _text(messages[0]["message_id"]))


def _read_kafka(event: dict) -> TriggerEvent:
    batches = [r["messages"] for r in event["records"]] if "records" in event else [event["messages"]]
    return TriggerEvent("kafka", [_message_fields(m, "a Kafka message") for batch in batches for m in batch] or [{}])


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
        text = _stripped(event)
        event = _loads(text, "the event") if text else None
    if event is None:
        return TriggerEvent("direct", [{}])
    if not isinstance(event, dict):
        raise _invalid(f"the event must be a JSON object, got {_json_type(event)}")
    dry_run_anywhere = _asks_for_dry_run(event)
    _refuse_partial_apig(event)
    shapes = _matching(event)
    if len(shapes) > 1:
        names = " and ".join(sorted({f"{s.trigger} ({', '.join(s.required)})" for s in shapes}))
        raise _invalid(f"ambiguous event: it has the shapes of {names}")
    if not shapes:
        _check_keys(event, "the event")
        return TriggerEvent("direct", [event], dry_run_anywhere=dry_run_anywhere)
    [shape] = shapes
    stray = sorted(_shown_key(k) for k in event if _is_field(k) and k not in shape.required and k not in shape.optional)
    if stray:
        raise _invalid(
            f"ambiguous event: it has the shape of a {shape.trigger} event and request fields at its top level"
            f" ({', '.join(stray[:5])}); send the fields inside the trigger's message, or send them alone"
        )
    reader = _READERS.get(shape.trigger)  # OBS, LTS, CTS carry no project information: the defaults
    incoming = reader(event) if reader else TriggerEvent(shape.trigger, [{}])
    for fields in incoming.field_sets:
        _check_keys(fields, "a message" if shape.trigger != "apig" else "the request")
    return incoming._replace(dry_run_anywhere=dry_run_anywhere)


def _refuse_partial_apig(event: dict) -> None:
    """API Gateway's own keys without its whole shape: a broken or forged HTTP request, never a
    direct call to be cleaned with the defaults."""
    if ("httpMethod" in event or "requestContext" in event) and not _is_apig(event):
        raise _invalid(
            "the event has API Gateway's keys (httpMethod, requestContext) but not its whole shape"
            f" ({', '.join(_APIG.required)})"
        )


def _check_keys(fields: Fields, where: str) -> None:
    """A key that resembles a request field without being it is refused, in a request and in each
    entry of its ``targets``: ``{"project_id": B, "DRY_RUN": true}`` must not delete."""
    entries = fields.get("targets") if isinstance(fields.get("targets"), list) else []
    for place, keys in [(where, fields), *((f"an entry of targets in {where}", e) for e in entries)]:
        if not isinstance(keys, dict):
            continue
        for key in keys:
            meant = look_alike(key)
            if meant is not None:
                raise _invalid(f"{place} has the key {_shown_key(key)}: did you mean {meant}?")


def clearly_false(value: Any) -> bool:
    """``dry_run`` values that say "delete": false, null, 0 and their text. Anything else, asked for
    anywhere in an event, is taken as a dry run: an unclear answer never deletes."""
    if isinstance(value, str):
        return value.strip().casefold() in _FALSE
    return value is None or value is False or (type(value) is int and value == 0)


def _base64_text(text: str) -> str | None:
    if not _BASE64.fullmatch(text):
        return None
    compact = "".join(text.split()).rstrip("=").translate(_URLSAFE)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _embedded(text: str) -> Any:
    """JSON text inside a string (a message, a body), also base64-encoded in any of its variants;
    None if there is none. A request field given twice in it is refused."""
    stripped = _stripped(text)
    if not stripped.startswith(_JSON_START):
        decoded = _base64_text(stripped)
        if decoded is None:
            return None
        stripped = _stripped(decoded)
        if not stripped.startswith(_JSON_START):
            return None
    try:
        return json.loads(stripped, object_pairs_hook=_unique)
    except (ValueError, RecursionError):
        return None


def _asks_for_dry_run(event: dict) -> bool:
    """Whether any part of the event, at any depth and inside any JSON text, has a ``dry_run`` (or a
    key resembling it) that is not clearly false: the safe side wins wherever the request came from, so
    no reading of the event can lose it. An event too large or too deep to look through is refused."""
    stack: list[tuple[Any, int]] = [(event, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES or depth > MAX_NESTING:
            raise _invalid(f"the event holds more than {MAX_VALUES} values or {MAX_NESTING} levels of nesting")
        if isinstance(value, dict):
            for key, inner in value.items():
                if (key == "dry_run" or look_alike(key) == "dry_run") and not clearly_false(inner):
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
