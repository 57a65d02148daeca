"""A local fake of FunctionGraph's trigger API (list, create, update, delete) and ShowFunctionConfig on
127.0.0.1, for make expose.

It checks what the real API would: the AK/SK signature (the emulator's own verifier, written from the
signing guide), X-Project-Id equal to the path's project, the path's function URN, and a create body
holding only TriggerEventDataRequestBody's fields with every DEDICATEDGATEWAY field present. It records
every request; nothing leaves this machine.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from devtools.kps_emulator import AUTH_HEADER, _Received, _signature

CONFIG = re.compile(r"/v2/([0-9a-f]{32})/fgs/functions/([^/]+)/config")
TRIGGERS = re.compile(r"/v2/([0-9a-f]{32})/fgs/triggers/([^/]+)(?:/([A-Z]+)/([0-9a-f-]+))?")
# TriggerEventDataRequestBody's fields an API Gateway trigger uses (huaweicloudsdkfunctiongraph 3.1.205).
REQUIRED = {"instance_id", "group_id", "env_id", "env_name", "name", "type", "path", "protocol", "req_method"}
ALLOWED = REQUIRED | {"match_mode", "auth", "func_info", "sl_domain", "backend_type", "group_name"}
METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY"}


class FakeFunctionGraph:
    def __init__(self, access_key: str, secret_key: str) -> None:
        self.keys = {access_key: secret_key}
        self.triggers: dict[str, list[dict[str, Any]]] = {}
        self.functions: dict[str, dict[str, Any]] = {}  # ShowFunctionConfig's answer, by function URN
        self.log: list[tuple[str, str, int]] = []  # (method, path, status)
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeFunctionGraph:
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, req: _Received) -> tuple[int, Any]:  # noqa: PLR0911 - a router returns often
        refused = self._authenticate(req)
        if refused:
            return refused
        config = CONFIG.fullmatch(req.path)
        if config is not None and req.method == "GET":
            found = self.functions.get(unquote(config.group(2)))
            return (200, found) if found else (404, {"error_code": "FSS.1051", "error_msg": "function not found"})
        match = TRIGGERS.fullmatch(req.path)
        if match is None:
            return 404, {"error_code": "APIGW.0101", "error_msg": "The API does not exist"}
        project, urn, kind, trigger_id = match.group(1), unquote(match.group(2)), match.group(3), match.group(4)
        if req.header("x-project-id") != project:
            return 403, {"error_code": "APIGW.0302", "error_msg": "The IAM user is not authorized to access the API"}
        if not re.fullmatch(rf"urn:fss:[a-z0-9-]+:{project}:function:default:[A-Za-z0-9_-]+", urn):
            return 400, {"error_code": "FSS.0400", "error_msg": f"bad function urn {urn}"}
        with self._lock:
            triggers = self.triggers.setdefault(urn, [])
            if req.method == "GET" and kind is None:
                return 200, list(triggers)
            if req.method == "POST" and kind is None:
                return self._create(triggers, json.loads(req.body))
            found = [t for t in triggers if t["trigger_id"] == trigger_id and t["trigger_type_code"] == kind]
            if not found:
                return 404, {"error_code": "FSS.1051", "error_msg": "trigger not found"}
            if req.method == "DELETE":
                triggers.remove(found[0])
                return 204, None
            if req.method == "PUT":
                body = json.loads(req.body)
                if set(body) - {"trigger_status", "event_data"} or body.get("trigger_status") not in ("ACTIVE", None):
                    return 400, {"error_code": "FSS.0400", "error_msg": "bad update"}
                found[0]["trigger_status"] = body.get("trigger_status", found[0]["trigger_status"])
                return 200, found[0]
        return 405, {"error_code": "FSS.0405", "error_msg": "method not allowed"}

    def _create(self, triggers: list[dict[str, Any]], body: dict[str, Any]) -> tuple[int, Any]:
        self.bodies.append(body)
        data = body.get("event_data") or {}
        problems = [
            body.get("trigger_type_code") != "DEDICATEDGATEWAY",
            body.get("trigger_status") != "ACTIVE",
            not set(data) >= REQUIRED,
            bool(set(data) - ALLOWED),
            data.get("req_method") not in METHODS,
            data.get("type") not in (1, 2),
            not isinstance(data.get("func_info", {}).get("timeout"), int),
            not 1 <= data.get("func_info", {}).get("timeout", 0) <= 60000,
        ]
        if any(problems):
            return 400, {"error_code": "FSS.0400", "error_msg": f"invalid trigger: {problems}"}
        trigger = {
            "trigger_id": str(uuid.uuid4()),
            "trigger_type_code": "DEDICATEDGATEWAY",
            "trigger_status": "ACTIVE",
            "event_data": data,
            "created_time": "2026-11-29T03:00:00+08:00",
            "last_updated_time": "2026-11-29T03:00:00+08:00",
        }
        triggers.append(trigger)
        return 200, trigger

    def _authenticate(self, req: _Received) -> tuple[int, Any] | None:
        match = AUTH_HEADER.fullmatch((req.header("authorization") or "").strip())
        if match is None or match.group(1) not in self.keys:
            return 401, {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"}
        signed = match.group(2).split(";")
        expected = _signature(req, signed, req.header("x-sdk-date") or "", self.keys[match.group(1)])
        if expected != match.group(3) or "x-project-id" not in signed:
            return 401, {"error_code": "APIGW.0301", "error_msg": "verify aksk signature fail"}
        return None


def _handler(fake: FakeFunctionGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: fake.log is the record."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            req = _Received(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            status, body = fake.answer(req)
            fake.log.append((req.method, unquote(req.path), status))
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Request-Id", uuid.uuid4().hex)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

    return Handler
