"""Every setting, parsed and validated in one place.

A setting is read with ``context.getUserData(name)`` first, because FunctionGraph hands *encrypted*
environment variables only to that method, then from ``os.environ``. An empty value counts as unset.
``SETTINGS`` is the single table: the README's settings table is generated from it.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple
from urllib.parse import urlsplit

from .errors import Rejected
from .selection import Selection, parse_setting

PROJECT_ID = re.compile(r"[0-9a-f]{32}")
REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]{1,20}){1,4}")
MAX_CONCURRENCY = 32
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _got(raw: str) -> str:
    """A refused setting's value described, never quoted: a secret may be pasted into any setting, and a
    refusal reaches the payload and the logs."""
    return f"got {len(raw)} characters" if raw.strip() else "got only blanks"


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true or false, {_got(raw)}")


def _between(convert: Callable[[str], float], low: float, high: float, what: str) -> Callable[[str], Any]:
    """A parser for a number in [low, high]; ``what`` names the kind in the error message."""

    def parse(raw: str) -> Any:
        try:
            value = convert(raw.strip())
        except ValueError:  # int()'s and float()'s messages quote the value
            value = math.nan
        if not low <= value <= high:
            raise ValueError(f"expected {what} from {low:g} to {high:g}, {_got(raw)}")
        return value

    return parse


def _project_id(raw: str) -> str:
    if not PROJECT_ID.fullmatch(raw):
        raise ValueError("expected 32 lower-case hexadecimal characters")
    return raw


def _region(raw: str) -> str:
    if not REGION.fullmatch(raw):
        raise ValueError(f"expected a region name such as cn-north-4, {_got(raw)}")
    return raw


def _project_ids(raw: str) -> frozenset[str]:
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if not entries:
        raise ValueError("the list names no project ID")
    for number, entry in enumerate(entries, 1):
        if not PROJECT_ID.fullmatch(entry):
            raise ValueError(f"entry {number} is not a project ID (32 lower-case hexadecimal characters)")
    return frozenset(entries)


def _regions(raw: str) -> frozenset[str]:
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if not entries:
        raise ValueError("the list names no region")
    return frozenset(_region(entry) for entry in entries)


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level == "WARN":
        level = "WARNING"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, {_got(raw)}")
    return level


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(raw: str, name: str = "KPS_ENDPOINT") -> str:
    """Returns ``scheme://host[:port]``; plain HTTP only to this machine (the emulator)."""
    try:
        parts = urlsplit(raw.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:  # its message quotes the URL's parts
        raise Rejected("InvalidSetting", f"{name}: not a valid URL (its host or port cannot be read)") from None
    if parts.scheme not in ("https", "http") or not host:
        raise Rejected("InvalidSetting", f"{name}: expected https://host[:port], got another scheme or no host")
    extra = {
        "a user name": parts.username,
        "a password": parts.password,
        "a path": parts.path not in ("", "/"),
        "a query": parts.query,
        "a fragment": parts.fragment,
    }
    if any(extra.values()):
        what = " and ".join(part for part, present in extra.items() if present)
        raise Rejected("InvalidSetting", f"{name}: only scheme, host and port are allowed, got a URL with {what}")
    if parts.scheme == "http" and not is_loopback(host):
        raise Rejected("InsecureEndpoint", f"{name}: plain http:// is only allowed to a loopback host")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _str(raw: str) -> str:
    return raw


SWEEP = "all"


class Target(NamedTuple):
    project_id: str
    region: str | None
    select: Selection | None = None  # which tasks to delete one by one; None: DeleteAllFailedTask


def parse_targets(raw: str) -> tuple[Target, ...] | str:
    """`all` (exactly, as the event's ``targets``), or `region:project_id` entries separated by commas."""
    if raw.strip() == SWEEP:
        return SWEEP
    targets: dict[Target, None] = {}
    for number, entry in enumerate((e.strip() for e in raw.split(",") if e.strip()), 1):
        region, _, project_id = entry.rpartition(":")
        if not region:
            raise ValueError(f'entry {number} is not region:project_id (a sweep is exactly "all")')
        try:
            targets[Target(_project_id(project_id), _region(region))] = None
        except ValueError as exc:
            raise ValueError(f"entry {number}: {exc}") from None
    if not targets:
        raise ValueError("expected region:project_id entries or all")
    return tuple(targets)


class Setting(NamedTuple):
    name: str
    default: str
    parse: Callable[[str], Any]
    meaning: str
    secret: bool = False

    @property
    def attribute(self) -> str:
        return self.name.lower().replace("kps_", "", 1).replace("huaweicloud_sdk_", "", 1)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "KPS_PROJECT_ID",
        "",
        _project_id,
        "Project to clean when neither the event nor `KPS_TARGETS` names one. Falls back to `RUNTIME_PROJECT_ID`.",
    ),
    Setting(
        "KPS_REGION",
        "",
        _region,
        "Region when the event names none, e.g. `cn-north-4`. Chooses the host `kms.{region}.myhuaweicloud.com`.",
    ),
    Setting(
        "KPS_ENDPOINT",
        "",
        parse_endpoint,
        "Overrides the KPS endpoint (`https://host[:port]`). `http://` only to loopback (the emulator).",
    ),
    Setting(
        "KPS_TARGETS",
        "",
        parse_targets,
        "Several targets, `region:project_id,region:project_id`, or `all` to sweep every project the credentials "
        "can see. Used when the event names no project.",
    ),
    Setting(
        "KPS_REGIONS",
        "",
        _regions,
        "Comma-separated regions a sweep (`all`) is limited to, within the regions that offer KPS "
        "(`function/regions.py`).",
    ),
    Setting(
        "KPS_IAM_ENDPOINT",
        "https://iam.myhuaweicloud.com",
        lambda raw: parse_endpoint(raw, "KPS_IAM_ENDPOINT"),
        "The IAM endpoint a sweep lists projects from (`GET /v3/auth/projects`).",
    ),
    Setting(
        "KPS_CONCURRENCY",
        "8",
        _between(int, 1, MAX_CONCURRENCY, "a whole number"),
        "Targets cleaned at once (1 to 32).",
    ),
    Setting(
        "KPS_DRY_RUN",
        "false",
        parse_bool,
        "`true`: list and count the failed tasks, send no DELETE (`outcome: would_delete`).",
    ),
    Setting(
        "KPS_COUNT_BEFORE_DELETE",
        "true",
        parse_bool,
        "List before deleting so `failed_task_count` says how many were cleared; `false` skips the listing.",
    ),
    Setting(
        "KPS_RECORD_DELETED",
        "true",
        parse_bool,
        "`true`: log which tasks each DELETE removed (`tasks deleted` lines; `would delete` for a dry run); "
        "`false` logs no record.",
    ),
    Setting(
        "KPS_SELECT",
        "",
        parse_setting,
        'A selection (JSON object, e.g. `{"older_than_hours": 168}`): delete only the tasks it selects, one '
        "by one (DeleteFailedTask), and keep the rest. An event's `select` replaces it. See docs/selective-cleanup.md.",
    ),
    Setting(
        "KPS_LIST_PAGE_SIZE",
        "1000",
        _between(int, 1, 1000, "a whole number"),
        "`limit` of each ListFailedTask page (1 to 1000).",
    ),
    Setting(
        "KPS_RAISE_ON_FAILURE",
        "false",
        parse_bool,
        "`true`: a non-HTTP invocation that does not succeed raises after logging its payload, so FunctionGraph's "
        "error metrics and alarms see it (async invocations are retried; timer runs are synchronous and are not). "
        "HTTP callers still get their response.",
    ),
    Setting(
        "KPS_ALLOWED_PROJECT_IDS",
        "",
        _project_ids,
        "Comma-separated allow-list of project IDs. When set, any other target is rejected `ProjectNotAllowed`.",
    ),
    Setting(
        "KPS_MAX_ATTEMPTS",
        "4",
        _between(int, 1, 10, "a whole number"),
        "Attempts per KPS call, retries included (1 to 10).",
    ),
    Setting(
        "KPS_TIMEOUT_SECONDS",
        "10",
        _between(float, 0.1, 300, "seconds"),
        "Wall-clock bound of one whole attempt (resolution, connect, TLS, headers, body), in seconds; "
        "never more than the invocation has left.",
    ),
    Setting(
        "KPS_BACKOFF_BASE_SECONDS",
        "0.5",
        _between(float, 0, 30, "seconds"),
        "Base of the exponential backoff with full jitter between attempts (capped at 8 s a wait).",
    ),
    Setting(
        "KPS_HTTP_BUDGET_SECONDS",
        "55",
        _between(float, 1, 58, "seconds"),
        "Time budget of an API Gateway invocation (1 to 58 s): it answers within the smaller of this and the "
        "invocation's remaining time, so the caller gets the payload (504 `DeadlineExceeded` if KPS was too slow) "
        "before the gateway's backend timeout (at most 60 s) answers for it; the cap leaves 2 s for the payload "
        "to reach the gateway. `make expose` refuses a backend timeout not above the deployed value.",
    ),
    Setting("HUAWEICLOUD_SDK_AK", "", _str, "Access key for AK/SK signing (first credential source).", secret=True),
    Setting("HUAWEICLOUD_SDK_SK", "", _str, "Secret key paired with `HUAWEICLOUD_SDK_AK`.", secret=True),
    Setting(
        "HUAWEICLOUD_SDK_SECURITY_TOKEN", "", _str, "Security token, when the AK/SK pair is temporary.", secret=True
    ),
    Setting("KPS_AUTH_TOKEN", "", _str, "IAM token (second credential source).", secret=True),
    Setting("LOG_LEVEL", "INFO", _log_level, "`DEBUG`, `INFO`, `WARNING` or `ERROR`."),
    Setting(
        "LOG_SAMPLE_RATE",
        "0",
        _between(float, 0, 1, "a fraction"),
        "Fraction of invocations (0 to 1) logged at `DEBUG` whatever `LOG_LEVEL` says.",
    ),
    Setting("LOG_EVENT", "false", parse_bool, "`true`: log the incoming event (secrets redacted)."),
    Setting("SERVICE_NAME", "kps-failed-task-cleaner", _str, "The `service` key of every log line."),
    Setting(
        "RUNTIME_PROJECT_ID",
        "",
        _project_id,
        "Set by FunctionGraph: the function's own project, the last fallback for the project.",
    ),
)


