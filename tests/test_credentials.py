"""Each credential source, in order; signatures checked by the emulator's own verifier."""

from __future__ import annotations

import pytest
import requests
from conftest import (
    AGENCY_AK,
    AGENCY_SK,
    AGENCY_TOKEN,
    AK,
    OTHER_PROJECT,
    PROJECT,
    SECURITY_TOKEN,
    SK,
    TOKEN,
    load_event,
)

from devtools.context import FakeContext
from function.credentials import Credentials

pytestmark = pytest.mark.usefixtures("delete_only")  # these tests look at the DELETE call alone

AGENCY_KEYS = {"access_key": AGENCY_AK, "secret_key": AGENCY_SK, "security_token": SECURITY_TOKEN}


@pytest.fixture
def bare(kps):
    """Settings with no credentials at all."""
    return {
        "KPS_ENDPOINT": kps.url,
        "KPS_REGION": "cn-north-4",
        "KPS_MAX_ATTEMPTS": "1",
        "KPS_COUNT_BEFORE_DELETE": "false",
    }


def only_request(kps):
    [request] = kps.requests
    return request


def test_settings_aksk_is_signed_and_verified(kps, invoke, bare):
    run = invoke(load_event("direct.json"), user_data={**bare, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK})
    assert run.payload["status"] == "succeeded"
    request = only_request(kps)
    assert (request.auth, request.status) == ("aksk", 200)
    assert request.headers["authorization"].startswith(f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=")
    assert "x-auth-token" not in request.headers
    assert "x-security-token" not in request.headers


def test_a_wrong_secret_key_is_refused_by_the_verifier(kps, invoke, bare):
    keys = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK + "-wrong"}
    run = invoke(load_event("direct.json"), user_data={**bare, **keys})
    assert only_request(kps).status == 401
    [result] = run.payload["results"]
    assert result["error"]["code"] == "APIGW.0301"
    assert "verify aksk signature fail" in result["error"]["message"]
    assert result["error"]["retryable"] is False
    assert kps.failed_tasks(PROJECT) != []


def test_settings_temporary_keys_carry_a_signed_security_token(kps, invoke, bare):
    keys = {
        "HUAWEICLOUD_SDK_AK": AGENCY_AK,
        "HUAWEICLOUD_SDK_SK": AGENCY_SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
    }
    run = invoke(load_event("direct.json"), user_data={**bare, **keys})
    assert run.payload["status"] == "succeeded"
    request = only_request(kps)
    assert request.headers["x-security-token"] == SECURITY_TOKEN
    assert "x-security-token" in request.headers["authorization"]


def test_settings_token(kps, invoke, bare):
    run = invoke(load_event("direct.json"), user_data={**bare, "KPS_AUTH_TOKEN": TOKEN})
    assert run.payload["status"] == "succeeded"
    request = only_request(kps)
    assert (request.auth, request.headers["x-auth-token"]) == ("token", TOKEN)


def test_agency_temporary_keys_from_the_context(kps, invoke, bare):
    run = invoke(load_event("direct.json"), user_data=bare, **AGENCY_KEYS)
    assert run.payload["status"] == "succeeded"
    request = only_request(kps)
    assert (request.auth, request.status) == ("aksk", 200)
    assert request.headers["x-security-token"] == SECURITY_TOKEN
    assert f"Access={AGENCY_AK}," in request.headers["authorization"]


def test_agency_token_from_the_context(kps, invoke, bare):
    run = invoke(load_event("direct.json"), user_data=bare, token=AGENCY_TOKEN)
    assert run.payload["status"] == "succeeded"
    assert only_request(kps).headers["x-auth-token"] == AGENCY_TOKEN


def test_agency_keys_missing_their_secret_give_way_to_the_agency_token(kps, invoke, bare):
    """A context that answers an access key but "" for its secret has no keys: the agency token is used."""
    run = invoke(load_event("direct.json"), user_data=bare, access_key=AGENCY_AK, token=AGENCY_TOKEN)
    assert run.payload["status"] == "succeeded"
    request = only_request(kps)
    assert (request.auth, request.headers["x-auth-token"]) == ("token", AGENCY_TOKEN)
    assert "authorization" not in request.headers


