"""`make serve` as a gateway that reads whole requests: framing, refusals and its log, over raw sockets.

The function runs only for a request whose body arrived whole, as the request framed it; every other
request is the gateway's own JSON answer, one log line, and nothing sent to KPS.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest
import yaml
from conftest import PROJECT, ROOT, deletes, http
from jsonschema import Draft202012Validator

from devtools.serve import MAX_LINE, PATH

GATEWAY_ERROR = Draft202012Validator(
    yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text())["components"]["schemas"]["GatewayError"]
)
DRY_RUN_BODY = json.dumps({"project_id": PROJECT, "dry_run": True}).encode()


def exchange(url: str, request: bytes, *, half_close: bool = False) -> bytes:
    """Writes ``request`` as it is on one connection (half-closed after it, if asked); returns every byte answered."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def raw(url: str, request: bytes, *, half_close: bool = False) -> tuple[int, dict[str, Any] | None]:
    """Sends bytes as they are; returns the status and the JSON body of the answer (0, None: no answer)."""
    answer = exchange(url, request, half_close=half_close)
    if not answer:
        return 0, None
    head, _, body = answer.partition(b"\r\n\r\n")
    status, data = int(head.split()[1]), json.loads(body) if body else None
    if status != 200:
        GATEWAY_ERROR.validate(data)  # the gateway's own answers are as api/openapi.yaml describes them
    return status, data


def post(headers: str, body: bytes = b"") -> bytes:
    return f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: x\r\nConnection: close\r\n{headers}\r\n".encode() + body


def log_lines(out: Any) -> list[str]:
    return out.getvalue().splitlines()


def test_a_chunked_body_reaches_the_function_whole(served, kps):
    url, events, _ = served
    half = len(DRY_RUN_BODY) // 2
    chunks = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (
        half, DRY_RUN_BODY[:half], len(DRY_RUN_BODY) - half, DRY_RUN_BODY[half:]
    )  # fmt: skip
    status, payload = raw(url, post("Transfer-Encoding: chunked\r\n", chunks))
    assert status == 200 and payload["dry_run"] is True and payload["results"][0]["failed_task_count"] == 3
    assert len(events) == 1 and deletes(kps) == [] and len(kps.failed_tasks(PROJECT)) == 3


@pytest.mark.parametrize(
    "request_bytes",
    [
        post("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"),  # not a hex size
        post("Transfer-Encoding: chunked\r\n", b"5\r\n{}\r\n0\r\n\r\n"),  # a chunk shorter than its size
        post("Transfer-Encoding: chunked\r\n", b"2;x=\x00\r\n{}\r\n0\r\n\r\n"),  # a NUL in a chunk extension
        post("Transfer-Encoding: gzip\r\n", b"{}"),  # a coding the gateway does not take
        post("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", b"2\r\n{}\r\n0\r\n\r\n"),  # both: smuggling
        post("Content-Length: -1\r\n", b"{}"),
        post("Content-Length: abc\r\n", b"{}"),
        post("Content-Length: +2\r\n", b"{}"),
        post("Content-Length: 2\r\nContent-Length: 3\r\n", b"{}"),
        post("Content-Length: 2 2\r\n", b"{}"),
    ],
    ids=[
        "bad-size",
        "short-chunk",
        "ext-nul",
        "gzip",
        "te-and-cl",
        "cl-minus-1",
        "cl-abc",
        "cl-plus",
        "cl-twice",
        "cl-space",
    ],
)
def test_a_malformed_body_is_the_gateways_400_and_the_function_never_runs(served, kps, settings, request_bytes):
    settings["KPS_PROJECT_ID"] = PROJECT  # an empty request would clean this project
    url, events, out = served
    status, body = raw(url, request_bytes, half_close=True)
    assert status == 400 and body["error_code"] == "APIGW.0201"
    assert events == [] and kps.requests == [] and len(kps.failed_tasks(PROJECT)) == 3
    assert len([line for line in log_lines(out) if f"POST {PATH} -> 400 APIGW.0201" in line]) == 1


def test_a_body_cut_short_by_the_client_hanging_up_never_runs_the_function(served, kps, settings):
    settings["KPS_PROJECT_ID"] = PROJECT
    url, events, out = served
    raw(
        url,
        post(f"Content-Length: {len(DRY_RUN_BODY) + 50}\r\n", DRY_RUN_BODY.replace(b"true", b"false")),
        half_close=True,
    )
    assert events == [] and kps.requests == [] and len(kps.failed_tasks(PROJECT)) == 3
    assert len([line for line in log_lines(out) if "-> 400 APIGW.0201" in line]) == 1


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"POST " + PATH.encode() + b" HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
    ids=["bad-request-line", "too-many-headers", "uri-too-long"],
)
def test_the_http_parsers_own_refusals_are_json_and_logged(served, kps, request_bytes, expected):
    url, events, out = served
    status, body = raw(url, request_bytes)
    assert status == expected and body["error_code"] == "APIGW.0201" and body["error_msg"]
    assert events == [] and len([line for line in log_lines(out) if f"-> {expected} APIGW.0201" in line]) == 1


