"""`make serve`: a real HTTP request in, API Gateway's event to the real handler, its answer out."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, ROOT, http, payload_of_result
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from devtools.context import FakeContext
from devtools.serve import PATH, Gateway
from handler import handler

SECRET_TOKEN = "MIIT-caller-token-that-must-never-be-logged-0123456789"
SIGNATURE = "SDK-HMAC-SHA256 Access=CALLERAK0000, SignedHeaders=host;x-sdk-date, Signature=" + "ab" * 32


def test_a_request_becomes_api_gateways_event_and_the_answer_the_response(served, kps):
    url, events, out = served
    status, headers, body = http(
        url + "?dry_run=true",
        body={"project_id": PROJECT},
        headers={"X-Auth-Token": "x", "Content-Type": "application/json", "X-Custom-Header": "v"},
    )
    event = events[0]
    assert event["isBase64Encoded"] is True
    assert json.loads(base64.b64decode(event["body"])) == {"project_id": PROJECT}
    assert event["httpMethod"] == "POST" and event["path"] == PATH and event["pathParameters"] == {}
    assert event["queryStringParameters"] == {"dry_run": "true"}
    assert {"x-custom-header", "content-type", "x-auth-token"} <= set(event["headers"])
    assert all(name == name.lower() for name in event["headers"])
    assert event["requestContext"]["requestId"]
    payload = payload_of_result(
        {"statusCode": status, "headers": headers, "body": body.decode(), "isBase64Encoded": False}
    )
    assert (status, payload["dry_run"], payload["results"][0]["failed_task_count"]) == (200, True, 3)
    assert headers["Content-Type"] == "application/json"
    assert not [r for r in kps.requests if r.method == "DELETE"]
    assert "POST /kps-failed-task-cleaner -> 200 succeeded" in out.getvalue()


def test_an_empty_body_and_no_query_clean_the_configured_project(served, kps, settings):
    settings["KPS_PROJECT_ID"] = PROJECT
    url, events, _ = served
    status, _, _ = http(url, method="DELETE")
    assert status == 200 and events[0]["body"] == "" and events[0]["httpMethod"] == "DELETE"
    assert kps.failed_tasks(PROJECT) == []


@pytest.mark.parametrize("headers", [{}, {"X-Other": "x"}])
def test_without_token_or_signature_the_gateway_answers_401_and_the_function_never_runs(served, kps, headers):
    url, events, _ = served
    status, response_headers, body = http(url, body={"project_id": PROJECT}, headers=headers)
    assert status == 401 and json.loads(body)["error_code"] == "APIGW.0301"
    assert response_headers["Content-Type"] == "application/json"
    assert events == [] and kps.requests == []


def test_a_signature_is_enough_and_neither_it_nor_a_token_is_ever_printed(served, kps, capsys):
    url, _, out = served
    for headers in ({"Authorization": SIGNATURE}, {"X-Auth-Token": SECRET_TOKEN}):
        status, _, _ = http(url, body={"project_id": PROJECT}, headers=headers)
        assert status == 200
    printed = out.getvalue() + capsys.readouterr().out
    assert "event received" in printed, "LOG_EVENT=true logs the forwarded headers..."
    assert SECRET_TOKEN not in printed and SIGNATURE.split("Signature=")[1] not in printed, "...redacted"


def test_other_paths_are_the_gateways_404(served):
    url, events, _ = served
    status, _, body = http(url.replace(PATH, "/other"), body={})
    assert status == 404 and json.loads(body)["error_code"] == "APIGW.0101" and events == []


def test_a_rejection_keeps_its_status_and_a_multi_target_run_prints_the_table(served, kps):
    url, _, out = served
    status, _, body = http(url, body={"project_id": "nope"})
    assert status == 400 and json.loads(body)["error"]["code"] == "InvalidProjectId"
    kps.deny(OTHER_PROJECT)
    targets = [{"project_id": PROJECT, "region": REGION}, {"project_id": OTHER_PROJECT}]
    status, _, body = http(url, body={"targets": targets})
    assert status == 502 and json.loads(body)["status"] == "partial"
    lines = out.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("project "))
    assert lines[header].split() == ["project", "region", "outcome", "count", "attempts", "error"]
    assert lines[header + 1].split() == [PROJECT, REGION, "deleted", "3", "2", "-"]
    assert lines[header + 2].split() == [OTHER_PROJECT, REGION, "failed", "-", "2", "KPS.9003"]


def start_serve(port_env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools", "serve", "--port", "0"],
        cwd=ROOT,
        env=port_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_make_serve_from_nothing_starts_the_seeded_emulator_prints_a_working_curl_and_stops_on_ctrl_c():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPS_", "HUAWEICLOUD_"))}
    process = start_serve(env)
    try:
        banner = [process.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        assert "KPS and IAM emulator on http://127.0.0.1:" in banner[0]
        url = banner[1].split(" on ", 1)[1].split()[0]
        curl = banner[2].strip()
        assert curl.startswith("curl ") and url in curl and "X-Auth-Token" in curl
        # the printed curl line, run as curl would send it
        status, _, body = http(
            url, body={"project_id": PROJECT}, headers={"X-Auth-Token": "local", "Content-Type": "application/json"}
        )
        assert status == 200 and json.loads(body)["results"][0]["failed_task_count"] == 5
        status, _, body = http(url, body={"targets": "all", "dry_run": True})
        payload = json.loads(body)
        assert status == 200 and len(payload["results"]) == 3  # not MOS, the disabled one, eu-west-101
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "stopped" in out
    assert "POST /kps-failed-task-cleaner -> 200 succeeded" in out
    assert out.count("\nproject ") == 1, "the sweep's table, once"


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=300),
    query=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=20), max_size=4),
    header=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_any_request_reaches_the_handler_as_sent_and_answers_a_valid_payload(body, query, header, method, settings):
    """Bytes, query and headers arrive exactly (base64, decoded query, lower-cased names); whatever was sent,
    the answer is a payload the schema accepts (hostile bodies are 400s, not 500s)."""
    events: list[dict] = []

    def recording(event: Any, context: Any) -> Any:
        events.append(event)
        return handler(event, context)

    gateway = Gateway(recording, lambda: FakeContext(user_data={**settings, "KPS_DRY_RUN": "true"}))
    target = PATH + ("?" + urlencode(query) if query else "")
    status, headers, data, _ = gateway.answer(method, target, {"X-Auth-Token": "x", header: "v"}, body)
    event = events[0]
    assert base64.b64decode(event["body"]) == body and event["httpMethod"] == method
    assert event["queryStringParameters"] == query
    assert event["headers"][header.lower()] == "v"
    payload = payload_of_result(
        {"statusCode": status, "headers": headers, "body": data.decode(), "isBase64Encoded": False}
    )
    assert status < 500 or payload["status"] in {"partial", "failed"}


def test_a_body_over_functiongraphs_6_mb_never_reaches_the_function(served):
    """Refused by the gateway before it is read (FunctionGraph's synchronous request limit)."""
    url, events, _ = served
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: x\r\nContent-Length: {7 * 1024 * 1024}\r\n\r\n".encode()
        )
        answer = connection.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413") and events == []


