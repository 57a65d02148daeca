"""Turns the event's field sets and the settings into validated targets (project, region).

Every value is checked here, before any URL exists: a project ID is 32 lower-case hex characters,
a region a region name. Nothing from an event can name a host: the endpoint comes from settings.
"""

from __future__ import annotations

from typing import Any, Union

from . import selection
from .errors import Rejected
from .logs import scrub, shorten
from .settings import PROJECT_ID, REGION, SWEEP, Settings, Target, parse_bool
from .triggers import REQUEST_FIELDS, Fields, TriggerEvent

MAX_TARGETS = 100
Wanted = Union[list[Target], str]  # explicit targets, or SWEEP: every project IAM lists


def _shown(value: Any) -> str:
    """A short, safe rendering of a caller's value for an error message: masked (before ``repr``
    escapes anything), then cut."""
    return shorten(repr(scrub(value) if isinstance(value, str) else value), 48)


def _project_id(value: Any) -> str:
    if not isinstance(value, str) or not PROJECT_ID.fullmatch(value):
        raise Rejected(
            "InvalidProjectId", f"project_id must be 32 lower-case hexadecimal characters, got {_shown(value)}"
        )
    return value


def _region(value: Any, settings: Settings) -> str | None:
    if value is None:
        if settings.region is None and settings.endpoint is None:
            raise Rejected("MissingRegion", "no region in the event or KPS_REGION, and no KPS_ENDPOINT")
        return settings.region
    if not isinstance(value, str) or not REGION.fullmatch(value):
        raise Rejected("InvalidRegion", f"region must be a region name such as cn-north-4, got {_shown(value)}")
    return value


def dry_run_field(fields: Fields) -> bool:
    """One message's own ``dry_run``: absent is false; anything but a boolean (or its text) is refused."""
    value = fields.get("dry_run")
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError:
            pass
    raise Rejected("InvalidEvent", f"dry_run must be true or false, got {_shown(value)}")


def dry_run_requested(incoming: TriggerEvent, settings: Settings) -> bool:
    """A dry run when the setting, any message, or any other part of the event asks for one: the
    safe side wins. Each message's own ``dry_run`` must be a boolean."""
    requested = [dry_run_field(fields) for fields in incoming.field_sets]
    return settings.dry_run or incoming.dry_run_anywhere or any(requested)


def _from_event_targets(value: Any, fields: Fields, settings: Settings) -> Wanted:
    if isinstance(value, str) and value.lower() == SWEEP:
        named = [name for name in ("project_id", "region") if fields.get(name) is not None]
        if named:  # a sweep is never narrowed, or widened, by a guess
            raise Rejected(
                "InvalidEvent",
                f'targets "all" sweeps every project the credentials can see: it takes no {" or ".join(named)}'
                " (KPS_REGIONS and KPS_ALLOWED_PROJECT_IDS narrow a sweep)",
            )
        return SWEEP
    if not isinstance(value, list) or not value:
        raise Rejected(
            "InvalidEvent", f'targets must be "all" or a list of {{project_id, region}}, got {_shown(value)}'
        )
    if len(value) > MAX_TARGETS:
        raise Rejected("InvalidEvent", f"the event names more than {MAX_TARGETS} targets")
    if fields.get("project_id") is not None:
        raise Rejected("InvalidEvent", "name either project_id or targets, not both")
    if not all(isinstance(entry, dict) for entry in value):
        raise Rejected("InvalidEvent", "each entry of targets must be an object {project_id, region}")
    if any("select" in entry for entry in value):  # ignored there, it would leave every task to be deleted
        raise Rejected("InvalidEvent", "select goes beside targets (for all of them), not inside an entry")
    default_region = fields.get("region")
    return [Target(_project_id(e.get("project_id")), _region(e.get("region", default_region), settings)) for e in value]


