"""Structured logging: one strict-JSON object per line on stdout, at most ``MAX_LINE`` characters.

Lines are built from the function's own fields: a key not in ``FIELDS`` is dropped (and counted), and
each kept value is a scalar, an identifier the function produced (cut), or text (normalised, cut, then
masked). Nothing a caller sends reaches a line except as the function's own reading of it (a code, a
count, a validated project ID, the event's structure). The invocation's keys (service, function,
request, trigger, correlation ID: ``BOUND_KEYS``, in ``FIELDS`` too) are rendered once per invocation
and spliced into every line.

Masking is the last line of defence for text copied from servers (a KPS ``error_msg`` that echoes a
credential): ``mask`` finds every ``FRAGMENT``-character window of a secret or of its base64 forms, in
any case, by one hash lookup per position of a bounded text, plus a secret's first or last
``MIN_FRAGMENT``..``FRAGMENT - 1`` characters at a text's edges. Its cost is linear in the text's
length, whatever the number and length of the secrets (their windows are computed once per set).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import itertools
import json
import logging
import math
import re
import sys
import threading
import traceback
import unicodedata
from collections.abc import Iterable, Set
from contextvars import ContextVar
from typing import Any, NamedTuple

import structlog

REDACTED = "***"
MAX_DEPTH = 6
MAX_STRING = 1000
MAX_ITEMS = 50
# One line's bound, in characters of its JSON text (ASCII: non-ASCII is escaped). LTS takes a log event
# of up to 500 KB through ICAgent and 1 MB through its API (LTS "Basic Resource Constraints",
# support.huaweicloud.com/intl/en-us/productdesc-lts/lts-0717.html); 16 KiB keeps a line readable in
# the console and an invocation's log small, whatever an event or a server sends.
MAX_LINE = 16 * 1024
# Each key bound to every line of an invocation: at most 128 characters once masked and 256 bytes of
# JSON, so that the keys every line carries take under 2 KB.
MAX_BOUND, MAX_BOUND_BYTES = 128, 256
EXCEPTION_HEAD, EXCEPTION_TAIL = 1000, 3000  # a traceback keeps its first frames and its end
MESSAGE_PART = (MAX_STRING - 64) // 2  # an exception's message keeps its start and its end
MAX_SIGNATURES = 256  # the most recent request signatures an invocation masks (see _Secrets)
MIN_SECRET = 6  # shorter values are not real keys or tokens: masking them would garble every line
# A secret's cut-off beginning (at the end of a text) or end (at its start) this long is masked too; shorter,
# it could be ordinary text: 8 hex characters match by chance once in 4 billion.
MIN_FRAGMENT = 8
# Any run of this many characters of a secret (or of its base64 form), anywhere in a text and in any case,
# is masked: what is left of a secret that a server echoed cut, split, lower-cased or encoded.
FRAGMENT = 12
# A run of FRAGMENT characters holds a PROBE-character window starting at a multiple of FRAGMENT - PROBE:
# looking those up first (a quarter of the positions) tells a text with no run at all, the usual case.
PROBE = 8
LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40, "critical": 50}
LIBRARY_LOGGERS = ("urllib3", "requests", "huaweicloudsdkcore")

# The keys a line may carry, and how a string under each is taken: "id" is the function's own identifier
# or code (cut, not masked: the line's message, project IDs and regions the reader validated, outcomes,
# codes, KPS request IDs cleaned on entry; a library record's message is masked before); anything else is
# text (normalised, cut, masked). Numbers, booleans and null pass as they are; objects and lists are
# copied bounded, their strings as text.
_IDS = (
    "event level timestamp logger project_id region outcome kps_request_id code error_type error_code status auth "
    "metric_namespace operate_type task_error_code"
)
_TEXTS = (
    "message reason warning error_message exception incomplete_reason error incoming_event project_ids "
    "payload skipped_non_regional skipped_no_kps_in_region skipped_duplicate select kept"
)
_VALUES = (
    "ok http_status failed_task_count attempts duration_ms count record complete recorded part parts task_count "
    "dry_run succeeded targets targets_ok targets_failed tasks_deleted tasks_found listed line_truncated dropped_keys "
    "selected already_gone left unconfirmed tasks"
)
# The keys bound to every line of an invocation (``start_invocation``): its own, as ids, and the event's
# correlation ID, as text. A line's own fields never set them.
_BOUND_KEYS = "service function_name function_version function_request_id cold_start trigger correlation_id"
BOUND_KEYS = tuple(_BOUND_KEYS.split())
FIELDS = {
    **dict.fromkeys(BOUND_KEYS, "id"),
    "correlation_id": "text",
    **dict.fromkeys(_IDS.split(), "id"),
    **dict.fromkeys(_TEXTS.split(), "text"),
    **dict.fromkeys(_VALUES.split(), "value"),
}
FIRST_KEYS = ("level", "timestamp", "message")
_SET_BY_RENDER = (*FIRST_KEYS, *BOUND_KEYS)  # a line's own value is not kept
KEPT_KEYS = (*FIRST_KEYS, "logger", "code", "error_type", "error_message")  # kept when a line must shrink


class _Masker(NamedTuple):
    """A set of secrets, compiled once: every ``FRAGMENT``-character window of each, and of its base64
    forms, lower-cased; their first and last ``MIN_FRAGMENT``..``FRAGMENT - 1`` characters (for a
    secret cut at a text's edge); and the secrets too short for a window, masked whole."""

    windows: Set[str] = frozenset()
    probes: Set[str] = frozenset()  # every PROBE-character window: a text with none needs no scan
    heads: Set[str] = frozenset()
    tails: Set[str] = frozenset()
    short: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.windows or self.short)


