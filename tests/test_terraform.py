"""deploy/terraform/ without a cloud or a provider binary: parsed with python-hcl2, every resource and argument
checked against the provider's schema (tests/terraform_schema.json, vendored from the provider's Go source at
v1.97.1), and every name, default and limit against the function's own tables (one source of truth)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

hcl2 = pytest.importorskip("hcl2")

from devtools import expose  # noqa: E402
from devtools.package import RUNTIMES, ZIP_NAME, template_runtime  # noqa: E402
from function import selection  # noqa: E402
from function.api import RetryPolicy  # noqa: E402
from function.errors import Rejected  # noqa: E402
from function.payload import HTTP_METHODS  # noqa: E402
from function.selection import KEYS as SELECT_KEYS  # noqa: E402
from function.selection import SelectionError, parse_setting  # noqa: E402
from function.settings import SETTINGS, SettingSource, default_of, load_settings  # noqa: E402
from function.targets import resolve_targets  # noqa: E402
from function.triggers import read_event  # noqa: E402

MODULE = ROOT / "deploy" / "terraform"
SCHEMA = json.loads((ROOT / "tests" / "terraform_schema.json").read_text())["resources"]
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle"}
BUILTIN = {"terraform_data": {"input", "triggers_replace"}}
SECRETS = sorted(s.name for s in SETTINGS if s.secret)
KNOWN = {s.name: s for s in SETTINGS}
# The KPS actions of ListFailedTask and DeleteFailedTask / DeleteAllFailedTask (role/policy-based aliases; DEW API
# reference, ListFailedTask.html, DeleteFailedTask.html, DeleteAllFailedTask.html).
KPS_ACTIONS = {
    "kps:domainKeypairs:getfailtask",
    "kps:domainKeypairs:deletefailtask",
    "kps:domainKeypairs:deletefailtasks",
}
OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def load(path: Path) -> dict:
    with path.open() as file:
        return hcl2.load(file, serialization_options=OPTIONS)


@pytest.fixture(scope="module")
def module() -> dict[str, list]:
    merged: dict[str, list] = {}
    for path in sorted(MODULE.glob("*.tf")):
        for key, value in load(path).items():
            merged.setdefault(key, []).extend(value)
    return merged


def resources(module: dict) -> Iterator[tuple[str, str, dict]]:
    for entry in module.get("resource", []):
        for kind, named in entry.items():
            for name, body in named.items():
                yield kind, name, body


def resource(module: dict, kind: str, name: str) -> dict:
    return next(body for k, n, body in resources(module) if (k, n) == (kind, name))


def variables(module: dict) -> dict[str, dict]:
    return {name: body for entry in module["variable"] for name, body in entry.items()}


def locals_(module: dict) -> dict[str, Any]:
    return {k: v for entry in module["locals"] for k, v in entry.items()}


def defaults(module: dict) -> dict[str, Any]:
    return {name: body["default"] for name, body in variables(module).items() if "default" in body}


def check_block(body: dict, schema: dict, where: str) -> list[str]:
    """Problems: unknown or computed-only arguments, a block where an attribute is meant (or the reverse),
    missing required arguments, the schema's ConflictsWith / ExactlyOneOf / RequiredWith; nested and dynamic
    blocks included."""
    problems = []
    given = dict(body)
    for dynamic in given.pop("dynamic", []):
        for name, spec in dynamic.items():
            given[name] = spec["content"]
    for name, value in given.items():
        if name in META_ARGUMENTS:
            continue
        argument = schema.get(name)
        if argument is None or argument.get("mode", "optional").startswith("computed"):
            problems.append(f"{where}: {name} is not an argument")
            continue
        nested = argument.get("nested_block")
        if nested is not None:
            if not (isinstance(value, list) and all(isinstance(block, dict) for block in value)):
                problems.append(f"{where}: {name} is a block")
                continue
            if argument.get("maxitems") and len(value) > argument["maxitems"]:
                problems.append(f"{where}: at most {argument['maxitems']} {name}")
            for block in value:
                problems += check_block(block, nested, f"{where}.{name}")
    required = [name for name, argument in schema.items() if argument.get("mode") == "required"]
    problems += [f"{where}: {name} is required" for name in required if name not in given]
    return problems + _relations(given, schema, where)


def _relations(given: dict, schema: dict, where: str) -> list[str]:
    """The provider's own cross-argument rules, refused at validate."""
    problems = []
    for name, argument in schema.items():
        if name in given:
            problems += [f"{where}: {name} conflicts with {o}" for o in argument.get("ConflictsWith", []) if o in given]
            problems += [f"{where}: {name} needs {o}" for o in argument.get("RequiredWith", []) if o not in given]
        if "ExactlyOneOf" in argument:
            group = sorted({name, *argument["ExactlyOneOf"]})
            if sum(n in given for n in group) != 1:
                problems.append(f"{where}: exactly one of {', '.join(group)}")
    return sorted(set(problems))


def test_every_resource_and_argument_is_in_the_providers_schema(module):
    kinds = {kind for kind, _, _ in resources(module)}
    assert kinds <= set(SCHEMA) | set(BUILTIN), kinds - set(SCHEMA)
    assert "data" not in module, "no data source: none is in the vendored schema"
    problems = []
    for kind, name, body in resources(module):
        if kind in BUILTIN:
            assert set(body) - META_ARGUMENTS <= BUILTIN[kind], (kind, name)
            continue
        problems += check_block(body, SCHEMA[kind]["arguments"], f"{kind}.{name}")
    assert problems == []


def test_every_reference_names_a_declared_resource_and_an_attribute_it_has(module):
    declared = {(kind, name) for kind, name, _ in resources(module)}
    text = "\n".join(path.read_text() for path in MODULE.glob("*.tf"))
    references = set(re.findall(r"\b(huaweicloud_\w+|terraform_data)\.(\w+)(?:\[[^\]]*\])?(?:\.(\w+))?", text))
    assert references
    for kind, name, attribute in references:
        assert (kind, name) in declared, (kind, name)
        if attribute and kind in SCHEMA:
            assert attribute == "id" or attribute in SCHEMA[kind]["arguments"], (kind, name, attribute)


