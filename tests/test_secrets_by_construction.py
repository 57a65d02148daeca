"""Issue 15, points 4-7: one clock from the handler's first line, server text masked in linear time
(base64 and format-character echoes included), the answer under 6 MB, a task_id no encoder takes.

Each case was reproduced on the code before issue 15: the base64 and zero-width echoes came back
whole, the 4,000-character caller token made a 4 s HTTP budget answer after 65 s, 1,000 verbose tasks
overran a 3 s invocation, a lone surrogate in a task_id made the target InternalError with no DELETE.
"""

from __future__ import annotations

import base64
import contextvars
import html
import io
import json
import random
import re
import string
import sys
import threading
import time
import unicodedata
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from conftest import AGENCY_AK, AGENCY_SK, AK, PROJECT, SK, apig_event, assert_valid_payload, deletes, load_event
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from servers import RawReply

from devtools.context import FakeContext
from function import api, logs, payload, record, sweep
from handler import handler

ZWSP = "\u200b"


def production_secret(length: int, seed: int) -> str:
    """A credential as long and as random-looking as a real one (base64 text)."""
    rng = random.Random(seed)
    return base64.b64encode(rng.randbytes(length * 3 // 4)).decode()[:length]


def forms(secret: str) -> list[str]:
    """The secret as a server could echo it: as it is, lower-cased, base64 at each alignment."""
    raw = secret.encode()
    encoded = [base64.b64encode(b"\0" * k + raw).decode()[k + 1 : -4] for k in range(3)]
    return [secret, secret.lower(), *encoded, *(e.lower() for e in encoded)]


def json_decoded(text: str) -> str:
    """Each line that is JSON with its escapes decoded; the others as they are."""
    decoded = []
    for line in text.splitlines():
        try:
            decoded.append(json.dumps(json.loads(line), ensure_ascii=False))
        except ValueError:
            decoded.append(line)
    return "\n".join(decoded)


def readable(text: str) -> str:
    """What a reader sees: JSON escapes decoded, format characters gone, lower-cased."""
    return "".join(c for c in json_decoded(text) if unicodedata.category(c) != "Cf").lower()


def assert_no_window(text: str, secrets: list[str]) -> None:
    seen = readable(text)
    for secret in secrets:
        for form in map(str.lower, forms(secret)):
            left = [form[i : i + 12] for i in range(len(form) - 11) if form[i : i + 12] in seen]
            assert left == [], f"a piece of a secret ({len(secret)} characters) left: {left[:3]}"


def invoke_raw(event, context) -> tuple[dict, str]:
    out, saved = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        result = handler(event, context)
    finally:
        sys.stdout = saved
    body = json.loads(result["body"]) if "statusCode" in result else result
    assert_valid_payload(body)
    return result, out.getvalue()


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_a_base64_echo_of_the_security_token_is_masked_at_any_alignment(kps, settings, shift):
    """Reproduced: KPS's error_msg echoing the security token base64-encoded came back whole."""
    token = "agency-security-token-" + "q7Rz" * 100  # 422 characters
    settings.pop("KPS_AUTH_TOKEN")
    settings["KPS_COUNT_BEFORE_DELETE"] = "false"
    kps.add_key(AGENCY_AK, AGENCY_SK, token)
    echoed = base64.b64encode(b"x" * shift + token.encode()).decode()
    kps.inject(status=403, body={"error_code": "KPS.9003", "error_msg": f"bad token {echoed[:300]}"})
    context = FakeContext(user_data=settings, access_key=AGENCY_AK, secret_key=AGENCY_SK, security_token=token)
    result, out = invoke_raw({"project_id": PROJECT}, context)
    message = result["results"][0]["error"]["message"]
    assert message.startswith("bad token ") and message.endswith("***") and len(message) < 20
    assert_no_window(out + json.dumps(result), [token])


def test_a_token_split_by_zero_width_spaces_is_masked(kps, settings):
    """Reproduced: a token with a zero-width space every 11 characters came back readable."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT-" + "a1b2c3d4e5f6g7h8" * 20
    settings["KPS_COUNT_BEFORE_DELETE"] = "false"
    kps.add_token(token)
    split = ZWSP.join(token[i : i + 11] for i in range(0, len(token), 11))
    kps.inject(status=403, body={"error_code": "KPS.9003", "error_msg": f"token {split[:400]} is invalid"})
    result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    assert result["results"][0]["error"]["message"].startswith("token ***")
    assert_no_window(out + json.dumps(result), [token])


ALNUM = string.ascii_letters + string.digits


def secret_of(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=ALNUM + "-_+/=", min_size=low, max_size=high)


@st.composite
def echo(draw, secret: str) -> str:
    """A form a server may echo a secret in: whole, cut, lower-cased, base64, split by format characters."""
    kind = draw(st.sampled_from(["whole", "cut", "lower", "base64", "format", "upper cut"]))
    if kind == "whole":
        return secret
    if kind in ("cut", "upper cut"):
        start = draw(st.integers(0, len(secret) - 12))
        piece = secret[start : draw(st.integers(start + 12, len(secret)))]
        return piece.upper() if kind == "upper cut" else piece
    if kind == "lower":
        return secret.lower()
    if kind == "base64":
        return base64.b64encode(b"z" * draw(st.integers(0, 2)) + secret.encode()).decode()
    every = draw(st.integers(1, 11))
    mark = draw(st.sampled_from([ZWSP, "\u200d", "\u2060", "\ufeff", "\u00ad"]))
    return mark.join(secret[i : i + every] for i in range(0, len(secret), every))


@st.composite
def credentials_and_echo(draw):
    ak = draw(st.text(alphabet=string.ascii_uppercase + string.digits, min_size=20, max_size=20))
    sk = draw(secret_of(40, 40))
    security = draw(secret_of(1024, 4096))
    iam = draw(secret_of(4096, 8192))
    target = draw(st.sampled_from([ak, sk, security, iam]))
    before = draw(st.text(alphabet=" .:abc", max_size=30))
    return ak, sk, security, iam, before + draw(echo(target))


@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)
@given(case=credentials_and_echo(), where=st.sampled_from(["error_msg", "task fields"]))
def test_no_generated_secret_echoed_in_any_form_reaches_a_line_or_the_payload(kps, settings, case, where):
    ak, sk, security, iam, text = case
    env = {**settings, "KPS_AUTH_TOKEN": iam, "KPS_COUNT_BEFORE_DELETE": str(where != "error_msg").lower()}
    kps.add_token(iam)
    kps.clear_log()
    if where == "error_msg":
        kps.inject(status=403, body={"error_code": "KPS.9003", "error_msg": text})
    else:
        kps.inject(
            status=200,
            body={"total": 1, "tasks": [{"task_id": text[:300], "server_name": text, "keypair_name": text[-200:]}]},
        )
    context = FakeContext(user_data=env, access_key=ak, secret_key=sk, security_token=security, token=iam)
    result, out = invoke_raw({"project_id": PROJECT, "dry_run": where != "error_msg"}, context)
    assert result["results"][0]["outcome"] == ("failed" if where == "error_msg" else "would_delete")
    assert_no_window(out + json.dumps(result), [ak, sk, security, iam])


def test_a_callers_long_token_and_a_body_of_keys_answer_within_the_http_budget(kps, settings):
    """Reproduced: a caller's 4,000-character X-Auth-Token (registered as a secret) with a body of keys
    made a 4 s HTTP budget answer after 65 s. Now caller headers are never registered: they never reach
    a line. The answer comes within the budget, counted on the context double's clock from entry, and no
    request reaches KPS after the deadline."""
    settings.update(KPS_HTTP_BUDGET_SECONDS="4", LOG_EVENT="true")
    token = "Tk0z" * 1000
    event = apig_event({"project_id": PROJECT, **{f"k{i}": token[1:] for i in range(400)}})
    event["headers"]["x-auth-token"] = token
    context = FakeContext(user_data=settings, timeout_seconds=60)
    entered, since = context.getRemainingTimeInMilliSeconds(), time.monotonic()
    result, out = invoke_raw(event, context)
    assert entered - context.getRemainingTimeInMilliSeconds() < 4000, "answered within the 4 s budget"
    body = json.loads(result["body"])
    assert body["status"] in ("succeeded", "rejected")
    assert all(r.started <= since + 4 for r in kps.requests), "nothing sent after the deadline"
    assert "Tk0zTk0zTk0z" not in out


def test_a_thousand_verbose_tasks_return_within_a_three_second_invocation(kps, settings):
    """Reproduced: 1,000 verbose tasks in a 3 s invocation returned after 4.2 s (3.2 ms of masking per
    task with production-length secrets). Masking is now linear in the text, whatever the secrets."""
    kps.seed_wide(PROJECT, 1000)
    iam = settings["KPS_AUTH_TOKEN"] = "MIIT" + production_secret(6000, 1)
    kps.add_token(iam)
    context = FakeContext(
        user_data=settings,
        timeout_seconds=3,
        access_key=AGENCY_AK,
        secret_key=production_secret(40, 2),
        security_token=production_secret(4096, 3),
        token="MIIT" + production_secret(7000, 4),
    )
    result, out = invoke_raw({"project_id": PROJECT}, context)
    assert context.getRemainingTimeInMilliSeconds() > 0, "returned before the platform's deadline"
    [target] = result["results"]
    recorded = [line for line in out.splitlines() if '"message": "tasks deleted"' in line]
    cut = [line for line in out.splitlines() if '"message": "record cut short"' in line]
    if target["ok"]:  # 0.15 s of work here
        assert target["failed_task_count"] == 1000
        assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]
        assert sum(json.loads(line)["task_count"] for line in recorded) == 1000 or cut, "recorded, or says what is left"
    else:  # a CPU slow enough (2 s seen under load) that the listing or the DELETE met the deadline: said in time
        assert (target["error"]["code"], target["error"]["retryable"]) == ("DeadlineExceeded", True)
        assert target["failed_task_count"] in (None, 1000)  # the listing cut short, or read whole before the DELETE
        assert recorded == [] and cut == [], "no record without a DELETE that succeeded"


def test_a_task_id_no_encoder_takes_neither_fails_the_target_nor_blocks_the_delete(kps, invoke):
    """Reproduced: a lone surrogate in a task_id made the target InternalError and no DELETE was sent."""
    [task, *_] = kps.failed_tasks(PROJECT)
    task["task_id"] = "\ud800" + task["task_id"]  # the emulator's JSON escapes it: the function reads "\ud800"
    run = invoke({"project_id": PROJECT})
    [result] = run.payload["results"]
    assert (result["ok"], result["outcome"], result["failed_task_count"]) == (True, "deleted", 3)
    assert deletes(kps) == [f"/v3/{PROJECT}/failed-tasks"]
    assert result["sample"][0]["task_id"].startswith("\ufffd")
    assert sum(len(line["tasks"]) for line in run.lines("tasks deleted")) == 3


def maximal_results(count: int) -> list[dict]:
    wide = dict.fromkeys(record.TASK_FIELDS, "é" * record.MAX_STRING)
    sample = [record.task_of({**wide, "task_id": f"{n:03d}" + "\u00e9" * 300}) for n in range(50)]
    base = {"region": "cn-north-4", "ok": True, "outcome": "would_delete", "http_status": 200}
    rest = {"failed_task_count": 50, "attempts": 1, "error": None, "duration_ms": 1.0, "warning": "w" * 300}
    return [
        {"project_id": f"{n:032x}", **base, "kps_request_id": "r" * 64, **rest, "sample": sample} for n in range(count)
    ]


@pytest.mark.parametrize("http", [False, True], ids=["returned", "API Gateway body"])
def test_a_thousand_targets_with_maximal_samples_answer_under_six_megabytes(http):
    """Reproduced: a sweep's payload reached 7.3-10.5 MB (50 sample tasks a result). Samples give way."""
    built = payload.build_payload(
        trigger="apig" if http else "timer",
        request_id="r",
        dry_run=True,
        results=maximal_results(1000),
        duration_ms=1.0,
    )
    answer = payload.within_answer_limit(built, http=http)
    text = json.dumps(payload.apig_response(answer)) if http else json.dumps(answer)
    assert len(text.encode()) < 6 * 1000 * 1000
    assert_valid_payload(answer)
    assert answer["samples_limited"] < 50 and {len(r["sample"]) for r in answer["results"]} == {
        answer["samples_limited"]
    }
    assert [r["failed_task_count"] for r in answer["results"]] == [50] * 1000, "counts are never cut"


def test_samples_are_cut_in_the_answer_and_the_cut_is_said(kps, invoke, settings, monkeypatch):
    monkeypatch.setattr(payload, "MAX_ANSWER_BYTES", 200_000)
    projects = [f"{n:032x}" for n in range(10)]
    for project in projects:
        kps.seed_wide(project, 50, width=200)
    settings.update(KPS_CONCURRENCY="4")
    run = invoke({"targets": [{"project_id": p} for p in projects], "dry_run": True})
    body = run.payload
    assert len(json.dumps(body)) < 200_000 and body["samples_limited"] < 50
    assert [r["failed_task_count"] for r in body["results"]] == [50] * 10
    [line] = run.lines("samples cut")
    assert line["count"] == body["samples_limited"]


def test_masking_is_bounded_whatever_the_text():
    """A text far past every bound is cut before it is masked: the work is that of the bound."""
    logs.use_secrets(["s" * 8000])
    assert logs.scrub("x" * 10_000_000) == "x" * (logs.MAX_STRING - 3) + "..."
    assert logs.scrub("y" * 20 + "s" * 5000) == "y" * 20 + "***..."
    token = production_secret(64, 9)
    logs.use_secrets([token])
    assert token[:9] not in logs.shorten("z" * 88 + token, 100), "a cut edge is a text's edge"
    assert token[:9] not in logs._cut_middle("x" * 91 + token + "y" * 300, 100, 100), "each part's edges too"
    logs.use_secrets([])


def test_a_line_is_one_strict_object_whatever_a_library_logs(capsys):
    """A library record's message is text the function did not write: masked, cut, and the line stays
    one bounded JSON object with each key once (the invocation's keys spliced in after the first keys)."""
    import logging

    token = production_secret(64, 7)
    logs.start_invocation("WARNING", [token], service="s", function_request_id="r", correlation_id="c" * 500)
    logging.getLogger("urllib3").warning(token + "\u00e9" * 5000 + "%s", "x" * 20_000)
    [line] = capsys.readouterr().out.splitlines()

    def unique(pairs: list) -> dict:
        assert len({k for k, _ in pairs}) == len(pairs), pairs
        return dict(pairs)

    parsed = json.loads(line, object_pairs_hook=unique)
    assert len(line) <= logs.MAX_LINE and list(parsed)[:4] == ["level", "timestamp", "message", "service"]
    assert parsed["logger"] == "urllib3" and len(parsed["correlation_id"]) <= logs.MAX_BOUND
    assert token[:12] not in line


# --- Red team 15 (branch red15l), findings 1-5 and 7-9 of its list: server text bounded in bytes,
# the answer limit that never raises, the request's signature, echoes the normaliser did not undo.

SIX_MB = 6 * 1024 * 1024
EMOJI = "\U0001f600"
# Invisible characters a reader skips; none of them is category Cf, so ``logs.normalise`` keeps them.
IGNORABLE = ["\u034f", "\ufe0f", "\u3164", "\U000e0100"]


def red_secret(length: int, seed: int) -> str:
    """A credential-like string with no repeats (a periodic one would match itself everywhere)."""
    rng = random.Random(seed)
    return base64.b64encode(rng.randbytes(length)).decode()[:length]


def shown(text: str) -> str:
    """What a person reading the line sees: JSON decoded, the escapes ``\\uXXXX``/``\\xXX`` left in a
    text (a repr, a raw JSON body) read as the characters they stand for, NFKC, invisible characters
    (Cf, Mn, the Hangul fillers) skipped, lower case."""
    seen = re.sub(
        r"\\+(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2}))",
        lambda m: chr(int(m.group(1) or m.group(2) or m.group(3), 16)),
        json_decoded(text),
    )
    seen = unicodedata.normalize("NFKC", seen)
    return "".join(c for c in seen if unicodedata.category(c) not in ("Cf", "Mn") and c not in "\u3164\u1160").lower()


def windows_left(text: str, value: str, junk: str = "") -> list[str]:
    seen, low = shown(text), value.lower()
    seen = seen.replace(junk, "") if junk else seen
    return [low[i : i + 12] for i in range(len(low) - 11) if low[i : i + 12] in seen]


# --- the answer limit whatever the servers write ---------------------------------------------------------


def _sweep(kps, settings, count: int, *, listed: bool) -> None:
    projects = [{"id": f"{i:032x}", "name": "cn-north-4", "enabled": True} for i in range(count)]
    kps.set_iam_projects(projects)
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_TARGETS="all", KPS_MAX_ATTEMPTS="1")
    error = {"error_code": EMOJI * 64, "error_msg": EMOJI * 600}
    kps.inject()  # IAM's project listing answers normally
    if listed:  # each target: its listing answers (one task: a sample), its DELETE fails
        settings["KPS_CONCURRENCY"] = "1"
        for project in projects:
            kps.seed(project["id"], 1)
            kps.inject()
            kps.inject(status=403, body=error)
    else:
        settings.update(KPS_COUNT_BEFORE_DELETE="false", KPS_CONCURRENCY="32")
        kps.inject(status=403, body=error, times=count)


def test_failed_results_past_the_limit_with_samples_still_answer_the_payload(kps, settings):
    """1,000 targets, each listed (one task) and its DELETE refused with a 64-emoji code and a
    500-emoji message: the results without samples take ~7 MB. Was: ``StopIteration`` raised by
    ``within_answer_limit`` (``next`` over SAMPLE_STEPS finds no step when even 0 tasks do not fit)."""
    _sweep(kps, settings, 1000, listed=True)
    result, _ = invoke_raw({}, FakeContext(user_data=settings, timeout_seconds=120))
    assert_valid_payload(result)
    assert len(json.dumps(result)) < SIX_MB


def test_within_answer_limit_never_raises(kps):
    """The same, without the network: nine results whose errors alone pass the limit."""
    error = {"code": "KPS.0001", "message": EMOJI * 500_000, "retryable": False}
    results = [{"project_id": PROJECT, "ok": False, "error": error, "sample": [{"task_id": "t"}]} for _ in range(9)]
    built = {"ok": False, "status": "failed", "results": results, "error": None}
    answer = payload.within_answer_limit(built, http=False)
    assert answer["samples_limited"] == 0, "the last resort is said"
    assert {r["error"]["message"] for r in answer["results"]} == {""}
    assert [r["error"]["code"] for r in answer["results"]] == ["KPS.0001"] * 9
    assert len(json.dumps(answer)) < payload.MAX_ANSWER_BYTES


@pytest.mark.parametrize("char", [EMOJI, '"', "\\", "\u00e9", "a"])
def test_the_worst_sweep_fits_without_samples(char):
    """By construction: MAX_SWEEP_TARGETS failed results, every server text (code, message, request ID)
    at its byte bound, fit the answer limit as returned and as an API Gateway body, with no cut. The
    worst (``"`` or ``\\``, escaped twice over API Gateway) is about 3.1 MB."""
    text = char * 100_000
    error = {"code": api.clean_text(text, api.MAX_CODE), "message": api.clean_text(text, api.MAX_MESSAGE)}
    result = {
        "project_id": "f" * 32,
        "region": "ap-southeast-3",
        "ok": False,
        "outcome": "failed",
        "http_status": 503,
        "kps_request_id": api.clean_text(text, api.MAX_REQUEST_ID),
        "failed_task_count": 10**12,
        "attempts": 10,
        "error": {**error, "retryable": True},
        "duration_ms": 12345678.9,
        "warning": "w" * 300,
    }
    results = [{**result, "project_id": f"{n:032x}"} for n in range(sweep.MAX_SWEEP_TARGETS)]
    built = payload.build_payload(trigger="apig", request_id="r", dry_run=False, results=results, duration_ms=1.0)
    for http in (False, True):
        assert payload._size(built, http) < payload.MAX_ANSWER_BYTES
        assert payload.within_answer_limit(built, http=http) is built, "nothing was cut"
    assert_valid_payload(built)


@pytest.mark.parametrize("http", [False, True], ids=["direct", "apig"])
def test_many_failed_targets_without_samples_stay_under_6_mb(kps, settings, http):
    """1,000 targets of a sweep, each DELETE refused with a 64-emoji code and a 500-emoji message
    (KPS_COUNT_BEFORE_DELETE=false: no sample to shrink). Was: 7.1 MB direct, 8.2 MB over API Gateway,
    although FunctionGraph answers a synchronous call of at most 6 MB."""
    _sweep(kps, settings, 1000, listed=False)
    event = apig_event(None) if http else {}
    result, _ = invoke_raw(event, FakeContext(user_data=settings, timeout_seconds=120))
    body = json.loads(result["body"]) if http else result
    assert_valid_payload(body)
    assert len(body["results"]) == 1000
    assert len(json.dumps(result)) < SIX_MB, "the answer passes FunctionGraph's 6 MB"


# --- the request's signature ------------------------------------------------------------------------


def _serve(handler_class: type) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _EchoSignature(BaseHTTPRequestHandler):
    """A server that quotes each request's Authorization header back, where ``reply`` puts it;
    ``seen`` keeps the headers it was sent."""

    seen: ClassVar[list[str]] = []

    def reply(self, authorization: str) -> tuple[int, dict]:
        raise NotImplementedError

    def _answer(self) -> None:
        authorization = self.headers.get("Authorization", "")
        self.seen.append(authorization)
        status, data = self.reply(authorization)
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, *_: object) -> None:
        pass


