"""Over API Gateway the method means something, and the caller gets the function's own answer in time."""

from __future__ import annotations

import json
import time

import pytest
from conftest import PROJECT, apig_event, deletes
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.context import FakeContext
from function.errors import REJECTION_STATUS
from function.payload import HTTP_METHODS
from function.settings import SettingSource, load_settings

OTHER_METHODS = ["PUT", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "ANY", "", "get ", "FOO"]


def test_get_is_a_dry_run_that_never_deletes(kps, invoke):
    run = invoke(apig_event({"project_id": PROJECT}, method="GET"))
    assert run.result["statusCode"] == 200
    assert run.payload["dry_run"] is True
    assert run.payload["results"][0]["outcome"] == "would_delete"
    assert run.payload["results"][0]["failed_task_count"] == 3
    assert [r.method for r in kps.requests] == ["GET"]
    assert len(kps.failed_tasks(PROJECT)) == 3


@pytest.mark.parametrize("asked", [False, "false", "0", "off"])
def test_a_get_asking_to_delete_is_refused_not_quietly_read(kps, invoke, asked):
    for event in (
        apig_event({"project_id": PROJECT, "dry_run": asked}, method="GET"),
        apig_event(method="GET", query={"project_id": PROJECT, "dry_run": str(asked).lower()}),
    ):
        run = invoke(event)
        assert run.result["statusCode"] == 400
        assert run.payload["error"]["code"] == "InvalidEvent"
        assert "GET is a dry run" in run.payload["error"]["message"]
        assert run.payload["dry_run"] is True
    assert kps.requests == []


def test_get_with_dry_run_true_is_the_same_dry_run(kps, invoke):
    run = invoke(apig_event({"project_id": PROJECT, "dry_run": True}, method="get"))
    assert run.result["statusCode"] == 200 and run.payload["dry_run"] is True
    assert deletes(kps) == []


@pytest.mark.parametrize("method", ["POST", "DELETE", "post", "Delete"])
def test_post_and_delete_clean(kps, invoke, method):
    run = invoke(apig_event({"project_id": PROJECT}, method=method))
    assert run.result["statusCode"] == 200
    assert run.payload["dry_run"] is False
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]
    assert kps.failed_tasks(PROJECT) == []


@pytest.mark.parametrize(("method", "dry_run"), [("POST", False), ("DELETE", False), ("GET", True)])
def test_a_refused_request_says_whether_it_was_a_dry_run(kps, invoke, method, dry_run):
    """A bad project refused: the payload's dry_run is what the method meant, not true for every HTTP call."""
    run = invoke(apig_event({"project_id": "not-a-project"}, method=method))
    assert (run.result["statusCode"], run.payload["error"]["code"]) == (400, "InvalidProjectId")
    assert run.payload["dry_run"] is dry_run
    assert kps.requests == []


def test_post_and_delete_still_honour_a_requested_dry_run(kps, invoke):
    for method in ("POST", "DELETE"):
        run = invoke(apig_event({"project_id": PROJECT, "dry_run": True}, method=method))
        assert run.payload["dry_run"] is True
    assert deletes(kps) == []


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_other_methods_are_refused_405_with_allow_and_nothing_sent(kps, invoke, method):
    run = invoke(apig_event({"project_id": PROJECT}, method=method))
    assert run.result["statusCode"] == 405
    assert run.result["headers"]["Allow"] == "GET, POST, DELETE"
    assert run.result["headers"]["Content-Type"] == "application/json"
    assert run.payload["status"] == "rejected"
    assert run.payload["error"]["code"] == "MethodNotAllowed"
    assert kps.requests == []


def test_an_empty_method_is_refused_too(kps, invoke):
    """(Without ``httpMethod`` at all the event lacks API Gateway's shape: see test_triggers.)"""
    event = apig_event({"project_id": PROJECT})
    event["httpMethod"] = ""
    run = invoke(event)
    assert run.result["statusCode"] == 405 and kps.requests == []


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '{"project_id": "nope"}'])
def test_the_method_is_judged_before_the_body(kps, invoke, body):
    """A PUT is a 405 whatever its body: a malformed one does not turn the answer into a 400."""
    run = invoke(apig_event(body, method="PUT"))
    assert run.result["statusCode"] == 405 and run.payload["error"]["code"] == "MethodNotAllowed"
    assert kps.requests == []


