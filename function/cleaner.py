"""One invocation, end to end: event, settings, targets, credentials, the KPS calls, the payload.

Every outcome, a rejection or a bug included, ends in the normalized payload (``payload.py``).
"""

from __future__ import annotations

import contextvars
import random
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor  # free: structlog's asyncio has imported it
from typing import Any, Callable

from . import logs, metrics
from .budget import ByteBudget, Deadline
from .context import context_value
from .credentials import Credentials, resolve_credentials
from .errors import Rejected, SweepFailed
from .payload import (
    ALLOW,
    HTTP_METHODS,
    apig_response,
    build_payload,
    internal_error_result,
    out_of_time_result,
    within_answer_limit,
)
from .settings import SETTINGS, Settings, SettingSource, Target, default_of, load_settings
from .targets import Sweep, dry_run_requested, resolve_targets
from .triggers import TriggerEvent, read_event

log = logs.logger
_AGENCY_SECRETS = ("getSecurityAccessKey", "getSecuritySecretKey", "getSecurityToken", "getToken")


class CleanupFailed(RuntimeError):
    """Raised, with ``KPS_RAISE_ON_FAILURE=true``, so that FunctionGraph counts the invocation as an error."""


class _Instance:
    cold_start = True


def _known_secrets(source: SettingSource, context: Any) -> list[str]:
    """The function's own credentials, registered before the first line is logged, for the text copied
    from servers. A caller's headers are not among them: no line or payload carries a header value."""
    return [source.raws[s.name] for s in SETTINGS if s.secret] + [context_value(context, m) for m in _AGENCY_SECRETS]


def _clean_one(
    target: Target,
    settings: Settings,
    credentials: Credentials,
    deadline: Deadline,
    dry_run: bool,
    *,
    budget: ByteBudget,
    deletes: Executor,
) -> dict[str, Any]:
    """Whatever happens while cleaning this target, a bug or a reply nothing could parse included,
    ends as this target's result: the other targets' results, DELETEs done included, stand."""
    started = time.monotonic()
    try:
        from .kps_client import clean_target

        result = clean_target(target, settings, credentials, deadline, dry_run, budget=budget, deletes=deletes)
    except Exception as exc:  # one target's fault is that target's error, never the invocation's
        log.exception("target failed unexpectedly", project_id=target.project_id, region=target.region)
        result = internal_error_result(target, started, exc)
    fields = {k: v for k, v in result.items() if k != "sample"}
    log.log(20 if result["ok"] else 40, "target done", **fields)
    return result


class _InThisThread(Executor):
    """Runs each job at once in the thread that submits it (which waits for its result at once: what the
    job raises, ``submit`` raises). The one DELETE of an invocation with one target and no selection
    needs no pool: handing it to a pool's new thread and back cost more than the rest of a warm
    invocation's own Python."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _clean_all(
    targets: list[Target], settings: Settings, credentials: Credentials, deadline: Deadline, dry_run: bool
) -> list[dict[str, Any]]:
    """Targets run concurrently on a bounded pool sharing one deadline and one byte budget for the tasks
    they keep; results keep the targets' order. Each task runs in a copy of the invocation's context,
    so its log lines carry the invocation's keys. A target not started when the deadline has passed is
    answered ``DeadlineExceeded`` without a client, a call or a line of its own (one line names them).
    Every DELETE of all targets, DeleteFailedTask and DeleteAllFailedTask alike, runs on one pool of
    KPS_CONCURRENCY threads (started only when one is submitted); the one DELETE of one target without
    a selection runs in the invocation's thread."""
    from .kps_client import MAX_KEPT_BYTES

    budget = ByteBudget(MAX_KEPT_BYTES)
    late: list[Target] = []

    def clean(target: Target) -> dict[str, Any]:
        if deadline.remaining() <= 0:
            late.append(target)
            return out_of_time_result(target)
        return _clean_one(target, settings, credentials, deadline, dry_run, budget=budget, deletes=deletes)

    one_delete = len(targets) == 1 and targets[0].select is None
    with _InThisThread() if one_delete else ThreadPoolExecutor(max_workers=settings.concurrency) as deletes:
        if len(targets) <= 1:
            results = [clean(t) for t in targets]
        else:
            with ThreadPoolExecutor(max_workers=min(settings.concurrency, len(targets))) as pool:
                futures = [pool.submit(contextvars.copy_context().run, clean, t) for t in targets]
                results = [future.result() for future in futures]
    if late:
        log.error(
            "targets not started",
            reason="the invocation's time ran out before they started",
            count=len(late),
            project_ids=[t.project_id for t in late[:20]],
        )
    return results


def _run(
    event: Any, context: Any, incoming: TriggerEvent, settings: Settings, deadline: Deadline
) -> tuple[bool, list[dict]]:
    if settings.log_event:  # its structure only (keys, types, sizes): never a value
        log.info("event received", incoming_event=logs.event_structure(event))
    _check_method(incoming)
    if incoming.error is not None:
        raise incoming.error
    dry_run = _dry_run(incoming, settings)
    wanted = resolve_targets(incoming.field_sets, settings)
    credentials = resolve_credentials(settings, context)
    log.debug("credentials chosen", auth=credentials.source)
    if incoming.is_http:  # counted from the handler's first line too
        deadline = deadline.capped(settings.http_budget_seconds)
    if isinstance(wanted, Sweep):
        from .sweep import sweep_targets

        wanted = [t._replace(select=wanted.select) for t in sweep_targets(settings, credentials, deadline)]
    return dry_run, _clean_all(wanted, settings, credentials, deadline, dry_run)


