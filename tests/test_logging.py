"""Log lines: one JSON object per line with the invocation's keys, context cleared each time."""

from __future__ import annotations

import re

from conftest import PROJECT, apig_event, load_event

from devtools.context import FakeContext
from function import cleaner

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def test_every_line_is_json_with_the_invocation_keys(kps, invoke):
    run = invoke(load_event("timer.json"))
    printed = [line for line in run.out.splitlines() if line.strip()]
    assert len(printed) == len(run.logs) >= 2
    for line in run.logs:
        assert list(line)[:4] == ["level", "timestamp", "message", "service"]
        assert ISO_UTC.fullmatch(line["timestamp"])
        assert line["service"] == "kps-failed-task-cleaner"
        assert line["function_request_id"] == run.payload["request_id"]
        assert isinstance(line["cold_start"], bool)
        assert line["trigger"] == "timer"
    [summary] = run.lines("invocation finished")
    assert (summary["status"], summary["targets"], summary["targets_failed"]) == ("succeeded", 1, 0)


def test_cold_start_is_true_only_on_the_first_invocation(kps, invoke, monkeypatch):
    monkeypatch.setattr(cleaner._Instance, "cold_start", True)
    first, second = invoke({"project_id": PROJECT}), invoke({"project_id": PROJECT})
    assert {line["cold_start"] for line in first.logs} == {True}
    assert {line["cold_start"] for line in second.logs} == {False}


def test_context_is_cleared_between_invocations(kps, invoke, settings):
    first = invoke(apig_event({"project_id": PROJECT}))
    second = invoke({"project_id": PROJECT}, context=FakeContext(user_data=settings, request_id="second-request"))
    assert {line["correlation_id"] for line in first.logs} == {"11cdcb2ef3a1b3f8c1c2e5cfd3d2a1b0"}
    assert {line["correlation_id"] for line in second.logs} == {"second-request"}
    assert {line["trigger"] for line in second.logs} == {"direct"}


def test_log_level_and_service_name_are_settings(kps, invoke, settings):
    settings.update(LOG_LEVEL="WARNING", SERVICE_NAME="nightly-cleaner")
    quiet = invoke({"project_id": PROJECT})
    assert quiet.logs == []
    settings["LOG_LEVEL"] = "DEBUG"
    loud = invoke({"project_id": PROJECT})
    assert {line["service"] for line in loud.logs} == {"nightly-cleaner"}
    assert loud.lines("credentials chosen")[0]["level"] == "debug"


def test_a_rejection_is_logged_with_its_code(kps, invoke):
    run = invoke({"project_id": "nope"})
    [line] = run.lines("rejected")
    assert (line["level"], line["code"]) == ("warning", "InvalidProjectId")


def test_a_bug_ends_in_the_payload_and_a_logged_traceback(kps, invoke, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cleaner, "resolve_targets", broken)
    run = invoke(apig_event({"project_id": PROJECT}))
    assert run.result["statusCode"] == 500
    assert run.payload["status"] == "failed"
    assert run.payload["error"]["code"] == "InternalError"
    [line] = run.lines("internal error")
    assert "RuntimeError: boom" in line["exception"]
