"""Red-team findings on issue 17's promises (the local loop, the event generator, the docs): each test fails today."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from conftest import PROJECT, ROOT, http, payload_of_result
from test_serve import Lines, _clean_env

from devtools.events import EventError, generate, request_fields
from devtools.serve import PATH

TOKEN = "MIIT-caller-token-that-must-never-be-logged-0123456789"


def test_a_token_sent_as_the_method_is_printed_in_no_case(served, capsys):
    """The existing test looks for the token case-sensitively; the function upper-cases the method it refuses and
    prints it in its `rejected` line (rendered by make serve) and in the payload's message."""
    url, _, out = served
    auth = {"X-Auth-Token": "x", "Content-Type": "application/json"}
    status, _, body = http(url, method=TOKEN, body={"project_id": PROJECT}, headers=auth)
    assert status == 405
    printed = (out.getvalue() + capsys.readouterr().out + body.decode()).lower()
    assert TOKEN[:12].lower() not in printed and TOKEN[-12:].lower() not in printed


def test_a_get_event_whose_query_says_dry_run_false_is_an_error_not_an_event():
    """docs/local-development.md: `a GET that says dry_run=false` is a one-line error and no event; the check looks
    at the fields only, so `--method GET --query dry_run=false` prints an event the function refuses 400."""
    with pytest.raises(EventError):
        generate("apig", {}, method="GET", query=["dry_run=false"])


def test_a_body_with_a_key_given_twice_is_an_error_not_the_last_copy():
    """The function refuses a key given twice in JSON text; `--body` silently keeps the last (another project)."""
    other = "0" * 31 + "a"
    with pytest.raises(EventError):
        request_fields(body=f'{{"project_id": "{PROJECT}", "project_id": "{other}"}}')