def test_the_checker_catches_what_the_provider_would_refuse():
    """The schema check can fail: an unknown argument, a computed one, a missing required one, a bad block."""
    schema = SCHEMA["huaweicloud_ces_alarmrule"]["arguments"]
    good = {"alarm_name": "a", "metric": [{"namespace": "SYS.FunctionGraph"}], "alarm_template_id": "t"}
    assert check_block(good, schema, "x") == []
    assert check_block({**good, "alarm_state": "ok"}, schema, "x") == ["x: alarm_state is not an argument"]
    assert check_block({"metric": [{"namespace": "n"}], "alarm_template_id": "t"}, schema, "x") == [
        "x: alarm_name is required"
    ]
    assert check_block({**good, "metric": "SYS.FunctionGraph"}, schema, "x") == ["x: metric is a block"]
    assert check_block({**good, "metric": [{}]}, schema, "x") == ["x.metric: namespace is required"]
    function = SCHEMA["huaweicloud_fgs_function"]["arguments"]
    body = {"name": "f", "runtime": "Python3.12", "memory_size": 128, "timeout": 3, "app": "default", "agency": "a"}
    assert [p for p in check_block(body, function, "f") if "conflict" in p] == []
    assert "f: app conflicts with package" in check_block({**body, "package": "default"}, function, "f")
    assert "f: agency conflicts with xrole" in check_block({**body, "xrole": "x"}, function, "f")
    agency = SCHEMA["huaweicloud_identity_agency"]["arguments"]
    both = {"name": "a", "delegated_service_name": "op_svc_cff", "delegated_domain_name": "op_svc_cff"}
    assert "a: exactly one of delegated_domain_name, delegated_service_name" in check_block(both, agency, "a")
    required_with = next((n, a) for r in SCHEMA.values() for n, a in r["arguments"].items() if a.get("RequiredWith"))
    parent = next(r["arguments"] for r in SCHEMA.values() if required_with[0] in r["arguments"])
    assert f"y: {required_with[0]} needs {required_with[1]['RequiredWith'][0]}" in check_block(
        {required_with[0]: "v"}, parent, "y"
    )


def test_the_function(module):
    function = resource(module, "huaweicloud_fgs_function", "this")
    assert function["functiongraph_version"] == "v2", "explicit (ForceNew and Computed), as docs/deploy.md says"
    assert (function["app"], function["code_type"], function["handler"]) == ("default", "zip", "handler.handler")
    module_name, attribute = function["handler"].split(".")
    assert callable(getattr(importlib.import_module(module_name), attribute))
    assert ZIP_NAME in locals_(module)["package_path"], "the zip make package builds"
    assert function["func_code"] == "${filebase64(local.package_path)}"
    assert function["user_data"] == "${jsonencode(local.user_data)}"
    assert function["encrypted_user_data"] == (
        "${length(var.secret_settings) > 0 ? jsonencode(var.secret_settings) : null}"
    ), "no secrets: no encrypted_user_data at all"
    assert "max_instance_num" not in function, "the provider's default; 0 would stop every invocation"
    assert function["enable_lts_log"] is True
    for part in ("group_id", "group_name", "stream_id", "stream_name"):
        assert function[f"log_{part}"].startswith("${huaweicloud_lts_"), part
    assert function["agency"] == "${huaweicloud_identity_agency.this.name}"
    assert (function["memory_size"], function["timeout"]) == ("${var.memory_size}", "${var.timeout}")
    assert resource(module, "huaweicloud_lts_group", "this")["ttl_in_days"] == "${var.log_ttl_days}"


def test_defaults_agree_with_the_function_the_package_and_make_expose(module):
    values = defaults(module)
    assert values["runtime"] == template_runtime(), "make package builds for template.yml's runtime"
    runtime_check = variables(module)["runtime"]["validation"][0]["condition"]
    assert set(re.findall(r"Python3\.\d+", runtime_check)) == set(RUNTIMES)
    assert values["function_name"] == default_of("SERVICE_NAME")
    parser_default = re.search(r'"--function", default="([^"]+)"', (ROOT / "devtools" / "expose.py").read_text())
    assert parser_default and parser_default.group(1) == values["function_name"]
    assert float(locals_(module)["default_http_budget_seconds"]) == float(default_of("KPS_HTTP_BUDGET_SECONDS"))
    http_type = variables(module)["http"]["type"]
    assert f"optional(number, {expose.MAX_BACKEND_TIMEOUT_MS})" in http_type
    assert 'optional(string, "DEFAULT_ENVIRONMENT_RELEASE_ID")' in http_type
    assert 'optional(string, "RELEASE")' in http_type


def test_the_setting_names_the_module_checks_are_the_functions(module):
    """One source of truth: settings may name what SETTINGS has (a typo, KPS_DRYRUN, would be ignored by the
    function: a meant dry run deletes) but the module's own and the credentials; KPS_SELECT's keys are selection's."""
    names = locals_(module)
    assert sorted(names["secret_names"]) == SECRETS
    assert set(names["module_setting_names"]) == module_settings(module)
    runtime = {name for name in KNOWN if name.startswith("RUNTIME_")}  # FunctionGraph's own
    free = set(KNOWN) - set(SECRETS) - module_settings(module) - runtime
    assert sorted(names["free_settings"]) == sorted(free) and len(names["free_settings"]) == len(free)
    assert tuple(names["select_keys"]) == SELECT_KEYS
    assert set(names["select_operate_types"]) == selection.OPERATE_TYPES
    bounds = [names[f"select_max_{name}"] for name in ("age_hours", "values", "value_length")]
    assert bounds == [selection.MAX_AGE_HOURS, selection.MAX_VALUES, selection.MAX_VALUE_LENGTH]
    for name in ("settings", "secret_settings"):
        assert "local.secret_names" in variables(module)[name]["validation"][0]["condition"], name
    assert variables(module)["secret_settings"].get("sensitive") is True, "else plan prints the AK/SK in clear"


def module_settings(module: dict) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Z0-9_]+) = ", locals_(module)["module_settings"]))


def test_the_settings_the_module_sets_are_known_and_not_secret(module):
    names = module_settings(module)
    assert names >= {"KPS_REGION", "KPS_PROJECT_ID", "KPS_ALLOWED_PROJECT_IDS", "KPS_RAISE_ON_FAILURE", "KPS_TARGETS"}
    assert names <= set(KNOWN) and not [n for n in names if KNOWN[n].secret]
    assert 'KPS_RAISE_ON_FAILURE = "true"' in locals_(module)["module_settings"], "failures reach failcount"


