"""Red team on issue 15 points 4-7 (logs, secrets, one clock, payload bound): each test reproduces one
finding on the code as merged (bf61f0e) and fails there.

1. A sweep whose failed results (long non-ASCII KPS errors) alone pass the answer limit, with samples:
   ``payload.within_answer_limit`` raises ``StopIteration`` out of the handler: no payload at all.
2. The same results without samples: the answer passes 6 MB (7.1 MB direct, 8.2 MB over API Gateway),
   since only samples are ever shrunk and only when some result has one.
3. A server echoing the request's ``Authorization`` header: the AK is masked, the signature is not.
4. A KPS ``error_msg`` that is an object: ``str()`` (repr) turns a zero-width space into the six ASCII
   characters ``\\u200b``, which normalisation no longer drops: a split token comes back readable.
5. A token split by invisible characters that are not category Cf (U+034F, U+FE0F, U+3164, U+E0100:
   all Default_Ignorable_Code_Point) comes back readable.
6. A caller's own token sent in the body (a value or a key) is quoted ~44 characters long in the
   ``rejected`` line, although caller credentials are "never logged".
7. The raw-body path (an error code that is a number, as in IAM's own ``{"error": {"code": 401}}``)
   keeps the JSON encoder's ``\\u200b``/``\\uff2d`` escapes as text: split and full-width echoes readable.
8. An HTML page's own breaks (``&#8203;``, ``&shy;``, ``<wbr>``) split a token into unmasked pieces.
9. Header text is read as Latin-1: a UTF-8 U+200B in a reason phrase, Location or X-Request-Id becomes
   ``\u00e2`` and a space, and the token stays readable between them.
The two tests named ``control``/``header only`` pass today: the helper finds no window where none is.
"""

from __future__ import annotations

import base64
import html
import json
import random
import re
import socket
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from conftest import AK, PROJECT, SK, apig_event, assert_valid_payload

from devtools.context import FakeContext
from function import payload
from handler import handler

SIX_MB = 6 * 1024 * 1024
EMOJI = "\U0001f600"
# Invisible characters a reader skips; none of them is category Cf, so ``logs.normalise`` keeps them.
IGNORABLE = ["\u034f", "\ufe0f", "\u3164", "\U000e0100"]


def secret(length: int, seed: int) -> str:
    """A credential-like string with no repeats (a periodic one would match itself everywhere)."""
    rng = random.Random(seed)
    return base64.b64encode(rng.randbytes(length)).decode()[:length]


def invoke_raw(event, context) -> tuple[dict, str]:
    import io
    import sys

    out, saved = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        result = handler(event, context)
    finally:
        sys.stdout = saved
    return result, out.getvalue()


def readable(text: str) -> str:
    """What a person reading the line sees: JSON decoded, the escapes ``\\uXXXX``/``\\xXX`` left in a
    text (a repr, a raw JSON body) read as the characters they stand for, NFKC, invisible characters
    (Cf, Mn, the Hangul fillers) skipped, lower case."""
    decoded = []
    for line in text.splitlines():
        try:
            decoded.append(json.dumps(json.loads(line), ensure_ascii=False))
        except ValueError:
            decoded.append(line)
    seen = re.sub(
        r"\\+(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2}))",
        lambda m: chr(int(m.group(1) or m.group(2) or m.group(3), 16)),
        "\n".join(decoded),
    )
    seen = unicodedata.normalize("NFKC", seen)
    return "".join(c for c in seen if unicodedata.category(c) not in ("Cf", "Mn") and c not in "\u3164\u1160").lower()


def windows_left(text: str, value: str, junk: str = "") -> list[str]:
    seen, low = readable(text), value.lower()
    seen = seen.replace(junk, "") if junk else seen
    return [low[i : i + 12] for i in range(len(low) - 11) if low[i : i + 12] in seen]


# --- 1 and 2: the answer limit ------------------------------------------------------------------------


