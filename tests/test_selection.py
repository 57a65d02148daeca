"""Selective cleanup: ``select`` / ``KPS_SELECT`` choose the tasks, DeleteFailedTask removes exactly those.

Every assertion reads what the emulator saw (its request log) and what the function printed and answered.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from conftest import (
    AK,
    OTHER_PROJECT,
    PROJECT,
    REGION,
    SK,
    TOKEN,
    apig_event,
    assert_valid_payload,
    load_event,
    payload_of_result,
    settled,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_record import assert_whole, record_lines

from devtools.context import FakeContext
from devtools.kps_emulator import OPERATE_TYPES, KpsEmulator
from function.selection import Selection, from_object
from function.settings import SettingSource, load_settings
from function.targets import resolve_targets
from handler import handler

HOUR_MS = 3_600_000
TASKS_PATH = f"/v3/{PROJECT}/failed-tasks"


def task(n: int, *, hours_ago: float = 200.0, **fields: Any) -> dict[str, Any]:
    base = {
        "task_id": str(uuid.UUID(int=n + 1)),
        "operate_type": OPERATE_TYPES[n % 3],
        "task_time": str(int(time.time() * 1000 - hours_ago * HOUR_MS)),
        "task_error_code": "KPS.6002",
        "task_error_msg": "failed",
        "server_name": f"ecs-{n % 4}",
        "server_id": f"srv-{n % 4}",
        "keypair_name": f"kp-{n % 2}",
    }
    return {**base, **fields}


def deleted_ids(kps: KpsEmulator, project: str = PROJECT) -> list[str]:
    """The task_ids of the DeleteFailedTask calls the emulator received, sorted (they run at once)."""
    prefix = f"/v3/{project}/failed-tasks/"
    return sorted(r.path[len(prefix) :] for r in kps.requests if r.method == "DELETE" and r.path.startswith(prefix))


def refuse_delete(kps: KpsEmulator, n: int, status: int, code: str, message: str) -> None:
    """The DELETE of ``task(n)`` answers once with KPS's error ``code``."""
    body = {"error_code": code, "error_msg": message}
    kps.inject(method="DELETE", path=f"{TASKS_PATH}/{task(n)['task_id']}", status=status, body=body)


def recorded_ids(run: Any, message: str = "tasks deleted", project: str = PROJECT) -> list[str]:
    """The task_ids of a target's record, sorted (the record groups tasks by operation and error code)."""
    return sorted(t["task_id"] for t in assert_whole(record_lines(run, message), project))


# --- the property: the deleted set is exactly the selected set, and the record equals it ----------------


def oracle(sel: dict[str, Any], t: dict[str, Any], now_ms: int) -> bool:
    """The spec, written out again independently of ``Selection.matches``."""
    for key in ("operate_type", "task_error_code", "server_id", "server_name", "keypair_name"):
        if key in sel and t.get(key) not in sel[key]:
            return False
    if "older_than_hours" in sel:
        raw = t.get("task_time")
        if not (isinstance(raw, str) and raw.isdigit()):
            return False
        return now_ms - int(raw) >= sel["older_than_hours"] * HOUR_MS
    return True


AGES = [-5.0, 0.5, 12.0, 100.0, 300.0, 5000.0]  # hours: none on a threshold below
TIMES = st.one_of(
    st.sampled_from(AGES).map(lambda h: ("age", h)),
    st.sampled_from([None, "", "soon", "-1", "1e12"]).map(lambda v: ("raw", v)),
)
TASKS = st.lists(
    st.tuples(
        st.sampled_from(OPERATE_TYPES),
        st.sampled_from(["KPS.6002", "KPS.6004", None]),
        st.integers(0, 2),
        st.sampled_from(["kp-a", "kp-b", "kp-c"]),
        TIMES,
    ),
    max_size=12,
)
SELECTIONS = st.fixed_dictionaries(
    {},
    optional={
        "older_than_hours": st.sampled_from([0, 1, 24, 168.0]),
        "operate_type": st.lists(st.sampled_from(OPERATE_TYPES), min_size=1, max_size=2),
        "task_error_code": st.lists(st.sampled_from(["KPS.6002", "KPS.6004", "KPS.0000"]), min_size=1, max_size=2),
        "server_id": st.lists(st.sampled_from(["srv-0", "srv-1", "srv-9"]), min_size=1, max_size=2),
        "server_name": st.lists(st.sampled_from(["ecs-0", "ecs-1", "ecs-2"]), min_size=1, max_size=2),
        "keypair_name": st.lists(st.sampled_from(["kp-a", "kp-b"]), min_size=1, max_size=2),
    },
).filter(bool)


@pytest.fixture(scope="module")
def shared_kps() -> Any:
    with KpsEmulator() as emulator:
        emulator.add_token(TOKEN)
        yield emulator


