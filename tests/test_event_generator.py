"""`python -m devtools event`: each trigger's real shape, carrying the given fields where the handler reads them."""

from __future__ import annotations

import json

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, ROOT, load_event, payload_of_result
from test_devtools import run_tool

from devtools.events import GENERATORS, EventError, generate, parse_targets, request_fields
from function.triggers import read_event

FIELDS = [
    {},
    {"project_id": PROJECT, "region": REGION},
    {"project_id": PROJECT, "dry_run": True},
    {"targets": "all", "dry_run": True},
    {"targets": [{"project_id": PROJECT, "region": REGION}, {"project_id": OTHER_PROJECT}]},
]
NO_FIELDS = ("obs", "cts", "lts")  # notifications: the function runs with its settings
CARRIERS = sorted(set(GENERATORS) - set(NO_FIELDS))


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


@pytest.mark.parametrize("trigger", NO_FIELDS)
def test_a_notification_carries_no_fields(trigger):
    assert read_event(generate(trigger, {})).trigger == trigger
    with pytest.raises(EventError, match="no request fields"):
        generate(trigger, {"project_id": PROJECT})


def test_every_sample_in_events_has_a_generator():
    samples = {path.stem for path in (ROOT / "events").glob("*.json")}
    assert samples <= set(GENERATORS)


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
    assert '"would_delete"' in done.stdout and "failed tasks left in" in done.stderr


def test_a_bad_option_is_a_one_line_error():
    done = run_tool("event", "obs", "--project-id", PROJECT)
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0 and "no request fields" in done.stderr


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--project-id", "4B1F2A0C9E7D4C3B8A6F5E4D3C2B1A09"], "32 lower-case hexadecimal"),
        (["--project-id", PROJECT[:31]], "32 lower-case hexadecimal"),
        (["--project-id", "../etc"], "32 lower-case hexadecimal"),
        (["--region", "cn north 4"], "region name"),
        (["--region", "x_y"], "region name"),
        (["--targets", f"{PROJECT}:cn-north-4,nope"], "32 lower-case hexadecimal"),
        (["--targets", "all", "--project-id", PROJECT], "takes no project_id"),
        (["--targets", "all", "--query", "region=cn-north-4"], "takes no region"),  # the union of body and query
        (["--project-id", PROJECT, "--query", "targets=all"], "takes no project_id"),
        (["--method", "GET", "--query", "dry_run=false"], "GET is a dry run"),
        (["--method", ""], "--method is one of"),
        (["--body", f'{{"project_id": "{PROJECT}", "project_id": "{"0" * 31}a"}}'], "more than once"),
        (["--select", "[1]"], "JSON object"),
        (["--body", '{"project": "x"}'], "unknown keys: 'project' (did you mean project_id?)"),
        (["--body", f'{{"project_id": "{PROJECT}", "dry_run": "maybe"}}'], "dry_run must be true or false"),
        (["--body", "[1]"], "JSON object"),
        (["--project-id", PROJECT, "--body", f'{{"project_id": "{PROJECT}"}}'], "given twice"),
        (["--method", "PUT"], "--method is one of"),
        (["--query", "dry_run=true", "--query", "dry_run=false"], "ambiguous"),
        (["--query", "dryrun=true"], "unknown keys"),
        (["--method", "GET", "--targets", f"{PROJECT}"], "travels in a body"),
    ],
)
def test_what_the_generator_is_given_is_validated_an_error_not_an_event(options, says):
    done = run_tool("event", "apig", *options)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and says in done.stderr


def test_method_query_and_body_options_make_the_request_the_handler_reads():
    get = generate("apig", request_fields(PROJECT, REGION), method="get", query=["dry_run=true"])
    assert get["httpMethod"] == "GET" and get["body"] == ""
    assert get["queryStringParameters"] == {"project_id": PROJECT, "region": REGION, "dry_run": "true"}
    [read] = read_event(get).field_sets  # a query string's text "true", read as the request model's boolean
    assert read == {"project_id": PROJECT, "region": REGION, "dry_run": True}
    delete = generate(
        "apig", request_fields(body=f'{{"targets": [{{"project_id": "{OTHER_PROJECT}"}}]}}'), method="DELETE"
    )
    assert delete["httpMethod"] == "DELETE"
    assert read_event(delete).field_sets == [{"targets": [{"project_id": OTHER_PROJECT}]}]
    with pytest.raises(EventError, match="API Gateway's"):
        generate("kafka", {}, method="GET")


@pytest.mark.parametrize("trigger", NO_FIELDS)
def test_a_refused_trigger_is_said_on_stderr_when_generated(trigger):
    """cts, lts and obs events are refused by the function (docs/triggers.md): the generator says so."""
    done = run_tool("event", trigger)
    assert done.returncode == 0 and read_event(json.loads(done.stdout)).error is not None
    assert "the function refuses" in done.stderr


def test_select_is_a_request_field_the_function_reads():
    made = run_tool("event", "apig", "--project-id", PROJECT, "--select", '{"older_than_hours": 24}')
    assert made.returncode == 0, made.stderr
    assert read_event(json.loads(made.stdout)).field_sets[0]["select"] is not None
    refused = run_tool("event", "apig", "--project-id", PROJECT, "--select", '{"older_than_hours": -1}')
    assert refused.returncode != 0 and "older_than_hours" in refused.stderr and refused.stdout == ""


@pytest.mark.parametrize(
    ("fields", "method", "query"),
    [
        ({"project_id": PROJECT}, None, ["targets=all"]),  # targets beside project_id, across body / query
        ({"targets": "all"}, None, ["region=cn-north-4"]),  # a sweep with a region
        ({"project_id": PROJECT}, "GET", ["targets=all"]),
        ({}, "GET", ["dry_run=false"]),  # a GET that says dry_run=false
        ({"project_id": PROJECT}, "", None),  # no method is not the default, deleting POST
    ],
)
def test_an_event_the_generator_prints_is_one_the_function_reads(fields, method, query, invoke, settings):
    """The generator's check is the function's own reading of the whole event, so the union of body and query
    is checked too: an event is printed only when the function would not refuse it."""
    try:
        event = generate("apig", fields, method=method, query=query)
    except EventError:
        return
    settings["KPS_DRY_RUN"] = "true"
    payload = payload_of_result(invoke(json.loads(json.dumps(event))).result)
    assert payload["status"] != "rejected", f"printed an event the function refuses: {payload['error']}"
