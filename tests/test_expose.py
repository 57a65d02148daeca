"""make expose against a local fake of FunctionGraph's trigger API: what it sends, and that it is idempotent."""

from __future__ import annotations

import json

import pytest
from conftest import AK, PROJECT, ROOT, SK
from fake_functiongraph import FakeFunctionGraph

from devtools.expose import Config, expose, main, plan

# The official FunctionGraph client (a development tool here) signs with huaweicloudsdkcore, which calls
# datetime.utcnow() when no X-Sdk-Date is set: deprecated on Python 3.12, not ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")

INSTANCE, GROUP = "eddc4d25480b4cd6b512f270a1b8b341", "c77f5e81d9cb4424bf704ef2b0ac7600"


@pytest.fixture
def fgs(monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    with FakeFunctionGraph(AK, SK) as fake:
        fake.functions[urn()] = {"func_urn": urn(), "timeout": 120, "user_data": "{}"}  # the template's function
        yield fake


def config(fgs, **changes) -> Config:
    base = Config(
        "cn-north-4", PROJECT, "kps-failed-task-cleaner", INSTANCE, GROUP, "RELEASE",
        "DEFAULT_ENVIRONMENT_RELEASE_ID", 60000, fgs.url,
    )  # fmt: skip
    return base._replace(**changes)


def urn() -> str:
    return f"urn:fss:cn-north-4:{PROJECT}:function:default:kps-failed-task-cleaner"


def test_first_run_creates_one_iam_https_trigger_per_method(fgs):
    done = expose(config(fgs))
    assert [(a.kind, a.method) for a in done] == [("create", "GET"), ("create", "POST"), ("create", "DELETE")]
    assert [(m, s) for m, _, s in fgs.log] == [("GET", 200)] * 2 + [("POST", 200)] * 3
    assert fgs.log[0][1] == f"/v2/{PROJECT}/fgs/functions/{urn()}/config", "the function's HTTP budget, read first"
    assert all(path == f"/v2/{PROJECT}/fgs/triggers/{urn()}" for _, path, _ in fgs.log[1:])
    for body, method in zip(fgs.bodies, ("GET", "POST", "DELETE")):
        assert (body["trigger_type_code"], body["trigger_status"]) == ("DEDICATEDGATEWAY", "ACTIVE")
        data = body["event_data"]
        assert (data["instance_id"], data["group_id"], data["env_name"]) == (INSTANCE, GROUP, "RELEASE")
        assert (data["auth"], data["protocol"], data["req_method"], data["type"]) == ("IAM", "HTTPS", method, 1)
        assert data["path"] == "/kps-failed-task-cleaner"
        assert data["func_info"]["timeout"] == 60000
    assert len(fgs.triggers[urn()]) == 3


def test_a_second_run_changes_nothing_and_duplicates_nothing(fgs):
    expose(config(fgs))
    fgs.log.clear()
    done = expose(config(fgs))
    assert {a.kind for a in done} == {"unchanged"}
    assert [m for m, _, _ in fgs.log] == ["GET", "GET"], "only the configuration and the listing"
    assert len(fgs.triggers[urn()]) == 3


def test_changed_settings_replace_the_triggers_in_place(fgs):
    expose(config(fgs))
    first = {t["trigger_id"] for t in fgs.triggers[urn()]}
    done = expose(config(fgs, timeout_ms=58000))
    assert [a.kind for a in done] == ["replace"] * 3
    triggers = fgs.triggers[urn()]
    assert len(triggers) == 3 and {t["event_data"]["func_info"]["timeout"] for t in triggers} == {58000}
    assert not {t["trigger_id"] for t in triggers} & first


def test_a_disabled_trigger_is_reactivated_and_duplicates_are_removed(fgs):
    expose(config(fgs))
    triggers = fgs.triggers[urn()]
    triggers[0]["trigger_status"] = "DISABLED"
    triggers.append({**triggers[1], "trigger_id": "00000000-0000-4000-8000-000000000001"})
    fgs.log.clear()
    done = expose(config(fgs))
    assert sorted(a.kind for a in done) == ["activate", "delete", "unchanged", "unchanged"]
    assert ("PUT", 200) in [(m, s) for m, _, s in fgs.log]
    assert len(fgs.triggers[urn()]) == 3 and {t["trigger_status"] for t in fgs.triggers[urn()]} == {"ACTIVE"}


def test_other_triggers_of_the_function_are_left_alone(fgs):
    other = {"trigger_id": "11111111-1111-4111-8111-111111111111", "trigger_type_code": "TIMER",
             "trigger_status": "ACTIVE", "event_data": {"name": "nightly"}}  # fmt: skip
    elsewhere = {**other, "trigger_id": "22222222-2222-4222-8222-222222222222", "trigger_type_code": "DEDICATEDGATEWAY",
                 "event_data": {**config(fgs).event_data("GET"), "group_id": "another-group"}}  # fmt: skip
    fgs.triggers[urn()] = [other, elsewhere]
    expose(config(fgs))
    assert other in fgs.triggers[urn()] and elsewhere in fgs.triggers[urn()]
    assert len(fgs.triggers[urn()]) == 5


@pytest.mark.parametrize(
    "changes",
    [
        {"timeout_ms": 60001},  # API Gateway's backend timeout is at most 60 s
        {"timeout_ms": 0},
        {"endpoint": "http://functiongraph.cn-north-4.myhuaweicloud.com"},  # signed calls in clear
        {"endpoint": "https://functiongraph.cn-north-4.myhuaweicloud.com/v2"},
        {"instance_id": ""},
        {"group_id": ""},
        {"project_id": "not-a-project"},
        {"region": "Cn North 4"},
    ],
)
def test_bad_settings_are_refused_before_anything_is_sent(fgs, changes):
    with pytest.raises(SystemExit, match="make expose"):
        expose(config(fgs, **changes))
    assert fgs.log == []


@pytest.mark.parametrize(
    ("user_data", "function_timeout", "refused", "accepted"),
    [
        ({}, 120, 56999, 57000),  # not set: the default 55 s, + 2 s for the payload to reach the gateway
        ({}, 120, 55001, 57000),  # 1 ms above the budget: the payload would race the gateway's own 504
        ({"KPS_HTTP_BUDGET_SECONDS": "58"}, 120, 59999, 60000),  # the deployed value, not the default
        ({"KPS_HTTP_BUDGET_SECONDS": "30"}, 120, 31999, 32000),
        ({"KPS_HTTP_BUDGET_SECONDS": "58"}, 20, 21999, 22000),  # a shorter function timeout answers first
    ],
)
def test_the_backend_timeout_must_exceed_the_deployed_functions_budget(
    fgs, user_data, function_timeout, refused, accepted
):
    fgs.functions[urn()].update(user_data=json.dumps(user_data), timeout=function_timeout)
    with pytest.raises(SystemExit, match="HTTP budget"):
        expose(config(fgs, timeout_ms=refused))
    assert [m for m, _, _ in fgs.log] == ["GET"] and fgs.triggers.get(urn(), []) == [], "nothing changed"
    assert {a.kind for a in expose(config(fgs, timeout_ms=accepted))} == {"create"}


def test_an_unreadable_configuration_falls_back_to_the_default_budget(fgs, capsys):
    del fgs.functions[urn()]
    with pytest.raises(SystemExit, match="HTTP budget"):
        expose(config(fgs, timeout_ms=56999))
    assert "unreadable (404)" in capsys.readouterr().err
    assert {a.kind for a in expose(config(fgs, timeout_ms=57000))} == {"create"}


def test_no_access_key_no_call(fgs, monkeypatch):
    monkeypatch.delenv("HUAWEICLOUD_SDK_SK")
    with pytest.raises(SystemExit, match="HUAWEICLOUD_SDK_AK"):
        expose(config(fgs))
    assert fgs.log == []


def test_the_fake_refuses_a_wrong_key(fgs, monkeypatch):
    """The fake verifies signatures for real: the tests above passed a genuine check."""
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK + "x")
    with pytest.raises(ClientRequestException):
        expose(config(fgs))
    assert fgs.log == [("GET", f"/v2/{PROJECT}/fgs/functions/{urn()}/config", 401)]


def test_plan_alone_needs_no_network():
    wanted = Config("cn-north-4", PROJECT, "f", INSTANCE, GROUP, "RELEASE", "id", 60000)
    assert [a.kind for a in plan([], wanted)] == ["create"] * 3


def test_the_command_line_and_the_make_target(fgs, capsys):
    args = ["--region", "cn-north-4", "--project-id", PROJECT, "--instance-id", INSTANCE, "--group-id", GROUP]
    assert main([*args, "--endpoint", fgs.url]) == 0
    assert capsys.readouterr().out.count("create") == 3
    makefile = (ROOT / "Makefile").read_text()
    assert "expose: venv" in makefile and "-m devtools.expose" in makefile
