"""Red team 15rb: failing tests for what a second pass over the strict reader found."""

from __future__ import annotations

import base64
import json
import tracemalloc
from typing import Any

import pytest
from conftest import PROJECT, deletes

_CLOUDEVENT = {"specversion": "1.0", "id": "e-1", "source": "s", "type": "t"}


@pytest.mark.parametrize(
    "data",
    [
        {"data": "null"},
        {"data": " null "},
        {"data": ""},
        {"data_base64": ""},
        {"data_base64": base64.b64encode(b"null").decode()},
    ],
    ids=["data-null-text", "data-null-text-padded", "data-empty-text", "data_base64-empty", "data_base64-null"],
)
@pytest.mark.parametrize("listed", [False, True], ids=["one", "events-list"])
def test_a_cloudevent_whose_data_holds_nothing_is_refused_like_data_null(kps, invoke, settings, data, listed):
    """docs/triggers.md: a CloudEvent with "neither, or data: null: refused, it names nothing". Its data as JSON
    text ``"null"`` (or empty, or empty/`null` base64) is the same nothing, yet it is read as the defaults:
    KPS_PROJECT_ID is cleaned (with KPS_TARGETS=all: a sweep). Only ``data: {}`` is documented as the defaults."""
    settings["KPS_PROJECT_ID"] = PROJECT
    event: Any = {**_CLOUDEVENT, **data}
    if listed:
        event = {"events": [event]}
    run = invoke(event)
    assert deletes(kps) == [], "a CloudEvent naming nothing cleaned the default project"
    assert run.payload["status"] == "rejected" and run.payload["error"]["code"] == "InvalidEvent"


def _peak(call: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("where", ["cloudevent", "smn-message"])
def test_a_6_mb_envelope_of_unknown_keys_is_refused_without_describing_every_key(kps, invoke, where):
    """A direct event arrives already parsed (up to 6 MB). ``_object_problem`` describes *every* unknown key
    (``named()`` builds a new string for each) and then shows five: ~30 MB of the function's own allocation for
    a 6 MB event of short keys, on top of the parsed event itself. Bound it (stop after the first few)."""
    keys = {f"k{i}": 0 for i in range(430_000)}  # ~6 MB as JSON
    if where == "cloudevent":
        event = {**_CLOUDEVENT, "data": {}, **keys}
    else:
        event = {
            "record": [{"event_source": "smn", "smn": {"message": "{}", "message_id": "m", "topic_urn": "u", **keys}}]
        }
    assert len(json.dumps(event)) < 6_300_000
    run, peak = _peak(lambda: invoke(event))
    assert run.payload["error"]["code"] == "InvalidEvent" and kps.requests == []
    assert peak < 4_000_000, f"refusing the event allocated {peak / 1e6:.1f} MB"


class _Unprintable:
    """A key (or value) whose text cannot be made: a Python caller's custom object."""

    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


@pytest.mark.parametrize(
    "event",
    [
        {10**5000: 1},  # str() of an int past 4,300 digits raises ValueError (3.11+)
        {"project_id": PROJECT, "select": {10**5000: 1}},
        {"project_id": PROJECT, "select": {"older_than_hours": 10**5000}},
        {**_CLOUDEVENT, "data": {}, 10**5000: 1},
        {_Unprintable(): 1},
    ],
    ids=["huge-int-key", "huge-int-select-key", "huge-int-age", "huge-int-envelope-key", "unprintable-key"],
)
def test_odd_keys_in_a_parsed_event_end_in_the_payload(kps, invoke, event):
    """read_event says it "never raises", and handle() calls it outside any try: a key whose text cannot be
    made (``named()``/``_did_you_mean`` call ``str(key)``; ``selection._age`` calls ``str(value)``) escapes as
    ValueError/RuntimeError, so the handler raises with no payload and no "rejected" line."""
    run = invoke(event)
    assert kps.requests == []
    assert run.payload["status"] == "rejected" and run.payload["error"]["code"] == "InvalidEvent"


def test_context_of_non_json_types_is_refused_not_encoded_whole(kps, invoke):
    """``_json_floor`` counts a tuple (or any non-JSON container) as one character, so a context holding a
    tuple of a million strings passes the floor and is then ``json.dumps``-ed whole (~20 MB, seconds under
    tracemalloc) before the 4,096 bound refuses it. A parsed JSON event never holds a tuple: refuse it by type."""
    context = tuple("abcdef" for _ in range(1_000_000))
    run, peak = _peak(lambda: invoke({"project_id": PROJECT, "context": context}))
    assert run.payload["error"]["code"] == "InvalidEvent" and kps.requests == []
    assert peak < 2_000_000, f"measuring the context allocated {peak / 1e6:.1f} MB"