class _EchoInError(_EchoSignature):
    """In its error, as gateways do for a bad signature."""

    def reply(self, authorization: str) -> tuple[int, dict]:
        text = f"Incorrect IAM authentication information: verify aksk signature fail, {authorization}"
        return 401, {"error_code": "APIGW.0301", "error_msg": text}


class _EchoInTask(_EchoSignature):
    """In a listed task's name: 2xx data, cleaned after ``ApiClient.call`` returned."""

    def reply(self, authorization: str) -> tuple[int, dict]:
        if self.command == "DELETE":
            return 200, {}
        task = {
            "task_id": "t1",
            "operate_type": "bind",
            "server_id": "s1",
            "server_name": f"sig {authorization.rsplit('Signature=', 1)[1]}",
            "keypair_name": "k",
            "task_error_code": "KPS.1",
            "task_time": "1700000000000",
        }
        return 200, {"total": 1, "tasks": [task]}


class _EchoInProjects(_EchoSignature):
    """In IAM's project listing, as a project's name: logged after ``ApiClient.call`` returned."""

    def reply(self, authorization: str) -> tuple[int, dict]:
        return 200, {"projects": [{"id": "0" * 32, "name": authorization.rsplit("Signature=", 1)[1], "enabled": True}]}


@pytest.mark.parametrize(
    ("echo", "event", "where", "extra", "read"),
    [
        pytest.param(
            _EchoInError,
            {"project_id": PROJECT},
            "KPS_ENDPOINT",
            {"KPS_COUNT_BEFORE_DELETE": "false", "LOG_LEVEL": "DEBUG"},
            lambda result, out: result["results"][0]["error"]["code"] == "APIGW.0301",
            id="in a DELETE's error",
        ),
        pytest.param(
            _EchoInTask,
            {"project_id": PROJECT},
            "KPS_ENDPOINT",
            {},
            lambda result, out: result["results"][0]["sample"][0]["server_name"].startswith("sig "),
            id="in a listed task",
        ),
        pytest.param(
            _EchoInProjects,
            None,
            "KPS_IAM_ENDPOINT",
            {"KPS_TARGETS": "all"},
            lambda result, out: '"projects swept"' in out,
            id="in an IAM project name",
        ),
    ],
)
def test_a_signature_echoed_by_the_server_reaches_no_line_or_payload(settings, echo, event, where, extra, read):
    """A signature replays its request while X-Sdk-Date is accepted (15 minutes): each is one of the
    invocation's secrets from the moment its request is signed. Was: ``Signature=<64 hex>`` of a signed
    DELETE came back whole in the payload's error message and the ``target done`` line (only the AK
    beside it was masked); then a task field or a skipped project's name, cleaned or logged after
    ``ApiClient.call`` returned, when the signature was masked only inside the attempt."""
    echo.seen = []
    server = _serve(echo)
    try:
        settings.pop("KPS_AUTH_TOKEN")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings.update({where: url, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "KPS_MAX_ATTEMPTS": "1"})
        settings.update(extra)
        result, out = invoke_raw(event, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    assert read(result, out), "the echo was not read where the case means it"
    signature = echo.seen[0].rsplit("Signature=", 1)[1]
    assert windows_left(out + json.dumps(result), signature) == [], "the request's signature was printed"


# --- echoes normalisation does not undo ------------------------------------------------------


def _echo_invocation(kps, settings, error_msg) -> tuple[dict, str, str]:
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + red_secret(600, 7)
    kps.add_token(token)
    settings["KPS_COUNT_BEFORE_DELETE"] = "false"
    kps.inject(status=403, body={"error_code": "KPS.9003", "error_msg": error_msg(token)})
    result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    assert result["results"][0]["error"]["code"] == "KPS.9003"
    return result, out, token


def _split(token: str, mark: str) -> str:
    return mark.join(token[i : i + 11] for i in range(0, 330, 11))


def test_a_zero_width_split_token_inside_an_object_error_msg_is_masked(kps, settings):
    """``error_msg`` an object holding a token with U+200B every 11 characters. Was: the message is the
    object's repr, where each U+200B is the ASCII text ``\\u200b``: nothing to drop, the token readable."""
    result, out, token = _echo_invocation(kps, settings, lambda t: {"detail": f"token {_split(t, chr(0x200B))}"})
    assert windows_left(out + json.dumps(result), token) == []


def test_control_a_zero_width_split_token_as_a_string_is_masked(kps, settings):
    """Control (passes today): the same echo as a string; the helper finds no window where none is."""
    result, out, token = _echo_invocation(kps, settings, lambda t: f"token {_split(t, chr(0x200B))} is invalid")
    assert windows_left(out + json.dumps(result), token) == []


@pytest.mark.parametrize("mark", IGNORABLE, ids=[f"U+{ord(m):04X}" for m in IGNORABLE])
def test_a_token_split_by_an_invisible_character_is_masked(kps, settings, mark):
    """Default_Ignorable characters outside category Cf (a combining grapheme joiner, variation
    selectors, the Hangul filler) show as nothing, like U+200B. Was: kept, the token readable."""
    result, out, token = _echo_invocation(kps, settings, lambda t: f"token {_split(t, mark)} is invalid")
    assert windows_left(out + json.dumps(result), token) == []


def test_an_iam_error_with_a_numeric_code_echoing_a_split_token_is_masked(kps, settings):
    """IAM's error shape, ``{"error": {"code": 401, ...}}``: the code is a number, so the raw body is the
    message, with the JSON encoder's ``\\u200b`` escapes as text. Was: the split token readable in the
    payload's ProjectListingFailed message and the ``project listing failed`` line."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + red_secret(600, 7)
    kps.add_token(token)
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_TARGETS="all", KPS_MAX_ATTEMPTS="1")
    message = f"token {_split(token, chr(0x200B))}"
    kps.inject(status=401, body={"error": {"code": 401, "message": message, "title": "Unauthorized"}})
    result, out = invoke_raw({}, FakeContext(user_data=settings))
    assert result["error"]["code"] == "ProjectListingFailed"
    assert windows_left(out + json.dumps(result), token) == []


def test_a_kps_error_with_a_numeric_code_echoing_a_full_width_token_is_masked(kps, settings):
    """The same raw-body path: a full-width echo arrives as ``\\uff2d...`` text, which NFKC cannot fold.
    Was: readable (with a string code the same echo is masked: ``token ***``)."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + red_secret(600, 7)
    kps.add_token(token)
    settings.update(KPS_COUNT_BEFORE_DELETE="false", KPS_MAX_ATTEMPTS="1")
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in token[:100])
    kps.inject(status=401, body={"error_code": 9003, "error_msg": f"token {wide}"})
    result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    assert result["results"][0]["error"]["code"] == "9003"  # a numeric code is kept, as its digits
    assert windows_left(out + json.dumps(result), token) == []


