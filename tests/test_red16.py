"""Red-team (red16) reproductions against issue 16's promises: each test here fails on the branch as reviewed and
states the promise it breaks. Tests only, no fixes. Helpers are test_terraform's (one copy of the module parser)."""

from __future__ import annotations

import json
import re

import pytest
from test_terraform import (
    MODULE,
    PROJECT_ID,
    REQUIRED,
    SCHEMA,
    check_block,
    console,
    evaluate,
    module,  # noqa: F401 - the fixture
    needs_terraform,
    resource,
    user_data,
    without_resources,  # noqa: F401 - the fixture
)

from devtools import expose, openapi30
from function.settings import SettingSource, load_settings
from function.targets import resolve_targets

OTHER = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


# --- least privilege -------------------------------------------------------------------------------------------


@needs_terraform
def test_a_sweep_asked_for_in_settings_is_not_silently_narrowed_to_one_project(without_resources):  # noqa: F811
    """settings = {KPS_TARGETS = "all"} with sweep = false: local.sweep is true, so the role is granted on ALL
    resources, yet the module still writes KPS_ALLOWED_PROJECT_IDS = project_id, and function/sweep.py drops every
    other project. Broad grant, one-project cleanup: neither least privilege nor the sweep docs/iam.md promises."""
    settings, sweep, _, _ = user_data(without_resources, *REQUIRED, "-var", 'settings={KPS_TARGETS="all"}')
    assert sweep and settings.targets == "all"
    assert settings.allowed_project_ids is None, (
        "role on all resources, but the sweep is allow-listed to one project: "
        f"{sorted(settings.allowed_project_ids or [])}"
    )


@needs_terraform
def test_every_project_the_function_may_clean_gets_the_role(without_resources):  # noqa: F811
    """allowed_project_ids adds projects to KPS_ALLOWED_PROJECT_IDS, but project_role is granted on one project
    only (the region's default, by name): every request for the others passes the allow-list and gets KPS.9003."""
    args = (*REQUIRED, "-var", f'allowed_project_ids=["{OTHER}"]')
    settings, sweep, _, _ = user_data(without_resources, *args)
    granted = evaluate(without_resources, "local.sweep ? [] : [var.region]", *args)  # the project_role for_each
    assert not sweep and len(settings.allowed_project_ids) == 2
    assert len(granted) >= len(settings.allowed_project_ids), (granted, sorted(settings.allowed_project_ids))


def test_the_role_is_one_statement_of_the_three_actions(module):  # noqa: F811
    """test_least_privilege_agency_and_role reads only the first `Action = [...]`: a second statement granting
    "*:*:*" passes it (mutation run: SURVIVED)."""
    policy = resource(module, "huaweicloud_identity_role", "kps_failed_tasks")["policy"]
    mutated = policy.replace("}]", '}, { Effect = "Allow", Action = ["*:*:*"] }]', 1)
    assert mutated != policy
    for text in (policy, mutated):
        statements = re.findall(r"Effect\s*=", text)
        actions = re.findall(r'"([a-z*]+:[^"]*)"', text)
        ok = len(statements) == 1 and sorted(actions) == sorted(
            [
                "kps:domainKeypairs:getfailtask",
                "kps:domainKeypairs:deletefailtask",
                "kps:domainKeypairs:deletefailtasks",
            ]
        )
        # the suite's own check, verbatim:
        suite = re.findall(r"Action = \[([^\]]*)\]", text)[0].count(":") == 6 and set(
            re.findall(r'"(kps:[^"]+)"', text)
        ) == {
            "kps:domainKeypairs:getfailtask",
            "kps:domainKeypairs:deletefailtask",
            "kps:domainKeypairs:deletefailtasks",
        }
        assert suite == ok, "the suite's least-privilege check accepts a role that grants everything"


def test_the_agency_does_not_expire(module):  # noqa: F811
    """duration = "ONEDAY" would leave the function without credentials after a day: no test pins FOREVER
    (mutation run: SURVIVED)."""
    source = (MODULE / "main.tf").read_text().replace('duration               = "FOREVER"', 'duration = "ONEDAY"')
    assert 'duration = "ONEDAY"' in source
    test_source = (MODULE.parent.parent / "tests" / "test_terraform.py").read_text()
    assert "FOREVER" in test_source, "nothing in tests/test_terraform.py checks the agency's duration"


# --- the timer -------------------------------------------------------------------------------------------------