def _sweep(kps, settings, count: int, *, listed: bool) -> None:
    projects = [{"id": f"{i:032x}", "name": "cn-north-4", "enabled": True} for i in range(count)]
    kps.set_iam_projects(projects)
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_TARGETS="all", KPS_MAX_ATTEMPTS="1")
    error = {"error_code": EMOJI * 64, "error_msg": EMOJI * 600}
    kps.inject()  # IAM's project listing answers normally
    if listed:  # each target: its listing answers (one task: a sample), its DELETE fails
        settings["KPS_CONCURRENCY"] = "1"
        for project in projects:
            kps.seed(project["id"], 1)
            kps.inject()
            kps.inject(status=403, body=error)
    else:
        settings.update(KPS_COUNT_BEFORE_DELETE="false", KPS_CONCURRENCY="32")
        kps.inject(status=403, body=error, times=count)


def test_failed_results_past_the_limit_with_samples_still_answer_the_payload(kps, settings):
    """1,000 targets, each listed (one task) and its DELETE refused with a 64-emoji code and a
    500-emoji message: the results without samples take ~7 MB. Was: ``StopIteration`` raised by
    ``within_answer_limit`` (``next`` over SAMPLE_STEPS finds no step when even 0 tasks do not fit)."""
    _sweep(kps, settings, 1000, listed=True)
    result, _ = invoke_raw({}, FakeContext(user_data=settings, timeout_seconds=120))
    assert_valid_payload(result)
    assert len(json.dumps(result)) < SIX_MB


def test_within_answer_limit_never_raises(kps):
    """The same, without the network: nine results whose errors alone pass the limit."""
    error = {"code": "KPS.0001", "message": EMOJI * 500_000, "retryable": False}
    results = [{"project_id": PROJECT, "ok": False, "error": error, "sample": [{"task_id": "t"}]} for _ in range(9)]
    built = {"ok": False, "status": "failed", "results": results, "error": None}
    payload.within_answer_limit(built, http=False)


@pytest.mark.parametrize("http", [False, True], ids=["direct", "apig"])
def test_many_failed_targets_without_samples_stay_under_6_mb(kps, settings, http):
    """1,000 targets of a sweep, each DELETE refused with a 64-emoji code and a 500-emoji message
    (KPS_COUNT_BEFORE_DELETE=false: no sample to shrink). Was: 7.1 MB direct, 8.2 MB over API Gateway,
    although FunctionGraph answers a synchronous call of at most 6 MB."""
    _sweep(kps, settings, 1000, listed=False)
    event = apig_event(None) if http else {}
    result, _ = invoke_raw(event, FakeContext(user_data=settings, timeout_seconds=120))
    body = json.loads(result["body"]) if http else result
    assert_valid_payload(body)
    assert len(body["results"]) == 1000
    assert len(json.dumps(result)) < SIX_MB, "the answer passes FunctionGraph's 6 MB"


# --- 3: the request's signature ------------------------------------------------------------------------


class _EchoAuthorization(BaseHTTPRequestHandler):
    """A server that quotes the request's Authorization header in its error, as gateways do for a bad
    signature."""

    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        authorization = self.headers.get("Authorization", "")
        self.seen.append(authorization)
        text = f"Incorrect IAM authentication information: verify aksk signature fail, {authorization}"
        body = json.dumps({"error_code": "APIGW.0301", "error_msg": text}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, *_: object) -> None:
        pass


