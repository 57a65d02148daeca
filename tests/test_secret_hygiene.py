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
    context = {"password": CALLER_PASSWORD, "auth": {"token": CALLER_TOKEN}, "api_key": CALLER_API_KEY}
    event = apig_event({"project_id": PROJECT, "context": context})
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


def test_the_event_is_logged_by_its_structure_alone(kps, invoke, settings):
    """Issue 15.5: LOG_EVENT=true logs keys the function knows by name, every other key by its length,
    and every value by its type and size: no header value, no body, no caller's key."""
    settings.update(LOG_EVENT="true")
    run = invoke(caller_event())
    [line] = run.lines("event received")
    event = line["incoming_event"]
    assert event["body"].startswith("<str ") and event["httpMethod"] == "<str 4>"
    assert set(event["headers"].values()) <= {f"<str {n}>" for n in range(10_000)}
    assert not any("auth" in key or "cookie" in key for key in json.dumps(event).split('"'))
    assert PROJECT not in json.dumps(line) and CALLER_TOKEN not in run.out
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


# Issue 9.6: no fragment of a secret leaves, whatever cut it, whatever echoed it, keys included.
FRAGMENT = 12
SOURCES = {
    "settings keys": ({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}, {}, [AK, SK]),
    "settings temporary keys": (TEMP_KEYS, {}, [AGENCY_AK, AGENCY_SK, SECURITY_TOKEN]),
    "settings token": ({"KPS_AUTH_TOKEN": TOKEN}, {}, [TOKEN]),
    "agency keys": ({}, {k: v for k, v in AGENCY.items() if k != "token"}, [AGENCY_AK, AGENCY_SK, SECURITY_TOKEN]),
    "agency token": ({}, {"token": AGENCY_TOKEN}, [AGENCY_TOKEN]),
}


def fragments(secret: str) -> set[str]:
    """Every FRAGMENT-character window of the secret, as it is and base64-encoded."""
    forms = [secret, base64.b64encode(secret.encode()).decode()]
    return {form[i : i + FRAGMENT] for form in forms for i in range(len(form) - FRAGMENT + 1)}


def assert_no_fragment(text: str, secrets: list[str]) -> None:
    found = sorted({f for secret in secrets for f in fragments(secret) if f in text})
    assert found == [], f"fragments of a secret left: {found}"


def echoing_error(secrets: list[str]) -> dict:
    """A KPS error whose code and message echo the credentials; the message puts one across the 500th
    character, where the error parser cuts."""
    message = "." * 480 + " ".join(secrets) + " denied"
    return {"error_code": f"KPS.9003 {secrets[0]}", "error_msg": message}


def hostile_event(secrets: list[str]) -> dict:
    """Secrets where the function cuts strings: a key, a long value (in the workflow's ``context``, the one
    place a request carries what the function does not read)."""
    context = {"note": "n" * 990 + secrets[-1]}
    for index, secret in enumerate(secrets):
        context["k" * 40 + str(index) + secret] = 1
    return {"project_id": PROJECT, "context": context}


@pytest.fixture
def credential_settings(settings, kps, request):
    user_data, context_keys, secrets = SOURCES[request.param]
    settings.pop("KPS_AUTH_TOKEN")
    settings.update(LOG_LEVEL="DEBUG", LOG_EVENT="true", KPS_MAX_ATTEMPTS="1", **user_data)
    settings["KPS_COUNT_BEFORE_DELETE"] = "false"
    return context_keys, secrets


@pytest.mark.parametrize("credential_settings", list(SOURCES), indirect=True)
def test_no_fragment_of_a_secret_in_logs_payload_or_exception(kps, invoke, settings, capsys, credential_settings):
    context_keys, secrets = credential_settings
    settings["KPS_RAISE_ON_FAILURE"] = "true"
    kps.inject(status=403, body=echoing_error(secrets))
    with pytest.raises(cleaner.CleanupFailed) as raised:
        invoke(hostile_event(secrets), **context_keys)
    out = capsys.readouterr()
    assert "raising on failure" in out.out
    assert_no_fragment(out.out + out.err + str(raised.value) + repr(raised.value), secrets)


