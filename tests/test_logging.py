"""Log lines: one JSON object per line with the invocation's keys, context cleared each time."""

from __future__ import annotations

import json
import re

from conftest import PROJECT, apig_event, load_event, payload_of_result

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


def test_function_identity_and_correlation_ids(kps, invoke, settings):
    context = FakeContext(user_data=settings, function_name="cleaner-prod", version="v7")
    eventgrid = invoke(load_event("eventgrid.json"), context=context)
    smn = invoke(load_event("smn.json"))
    for line in eventgrid.logs:
        assert (line["function_name"], line["function_version"]) == ("cleaner-prod", "v7")
        assert line["correlation_id"] == "6f2d1c0b-9a8e-4d7c-b6a5-4f3e2d1c0b9a"
        assert line["trigger"] == "eventgrid"
    assert {line["correlation_id"] for line in smn.logs} == {"a51671f77d4a479cacb09e2cd591a983"}


def test_summary_and_metrics_lines(kps, invoke):
    kps.deny(PROJECT[:-1] + "f")
    run = invoke({"targets": [{"project_id": PROJECT}, {"project_id": PROJECT[:-1] + "f"}]})
    [summary] = run.lines("invocation finished")
    [metrics] = run.lines("metrics")
    assert (summary["status"], summary["targets"], summary["targets_failed"], summary["tasks_deleted"]) == (
        "partial",
        2,
        1,
        3,
    )
    figures = {
        k: metrics[k]
        for k in ("tasks_deleted", "tasks_found", "targets", "targets_ok", "targets_failed", "attempts", "succeeded")
    }
    assert figures == {
        "tasks_deleted": 3,
        "tasks_found": 0,
        "targets": 2,
        "targets_ok": 1,
        "targets_failed": 1,
        "attempts": 4,
        "succeeded": 0,
    }  # the denied project: a failed count, a failed delete
    assert metrics["metric_namespace"] == "kps_failed_task_cleaner"
    assert metrics["duration_ms"] == run.payload["duration_ms"]
    kps.seed(PROJECT, 5)
    dry = invoke({"project_id": PROJECT, "dry_run": True})
    assert (dry.lines("metrics")[0]["tasks_found"], dry.lines("metrics")[0]["tasks_deleted"]) == (5, 0)


def test_log_sample_rate_turns_debug_on(kps, invoke, settings):
    settings["LOG_SAMPLE_RATE"] = "1"
    assert invoke({"project_id": PROJECT}).lines("credentials chosen")
    settings["LOG_SAMPLE_RATE"] = "0"
    assert not invoke({"project_id": PROJECT}).lines("credentials chosen")


def test_library_logs_go_through_the_same_json_renderer(kps, invoke, settings):
    settings["LOG_LEVEL"] = "DEBUG"
    run = invoke({"project_id": PROJECT})
    library = [line for line in run.logs if line.get("logger", "").startswith("urllib3")]
    assert library, "urllib3's debug records are rendered as JSON lines"
    assert any("DELETE /v3/" in line["message"] for line in library)
    for line in library:
        assert line["function_request_id"] == run.payload["request_id"]
        assert list(line)[:3] == ["level", "timestamp", "message"]
    settings["LOG_LEVEL"] = "INFO"
    assert not [line for line in invoke({"project_id": PROJECT}).logs if "logger" in line]


def test_target_lines_from_worker_threads_carry_the_invocation_keys(kps, invoke):
    run = invoke(
        {"targets": [{"project_id": PROJECT}, {"project_id": PROJECT[:-1] + "0"}]}, request_id="fan-out-request"
    )
    done = run.lines("target done")
    assert len(done) == 2
    assert {line["function_request_id"] for line in done} == {"fan-out-request"}


def test_invocations_running_at_once_keep_their_own_level_and_secrets(kps, capsys, settings):
    """FunctionGraph can run several requests in one instance at once: nothing is shared but the output."""
    import threading

    from handler import handler

    other_token = "MIIT-other-invocation-token-5566778899"
    kps.add_token(other_token)
    kps.set_latency(0.3)
    debug = FakeContext(user_data={**settings, "LOG_LEVEL": "DEBUG"}, request_id="debug-run")
    quiet = FakeContext(
        user_data={**settings, "KPS_AUTH_TOKEN": other_token, "LOG_EVENT": "true"}, request_id="info-run"
    )
    capsys.readouterr()
    results: list = []
    threads = [
        threading.Thread(target=lambda e, c: results.append(handler(e, c)), args=(event, context))
        for event, context in (({"project_id": PROJECT}, debug), ({"project_id": PROJECT, "note": other_token}, quiet))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    debug_lines = [line for line in lines if line["level"] == "debug"]
    assert debug_lines and {line["function_request_id"] for line in debug_lines} == {"debug-run"}
    assert {line["function_request_id"] for line in lines} == {"debug-run", "info-run"}
    assert other_token not in out and settings["KPS_AUTH_TOKEN"] not in out
    assert len([r for r in kps.requests if r.method == "DELETE"]) == 2
    assert [payload_of_result(r)["status"] for r in results] == ["succeeded", "succeeded"]
