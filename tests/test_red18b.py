"""Red team 18b: selective cleanup, second pass on the fixed code. Each test states the promise it breaks."""

from __future__ import annotations

from conftest import PROJECT, REGION
from test_selection import TASKS_PATH, deleted_ids, task


def test_a_sweep_that_lists_one_project_twice_cleans_it_once(kps, invoke, settings):
    """docs/selective-cleanup.md: "A target is what it reaches: the endpoint and the project ... one target:
    listed, deleted and counted once". resolve_targets dedups named targets, but sweep_targets does not:
    an IAM answer naming one project twice (a repeated page, or under two region names with KPS_ENDPOINT set)
    makes two concurrent targets of it, each listing and DELETE-ing the same selected tasks, and the payload
    carries two results (counts summed twice)."""
    kps.put_tasks(PROJECT, [task(n) for n in range(4)])
    kps.set_iam_projects(
        [{"id": PROJECT, "name": REGION, "enabled": True}, {"id": PROJECT, "name": "cn-east-3", "enabled": True}]
    )
    settings["KPS_IAM_ENDPOINT"] = kps.url
    run = invoke({"targets": "all", "select": {"older_than_hours": 1}})
    results = run.payload["results"]
    assert len(results) == 1, [(r["region"], r["failed_task_count"], r.get("already_gone")) for r in results]
    assert deleted_ids(kps) == sorted(task(n)["task_id"] for n in range(4))  # each task DELETEd once


def test_a_sweep_without_selection_that_lists_one_project_twice_deletes_all_once(kps, invoke, settings):
    """The same without a selection: two DeleteAllFailedTask calls for one project, and the record lists
    the project's tasks twice as deleted."""
    kps.put_tasks(PROJECT, [task(n) for n in range(4)])
    kps.set_iam_projects(
        [{"id": PROJECT, "name": REGION, "enabled": True}, {"id": PROJECT, "name": "cn-east-3", "enabled": True}]
    )
    settings["KPS_IAM_ENDPOINT"] = kps.url
    run = invoke({"targets": "all"})
    delete_all = [r for r in kps.requests if r.method == "DELETE" and r.path == TASKS_PATH]
    assert len(run.payload["results"]) == 1, [r["region"] for r in run.payload["results"]]
    assert len(delete_all) == 1
