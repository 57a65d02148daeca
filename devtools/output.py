"""Output of the local tools for people: rendered log lines and one result line per invocation.

The deployed function writes strict JSON lines; on a terminal the local tools render each line with structlog's
``ConsoleRenderer`` (as Powertools' development mode does) and end an invocation with one result line.
``--json`` (and any output that is not a terminal) keeps the raw lines; ``--quiet`` keeps the result line only.
"""

from __future__ import annotations

import json
import threading
from typing import Any, TextIO

import structlog

PRETTY, JSON, QUIET = "pretty", "json", "quiet"
OUT_LOCK = threading.Lock()  # one whole line per write, whichever thread writes it
# Keys every line of an invocation carries: said once by the result line, not on every rendered line.
_INVOCATION_KEYS = frozenset(
    {"service", "function_name", "function_version", "function_request_id", "cold_start", "correlation_id", "trigger"}
)


def mode(json_flag: bool, quiet: bool, stream: TextIO) -> str:
    """``--quiet`` wins, then ``--json``; otherwise rendered only for a terminal."""
    if quiet:
        return QUIET
    return JSON if json_flag or not stream.isatty() else PRETTY


def _readable(value: Any) -> Any:
    """A list of tasks as their IDs: a record line of 25 tasks stays one line."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "task_id" in v for v in value):
        return [v["task_id"] for v in value]
    return value


class LineRenderer:
    """A stand-in for ``sys.stdout`` while the function runs: each JSON line rendered, or dropped when quiet."""

    def __init__(self, out: TextIO, how: str) -> None:
        self._out, self._how = out, how
        self._colors = how == PRETTY and out.isatty()
        self._render = structlog.dev.ConsoleRenderer(
            colors=self._colors, exception_formatter=structlog.dev.plain_traceback, event_key="message"
        )
        self._pending = ""

    def isatty(self) -> bool:
        return self._out.isatty()

    def render(self, line: str) -> str:
        try:
            event = json.loads(line)
        except ValueError:
            return line
        if not isinstance(event, dict):
            return line
        fields = {k: _readable(v) for k, v in event.items() if k not in _INVOCATION_KEYS and v is not None}
        if isinstance(fields.get("timestamp"), str):
            fields["timestamp"] = fields["timestamp"][11:23]  # the time of day: the date is today's
        return str(self._render(None, str(fields.get("level", "info")), fields))

    def write(self, text: str) -> int:
        with OUT_LOCK:
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
            if self._how != QUIET:
                for line in lines:
                    self._out.write((self.render(line) if self._how == PRETTY else line) + "\n")
        return len(text)

    def flush(self) -> None:
        self._out.flush()


def for_reading(payload: Any) -> Any:
    """The payload with each result's ``sample`` as its count: the record lines above name the tasks."""
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        return payload
    results = [
        {**r, "sample": f"{len(r['sample'])} tasks (--json prints them)"}
        if isinstance(r, dict) and isinstance(r.get("sample"), list)
        else r
        for r in payload["results"]
    ]
    return {**payload, "results": results}


def pretty_json(value: Any, indent: str = "") -> str:
    """JSON indented, each object of plain values on one line (a task of the sample is one row)."""
    inner = indent + "  "
    if isinstance(value, dict) and any(isinstance(v, (dict, list)) and v for v in value.values()):
        items = [f"{inner}{json.dumps(k)}: {pretty_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + pretty_json(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def _count(results: list[dict[str, Any]]) -> str:
    counted = [r.get("failed_task_count") for r in results if r.get("outcome") in ("deleted", "would_delete")]
    if any(c is None for c in counted):
        known = sum(c for c in counted if isinstance(c, int))
        return f"{known}+ (some not counted)" if known else "an unknown number of"
    return str(sum(counted))


def summary(payload: dict[str, Any]) -> list[str]:
    """Status, tasks deleted or that would be, targets, error codes: the words of a result line."""
    results = [r for r in payload.get("results") or [] if isinstance(r, dict)]
    words = [str(payload.get("status"))]
    if results:
        words.append(f"{'would delete' if payload.get('dry_run') else 'deleted'} {_count(results)}")
        words.append(f"targets {sum(1 for r in results if r.get('ok'))}/{len(results)} ok")
    elif payload.get("dry_run") and payload.get("status") != "rejected":
        words.append("dry run")
    code = (payload.get("error") or {}).get("code")
    codes = [code] if code else sorted({str((r.get("error") or {}).get("code")) for r in results if r.get("error")})
    if codes:
        words.append("error " + ", ".join(codes))
    return words


def result_line(payload: Any, http_status: int | None = None, hint: str = "") -> str:
    """One line: status, HTTP status where there is one, tasks, targets, error code, duration."""
    words = summary(payload) if isinstance(payload, dict) else ["no payload"]
    if http_status is not None:
        words.insert(1, f"HTTP {http_status}")
    duration = payload.get("duration_ms") if isinstance(payload, dict) else None
    if isinstance(duration, (int, float)):
        words.append(f"{duration:.0f} ms")
    return "result: " + "  ".join(words) + (f"  ({hint})" if hint else "")
