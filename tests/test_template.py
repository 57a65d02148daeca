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
# TIMER only: the component's APIG trigger sends its timeout as `function_info`, which FunctionGraph does not read
# (zy-linn/fgs-component src/services/trigger.service.ts, ApigTrigger.getEventData): HTTP is Terraform's or
# make expose's.
EVENT_DATA = {"TIMER": {"name", "scheduleType", "schedule", "userEvent"}}


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


def test_one_function_with_a_nightly_timer_and_no_http_trigger(template):
    assert set(triggers(template)) == {"TIMER"}, "no APIG trigger: its timeout would never arrive"
    timer = triggers(template)["TIMER"]
    assert timer["eventData"]["scheduleType"] == "Cron"
    assert len(timer["eventData"]["schedule"].split()) == 6, "FunctionGraph cron has seconds"
    assert PROJECT_ID.fullmatch(json.loads(timer["eventData"]["userEvent"])["project_id"])
    # A timer's name: a letter, then letters, digits and _ (the zh page allows no hyphen), 64 at most (AOS
    # FGS.TimerEventMap); the Terraform module names its timer <function>_timer by the same rule.
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", timer["eventData"]["name"]), timer["eventData"]["name"]


def test_the_readme_deploy_section_describes_this_template():
    """No APIG trigger, no apigGroupName: the README's Deploy section says what template.yml makes."""
    readme = (ROOT / "README.md").read_text()
    deploy = readme.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    assert "apigGroupName" not in deploy and "apigGroupName" not in (ROOT / "template.yml").read_text()
    assert "does not update an existing timer" in deploy and "(docs/deploy.md)" in deploy


def test_the_template_says_what_the_component_cannot_do():
    text = (ROOT / "template.yml").read_text()
    assert "function_info" in text and "make expose" in text and "deploy/terraform" in text
    assert "never updates an existing timer" in text


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
    assert settings.allowed_project_ids, "an allow-list: make expose may put the function behind HTTP later"


def test_the_timeout_exceeds_the_worst_case_retry_budget(template):
    function = functions(template)[0]
    settings = load_settings(SettingSource(None, {k: str(v) for k, v in function["environmentVariables"].items()}))
    calls = 2 if settings.count_before_delete else 1  # a single-page count, then the delete
    budget = calls * RetryPolicy.from_settings(settings).worst_case_seconds()
    assert function["timeout"] > budget, f"timeout {function['timeout']} s, worst case {budget} s"
    assert 3 <= function["timeout"] <= 900
