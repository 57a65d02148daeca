"""The two local entry points a newcomer meets first: `make run` and the invoke tool."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, payload_of_result


def run_tool(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def payload_of(stdout: str) -> dict:
    """--json (the output is no terminal): the payload is the line before the result line."""
    return payload_of_result(json.loads(stdout.rstrip("\n").splitlines()[-2]))


def test_run_deletes_the_seeded_tasks_with_agency_keys():
    done = run_tool("run")
    assert done.returncode == 0, done.stderr
    assert payload_of(done.stdout)["ok"] is True
    assert "DELETE /v3/4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09/failed-tasks -> 200 (auth: aksk)" in done.stderr
    assert "failed tasks left in 4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09: 0" in done.stderr


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


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "not found"),
        ("", "empty"),
        ("  \n", "empty"),
        ('{"project_id": ', "not valid JSON"),
        (b"\xff{}", "cannot read"),
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),  # json.loads raises RecursionError
    ],
    ids=["missing", "empty", "blank", "truncated", "not-utf8", "nested-too-deep"],  # short: the id is in the env
)
def test_a_bad_event_file_is_one_line_naming_the_file(tmp_path, content, says):
    path = tmp_path / "event.json"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    done = run_tool("invoke", "--event", str(path))
    assert done.returncode != 0
    assert done.stderr.strip() == done.stderr.strip().splitlines()[0], "one line, no traceback"
    assert str(path) in done.stderr and says in done.stderr


def test_an_empty_stdin_is_named_too():
    done = run_tool("invoke", "--event", "-", stdin="")
    assert (
        done.returncode != 0
        and done.stderr.strip() == "event file standard input: empty (an event is JSON, such as {} for the defaults)"
    )


def test_env_file_sets_the_functions_environment(tmp_path):
    env = tmp_path / "local.env"
    env.write_text("# a comment\nexport KPS_DRY_RUN='true'\n\nLOG_LEVEL=WARNING\n")
    done = run_tool("invoke", "--event", "events/timer.json", "--env-file", str(env))
    assert done.returncode == 0, done.stderr
    assert payload_of(done.stdout)["dry_run"] is True
    info = [line for line in done.stdout.splitlines() if '"level": "info"' in line]
    assert info and all('"record": true' in line for line in info)  # only the record, logged at every level
    env.write_text("not a setting\n")
    done = run_tool("invoke", "--event", "events/timer.json", "--env-file", str(env))
    assert done.returncode != 0 and "line 1 is not NAME=VALUE" in done.stderr


def test_a_local_sweep_stays_local_and_shows_every_branch():
    """KPS and IAM are the emulator: projects in several regions, a sub-project, a region without KPS,
    a non-regional project (skipped) and a disabled one (skipped); the table lists what was cleaned."""
    done = run_tool("invoke", "--clean", "--event", "-", stdin='{"targets": "all"}')
    assert done.returncode == 0, done.stderr
    assert "GET /v3/auth/projects -> 200" in done.stderr
    payload = payload_of(done.stdout)
    assert {(r["region"], r["failed_task_count"]) for r in payload["results"]} == {
        ("cn-north-4", 5),
        ("ap-southeast-3", 3),
        ("cn-north-4", 2),
    }
    swept = next(json.loads(line) for line in done.stdout.splitlines() if '"projects swept"' in line)
    assert swept["skipped_non_regional"] == ["MOS"]
    assert swept["skipped_no_kps_in_region"] == ["eu-west-101"]
    table = done.stderr.split("--- targets ---\n", 1)[1].split("--- emulator request log ---", 1)[0].splitlines()
    assert table[0].split() == ["project", "region", "outcome", "count", "attempts", "error"]
    assert len(table) == 4 and all(line.split()[2] == "deleted" for line in table[1:])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_emulator_stops_on_ctrl_c_even_as_a_background_job(stop):
    """A shell starts background jobs with SIGINT ignored (`make emulator &`): Ctrl-C must still stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools", "emulator", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - as a shell does
    )  # fmt: skip
    try:
        assert "KPS emulator on http://127.0.0.1:" in process.stdout.readline()  # type: ignore[union-attr]
        process.send_signal(stop)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in err


