"""The KPS operations on one target: list (every page), count, and DeleteAllFailedTask, or, with a
selection (``selection.py``), DeleteFailedTask for each selected task.

KPS deletes blindly and says nothing about what it removed, so the count, the sample and the record
(``record.py``) come from listing first. A count is exact or it is ``None`` with a warning saying why.
A selective cleanup deletes only tasks it listed and selected, each by its own DELETE, so its count
and record are exactly the DELETEs that succeeded.
"""

from __future__ import annotations

import contextvars
import hashlib
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any, NamedTuple

from . import record
from .api import ApiClient, Reply, RetryPolicy, invalid_response, out_of_time
from .budget import ByteBudget, Deadline
from .credentials import Credentials
from .logs import logger as log
from .payload import target_result
from .selection import Selection
from .settings import Settings, Target
from .targets import endpoint_for

SAMPLE_SIZE = 50
MAX_PAGES = 10_000
# Tasks kept per target (for the sample, the record and spotting repeats): past it the listing stops,
# the count is null and the record says it is incomplete.
MAX_LISTED_TASKS = 20_000
# Bytes the tasks kept by all targets of one invocation may take together: targets run at once, and a
# 128 MB function must hold them beside up to 8 pages in flight (see README, Operations). A task costs
# its record entry's JSON, plus TASK_OVERHEAD_BYTES of Python objects (the entry, its task_id's digest
# to spot repeats, list and set slots), plus its group's strings when it is the first of its group.
# Measured with tracemalloc: ~0.6 KB for a task as KPS usually words it, ~2.2 KB with every field maximal.
MAX_KEPT_BYTES = 16 * 2**20
TASK_OVERHEAD_BYTES = 280
# A task_id goes into a URL path: only the characters of KPS's UUID-like ids, so no '/', '..', '%',
# '?' or control character can ever make another path (and no quoting is needed).
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
NOT_FOUND = "KPS.0005"  # DeleteFailedTask's "failed task not found": already gone
# Selective DELETEs stop this long before the invocation's deadline, so the record of those that
# succeeded is still written (about 1 ms a line of 25 tasks; 800 lines for the most a target lists).
RECORD_RESERVE_SECONDS = 1.0


def tasks_path(project_id: str) -> str:
    return f"/v3/{project_id}/failed-tasks"


class Listing(NamedTuple):
    reply: Reply  # the last page's answer, or the failure
    task_count: int | None  # None unless every task was read, each once
    sample: list[dict[str, str | None]]  # the first SAMPLE_SIZE tasks, bounded strings
    entries: list[record.Entry]  # every distinct task listed (selected, with a selection), in order, compact
    attempts: int
    warning: str | None = None  # why the count is None although every page answered
    task_ids: Sequence[str | None] = ()  # with a selection: each entry's task_id, None when unsafe in a URL
    kept: int = 0  # with a selection: the listed tasks it did not select


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


class _OutOfTime(Exception):
    """The invocation's time ran out in the middle of a page."""