def test_the_default_timeout_exceeds_the_worst_case_retry_budget(module):
    values = defaults(module)
    settings = load_settings(SettingSource(None, {}))
    budget = 2 * RetryPolicy.from_settings(settings).worst_case_seconds()  # a single-page count, then the delete
    assert values["timeout"] > budget, (values["timeout"], budget)


def test_the_timer_is_replaced_when_its_event_data_changes(module):
    for kind, name, body in resources(module):
        if kind != "huaweicloud_fgs_function_trigger":
            continue
        source = re.fullmatch(r"\$\{jsonencode\((.+)\)\}", body["event_data"]).group(1)
        [lifecycle] = body["lifecycle"]
        assert lifecycle["ignore_changes"] == ["event_data"], "the API's own fields never show as a diff"
        [trigger] = lifecycle["replace_triggered_by"]
        holder = re.fullmatch(r"\$\{terraform_data\.(\w+)(\[each\.key\])?\}", trigger)
        assert holder, trigger
        assert resource(module, "terraform_data", holder.group(1))["input"] == "${" + source + "}", name
        if "for_each" in body:
            assert resource(module, "terraform_data", holder.group(1))["for_each"] == body["for_each"]


def test_the_timer_event_data_and_what_the_function_reads_from_it(module):
    timer = resource(module, "huaweicloud_fgs_function_trigger", "timer")
    assert timer["type"] == "TIMER"
    # No DISABLED timer: a replacement (a new schedule) may be created ACTIVE whatever the status said.
    assert timer["count"] == "${var.timer_enabled ? 1 : 0}" and timer["status"] == "ACTIVE"
    data = locals_(module)["timer_event_data"]
    shape = SCHEMA["huaweicloud_fgs_function_trigger"]["event_data_shapes"]["TIMER"]
    assert set(data) <= set(shape) and {"name", "schedule_type", "schedule"} <= set(data)
    values = defaults(module)
    assert len(values["schedule"].split()) == 6, "FunctionGraph cron has seconds"
    event = {"version": "v1.0", "time": "2026-11-29T03:00:00+08:00", "trigger_type": "TIMER",
             "trigger_name": "t", "user_event": values["timer_user_event"]}  # fmt: skip
    read = read_event(event)
    assert (read.trigger, read.field_sets, read.error) == ("timer", [{}], None), "it cleans the settings' targets"


def test_the_http_trigger_is_make_exposes(module):
    http = json.loads((MODULE / "http-trigger.json").read_text())
    assert tuple(http["methods"]) == tuple(HTTP_METHODS)
    # The exact path /<function name> only (SWA would match every path under it), IAM-authenticated, HTTPS, public.
    assert (http["match_mode"], http["auth"], http["protocol"], http["type"]) == ("NORMAL", "IAM", "HTTPS", 1)
    assert http["max_backend_timeout_ms"] == expose.MAX_BACKEND_TIMEOUT_MS
    trigger = resource(module, "huaweicloud_fgs_function_trigger", "http")
    assert trigger["type"] == expose.TRIGGER_TYPE and trigger["for_each"] == "${local.http_event_data}"
    text = locals_(module)["http_event_data"]
    config = expose.Config("cn-north-4", "0" * 32, "f", "i", "g", "RELEASE", "e", 60000)
    wanted = config.event_data("GET")
    body = re.search(r"method => \{(.*)\}\}", text).group(1)
    keys = re.findall(r"(?:^|, )(\w+) = ", body)
    assert sorted(set(keys) - {"timeout", "invocation_type"}) == sorted(wanted), "the same fields as make expose"
    shape = SCHEMA["huaweicloud_fgs_function_trigger"]["event_data_shapes"]["APIG|DEDICATEDGATEWAY"]
    assert set(wanted) <= set(shape) and set(wanted["func_info"]) <= set(shape["func_info"])
    for key in ("type", "protocol", "match_mode", "auth", "invocation_type"):
        assert f"{key} = local.http.{key}" in text, key
    assert 'path = "/${var.function_name}"' in text and wanted["path"] == "/f"
    conditions = " ".join(p["condition"] for p in trigger["lifecycle"][0]["precondition"])
    assert "local.http.max_backend_timeout_ms" in conditions
    assert ">= local.http_budget_ms + local.http.payload_margin_ms" in conditions, "budget + the payload's 2 s"
    assert http["payload_margin_ms"] == expose.PAYLOAD_MARGIN_MS == 2000
    budget = locals_(module)["http_budget_ms"]
    assert '"KPS_HTTP_BUDGET_SECONDS"' in budget and "var.timeout" in budget, "the smaller of the budget and timeout"


def test_least_privilege_agency_and_role(module):
    role = resource(module, "huaweicloud_identity_role", "kps_failed_tasks")
    assert role["type"] == "XA"
    assert set(re.findall(r'"(kps:[^"]+)"', role["policy"])) == KPS_ACTIONS
    # Every statement, every action (the whole policy, evaluated, in test_the_role_policy_is_exactly_the_kps_actions).
    assert len(re.findall(r"Effect\s*=", role["policy"])) == 1 and len(re.findall(r"Action\s*=", role["policy"])) == 1
    assert set(re.findall(r'"([^"]*:[^"]*)"', role["policy"])) == KPS_ACTIONS, "no other action, no wildcard"
    agency = resource(module, "huaweicloud_identity_agency", "this")
    assert agency["delegated_service_name"] == "op_svc_cff" and "delegated_domain_name" not in agency
    assert agency["duration"] == "FOREVER", "an expiring agency leaves the function without credentials"
    [dynamic] = agency["dynamic"]
    assert dynamic["project_role"]["for_each"] == "${local.sweep ? [] : local.granted}"
    assert dynamic["project_role"]["content"] == [
        {
            "project": "${project_role.value}",
            "roles": ["${huaweicloud_identity_role.kps_failed_tasks.name}"],
        }
    ]
    assert agency["all_resources_roles"] == "${local.sweep ? [huaweicloud_identity_role.kps_failed_tasks.name] : null}"
    assert locals_(module)["sweep"] == "${var.sweep}", "one sweep switch: what the module writes"


