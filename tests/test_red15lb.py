"""Second red team on issue 15 points 4-7: echoes the fixed masking still lets through."""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import unicodedata
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from conftest import AK, PROJECT, SK
from test_secrets_by_construction import ZWSP, _echo_invocation, invoke_raw, red_secret, windows_left

from devtools.context import FakeContext


class _EchoInTask(BaseHTTPRequestHandler):
    """A ListFailedTask answer whose task names quote the request's own Authorization header: the
    reply to a signed request, read after the request's signature is no longer masked."""

    seen: ClassVar[list[str]] = []

    def _answer(self, status: int, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization", "")
        self.seen.append(authorization)
        signature = authorization.rsplit("Signature=", 1)[1]
        task = {
            "task_id": "t1",
            "operate_type": "bind",
            "server_id": "s1",
            "server_name": f"sig {signature}",
            "keypair_name": "k",
            "task_error_code": "KPS.1",
            "task_time": "1700000000000",
        }
        self._answer(200, {"total": 1, "tasks": [task]})

    def do_DELETE(self) -> None:
        self._answer(200, {})

    def log_message(self, *_: object) -> None:
        pass


def _serve(handler_class: type) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_listed_task_echoing_the_requests_signature_is_masked(settings):
    """A task field is cleaned (``record.bounded``) after ``ApiClient.call`` returned, when the request's
    signature is no longer in ``api._SIGNATURE``: only the invocation's secrets are masked there."""
    server = _serve(_EchoInTask)
    _EchoInTask.seen = []
    try:
        settings.pop("KPS_AUTH_TOKEN")
        settings.update(
            KPS_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}",
            HUAWEICLOUD_SDK_AK=AK,
            HUAWEICLOUD_SDK_SK=SK,
            KPS_MAX_ATTEMPTS="1",
        )
        result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    signature = _EchoInTask.seen[0].rsplit("Signature=", 1)[1]
    assert windows_left(out + json.dumps(result), signature) == [], "the request's signature was printed"


# --- encodings the mask does not know (it knows the text as it is, any case, and base64) ------------

ENCODINGS = {
    "control: as it is": lambda t: t,
    "control: base64": lambda t: base64.b64encode(t.encode()).decode(),
    "hex": lambda t: t.encode().hex(),
    "base32": lambda t: base64.b32encode(t.encode()).decode(),
    "percent every byte": lambda t: "".join(f"%{b:02X}" for b in t.encode()),
    "html entities in a JSON message": lambda t: "".join(f"&#{ord(c)};" for c in t),
    "json escapes in nested JSON text": lambda t: '{"detail": "' + "".join(f"\\u{ord(c):04x}" for c in t) + '"}',
    "spaced": " ".join,
}