class _Kept:
    """The tasks a listing keeps: each once, compact, within the invocation's shared byte budget and
    while the invocation has time: a page of 1,000 tasks can take seconds of a slow CPU, and one answered
    just before the deadline must not be read past it."""

    def __init__(self, budget: ByteBudget, select: Selection | None, deadline: Deadline) -> None:
        self.budget = budget
        self.select = select
        self.deadline = deadline
        self.now_ms = int(time.time() * 1000)  # one "now" for the whole listing's age conditions
        self.listed = 0  # distinct tasks read, selected or not
        self.kept = 0
        self.task_ids: list[str | None] = []
        self.sample: list[dict[str, str | None]] = []
        self.entries: list[record.Entry] = []
        self.seen: set[bytes] = set()  # digests of the task_ids listed: 16 bytes where an id can take 256
        self.groups: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}  # one copy of each group

    def absorb(self, page: list[dict[str, Any]], offset: int) -> str | None:
        """Adds a page's new tasks; returns why the listing must stop short, if it must. With a
        selection, a task it does not select is counted (``kept``) and spotted as a repeat, not kept.
        Raises ``_OutOfTime`` once the deadline has passed."""
        repeated = anonymous = False
        for raw in page:
            if self.deadline.remaining() <= 0:
                raise _OutOfTime
            task = record.task_of(raw)
            task_id = task["task_id"]
            digest = None if task_id is None else hashlib.blake2b(task_id.encode(), digest_size=16).digest()
            if digest is not None and digest in self.seen:
                repeated = True
                continue
            if self.listed == MAX_LISTED_TASKS:
                return f"more than {MAX_LISTED_TASKS} tasks: listing stopped there"
            if self.select is None or self.select.matches(raw, self.now_ms):
                refused = self._keep(task, raw.get("task_id"))
                if refused is not None:
                    return refused
            else:
                self.kept += 1
            self.listed += 1
            if digest is None:
                anonymous = True
            else:
                self.seen.add(digest)
        if anonymous:
            return f"ListFailedTask's page at offset {offset} holds tasks without a task_id: repeats cannot be told"
        return f"ListFailedTask's page at offset {offset} repeated tasks already listed" if repeated else None

    def _keep(self, task: dict[str, str | None], raw_id: Any) -> str | None:
        """Keeps one task within the byte budget (with a selection, its task_id for the DELETE too, or
        None when it is unsafe in a URL); returns why not, if the budget is spent."""
        kept = record.entry(task)
        group = self.groups.setdefault(kept.group, kept.group)
        cost = len(kept.text) + TASK_OVERHEAD_BYTES + (0 if self.select is None else len(task["task_id"] or ""))
        if group is kept.group:
            cost += sum(len(k or "") for k in group)
        if not self.budget.take(cost):
            return (
                f"the {self.budget.total // 2**20} MiB the invocation keeps for listed tasks (all targets "
                f"together) is spent: listing stopped after {self.listed} tasks"
            )
        self.entries.append(kept._replace(group=group))
        if self.select is not None:
            self.task_ids.append(raw_id if isinstance(raw_id, str) and TASK_ID.fullmatch(raw_id) else None)
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append(task)
        return None


_UNSEEN = object()


def _total_problem(total: int | None, first: object, listed: int) -> str | None:
    """Why ``total`` cannot be trusted as the number of tasks, if it cannot."""
    if total is not None and total < 0:
        return f"ListFailedTask answered a negative total {total}"
    if first is not _UNSEEN and total != first:
        return f"ListFailedTask's total changed from {first} to {total} between pages"
    if total is not None and listed > total:
        return f"ListFailedTask's total {total} is below the {listed} tasks already read"
    return None


def list_failed_tasks(
    client: ApiClient, target: Target, page_size: int, budget: ByteBudget, deadline: Deadline
) -> Listing:
    """Follows limit/offset until ``total`` is read (or, without a total, a short page). Trusting
    ``total`` over the page length keeps the count right if KPS serves smaller pages than asked. A
    total that makes no sense (negative, below the tasks read, changing between pages), a page that
    repeats a task already listed or holds one without a task_id, an empty page before ``total``, or
    the page, task or memory cap ends the listing with the count ``None`` and a warning: a count is
    exact or it is not given. With the target's selection, only selected tasks are kept. A page the
    deadline passes in fails the listing, DeadlineExceeded, as a page not asked for in time would."""
    kept = _Kept(budget, target.select, deadline)
    attempts, warning = 0, None
    first_total: object = _UNSEEN
    reply = Reply(True, None, None, 0)
    for _ in range(MAX_PAGES):
        offset = kept.listed
        reply = client.call("GET", tasks_path(target.project_id), [("limit", str(page_size)), ("offset", str(offset))])
        attempts += reply.attempts
        page = _page(reply, page_size)
        if isinstance(page, Reply):
            reply = page
            break
        total = reply.data.get("total")
        total = total if isinstance(total, int) and not isinstance(total, bool) else None
        warning = _total_problem(total, first_total, offset)
        first_total = total
        if warning is not None:
            break
        if not page:
            if total is not None and offset < total:
                warning = f"ListFailedTask answered an empty page at offset {offset}, before its total {total}"
            break
        try:
            warning = kept.absorb(page, offset) or _total_problem(total, first_total, kept.listed)
        except _OutOfTime:
            late = out_of_time(reply, f"the invocation's time budget ran out reading the page at offset {offset}")
            return Listing(late, None, kept.sample, kept.entries, attempts, None, kept.task_ids, kept.kept)
        if warning is not None:
            break
        if kept.listed >= total if total is not None else len(page) < page_size:
            break
    else:
        warning = f"ListFailedTask's total not reached after {MAX_PAGES} pages"
    if warning is not None:
        log.warning("count unknown", project_id=target.project_id, region=target.region, reason=warning)
    count = None if warning or not reply.ok else kept.listed
    return Listing(reply, count, kept.sample, kept.entries, attempts, warning, kept.task_ids, kept.kept)


