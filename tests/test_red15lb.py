"""Second red team on issue 15 points 4-7: echoes the fixed masking still lets through."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from conftest import AK, PROJECT, SK
from test_secrets_by_construction import invoke_raw, red_secret, windows_left

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
