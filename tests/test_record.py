"""The record: every listed-and-deleted task exactly once across bounded ``tasks deleted`` lines."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from conftest import OTHER_PROJECT, PROJECT, REGION, deletes
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from function import logs, record

LINE_BOUND = 16 * 1024


def record_lines(run, message: str = "tasks deleted") -> list[tuple[dict, int]]:
    """Each record line, parsed, with its size in bytes as printed."""
    raw = [line for line in run.out.splitlines() if line.startswith("{") and f'"message": "{message}"' in line]
    return [(json.loads(line), len(line.encode())) for line in raw]


def assert_whole(lines: list[tuple[dict, int]], project_id: str) -> list[dict]:
    """The lines of one target form one whole record: parts 1..n once each, bounded; returns its tasks (none when
    the target has no record, as when no DELETE of a selection was left unconfirmed)."""
    mine = [line for line, _ in lines if line["project_id"] == project_id]
    assert sorted(line["part"] for line in mine) == list(range(1, len(mine) + 1))
    assert {line["parts"] for line in mine} <= {len(mine)}
    assert all(size < LINE_BOUND for _, size in lines)
    tasks = [task for line in mine for task in line["tasks"]]
    for line in mine:
        assert line["task_count"] == len(line["tasks"]) <= record.TASKS_PER_LINE
        assert all(
            (t["operate_type"], t["task_error_code"]) == (line["operate_type"], line["task_error_code"])
            for t in line["tasks"]
        )
        assert line["recorded"] == len(tasks)
    return tasks


@pytest.mark.parametrize("count", [1, 250, 10_000])
def test_every_deleted_task_is_recorded_exactly_once(kps, invoke, count):
    listed = kps.seed(OTHER_PROJECT, count)
    run = invoke({"project_id": OTHER_PROJECT})
    [result] = run.payload["results"]
    assert (result["outcome"], result["failed_task_count"]) == ("deleted", count)
    lines = record_lines(run)
    tasks = assert_whole(lines, OTHER_PROJECT)
    assert Counter(t["task_id"] for t in tasks) == Counter(t["task_id"] for t in listed)
    assert all(line["complete"] and line["incomplete_reason"] is None for line, _ in lines)
    groups = {(t["operate_type"], t["task_error_code"]) for t in listed}
    assert len(lines) <= count // 10 + len(groups), "tasks are packed many to a line, not one a line"
    [delete] = [r for r in kps.requests if r.method == "DELETE"]
    assert {(line["region"], line["level"]) for line, _ in lines} == {(REGION, "info")}
    by_id = {t["task_id"]: t for t in listed}
    for task in tasks:
        source = by_id[task["task_id"]]
        assert {k: task[k] for k in record.TASK_FIELDS} == {k: source[k] for k in record.TASK_FIELDS}
        moment = dt.datetime.fromtimestamp(int(source["task_time"]) / 1000, tz=dt.timezone.utc)
        assert dt.datetime.fromisoformat(task["task_time_iso"].replace("Z", "+00:00")) == moment.replace(
            microsecond=moment.microsecond // 1000 * 1000
        )
    assert [t["task_id"] for t in result["sample"]] == [t["task_id"] for t in listed[:50]]
    assert delete.status == 200


def test_lines_stay_bounded_whatever_the_strings(kps, invoke, settings):
    big = [
        {
            "task_id": f"id-{i}",
            "operate_type": "FAILED_RESET",
            "server_id": "\u540d" * 300,
            "server_name": "s" * 300,
            "keypair_name": "k" * 300,
            "task_error_code": "KPS.6002",
            "task_time": "1700000000000",
        }
        for i in range(60)
    ]
    kps.inject(status=200, body={"total": 60, "tasks": big})
    run = invoke({"project_id": PROJECT})
    lines = record_lines(run)
    assert len(lines) > 60 // record.TASKS_PER_LINE  # cut by size before the task cap
    assert Counter(t["task_id"] for t in assert_whole(lines, PROJECT)) == Counter(t["task_id"] for t in big)


def test_nothing_is_recorded_as_deleted_when_the_delete_fails(kps, invoke, settings):
    settings["KPS_MAX_ATTEMPTS"] = "1"
    kps.inject(times=1)  # the listing passes
    kps.inject(status=500, body={"error_code": "KPS.0004", "error_msg": "response error"})
    run = invoke({"project_id": PROJECT})
    [result] = run.payload["results"]
    assert (result["ok"], result["error"]["code"]) == (False, "KPS.0004")
    assert len(result["sample"]) == 3  # what would have gone
    assert record_lines(run) == []


@pytest.mark.parametrize("how", ["listing fails", "counting off"])
def test_an_unlisted_delete_is_recorded_as_unknown(kps, invoke, settings, how):
    settings["KPS_MAX_ATTEMPTS"] = "1"
    if how == "listing fails":
        kps.inject(status=500, body={"error_code": "KPS.0004", "error_msg": "response error"})
    else:
        settings["KPS_COUNT_BEFORE_DELETE"] = "false"
    run = invoke({"project_id": PROJECT})
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"] and kps.failed_tasks(PROJECT) == []
    [(line, _)] = record_lines(run)
    assert (line["complete"], line["tasks"], line["part"], line["parts"]) == (False, [], 1, 1)
    assert "deleted set is unknown" in line["incomplete_reason"]
    assert ("KPS.0004" in line["incomplete_reason"]) is (how == "listing fails")


def test_an_inexact_listing_is_recorded_as_incomplete(kps, invoke, settings):
    settings["KPS_LIST_PAGE_SIZE"] = "2"
    kps.inject(status=200, body={"total": 9, "tasks": kps.failed_tasks(PROJECT)[:2]}, times=2)
    run = invoke({"project_id": PROJECT})
    lines = record_lines(run)
    assert len(assert_whole(lines, PROJECT)) == 2
    assert all(not line["complete"] and "may hold more" in line["incomplete_reason"] for line, _ in lines)


def test_a_dry_run_records_what_it_would_delete_in_the_same_form(kps, invoke):
    listed = kps.failed_tasks(PROJECT)
    run = invoke({"project_id": PROJECT, "dry_run": True})
    assert record_lines(run) == []
    lines = record_lines(run, "would delete")
    assert Counter(t["task_id"] for t in assert_whole(lines, PROJECT)) == Counter(t["task_id"] for t in listed)
    assert set(lines[0][0]["tasks"][0]) == {*record.TASK_FIELDS, "task_time_iso"}


def test_the_record_can_be_switched_off_and_survives_a_quiet_log_level(kps, invoke, settings):
    settings["LOG_LEVEL"] = "ERROR"
    assert len(assert_whole(record_lines(invoke({"project_id": PROJECT})), PROJECT)) == 3
    kps.seed(PROJECT, 3)
    settings["KPS_RECORD_DELETED"] = "false"
    run = invoke({"project_id": PROJECT})
    assert run.payload["results"][0]["failed_task_count"] == 3
    assert record_lines(run) == [] and record_lines(run, "would delete") == []
    kps.seed(PROJECT, 2)
    dry = invoke({"project_id": PROJECT, "dry_run": True})
    assert dry.payload["results"][0]["failed_task_count"] == 2
    assert record_lines(dry, "would delete") == [], "switched off for dry runs too"


def test_a_fault_in_the_record_never_undoes_the_result(kps, invoke, monkeypatch):
    def broken(*_: object) -> None:
        raise ValueError("record bug")

    monkeypatch.setattr(record, "_chunks", broken)
    run = invoke({"project_id": PROJECT})
    [result] = run.payload["results"]
    assert (result["ok"], result["outcome"], result["failed_task_count"]) == (True, "deleted", 3)
    [line] = run.lines("record failed")
    assert (line["error_type"], line["project_id"]) == ("ValueError", PROJECT)


hostile_text = st.one_of(st.none(), st.text(max_size=400), st.integers(), st.lists(st.integers(), max_size=2))
raw_tasks = st.lists(st.fixed_dictionaries(dict.fromkeys(record.TASK_FIELDS, hostile_text)), max_size=80)


@hypothesis_settings(max_examples=150, deadline=None)
@given(raw_tasks)
def test_lines_partition_the_tasks_and_stay_bounded(raws):
    """Whatever KPS sends: every task lands in exactly one line, and no line's tasks pass the byte bound."""
    tasks = [record.task_of(raw) for raw in raws]
    lines = [
        (key, [json.loads(text) for text in line])
        for key, line in record._chunks(list(map(record.entry, tasks)), logs.MAX_LINE - 2048)
    ]
    placed = [entry for _, line in lines for entry in line]
    assert sorted(map(repr, ({k: e[k] for k in record.TASK_FIELDS} for e in placed))) == sorted(map(repr, tasks))
    for key, line in lines:
        assert 1 <= len(line) <= record.TASKS_PER_LINE or (not tasks and not line)
        assert len(json.dumps(line)) <= record.LINE_TASK_BYTES + 2 * len(line)
        assert all((e["operate_type"], e["task_error_code"]) == key for e in line)
    for task in tasks:
        assert all(
            v is None or (len(v) <= record.MAX_STRING and len(json.dumps(v)) <= record.MAX_ENCODED)
            for v in task.values()
        )


def test_a_string_is_bounded_at_exactly_768_bytes_of_json():
    """At the README's bound: 768 bytes of JSON are kept whole, 769 are cut (ß is 6 bytes escaped, é is unmarked)."""
    at_bound = "ß" * 127 + "a" * 4  # 2 quotes + 762 + 4 = 768
    past_it = at_bound + "a"
    assert len(json.dumps(at_bound)) == 768 and len(json.dumps(past_it)) == 769
    assert record.bounded(at_bound) == at_bound
    cut = record.bounded(past_it)
    assert cut is not None and past_it.startswith(cut) and len(json.dumps(cut)) <= 768 and cut != past_it