def test_the_alarm_watches_failcount_and_notifies_the_topic(module):
    alarm = resource(module, "huaweicloud_ces_alarmrule", "failcount")
    assert alarm["metric"] == [{"namespace": "SYS.FunctionGraph"}]
    assert alarm["alarm_type"] == "MULTI_INSTANCE"
    [condition] = alarm["condition"]
    assert condition == {
        "metric_name": "failcount", "period": 300, "filter": "sum", "comparison_operator": ">=", "value": 1,
        "count": 1, "suppress_duration": 3600, "alarm_level": 2,
    }, "one failure in five minutes raises it"  # fmt: skip
    assert alarm.get("alarm_enabled", True) is True and alarm.get("alarm_action_enabled", True) is True
    assert "ok_actions" not in alarm and "insufficientdata_actions" not in alarm
    [dimension] = alarm["resources"][0]["dimensions"]
    assert dimension == {
        "name": "package-functionname",
        "value": "${huaweicloud_fgs_function.this.app}-${huaweicloud_fgs_function.this.name}",
    }, "FunctionGraph's dimension is <app>-<function>"
    assert alarm["alarm_actions"] == [
        {"type": "notification", "notification_list": ["${huaweicloud_smn_topic.alarms.topic_urn}"]}
    ]
    email = resource(module, "huaweicloud_smn_subscription", "email")
    assert email["protocol"] == "email" and email["count"] == '${var.alarm_email == "" ? 0 : 1}'
    assert email["topic_urn"] == "${huaweicloud_smn_topic.alarms.topic_urn}"
    assert email["endpoint"] == "${var.alarm_email}"


def test_the_outputs(module):
    """function_urn: the provider's urn attribute is the URN without the version (id carries :latest; reference,
    huaweicloud_fgs_function); api_url: the HTTP triggers' path on the group's domain."""
    outputs = {name: body for entry in module["output"] for name, body in entry.items()}
    assert outputs["function_urn"]["value"] == "${huaweicloud_fgs_function.this.urn}"
    assert (
        outputs["api_url"]["value"] == '${var.http == null ? null : "https://${var.http.domain}/${var.function_name}"}'
    )
    assert 'path = "/${var.function_name}"' in locals_(module)["http_event_data"], "the same path as the triggers"
    assert outputs["alarm_topic_urn"]["value"] == "${huaweicloud_smn_topic.alarms.topic_urn}"


EXAMPLES = sorted([MODULE / "terraform.tfvars.example", *(MODULE / "examples").glob("*.tfvars")])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_set_declared_variables_and_valid_settings(module, path):
    example = load(path)
    declared = variables(module)
    assert set(example) <= set(declared)
    assert {name for name, body in declared.items() if "default" not in body} <= set(example), "required variables"
    settings = example.get("settings", {})
    assert set(settings) <= set(KNOWN), set(settings) - set(KNOWN)
    assert not [n for n in settings if KNOWN[n].secret] and "secret_settings" not in example
    load_settings(SettingSource(None, {k: str(v) for k, v in settings.items()}))  # every value parses
    if "http" in example:
        budget = float(settings.get("KPS_HTTP_BUDGET_SECONDS", default_of("KPS_HTTP_BUDGET_SECONDS")))
        assert example["http"].get("timeout_ms", expose.MAX_BACKEND_TIMEOUT_MS) >= expose.min_backend_timeout_ms(budget)


def test_a_nightly_selective_cleanup_example():
    example = load(MODULE / "examples" / "nightly-selective.tfvars")
    assert json.loads(example["settings"]["KPS_SELECT"]) == {"older_than_hours": 168}
    assert "http" not in example and len(example["schedule"].split()) == 6


def test_terraform_fmt():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    run = {"capture_output": True, "text": True, "timeout": 60}
    done = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(MODULE)], check=False, **run)
    assert done.returncode == 0, done.stdout + done.stderr
    example = MODULE / "terraform.tfvars.example"  # not a .tfvars name, so fmt reads it from stdin
    done = subprocess.run([terraform, "fmt", "-"], input=example.read_text(), check=False, **run)
    assert done.returncode == 0 and done.stdout == example.read_text(), done.stdout + done.stderr


# Terraform itself, where installed, evaluates the module's variables (their validation included) and locals:
# they need no provider, so a copy of the module without its resources runs in `terraform console` offline.
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
PROJECT_ID = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09"
REQUIRED = ("-var", "region=cn-north-4", "-var", f"project_id={PROJECT_ID}")
INSTANCE, GROUP = "eddc4d25480b4cd6b512f270a1b8b341", "c77f5e81d9cb4424bf704ef2b0ac7600"
HTTP = f'http={{instance_id="{INSTANCE}", group_id="{GROUP}", domain="d.example.com", timeout_ms=58000}}'
TZ_BACKWARD = ("GMT", "Etc/GMT0", "Etc/UCT", "PRC", "US/Eastern", "CET", "EST5EDT")  # top-level names and links


@pytest.fixture(scope="module")
def without_resources(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("module")
    shutil.copy(MODULE / "variables.tf", folder)
    shutil.copy(MODULE / "http-trigger.json", folder)
    blocks = [re.findall(r"(?ms)^locals \{.*?^\}", path.read_text()) for path in sorted(MODULE.glob("*.tf"))]
    (folder / "locals.tf").write_text("\n".join(block for found in blocks for block in found))
    return folder


def console(folder: Path, expression: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TERRAFORM, "console", *args],
        input=expression,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(folder)},
    )


def evaluate(folder: Path, expression: str, *args: str) -> Any:
    done = console(folder, f"jsonencode({expression})", *args)
    assert done.returncode == 0 and "Error" not in done.stderr, done.stdout + done.stderr
    return json.loads(json.loads(done.stdout))


@needs_terraform
def test_terraform_builds_the_http_event_data_make_expose_builds(without_resources):
    built = evaluate(without_resources, "local.http_event_data", *REQUIRED, "-var", HTTP)
    config = expose.Config("cn-north-4", PROJECT_ID, "kps-failed-task-cleaner", INSTANCE, GROUP, "RELEASE",
                           "DEFAULT_ENVIRONMENT_RELEASE_ID", 58000)  # fmt: skip
    assert list(built) == sorted(HTTP_METHODS)
    assert built == {method: config.event_data(method) for method in HTTP_METHODS}
    assert evaluate(without_resources, "local.http_event_data", *REQUIRED) == {}, "no http: no trigger"


