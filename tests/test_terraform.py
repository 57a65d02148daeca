"""deploy/terraform/ without a cloud or a provider binary: parsed with python-hcl2, every resource and argument
checked against the provider's schema (tests/terraform_schema.json, vendored from the provider's Go source at
v1.97.1), and every name, default and limit against the function's own tables (one source of truth)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

hcl2 = pytest.importorskip("hcl2")

from devtools import expose  # noqa: E402
from devtools.package import RUNTIMES, ZIP_NAME, template_runtime  # noqa: E402
from function.api import RetryPolicy  # noqa: E402
from function.payload import HTTP_METHODS  # noqa: E402
from function.settings import SETTINGS, SettingSource, default_of, load_settings  # noqa: E402
from function.triggers import read_event  # noqa: E402

MODULE = ROOT / "deploy" / "terraform"
SCHEMA = json.loads((ROOT / "tests" / "terraform_schema.json").read_text())["resources"]
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle"}
BUILTIN = {"terraform_data": {"input", "triggers_replace"}}
SECRETS = sorted(s.name for s in SETTINGS if s.secret)
KNOWN = {s.name: s for s in SETTINGS}
# Settings another branch adds (h18-select's KPS_SELECT): allowed in the examples until SETTINGS has them.
PENDING = {"KPS_SELECT"} - set(KNOWN)
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
    missing required arguments; nested and dynamic blocks included."""
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
    return problems


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
    good = {"alarm_name": "a", "metric": [{"namespace": "SYS.FunctionGraph"}]}
    assert check_block(good, schema, "x") == []
    assert check_block({**good, "alarm_state": "ok"}, schema, "x") == ["x: alarm_state is not an argument"]
    assert check_block({"metric": [{"namespace": "n"}]}, schema, "x") == ["x: alarm_name is required"]
    assert check_block({**good, "metric": "SYS.FunctionGraph"}, schema, "x") == ["x: metric is a block"]
    assert check_block({**good, "metric": [{}]}, schema, "x") == ["x.metric: namespace is required"]


def test_the_function(module):
    function = resource(module, "huaweicloud_fgs_function", "this")
    assert function["functiongraph_version"] in ("v1", "v2"), "explicit: ForceNew and Computed"
    assert (function["app"], function["code_type"], function["handler"]) == ("default", "zip", "handler.handler")
    module_name, attribute = function["handler"].split(".")
    assert callable(getattr(importlib.import_module(module_name), attribute))
    assert ZIP_NAME in locals_(module)["package_path"], "the zip make package builds"
    assert function["func_code"] == "${filebase64(local.package_path)}"
    assert function["user_data"] == "${jsonencode(local.user_data)}"
    encrypted = function["encrypted_user_data"]
    assert "var.secret_settings" in encrypted and "var.settings" not in encrypted
    assert function["enable_lts_log"] is True
    for part in ("group_id", "group_name", "stream_id", "stream_name"):
        assert function[f"log_{part}"].startswith("${huaweicloud_lts_"), part
    assert function["agency"] == "${huaweicloud_identity_agency.this.name}"


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


def test_the_secret_names_are_the_settings_secrets(module):
    for name in ("settings", "secret_settings"):
        condition = variables(module)[name]["validation"][0]["condition"]
        listed = re.search(r"contains\(\[([^\]]*)\]", condition)
        assert listed and sorted(re.findall(r'"?([A-Z_]+)"?', listed.group(1))) == SECRETS, name


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
    assert "local.http.max_backend_timeout_ms" in conditions and "> local.http_budget_ms" in conditions
    budget = locals_(module)["http_budget_ms"]
    assert '"KPS_HTTP_BUDGET_SECONDS"' in budget and "var.timeout" in budget, "the smaller of the budget and timeout"


def test_least_privilege_agency_and_role(module):
    role = resource(module, "huaweicloud_identity_role", "kps_failed_tasks")
    assert role["type"] == "XA"
    assert set(re.findall(r'"(kps:[^"]+)"', role["policy"])) == KPS_ACTIONS
    assert re.findall(r"Action = \[([^\]]*)\]", role["policy"])[0].count(":") == 2 * len(KPS_ACTIONS)
    agency = resource(module, "huaweicloud_identity_agency", "this")
    assert agency["delegated_service_name"] == "op_svc_cff" and "delegated_domain_name" not in agency
    [dynamic] = agency["dynamic"]
    assert dynamic["project_role"]["for_each"] == "${local.sweep ? [] : [var.region]}"
    assert agency["all_resources_roles"].startswith("${local.sweep ? [")


