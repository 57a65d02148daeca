"""Red team of h19-edges: each test is a break of one of its promises, reproduced over real sockets (the KPS
emulator, tests/servers.py, make serve's gateway on a raw socket) or through ``terraform console``. They fail
until the code keeps the promise; none is marked xfail.

Promises: (2) a Retry-After that does not fit the time left stops the call at once with the server's own error;
(3) make serve refuses what it cannot frame or read as the client sent it, and never runs the function for it;
(5) the plan refuses a KPS_SELECT exactly when the function does, and takes every well-formed CRON_TZ zone.
"""

from __future__ import annotations

import zoneinfo

import pytest
from test_terraform import REQUIRED, needs_terraform, refused, user_data, without_resources  # noqa: F401

from function.selection import SelectionError, parse_setting
from function.settings import SettingSource, load_settings

# --- 5. the plan and the function agree on KPS_SELECT; every tz database zone is taken ----------------------------

PLAN_TAKES_WHAT_THE_FUNCTION_REFUSES = {
    # jsondecode keeps the last of two equal keys, and the twice-check looks for the key as typed.
    "escaped-twin": '{"older_than_hours": 1, "older_than_hour\\u0073": 2}',
    # Terraform's length() counts grapheme clusters, Python's len() code points: 200 flags are 400 code points.
    "flags": '{"server_name": ["' + "\U0001f1ef\U0001f1f5" * 200 + '"]}',
    "combining": '{"server_name": ["x' + "\u0301" * 300 + '"]}',
}


@needs_terraform
@pytest.mark.parametrize(
    "select", PLAN_TAKES_WHAT_THE_FUNCTION_REFUSES.values(), ids=PLAN_TAKES_WHAT_THE_FUNCTION_REFUSES
)
def test_the_plan_refuses_a_kps_select_the_function_refuses(without_resources, select):  # noqa: F811
    """Else the apply succeeds and every run after it is InvalidSetting. Likely fix: refuse a KPS_SELECT whose
    keys hold a backslash escape (jsondecode has already merged the twins; the text is all HCL can count on);
    bound a value's code points, not its graphemes: ``length(regexall("(?s).", item))`` (RE2's "." is one
    code point), on the text as Terraform writes it (it applies NFC and inserts U+034F after 30 marks)."""
    with pytest.raises(SelectionError):
        parse_setting(select)
    quoted = select.replace("\\", "\\\\").replace('"', '\\"')
    output = refused(without_resources, "-var", f'settings={{KPS_SELECT="{quoted}"}}')
    assert "Error: Invalid value for variable" in output, "the plan took it; the function refuses it"


PLAN_REFUSES_WHAT_THE_FUNCTION_TAKES = {
    "empty": "",  # the function reads an empty setting as unset: no selection
    "a-hair-above-the-bound": '{"older_than_hours": 1000000.0000000000000000001}',  # a float: 1000000.0
    "a-hair-below-zero": '{"older_than_hours": -1e-400}',  # a float: -0.0
}


@needs_terraform
@pytest.mark.parametrize(
    "select", PLAN_REFUSES_WHAT_THE_FUNCTION_TAKES.values(), ids=PLAN_REFUSES_WHAT_THE_FUNCTION_TAKES
)
def test_the_plan_takes_a_kps_select_the_function_takes(without_resources, select):  # noqa: F811
    """Terraform compares numbers exactly (arbitrary precision), the function as the float ``json`` reads; and
    ``jsondecode("")`` fails where the function treats "" as unset. Likely fix: lookup's default for an empty
    value too (``coalesce``), and compare the bounds as floats would (or refuse only beyond a margin)."""
    load_settings(SettingSource(None, {"KPS_SELECT": select}))  # the function takes it
    quoted = select.replace("\\", "\\\\").replace('"', '\\"')
    data = user_data(without_resources, *REQUIRED, "-var", f'settings={{KPS_SELECT="{quoted}", KPS_DRY_RUN="true"}}')
    assert data[3].get("KPS_SELECT", "") == select


@needs_terraform
@pytest.mark.parametrize("zone", ["GMT", "Etc/GMT0", "Etc/UCT", "PRC", "US/Eastern", "CET", "EST5EDT"])
def test_the_plan_takes_every_tz_database_zone_in_cron_tz(without_resources, zone):  # noqa: F811
    """The CRON_TZ check takes UTC, Etc/UTC, Etc/GMT±n and Area/Location[/Sub] only: 79 of the 599 names in the tz
    database (its ``backward`` links and top-level zones: PRC, GMT, CET, US/Eastern, Etc/GMT0) fail the plan
    though a Go scheduler's time.LoadLocation loads each. Likely fix: take any ``[A-Za-z][A-Za-z0-9_+-]*``
    part, one to three of them, or list the top-level names."""
    assert zone in zoneinfo.available_timezones()
    schedule = f"CRON_TZ={zone} 0 0 3 * * ?"
    output = refused(without_resources, "-var", f"schedule={schedule}", expression="local.timer_event_data.schedule")
    assert "Invalid value for variable" not in output, f"{schedule!r} refused at plan"
