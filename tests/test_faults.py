"""The fault matrix: each fault the emulator can be told to produce, and what the function makes of it.

Every row runs the real handler over real sockets and reads the outcome, the attempts (the payload's
and the emulator's own count) and the time taken. The only bounds on time are correctness bounds:
the function must answer within its invocation's budget.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import PROJECT, apig_event, deletes, settled
from servers import RawReply

from devtools.context import FakeContext
from function import api
from function.budget import SAFETY_MARGIN_SECONDS

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


# --- Retry-After: RFC 9110's forms only; anything else is absent (the backoff applies) ---------------------------


def _not_retried(run: Any) -> dict[str, Any]:
    """The one target's result, checked to be the throttle the server answered, reported as a wait not made."""
    [result] = run.payload["results"]
    if "statusCode" in run.result:  # an API Gateway call: the target's failure is the gateway's 502
        assert run.result["statusCode"] == 502, run.result["statusCode"]
    assert (result["error"]["code"], result["error"]["retryable"]) == ("APIGW.0308", True), result["error"]
    assert "Retry-After of" in result["error"]["message"] and "not retried" in result["error"]["message"]
    return result


def test_a_retry_after_given_twice_is_still_the_servers_wait(invoke, settings):
    """Two ``Retry-After: 120`` lines (a gateway in front adding its own) reach the function joined, "120, 120":
    each part is read, and the longest wait is the server's, so the call is not asked again sooner."""
    body = json.dumps(THROTTLED).encode()
    server = RawReply(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 120\r\n"
        b"Retry-After: 120\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    settings.update(KPS_ENDPOINT=server.url)
    try:
        run = invoke(apig_event({"project_id": PROJECT}), timeout_seconds=3)
    finally:
        server.close()
    assert len(server.received) == 1, f"{len(server.received)} DELETEs sent to a server that asked for 120 s"
    assert "Retry-After of 120 s" in _not_retried(run)["error"]["message"]


@pytest.fixture
def shanghai_time() -> Any:
    """The process's local time zone set to UTC+8 (a FunctionGraph function in cn-north-4 with TZ set), then back."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("shanghai_time")
def test_an_asctime_retry_after_is_gmt_whatever_the_local_zone(kps, invoke):
    """RFC 9110 5.6.7: a recipient MUST accept all three HTTP-date forms, and asctime's (``Wed Dec  2 03:00:00
    2026``) is GMT though it names no zone: at UTC+8, read as local time, a wait of 120 s would be 8 hours past."""
    kps.inject(status=429, body=THROTTLED, retry_after=time.asctime(time.gmtime(time.time() + 120)), times=4)
    run = invoke(apig_event({"project_id": PROJECT}), timeout_seconds=3)
    assert len(deletes(kps)) == 1, f"{len(deletes(kps))} DELETEs sent to a server that asked for 120 s"
    _not_retried(run)


def test_a_throttle_answered_in_the_last_moments_is_still_the_servers_error(kps, invoke, settings, monkeypatch):
    """A 429 with ``Retry-After: 120`` read when less than ``MIN_ATTEMPT_SECONDS`` are left is the server's
    error, not ``DeadlineExceeded``: the server answered and asked for a wait. The margin is raised to 1 s and
    the answer starts 0.6 s before the function's deadline (the context's, less the safety margin), so the reply
    is read inside the margin whatever the machine's load."""
    monkeypatch.setattr(api, "MIN_ATTEMPT_SECONDS", 1.0)
    started = time.monotonic()
    context = FakeContext(user_data=settings, timeout_seconds=3)
    kps.inject(status=429, body=THROTTLED, retry_after="120", until=started + 3 - SAFETY_MARGIN_SECONDS - 0.6)
    run = invoke({"project_id": PROJECT}, context=context)
    assert len(deletes(kps)) == 1
    _not_retried(run)


def test_a_last_attempts_throttle_read_in_the_last_moments_is_the_servers_error(kps, invoke, settings, monkeypatch):
    """KPS_MAX_ATTEMPTS=1: the one attempt is answered 429 (no Retry-After) inside ``MIN_ATTEMPT_SECONDS`` of the
    deadline. No wait follows the last attempt: its reply is the server's error, never ``DeadlineExceeded``.
    Timed as the test above: the margin raised to 1 s, the answer 0.6 s before the deadline."""
    monkeypatch.setattr(api, "MIN_ATTEMPT_SECONDS", 1.0)
    settings["KPS_MAX_ATTEMPTS"] = "1"
    started = time.monotonic()
    context = FakeContext(user_data=settings, timeout_seconds=3)
    kps.inject(status=429, body=THROTTLED, until=started + 3 - SAFETY_MARGIN_SECONDS - 0.6)
    run = invoke({"project_id": PROJECT}, context=context)
    [result] = run.payload["results"]
    assert len(deletes(kps)) == 1
    assert result["error"]["code"] == "APIGW.0308", result["error"]