def run_handler(event: Any, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = handler(event, FakeContext(user_data=env))
    return payload_of_result(result), out.getvalue()


class Printed:
    def __init__(self, out: str) -> None:
        self.out = out


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=TASKS, sel=SELECTIONS, dry_run=st.booleans())
def test_the_deleted_set_is_exactly_the_selected_set(shared_kps, rows, sel, dry_run):
    now_ms = int(time.time() * 1000)
    tasks = []
    for n, (operate, code, server, keypair, (kind, when)) in enumerate(rows):
        stamp = str(int(now_ms - when * HOUR_MS)) if kind == "age" else when
        tasks.append(
            {
                "task_id": str(uuid.UUID(int=n + 1)),
                "operate_type": operate,
                "task_time": stamp,
                "task_error_code": code,
                "server_id": f"srv-{server}",
                "server_name": f"ecs-{server}",
                "keypair_name": keypair,
            }
        )
    shared_kps.put_tasks(PROJECT, tasks)
    shared_kps.clear_log()
    env = {"KPS_ENDPOINT": shared_kps.url, "KPS_REGION": REGION, "KPS_AUTH_TOKEN": TOKEN}
    payload, out = run_handler({"project_id": PROJECT, "select": sel, "dry_run": dry_run}, env)
    expected = [t["task_id"] for t in tasks if oracle(sel, t, now_ms)]
    [result] = payload["results"]
    assert result["ok"], result
    assert (result["selected"], result["kept"]) == (len(expected), len(tasks) - len(expected))
    assert not [r for r in shared_kps.requests if r.method == "DELETE" and r.path == TASKS_PATH]
    if dry_run:
        assert deleted_ids(shared_kps) == []
        assert recorded_ids(Printed(out), "would delete") == sorted(expected)
        assert result["failed_task_count"] == len(expected)
    else:
        assert sorted(deleted_ids(shared_kps)) == sorted(expected)
        assert recorded_ids(Printed(out)) == sorted(expected)
        assert result["failed_task_count"] == len(expected)
        assert (result["already_gone"], result["left"]) == (0, 0)
        assert [t["task_id"] for t in shared_kps.failed_tasks(PROJECT)] == [
            t["task_id"] for t in tasks if t["task_id"] not in expected
        ]


# --- validation: refused, nothing sent ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "problem"),
    [
        ({"older_than_days": 7}, "unknown key 'older_than_days'"),
        ({"older_than_hours": "168"}, "older_than_hours must be a number"),
        ({"older_than_hours": True}, "older_than_hours must be a number"),
        ({"older_than_hours": -1}, "from 0 to 1000000 hours"),
        ({"older_than_hours": 10**400}, "from 0 to 1000000 hours"),
        ({"older_than_hours": 1_000_000.5}, "from 0 to 1000000 hours"),
        ({"operate_type": ["FAILED_BIND"]}, "operate_type 'FAILED_BIND' is not one KPS lists"),
        ({"operate_type": ["failed_unbind"]}, "is not one KPS lists"),
        ({"keypair_name": "kp-a"}, "keypair_name must be a list"),
        ({"keypair_name": []}, "keypair_name is an empty list"),
        ({"server_id": [""]}, "must be a non-empty string, got an empty string"),
        ({"server_id": [7]}, "must be a non-empty string"),
        ({"server_name": ["x"] * 101}, "more than 100"),
        ({}, "names no condition"),
        ([{"older_than_hours": 1}], "must be a JSON object"),
        ('{"older_than_hours": 1}', "must be a JSON object"),
    ],
)
def test_a_bad_selection_is_refused_before_anything_is_sent(kps, invoke, select, problem):
    run = invoke({"project_id": PROJECT, "select": select})
    assert run.payload["status"] == "rejected"
    assert run.payload["error"]["code"] == "InvalidEvent"
    assert problem in run.payload["error"]["message"]
    assert run.payload["error"]["message"].startswith("select: ")
    assert kps.requests == []


def test_nan_and_infinity_are_refused():
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            from_object({"older_than_hours": value})


def test_a_selection_key_given_twice_in_json_text_is_refused(kps, invoke):
    text = '{"project_id": "%s", "select": {"operate_type": ["FAILED_UNBIND"], "operate_type": ["FAILED_RESET"]}}'
    run = invoke(text % PROJECT)
    assert run.payload["error"]["code"] == "InvalidEvent" and "more than once" in run.payload["error"]["message"]
    assert kps.requests == []


def test_a_look_alike_of_select_is_refused(kps, invoke):
    run = invoke({"project_id": PROJECT, "Select": {"older_than_hours": 1}})
    assert run.payload["error"]["code"] == "InvalidEvent" and "did you mean select" in run.payload["error"]["message"]
    assert kps.requests == []


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{older_than_hours: 1}", "not valid JSON"),
        ('{"older_than_hours": -2}', "from 0 to"),
        ('{"older_than_hours": 1e999}', "finite number"),
        ('{"older_than_hours": 1, "older_than_hours": 2}', "given more than once"),
        ('{"operate_type": ["FAILED_UNBIND"], "x": 1}', "unknown key 'x'"),
    ],
)
def test_a_bad_setting_is_invalid_setting_named(kps, invoke, settings, raw, problem):
    settings["KPS_SELECT"] = raw
    run = invoke({"project_id": PROJECT})
    assert run.payload["error"]["code"] == "InvalidSetting"
    assert run.payload["error"]["message"].startswith("KPS_SELECT: ") and problem in run.payload["error"]["message"]
    assert kps.requests == []