_NO_SECRETS = _Masker()


class _Secrets:
    """The invocation's secrets: its credentials, compiled once and shared, and the signatures of the
    requests it signs, added by the signing thread before its request is sent (``add_secret``: as written,
    not encoded) into a masker of the invocation's own. One object per invocation, shared by the copies of
    its context its worker threads run in. At most ``MAX_SIGNATURES`` are kept (a selective cleanup signs
    one DELETE per task): past that a masker of the newest half is built aside and then published whole,
    so its size is bounded whatever the number of requests and a reader never sees it half filled. The
    last signature of each thread is always kept: a thread's call in flight is the last it signed, and its
    reply is masked before that thread signs again, so no signature is evicted while its call is open."""

    def __init__(self, credentials: _Masker) -> None:
        self.credentials = credentials
        self.published: tuple[_Masker, ...] = (credentials,)  # replaced whole, never refilled
        self._kept: dict[str, None] = {}  # the signatures in the published masker, oldest first
        self._last: dict[int, str] = {}  # each thread's last signature: its call in flight
        self.signed: set[str] = set()  # every signature made, whole (64 characters each: 20,000 hold ~2.5 MB)
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        secret = secret.lower()
        with self._lock:
            self.signed.add(secret)
            self._last[threading.get_ident()] = secret
            self._kept.pop(secret, None)
            self._kept[secret] = None
            if len(self.published) == 1 or len(self._kept) > MAX_SIGNATURES:
                newest = list(self._kept)[-(MAX_SIGNATURES // 2) :]
                self._kept = dict.fromkeys([*(set(self._last.values()) - set(newest)), *newest])
                fresh = _Masker(set(), set(), set(), set())
                _add_windows(fresh, list(self._kept))
                self.published = (self.credentials, fresh)
            else:  # into the published masker, its probes last: a reader that finds a probe finds its windows
                _add_windows(self.published[1], [secret])

    def maskers(self) -> tuple[_Masker, ...]:
        return self.published


# What the processors need to know about the current invocation. Context variables, like structlog's,
# so that invocations running at once in one instance (and their worker threads, which run in copies
# of the invocation's context) each keep their own.
_LEVEL: ContextVar[int] = ContextVar("kps_log_level", default=LEVELS["info"])
_MASKER: ContextVar[_Secrets | None] = ContextVar("kps_log_secrets", default=None)
_BOUND: ContextVar[str] = ContextVar("kps_log_bound", default="")
# The library loggers' level is process-wide: it is the lowest any invocation of this instance asked
# for, and each record is then kept or dropped by the level of the invocation that emitted it.
_library_level = [LEVELS["warning"]]


def _forms(secret: str) -> list[str]:
    """The secret, its hex form, and its base64 encodings (standard and URL-safe) at each of the three
    alignments it can take inside a longer encoded text, without the characters its neighbours would
    change."""
    raw = secret.encode("utf-8", "replace")
    forms = [secret, raw.hex()]
    for shift, skip in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()[skip:].rstrip("=")
        encoded = encoded[: len(encoded) - 3]  # the last group depends on what follows
        forms += [encoded, encoded.replace("+", "-").replace("/", "_")]
    return [form.lower() for form in forms if len(form) >= MIN_FRAGMENT]


def _add_windows(masker: _Masker, forms: list[str]) -> None:
    """Adds the windows, edges and then probes of a secret's ``forms`` to ``masker``'s sets (mutable ones):
    each set takes its new members in one update, the probes (which gate the window scan) last."""
    windows, probes, heads, tails = (part for part in masker[:4] if isinstance(part, set))
    windows.update([form[i : i + FRAGMENT] for form in forms for i in range(len(form) - FRAGMENT + 1)])
    heads.update([form[:k] for form in forms for k in range(MIN_FRAGMENT, min(FRAGMENT, len(form) + 1))])
    tails.update([form[-k:] for form in forms for k in range(MIN_FRAGMENT, min(FRAGMENT, len(form) + 1))])
    probes.update([form[i : i + PROBE] for form in forms for i in range(len(form) - PROBE + 1)])


@functools.lru_cache(maxsize=16)
def _compile(secrets: tuple[str, ...]) -> _Masker:
    masker = _Masker(set(), set(), set(), set())
    for secret in secrets:
        _add_windows(masker, _forms(secret))
    short = tuple(sorted((s for s in secrets if len(s) < FRAGMENT), key=len, reverse=True))
    return _Masker(*(frozenset(part) for part in masker[:4]), short)


def use_secrets(secrets: Iterable[str | None]) -> None:
    """Registers the credentials in use: from now on no text masked here can carry them. Starts the
    invocation's secret set, which ``add_secret`` grows."""
    values = tuple(sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET}))
    _MASKER.set(_Secrets(_compile(values) if values else _NO_SECRETS))


