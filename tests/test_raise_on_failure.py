"""KPS_RAISE_ON_FAILURE: non-HTTP failures raise (after logging the payload); HTTP callers still get answers."""

from __future__ import annotations

import pytest
from conftest import PROJECT, apig_event, load_event

from function.cleaner import CleanupFailed


@pytest.fixture
def raising(settings):
    settings["KPS_RAISE_ON_FAILURE"] = "true"


@pytest.mark.usefixtures("raising")
def test_a_failed_timer_run_raises_after_logging_its_payload(kps, invoke, capsys):
    kps.deny(PROJECT)
    with pytest.raises(CleanupFailed, match=r"failed: KPS\.9003"):
        invoke(load_event("timer.json"))
    logged = [line for line in capsys.readouterr().out.splitlines() if '"raising on failure"' in line]
    assert len(logged) == 1
    assert '"status": "failed"' in logged[0] and "KPS.9003" in logged[0]


@pytest.mark.usefixtures("raising")
def test_a_rejected_run_raises_too(kps, invoke):
    with pytest.raises(CleanupFailed, match="rejected: InvalidProjectId"):
        invoke({"project_id": "nope"})


@pytest.mark.usefixtures("raising")
def test_http_callers_still_get_their_response(kps, invoke):
    kps.deny(PROJECT)
    run = invoke(apig_event({"project_id": PROJECT}))
    assert run.result["statusCode"] == 502


@pytest.mark.usefixtures("raising")
def test_success_does_not_raise(kps, invoke):
    assert invoke(load_event("timer.json")).payload["ok"] is True


def test_by_default_failures_are_returned(kps, invoke):
    kps.deny(PROJECT)
    assert invoke(load_event("timer.json")).payload["status"] == "failed"