def test_a_task_without_a_usable_time_is_not_old_enough():
    sel = Selection(older_than_hours=0)
    now = int(time.time() * 1000)
    assert sel.matches({"task_time": str(now - 1)}, now)
    assert sel.matches({"task_time": now - 1}, now)  # a JSON number, as record.iso_time would not mind
    for value in (None, "", "12.5", "-3", "1" * 16, True, 1.5, [1]):
        assert not sel.matches({"task_time": value}, now), value
    assert not Selection(server_id=frozenset({"a"})).matches({"server_id": ["a"]}, now)  # no crash, no match


# --- setting and event ----------------------------------------------------------------------------------


def test_the_setting_selects_and_never_calls_delete_all(kps, invoke, settings):
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=200), task(2, hours_ago=169)])
    settings.update(KPS_SELECT='{"older_than_hours": 168}', KPS_PROJECT_ID=PROJECT)
    settings["KPS_COUNT_BEFORE_DELETE"] = "false"  # a selection lists whatever this says
    run = invoke(load_event("timer.json"))  # the nightly policy
    [result] = run.payload["results"]
    assert sorted(deleted_ids(kps)) == sorted([task(1)["task_id"], task(2)["task_id"]])
    assert TASKS_PATH not in [r.path for r in kps.requests if r.method == "DELETE"]
    assert result["failed_task_count"] == 2 and result["kept"] == 1 and result["selected"] == 2
    assert [t["task_id"] for t in kps.failed_tasks(PROJECT)] == [task(0)["task_id"]]


def test_the_events_select_replaces_the_settings(kps, invoke, settings):
    kps.put_tasks(PROJECT, [task(n, keypair_name=f"kp-{n}", hours_ago=1) for n in range(4)])
    settings["KPS_SELECT"] = '{"older_than_hours": 168}'  # alone it would select none of them
    run = invoke({"project_id": PROJECT, "select": {"keypair_name": ["kp-2"], "operate_type": ["FAILED_UNBIND"]}})
    assert deleted_ids(kps) == [task(2)["task_id"]]  # task 2 is FAILED_UNBIND (OPERATE_TYPES[2])
    assert run.payload["results"][0]["kept"] == 3


def test_without_a_selection_nothing_changes(kps, invoke):
    run = invoke({"project_id": PROJECT})
    assert [r.path for r in kps.requests if r.method == "DELETE"] == [TASKS_PATH]
    assert "selected" not in run.payload["results"][0]


@pytest.mark.parametrize("wrap", ["smn", "kafka", "timer", "apig"])
def test_select_works_in_every_triggers_message(kps, invoke, wrap):
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    message = {"project_id": PROJECT, "select": {"older_than_hours": 168}}
    if wrap == "apig":
        event = apig_event(message)
    else:
        event = load_event(f"{wrap}.json")
        text = json.dumps(message)
        if wrap == "smn":
            event["record"][0]["smn"]["message"] = text
        elif wrap == "kafka":
            event["records"][0]["messages"] = [text]
        else:
            event["user_event"] = text
    run = invoke(event)
    assert run.payload["status"] == "succeeded", run.payload
    assert deleted_ids(kps) == [task(1)["task_id"]]


def test_targets_entries_and_sweeps_carry_the_selection(kps, invoke, settings):
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    kps.put_tasks(OTHER_PROJECT, [task(5, hours_ago=1), task(6, hours_ago=500)])
    select = {"older_than_hours": 24}
    invoke({"targets": [{"project_id": PROJECT}, {"project_id": OTHER_PROJECT}], "select": select})
    assert deleted_ids(kps) == [task(1)["task_id"]] and deleted_ids(kps, OTHER_PROJECT) == [task(6)["task_id"]]
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    kps.clear_log()
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    settings["KPS_IAM_ENDPOINT"] = kps.url
    run = invoke({"targets": "all", "select": select})
    assert run.payload["status"] == "succeeded", run.payload
    assert deleted_ids(kps) == [task(1)["task_id"]]
    assert TASKS_PATH not in [r.path for r in kps.requests if r.method == "DELETE"]


def test_a_select_inside_a_targets_entry_is_refused_not_ignored(kps, invoke):
    run = invoke({"targets": [{"project_id": PROJECT, "select": {"older_than_hours": 168}}]})
    error = run.payload["error"]
    assert error["code"] == "InvalidEvent" and "unknown keys: 'select'" in error["message"]
    assert kps.requests == []


