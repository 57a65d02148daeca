"""Red-team findings against the strict reader (issue 15): each test states a promise and fails today.

Promises tried: act only on input fully understood (never clean a project the event did not name, never
sweep by accident), stay under 128 MB and within the deadline whatever is sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc

import pytest
from conftest import OTHER_PROJECT, PROJECT, ROOT, apig_event, deletes, load_event

NAMES_NOTHING = ["", "{}", "null", '{"dry_run": null}', '{"context": {"run": 1}}', '{"region": "cn-north-4"}']


def _kafka(*messages: str) -> dict:
    event = load_event("kafka.json")
    event["records"][0]["messages"] = list(messages)
    return event


@pytest.fixture
def configured_a(settings):
    """The operator's default project is PROJECT (A); the events below name OTHER_PROJECT (B)."""
    settings["KPS_PROJECT_ID"] = PROJECT
    return settings


@pytest.mark.parametrize("blank", NAMES_NOTHING)
def test_a_batch_naming_b_never_cleans_the_default_project_a(kps, invoke, configured_a, blank):
    """A Kafka batch whose one request names B, and whose other message names no project (blank, null,
    only a null dry_run, only context, only a region), cleans B and also the configured A: the defaults of
    a lone empty event are applied per message. Today: DELETE /v3/A/failed-tasks is sent."""
    kps.seed(OTHER_PROJECT, 1)
    run = invoke(_kafka(json.dumps({"project_id": OTHER_PROJECT}), blank))
    assert f"/v3/{PROJECT}/failed-tasks" not in deletes(kps), run.payload


@pytest.mark.parametrize("blank", NAMES_NOTHING[:4])
def test_a_blank_message_in_a_batch_never_sweeps(kps, invoke, settings, blank):
    """KPS_TARGETS=all: a batch naming B plus one blank message sweeps every project IAM lists.
    Today: both A and B are deleted (a sweep)."""
    kps.seed(OTHER_PROJECT, 1)
    kps.set_iam_projects(
        [{"id": PROJECT, "name": "cn-north-4", "enabled": True}, {"id": OTHER_PROJECT, "name": "cn-north-4"}]
    )
    settings.update(KPS_TARGETS="all", KPS_IAM_ENDPOINT=kps.url)
    run = invoke(_kafka(json.dumps({"project_id": OTHER_PROJECT}), blank))
    assert set(deletes(kps)) <= {f"/v3/{OTHER_PROJECT}/failed-tasks"}, run.payload


def test_a_cloudevent_without_data_is_not_a_sweep(kps, invoke, settings):
    """A CloudEvent with no data names nothing (like OBS/LTS/CTS, which are refused for that reason);
    with KPS_TARGETS=all it sweeps every project today."""
    kps.set_iam_projects([{"id": PROJECT, "name": "cn-north-4", "enabled": True}])
    settings.update(KPS_TARGETS="all", KPS_IAM_ENDPOINT=kps.url)
    event = load_event("eventgrid.json")
    del event["data"]
    run = invoke(event)
    assert deletes(kps) == [], run.payload


@pytest.mark.parametrize("method", ["po\u017ft", "PO\ufb06"])  # long s, "st" ligatures
def test_a_method_that_is_not_ascii_is_not_post(kps, invoke, method):
    """str.upper() maps the long s and the "st" ligatures to S / ST: "po\\u017ft" is read as POST and deletes."""
    run = invoke(apig_event({"project_id": PROJECT}, method=method))
    assert run.result["statusCode"] == 405, run.payload
    assert deletes(kps) == []


def test_context_is_bounded_before_it_is_encoded(kps, invoke):
    """``_context`` encodes the whole value to measure it: a 1 MB string of control characters becomes
    6 MB of JSON text before the 4,096-character bound is checked (a 6 MB event: ~19 MB extra)."""
    event = {"project_id": PROJECT, "context": "\u0001" * 1_000_000}
    tracemalloc.start()
    try:
        run = invoke(event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert peak < 1_000_000, f"refusing a too-large context allocated {peak / 1e6:.1f} MB"


def test_log_event_does_not_copy_a_large_refused_event(kps, invoke, settings):
    """LOG_EVENT=true logs the event before its refusal is raised, and ``redact`` lists every item of a
    dict to keep the first few: a parsed direct event of 300,000 keys (~4 MB as JSON) costs ~27 MB
    (6 MB event: +38 MB resident on top of the event, next to FunctionGraph's 128 MB)."""
    settings["LOG_EVENT"] = "true"
    event = {f"k{i}": 0 for i in range(300_000)}
    tracemalloc.start()
    try:
        run = invoke(event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert peak < 4_000_000, f"logging a refused event allocated {peak / 1e6:.1f} MB"


def test_a_callers_long_credential_header_stays_under_the_memory_bound(tmp_path):
    """A caller's X-Auth-Token is registered as a secret before anything is bounded: compiling it is
    super-linear. Measured: 1 MB of one letter +109 MB resident; 1 MB random +177 MB and 4 s on a 2 s
    budget; 6 MB random (an event FunctionGraph accepts synchronously) 1.1 GB and 22 s."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT / "tests")!r}); sys.path.insert(0, {str(ROOT)!r})
        from conftest import apig_event
        from devtools.context import FakeContext
        from handler import handler
        event = apig_event({{"project": "x"}})
        event["headers"]["x-auth-token"] = "T" * 1_000_000
        def peak_kb():  # VmHWM, reset first: ru_maxrss would carry the forking test process's own peak
            return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
        open("/proc/self/clear_refs", "w").write("5")
        before = peak_kb()
        result = handler(event, FakeContext(user_data={{"KPS_ENDPOINT": "http://127.0.0.1:9", "KPS_REGION":
            "cn-north-4", "KPS_AUTH_TOKEN": "MIIT-settings-token-0123456789abcdef", "KPS_PROJECT_ID": "{PROJECT}"}}))
        after = peak_kb()
        print(json.dumps({{"status": result["statusCode"], "grew_mb": (after - before) / 1024}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=True
    )
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 400
    assert outcome["grew_mb"] < 32, outcome