def test_a_handler_answer_that_is_not_apis_shape_is_the_gateways_502_naming_only_the_error_type():
    gateway = Gateway(lambda event, context: {"body": SECRET_TOKEN}, FakeContext)
    status, _, data, payload = gateway.answer("POST", PATH, {"X-Auth-Token": "x"}, b"")
    assert (status, json.loads(data)["error_msg"], payload) == (502, "KeyError", None)
    assert SECRET_TOKEN.encode() not in data


def test_the_callers_credentials_are_masked_wherever_else_they_appear(served, kps, capsys):
    """LOG_EVENT=true: a token copied into another header or the body, and API Gateway's app code, never printed
    (the event is logged by its structure: no header value reaches a line)."""
    url, _, out = served
    appcode = "APPCODE-caller-secret-0123456789abcdef"
    headers = {"X-Auth-Token": SECRET_TOKEN, "X-Forwarded-Auth": SECRET_TOKEN, "X-Apig-Appcode": appcode}
    status, _, body = http(url, body={"project_id": PROJECT, "context": SECRET_TOKEN}, headers=headers)
    status2, _, _ = http(url, body={"project_id": PROJECT, "context": SIGNATURE}, headers={"Authorization": SIGNATURE})
    printed = out.getvalue() + capsys.readouterr().out + body.decode()
    assert (status, status2) == (200, 200) and printed.count("event received") == 2
    for secret in (SECRET_TOKEN, appcode, SIGNATURE):
        assert secret[:12] not in printed and secret[-12:] not in printed


