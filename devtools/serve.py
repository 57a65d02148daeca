"""`make serve`: a local API Gateway on 127.0.0.1 in front of the handler, like `sam local start-api`.

Each HTTP request becomes the event API Gateway sends a function (body base64-encoded with
``isBase64Encoded: true``, header names lower-cased, query string, path parameters, ``httpMethod``,
``requestContext.requestId``); the handler runs in-process with the context double; its ``statusCode``,
``headers`` and ``body`` become the HTTP response. Like a gateway with IAM authentication, a request with
neither ``X-Auth-Token`` nor ``Authorization`` gets 401 ``APIGW.0301``. Values are not checked locally
unless ``tokens`` is given: then a token must be one of them and a signature must be well-formed
(``SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...``; it is not verified); an empty or
blank header counts as missing.

The function runs only for a whole request: a body is read to exactly its ``Content-Length`` (digits
only) or decoded from ``Transfer-Encoding: chunked``; anything else (a malformed or contradictory length,
a body cut short by the client hanging up, a bad chunk, a line of the head or a trailer that is not RFC 9112's,
a chunk-size or trailer line longer than 8 KiB, not exactly one valid Host) is the gateway's own 400 and nothing
is invoked.
Every answer, the gateway's own errors included (404, 413, 400, and the HTTP parser's 400/414/431),
is JSON and writes exactly one log line.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from .kps_emulator import AUTH_HEADER, _gateway_error
from .output import OUT_LOCK, summary
from .table import target_table, wants_table

PATH = "/kps-failed-task-cleaner"  # the fgs component names the API's path after the function
API_ID = "local0000000000000000000000000000"
MAX_BODY = 6 * 1024 * 1024  # FunctionGraph's synchronous request limit
BACKLOG = 128  # the stdlib's 5 reset connections under a burst of 40
_DIGITS = re.compile(r"[0-9]+")  # 1*DIGIT, leading zeros and all: the bound is on the value (MAX_BODY)
# RFC 9112's lines, as the gateway reads them: a request line is a method (a token), one SP, an origin-form or
# absolute-form target of visible ASCII without "#" (3.2), one SP and HTTP/d.d (2.3); a field line (a header or
# a trailer) is a token, a colon and a value of visible characters, SP, HTAB and obs-text; a chunk-size line's
# extension is such text too. Each ends in CRLF (or LF alone, 2.2). Anything else (a bare CR, where the stdlib's
# header parser would end a line and a proxy in front would not; NBSP or NEL between the request line's parts,
# which str.split() takes for SP; a space before the colon or a line without one, which that parser drops with
# every line after it; obs-fold; NUL; HTTP/0.9's line without a version) is a line the gateway cannot read as sent.
_TEXT = rb"[\t\x20-\x7e\x80-\xff]"
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TARGET = rb"(?:/|[A-Za-z][A-Za-z0-9+.-]*:)[\x21\x22\x24-\x7e]*"
_REQUEST_LINE = re.compile(_TOKEN + rb" " + _TARGET + rb" HTTP/(?P<major>[0-9])\.(?P<minor>[0-9])\r?\n")
_FIELD_LINE = re.compile(_TOKEN + rb":" + _TEXT + rb"*\r?\n")
# Host = uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): an IP literal in brackets or a reg-name.
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+\]"
    r"|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]+)[ \t]*(?:;" + _TEXT + rb"*)?\r?\n")
_END_OF_HEAD = (b"\r\n", b"\n", b"")
MAX_LINE = 8192  # a chunk-size or trailer line: generous (a chunk extension has no bound of its own), still bounded
_OWS = " \t"  # HTTP's optional whitespace (RFC 9110 5.6.3): str.strip() alone would take VT, FS, NEL, NBSP too
_GATEWAY_CODE = re.compile(r"[A-Z]{2,10}\.[A-Za-z0-9]{1,32}")
# What a request line may name: nothing the caller chose (a method or path can be a pasted token).
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"})
Handler = Callable[[Any, Any], Any]
MALFORMED_LINE = (
    "a request line, header or trailer RFC 9112 does not allow: a bare CR (not followed by LF), a control character,"
    " obs-fold, a field line without a colon or with a space before it, or a request line other than a method,"
    " one SP, an origin- or absolute-form target of visible ASCII without '#', one SP and HTTP/d.d"
)
BAD_HOST = "a request without exactly one valid Host (RFC 9112 3.2; an HTTP/1.0 request may have none)"


def apig_event(
    method: str,
    path: str = PATH,
    *,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event API Gateway hands a FunctionGraph backend for one HTTP request."""
    request_id = request_id or uuid.uuid4().hex
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    lowered.setdefault("x-request-id", request_id)
    return {
        "body": base64.b64encode(body).decode("ascii"),
        "requestContext": {"apiId": API_ID, "requestId": request_id, "stage": "RELEASE"},
        "queryStringParameters": dict(query or {}),
        "httpMethod": method,
        "pathParameters": {},
        "headers": lowered,
        "path": path,
        "isBase64Encoded": True,
    }


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