def test_two_messages_with_different_selections_for_one_target_are_refused(kps, invoke):
    event = load_event("kafka.json")
    event["records"][0]["messages"] = [
        json.dumps({"project_id": PROJECT, "select": {"older_than_hours": 168}}),
        json.dumps({"project_id": PROJECT}),
    ]
    run = invoke(event)
    assert run.payload["error"]["code"] == "InvalidEvent" and "different selections" in run.payload["error"]["message"]
    event["records"][0]["messages"] = [
        json.dumps({"targets": "all", "select": {"older_than_hours": 168}}),
        json.dumps({"targets": "all"}),
    ]
    run = invoke(event)
    assert run.payload["error"]["code"] == "InvalidEvent" and "different selections" in run.payload["error"]["message"]
    assert kps.requests == []
    event["records"][0]["messages"] = [json.dumps({"project_id": PROJECT, "select": {"older_than_hours": 1}})] * 2
    assert invoke(event).payload["status"] == "succeeded"  # the same selection twice is one target


# --- KPS answers: already gone, throttled, cut short, unsafe ids ----------------------------------------


def test_already_gone_is_no_failure_and_not_counted_as_deleted(kps, invoke):
    kps.put_tasks(PROJECT, [task(n) for n in range(3)])
    refuse_delete(kps, 1, 400, "KPS.0005", "failed task not found")
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    assert result["ok"] and result["outcome"] == "deleted"
    assert (result["failed_task_count"], result["already_gone"], result["left"]) == (2, 1, 0)
    assert "already gone" in result["warning"]
    assert recorded_ids(run) == [task(0)["task_id"], task(2)["task_id"]]


def test_a_throttled_delete_waits_retry_after_and_succeeds(kps, invoke):
    kps.put_tasks(PROJECT, [task(0)])
    kps.inject(
        method="DELETE", status=429, retry_after="0.2", body={"error_code": "APIGW.0308", "error_msg": "over ratelimit"}
    )
    run = invoke({"project_id": PROJECT, "select": {"operate_type": ["FAILED_RESET"]}})
    [result] = run.payload["results"]
    attempts = [r for r in kps.requests if r.method == "DELETE"]
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[1].started - attempts[0].ended >= 0.2  # Retry-After honoured, not the 0.01 s backoff
    assert result["ok"] and result["failed_task_count"] == 1 and result["attempts"] == 3


def test_a_failed_delete_stops_the_targets_other_deletes(kps, invoke, settings):
    settings["KPS_CONCURRENCY"] = "1"
    kps.put_tasks(PROJECT, [task(n) for n in range(5)])
    refuse_delete(kps, 1, 403, "KPS.9003", "no permission")
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 0}})
    [result] = run.payload["results"]
    assert deleted_ids(kps) == [task(0)["task_id"], task(1)["task_id"]]
    assert not result["ok"] and result["error"]["code"] == "KPS.9003"
    assert (result["failed_task_count"], result["left"]) == (1, 4)
    assert recorded_ids(run) == [task(0)["task_id"]]


def test_the_deadline_cuts_a_long_selection_short(kps, invoke, settings):
    settings["KPS_CONCURRENCY"] = "2"
    kps.put_tasks(PROJECT, [task(n) for n in range(40)])
    kps.inject(method="DELETE", delay=0.25, times=40)
    # 3.5 s: 2 s for the listing and the DELETEs (the record keeps 1 s, the margin 0.5 s), the first ones
    # done on a loaded machine too
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 0}}, timeout_seconds=3.5)
    [result] = run.payload["results"]
    deleted, left, unconfirmed = result["failed_task_count"], result["left"], result["unconfirmed"]
    # A DELETE given up at the deadline may reach the emulator, and be carried out, after the handler returned.
    settled(kps, "DELETE", deleted + unconfirmed)
    sent = deleted_ids(kps)
    assert not result["ok"] and result["error"]["code"] == "DeadlineExceeded"
    assert 0 < deleted < len(sent) + 1 < 40 and left + unconfirmed == 40 - deleted
    assert left == 40 - len(sent)  # a DELETE never sent is left, never unconfirmed; one sent is neither
    assert f"{deleted} of 40 selected tasks deleted, {left} left" in result["warning"]
    recorded = recorded_ids(run)
    assert len(recorded) == deleted and set(recorded) <= set(sent)
    # A DELETE still in flight at the deadline was sent and its answer lost: unconfirmed, in its own record.
    assert set(recorded_ids(run, "tasks unconfirmed")) <= set(sent) - set(recorded)
    assert len(recorded_ids(run, "tasks unconfirmed")) == unconfirmed
    remaining = {t["task_id"] for t in kps.failed_tasks(PROJECT)}
    assert not remaining & set(recorded)  # what the record says went is gone
    assert remaining == {task(n)["task_id"] for n in range(40)} - set(sent)  # and every DELETE sent was carried out