@pytest.mark.parametrize("mark", ["&#8203;", "&shy;", "<wbr>"])
def test_a_token_split_by_an_html_break_in_an_error_page_is_masked(kps, settings, mark):
    """An HTML error page breaks a long token the ways HTML does: a zero-width space or soft hyphen
    written as an entity, or a ``<wbr>`` tag. Was: the entity kept as text, the tag made a space; the
    pieces (11 characters) pass the mask and the token reads whole once the page's breaks are read."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + red_secret(600, 7)
    kps.add_token(token)
    settings.update(KPS_COUNT_BEFORE_DELETE="false", KPS_MAX_ATTEMPTS="1")
    page = f"<html><body><h1>401</h1><p>token {_split(token, mark)}</p></body></html>"
    kps.inject(status=401, body=page.encode(), headers={"Content-Type": "text/html"})
    result, out = invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    assert result["results"][0]["error"]["code"] == "HTTP.401"
    seen = html.unescape(out + json.dumps(result))
    assert windows_left(seen if mark != "<wbr>" else seen.replace(" ", ""), token) == []


_REDIRECT = b"HTTP/1.1 302 Found\r\nLocation: https://iam.example/?t="


def _raw_invocation(settings: dict, head: bytes) -> tuple[dict, str]:
    """One DELETE, unretried, to a server that answers ``head`` (a status line and headers) and ``{}``."""
    server = RawReply(head + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    try:
        settings.update(KPS_ENDPOINT=server.url, KPS_COUNT_BEFORE_DELETE="false", KPS_MAX_ATTEMPTS="1")
        return invoke_raw({"project_id": PROJECT}, FakeContext(user_data=settings))
    finally:
        server.close()


@pytest.mark.parametrize("where", ["reason phrase", "Location", "X-Request-Id"])
def test_a_zero_width_split_token_in_a_header_is_masked(settings, where):
    """A header echoing the token split by U+200B, sent as UTF-8 (E2 80 8B). http.client reads header
    bytes as Latin-1: the mark becomes ``\u00e2`` and two C1 controls, which ``clean_text`` turns into
    a space. Was: the payload's message (or kps_request_id) read ``MIIT…\u00e2 Np/I3…\u00e2 cTZV…``,
    the token in plain sight between the marks."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + red_secret(600, 7)
    split = _split(token, chr(0x200B)).encode()
    head = {
        "reason phrase": b"HTTP/1.1 401 " + split + b"\r\n",
        "Location": _REDIRECT + split + b"\r\n",
        "X-Request-Id": b"HTTP/1.1 401 Unauthorized\r\nX-Request-Id: " + split + b"\r\n",
    }[where]
    result, out = _raw_invocation(settings, head)
    assert not result["results"][0]["ok"]
    assert windows_left(out + json.dumps(result), token, junk="\u00e2 ") == []


