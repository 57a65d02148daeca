"""Each path imports only what it needs: what a cold start does not import, it does not pay for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import AK, PROJECT, ROOT, SK, TOKEN, payload_of_result

CHILD = """
import json, sys
settings, event = json.loads(sys.argv[1]), json.loads(sys.argv[2])

class Context:
    def getRequestID(self): return "cold"
    def getRemainingTimeInMilliSeconds(self): return 30000
    def getUserData(self, key, default=""): return settings.get(key, default)

import handler
result = handler.handler(event, Context())
print(json.dumps({"payload": result, "modules": sorted(sys.modules)}))
"""


def loaded_modules(settings: dict, event: object) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(settings), json.dumps(event)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    return payload_of_result(report["payload"])["status"], set(report["modules"])


def test_a_rejected_event_never_imports_the_http_stack(kps):
    status, modules = loaded_modules({"KPS_ENDPOINT": kps.url, "KPS_REGION": "cn-north-4"}, [1, 2])
    assert status == "rejected"
    assert not {"requests", "urllib3", "huaweicloudsdkcore"} & modules


@pytest.mark.parametrize(
    ("credentials", "signer"),
    [({"KPS_AUTH_TOKEN": TOKEN}, False), ({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}, True)],
)
def test_only_the_aksk_path_imports_the_signer(kps, credentials, signer):
    settings = {"KPS_ENDPOINT": kps.url, "KPS_REGION": "cn-north-4", **credentials}
    status, modules = loaded_modules(settings, {"project_id": PROJECT})
    assert status == "succeeded"
    assert "requests" in modules
    assert ("huaweicloudsdkcore.signer.signer" in modules) is signer
    assert "huaweicloudsdkcore.client" not in modules, "the SDK's HTTP client is never loaded"