def _record_fields(target: Target, reply: Reply) -> dict[str, Any]:
    return {
        "project_id": target.project_id,
        "region": target.region,
        "kps_request_id": reply.kps_request_id,
    }


def clean_target(
    target: Target,
    settings: Settings,
    credentials: Credentials,
    deadline: Deadline,
    dry_run: bool,
    *,
    budget: ByteBudget,
    deletes: Executor,
) -> dict[str, Any]:
    """Dry run: list and count. Otherwise: count first (unless switched off), then delete all (unless the
    listing found that the host does not resolve), and record what was deleted when the DELETE succeeded.
    With a selection, ``clean_selected``; its DELETEs run on ``deletes``, the invocation's one pool."""
    started = time.monotonic()
    scoped = credentials.for_project(target.project_id)
    endpoint, policy = endpoint_for(target, settings), RetryPolicy.from_settings(settings)
    client = ApiClient(endpoint, scoped, policy, deadline)
    if target.select is not None:
        deleter = _Deleter(endpoint, scoped, policy, deadline.sooner(RECORD_RESERVE_SECONDS))
        return clean_selected(
            target, client, deleter, settings, deadline, dry_run=dry_run, budget=budget, deletes=deletes
        )
    listing = None
    if dry_run or settings.count_before_delete:
        listing = list_failed_tasks(client, target, settings.list_page_size, budget, deadline)
    if listing is not None and dry_run:
        warning = listing.warning
        if settings.record_deleted and listing.reply.ok:
            fields = _record_fields(target, listing.reply)
            warning = _joined(warning, record.emit("would delete", fields, listing.entries, warning, deadline))
        return target_result(
            target,
            "would_delete",
            listing.reply,
            started,
            failed_task_count=listing.task_count,
            attempts=listing.attempts,
            sample=listing.sample,
            warning=warning,
        )
    if listing is not None and (listing.reply.error or {}).get("code") == "EndpointNotFound":
        # The host does not resolve: a DELETE to it cannot fare better. Failed, with the listing's error.
        return target_result(target, "failed", listing.reply, started, attempts=listing.attempts)
    if listing is None:
        unknown = "not listed (KPS_COUNT_BEFORE_DELETE=false): the deleted set is unknown"
        warning, attempts = None, 0
    elif not listing.reply.ok:  # counting is a courtesy: the cleanup goes ahead without it
        code = (listing.reply.error or {}).get("code")
        warning = f"the listing failed ({code}): the count is unknown; deleted anyway"
        unknown = f"the listing failed ({code}): the deleted set is unknown"
        attempts = listing.attempts
        log.warning("count failed; deleting anyway", project_id=target.project_id, error=listing.reply.error)
    else:
        warning, attempts = listing.warning, listing.attempts
        unknown = None if warning is None else f"{warning}: the deleted set may hold more"
    # On the invocation's DELETE pool, so KPS_CONCURRENCY bounds every DELETE in flight, both kinds.
    reply = deletes.submit(
        contextvars.copy_context().run, client.call, "DELETE", tasks_path(target.project_id)
    ).result()
    if reply.ok and settings.record_deleted:
        entries = listing.entries if listing else []
        cut = record.emit("tasks deleted", _record_fields(target, reply), entries, unknown, deadline)
        warning = _joined(warning, cut)
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


