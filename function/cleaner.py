"""One invocation, end to end: event, settings, targets, credentials, the KPS calls, the payload.

Every outcome, a rejection or a bug included, ends in the normalized payload (``payload.py``).
"""

from __future__ import annotations

import time
from typing import Any

from . import logs
from .budget import Deadline
from .credentials import Credentials, resolve_credentials
from .errors import Rejected
from .kps_client import KpsClient, RetryPolicy
from .payload import INTERNAL_ERROR, apig_response, build_payload, target_result
from .settings import SETTINGS, Settings, SettingSource, default_of, load_settings
from .targets import Target, dry_run_requested, endpoint_for, ignored_fields, resolve_targets
from .triggers import TriggerEvent, read_event

log = logs.logger
_AGENCY_SECRETS = ("getSecurityAccessKey", "getSecuritySecretKey", "getSecurityToken", "getToken")


class _Instance:
    cold_start = True


def _context_value(context: Any, method: str) -> str:
    getter = getattr(context, method, None)
    try:
        value = getter() if getter is not None else ""
    except Exception:  # noqa: BLE001 - identity is best effort
        value = ""
    return value if isinstance(value, str) else ""


def _known_secrets(source: SettingSource, context: Any) -> list[str]:
    """Every credential that could be in play, registered before the first line is logged."""
    from_settings = [source.get(s.name) for s in SETTINGS if s.secret]
    return from_settings + [_context_value(context, m) for m in _AGENCY_SECRETS]


def _loggable_event(event: Any, incoming: TriggerEvent) -> dict[str, Any]:
    """The event as logged: an API Gateway body is shown decoded (as fields) so redaction sees it;
    a direct event is its own fields, logged once."""
    if incoming.trigger == "direct":
        return {"incoming_event": event}
    if incoming.trigger == "apig" and isinstance(event, dict) and event.get("body"):
        event = {**event, "body": f"<{len(str(event['body']))} characters, logged decoded as fields>"}
    return {"incoming_event": event, "fields": incoming.field_sets}


def _clean(
    target: Target, settings: Settings, credentials: Credentials, deadline: Deadline, dry_run: bool
) -> dict[str, Any]:
    started = time.monotonic()
    if dry_run:
        result = target_result(target, "would_delete", None, (time.monotonic() - started) * 1000)
    else:
        policy = RetryPolicy(settings.max_attempts, settings.timeout_seconds, settings.backoff_base_seconds)
        client = KpsClient(endpoint_for(target, settings), credentials, policy, deadline)
        reply = client.delete_all_failed_tasks(target.project_id)
        result = target_result(target, "deleted", reply, (time.monotonic() - started) * 1000)
    log.log(
        20 if result["ok"] else 40,
        "target done",
        project_id=target.project_id,
        region=target.region,
        outcome=result["outcome"],
        http_status=result["http_status"],
        attempts=result["attempts"],
        kps_request_id=result["kps_request_id"],
        error=result["error"],
        duration_ms=result["duration_ms"],
    )
    return result


def _run(event: Any, context: Any, incoming: TriggerEvent, settings: Settings) -> tuple[bool, list[dict]]:
    if settings.log_event:
        log.info("event received", **_loggable_event(event, incoming))
    if incoming.error is not None:
        raise incoming.error
    dry_run = dry_run_requested(incoming.field_sets, settings)
    targets = resolve_targets(incoming.field_sets, settings)
    ignored = ignored_fields(incoming.field_sets)
    if ignored:
        log.info("ignored fields", fields=ignored)
    credentials = resolve_credentials(settings, context)
    log.debug("credentials chosen", auth=credentials.source)
    deadline = Deadline.from_context(context)
    return dry_run, [_clean(t, settings, credentials, deadline, dry_run) for t in targets]


def handle(event: Any, context: Any) -> dict[str, Any]:
    """The function's whole behaviour; ``handler.handler`` only calls this."""
    started = time.monotonic()
    cold_start, _Instance.cold_start = _Instance.cold_start, False
    request_id = _context_value(context, "getRequestID")
    source = SettingSource(context)
    incoming = read_event(event)
    settings: Settings | None = None
    error: dict[str, str] | None = None
    dry_run, results = False, []
    try:
        settings = load_settings(source)
    except Rejected as rejection:
        error = {"code": rejection.code, "message": rejection.message}
    logs.start_invocation(
        settings.log_level if settings else "INFO",
        _known_secrets(source, context),
        service=settings.service_name if settings else default_of("SERVICE_NAME"),
        function_request_id=request_id,
        cold_start=cold_start,
        trigger=incoming.trigger,
        correlation_id=incoming.correlation_id or request_id,
    )
    if settings is not None:
        try:
            dry_run, results = _run(event, context, incoming, settings)
        except Rejected as rejection:
            error = {"code": rejection.code, "message": rejection.message}
        except Exception as exc:
            log.exception("internal error", error_type=type(exc).__name__)
            error = {"code": INTERNAL_ERROR, "message": "unexpected error; see the function's logs"}
    if error is not None and error["code"] != INTERNAL_ERROR:
        log.warning("rejected", code=error["code"], reason=error["message"])
    payload = build_payload(
        trigger=incoming.trigger,
        request_id=request_id,
        dry_run=dry_run,
        results=results,
        duration_ms=(time.monotonic() - started) * 1000,
        error=error,
    )
    log.info(
        "invocation finished",
        status=payload["status"],
        ok=payload["ok"],
        dry_run=dry_run,
        targets=len(results),
        targets_failed=sum(not r["ok"] for r in results),
        error_code=error["code"] if error else None,
        duration_ms=payload["duration_ms"],
    )
    return apig_response(payload) if incoming.is_http else payload