def user_data(folder: Path, *args: str) -> tuple[Any, bool, float, dict]:
    data, sweep, budget_ms = evaluate(folder, "[local.user_data, local.sweep, local.http_budget_ms]", *args)
    return load_settings(SettingSource(None, data)), sweep, budget_ms, data


def refused(folder: Path, *args: str, expression: str = "jsonencode(local.user_data)") -> str:
    """The output of a console run that should stop at a variable's validation (1.11 may exit 0 or panic)."""
    done = console(folder, expression, *REQUIRED, *args)
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stderr + done.stdout)


OTHER = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
PROJECTS = f'projects=[{{name="cn-north-4_team", id="{OTHER}"}}, {{name="ap-southeast-3", id="{PROJECT_ID}"}}]'


@needs_terraform
def test_the_role_policy_is_exactly_the_kps_actions(tmp_path):
    """The policy as Terraform sends it: one Allow statement of the three KPS actions, nothing else (a second
    statement, a wildcard, a Deny turned Allow all fail here)."""
    source = (MODULE / "main.tf").read_text()
    [policy] = re.findall(r"(?ms)^  policy = (jsonencode\(\{.*?^  \}\))$", source)
    (tmp_path / "policy.tf").write_text(f"locals {{\n  policy = {policy}\n}}\n")
    decoded = json.loads(evaluate(tmp_path, "local.policy"))
    [statement] = decoded.pop("Statement")
    assert decoded == {"Version": "1.1"}
    actions = statement.pop("Action")
    assert statement == {"Effect": "Allow"} and sorted(actions) == sorted(KPS_ACTIONS)


def test_the_module_needs_terraform_19():
    """The schedule's and sweep's validations read other variables: Terraform 1.9 and later."""
    versions = load(MODULE / "versions.tf")["terraform"][0]
    assert versions["required_version"] == ">= 1.9"


@needs_terraform
def test_the_user_data_terraform_computes_is_what_the_function_reads(without_resources):
    settings, sweep, budget_ms, _ = user_data(without_resources, *REQUIRED)
    assert (settings.project_id, settings.region, settings.targets, sweep) == (PROJECT_ID, "cn-north-4", None, False)
    assert settings.allowed_project_ids == {PROJECT_ID} and settings.raise_on_failure is True
    assert budget_ms == 1000 * float(default_of("KPS_HTTP_BUDGET_SECONDS"))

    settings, sweep, _, _ = user_data(without_resources, *REQUIRED, "-var", "sweep=true")
    assert (settings.targets, settings.allowed_project_ids, sweep) == ("all", None, True)

    overrides = 'settings={KPS_HTTP_BUDGET_SECONDS="30", KPS_DRY_RUN="true"}'
    settings, _, budget_ms, _ = user_data(without_resources, *REQUIRED, "-var", overrides)
    assert (settings.http_budget_seconds, settings.dry_run, budget_ms) == (30, True, 30000)
    _, _, budget_ms, _ = user_data(without_resources, *REQUIRED, "-var", "timeout=20")
    assert budget_ms == 20000, "a shorter function timeout answers first"


@needs_terraform
@pytest.mark.parametrize("name", ["KPS_TARGETS", "KPS_ALLOWED_PROJECT_IDS", "KPS_PROJECT_ID", "KPS_REGION"])
@pytest.mark.parametrize("value", ["all", " ALL ", PROJECT_ID])
def test_the_targets_are_the_modules_not_settings(without_resources, name, value):
    """A sweep or a target list in the free settings map would get grants that do not match it (a broad grant and
    a one-project allow-list, or targets the role never reaches): refused, with the variable to use instead."""
    output = refused(without_resources, "-var", f'settings={{{name}="{value}"}}')
    assert "Error: Invalid value for variable" in output and 'variable "settings"' in output
    assert "use region, project_id, projects or sweep = true" in output.replace("\n│", "").replace("  ", " ")


@needs_terraform
@pytest.mark.parametrize(
    "setting",
    [
        'KPS_DRYRUN="true"',  # a typo the function would ignore: the meant dry run deletes
        'KPS_DRY_RUN_="true"',
        'KPS_SELECTION="{}"',
        'LOGLEVEL="DEBUG"',
        'KPS_RAISE_ON_FAILURE="false"',  # the module's: failed runs would no longer reach the failcount alarm
        'KPS_SELECT="{}"',  # KPS_SELECT: what function/selection.py refuses, every run, after apply
        'KPS_SELECT="{\\"older_than_days\\": 7}"',
        'KPS_SELECT="older_than_hours=168"',
        'KPS_SELECT="[]"',
    ],
)
def test_a_setting_the_function_would_ignore_or_refuse_fails_the_plan(without_resources, setting):
    output = refused(without_resources, "-var", f"settings={{{setting}}}")
    assert "Error: Invalid value for variable" in output and 'variable "settings"' in output


