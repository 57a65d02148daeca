"""Reads an event strictly: deny by default.

Two steps, both data. A trigger's *envelope* (``TRIGGERS``) says how its event is recognised, which keys
it has, where its messages are and how each is encoded; the messages are decoded once (base64 only where
the platform documents it, JSON text where the message is JSON). One *request model* (``REQUEST_FIELDS``)
then reads every message, each ``targets`` entry (``ENTRY_FIELDS``) and API Gateway's body, query string
and path parameters alike: exact keys, each value validated. Anything else is refused ``InvalidEvent``:
an unknown key (a "did you mean" names a close field, for the reader only), a trigger event with keys
its envelope does not have, an event of no known shape whose keys are not all request fields, a trigger
this function does not read, JSON text that repeats a key, text or batches above the bounds below.

docs/triggers.md documents the rule, the fields, the table of triggers with its sources, and the bounds.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import itertools
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Optional, Union

from . import selection
from .errors import Rejected, json_type, named, unique_keys
from .settings import PROJECT_ID, REGION, SWEEP, parse_bool

MAX_TEXT = 64 * 1024  # characters of JSON text read at all (an event, a body, a message): 100 targets are ~6 KB
MAX_MESSAGES = 100  # messages in one event, and items in any list of an envelope
MAX_TARGETS = 100
MAX_CONTEXT = 4096  # characters of the ``context`` field as JSON text
MAX_CONTEXT_DEPTH = 32  # levels of nesting in ``context``
MAX_DIGITS = 100  # of an integer in JSON text: no request field is a number

Request = dict  # one message read by the model: field name -> validated value; absent and null fields left out
Validator = Callable[[Any], Any]


def _invalid(message: str) -> Rejected:
    return Rejected("InvalidEvent", message)


def _shown(value: Any) -> str:
    """A caller's value in an error message (which is logged): its JSON type and size, never its text,
    since a caller may paste a token anywhere."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, (list, dict)):
        return f"{json_type(value)} of {len(value)} items"
    return json_type(value)


# --- the request model -------------------------------------------------------------------------------


def _project_id(value: Any) -> str:
    if not isinstance(value, str) or not PROJECT_ID.fullmatch(value):
        raise Rejected(
            "InvalidProjectId", f"project_id must be 32 lower-case hexadecimal characters, got {_shown(value)}"
        )
    return value


def _region(value: Any) -> str:
    if not isinstance(value, str) or not REGION.fullmatch(value):
        raise Rejected("InvalidRegion", f"region must be a region name such as cn-north-4, got {_shown(value)}")
    return value


