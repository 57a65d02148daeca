"""The final red team's reproduced breaks: each test fails on the code as it stands."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from conftest import AK, PROJECT, SK
from test_secrets_by_construction import invoke_raw, windows_left

from devtools.context import FakeContext
from function import transport

TASKS = 300


class _EchoOldSignature(BaseHTTPRequestHandler):
    """Lists ``TASKS`` tasks; answers each DELETE 200, except the last, whose 401 quotes the
    Authorization header of the first DELETE it was sent (as a gateway quoting a replayed request)."""

    seen: ClassVar[list[str]] = []
    lock = threading.Lock()

    def _send(self, status: int, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        first = query.get("offset", ["0"])[0] in ("0", "")
        tasks = [
            {
                "task_id": f"t{i}",
                "operate_type": "FAILED_UNBIND",
                "server_id": f"s{i}",
                "server_name": "n",
                "keypair_name": "k",
                "task_error_code": "KPS.1",
                "task_time": "1700000000000",
            }
            for i in range(TASKS)
        ]
        self._send(200, {"total": TASKS, "tasks": tasks if first else []})

    def do_DELETE(self) -> None:
        with self.lock:
            self.seen.append(self.headers.get("Authorization", ""))
            count, first = len(self.seen), self.seen[0]
        if count < TASKS:
            self._send(200, {})
            return
        text = f"verify aksk signature fail, replayed: {first}"
        self._send(401, {"error_code": "APIGW.0301", "error_msg": text})

    def log_message(self, *_: object) -> None:
        pass


def test_a_signature_echoed_after_300_others_is_still_masked(settings):
    """A selective cleanup signs one DELETE per task; the server quotes, in its last reply, the
    signature of the first DELETE (still valid for 15 minutes): it must reach no line or payload."""
    _EchoOldSignature.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoOldSignature)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.pop("KPS_AUTH_TOKEN")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings.update({"KPS_ENDPOINT": url, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK})
        settings.update({"KPS_MAX_ATTEMPTS": "1", "KPS_CONCURRENCY": "1", "LOG_LEVEL": "DEBUG"})
        event = {"project_id": PROJECT, "select": {"operate_type": ["FAILED_UNBIND"]}}
        result, out = invoke_raw(event, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    assert len(_EchoOldSignature.seen) == TASKS, "the case needs every task's DELETE"
    assert "APIGW.0301" in out + json.dumps(result), "the echo was not read"
    signature = _EchoOldSignature.seen[0].rsplit("Signature=", 1)[1]
    assert windows_left(out + json.dumps(result), signature) == [], "an earlier request's signature was printed"


class _Deleted(BaseHTTPRequestHandler):
    """Answers every DELETE 200 ``{}``; ``deletes`` counts them."""

    deletes: ClassVar[int] = 0

    def do_DELETE(self) -> None:
        type(self).deletes += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


def _self_signed(folder: Path, name: str) -> tuple[str, str]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_a_warm_instance_trusts_the_ca_bundle_it_is_given_now(settings, tmp_path, monkeypatch):
    """REQUESTS_CA_BUNDLE names what the function trusts: once changed (trust withdrawn from a CA), a
    warm instance must verify against the new bundle, not the one it read on its first HTTPS call."""
    trusted, key = _self_signed(tmp_path, "server")
    other, _ = _self_signed(tmp_path, "other")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Deleted)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(trusted, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Deleted.deletes = 0
    transport._ca_bundle.cache_clear()  # this process's earlier tests are not this instance's history
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        settings.update({"KPS_ENDPOINT": url, "KPS_COUNT_BEFORE_DELETE": "false", "KPS_MAX_ATTEMPTS": "1"})
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", trusted)
        first, _ = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
        assert first["ok"], first
        assert _Deleted.deletes == 1
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", other)  # the server's CA no longer trusted
        second, _ = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    assert _Deleted.deletes == 1, "a DELETE went to a server the CA bundle in force does not trust"
    assert not second["ok"]
