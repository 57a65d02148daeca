"""The KPS operations on one target: list (every page), count, and DeleteAllFailedTask.

KPS deletes blindly and says nothing about what it removed, so the count, the sample and the record
(``record.py``) come from listing first. A count is exact or it is ``None`` with a warning saying why.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from . import record
from .api import ApiClient, Reply, RetryPolicy, invalid_response
from .budget import Deadline
from .credentials import Credentials
from .logs import logger as log
from .payload import target_result
from .settings import Settings, Target
from .targets import endpoint_for

SAMPLE_SIZE = 50
MAX_PAGES = 10_000
# Tasks kept per target (for the sample, the record and spotting repeats): past it the listing stops,
# the count is null and the record says it is incomplete. About 0.6 KB a task: 12 MB at most.
MAX_LISTED_TASKS = 20_000


def tasks_path(project_id: str) -> str:
    return f"/v3/{project_id}/failed-tasks"


class Listing(NamedTuple):
    reply: Reply  # the last page's answer, or the failure
    task_count: int | None  # None unless every task was read, each once
    tasks: list[dict[str, str | None]]  # distinct, in the order listed, bounded strings
    attempts: int
    warning: str | None = None  # why the count is None although every page answered

    @property
    def sample(self) -> list[dict[str, str | None]]:
        return self.tasks[:SAMPLE_SIZE]


def _page(reply: Reply, page_size: int) -> list[dict[str, Any]] | Reply:
    """The tasks of a page, or the failure it amounts to."""
    if not reply.ok:
        return reply
    tasks = reply.data.get("tasks") if isinstance(reply.data, dict) else None
    if not isinstance(tasks, list):
        return invalid_response(reply, "ListFailedTask answered without a tasks list")
    if len(tasks) > page_size:
        return invalid_response(reply, f"ListFailedTask answered {len(tasks)} tasks for limit {page_size}")
    if not all(isinstance(task, dict) for task in tasks):
        return invalid_response(reply, "ListFailedTask answered a task that is not an object")
    return tasks


def _absorb(page: list[dict[str, Any]], tasks: list[dict[str, str | None]], seen: set[str], offset: int) -> str | None:
    """Adds a page's new tasks to ``tasks``; returns why the listing must stop short, if it must."""
    repeated = False
    for task in map(record.task_of, page):
        task_id = task["task_id"]
        if task_id is not None and task_id in seen:
            repeated = True
            continue
        if len(tasks) == MAX_LISTED_TASKS:
            return f"more than {MAX_LISTED_TASKS} tasks: listing stopped there"
        if task_id is not None:
            seen.add(task_id)
        tasks.append(task)
    return f"ListFailedTask's page at offset {offset} repeated tasks already listed" if repeated else None


def list_failed_tasks(client: ApiClient, target: Target, page_size: int) -> Listing:
    """Follows limit/offset until ``total`` is read (or, without a total, a short page). Trusting
    ``total`` over the page length keeps the count right if KPS serves smaller pages than asked. A page
    that repeats a task already listed, an empty page before ``total``, or the page or task cap ends the
    listing with the count ``None`` and a warning: a count is exact or it is not given."""
    tasks: list[dict[str, str | None]] = []
    seen: set[str] = set()
    attempts, warning = 0, None
    reply = Reply(True, None, None, 0)
    for _ in range(MAX_PAGES):
        offset = len(tasks)
        reply = client.call("GET", tasks_path(target.project_id), [("limit", str(page_size)), ("offset", str(offset))])
        attempts += reply.attempts
        page = _page(reply, page_size)
        if isinstance(page, Reply):
            return Listing(page, None, tasks, attempts)
        total = reply.data.get("total")
        total = total if isinstance(total, int) and not isinstance(total, bool) else None
        if not page:
            if total is not None and offset < total:
                warning = f"ListFailedTask answered an empty page at offset {offset}, before its total {total}"
            break
        warning = _absorb(page, tasks, seen, offset)
        if warning is not None:
            break
        if len(tasks) >= total if total is not None else len(page) < page_size:
            break
    else:
        warning = f"ListFailedTask's total not reached after {MAX_PAGES} pages"
    if warning is not None:
        log.warning("count unknown", project_id=target.project_id, region=target.region, reason=warning)
    return Listing(reply, None if warning else len(tasks), tasks, attempts, warning)


def _record_fields(target: Target, reply: Reply) -> dict[str, Any]:
    return {
        "project_id": target.project_id,
        "region": target.region,
        "kps_request_id": record.bounded(reply.kps_request_id),
    }


def clean_target(
    target: Target, settings: Settings, credentials: Credentials, deadline: Deadline, dry_run: bool
) -> dict[str, Any]:
    """Dry run: list and count. Otherwise: count first (unless switched off), then delete all (unless the
    listing found that the host does not resolve), and record what was deleted when the DELETE succeeded."""
    started = time.monotonic()
    scoped = credentials.for_project(target.project_id)
    client = ApiClient(endpoint_for(target, settings), scoped, RetryPolicy.from_settings(settings), deadline)
    listing = None
    if dry_run or settings.count_before_delete:
        listing = list_failed_tasks(client, target, settings.list_page_size)
    if listing is not None and dry_run:
        if settings.record_deleted and listing.reply.ok:
            record.emit("would delete", _record_fields(target, listing.reply), listing.tasks, listing.warning)
        return target_result(
            target,
            "would_delete",
            listing.reply,
            started,
            failed_task_count=listing.task_count,
            attempts=listing.attempts,
            sample=listing.sample,
            warning=listing.warning,
        )
    if listing is not None and (listing.reply.error or {}).get("code") == "EndpointNotFound":
        # The host does not resolve: a DELETE to it cannot fare better. Failed, with the listing's error.
        return target_result(target, "failed", listing.reply, started, attempts=listing.attempts)
    if listing is None:
        unknown = "not listed (KPS_COUNT_BEFORE_DELETE=false): the deleted set is unknown"
        warning, attempts = None, 0
    elif not listing.reply.ok:  # counting is a courtesy: the cleanup goes ahead without it
        code = record.bounded((listing.reply.error or {}).get("code"))
        warning = f"the listing failed ({code}): the count is unknown; deleted anyway"
        unknown = f"the listing failed ({code}): the deleted set is unknown"
        attempts = listing.attempts
        log.warning("count failed; deleting anyway", project_id=target.project_id, error=listing.reply.error)
    else:
        warning, attempts = listing.warning, listing.attempts
        unknown = None if warning is None else f"{warning}: the deleted set may hold more"
    reply = client.call("DELETE", tasks_path(target.project_id))
    if reply.ok and settings.record_deleted:
        record.emit("tasks deleted", _record_fields(target, reply), listing.tasks if listing else [], unknown)
    return target_result(
        target,
        "deleted",
        reply,
        started,
        failed_task_count=listing.task_count if listing else None,
        attempts=attempts + reply.attempts,
        sample=listing.sample if listing else None,
        warning=warning,
    )
