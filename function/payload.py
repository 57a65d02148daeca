"""The normalized payload every invocation returns, and its API Gateway response form."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from .errors import FAILURE_STATUS, REJECTION_STATUS

# API Gateway methods -> whether the method forces a dry run. Anything else is refused 405.
HTTP_METHODS = {"GET": True, "POST": False, "DELETE": False}
ALLOW = ", ".join(HTTP_METHODS)

if TYPE_CHECKING:  # the payload needs only their shape; importing api would pull requests in
    from .api import Reply
    from .settings import Target


def target_result(
    target: Target,
    outcome: str,
    reply: Reply,
    started: float,
    *,
    failed_task_count: int | None = None,
    attempts: int | None = None,
    sample: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One target's result from KPS's last answer; ``sample`` appears when the tasks were listed."""
    result = {
        "project_id": target.project_id,
        "region": target.region,
        "ok": reply.ok,
        "outcome": outcome if reply.ok else "failed",
        "http_status": reply.http_status,
        "kps_request_id": reply.kps_request_id,
        "failed_task_count": failed_task_count,
        "attempts": reply.attempts if attempts is None else attempts,
        "error": None if reply.ok else reply.error,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if sample is not None:
        result["sample"] = sample
    return result


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
        status = "failed" if error["code"] in FAILURE_STATUS else "rejected"
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
        return REJECTION_STATUS.get(error["code"]) or FAILURE_STATUS.get(error["code"], 500)
    if any((r["error"] or {}).get("code") == "DeadlineExceeded" for r in payload["results"]):
        return 504
    return 502


def apig_response(payload: dict[str, Any]) -> dict[str, Any]:
    """The only shape API Gateway accepts from a function; anything else becomes a 500. A 405 says
    which methods are allowed (RFC 9110, 15.5.6)."""
    headers = {"Content-Type": "application/json"}
    if (payload["error"] or {}).get("code") == "MethodNotAllowed":
        headers["Allow"] = ALLOW
    return {
        "statusCode": http_status(payload),
        "headers": headers,
        "body": json.dumps(payload, separators=(",", ":")),
        "isBase64Encoded": False,
    }
