"""Local tools (development only, never deployed).

python -m devtools run                          the main job: timer event against the emulator
python -m devtools invoke --event events/apig.json [--auth agency-keys|agency-token|aksk|token]
python -m devtools invoke --event events/timer.json --real     real KPS, settings from the environment
python -m devtools emulator --port 8080 --seed 4b1f...:5       a standalone emulator
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .context import FakeContext
from .kps_emulator import KpsEmulator

ROOT = Path(__file__).resolve().parent.parent
DEMO_PROJECT = "4b1f2a0c9e7d4c3b8a6f5e4d3c2b1a09"
DEMO_REGION = "cn-north-4"
# Throw-away demo credentials, known only to the local emulator.
DEMO_AK, DEMO_SK, DEMO_SECURITY_TOKEN = "DEMOAGENCYAK0000", "demo-agency-secret-key", "demo-security-token"
DEMO_TOKEN = "demo-iam-token"


def _emulator_context(kps: KpsEmulator, auth: str, timeout: float) -> FakeContext:
    kps.add_key(DEMO_AK, DEMO_SK, DEMO_SECURITY_TOKEN if auth == "agency-keys" else None)
    kps.add_token(DEMO_TOKEN)
    user_data = {"KPS_ENDPOINT": kps.url, "KPS_REGION": DEMO_REGION, "RUNTIME_PROJECT_ID": DEMO_PROJECT}
    keys: dict[str, str] = {}
    if auth == "agency-keys":
        keys = {"access_key": DEMO_AK, "secret_key": DEMO_SK, "security_token": DEMO_SECURITY_TOKEN}
    elif auth == "agency-token":
        keys = {"token": DEMO_TOKEN}
    elif auth == "aksk":
        user_data.update(HUAWEICLOUD_SDK_AK=DEMO_AK, HUAWEICLOUD_SDK_SK=DEMO_SK)
    elif auth == "token":
        user_data["KPS_AUTH_TOKEN"] = DEMO_TOKEN
    return FakeContext(user_data=user_data, timeout_seconds=timeout, **keys)


def _invoke(event: Any, context: FakeContext) -> Any:
    sys.path.insert(0, str(ROOT))
    from handler import handler

    print("--- function logs ---", flush=True)
    result = handler(event, context)
    print("--- payload ---")
    print(json.dumps(result, indent=2))
    return result


def _succeeded(result: Any) -> bool:
    payload = json.loads(result["body"]) if "statusCode" in result else result
    return bool(payload.get("ok"))


def _against_emulator(event: Any, auth: str, seed: int, timeout: float) -> bool:
    with KpsEmulator() as kps:
        kps.seed(DEMO_PROJECT, seed)
        print(f"KPS emulator on {kps.url}; project {DEMO_PROJECT} seeded with {seed} failed tasks; auth: {auth}")
        result = _invoke(event, _emulator_context(kps, auth, timeout))
        print("--- emulator request log ---")
        for entry in kps.requests:
            print(f"{entry.method} {entry.path} -> {entry.status} (auth: {entry.auth})")
        print(f"failed tasks left in {DEMO_PROJECT}: {len(kps.failed_tasks(DEMO_PROJECT))}")
    return _succeeded(result)


def _against_real_kps(event: Any, timeout: float) -> bool:
    missing = [n for n in ("KPS_REGION",) if not os.environ.get(n) and not os.environ.get("KPS_ENDPOINT")]
    if missing or not (os.environ.get("HUAWEICLOUD_SDK_AK") or os.environ.get("KPS_AUTH_TOKEN")):
        sys.exit("--real needs KPS_REGION and HUAWEICLOUD_SDK_AK/SK or KPS_AUTH_TOKEN in the environment")
    return _succeeded(_invoke(event, FakeContext(timeout_seconds=timeout)))


def _serve(port: int, seeds: list[str], latency: float) -> None:
    with KpsEmulator(port=port) as kps:
        kps.add_key(DEMO_AK, DEMO_SK)
        kps.add_token(DEMO_TOKEN)
        kps.set_latency(latency)
        for seed in seeds:
            project_id, _, count = seed.partition(":")
            kps.seed(project_id, int(count or 5))
        print(f"KPS emulator on {kps.url} (AK {DEMO_AK}, token {DEMO_TOKEN!r}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except (KeyboardInterrupt, BrokenPipeError):
            pass


def settings_table() -> str:
    """The README's table, generated from the one list the code reads."""
    sys.path.insert(0, str(ROOT))
    from function.settings import SETTINGS

    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        secret = " **Secret**: make it an encrypted variable." if s.secret else ""
        rows.append(f"| `{s.name}` | {f'`{s.default}`' if s.default else '—'} | {s.meaning}{secret} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="invoke events/timer.json against a seeded emulator")
    invoke = commands.add_parser("invoke", help="invoke any event file")
    invoke.add_argument("--event", required=True, type=Path)
    invoke.add_argument("--auth", default="agency-keys", choices=["agency-keys", "agency-token", "aksk", "token"])
    invoke.add_argument("--seed", type=int, default=5, help="failed tasks to seed in the demo project")
    invoke.add_argument("--timeout", type=float, default=30.0, help="the invocation's time budget, seconds")
    invoke.add_argument("--real", action="store_true", help="call real KPS with settings from the environment")
    commands.add_parser("settings-table", help="print the README's settings table")
    serve = commands.add_parser("emulator", help="run the emulator alone")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--seed", action="append", default=[], metavar="PROJECT_ID[:COUNT]")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args(argv)

    if args.command == "settings-table":
        print(settings_table())
        return 0
    if args.command == "emulator":
        _serve(args.port, args.seed, args.latency)
        return 0
    if args.command == "run":
        event = json.loads((ROOT / "events" / "timer.json").read_text())
        ok = _against_emulator(event, "agency-keys", 5, 30.0)
    else:
        event = json.loads(args.event.read_text())
        ok = (
            _against_real_kps(event, args.timeout)
            if args.real
            else _against_emulator(event, args.auth, args.seed, args.timeout)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
