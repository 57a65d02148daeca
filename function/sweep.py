"""Sweep: every enabled regional project the credentials can see in IAM, in a region that offers KPS,
becomes a target.

A project's name is its region (``cn-north-4``) or, for a sub-project, ``{region}_{suffix}``;
non-regional projects such as ``MOS`` have no KPS and are skipped, and so are projects in regions
without KPS (``regions.REGIONS_WITH_KPS``: trying them would fail every night) and projects outside
``KPS_REGIONS`` or the allow-list. A project IAM lists twice (a repeated page, or two names reaching one
KPS endpoint) is one target, as a named one would be (``targets.identity``). The ``projects swept`` line
names what was skipped and why.
"""

from __future__ import annotations

from .api import OBJECT, ApiClient, RetryPolicy, invalid_response
from .budget import Deadline
from .credentials import Credentials
from .errors import SweepFailed
from .logs import logger as log
from .regions import REGIONS_WITH_KPS
from .settings import PROJECT_ID, REGION, Settings, Target
from .targets import identity

PROJECTS_PATH = "/v3/auth/projects"
# The most targets one sweep takes. Past it the sweep is refused (ProjectListingFailed) rather than cut:
# cutting would leave the same projects uncleaned every night, unseen. Each target costs at least two
# KPS calls and a result in the payload: ~0.6 KB usually, at most ~2.0 KB (3.4 KB as an API Gateway
# body) when every server text is at its byte bound (``api.clean_text``), so 1,000 results without
# samples stay under the 5.5 MB answer limit (samples are shrunk to fit: ``payload.within_answer_limit``);
# they take ~32 rounds at the largest KPS_CONCURRENCY.
MAX_SWEEP_TARGETS = 1000


def sweep_targets(settings: Settings, credentials: Credentials, deadline: Deadline) -> list[Target]:
    reply = ApiClient(settings.iam_endpoint, credentials, RetryPolicy.from_settings(settings), deadline).call(
        "GET", PROJECTS_PATH
    )
    projects = reply.data.get("projects") if reply.ok and isinstance(reply.data, dict) else None
    if not isinstance(projects, list):
        raise SweepFailed(reply if not reply.ok else invalid_response(reply, "IAM answered without a projects list"))
    targets: dict[tuple[str, str], Target] = {}  # by ``identity``: a project IAM lists twice is one target
    duplicates: list[str] = []
    skipped: list[str] = []
    no_kps: list[str] = []
    for project in projects:
        if not isinstance(project, dict) or project.get("enabled") is False:
            continue
        project_id, name = project.get("id"), project.get("name", "")
        name = name if isinstance(name, str) else OBJECT  # never a repr: it would quote what the object holds
        region = name.split("_", 1)[0]
        if not isinstance(project_id, str) or not PROJECT_ID.fullmatch(project_id) or not REGION.fullmatch(region):
            skipped.append(name[:64])
            continue
        if region not in REGIONS_WITH_KPS:
            no_kps.append(name[:64])
            continue
        if settings.regions is not None and region not in settings.regions:
            continue
        if settings.allowed_project_ids is not None and project_id not in settings.allowed_project_ids:
            continue
        target = Target(project_id, region)
        if targets.setdefault(identity(target, settings), target) is not target:
            duplicates.append(name[:64])
    log.info(
        "projects swept",
        listed=len(projects),
        targets=len(targets),
        skipped_non_regional=skipped[:20],
        skipped_no_kps_in_region=no_kps[:20],
        **({"skipped_duplicate": duplicates[:20]} if duplicates else {}),
    )
    if len(targets) > MAX_SWEEP_TARGETS:
        message = (
            f"{len(targets)} projects to sweep, more than the {MAX_SWEEP_TARGETS} one invocation takes: "
            "narrow the sweep with KPS_REGIONS or KPS_ALLOWED_PROJECT_IDS"
        )
        raise SweepFailed(reply._replace(ok=False, error={"code": "TooManyTargets", "message": message}))
    return list(targets.values())