def _dry_run(value: Any) -> bool:
    """A boolean, or its text (a query string carries only text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError:
            pass
    raise _invalid(f"dry_run must be true or false, got {_shown(value)}")


def _entry(value: Any) -> Request:
    entry = read_fields(value, "an entry of targets", ENTRY_FIELDS)
    if "project_id" not in entry:
        raise Rejected("InvalidProjectId", "each entry of targets names its project_id")
    return entry


def _targets(value: Any) -> Union[str, list[Request]]:
    if value == SWEEP:  # exactly "all": a strict reading, as a query string's text or JSON alike
        return SWEEP
    if not isinstance(value, list) or not value:
        raise _invalid(f'targets must be "all" or a list of {{project_id, region}}, got {_shown(value)}')
    if len(value) > MAX_TARGETS:
        raise _invalid(f"the event names more than {MAX_TARGETS} targets")
    return [_entry(item) for item in value]


def _context(value: Any) -> Any:
    """A workflow's own context: accepted, bounded, never read for what is deleted. Request fields at its
    top level are refused: they would be read by no one, so ``{"context": {"dry_run": true}}`` would delete."""
    if isinstance(value, dict):
        fields = [key for key in REQUEST_FIELDS if key in value]
        if fields:
            raise _invalid(
                f"context never carries request fields ({', '.join(fields)}); put them at the request's top level"
            )
    try:
        size = _json_floor(value)
        size = len(json.dumps(value)) if size <= MAX_CONTEXT else size
    except (TypeError, ValueError):  # what the walk let through and the encoder still refuses
        raise _invalid("context cannot be written as JSON") from None
    if size > MAX_CONTEXT:
        raise _invalid(f"context is larger than {MAX_CONTEXT} characters as JSON")
    return value


_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_floor(value: Any) -> int:
    """At least the length of ``value`` as JSON text, counted without encoding and stopping past the
    context's bound: only a value under the bound is then encoded (at most 6 characters per character).
    Deeper than ``MAX_CONTEXT_DEPTH`` is refused by rule, not left to the encoder, whose limit differs
    between Python versions (3.12 encodes what 3.9 found too deep)."""
    size, pending = 0, [(value, 0)]
    while pending and size <= MAX_CONTEXT:
        item, depth = pending.pop()
        if depth > MAX_CONTEXT_DEPTH:
            raise _invalid(f"context is nested deeper than {MAX_CONTEXT_DEPTH} levels")
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in itertools.islice(item, MAX_CONTEXT + 1)):
                raise _invalid("context is not JSON: an object's key is not a string")
            pending.extend((v, depth + 1) for v in itertools.islice(item.values(), MAX_CONTEXT + 1))
            pending.extend((k, depth + 1) for k in itertools.islice(item.keys(), MAX_CONTEXT + 1))
        elif isinstance(item, list):
            pending.extend((v, depth + 1) for v in itertools.islice(item, MAX_CONTEXT + 1))
        elif not isinstance(item, _JSON_SCALARS):  # a tuple, a set, an object: never counted, so never encoded
            raise _invalid("context is not JSON: it holds a value of no JSON type")
        size += len(item) + 2 if isinstance(item, (str, dict, list)) else 1
    return size


# Adding a field is one line here (name -> validator); what it means is read from the model's output.
REQUEST_FIELDS: dict[str, Validator] = {
    "project_id": _project_id,
    "region": _region,
    "targets": _targets,
    "dry_run": _dry_run,
    "select": selection.parse,  # a JSON object only: in a query string it is text, and refused
    "context": _context,
}
ENTRY_FIELDS: dict[str, Validator] = {"project_id": _project_id, "region": _region}
# Fields whose null is handed to the validator instead of meaning absent: a null select (a template's
# unset variable) must never read as "no selection", which deletes everything.
NULL_REFUSED = frozenset({"select"})


def _did_you_mean(key: Any, names: Mapping[str, Validator]) -> str:
    """A close field name, for a short key only (the suggestion names a field, never the key)."""
    if not isinstance(key, str) or len(key) > 40:
        return ""
    text = unicodedata.normalize("NFKC", key).casefold()
    close = difflib.get_close_matches(text, list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def read_fields(fields: Any, where: str, names: Mapping[str, Validator] = REQUEST_FIELDS) -> Request:
    """One object read by the model: every key exactly a field name, each value validated; ``null``,
    ``{}`` and ``""`` mean the defaults, a null field means absent (except ``NULL_REFUSED``)."""
    if fields is None or fields == "":
        return {}
    if not isinstance(fields, dict):
        raise _invalid(f"{where} must be a JSON object, got {json_type(fields)}")
    unknown = list(itertools.islice((key for key in fields if key not in names), 5))  # a parsed event may be 6 MB
    if unknown:
        shown = ", ".join(named(key) + _did_you_mean(key, names) for key in unknown)
        raise _invalid(f"{where} has unknown keys: {shown}; its fields are {', '.join(names)}")
    return {key: names[key](value) for key, value in fields.items() if value is not None or key in NULL_REFUSED}


# --- decoding, once ----------------------------------------------------------------------------------


def _bounded(text: Union[str, bytes], what: str, most: int = MAX_TEXT) -> None:
    if len(text) > most:
        raise _invalid(f"{what} is longer than {most} characters; a request is far smaller (docs/triggers.md)")


def _integer(digits: str) -> int:
    """``parse_int``: a number with more digits than any request field is refused by name (3.11 would
    otherwise raise past 4,300 digits, read as "not JSON text")."""
    if len(digits) > MAX_DIGITS:
        raise _invalid(f"a number in the JSON text has {len(digits)} digits; no request field is a number")
    return int(digits)


def _json_text(text: str, what: str) -> Any:
    """JSON text, bounded before it is parsed; empty text is ``null``."""
    _bounded(text, what)
    text = text.strip().lstrip("\ufeff").strip()
    if not text:
        return None
    try:
        return json.loads(text, object_pairs_hook=unique_keys(_invalid), parse_int=_integer)
    except (ValueError, RecursionError):
        raise _invalid(f"{what} is not JSON text (plain text is refused: it names nothing)") from None


def _base64(text: str, what: str) -> str:
    """Base64 text, bounded first (the envelope has checked it is text)."""
    _bounded(text, what, MAX_TEXT * 4 // 3 + 4)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _invalid(f"{what} is not base64-encoded UTF-8 text") from None


def _request(message: Any, what: str, empty: bool = True) -> Request:
    """A message as the model reads it: a structure as it is, text as JSON text. One that decodes to nothing
    (absent, ``null``, empty text, ``"null"``, ``""`` as JSON) is the defaults only where ``empty`` says so: from
    a sender addressing this function (a direct call, a timer, an HTTP request), never from a pipeline's
    message, which may be about anything (docs/triggers.md); there ``{}`` asks for the defaults."""
    value = _json_text(message, what) if isinstance(message, str) else message
    if not empty and (value is None or value == ""):
        raise _invalid(f"refused: {what} holds nothing (absent, null or empty), so it is no request; send {{}}")
    return read_fields(value, what)


# --- envelopes ---------------------------------------------------------------------------------------


class Keys(NamedTuple):
    """An object with exactly these keys: ``required`` ones and, when present, ``optional`` ones. A check is
    a type (or tuple), a string the value must equal, a nested ``Keys``, or ``[check]``: a list of 1 to
    ``MAX_MESSAGES`` items each passing ``check``."""

    required: dict
    optional: dict


Check = Union[type, tuple, str, Keys, list]
_TEXT_OR_NULL = (str, type(None))
_OBJECT_OR_NULL = (dict, type(None))


def _problem(value: Any, check: Check, where: str) -> Optional[str]:
    """What is wrong with ``value`` against ``check``, or None."""
    if isinstance(check, Keys):
        return _object_problem(value, check, where)
    if isinstance(check, list):
        if not isinstance(value, list) or not 0 < len(value) <= MAX_MESSAGES:
            return f"{where} is not a list of 1 to {MAX_MESSAGES} items"
        return next((p for i, v in enumerate(value) if (p := _problem(v, check[0], f"{where}[{i}]"))), None)
    if isinstance(check, str):
        return None if value == check else f"{where} is not {check!r}"
    types = check if isinstance(check, tuple) else (check,)
    if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
        return None
    return f"{where} is not {' or '.join(t.__name__ for t in types)}"


def _object_problem(value: Any, keys: Keys, where: str) -> Optional[str]:
    if not isinstance(value, dict):
        return f"{where} is not an object"
    checks = {**keys.required, **keys.optional}
    missing = [key for key in keys.required if key not in value]
    unknown = [named(key) for key in itertools.islice((key for key in value if key not in checks), 5)]  # bounded
    if missing or unknown:
        return f"{where} lacks {', '.join(missing) or '-'}, has unknown keys {', '.join(unknown) or '-'}"
    return next((p for k, v in value.items() if (p := _problem(v, checks[k], f"{where}.{k}"))), None)


class Trigger(NamedTuple):
    name: str  # as the payload names it
    label: str  # as an error message names it
    marks: Callable[[dict], bool]  # whether an event claims to be this trigger's
    envelope: Optional[Keys]  # None: refused, for ``refusal``
    read: Callable[[dict], list[Request]] = lambda event: []
    correlation: Callable[[dict], Any] = lambda event: None
    refusal: str = ""


def _each(what: str, messages: Callable[[dict], list], empty: bool = False) -> Callable[[dict], list[Request]]:
    """Each message read by the model; ``empty``: a message that decodes to nothing means the defaults."""

    def read(event: dict) -> list[Request]:
        found = messages(event)
        if len(found) > MAX_MESSAGES:
            raise _invalid(f"the event holds more than {MAX_MESSAGES} messages")
        return [_request(message, what, empty) for message in found]

    return read


def _cloudevent_data(event: dict) -> Any:
    """``data`` as it is (an object, JSON text or absent), or ``data_base64`` decoded (CloudEvents 1.0 JSON format)."""
    if "data_base64" in event:
        if "data" in event:
            raise _invalid("a CloudEvent has both data and data_base64")
        return _base64(event["data_base64"], "data_base64")
    return event.get("data")


def _read_apig(event: dict) -> list[Request]:
    """Body (base64 unless ``isBase64Encoded`` is false: API Gateway's default is true), query string and
    path parameters, each read by the model; a field given in two of them is ambiguous and refused."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded", True):
        body = _base64(body, "the body")
    merged: Request = {}
    for where, part in (
        ("the body", _request(body, "the body")),
        ("the query string", read_fields(event.get("queryStringParameters"), "the query string")),
        ("the path parameters", read_fields(event.get("pathParameters"), "the path parameters")),
    ):
        twice = sorted(set(merged) & set(part))
        if twice:
            raise _invalid(f"{', '.join(twice)} is given twice: in {where} and before it")
        merged.update(part)
    return [merged]


