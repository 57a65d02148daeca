"""Local tools (development only, never deployed).

python -m devtools run                          the main job: timer event against the emulator (it deletes)
python -m devtools invoke --event events/apig.json [--auth agency-keys|agency-token|aksk|token]
                                                               a dry run; --clean deletes
python -m devtools invoke --event - < event.json                 the event from standard input
python -m devtools invoke --event events/timer.json --real     real KPS, settings from the environment
python -m devtools serve --port 3000                           a local API Gateway (make serve), reloading
python -m devtools event timer --project-id 4b1f... --dry-run  an event of that trigger's shape

run, invoke and serve render log lines for a terminal and end each invocation with one result line;
--json keeps the function's raw JSON lines (as when the output is not a terminal), --quiet the result line only.
python -m devtools emulator --port 8080 --seed 4b1f...:5       a standalone emulator
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import demo
from .context import FakeContext
from .kps_emulator import KpsEmulator
from .output import JSON, PRETTY, QUIET, LineRenderer, for_reading, mode, pretty_json, result_line
from .table import target_table, wants_table

ROOT = Path(__file__).resolve().parent.parent
DRY_RUN_HINT = "a dry run by default: make invoke CLEAN=1 (--clean) deletes"


def _handler(code_dir: Path = ROOT) -> Any:
    sys.path.insert(0, str(code_dir))
    from handler import handler

    return handler


def _answer(result: Any) -> tuple[Any, int | None]:
    """The payload and, for an API Gateway response, its status: the body decoded."""
    if isinstance(result, dict) and "statusCode" in result:
        body = result.get("body") or ""
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            return json.loads(body), result.get("statusCode")
        except ValueError:
            return body, result.get("statusCode")
    return result, None


def _invoke(event: Any, context: FakeContext, how: str) -> Any:
    """Runs the handler with its log lines rendered for ``how``; prints its answer (not when quiet). With --json
    stdout carries only JSON lines (the function's, then the payload as one line); the rest goes to stderr."""
    handler = _handler()
    out = sys.stdout
    sys.stdout = LineRenderer(out, how)  # type: ignore[assignment]
    try:
        result = handler(event, context)
    finally:
        sys.stdout = out
    payload, status = _answer(result)
    if how == JSON:
        print(json.dumps(result))
    elif how == PRETTY:
        print(f"--- answer: HTTP {status} ---" if status is not None else "--- payload ---")
        print(pretty_json(for_reading(payload)))
    if how != QUIET and isinstance(payload, dict) and wants_table(payload):
        print("--- targets ---", file=_aside(how))
        print(target_table(payload), file=_aside(how))
    return result


def _aside(how: str) -> Any:
    """Where what is not the function's output goes: stderr with --json, so that stdout stays JSON lines."""
    return sys.stderr if how == JSON else sys.stdout


def _finish(result: Any, how: str, hint: str) -> bool:
    """The one result line that ends every invocation; whether it succeeded."""
    payload, status = _answer(result)
    dry = isinstance(payload, dict) and payload.get("dry_run") and payload.get("ok")
    print(result_line(payload, status, hint if dry else ""))
    return isinstance(payload, dict) and bool(payload.get("ok"))


def _drop_shell_credentials() -> None:
    """An emulator run signs with the demo's credentials: the shell's (exported for make expose or --real) would
    be read by the function before them and refused by the emulator. They are dropped, in one line."""
    sys.path.insert(0, str(ROOT))
    from function.settings import SETTINGS

    dropped = [s.name for s in SETTINGS if s.secret and os.environ.pop(s.name, None) is not None]
    if dropped:
        print(f"ignored the shell's {', '.join(dropped)}: the emulator takes the demo credentials", file=sys.stderr)


def _against_emulator(
    event: Any, auth: str, seed: int, timeout: float, env: dict[str, str], *, how: str, hint: str
) -> bool:
    _drop_shell_credentials()
    with KpsEmulator() as kps:
        demo.seed(kps, auth, seed)
        if how != QUIET:
            print(
                f"KPS and IAM emulator on {kps.url}: project {demo.DEMO_PROJECT} with {seed} failed tasks, "
                f"{len(demo.IAM_PROJECTS)} IAM projects; auth {auth}",
                file=_aside(how),
            )
        context = demo.demo_context({**demo.emulator_settings(kps), **env}, auth, timeout)
        result = _invoke(event, context, how)
        if how != QUIET:
            aside = _aside(how)
            print("--- emulator request log ---", file=aside)
            for entry in kps.requests:
                print(f"{entry.method} {entry.path} -> {entry.status} (auth: {entry.auth})", file=aside)
            left = len(kps.failed_tasks(demo.DEMO_PROJECT))
            print(f"failed tasks left in {demo.DEMO_PROJECT}: {left}", file=aside, flush=True)
    return _finish(result, how, hint)


def _against_real_kps(event: Any, timeout: float, env: dict[str, str], *, how: str, hint: str) -> bool:
    settings = {**os.environ, **env}
    if not (settings.get("KPS_REGION") or settings.get("KPS_ENDPOINT")) or not (
        settings.get("HUAWEICLOUD_SDK_AK") or settings.get("KPS_AUTH_TOKEN")
    ):
        sys.exit("--real needs KPS_REGION and HUAWEICLOUD_SDK_AK/SK or KPS_AUTH_TOKEN in the environment")
    return _finish(_invoke(event, FakeContext(user_data=env, timeout_seconds=timeout), how), how, hint)


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


def _serve(args: argparse.Namespace, env: dict[str, str], how: str) -> int:
    """The watcher: the port first (busy: one line, nothing started), then the emulator, then the workers."""
    from .reload import WorkerDied, watch, worker_command, worker_env
    from .serve import PATH, PortBusy, listen

    if not 0 <= args.port <= 65535:
        print(f"make serve: port {args.port} is out of range: choose one from 1024 to 65535", file=sys.stderr)
        return 1
    try:
        sock = listen(args.port)
    except PortBusy as busy:
        print(f"make serve: {busy}", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{PATH}"
    kps = None
    settings = dict(env)
    if not (os.environ.get("KPS_ENDPOINT") or env.get("KPS_ENDPOINT")):
        _drop_shell_credentials()
        kps = KpsEmulator().start()
        demo.seed(kps, args.auth)
        settings = {**demo.emulator_settings(kps), **env}
        projects = len(demo.IAM_PROJECTS)
        print(f"KPS and IAM emulator on {kps.url}: demo project {demo.DEMO_PROJECT}, {projects} IAM projects")
    accepted = "the --token values" if args.token else "any X-Auth-Token or Authorization"
    print(f"Local API Gateway on {url} (IAM auth: {accepted}; reloads on changes; Ctrl-C stops it)")
    print(
        f"  curl -s -X POST -H 'X-Auth-Token: local' -H 'Content-Type: application/json' "
        f'-d \'{{"project_id": "{demo.DEMO_PROJECT}"}}\' {url}',
        flush=True,
    )
    config = {
        "fd": sock.fileno(),
        "auth": args.auth,
        "timeout": args.timeout,
        "settings": settings,
        "demo": kps is not None,
        "tokens": args.token,
        "how": how,
        "code_dir": str(args.code_dir),
        "watcher": os.getpid(),
    }
    _stop_on_signals()
    try:
        if args.no_reload:
            _serve_worker(config)
        else:
            say = lambda line: print(line, flush=True)  # noqa: E731
            watch(worker_command(), worker_env(json.dumps(config)), sock.fileno(), args.code_dir, say)
    except KeyboardInterrupt:
        pass
    except WorkerDied as died:
        print(died, file=sys.stderr)
        return 1
    finally:
        sock.close()
        if kps is not None:
            kps.stop()
        print("stopped", flush=True)
    return 0


def _broken_function(error: BaseException) -> Any:
    def handler(event: Any, context: Any) -> Any:
        raise RuntimeError(f"the function did not load: {type(error).__name__}")

    return handler


def _serve_worker(config: dict[str, Any]) -> None:
    """One gateway on the watcher's socket, with the function as it is on disk now."""
    import socket

    from .reload import ACCEPTING
    from .serve import Gateway, LocalServer

    settings, auth, timeout = config["settings"], config["auth"], config["timeout"]

    def context() -> FakeContext:
        if config["demo"]:
            return demo.demo_context(settings, auth, timeout)
        return FakeContext(user_data=settings, timeout_seconds=timeout)

    stopped: list[int] = []
    if config.get("watcher"):  # a reload worker: a stop before it serves is honoured after setup, no traceback
        signal.signal(signal.SIGINT, lambda *_: stopped.append(1))
        signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    try:
        handler = _handler(Path(config["code_dir"]))
    except Exception as exc:  # noqa: BLE001 - an edit that does not import: say so, answer 502 until the next one
        traceback.print_exc()
        handler = _broken_function(exc)
    out = sys.stdout
    if config["how"] != JSON:
        sys.stdout = LineRenderer(out, config["how"])  # type: ignore[assignment]
    tokens = frozenset(config["tokens"]) if config["tokens"] else None
    sock = socket.socket(fileno=os.dup(config["fd"]))
    server = LocalServer(Gateway(handler, context, tokens), out=out, sock=sock)
    if stopped:  # never served: nothing to drain (the process's exit closes what it holds)
        sys.stdout = out
        return
    _stop_on_signals()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # draining: a second Ctrl-C is no traceback
        accepting = os.environ.pop(ACCEPTING, "")
        if accepting:
            os.close(int(accepting))  # the watcher may say the reload: no request reaches this worker now
        server.close()
        sys.stdout = out


def settings_table() -> str:
    """docs/settings.md's table, generated from the one list the code reads."""
    sys.path.insert(0, str(ROOT))
    from function.settings import SETTINGS

    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        secret = " **Secret**: make it an encrypted variable." if s.secret else ""
        rows.append(f"| `{s.name}` | {f'`{s.default}`' if s.default else '—'} | {s.meaning}{secret} |")
    return "\n".join(rows)


def _output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="the function's raw JSON lines (also when not a terminal)")
    command.add_argument("--quiet", action="store_true", help="the result line only")


def _parser() -> argparse.ArgumentParser:
    from .events import GENERATORS

    parser = argparse.ArgumentParser(
        prog="python -m devtools", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _output_options(commands.add_parser("run", help="invoke events/timer.json against a seeded emulator"))
    invoke = commands.add_parser(
        "invoke", help="invoke any event file (- for standard input); a dry run unless --clean"
    )
    invoke.add_argument("--event", required=True, help="an event file, or - for standard input")
    invoke.add_argument("--auth", default="agency-keys", choices=demo.AUTH_MODES)
    invoke.add_argument("--seed", type=int, default=5, help="failed tasks to seed in the demo project")
    invoke.add_argument("--timeout", type=float, default=30.0, help="the invocation's time budget, seconds")
    invoke.add_argument("--real", action="store_true", help="call real KPS with settings from the environment")
    invoke.add_argument("--env-file", type=Path, help="NAME=VALUE lines: the function's environment variables")
    invoke.add_argument("--clean", action="store_true", help="delete for real (without it: KPS_DRY_RUN=true)")
    _output_options(invoke)
    serve = commands.add_parser("serve", help="a local API Gateway in front of the handler, reloading on changes")
    serve.add_argument("--port", type=int, default=3000, help="0 to 65535 (0: any free port)")
    serve.add_argument("--auth", default="agency-keys", choices=demo.AUTH_MODES)
    serve.add_argument("--timeout", type=float, default=120.0, help="the function's timeout, seconds")
    serve.add_argument("--env-file", type=Path, help="NAME=VALUE lines: the function's environment variables")
    serve.add_argument("--token", action="append", default=[], help="accept only this X-Auth-Token (repeatable)")
    serve.add_argument("--no-reload", action="store_true", help="one process; code changes need a restart")
    serve.add_argument("--code-dir", type=Path, default=ROOT, help="where handler.py and function/ are (watched)")
    _output_options(serve)
    commands.add_parser("serve-worker", help=argparse.SUPPRESS)
    event = commands.add_parser("event", help="print an event of a trigger's real shape")
    event.add_argument("trigger", choices=sorted(GENERATORS))
    event.add_argument("--project-id")
    event.add_argument("--region")
    event.add_argument("--dry-run", action="store_true")
    event.add_argument("--targets", help="all, or PROJECT[:REGION],...")
    event.add_argument("--method", help="apig: the HTTP method (default POST; GET carries the fields as a query)")
    event.add_argument("--query", action="append", default=[], metavar="FIELD=VALUE", help="apig: a query field")
    event.add_argument("--body", help="the request fields as JSON text (apig: the body)")
    event.add_argument("--select", metavar="JSON", help="the select field: which failed tasks (a JSON object)")
    commands.add_parser("settings-table", help="print the settings table of docs/settings.md")
    emulator = commands.add_parser("emulator", help="run the emulator alone")
    emulator.add_argument("--port", type=int, default=8080)
    emulator.add_argument("--seed", action="append", default=[], metavar="PROJECT_ID[:COUNT]")
    emulator.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    return parser


def _event(args: argparse.Namespace) -> int:
    from .events import REFUSED, EventError, generate, request_fields

    try:
        fields = request_fields(
            args.project_id, args.region, args.dry_run, args.targets, body=args.body, select=args.select
        )
        print(json.dumps(generate(args.trigger, fields, method=args.method, query=args.query), indent=2))
    except EventError as exc:
        sys.exit(f"event {args.trigger}: {exc}")
    if args.trigger in REFUSED:
        print(f"event {args.trigger}: the function refuses {args.trigger} events (InvalidEvent)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = read_env_file(args.env_file) if getattr(args, "env_file", None) else {}
    how = mode(getattr(args, "json", False), getattr(args, "quiet", False), sys.stdout)
    if args.command == "settings-table":
        print(settings_table())
        return 0
    if args.command == "emulator":
        _emulator(args.port, args.seed, args.latency)
        return 0
    if args.command == "event":
        return _event(args)
    if args.command == "serve":
        return _serve(args, env, how)
    if args.command == "serve-worker":
        from .reload import exit_with_watcher

        config = json.loads(os.environ.pop("DEVTOOLS_SERVE_WORKER"))
        exit_with_watcher(config["watcher"])
        _serve_worker(config)
        return 0
    return _run_or_invoke(args, env, how)


def _run_or_invoke(args: argparse.Namespace, env: dict[str, str], how: str) -> int:
    """``run`` deletes the demo project's tasks; ``invoke`` is a dry run unless ``--clean``."""
    if args.command == "run":
        event = read_event_file(str(ROOT / "events" / "timer.json"))
        return 0 if _against_emulator(event, "agency-keys", 5, 30.0, env, how=how, hint="") else 1
    event = read_event_file(args.event)
    if not args.clean:
        env = {**env, "KPS_DRY_RUN": "true"}
    hint = "" if args.clean else DRY_RUN_HINT
    if args.real:
        ok = _against_real_kps(event, args.timeout, env, how=how, hint=hint)
    else:
        ok = _against_emulator(event, args.auth, args.seed, args.timeout, env, how=how, hint=hint)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
