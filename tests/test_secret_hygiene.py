"""No token, key, signature or security token in any log line or payload, at any level.

Every scenario runs at LOG_LEVEL=DEBUG with LOG_EVENT=true; everything printed (stdout and stderr)
and every result is scanned for every secret in play: credentials from settings and from the context,
and secrets the caller put in the event.
"""

from __future__ import annotations

import base64
import json

import pytest
from conftest import (
    AGENCY_AK,
    AGENCY_SK,
    AGENCY_TOKEN,
    AK,
    PROJECT,
    SECURITY_TOKEN,
    SK,
    TOKEN,
    apig_event,
    load_event,
)

from function import cleaner

CALLER_PASSWORD = "caller-password-5b7e0c1d"
CALLER_TOKEN = "caller-auth-token-9f8e7d6c5b"
CALLER_SIGNATURE = "9d3c0f7a1e2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
CALLER_API_KEY = "caller-api-key-1a2b3c4d"
SECRETS = [
    AK,
    SK,
    AGENCY_AK,
    AGENCY_SK,
    SECURITY_TOKEN,
    TOKEN,
    AGENCY_TOKEN,
    CALLER_PASSWORD,
    CALLER_TOKEN,
    CALLER_SIGNATURE,
    CALLER_API_KEY,
]


def caller_event() -> dict:
    event = apig_event(
        {"project_id": PROJECT, "password": CALLER_PASSWORD, "auth": {"token": CALLER_TOKEN}},
        query={"api_key": CALLER_API_KEY},
    )
    event["headers"].update(
        {
            "authorization": f"SDK-HMAC-SHA256 Access=X, SignedHeaders=host, Signature={CALLER_SIGNATURE}",
            "x-auth-token": CALLER_TOKEN,
            "x-security-token": CALLER_TOKEN,
            "cookie": f"session={CALLER_TOKEN}",
        }
    )
    return event


KEYS = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
TEMP_KEYS = {
    "HUAWEICLOUD_SDK_AK": AGENCY_AK,
    "HUAWEICLOUD_SDK_SK": AGENCY_SK,
    "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
}
AGENCY = {"access_key": AGENCY_AK, "secret_key": AGENCY_SK, "security_token": SECURITY_TOKEN, "token": AGENCY_TOKEN}
SCENARIOS = {
    "settings keys": ({**KEYS}, {}, None),
    "settings temporary keys": ({**TEMP_KEYS}, {}, None),
    "settings token": ({"KPS_AUTH_TOKEN": TOKEN}, {}, None),
    "agency keys": ({}, AGENCY, None),
    "agency token": ({}, {"token": AGENCY_TOKEN}, None),
    "wrong secret key": ({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": AGENCY_SK}, {}, None),
    "unknown token": ({"KPS_AUTH_TOKEN": CALLER_TOKEN}, {}, None),
    "throttled then ok": ({**KEYS}, AGENCY, {"status": 429, "body": {"error_code": "APIGW.0308", "error_msg": "x"}}),
    "dropped connections": ({"KPS_AUTH_TOKEN": TOKEN}, AGENCY, {"drop": True, "times": 9}),
    "bad setting beside secrets": ({**KEYS, "KPS_MAX_ATTEMPTS": "abc"}, AGENCY, None),
    "half a key pair": ({"HUAWEICLOUD_SDK_AK": AK}, AGENCY, None),
}


def scan(run, extra: str = "") -> None:
    text = run.out + run.err + json.dumps(run.result) + extra
    leaked = [s for s in SECRETS if s in text]
    encoded = [s for s in SECRETS if base64.b64encode(s.encode()).decode()[:16] in text]
    assert leaked == [] and encoded == [], f"leaked: {leaked}, base64-encoded: {encoded}"


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("event_name", ["caller secrets over API Gateway", "timer"])
def test_no_secret_in_any_output(kps, invoke, settings, name, event_name):
    user_data, context_keys, fault = SCENARIOS[name]
    settings.pop("KPS_AUTH_TOKEN")
    settings.update({"LOG_LEVEL": "DEBUG", "LOG_EVENT": "true", "KPS_MAX_ATTEMPTS": "2", **user_data})
    if fault:
        kps.inject(**fault)
    event = caller_event() if event_name != "timer" else load_event("timer.json")
    run = invoke(event, **context_keys)
    assert run.logs, "the scan needs lines to read"
    if "bad setting" not in name:
        assert run.lines("event received"), "LOG_EVENT=true logs the event"
    scan(run)


def test_the_event_is_logged_with_secret_fields_masked(kps, invoke, settings):
    settings.update(LOG_EVENT="true")
    run = invoke(caller_event())
    [line] = run.lines("event received")
    assert line["incoming_event"]["headers"]["authorization"] == "***"
    assert line["incoming_event"]["headers"]["x-auth-token"] == "***"
    assert line["fields"][0]["password"] == "***"
    assert line["fields"][0]["project_id"] == PROJECT
    assert line["incoming_event"]["body"].startswith("<")
    scan(run)


def test_a_secret_inside_an_exception_message_is_masked(kps, invoke, settings, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError(f"failed with token {TOKEN} and key {SK}")

    settings.update(LOG_LEVEL="DEBUG", **KEYS)
    monkeypatch.setattr(cleaner, "resolve_targets", broken)
    run = invoke(load_event("direct.json"))
    assert "RuntimeError: failed with token *** and key ***" in run.lines("internal error")[0]["exception"]
    scan(run)


def test_log_event_is_off_by_default(kps, invoke):
    run = invoke(caller_event())
    assert run.lines("event received") == []


def test_reprs_of_settings_and_credentials_hide_secrets():
    from function.credentials import Credentials
    from function.settings import SettingSource, load_settings

    settings = load_settings(
        SettingSource(None, {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "KPS_AUTH_TOKEN": TOKEN})
    )
    credentials = Credentials("HUAWEICLOUD_SDK_AK", ak=AK, sk=SK, security_token=SECURITY_TOKEN)
    shown = repr(settings) + repr(credentials) + str(settings) + str(credentials)
    assert [s for s in SECRETS if s in shown] == []
    assert "ak=***" in shown and "auth_token=***" in shown
    assert "Credentials(source='HUAWEICLOUD_SDK_AK', kind='aksk')" in shown