def _check_method(incoming: TriggerEvent) -> None:
    """Over HTTP only GET, POST and DELETE mean something; any other method is refused 405 before
    anything else about the request is read."""
    if incoming.is_http and incoming.http_method not in HTTP_METHODS:
        named = f"method {incoming.http_method}" if incoming.http_method else "this method"  # never the caller's
        raise Rejected("MethodNotAllowed", f"{named} is not allowed; use {ALLOW}")


def _dry_run(incoming: TriggerEvent, settings: Settings) -> bool:
    """Over HTTP the method decides: GET only reads (a GET asking ``dry_run: false`` is refused rather
    than quietly not deleting), POST and DELETE clean, anything else is refused 405. Elsewhere a dry
    run when the setting or any message asks for one."""
    forced = HTTP_METHODS[incoming.http_method] if incoming.is_http else False
    requested = dry_run_requested(incoming, settings)
    if forced and any(f.get("dry_run") is False for f in incoming.field_sets):
        raise Rejected("InvalidEvent", "GET is a dry run; send POST or DELETE to clean (dry_run: false)")
    return forced or requested


def _asked_for_dry_run(incoming: TriggerEvent, settings: Settings) -> bool:
    """For a refused request's payload: whether it was a dry run, if that much could be read."""
    if incoming.is_http and HTTP_METHODS.get(incoming.http_method):
        return True
    return dry_run_requested(incoming, settings)


def _request_error(exc: Exception) -> dict[str, str]:
    if isinstance(exc, Rejected):
        return {"code": exc.code, "message": logs.scrub(exc.message)}  # as the "rejected" line masks it
    if isinstance(exc, SweepFailed):
        log.error("project listing failed", error=exc.reply.error, http_status=exc.reply.http_status)
        deadline = (exc.reply.error or {}).get("code") == "DeadlineExceeded"
        return {"code": "DeadlineExceeded" if deadline else "ProjectListingFailed", "message": str(exc)}
    log.exception("internal error", error_type=type(exc).__name__)
    return {"code": "InternalError", "message": "unexpected error; see the function's logs"}


def _start_logging(
    context: Any,
    settings: Settings | None,
    incoming: TriggerEvent,
    *,
    request_id: str,
    cold_start: bool,
) -> None:
    level = settings.log_level if settings else "INFO"
    if settings and settings.log_sample_rate and random.random() < settings.log_sample_rate:
        level = "DEBUG"
    logs.start_invocation(
        level,
        service=settings.service_name if settings else default_of("SERVICE_NAME"),
        function_name=context_value(context, "getFunctionName", "RUNTIME_FUNC_NAME"),
        function_version=context_value(context, "getVersion", "RUNTIME_FUNC_VERSION"),
        function_request_id=request_id,
        cold_start=cold_start,
        trigger=incoming.trigger,
        correlation_id=incoming.correlation_id or request_id,
    )


def handle(event: Any, context: Any) -> dict[str, Any]:
    """The function's whole behaviour; ``handler.handler`` only calls this."""
    deadline = Deadline.from_context(context)  # one clock, from the first line
    started = time.monotonic()
    cold_start, _Instance.cold_start = _Instance.cold_start, False
    request_id = context_value(context, "getRequestID")
    source = SettingSource(context)
    logs.use_secrets(_known_secrets(source, context))  # before the event is read: its errors quote it
    try:
        incoming = read_event(event)
    except Exception as exc:  # noqa: BLE001 - a bug in the reader: raised in _run's try, an InternalError payload
        incoming = TriggerEvent("direct", [], error=exc)
    settings: Settings | None = None
    error: dict[str, str] | None = None
    dry_run, results = False, []
    try:
        settings = load_settings(source)
    except Rejected as rejection:
        error = _request_error(rejection)
    _start_logging(context, settings, incoming, request_id=request_id, cold_start=cold_start)
    if settings is not None:
        try:
            dry_run, results = _run(event, context, incoming, settings, deadline)
        except Exception as exc:  # noqa: BLE001 - every outcome, a bug included, ends in the payload
            error = _request_error(exc)
            dry_run = _asked_for_dry_run(incoming, settings)
    payload = build_payload(
        trigger=incoming.trigger,
        request_id=request_id,
        dry_run=dry_run,
        results=results,
        duration_ms=(time.monotonic() - started) * 1000,
        error=error,
    )
    payload = within_answer_limit(payload, http=incoming.is_http)
    if "samples_limited" in payload:
        log.warning("samples cut", reason="the answer must stay under 6 MB", count=payload["samples_limited"])
    if payload["status"] == "rejected":
        log.warning("rejected", code=error["code"], reason=error["message"])  # type: ignore[index]
    metrics.emit(payload)
    if incoming.is_http:
        return apig_response(payload)
    if settings is not None and settings.raise_on_failure and not payload["ok"]:
        log.error("raising on failure", payload=payload)
        codes = sorted(
            {(r["error"] or {}).get("code") for r in results if not r["ok"]} | {(error or {}).get("code")} - {None}
        )
        raise CleanupFailed(logs.scrub(f"kps-failed-task-cleaner {payload['status']}: {', '.join(codes)}"))
    return payload
