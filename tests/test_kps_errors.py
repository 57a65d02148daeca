"""KPS and gateway errors reach the payload with their own codes, status and request id."""

from __future__ import annotations

import pytest
from conftest import PROJECT, apig_event

pytestmark = pytest.mark.usefixtures("delete_only")  # these tests look at the DELETE call alone


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "KPS.9003"), (400, "KPS.0006"), (403, "KPS.9004"), (404, "APIGW.0101")],
)
def test_kps_error_bodies_are_surfaced(kps, invoke, status, code):
    kps.inject(status=status, body={"error_code": code, "error_msg": f"message for {code}"})
    run = invoke(apig_event({"project_id": PROJECT}))
    assert run.result["statusCode"] == 502
    assert run.payload["status"] == "failed"
    [result] = run.payload["results"]
    assert result["ok"] is False
    assert result["outcome"] == "failed"
    assert result["http_status"] == status
    assert len(result["kps_request_id"]) == 32
    assert result["error"] == {"code": code, "message": f"message for {code}", "retryable": False}
    assert len(kps.requests) == 1, "client errors are never retried"
    assert kps.failed_tasks(PROJECT) != []


def test_an_unknown_token_gets_the_gateway_error(kps, invoke, settings):
    settings["KPS_AUTH_TOKEN"] = "expired-token-0000000000"
    run = invoke({"project_id": PROJECT})
    [result] = run.payload["results"]
    assert result["http_status"] == 401
    assert result["error"]["code"] == "APIGW.0301"
    assert result["error"]["message"] == "Incorrect IAM authentication information: decrypt token fail"


def test_a_non_json_error_body_is_summarised(kps, invoke, settings):
    settings["KPS_MAX_ATTEMPTS"] = "1"
    kps.inject(status=502, html=True)
    run = invoke({"project_id": PROJECT})
    [result] = run.payload["results"]
    assert result["http_status"] == 502
    assert result["error"]["code"] == "HTTP.502"
    # Tags are dropped, not made spaces: the text is masked in the form it is shown (a <wbr> splits nothing).
    assert result["error"]["message"].startswith("HTTP 502 Bad Gateway: 502502 Gateway Error")
    assert "<" not in result["error"]["message"]
    assert result["error"]["retryable"] is True


@pytest.mark.parametrize("status", [600, 999])
def test_a_non_standard_status_is_recorded_as_none_with_its_code(kps, invoke, status):
    """http.client accepts 100-999; the payload's http_status is 100-599 (api/payload.schema.json)."""
    kps.inject(status=status, body={"error_code": "KPS.0006", "error_msg": "odd"})
    run = invoke(apig_event({"project_id": PROJECT}))  # the payload is validated against the schema
    [result] = run.payload["results"]
    assert (result["outcome"], result["http_status"], result["error"]["code"]) == ("failed", None, f"HTTP.{status}")
    assert result["error"]["retryable"] is False and len(kps.requests) == 1
    assert kps.failed_tasks(PROJECT) != []
