"""Authenticated JSON calls to Huawei Cloud APIs (KPS, IAM), retried inside the time budget.

Every outcome comes back as a ``Reply``; nothing raises. The connection pools (``transport``) live as
long as the function instance, so warm invocations reuse their connections.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import json
import random
import re
import socket
import time
import urllib.parse
from typing import Any, NamedTuple

import requests
from urllib3.exceptions import NameResolutionError

from . import logs, transport
from .budget import Deadline
from .credentials import Credentials
from .logs import mask, normalise
from .record import json_bounded
from .settings import Settings

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MIN_ATTEMPT_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 8.0
# The largest reply read. A full ListFailedTask page (1,000 tasks) is ~310 KB as the emulator writes it
# and ~970 KB with every field at a generous length (512-character messages, 128-character names):
# 2 MiB leaves room for that and keeps a hostile reply's parsed form bounded (see MAX_JSON_SEPARATORS).
MAX_REPLY_BYTES = 2 * 1024 * 1024
# Parsed JSON costs up to ~25 times its text (a million empty objects); counting the separators first
# bounds the number of values, so no reply within the size can grow past a few tens of MB.
# A full page with long fields has ~17,000.
MAX_JSON_SEPARATORS = 100_000
MAX_CODE = 64
MAX_MESSAGE = 500
MAX_REQUEST_ID = 128
_CHUNK = 64 * 1024
_TAGS = re.compile(r"<[^<>]*>")  # not [^>]: a run of "<" without ">" would take quadratic time
OBJECT = "<object>"  # what a server's message that is not text becomes: never its repr
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_text(value: Any, limit: int) -> str:
    """Server text as it may enter the payload and the logs: normalised (``logs.normalise``), one line,
    no control characters, cut to ``limit`` characters and to the JSON bytes of ``limit`` ASCII
    characters (``record.json_bounded``: an emoji is 12), then masked: a secret the cut went through is
    at the edge, where the mask looks for it; masking never lengthens a text. Only text is taken."""
    if not isinstance(value, str):
        return OBJECT
    text = normalise(value[: 4 * limit + 64])  # NFKC can lengthen: the rest would be cut anyway
    return mask(json_bounded(" ".join(_CONTROL.sub(" ", text).split())[:limit], 2 * limit + 2))


def _header(value: str) -> str:
    """A header's text as the server wrote it: http.client reads header bytes (and the status line)
    as Latin-1, so UTF-8 (a zero-width space, E2 80 8B) must be decoded again before it is normalised."""
    return value.encode("latin-1").decode("utf-8", "replace")


class RetryPolicy(NamedTuple):
    max_attempts: int
    timeout: float
    backoff_base: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.max_attempts, settings.timeout_seconds, settings.backoff_base_seconds)

    def longest_wait(self, attempt: int) -> float:
        """The backoff's bound after ``attempt``: base * 2^(attempt-1), capped."""
        return min(BACKOFF_CAP_SECONDS, self.backoff_base * 2 ** (attempt - 1))

    def worst_case_seconds(self) -> float:
        """The longest one call can take when every attempt times out and every wait is the longest
        (a Retry-After can ask for more; the deadline still bounds it)."""
        return self.max_attempts * self.timeout + sum(self.longest_wait(n) for n in range(1, self.max_attempts))

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to the bound."""
        return random.uniform(0, self.longest_wait(attempt))


class Reply(NamedTuple):
    """A call's outcome. Its request ID and error texts are clean already (``clean_text``, or the function's
    own): the payload, the logs and the record take them as they are."""

    ok: bool
    http_status: int | None
    kps_request_id: str | None
    attempts: int
    error: dict | None = None
    data: Any = None
    retry_after: float | None = None
    # A failed attempt whose request may have reached the server and acted on it (a timeout or a drop once
    # a byte of the request was written, a 5xx); False when none was (no name, no connection, a proxy or
    # TLS handshake that failed) or the server refused it (4xx, 429). For the call's last attempt only.
    sent: bool = False


def _error(code: str, message: str, retryable: bool) -> dict:
    return {"code": code, "message": message, "retryable": retryable}


def invalid_response(reply: Reply, message: str) -> Reply:
    """A 2xx answer without the data it should hold: a failure that retrying will not mend."""
    return reply._replace(ok=False, error=_error("InvalidResponse", message, False))


def out_of_time(reply: Reply, message: str) -> Reply:
    """A 2xx answer the invocation's time ran out reading: the deadline's failure, retryable."""
    return reply._replace(ok=False, error=_error("DeadlineExceeded", message, True))


# Retry-After (RFC 9110 10.2.3) is delay-seconds or an HTTP-date (5.6.7) in one of its three forms, each case-
# sensitive and GMT (asctime's names no zone). delay-seconds is 1*DIGIT; a fraction ("0.2") is taken too.
_DELAY = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH, _DAY = f"(?P<month>{'|'.join(_MONTHS)})", "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_TIME = "(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_HTTP_DATES = (
    re.compile(rf"{_DAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT"),  # IMF-fixdate
    re.compile(  # rfc850-date
        rf"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
        rf"(?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT"
    ),
    re.compile(rf"{_DAY} {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} (?P<year>[0-9]{{4}})"),  # asctime
)
# The largest delay read (RFC 9111 1.2.2's bound for delta-seconds): a longer one means as much here, never fits.
MAX_DELAY_SECONDS = 2.0**31


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None (absent: the backoff applies) when it is not one
    of RFC 9110's forms. Given twice, it is joined "a, b": each part must be one, and the longest wait is taken
    (every server on the way asked for at least that)."""
    if not value:
        return None
    waits = [_wait(part.strip(" \t")) for part in re.split(r"(?<![a-z]),", value)]  # "Sun, 06 Nov ...": no split
    return None if None in waits else max(wait for wait in waits if wait is not None)


