"""A third-party client: schemathesis fuzzes `make serve` (the real handler behind a local API Gateway,
the KPS emulator behind it) with api/openapi.yaml and every one of its checks. Fixed seed, bounded examples.

Positive and negative data; a failure names the check and the request to replay. Needs Python 3.11+
(schemathesis 4); on the older runtimes the module is skipped (the payload schema is checked there anyway).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ROOT

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis 4 needs Python 3.11+")
from hypothesis import HealthCheck, seed, settings  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402

from devtools import demo  # noqa: E402
from devtools.kps_emulator import KpsEmulator  # noqa: E402
from devtools.serve import PATH, Gateway, LocalServer  # noqa: E402
from handler import handler  # noqa: E402

TOKEN = "local-caller-token"
EXAMPLES = 100  # per operation (GET, POST, DELETE): 300 passing cases, about 30 s on a 2-core machine
load_all_checks()
ALL_CHECKS = CHECKS.get_all()

schema = schemathesis.openapi.from_path(ROOT / "api" / "openapi.yaml")
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """make serve as it runs from a fresh clone: the seeded emulator for KPS and IAM, the demo agency keys."""
    with KpsEmulator() as kps:
        demo.seed(kps)
        settings = {**demo.emulator_settings(kps), "KPS_BACKOFF_BASE_SECONDS": "0.01"}
        # Tokens checked (make serve --token): schemathesis's ignored_auth check sends invalid credentials too.
        gateway = Gateway(handler, lambda: demo.demo_context(settings, "agency-keys", 30.0), frozenset({TOKEN}))
        with (tmp_path_factory.mktemp("serve") / "log").open("w") as log, LocalServer(gateway, 0, log) as server:
            yield server.url.removesuffix(PATH)


@schema.parametrize()
@seed(20261129)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_the_api_keeps_its_description(case: Any, gateway_url: str) -> None:
    case.call_and_validate(base_url=gateway_url, headers={"X-Auth-Token": TOKEN}, checks=ALL_CHECKS)
