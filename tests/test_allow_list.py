"""KPS_ALLOWED_PROJECT_IDS: a target outside it is refused before anything is sent."""

from __future__ import annotations

import json

from conftest import OTHER_PROJECT, PROJECT, RUNTIME_PROJECT, apig_event, deletes, load_event


def test_a_project_from_the_event_outside_the_list_is_refused(kps, invoke, settings):
    settings["KPS_ALLOWED_PROJECT_IDS"] = f"{PROJECT}, {RUNTIME_PROJECT}"
    run = invoke(apig_event({"project_id": OTHER_PROJECT}))
    assert run.result["statusCode"] == 403
    assert run.payload["error"]["code"] == "ProjectNotAllowed"
    assert OTHER_PROJECT in run.payload["error"]["message"]
    assert kps.requests == []


def test_a_project_from_the_settings_outside_the_list_is_refused(kps, invoke, settings):
    settings.update(KPS_ALLOWED_PROJECT_IDS=PROJECT, KPS_PROJECT_ID=OTHER_PROJECT)
    assert invoke({}).payload["error"]["code"] == "ProjectNotAllowed"
    settings.pop("KPS_PROJECT_ID")
    settings["RUNTIME_PROJECT_ID"] = RUNTIME_PROJECT
    assert invoke({}).payload["error"]["code"] == "ProjectNotAllowed"
    assert kps.requests == []


def test_one_disallowed_project_in_a_batch_refuses_the_whole_batch(kps, invoke, settings):
    settings["KPS_ALLOWED_PROJECT_IDS"] = PROJECT
    event = load_event("kafka.json")
    event["records"][0]["messages"] = [json.dumps({"project_id": p}) for p in (PROJECT, OTHER_PROJECT)]
    assert invoke(event).payload["error"]["code"] == "ProjectNotAllowed"
    assert kps.requests == []


def test_allowed_projects_are_cleaned(kps, invoke, settings):
    settings["KPS_ALLOWED_PROJECT_IDS"] = f"{OTHER_PROJECT},{PROJECT}"
    run = invoke(apig_event({"project_id": PROJECT}))
    assert run.result["statusCode"] == 200
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]