def _not_examined(listing: Listing) -> str | None:
    """Why tasks past those listed were not examined (so a selection may have missed some), if so."""
    if listing.reply.ok and listing.warning is None:
        return None
    why = listing.warning or f"the listing failed ({(listing.reply.error or {}).get('code')})"
    listed = len(listing.entries) + listing.kept
    return f"{why}: tasks past the {listed} listed were not examined"


class _Deleter(ApiClient):
    """DeleteFailedTask's client. It notes, per thread, whether an attempt of the current call may have
    reached KPS and acted although its answer was lost (``Reply.sent``: a timeout or a drop once a byte of
    the request was written, a 5xx; not a failure before it, such as an unresolved name, a refused
    connection, proxy CONNECT or TLS handshake, nor a 429): a KPS.0005 on the retry
    then means this invocation deleted the task, and a failure means the task may be gone."""

    _call = threading.local()

    def delete(self, path: str) -> tuple[Reply, bool]:
        """The DELETE's reply, and whether an attempt of it may have deleted the task unanswered."""
        self._call.reached = False
        return self.call("DELETE", path), self._call.reached

    def _attempt(self, method: str, path: str, query: list[tuple[str, str]], seconds: float, attempt: int) -> Reply:
        reply = super()._attempt(method, path, query, seconds, attempt)
        self._call.reached = self._call.reached or reply.sent
        return reply


LEFT, DELETED, GONE, FAILED, UNCONFIRMED = range(5)  # what became of a selected task


class _Deletions:
    """The DELETEs of one target's selected tasks, tallied as they end. At most ``window`` wait on the
    invocation's shared pool at once: a queued job costs about 2 KB, 20,000 at once would take 40 MB.
    The first failure (after its retries) stops the DELETEs not yet started: the same fault (no
    permission, throttled past its attempts) would meet every other one."""

    def __init__(self, count: int) -> None:
        self.outcome = bytearray(count)  # per selected task, LEFT until its DELETE says otherwise
        self.failure: Reply | None = None  # the first failed DELETE (or unsafe task_id)
        self.last: Reply | None = None  # the last DELETE that succeeded
        self.attempts = 0
        self.stop = threading.Event()

    def run(self, deleter: _Deleter, path: str, task_ids: Sequence[str | None], pool: Executor, window: int) -> None:
        pending: dict[Future[tuple[Reply, bool] | None], int] = {}
        waiting = iter(enumerate(task_ids))
        while True:
            while not self.stop.is_set() and len(pending) < window:
                index, task_id = next(waiting, (-1, None))
                if index < 0:
                    break
                if task_id is None:
                    self._note(index, (_unsafe(), False), stops=False)
                    continue
                job = pool.submit(contextvars.copy_context().run, self._delete, deleter, f"{path}/{task_id}")
                pending[job] = index
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for job in finished:
                self._note(pending.pop(job), job.result(), stops=True)

    def _delete(self, deleter: _Deleter, path: str) -> tuple[Reply, bool] | None:
        return None if self.stop.is_set() else deleter.delete(path)

    def _note(self, index: int, done: tuple[Reply, bool] | None, *, stops: bool) -> None:
        if done is None:
            return
        reply, reached = done
        self.attempts += reply.attempts
        if reply.ok:
            self.outcome[index], self.last = DELETED, reply
        elif _gone(reply):  # after a lost answer, KPS.0005 is this invocation's own DELETE having worked
            self.outcome[index] = DELETED if reached else GONE
        else:  # failed; after a lost answer the task may be gone: neither deleted for sure nor left
            self.outcome[index] = UNCONFIRMED if reached else FAILED
            self.failure = self.failure or reply
            if stops:
                self.stop.set()