def add_secret(secret: str) -> None:
    """Adds a secret made during the invocation (a request's signature, which replays its request while
    its X-Sdk-Date is accepted): every text masked afterwards in the invocation, in any of its
    threads, is masked for it too. Outside an invocation, it starts a secret set of its own."""
    if len(secret) < FRAGMENT:
        return
    secrets = _MASKER.get()
    if secrets is None:
        secrets = _Secrets(_NO_SECRETS)
        _MASKER.set(secrets)
    secrets.add(secret)


_SURROGATE = re.compile("[\ud800-\udfff]")
# Default_Ignorable_Code_Point, from the Unicode Character Database's DerivedCoreProperties.txt
# (https://www.unicode.org/Public/UCD/latest/ucd/DerivedCoreProperties.txt, unchanged since 6.1):
# characters a reader's screen shows as nothing, so none may split a secret past the mask.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


_DROPPED = frozenset(("Cf", "Mn", "Me"))


def _unmarked(text: str) -> str:
    """``text`` without format characters, default-ignorable ones and combining marks (Mn, Me)."""
    return _IGNORABLE.sub("", "".join(c for c in text if unicodedata.category(c) not in _DROPPED))


def normalise(text: str) -> str:
    """Text as the function keeps it: format characters (Cf), default-ignorable ones (variation
    selectors, U+034F, the Hangul fillers) and combining marks (Mn, Me: a strike-through or an accent
    after each character of a token leaves it readable) dropped, before and after NFKD (which splits
    an accent off its letter and can make a filler), then composed (NFC: NFKC without the marks); lone
    surrogates (which no encoder takes) replaced by U+FFFD. ASCII is already so. Dropping the marks
    first keeps the decomposition linear (canonical ordering sorts each run of marks)."""
    if text.isascii():
        return text
    text = _unmarked(unicodedata.normalize("NFKD", _unmarked(text)))
    return _SURROGATE.sub("\ufffd", unicodedata.normalize("NFC", text))


