"""Structured logging: one strict-JSON object per line on stdout, at most ``MAX_LINE`` characters.

Per invocation, ``start_invocation`` clears the context variables, binds the invocation's keys, sets
the level, and registers the secret values in use so that no line can carry them, whatever its level.
Secrets are masked before anything is shortened, in keys as in values; ``scrub_value`` applies the same
mask to the payload.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sys
import traceback
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, NamedTuple

import structlog

SECRET_NAME = re.compile(
    r"token|secret|passw|authori[sz]ation|signature|credential|cookie|appcode|(?:^|[_\-.])(?:ak|sk)$|key(?!pair)",
    re.IGNORECASE,
)
REDACTED = "***"
MAX_DEPTH = 10
MAX_STRING = 1000
MAX_KEY = 200
MAX_ITEMS = 50
# One line's bound, in characters of its JSON text (ASCII: non-ASCII is escaped). LTS takes a log event
# of up to 500 KB through ICAgent and 1 MB through its API (LTS "Basic Resource Constraints",
# support.huaweicloud.com/intl/en-us/productdesc-lts/lts-0717.html); 16 KiB keeps a line readable in
# the console and an invocation's log small, whatever an event or a server sends.
MAX_LINE = 16 * 1024
# Each key bound to every line of an invocation (correlation id, function name, request id, service): at
# most 128 characters once masked and 256 bytes of JSON, so that the keys every line carries take under 2 KB.
MAX_BOUND, MAX_BOUND_BYTES = 128, 256
EXCEPTION_HEAD, EXCEPTION_TAIL = 1000, 3000  # a traceback keeps its first frames and its end
# An exception's message keeps its start and its end, and the marker between them, within MAX_STRING.
MESSAGE_PART = (MAX_STRING - 64) // 2
MIN_SECRET = 6  # shorter values are not real keys or tokens: masking them would garble every line
# A secret's cut-off beginning (at the end of a text) or end (at its start) this long is masked too; shorter,
# it could be ordinary text: 8 hex characters match by chance once in 4 billion.
MIN_FRAGMENT = 8
# Any run of this many characters of a secret, anywhere in a text and in any case, is masked, extended to
# all of the secret that is there: what is left of a secret that a server echoed cut, split or lower-cased.
FRAGMENT = 12
# Found through anchors: every run of FRAGMENT characters of a secret holds one of its ANCHOR-character pieces
# that start at a multiple of FRAGMENT - ANCHOR + 1. One expression looks for those few pieces in the lower-cased
# text (an expression of every run, case-insensitive, took 2 µs a character).
ANCHOR = 6
LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40, "critical": 50}
FIRST_KEYS = ("level", "timestamp", "message", "service")
# Kept when a line has to shrink to its bound: what says which invocation, what happened, and why.
KEPT_KEYS = (
    *FIRST_KEYS,
    "logger",
    "function_name",
    "function_version",
    "function_request_id",
    "cold_start",
    "trigger",
    "correlation_id",
    "code",
    "error_type",
    "error_message",
)
LIBRARY_LOGGERS = ("urllib3", "requests", "huaweicloudsdkcore")


class _Scrubber(NamedTuple):
    """A set of secrets, compiled once: whole values; every ``FRAGMENT``-character run of each, in any
    case, with where it sits in which secret (to mask a piece of a secret anywhere in a text); and their
    first and last characters (to find what is left of a secret that something upstream cut off at a
    string's edge). Short texts recur on every line and every invocation (keys, names, ids): what was
    worked out for them is remembered, per set of secrets, a bounded number."""

    secrets: tuple[str, ...]
    whole: re.Pattern[str] | None = None
    heads: re.Pattern[str] | None = None
    tails: re.Pattern[str] | None = None
    longest: int = 0
    anchors: dict[str, list[tuple[str, int]]] = {}  # noqa: RUF012 - anchor -> (secret lower-cased, its offset there)
    find: re.Pattern[str] | None = None  # any anchor
    values: dict[str, str] = {}  # noqa: RUF012 - each instance gets its own from _compile
    names: dict[Any, tuple[str, bool]] = {}  # noqa: RUF012
    parts: tuple[str, ...] = ()  # each secret's first and last characters: a text without them is clean


_NO_SECRETS = _Scrubber((), values={}, names={})
MEMO_TEXT, MEMO_SIZE = 128, 1024

# What the processors need to know about the current invocation. Context variables, like structlog's
# bound keys, so that invocations running at once in one instance (and their worker threads, which run
# in copies of the invocation's context) each keep their own.
_LEVEL: ContextVar[int] = ContextVar("kps_log_level", default=LEVELS["info"])
_SCRUBBER: ContextVar[_Scrubber] = ContextVar("kps_log_secrets", default=_NO_SECRETS)
# The library loggers' level is process-wide: it is the lowest any invocation of this instance asked
# for, and each record is then kept or dropped by the level of the invocation that emitted it.
_library_level = [LEVELS["warning"]]


@functools.lru_cache(maxsize=64)
def _compile(secrets: tuple[str, ...]) -> _Scrubber:
    def alternatives(parts: Iterable[str], flags: int = 0) -> re.Pattern[str]:
        return re.compile("|".join(re.escape(p) for p in sorted(set(parts), key=len, reverse=True)), flags)

    anchors: dict[str, list[tuple[str, int]]] = {}
    for secret in {s.lower() for s in secrets if len(s) >= FRAGMENT}:
        for offset in range(0, len(secret) - ANCHOR + 1, FRAGMENT - ANCHOR + 1):
            anchors.setdefault(secret[offset : offset + ANCHOR], []).append((secret, offset))
    return _Scrubber(
        secrets,
        alternatives(secrets),
        alternatives(s[:MIN_FRAGMENT] for s in secrets),
        alternatives(s[-MIN_FRAGMENT:] for s in secrets),
        max(len(s) for s in secrets),
        anchors,
        alternatives(anchors) if anchors else None,
        {},
        {},
        tuple({*(s[:MIN_FRAGMENT] for s in secrets), *(s[-MIN_FRAGMENT:] for s in secrets)}),
    )


def scrub(text: str) -> str:
    """Masks every secret in use: whole, any run of ``FRAGMENT`` characters of one anywhere (in any
    case), or cut off at either edge of ``text``."""
    scrubber = _SCRUBBER.get()
    if scrubber.whole is None:
        return text
    memo = scrubber.values
    known = memo.get(text)
    if known is not None:
        return known
    masked = _masked(text, scrubber)
    if len(text) <= MEMO_TEXT:
        _remember(memo, text, masked)
    return masked


def _remember(memo: dict, key: Any, value: Any) -> None:
    """Bounded: when full, the memo starts again, so that texts seen once (timestamps, durations) never
    crowd out the ones every invocation logs."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value


def _masked(text: str, scrubber: _Scrubber) -> str:
    return _mask_edges(_mask_fragments(scrubber.whole.sub(REDACTED, text), scrubber), scrubber)  # type: ignore[union-attr]


def _mask_fragments(text: str, scrubber: _Scrubber) -> str:
    """Each run of ``FRAGMENT`` characters of a secret, in any case, grown to as much of that secret as
    the text holds on either side, becomes ``***``."""
    if scrubber.find is None:
        return text
    lowered = _lowered(text)
    spans = []
    match = scrubber.find.search(lowered)
    while match:
        found = match.start()
        after = found + 1
        for secret, offset in scrubber.anchors[match.group()]:
            start, end = _grown(lowered, found, secret, offset)
            if end - start >= FRAGMENT:
                spans.append((start, end))
                after = max(after, end)  # what it skips is masked: no run outside a mask is missed
        match = scrubber.find.search(lowered, after)
    if not spans:
        return text
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    pieces, done = [], 0
    for start, end in merged:
        pieces += [text[done:start], REDACTED]
        done = end
    return "".join([*pieces, text[done:]])


def _lowered(text: str) -> str:
    """``text`` in lower case, one character for one (``İ`` lower-cases to two: it stays as it is)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _grown(lowered: str, found: int, secret: str, offset: int) -> tuple[int, int]:
    """The span around an anchor found at ``found`` that matches ``secret`` around ``offset``."""
    start, k = found, offset
    while start > 0 and k > 0 and lowered[start - 1] == secret[k - 1]:
        start, k = start - 1, k - 1
    end, k = found + ANCHOR, offset + ANCHOR
    while end < len(lowered) and k < len(secret) and lowered[end] == secret[k]:
        end, k = end + 1, k + 1
    return start, end


def may_hold_secret(text: str) -> bool:
    """Whether ``scrub`` could change ``text``: a few substring searches (faster than the patterns' one)
    for a whole secret or its cut-off edges, then the fragment anchors, for texts (many joined) mostly clean."""
    scrubber = _SCRUBBER.get()
    if any(part in text for part in scrubber.parts):
        return True
    return scrubber.find is not None and scrubber.find.search(_lowered(text)) is not None


def _mask_edges(text: str, scrubber: _Scrubber) -> str:
    window = scrubber.longest - 1
    heads, tails = scrubber.heads, scrubber.tails
    match = heads.search(text, max(0, len(text) - window))  # type: ignore[union-attr]
    while match:  # text ends with a secret's beginning
        if any(s.startswith(text[match.start() :]) for s in scrubber.secrets):
            text = text[: match.start()] + REDACTED
            break
        match = heads.search(text, match.start() + 1)  # type: ignore[union-attr]
    if tails.search(text, 0, window) is None:  # type: ignore[union-attr]
        return text
    ends = [m.end() for m in tails.finditer(text, 0, window)]  # type: ignore[union-attr]
    for end in reversed(ends):  # text starts with a secret's end: the longest first
        if any(s.endswith(text[:end]) for s in scrubber.secrets):
            return REDACTED + text[end:]
    return text


def shorten(text: str, most: int) -> str:
    """``text`` masked, then cut to ``most`` characters: masking after a cut would miss a secret
    the cut went through."""
    text = scrub(text)
    return text if len(text) <= most else text[: max(0, most - 3)] + "..."


def _is_secret(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


_SCALARS = frozenset({type(None), bool, int})


def _name(key: Any) -> tuple[str, bool]:
    """A key as logged, and whether its name looks secret: masked like any text, then cut."""
    scrubber = _SCRUBBER.get()
    known = scrubber.names.get(key)
    if known is not None:
        return known
    raw = str(key)
    text = _masked(raw, scrubber) if scrubber.whole is not None else raw
    name = (text if len(text) <= MAX_KEY else text[:MAX_KEY] + "...(truncated)", _is_secret(raw))
    if type(key) is str and len(raw) <= MEMO_TEXT:
        _remember(scrubber.names, key, name)
    return name


def _text(value: str) -> str:
    text = scrub(value)
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "...(truncated)"


def redact(value: Any, depth: int = 0) -> Any:
    """Copies ``value`` with secret-looking fields and known secret values masked (keys included),
    non-finite numbers as strings, and size bounded."""
    if type(value) in _SCALARS or isinstance(value, int):
        return value
    if isinstance(value, (str, float)):  # strict JSON has no NaN or Infinity: they become strings
        return _text(value) if isinstance(value, str) else value if math.isfinite(value) else str(value)
    if depth > MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        items = list(value.items())
        copied = {}
        for k, v in items[:MAX_ITEMS]:
            name, secret = _name(k)
            copied[name] = REDACTED if secret else v if type(v) in _SCALARS else redact(v, depth + 1)
        if len(items) > MAX_ITEMS:
            copied["..."] = f"{len(items) - MAX_ITEMS} more"
        return copied
    if isinstance(value, (list, tuple)):
        copied_list = [redact(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            copied_list.append(f"... {len(value) - MAX_ITEMS} more")
        return copied_list
    return redact(repr(value), depth)


def scrub_value(value: Any) -> Any:
    """A copy of ``value`` (the payload) with every secret in use masked in its strings and keys;
    unlike ``redact``, nothing else changes."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    return value


def _cut_middle(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n... ({len(text) - head - tail} characters cut) ...\n{text[-tail:]}"


def _format_exception(_: Any, __: str, event_dict: dict) -> dict:
    """The traceback, cut in the middle so that its end (the exception's type and message) stays,
    and the type and message on their own keys, which a line never drops."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or exc_info[1] is None:
        return event_dict
    exc = exc_info[1]
    event_dict["exception"] = "".join(traceback.format_exception(*exc_info))  # masked and cut with the rest
    event_dict.setdefault("error_type", type(exc).__name__)
    event_dict.setdefault("error_message", _cut_middle(scrub(str(exc)), MESSAGE_PART, MESSAGE_PART))
    return event_dict


def _drop_below_level(_: Any, method_name: str, event_dict: dict) -> dict:
    """The record of what was deleted (``record=True``) is kept whatever the level."""
    if LEVELS.get(method_name, 20) < _LEVEL.get() and event_dict.get("record") is not True:
        raise structlog.DropEvent
    return event_dict


def _redact_processor(_: Any, __: str, event_dict: dict) -> dict:
    exception = event_dict.pop("exception", None)  # a traceback: masked, but cut in its middle
    copied = redact(event_dict)
    if exception is not None:
        copied["exception"] = _cut_middle(scrub(str(exception)), EXCEPTION_HEAD, EXCEPTION_TAIL)
    return copied


def _first_keys_first(_: Any, __: str, event_dict: dict) -> dict:
    ordered = {key: event_dict.pop(key) for key in FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, default=repr)


def _shrunk(value: Any, most: int, items: int) -> Any:
    """``value`` with every string cut to ``most`` characters (a traceback in its middle) and every
    collection to ``items``: strings are masked already, so cutting them is safe."""
    if isinstance(value, str):
        return value if len(value) <= most else _cut_middle(value, most // 4, most - most // 4)
    if isinstance(value, dict):
        kept = list(value.items())[:items]
        return {k[:most]: _shrunk(v, most, items) for k, v in kept}
    if isinstance(value, list):
        return [_shrunk(v, most, items) for v in value[:items]]
    return value


def _render(_: Any, __: str, event_dict: dict) -> str:
    """Strict JSON, never longer than ``MAX_LINE``: a line too long sheds detail (shorter strings,
    fewer items, then every key but ``KEPT_KEYS``) and says how long it was; it is never cut into
    invalid JSON."""
    line = _dumps(event_dict)
    if len(line) <= MAX_LINE:
        return line
    full = len(line)
    for most, items in ((400, 20), (100, 5), (20, 2)):
        shrunk = {k: (v if k in KEPT_KEYS else _shrunk(v, most, items)) for k, v in event_dict.items()}
        shrunk["line_truncated"] = full
        line = _dumps(shrunk)
        if len(line) <= MAX_LINE:
            return line
    kept = {k: _shrunk(event_dict[k], 512 if k == "error_message" else 128, 2) for k in KEPT_KEYS if k in event_dict}
    return _dumps({**kept, "line_truncated": full})


class _StdoutLogger:
    """Writes to whatever ``sys.stdout`` is at call time (FunctionGraph collects stdout into LTS)."""

    def msg(self, message: str) -> None:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()

    debug = info = warning = warn = error = critical = exception = msg


def _stdout_logger(*_: Any) -> _StdoutLogger:
    return _StdoutLogger()


class _StdoutHandler(logging.Handler):
    """Renders stdlib records (requests, urllib3, huaweicloudsdkcore) as the same JSON lines, if the
    invocation that emitted the record (its thread's context) logs at that level."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < _LEVEL.get():
            return
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never break the invocation
            self.handleError(record)
            return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class _Kept:
    """A logger that keeps the line instead of printing it (``render``)."""

    line = ""

    def msg(self, message: str) -> None:
        self.line = message

    debug = info = warning = warn = error = critical = exception = msg


def render(level: str, message: str, **fields: Any) -> str:
    """The line ``logger.<level>(message, **fields)`` would print (empty if dropped), returned instead:
    the record renders its fixed part once and splices its tasks in (``record.py``)."""
    kept = _Kept()
    getattr(structlog.wrap_logger(kept, processors=_PROCESSORS), level)(message, **fields)
    return kept.line


def write(line: str) -> None:
    """Prints a line rendered by ``render`` (and completed by its caller, within ``MAX_LINE``)."""
    _StdoutLogger().msg(line)


_PROCESSORS: list[Any] = []


def _configure() -> None:
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    rendering = [
        _format_exception,
        _redact_processor,
        structlog.processors.EventRenamer("message"),
        _first_keys_first,
        _render,
    ]
    _PROCESSORS[:] = [
        _drop_below_level,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        timestamper,
        *rendering,
    ]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=True,
    )
    handler = _StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.propagate = False
        library.setLevel(_library_level[0])


_configure()
logger = structlog.get_logger()


def _secret_values(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET}))


def use_secrets(secrets: Iterable[str]) -> None:
    """Registers the secret values in use: from now on no text masked here can carry them."""
    values = _secret_values(secrets)
    _SCRUBBER.set(_compile(values) if values else _NO_SECRETS)


def _bound_key(value: Any) -> Any:
    """A key bound to every line (a correlation id is the event's to choose): masked, then at most
    ``MAX_BOUND`` characters and ``MAX_BOUND_BYTES`` of JSON."""
    if not isinstance(value, str):
        return value
    text = shorten(value, MAX_BOUND)
    while len(json.dumps(text)) > MAX_BOUND_BYTES:
        text = text[: len(text) // 2]
    return text


def start_invocation(level: str, secrets: Iterable[str], **keys: Any) -> None:
    """Resets the per-invocation state: nothing of the previous invocation leaks into this one. The
    keys bound to every line are bounded (``_bound_key``), so that a line's fixed part stays small."""
    number = LEVELS[level.lower()]
    if number < _library_level[0]:  # setLevel clears every logger's cache: only when it goes lower
        _library_level[0] = number
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(number)
    _LEVEL.set(number)
    use_secrets(secrets)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**{name: _bound_key(value) for name, value in keys.items()})
