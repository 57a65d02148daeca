"""red16b: settings the free `settings` map passes to the function that the plan accepts and the function misreads
or refuses: a typo'd name is silently ignored (KPS_DRYRUN: a real delete), KPS_RAISE_ON_FAILURE can blind the
failcount alarm, and a KPS_SELECT the function's parser refuses fails every run only after apply."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from function.settings import SETTINGS

MODULE = ROOT / "deploy" / "terraform"
TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
REQUIRED = ("-var", "region=cn-north-4", "-var", "project_id=4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("module")
    shutil.copy(MODULE / "variables.tf", folder)
    shutil.copy(MODULE / "http-trigger.json", folder)
    blocks = [re.findall(r"(?ms)^locals \{.*?^\}", path.read_text()) for path in sorted(MODULE.glob("*.tf"))]
    (folder / "locals.tf").write_text("\n".join(block for found in blocks for block in found))
    return folder


def refused(folder: Path, settings: str) -> bool:
    """Whether `terraform console` stops at the settings variable's validation."""
    done = subprocess.run(
        [TERRAFORM, "console", *REQUIRED, "-var", f"settings={settings}"],
        input="jsonencode(local.user_data)",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(folder)},
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr + done.stdout)
    return "Error: Invalid value for variable" in output and 'variable "settings"' in output


@pytest.mark.parametrize("name", ["KPS_DRYRUN", "KPS_DRY_RUN_", "KPS_SELECTION", "LOGLEVEL"])
def test_a_setting_the_function_does_not_know_fails_the_plan(folder, name):
    """The function reads only the names in SETTINGS: a typo for KPS_DRY_RUN is ignored and the run deletes."""
    assert name not in {s.name for s in SETTINGS}
    assert refused(folder, f'{{{name}="true"}}'), f"{name} is accepted and silently ignored by the function"


def test_the_settings_map_cannot_turn_off_raise_on_failure(folder):
    """The module sets KPS_RAISE_ON_FAILURE=true so failed runs count in failcount: overriding it in settings
    (merge keeps the last) leaves the alarm watching a metric no failure reaches."""
    assert refused(folder, '{KPS_RAISE_ON_FAILURE="false"}')


@pytest.mark.parametrize("select", ["{}", '{\\"older_than_days\\": 7}', "older_than_hours=168", "[]"])
def test_a_kps_select_the_function_refuses_fails_the_plan(folder, select):
    """KPS_SELECT is JSON text of an object of known keys with a condition (function/selection.py): anything else
    is refused by every run (InvalidSetting), found only after apply, from the alarm."""
    assert refused(folder, f'{{KPS_SELECT="{select}"}}')


def test_the_helper_sees_a_refusal(folder):
    """Control: what the module refuses today (a target in settings) is seen as refused, a known setting is not."""
    assert refused(folder, '{KPS_TARGETS="all"}') and not refused(folder, '{KPS_DRY_RUN="true"}')


def parsed() -> dict[str, list]:
    hcl2 = pytest.importorskip("hcl2")
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    merged: dict[str, list] = {}
    for path in sorted(MODULE.glob("*.tf")):
        with path.open() as file:
            for key, value in hcl2.load(file, serialization_options=options).items():
                merged.setdefault(key, []).extend(value)
    return merged


def body(module: dict, kind: str, name: str) -> dict:
    return next(named[name] for entry in module["resource"] for k, named in entry.items() if k == kind)


def test_what_the_operator_sets_is_what_is_deployed():
    """Mutations that survived tests/test_terraform.py: memory_size and the LTS retention hard-coded."""
    module = parsed()
    function = body(module, "huaweicloud_fgs_function", "this")
    assert (function["memory_size"], function["timeout"]) == ("${var.memory_size}", "${var.timeout}")
    assert body(module, "huaweicloud_lts_group", "this")["ttl_in_days"] == "${var.log_ttl_days}"


def test_the_credentials_are_a_sensitive_variable():
    """Without `sensitive`, `terraform plan` prints the AK/SK in clear (a survived mutation): secrets never leave."""
    variables = {name: v for entry in parsed()["variable"] for name, v in entry.items()}
    assert variables["secret_settings"].get("sensitive") is True


def test_the_http_trigger_matches_the_exact_path_only():
    """http-trigger.json's comment promises the exact path /<function name>: SWA (prefix) survived every test."""
    import json

    http = json.loads((MODULE / "http-trigger.json").read_text())
    assert (http["match_mode"], http["auth"], http["protocol"], http["type"]) == ("NORMAL", "IAM", "HTTPS", 1)


def schedule_refused(folder: Path, schedule: str) -> bool:
    done = subprocess.run(
        [TERRAFORM, "console", *REQUIRED, "-var", f"schedule={schedule}"],
        input="local.timer_event_data.schedule",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(folder)},
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr + done.stdout)
    return "Error: Invalid value for variable" in output and 'variable "schedule"' in output


@pytest.mark.parametrize(
    "schedule",
    [
        "a b c d e f",  # six "fields" of letters that name no month or weekday
        "99 99 99 * * ?",  # second, minute, hour out of range
        "0 60 3 * * ?",  # minute 60
        "0 0 24 * * ?",  # hour 24
        "0 0 3 32 * ?",  # day 32
        "0 0 3 * 13 ?",  # month 13
        "CRON_TZ=Nowhere/Land 0 0 3 * * ?",  # no such zone
    ],
)
def test_a_cron_schedule_the_parser_refuses_fails_the_plan(folder, schedule):
    """docs/deploy.md: "a schedule FunctionGraph would refuse ... [is] refused by terraform plan". A schedule change
    replaces the timer delete-first, so one the API refuses at apply leaves no timer at all."""
    assert schedule_refused(folder, schedule), f"{schedule!r} passes the plan"


def test_the_schedule_helper_sees_a_refusal(folder):
    assert schedule_refused(folder, "0 3 * * *") and not schedule_refused(folder, "0 0 3 * * ?")


@pytest.mark.parametrize("email", ["ops", "ops@", "ops@example.com, dev@example.com"])
def test_a_malformed_alarm_email_fails_the_plan(folder, email):
    """SMN refuses it at apply, after the function, agency and topic exist: a partial deployment."""
    done = subprocess.run(
        [TERRAFORM, "console", *REQUIRED, "-var", f"alarm_email={email}"],
        input="var.alarm_email",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(folder)},
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr + done.stdout)
    assert "Error: Invalid value for variable" in output and 'variable "alarm_email"' in output
