"""Authenticated JSON calls to Huawei Cloud APIs (KPS, IAM), retried inside the time budget.

Every outcome comes back as a ``Reply``; nothing raises. The ``requests.Session`` lives as long as
the function instance, so warm invocations reuse its connections.
"""

from __future__ import annotations

import email.utils
import functools
import os
import random
import re
import time
from typing import Any, NamedTuple

import requests

from .budget import Deadline
from .credentials import Credentials
from .settings import MAX_CONCURRENCY, Settings

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MIN_ATTEMPT_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 8.0
USER_AGENT = "kps-failed-task-cleaner/1.0"
_TAGS = re.compile(r"<[^>]*>")


PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")


@functools.lru_cache(maxsize=1)
def shared_session() -> requests.Session:
    """One session per instance: keeps TLS connections open across warm invocations. Its pools hold
    as many connections per host as targets may run at once. With ``trust_env`` requests would scan
    the whole environment and look for ~/.netrc on every request (about 1 ms each): the proxies are
    resolved once per endpoint instead (``proxies_for``), the CA bundle variables read once here, and
    ~/.netrc never, which also keeps it from adding its own Authorization header."""
    session = requests.Session()
    session.trust_env = False
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.headers["User-Agent"] = USER_AGENT
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=MAX_CONCURRENCY)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def proxies_for(endpoint: str) -> dict[str, str]:
    """HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY as requests applies them, resolved once per endpoint
    and proxy environment."""
    names = (*PROXY_VARIABLES, *(name.upper() for name in PROXY_VARIABLES))
    return _proxies(endpoint, tuple(os.environ.get(name, "") for name in names))


@functools.lru_cache(maxsize=64)
def _proxies(endpoint: str, _environment: tuple[str, ...]) -> dict[str, str]:
    return requests.utils.get_environ_proxies(endpoint)


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
    ok: bool
    http_status: int | None
    kps_request_id: str | None
    attempts: int
    error: dict | None = None
    data: Any = None
    retry_after: float | None = None


def _error(code: str, message: str, retryable: bool) -> dict:
    return {"code": code, "message": message, "retryable": retryable}


def invalid_response(reply: Reply, message: str) -> Reply:
    """A 2xx answer without the data it should hold: a failure that retrying will not mend."""
    return reply._replace(ok=False, error=_error("InvalidResponse", message, False))


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_from(response: requests.Response, data: Any) -> dict:
    """KPS and gateway errors keep their own codes; other bodies (HTML pages) become HTTP.<status>."""
    retryable = response.status_code in RETRYABLE_STATUS
    if isinstance(data, dict):
        nested = data.get("error") if isinstance(data.get("error"), dict) else {}
        code = data.get("error_code") or nested.get("code")
        message = data.get("error_msg") or nested.get("message") or ""
        if isinstance(code, str) and code:
            return _error(code, str(message)[:500], retryable)
    text = " ".join(_TAGS.sub(" ", response.text).split())[:200]
    return _error(
        f"HTTP.{response.status_code}",
        f"HTTP {response.status_code} {response.reason or ''}".strip() + (f": {text}" if text else ""),
        retryable,
    )


def _request_id(response: requests.Response, data: Any) -> str | None:
    value = response.headers.get("X-Request-Id")
    if not value and isinstance(data, dict):
        value = data.get("request_id")
    return value if isinstance(value, str) and value else None


class ApiClient:
    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        policy: RetryPolicy,
        deadline: Deadline,
    ) -> None:
        self._endpoint = endpoint
        self._credentials = credentials
        self._policy = policy
        self._deadline = deadline
        self._session = shared_session()
        self._proxies = proxies_for(endpoint)

    def call(self, method: str, path: str, query: list[tuple[str, str]] | None = None) -> Reply:
        """Retries 429, 5xx, timeouts and dropped connections; never waits past the deadline."""
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
            if self._deadline.remaining() < MIN_ATTEMPT_SECONDS:
                return self._out_of_time(attempt, reply)
            if attempt >= self._policy.max_attempts:
                return reply
            wait = reply.retry_after if reply.retry_after is not None else self._policy.backoff(attempt)
            if wait > self._deadline.remaining() - MIN_ATTEMPT_SECONDS:
                return self._out_of_time(attempt, reply)
            time.sleep(wait)

    def _attempt(self, method: str, path: str, query: list[tuple[str, str]], timeout: float, attempt: int) -> Reply:
        url, headers = self._credentials.authorize(method, self._endpoint, path, query)
        try:
            # No redirects: a redirect must never carry the credentials to another place.
            response = self._session.request(
                method, url, headers=headers, timeout=timeout, allow_redirects=False, proxies=self._proxies
            )
        except requests.Timeout:
            return Reply(False, None, None, attempt, _error("Timeout", f"no answer within {timeout:.2f} s", True))
        except requests.ConnectionError as exc:
            return Reply(
                False,
                None,
                None,
                attempt,
                _error("ConnectionError", f"connection failed or dropped ({type(exc).__name__})", True),
            )
        except requests.RequestException as exc:
            return Reply(False, None, None, attempt, _error("RequestError", type(exc).__name__, False))
        data = _json(response) if response.content else None
        request_id = _request_id(response, data)
        if 200 <= response.status_code < 300:
            return Reply(True, response.status_code, request_id, attempt, data=data)
        error = _error_from(response, data)
        wait = _retry_after(response.headers.get("Retry-After")) if error["retryable"] else None
        return Reply(False, response.status_code, request_id, attempt, error, retry_after=wait)

    @staticmethod
    def _out_of_time(attempts: int, last: Reply | None) -> Reply:
        detail = f"; last error: {last.error['code']}" if last is not None and last.error else ""
        return Reply(
            False,
            last.http_status if last else None,
            last.kps_request_id if last else None,
            attempts,
            _error(
                "DeadlineExceeded", f"the invocation's time budget ran out after {attempts} attempt(s){detail}", True
            ),
        )