@pytest.mark.parametrize("credential_settings", list(SOURCES), indirect=True)
def test_no_fragment_of_a_secret_in_the_api_gateway_answer(kps, invoke, credential_settings):
    context_keys, secrets = credential_settings
    kps.inject(status=401, body=echoing_error(secrets))
    run = invoke(apig_event(hostile_event(secrets)), **context_keys)
    assert run.result["statusCode"] == 502
    assert run.payload["results"][0]["error"]["code"].startswith("KPS.9003")
    assert_no_fragment(run.out + run.err + json.dumps(run.result), secrets)


@pytest.mark.parametrize("credential_settings", list(SOURCES), indirect=True)
@pytest.mark.parametrize("field", ["project_id", "region", "dry_run", "targets"])
def test_no_fragment_of_a_secret_in_a_rejection(kps, invoke, credential_settings, field):
    """The reason quotes the caller's value, cut to 48 characters: masked first, the cut keeps nothing."""
    context_keys, secrets = credential_settings
    event = {"project_id": PROJECT, field: "z" * 30 + secrets[0]}
    run = invoke(event, **context_keys)
    assert run.payload["status"] == "rejected"
    assert kps.requests == []
    assert_no_fragment(run.out + run.err + json.dumps(run.result), secrets)


@pytest.mark.parametrize("credential_settings", ["settings token", "agency keys"], indirect=True)
def test_no_fragment_of_a_secret_when_iam_echoes_it(kps, invoke, settings, credential_settings):
    context_keys, secrets = credential_settings
    settings["KPS_IAM_ENDPOINT"] = kps.url
    kps.inject(status=401, body=echoing_error(secrets))
    run = invoke({"targets": "all"}, **context_keys)
    assert run.payload["error"]["code"] == "ProjectListingFailed"
    assert_no_fragment(run.out + run.err + json.dumps(run.result), secrets)


def test_a_secret_cut_at_either_edge_of_a_string_is_masked():
    from function import logs

    logs.start_invocation("INFO", [TOKEN])
    assert logs.scrub("code " + TOKEN[:20]) == "code ***"
    assert logs.scrub(TOKEN[-20:] + " rest") == "*** rest"
    assert logs.scrub("code " + TOKEN[:8]) == "code ***"
    assert logs.scrub("code " + TOKEN[:7]) == "code " + TOKEN[:7], "too short to be told from ordinary text"
    assert logs.shorten("z" * 30 + TOKEN, 48) == "z" * 30 + "***..."
    assert logs.shorten("z" * 37 + TOKEN, 48) == "z" * 37 + "***...", "the cut edge is the text's edge"


# The red team's finding 7-9: a piece of a secret anywhere in a text, in any case, split, or inside HTML tags.
def echo(secret: str, variant: str) -> str:
    """How a server might echo a credential: part of it, split, in another case, cut by tags."""
    half = len(secret) // 2
    return {
        "middle 12": f"token {secret[3:15]} is invalid",
        "middle 16": f"token {secret[2:18]} is invalid",
        "middle 20": f"token {secret[1:21]} is invalid",
        "split by a space": f"token {secret[:half]} {secret[half:]} is invalid",
        "lower case": f"token {secret.lower()} is invalid",
        "upper case, middle": f"token {secret.upper()[2:16]} is invalid",
        "inside HTML tags": f"<p>token <b>{secret[:half]}</b><br>{secret[half:]}</p>",
    }[variant]


ECHOES = ["middle 12", "middle 16", "middle 20", "split by a space", "lower case", "upper case, middle"]
ECHOES.append("inside HTML tags")


def assert_no_fragment_in_any_case(text: str, secrets: list[str]) -> None:
    assert_no_fragment(text, secrets)
    assert_no_fragment(text.lower(), [s.lower() for s in secrets])


@pytest.mark.parametrize("credential_settings", list(SOURCES), indirect=True)
@pytest.mark.parametrize("variant", ECHOES)
@pytest.mark.parametrize("shape", ["KPS error", "HTML page"])
def test_no_piece_of_a_secret_that_a_server_echoes(kps, invoke, settings, credential_settings, variant, shape):
    """KPS answering "token MIIT-settings-token-0123… is invalid" sent that text to the API Gateway caller;
    tags were stripped before masking, so "<br>" in a secret hid it from the mask."""
    context_keys, secrets = credential_settings
    text = " ".join(echo(secret, variant) for secret in secrets)
    if shape == "KPS error":
        kps.inject(status=403, body={"error_code": "KPS.9003", "error_msg": text})
    else:
        kps.inject(status=403, body=f"<html><body>{text}</body></html>".encode())
    run = invoke(apig_event({"project_id": PROJECT}), **context_keys)
    assert run.result["statusCode"] == 502
    assert run.payload["results"][0]["error"]["code"] == ("KPS.9003" if shape == "KPS error" else "HTTP.403")
    assert "token" in run.payload["results"][0]["error"]["message"], "the echo reaches the caller, masked"
    assert_no_fragment_in_any_case(run.out + run.err + json.dumps(run.result), secrets)