# KPS_SELECT texts and whether function/selection.py reads them (checked too): a type, a bound, a value each.
SELECTS = {
    '{"older_than_hours": 0}': True,
    '{"older_than_hours": -0}': True,
    '{"older_than_hours": 0.5}': True,
    '{"older_than_hours": 1000000}': True,
    # json reads a number with a fraction or an exponent as a float, Terraform exactly: these round into the bounds.
    '{"older_than_hours": 1000000.0000000000000000001}': True,  # 1000000.0
    '{"older_than_hours": -1e-400}': True,  # -0.0
    '{"operate_type": ["FAILED_RESET"], "server_name": ["web-1"]}': True,
    '{"operate_type": ["FAILED_RESET", "FAILED_REPLACE", "FAILED_UNBIND"], "task_error_code": ["KPS.0001"]}': True,
    '{"server_name": ["' + "x" * 256 + '"], "keypair_name": ["older_than_hours", "\\"older_than_hours\\": 1"]}': True,
    '{"server_id": [' + ", ".join(f'"s{n}"' for n in range(100)) + "]}": True,
    '{"older_than_hours": "168"}': False,
    '{"older_than_hours": true}': False,
    '{"older_than_hours": null}': False,
    '{"older_than_hours": -1}': False,
    '{"older_than_hours": 1000001}': False,
    '{"older_than_hours": 1e400}': False,
    '{"older_than_hours": 1000000.0000000001}': False,  # the next float above 1000000
    '{"older_than_hours": -5e-324}': False,  # the least negative float
    '{"older_than_hours": [168]}': False,
    '{"operate_type": "FAILED_RESET"}': False,
    '{"operate_type": []}': False,
    '{"operate_type": ["FAILED_RESTE"]}': False,
    '{"operate_type": ["failed_reset"]}': False,
    '{"server_name": [1]}': False,
    '{"server_name": [""]}': False,
    '{"server_name": [null]}': False,
    '{"server_name": [["web-1"]]}': False,
    '{"server_name": {"a": "web-1"}}': False,
    '{"server_name": ["' + "x" * 257 + '"]}': False,
    # Lengths in code points, as Python's len(): Terraform's length() counts grapheme clusters (200 flags are 400
    # code points; it also inserts U+034F after 30 combining marks, in the text the function is given).
    '{"server_name": ["' + "\U0001f1ef\U0001f1f5" * 200 + '"]}': False,
    '{"server_name": ["x' + "\u0301" * 300 + '"]}': False,
    '{"server_name": ["' + "\U0001f1ef" * 256 + '"]}': True,
    '{"server_id": [' + ", ".join(f'"s{n}"' for n in range(101)) + "]}": False,
    '{"older_than_hours": 1, "older_than_hours": 2}': False,
    '{"server_name": ["a"], "server_name" : ["b"]}': False,
    '{"older_than_hours": 1, "older_than_hour\\u0073": 2}': False,  # the same key, spelled with an escape
    # 1000000 + 2^-34 (the tie a float64 rounds to even, 1000000.0) and a hair above it: a float64 rounds it up
    # (refused); Terraform's 512-bit float reads the tie itself. Over 30 significant digits: refused at plan too.
    '{"older_than_hours": 1000000.0000000000582076609134674072265625' + "0" * 200 + "1}": False,
    # Lengths counted in the text as the function decodes it, not in jsondecode's NFC strings: 200 U+0958 are 400
    # code points in NFC, 100 U+FB2C 300, 200 e + U+0301 200.
    '{"server_name": ["' + "\\u0958" * 200 + '"]}': True,
    '{"server_name": ["' + "\\ufb2c" * 100 + '"]}': True,
    '{"server_name": ["' + "e\\u0301" * 200 + '"]}': False,
    '{"server_name": ["' + "\\ud83d\\ude00" * 256 + '"]}': True,  # a surrogate pair is one code point
    '{"server_name": ["' + '\\"' * 257 + '"]}': False,
}


@needs_terraform
@pytest.mark.parametrize(("select", "ok"), SELECTS.items(), ids=[text[:60] for text in SELECTS])
def test_the_plan_takes_a_kps_select_exactly_when_the_function_does(without_resources, select, ok):
    """The types and bounds function/selection.py checks, at plan: else every run after the apply is refused."""
    quoted = select.replace("\\", "\\\\").replace('"', '\\"')
    if ok:
        data = user_data(
            without_resources, *REQUIRED, "-var", f'settings={{KPS_SELECT="{quoted}", KPS_DRY_RUN="true"}}'
        )
        assert data[3]["KPS_SELECT"] == select and parse_setting(select)
        return
    with pytest.raises(SelectionError):
        parse_setting(select)
    output = refused(without_resources, "-var", f'settings={{KPS_SELECT="{quoted}"}}')
    assert "Error: Invalid value for variable" in output and "KPS_SELECT's values" in output.replace("\n│", "")


@needs_terraform
@pytest.mark.parametrize("number", ["1e-999999", "1.000000000000000000000000000000"], ids=["exponent", "digits"])
def test_a_kps_select_number_too_long_for_the_plan_is_refused_there_and_read_as_a_float_by_the_function(
    without_resources, tmp_path, number
):
    """The documented one-way difference (docs/deploy.md): jsondecode reads a number exactly, in time that grows
    with its exponent (1e-999999: over a minute, console's 60 s timeout fails this test), so the plan refuses a
    number with an exponent of more than 3 digits or more than 30 significant digits before decoding; the
    function reads it as a float and takes it in range. A folder of its own: a killed console keeps its lock."""
    shutil.copytree(without_resources, tmp_path / "module")
    select = '{"older_than_hours": ' + number + "}"
    assert parse_setting(select).older_than_hours == float(number)
    quoted = select.replace('"', '\\"')
    output = refused(tmp_path / "module", "-var", f'settings={{KPS_SELECT="{quoted}"}}')
    assert "Error: Invalid value for variable" in output and "KPS_SELECT holds a number" in output.replace("\n│", "")


@needs_terraform
def test_an_empty_kps_select_is_unset_at_plan_as_in_the_function(without_resources):
    """The function reads KPS_SELECT = "" as unset (no selection): so does the plan, where jsondecode("") fails."""
    load_settings(SettingSource(None, {"KPS_SELECT": ""}))  # the function takes it
    data = user_data(without_resources, *REQUIRED, "-var", 'settings={KPS_SELECT="", KPS_DRY_RUN="true"}')
    assert data[3].get("KPS_SELECT", "") == ""


def agency_precondition(module: dict) -> str:
    [lifecycle] = resource(module, "huaweicloud_identity_agency", "this")["lifecycle"]
    [precondition] = lifecycle["precondition"]
    return precondition["condition"][2:-1]


@needs_terraform
@pytest.mark.parametrize(
    "args",
    [(), ("-var", PROJECTS), ("-var", "sweep=true"), ("-var", "project_name=cn-north-4_team")],
    ids=["one", "projects", "sweep", "sub-project"],
)
def test_every_project_the_function_may_clean_gets_the_role(module, without_resources, args):
    """The projects a run cleans and a request may name are exactly those the agency's role is granted on (by IAM
    project name: a region's default project is named after it, a sub-project <region>_<name>)."""
    settings, sweep, _, _ = user_data(without_resources, *REQUIRED, *args)
    granted, holds = evaluate(without_resources, f"[local.granted, {agency_precondition(module)}]", *REQUIRED, *args)
    assert holds is True
    if sweep:
        assert granted is None and settings.allowed_project_ids is None and settings.targets == "all"
        return
    wanted = resolve_targets([{}], settings)  # what a timer run with user_event {} cleans: refused if not allowed
    assert {t.project_id for t in wanted} == settings.allowed_project_ids
    names = (
        dict(zip([OTHER, PROJECT_ID], ["cn-north-4_team", "ap-southeast-3"]))
        if args == ("-var", PROJECTS)
        else {PROJECT_ID: args[1].split("=")[1] if args else "cn-north-4"}
    )
    assert sorted(granted) == sorted(names[t.project_id] for t in wanted)
    assert all(names[t.project_id].split("_")[0] == t.region for t in wanted), "each cleaned in its own region"