def test_a_throttle_whose_body_is_slow_keeps_its_retry_after_and_is_not_asked_again_at_once(kps, invoke, settings):
    """A 429 with ``Retry-After: 120`` whose status line and headers arrived whole, its body trickled past the
    attempt's timeout: the server has answered (throttled, come back in 120 s) before the body stalled. Its
    Retry-After stands (not retried within the 3 s) and the error is the status's, not ``Timeout``."""
    settings["KPS_TIMEOUT_SECONDS"] = "0.3"
    kps.inject(status=429, body=THROTTLED, retry_after="120", trickle="body", trickle_every=0.05, times=9)
    run = invoke(apig_event({"project_id": PROJECT}), timeout_seconds=3)
    [result] = run.payload["results"]
    assert len(deletes(kps)) == 1, f"{len(deletes(kps))} DELETEs sent to a server that answered 429, Retry-After 120"
    assert result["error"]["code"] == "HTTP.429" and "Retry-After of 120 s" in result["error"]["message"], result


# A date no calendar holds: its year does not fit a C long (datetime would raise OverflowError).
NO_CALENDAR_DATE = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"


def test_a_retry_after_date_no_calendar_holds_is_ignored_not_an_internal_error(kps, invoke):
    """Garbage in a Retry-After must not cost the target its error: it is absent, the throttle retried and
    reported as such, never ``InternalError``."""
    kps.inject(status=429, body=THROTTLED, retry_after=NO_CALENDAR_DATE, times=4)
    run = invoke(apig_event({"project_id": PROJECT}), timeout_seconds=3)
    [result] = run.payload["results"]
    assert result["error"]["code"] == "APIGW.0308", result["error"]
    assert run.lines("target failed unexpectedly") == []


def test_a_garbage_retry_after_on_one_selected_delete_keeps_the_counts_and_the_record(kps, invoke, settings):
    """The same header on the second of three selected DELETEs: the first task is gone from KPS, and the counts
    (selected = deleted + already_gone + left + unconfirmed) and the ``tasks deleted`` line say so."""
    settings["KPS_CONCURRENCY"] = "1"  # one DELETE at a time, in listing order
    first, second, _ = (task["task_id"] for task in kps.failed_tasks(PROJECT))
    kps.inject(method="DELETE", path=f".*/{second}", status=429, body=THROTTLED, retry_after=NO_CALENDAR_DATE, times=4)
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 0}})
    [result] = run.payload["results"]
    assert first not in [task["task_id"] for task in kps.failed_tasks(PROJECT)]  # deleted, as scripted
    assert result["error"]["code"] == "APIGW.0308", result["error"]
    counts = [result.get(k) for k in ("selected", "failed_task_count", "already_gone", "left", "unconfirmed")]
    assert counts == [3, 1, 0, 2, 0], counts
    assert run.lines("tasks deleted"), "the task this run deleted is in no record line"


@pytest.mark.parametrize("value", ["nan", "-120"])
def test_a_retry_after_that_is_no_delay_never_shortens_the_backoff(kps, invoke, settings, monkeypatch, value):
    """RFC 9110 10.2.3: delay-seconds is 1*DIGIT. "nan" and "-120" are none, so the header is absent and the
    backoff applies; read as "retry now", a throttled KPS would be asked again at once. The backoff is pinned at
    its bound (8 s, which does not fit the 3 s run) so that the outcome tells the two apart: one DELETE."""
    settings["KPS_BACKOFF_BASE_SECONDS"] = "30"
    monkeypatch.setattr(api.random, "uniform", lambda low, high: high)
    kps.inject(status=429, body=THROTTLED, retry_after=value, times=4)
    invoke(apig_event({"project_id": PROJECT}), timeout_seconds=3)
    assert len(deletes(kps)) == 1, f'{len(deletes(kps))} DELETEs at once after "Retry-After: {value}"'
