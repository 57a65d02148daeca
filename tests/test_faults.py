"""The fault matrix: each fault the emulator can be told to produce, and what the function makes of it.

Every row runs the real handler over real sockets and reads the outcome, the attempts (the payload's
and the emulator's own count) and the time taken. The only bounds on time are correctness bounds:
the function must answer within its invocation's budget.
"""

from __future__ import annotations

import email.utils
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import PROJECT, apig_event, settled

from devtools.context import FakeContext

pytestmark = pytest.mark.usefixtures("delete_only")  # these tests look at the DELETE call alone

THROTTLED = {
    "error_code": "APIGW.0308",
    "error_msg": "The throttling threshold has been reached: policy user over ratelimit",
}
KPS_DOWN = {"error_code": "KPS.0003", "error_msg": "dependency unavailable"}


@dataclass
class Row:
    fault: dict[str, Any]
    status: str  # payload status
    attempts: int
    code: str | None  # the target's error code
    http: int  # what an API Gateway caller gets
    deleted: bool | None = None  # tasks gone afterwards; defaults to "the call succeeded"
    timeout: str = "10"  # KPS_TIMEOUT_SECONDS; the timing rows set 0.3 s, to retry quickly


MATRIX = {
    "429 once, then ok": Row({"status": 429, "body": THROTTLED}, "succeeded", 2, None, 200),
    "429 with Retry-After, then ok": Row(
        {"status": 429, "body": THROTTLED, "retry_after": "0"}, "succeeded", 2, None, 200
    ),
    "500 once, then ok": Row({"status": 500, "body": KPS_DOWN}, "succeeded", 2, None, 200),
    "502 HTML page, then ok": Row({"status": 502, "html": True}, "succeeded", 2, None, 200),
    "503 HTML page, then ok": Row({"status": 503, "html": True}, "succeeded", 2, None, 200),
    "504 HTML page, then ok": Row({"status": 504, "html": True}, "succeeded", 2, None, 200),
    "dropped connection, then ok": Row({"drop": True}, "succeeded", 2, None, 200),
    "read timeout, then ok": Row({"delay": 1.0}, "succeeded", 2, None, 200, timeout="0.3"),
    "trickled headers, then ok": Row(
        {"trickle": "headers", "trickle_every": 0.05}, "succeeded", 2, None, 200, timeout="0.3"
    ),
    "accepted, never answered, then ok": Row({"stall": True}, "succeeded", 2, None, 200, timeout="0.3"),
    "429 every time": Row({"status": 429, "body": THROTTLED, "times": 9}, "failed", 4, "APIGW.0308", 502),
    "500 every time": Row({"status": 500, "body": KPS_DOWN, "times": 9}, "failed", 4, "KPS.0003", 502),
    "502 HTML every time": Row({"status": 502, "html": True, "times": 9}, "failed", 4, "HTTP.502", 502),
    "dropped every time": Row({"drop": True, "times": 9}, "failed", 4, "ConnectionError", 502),
    # The ambiguous failure: KPS carried out the DELETE, the answer came too late. Reported as failed
    # (retryable); trying again is safe because deleting all failed tasks is idempotent.
    "read timeout every time": Row(
        {"delay": 1.0, "times": 9}, "failed", 4, "Timeout", 502, deleted=True, timeout="0.3"
    ),
    # Each byte inside the per-read timeout: only the attempt's wall-clock bound ends these.
    "trickled headers every time": Row(
        {"trickle": "headers", "trickle_every": 0.05, "times": 9},
        "failed",
        4,
        "Timeout",
        502,
        deleted=True,
        timeout="0.3",
    ),
    "trickled body every time": Row(
        {"trickle": "body", "trickle_every": 0.05, "status": 200, "body": {"pad": "x" * 200}, "times": 9},
        "failed",
        4,
        "Timeout",
        502,
        timeout="0.3",
    ),
    "accepted, never answered, every time": Row(
        {"stall": True, "times": 9}, "failed", 4, "Timeout", 502, timeout="0.3"
    ),
    # The DELETE went through; its answer is refused unread (retrying would get the same).
    # Long enough for the emulator to write the first 2 MiB on a loaded machine: the bound, not the clock, stops these.
    "200 with 300 MB streamed": Row(
        {"stream_bytes": 300_000_000}, "failed", 1, "InvalidResponse", 502, deleted=True, timeout="10"
    ),
    "200 announcing 300 MB": Row(
        {"stream_bytes": 300_000_000, "declare_length": True},
        "failed",
        1,
        "InvalidResponse",
        502,
        deleted=True,
        timeout="10",
    ),
    "200 nested 100,000 deep": Row(
        {"status": 200, "body": b"[" * 100_000 + b"]" * 100_000}, "failed", 1, "InvalidResponse", 502
    ),
    "302 redirect elsewhere": Row(
        {"status": 302, "headers": {"Location": "http://127.0.0.1:9/elsewhere"}}, "failed", 1, "HTTP.302", 502
    ),
    "400 parameter error": Row(
        {"status": 400, "body": {"error_code": "KPS.0002", "error_msg": "parameter error"}},
        "failed",
        1,
        "KPS.0002",
        502,
    ),
    "401 bad authentication": Row(
        {"status": 401, "body": {"error_code": "APIGW.0301", "error_msg": "x"}}, "failed", 1, "APIGW.0301", 502
    ),
    "403 no permission": Row(
        {"status": 403, "body": {"error_code": "KPS.9003", "error_msg": "no permission"}}, "failed", 1, "KPS.9003", 502
    ),
    "404 HTML page": Row({"status": 404, "html": True}, "failed", 1, "HTTP.404", 502),
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_fault_matrix(kps, invoke, settings, name):
    row = MATRIX[name]
    settings["KPS_TIMEOUT_SECONDS"] = row.timeout
    kps.inject(**row.fault)
    started = time.monotonic()
    run = invoke(apig_event({"project_id": PROJECT}), timeout_seconds=30)
    taken = time.monotonic() - started
    [result] = run.payload["results"]
    assert (run.payload["status"], result["attempts"], (result["error"] or {}).get("code")) == (
        row.status,
        row.attempts,
        row.code,
    )
    # The last attempt given up may be read, or a late answer carried out, after the handler returned.
    assert len(settled(kps, at_least=row.attempts)) == row.attempts, "the emulator saw exactly the attempts reported"
    assert run.result["statusCode"] == row.http
    if row.code:
        assert result["error"]["retryable"] is (row.attempts > 1)
    deleted = row.status == "succeeded" if row.deleted is None else row.deleted
    assert (kps.failed_tasks(PROJECT) == []) is deleted
    assert taken < 30, f"{name}: answered after {taken:.2f}s, past the invocation's 30 s"
    print(
        f"fault matrix | {name:38} | {run.payload['status']:9} | attempts {result['attempts']} | {taken * 1000:7.1f} ms"
    )


def test_connection_refused_is_retried_then_reported(invoke, settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        settings["KPS_ENDPOINT"] = f"http://127.0.0.1:{port}"
        run = invoke({"project_id": PROJECT})
    [result] = run.payload["results"]
    assert (result["attempts"], result["error"]["code"], result["error"]["retryable"]) == (4, "ConnectionError", True)


def test_retry_after_in_seconds_is_honoured(kps, invoke):
    kps.inject(status=429, body=THROTTLED, retry_after="1")
    run = invoke({"project_id": PROJECT})
    assert run.payload["status"] == "succeeded"
    first, second = kps.requests
    assert second.started - first.ended >= 0.95, "waited at least what Retry-After asked"


def test_retry_after_as_an_http_date_is_honoured(kps, invoke):
    date = int(time.time()) + 2  # the date has one-second resolution
    kps.inject(status=503, html=True, retry_after=email.utils.formatdate(date, usegmt=True))
    run = invoke({"project_id": PROJECT})
    assert run.payload["status"] == "succeeded"
    _, second = kps.requests
    wall = time.time() - time.monotonic()  # the emulator logs monotonic times
    assert second.started + wall >= date - 0.01, "the retry waited until the date Retry-After names"


def test_max_attempts_is_a_setting(kps, invoke, settings):
    settings["KPS_MAX_ATTEMPTS"] = "2"
    kps.inject(status=500, body=KPS_DOWN, times=9)
    run = invoke({"project_id": PROJECT})
    assert run.payload["results"][0]["attempts"] == len(kps.requests) == 2


def test_kps_that_accepts_and_never_answers_ends_in_deadline_exceeded(kps, invoke):
    kps.inject(delay=60, times=9)
    started = time.monotonic()
    run = invoke(apig_event({"project_id": PROJECT}), timeout_seconds=2)
    taken = time.monotonic() - started
    [result] = run.payload["results"]
    assert run.result["statusCode"] == 504
    assert run.payload["status"] == "failed"
    assert result["error"]["code"] == "DeadlineExceeded"
    assert result["error"]["retryable"] is True
    assert result["attempts"] == len(kps.requests) == 1
    assert taken < 2, f"answered after {taken:.2f}s: past the 2 s invocation"


@pytest.mark.parametrize(
    ("fault", "code"),
    [({"status": 429, "body": THROTTLED}, "APIGW.0308"), ({"status": 503, "html": True}, "HTTP.503")],
    ids=["throttled", "unavailable"],
)
def test_a_retry_after_longer_than_the_budget_is_not_waited_for_and_reported_as_the_servers(kps, invoke, fault, code):
    """The server asked for a wait the invocation does not have: it stops at once with the server's own error
    (throttled, not too slow), saying so, rather than DeadlineExceeded after time it never used."""
    kps.inject(**fault, retry_after="120")
    started = time.monotonic()
    run = invoke(apig_event({"project_id": PROJECT}), timeout_seconds=3)
    taken = time.monotonic() - started
    [result] = run.payload["results"]
    assert (run.result["statusCode"], result["error"]["code"], result["attempts"]) == (502, code, 1)
    assert result["error"]["retryable"] is True and result["http_status"] == fault["status"]
    assert "its Retry-After of 120 s is more than the" in result["error"]["message"]
    assert len(kps.requests) == 1
    assert taken < 3


def test_each_attempt_timeout_is_cut_to_what_the_invocation_has_left(kps, invoke, settings):
    settings["KPS_TIMEOUT_SECONDS"] = "60"
    kps.inject(delay=60)
    context = FakeContext(user_data=settings, timeout_seconds=1.5)
    run = invoke({"project_id": PROJECT}, context=context)
    assert run.payload["results"][0]["error"]["code"] == "DeadlineExceeded"
    assert context.getRemainingTimeInMilliSeconds() > 0, "returned while the invocation still had time"