def test_order_settings_keys_then_token_then_agency_keys_then_agency_token(kps, invoke, bare):
    everything = {**bare, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "KPS_AUTH_TOKEN": TOKEN}
    invoke(load_event("direct.json"), user_data=everything, token=AGENCY_TOKEN, **AGENCY_KEYS)
    invoke(load_event("direct.json"), user_data={**bare, "KPS_AUTH_TOKEN": TOKEN}, token=AGENCY_TOKEN, **AGENCY_KEYS)
    invoke(load_event("direct.json"), user_data=bare, token=AGENCY_TOKEN, **AGENCY_KEYS)
    invoke(load_event("direct.json"), user_data=bare, token=AGENCY_TOKEN)
    used = [r.headers.get("x-auth-token") or r.headers["authorization"].split(",")[0] for r in kps.requests]
    assert used == [f"SDK-HMAC-SHA256 Access={AK}", TOKEN, f"SDK-HMAC-SHA256 Access={AGENCY_AK}", AGENCY_TOKEN]
    assert all(r.status == 200 for r in kps.requests)


def test_a_token_rotated_between_warm_invocations_is_sent_from_the_next_one_on(kps, invoke, bare):
    """A token's request is prepared once and kept: the key it is kept under holds the token, so a new token
    in the settings is what the next invocation sends, and the first one again after it comes back."""
    for token in (TOKEN, AGENCY_TOKEN, TOKEN):
        assert invoke(load_event("direct.json"), user_data={**bare, "KPS_AUTH_TOKEN": token}).payload["status"] == (
            "succeeded"
        )
    assert [r.headers["x-auth-token"] for r in kps.requests] == [TOKEN, AGENCY_TOKEN, TOKEN]


def test_a_context_without_the_token_method_still_works(kps, invoke, bare):
    class OlderRuntimeContext(FakeContext):
        getToken = None  # some runtime builds lack it  # noqa: N815

    run = invoke(load_event("direct.json"), context=OlderRuntimeContext(user_data={**bare, "KPS_AUTH_TOKEN": TOKEN}))
    assert run.payload["status"] == "succeeded"


def test_no_credentials_is_rejected_and_sends_nothing(kps, invoke, bare):
    run = invoke(load_event("apig.json"), user_data=bare)
    assert run.result["statusCode"] == 500
    assert run.payload["error"]["code"] == "NoCredentials"
    assert kps.requests == []


def test_an_access_key_without_its_secret_is_a_bad_setting(kps, invoke, bare):
    run = invoke(load_event("direct.json"), user_data={**bare, "HUAWEICLOUD_SDK_AK": AK}, token=AGENCY_TOKEN)
    assert run.payload["error"]["code"] == "InvalidSetting"
    assert "HUAWEICLOUD_SDK_SK" in run.payload["error"]["message"]
    assert kps.requests == []


def test_encrypted_settings_are_read_through_get_user_data_only(kps, invoke, bare, monkeypatch):
    """FunctionGraph keeps encrypted variables out of os.environ: getUserData is the only way in."""
    monkeypatch.setenv("KPS_AUTH_TOKEN", "environment-token-that-is-wrong")
    run = invoke(load_event("direct.json"), user_data={**bare, "KPS_AUTH_TOKEN": TOKEN})
    assert run.payload["status"] == "succeeded"
    assert only_request(kps).headers["x-auth-token"] == TOKEN


def test_settings_fall_back_to_the_environment(kps, invoke, bare, monkeypatch):
    monkeypatch.setenv("KPS_AUTH_TOKEN", TOKEN)
    run = invoke(load_event("direct.json"), user_data=bare)
    assert run.payload["status"] == "succeeded"
    assert only_request(kps).headers["x-auth-token"] == TOKEN