def _wait(part: str) -> float | None:
    """One Retry-After value's seconds from now (a past date is 0), or None when it is no delay or no date."""
    if _DELAY.fullmatch(part):
        return min(float(part), MAX_DELAY_SECONDS)
    date = next((match for form in _HTTP_DATES if (match := form.fullmatch(part))), None)
    if date is None:
        return None
    year = int(date["year"])
    if year < 100:  # rfc850's two digits: the most recent year that is not more than 50 years ahead
        now = time.gmtime().tm_year
        year += now - now % 100
        year -= 100 if year > now + 50 else 0
    fields = (int(date["day"]), int(date["hour"]), int(date["minute"]), int(date["second"]))
    try:
        when = datetime.datetime(year, _MONTHS.index(date["month"]) + 1, *fields, tzinfo=datetime.timezone.utc)
    except ValueError:  # no such day (Feb 30, second 60): not a date
        return None
    return max(0.0, when.timestamp() - time.time())


class _Unreadable(Exception):
    """A reply refused before or while it is read: the message says why."""


class _Failed(Exception):
    """An attempt that ends without a reply to read: the target error, and what is known of the reply."""

    def __init__(
        self,
        status: int | None,
        request_id: str | None,
        error: dict,
        sent: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(error["code"])
        self.status, self.request_id, self.error, self.sent = status, request_id, error, sent
        self.retry_after = retry_after


def _body_failed(response: requests.Response, request_id: str | None, error: dict, sent: bool = True) -> _Failed:
    """A failure once the status line was read. A 4xx (429 too) is the server's refusal, whatever became of its
    body: it acted on nothing (not sent), and its status and Retry-After stand; a body lost on the way (a timeout,
    a drop) leaves the status's own error (``HTTP.429``, retried as such), a body refused unread its
    ``InvalidResponse``. After any other status the failure is the error, and the request may have been acted on."""
    status = response.status_code
    if not 400 <= status < 500:
        return _Failed(status, request_id, error, sent)
    if error["code"] != "InvalidResponse":
        lost = f"; its body was lost ({error['code']}: {error['message']})"
        refused = _error_from(response, b"", None)
        error = {**refused, "message": refused["message"] + lost}
    wait = _retry_after(response.headers.get("Retry-After")) if error["retryable"] else None
    return _Failed(status, request_id, error, sent=False, retry_after=wait)


def _read_body(response: requests.Response) -> bytes:
    """The body, refused as soon as it is known to be too large; compression was not asked for, and
    is refused rather than inflated (a few KB can inflate to GB)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise _Unreadable("the reply is compressed although it was not asked to be")  # its name is not quoted
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
        raise _Unreadable(f"the reply declares {int(declared)} bytes, more than the {MAX_REPLY_BYTES} read")
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise _Unreadable(f"the reply is larger than the {MAX_REPLY_BYTES} bytes read; the rest was not read")
    return bytes(body)


def _parse(body: bytes) -> Any:
    """JSON, or None for another body (an HTML page, an empty DELETE answer). Raises ``_Unreadable``
    for JSON too large or too deep to parse safely."""
    if body.count(b",") + body.count(b":") > MAX_JSON_SEPARATORS:
        raise _Unreadable(f"the reply holds more than {MAX_JSON_SEPARATORS} JSON values")
    try:
        return json.loads(body)
    except RecursionError:
        raise _Unreadable("the reply's JSON is nested too deep") from None
    except ValueError:
        return None


def _decoded(value: Any, limit: int) -> Any:
    """A server's message as a reader would read it: percent-escapes and HTML entities decoded (as a
    page's and a Location's are), so that the mask sees a secret echoed in either. Only its start is
    decoded: what is past ``clean_text``'s cut is never shown."""
    if not isinstance(value, str):
        return value
    return html.unescape(urllib.parse.unquote(value[: 8 * limit + 64]))


