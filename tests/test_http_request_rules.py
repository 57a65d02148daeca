"""The request rules api/openapi.yaml states, held by the function itself (found by schemathesis)."""

from __future__ import annotations

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, apig_event


@pytest.mark.parametrize(
    ("body", "query"),
    [
        ({"targets": "all"}, {"region": REGION}),  # a sweep would have gone to every region
        ({"targets": "ALL", "region": REGION}, {}),
        ({"targets": "all"}, {"project_id": PROJECT}),  # a sweep would have ignored the project
        ({"targets": [{"project_id": OTHER_PROJECT}]}, {"project_id": PROJECT}),
    ],
)
def test_ambiguous_requests_are_refused_and_nothing_is_sent(invoke, kps, body, query):
    run = invoke(apig_event(body, query=query))
    assert run.result["statusCode"] == 400
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert kps.requests == []


def test_a_null_project_id_is_absent_beside_targets(invoke, kps):
    run = invoke(apig_event({"project_id": None, "targets": [{"project_id": PROJECT, "region": REGION}]}))
    assert run.result["statusCode"] == 200 and kps.failed_tasks(PROJECT) == []


@pytest.mark.parametrize("key", ["project_id[0]", "project_id[a][]", "targets[0][project_id]", "dry_run[]"])
def test_a_field_sent_as_a_structure_in_the_query_is_refused_not_ignored(invoke, kps, settings, key):
    """Ignored, it would leave the configured default project to be cleaned instead of the one meant."""
    settings["KPS_PROJECT_ID"] = PROJECT
    run = invoke(apig_event(None, query={key: OTHER_PROJECT}))
    assert (run.result["statusCode"], run.payload["error"]["code"]) == (400, "InvalidEvent")
    assert kps.requests == []