@needs_terraform
def test_the_grant_precondition_can_fail(module, without_resources):
    """An allow-list wider than the grants (as settings could once write) stops the plan."""
    condition = agency_precondition(module).replace(
        "local.user_data", f'merge(local.user_data, {{KPS_ALLOWED_PROJECT_IDS = "{PROJECT_ID},{OTHER}"}})'
    )
    assert evaluate(without_resources, condition, *REQUIRED) is False
    targets = f'merge(local.user_data, {{KPS_TARGETS = "ap-southeast-3:{PROJECT_ID}"}})'
    condition = agency_precondition(module).replace("local.user_data", targets)
    assert evaluate(without_resources, condition, *REQUIRED) is False


@needs_terraform
@pytest.mark.parametrize(
    "bad",
    [
        "region=Cn North 4",
        f"project_id={PROJECT_ID.upper()}",
        'settings={HUAWEICLOUD_SDK_SK="x"}',  # a credential in plain user_data
        'settings={RUNTIME_PROJECT_ID="x"}',
        'settings={kps_region="x"}',
        'secret_settings={KPS_REGION="cn-north-4"}',
        "runtime=Python3.11",
        "timeout=901",
        "memory_size=64",
        "schedule_type=Weekly",
        'projects=[{name="cn-north-4", id="x"}]',
        f'projects=[{{name="North 4", id="{OTHER}"}}]',
        f'projects=[{{name="cn-north-4", id="{OTHER}"}}, {{name="cn-north-4_b", id="{OTHER}"}}]',
        "project_name=ap-southeast-3",  # not a project of region
        "function_name=a" + "b" * 58,  # its timer, <name>_timer, would have 65 characters
        "schedule=0 3 * * *",  # a crontab line: FunctionGraph would read it as seconds, minutes, hours, ...
        "schedule=0 0 3 * * ? 2027",
        "schedule=@every",
        "schedule=",
        "log_ttl_days=0",
        "log_ttl_days=366",
        "alarm_email=ops",
        "alarm_email=ops@",
        "alarm_email=ops@example",
        "alarm_email=ops@example.com, dev@example.com",  # SMN refuses it at apply, after the function exists
    ],
)
def test_terraform_refuses_bad_variables(without_resources, bad):
    output = refused(without_resources, "-var", bad)
    assert "Error: Invalid value for variable" in output and f'variable "{bad.split("=")[0]}"' in output


@needs_terraform
def test_a_sweep_takes_no_project_list(without_resources):
    output = refused(without_resources, "-var", "sweep=true", "-var", PROJECTS)
    assert "Error: Invalid value for variable" in output and 'variable "sweep"' in output


@needs_terraform
def test_the_longest_function_name_makes_a_valid_timer_name(without_resources):
    """FunctionGraph: a timer's name starts with a letter, has letters, digits and _ (the English page adds -), at
    most 64 characters (AOS FGS.TimerEventMap)."""
    longest = "a" + "b-" * 28 + "c"
    name = evaluate(without_resources, "local.timer_event_data.name", *REQUIRED, "-var", f"function_name={longest}")
    assert len(name) == 64 and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name), name
    # Its HTTP APIs, <name>_delete (65): a dedicated gateway's API name takes 3 to 255 (provider docs, apig_api.md).
    http = evaluate(
        without_resources, "local.http_event_data", *REQUIRED, "-var", f"function_name={longest}", "-var", HTTP
    )
    for api in http.values():
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.()/:-]{2,254}", api["name"]), api["name"]


@needs_terraform
@pytest.mark.parametrize(
    ("schedule_type", "schedule", "ok"),
    [
        ("Cron", "0 0 3 * * ?", True),
        ("Cron", "0 0/30 * * * ?", True),
        ("Cron", "CRON_TZ=Asia/Shanghai 0 30 2 * * Mon-Fri", True),
        ("Cron", "@every 1h30m", True),
        ("Cron", "@every 1.5h", True),
        ("Cron", "12h", False),
        ("Cron", "59 59 23 31 12 SAT", True),
        ("Cron", "*/10 0-30/5 1,13 L JAN-MAR,dec ?", True),
        ("Cron", "0 0 3 15W * ?", True),
        ("Cron", "0 0 3 ? * 1-7", True),
        ("Cron", "CRON_TZ=UTC 0 0 3 * * ?", True),
        ("Cron", "CRON_TZ=Etc/GMT-8 0 0 3 * * ?", True),
        ("Cron", "CRON_TZ=America/Argentina/Buenos_Aires 0 0 3 * * ?", True),
        ("Cron", "CRON_TZ=America/Port-au-Prince 0 0 3 * * ?", True),
        ("Cron", "CRON_TZ=Asia/Atlantis 0 0 3 * * ?", True),  # an IANA shape: whether it exists is not checked
        *[("Cron", f"CRON_TZ={zone} 0 0 3 * * ?", True) for zone in TZ_BACKWARD],
        ("Cron", "CRON_TZ=Nowhere/Land 0 0 3 * * ?", False),  # no tz database area
        ("Cron", "CRON_TZ=asia/shanghai 0 0 3 * * ?", False),
        ("Cron", "CRON_TZ=Asia/ 0 0 3 * * ?", False),
        ("Cron", "CRON_TZ=Asia/Shanghai/ 0 0 3 * * ?", False),
        ("Cron", "CRON_TZ=Asia/../../etc/passwd 0 0 3 * * ?", False),
        ("Cron", "CRON_TZ=Etc/GMT+15 0 0 3 * * ?", False),
        ("Cron", "CRON_TZ=Local 0 0 3 * * ?", False),
        ("Cron", "CRON_TZ=utc 0 0 3 * * ?", False),
        ("Cron", "CRON_TZ= 0 0 3 * * ?", False),
        ("Cron", "a b c d e f", False),  # six "fields" of letters that name no month or weekday
        ("Cron", "99 99 99 * * ?", False),
        ("Cron", "60 0 3 * * ?", False),
        ("Cron", "0 60 3 * * ?", False),
        ("Cron", "0 0 24 * * ?", False),
        ("Cron", "0 0 3 0 * ?", False),
        ("Cron", "0 0 3 32 * ?", False),
        ("Cron", "0 0 3 * 0 ?", False),
        ("Cron", "0 0 3 * 13 ?", False),
        ("Cron", "0 0 3 ? * 8", False),
        ("Cron", "0 0 3 ? * FUN", False),
        ("Cron", "0 0 3 * * ?,", False),
        ("Cron", "0 0 3 1, * ?", False),
        ("Rate", "1m", True),
        ("Rate", "60m", True),
        ("Rate", "24h", True),
        ("Rate", "30d", True),
        ("Rate", "0m", False),
        ("Rate", "61m", False),
        ("Rate", "90m", False),
        ("Rate", "25h", False),
        ("Rate", "31d", False),
        ("Rate", "1.5h", False),
        ("Rate", "0 0 3 * * ?", False),  # Rate with the default cron schedule
    ],
)
def test_terraform_refuses_a_schedule_the_api_refuses(without_resources, schedule_type, schedule, ok):
    """A schedule change replaces the timer, delete first: one the API refuses must fail the plan, not the apply
    after the working timer is gone (Huawei: functiongraph_01_0207 for Rate, functiongraph_01_0908 for Cron)."""
    args = ("-var", f"schedule_type={schedule_type}", "-var", f"schedule={schedule}")
    if ok:
        assert evaluate(without_resources, "local.timer_event_data.schedule", *REQUIRED, *args) == schedule
    else:
        output = refused(without_resources, *args)
        assert "Error: Invalid value for variable" in output and 'variable "schedule"' in output