def test_the_alarm_watches_failcount_and_notifies_the_topic(module):
    alarm = resource(module, "huaweicloud_ces_alarmrule", "failcount")
    assert alarm["metric"] == [{"namespace": "SYS.FunctionGraph"}]
    [condition] = alarm["condition"]
    assert (condition["metric_name"], condition["comparison_operator"], condition["value"]) == ("failcount", ">=", 1)
    [dimension] = alarm["resources"][0]["dimensions"]
    assert dimension["name"] == "package-functionname" and dimension["value"].count("huaweicloud_fgs_function") == 2
    assert alarm["alarm_actions"][0]["notification_list"] == ["${huaweicloud_smn_topic.alarms.topic_urn}"]
    email = resource(module, "huaweicloud_smn_subscription", "email")
    assert email["protocol"] == "email" and email["count"] == '${var.alarm_email == "" ? 0 : 1}'


def test_the_outputs(module):
    outputs = {name for entry in module["output"] for name in entry}
    assert {"function_urn", "api_url"} <= outputs


EXAMPLES = sorted([MODULE / "terraform.tfvars.example", *(MODULE / "examples").glob("*.tfvars")])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_set_declared_variables_and_valid_settings(module, path):
    example = load(path)
    declared = variables(module)
    assert set(example) <= set(declared)
    assert {name for name, body in declared.items() if "default" not in body} <= set(example), "required variables"
    settings = example.get("settings", {})
    unknown = set(settings) - set(KNOWN)
    assert unknown <= PENDING, unknown
    known = {name: value for name, value in settings.items() if name in KNOWN}
    assert not [n for n in known if KNOWN[n].secret] and "secret_settings" not in example
    load_settings(SettingSource(None, {k: str(v) for k, v in known.items()}))  # every value parses
    if "http" in example:
        assert example["http"].get("timeout_ms", expose.MAX_BACKEND_TIMEOUT_MS) > 1000 * float(
            settings.get("KPS_HTTP_BUDGET_SECONDS", default_of("KPS_HTTP_BUDGET_SECONDS"))
        )


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


def user_data(folder: Path, *args: str) -> tuple[Any, bool, float]:
    data, sweep, budget_ms = evaluate(folder, "[local.user_data, local.sweep, local.http_budget_ms]", *args)
    pending = {name: data.pop(name) for name in PENDING & set(data)}
    return load_settings(SettingSource(None, data)), sweep, budget_ms, pending


@needs_terraform
def test_the_user_data_terraform_computes_is_what_the_function_reads(without_resources):
    settings, sweep, budget_ms, _ = user_data(without_resources, *REQUIRED)
    assert (settings.project_id, settings.region, settings.targets, sweep) == (PROJECT_ID, "cn-north-4", None, False)
    assert settings.allowed_project_ids == {PROJECT_ID} and settings.raise_on_failure is True
    assert budget_ms == 1000 * float(default_of("KPS_HTTP_BUDGET_SECONDS"))

    settings, sweep, _, _ = user_data(without_resources, *REQUIRED, "-var", "sweep=true")
    assert (settings.targets, settings.allowed_project_ids, sweep) == ("all", None, True)
    _, sweep, _, _ = user_data(without_resources, *REQUIRED, "-var", 'settings={KPS_TARGETS=" ALL "}')
    assert sweep, "a sweep asked for in the settings also grants the role on all resources"

    overrides = 'settings={KPS_HTTP_BUDGET_SECONDS="30", KPS_DRY_RUN="true"}'
    settings, _, budget_ms, _ = user_data(without_resources, *REQUIRED, "-var", overrides)
    assert (settings.http_budget_seconds, settings.dry_run, budget_ms) == (30, True, 30000)
    _, _, budget_ms, _ = user_data(without_resources, *REQUIRED, "-var", "timeout=20")
    assert budget_ms == 20000, "a shorter function timeout answers first"


@needs_terraform
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_passes_terraforms_validation(without_resources, path):
    settings, sweep, _, pending = user_data(without_resources, "-var-file", str(path))
    assert settings.region
    assert sweep == (settings.targets == "all")
    if pending:
        assert json.loads(pending["KPS_SELECT"]) == {"older_than_hours": 168}


@needs_terraform
@pytest.mark.parametrize(
    ("timeout_ms", "holds"), [(55000, [True, False]), (55001, [True, True]), (60001, [False, True])]
)
def test_the_http_preconditions(module, without_resources, timeout_ms, holds):
    """At most API Gateway's 60 s, and above the function's HTTP budget (55 s by default)."""
    conditions = [
        p["condition"][2:-1]
        for p in resource(module, "huaweicloud_fgs_function_trigger", "http")["lifecycle"][0]["precondition"]
    ]
    http = f'http={{instance_id="i", group_id="g", domain="d", timeout_ms={timeout_ms}}}'
    assert evaluate(without_resources, "[" + ", ".join(conditions) + "]", *REQUIRED, "-var", http) == holds


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
        'allowed_project_ids=["x"]',
    ],
)
def test_terraform_refuses_bad_variables(without_resources, bad):
    """The refusal is in the output (terraform console 1.11 goes on after it, and may exit 0 or panic)."""
    done = console(without_resources, "jsonencode(local.user_data)", *REQUIRED, "-var", bad)
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr + done.stdout)
    assert "Error: Invalid value for variable" in output and f'variable "{bad.split("=")[0]}"' in output
