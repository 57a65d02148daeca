"""The normalized payload every invocation returns, and its API Gateway response form."""

from __future__ import annotations

import json
from typing import Any

from .errors import REJECTION_STATUS
from .kps_client import Reply
from .targets import Target

INTERNAL_ERROR = "InternalError"


def target_result(
    target: Target,
    outcome: str,
    reply: Reply | None,
    duration_ms: float,
    failed_task_count: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One target's result. ``reply`` is KPS's last answer (None when nothing was sent)."""
    ok = reply is None or reply.ok
    return {
        "project_id": target.project_id,
        "region": target.region,
        "ok": ok,
        "outcome": outcome if ok else "failed",
        "http_status": reply.http_status if reply else None,
        "kps_request_id": reply.kps_request_id if reply else None,
        "failed_task_count": failed_task_count,
        "attempts": reply.attempts if reply else 0,
        "error": None if ok or reply is None else reply.error,
        "duration_ms": round(duration_ms, 1),
        **extra,
    }


def build_payload(
    *,
    trigger: str,
    request_id: str,
    dry_run: bool,
    results: list[dict[str, Any]],
    duration_ms: float,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    if error is not None:
        status = "failed" if error["code"] == INTERNAL_ERROR else "rejected"
    elif all(r["ok"] for r in results):
        status = "succeeded"
    elif any(r["ok"] for r in results):
        status = "partial"
    else:
        status = "failed"
    return {
        "ok": status == "succeeded",
        "status": status,
        "dry_run": dry_run,
        "trigger": trigger,
        "request_id": request_id,
        "results": results,
        "error": error,
        "duration_ms": round(duration_ms, 1),
    }


def http_status(payload: dict[str, Any]) -> int:
    """200 succeeded; 4xx/500 rejected by code; 504 out of time; 502 other KPS failures."""
    if payload["status"] == "succeeded":
        return 200
    error = payload["error"]
    if error is not None:
        return REJECTION_STATUS.get(error["code"], 500)
    if any((r["error"] or {}).get("code") == "DeadlineExceeded" for r in payload["results"]):
        return 504
    return 502


def apig_response(payload: dict[str, Any]) -> dict[str, Any]:
    """The only shape API Gateway accepts from a function; anything else becomes a 500."""
    return {
        "statusCode": http_status(payload),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload, separators=(",", ":")),
        "isBase64Encoded": False,
    }