_CLOUDEVENT = Keys(
    {"specversion": "1.0", "id": str, "source": str, "type": str},
    {"subject": str, "time": str, "datacontenttype": str, "dataschema": str, "data": object, "data_base64": str},
)
_MQ_METADATA = {"event_version": str, "event_time": (int, str), "region": str}
# Huawei's Kafka test event has instance_id in each record, the OTC samples at the top level: either is read.
_MQ_RECORDS = [Keys({"messages": [str], "topic_id": str}, {"instance_id": str})]
_SMN_RECORD = Keys(
    {
        "event_source": "smn",
        "smn": Keys(
            {"message": str, "message_id": str, "topic_urn": str},
            {"timestamp": str, "message_attributes": object, "type": str, "subject": str},
        ),
    },
    {"event_version": str, "event_subscription_urn": str},
)
_NO_REQUEST = (
    "carries no request (nothing in it names a project or a dry run); invoke the function directly or from a timer"
)


def _mq(name: str, label: str, trigger_type: str) -> Trigger:
    return Trigger(
        name,
        label,
        lambda e: e.get("trigger_type") == trigger_type and "records" in e,
        Keys({**_MQ_METADATA, "trigger_type": trigger_type, "records": _MQ_RECORDS}, {"instance_id": str}),
        _each(f"a {label} message", lambda e: [m for r in e["records"] for m in r["messages"]]),
    )


