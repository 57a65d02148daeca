"""The local demo account: what `make run`, `make invoke` and `make serve` set up in the KPS emulator.

KPS and IAM are both the emulator, so a local run (a sweep included) never leaves the machine. IAM lists
projects that take every branch of a sweep: regional ones, a sub-project, a region without KPS, a
non-regional project and a disabled one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .context import FakeContext
from .kps_emulator import KpsEmulator

DEMO_PROJECT = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09"
DEMO_REGION = "cn-north-4"
# Throw-away demo credentials, known only to the local emulator.
DEMO_AK, DEMO_SK, DEMO_SECURITY_TOKEN = "DEMOAGENCYAK0000", "demo-agency-secret-key", "demo-security-token"
DEMO_TOKEN = "demo-iam-token"
AUTH_MODES = ("agency-keys", "agency-token", "aksk", "token")


class IamProject(NamedTuple):
    id: str
    name: str  # a region, {region}_{suffix} for a sub-project, or a non-regional name
    failed_tasks: int
    enabled: bool = True


# What a sweep meets in a real account. eu-west-101 (Dublin) is a real region that the official
# huaweicloudsdkkps does not list: KPS is not offered there.
IAM_PROJECTS = (
    IamProject(DEMO_PROJECT, DEMO_REGION, 5),
    IamProject("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "ap-southeast-3", 3),
    IamProject("5e6f708192a3b4c5d6e7f8091a2b3c4d", "cn-north-4_ops", 2),
    IamProject("9f8e7d6c5b4a39281706f5e4d3c2b1a0", "eu-west-101", 1),
    IamProject("1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", "MOS", 0),
    IamProject("7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d", "cn-east-3", 4, enabled=False),
)


def seed(kps: KpsEmulator, auth: str = "agency-keys", demo_tasks: int = 5) -> None:
    """Failed tasks in each project, the IAM project list, and the demo credentials (temporary
    agency keys carry a security token; permanent AK/SK do not)."""
    for project in IAM_PROJECTS:
        kps.seed(project.id, demo_tasks if project.id == DEMO_PROJECT else project.failed_tasks)
    kps.set_iam_projects([{"id": p.id, "name": p.name, "enabled": p.enabled} for p in IAM_PROJECTS])
    kps.add_key(DEMO_AK, DEMO_SK, DEMO_SECURITY_TOKEN if auth == "agency-keys" else None)
    kps.add_token(DEMO_TOKEN)


def emulator_settings(kps: KpsEmulator) -> dict[str, str]:
    """The function's environment for a local run: KPS and IAM both point at the emulator."""
    return {
        "KPS_ENDPOINT": kps.url,
        "KPS_IAM_ENDPOINT": kps.url,
        "KPS_REGION": DEMO_REGION,
        "RUNTIME_PROJECT_ID": DEMO_PROJECT,
    }


def demo_context(user_data: dict[str, str], auth: str, timeout: float) -> FakeContext:
    """A context whose credentials come from where ``auth`` says: the agency, or the settings."""
    user_data = dict(user_data)
    keys: dict[str, Any] = {}
    if auth == "agency-keys":
        keys = {"access_key": DEMO_AK, "secret_key": DEMO_SK, "security_token": DEMO_SECURITY_TOKEN}
    elif auth == "agency-token":
        keys = {"token": DEMO_TOKEN}
    elif auth == "aksk":
        user_data.update(HUAWEICLOUD_SDK_AK=DEMO_AK, HUAWEICLOUD_SDK_SK=DEMO_SK)
    elif auth == "token":
        user_data["KPS_AUTH_TOKEN"] = DEMO_TOKEN
    return FakeContext(user_data=user_data, timeout_seconds=timeout, **keys)