_NAMES = frozenset(setting.name for setting in SETTINGS)


class SettingSource:
    """The raw settings of one invocation ("" when unset), each read once: ``context.getUserData`` first
    (encrypted variables), then the environment."""

    def __init__(self, context: Any, environ: Mapping[str, str] | None = None) -> None:
        self._get_user_data = getattr(context, "getUserData", None)
        environ = os.environ if environ is None else environ
        # One pass over the environment for the names it holds: a miss in os.environ raises twice (23
        # settings unset: 18 us, against 5 for the pass over 35 variables).
        present = _NAMES.intersection(environ)
        self.raws = {
            s.name: self._user_data(s.name) or (environ.get(s.name, "") if s.name in present else "") for s in SETTINGS
        }

    def _user_data(self, name: str) -> str:
        try:
            value = self._get_user_data(name) if self._get_user_data is not None else None
        except Exception:  # noqa: BLE001 - a broken context must not hide the environment
            value = None
        return value if isinstance(value, str) else ""


class Settings(NamedTuple):
    project_id: str | None
    region: str | None
    endpoint: str | None
    targets: tuple[Target, ...] | str | None
    regions: frozenset[str] | None
    iam_endpoint: str
    concurrency: int
    dry_run: bool
    count_before_delete: bool
    record_deleted: bool
    select: Selection | None
    list_page_size: int
    raise_on_failure: bool
    allowed_project_ids: frozenset[str] | None
    max_attempts: int
    timeout_seconds: float
    backoff_base_seconds: float
    http_budget_seconds: float
    ak: str
    sk: str
    security_token: str
    auth_token: str
    log_level: str
    log_sample_rate: float
    log_event: bool
    service_name: str
    runtime_project_id: str | None

    def __repr__(self) -> str:
        secrets = {s.attribute for s in SETTINGS if s.secret}
        shown = ", ".join(f"{k}={'***' if k in secrets and v else repr(v)}" for k, v in self._asdict().items())
        return f"Settings({shown})"


def default_of(name: str) -> str:
    return next(s.default for s in SETTINGS if s.name == name)


def load_settings(source: SettingSource) -> Settings:
    """Parses every setting; the first malformed one is rejected with its name in the message. The raw
    values are read on every invocation; parsing them is done once per distinct set (once per instance)."""
    return _parse(tuple(source.raws.values()))


@functools.lru_cache(maxsize=8)
def _parse(raws: tuple[str, ...]) -> Settings:
    values: dict[str, Any] = {}
    for setting, raw in zip(SETTINGS, raws):
        if not raw:
            values[setting.attribute] = setting.parse(setting.default) if setting.default else None
            continue
        try:
            values[setting.attribute] = setting.parse(raw)
        except ValueError as exc:
            raise Rejected("InvalidSetting", f"{setting.name}: {exc}") from None
    for secret in (s for s in SETTINGS if s.secret):
        values[secret.attribute] = values[secret.attribute] or ""
    return Settings(**values)