def test_a_utf8_header_is_read_as_the_server_wrote_it(settings):
    """The reading the cases above rely on: header bytes that http.client took as Latin-1 are read
    again as UTF-8, so an X-Request-Id ``req-\u2713\u4e2d`` is that, never ``req-\u00e2`` and controls."""
    result, _ = _raw_invocation(settings, "HTTP/1.1 401 Unauthorized\r\nX-Request-Id: req-\u2713\u4e2d\r\n".encode())
    assert result["results"][0]["kps_request_id"] == "req-\u2713\u4e2d"


def test_a_percent_encoded_token_in_a_location_is_masked(settings):
    """A redirect's Location carrying the token URL-encoded (``+`` as ``%2B``, ``/`` as ``%2F``): every
    12-character window would hold an escape. The Location is percent-decoded before it is masked."""
    plain = red_secret(600, 8)
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + "+".join(plain[i : i + 8] for i in range(0, 600, 8))
    quoted = urllib.parse.quote(token, safe="").encode()
    result, out = _raw_invocation(settings, _REDIRECT + quoted + b"\r\n")
    assert result["results"][0]["error"]["code"] == "HTTP.302"
    assert windows_left(urllib.parse.unquote(out + json.dumps(result)), token) == []


# Default_Ignorable_Code_Point, every range's ends, as DerivedCoreProperties.txt lists them.
_IGNORABLE_ENDS = "00AD 034F 061C 115F 1160 17B4 17B5 180B 180F 200B 200F 202A 202E 2060 206F 3164 FE00 FE0F FEFF"
_IGNORABLE_ENDS += " FFA0 FFF0 FFF8 1BCA0 1BCA3 1D173 1D17A E0000 E0001 E007F E0100 E01EF E0FFF"


