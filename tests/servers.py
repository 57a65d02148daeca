"""Small loopback servers the tests use as witnesses: nothing they receive ever leaves this machine."""

from __future__ import annotations

import socket
import threading


class _LoopbackServer:
    """Accepts connections on 127.0.0.1 until closed; each one goes to ``_handle``."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


class RawReply(_LoopbackServer):
    """Answers every request with the same raw bytes: headers a KPS emulator cannot write (UTF-8 in a
    reason phrase, a Location, an X-Request-Id), or garbage where a TLS handshake is due. ``received``: the
    first bytes of each connection."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self.received: list[bytes] = []
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            self.received.append(conn.recv(65536))
            conn.sendall(self._raw)


class ConnectRecorder(_LoopbackServer):
    """A minimal proxy that records the target of each request (CONNECT host:port, or the absolute URL
    a plain-HTTP proxy is asked for) and refuses it: no traffic leaves."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = conn.recv(4096).decode("latin-1")
            self.targets.append(request.split(" ")[1] if " " in request else request)
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


class Trickler(_LoopbackServer):
    """Accepts connections and sends each one ``data`` a byte every ``every`` seconds, reading nothing:
    a server that is never silent long enough for a per-read timeout."""

    def __init__(self, data: bytes, every: float) -> None:
        self._data, self._every = data, every
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            for index in range(len(self._data)):
                if self._stop.wait(self._every):
                    return
                try:
                    conn.sendall(self._data[index : index + 1])
                except OSError:
                    return