def _gone(reply: Reply) -> bool:
    return reply.http_status == 400 and (reply.error or {}).get("code") == NOT_FOUND


def _unsafe() -> Reply:
    message = "the listed task_id is missing or holds characters other than A-Z a-z 0-9 - _: no URL was built"
    return Reply(False, None, None, 0, {"code": "InvalidTaskId", "message": message, "retryable": False})


def clean_selected(
    target: Target,
    client: ApiClient,
    deleter: ApiClient,
    settings: Settings,
    deadline: Deadline,
    *,
    dry_run: bool,
    budget: ByteBudget,
    deletes: Executor,
) -> dict[str, Any]:
    """Lists every task (whatever KPS_COUNT_BEFORE_DELETE says), then deletes the selected ones one by one
    on the invocation's shared pool, by ``deleter`` (whose deadline leaves time for the record); never
    DeleteAllFailedTask. Only tasks listed and selected are deleted: when the listing stops short, the
    rest is not examined and the warning says so. The target's first failed DELETE stops its DELETEs
    not yet started (they count as ``left``). A DELETE that failed after an attempt whose answer was
    lost is ``unconfirmed`` (the task may be gone) and has its own record, ``tasks unconfirmed``. An
    unsafe task_id is that task's failure, never a URL."""
    started = time.monotonic()
    listing = list_failed_tasks(client, target, settings.list_page_size, budget, deadline)
    unexamined = _not_examined(listing)
    fields = _record_fields(target, listing.reply)
    counts: dict[str, int] = {"selected": len(listing.entries), "kept": listing.kept}
    if dry_run:
        warning = unexamined
        if settings.record_deleted:
            warning = _joined(warning, record.emit("would delete", fields, listing.entries, unexamined, deadline))
        count = len(listing.entries) if unexamined is None else None
        return target_result(
            target,
            "would_delete",
            listing.reply,
            started,
            failed_task_count=count,
            attempts=listing.attempts,
            sample=listing.sample,
            warning=warning,
            selection=counts,
        )
    runs = _Deletions(len(listing.task_ids))
    runs.run(deleter, tasks_path(target.project_id), listing.task_ids, deletes, settings.concurrency)
    deleted = [entry for entry, outcome in zip(listing.entries, runs.outcome) if outcome == DELETED]
    unconfirmed = [entry for entry, outcome in zip(listing.entries, runs.outcome) if outcome == UNCONFIRMED]
    gone = runs.outcome.count(GONE)
    left = len(runs.outcome) - len(deleted) - gone - len(unconfirmed)
    counts.update(already_gone=gone, left=left, unconfirmed=len(unconfirmed))
    last = runs.failure or (runs.last if listing.reply.ok and runs.last else listing.reply)
    notes = [unexamined] if unexamined else []
    if left:
        notes.append(f"{len(deleted)} of {len(runs.outcome)} selected tasks deleted, {left} left")
    if unconfirmed:
        notes.append(f"{len(unconfirmed)} selected tasks unconfirmed: a DELETE was sent and its answer lost")
    if gone:
        notes.append(f"{gone} selected tasks were already gone (KPS.0005)")
    warning = "; ".join(notes) or None
    if settings.record_deleted:
        warning = _joined(warning, record.emit("tasks deleted", fields, deleted, None, deadline))
        if unconfirmed:
            warning = _joined(warning, record.emit("tasks unconfirmed", fields, unconfirmed, None, deadline))
    return target_result(
        target,
        "deleted",
        last,
        started,
        failed_task_count=len(deleted),
        attempts=listing.attempts + runs.attempts,
        sample=listing.sample,
        warning=warning,
        selection=counts,
    )


def _joined(warning: str | None, cut: str | None) -> str | None:
    """The target's warning, with why its record was cut short, if it was."""
    if cut is None:
        return warning
    return f"record cut short: {cut}" if warning is None else f"{warning}; record cut short: {cut}"
