"""A short per-target table for people: printed by `make invoke` and `make serve` under the payload."""

from __future__ import annotations

from typing import Any

# (heading, width, right-aligned)
COLUMNS = (
    ("project", 32, False),
    ("region", 16, False),
    ("outcome", 12, False),
    ("count", 5, True),
    ("attempts", 8, True),
    ("error", 0, False),
)


def _line(cells: list[str]) -> str:
    parts = [c.rjust(w) if right else c.ljust(w) for c, (_, w, right) in zip(cells, COLUMNS)]
    return "  ".join(parts).rstrip()


def target_table(payload: dict[str, Any]) -> str:
    """One line per result: project, region, outcome, failed-task count, attempts, error code."""
    lines = [_line([name for name, _, _ in COLUMNS])]
    for r in payload.get("results", []):
        values = (
            r.get("project_id"),
            r.get("region"),
            r.get("outcome"),
            r.get("failed_task_count"),
            r.get("attempts"),
            (r.get("error") or {}).get("code"),
        )
        lines.append(_line(["-" if v is None else str(v) for v in values]))
    return "\n".join(lines)


def wants_table(payload: dict[str, Any]) -> bool:
    """After a run with more than one target (the result line counts them; the table says which)."""
    return len(payload.get("results") or []) > 1
