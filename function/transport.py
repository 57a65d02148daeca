"""One HTTP exchange under one wall-clock deadline, on an adapter that carries nothing between calls.

``requests``' timeout bounds each socket read, not the exchange: a server that sends a byte just
inside it keeps a call going for ever, and name resolution has no bound at all. Here every attempt
runs as an ``Exchange`` with an end time. A single watchdog thread per instance shuts down the
sockets of an exchange whose time is up, which wakes any blocked read or write at once (shutdown(2)
acts on the connection, whichever descriptor or thread is using it); names are resolved in a worker
thread waited for no longer than the exchange has left. One shared thread and a heap cost a few
microseconds an attempt, where a ``threading.Timer`` would start a thread on every call (warm
invocations reuse pooled connections, so nothing is added to them but that registration).

The hooks are two methods of urllib3's connection classes (``_new_conn``, ``endheaders``), installed
through the instance's one adapter: requests still does everything else (proxies, TLS, pooling).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import heapq
import http.client
import ipaddress
import itertools
import os
import socket
import threading
import time
from typing import Any

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from .settings import MAX_CONCURRENCY

USER_AGENT = "kps-failed-task-cleaner/1.0"
# The most bytes of status line and headers read. http.client alone takes 100 header lines of 64 KiB each
# (6.5 MB a reply, held whole and then parsed again by the email package: ~40 MB a target); KPS and
# the gateway send well under 2 KB.
MAX_HEADER_BYTES = 64 * 1024


class HeadersTooLarge(http.client.HTTPException):
    """A reply whose status line and headers pass ``MAX_HEADER_BYTES``: refused before they are all held."""


def headers_too_large(exc: BaseException) -> bool:
    """Whether ``exc`` is, or wraps (as urllib3 and requests do, in their arguments), ``HeadersTooLarge``."""
    pending: list[object] = [exc]
    for _ in range(8):  # requests.ConnectionError(ProtocolError(message, HeadersTooLarge)): 3 levels
        if any(isinstance(e, HeadersTooLarge) for e in pending):
            return True
        pending = [a for e in pending if isinstance(e, BaseException) for a in e.args]
    return False


class _HeadCounter:
    """The reply's file while its head is read: each line counted against ``MAX_HEADER_BYTES``."""

    def __init__(self, fp: Any) -> None:
        self._fp = fp
        self._left = MAX_HEADER_BYTES

    def readline(self, limit: int = -1) -> bytes:
        line = self._fp.readline(limit)
        self._left -= len(line)
        if self._left < 0:
            raise HeadersTooLarge(f"the reply's headers pass {MAX_HEADER_BYTES} bytes")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class _Response(http.client.HTTPResponse):
    def begin(self) -> None:
        fp = self.fp
        self.fp = _HeadCounter(fp)  # type: ignore[assignment]
        try:
            super().begin()
        finally:
            if self.fp is not None:
                self.fp = fp


class Exchange:
    """One attempt's deadline, and the sockets to shut down when it passes."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.expired = False
        # Whether a byte of the request may have left: set just before its first write, on a connection already
        # made (name, TCP, proxy CONNECT, TLS), so a failure before that left the server with nothing to act on.
        self.sent = False
        self._done = False
        self._sockets: list[socket.socket] = []
        self._owned: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def watch(self, sock: socket.socket, *, owned: bool = False) -> None:
        """``owned`` sockets (duplicates made for the watch) are closed when the exchange ends."""
        with self._lock:
            (self._owned if owned else self._sockets).append(sock)
            late = self.expired
        if late:
            _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sockets = self._sockets + self._owned
        for sock in sockets:
            _shutdown(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            owned, self._owned, self._sockets = self._owned, [], []
        for sock in owned:
            sock.close()

    def resolve(self, host: str, port: int) -> list[str]:
        """getaddrinfo in a daemon thread, waited for no longer than the exchange has left: the
        resolver's own timeouts (5 s a try in glibc) know nothing of ours. A lookup that outlives the
        wait finishes on its own and is dropped."""
        box: dict[str, Any] = {}

        def lookup() -> None:
            try:
                box["found"] = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=lookup, name="kps-resolve", daemon=True)
        worker.start()
        worker.join(max(0.0, self.remaining()))
        if "error" in box:
            raise box["error"]
        if "found" not in box:
            raise TimeoutError(f"resolving {host} took longer than the attempt had left")
        return list(dict.fromkeys(str(info[4][0]) for info in box["found"]))


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """Expires exchanges at their end; one daemon thread for the whole instance, started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Exchange]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, exchange: Exchange) -> None:
        with self._wake:
            heapq.heappush(self._heap, (exchange.end, next(self._order), exchange))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kps-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is exchange:  # woken only when the next end moves earlier
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].expire()
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()
_CURRENT: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar("kps_exchange", default=None)