@pytest.mark.parametrize(
    "request_bytes",
    [
        post(f"X-A: b\rContent-Length: {len(DRY_RUN_BODY)}\r\n", DRY_RUN_BODY),  # one line, or two to a lenient parser
        post(f"Content-Length: {len(DRY_RUN_BODY)}\r\nX-A: b\r\r\n", DRY_RUN_BODY),  # a CR before the CRLF
        post(f"Content-Length: {len(DRY_RUN_BODY)}\r\n\rX-A: b\r\n", DRY_RUN_BODY),  # a CR opening a line
        f"POST {PATH}\r HTTP/1.1\r\nHost: x\r\nX-Auth-Token: x\r\nContent-Length: 2\r\n\r\n{{}}".encode(),
        post(
            "Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\nX-T: a\rb\r\n\r\n" % (len(DRY_RUN_BODY), DRY_RUN_BODY)
        ),
    ],
    ids=["in-a-header", "before-crlf", "line-start", "request-line", "in-a-trailer"],
)
def test_a_bare_cr_in_the_head_is_the_gateways_400_and_the_function_never_runs(served, kps, settings, request_bytes):
    """RFC 9112 2.2: a CR not followed by LF makes the element invalid. The stdlib's header parser (the email
    package) ends a line at a bare CR, so "X-A: b<CR>Content-Length: n" would be two headers to it and one to a
    proxy in front: refused whole, as a strict HTTP/1.1 server does. A bare LF ending a line is allowed (2.2)."""
    settings["KPS_PROJECT_ID"] = PROJECT
    url, events, out = served
    status, body = raw(url, request_bytes)
    assert status == 400 and body["error_code"] == "APIGW.0201" and "bare CR" in body["error_msg"]
    assert events == [] and kps.requests == [] and len(kps.failed_tasks(PROJECT)) == 3
    assert len([line for line in log_lines(out) if "-> 400 APIGW.0201" in line]) == 1


@pytest.mark.parametrize(
    "line", ["Content-Length : {n}", "X-Note\r\nContent-Length: {n}"], ids=["space-before-colon", "no-colon"]
)
def test_a_header_line_the_gateway_cannot_read_is_refused_not_a_smuggled_request(served, kps, line):
    """RFC 9112 5.1: whitespace between a field name and its colon MUST be refused 400. The stdlib's header parser
    (the email package) stops at the first line that is no header and drops it and every line after it, with no
    error: "Content-Length : n" would be lost, the function run with an empty body, and the n bytes a proxy sent as
    this request's body read as a second request on the connection, here a real cleanup of PROJECT."""
    body = json.dumps({"project_id": PROJECT}).encode()
    inner = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    outer = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: x\r\n{line.format(n=len(inner))}\r\n\r\n".encode()
    url, events, _ = served
    answer = exchange(url, outer + inner, half_close=True)
    assert deletes(kps) == [], "a request inside another's body reached the function and deleted every task"
    assert events == [] and answer.startswith(b"HTTP/1.1 400 "), (len(events), answer[:40])


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: {n}\x0b",
        "Content-Length: \x1c{n}",
        "Transfer-Encoding: chunked\xa0",
        "Transfer-Encoding: \x85chunked",
    ],
    ids=["cl-vtab", "cl-fs", "te-nbsp", "te-nel"],
)
def test_a_framing_header_padded_with_what_http_does_not_call_whitespace_is_refused(served, kps, framing):
    """HTTP's optional whitespace is SP and HTAB only (RFC 9110 5.6.3): "2<VT>" is no Content-Length and
    "chunked<NBSP>" no coding (``str.strip()`` would drop VT, FF, FS..US, NEL and NBSP, Latin-1 0x85 and 0xA0).
    A proxy in front frames such a request otherwise: refused, the function never run."""
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(DRY_RUN_BODY), DRY_RUN_BODY) if "chunked" in framing else DRY_RUN_BODY
    url, events, _ = served
    request = post(framing.format(n=len(DRY_RUN_BODY)) + "\r\n", body)
    status, _ = raw(url, request.decode().encode("latin-1"))  # one byte each, as a client would send them
    assert (status, events) == (400, []), (status, len(events))


