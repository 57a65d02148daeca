"""Local tools (development only, never deployed).

python -m devtools run                          the main job: timer event against the emulator
python -m devtools invoke --event events/apig.json [--auth agency-keys|agency-token|aksk|token]
python -m devtools invoke --event - < event.json                 the event from standard input
python -m devtools invoke --event events/timer.json --real     real KPS, settings from the environment
python -m devtools serve --port 3000                           a local API Gateway (make serve)
python -m devtools event timer --project-id 4b1f... --dry-run  an event of that trigger's shape
python -m devtools emulator --port 8080 --seed 4b1f...:5       a standalone emulator
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import demo
from .context import FakeContext
from .kps_emulator import KpsEmulator
from .table import target_table, wants_table

ROOT = Path(__file__).resolve().parent.parent


def _handler() -> Any:
    sys.path.insert(0, str(ROOT))
    from handler import handler

    return handler


def _is_sweep(event: Any) -> bool:
    sys.path.insert(0, str(ROOT))
    from function.triggers import read_event

    return any(
        isinstance(f.get("targets"), str) and f["targets"].lower() == "all" for f in read_event(event).field_sets
    )


def _payload(result: Any) -> Any:
    return json.loads(result["body"]) if isinstance(result, dict) and "statusCode" in result else result


def _invoke(event: Any, context: FakeContext) -> Any:
    handler = _handler()
    print("--- function logs ---", flush=True)
    result = handler(event, context)
    print("--- payload ---")
    print(json.dumps(result, indent=2))
    payload = _payload(result)
    if isinstance(payload, dict) and wants_table(payload, _is_sweep(event)):
        print("--- targets ---")
        print(target_table(payload))
    return result


def _succeeded(result: Any) -> bool:
    return bool(_payload(result).get("ok"))


def _against_emulator(event: Any, auth: str, seed: int, timeout: float, env: dict[str, str]) -> bool:
    with KpsEmulator() as kps:
        demo.seed(kps, auth, seed)
        print(
            f"KPS and IAM emulator on {kps.url}; project {demo.DEMO_PROJECT} seeded with {seed} failed tasks, "
            f"IAM lists {len(demo.IAM_PROJECTS)} projects; auth: {auth}"
        )
        context = demo.demo_context({**demo.emulator_settings(kps), **env}, auth, timeout)
        result = _invoke(event, context)
        print("--- emulator request log ---")
        for entry in kps.requests:
            print(f"{entry.method} {entry.path} -> {entry.status} (auth: {entry.auth})")
        print(f"failed tasks left in {demo.DEMO_PROJECT}: {len(kps.failed_tasks(demo.DEMO_PROJECT))}")
    return _succeeded(result)


def _against_real_kps(event: Any, timeout: float, env: dict[str, str]) -> bool:
    settings = {**os.environ, **env}
    if not (settings.get("KPS_REGION") or settings.get("KPS_ENDPOINT")) or not (
        settings.get("HUAWEICLOUD_SDK_AK") or settings.get("KPS_AUTH_TOKEN")
    ):
        sys.exit("--real needs KPS_REGION and HUAWEICLOUD_SDK_AK/SK or KPS_AUTH_TOKEN in the environment")
    return _succeeded(_invoke(event, FakeContext(user_data=env, timeout_seconds=timeout)))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``export`` and quotes allowed, ``#`` comments): the function's environment variables."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        sys.exit(f"--env-file {path}: cannot read it ({exc.__class__.__name__}: {getattr(exc, 'strerror', exc)})")
    env: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier():
            sys.exit(f"--env-file {path}: line {number} is not NAME=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[name] = value
    return env


def read_event_file(name: str) -> Any:
    """The event from a file, or standard input for ``-``; a bad one is a one-line error naming it."""
    where = "standard input" if name == "-" else name
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        sys.exit(f"event file {where}: not found")
    except (OSError, UnicodeDecodeError) as exc:
        sys.exit(f"event file {where}: cannot read it ({exc.__class__.__name__})")
    if not text.strip():
        sys.exit(f"event file {where}: empty (an event is JSON, such as {{}} for the defaults)")
    try:
        return json.loads(text)
    except RecursionError:
        sys.exit(f"event file {where}: nested too deep to read as JSON")
    except ValueError as exc:
        sys.exit(f"event file {where}: not valid JSON ({str(exc)[:120]})")


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop it cleanly, even when started where SIGINT was ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def _emulator(port: int, seeds: list[str], latency: float) -> None:
    _stop_on_signals()
    try:
        with KpsEmulator(port=port) as kps:
            kps.add_key(demo.DEMO_AK, demo.DEMO_SK)
            kps.add_token(demo.DEMO_TOKEN)
            kps.set_latency(latency)
            for seed in seeds:
                project_id, _, count = seed.partition(":")
                kps.seed(project_id, int(count or 5))
            print(
                f"KPS emulator on {kps.url} (AK {demo.DEMO_AK}, token {demo.DEMO_TOKEN!r}); Ctrl-C stops it", flush=True
            )
            while True:
                time.sleep(3600)
    except (KeyboardInterrupt, BrokenPipeError):  # whenever it comes, the print included
        pass


def _serve(port: int, auth: str, timeout: float, env: dict[str, str], tokens: list[str]) -> None:
    from .serve import Gateway, LocalServer

    kps = None
    settings = dict(env)
    if not (os.environ.get("KPS_ENDPOINT") or env.get("KPS_ENDPOINT")):
        kps = KpsEmulator().start()
        demo.seed(kps, auth)
        settings = {**demo.emulator_settings(kps), **env}
        projects = len(demo.IAM_PROJECTS)
        print(f"KPS and IAM emulator on {kps.url}: demo project {demo.DEMO_PROJECT}, {projects} IAM projects")

    def context() -> FakeContext:
        if kps is None:
            return FakeContext(user_data=settings, timeout_seconds=timeout)
        return demo.demo_context(settings, auth, timeout)

    _stop_on_signals()
    server = LocalServer(Gateway(_handler(), context, frozenset(tokens) if tokens else None), port)
    accepted = "the --token values" if tokens else "any X-Auth-Token or Authorization"
    print(f"Local API Gateway on {server.url} (IAM auth: {accepted}; Ctrl-C stops it)")
    print(
        f"  curl -s -X POST -H 'X-Auth-Token: local' -H 'Content-Type: application/json' "
        f'-d \'{{"project_id": "{demo.DEMO_PROJECT}"}}\' {server.url}',
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if kps is not None:
            kps.stop()
        print("stopped", flush=True)


def settings_table() -> str:
    """docs/settings.md's table, generated from the one list the code reads."""
    sys.path.insert(0, str(ROOT))
    from function.settings import SETTINGS

    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        secret = " **Secret**: make it an encrypted variable." if s.secret else ""
        rows.append(f"| `{s.name}` | {f'`{s.default}`' if s.default else '—'} | {s.meaning}{secret} |")
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    from .events import GENERATORS

    parser = argparse.ArgumentParser(
        prog="python -m devtools", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="invoke events/timer.json against a seeded emulator")
    invoke = commands.add_parser("invoke", help="invoke any event file (- for standard input)")
    invoke.add_argument("--event", required=True, help="an event file, or - for standard input")
    invoke.add_argument("--auth", default="agency-keys", choices=demo.AUTH_MODES)
    invoke.add_argument("--seed", type=int, default=5, help="failed tasks to seed in the demo project")
    invoke.add_argument("--timeout", type=float, default=30.0, help="the invocation's time budget, seconds")
    invoke.add_argument("--real", action="store_true", help="call real KPS with settings from the environment")
    invoke.add_argument("--env-file", type=Path, help="NAME=VALUE lines: the function's environment variables")
    serve = commands.add_parser("serve", help="a local API Gateway in front of the handler")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--auth", default="agency-keys", choices=demo.AUTH_MODES)
    serve.add_argument("--timeout", type=float, default=120.0, help="the function's timeout, seconds")
    serve.add_argument("--env-file", type=Path, help="NAME=VALUE lines: the function's environment variables")
    serve.add_argument("--token", action="append", default=[], help="accept only this X-Auth-Token (repeatable)")
    event = commands.add_parser("event", help="print an event of a trigger's real shape")
    event.add_argument("trigger", choices=sorted(GENERATORS))
    event.add_argument("--project-id")
    event.add_argument("--region")
    event.add_argument("--dry-run", action="store_true")
    event.add_argument("--targets", help="all, or PROJECT[:REGION],...")
    commands.add_parser("settings-table", help="print the settings table of docs/settings.md")
    emulator = commands.add_parser("emulator", help="run the emulator alone")
    emulator.add_argument("--port", type=int, default=8080)
    emulator.add_argument("--seed", action="append", default=[], metavar="PROJECT_ID[:COUNT]")
    emulator.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = read_env_file(args.env_file) if getattr(args, "env_file", None) else {}
    if args.command == "settings-table":
        print(settings_table())
        return 0
    if args.command == "emulator":
        _emulator(args.port, args.seed, args.latency)
        return 0
    if args.command == "event":
        from .events import generate, request_fields

        try:
            fields = request_fields(args.project_id, args.region, args.dry_run, args.targets)
            print(json.dumps(generate(args.trigger, fields), indent=2))
        except ValueError as exc:
            sys.exit(f"event {args.trigger}: {exc}")
        return 0
    if args.command == "serve":
        _serve(args.port, args.auth, args.timeout, env, args.token)
        return 0
    if args.command == "run":
        ok = _against_emulator(read_event_file(str(ROOT / "events" / "timer.json")), "agency-keys", 5, 30.0, env)
    else:
        event = read_event_file(args.event)
        ok = (
            _against_real_kps(event, args.timeout, env)
            if args.real
            else _against_emulator(event, args.auth, args.seed, args.timeout, env)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
