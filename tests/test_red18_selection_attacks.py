"""Red-team attacks on issue 18 (selective cleanup): each test states a promise and fails where it breaks.

They drive handler.handler against the emulator and read its request log, the payload and the log lines.
"""

from __future__ import annotations

import json

from conftest import OTHER_PROJECT, PROJECT, load_event
from test_selection import TASKS_PATH, deleted_ids, recorded_ids, task


def test_one_project_under_two_region_spellings_cannot_escape_the_selection(kps, invoke, settings):
    """With KPS_ENDPOINT every region reaches the same KPS: (P, cn-north-4) and (P, cn-east-3) are one
    target. Two messages giving it different selections must be refused; today the second message's
    (no selection) DeleteAllFailedTask removes the recent task the first message meant to keep."""
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    event = load_event("kafka.json")
    event["records"][0]["messages"] = [
        json.dumps({"project_id": PROJECT, "select": {"older_than_hours": 168}}),  # region from KPS_REGION
        json.dumps({"project_id": PROJECT, "region": "cn-east-3"}),
    ]
    run = invoke(event)
    assert TASKS_PATH not in [r.path for r in kps.requests if r.method == "DELETE"], "DeleteAllFailedTask was called"
    assert task(0)["task_id"] in [t["task_id"] for t in kps.failed_tasks(PROJECT)], "the kept task was deleted"
    assert run.payload["error"]["code"] == "InvalidEvent"


def test_one_project_twice_in_one_targets_list_is_cleaned_once(kps, invoke):
    """The same project named under two regions (one endpoint) in one message: each task is DELETEd
    once and counted once; today both targets list and delete it, and the counts disagree."""
    kps.put_tasks(PROJECT, [task(n) for n in range(6)])
    run = invoke(
        {
            "targets": [
                {"project_id": PROJECT, "region": "cn-north-4"},
                {"project_id": PROJECT, "region": "cn-east-3"},
            ],
            "select": {"older_than_hours": 1},
        }
    )
    assert len(deleted_ids(kps)) == 6, "a task was DELETEd twice"
    assert sum(r.get("failed_task_count") or 0 for r in run.payload["results"]) == 6


def test_a_null_select_without_a_setting_is_not_delete_all(kps, invoke):
    """Issue 18: "an event carrying a field select is read with select ignored, and everything is
    deleted" is the bug. ``"select": null`` (a template's unset variable: Terraform's jsonencode writes
    null) is a select that is not an object: it must be refused, never read as "delete everything"."""
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    run = invoke({"project_id": PROJECT, "select": None})
    assert [r.path for r in kps.requests if r.method == "DELETE"] != [TASKS_PATH], "DeleteAllFailedTask was called"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert len(kps.failed_tasks(PROJECT)) == 2


def test_a_delete_whose_answer_was_lost_and_retried_is_counted_and_recorded(kps, invoke, settings):
    """The first DELETE reaches KPS and deletes the task, but its answer is late (the attempt times out);
    the retry meets KPS.0005. This invocation deleted the task: it must be in failed_task_count and in
    the record. Today it is counted already_gone, failed_task_count is 0 and the record is empty."""
    settings.update(KPS_TIMEOUT_SECONDS="0.4", KPS_MAX_ATTEMPTS="3")
    kps.put_tasks(PROJECT, [task(0)])
    kps.inject(method="DELETE", delay=0.6)  # answered (and deleted) after the client gave up
    kps.inject(method="DELETE", delay=0.3)  # the retry is routed after the first has deleted the task
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    attempts = [r for r in kps.requests if r.method == "DELETE"]
    assert len(attempts) == 2 and kps.failed_tasks(PROJECT) == []  # the scenario happened as scripted
    assert result["failed_task_count"] == 1, result
    assert recorded_ids(run) == [task(0)["task_id"]]


def test_a_task_time_in_seconds_is_not_read_as_1970(kps, invoke):
    """KPS documents task_time as epoch milliseconds. A value in seconds (an API version or a proxy
    that converts) read as milliseconds is January 1970: every such task is "old" and deleted, among
    them one that failed a minute ago. A task_time before KPS existed is no usable time (kept)."""
    recent_seconds = str(int(task(0, hours_ago=0.02)["task_time"]) // 1000)
    kps.put_tasks(PROJECT, [task(0, task_time=recent_seconds), task(1, task_time="0"), task(2, hours_ago=500)])
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 168}})
    assert deleted_ids(kps) == [task(2)["task_id"]]
    assert run.payload["results"][0]["kept"] == 2


def test_delete_all_of_an_unselected_target_counts_against_the_shared_bound(kps, invoke, settings):
    """docs/selective-cleanup.md: the DELETEs of all targets share one pool of KPS_CONCURRENCY, "never more
    than that many at once". A target without a selection sends its DeleteAllFailedTask from the targets'
    pool instead, beside the selective DELETEs: 3 DELETEs at once with KPS_CONCURRENCY=2."""
    settings["KPS_CONCURRENCY"] = "2"
    kps.put_tasks(PROJECT, [task(n) for n in range(10)])
    kps.put_tasks(OTHER_PROJECT, [task(n) for n in range(3)])
    kps.inject(method="DELETE", delay=0.3, times=20)
    kps.inject(method="GET", delay=0.3, times=20)
    event = load_event("kafka.json")
    event["records"][0]["messages"] = [
        json.dumps({"project_id": PROJECT, "select": {"older_than_hours": 1}}),
        json.dumps({"project_id": OTHER_PROJECT}),
    ]
    run = invoke(event)
    assert run.payload["status"] == "succeeded"
    assert kps.peak_in_flight("DELETE") <= 2