@contextlib.contextmanager
def exchange(seconds: float) -> Any:
    """Runs the requests made inside under one deadline of ``seconds``; yields the ``Exchange``."""
    current = Exchange(seconds)
    token = _CURRENT.set(current)
    _WATCHDOG.add(current)
    try:
        yield current
    finally:
        _CURRENT.reset(token)
        current.finish()


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class _Watched(HTTPConnection):
    """Registers every socket an exchange uses, resolves names under the exchange's clock, and reads
    no more than ``MAX_HEADER_BYTES`` of a reply's head."""

    response_class = _Response

    def _new_conn(self) -> socket.socket:
        current = _CURRENT.get()
        if current is None:
            return super()._new_conn()
        host = self._dns_host
        try:
            addresses = [host] if _is_address(host) else current.resolve(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, str(exc)) from exc
        failure: Exception | None = None
        try:
            for address in addresses:  # in the resolver's order, as urllib3 would, while time is left
                self._dns_host = address
                if isinstance(self.timeout, (int, float)):  # each address within what is left
                    self.timeout = min(self.timeout, max(current.remaining(), 0.001))
                try:
                    sock = super()._new_conn()
                except NewConnectionError as exc:
                    failure = exc
                    if current.remaining() <= 0:
                        break
                    continue
                # A duplicate, because TLS detaches the socket object it wraps: shutting down the
                # duplicate still reaches the connection. CPython bounds a handshake by the socket
                # timeout counted from the handshake's start; this bounds it by the attempt's end.
                current.watch(sock.dup(), owned=True)
                return sock
        finally:
            self._dns_host = host
        raise failure or NewConnectionError(self, f"no address for {host}")

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        """Where the request's first byte is written (http.client composes it in memory until here): the
        connection is made first (urllib3 has made an HTTPS one already), then the exchange marks it sent.
        The proxy's CONNECT is written inside ``connect``, so it never counts."""
        current = _CURRENT.get()
        if current is not None:
            if self.sock is None:
                self.connect()
            else:  # a pooled connection used again, or an HTTPS one urllib3 connected (its duplicate is watched)
                current.watch(self.sock)
            current.sent = True
        super().endheaders(message_body, encode_chunked=encode_chunked)


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _Watched


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter, on the watched connection classes (direct and through a proxy)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


@functools.lru_cache(maxsize=1)
def shared_adapter() -> _Adapter:
    """One adapter per instance, without a ``requests.Session``: its pools (as many connections per host as
    targets may run at once) keep connections open across warm invocations; no cookie jar (nothing a server
    sets reaches the next call), no redirect followed, no ~/.netrc (its Authorization header) and no scan of
    the environment per request (about 1 ms): proxies are resolved once per endpoint (``proxies_for``)."""
    return _Adapter(pool_connections=4, pool_maxsize=MAX_CONCURRENCY)


def _ca_bundle() -> str | bool:
    """The CA bundle requests would use, read on each call: a warm instance trusts what it is given now."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


# A Session's own headers (and the SDK's), but uncompressed: a reply's size is bounded as it is read.
HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", "Accept": "*/*", "Connection": "keep-alive"}


def prepare(method: str, url: str, headers: dict[str, str], *, repeats: bool) -> requests.PreparedRequest:
    """The request as requests prepares it (URL quoted, every header checked: about 100 µs with a 4 KB token).
    One that ``repeats`` (a token's) is prepared once per instance and copied; a signed one never repeats."""
    key = (method, url, tuple(headers.items()))
    if not repeats:
        return _prepared.__wrapped__(*key)
    request = _prepared(*key).copy()
    request.hooks = requests.hooks.default_hooks()  # copy() would share the cached request's own dict
    return request


@functools.lru_cache(maxsize=64)
def _prepared(method: str, url: str, headers: tuple[tuple[str, str], ...]) -> requests.PreparedRequest:
    request = requests.PreparedRequest()
    request.prepare(method=method, url=url, headers={**HEADERS, **dict(headers)})
    return request


def send(request: requests.PreparedRequest, seconds: float, proxies: dict[str, str]) -> requests.Response:
    """The request on the shared adapter, its body left to be read (``stream``) within the exchange."""
    return shared_adapter().send(request, stream=True, timeout=seconds, verify=_ca_bundle(), proxies=proxies)


PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")


def proxies_for(endpoint: str) -> dict[str, str]:
    """HTTPS_PROXY/ALL_PROXY/NO_PROXY as requests applies them, resolved once per endpoint and proxy
    environment. A plain ``http://`` endpoint (loopback only) never goes through a proxy: the request
    and its credentials would travel in clear text to the proxy's host."""
    if not endpoint.startswith("https://"):
        return {}
    names = (*PROXY_VARIABLES, *(name.upper() for name in PROXY_VARIABLES))
    return _proxies(endpoint, tuple(os.environ.get(name, "") for name in names))


@functools.lru_cache(maxsize=64)
def _proxies(endpoint: str, _environment: tuple[str, ...]) -> dict[str, str]:
    return requests.utils.get_environ_proxies(endpoint)