def test_an_empty_method_is_an_error_not_a_deleting_post():
    """`--method ""` is taken as no method: the default POST, the deleting one."""
    with pytest.raises(EventError):
        generate("apig", {"project_id": PROJECT}, method="")


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_one_line_too(port):
    """The busy port is one line; a port out of range is an OverflowError traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "devtools", "serve", "--port", port],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_request_in_flight_during_a_reload_is_answered(tmp_path):
    """reload.py: "requests that arrive during a restart wait in its backlog, none is refused". A request the old
    worker has accepted (its body still coming) is dropped without an answer when the worker is stopped."""
    shutil.copy(ROOT / "handler.py", tmp_path / "handler.py")
    shutil.copytree(ROOT / "function", tmp_path / "function", ignore=shutil.ignore_patterns("__pycache__"))
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools", "serve", "--port", "0", "--code-dir", str(tmp_path)],
        cwd=ROOT,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = Lines(process)
        url = lines.until("Local API Gateway on").split(" on ", 1)[1].split()[0]
        assert http(url, body={"project_id": PROJECT, "dry_run": True})[0] == 200  # the worker is up
        port = int(url.split(":")[2].split("/")[0])
        body = json.dumps({"project_id": PROJECT, "dry_run": True}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Length: {len(body)}\r\n\r\n"
            client.sendall(head.encode() + body[:5])
            assert http(url, body={"project_id": PROJECT, "dry_run": True})[0] == 200  # the first was accepted
            os.utime(tmp_path / "function" / "cleaner.py", ns=(1, 1))
            lines.until("reloading: function/cleaner.py changed")
            try:
                client.sendall(body[5:])
                answer = client.recv(64)
            except OSError:
                answer = b""
        assert answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_json_output_is_the_functions_raw_lines():
    """`--json` keeps "the function's raw lines, one JSON object per line": today banners, an indented payload and
    the emulator's request log are mixed in, so `| jq` breaks. Only the last line, the result line, is text."""
    done = subprocess.run(
        [sys.executable, "-m", "devtools", "run", "--json"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    *lines, last = done.stdout.splitlines()
    assert last.startswith("result: ")
    not_json = []
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            not_json.append(line)
    assert not_json == []


def test_every_repository_file_the_docs_name_exists():
    """docs/local-development.md names `requirements-overrides.txt` twice (the layout, the pyasn1 override): no such
    file; the link checker only sees markdown links."""
    missing = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for name in set(re.findall(r"`([A-Za-z0-9_.-]+\.(?:txt|in|toml|yml))`", page.read_text(encoding="utf-8"))):
            if not (ROOT / name).exists():
                missing.append(f"{page.name}: {name}")
    assert missing == []


def test_the_readme_says_the_fallback_order_the_code_takes(invoke, settings):
    """README, Schedule it nightly: "leave it empty to clean `KPS_PROJECT_ID` (then `KPS_TARGETS`, ...)". The code
    (targets.py) takes KPS_TARGETS first: with both set an empty timer sweeps (KPS_TARGETS=all) every project."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = readme.split("leave it empty to clean", 1)[1].split(":\n", 1)[0]
    said = [name for name in re.findall(r"`(KPS_[A-Z_]+)`", sentence) if name in ("KPS_PROJECT_ID", "KPS_TARGETS")]
    other = "0" * 31 + "a"
    settings.update({"KPS_PROJECT_ID": PROJECT, "KPS_TARGETS": f"cn-north-4:{other}", "KPS_DRY_RUN": "true"})
    timer = {
        "version": "v1.0",
        "time": "2026-11-29T03:00:00+08:00",
        "trigger_type": "TIMER",
        "trigger_name": "nightly",
        "user_event": "",
    }
    [result] = invoke(timer).result["results"]
    taken = "KPS_TARGETS" if result["project_id"] == other else "KPS_PROJECT_ID"
    assert said[0] == taken, f"the README says {said[0]} first; the function took {taken}"


def test_http_api_md_says_what_a_field_in_body_and_query_does(served):
    """docs/http-api.md: POST takes "a JSON body (the query string also works; a query field wins)"; triggers.md
    and the function: a field in two of body / query / path is refused 400 InvalidEvent."""
    url, _, _ = served
    other = "0" * 31 + "a"
    status, _, body = http(f"{url}?project_id={other}", body={"project_id": PROJECT, "dry_run": True})
    page = (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8")
    refused = status == 400 and json.loads(body)["error"]["code"] == "InvalidEvent"
    assert not (refused and "a query field wins" in page)


def test_make_run_works_with_the_keys_make_expose_needs_in_the_shell():
    """docs/deploy.md has `export HUAWEICLOUD_SDK_AK=… HUAWEICLOUD_SDK_SK=…` for make expose; afterwards `make run`
    (README: "just works", against the emulator) signs with the shell's real AK instead of the demo agency's:
    `result: failed ... error APIGW.0301`, exit 1. (The suite's _clean_env strips these, so no test saw it.)"""
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


def test_a_worker_that_dies_is_said_and_replaced_not_a_silent_hang():
    """The worker killed (OOM, a crash, kill -9): the watcher keeps the port and says nothing; every request then
    connects and waits forever in the backlog, unanswered."""
    import urllib.error
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "devtools", "serve", "--port", "0"],
        cwd=ROOT,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = Lines(process)
        url = lines.until("Local API Gateway on").split(" on ", 1)[1].split()[0]
        assert http(url, body={"project_id": PROJECT, "dry_run": True})[0] == 200  # the worker is up
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False)
        [worker] = [int(pid) for pid in children.stdout.split()]
        os.kill(worker, signal.SIGKILL)
        request = urllib.request.Request(url, data=b'{"dry_run": true}', method="POST", headers={"X-Auth-Token": "x"})
        try:
            with urllib.request.urlopen(request, timeout=8) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError as error:  # the timeout: nobody will ever answer
            status = type(error).__name__
        assert status == 200 or process.poll() not in (None, 0), f"{status}; the watcher still runs, silent"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_link_checker_sees_a_link_whose_text_wraps(tmp_path):
    """The pages wrap at 120 columns, so a link's text often spans two lines; test_docs's pattern forbids a newline
    in the text, so such a link is never checked (a broken one passes)."""
    from test_docs import links

    page = tmp_path / "page.md"
    page.write_text("See the [local\ndevelopment](docs/no-such-page.md) page.\n", encoding="utf-8")
    assert "docs/no-such-page.md" in links(page)


@pytest.mark.parametrize(
    ("trigger", "fields", "method", "query"),
    [
        ("apig", {"project_id": PROJECT}, None, ["targets=all"]),  # targets beside project_id, across body / query
        ("apig", {"targets": "all"}, None, ["region=cn-north-4"]),  # a sweep with a region
        ("apig", {"project_id": PROJECT}, "GET", ["targets=all"]),
        ("apig", {}, "GET", ["dry_run=false"]),  # a GET that says dry_run=false
        ("cts", {}, None, None),  # events.py: "the function runs with its settings"; triggers.md: refused
        ("lts", {}, None, None),
        ("obs", {}, None, None),
    ],
)
def test_an_event_the_generator_prints_is_one_the_function_reads(trigger, fields, method, query, invoke, settings):
    """docs/local-development.md: what it is given "is checked by the function's own rules before an event is made"
    (targets beside project_id, a GET that says dry_run=false: "a one-line error and no event"). The rules run on the
    fields and on the query separately, never on both; and cts / lts / obs events are refused InvalidEvent always."""
    try:
        event = generate(trigger, fields, method=method, query=query)
    except EventError:
        return
    settings["KPS_DRY_RUN"] = "true"
    payload = payload_of_result(invoke(json.loads(json.dumps(event))).result)
    assert payload["status"] != "rejected", f"printed an event the function refuses: {payload['error']}"