def test_a_signature_echoed_by_the_server_reaches_no_line_or_payload(settings):
    """Was: ``Signature=<64 hex>`` of a signed DELETE came back whole in the payload's error message
    and the ``target done`` line (only the AK beside it was masked); a signature replays its request
    while X-Sdk-Date is accepted (15 minutes)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuthorization)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _EchoAuthorization.seen = []
    try:
        settings.pop("KPS_AUTH_TOKEN")
        settings.update(
            KPS_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}",
            HUAWEICLOUD_SDK_AK=AK,
            HUAWEICLOUD_SDK_SK=SK,
            KPS_COUNT_BEFORE_DELETE="false",
            KPS_MAX_ATTEMPTS="1",
            LOG_LEVEL="DEBUG",
        )
        result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    [authorization] = _EchoAuthorization.seen
    signature = authorization.rsplit("Signature=", 1)[1]
    assert result["results"][0]["error"]["code"] == "APIGW.0301"
    assert windows_left(out + json.dumps(result), signature) == [], "the request's signature was printed"


# --- 4 and 5: echoes normalisation does not undo ------------------------------------------------------


def _echo_invocation(kps, settings, error_msg) -> tuple[dict, str, str]:
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + secret(600, 7)
    kps.add_token(token)
    settings["KPS_COUNT_BEFORE_DELETE"] = "false"
    kps.inject(status=403, body={"error_code": "KPS.9003", "error_msg": error_msg(token)})
    result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    assert result["results"][0]["error"]["code"] == "KPS.9003"
    return result, out, token


def _split(token: str, mark: str) -> str:
    return mark.join(token[i : i + 11] for i in range(0, 330, 11))


def test_a_zero_width_split_token_inside_an_object_error_msg_is_masked(kps, settings):
    """``error_msg`` an object holding a token with U+200B every 11 characters. Was: the message is the
    object's repr, where each U+200B is the ASCII text ``\\u200b``: nothing to drop, the token readable."""
    result, out, token = _echo_invocation(kps, settings, lambda t: {"detail": f"token {_split(t, chr(0x200B))}"})
    assert windows_left(out + json.dumps(result), token) == []


def test_control_a_zero_width_split_token_as_a_string_is_masked(kps, settings):
    """Control (passes today): the same echo as a string; the helper finds no window where none is."""
    result, out, token = _echo_invocation(kps, settings, lambda t: f"token {_split(t, chr(0x200B))} is invalid")
    assert windows_left(out + json.dumps(result), token) == []


@pytest.mark.parametrize("mark", IGNORABLE, ids=[f"U+{ord(m):04X}" for m in IGNORABLE])
def test_a_token_split_by_an_invisible_character_is_masked(kps, settings, mark):
    """Default_Ignorable characters outside category Cf (a combining grapheme joiner, variation
    selectors, the Hangul filler) show as nothing, like U+200B. Was: kept, the token readable."""
    result, out, token = _echo_invocation(kps, settings, lambda t: f"token {_split(t, mark)} is invalid")
    assert windows_left(out + json.dumps(result), token) == []


def test_an_iam_error_with_a_numeric_code_echoing_a_split_token_is_masked(kps, settings):
    """IAM's error shape, ``{"error": {"code": 401, ...}}``: the code is a number, so the raw body is the
    message, with the JSON encoder's ``\\u200b`` escapes as text. Was: the split token readable in the
    payload's ProjectListingFailed message and the ``project listing failed`` line."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + secret(600, 7)
    kps.add_token(token)
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_TARGETS="all", KPS_MAX_ATTEMPTS="1")
    message = f"token {_split(token, chr(0x200B))}"
    kps.inject(status=401, body={"error": {"code": 401, "message": message, "title": "Unauthorized"}})
    result, out = invoke_raw({}, FakeContext(user_data=settings))
    assert result["error"]["code"] == "ProjectListingFailed"
    assert windows_left(out + json.dumps(result), token) == []


def test_a_kps_error_with_a_numeric_code_echoing_a_full_width_token_is_masked(kps, settings):
    """The same raw-body path: a full-width echo arrives as ``\\uff2d...`` text, which NFKC cannot fold.
    Was: readable (with a string code the same echo is masked: ``token ***``)."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + secret(600, 7)
    kps.add_token(token)
    settings.update(KPS_COUNT_BEFORE_DELETE="false", KPS_MAX_ATTEMPTS="1")
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in token[:100])
    kps.inject(status=401, body={"error_code": 9003, "error_msg": f"token {wide}"})
    result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    assert result["results"][0]["error"]["code"] == "HTTP.401"
    assert windows_left(out + json.dumps(result), token) == []