@pytest.mark.parametrize("bad", ["../../x", "a/b", "..", "a%2Fb", "a\nb", "a b", "x" * 129, "", None, 7])
def test_an_unsafe_task_id_never_becomes_a_url(kps, invoke, bad):
    kps.put_tasks(PROJECT, [task(0), {**task(1), "task_id": bad}, task(2)])
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    paths = sorted(r.path for r in kps.requests if r.method == "DELETE")
    assert paths == [f"{TASKS_PATH}/{task(0)['task_id']}", f"{TASKS_PATH}/{task(2)['task_id']}"]
    assert not result["ok"] and result["error"]["code"] == "InvalidTaskId"
    assert result["failed_task_count"] == 2 and result["left"] == 1


def test_an_incomplete_listing_deletes_only_what_it_listed_and_says_so(kps, invoke, settings):
    settings["KPS_LIST_PAGE_SIZE"] = "2"
    kps.put_tasks(PROJECT, [task(n) for n in range(5)])
    kps.inject(method="GET")  # the first page answers normally
    kps.inject(method="GET", status=500, times=10, body={"error_code": "KPS.0003", "error_msg": "down"})
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    assert deleted_ids(kps) == [task(0)["task_id"], task(1)["task_id"]]
    assert not result["ok"] and result["error"]["code"] == "KPS.0003"
    assert result["failed_task_count"] == 2 and result["left"] == 0
    assert "tasks past the 2 listed were not examined" in result["warning"]
    assert recorded_ids(run) == [task(0)["task_id"], task(1)["task_id"]]


def test_a_dry_run_records_what_would_go_and_deletes_nothing(kps, invoke):
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500), task(2, hours_ago=500)])
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 168}, "dry_run": True})
    [result] = run.payload["results"]
    assert [r.method for r in kps.requests] == ["GET"]
    assert result["outcome"] == "would_delete" and result["failed_task_count"] == 2
    assert (result["selected"], result["kept"]) == (2, 1) and "left" not in result
    assert recorded_ids(run, "would delete") == [task(1)["task_id"], task(2)["task_id"]]
    assert [t["task_id"] for t in result["sample"]] == [task(1)["task_id"], task(2)["task_id"]]


def test_deletes_share_one_bound_across_targets(kps, invoke, settings):
    settings["KPS_CONCURRENCY"] = "3"
    kps.put_tasks(PROJECT, [task(n) for n in range(12)])
    kps.put_tasks(OTHER_PROJECT, [task(n) for n in range(12)])
    kps.inject(method="DELETE", delay=0.5, times=6)  # held long enough for the pool to fill, on a loaded machine too
    run = invoke(
        {"targets": [{"project_id": PROJECT}, {"project_id": OTHER_PROJECT}], "select": {"older_than_hours": 1}}
    )
    assert run.payload["status"] == "succeeded"
    assert len(deleted_ids(kps)) == len(deleted_ids(kps, OTHER_PROJECT)) == 12
    assert kps.peak_in_flight("DELETE") == 3  # both targets at once, never more than the one pool of 3


def test_signed_calls_reach_delete_failed_task(kps, invoke, settings):
    del settings["KPS_AUTH_TOKEN"]
    settings.update(HUAWEICLOUD_SDK_AK=AK, HUAWEICLOUD_SDK_SK=SK)
    kps.put_tasks(PROJECT, [task(0)])
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    assert run.payload["status"] == "succeeded"
    assert [(r.method, r.auth, r.status) for r in kps.requests] == [("GET", "aksk", 200), ("DELETE", "aksk", 200)]


def test_the_payload_schema_knows_the_selection_counts():
    base = {
        "ok": True,
        "status": "succeeded",
        "dry_run": False,
        "trigger": "direct",
        "request_id": "r",
        "error": None,
        "duration_ms": 1,
    }
    result = {
        "project_id": PROJECT,
        "region": REGION,
        "ok": True,
        "outcome": "deleted",
        "http_status": 200,
        "kps_request_id": None,
        "failed_task_count": 1,
        "attempts": 2,
        "error": None,
        "duration_ms": 1,
        "warning": None,
        "selected": 1,
        "kept": 0,
        "already_gone": 0,
        "left": 0,
        "unconfirmed": 0,
    }
    assert_valid_payload({**base, "results": [result]})
    for broken in ({"left": -1}, {"unconfirmed": None}):
        with pytest.raises(AssertionError):
            assert_valid_payload({**base, "results": [{**result, **broken}]})
    with pytest.raises(AssertionError):  # the counts come together: one without the others is no sum
        assert_valid_payload({**base, "results": [{k: v for k, v in result.items() if k != "unconfirmed"}]})