@pytest.mark.parametrize("credential_settings", list(SOURCES), indirect=True)
def test_no_piece_of_a_secret_in_the_cleanup_failed_text(kps, invoke, settings, capsys, credential_settings):
    context_keys, secrets = credential_settings
    settings["KPS_RAISE_ON_FAILURE"] = "true"
    kps.inject(status=403, body={"error_code": echo(secrets[0], "middle 16")[:40], "error_msg": "denied"})
    with pytest.raises(cleaner.CleanupFailed) as raised:
        invoke({"project_id": PROJECT}, **context_keys)
    out = capsys.readouterr()
    assert_no_fragment_in_any_case(out.out + out.err + str(raised.value), secrets)


@pytest.mark.parametrize("credential_settings", list(SOURCES), indirect=True)
@pytest.mark.parametrize("where", ["query key", "method"])
def test_no_piece_of_a_secret_in_a_rejection_built_from_a_query_key_or_the_method(
    kps, invoke, credential_settings, where
):
    """A query key project_id[<secret>] or an httpMethod holding a secret was cut (at 64 and 16) before
    masking: up to 53 characters of it went into the rejection, its payload and its log line."""
    context_keys, secrets = credential_settings
    if where == "query key":
        query = {f"project_id[{'z' * 20}{secrets[0]}]": "x", "region[0]": "y"}
        event = apig_event(None, query=query)
    else:
        event = apig_event({"project_id": PROJECT}, method=secrets[0][1:])
    run = invoke(event, **context_keys)
    assert run.payload["status"] == "rejected"
    assert run.result["statusCode"] == (400 if where == "query key" else 405)
    assert kps.requests == []
    assert_no_fragment_in_any_case(run.out + run.err + json.dumps(run.result), secrets)


def test_a_run_of_12_characters_of_a_secret_is_masked_anywhere_in_any_case():
    from function import logs

    logs.start_invocation("INFO", [TOKEN, "short1"])
    assert logs.scrub(f"a {TOKEN[3:15]} b") == "a *** b"
    assert logs.scrub(f"a {TOKEN[3:14]} b") == f"a {TOKEN[3:14]} b", "11 characters: not masked mid-text"
    assert logs.scrub(f"a {TOKEN[2:30].upper()} b {TOKEN.lower()}") == "a *** b ***"
    assert logs.scrub(f"x{TOKEN[:19]}<br>{TOKEN[19:]}y") == "x***<br>***y"
    assert logs.scrub("short1 and SHORT1") == "*** and SHORT1", "whole values only, as they are"


@pytest.mark.parametrize("credential_settings", list(SOURCES), indirect=True)
@pytest.mark.parametrize("variant", ["middle 12", "lower case"])
def test_no_piece_of_a_secret_in_the_record_or_sample(kps, invoke, settings, credential_settings, variant):
    """Tasks KPS lists are copied into the sample and the `tasks deleted` record, which take a fast path
    past the generic masking: a task whose fields echo a piece of a secret is masked there too."""
    context_keys, secrets = credential_settings
    settings["KPS_COUNT_BEFORE_DELETE"] = "true"
    for task, secret in zip(kps.seed(PROJECT, len(secrets)), secrets):
        task["server_name"] = f"ecs {echo(secret, variant)} web"
        task["keypair_name"] = echo(secret, variant)
    run = invoke({"project_id": PROJECT}, **context_keys)
    [result] = run.payload["results"]
    assert result["outcome"] == "deleted" and len(result["sample"]) == len(secrets) + 3
    assert sum(len(line["tasks"]) for line in run.lines("tasks deleted")) == len(secrets) + 3
    assert_no_fragment_in_any_case(run.out + run.err + json.dumps(run.result), secrets)