def _code(value: Any) -> str:
    """A server's error code: text, or a number as its digits (IAM writes ``"code": 401``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return clean_text(value, MAX_CODE) if isinstance(value, str) else ""


def _error_from(response: requests.Response, body: bytes, data: Any) -> dict:
    """KPS and gateway errors keep their own codes; other bodies (HTML pages) become HTTP.<status>;
    a redirect is a failure, never followed. Only the parsed message of a JSON body is kept (never its
    raw text, where escapes would hide characters from the normaliser); a page is decoded, its tags
    dropped and its entities read, so the mask sees the text as it is shown."""
    status = response.status_code
    retryable = status in RETRYABLE_STATUS
    text = ""
    if isinstance(data, dict):
        nested = data.get("error") if isinstance(data.get("error"), dict) else {}
        code = _code(data.get("error_code") or nested.get("code"))
        text = clean_text(_decoded(data.get("error_msg") or nested.get("message") or "", MAX_MESSAGE), MAX_MESSAGE)
        if code:
            return _error(code, text, retryable)
    elif data is None and body:
        text = clean_text(html.unescape(_TAGS.sub("", body[:4096].decode("utf-8", "replace"))), 200)
    if response.is_redirect:
        location = urllib.parse.unquote(_header(response.headers["Location"]))
        text = f"redirect to {clean_text(location, 200)} not followed"
    summary = clean_text(f"HTTP {status} {_header(response.reason or '')}", 100)
    return _error(f"HTTP.{status}", summary + (f": {text}" if text else ""), retryable)


def _request_id(value: Any) -> str | None:
    return (clean_text(value, MAX_REQUEST_ID) or None) if isinstance(value, str) else None


def _failure(exc: requests.RequestException, current: transport.Exchange, seconds: float) -> tuple[dict, bool]:
    """What went wrong on the way, as a target error, and whether the request could have been sent: only
    once its first byte was written (``Exchange.sent``), never by a failure before (the name, the connect,
    a proxy's CONNECT, the TLS handshake). Whatever the exception, an exchange the watchdog ended is a timeout."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    sent = current.sent
    if current.expired or isinstance(exc, requests.Timeout):
        return _error("Timeout", f"no complete answer within {seconds:.2f} s", True), sent
    if transport.headers_too_large(exc):
        return _error("InvalidResponse", f"the reply's headers pass {transport.MAX_HEADER_BYTES} bytes", False), sent
    if isinstance(reason, NameResolutionError):
        cause = reason.__cause__
        if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_AGAIN:
            return _error("ConnectionError", "name resolution failed for now (EAI_AGAIN)", True), sent
        return _error("EndpointNotFound", "the endpoint's host name does not resolve", False), sent
    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return _error("ConnectionError", f"connection failed or dropped ({type(exc).__name__})", True), sent
    return _error("RequestError", type(exc).__name__, False), sent


def _not_waited(reply: Reply, wait: float, left: float) -> Reply:
    """A reply whose ``Retry-After`` asks for more than the time left: its own error (a throttle is reported as
    throttled, not as ``DeadlineExceeded``), saying the wait was not made."""
    error = reply.error or {}
    said = f"{error.get('message')}; " if error.get("message") else ""
    message = f"{said}its Retry-After of {round(wait, 1):g} s is more than the {max(left, 0):.1f} s left: not retried"
    return reply._replace(error={**error, "message": message})


class ApiClient:
    def __init__(self, endpoint: str, credentials: Credentials, policy: RetryPolicy, deadline: Deadline) -> None:
        self._endpoint = endpoint
        self._credentials = credentials
        self._policy = policy
        self._deadline = deadline
        self._proxies = transport.proxies_for(endpoint)

    def call(self, method: str, path: str, query: list[tuple[str, str]] | None = None) -> Reply:
        """Retries 429, 5xx, timeouts and dropped connections; never waits past the deadline. A ``Retry-After``
        that does not fit ends the call with the server's error (``_not_waited``); a backoff that does not, or
        an attempt cut short by the deadline, with ``DeadlineExceeded``."""
        attempt = 0
        reply: Reply | None = None
        while True:
            budget = self._deadline.remaining()
            if budget < MIN_ATTEMPT_SECONDS:
                return self._out_of_time(attempt, reply)
            attempt += 1
            reply = self._attempt(method, path, query or [], min(self._policy.timeout, budget), attempt)
            if reply.ok or not reply.error or not reply.error["retryable"]:
                return reply
            left = self._deadline.remaining() - MIN_ATTEMPT_SECONDS
            last = attempt >= self._policy.max_attempts
            # The server's answer, not our slowness, ends it: checked first, so a throttle read in the last
            # moments is still the server's error, on the last attempt (no wait follows) or when its Retry-After
            # does not fit. A wait of 0 that does not fit is the deadline's doing.
            if reply.retry_after is not None and reply.retry_after > max(left, 0.0) and not last:
                return _not_waited(reply, reply.retry_after, left)
            if left < 0 and not (last and reply.http_status is not None):
                return self._out_of_time(attempt, reply)
            if last:
                return reply
            wait = reply.retry_after if reply.retry_after is not None else self._policy.backoff(attempt)
            if wait > left:
                return self._out_of_time(attempt, reply)
            time.sleep(wait)

    def _attempt(self, method: str, path: str, query: list[tuple[str, str]], seconds: float, attempt: int) -> Reply:
        url, headers = self._credentials.authorize(method, self._endpoint, path, query)
        # A server may echo the Authorization header, in an error or in the data of a 2xx reply, and a
        # signature replays its request while its X-Sdk-Date is accepted (15 minutes): it is one of
        # the invocation's secrets from now on, masked wherever its text goes (logs, record, payload).
        logs.add_secret(headers.get("Authorization", "").rpartition("Signature=")[2])
        return self._read(method, url, headers, seconds, attempt)

    def _read(self, method: str, url: str, headers: dict, seconds: float, attempt: int) -> Reply:
        try:
            response, body, data, request_id = self._fetch(method, url, headers, seconds)
        except _Failed as failed:
            status = failed.status if failed.status is None or 100 <= failed.status <= 599 else None
            error, sent, wait = failed.error, failed.sent, failed.retry_after
            return Reply(False, status, failed.request_id, attempt, error, retry_after=wait, sent=sent)
        status = response.status_code
        if not 100 <= status <= 599:  # http.client takes 100-999; HTTP (and the payload) know 100-599
            error = _error(f"HTTP.{status}", f"a non-standard HTTP status {status}", False)
            return Reply(False, None, request_id, attempt, error, sent=True)
        if 200 <= status < 300:
            return Reply(True, status, request_id, attempt, data=data)
        error = _error_from(response, body, data)
        wait = _retry_after(response.headers.get("Retry-After")) if error["retryable"] else None
        return Reply(False, status, request_id, attempt, error, retry_after=wait, sent=status >= 500)

    def _fetch(
        self, method: str, url: str, headers: dict, seconds: float
    ) -> tuple[requests.Response, bytes, Any, str | None]:
        """The whole exchange (resolution, connect, TLS, headers, body) within ``seconds`` of wall
        clock; then the body's JSON, and the request ID: the X-Request-Id header, else (when the
        header is absent) the JSON's ``request_id``. Raises ``_Failed`` with the target error."""
        with transport.exchange(seconds) as current:
            try:
                request = transport.prepare(method, url, headers, repeats=self._credentials.kind == "token")
                # The adapter follows no redirect: one must never carry the credentials to another place.
                response = transport.send(request, seconds, self._proxies)
            except requests.RequestException as exc:
                raise _Failed(None, None, *_failure(exc, current, seconds)) from None
            with contextlib.closing(response):  # closes the connection unless the body was read whole
                header = response.headers.get("X-Request-Id")
                request_id = _request_id(header and _header(header))
                try:
                    body = _read_body(response)
                except _Unreadable as exc:
                    raise _body_failed(response, request_id, _error("InvalidResponse", str(exc), False)) from None
                except requests.RequestException as exc:
                    raise _body_failed(response, request_id, *_failure(exc, current, seconds)) from None
                if current.expired:  # a body that seemed to end because the watchdog shut its socket
                    raise _body_failed(response, request_id, *_failure(requests.Timeout(), current, seconds))
        try:
            data = _parse(body) if body else None
        except _Unreadable as exc:
            raise _body_failed(response, request_id, _error("InvalidResponse", str(exc), False)) from None
        if not header and isinstance(data, dict):
            request_id = _request_id(data.get("request_id"))
        return response, body, data, request_id

    @staticmethod
    def _out_of_time(attempts: int, last: Reply | None) -> Reply:
        detail = f"; last error: {last.error['code']}" if last is not None and last.error else ""
        message = f"the invocation's time budget ran out after {attempts} attempt(s){detail}"
        error = _error("DeadlineExceeded", message, True)
        status, request_id = (last.http_status, last.kps_request_id) if last is not None else (None, None)
        return Reply(False, status, request_id, attempts, error)