class Gateway:
    """Turns (method, target, headers, body) into the function's answer, as API Gateway does."""

    def __init__(
        self, handler: Handler, context_factory: Callable[[], Any], tokens: frozenset[str] | None = None
    ) -> None:
        self.handler = handler
        self.context_factory = context_factory
        self.tokens = tokens

    def _auth_error(self, headers: Mapping[str, str]) -> str | None:
        """Why IAM authentication fails, or None; only presence is checked unless ``tokens`` is set."""
        lowered = {name.lower(): value for name, value in headers.items() if value.strip()}  # blank = missing
        token, signature = lowered.get("x-auth-token"), lowered.get("authorization")
        if token is None and signature is None:
            return "x-auth-token not found"
        if self.tokens is None:
            return None
        if token is not None:
            return None if token in self.tokens else "decrypt token fail"
        return None if AUTH_HEADER.fullmatch((signature or "").strip()) else "verify aksk signature fail"

    def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes, request_id: str | None = None
    ) -> tuple[int, dict[str, str], bytes, dict[str, Any] | None]:
        """Returns status, headers, body and, when the function answered, its payload."""
        url = urlsplit(target)
        if url.path != PATH:
            status, out, data = _json(
                404, _gateway_error("The API does not exist or has not been published in the environment", "APIGW.0101")
            )
            return status, out, data, None
        refused = self._auth_error(headers)
        if refused is not None:
            return (*_json(401, _gateway_error(refused)), None)
        pairs = [(name, value) for name, value in parse_qsl(url.query, keep_blank_values=True) if name]  # `?=x`: no key
        query = dict(pairs)
        if len(query) != len(pairs):  # ?dry_run=true&dry_run=false: either reading could delete
            return (*_json(400, _gateway_error("a query parameter is given more than once", "APIGW.0201")), None)
        event = apig_event(method, url.path, query=query, headers=headers, body=body, request_id=request_id)
        try:
            response = self.handler(event, self.context_factory())
            status, out = int(response["statusCode"]), dict(response.get("headers") or {})
            data = response.get("body") or ""
            data = base64.b64decode(data) if response.get("isBase64Encoded") else data.encode()
        except Exception as exc:  # noqa: BLE001 - what the real gateway does with a broken backend answer
            # Only the exception's type: its text could carry anything the function held.
            refusal = {"error_code": "LOCAL.BadFunctionResponse", "error_msg": type(exc).__name__}
            return (*_json(502, refusal), None)
        try:
            payload = json.loads(data)
        except ValueError:
            payload = None
        return status, out, data, payload if isinstance(payload, dict) else None


class BadRequest(Exception):
    """A request the gateway answers itself: its status and message; the function is not invoked."""

    def __init__(self, status: int, message: str, code: str = "APIGW.0201") -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _read_exactly(stream: Any, length: int) -> bytes:
    data = stream.read(length) if length else b""
    if len(data) != length:
        raise BadRequest(400, f"the body ended after {len(data)} of {length} bytes")
    return data


