"""A small mutation pass over function/ (development only, never deployed): do the tests notice a wrong line?

Each mutant changes one spot of one module (an operator, a condition, a constant, a return value, a dropped
call), found with ``ast`` and spliced into the source text so everything else stays byte for byte. The tests
that exercise that module (``TESTS_FOR``) then run in a subprocess with ``-x`` and a timeout: a failure kills
the mutant, a pass lets it survive. All of it happens in copies of the tree in a temporary directory, one per
job, so the worktree is never left mutated, whatever interrupts the run (Ctrl-C included).

python -m devtools.mutate [--module cleaner] [--max-mutants 20] [--seed 9] [--jobs 2] [--timeout 120]
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
# What a copy of the tree leaves out: the environments (the tests run on this interpreter), caches, builds.
SKIP_COPY = {".git", ".venv", ".venv-compat", ".hypothesis", ".pytest_cache", ".ruff_cache", "dist", ".bench"}
SKIP_COPY |= {".test-logs", "__pycache__"}

# The tests that exercise each module, chosen to stay quick: the slow property and fuzzing files
# (test_hostile_events, test_schemathesis) and the packaging ones run in `make test`, not per mutant.
TESTS_FOR: dict[str, tuple[str, ...]] = {
    "__init__": (),
    "api": ("test_kps_errors", "test_credentials", "test_faults", "test_transport"),
    "budget": ("test_http_methods_and_budget", "test_faults", "test_transport"),
    "cleaner": (
        "test_counts_and_isolation",
        "test_raise_on_failure",
        "test_logging",
        "test_operations",
        "test_http_methods_and_budget",
        "test_kps_errors",
        "test_triggers",
    ),
    "context": ("test_logging", "test_http_methods_and_budget", "test_credentials"),
    "credentials": ("test_credentials", "test_secret_hygiene", "test_emulator", "test_operations"),
    "errors": (
        "test_payload_schema",
        "test_http_methods_and_budget",
        "test_targets_and_settings",
        "test_allow_list",
        "test_credentials",
        "test_operations",
        "test_event_readings",  # json_type and unique_keys, for the reader and select
        "test_selection",
    ),
    "kps_client": (
        "test_counts_and_isolation",
        "test_operations",
        "test_kps_errors",
        "test_record",
        "test_faults",
        "test_selection",
    ),
    "logs": ("test_logging", "test_secret_hygiene"),
    "metrics": ("test_logging", "test_counts_and_isolation", "test_operations"),
    "payload": ("test_payload_schema", "test_http_methods_and_budget", "test_raise_on_failure", "test_kps_errors"),
    "record": ("test_record", "test_operations"),
    "regions": ("test_sweep_regions", "test_operations"),
    "selection": ("test_selection",),
    "settings": ("test_targets_and_settings", "test_allow_list", "test_credentials", "test_template"),
    "sweep": ("test_sweep_regions", "test_operations", "test_allow_list"),
    "targets": (
        "test_targets_and_settings",
        "test_allow_list",
        "test_triggers",
        "test_http_request_rules",
        "test_selection",
    ),
    "transport": ("test_transport", "test_faults"),
    "triggers": ("test_triggers", "test_http_request_rules", "test_event_generator"),
}

FLIP_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


@dataclass(frozen=True)
class Mutant:
    """One change to one spot: the source range it replaces and the text it puts there."""

    module: str
    line: int
    col: int
    end_line: int
    end_col: int
    replacement: str
    description: str

    def where(self) -> str:
        return f"function/{self.module}.py:{self.line}:{self.col + 1}"


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | timeout
    seconds: float


def _expr(node: ast.expr) -> str:
    return f"({ast.unparse(node)})"


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """Nodes a mutation would not reach or could not be spliced into: docstrings, annotations (strings under
    ``from __future__ import annotations``) and f-strings (their inner positions are unreliable before 3.12)."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip(first)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip(node.returns)
        if isinstance(node, ast.arg):
            skip(node.annotation)
        if isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        if isinstance(node, ast.JoinedStr):
            skip(node)
    return skipped


