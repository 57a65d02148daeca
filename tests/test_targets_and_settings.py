"""Project and region resolution, the endpoint, and settings validation: rejections send nothing."""

from __future__ import annotations

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, RUNTIME_PROJECT, apig_event, deletes
from servers import ConnectRecorder


def test_project_from_the_event_wins(kps, invoke, settings):
    settings.update(KPS_PROJECT_ID=OTHER_PROJECT, RUNTIME_PROJECT_ID=RUNTIME_PROJECT)
    invoke({"project_id": PROJECT})
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]


def test_project_falls_back_to_the_setting(kps, invoke, settings):
    settings.update(KPS_PROJECT_ID=OTHER_PROJECT, RUNTIME_PROJECT_ID=RUNTIME_PROJECT)
    invoke({})
    assert deletes(kps) == [f"/v3/{OTHER_PROJECT}/failed-tasks"]


def test_project_falls_back_to_the_functions_own_project(kps, invoke, settings, monkeypatch):
    monkeypatch.setenv("RUNTIME_PROJECT_ID", RUNTIME_PROJECT)  # FunctionGraph sets it in the environment
    run = invoke({})
    assert run.payload["results"][0]["project_id"] == RUNTIME_PROJECT
    assert deletes(kps) == [f"/v3/{RUNTIME_PROJECT}/failed-tasks"]


def test_no_project_anywhere_is_missing(kps, invoke):
    run = invoke(apig_event(None))
    assert (run.result["statusCode"], run.payload["error"]["code"]) == (400, "MissingProjectId")
    assert kps.requests == []


@pytest.mark.parametrize(
    "project_id",
    [
        "../" + PROJECT,
        PROJECT.upper(),
        PROJECT + "\n",
        " " + PROJECT,
        PROJECT[:31],
        PROJECT + "0",
        "%2e%2e%2f" + PROJECT[9:],
        PROJECT[:16] + "/" + PROJECT[17:],
        PROJECT[:16] + "?" + PROJECT[17:],
        "",
        42,
        ["list"],
        {"id": PROJECT},
    ],
)
def test_a_bad_project_id_is_rejected_before_any_url_exists(kps, invoke, project_id):
    run = invoke(apig_event({"project_id": project_id}))
    assert (run.result["statusCode"], run.payload["error"]["code"]) == (400, "InvalidProjectId")
    assert kps.requests == []


@pytest.mark.parametrize("region", ["evil.example.com/x", "cn-north-4.", "CN-NORTH-4", "", 4, "a" * 200])
def test_a_bad_region_is_rejected(kps, invoke, region):
    direct = invoke({"project_id": PROJECT, "region": region})
    assert direct.payload["error"]["code"] == "InvalidRegion"
    over_http = invoke(apig_event({"project_id": PROJECT, "region": region}))
    assert (over_http.result["statusCode"], over_http.payload["error"]["code"]) == (400, "InvalidRegion")
    assert kps.requests == []


def test_no_region_and_no_endpoint_is_missing(kps, invoke, settings):
    del settings["KPS_ENDPOINT"], settings["KPS_REGION"]
    run = invoke(apig_event({"project_id": PROJECT}))
    assert (run.result["statusCode"], run.payload["error"]["code"]) == (500, "MissingRegion")


@pytest.mark.usefixtures("delete_only")
def test_the_event_cannot_choose_the_endpoint(kps, invoke):
    run = invoke({"project_id": PROJECT, "endpoint": "https://attacker.example", "KPS_ENDPOINT": "http://127.0.0.2:1"})
    assert run.payload["error"]["code"] == "InvalidEvent", "keys that are no request fields are refused"
    assert kps.requests == []


@pytest.mark.parametrize("endpoint", ["http://kms.cn-north-4.myhuaweicloud.com", "http://10.0.0.1:8080"])
def test_plain_http_to_another_host_is_insecure(kps, invoke, settings, endpoint):
    settings["KPS_ENDPOINT"] = endpoint
    run = invoke(apig_event({"project_id": PROJECT}))
    assert (run.result["statusCode"], run.payload["error"]["code"]) == (500, "InsecureEndpoint")
    assert kps.requests == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KPS_ENDPOINT", "kms.cn-north-4.myhuaweicloud.com"),
        ("KPS_ENDPOINT", "https://user:pw@kms.example"),
        ("KPS_ENDPOINT", "https://kms.example/v3?x=1"),
        ("KPS_ENDPOINT", "https://kms.example:99999"),
        ("KPS_MAX_ATTEMPTS", "abc"),
        ("KPS_MAX_ATTEMPTS", "0"),
        ("KPS_TIMEOUT_SECONDS", "-1"),
        ("KPS_PROJECT_ID", "not-a-project"),
        ("KPS_REGION", "Beijing"),
        ("KPS_ALLOWED_PROJECT_IDS", f"{PROJECT},nope"),
        ("KPS_DRY_RUN", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("KPS_TARGETS", "ALL"),  # a sweep is exactly "all", as the event's targets is
        ("KPS_TARGETS", "All"),
    ],
)
def test_a_malformed_setting_is_named_and_nothing_is_sent(kps, invoke, settings, name, value):
    settings[name] = value
    run = invoke(apig_event({"project_id": PROJECT}))
    assert (run.result["statusCode"], run.payload["error"]["code"]) == (500, "InvalidSetting")
    message = run.payload["error"]["message"]
    assert message.startswith(name + ":")
    assert repr(value) not in message and (len(value) < 8 or value not in message), "described, never quoted"
    assert kps.requests == []


@pytest.mark.usefixtures("delete_only")
@pytest.mark.parametrize(
    ("setting", "event", "host"),
    [
        ("ap-southeast-3", {}, "kms.ap-southeast-3.myhuaweicloud.com:443"),
        (REGION, {"region": "la-north-2"}, "kms.la-north-2.myhuaweicloud.com:443"),
    ],
)
def test_default_endpoint_is_the_regional_kms_host_through_the_configured_proxy(
    invoke, settings, monkeypatch, setting, event, host
):
    """KPS_REGION, or the event's region, picks the host; HTTPS_PROXY is honoured (and refuses here)."""
    proxy = ConnectRecorder()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "")
    del settings["KPS_ENDPOINT"]
    settings.update(KPS_REGION=setting, KPS_MAX_ATTEMPTS="1")
    run = invoke({"project_id": PROJECT, **event})
    proxy.close()
    assert proxy.targets == [host]
    [result] = run.payload["results"]
    assert (result["region"], result["error"]["code"]) == (host.split(".")[1], "ConnectionError")
