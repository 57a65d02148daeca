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
EXCEPTION_HEAD, EXCEPTION_TAIL = 1000, 3000  # a traceback keeps its first frames and its end
MIN_SECRET = 6  # shorter values are not real keys or tokens: masking them would garble every line
# A secret's cut-off beginning (at the end of a text) or end (at its start) this long is masked too; shorter,
# it could be ordinary text: 8 hex characters match by chance once in 4 billion.
MIN_FRAGMENT = 8
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
    """A set of secrets, compiled once: whole values, and their first and last characters (to find
    what is left of a secret that something upstream cut off at a string's edge). Short texts recur on
    every line and every invocation (keys, names, ids): what was worked out for them is remembered,
    per set of secrets, a bounded number."""

    secrets: tuple[str, ...]
    whole: re.Pattern[str] | None = None
    heads: re.Pattern[str] | None = None
    tails: re.Pattern[str] | None = None
    longest: int = 0
    values: dict[str, str] = {}  # noqa: RUF012 - each instance gets its own from _compile
    names: dict[Any, tuple[str, bool]] = {}  # noqa: RUF012


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
    def alternatives(parts: Iterable[str]) -> re.Pattern[str]:
        return re.compile("|".join(re.escape(p) for p in sorted(set(parts), key=len, reverse=True)))

    return _Scrubber(
        secrets,
        alternatives(secrets),
        alternatives(s[:MIN_FRAGMENT] for s in secrets),
        alternatives(s[-MIN_FRAGMENT:] for s in secrets),
        max(len(s) for s in secrets),
        {},
        {},
    )


def scrub(text: str) -> str:
    """Masks every secret in use, whole or cut off at either edge of ``text``."""
    scrubber = _SCRUBBER.get()
    if scrubber.whole is None:
        return text
    memo = scrubber.values
    known = memo.get(text)
    if known is not None:
        return known
    masked = _mask_edges(scrubber.whole.sub(REDACTED, text), scrubber)
    if len(text) <= MEMO_TEXT and len(memo) < MEMO_SIZE:
        memo[text] = masked
    return masked


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
    """A key as logged, and whether its name looks secret. A key is the caller's own text, never cut
    upstream: whole secrets are masked in it, then it is cut."""
    scrubber = _SCRUBBER.get()
    known = scrubber.names.get(key)
    if known is not None:
        return known
    raw = str(key)
    text = scrubber.whole.sub(REDACTED, raw) if scrubber.whole is not None else raw
    name = (text if len(text) <= MAX_KEY else text[:MAX_KEY] + "...(truncated)", _is_secret(raw))
    if type(key) is str and len(raw) <= MEMO_TEXT and len(scrubber.names) < MEMO_SIZE:
        scrubber.names[key] = name
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
    event_dict.setdefault("error_message", _cut_middle(scrub(str(exc)), 500, 500))
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


def _configure() -> None:
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    rendering = [
        _format_exception,
        _redact_processor,
        structlog.processors.EventRenamer("message"),
        _first_keys_first,
        _render,
    ]
    structlog.configure(
        processors=[
            _drop_below_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            *rendering,
        ],
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


def start_invocation(level: str, secrets: Iterable[str], **keys: Any) -> None:
    """Resets the per-invocation state: nothing of the previous invocation leaks into this one."""
    number = LEVELS[level.lower()]
    if number < _library_level[0]:  # setLevel clears every logger's cache: only when it goes lower
        _library_level[0] = number
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(number)
    _LEVEL.set(number)
    values = _secret_values(secrets)
    _SCRUBBER.set(_compile(values) if values else _NO_SECRETS)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**keys)