def _refused(name: str, label: str, marks: Callable[[dict], bool], refusal: str = _NO_REQUEST) -> Trigger:
    return Trigger(name, label, marks, None, refusal=refusal)


TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        "timer",
        "timer event",
        lambda e: e.get("trigger_type") == "TIMER",
        Keys({"version": str, "time": str, "trigger_type": "TIMER", "trigger_name": str, "user_event": str}, {}),
        _each("user_event", lambda e: [e["user_event"]], empty=True),
    ),
    Trigger(
        "apig",
        "API Gateway event",
        lambda e: "httpMethod" in e or "requestContext" in e,
        Keys(
            {"requestContext": dict, "httpMethod": str, "headers": dict, "path": str},
            {
                "body": _TEXT_OR_NULL,
                "queryStringParameters": _OBJECT_OR_NULL,
                "pathParameters": _OBJECT_OR_NULL,
                "isBase64Encoded": bool,
            },
        ),
        _read_apig,
        lambda e: e["requestContext"].get("requestId"),
    ),
    Trigger(
        "eventgrid",
        "EventGrid CloudEvent",
        lambda e: "specversion" in e,
        _CLOUDEVENT,
        _each("the CloudEvent's data", lambda e: [_cloudevent_data(e)]),
        lambda e: e["id"],
    ),
    Trigger(
        "eventgrid",
        "EventGrid event list",
        lambda e: "events" in e,
        Keys({"events": [_CLOUDEVENT]}, {}),
        _each("a CloudEvent's data", lambda e: [_cloudevent_data(c) for c in e["events"]]),
        lambda e: e["events"][0]["id"],
    ),
    Trigger(
        "smn",
        "SMN event",
        lambda e: "record" in e,
        Keys({"record": [_SMN_RECORD]}, {"functionname": str, "requestId": str, "timestamp": str}),
        _each("an SMN message", lambda e: [r["smn"]["message"] for r in e["record"]]),
        lambda e: e["record"][0]["smn"]["message_id"],
    ),
    _mq("kafka", "Kafka", "KAFKA"),
    Trigger(
        "kafka",
        "Kafka event (older shape)",
        lambda e: "messages" in e,
        Keys({"messages": [str], "topic_id": str}, {**_MQ_METADATA, "instance_id": str, "trigger_type": "KAFKA"}),
        _each("a Kafka message", lambda e: e["messages"]),
    ),
    _mq("rocketmq", "RocketMQ", "ROCKETMQ"),
    _refused("obs", "OBS event", lambda e: "Records" in e),
    _refused("lts", "LTS event", lambda e: "lts" in e),
    _refused("cts", "CTS event", lambda e: "cts" in e),
    _refused("dis", "DIS event", lambda e: "ShardID" in e or "StreamName" in e),
    _refused(
        "dds",
        "DDS event",
        lambda e: "records" in e and "trigger_type" not in e,
        "a DDS change stream event describes a database change; " + _NO_REQUEST,
    ),
)


