"""The emulator behaves like KPS: paths, pagination, error bodies, request ids, auth checks."""

from __future__ import annotations

import requests
from conftest import AK, PROJECT, SK, TOKEN

from function.credentials import Credentials

HEADERS = {"X-Auth-Token": TOKEN}


def test_list_pages_with_limit_and_offset(kps):
    kps.seed(PROJECT, 7)  # 10 in all
    first = requests.get(f"{kps.url}/v3/{PROJECT}/failed-tasks", params={"limit": 4, "offset": 0}, headers=HEADERS)
    last = requests.get(f"{kps.url}/v3/{PROJECT}/failed-tasks", params={"limit": 4, "offset": 8}, headers=HEADERS)
    assert first.status_code == last.status_code == 200
    assert (first.json()["total"], len(first.json()["tasks"]), len(last.json()["tasks"])) == (10, 4, 2)
    task = first.json()["tasks"][0]
    assert set(task) == {
        "task_id",
        "operate_type",
        "task_time",
        "task_error_code",
        "task_error_msg",
        "server_name",
        "server_id",
        "keypair_name",
    }
    assert len(first.headers["X-Request-Id"]) == 32


def test_delete_one_and_unknown_task(kps):
    task_id = kps.failed_tasks(PROJECT)[0]["task_id"]
    url = f"{kps.url}/v3/{PROJECT}/failed-tasks/{task_id}"
    assert requests.delete(url, headers=HEADERS).status_code == 200
    again = requests.delete(url, headers=HEADERS)
    assert again.status_code == 400
    assert again.json() == {"error_code": "KPS.0005", "error_msg": "failed task not found"}
    assert len(kps.failed_tasks(PROJECT)) == 2


def test_delete_all_answers_an_empty_body(kps):
    response = requests.delete(f"{kps.url}/v3/{PROJECT}/failed-tasks", headers=HEADERS)
    assert (response.status_code, response.content) == (200, b"")
    assert kps.failed_tasks(PROJECT) == []


def test_auth_failures_are_gateway_errors(kps):
    url = f"{kps.url}/v3/{PROJECT}/failed-tasks"
    missing = requests.delete(url)
    assert (missing.status_code, missing.json()["error_code"]) == (401, "APIGW.0301")
    assert missing.json()["error_msg"].endswith("x-auth-token not found")
    forged = requests.delete(
        url, headers={"Authorization": f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-sdk-date, Signature=00"}
    )
    assert forged.status_code == 401
    assert kps.failed_tasks(PROJECT) != []


def test_a_signature_is_bound_to_method_path_and_query(kps):
    signer = Credentials("test", ak=AK, sk=SK, project_id=PROJECT)
    url, headers = signer.authorize("GET", kps.url, f"/v3/{PROJECT}/failed-tasks", [("limit", "2"), ("offset", "0")])
    assert requests.get(url, headers=headers).status_code == 200
    assert requests.delete(url, headers=headers).status_code == 401
    assert requests.get(url.replace("limit=2", "limit=3"), headers=headers).status_code == 401


def test_unknown_paths_and_bad_project_ids(kps):
    assert requests.get(f"{kps.url}/v3/{PROJECT}/other", headers=HEADERS).json()["error_code"] == "APIGW.0101"
    bad = requests.delete(f"{kps.url}/v3/NOT-A-PROJECT/failed-tasks", headers=HEADERS)
    assert (bad.status_code, bad.json()["error_code"]) == (400, "KPS.0002")
