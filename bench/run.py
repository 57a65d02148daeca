"""`make bench`: cold start, warm overhead, fan-out, memory and size, each beside its baseline.

Everything runs against the KPS emulator on loopback, in one run, and lands in bench/results.json.
Cold starts run in fresh interpreters of the deployed runtime's Python version (3.12 when this machine
has it), with -S -E so each sees only its own code: the unzipped package for the function and for the
raw-requests baseline, a pip --target folder for the official huaweicloudsdkkps client.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.context import FakeContext  # noqa: E402
from devtools.demo import DEMO_AK as AK  # noqa: E402
from devtools.demo import DEMO_SK as SK  # noqa: E402
from devtools.demo import DEMO_TOKEN as TOKEN  # noqa: E402
from devtools.package import RUNTIMES, ZIP_NAME, pip_install_for, runtime_python, template_runtime  # noqa: E402

COLD_RUNS = 30
WARM_RUNS = 400
FAN_OUT_TARGETS = 100
FAN_OUT_LATENCY = 0.1
PROJECT = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09"
SDK_VERSION = "3.1.219"
LONG_TOKEN = "MIIT" + "a1B2c3D4e5F6g7H8" * 256  # a 4 KB IAM token, the length real ones have
RATIOS = {
    "token path / raw requests": ("function, token", "raw requests, token"),
    "structlog floor / raw requests": ("raw requests + import structlog", "raw requests, token"),
    "token path / structlog floor": ("function, token", "raw requests + import structlog"),
    "AK/SK path / official SDK": ("function, AK/SK", "official SDK, AK/SK"),
}

# Each child: one complete invocation in a fresh interpreter, then its peak RSS (KiB) on the last line.
CONTEXT = """
class Context:
    def __init__(self, data): self.data = data
    def getRequestID(self): return "cold"
    def getRemainingTimeInMilliSeconds(self): return 30000
    def getUserData(self, key, default=""): return self.data.get(key, default)
    def getSecurityAccessKey(self): return ""
    def getSecuritySecretKey(self): return ""
    def getSecurityToken(self): return ""
    def getToken(self): return ""
    def getFunctionName(self): return "kps-failed-task-cleaner"
    def getVersion(self): return "latest"
"""
FUNCTION = (
    CONTEXT
    + """
import handler
result = handler.handler({"project_id": PROJECT}, Context(SETTINGS))
assert result["ok"], result
"""
)
FLOOR = """
import structlog
import requests
response = requests.delete(URL + "/v3/" + PROJECT + "/failed-tasks", headers={"X-Auth-Token": TOKEN})
assert response.status_code == 200
"""
RAW = """
import requests
response = requests.delete(URL + "/v3/" + PROJECT + "/failed-tasks", headers={"X-Auth-Token": TOKEN})
assert response.status_code == 200
"""
SDK = """
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkkps.v3 import DeleteAllFailedTaskRequest, KpsClient
client = KpsClient.new_builder().with_credentials(BasicCredentials(AK, SK, PROJECT)).with_endpoints([URL]).build()
client.delete_all_failed_task(DeleteAllFailedTaskRequest())
"""
RSS = "\nimport resource, sys\nsys.stdout.write('\\nRSS %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"


# The emulator with the demo credentials and the 4 KB token the warm figures use; it prints its URL.
EMULATOR = f"""
import sys, time
from devtools import demo
from devtools.kps_emulator import KpsEmulator
with KpsEmulator(port=0) as kps:
    kps.add_key(demo.DEMO_AK, demo.DEMO_SK)
    for token in (demo.DEMO_TOKEN, {LONG_TOKEN!r}):
        kps.add_token(token)
    kps.set_latency(float(sys.argv[1]))
    for seed in sys.argv[2:]:  # PROJECT_ID:COUNT
        project, _, count = seed.partition(":")
        kps.seed(project, int(count))
    print(kps.url, flush=True)
    while True:
        time.sleep(3600)