# Methods an answer may name; upper-cased over ASCII only (``"po\u017ft".upper()`` is ``"POST"``).
_METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
_CORRELATION = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # an ID as platforms write them; anything else is not logged


class TriggerEvent(NamedTuple):
    trigger: str
    field_sets: list[Request]  # one per message, read by the model; empty when ``error`` is set
    correlation_id: Optional[str] = None
    is_http: bool = False
    error: Optional[Exception] = None  # a ``Rejected``; any other only from a bug (cleaner.handle)
    http_method: str = ""  # API Gateway only: one of ``_METHODS``, else empty (never the caller's text)


def _parsed(event: Any) -> Any:
    """An event sent as JSON text (or its bytes) is read as the JSON it holds, bounded first."""
    if isinstance(event, (bytes, bytearray)):
        _bounded(event, "the event")
        try:
            event = bytes(event).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("the event is not UTF-8 text") from None
    return _json_text(event, "the event") if isinstance(event, str) else event


def _read(event: Any, trigger: Optional[Trigger]) -> list[Request]:
    if trigger is None:
        return [read_fields(event, "the event (a direct request: it has no trigger's marks)")]
    if trigger.envelope is None:
        raise _invalid(f"refused: this {trigger.label} {trigger.refusal}")
    problem = _problem(event, trigger.envelope, f"the {trigger.label}")
    if problem:
        raise _invalid(problem)
    return trigger.read(event)


def read_event(event: Any) -> TriggerEvent:
    """Recognises the event and reads its requests. Never raises: a refused event comes back with
    ``error`` set, still naming its trigger, so that an API Gateway caller gets an API Gateway answer."""
    trigger: Optional[Trigger] = None
    try:
        event = _parsed(event)
        marked = [t for t in TRIGGERS if isinstance(event, dict) and t.marks(event)]
        if len(marked) > 1:
            raise _invalid(f"ambiguous event: it has the marks of each of {', '.join(t.label for t in marked)}")
        trigger = marked[0] if marked else None
        requests = _read(event, trigger)
    except Rejected as rejection:
        return _answer(event, trigger, [], rejection)
    return _answer(event, trigger, requests, None)


def _answer(event: Any, trigger: Optional[Trigger], requests: list[Request], error: Optional[Rejected]) -> TriggerEvent:
    if trigger is None:
        return TriggerEvent("direct", requests, error=error)
    method = event.get("httpMethod") if trigger.name == "apig" else None
    is_http = isinstance(method, str) and isinstance(event.get("requestContext"), dict)
    correlation = trigger.correlation(event) if error is None else None
    return TriggerEvent(
        trigger.name,
        requests,
        correlation if isinstance(correlation, str) and _CORRELATION.fullmatch(correlation) else None,
        is_http,
        error,
        _method(method) if is_http else "",
    )


def _method(method: str) -> str:
    upper = method.upper() if len(method) <= 7 and method.isascii() else ""  # bounded: no method is longer
    return upper if upper in _METHODS else ""