def test_only_405_carries_allow(kps, invoke):
    for event in (apig_event({"project_id": "nope"}), apig_event({"project_id": PROJECT})):
        assert "Allow" not in invoke(event).result["headers"]


def test_the_method_means_nothing_outside_api_gateway(kps, invoke):
    """A direct event that carries httpMethod (but no requestContext) is not an HTTP call: no 405. It is
    a broken API Gateway event, refused, never read as a direct call with the defaults."""
    run = invoke({"project_id": PROJECT, "httpMethod": "PUT"})
    assert run.payload["status"] == "rejected"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert "statusCode" not in run.result
    assert kps.requests == []


def test_method_not_allowed_is_a_rejection_code():
    assert REJECTION_STATUS["MethodNotAllowed"] == 405
    assert set(HTTP_METHODS) == {"GET", "POST", "DELETE"}


@settings(max_examples=60, deadline=None)
@given(method=st.text(max_size=12), dry_run=st.sampled_from([None, True, False, "true", "false", "yes", 3, "maybe"]))
def test_no_method_and_no_dry_run_value_deletes_unless_post_or_delete(method, dry_run):
    """Whatever the method and the dry_run field, a DELETE reaches KPS only for POST/DELETE asking no dry run."""
    from devtools.kps_emulator import KpsEmulator
    from handler import handler

    with KpsEmulator() as kps:
        kps.add_token("t")
        kps.seed(PROJECT, 1)
        fields = {"project_id": PROJECT} if dry_run is None else {"project_id": PROJECT, "dry_run": dry_run}
        user_data = {"KPS_ENDPOINT": kps.url, "KPS_REGION": "cn-north-4", "KPS_AUTH_TOKEN": "t"}
        result = handler(apig_event(fields, method=method), FakeContext(user_data=user_data))
        payload = json.loads(result["body"])
        deleted = [r for r in kps.requests if r.method == "DELETE"]
    cleans = method.upper() in ("POST", "DELETE") and dry_run in (None, False, "false")
    assert bool(deleted) == cleans
    if method.upper() not in HTTP_METHODS:
        assert result["statusCode"] == 405 and kps.requests == []
    elif method.upper() == "GET":
        assert payload["dry_run"] is True


# --- the HTTP time budget ----------------------------------------------------------------------


def test_a_slow_kps_over_http_answers_504_within_the_http_budget(kps, invoke, settings):
    """30 s left in the invocation, a 1 s HTTP budget, KPS taking 3 s: the caller gets the function's 504."""
    kps.set_latency(3)
    user_data = {**settings, "KPS_HTTP_BUDGET_SECONDS": "1", "KPS_TIMEOUT_SECONDS": "10"}
    context = FakeContext(user_data=user_data, timeout_seconds=30)
    run = invoke(apig_event({"project_id": PROJECT}), context=context)
    assert run.result["statusCode"] == 504
    [result] = run.payload["results"]
    assert result["error"]["code"] == "DeadlineExceeded"
    assert run.payload["duration_ms"] < 3000, "the HTTP budget, not the invocation's 30 s, bounded the call"
    assert context.getRemainingTimeInMilliSeconds() > 25_000


def test_other_triggers_keep_the_invocation_budget(kps, invoke, settings):
    """The HTTP budget applies to API Gateway alone: a direct call with time left waits for a slow KPS."""
    kps.set_latency(1.2)
    user_data = {**settings, "KPS_HTTP_BUDGET_SECONDS": "1", "KPS_COUNT_BEFORE_DELETE": "false"}
    run = invoke({"project_id": PROJECT}, context=FakeContext(user_data=user_data, timeout_seconds=30))
    assert run.payload["status"] == "succeeded"