# --- issue 15 point 7: the local gateway's own line, a hostile body, a repeated query key ---


def test_the_request_line_never_prints_what_the_caller_sent_as_method_or_path(served, capsys):
    """A token pasted as the method (``curl -X "$TOKEN"``) or into the path: 405 and 404, the token unprinted."""
    url, _, out = served
    auth = {"X-Auth-Token": SECRET_TOKEN, "Content-Type": "application/json"}
    status, _, body = http(url, method=SECRET_TOKEN, body={"project_id": PROJECT}, headers=auth)
    assert status == 405 and json.loads(body)["error"]["code"] == "MethodNotAllowed"
    status, _, _ = http(url.replace(PATH, "/" + SECRET_TOKEN), method=SECRET_TOKEN, body={}, headers=auth)
    assert status == 404
    printed = out.getvalue()
    assert f"(other method) {PATH} -> 405 rejected  error MethodNotAllowed" in printed
    assert "(other method) (other path) -> 404 APIGW.0101" in printed
    assert SECRET_TOKEN[:12] not in printed + capsys.readouterr().out


def test_a_body_nested_100000_deep_is_answered(served, kps):
    url, _, out = served
    status, headers, body = http(url, body=b"[" * 100_000 + b"]" * 100_000)
    assert 400 <= status < 600 and headers["Content-Type"] == "application/json" and json.loads(body)
    assert kps.requests == [] or all(r.method != "DELETE" for r in kps.requests)
    assert f"POST {PATH} -> {status}" in out.getvalue()


@pytest.mark.parametrize("query", ["dry_run=true&dry_run=false", f"project_id={PROJECT}&project_id={OTHER_PROJECT}"])
def test_a_repeated_query_key_is_refused_before_the_function_runs(served, kps, query):
    url, events, out = served
    status, _, body = http(f"{url}?{query}", body={})
    assert status == 400 and json.loads(body)["error_code"] == "APIGW.0201"
    assert events == [] and kps.requests == []
    assert f"POST {PATH} -> 400 APIGW.0201" in out.getvalue()


def test_each_request_line_carries_the_count_and_the_error_code(served, kps):
    url, _, out = served
    http(url, body={"project_id": PROJECT, "dry_run": True})
    http(url, body={"project_id": "nope"})
    lines = out.getvalue()
    assert f"POST {PATH} -> 200 succeeded  would delete 3  targets 1/1 ok (" in lines
    assert f"POST {PATH} -> 400 rejected  error InvalidProjectId (" in lines


# --- make serve as a process: the busy port, the reload ---


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("KPS_", "HUAWEICLOUD_"))}


