"""One metrics line per invocation, flat numbers that LTS log structuring turns into metrics."""

from __future__ import annotations

from typing import Any

from .logs import logger as log


def _count(results: list[dict[str, Any]], outcome: str) -> int:
    return sum(r["failed_task_count"] or 0 for r in results if r["ok"] and r["outcome"] == outcome)


def summarise(payload: dict[str, Any]) -> dict[str, Any]:
    results = payload["results"]
    return {
        "tasks_deleted": _count(results, "deleted"),
        "tasks_found": _count(results, "would_delete"),
        "targets": len(results),
        "targets_ok": sum(r["ok"] for r in results),
        "targets_failed": sum(not r["ok"] for r in results),
        "attempts": sum(r["attempts"] for r in results),
        "duration_ms": payload["duration_ms"],
    }


def emit(payload: dict[str, Any]) -> None:
    """Logs the canonical summary line and the metrics line."""
    figures = summarise(payload)
    error = payload["error"]
    log.info(
        "invocation finished",
        status=payload["status"],
        ok=payload["ok"],
        dry_run=payload["dry_run"],
        error_code=error["code"] if error else None,
        **figures,
    )
    log.info(
        "metrics",
        metric_namespace="kps_failed_task_cleaner",
        status=payload["status"],
        succeeded=int(payload["ok"]),
        **figures,
    )
