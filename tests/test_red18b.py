"""Red team 18b: selective cleanup, second pass on the fixed code. Each test states the promise it breaks."""

from __future__ import annotations

import json

from conftest import OTHER_PROJECT, PROJECT, REGION, load_event
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


def test_a_sweep_beside_a_named_target_does_not_drop_it_or_its_refusal(kps, invoke, settings):
    """Alone, {"project_id": P} with P outside KPS_ALLOWED_PROJECT_IDS is refused (ProjectNotAllowed). Put a
    {"targets": "all"} message beside it in one batch and resolve_targets returns SWEEP before the allow-list
    check: the event "succeeded", P is neither cleaned nor refused nor in the payload. The same silently
    drops a named target the sweep does not list (other credentials' projects, another region). Every named
    target must end in the payload, or the event must be refused."""
    kps.put_tasks(OTHER_PROJECT, [task(n) for n in range(3)])
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_ALLOWED_PROJECT_IDS=PROJECT)
    event = load_event("kafka.json")
    event["records"][0]["messages"] = [json.dumps({"project_id": OTHER_PROJECT})]
    assert invoke(event).payload["error"]["code"] == "ProjectNotAllowed"  # alone: refused
    event["records"][0]["messages"] = [json.dumps({"targets": "all"}), json.dumps({"project_id": OTHER_PROJECT})]
    run = invoke(event)
    named = [r for r in run.payload["results"] if r["project_id"] == OTHER_PROJECT]
    assert run.payload["status"] == "rejected" or named, (run.payload["status"], run.payload["results"])
