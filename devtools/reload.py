"""`make serve` reloads: a watcher holds the port and the emulator, and runs the gateway in a fresh interpreter.

An edit to ``handler.py`` or anything under ``function/`` restarts the worker process, so every module is
imported anew (``importlib.reload`` would keep stale references between modules). The listening socket is the
watcher's, passed to each worker: requests that arrive during a restart wait in its backlog, none is refused,
and the emulator (with what earlier requests deleted) lives on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable

POLL_SECONDS = 0.3


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


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def watch(command: Sequence[str], env: Mapping[str, str], fd: int, root: Path, say: Callable[[str], None]) -> None:
    """Runs ``command`` with ``fd`` inherited, again after each change under ``root``, until Ctrl-C."""

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(command), env=dict(env), pass_fds=(fd,))

    child, seen = start(), snapshot(root)
    try:
        while True:
            time.sleep(POLL_SECONDS)
            now = snapshot(root)
            what = changed(seen, now)
            if what is not None:
                _stop(child)  # first: once the line is out, no request reaches the old code
                say(f"reloading: {what} changed")
                child, seen = start(), now
    finally:
        _stop(child)


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