@needs_terraform
def test_the_plan_takes_every_tz_database_zone_in_cron_tz(without_resources):
    """Every name in Python's zoneinfo.available_timezones(), checked against the plan's cron grammar in one console
    run: the tz database's top-level names and backward links (PRC, GMT, CET, US/Eastern, Etc/GMT0) once failed
    the plan though a Go scheduler's time.LoadLocation loads each. "localtime" is left out: the system's link to its
    own zone, no tz database name (like "Local", refused)."""
    zones = sorted(zoneinfo.available_timezones() - {"localtime"})
    assert set(TZ_BACKWARD) <= set(zones)
    expression = f'[for zone in {json.dumps(zones)} : can(regex(local.cron, "CRON_TZ=${{zone}} 0 0 3 * * ?"))]'
    taken = evaluate(without_resources, expression, *REQUIRED)
    assert [zone for zone, ok in zip(zones, taken) if not ok] == []


@needs_terraform
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_passes_terraforms_validation(without_resources, path):
    settings, sweep, _, _ = user_data(without_resources, "-var-file", str(path))  # load_settings reads them all
    assert settings.region
    assert sweep == (settings.targets == "all")


def http_preconditions(module: dict) -> list[str]:
    [lifecycle] = resource(module, "huaweicloud_fgs_function_trigger", "http")["lifecycle"]
    return [p["condition"][2:-1] for p in lifecycle["precondition"]]


@needs_terraform
@pytest.mark.parametrize(
    ("timeout_ms", "settings", "holds"),
    [
        (55001, "{}", [True, False]),  # the payload, finished at 55 s, would race the gateway's 504
        (56999, "{}", [True, False]),
        (57000, "{}", [True, True]),  # the budget (55 s by default) + 2 s for the payload
        (60000, '{KPS_HTTP_BUDGET_SECONDS="58"}', [True, True]),  # the cap leaves exactly the 2 s
        (59999, '{KPS_HTTP_BUDGET_SECONDS="58"}', [True, False]),
        (60001, "{}", [False, True]),
    ],
)
def test_the_http_preconditions(module, without_resources, timeout_ms, settings, holds):
    """At most API Gateway's 60 s, and at least the function's HTTP budget plus the 2 s its payload needs."""
    http = f'http={{instance_id="i", group_id="g", domain="d", timeout_ms={timeout_ms}}}'
    conditions = "[" + ", ".join(http_preconditions(module)) + "]"
    assert evaluate(without_resources, conditions, *REQUIRED, "-var", http, "-var", f"settings={settings}") == holds


def test_the_payload_margin_is_what_the_budget_cap_leaves():
    """KPS_HTTP_BUDGET_SECONDS is capped so that its largest value plus the margin is API Gateway's limit."""
    load_settings(SettingSource(None, {"KPS_HTTP_BUDGET_SECONDS": "58"}))
    with pytest.raises(Rejected):
        load_settings(SettingSource(None, {"KPS_HTTP_BUDGET_SECONDS": "58.001"}))
    assert expose.min_backend_timeout_ms(58) == expose.MAX_BACKEND_TIMEOUT_MS


@needs_terraform
def test_the_4096_character_precondition_bites(module, without_resources):
    """More than FunctionGraph's 4,096 characters of environment variables stop the plan, secrets counted."""
    [lifecycle] = resource(module, "huaweicloud_fgs_function", "this")["lifecycle"]
    [condition] = [p["condition"][2:-1] for p in lifecycle["precondition"] if "4096" in p["condition"]]
    size = len(json.dumps(evaluate(without_resources, "local.user_data", *REQUIRED), separators=(",", ":")))
    padding = 4096 - size - len(',"LOG_LEVEL":""')
    fits = f'settings={{LOG_LEVEL="{"I" * padding}"}}'
    assert evaluate(without_resources, f"[{condition}]", *REQUIRED, "-var", fits) == [True]
    over = fits.replace('="I', '="II')
    assert evaluate(without_resources, f"[{condition}]", *REQUIRED, "-var", over) == [False]
    secret = 'secret_settings={KPS_AUTH_TOKEN="t"}'
    assert evaluate(without_resources, f"[{condition}]", *REQUIRED, "-var", fits, "-var", secret) == [False]