@pytest.mark.parametrize("point", _IGNORABLE_ENDS.split())
def test_normalise_drops_every_default_ignorable_character(point):
    assert logs.normalise(f"MIIT{chr(int(point, 16))}abcd") == "MIITabcd"


# --- second red team on points 4-7: echoes in 2xx data, marks, encodings, IAM names, headers ------


# --- encodings: the mask knows the text as it is (any case), hex and base64; a message is read with its
# percent-escapes and HTML entities decoded. base32, escapes of a nested JSON text and one character a
# word are documented limits (docs/security.md, "What masking does not promise"): strict xfails.

_LIMIT = pytest.mark.xfail(strict=True, reason="a documented limit of masking (docs/security.md)")
ENCODINGS = {
    "control: as it is": lambda t: t,
    "control: base64": lambda t: base64.b64encode(t.encode()).decode(),
    "hex": lambda t: t.encode().hex(),
    "upper-case hex": lambda t: t.encode().hex().upper(),
    "percent every byte": lambda t: "".join(f"%{b:02X}" for b in t.encode()),
    "html entities in a JSON message": lambda t: "".join(f"&#{ord(c)};" for c in t),
    "html hex entities": lambda t: "".join(f"&#x{ord(c):x};" for c in t),
}
LIMITS = {
    "base32": lambda t: base64.b32encode(t.encode()).decode(),
    "json escapes in nested JSON text": lambda t: '{"detail": "' + "".join(f"\\u{ord(c):04x}" for c in t) + '"}',
    "spaced": " ".join,
}
_CASES = [pytest.param(f, id=k) for k, f in ENCODINGS.items()] + [
    pytest.param(f, id=k, marks=_LIMIT) for k, f in LIMITS.items()
]