def _serve_on(port: str) -> subprocess.CompletedProcess[str]:
    """``make serve --port port`` run to its end (it ends at once when it cannot start)."""
    return subprocess.run(
        [sys.executable, "-m", "devtools", "serve", "--port", port],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_busy_port_is_one_line_before_anything_starts():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = _serve_on(str(port))
    assert done.returncode != 0
    assert done.stdout == "", "nothing started: no emulator, no banner"
    [line] = done.stderr.splitlines()
    assert f"port {port}" in line and "in use" in line and "PORT=" in line


class Lines:
    """A process's stdout read on a thread, so a test can wait for one line within a bound (no timing check)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        import queue
        import threading

        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self._lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]

    def until(self, needle: str, seconds: float = 30) -> str:
        import queue

        while True:
            try:
                line = self._lines.get(timeout=seconds)
            except queue.Empty:
                raise AssertionError(f"{needle!r} never came; got {''.join(self.seen)[-2000:]!r}") from None
            self.seen.append(line)
            if needle in line:
                return line


def _copy_code(into) -> None:
    """The function's code in a folder of its own, for serve's --code-dir: a test edits it there, not here."""
    shutil.copy(ROOT / "handler.py", into / "handler.py")
    shutil.copytree(ROOT / "function", into / "function", ignore=shutil.ignore_patterns("__pycache__"))


def _start_serve(code_dir=None, stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen, Lines, str]:
    """``serve`` on a free port: the process, its stdout's lines, and the URL it says it serves."""
    extra = ["--code-dir", str(code_dir)] if code_dir is not None else []
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools", "serve", "--port", "0", *extra],
        cwd=ROOT,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    lines = Lines(process)
    return process, lines, lines.until("Local API Gateway on").split(" on ", 1)[1].split()[0]


def test_serve_reloads_when_the_functions_code_changes(tmp_path):
    _copy_code(tmp_path)
    process, lines, url = _start_serve(tmp_path, stderr=subprocess.PIPE)
    try:
        status, _, body = http(url, body={"project_id": PROJECT, "dry_run": True})
        assert status == 200 and json.loads(body)["dry_run"] is True
        with (tmp_path / "function" / "cleaner.py").open("a", encoding="utf-8") as cleaner:
            cleaner.write(
                "\n\ndef handle(event, context):\n"
                "    body = '{\"edited\": true}'\n"
                '    return {"statusCode": 418, "headers": {}, "body": body, "isBase64Encoded": False}\n'
            )
        lines.until("reloading: function/cleaner.py changed")
        status, _, body = http(url, body={"project_id": PROJECT})
        assert (status, json.loads(body)) == (418, {"edited": True}), "a fresh interpreter imported the edit"
        process.send_signal(signal.SIGINT)
        lines.until("stopped")
        err = process.stderr.read()  # type: ignore[union-attr]
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_a_worker_never_outlives_its_watcher():
    """The watcher killed outright (it cannot stop its worker): the worker leaves, the port is free again."""
    process, _, url = _start_serve()
    assert http(url, body={"project_id": PROJECT, "dry_run": True})[0] == 200  # the worker is up
    process.kill()
    process.wait(timeout=20)
    port = int(url.split(":")[2].split("/")[0])
    for _ in range(100):  # up to 10 s for the worker to notice and close its copy of the socket
        try:
            socket.create_server(("127.0.0.1", port)).close()
            break
        except OSError:
            import time

            time.sleep(0.1)
    else:
        raise AssertionError("the worker still holds the port after its watcher died")


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_one_line_too(port):
    """Like a busy port, a port out of range is one line (not an OverflowError traceback)."""
    done = _serve_on(port)
    assert done.returncode != 0 and done.stdout == ""
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_request_in_flight_during_a_reload_is_answered(tmp_path):
    """A request the old worker has accepted (its body still coming when the reload is said) is answered: the old
    worker drains, the new one serves."""
    _copy_code(tmp_path)
    process, lines, url = _start_serve(tmp_path)
    try:
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


def test_a_worker_that_dies_is_said_and_replaced_not_a_silent_hang():
    """The worker killed (OOM, a crash, kill -9): the watcher says so and starts another, which answers."""
    import urllib.error
    import urllib.request

    process, lines, url = _start_serve()
    try:
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
        assert lines.until("worker died").startswith("worker died (exit -9)")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_http_api_md_says_what_a_field_in_body_and_query_does(served):
    """A field in both body and query is refused 400 InvalidEvent, and docs/http-api.md says so."""
    url, _, _ = served
    other = "0" * 31 + "a"
    status, _, body = http(f"{url}?project_id={other}", body={"project_id": PROJECT, "dry_run": True})
    page = (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8")
    refused = status == 400 and json.loads(body)["error"]["code"] == "InvalidEvent"
    assert refused and "a query field wins" not in page and "refused `400 InvalidEvent`" in page


def test_the_request_line_names_the_gateways_request_id(served, kps):
    url, events, out = served
    status, _, _ = http(url, body={"project_id": PROJECT, "dry_run": True}, headers={"X-Auth-Token": "x"})
    assert status == 200
    assert f"request {events[-1]['requestContext']['requestId']}" in out.getvalue()