@pytest.mark.parametrize("setting", [None, '{"older_than_hours": 168}'], ids=["no KPS_SELECT", "with KPS_SELECT"])
def test_a_null_select_is_refused_never_read_as_absent(kps, invoke, settings, setting):
    """Issue 18: "an event carrying a field select is read with select ignored, and everything is
    deleted" is the bug. ``"select": null`` (a template's unset variable: Terraform's jsonencode writes
    null) is refused, never read as absent: absent means KPS_SELECT where it is set, and without it
    DeleteAllFailedTask."""
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    if setting is not None:
        settings["KPS_SELECT"] = setting
    run = invoke({"project_id": PROJECT, "select": None})
    assert run.payload["error"]["code"] == "InvalidEvent" and "omit select" in run.payload["error"]["message"]
    assert [r for r in kps.requests if r.method == "DELETE"] == []
    assert len(kps.failed_tasks(PROJECT)) == 2


def test_the_emulators_route_faults_apply_only_where_they_are_aimed(kps):
    kps.put_tasks(PROJECT, [task(0), task(1)])
    kps.inject(method="DELETE", path=f"{TASKS_PATH}/{task(1)['task_id']}", status=429, retry_after="1")

    def call(method: str, path: str) -> int:
        request = urllib.request.Request(kps.url + path, method=method, headers={"X-Auth-Token": TOKEN})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert call("GET", TASKS_PATH) == 200  # another route: untouched, the fault still queued
    assert call("DELETE", f"{TASKS_PATH}/{task(0)['task_id']}") == 200
    assert call("DELETE", f"{TASKS_PATH}/{task(1)['task_id']}") == 429  # the aimed one
    assert call("DELETE", f"{TASKS_PATH}/{task(1)['task_id']}") == 200  # used once
    assert call("DELETE", f"{TASKS_PATH}/{task(1)['task_id']}") == 400  # KPS.0005: gone
    assert call("DELETE", f"/v3/{PROJECT}/failed-tasks/..") == 400
    assert kps.peak_in_flight("DELETE") == 1


def test_over_http_select_is_read_from_the_json_body_only(kps, invoke):
    run = invoke(apig_event({"project_id": PROJECT}, query={"select": '{"older_than_hours": 1}'}))
    assert run.result["statusCode"] == 400 and "select: must be a JSON object" in run.payload["error"]["message"]
    assert kps.requests == []
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    run = invoke(apig_event({"project_id": PROJECT, "select": {"older_than_hours": 168}}, method="GET"))
    assert run.result["statusCode"] == 200 and run.payload["results"][0]["selected"] == 1
    assert [r.method for r in kps.requests] == ["GET"]  # GET is a dry run, with the selection


def test_one_project_under_two_region_spellings_cannot_escape_the_selection(kps, invoke, settings):
    """With KPS_ENDPOINT every region reaches the same KPS: (P, cn-north-4) and (P, cn-east-3) are one
    target. Two messages giving it different selections are refused: else the second message's
    (no selection) DeleteAllFailedTask would remove the recent task the first message meant to keep."""
    kps.put_tasks(PROJECT, [task(0, hours_ago=1), task(1, hours_ago=500)])
    event = load_event("kafka.json")
    event["records"][0]["messages"] = [
        json.dumps({"project_id": PROJECT, "select": {"older_than_hours": 168}}),  # region from KPS_REGION
        json.dumps({"project_id": PROJECT, "region": "cn-east-3"}),
    ]
    run = invoke(event)
    assert TASKS_PATH not in [r.path for r in kps.requests if r.method == "DELETE"], "DeleteAllFailedTask was called"
    assert task(0)["task_id"] in [t["task_id"] for t in kps.failed_tasks(PROJECT)], "the kept task was deleted"
    assert run.payload["error"]["code"] == "InvalidEvent"


def test_one_project_twice_in_one_targets_list_is_cleaned_once(kps, invoke):
    """The same project named under two regions (one endpoint) in one message: each task is DELETEd
    once and counted once: it is one target, not two that both list and delete it."""
    kps.put_tasks(PROJECT, [task(n) for n in range(6)])
    run = invoke(
        {
            "targets": [
                {"project_id": PROJECT, "region": "cn-north-4"},
                {"project_id": PROJECT, "region": "cn-east-3"},
            ],
            "select": {"older_than_hours": 1},
        }
    )
    assert len(deleted_ids(kps)) == 6, "a task was DELETEd twice"
    assert sum(r.get("failed_task_count") or 0 for r in run.payload["results"]) == 6


def test_a_delete_whose_answer_was_lost_and_retried_is_counted_and_recorded(kps, invoke, settings):
    """The first DELETE reaches KPS and deletes the task, but its answer is late (the attempt times out);
    the retry meets KPS.0005. This invocation deleted the task: it must be in failed_task_count and in
    the record, not counted already_gone."""
    settings.update(KPS_TIMEOUT_SECONDS="0.4", KPS_MAX_ATTEMPTS="3")
    kps.put_tasks(PROJECT, [task(0)])
    kps.inject(method="DELETE", delay=1.0)  # answered (and deleted) long after the client gave up
    # KPS's answer to the retry once the first has deleted the task, scripted: no delay could hold the retry
    # until then, yet answer within its timeout, at any speed
    kps.inject(method="DELETE", status=400, body={"error_code": "KPS.0005", "error_msg": "failed task not found"})
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    attempts = [r for r in settled(kps, "DELETE", 2) if r.method == "DELETE"]
    assert [r.status for r in attempts] == [200, 400] and kps.failed_tasks(PROJECT) == []  # as scripted
    assert (result["failed_task_count"], result["already_gone"]) == (1, 0), result
    assert recorded_ids(run) == [task(0)["task_id"]]