# --- X-Project-Id: every signed KPS call names its project, signed ---------------------------------


def signed_headers(request) -> list[str]:
    return request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")


@pytest.mark.parametrize("count_before_delete", ["true", "false"])
def test_every_signed_kps_call_signs_x_project_id_equal_to_its_target(kps, invoke, bare, count_before_delete):
    kps.seed(OTHER_PROJECT, 2)
    keys = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "KPS_COUNT_BEFORE_DELETE": count_before_delete}
    targets = [{"project_id": PROJECT}, {"project_id": OTHER_PROJECT}]
    run = invoke({"targets": targets}, user_data={**bare, **keys})
    assert run.payload["status"] == "succeeded"
    assert len(kps.requests) == (4 if count_before_delete == "true" else 2)
    for request in kps.requests:
        assert request.auth == "aksk" and request.status == 200
        assert request.headers["x-project-id"] == request.path.split("/")[2]
        assert "x-project-id" in signed_headers(request)
    assert {r.headers["x-project-id"] for r in kps.requests} == {PROJECT, OTHER_PROJECT}


def test_the_agency_keys_sign_x_project_id_too(kps, invoke, bare):
    invoke(load_event("direct.json"), user_data=bare, **AGENCY_KEYS)
    request = only_request(kps)
    assert request.headers["x-project-id"] == PROJECT and "x-project-id" in signed_headers(request)


def test_token_calls_carry_no_x_project_id(kps, invoke, bare):
    """The token is already scoped to a project; X-Project-Id belongs to AK/SK signing."""
    invoke(load_event("direct.json"), user_data={**bare, "KPS_AUTH_TOKEN": TOKEN})
    assert "x-project-id" not in only_request(kps).headers


def test_iam_calls_carry_no_x_project_id(kps, invoke, bare):
    """IAM is global: the SDK's GlobalCredentials sends X-Domain-Id, never X-Project-Id."""
    kps.set_iam_projects([{"id": PROJECT, "name": "cn-north-4", "enabled": True}])
    run = invoke(
        {"targets": "all"},
        user_data={**bare, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "KPS_IAM_ENDPOINT": kps.url},
    )
    assert run.payload["status"] == "succeeded"
    iam, delete = kps.requests
    assert iam.path == "/v3/auth/projects" and "x-project-id" not in iam.headers
    assert delete.headers["x-project-id"] == PROJECT


def _signed(kps, project_id: str, *, path_project: str = PROJECT, extra: dict | None = None):
    url, headers = Credentials("test", ak=AK, sk=SK, project_id=project_id).authorize(
        "DELETE", kps.url, f"/v3/{path_project}/failed-tasks", []
    )
    return requests.delete(url, headers={**headers, **(extra or {})})


def test_the_emulator_refuses_a_signed_kps_call_without_x_project_id(kps):
    answer = _signed(kps, "")
    assert answer.status_code == 401
    assert answer.json()["error_code"] == "APIGW.0301"
    assert "x-project-id" in answer.json()["error_msg"]
    assert kps.failed_tasks(PROJECT) != []


def test_the_emulator_refuses_an_unsigned_x_project_id(kps):
    """Added after signing, the header is not covered by the signature: refused like a missing one."""
    answer = _signed(kps, "", extra={"X-Project-Id": PROJECT})
    assert answer.status_code == 401 and answer.json()["error_code"] == "APIGW.0301"
    assert kps.failed_tasks(PROJECT) != []


def test_the_emulator_refuses_a_signed_call_naming_another_project(kps):
    answer = _signed(kps, OTHER_PROJECT)
    assert (answer.status_code, answer.json()["error_code"]) == (403, "APIGW.0302")
    assert set(answer.json()) == {"error_code", "error_msg", "request_id"}
    assert kps.failed_tasks(PROJECT) != []
    assert _signed(kps, PROJECT).status_code == 200
    assert kps.failed_tasks(PROJECT) == []
