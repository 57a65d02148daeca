"""The normalized payload every invocation returns, and its API Gateway response form."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from .errors import FAILURE_STATUS, REJECTION_STATUS

# API Gateway methods -> whether the method forces a dry run. Anything else is refused 405.
HTTP_METHODS = {"GET": True, "POST": False, "DELETE": False}
ALLOW = ", ".join(HTTP_METHODS)
# FunctionGraph answers a synchronous invocation of at most 6 MB (reference/functiongraph.md): the answer,
# as the runtime sends it (an API Gateway body is JSON inside JSON), is kept under this, with room for
# the runtime's own envelope. Only samples give way: everything else in a result is bounded already.
MAX_ANSWER_BYTES = 5_500_000
SAMPLE_STEPS = (50, 25, 12, 6, 3, 1, 0)  # tasks each sample keeps, tried in turn until the answer fits
# Results whose samples cannot reach the limit whatever they hold: 50 tasks of at most 7 fields of 768
# bytes, doubled by the API Gateway body's escaping, with the result's other bounded fields, is < 600 KB.
FEW_RESULTS = 8

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
    warning: str | None = None,
    selection: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One target's result from KPS's last answer; ``sample`` appears when the tasks were listed, the
    ``selection`` counts (selected, kept, already_gone, left, unconfirmed) when a selection chose the tasks."""
    result = _result(
        target,
        started,
        ok=reply.ok,
        outcome=outcome if reply.ok else "failed",
        http_status=reply.http_status,
        kps_request_id=reply.kps_request_id,
        failed_task_count=failed_task_count,
        attempts=reply.attempts if attempts is None else attempts,
        error=None if reply.ok else reply.error,
        warning=warning,
    )
    if sample is not None:
        result["sample"] = sample
    result.update(selection or {})
    return result


def out_of_time_result(target: Target) -> dict[str, Any]:
    """A target whose turn came after the invocation's deadline: nothing was sent for it."""
    message = "the invocation's time budget ran out before this target started; nothing was sent"
    return _failed_without_reply(target, time.monotonic(), "DeadlineExceeded", message, retryable=True)


def internal_error_result(target: Target, started: float, exc: BaseException) -> dict[str, Any]:
    """A target whose cleaning raised (a bug, or a reply nothing parsed safely): its own failure, never
    the invocation's. Its KPS calls' figures are lost with the exception; a DELETE may have been sent."""
    message = f"unexpected {type(exc).__name__} while cleaning this target (a DELETE may have been sent); see the logs"
    return _failed_without_reply(target, started, "InternalError", message, retryable=False)


def _failed_without_reply(target: Target, started: float, code: str, message: str, *, retryable: bool) -> dict:
    """A failed result that no KPS answer describes: no status, no request ID, no count, no attempts."""
    return _result(
        target,
        started,
        ok=False,
        outcome="failed",
        http_status=None,
        kps_request_id=None,
        failed_task_count=None,
        attempts=0,
        error={"code": code, "message": message, "retryable": retryable},
        warning=None,
    )


def _result(
    target: Target,
    started: float,
    *,
    ok: bool,
    outcome: str,
    http_status: int | None,
    kps_request_id: str | None,
    failed_task_count: int | None,
    attempts: int,
    error: dict[str, Any] | None,
    warning: str | None,
) -> dict[str, Any]:
    """Every result has every key, in this order."""
    return {
        "project_id": target.project_id,
        "region": target.region,
        "ok": ok,
        "outcome": outcome,
        "http_status": http_status,
        "kps_request_id": kps_request_id,
        "failed_task_count": failed_task_count,
        "attempts": attempts,
        "error": error,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
        "warning": warning,
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


def _size(value: Any, http: bool) -> int:
    text = json.dumps(value, separators=(",", ":")) if http else json.dumps(value)
    return len(json.dumps(text)) - 2 if http else len(text)


def within_answer_limit(payload: dict[str, Any], *, http: bool) -> dict[str, Any]:
    """The payload with its samples shrunk (the same number of tasks in each, down to none) until the
    answer fits ``MAX_ANSWER_BYTES``, however many targets and tasks; ``samples_limited`` then says how
    many tasks each sample kept at most. Counts, outcomes and the record are never cut. Server text is
    bounded in bytes (``api.clean_text``), so results without samples fit by construction (tests:
    ``test_the_worst_sweep_fits_without_samples``); should they not, the servers' messages and request
    IDs are emptied as a last resort, and ``samples_limited`` is 0. Never raises."""
    results = payload["results"]
    if len(results) <= FEW_RESULTS or _size(payload, http) <= MAX_ANSWER_BYTES:  # the usual case: one encode
        return payload
    sampled = [r for r in results if r.get("sample")]
    sizes = [[_size(task, http) + 1 for task in r["sample"]] for r in sampled]
    bare = [{**r, "sample": []} if r.get("sample") else r for r in results]
    room = MAX_ANSWER_BYTES - _size({**payload, "results": bare}, http)
    most = next((n for n in SAMPLE_STEPS if sum(sum(s[:n]) for s in sizes) <= room), None)
    if most is None:
        bare = [{**r, "kps_request_id": None, "error": r["error"] and {**r["error"], "message": ""}} for r in bare]
        return {**payload, "results": bare, "samples_limited": 0}
    if not sampled or most >= max(map(len, sizes)):
        return payload
    for result in sampled:
        result["sample"] = result["sample"][:most]
    return {**payload, "samples_limited": most}


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
