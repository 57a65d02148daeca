"""The record of what a target's DELETE removed (or a dry run would remove): ``tasks deleted`` and
``would delete`` log lines, findable in LTS by night, server, key pair, operation and error code.

DeleteAllFailedTask says nothing of what it removed: the listing before it is the only account.
Every line is bounded by construction, so that ``logs.redact`` passes it whole: each string copied
from KPS is cut (``bounded``), a line holds at most ``TASKS_PER_LINE`` tasks (``logs.MAX_ITEMS`` is
50) and at most ``LINE_TASK_BYTES`` of them as JSON. Tasks are grouped by ``operate_type`` and
``task_error_code``, which each line carries at its top level with its ``task_count``, so LTS SQL
can count them without unnesting arrays.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from .logs import logger as log

TASK_FIELDS = ("task_id", "operate_type", "server_id", "server_name", "keypair_name", "task_error_code", "task_time")
MAX_STRING = 256  # characters of any string copied from KPS into the sample or the record
MAX_ENCODED = 768  # bytes of its JSON form (non-ASCII is escaped to 6 or 12 bytes a character)
TASKS_PER_LINE = 25
LINE_TASK_BYTES = 8192
GROUP_KEYS = ("operate_type", "task_error_code")


def bounded(value: Any) -> str | None:
    """A string from KPS as the payload and the logs carry it: at most ``MAX_STRING`` characters and
    ``MAX_ENCODED`` bytes of JSON; numbers become text; objects and lists are not copied."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        value = json.dumps(value)
    elif not isinstance(value, str):
        return f"<{type(value).__name__}>"
    text = value[:MAX_STRING]
    while len(json.dumps(text)) > MAX_ENCODED:
        text = text[: len(text) // 2]
    return text


def task_of(raw: dict[str, Any]) -> dict[str, str | None]:
    """The fields kept of one listed task, each bounded."""
    return {name: bounded(raw.get(name)) for name in TASK_FIELDS}


def iso_time(task_time: str | None) -> str | None:
    """KPS's epoch milliseconds as ISO-8601 UTC; ``None`` when it is not a plausible number."""
    if task_time is None or not task_time.isdigit() or len(task_time) > 15:
        return None
    try:
        moment = dt.datetime.fromtimestamp(int(task_time) / 1000, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _chunks(tasks: list[dict[str, str | None]]) -> Iterator[tuple[tuple[str | None, ...], list[dict[str, Any]]]]:
    """Groups by (operate_type, task_error_code) in order of first appearance, then cuts each group
    into lines of at most TASKS_PER_LINE tasks and LINE_TASK_BYTES of JSON (a task alone always fits)."""
    groups: dict[tuple[str | None, ...], list[dict[str, str | None]]] = {}
    for task in tasks:
        groups.setdefault(tuple(task[key] for key in GROUP_KEYS), []).append(task)
    for key, members in groups.items():
        line: list[dict[str, Any]] = []
        size = 0
        for task in members:
            entry = {**task, "task_time_iso": iso_time(task["task_time"])}
            length = len(json.dumps(entry))
            if line and (len(line) == TASKS_PER_LINE or size + length > LINE_TASK_BYTES):
                yield key, line
                line, size = [], 0
            line.append(entry)
            size += length
        yield key, line


def emit(message: str, fields: dict[str, Any], tasks: list[dict[str, str | None]], incomplete: str | None) -> None:
    """Logs the record of one target: every task in ``tasks`` exactly once, across ``parts`` lines.
    ``incomplete`` says why the deleted set may hold more than these tasks (then ``complete`` is false).
    A fault here is logged and swallowed: the target's result (a DELETE done) must stand."""
    try:
        chunks = list(_chunks(tasks)) or [((None, None), [])]
        for part, (key, line) in enumerate(chunks, start=1):
            log.info(
                message,
                record=True,
                **fields,
                complete=incomplete is None,
                incomplete_reason=incomplete,
                recorded=len(tasks),
                part=part,
                parts=len(chunks),
                **dict(zip(GROUP_KEYS, key)),
                task_count=len(line),
                tasks=line,
            )
    except Exception as exc:  # noqa: BLE001 - the record must never undo the result it records
        log.exception("record failed", error_type=type(exc).__name__, error_message=str(exc)[:MAX_STRING], **fields)
