"""Which failed tasks a selective cleanup deletes: the ``select`` request field and ``KPS_SELECT``.

A selection is read whole before anything is sent, and anything it does not fully understand is
refused: an unknown key, a wrong type, a negative or non-finite age, an operate type KPS does not
document, an empty list. Conditions combine with AND, the values of one list with OR, and values are
compared exactly (no case folding, no patterns): a selection deletes what it names and nothing else.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from .errors import Rejected, json_type, named, unique_keys

# ListFailedTask's operate_type values, as the KPS API reference lists them.
OPERATE_TYPES = frozenset({"FAILED_RESET", "FAILED_REPLACE", "FAILED_UNBIND"})
LIST_KEYS = ("operate_type", "task_error_code", "server_id", "server_name", "keypair_name")
KEYS = ("older_than_hours", *LIST_KEYS)
MAX_VALUES = 100  # values in one list
MAX_VALUE_LENGTH = 256  # characters of one value (the longest string the function keeps from KPS)
MAX_TASK_TIME_DIGITS = 15  # epoch milliseconds up to year 33658: anything longer is no task_time
HOUR_MS = 3_600_000
# 2010-01-01 in epoch ms, before KPS existed: an earlier task_time (a value in seconds, "0", a padded
# "000000000000001") is no usable time, never a task "old" enough for an age condition.
MIN_TASK_TIME_MS = 1_262_304_000_000
MAX_AGE_HOURS = 1_000_000  # over a century: anything more is a mistake, not a policy


class SelectionError(ValueError):
    """A selection that cannot be read; the message names the problem."""


class Selection(NamedTuple):
    """A validated selection (immutable and hashable: it travels on a ``Target``; a NamedTuple costs
    a fraction of a dataclass at import). ``None`` means "no condition"."""

    older_than_hours: float | None = None
    operate_type: frozenset[str] | None = None
    task_error_code: frozenset[str] | None = None
    server_id: frozenset[str] | None = None
    server_name: frozenset[str] | None = None
    keypair_name: frozenset[str] | None = None

    def matches(self, task: dict[str, Any], now_ms: int) -> bool:
        """Whether a listed task (KPS's raw object) is selected at ``now_ms``. A task whose
        ``task_time`` is missing, no epoch-milliseconds value or before ``MIN_TASK_TIME_MS`` is never
        old enough: an age condition does not select it. A field that is not a string matches no list."""
        for key in LIST_KEYS:
            wanted, value = getattr(self, key), task.get(key)
            if wanted is not None and not (isinstance(value, str) and value in wanted):
                return False
        if self.older_than_hours is None:
            return True
        moment = task_time_ms(task.get("task_time"))
        if moment is None or moment < MIN_TASK_TIME_MS:
            return False
        return now_ms - moment >= self.older_than_hours * HOUR_MS


def task_time_ms(value: Any) -> int | None:
    """KPS's ``task_time`` (epoch milliseconds, a string of digits, or a JSON integer) as an int,
    or ``None`` when it is neither (as ``record.iso_time`` reads it)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value < 10**MAX_TASK_TIME_DIGITS else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_TASK_TIME_DIGITS:
        return int(value)
    return None


def _outside(value: float) -> str:
    """An out-of-range age described, never written out (``str()`` of an integer past 4,300 digits raises)."""
    return "a negative number" if value < 0 else f"a number above {MAX_AGE_HOURS}"


def _age(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SelectionError(f"older_than_hours must be a number, got {json_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SelectionError(f"older_than_hours must be a finite number of hours, got {value!r}")
    if not 0 <= value <= MAX_AGE_HOURS:  # compared as given: an integer too large for a float is refused here
        raise SelectionError(f"older_than_hours must be from 0 to {MAX_AGE_HOURS} hours, got {_outside(value)}")
    return float(value)


def _values(key: str, value: Any) -> frozenset:
    if not isinstance(value, list):
        raise SelectionError(f"{key} must be a list of strings, got {json_type(value)}")
    if not value:
        raise SelectionError(f"{key} is an empty list: it would select nothing; leave it out instead")
    if len(value) > MAX_VALUES:
        raise SelectionError(f"{key} holds {len(value)} values, more than {MAX_VALUES}")
    for item in value:
        if not isinstance(item, str) or not item:
            got = "an empty string" if item == "" else json_type(item)
            raise SelectionError(f"each value of {key} must be a non-empty string, got {got}")
        if len(item) > MAX_VALUE_LENGTH:
            raise SelectionError(f"a value of {key} is longer than {MAX_VALUE_LENGTH} characters")
    if key == "operate_type":
        unknown = sorted(set(value) - OPERATE_TYPES)
        if unknown:
            raise SelectionError(
                f"operate_type {named(unknown[0], 'a value')} is not one KPS lists ({', '.join(sorted(OPERATE_TYPES))})"
            )
    return frozenset(value)


def from_object(value: Any) -> Selection:
    """The selection a JSON object describes; raises ``SelectionError`` naming the problem."""
    if not isinstance(value, dict):
        raise SelectionError(f"must be a JSON object, got {json_type(value)}")
    unknown = next((k for k in value if k not in KEYS), KEYS)  # the first, found without walking or str()-ing all
    if unknown is not KEYS:
        raise SelectionError(f"unknown key {named(unknown)} (known: {', '.join(KEYS)})")
    if not value:
        raise SelectionError('names no condition; to delete every task leave it out (or {"older_than_hours": 0})')
    fields: dict[str, Any] = {}
    for key, item in value.items():
        fields[key] = _age(item) if key == "older_than_hours" else _values(key, item)
    return Selection(**fields)


def parse(value: Any) -> Selection:
    """An event's ``select``: any problem is ``InvalidEvent``, refused before anything is sent; null
    too (an unset template variable must not mean "no selection", which deletes everything)."""
    if value is None:
        raise Rejected(
            "InvalidEvent", "select: is null; omit select to use KPS_SELECT (or delete all), or give a selection"
        )
    try:
        return from_object(value)
    except SelectionError as exc:
        raise Rejected("InvalidEvent", f"select: {exc}") from None


def parse_setting(raw: str) -> Selection:
    """``KPS_SELECT``: the same object as JSON text (``settings`` names the setting in the error)."""
    try:
        value = json.loads(raw, object_pairs_hook=unique_keys(SelectionError))
    except SelectionError:
        raise
    except (ValueError, RecursionError):
        raise SelectionError("not valid JSON") from None
    return from_object(value)
