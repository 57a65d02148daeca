"""template.yml parses, uses only what the fgs component documents, and agrees with the code."""

from __future__ import annotations

import importlib
import json
import re

import pytest
import yaml
from conftest import ROOT

from devtools.package import DIST, FOLDER_NAME, RUNTIMES
from function.api import RetryPolicy
from function.settings import PROJECT_ID, SETTINGS, SettingSource, load_settings

# Serverless Devs, component fgs, edition 1.0.0: the fields its documentation lists.
TOP = {"edition", "name", "access", "vars", "services"}
SERVICE = {"component", "props"}
PROPS = {"updateType", "region", "function", "trigger"}
FUNCTION = {
    "functionName",
    "handler",
    "runtime",
    "memorySize",
    "timeout",
    "codeType",
    "code",
    "environmentVariables",
    "agencyName",
    "dependVersionList",
    "vpcId",
    "subnetId",
    "concurrency",
    "concurrentNum",
    "description",
    "initializerHandler",
}
TRIGGER = {"triggerTypeCode", "status", "eventData"}
EVENT_DATA = {
    "TIMER": {"name", "scheduleType", "schedule", "userEvent"},
    "APIG": {"name", "groupName", "auth", "protocol", "timeout"},
}


@pytest.fixture(scope="module")
def template() -> dict:
    raw = yaml.safe_load((ROOT / "template.yml").read_text())
    variables = raw["vars"]
    text = re.sub(r"\$\{vars\.(\w+)\}", lambda m: str(variables[m.group(1)]), (ROOT / "template.yml").read_text())
    return yaml.safe_load(text)


def functions(template: dict) -> list[dict]:
    return [service["props"]["function"] for service in template["services"].values()]


def triggers(template: dict) -> dict[str, dict]:
    return {s["props"]["trigger"]["triggerTypeCode"]: s["props"]["trigger"] for s in template["services"].values()}


def test_only_documented_fields(template):
    assert set(template) <= TOP and template["edition"] == "1.0.0"
    for service in template["services"].values():
        assert set(service) <= SERVICE and service["component"] == "fgs"
        assert set(service["props"]) <= PROPS
        assert set(service["props"]["function"]) <= FUNCTION
        trigger = service["props"]["trigger"]
        assert set(trigger) <= TRIGGER
        assert set(trigger["eventData"]) <= EVENT_DATA[trigger["triggerTypeCode"]]


def test_one_function_with_a_nightly_timer_and_an_iam_protected_http_trigger(template):
    first, *others = functions(template)
    assert all(other == first for other in others), "every service declares the same function"
    timer, apig = triggers(template)["TIMER"], triggers(template)["APIG"]
    assert timer["eventData"]["scheduleType"] == "Cron"
    assert len(timer["eventData"]["schedule"].split()) == 6, "FunctionGraph cron has seconds"
    assert PROJECT_ID.fullmatch(json.loads(timer["eventData"]["userEvent"])["project_id"])
    assert apig["eventData"]["auth"] == "IAM"
    assert apig["eventData"]["timeout"] <= 60000


def test_the_function_agrees_with_the_code(template):
    function = functions(template)[0]
    module, attribute = function["handler"].split(".")
    assert callable(getattr(importlib.import_module(module), attribute))
    assert function["runtime"] in RUNTIMES, "make package builds for this runtime"
    assert function["codeType"] == "zip"
    # The fgs component zips the folder codeUri names (startZip: fs.readdirSync(codeUri)): the one make package builds.
    assert function["code"]["codeUri"] == "./" + (DIST / FOLDER_NAME).relative_to(ROOT).as_posix()
    assert function["agencyName"]


def test_every_variable_is_a_documented_non_secret_setting_and_parses(template):
    environment = functions(template)[0]["environmentVariables"]
    known = {s.name: s for s in SETTINGS}
    assert set(environment) <= set(known)
    assert not [name for name in environment if known[name].secret], "secrets belong in encrypted variables"
    settings = load_settings(SettingSource(None, {k: str(v) for k, v in environment.items()}))
    assert settings.allowed_project_ids, "the HTTP trigger is exposed: the template sets an allow-list"


def test_the_timeout_exceeds_the_worst_case_retry_budget(template):
    function = functions(template)[0]
    settings = load_settings(SettingSource(None, {k: str(v) for k, v in function["environmentVariables"].items()}))
    calls = 2 if settings.count_before_delete else 1  # a single-page count, then the delete
    budget = calls * RetryPolicy.from_settings(settings).worst_case_seconds()
    assert function["timeout"] > budget, f"timeout {function['timeout']} s, worst case {budget} s"
    assert 3 <= function["timeout"] <= 900


def test_the_gateway_waits_longer_than_the_http_budget(template):
    """API Gateway gives up after its backend timeout: the function must answer before, with its own payload."""
    function = functions(template)[0]
    settings = load_settings(SettingSource(None, {k: str(v) for k, v in function["environmentVariables"].items()}))
    backend_timeout_ms = triggers(template)["APIG"]["eventData"]["timeout"]
    assert backend_timeout_ms <= 60000, "API Gateway's backend timeout is at most 60 s"
    assert backend_timeout_ms > settings.http_budget_seconds * 1000


def test_the_shared_gateway_group_is_a_variable_the_readme_says_must_exist():
    """The fgs component prompts "Create now?" for a missing group: the operator names an existing one."""
    raw = yaml.safe_load((ROOT / "template.yml").read_text())
    [apig] = [s for s in raw["services"].values() if s["props"]["trigger"]["triggerTypeCode"] == "APIG"]
    assert apig["props"]["trigger"]["eventData"]["groupName"] == "${vars.apigGroupName}"
    assert raw["vars"]["apigGroupName"]
    readme = (ROOT / "README.md").read_text()
    assert "`apigGroupName`" in readme and "must already exist" in readme
