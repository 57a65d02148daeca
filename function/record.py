"""The record of what a target's DELETE removed (or a dry run would remove): ``tasks deleted`` and
``would delete`` log lines, findable in LTS by night, server, key pair, operation and error code.

DeleteAllFailedTask says nothing of what it removed: the listing before it is the only account.
Each task is masked, cut and rendered to its JSON once, as its page is read (``entry``), and kept in
that compact form; a record line is the invocation's usual line (rendered once per record by
``logs.render``, so it carries the same keys and is masked the same way) with the tasks spliced in.
Lines are bounded by construction, their fixed part included: each string copied from KPS is cut
(``bounded``), a line holds at most ``TASKS_PER_LINE`` tasks and at most ``LINE_TASK_BYTES`` of them,
and never more than ``logs.MAX_LINE`` in all, so the generic shrinker never touches a record line.
Tasks are grouped by ``operate_type`` and ``task_error_code``, which each line carries at its top
level with its ``task_count``, so LTS SQL can count them without unnesting arrays. Lines are written
while the invocation has time (``Deadline``); when it runs out, the rest is not written and a
``record cut short`` line (and the target's ``warning``) says how many tasks were left out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from . import logs
from .budget import Deadline

log = logs.logger

TASK_FIELDS = ("task_id", "operate_type", "server_id", "server_name", "keypair_name", "task_error_code", "task_time")
MAX_STRING = 256  # characters of any string copied from KPS into the sample or the record
MAX_ENCODED = 768  # bytes of its JSON form (non-ASCII is escaped to 6 or 12 bytes a character)
TASKS_PER_LINE = 25
LINE_TASK_BYTES = 8192
GROUP_KEYS = ("operate_type", "task_error_code")
# What a line's own keys (part, parts, task_count and the group's two keys, at most 2 * MAX_ENCODED) take
# beyond the group keys' JSON: the room left for tasks is counted after them.
LINE_KEYS_BYTES = 128
_SLOT = "\x00record line\x00"  # where a line's own keys and tasks go in the rendered fixed part
_SLOT_JSON = '"part": ' + json.dumps(_SLOT)


class Entry(NamedTuple):
    """One task as the record keeps it: its group, and its JSON (ASCII, masked, bounded)."""

    group: tuple[str | None, ...]
    text: str


def bounded(value: Any) -> str | None:
    """A string from KPS as the payload and the logs carry it: normalised (``logs.normalise``: no lone
    surrogate survives, so every field can be encoded), cut to ``MAX_STRING`` characters and
    ``MAX_ENCODED`` bytes of JSON, then masked; numbers become text; objects and lists are not copied."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        value = json.dumps(value)
    elif not isinstance(value, str):
        return f"<{type(value).__name__}>"
    return logs.mask(json_bounded(logs.normalise(value)[:MAX_STRING], MAX_ENCODED))


def json_bounded(text: str, most: int) -> str:
    """``text`` cut (halved until it fits) to at most ``most`` bytes of JSON: non-ASCII is escaped to 6
    or 12 bytes a character, so a cut by characters alone does not bound the payload."""
    if not (text.isascii() and text.isprintable()):  # else at most 2 + 2 * len(text) bytes of JSON
        while len(json.dumps(text)) > most:
            text = text[: len(text) // 2]
    return text


def task_of(raw: dict[str, Any]) -> dict[str, str | None]:
    """The fields kept of one listed task, each bounded and masked (bounded work: linear in its length)."""
    return {name: bounded(raw.get(name)) for name in TASK_FIELDS}


def entry(task: dict[str, str | None]) -> Entry:
    return Entry(
        tuple(task[key] for key in GROUP_KEYS), json.dumps({**task, "task_time_iso": iso_time(task["task_time"])})
    )


def iso_time(task_time: str | None) -> str | None:
    """KPS's epoch milliseconds as ISO-8601 UTC; ``None`` when it is not a plausible number."""
    if task_time is None or not task_time.isdigit() or len(task_time) > 15:
        return None
    try:
        moment = dt.datetime.fromtimestamp(int(task_time) / 1000, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _group_json(group: tuple[str | None, ...]) -> str:
    return json.dumps(dict(zip(GROUP_KEYS, group)))[1:-1]


def _chunks(entries: list[Entry], room: int) -> Iterator[tuple[tuple[str | None, ...], list[str]]]:
    """Groups by (operate_type, task_error_code) in order of first appearance, then cuts each group
    into lines of at most TASKS_PER_LINE tasks, and at most LINE_TASK_BYTES of tasks within the
    ``room`` a line's fixed part leaves (a task alone always fits: see ``logs.MAX_BOUND_BYTES``)."""
    groups: dict[tuple[str | None, ...], list[str]] = {}
    for group, text in entries:
        groups.setdefault(group, []).append(text)
    for group, members in groups.items():
        most = min(LINE_TASK_BYTES, room - len(_group_json(group)) - LINE_KEYS_BYTES)
        line: list[str] = []
        size = 0
        for text in members:
            if line and (len(line) == TASKS_PER_LINE or size + len(text) + 2 > most):
                yield group, line
                line, size = [], 0
            line.append(text)
            size += len(text) + 2
        yield group, line


def _line_keys(part: int, parts: int, group: tuple[str | None, ...], tasks: list[str]) -> str:
    return (
        f'"part": {part}, "parts": {parts}, {_group_json(group)}, '
        f'"task_count": {len(tasks)}, "tasks": [{", ".join(tasks)}]'
    )


def _no_tasks(message: str, own: dict[str, Any]) -> str:
    """The record's one line when it holds no task, in the form of every record line."""
    keys = {"part": 1, "parts": 1, **dict.fromkeys(GROUP_KEYS), "task_count": 0, "tasks": []}
    return logs.render("info", message, {**own, **keys})


def emit(
    message: str, fields: dict[str, Any], entries: list[Entry], incomplete: str | None, deadline: Deadline
) -> str | None:
    """Logs the record of one target: every entry exactly once, across ``parts`` lines, while time is
    left. ``incomplete`` says why the deleted set may hold more than these tasks (then ``complete`` is
    false). Returns why the record was cut short, if it was. A fault here is logged and swallowed:
    the target's result (a DELETE done) must stand."""
    written = 0
    try:
        own = {"record": True, **fields, "complete": incomplete is None, "incomplete_reason": incomplete}
        own["recorded"] = len(entries)
        head = tail = ""
        chunks: list[tuple[tuple[str | None, ...], list[str]]] = [((None, None), [])]
        if entries:  # else nothing to splice in: the one line is rendered as any other
            head, tail = logs.render("info", message, {**own, "part": _SLOT}).split(_SLOT_JSON, 1)
            chunks = list(_chunks(entries, logs.MAX_LINE - len(head) - len(tail)))
        for part, (group, tasks) in enumerate(chunks, start=1):
            if deadline.remaining() <= 0:
                reason = (
                    f"the invocation's time ran out: {len(entries) - written} of {len(entries)} tasks "
                    f"(parts {part}-{len(chunks)}) not recorded"
                )
                log.warning("record cut short", record=True, **fields, recorded=written, reason=reason)
                return reason
            logs.write(head + _line_keys(part, len(chunks), group, tasks) + tail if head else _no_tasks(message, own))
            written += len(tasks)
    except Exception as exc:  # the record must never undo the result it records
        log.exception("record failed", error_type=type(exc).__name__, error_message=str(exc)[:MAX_STRING], **fields)
    return None