def _from_fields(fields: Fields, settings: Settings) -> Wanted:
    """Event first; then KPS_TARGETS, KPS_PROJECT_ID, RUNTIME_PROJECT_ID."""
    if fields.get("targets") is not None:
        return _from_event_targets(fields["targets"], fields, settings)
    if fields.get("project_id") is not None:
        return [Target(_project_id(fields["project_id"]), _region(fields.get("region"), settings))]
    if settings.targets is not None:
        if fields.get("region") is not None:  # KPS_TARGETS carries its own regions: this one would be ignored
            raise Rejected(
                "InvalidEvent",
                "region without project_id or targets: KPS_TARGETS names the targets and their regions;"
                " name the project_id with the region",
            )
        return settings.targets if settings.targets == SWEEP else list(settings.targets)
    project_id = settings.project_id or settings.runtime_project_id
    if project_id is None:
        raise Rejected(
            "MissingProjectId", "no project_id in the event, KPS_TARGETS, KPS_PROJECT_ID or RUNTIME_PROJECT_ID"
        )
    return [Target(project_id, _region(fields.get("region"), settings))]


def _selection(fields: Fields, settings: Settings) -> selection.Selection | None:
    """A message's ``select`` (null counts as absent), else ``KPS_SELECT``: the event's replaces the setting's."""
    value = fields.get("select")
    return settings.select if value is None else selection.parse(value)


def _one_selection(selections: dict[Target, selection.Selection | None], target: Target, chosen: Any) -> None:
    """Two messages that name one target with different selections are refused: either reading would
    delete tasks the other message meant to keep."""
    if selections.setdefault(target, chosen) != chosen:
        where = "a sweep" if target.project_id == SWEEP else f"project {target.project_id}"
        raise Rejected("InvalidEvent", f"ambiguous event: two messages give {where} different selections (select)")


def resolve_targets(field_sets: list[Fields], settings: Settings) -> Wanted:
    """Distinct (project, region) pairs in the order the event names them, each with its selection
    (``Target.select``), or SWEEP (``sweep_selection`` gives its selection)."""
    selections: dict[Target, selection.Selection | None] = {}
    sweep = False
    for fields in field_sets:
        wanted = _from_fields(fields, settings)
        chosen = _selection(fields, settings)
        if wanted == SWEEP:
            sweep = True
            _one_selection(selections, Target(SWEEP, None), chosen)
            continue
        for target in wanted:
            _one_selection(selections, target._replace(select=None), chosen)
        if len(selections) > MAX_TARGETS:
            raise Rejected("InvalidEvent", f"the event names more than {MAX_TARGETS} targets")
    targets = {t._replace(select=chosen): None for t, chosen in selections.items() if t.project_id != SWEEP}
    if sweep:
        if len(set(selections.values())) > 1:  # a named target would be swept with another selection
            raise Rejected("InvalidEvent", "ambiguous event: a sweep and a named target have different selections")
        return SWEEP
    allowed = settings.allowed_project_ids
    if allowed is not None:
        for target in targets:
            if target.project_id not in allowed:
                raise Rejected("ProjectNotAllowed", f"project {target.project_id} is not in KPS_ALLOWED_PROJECT_IDS")
    return list(targets)


def sweep_selection(field_sets: list[Fields], settings: Settings) -> selection.Selection | None:
    """The selection every target of a sweep gets (``resolve_targets`` has refused disagreeing ones)."""
    return next((_selection(f, settings) for f in field_sets if _from_fields(f, settings) == SWEEP), None)


def ignored_fields(field_sets: list[Fields], most: int = 20) -> list[str]:
    """Names a caller sent that mean nothing here (often a typo worth a warning), a bounded few,
    masked before they are cut."""
    names = sorted({shorten(str(k), 64) for fields in field_sets for k in fields if k not in REQUEST_FIELDS})
    return names[:most]


def endpoint_for(target: Target, settings: Settings) -> str:
    if settings.endpoint is not None:
        return settings.endpoint
    return f"https://kms.{target.region}.myhuaweicloud.com"
