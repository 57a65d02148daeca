"""A local KPS (and IAM project listing) emulator: development code, never deployed.

It speaks real HTTP on loopback with KPS's paths, error bodies and ``X-Request-Id``; checks
``X-Auth-Token`` tokens and verifies SDK-HMAC-SHA256 signatures with its own implementation of
the published algorithm (so the function's signer is checked against the spec, not against itself);
keeps a request log the tests read; and can be scripted to misbehave (``inject``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import select
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

PROJECT_ID = re.compile(r"[0-9a-f]{32}")
TASKS_PATH = re.compile(r"/v3/([^/]*)/failed-tasks")
TASK_PATH = re.compile(r"/v3/([^/]*)/failed-tasks/([^/]*)")
IAM_PROJECTS_PATH = "/v3/auth/projects"
AUTH_HEADER = re.compile(r"SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
# ListFailedTask's operate_type values, as the KPS API reference lists them.
OPERATE_TYPES = ("FAILED_RESET", "FAILED_REPLACE", "FAILED_UNBIND")


@dataclass
class Fault:
    """What the emulator does instead of its normal answer, for the next ``times`` requests.

    ``body`` may be bytes, sent as they are (JSON too deep to build as objects). ``headers`` are added
    to the answer, faulty or normal (``Set-Cookie``, a redirect's ``Location``). ``trickle`` sends the
    answer's ``"headers"`` (status line included) or ``"body"`` one byte every ``trickle_every``
    seconds. ``stall`` accepts the request and never answers, until the client hangs up.
    ``stream_bytes`` answers a task page of about that many bytes, written as it is sent (never held
    in memory), chunked or, with ``declare_length``, with its Content-Length. ``method`` and ``path``
    (a regular expression the whole path must match) limit the fault to those requests: the others
    pass it by, answered normally.
    """

    status: int | None = None
    body: Any = None  # JSON-able, or bytes sent as they are
    html: bool = False
    retry_after: str | None = None
    delay: float = 0.0
    until: float = 0.0  # time.monotonic() before which the answer does not start
    drop: bool = False
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    trickle: str | None = None
    trickle_every: float = 0.1
    stall: bool = False
    stream_bytes: int = 0
    declare_length: bool = False
    method: str | None = None
    path: str | None = None

    def applies(self, received: _Received) -> bool:
        return (self.method is None or self.method == received.method) and (
            self.path is None or re.fullmatch(self.path, received.path) is not None
        )


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    started: float
    client_port: int = 0  # one port per connection: tells a reused connection from a new one
    auth: str | None = None
    status: int | None = None
    ended: float | None = None
    dropped: bool = False


@dataclass
class _Key:
    secret_key: str
    security_token: str | None


@dataclass
class _State:
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    keys: dict[str, _Key] = field(default_factory=dict)
    iam_projects: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    denied: set[str] = field(default_factory=set)
    latency: float = 0.0
    page_cap: int = 1000
    log: list[LoggedRequest] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)  # method -> requests being answered now
    peak: dict[str, int] = field(default_factory=dict)  # method -> the most answered at once


class KpsEmulator:
    """Start with ``with KpsEmulator() as kps:``; ``kps.url`` is the endpoint to configure."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = _State()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> KpsEmulator:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> KpsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -------------------------------------------------------------------------
    def add_token(self, token: str) -> None:
        with self._lock:
            self._state.tokens.add(token)

    def add_key(self, access_key: str, secret_key: str, security_token: str | None = None) -> None:
        with self._lock:
            self._state.keys[access_key] = _Key(secret_key, security_token)

    def seed(self, project_id: str, count: int) -> list[dict[str, Any]]:
        """Add ``count`` failed tasks to a project; returns them."""
        now_ms = int(time.time() * 1000)
        with self._lock:
            tasks = self._state.tasks.setdefault(project_id, [])
            start = len(tasks)
            new = [_failed_task(start + i, now_ms) for i in range(count)]
            tasks.extend(new)
        return new

    def put_tasks(self, project_id: str, tasks: list[dict[str, Any]]) -> None:
        """Make ``tasks`` (any objects, as KPS might word them) the project's whole list."""
        with self._lock:
            self._state.tasks[project_id] = [dict(t) for t in tasks]

    def seed_wide(self, project_id: str, count: int, width: int = 256) -> None:
        """Give a project ``count`` tasks whose every field is ``width`` characters (the largest the
        function keeps), made page by page as they are listed: 20,000 of them cost nothing until asked."""
        with self._lock:
            self._state.tasks[project_id] = _WideTasks(count, width)  # type: ignore[assignment]

    def failed_tasks(self, project_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.tasks.get(project_id, []))

    def deny(self, project_id: str) -> None:
        """The credentials lack permission on this project: 403 KPS.9003 for every call on it."""
        with self._lock:
            self._state.denied.add(project_id)

    def set_iam_projects(self, projects: list[dict[str, Any]]) -> None:
        with self._lock:
            self._state.iam_projects = list(projects)

    def cap_pages(self, size: int) -> None:
        """Serve at most ``size`` tasks a page, whatever ``limit`` asks for."""
        with self._lock:
            self._state.page_cap = size

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._state.latency = seconds

    def inject(self, **fault: Any) -> None:
        """Queue a fault (see ``Fault``); faults are served in order, each ``times`` times."""
        with self._lock:
            self._state.faults.append(Fault(**fault))

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._state.log)

    def clear_log(self) -> None:
        with self._lock:
            self._state.log.clear()
            self._state.peak.clear()

    def peak_in_flight(self, method: str) -> int:
        """The most ``method`` requests this emulator was answering at once (since ``clear_log``)."""
        with self._lock:
            return self._state.peak.get(method, 0)

    @contextlib.contextmanager
    def _answering(self, method: str) -> Any:
        with self._lock:
            now = self._state.in_flight[method] = self._state.in_flight.get(method, 0) + 1
            self._state.peak[method] = max(self._state.peak.get(method, 0), now)
        try:
            yield
        finally:
            with self._lock:
                self._state.in_flight[method] -= 1

    # --- serving (called from the handler threads) -----------------------------------------
    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._state.log.append(entry)

    def _next_fault(self, received: _Received) -> Fault | None:
        """The first queued fault that applies to this request, used once."""
        with self._lock:
            faults = self._state.faults
            index = next((i for i, f in enumerate(faults) if f.applies(received)), None)
            if index is None:
                return None
            fault = faults[index]
            fault.times -= 1
            if fault.times <= 0:
                del faults[index]
            return fault

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _authenticate(self, req: _Received) -> tuple[str | None, tuple[int, dict[str, Any]] | None]:
        """Returns (auth kind, None) when accepted, or (kind, error response)."""
        token = req.header("x-auth-token")
        if token is not None:
            with self._lock:
                known = token in self._state.tokens
            if known:
                return "token", None
            return "token", (401, _gateway_error("decrypt token fail"))
        authorization = req.header("authorization")
        if authorization is None:
            return None, (401, _gateway_error("x-auth-token not found"))
        return "aksk", self._verify_signature(req, authorization) or _project_scope(req, authorization)

    def _verify_signature(self, req: _Received, authorization: str) -> tuple[int, dict[str, Any]] | None:
        match = AUTH_HEADER.fullmatch(authorization.strip())
        if not match:
            return 401, _gateway_error("verify aksk signature fail")
        access_key, signed, signature = match.groups()
        with self._lock:
            key = self._state.keys.get(access_key)
        if key is None:
            return 401, _gateway_error("Get secretKey failed,ak:******,err:ak not exist")
        signed_headers = signed.split(";")
        if "host" not in signed_headers or "x-sdk-date" not in signed_headers:
            return 401, _gateway_error("verify aksk signature fail")
        date = req.header("x-sdk-date") or ""
        try:
            when = dt.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return 401, _gateway_error("verify aksk signature fail")
        if abs(dt.datetime.now(dt.timezone.utc) - when) > MAX_CLOCK_SKEW:
            return 401, _gateway_error("verify aksk signature fail: request expired")
        if key.security_token is not None and (
            req.header("x-security-token") != key.security_token or "x-security-token" not in signed_headers
        ):
            return 401, _gateway_error("verify aksk signature fail: security token")
        if any(req.header(name) is None for name in signed_headers):
            return 401, _gateway_error("verify aksk signature fail")
        expected = _signature(req, signed_headers, date, key.secret_key)
        if not hmac.compare_digest(expected, signature):
            return 401, _gateway_error("verify aksk signature fail")
        return None

    def _route(self, req: _Received) -> tuple[int, dict[str, Any] | None]:
        if req.path == IAM_PROJECTS_PATH and req.method == "GET":
            with self._lock:
                return 200, {"projects": list(self._state.iam_projects)}
        one = TASK_PATH.fullmatch(req.path)
        many = TASKS_PATH.fullmatch(req.path)
        project = one or many
        if project is not None and not PROJECT_ID.fullmatch(project.group(1)):
            return 400, _kps_error("KPS.0002", "parameter error")
        with self._lock:
            denied = project is not None and project.group(1) in self._state.denied
        if denied:
            return 403, _kps_error("KPS.9003", "no permission")
        if one and req.method == "DELETE":
            return self._delete_one(one.group(1), one.group(2))
        if many and req.method == "DELETE":
            return self._delete_all(many.group(1))
        if many and req.method == "GET":
            return self._list(many.group(1), req.query)
        return 404, _gateway_error(
            "The API does not exist or has not been published in the environment", code="APIGW.0101"
        )

    def _delete_all(self, project_id: str) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self._state.tasks.pop(project_id, None)
        return 200, None

    def _delete_one(self, project_id: str, task_id: str) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            tasks = self._state.tasks.get(project_id, [])
            kept = [t for t in tasks if t["task_id"] != task_id]
            if len(kept) == len(tasks):
                return 400, _kps_error("KPS.0005", "failed task not found")
            self._state.tasks[project_id] = kept
        return 200, None

    def _list(self, project_id: str, query: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
        try:
            limit = int(query.get("limit", "1000"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return 400, _kps_error("KPS.0002", "parameter error")
        if not 1 <= limit <= 1000 or offset < 0:
            return 400, _kps_error("KPS.0002", "parameter error")
        with self._lock:
            tasks = self._state.tasks.get(project_id, [])
            page = [dict(t) for t in tasks[offset : offset + min(limit, self._state.page_cap)]]
            return 200, {"total": len(tasks), "tasks": page}


@dataclass
class _Received:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.raw_path).path

    @property
    def raw_query(self) -> str:
        return urlsplit(self.raw_path).query

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _project_scope(req: _Received, authorization: str) -> tuple[int, dict[str, Any]] | None:
    """A signed KPS call names its project in a signed X-Project-Id equal to the path's (what the SDK's
    BasicCredentials sends; the signing guide requires it for sub-projects). Without it the gateway
    cannot scope the call (APIGW.0301, as for a token without a project scope); naming another project
    is not authorized there (APIGW.0302)."""
    path = TASK_PATH.fullmatch(req.path) or TASKS_PATH.fullmatch(req.path)
    if path is None:
        return None
    signed = AUTH_HEADER.fullmatch(authorization.strip()).group(2).split(";")  # type: ignore[union-attr]
    project = req.header("x-project-id")
    if project is None or "x-project-id" not in signed:
        return 401, _gateway_error("x-project-id not found or not signed")
    if project != path.group(1):
        return 403, _gateway_error("The IAM user is not authorized to access the API", code="APIGW.0302")
    return None


def _signature(req: _Received, signed_headers: list[str], date: str, secret_key: str) -> str:
    """SDK-HMAC-SHA256, written from the API signing guide."""
    segments = unquote(req.path).split("/")
    canonical_uri = "/".join(quote(s, safe="~") for s in segments)
    if not canonical_uri.endswith("/"):
        canonical_uri += "/"
    pairs = sorted(parse_qsl(req.raw_query, keep_blank_values=True))
    canonical_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)
    canonical_headers = "".join(f"{name}:{req.header(name).strip()}\n" for name in signed_headers)  # type: ignore[union-attr]
    body_hash = hashlib.sha256(req.body).hexdigest() if req.body else EMPTY_SHA256
    canonical_request = "\n".join(
        [req.method, canonical_uri, canonical_query, canonical_headers, ";".join(signed_headers), body_hash]
    )
    string_to_sign = "\n".join(["SDK-HMAC-SHA256", date, hashlib.sha256(canonical_request.encode()).hexdigest()])
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _failed_task(index: int, now_ms: int) -> dict[str, Any]:
    return {
        "task_id": str(uuid.UUID(int=index + 1)),
        "operate_type": OPERATE_TYPES[index % len(OPERATE_TYPES)],
        "task_time": str(now_ms - index * 60_000),
        "task_error_code": "KPS.6002" if index % 3 else None,
        "task_error_msg": "failed to connect to the server on port 22",
        "server_name": f"ecs-{index:04d}",
        "server_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"ecs-{index}")),
        "keypair_name": f"KeyPair-{index % 5}",
    }


class _WideTasks(Sequence):
    """``count`` tasks with every field ``width`` characters long, made when read."""

    def __init__(self, count: int, width: int) -> None:
        self._count, self._width = count, width

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._task(i) for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        return self._task(index % self._count)

    def _task(self, index: int) -> dict[str, Any]:
        def wide(text: str) -> str:
            return (text + "-" + "x" * self._width)[: self._width]

        return {
            "task_id": wide(f"{index:08d}"),
            "operate_type": wide(OPERATE_TYPES[0]),
            "task_time": ("1" * self._width),
            "task_error_code": wide("KPS.6002"),
            "task_error_msg": "failed",  # not kept by the function; a full page stays under 2 MiB
            "server_name": wide(f"ecs-{index}"),
            "server_id": wide(f"server-{index}"),
            "keypair_name": wide(f"KeyPair-{index}"),
        }


def _kps_error(code: str, message: str) -> dict[str, Any]:
    return {"error_code": code, "error_msg": message}


def _gateway_error(detail: str, code: str = "APIGW.0301") -> dict[str, Any]:
    message = detail if code != "APIGW.0301" else f"Incorrect IAM authentication information: {detail}"
    return {"error_code": code, "error_msg": message, "request_id": uuid.uuid4().hex}


HTML_PAGE = "<html><head><title>{status}</title></head><body><h1>{status} Gateway Error</h1></body></html>"


def _make_handler(emulator: KpsEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kps-emulator"

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in two writes: without this, Nagle's algorithm and delayed ACKs
            # hold the body back ~40 ms on every keep-alive request.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request log is the record."""

        def handle(self) -> None:
            # A client may reset a kept-alive connection (a refused reply it stopped reading): no traceback.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                super().handle()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received = _Received(
                method=self.command,
                raw_path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            entry = LoggedRequest(
                method=received.method,
                path=received.path,
                query=received.query,
                headers=received.headers,
                started=time.monotonic(),
                client_port=self.client_address[1],
            )
            emulator._record(entry)
            with emulator._answering(received.method):
                status, body, extra, fault = self._answer(received, entry)
            if entry.dropped:
                self.close_connection = True
                entry.ended = time.monotonic()
                return
            entry.status = status  # recorded before the answer leaves, so the log is complete when the client returns
            entry.ended = time.monotonic()
            try:
                self._send(status, body, {**extra, **(fault.headers if fault else {})}, fault)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a timeout); nothing to answer

        def _answer(self, received: _Received, entry: LoggedRequest) -> tuple[int, Any, dict[str, str], Fault | None]:
            with emulator._lock:
                latency = emulator._state.latency
            emulator._sleep(latency)
            fault = emulator._next_fault(received)
            if fault is not None:
                emulator._sleep(max(fault.delay, fault.until - time.monotonic()))
                if fault.stall:
                    self._wait_for_hangup()
                if fault.drop or fault.stall:
                    entry.dropped = True
                    return 0, None, {}, fault
                if fault.status is not None:
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    body = HTML_PAGE.format(status=fault.status) if fault.html else fault.body
                    return fault.status, body, extra, fault
            kind, error = emulator._authenticate(received)
            entry.auth = kind
            if error is not None:
                return error[0], error[1], {}, fault
            status, body = emulator._route(received)
            return status, body, {}, fault

        def _wait_for_hangup(self) -> None:
            while not emulator._stopping.is_set():
                if select.select([self.request], [], [], 0.05)[0] and not self.request.recv(1, socket.MSG_PEEK):
                    return

        def _send(self, status: int, body: Any, extra: dict[str, str], fault: Fault | None) -> None:
            if fault is not None and fault.stream_bytes:
                self._send_page_stream(status, fault, extra)
                return
            if body is None:
                payload, content_type = b"", None
            elif isinstance(body, bytes):  # a fault's raw body, sent as is (one json.dumps could not write)
                payload, content_type = body, "application/json;charset=UTF-8"
            elif isinstance(body, str):
                payload, content_type = body.encode(), "text/html; charset=utf-8"
            else:
                payload, content_type = json.dumps(body).encode(), "application/json;charset=UTF-8"
            headers = {"X-Request-Id": uuid.uuid4().hex, **({"Content-Type": content_type} if content_type else {})}
            head = self._head(status, {**headers, "Content-Length": str(len(payload)), **extra})
            trickle, every = (fault.trickle, fault.trickle_every) if fault is not None else (None, 0.0)
            self._write(head, every if trickle == "headers" else 0)
            self._write(payload, every if trickle == "body" else 0)

        def _head(self, status: int, headers: dict[str, str]) -> bytes:
            lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('Unknown',))[0]}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        def _write(self, data: bytes, every: float) -> None:
            """All at once, or one byte every ``every`` seconds."""
            if not every:
                self.wfile.write(data)
                return
            for index in range(len(data)):
                if emulator._stopping.wait(every):
                    return
                self.wfile.write(data[index : index + 1])
                self.wfile.flush()

        def _send_page_stream(self, status: int, fault: Fault, extra: dict[str, str]) -> None:
            """A page of ``fault.stream_bytes`` bytes or so, generated block by block as it leaves."""
            unit = (json.dumps(_failed_task(0, 0)) + ",").encode()
            prefix, suffix = b'{"total": 1, "tasks": [', b"{}]}"
            units = max(0, (fault.stream_bytes - len(prefix) - len(suffix)) // len(unit))
            headers = {"Content-Type": "application/json;charset=UTF-8", **extra}
            if fault.declare_length:
                headers["Content-Length"] = str(len(prefix) + units * len(unit) + len(suffix))
            else:
                headers["Transfer-Encoding"] = "chunked"
            self.wfile.write(self._head(status, headers))
            block = 256
            pieces = (unit * min(block, units - n) for n in range(0, units, block))  # ~80 KB each, made lazily
            for piece in itertools.chain([prefix], pieces, [suffix]):
                if emulator._stopping.is_set():
                    return
                self.wfile.write(piece if fault.declare_length else b"%x\r\n%s\r\n" % (len(piece), piece))
            if not fault.declare_length:
                self.wfile.write(b"0\r\n\r\n")

        do_GET = do_DELETE = do_POST = do_PUT = do_PATCH = _serve

    return Handler