"""


@contextlib.contextmanager
def emulator(latency: float = 0.0, *seeds: str) -> Iterator[str]:
    """The emulator in its own process, so that its work does not share a GIL with what is measured."""
    process = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, str(latency), *seeds],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        match = re.search(r"http://[0-9.:]+", process.stdout.readline() if process.stdout else "")
        if match is None:
            raise SystemExit("the emulator did not start")
        yield match.group(0)
    finally:
        process.terminate()
        process.wait()


def _child(path: Path, body: str, constants: dict[str, Any]) -> str:
    header = f"import sys\nsys.path.insert(0, {str(path)!r})\n"
    header += "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return header + body + RSS


def _run_child(python: str, code: str, home: str) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-S", "-E", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": home},
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"a cold-start child failed:\n{done.stderr}")
    return elapsed, int(done.stdout.rsplit("RSS ", 1)[1])


def _sdk_folder(python_version: str) -> Path:
    folder = ROOT / ".bench" / f"huaweicloudsdkkps-{SDK_VERSION}-py{python_version}"
    if not folder.exists():
        pip_install_for(python_version, folder, f"huaweicloudsdkkps=={SDK_VERSION}")
    return folder


def cold_start(url: str, code_dir: Path, python: str, python_version: str) -> dict[str, Any]:
    common = {"PROJECT": PROJECT, "URL": url}
    settings = {"KPS_ENDPOINT": url, "KPS_REGION": "cn-north-4", "KPS_COUNT_BEFORE_DELETE": "false"}
    cases = {
        "function, token": _child(code_dir, FUNCTION, {**common, "SETTINGS": {**settings, "KPS_AUTH_TOKEN": TOKEN}}),
        "function, AK/SK": _child(
            code_dir, FUNCTION, {**common, "SETTINGS": {**settings, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}}
        ),
        "raw requests, token": _child(code_dir, RAW, {**common, "TOKEN": TOKEN}),
        "raw requests + import structlog": _child(code_dir, FLOOR, {**common, "TOKEN": TOKEN}),
        "official SDK, AK/SK": _child(_sdk_folder(python_version), SDK, {**common, "AK": AK, "SK": SK}),
    }
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
    order = random.Random(7)
    with tempfile.TemporaryDirectory() as home:
        for code in cases.values():  # once each, unmeasured: the SDK folder compiles its bytecode here
            _run_child(python, code, home)
        for _ in range(COLD_RUNS):  # every case once a round, in a shuffled order
            for name in order.sample(list(cases), len(cases)):
                samples[name].append(_run_child(python, cases[name], home))
    result: dict[str, Any] = {
        name: {
            "median_ms": round(statistics.median(t for t, _ in runs) * 1000, 1),
            "min_ms": round(min(t for t, _ in runs) * 1000, 1),
            "peak_rss_mb": round(statistics.median(r for _, r in runs) / 1024, 1),
        }
        for name, runs in samples.items()
    }
    # Each ratio is the median over rounds of the two cases' times within the same round: the load on
    # this machine drifts between rounds (medians of each case alone moved by 15% from run to run).
    result["ratios"] = {
        name: round(statistics.median(samples[a][i][0] / samples[b][i][0] for i in range(COLD_RUNS)), 2)
        for name, (a, b) in RATIOS.items()
    }
    return result


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def warm(url: str, token: str = TOKEN, rounds: int = WARM_RUNS) -> dict[str, Any]:
    """One warm invocation beside a bare ``requests`` DELETE to the same server, with the default
    ``Session`` and with ``trust_env=False``: interleaved, each call paired with the bare calls of its round."""
    import requests

    from handler import handler

    settings = {
        "KPS_ENDPOINT": url,
        "KPS_REGION": "cn-north-4",
        "KPS_AUTH_TOKEN": token,
        "KPS_COUNT_BEFORE_DELETE": "false",
    }
    context = FakeContext(user_data=settings, timeout_seconds=3600)
    event = {"project_id": PROJECT}
    default, plain = requests.Session(), requests.Session()
    plain.trust_env = False
    url = f"{url}/v3/{PROJECT}/failed-tasks"
    calls = {
        "bare": lambda: default.delete(url, headers={"X-Auth-Token": token}).raise_for_status(),
        "bare, trust_env=False": lambda: plain.delete(url, headers={"X-Auth-Token": token}).raise_for_status(),
        "function": lambda: handler(event, context)["ok"] or sys.exit("the warm invocation failed"),
    }
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    order = random.Random(11)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # log lines cost their write too
        for _ in range(100):
            for call in calls.values():
                call()
        for _ in range(rounds):
            for name in order.sample(list(calls), len(calls)):
                started, started_cpu = time.perf_counter(), time.thread_time()
                calls[name]()
                cpu[name].append((time.thread_time() - started_cpu) * 1e6)
                wall[name].append((time.perf_counter() - started) * 1e6)
    result: dict[str, Any] = {
        name: {
            "median_us": round(statistics.median(v), 1),
            "p99_us": round(_percentile(v, 0.99), 1),
            "cpu_median_us": round(statistics.median(cpu[name]), 1),
        }
        for name, v in wall.items()
    }
    # Paired within a round, so that drift in the machine's load cancels out.
    for bare in ("bare", "bare, trust_env=False"):
        pairs = list(zip(wall["function"], wall[bare]))
        result[f"ratio / {bare}"] = round(statistics.median(f / b for f, b in pairs), 2)
        result[f"overhead_us / {bare}"] = round(statistics.median(f - b for f, b in pairs), 1)
    result["token_chars"] = len(token)
    return result


def masking(rounds: int = 2000) -> dict[str, Any]:
    """Masking a bounded text (``logs.MAX_STRING`` characters) costs the same whatever the secrets: one
    20-character key against production-length credentials (AK 20, SK 40, a 4 KB security token, an
    8 KB IAM token), interleaved; the ratio is the figure, not the microseconds."""
    from function import logs

    rng = random.Random(5)
    text = "".join(rng.choice("abcdefghij0123456789 ") for _ in range(logs.MAX_STRING))
    sets = {
        "one 20-character key": [AK],
        "production credentials": [AK, SK, LONG_TOKEN[:4096], LONG_TOKEN * 2],
    }
    times: dict[str, list[float]] = {name: [] for name in sets}
    for _ in range(rounds):
        for name, secrets in sets.items():
            logs.use_secrets(secrets)
            started = time.perf_counter()
            logs.mask(text)
            times[name].append((time.perf_counter() - started) * 1e6)
    logs.use_secrets([])
    medians = {name: round(statistics.median(v), 1) for name, v in times.items()}
    return {
        "text_chars": len(text),
        "median_us": medians,
        "ratio": round(
            statistics.median(b / a for a, b in zip(times["one 20-character key"], times["production credentials"])), 2
        ),
    }


def fan_out() -> dict[str, Any]:
    from handler import handler

    targets = [{"project_id": f"{i:032x}"} for i in range(1, FAN_OUT_TARGETS + 1)]
    result: dict[str, Any] = {"targets": FAN_OUT_TARGETS, "emulator_latency_ms": FAN_OUT_LATENCY * 1000}
    for concurrency in ("8", "32"):
        with emulator(FAN_OUT_LATENCY) as url:
            result[f"concurrency_{concurrency}"] = _fan_out_once(handler, url, targets, concurrency)
    return result


def _fan_out_once(handler: Any, url: str, targets: list[dict[str, str]], concurrency: str) -> dict[str, Any]:
    settings = {
        "KPS_ENDPOINT": url,
        "KPS_REGION": "cn-north-4",
        "KPS_AUTH_TOKEN": TOKEN,
        "KPS_CONCURRENCY": concurrency,
    }
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        started = time.perf_counter()
        payload = handler({"targets": targets}, FakeContext(user_data=settings, timeout_seconds=600))
        wall = time.perf_counter() - started
    assert payload["ok"] and len(payload["results"]) == FAN_OUT_TARGETS, payload["status"]
    return {
        "wall_s": round(wall, 3),
        "sequential_sum_s": round(sum(r["duration_ms"] for r in payload["results"]) / 1000, 3),
        "calls_per_target": payload["results"][0]["attempts"],
    }


SELECTIVE_TASKS = 1000
SELECTIVE_LATENCY = 0.05


def selective() -> dict[str, Any]:
    """1,000 selected tasks, each call answered after 50 ms, at the default KPS_CONCURRENCY: the wall
    time against the latency bound ceil(tasks / concurrency) x latency, plus the listing's pages."""
    from function.settings import default_of
    from handler import handler

    concurrency = int(default_of("KPS_CONCURRENCY"))
    seed = f"{PROJECT}:{SELECTIVE_TASKS}"
    with emulator(SELECTIVE_LATENCY, seed) as url:
        settings = {"KPS_ENDPOINT": url, "KPS_REGION": "cn-north-4", "KPS_AUTH_TOKEN": TOKEN}
        event = {"project_id": PROJECT, "select": {"older_than_hours": 0}}
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            started = time.perf_counter()
            payload = handler(event, FakeContext(user_data=settings, timeout_seconds=600))
            wall = time.perf_counter() - started
    [result] = payload["results"]
    assert payload["ok"] and result["failed_task_count"] == SELECTIVE_TASKS, payload
    pages = result["attempts"] - SELECTIVE_TASKS
    bound = (-(-SELECTIVE_TASKS // concurrency) + pages) * SELECTIVE_LATENCY
    return {
        "tasks": SELECTIVE_TASKS,
        "concurrency": concurrency,
        "emulator_latency_ms": SELECTIVE_LATENCY * 1000,
        "listing_calls": pages,
        "wall_s": round(wall, 3),
        "bound_s": round(bound, 3),
        "wall_over_bound": round(wall / bound, 3),
    }


def _runtime() -> tuple[str, str]:
    """The deployed runtime's Python (this one if the machine lacks it) and its full version."""
    python = runtime_python(RUNTIMES[template_runtime()]) or sys.executable
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return python, version


def _cold(url: str, package: Path) -> dict[str, Any]:
    python, version = _runtime()
    with tempfile.TemporaryDirectory() as unpacked:
        with zipfile.ZipFile(package) as archive:
            archive.extractall(unpacked)
        return cold_start(url, Path(unpacked), python, ".".join(version.split(".")[:2]))


def only(case: str, package: Path) -> int:
    """``--only warm`` or ``--only cold``: that case alone, printed, nothing written, to compare two
    versions of the code back to back (warm needs no package)."""
    with emulator() as url:
        if case == "cold":
            print(json.dumps(_cold(url, package)["ratios"]))
            return 0
        figures = {"short token": warm(url), "4 KB IAM token": warm(url, LONG_TOKEN)}
    for name, w in figures.items():
        print(
            f"warm, {name}: function {w['function']['median_us']} us, bare {w['bare']['median_us']} us, "
            f"trust_env=False {w['bare, trust_env=False']['median_us']} us: "
            f"{w['ratio / bare']}x / {w['ratio / bare, trust_env=False']}x"
        )
    return 0


def main() -> int:
    package = ROOT / "dist" / ZIP_NAME
    if sys.argv[1:] not in ([], ["--only", "warm"], ["--only", "cold"]):
        raise SystemExit("usage: bench/run.py [--only warm|cold]")
    if sys.argv[1:] != ["--only", "warm"] and not package.exists():
        raise SystemExit("run make package first (make bench does)")
    if sys.argv[1:]:
        return only(sys.argv[2], package)
    python_version = _runtime()[1]
    with emulator() as url:
        cold = _cold(url, package)
        warm_figures = {"short token": warm(url), "4 KB IAM token": warm(url, LONG_TOKEN)}
    fan = fan_out()
    mask_figures = masking()
    selected = selective()
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cold_start_python": python_version,
            "warm_python": platform.python_version(),
        },
        "cold_start": cold,
        "warm": warm_figures,
        "fan_out": fan,
        "masking": mask_figures,
        "selective": selected,
        "package": {"zip_bytes": package.stat().st_size},
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(
        f"selective cleanup: {selected['tasks']} tasks at {selected['concurrency']} at once, {selected['wall_s']} s "
        f"against the {selected['bound_s']} s bound ({selected['wall_over_bound']}x)"
    )
    return 0


def table(r: dict[str, Any]) -> str:
    cold, warm_, fan = r["cold_start"], r["warm"], r["fan_out"]
    rss = cold["function, token"]["peak_rss_mb"]
    rows = [
        (
            "cold start, token path / structlog floor",
            f"{cold['function, token']['median_ms']} ms",
            f"floor {cold['raw requests + import structlog']['median_ms']} ms",
            f"{cold['ratios']['token path / structlog floor']}x",
            "<= 1.08x",
        ),
        (
            "cold start, token path (median)",
            f"{cold['function, token']['median_ms']} ms",
            f"raw requests {cold['raw requests, token']['median_ms']} ms",
            f"{cold['ratios']['token path / raw requests']}x",
            "<= 1.3x",
        ),
        (
            "  floor: raw requests + import structlog",
            f"{cold['raw requests + import structlog']['median_ms']} ms",
            f"raw requests {cold['raw requests, token']['median_ms']} ms",
            f"{cold['ratios']['structlog floor / raw requests']}x",
            "(mandated)",
        ),
        (
            "cold start, AK/SK path (median)",
            f"{cold['function, AK/SK']['median_ms']} ms",
            f"official SDK {cold['official SDK, AK/SK']['median_ms']} ms",
            f"{cold['ratios']['AK/SK path / official SDK']}x",
            "< 1x",
        ),
        *(
            (
                f"warm invocation, {name} (median)",
                f"{w['function']['median_us']} us",
                f"bare {w['bare']['median_us']} / trust_env=False {w['bare, trust_env=False']['median_us']} us",
                f"{w['ratio / bare']}x / {w['ratio / bare, trust_env=False']}x",
                "<= 1.25x (4 KB)",
            )
            for name, w in warm_.items()
        ),
        (
            f"fan-out, {fan['targets']} targets x {fan['emulator_latency_ms']:.0f} ms, 32 at once",
            f"{fan['concurrency_32']['wall_s']} s",
            f"sequential {fan['concurrency_32']['sequential_sum_s']} s",
            f"{fan['concurrency_32']['sequential_sum_s'] / fan['concurrency_32']['wall_s']:.0f}x faster",
            "<= 1.5 s",
        ),
        (
            "fan-out, default concurrency 8",
            f"{fan['concurrency_8']['wall_s']} s",
            f"sequential {fan['concurrency_8']['sequential_sum_s']} s",
            "",
            "",
        ),
        (
            "peak RSS, cold invocation",
            f"{rss} MB",
            f"raw requests {cold['raw requests, token']['peak_rss_mb']} MB",
            "",
            "<= 50 MB",
        ),
        (
            "masking a 1,000-character text",
            f"{r['masking']['median_us']['production credentials']} us",
            f"one 20-character key {r['masking']['median_us']['one 20-character key']} us",
            f"{r['masking']['ratio']}x",
            "~1x",
        ),
        ("deployment zip", f"{r['package']['zip_bytes'] / 1e6:.2f} MB", "", "", "<= 10 MB"),
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    header = ("figure", "measured", "baseline", "ratio (paired)", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    long = warm_["4 KB IAM token"]
    verdicts = [
        ("cold start <= 1.08x the structlog floor", cold["ratios"]["token path / structlog floor"] <= 1.08),
        ("warm (4 KB) <= 1.25x the default Session", long["ratio / bare"] <= 1.25),
        ("warm (4 KB) <= 1.25x trust_env=False", long["ratio / bare, trust_env=False"] <= 1.25),
    ]
    lines.append("\ntargets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in verdicts))
    machine = r["machine"]
    lines.append(
        f"\n{machine['cpus']} CPUs, {machine['platform']}; cold starts on Python "
        f"{machine['cold_start_python']}, warm runs on {machine['warm_python']}; {r['date']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