def _lowered(text: str) -> str:
    """``text`` in lower case, one character for one (``İ`` lower-cases to two: it stays as it is)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


# A run of hex digits long enough to hold a request signature (64 of them, SDK-HMAC-SHA256).
_HEX_RUN = re.compile("[0-9a-fA-F]{64,}")


def mask(text: str, masker: _Masker | None = None) -> str:
    """``text`` (already normalised and bounded) with every piece of a secret in use (or of ``masker``'s)
    masked: any ``FRAGMENT``-character window of one or of its base64 forms, in any case; a cut-off
    beginning at its end or end at its start; a short secret whole. One hash lookup per position."""
    if masker is not None:
        return _masked(text, masker)
    secrets = _MASKER.get()
    if secrets is None:
        return text
    if secrets.signed:
        text = _whole_signatures(text, secrets.signed)
    for each in secrets.maskers():
        text = _masked(text, each)
    return text


def _whole_signatures(text: str, signed: set[str]) -> str:
    """``text`` with every signature the invocation made masked where it stands whole, however old (the
    windows keep only the newest ``MAX_SIGNATURES``): a lookup per position of each 64-hex-digit run."""
    spans = []
    for run in _HEX_RUN.finditer(text):
        digits = run.group().lower()
        spans += [
            (run.start() + i, run.start() + i + 64) for i in range(len(digits) - 63) if digits[i : i + 64] in signed
        ]
    return _redacted(text, spans)


def _masked(text: str, masker: _Masker) -> str:
    if not masker or len(text) < MIN_FRAGMENT:
        return text
    lowered = _lowered(text)
    windows, last = masker.windows, len(text) - FRAGMENT + 1
    step = FRAGMENT - PROBE
    if masker.probes.isdisjoint(lowered[i : i + PROBE] for i in range(0, last + step, step)):
        spans = []
    else:
        spans = [(i, i + FRAGMENT) for i in range(last) if lowered[i : i + FRAGMENT] in windows]
    for k in range(MIN_FRAGMENT, min(FRAGMENT, len(text) + 1)):
        if lowered[-k:] in masker.heads:
            spans.append((len(text) - k, len(text)))
        if lowered[:k] in masker.tails:
            spans.append((0, k))
    for secret in masker.short:
        found = text.find(secret)
        while found >= 0:
            spans.append((found, found + len(secret)))
            found = text.find(secret, found + len(secret))
    return _redacted(text, spans)


def _redacted(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span (overlapping ones merged) replaced by one ``REDACTED``."""
    if not spans:
        return text
    pieces, done = [], 0
    for start, end in sorted(spans):
        if start > done or not pieces:
            pieces += [text[done:start], REDACTED]
        done = max(done, end)
    return "".join([*pieces, text[done:]])


def shorten(text: str, most: int) -> str:
    """``text`` normalised, cut to ``most`` characters, then masked: a piece of a secret the cut went
    through is at the edge, where the edge rule finds it."""
    text = normalise(text)
    return mask(text) if len(text) <= most else mask(text[: max(0, most - 3)]) + "..."


def scrub(text: str) -> str:
    """``text`` masked (normalised and cut to ``MAX_STRING`` first: masking is bounded work)."""
    return shorten(text, MAX_STRING)


def _cut_middle(text: str, head: int, tail: int) -> str:
    """``text`` cut in its middle; each part masked on its own, so that a cut edge is a text's edge."""
    if len(text) <= head + tail:
        return text
    return f"{mask(text[:head])}\n... ({len(text) - head - tail} characters cut) ...\n{mask(text[-tail:])}"


def _copy(value: Any, depth: int = 0) -> Any:
    """A bounded copy of a value the function built: strings as text, keys too, at most ``MAX_ITEMS``
    items a collection and ``MAX_DEPTH`` levels; non-finite numbers as strings (strict JSON)."""
    if value is None or isinstance(value, (bool, int, float)):  # strict JSON: NaN and Infinity as strings
        return str(value) if isinstance(value, float) and not math.isfinite(value) else value
    if isinstance(value, str):
        return shorten(value, MAX_STRING)
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        copied = {shorten(str(k), 64): _copy(v, depth + 1) for k, v in itertools.islice(value.items(), MAX_ITEMS)}
        if len(value) > MAX_ITEMS:
            copied["..."] = f"{len(value) - MAX_ITEMS} more"
        return copied
    if isinstance(value, (list, tuple)):
        return [_copy(v, depth + 1) for v in value[:MAX_ITEMS]] + (
            [f"... {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else []
        )
    return shorten(f"<{type(value).__name__}>", 64)


def _own_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Only the keys in ``FIELDS``, each value taken by its kind; the others are dropped and counted.
    A line's first keys are its own (a caller's ``level``, ``timestamp`` or ``message`` is not kept)."""
    exception = fields.pop("exception", None)
    kept: dict[str, Any] = {}
    dropped = 0
    for key, value in fields.items():
        kind = FIELDS.get(key)
        if kind is None:
            dropped += 1
        elif value is None or type(value) in (bool, int):
            kept[key] = value
        elif kind == "id" and isinstance(value, str):
            kept[key] = value[:MAX_STRING]
        else:
            kept[key] = _copy(value)
    for key in _SET_BY_RENDER:
        kept.pop(key, None)
    if exception is not None:
        kept["exception"] = mask(_cut_middle(normalise(str(exception)), EXCEPTION_HEAD, EXCEPTION_TAIL))
    if dropped:
        kept["dropped_keys"] = dropped
    return kept


def _with_exception(fields: dict[str, Any], exc_info: Any) -> None:
    """The traceback, cut in the middle so that its end (the exception's type and message) stays,
    and the type and message on their own keys, which a line never drops."""
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or exc_info[1] is None:
        return
    exc = exc_info[1]
    fields["exception"] = "".join(traceback.format_exception(*exc_info))
    fields.setdefault("error_type", type(exc).__name__)
    message = normalise(str(exc))
    fields.setdefault("error_message", mask(_cut_middle(message, MESSAGE_PART, MESSAGE_PART)))


# One encoder for every line: ``json.dumps`` with options builds a new one per call.
_dumps = json.JSONEncoder(allow_nan=False, default=repr).encode


def _shrunk(value: Any, most: int, items: int) -> Any:
    """``value`` with every string cut to ``most`` characters (a traceback in its middle) and every
    collection to ``items``: strings are masked already, so cutting them is safe."""
    if isinstance(value, str):
        return value if len(value) <= most else _cut_middle(value, most // 4, most - most // 4)
    if isinstance(value, dict):
        return {k[:most]: _shrunk(v, most, items) for k, v in list(value.items())[:items]}
    if isinstance(value, list):
        return [_shrunk(v, most, items) for v in value[:items]]
    return value


def _own_json(fields: dict, room: int) -> str:
    """The line's own fields as JSON members, within ``room`` characters: a line too long sheds detail
    (shorter strings, fewer items, then every key but ``KEPT_KEYS``) and says how long it was."""
    text = _dumps(fields)[1:-1]
    if len(text) <= room:
        return text
    full = len(text)
    for most, items in ((400, 20), (100, 5), (20, 2)):
        shrunk = {k: (v if k in KEPT_KEYS else _shrunk(v, most, items)) for k, v in fields.items()}
        text = _dumps({**shrunk, "line_truncated": full})[1:-1]
        if len(text) <= room:
            return text
    kept = {k: _shrunk(fields[k], 512 if k == "error_message" else 128, 2) for k in KEPT_KEYS if k in fields}
    return _dumps({**kept, "line_truncated": full})[1:-1]


def render(method: str, message: Any, fields: dict[str, Any]) -> str:
    """The one renderer of every line, the function's and the libraries' (``fields`` is consumed):
    empty when the invocation's level drops it (the record of what was deleted, ``record=True``, is
    kept whatever the level); else strict JSON: the level, the timestamp, the message, the
    invocation's keys (rendered once, at its start), then the line's own fields, never more than
    ``MAX_LINE`` in all and never cut into invalid JSON."""
    if LEVELS.get(method, 20) < _LEVEL.get() and fields.get("record") is not True:
        return ""
    exc_info = fields.pop("exc_info", None)
    if exc_info:
        _with_exception(fields, exc_info)
    timestamp = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    text = message[:MAX_STRING] if isinstance(message, str) else _copy(message)
    head = f'"level": "{method}", "timestamp": "{timestamp}", "message": {_dumps(text)}'  # at most ~6 KB
    bound = _BOUND.get()
    own = _own_json(_own_fields(fields), MAX_LINE - len(head) - len(bound) - 8)
    return "{" + ", ".join(p for p in (head, bound, own) if p) + "}"


_WRITING = threading.Lock()


def write(line: str) -> None:
    """Prints a line, to whatever ``sys.stdout`` is at call time (FunctionGraph collects stdout into LTS),
    whole: a text stream passes a long text to its buffer in pieces, which another thread's would cut."""
    with _WRITING:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _rendered(_: Any, method: str, event_dict: dict) -> str:
    """structlog's one processor: the line ``render`` makes, or none."""
    line = render(method, event_dict.pop("event", ""), event_dict)
    if not line:
        raise structlog.DropEvent
    return line


class _StdoutLogger:
    """structlog's logger: writes each rendered line."""

    def msg(self, message: str) -> None:
        write(message)

    debug = info = warning = warn = error = critical = exception = msg


class _StdoutHandler(logging.Handler):
    """Renders stdlib records (requests, urllib3, huaweicloudsdkcore) as the same JSON lines, with a
    ``logger`` key, if the invocation that emitted the record (its thread's context) logs at that level.
    A line carries the library's own text only: the record's format (``record.msg``, masked too, in case a
    library built it), never its arguments, and an exception's type, never its message or traceback:
    those quote what a server sent, in forms (a repr's escapes) the mask does not read."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < _LEVEL.get():
            return
        try:
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["error_type"] = record.exc_info[0].__name__
            text = record.msg if isinstance(record.msg, str) else f"<{type(record.msg).__name__}>"
            line = render(record.levelname.lower(), shorten(text, MAX_STRING), fields)
        except Exception:  # noqa: BLE001 - logging must never break the invocation
            self.handleError(record)
            return
        if line:
            write(line)


def _configure() -> None:
    structlog.configure(processors=[_rendered], logger_factory=lambda *_: _StdoutLogger())
    handler = _StdoutHandler()
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.propagate = False
        library.setLevel(_library_level[0])


_configure()
logger = structlog.get_logger().bind()  # bound once: the lazy proxy would bind again on every line


def _bound_key(value: Any, masked: bool) -> Any:
    """A key bound to every line: at most ``MAX_BOUND`` characters and ``MAX_BOUND_BYTES`` of JSON, and
    masked when the event chose it (a correlation ID)."""
    if not isinstance(value, str):
        return value if value is None or isinstance(value, (bool, int)) else f"<{type(value).__name__}>"
    text = shorten(value, MAX_BOUND) if masked else value[:MAX_BOUND]
    if text.isascii() and 2 * len(text) + 2 <= MAX_BOUND_BYTES:  # its JSON fits, every character escaped
        return text
    while len(_dumps(text)) > MAX_BOUND_BYTES:
        text = text[: len(text) // 2]
    return text


def start_invocation(level: str, secrets: Iterable[str | None] | None = None, **keys: Any) -> None:
    """Resets the per-invocation state, so nothing of the previous invocation leaks into this one
    (``secrets`` as ``use_secrets``; None: those the invocation registered already), and renders the keys
    bound to every line once, bounded (``_bound_key``): the function's own (service, function, request,
    trigger) and the event's ``correlation_id``, masked (when it is not the request ID, which every line
    carries as it is)."""
    unlisted = sorted(set(keys) - set(BOUND_KEYS))
    if unlisted:  # the allow-list is the list of what a line carries
        raise ValueError(f"keys not in logs.BOUND_KEYS: {unlisted}")
    number = LEVELS[level.lower()]
    if number < _library_level[0]:  # setLevel clears every logger's cache: only when it goes lower
        _library_level[0] = number
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(number)
    _LEVEL.set(number)
    if secrets is not None:
        use_secrets(secrets)
    request_id = keys.get("function_request_id")
    bound = {k: _bound_key(v, FIELDS[k] == "text" and v != request_id) for k, v in keys.items()}
    _BOUND.set(_dumps(bound)[1:-1])


# Names an event's structure shows (LOG_EVENT=true): the request fields and the envelope keys of the
# FunctionGraph triggers. Any other key is shown only by its length: a caller's key is the caller's text.
_EVENT_KEYS = (
    "project_id region targets dry_run select body headers httpMethod path pathParameters queryStringParameters "
    "isBase64Encoded requestContext resource trigger_type trigger_name user_event time record records smn "
    "message messages events data data_base64 event_version event_subscription_urn topic_urn type subject "
    "timestamp message_id source id specversion datacontenttype event_source region_id cts kafka dms"
)
EVENT_KEYS = frozenset(_EVENT_KEYS.split())


def event_structure(value: Any, depth: int = 0) -> Any:
    """What ``LOG_EVENT=true`` logs: the event's shape (known keys by name, types, sizes), never a value."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return f"<str {len(value)}>"
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        shown = {}
        for index, (key, item) in enumerate(itertools.islice(value.items(), MAX_ITEMS)):
            size = f"{len(key)} characters" if isinstance(key, str) else "not a string"  # never str() a key
            name = key if key in EVENT_KEYS else f"<key {index}: {size}>"
            shown[name] = event_structure(item, depth + 1)
        if len(value) > MAX_ITEMS:
            shown["..."] = f"{len(value) - MAX_ITEMS} more keys"
        return shown
    if isinstance(value, list):
        items = [event_structure(v, depth + 1) for v in value[:5]]
        return items + ([f"... {len(value) - 5} more items"] if len(value) > 5 else [])
    return f"<{type(value).__name__}>"
