"""`python -m devtools event`: each trigger's real shape, carrying the given fields where the handler reads them."""

from __future__ import annotations

import json

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, load_event
from test_devtools import run_tool

from devtools.events import GENERATORS, generate, parse_targets, request_fields
from function.triggers import read_event

FIELDS = [
    {},
    {"project_id": PROJECT, "region": REGION},
    {"project_id": PROJECT, "dry_run": True},
    {"targets": "all", "dry_run": True},
    {"targets": [{"project_id": PROJECT, "region": REGION}, {"project_id": OTHER_PROJECT}]},
]
CARRIERS = sorted(set(GENERATORS) - {"obs"})


@pytest.mark.parametrize("trigger", CARRIERS)
@pytest.mark.parametrize("fields", FIELDS)
def test_the_handler_reads_the_generated_event_as_that_trigger_with_those_fields(trigger, fields):
    incoming = read_event(json.loads(json.dumps(generate(trigger, fields))))
    assert incoming.error is None
    assert incoming.trigger == trigger
    assert incoming.field_sets == [fields]


@pytest.mark.parametrize("trigger", sorted(GENERATORS))
def test_the_shape_has_every_key_of_the_shipped_sample(trigger):
    """The samples in events/ follow Huawei's test-event templates; a generated event has the same keys."""
    generated, sample = generate(trigger, {}), load_event(f"{trigger}.json")
    if trigger == "direct":
        return
    assert set(generated) == set(sample)
    if trigger == "timer":
        assert isinstance(generated["user_event"], str)
    if trigger == "apig":
        assert generated["isBase64Encoded"] is True and set(generated["requestContext"]) == {
            "apiId",
            "requestId",
            "stage",
        }


def test_an_obs_event_carries_no_fields():
    assert read_event(generate("obs", {})).trigger == "obs"
    with pytest.raises(ValueError, match="no request fields"):
        generate("obs", {"project_id": PROJECT})


def test_targets_parse_as_all_or_a_list():
    assert parse_targets("ALL") == "all"
    assert parse_targets(f"{PROJECT}:{REGION}, {OTHER_PROJECT}") == [
        {"project_id": PROJECT, "region": REGION},
        {"project_id": OTHER_PROJECT},
    ]
    assert request_fields(PROJECT, REGION, dry_run=True) == {"project_id": PROJECT, "region": REGION, "dry_run": True}


def test_the_command_prints_an_event_that_make_invoke_reads_from_stdin():
    made = run_tool("event", "kafka", "--project-id", PROJECT, "--dry-run")
    assert made.returncode == 0, made.stderr
    assert read_event(json.loads(made.stdout)).field_sets == [{"project_id": PROJECT, "dry_run": True}]
    done = run_tool("invoke", "--event", "-", stdin=made.stdout)
    assert done.returncode == 0, done.stderr
    assert '"would_delete"' in done.stdout and "failed tasks left in" in done.stdout


def test_a_bad_option_is_a_one_line_error():
    done = run_tool("event", "obs", "--project-id", PROJECT)
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0 and "no request fields" in done.stderr