def _read_chunked(stream: Any) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, at most ``MAX_BODY`` bytes, trailers skipped."""
    body = bytearray()
    while True:
        match = _CHUNK_SIZE.fullmatch(stream.readline(MAX_LINE))  # a longer line does not end in its LF
        if match is None:
            raise BadRequest(400, "malformed chunked body")
        size = int(match.group(1), 16)
        if len(body) + size > MAX_BODY:
            raise BadRequest(413, "request body too large")
        if size == 0:
            break
        body += _read_exactly(stream, size)
        if stream.readline(3) not in (b"\r\n", b"\n"):
            raise BadRequest(400, "malformed chunked body")
    for _ in range(100):  # trailer fields, then the empty line
        line = stream.readline(MAX_LINE)
        if line in _END_OF_HEAD:
            return bytes(body)
        if len(line) == MAX_LINE and not line.endswith(b"\n"):  # its rest would be read as a next line
            raise BadRequest(400, f"a trailer line longer than {MAX_LINE} bytes")
        if _malformed(line, _FIELD_LINE):
            raise BadRequest(400, MALFORMED_LINE)
    raise BadRequest(400, "malformed chunked body")


def read_body(headers: Any, stream: Any) -> bytes:
    """The whole body as the request framed it, or ``BadRequest``: never a guess."""
    encodings = [e.strip(_OWS).lower() for v in headers.get_all("Transfer-Encoding") or [] for e in v.split(",")]
    lengths = {v.strip(_OWS) for v in headers.get_all("Content-Length") or []}
    if encodings:
        if lengths or encodings != ["chunked"]:  # both, or a coding the gateway does not take: refused
            raise BadRequest(400, "unsupported or ambiguous Transfer-Encoding")
        return _read_chunked(stream)
    if not lengths:
        return b""
    if len(lengths) > 1 or not _DIGITS.fullmatch(next(iter(lengths))):
        raise BadRequest(400, "invalid Content-Length")
    digits = next(iter(lengths)).lstrip("0") or "0"  # int() refuses more than 4,300 digits; a length needs 7
    if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
        raise BadRequest(413, "request body too large")
    return _read_exactly(stream, int(digits))


def _gateway_code(data: bytes) -> str:
    """The gateway's own error code from its own answer, else ``-``."""
    try:
        code = json.loads(data).get("error_code")
    except (ValueError, AttributeError, RecursionError):
        return "-"
    return code if isinstance(code, str) and _GATEWAY_CODE.fullmatch(code) else "-"


def write_line(out: Any, line: str) -> None:
    """One write per whole line, as the function writes its JSON lines: whole-line writes to one stream do not
    interleave (print wrote the text and its newline apart, and a function line could land in between)."""
    with OUT_LOCK:
        out.write(line + "\n")
        out.flush()


def _malformed(line: bytes, grammar: re.Pattern[bytes]) -> bool:
    """Whether a line of the head is not as ``grammar`` (one of RFC 9112's lines) writes it: refused whole, as a
    strict HTTP/1.1 server does. The blank line or the end of the stream that ends the head is not one."""
    return line not in _END_OF_HEAD and grammar.fullmatch(line) is None