@pytest.mark.parametrize("header", ["X-A: b\r\n c\r\n", "X-A: b\x00c\r\n"], ids=["obs-fold", "nul"])
def test_a_line_break_or_nul_in_a_header_value_never_reaches_the_function(served, kps, header):
    """RFC 9112 5.2 (obs-fold) and RFC 9110 5.5 (CR, LF, NUL in a value): refused with 400 (the same rule as the
    bare CR: a field line is a token, a colon and text), never "b\\r\\n c" or "b\\x00c" in the event's header."""
    url, events, _ = served
    status, _ = raw(url, post(f"{header}Content-Length: {len(DRY_RUN_BODY)}\r\n", DRY_RUN_BODY))
    values = [value for event in events for value in event["headers"].values()]
    assert status == 400 or not [v for v in values if set(v) & {"\r", "\n", "\0"}], values


@pytest.mark.parametrize("end", [b"\n", b"\r\n"], ids=["lf", "crlf-across-the-limit"])
def test_a_trailer_line_longer_than_the_gateway_reads_is_not_split_into_a_next_request(served, kps, end):
    """Trailer lines are read 8 KiB at a time: a longer one is refused 400, not read as two, its rest taken for the
    blank line that ends the message and the trailers after it for the connection's next request (a request no
    proxy in front saw). One request, one answer; a CRLF split by the limit is a long line, not a bare CR."""
    pad = b"a" * (MAX_LINE - len(b"X-Pad: ") - len(end) + 1)  # its last byte just past the limit
    chunked = b"%x\r\n%s\r\n0\r\nX-Pad: %s%sX-T: b\r\n\r\n" % (len(DRY_RUN_BODY), DRY_RUN_BODY, pad, end)
    request = post("Transfer-Encoding: chunked\r\n", chunked).replace(b"Connection: close\r\n", b"")
    url, _, out = served
    answer = exchange(url, request, half_close=True)
    assert len(log_lines(out)) == 1 and answer.count(b"HTTP/1.1 ") == 1, log_lines(out)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"longer than" in answer and b"bare CR" not in answer, answer


def test_a_refusal_on_a_kept_alive_connection_logs_no_earlier_requests_id(served, kps):
    """The handler object lives as long as its connection: the parser's refusal of a second request on it must
    log its own "request <id>" and path, never the first's (a reader would tie the 400 to a call that succeeded)."""
    first = post(f"Content-Length: {len(DRY_RUN_BODY)}\r\n", DRY_RUN_BODY).replace(b"Connection: close\r\n", b"")
    url, events, out = served
    exchange(url, first + b"NOT-HTTP\r\n\r\n", half_close=True)
    [served_line, refused_line] = log_lines(out)
    assert len(events) == 1 and " 400 " in refused_line
    assert served_line.rsplit(" ", 1)[1] not in refused_line, refused_line


def test_lines_ended_by_a_bare_lf_are_still_read(served, kps):
    url, events, _ = served
    request = post(f"Content-Length: {len(DRY_RUN_BODY)}\r\n", DRY_RUN_BODY).replace(b"\r\n", b"\n")
    status, payload = raw(url, request)
    assert status == 200 and payload["dry_run"] is True and len(events) == 1


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_or_blank_token_is_missing_the_gateways_401(served, kps, value):
    url, events, _ = served
    status, body = raw(
        url, post(f"X-Auth-Token: {value}\r\nContent-Length: 2\r\n", b"{}").replace(b"X-Auth-Token: x\r\n", b"")
    )
    assert status == 401 and body["error_code"] == "APIGW.0301"
    assert events == [] and kps.requests == []