def test_the_bench_script_still_imports_what_it_uses():
    """make bench is not part of make test: this keeps a moved name from breaking it unseen."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main) and module.AK and module.TOKEN


# --- output for people, and the dry-run default (issue 17) ---


def emulator_log(stderr: str) -> str:
    return stderr.split("--- emulator request log ---\n", 1)[1]


def test_run_ends_with_one_result_line():
    done = run_tool("run")
    last = done.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("result: succeeded  deleted 5  targets 1/1 ok  ") and last.endswith(" ms")
    assert sum(line.startswith("result: ") for line in done.stdout.splitlines()) == 1


def test_a_bare_invoke_is_a_dry_run_and_says_how_to_clean():
    done = run_tool("invoke", "--event", "events/apig.json")  # a POST naming the demo project
    assert done.returncode == 0, done.stderr
    assert payload_of(done.stdout)["dry_run"] is True
    assert "DELETE " not in emulator_log(done.stderr) and "failed tasks left in" in done.stderr
    last = done.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("result: succeeded  HTTP 200  would delete 5  targets 1/1 ok")
    assert "CLEAN=1" in last and "--clean" in last
    cleaned = run_tool("invoke", "--clean", "--event", "events/apig.json")
    assert "DELETE /v3/4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09/failed-tasks -> 200" in emulator_log(cleaned.stderr)
    assert cleaned.stdout.rstrip("\n").splitlines()[-1].startswith("result: succeeded  HTTP 200  deleted 5")


def test_quiet_prints_the_result_line_only_and_json_keeps_the_raw_lines():
    quiet = run_tool("invoke", "--quiet", "--event", "events/timer.json")
    assert quiet.returncode == 0 and quiet.stdout.splitlines() == [quiet.stdout.strip()]
    assert quiet.stdout.startswith("result: succeeded  would delete 5")
    raw = run_tool("run", "--json")
    *lines, last = raw.stdout.splitlines()
    assert last.startswith("result: ") and lines  # JSON lines only, the result line last; the rest on stderr
    assert all(isinstance(json.loads(line), dict) for line in lines), lines
    assert "--- emulator request log ---" in raw.stderr


def run_on_a_terminal(*args: str) -> str:
    """The tool with its stdout on a pseudo-terminal, as a person runs it."""
    import os
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "devtools", *args], cwd=ROOT, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode()).replace("\r\n", "\n")


def test_on_a_terminal_lines_are_rendered_and_an_api_gateway_answer_is_decoded():
    shown = run_on_a_terminal("invoke", "--event", "events/apig.json")
    assert '{"level"' not in shown and "\\u" not in shown and '\\"' not in shown
    assert "[info     ] invocation finished" in shown and "tasks_found=5" in shown
    answer = shown.split("--- answer: HTTP 200 ---\n", 1)[1].split("--- emulator request log ---", 1)[0]
    assert json.loads(answer)["status"] == "succeeded"
    assert shown.rstrip("\n").splitlines()[-1].startswith("result: succeeded  HTTP 200  would delete 5")


def test_an_emulator_run_ignores_the_shells_credentials_and_says_so():
    """docs/deploy.md has HUAWEICLOUD_SDK_AK/SK exported for make expose; make run then still works, on the
    demo's credentials, and says in one line that the shell's were ignored."""
    from test_serve import _clean_env

    env = {**_clean_env(), "HUAWEICLOUD_SDK_AK": "REALAKFROMTHESHELL00", "HUAWEICLOUD_SDK_SK": "real-sk-from-the-shell"}
    done = subprocess.run(
        [sys.executable, "-m", "devtools", "run", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("result: succeeded  deleted 5")
    assert done.stderr.splitlines() == [
        "ignored the shell's HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK: the emulator takes the demo credentials"
    ]
    assert "real-sk" not in done.stdout + done.stderr
