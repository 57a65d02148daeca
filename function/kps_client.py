"""The KPS operations on one target: list (every page), count, and DeleteAllFailedTask.

KPS deletes blindly and says nothing about what it removed, so the count comes from listing first.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from .api import ApiClient, Reply, RetryPolicy, invalid_response
from .budget import Deadline
from .credentials import Credentials
from .logs import logger as log
from .payload import target_result
from .settings import Settings, Target
from .targets import endpoint_for

SAMPLE_SIZE = 50
SAMPLE_FIELDS = ("task_id", "operate_type", "server_id", "server_name", "keypair_name", "task_error_code", "task_time")
MAX_PAGES = 10_000


def tasks_path(project_id: str) -> str:
    return f"/v3/{project_id}/failed-tasks"


class Listing(NamedTuple):
    reply: Reply  # the last page's answer, or the failure
    task_count: int | None  # None unless every page was read
    sample: list[dict[str, Any]]
    attempts: int


def list_failed_tasks(client: ApiClient, project_id: str, page_size: int) -> Listing:
    """Follows limit/offset until ``total`` is read (or, without a total, a short page), stopping at an
    empty page; counts what it read and keeps a bounded sample. Trusting ``total`` over the page length
    keeps the count right if KPS serves smaller pages than the ``limit`` asked for."""
    count, attempts, sample = 0, 0, []
    reply = Reply(True, None, None, 0)
    for _ in range(MAX_PAGES):
        reply = client.call("GET", tasks_path(project_id), [("limit", str(page_size)), ("offset", str(count))])
        attempts += reply.attempts
        tasks = reply.data.get("tasks") if reply.ok and isinstance(reply.data, dict) else None
        if not reply.ok or not isinstance(tasks, list):
            failure = reply if not reply.ok else invalid_response(reply, "ListFailedTask answered without a tasks list")
            return Listing(failure, None, sample, attempts)
        count += len(tasks)
        room = SAMPLE_SIZE - len(sample)
        sample += [{k: t.get(k) for k in SAMPLE_FIELDS} for t in tasks[:room] if isinstance(t, dict)]
        total = reply.data.get("total")
        if not tasks or (count >= total if isinstance(total, int) else len(tasks) < page_size):
            break
    return Listing(reply, count, sample, attempts)


def clean_target(
    target: Target, settings: Settings, credentials: Credentials, deadline: Deadline, dry_run: bool
) -> dict[str, Any]:
    """Dry run: list and count. Otherwise: count first (unless switched off), then delete all."""
    started = time.monotonic()
    scoped = credentials.for_project(target.project_id)
    client = ApiClient(endpoint_for(target, settings), scoped, RetryPolicy.from_settings(settings), deadline)
    if dry_run:
        listing = list_failed_tasks(client, target.project_id, settings.list_page_size)
        return target_result(
            target,
            "would_delete",
            listing.reply,
            started,
            failed_task_count=listing.task_count,
            attempts=listing.attempts,
            sample=listing.sample,
        )
    count, attempts = None, 0
    if settings.count_before_delete:
        listing = list_failed_tasks(client, target.project_id, settings.list_page_size)
        count, attempts = listing.task_count, listing.attempts
        if listing.task_count is None:  # counting is a courtesy: the cleanup goes ahead without it
            log.warning("count failed; deleting anyway", project_id=target.project_id, error=listing.reply.error)
    reply = client.call("DELETE", tasks_path(target.project_id))
    return target_result(target, "deleted", reply, started, failed_task_count=count, attempts=attempts + reply.attempts)