@needs_terraform
def test_the_longest_accepted_function_name_makes_a_valid_timer_name(without_resources):  # noqa: F811
    """function_name accepts 60 characters; the timer is named <name>_timer, 66, over FunctionGraph's 64 for a
    timer trigger name (AOS FGS.TimerEventMap: "The length can not exceed 64 characters"). The plan passes, the
    apply fails: and on a rename the old timer is destroyed first."""
    longest = "a" + "b" * 59
    name = evaluate(without_resources, "local.timer_event_data.name", *REQUIRED, "-var", f"function_name={longest}")
    assert len(name) <= 64, (name, len(name))


@needs_terraform
@pytest.mark.parametrize(
    "bad",
    [
        ["-var", "schedule=0 3 * * *"],  # a five-field (crontab) cron: FunctionGraph's has seconds
        ["-var", "schedule_type=Rate"],  # Rate with the default cron schedule
        ["-var", "schedule_type=Rate", "-var", "schedule=90m"],  # Rate minutes are 1..60
    ],
    ids=["five-field-cron", "rate-with-cron", "rate-out-of-range"],
)
def test_terraform_refuses_a_schedule_the_api_refuses(without_resources, bad):  # noqa: F811
    """A schedule change replaces the timer, delete first then create: a schedule the API refuses is only found at
    apply, after the working timer is gone. The plan should refuse it (variables.tf validates neither form)."""
    done = console(without_resources, "jsonencode(local.timer_event_data)", *REQUIRED, *bad)
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr + done.stdout)
    assert "Error: Invalid value for variable" in output, output[-300:]


# --- settings the function would refuse or not act on -------------------------------------------------------------


@needs_terraform
def test_explicit_targets_in_settings_are_allowed_by_the_module_allow_list(without_resources):  # noqa: F811
    """settings = {KPS_TARGETS = "cn-north-4:<project_id>,ap-southeast-3:<other>"} passes every check, but the
    module also writes KPS_ALLOWED_PROJECT_IDS = project_id: every timer run is refused ProjectNotAllowed."""
    targets = f"cn-north-4:{PROJECT_ID},ap-southeast-3:{OTHER}"
    computed = evaluate(
        without_resources, "local.user_data", *REQUIRED, "-var", f'settings={{KPS_TARGETS="{targets}"}}'
    )
    settings = load_settings(SettingSource(None, computed))
    resolve_targets([{}], settings)  # what a timer run with plain-text user_event does


@needs_terraform
def test_the_4096_character_precondition_exists_and_bites(module, without_resources):  # noqa: F811
    """docs/deploy.md: more than 4,096 characters of environment variables are refused by terraform plan. No test
    evaluates the precondition, and deleting it passes the suite (mutation run: SURVIVED)."""
    function = resource(module, "huaweicloud_fgs_function", "this")
    conditions = [p["condition"] for lc in function.get("lifecycle", []) for p in lc.get("precondition", [])]
    sized = [c for c in conditions if "4096" in c]
    assert sized, "no 4096 precondition"
    test_source = (MODULE.parent.parent / "tests" / "test_terraform.py").read_text()
    assert "4096" in test_source, "tests/test_terraform.py never evaluates the 4096 precondition"


# --- the alarm and the outputs ---------------------------------------------------------------------------------


def test_the_alarm_dimension_is_app_dash_name_exactly(module):  # noqa: F811
    """The suite counts two references: "${name}-${app}" (reversed) passes it (mutation run: SURVIVED)."""
    [dimension] = resource(module, "huaweicloud_ces_alarmrule", "failcount")["resources"][0]["dimensions"]
    reversed_ = "${huaweicloud_fgs_function.this.name}-${huaweicloud_fgs_function.this.app}"
    suite_accepts_reversed = reversed_.count("huaweicloud_fgs_function") == 2
    assert dimension["value"] == "${huaweicloud_fgs_function.this.app}-${huaweicloud_fgs_function.this.name}"
    assert not suite_accepts_reversed, "the suite's dimension check accepts <name>-<app>"


def test_the_alarm_is_enabled_and_sums_over_five_minutes(module):  # noqa: F811
    """alarm_enabled = false, alarm_action_enabled = false, filter = "average", period = 86400 or count = 5 all
    pass the suite (mutation run: SURVIVED each): the alarm the issue promises is not pinned."""
    test_source = (MODULE.parent.parent / "tests" / "test_terraform.py").read_text()
    for pinned in ("alarm_enabled", "alarm_action_enabled", '"sum"', "300"):
        assert pinned in test_source, f"tests/test_terraform.py does not pin {pinned}"