@pytest.mark.parametrize("encode", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_a_token_echoed_in_another_encoding_is_masked(kps, settings, encode):
    """A KPS error_msg quoting the caller's token hex-encoded, base32, percent-encoded, as HTML
    numeric entities (unescaped only for an HTML page, not inside a JSON message), as \\uXXXX escapes
    of a JSON text carried in the string, or one character a word. Each is printed as it came."""
    result, out, token = _echo_invocation(kps, settings, lambda t: f"bad token {encode(t)}")
    printed = out + json.dumps(result)
    seen = [printed, html.unescape(urllib.parse.unquote(printed)), re.sub(r"(?<=\S) (?=\S)", "", printed)]
    for run in re.findall(r"[0-9a-f]{24,}", printed):
        seen.append(bytes.fromhex(run[: len(run) // 2 * 2]).decode("utf-8", "replace"))
    for run in re.findall(r"[A-Z2-7]{24,}", printed):
        seen.append(base64.b32decode(run[: len(run) // 8 * 8]).decode("utf-8", "replace"))
    assert windows_left("\n".join(seen), token) == [], "the token is readable once decoded"


# --- combining marks: visible decorations the normaliser keeps, which split a token past the mask ----

MARKS = ("\u0336", "\u0332", "\u20d2", "\u0e31", "\u0301", "\u0489")


def _unmarked(text: str) -> str:
    """What a reader (or a copy into a terminal that drops marks) reads: marks taken off each letter."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.category(c).startswith("M"))


@pytest.mark.parametrize("mark", MARKS, ids=[f"U+{ord(m):04X}" for m in MARKS])
def test_a_token_with_a_combining_mark_on_every_character_is_masked(kps, settings, mark):
    """``error_msg`` "bad token M̶I̶I̶T̶..." (a strike-through, underline, accent or enclosing mark after
    each character). The marks are neither Cf nor Default_Ignorable: ``normalise`` keeps them, no
    window of the token is left in the text, and the token is printed, readable under its marks."""
    result, out, token = _echo_invocation(kps, settings, lambda t: "bad token " + "".join(c + mark for c in t))
    printed = json.dumps(json.loads(json.dumps(result)), ensure_ascii=False)
    lines = [json.dumps(json.loads(line), ensure_ascii=False) for line in out.splitlines() if line.startswith("{")]
    assert windows_left(_unmarked("\n".join([printed, *lines])), token) == [], "the token is readable"


# --- IAM's project names: read after the call, copied with str() -----------------------------------


def test_a_project_name_that_is_an_object_quoting_a_split_token_is_masked(kps, settings):
    """IAM's ``name`` an object: ``sweep_targets`` takes ``str(project.get("name"))``, a repr, where each
    U+200B is the ASCII text ``\\u200b`` (the first red team's object-repr echo, back in the sweep). 20
    skipped names of 64 characters each carry a different 30-odd characters of the token."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + red_secret(600, 11)
    kps.add_token(token)
    marked = ZWSP.join(token[i : i + 11] for i in range(0, len(token), 11))
    projects = [
        {"id": f"{i:032x}", "name": {"n": marked[i * 30 :]}, "enabled": True} for i in range(len(marked) // 30)
    ][:20]
    kps.set_iam_projects(projects)
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_TARGETS="all", KPS_MAX_ATTEMPTS="1")
    _, out = invoke_raw(None, FakeContext(user_data=settings))
    [swept] = [line for line in out.splitlines() if '"projects swept"' in line]
    assert windows_left(swept, token) == [], "pieces of the token were printed in the skipped project names"


class _EchoInProjects(_EchoInTask):
    """IAM's project listing, whose project names quote the request's signature."""

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization", "")
        self.seen.append(authorization)
        signature = authorization.rsplit("Signature=", 1)[1]
        self._answer(200, {"projects": [{"id": "0" * 32, "name": signature, "enabled": True}]})


def test_a_project_name_echoing_the_requests_signature_is_masked(settings):
    """A skipped project's name (IAM text) is logged after ``ApiClient.call`` returned: only the
    invocation's secrets are masked there, not the signature of the request it answers."""
    server = _serve(_EchoInProjects)
    _EchoInProjects.seen = []
    try:
        settings.pop("KPS_AUTH_TOKEN")
        settings.update(
            KPS_IAM_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}",
            KPS_TARGETS="all",
            HUAWEICLOUD_SDK_AK=AK,
            HUAWEICLOUD_SDK_SK=SK,
            KPS_MAX_ATTEMPTS="1",
        )
        result, out = invoke_raw(None, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    signature = _EchoInProjects.seen[0].rsplit("Signature=", 1)[1]
    assert windows_left(out + json.dumps(result), signature) == [], "the request's signature was printed"


# --- Content-Encoding: the one header still read as Latin-1 -------------------------------------------


class _RawCompressed(BaseHTTPRequestHandler):
    """A reply whose Content-Encoding quotes the caller's token split by U+200B, sent as UTF-8 bytes."""

    token = ""

    def do_GET(self) -> None:
        piece = ZWSP.join(self.token[i : i + 11] for i in range(0, 33, 11))
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"Content-Encoding: " + piece.encode() + b"\r\nConnection: close\r\n\r\n{}"
        )

    def log_message(self, *_: object) -> None:
        pass


def test_a_content_encoding_quoting_a_split_token_is_masked(settings):
    """``_read_body`` cleans Content-Encoding without ``api._header``: U+200B (E2 80 8B) reads as "â" and
    two C1 controls, which become "â " where normalise would have dropped the U+200B, and the pieces of
    the token (32 characters of it in the payload's error message) are printed."""
    _RawCompressed.token = token = "MIIT" + red_secret(600, 13)
    server = _serve(_RawCompressed)
    try:
        settings.update(
            KPS_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", KPS_AUTH_TOKEN=token, KPS_MAX_ATTEMPTS="1"
        )
        result, out = invoke_raw({"project_id": PROJECT, "dry_run": True}, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    assert "compressed" in json.dumps(result["results"][0]["error"])
    assert windows_left(out + json.dumps(result), token, junk="\u00e2 ") == [], "the token was printed"