class _StrictHead:
    """The request's stream while the stdlib reads its header lines: notes one that is not a field line."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.malformed = False

    def readline(self, limit: int = -1) -> bytes:
        line = self._stream.readline(limit)
        self.malformed = self.malformed or _malformed(line, _FIELD_LINE)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _http_handler(gateway: Gateway, out: Any) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kps-local-apig"
        timeout = 60  # a client silent this long mid-request is refused 400, never left holding a thread

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: one line per request is written below, without headers (they carry credentials)."""

        def handle_one_request(self) -> None:
            """Each request's own id and path, set before anything can refuse it: a handler object lives as long
            as its connection, and a refusal must never be logged with the previous request's."""
            self.request_id = uuid.uuid4().hex  # the gateway's own: on the event and on the request's log line
            self.path = ""
            super().handle_one_request()

        def _serve(self) -> None:
            started = time.monotonic()
            try:
                body = read_body(self.headers, self.rfile)
            except BadRequest as refused:
                self._refuse(refused.status, str(refused), refused.code, started)
                return
            except OSError:  # the client went away mid-body: nothing to invoke, nobody to answer
                self._refuse(400, "the connection closed before the body ended", "APIGW.0201", started)
                return
            try:
                status, headers, data, payload = gateway.answer(
                    self.command, self.path, dict(self.headers), body, self.request_id
                )
            except Exception as exc:  # noqa: BLE001 - a local gateway bug still answers, as the real one would
                status, headers, data = _json(
                    502, {"error_code": "LOCAL.GatewayError", "error_msg": type(exc).__name__}
                )
                payload = None
            self._log(status, payload, data, started)  # before the answer leaves: the line is there when it arrives
            if getattr(self.server, "stopping", False):  # draining: this answer is the connection's last
                self.close_connection = True
            self._answer(status, headers, data)

        def _answer(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError:  # the client hung up: its answer has nowhere to go
                self.close_connection = True

        def _refuse(self, status: int, message: str, code: str, started: float) -> None:
            """The gateway's own answer to a request it will not pass on; the connection is closed."""
            self.close_connection = True
            answer = _json(status, _gateway_error(message, code))
            self._log(status, None, answer[2], started)
            self._answer(*answer)

        def parse_request(self) -> bool:
            """The stdlib's parsing, on a head whose every line is checked against RFC 9112's (``_StrictHead``),
            then its Host (3.2); an HTTP/1.0 message framed chunked ends its connection (6.1: its framing is
            faulty to a 1.0 hop, whose next bytes are no request it sent)."""
            rfile, head = self.rfile, _StrictHead(self.rfile)
            self.rfile = head  # type: ignore[assignment]
            try:
                parsed = super().parse_request()
            finally:
                self.rfile = rfile
            if not parsed:
                return False
            line = _REQUEST_LINE.fullmatch(self.raw_requestline)
            if head.malformed or line is None:
                self.send_error(400, MALFORMED_LINE)
                return False
            old = (line["major"], line["minor"]) < (b"1", b"1")
            hosts = [value.strip(_OWS) for value in self.headers.get_all("Host") or []]
            if len(hosts) > 1 or not (hosts or old) or not all(_HOST.fullmatch(host) for host in hosts):
                self.send_error(400, BAD_HOST)
                return False
            if old and self.headers.get_all("Transfer-Encoding"):
                self.close_connection = True
            return True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """The HTTP parser's own refusals (bad request line, 414, 431, ...) as the gateway's JSON, logged."""
            self.command = self.command or "-"
            if not self.request_version.startswith("HTTP/1."):  # the stdlib would answer without a status line
                self.request_version = self.protocol_version
            self.path = self.path or "-"
            self._refuse(code, message or "bad request", "APIGW.0201", time.monotonic())

        def _log(self, status: int, payload: dict[str, Any] | None, data: bytes, started: float) -> None:
            """One line built from the gateway's own words and the payload's summary, never from what was sent."""
            elapsed = (time.monotonic() - started) * 1000
            method = self.command if self.command in METHODS else "(other method)"
            path = PATH if urlsplit(self.path or "").path == PATH else "(other path)"
            try:
                words = summary(payload) if payload else [_gateway_code(data)]
                line = f"{method} {path} -> {status} {'  '.join(words)} ({elapsed:.0f} ms)"
                line += f"  request {self.request_id}"
                if payload and wants_table(payload):
                    line += "\n" + target_table(payload)
            except Exception as exc:  # noqa: BLE001 - the line never costs the caller its answer
                line = f"{method} {path} -> {status} (log line failed: {type(exc).__name__})"
            write_line(out, line)

        def __getattr__(self, name: str) -> Any:
            """Every method reaches the function (an ANY route); the function decides which it takes."""
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

    return RequestHandler


class PortBusy(Exception):
    """The port is taken: said in one line before anything starts."""


def listen(port: int) -> socket.socket:
    """The listening socket on 127.0.0.1, or ``PortBusy``."""
    try:
        return socket.create_server(("127.0.0.1", port), backlog=BACKLOG)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise PortBusy(
            f"port {port} on 127.0.0.1 is in use ({why}): stop what holds it, "
            f"or choose another with make serve PORT={port + 1 if 0 < port < 65535 else 3001}"
        ) from None


class LocalServer:
    """The HTTP side: ``with LocalServer(gateway, port) as server:``, ``server.url``."""

    def __init__(
        self, gateway: Gateway, port: int = 3000, out: Any = sys.stdout, sock: socket.socket | None = None
    ) -> None:
        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": BACKLOG})
        self._server = server_class(("127.0.0.1", port), _http_handler(gateway, out), bind_and_activate=sock is None)
        if sock is not None:  # already listening (make serve's reloader holds it across restarts)
            self._server.socket.close()
            self._server.socket = sock
            self._server.server_address = sock.getsockname()
        # Non-daemon request threads, joined on close: a request accepted before a stop is still answered.
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.1)

    def __enter__(self) -> LocalServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops accepting, then waits for the requests in flight to be answered."""
        self._server.stopping = True  # type: ignore[attr-defined]
        self._server.shutdown()
        self._server.server_close()
