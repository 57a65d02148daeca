"""The two local entry points a newcomer meets first: `make run` and the invoke tool."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, payload_of_result


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def payload_of(stdout: str) -> dict:
    printed = json.loads(stdout.split("--- payload ---\n", 1)[1].split("--- emulator request log ---", maxsplit=1)[0])
    return payload_of_result(printed)


def test_run_deletes_the_seeded_tasks_with_agency_keys():
    done = run_tool("run")
    assert done.returncode == 0, done.stderr
    assert payload_of(done.stdout)["ok"] is True
    assert "DELETE /v3/4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09/failed-tasks -> 200 (auth: aksk)" in done.stdout
    assert "failed tasks left in 4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09: 0" in done.stdout


@pytest.mark.parametrize(
    ("event", "auth"), [("apig.json", "agency-token"), ("smn.json", "aksk"), ("eventgrid.json", "token")]
)
def test_invoke_runs_any_event_file(event, auth):
    done = run_tool("invoke", "--event", f"events/{event}", "--auth", auth)
    assert done.returncode == 0, done.stderr
    assert payload_of(done.stdout)["status"] == "succeeded"


def test_invoke_real_refuses_without_credentials():
    done = run_tool("invoke", "--event", "events/timer.json", "--real")
    assert done.returncode != 0
    assert "--real needs KPS_REGION" in done.stderr