def test_forty_requests_at_once_are_all_answered_and_no_log_line_is_glued_to_another():
    """A burst beyond the stdlib's backlog of 5; the serve lines and the function's JSON lines share stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPS_", "HUAWEICLOUD_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools", "serve", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = [process.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        url = banner[1].split(" on ", 1)[1].split()[0]
        lines: list[str] = []  # read while it runs: a full pipe would stall the server's writes
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        statuses: list[Any] = []

        def call() -> None:
            try:
                statuses.append(http(url + "?dry_run=true", method="GET")[0])
            except OSError as exc:
                statuses.append(type(exc).__name__)

        threads = [threading.Thread(target=call) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert statuses == [200] * 40, statuses
    lines = [line.rstrip("\n") for line in lines]
    for line in lines:
        if line.startswith("{"):
            json.loads(line)  # a function line, whole
        else:
            assert "{" not in line, f"a line glued to a JSON line: {line[:200]}"
    assert sum(line.startswith(f"GET {PATH} -> 200 succeeded") for line in lines) == 40


TARGET = PATH.encode()
REST = b"X-Auth-Token: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(DRY_RUN_BODY), DRY_RUN_BODY)
STRICTLY_REFUSED = {
    # RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, with more than one Host line or an invalid value.
    "no Host": b"POST " + TARGET + b" HTTP/1.1\r\n" + REST,
    "two Host lines": b"POST " + TARGET + b" HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + REST,
    "a Host with a space": b"POST " + TARGET + b" HTTP/1.1\r\nHost: a b\r\n" + REST,
    # RFC 9112 3: the request line's separator is SP; NBSP and NEL are none, yet str.split() (the stdlib's) splits
    # on them: a proxy in front reads one token where the stdlib reads three.
    "NBSP as the separator": b"POST\xa0" + TARGET + b"\xa0HTTP/1.1\r\nHost: x\r\n" + REST,
    "NEL as the separator": b"POST\x85" + TARGET + b" HTTP/1.1\r\nHost: x\r\n" + REST,
    # RFC 9110 9.1: method = token; "(" is no tchar.
    "a method that is no token": b"PO(ST " + TARGET + b" HTTP/1.1\r\nHost: x\r\n" + REST,
    # RFC 9112 2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
    "HTTP/1.01": b"POST " + TARGET + b" HTTP/1.01\r\nHost: x\r\n" + REST,
    # RFC 9112 3.2 / RFC 3986: a request-target holds no "#" and no byte past ASCII.
    "a fragment in the target": b"POST " + TARGET + b"#x HTTP/1.1\r\nHost: x\r\n" + REST,
    "a byte past ASCII in the target": b"POST " + TARGET + b"?a=\xff HTTP/1.1\r\nHost: x\r\n" + REST,
    # HTTP/0.9's line has no version: the stdlib would answer the body alone, without a status line.
    "HTTP/0.9": b"GET " + TARGET + b"\r\n",
}


@pytest.mark.parametrize("request_bytes", list(STRICTLY_REFUSED.values()), ids=list(STRICTLY_REFUSED))
def test_a_request_a_strict_parser_refuses_is_answered_400_and_never_runs_the_function(served, kps, request_bytes):
    url, events, _ = served
    answer = exchange(url, request_bytes, half_close=True)
    assert events == [], "the function ran for a request a strict HTTP/1.1 parser refuses"
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:60]


def test_an_http_1_0_chunked_request_ends_its_connection(served, kps):
    """RFC 9112 6.1: a server that receives an HTTP/1.0 message with Transfer-Encoding MUST treat its framing as
    faulty and close the connection after it, even with ``Connection: keep-alive``: the next bytes would be read
    as a second request (here one that runs the function again), one a 1.0 proxy never sent."""
    url, events, _ = served
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(DRY_RUN_BODY), DRY_RUN_BODY)
    first = b"POST " + TARGET + b" HTTP/1.0\r\nHost: x\r\nX-Auth-Token: x\r\nConnection: keep-alive\r\n"
    first += b"Transfer-Encoding: chunked\r\n\r\n" + chunked
    answer = exchange(url, first + b"POST " + TARGET + b" HTTP/1.1\r\nHost: x\r\n" + REST, half_close=True)
    assert answer.count(b"HTTP/1.1 ") == 1 and len(events) == 1, (answer.count(b"HTTP/1.1 "), len(events))


CHUNKED = "Transfer-Encoding: chunked\r\n"
VALID_FRAMING = {
    # RFC 9112 7.1.1: a chunk extension has no length bound (a chunk-size line is read up to MAX_LINE).
    "a chunk extension of 80 bytes": (
        CHUNKED,
        b"%x;name=%s\r\n%s\r\n0\r\n\r\n" % (len(DRY_RUN_BODY), b"v" * 80, DRY_RUN_BODY),
    ),
    # chunk-size = 1*HEXDIG and Content-Length = 1*DIGIT: leading zeros are allowed; the bound is on the value.
    "a chunk size with leading zeros": (CHUNKED, b"%010x\r\n%s\r\n0\r\n\r\n" % (len(DRY_RUN_BODY), DRY_RUN_BODY)),
    "a Content-Length of 17 digits": (f"Content-Length: {len(DRY_RUN_BODY):017d}\r\n", DRY_RUN_BODY),
}


@pytest.mark.parametrize(("framing", "body"), list(VALID_FRAMING.values()), ids=list(VALID_FRAMING))
def test_a_valid_request_is_served_whatever_the_length_of_its_framing(served, kps, framing, body):
    url, events, _ = served
    answer = exchange(url, post(framing, body), half_close=True)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert len(events) == 1