@needs_terraform
def test_the_api_url_output_is_the_http_triggers_path(module, without_resources):  # noqa: F811
    """test_the_outputs checks only the names: api_url = "https://${var.http.domain}" (no path) or function_urn =
    .id (with :latest) pass it (mutation run: SURVIVED)."""
    outputs = {name: body for entry in module["output"] for name, body in entry.items()}
    assert outputs["function_urn"]["value"] == "${huaweicloud_fgs_function.this.urn}"
    test_source = (MODULE.parent.parent / "tests" / "test_terraform.py").read_text()
    assert "api_url" in test_source and '["value"]' in test_source.split("def test_the_outputs")[1][:400], (
        "test_the_outputs never looks at an output's value"
    )


def test_the_schema_checker_enforces_conflicts(module):  # noqa: F811
    """check_block ignores ConflictsWith / ExactlyOneOf / RequiredWith: adding `package = "default"` beside `app`,
    or `xrole` beside `agency`, passes (the provider refuses both at validate)."""
    body = dict(resource(module, "huaweicloud_fgs_function", "this"), package="default", xrole="x")
    problems = check_block(body, SCHEMA["huaweicloud_fgs_function"]["arguments"], "f")
    assert problems, "a ConflictsWith violation the provider refuses passes the checker"


# --- the OpenAPI file ------------------------------------------------------------------------------------------


def test_make_openapi_refuses_a_backend_timeout_not_above_the_http_budget(tmp_path):
    """Terraform and make expose refuse a backend timeout not above the HTTP budget (55 s by default); make openapi
    takes 30000 ms, so the imported API's gateway answers 504 before the function's payload."""
    with pytest.raises(SystemExit):
        openapi30.main(["--timeout-ms", "30000", "--output", str(tmp_path / "apig.yaml")])


def test_the_imported_api_is_the_same_kind_terraform_and_make_expose_make():
    """http-trigger.json (Terraform, make expose): type 1, a public API; the import file says private."""
    http = json.loads((MODULE / "http-trigger.json").read_text())
    document = openapi30.generate()
    kinds = {op["x-apigateway-request-type"] for op in openapi30.operations(document)}
    assert kinds == {"public" if http["type"] == 1 else "private"}, (kinds, http["type"], expose.TRIGGER_TYPE)


# --- docs ------------------------------------------------------------------------------------------------------


def _deploy_section() -> str:
    readme = (MODULE.parent.parent / "README.md").read_text()
    return readme.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_deploy_section_does_not_describe_the_dropped_apig_trigger():
    """template.yml has no APIG trigger any more, yet README's Deploy says Serverless Devs' "API Gateway trigger
    needs an API group, `apigGroupName`, that must already exist on the shared gateway"."""
    assert "apigGroupName" not in (MODULE.parent.parent / "template.yml").read_text()
    assert "apigGroupName" not in _deploy_section()


def test_the_import_file_says_the_gateway_forwards_up_to_12_mb():
    """Issue 16 item 6: API Gateway forwards bodies up to 12 MB; the importable file (from api/openapi.yaml) still
    says API Gateway answers 413 APIGW.0201 to "a body over FunctionGraph's 6 MB" (docs/http-api.md says 12)."""
    text = openapi30.OUTPUT.read_text()
    assert "over FunctionGraph's 6 MB" not in text.replace("''", "'")


@needs_terraform
@pytest.mark.parametrize("timeout_ms", [55001, 56000])
def test_the_gateway_waits_long_enough_for_the_payload_to_arrive(module, without_resources, timeout_ms):  # noqa: F811
    """KPS_HTTP_BUDGET_SECONDS is capped at 58 s because "the cap leaves 2 s for the payload to reach the gateway"
    (function/settings.py); the module's precondition accepts a backend timeout 1 ms above the budget, so the
    payload the function finishes at 55 s races the gateway's own 504 at 55.001 s."""
    conditions = [
        p["condition"][2:-1]
        for p in resource(module, "huaweicloud_fgs_function_trigger", "http")["lifecycle"][0]["precondition"]
    ]
    http = f'http={{instance_id="i", group_id="g", domain="d", timeout_ms={timeout_ms}}}'
    holds = evaluate(without_resources, "[" + ", ".join(conditions) + "]", *REQUIRED, "-var", http)
    assert holds == [True, False], "a backend timeout under budget + 2 s passes the plan"