@pytest.mark.parametrize("mark", ["&#8203;", "&shy;", "<wbr>"])
def test_a_token_split_by_an_html_break_in_an_error_page_is_masked(kps, settings, mark):
    """An HTML error page breaks a long token the ways HTML does: a zero-width space or soft hyphen
    written as an entity, or a ``<wbr>`` tag. Was: the entity kept as text, the tag made a space; the
    pieces (11 characters) pass the mask and the token reads whole once the page's breaks are read."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + secret(600, 7)
    kps.add_token(token)
    settings.update(KPS_COUNT_BEFORE_DELETE="false", KPS_MAX_ATTEMPTS="1")
    page = f"<html><body><h1>401</h1><p>token {_split(token, mark)}</p></body></html>"
    kps.inject(status=401, body=page.encode(), headers={"Content-Type": "text/html"})
    result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    assert result["results"][0]["error"]["code"] == "HTTP.401"
    seen = html.unescape(out + json.dumps(result))
    assert windows_left(seen if mark != "<wbr>" else seen.replace(" ", ""), token) == []


class _RawReply:
    """A loopback server answering every request with the same raw bytes (headers a KPS emulator
    cannot write: UTF-8 in a reason phrase, a Location, an X-Request-Id)."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self._raw)

    def close(self) -> None:
        self._sock.close()


@pytest.mark.parametrize("where", ["reason phrase", "Location", "X-Request-Id"])
def test_a_zero_width_split_token_in_a_header_is_masked(settings, where):
    """A header echoing the token split by U+200B, sent as UTF-8 (E2 80 8B). http.client reads header
    bytes as Latin-1: the mark becomes ``\u00e2`` and two C1 controls, which ``clean_text`` turns into
    a space. Was: the payload's message (or kps_request_id) read ``MIIT…\u00e2 Np/I3…\u00e2 cTZV…``,
    the token in plain sight between the marks."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + secret(600, 7)
    split = _split(token, chr(0x200B)).encode()
    head = {
        "reason phrase": b"HTTP/1.1 401 " + split + b"\r\nContent-Length: 2\r\n",
        "Location": b"HTTP/1.1 302 Found\r\nContent-Length: 2\r\nLocation: https://iam.example/?t=" + split + b"\r\n",
        "X-Request-Id": b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\nX-Request-Id: " + split + b"\r\n",
    }[where]
    server = _RawReply(head + b"Connection: close\r\n\r\n{}")
    try:
        settings.update(KPS_ENDPOINT=server.url, KPS_COUNT_BEFORE_DELETE="false", KPS_MAX_ATTEMPTS="1")
        result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    finally:
        server.close()
    assert not result["results"][0]["ok"]
    assert windows_left(out + json.dumps(result), token, junk="\u00e2 ") == []


# --- 6: a caller's token in its own request -------------------------------------------------------------


@pytest.mark.parametrize("where", ["header only", "dry_run", "region", "project_id", "key", "targets"])
def test_a_callers_token_in_its_body_reaches_no_line(kps, settings, where):
    """The caller's X-Auth-Token, also pasted in the body (a value, a key, a targets entry), with
    LOG_EVENT=true. Was: the ``rejected`` line's reason quotes ~44 characters of it (``got 'MIIC-…'``)."""
    caller = "MIIC" + secret(4000, 11)
    body = {
        "header only": {"project_id": "12345"},
        "dry_run": {"dry_run": caller},
        "region": {"region": caller},
        "project_id": {"project_id": caller},
        "key": {caller: True},
        "targets": {"targets": [{"project_id": caller}]},
    }[where]
    event = apig_event(body)
    event["headers"]["X-Auth-Token"] = caller
    result, out = invoke_raw(event, FakeContext(user_data={**settings, "LOG_EVENT": "true"}))
    assert result["statusCode"] == 400
    assert windows_left(out, caller) == [], "a piece of the caller's token reached a log line"