@pytest.mark.parametrize(
    ("first", "mine"),
    [
        ({"status": 429}, False),
        ({"status": 429, "trickle": "body", "trickle_every": 0.05}, False),
        ({"status": 503}, True),
    ],
    ids=["429", "429-body-past-the-timeout", "503"],
)
def test_kps_0005_on_a_retry_is_ours_only_after_an_answer_that_may_have_reached_kps(kps, invoke, settings, first, mine):
    """A 429 is KPS refusing the call, whatever became of its body (here trickled past the 0.3 s timeout):
    KPS.0005 on its retry means the task was already gone. A 5xx may have deleted it: KPS.0005 on its retry is
    this invocation's own DELETE, counted and recorded."""
    settings["KPS_TIMEOUT_SECONDS"] = "0.3"
    kps.put_tasks(PROJECT, [task(0)])
    kps.inject(method="DELETE", retry_after="0", body={"error_code": "X.1", "error_msg": "x"}, **first)
    kps.inject(method="DELETE", status=400, body={"error_code": "KPS.0005", "error_msg": "failed task not found"})
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    assert len([r for r in kps.requests if r.method == "DELETE"]) == 2
    assert (result["failed_task_count"], result["already_gone"]) == ((1, 0) if mine else (0, 1))
    assert recorded_ids(run) == ([task(0)["task_id"]] if mine else [])


def test_a_task_time_in_seconds_is_not_read_as_1970(kps, invoke):
    """KPS documents task_time as epoch milliseconds. A value in seconds (an API version or a proxy
    that converts) read as milliseconds is January 1970: every such task is "old" and deleted, among
    them one that failed a minute ago. A task_time before KPS existed is no usable time (kept)."""
    recent_seconds = str(int(task(0, hours_ago=0.02)["task_time"]) // 1000)
    kps.put_tasks(PROJECT, [task(0, task_time=recent_seconds), task(1, task_time="0"), task(2, hours_ago=500)])
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 168}})
    assert deleted_ids(kps) == [task(2)["task_id"]]
    assert run.payload["results"][0]["kept"] == 2


def test_delete_all_of_an_unselected_target_counts_against_the_shared_bound(kps, invoke, settings):
    """docs/selective-cleanup.md: the DELETEs of all targets share one pool of KPS_CONCURRENCY, "never more
    than that many at once". A target without a selection sends its DeleteAllFailedTask through that
    pool too: never 3 DELETEs at once with KPS_CONCURRENCY=2."""
    settings["KPS_CONCURRENCY"] = "2"
    kps.put_tasks(PROJECT, [task(n) for n in range(10)])
    kps.put_tasks(OTHER_PROJECT, [task(n) for n in range(3)])
    kps.inject(method="DELETE", delay=0.3, times=20)
    kps.inject(method="GET", delay=0.3, times=20)
    event = load_event("kafka.json")
    event["records"][0]["messages"] = [
        json.dumps({"project_id": PROJECT, "select": {"older_than_hours": 1}}),
        json.dumps({"project_id": OTHER_PROJECT}),
    ]
    run = invoke(event)
    assert run.payload["status"] == "succeeded"
    assert kps.peak_in_flight("DELETE") <= 2


def test_a_target_is_the_endpoint_and_project_it_reaches():
    """Without KPS_ENDPOINT two regions are two KPS endpoints, two targets; with it, one."""
    requests = [
        {"targets": [{"project_id": PROJECT, "region": "cn-north-4"}, {"project_id": PROJECT, "region": "cn-east-3"}]}
    ]
    regional = load_settings(SettingSource(FakeContext(), {"KPS_REGION": REGION}))
    assert [t.region for t in resolve_targets(requests, regional)] == ["cn-north-4", "cn-east-3"]
    one = load_settings(SettingSource(FakeContext(), {"KPS_REGION": REGION, "KPS_ENDPOINT": "http://127.0.0.1:9"}))
    assert [t.region for t in resolve_targets(requests, one)] == ["cn-north-4"]


