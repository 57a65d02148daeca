"""A sweep goes only where KPS is offered: other regions' projects are skipped, with the reason logged."""

from __future__ import annotations

import pytest
from conftest import OTHER_PROJECT, PROJECT, deletes
from test_selection import TASKS_PATH, deleted_ids, task

from devtools.context import FakeContext
from function.regions import REGIONS_WITH_KPS
from function.settings import REGION
from function.sweep import MAX_SWEEP_TARGETS

NO_KPS_PROJECT = "1234567890abcdef1234567890abcdef"
NO_KPS_SUB = "fedcba0987654321fedcba0987654321"
FAR_PROJECT = "00112233445566778899aabbccddeeff"


def test_the_list_is_the_sdks_thirty_regions_all_well_formed():
    """huaweicloudsdkkps 3.1.219 v3/region/kps_region.py: 30 regions, every one kms.{region}.myhuaweicloud.com."""
    assert len(REGIONS_WITH_KPS) == 30
    assert all(REGION.fullmatch(region) for region in REGIONS_WITH_KPS)
    assert {"cn-north-4", "ap-southeast-1", "la-south-2", "my-kualalumpur-1", "cn-north-12"} <= REGIONS_WITH_KPS
    assert "eu-west-101" not in REGIONS_WITH_KPS


@pytest.fixture
def account(kps, settings):
    kps.seed(OTHER_PROJECT, 1)
    kps.seed(NO_KPS_PROJECT, 1)
    kps.set_iam_projects(
        [
            {"id": PROJECT, "name": "cn-north-4", "enabled": True},
            {"id": NO_KPS_PROJECT, "name": "eu-west-101", "enabled": True},
            {"id": NO_KPS_SUB, "name": "eu-west-101_ops", "enabled": True},
            {"id": OTHER_PROJECT, "name": "cn-north-4_ops", "enabled": True},
            {"id": FAR_PROJECT, "name": "ap-southeast-1", "enabled": True},
            {"id": "0" * 32, "name": "MOS", "enabled": True},
        ]
    )
    settings["KPS_IAM_ENDPOINT"] = kps.url
    return kps


def test_a_sweep_skips_regions_without_kps_and_says_why(account, invoke):
    run = invoke({"targets": "all"})
    assert run.payload["status"] == "succeeded", "no region without KPS turns the night partial"
    assert [r["project_id"] for r in run.payload["results"]] == [PROJECT, OTHER_PROJECT, FAR_PROJECT]
    assert not [r for r in account.requests if NO_KPS_PROJECT in r.path or NO_KPS_SUB in r.path]
    assert account.failed_tasks(NO_KPS_PROJECT) != []
    [swept] = run.lines("projects swept")
    assert swept["skipped_no_kps_in_region"] == ["eu-west-101", "eu-west-101_ops"]
    assert swept["skipped_non_regional"] == ["MOS"]
    assert (swept["listed"], swept["targets"]) == (6, 3)


def test_kps_regions_still_narrows_the_sweep(account, invoke, settings):
    settings["KPS_REGIONS"] = "ap-southeast-1,eu-west-101"
    run = invoke({"targets": "all"})
    assert [r["project_id"] for r in run.payload["results"]] == [FAR_PROJECT]
    assert deletes(account) == [f"/v3/{FAR_PROJECT}/failed-tasks"]
    assert run.lines("projects swept")[0]["skipped_no_kps_in_region"] == ["eu-west-101", "eu-west-101_ops"]


def test_explicit_targets_are_not_filtered(kps, invoke):
    """Only a sweep guesses where KPS is: a target named explicitly is tried, whatever its region."""
    run = invoke({"project_id": PROJECT, "region": "eu-west-101"})
    assert run.payload["status"] == "succeeded"
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]


def test_a_sweep_of_more_than_1000_targets_is_refused_before_any_kps_call(account, invoke):
    """3,000 projects took 4.9 s of a 3 s invocation; 20,000 gave an 8.9 MB payload. Refused, not cut:
    a cut would leave the same projects uncleaned every night."""
    account.set_iam_projects(
        [{"id": f"{i:032x}", "name": "cn-north-4", "enabled": True} for i in range(1, MAX_SWEEP_TARGETS + 2)]
    )
    run = invoke({"targets": "all"})
    payload = run.payload
    assert (payload["status"], payload["error"]["code"], payload["results"]) == ("failed", "ProjectListingFailed", [])
    assert (
        f"{MAX_SWEEP_TARGETS + 1} projects to sweep, more than the {MAX_SWEEP_TARGETS}" in payload["error"]["message"]
    )
    assert [r.path for r in account.requests] == ["/v3/auth/projects"]
    [swept] = run.lines("projects swept")
    assert swept["targets"] == MAX_SWEEP_TARGETS + 1


def test_targets_whose_turn_comes_after_the_deadline_cost_nothing(kps, invoke, settings):
    """The first target's KPS never answers and uses the whole invocation: the others are answered
    DeadlineExceeded without a client, a call or a line each (one line names them)."""
    projects = [PROJECT, OTHER_PROJECT, FAR_PROJECT]
    settings["KPS_CONCURRENCY"] = "1"
    kps.inject(stall=True)
    context = FakeContext(user_data=settings, timeout_seconds=2.0)
    run = invoke({"targets": [{"project_id": p} for p in projects]}, context=context)
    assert context.getRemainingTimeInMilliSeconds() > 0
    first, *late = run.payload["results"]
    assert first["error"]["code"] == "DeadlineExceeded" and first["attempts"] >= 1
    assert [(r["project_id"], r["error"]["code"], r["attempts"]) for r in late] == [
        (OTHER_PROJECT, "DeadlineExceeded", 0),
        (FAR_PROJECT, "DeadlineExceeded", 0),
    ]
    assert {r.path.split("/")[2] for r in kps.requests} == {PROJECT}
    assert [line["project_id"] for line in run.lines("target done")] == [PROJECT]
    [line] = run.lines("targets not started")
    assert (line["count"], line["project_ids"]) == (2, [OTHER_PROJECT, FAR_PROJECT])


@pytest.mark.parametrize("select", [None, {"older_than_hours": 1}])
@pytest.mark.parametrize("second", ["cn-east-3", "cn-north-4"])  # two names reaching KPS_ENDPOINT, a repeated page
def test_a_project_iam_lists_twice_is_swept_once(kps, invoke, settings, select, second):
    """A target is what it reaches, (endpoint, project), for a sweep as for named targets: a project IAM
    lists twice is listed, deleted, counted and recorded once, under its first name, and the duplicate is
    named in the ``projects swept`` line."""
    kps.put_tasks(PROJECT, [task(n) for n in range(4)])
    kps.set_iam_projects(
        [{"id": PROJECT, "name": "cn-north-4", "enabled": True}, {"id": PROJECT, "name": second, "enabled": True}]
    )
    settings["KPS_IAM_ENDPOINT"] = kps.url
    run = invoke({"targets": "all", **({} if select is None else {"select": select})})
    [result] = run.payload["results"]
    assert (result["region"], result["failed_task_count"]) == ("cn-north-4", 4)
    if select is None:
        assert len([r for r in kps.requests if r.method == "DELETE" and r.path == TASKS_PATH]) == 1
    else:
        assert deleted_ids(kps) == sorted(task(n)["task_id"] for n in range(4))  # each task DELETEd once
    [swept] = run.lines("projects swept")
    assert (swept["listed"], swept["targets"], swept["skipped_duplicate"]) == (2, 1, [second])
