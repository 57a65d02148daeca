"""Structured logging: one JSON object per line on stdout, configured once per instance.

Per invocation, ``start_invocation`` clears the context variables, binds the invocation's keys, sets
the level, and registers the secret values in use so that no line can carry them, whatever its level.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import structlog

SECRET_NAME = re.compile(
    r"token|secret|passw|authori[sz]ation|signature|credential|cookie|(?:^|[_\-.])(?:ak|sk)$|key(?!pair)",
    re.IGNORECASE,
)
REDACTED = "***"
MAX_DEPTH = 10
MAX_STRING = 1000
MAX_ITEMS = 50
LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40, "critical": 50}
FIRST_KEYS = ("level", "timestamp", "message", "service")
LIBRARY_LOGGERS = ("urllib3", "requests", "huaweicloudsdkcore")


# What the processors need to know about the current invocation. Context variables, like structlog's
# bound keys, so that invocations running at once in one instance (and their worker threads, which run
# in copies of the invocation's context) each keep their own.
_LEVEL: ContextVar[int] = ContextVar("kps_log_level", default=LEVELS["info"])
_SECRETS: ContextVar[tuple[str, ...]] = ContextVar("kps_log_secrets", default=())
_library_level = [0]  # the stdlib loggers' level is process-wide


def scrub(text: str) -> str:
    for secret in _SECRETS.get():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@functools.lru_cache(maxsize=2048)
def _secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def _is_secret(name: str) -> bool:
    """Cached for the short names that recur on every line; a hostile long one is checked uncached."""
    return _secret_name(name) if len(name) <= 64 else SECRET_NAME.search(name) is not None


_SCALARS = frozenset({type(None), bool, int, float})


def redact(value: Any, depth: int = 0) -> Any:
    """Copies ``value`` with secret-looking fields and known secret values masked, and size bounded."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth > MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        items = list(value.items())
        copied = {
            str(k)[:200]: REDACTED if _is_secret(str(k)) else v if type(v) in _SCALARS else redact(v, depth + 1)
            for k, v in items[:MAX_ITEMS]
        }
        if len(items) > MAX_ITEMS:
            copied["..."] = f"{len(items) - MAX_ITEMS} more"
        return copied
    if isinstance(value, (list, tuple)):
        copied_list = [redact(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            copied_list.append(f"... {len(value) - MAX_ITEMS} more")
        return copied_list
    if isinstance(value, str):
        text = scrub(value)
        return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "...(truncated)"
    return redact(repr(value), depth)


def _drop_below_level(_: Any, method_name: str, event_dict: dict) -> dict:
    """The record of what was deleted (``record=True``) is kept whatever the level."""
    if LEVELS.get(method_name, 20) < _LEVEL.get() and event_dict.get("record") is not True:
        raise structlog.DropEvent
    return event_dict


def _redact_processor(_: Any, __: str, event_dict: dict) -> dict:
    return redact(event_dict)


def _first_keys_first(_: Any, __: str, event_dict: dict) -> dict:
    ordered = {key: event_dict.pop(key) for key in FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


class _StdoutLogger:
    """Writes to whatever ``sys.stdout`` is at call time (FunctionGraph collects stdout into LTS)."""

    def msg(self, message: str) -> None:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()

    debug = info = warning = warn = error = critical = exception = msg


def _stdout_logger(*_: Any) -> _StdoutLogger:
    return _StdoutLogger()


class _StdoutHandler(logging.Handler):
    """Renders stdlib records (requests, urllib3, huaweicloudsdkcore) as the same JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
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
        structlog.processors.format_exc_info,
        _redact_processor,
        structlog.processors.EventRenamer("message"),
        _first_keys_first,
        structlog.processors.JSONRenderer(),
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


_configure()
logger = structlog.get_logger()


def _secret_values(secrets: Iterable[str]) -> tuple[str, ...]:
    """Longest first, so a secret containing another is masked whole. Values under 6 characters
    are not real keys or tokens; masking them everywhere would garble every line."""
    return tuple(sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True))


def start_invocation(level: str, secrets: Iterable[str], **keys: Any) -> None:
    """Resets the per-invocation state: nothing of the previous invocation leaks into this one."""
    number = LEVELS[level.lower()]
    if number != _library_level[0]:  # setLevel clears every logger's cache: only on change
        _library_level[0] = number
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(number)
    _LEVEL.set(number)
    _SECRETS.set(_secret_values(secrets))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**keys)