def test_a_delete_whose_answer_was_lost_without_a_retry_is_unconfirmed_not_left(kps, invoke, settings):
    """With no retry after a lost answer (KPS_MAX_ATTEMPTS=1 here; the deadline leaving no time for one does
    the same) the task may be gone: it is neither deleted for sure nor left, but ``unconfirmed``, named in a
    ``tasks unconfirmed`` record line and not in ``tasks deleted``."""
    settings.update(KPS_TIMEOUT_SECONDS="0.3", KPS_MAX_ATTEMPTS="1")
    kps.put_tasks(PROJECT, [task(0), task(1, hours_ago=0.1)])
    kps.inject(method="DELETE", delay=1.0)  # KPS deletes it, but answers long after the client gave up
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    settled(kps, "DELETE", 1)  # the emulator has carried out the late DELETE
    assert [t["task_id"] for t in kps.failed_tasks(PROJECT)] == [task(1)["task_id"]]  # it happened as scripted
    counts = [result[k] for k in ("selected", "failed_task_count", "already_gone", "left", "unconfirmed")]
    assert counts == [1, 0, 0, 0, 1] and not result["ok"] and result["error"]["code"] == "Timeout"
    assert "1 selected tasks unconfirmed" in result["warning"]
    assert recorded_ids(run) == [] and recorded_ids(run, "tasks unconfirmed") == [task(0)["task_id"]]
    assert_valid_payload(run.payload)


def test_a_refusal_whose_body_is_refused_unread_is_no_delete_that_reached_kps(kps, invoke, settings):
    """A selected task's DELETE answered 400 with a compressed body (refused unread, ``InvalidResponse``): KPS
    answered and refused it, nothing was lost. The task is ``left`` (still there, as KPS said), never
    ``unconfirmed`` nor in the ``tasks unconfirmed`` record."""
    settings["KPS_CONCURRENCY"] = "1"
    kps.put_tasks(PROJECT, [task(n) for n in range(3)])
    gone = {"error_code": "KPS.0005", "error_msg": "failed task not found"}
    kps.inject(
        method="DELETE", path=f".*/{task(0)['task_id']}", status=400, body=gone, headers={"Content-Encoding": "gzip"}
    )
    run = invoke({"project_id": PROJECT, "select": {"older_than_hours": 1}})
    [result] = run.payload["results"]
    assert result["error"]["code"] == "InvalidResponse", result["error"]
    assert (result.get("unconfirmed"), result.get("left")) == (0, 3), result
    assert recorded_ids(run, "tasks unconfirmed") == []


def test_a_delete_that_could_not_be_sent_is_left_not_unconfirmed(kps, settings):
    """Reply.sent says whether a failed attempt may have reached the server: a refused connection (nothing
    sent) never makes a task ``unconfirmed`` or a later KPS.0005 "ours"; a read timeout may, a 429 not."""
    from function.api import ApiClient, RetryPolicy
    from function.budget import Deadline
    from function.credentials import Credentials

    def attempt(endpoint: str, timeout: float = 10) -> Any:
        client = ApiClient(endpoint, Credentials("test", token=TOKEN), RetryPolicy(1, timeout, 0.01), Deadline(20))
        return client.call("DELETE", f"{TASKS_PATH}/{task(0)['task_id']}")

    with KpsEmulator() as closed:
        url = closed.url  # a loopback port nobody listens on once the emulator has stopped
    refused = attempt(url)
    assert refused.error["code"] == "ConnectionError" and not refused.sent
    kps.add_token(TOKEN)
    kps.inject(method="DELETE", status=429, retry_after="0", body={"error_code": "X.1", "error_msg": "x"})
    assert not attempt(kps.url).sent
    kps.inject(method="DELETE", delay=1.0)
    late = attempt(kps.url, timeout=0.3)
    assert late.error["code"] == "Timeout" and late.sent


@pytest.mark.parametrize("select", [None, {"older_than_hours": 1}])
def test_a_sweep_beside_a_named_target_is_refused_after_the_allow_list(kps, invoke, settings, select):
    """A sweep may not list a named target (other credentials' projects, another region): beside one it
    would drop it, and its allow-list refusal with it. The allow-list is applied first (ProjectNotAllowed),
    then a sweep beside any named target is refused; nothing is sent, not even the IAM listing."""
    kps.put_tasks(OTHER_PROJECT, [task(n) for n in range(3)])
    kps.set_iam_projects([{"id": PROJECT, "name": REGION, "enabled": True}])
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_ALLOWED_PROJECT_IDS=PROJECT)
    extra = {} if select is None else {"select": select}
    event = load_event("kafka.json")
    sweep, named = json.dumps({"targets": "all", **extra}), json.dumps({"project_id": OTHER_PROJECT, **extra})
    for messages in ([named], [sweep, named], [named, sweep]):
        event["records"][0]["messages"] = messages
        assert invoke(event).payload["error"]["code"] == "ProjectNotAllowed", messages
    event["records"][0]["messages"] = [sweep, json.dumps({"project_id": PROJECT, **extra})]
    error = invoke(event).payload["error"]
    assert error["code"] == "InvalidEvent" and "a sweep takes no named targets beside it" in error["message"]
    assert kps.requests == [] and len(kps.failed_tasks(OTHER_PROJECT)) == 3