@pytest.mark.parametrize("encode", _CASES)
def test_a_token_echoed_in_another_encoding_is_masked(kps, settings, encode):
    """Was: a KPS error_msg quoting the caller's token hex-encoded, percent-encoded or as HTML numeric
    entities (unescaped only for an HTML page, not inside a JSON message) was printed as it came."""
    result, out, token = _echo_invocation(kps, settings, lambda t: f"bad token {encode(t)}")
    printed = out + json.dumps(result)
    seen = [printed, html.unescape(urllib.parse.unquote(printed)), re.sub(r"(?<=\S) (?=\S)", "", printed)]
    for run in re.findall(r"[0-9a-f]{24,}", printed):
        seen.append(bytes.fromhex(run[: len(run) // 2 * 2]).decode("utf-8", "replace"))
    for run in re.findall(r"[A-Z2-7]{24,}", printed):
        seen.append(base64.b32decode(run[: len(run) // 8 * 8]).decode("utf-8", "replace"))
    assert windows_left("\n".join(seen), token) == [], "the token is readable once decoded"


# --- combining marks: visible decorations the normaliser keeps, which split a token past the mask ----

MARKS = ("\u0336", "\u0332", "\u20d2", "\u0e31", "\u0301", "\u0489")


def _unmarked(text: str) -> str:
    """What a reader (or a copy into a terminal that drops marks) reads: marks taken off each letter."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.category(c).startswith("M"))


@pytest.mark.parametrize("mark", MARKS, ids=[f"U+{ord(m):04X}" for m in MARKS])
def test_a_token_with_a_combining_mark_on_every_character_is_masked(kps, settings, mark):
    """Was: ``error_msg`` "bad token M̶I̶I̶T̶..." (a strike-through, underline, accent or enclosing mark
    after each character, neither Cf nor Default_Ignorable) was kept by ``normalise``: no window of the
    token was left in the text, and the token was printed, readable under its marks."""
    result, out, token = _echo_invocation(kps, settings, lambda t: "bad token " + "".join(c + mark for c in t))
    printed = json.dumps(json.loads(json.dumps(result)), ensure_ascii=False)
    lines = [json.dumps(json.loads(line), ensure_ascii=False) for line in out.splitlines() if line.startswith("{")]
    assert windows_left(_unmarked("\n".join([printed, *lines])), token) == [], "the token is readable"


# --- IAM's project names: read after the call, copied with str() -----------------------------------


def test_a_project_name_that_is_an_object_quoting_a_split_token_is_masked(kps, settings):
    """Was: IAM's ``name`` an object was copied with ``str()``, a repr, where each U+200B is the ASCII
    text ``\\u200b``: 20 skipped names of 64 characters each carried 30-odd characters of the token.
    Now a name that is not text is ``api.OBJECT``."""
    token = settings["KPS_AUTH_TOKEN"] = "MIIT" + red_secret(600, 11)
    kps.add_token(token)
    marked = ZWSP.join(token[i : i + 11] for i in range(0, len(token), 11))
    projects = [
        {"id": f"{i:032x}", "name": {"n": marked[i * 30 :]}, "enabled": True} for i in range(len(marked) // 30)
    ][:20]
    kps.set_iam_projects(projects)
    settings.update(KPS_IAM_ENDPOINT=kps.url, KPS_TARGETS="all", KPS_MAX_ATTEMPTS="1")
    _, out = invoke_raw(None, FakeContext(user_data=settings))
    [swept] = [line for line in out.splitlines() if '"projects swept"' in line]
    assert windows_left(swept, token) == [], "pieces of the token were printed in the skipped project names"


# --- Content-Encoding: the one header still read as Latin-1 -------------------------------------------


class _RawCompressed(BaseHTTPRequestHandler):
    """A reply whose Content-Encoding quotes the caller's token split by U+200B, sent as UTF-8 bytes."""

    token = ""

    def do_GET(self) -> None:
        piece = ZWSP.join(self.token[i : i + 11] for i in range(0, 33, 11))
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"Content-Encoding: " + piece.encode() + b"\r\nConnection: close\r\n\r\n{}"
        )

    def log_message(self, *_: object) -> None:
        pass


def test_a_content_encoding_quoting_a_split_token_is_masked(settings):
    """Was: ``_read_body`` quoted Content-Encoding read as Latin-1: U+200B (E2 80 8B) read as "â" and two
    C1 controls, which became "â " where normalise would have dropped the U+200B, and the pieces of the
    token (32 characters of it in the payload's error message) were printed. Now it is not quoted."""
    _RawCompressed.token = token = "MIIT" + red_secret(600, 13)
    server = _serve(_RawCompressed)
    try:
        settings.update(
            KPS_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", KPS_AUTH_TOKEN=token, KPS_MAX_ATTEMPTS="1"
        )
        result, out = invoke_raw({"project_id": PROJECT, "dry_run": True}, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    assert "compressed" in json.dumps(result["results"][0]["error"])
    assert windows_left(out + json.dumps(result), token, junk="\u00e2 ") == [], "the token was printed"


def test_a_signature_added_in_a_worker_thread_is_masked_in_every_thread_of_its_invocation_only():
    """The invocation's secret set is one object shared by the copies of its context its worker threads
    run in: a signature made in a worker is masked in the invocation's thread and in other workers, from
    then on; another invocation (a new context, its own set) does not hold it."""
    signature = random.Random(21).randbytes(32).hex()
    logs.use_secrets(["an-invocation-token-" + red_secret(40, 21)])
    with ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(contextvars.copy_context().run, logs.add_secret, signature).result()
        assert logs.mask(f"sig {signature}") == "sig ***"
        piece = f"a {signature[5:30].upper()} b"
        assert pool.submit(contextvars.copy_context().run, logs.mask, piece).result() == "a *** b"

    def other_invocation() -> str:
        logs.use_secrets([])
        return logs.mask(f"sig {signature}")

    assert contextvars.Context().run(other_invocation) == f"sig {signature}"
    logs.use_secrets([])


def test_the_signatures_an_invocation_masks_are_bounded_and_the_newest_always_held():
    """A selective cleanup signs one DELETE per task: 10,000 signatures kept whole would be ~130 MB of
    windows. The masker keeps the newest MAX_SIGNATURES (rebuilt from the newest half past that): its size
    stays bounded, and the signature of the request just made is always masked."""
    rng = random.Random(22)
    logs.use_secrets(["an-invocation-token-" + red_secret(40, 22)])
    signatures = [rng.randbytes(32).hex() for _ in range(3 * logs.MAX_SIGNATURES + 7)]
    sizes = []
    for signature in signatures:
        logs.add_secret(signature)
        assert logs.mask(f"sig {signature}") == "sig ***"  # the newest, whatever came before
        [_, own] = logs._MASKER.get().maskers()
        sizes.append(len(own.windows))
    most = logs.MAX_SIGNATURES * (64 - logs.FRAGMENT + 1)
    assert max(sizes) <= most, "the signature masker grew past its bound"
    assert logs.mask(f"sig {signatures[-logs.MAX_SIGNATURES // 2]}") == "sig ***", "the newest half is held"
    logs.use_secrets([])


def test_normalise_drops_combining_marks_and_keeps_the_rest_readable():
    """Marks (Mn, Me) are dropped, a run of them in one linear pass (CPython's canonical ordering sorts
    a run of marks in quadratic time: they go first); compatibility forms fold, Hangul stays composed.
    The documented cost: accents, dakuten and Mn vowel signs are lost (spacing marks, Mc, stay)."""
    assert logs.normalise("a" + "\u0301\u0316" * 20_000 + "b\u20dd") == "ab"
    assert logs.normalise("caf\u00e9 \uff46\uff55\uff4c\uff4c \ufb01 \u00c5") == "cafe full fi A"
    assert logs.normalise("한국어 서버") == "한국어 서버"
    assert logs.normalise("が") == "か" and logs.normalise("नमस्ते") == "नमसत"


# --- Red team of h19-warm/h19-tidy/h19-flake (main 7d36ff9): refusals quote no secret in the payload;
# the signature masker under concurrent targets; the libraries' lines carry their own text only.


def _apig(body: str, **extra: object) -> dict:
    event = load_event("apig.json")
    event.update(body=base64.b64encode(body.encode()).decode(), isBase64Encoded=True, httpMethod="POST", **extra)
    return event


# A caller's key quoted in a refusal: errors.named quotes any key that is a short plain identifier (at most
# 24 of [A-Za-z0-9_.-]); an access key (20 upper-case letters and digits) is one. The refusal's message is
# logged masked (the "rejected" line's reason is text) but enters the payload as it was built, unmasked
# (cleaner._request_error copies Rejected.message), and docs/security.md says the payload is "not re-masked
# as a whole": strings are masked "where they enter". The caller's own answer, API Gateway's logs of it and
# every system that stores payloads then hold the function's access key.
KEYED_EVENTS = {
    "unknown event key": lambda: {"project_id": PROJECT, AK: True},
    "unknown select key": lambda: {"project_id": PROJECT, "select": {AK: 1}},
    "repeated key in a body": lambda: _apig(f'{{"project_id": "{PROJECT}", "{AK}": 1, "{AK}": 2}}'),
    "unknown API Gateway envelope key": lambda: {**_apig(json.dumps({"project_id": PROJECT})), AK: 1},
}


@pytest.mark.parametrize("shape", list(KEYED_EVENTS))
def test_an_access_key_sent_as_a_key_never_reaches_the_payload(invoke, settings, shape):
    """Break (promise 1). Happens: the payload's error.message quotes the function's access key, e.g.
    "unknown key 'TESTACCESSKEY0000001'" (the log line's reason is masked: "***"). Should: the payload
    carries no secret, as the log line does not. Likely fix: mask a refusal's message where it enters
    (``Rejected.__init__`` or ``_request_error`` through ``logs.scrub``), or let ``errors.named`` quote a
    key only when ``logs.mask`` leaves it as it is (a secret is then described by its length)."""
    settings.pop("KPS_AUTH_TOKEN")
    settings.update(HUAWEICLOUD_SDK_AK=AK, HUAWEICLOUD_SDK_SK=SK)
    run = invoke(KEYED_EVENTS[shape]())
    assert run.payload["status"] == "rejected"
    assert AK not in run.out, "the log lines are masked"
    assert AK not in json.dumps(run.payload), f"the payload quotes the access key: {run.payload['error']}"


class _EchoPages(BaseHTTPRequestHandler):
    """ListFailedTask with one task a page, ``TASKS`` in all, whose server_name quotes the signature of the
    request that listed it (as ``test_secrets_by_construction._EchoInTask`` does for one page)."""

    protocol_version = "HTTP/1.1"
    TASKS = 20
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        signature = self.headers.get("Authorization", "").rsplit("Signature=", 1)[1]
        self.seen.append(signature)
        offset = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("offset", ["0"])[0]
        task = {
            "task_id": f"t{offset}",
            "operate_type": "FAILED_RESET",
            "server_id": "s1",
            "server_name": f"sig {signature}",
            "keypair_name": "k",
            "task_error_code": "KPS.1",
            "task_time": "1700000000000",
        }
        body = json.dumps({"total": self.TASKS, "tasks": [task]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def _list_32_targets(handler_class: type[_EchoPages], settings: dict, **extra: str) -> tuple[dict, str]:
    """A dry run of 32 targets listed at once (KPS_CONCURRENCY=32) with AK/SK, one task a page, against
    ``handler_class``: the payload, and its text with every line printed."""
    handler_class.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.pop("KPS_AUTH_TOKEN")
    settings.update(
        KPS_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}",
        KPS_TARGETS=",".join(f"cn-north-4:{n:032x}" for n in range(1, 33)),
        HUAWEICLOUD_SDK_AK=AK,
        HUAWEICLOUD_SDK_SK=SK,
        KPS_DRY_RUN="true",
        KPS_LIST_PAGE_SIZE="1",
        KPS_MAX_ATTEMPTS="1",
        KPS_CONCURRENCY="32",
        **extra,
    )
    out, saved = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        result = handler(None, FakeContext(user_data=settings, timeout_seconds=120))
    finally:
        sys.stdout = saved
        server.shutdown()
        server.server_close()
    return result, out.getvalue() + json.dumps(result)


def test_no_signature_is_printed_while_the_signature_masker_is_rebuilt(settings):
    """640 signatures in one invocation, each echoed in the task its request listed, signed by 32 threads
    at once: ``logs._Secrets`` rebuilds its windows past ``MAX_SIGNATURES`` (256) several times, aside and
    published whole. None is printed (5 to 20 were, when a reader could see a half-filled masker)."""
    result, text = _list_32_targets(_EchoPages, settings)
    assert [r["failed_task_count"] for r in result["results"]] == [_EchoPages.TASKS] * 32, "every page was read"
    assert len(_EchoPages.seen) > 2 * logs.MAX_SIGNATURES, "the masker was rebuilt"
    printed = [s for s in _EchoPages.seen if s in text]
    assert printed == [], f"{len(printed)} of {len(_EchoPages.seen)} signatures printed whole"


class _HeldPage(_EchoPages):
    """As ``_EchoPages``, but the first page of the first project is answered only once ``HOLD_FOR`` other
    pages have been asked for (counted, not timed)."""

    HOLD_FOR = 300
    others = threading.Semaphore(0)

    def do_GET(self) -> None:
        if self.path.startswith(f"/v3/{1:032x}/") and "offset=0" in self.path:
            for _ in range(self.HOLD_FOR):
                self.others.acquire(timeout=50)
        else:
            self.others.release()
        super().do_GET()


def test_a_signature_is_still_masked_when_its_reply_comes_after_128_other_requests(settings):
    """One target's first page is answered after the other 31 targets have asked for 300 pages (counted, not
    timed): its signature, signed before 300 others, is masked when the page echoes it (it was evicted by a
    rebuild while its call was in flight)."""
    _HeldPage.others = threading.Semaphore(0)
    result, _ = _list_32_targets(_HeldPage, settings, KPS_TIMEOUT_SECONDS="100")
    held = result["results"][0]
    assert held["sample"][0]["server_name"].startswith("sig "), "the held page was read"
    printed = [s for s in _HeldPage.seen if s in held["sample"][0]["server_name"]]
    assert printed == [], "the held request's signature was printed whole"
    assert held["sample"][0]["server_name"] == "sig ***"


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_a_token_a_server_echoes_in_unparsed_headers_is_masked_in_urllib3s_warning(settings, level):
    """Break (promise 1, the libraries' lines). A reply whose head has a line without a colon makes urllib3
    log, at WARNING (so at the default level), "Failed to parse headers (url=...): [...], unparsed data:
    '<the rest of the head>'" with exc_info: the server's header bytes as a Python repr. A token echoed there
    split by soft hyphens (byte AD, U+00AD, which ``logs.normalise`` drops so that the mask sees through it,
    docs/security.md step 1) reaches the line as the literal text ``\\xad`` (repr escapes what is not
    printable): "MIIT-s\\xadetting\\xads-toke\\xadn-0123..." in the message, ``error_message`` and the
    traceback, readable and not masked. Should: no piece of a secret a reader can join. Likely fix: a
    library record's line carries the library's own text (``record.msg``, the format, and the exception's
    type), never its arguments or the exception's message, which quote what the server sent."""
    token = settings["KPS_AUTH_TOKEN"]
    split = b"\xad".join(token.encode()[i : i + 6] for i in range(0, len(token), 6))
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nthis line has no colon\r\nX-Echo: " + split
    server = RawReply(head + b"\r\n\r\n{}")
    settings.update(KPS_ENDPOINT=server.url, KPS_COUNT_BEFORE_DELETE="false", KPS_MAX_ATTEMPTS="1", LOG_LEVEL=level)
    out, saved = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        result = handler({"project_id": PROJECT}, FakeContext(user_data=settings))
    finally:
        sys.stdout = saved
        server.close()
    assert result["results"][0]["error"]["code"] == "HTTP.403"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    warned = [line for line in lines if line.get("logger", "").startswith("urllib3") and line["level"] == "warning"]
    assert warned and "Failed to parse headers" in warned[0]["message"], "urllib3's warning was logged"
    assert warned[0]["error_type"] == "HeaderParsingError", "by the exception's type alone"
    readable = [json.dumps(line).replace("\\\\xad", "") for line in lines]
    assert [line for line in readable if token in line] == [], "the token is readable in a line"


def test_a_token_in_a_refused_setting_never_reaches_the_payload(invoke, settings):
    """Break (promise 1), the same gap as the access key above, from the settings side: a refused setting is
    quoted whole in its InvalidSetting message (``parse_endpoint``: "only scheme, host and port are allowed,
    got '<the URL>'"), which the payload carries unmasked, to every API Gateway caller, while the
    ``rejected`` line masks it. An endpoint copied with the token in its query is the case here. Should: the
    payload masks what the log line masks. Likely fix: mask every refusal's message where it enters the
    payload (``cleaner._request_error``), or quote no setting value (name the setting and the rule)."""
    token = settings["KPS_AUTH_TOKEN"]
    settings["KPS_ENDPOINT"] = f"https://kms.cn-north-4.myhuaweicloud.com/?X-Auth-Token={token}"
    run = invoke({"project_id": PROJECT})
    assert run.payload["error"]["code"] == "InvalidSetting"
    assert token not in run.out, "the log line is masked"
    assert token not in json.dumps(run.payload), f"the payload quotes the token: {run.payload['error']['message']}"


ECHO_TASKS = 300


class _EchoOldSignature(_EchoSignature):
    """Lists ``ECHO_TASKS`` tasks; answers each DELETE 200, except the last, whose 401 quotes the
    Authorization header of the first DELETE it was sent (as a gateway quoting a replayed request);
    ``deletes`` keeps the DELETEs' headers."""

    deletes: ClassVar[list[str]] = []
    lock = threading.Lock()

    def reply(self, authorization: str) -> tuple[int, dict]:
        if self.command == "GET":
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            first = query.get("offset", ["0"])[0] in ("0", "")
            tasks = [
                {
                    "task_id": f"t{i}",
                    "operate_type": "FAILED_UNBIND",
                    "server_id": f"s{i}",
                    "server_name": "n",
                    "keypair_name": "k",
                    "task_error_code": "KPS.1",
                    "task_time": "1700000000000",
                }
                for i in range(ECHO_TASKS)
            ]
            return 200, {"total": ECHO_TASKS, "tasks": tasks if first else []}
        with self.lock:
            self.deletes.append(authorization)
            count, first_delete = len(self.deletes), self.deletes[0]
        if count < ECHO_TASKS:
            return 200, {}
        return 401, {"error_code": "APIGW.0301", "error_msg": f"verify aksk signature fail, replayed: {first_delete}"}


def test_a_signature_echoed_after_300_others_is_still_masked(settings):
    """A selective cleanup signs one DELETE per task; the server quotes, in its last reply, the
    signature of the first DELETE (still valid for 15 minutes): it must reach no line or payload."""
    _EchoOldSignature.seen, _EchoOldSignature.deletes = [], []
    server = _serve(_EchoOldSignature)
    try:
        settings.pop("KPS_AUTH_TOKEN")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings.update({"KPS_ENDPOINT": url, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK})
        settings.update({"KPS_MAX_ATTEMPTS": "1", "KPS_CONCURRENCY": "1", "LOG_LEVEL": "DEBUG"})
        event = {"project_id": PROJECT, "select": {"operate_type": ["FAILED_UNBIND"]}}
        result, out = invoke_raw(event, FakeContext(user_data=settings))
    finally:
        server.shutdown()
        server.server_close()
    assert len(_EchoOldSignature.deletes) == ECHO_TASKS, "the case needs every task's DELETE"
    assert "APIGW.0301" in out + json.dumps(result), "the echo was not read"
    signature = _EchoOldSignature.deletes[0].rsplit("Signature=", 1)[1]
    assert windows_left(out + json.dumps(result), signature) == [], "an earlier request's signature was printed"
