"""`make serve` reloads: a watcher holds the port and the emulator, and runs the gateway in a fresh interpreter.

An edit to ``handler.py`` or anything under ``function/`` restarts the worker process, so every module is
imported anew (``importlib.reload`` would keep stale references between modules). The listening socket is the
watcher's, passed to each worker: the new worker starts before the old one is told to stop, and the old one
stops accepting, answers what it has accepted (it joins its request threads) and exits; requests that arrive
meanwhile wait in the backlog, none is dropped. The emulator (with what earlier requests deleted) lives on. A
worker that dies (a crash, kill -9) is said in one line and started again, after a growing pause; after
``MAX_DEATHS`` deaths in a row the watcher gives up with exit status 1 rather than hold a port nobody answers.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable

POLL_SECONDS = 0.3
ACCEPTING = "DEVTOOLS_SERVE_ACCEPTING"  # the worker's end of the pipe it closes when it stops accepting
DRAIN_SECONDS = 130.0  # longer than serve's default function timeout: an accepted request is answered
MAX_DEATHS = 5


class WorkerDied(Exception):
    """The worker died again and again: the watcher stops (exit status 1)."""


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Modification time and size of every file the function is made of."""
    files = [root / "handler.py", *sorted((root / "function").rglob("*.py"))]
    seen = {}
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        seen[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return seen


def changed(before: Mapping[str, object], after: Mapping[str, object]) -> str | None:
    """The first file added, removed or modified, or None."""
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            return name
    return None


def _stop(child: subprocess.Popen[bytes], drain: float = DRAIN_SECONDS) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=drain)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def watch(command: Sequence[str], env: Mapping[str, str], fd: int, root: Path, say: Callable[[str], None]) -> None:
    """Runs ``command`` with ``fd`` inherited, again after each change under ``root``, until Ctrl-C."""

    accepting: dict[int, int] = {}  # worker pid -> read end of a pipe it closes when it stops accepting

    def start() -> subprocess.Popen[bytes]:
        read, write = os.pipe()
        try:
            child = subprocess.Popen(list(command), env={**env, ACCEPTING: str(write)}, pass_fds=(fd, write))
        finally:
            os.close(write)
        accepting[child.pid] = read
        return child

    def stop_accepting(old: subprocess.Popen[bytes]) -> None:
        """SIGINT, then wait until the old worker accepts no more (EOF on its pipe): it still answers."""
        read = accepting.pop(old.pid)
        old.send_signal(signal.SIGINT)
        select.select([read], [], [], 5)
        os.close(read)

    child, seen, deaths, born = start(), snapshot(root), 0, time.monotonic()
    draining: list[threading.Thread] = []
    try:
        while True:
            time.sleep(POLL_SECONDS)
            if child.poll() is not None:
                os.close(accepting.pop(child.pid))
                deaths = deaths + 1 if time.monotonic() - born < 30 else 1  # in a row: each lived under 30 s
                if deaths >= MAX_DEATHS:
                    raise WorkerDied(f"make serve: the worker died {deaths} times in a row (exit {child.returncode})")
                pause = min(0.25 * 2**deaths, 4.0)
                say(f"worker died (exit {child.returncode}): starting another in {pause:g} s")
                time.sleep(pause)
                child, born = start(), time.monotonic()
                continue
            now = snapshot(root)
            what = changed(seen, now)
            if what is not None:
                old, child, seen, born = child, start(), now, time.monotonic()
                stop_accepting(old)  # first: once the line is out, no request reaches the old code
                say(f"reloading: {what} changed")
                draining.append(threading.Thread(target=_stop, args=(old,), daemon=True))
                draining[-1].start()  # the old worker answers what it accepted, then exits
    finally:
        _stop(child, 5)
        for thread in draining:
            thread.join(5)


def exit_with_watcher(watcher: int) -> None:
    """In a worker: leave when the watcher is gone (killed outright, it cannot stop us), never orphaned."""

    def poll() -> None:
        while os.getppid() == watcher:
            time.sleep(POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=poll, daemon=True).start()


def worker_command() -> list[str]:
    return [sys.executable, "-m", "devtools", "serve-worker"]


def worker_env(config: str) -> dict[str, str]:
    return {**os.environ, "DEVTOOLS_SERVE_WORKER": config}
