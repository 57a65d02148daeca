"""Turns the requests an event carries (read and validated by ``triggers``) and the settings into targets.

The model has checked every value before any URL exists: a project ID is 32 lower-case hex characters,
a region a region name. Nothing from an event can name a host: the endpoint comes from settings.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

from .errors import Rejected
from .selection import Selection
from .settings import SWEEP, Settings, Target
from .triggers import MAX_TARGETS, Request, TriggerEvent


class Sweep(NamedTuple):
    """Every project IAM lists, each cleaned with this selection."""

    select: Selection | None


Wanted = Union[list[Target], Sweep]


def _region(region: str | None, settings: Settings) -> str | None:
    if region is None:
        if settings.region is None and settings.endpoint is None:
            raise Rejected("MissingRegion", "no region in the event or KPS_REGION, and no KPS_ENDPOINT")
        return settings.region
    return region


def dry_run_requested(incoming: TriggerEvent, settings: Settings) -> bool:
    """A dry run when the setting or any message of the event asks for one: the safe side wins."""
    return settings.dry_run or any(request.get("dry_run") for request in incoming.field_sets)


def _sweep(request: Request) -> str:
    named = [name for name in ("project_id", "region") if name in request]
    if named:  # a sweep is never narrowed, or widened, by a guess
        raise Rejected(
            "InvalidEvent",
            f'targets "all" sweeps every project the credentials can see: it takes no {" or ".join(named)}'
            " (KPS_REGIONS and KPS_ALLOWED_PROJECT_IDS narrow a sweep)",
        )
    return SWEEP


def _from_request(request: Request, settings: Settings) -> Wanted:
    """Event first; then KPS_TARGETS, KPS_PROJECT_ID, RUNTIME_PROJECT_ID. An entry without a region takes
    the request's, then KPS_REGION."""
    region = request.get("region")
    targets = request.get("targets")
    if targets == SWEEP:
        return _sweep(request)
    if targets is not None:
        if "project_id" in request:
            raise Rejected("InvalidEvent", "name either project_id or targets, not both")
        return [Target(e["project_id"], _region(e.get("region", region), settings)) for e in targets]
    if "project_id" in request:
        return [Target(request["project_id"], _region(region, settings))]
    if region is not None:  # a project ID belongs to one region: the default project elsewhere is never meant
        raise Rejected("InvalidEvent", "region without project_id or targets names no project; name the project_id")
    if settings.targets is not None:
        return settings.targets if settings.targets == SWEEP else list(settings.targets)
    project_id = settings.project_id or settings.runtime_project_id
    if project_id is None:
        raise Rejected(
            "MissingProjectId", "no project_id in the event, KPS_TARGETS, KPS_PROJECT_ID or RUNTIME_PROJECT_ID"
        )
    return [Target(project_id, _region(None, settings))]


def _selection(request: Request, settings: Settings) -> Selection | None:
    """A message's ``select`` (the model has read it; a null one was refused), else KPS_SELECT: the
    event's replaces the setting's."""
    return request.get("select", settings.select)


def _one_selection(
    selections: dict[tuple[str, str], tuple[Target, Any]], key: tuple[str, str], target: Target, chosen: Any
) -> None:
    """Two messages that name one target with different selections are refused: either reading would
    delete tasks the other message meant to keep."""
    if selections.setdefault(key, (target, chosen))[1] != chosen:
        where = "a sweep" if target.project_id == SWEEP else f"project {target.project_id}"
        raise Rejected("InvalidEvent", f"ambiguous event: two messages give {where} different selections (select)")


def _all_or_none_named(requests: list[Request]) -> None:
    """In a batch, every message names its targets or none does (then the batch means the defaults): a
    message naming nothing beside one naming B would add the default project, or a sweep, to B's."""
    named = ["project_id" in r or "targets" in r for r in requests]
    if any(named) and not all(named):
        raise Rejected(
            "InvalidEvent",
            f"message {named.index(False)} of the batch names no project_id or targets while another does;"
            " in a batch every message names its targets, or none does",
        )


def resolve_targets(requests: list[Request], settings: Settings) -> Wanted:
    """Distinct targets in the order the event names them, each with its selection (``Target.select``),
    or a ``Sweep`` with its selection, which takes no named target beside it. A target
    is what it reaches (``identity``): one project under two region names with KPS_ENDPOINT is one
    target, cleaned once under the first name, with one selection. The allow-list applies first."""
    _all_or_none_named(requests)
    selections: dict[tuple[str, str], tuple[Target, Any]] = {}
    sweep = False
    for request in requests:
        wanted = _from_request(request, settings)
        chosen = _selection(request, settings)
        if wanted == SWEEP:
            sweep = True
            _one_selection(selections, ("", SWEEP), Target(SWEEP, None), chosen)
            continue
        for target in wanted:
            _one_selection(selections, identity(target, settings), target, chosen)
        if len(selections) > MAX_TARGETS:
            raise Rejected("InvalidEvent", f"the event names more than {MAX_TARGETS} targets")
    targets = [t._replace(select=chosen) for t, chosen in selections.values() if t.project_id != SWEEP]
    allowed = settings.allowed_project_ids
    if allowed is not None:
        for target in targets:
            if target.project_id not in allowed:
                raise Rejected("ProjectNotAllowed", f"project {target.project_id} is not in KPS_ALLOWED_PROJECT_IDS")
    if sweep and targets:  # the sweep may not list them (other credentials, another region): never dropped
        raise Rejected(
            "InvalidEvent", 'a sweep takes no named targets beside it: send "targets": "all" in an event of its own'
        )
    return Sweep(selections[("", SWEEP)][1]) if sweep else targets


def identity(target: Target, settings: Settings) -> tuple[str, str]:
    """What a target reaches, (endpoint, project): the one rule by which named targets and a sweep's
    are told apart. With KPS_ENDPOINT every region name reaches the same KPS."""
    return endpoint_for(target, settings), target.project_id


def endpoint_for(target: Target, settings: Settings) -> str:
    if settings.endpoint is not None:
        return settings.endpoint
    return f"https://kms.{target.region}.myhuaweicloud.com"