def _at(module: str, node: ast.AST, replacement: str, description: str) -> Mutant:
    return Mutant(
        module,
        node.lineno,
        node.col_offset,
        node.end_lineno or node.lineno,
        node.end_col_offset or node.col_offset,
        replacement,
        description,
    )


def _compare_mutants(module: str, node: ast.Compare) -> list[Mutant]:
    found = []
    for index, op in enumerate(node.ops):
        flipped = FLIP_COMPARE[type(op)]
        changed = copy.deepcopy(node)
        changed.ops[index] = flipped()
        found.append(_at(module, node, _expr(changed), f"{SYMBOL[type(op)]} -> {SYMBOL[flipped]}"))
    return found


def _constant_mutants(module: str, node: ast.Constant) -> list[Mutant]:
    value = node.value
    if isinstance(value, bool):
        return [_at(module, node, repr(not value), f"{value} -> {not value}")]
    if isinstance(value, (int, float)):
        found = [_at(module, node, repr(value + 1), f"{value!r} -> {value + 1!r}")]
        if value != 0:
            found.append(_at(module, node, repr(type(value)(0)), f"{value!r} -> 0"))
        return found
    return []


def mutants_of(module: str, source: str) -> list[Mutant]:
    """Every mutant of one module's source, in source order."""
    tree = ast.parse(source)
    skipped = _skipped_nodes(tree)
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Compare):
            found += _compare_mutants(module, node)
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            changed = copy.deepcopy(node)
            changed.op = other
            names = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            found.append(_at(module, node, _expr(changed), f"{names[0]} -> {names[1]}"))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)) and id(node.test) not in skipped:
            found.append(_at(module, node.test, f"not {_expr(node.test)}", "condition negated"))
        elif isinstance(node, ast.Constant):
            found += _constant_mutants(module, node)
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                found.append(_at(module, node, "return None", "return value -> None"))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            found.append(_at(module, node, "pass", "call removed"))
    return sorted(found, key=lambda m: (m.line, m.col, m.description))


def apply(source: str, mutant: Mutant) -> str:
    """The source with the mutant's range replaced (``ast`` columns count UTF-8 bytes)."""
    lines = source.encode().splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    data = source.encode()
    begin = starts[mutant.line - 1] + mutant.col
    end = starts[mutant.end_line - 1] + mutant.end_col
    return (data[:begin] + mutant.replacement.encode() + data[end:]).decode()


def sample(mutants: list[Mutant], limit: int, seed: int, module: str) -> list[Mutant]:
    """At most ``limit`` mutants, the same ones for the same seed and module whatever else changed."""
    if limit <= 0 or len(mutants) <= limit:
        return mutants
    chosen = random.Random(f"{seed}:{module}").sample(mutants, limit)
    return sorted(chosen, key=lambda m: (m.line, m.col, m.description))


def copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, ignore=lambda _dir, names: [n for n in names if n in SKIP_COPY])


LIVE: set[subprocess.Popen[bytes]] = set()  # test runs under way, killed if the pass is interrupted


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float, env: dict[str, str]) -> str:
    """``passed``, ``failed`` or ``timeout`` for the given test files run in ``tree``; the process group is
    killed on timeout, so servers the tests started go with it."""
    files = [f"tests/{name}.py" for name in tests]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tree), **env}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files]
    with subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    ) as process:
        LIVE.add(process)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout"
        finally:
            _kill(process)
            LIVE.discard(process)
    return "passed" if code == 0 else "failed"


class Trees:
    """One private copy of the tree per job, handed out one at a time."""

    def __init__(self, root: Path, work: Path, jobs: int, env: dict[str, str]) -> None:
        self._env = env
        self._free: queue.Queue[Path] = queue.Queue()
        for index in range(jobs):
            tree = work / f"tree{index}"
            copy_tree(root, tree)
            self._free.put(tree)

    def run(self, mutant: Mutant | None, module: str, tests: tuple[str, ...], timeout: float) -> tuple[str, float]:
        tree = self._free.get()
        path = tree / "function" / f"{module}.py"
        original = path.read_text()
        started = time.monotonic()
        try:
            if mutant is not None:
                path.write_text(apply(original, mutant))
            return run_tests(tree, tests, timeout, self._env), time.monotonic() - started
        finally:
            path.write_text(original)
            self._free.put(tree)


