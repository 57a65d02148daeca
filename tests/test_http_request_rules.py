"""The request rules api/openapi.yaml states, held by the function itself (found by schemathesis)."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from conftest import OTHER_PROJECT, PROJECT, REGION, ROOT, apig_event


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


def _described_valid(schema_name: str, fields: dict) -> bool:
    """Whether api/openapi.yaml's schema ``schema_name`` takes ``fields`` (its rules hold the function's)."""
    document = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text())
    schema = {"components": document["components"], "$ref": f"#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(schema).is_valid(fields)


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"region": REGION}, True),  # a region alone names no project: schemathesis found the description silent
        ({"region": None}, False),  # null is absent: the defaults
        ({"project_id": PROJECT, "region": REGION}, False),
        ({"project_id": None, "region": REGION}, True),
        ({"targets": [{"project_id": PROJECT}], "region": REGION}, False),  # the entries' region
        ({"targets": "all", "region": REGION}, True),
        ({"project_id": PROJECT, "targets": "all"}, True),
        ({}, False),
    ],
)
def test_the_description_takes_a_request_exactly_when_the_function_does(invoke, kps, settings, fields, refused):
    settings["KPS_PROJECT_ID"] = PROJECT
    assert _described_valid("Request", fields) is not refused
    if all(isinstance(v, str) for v in fields.values()):
        assert _described_valid("QueryFields", fields) is not refused
    run = invoke(apig_event(fields, method="POST", query={"dry_run": "true"}))
    assert (run.payload.get("error") or {}).get("code") == ("InvalidEvent" if refused else None)