def test_the_invocation_time_still_wins_when_it_is_shorter(kps, invoke, settings):
    kps.set_latency(3)
    context = FakeContext(user_data={**settings, "KPS_HTTP_BUDGET_SECONDS": "55"}, timeout_seconds=1.5)
    run = invoke(apig_event({"project_id": PROJECT}), context=context)
    assert run.result["statusCode"] == 504
    assert context.getRemainingTimeInMilliSeconds() > 0, "answered before the invocation's time ran out"


def test_a_short_invocation_still_makes_its_calls(kps, invoke, settings):
    """1.4 s left: 0.9 s once the documented 0.5 s margin is kept back, ample for a loopback list and DELETE
    (a larger margin, or a larger minimum per attempt, would give up without trying)."""
    run = invoke({"project_id": PROJECT}, context=FakeContext(user_data=settings, timeout_seconds=1.4))
    [result] = run.payload["results"]
    assert (result["outcome"], result["failed_task_count"]) == ("deleted", 3)
    assert [r.method for r in kps.requests] == ["GET", "DELETE"]


def test_the_deadline_is_the_remaining_time_less_the_margin():
    """Milliseconds read as milliseconds, less the documented 0.5 s: 1,000 s left leaves 999.5 s of work."""
    from function.budget import Deadline

    before = time.monotonic()
    remaining = Deadline.from_context(FakeContext(timeout_seconds=1000)).remaining()
    taken = time.monotonic() - before  # however long a loaded machine takes in between
    assert 999.5 - taken - 0.001 <= remaining <= 999.5  # the context answers whole milliseconds


def test_no_time_for_one_attempt_sends_nothing_and_says_so(kps, invoke, settings):
    """0.52 s left is 0.02 s past the margin, under the 0.05 s an attempt needs: nothing is tried."""
    run = invoke({"project_id": PROJECT}, context=FakeContext(user_data=settings, timeout_seconds=0.52))
    [result] = run.payload["results"]
    assert (result["error"]["code"], result["attempts"]) == ("DeadlineExceeded", 0)
    assert result["error"]["message"] == "the invocation's time budget ran out after 0 attempt(s)"
    assert kps.requests == []


@pytest.mark.parametrize("raw", ["0", "0.5", "58.5", "59", "60", "61", "120", "-1", "soon"])
def test_the_budget_is_between_1_and_58_seconds(raw):
    """Up to 58 s: at 60 (the gateway's longest backend timeout) the gateway's own 504 could come first."""
    from function.errors import Rejected

    with pytest.raises(Rejected, match="KPS_HTTP_BUDGET_SECONDS"):
        load_settings(SettingSource(None, {"KPS_HTTP_BUDGET_SECONDS": raw}))
    assert load_settings(SettingSource(None, {})).http_budget_seconds == 55
    assert load_settings(SettingSource(None, {"KPS_HTTP_BUDGET_SECONDS": "58"})).http_budget_seconds == 58


@pytest.mark.parametrize("method", ["po\u017ft", "PO\ufb06", "P\u041eST"])  # long s, "st" ligature, Cyrillic O
def test_a_method_that_is_not_ascii_is_not_post(kps, invoke, method):
    """Red team 15r: ``str.upper()`` maps the long s and the "st" ligature to S / ST, so "po\\u017ft" was
    read as POST and deleted. Methods are compared over ASCII only."""
    run = invoke(apig_event({"project_id": PROJECT}, method=method))
    assert run.result["statusCode"] == 405, run.payload
    assert "this method is not allowed" in run.payload["error"]["message"]
    assert kps.requests == []


def test_a_token_sent_as_the_method_is_never_echoed(kps, invoke):
    """A caller's token sent as the method came back in the 405's message and the ``rejected`` line: only
    a method from HTTP's fixed list is named."""
    token = "MIIT" + "tOkEn0123456789" * 20
    run = invoke(apig_event({"project_id": PROJECT}, method=token))
    assert run.result["statusCode"] == 405 and kps.requests == []
    assert token.lower() not in (json.dumps(run.result) + run.out + run.err).lower()
    assert run.lines("rejected") and "this method" in run.payload["error"]["message"]
    assert "method PUT is not allowed" in invoke(apig_event(None, method="put")).payload["error"]["message"]