def mutate(
    root: Path,
    modules: list[str],
    tests_for: dict[str, tuple[str, ...]],
    *,
    max_mutants: int = 20,
    seed: int = 9,
    jobs: int = 2,
    timeout: float = 120.0,
    report: Callable[[str], None] = print,
    env: dict[str, str] | None = None,
) -> dict[str, list[Outcome] | str]:
    """Each module's outcomes, or the reason it was not mutated (no tests, or its tests fail unmutated).
    ``env`` adds variables to the test runs' environment."""
    results: dict[str, list[Outcome] | str] = {}
    with tempfile.TemporaryDirectory(prefix="mutate-") as work:
        trees = Trees(root, Path(work), jobs, env or {})
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            plan: dict[str, list[Mutant]] = {}
            baselines = {}
            for module in modules:
                tests = tests_for.get(module, ())
                if not tests:
                    results[module] = "no tests mapped"
                    continue
                source = (root / "function" / f"{module}.py").read_text()
                plan[module] = sample(mutants_of(module, source), max_mutants, seed, module)
                if not plan[module]:  # nothing to mutate (regions.py is a list of names)
                    continue
                baselines[module] = pool.submit(trees.run, None, module, tests, timeout)
            futures = {
                module: [(m, pool.submit(trees.run, m, module, tests_for[module], timeout)) for m in mutants]
                for module, mutants in plan.items()
            }
            for module, pending in futures.items():
                status, _ = baselines[module].result() if pending else ("passed", 0.0)
                if status != "passed":
                    for _, future in pending:
                        future.cancel()
                    results[module] = f"unmutated tests {status}"
                    report(f"{module}: unmutated tests {status}, skipped")
                    continue
                outcomes = []
                for mutant, future in pending:
                    status, seconds = future.result()
                    verdict = {"failed": "killed", "passed": "survived"}.get(status, status)
                    outcomes.append(Outcome(mutant, verdict, seconds))
                    if verdict != "killed":
                        report(f"  {verdict}: {mutant.where()} {mutant.description}")
                results[module] = outcomes
                report(summary_line(module, outcomes))
        except BaseException:  # Ctrl-C included: stop the queue and the runs, then the copies go
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(LIVE):
                _kill(process)
            raise
        pool.shutdown()
    return results


def summary_line(module: str, outcomes: list[Outcome]) -> str:
    count = {s: sum(o.status == s for o in outcomes) for s in ("killed", "survived", "timeout")}
    return (
        f"{module}: {len(outcomes)} mutants, {count['killed']} killed, {count['survived']} survived, "
        f"{count['timeout']} timeout"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.mutate", description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="a module of function/ (repeatable); default: all")
    parser.add_argument("--max-mutants", type=int, default=20, help="per module, sampled by --seed; 0: all")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="at most 2 on a 2-core machine")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant's test run")
    args = parser.parse_args(argv)
    modules = args.module or sorted(p.stem for p in (ROOT / "function").glob("*.py"))
    unknown = [m for m in modules if m not in TESTS_FOR]
    if unknown:
        parser.error(f"no tests mapped for {', '.join(unknown)} (add them to TESTS_FOR)")
    started = time.monotonic()
    results = mutate(
        ROOT,
        modules,
        TESTS_FOR,
        max_mutants=args.max_mutants,
        seed=args.seed,
        jobs=args.jobs,
        timeout=args.timeout,
    )
    print(f"\nseed {args.seed}, up to {args.max_mutants} mutants per module, {args.jobs} jobs")
    for module, outcome in results.items():
        print(summary_line(module, outcome) if isinstance(outcome, list) else f"{module}: {outcome}")
    survivors = [o for outcome in results.values() if isinstance(outcome, list) for o in outcome]
    survivors = [o for o in survivors if o.status != "killed"]
    for o in survivors:
        print(f"  {o.status}: {o.mutant.where()} {o.mutant.description}")
    print(f"wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
