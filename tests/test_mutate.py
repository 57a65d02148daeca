"""`make mutate` itself: its mutants are the ones it says, a weak test lets one survive, the tree is left as it was."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT

from devtools import mutate

BARE = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the toy needs no plugins: ~0.5 s a run instead of ~3 s

TOY = '''"""A toy module."""

from __future__ import annotations


def grade(score: int) -> str:
    if score >= 50:
        return "pass"
    return "fail"
'''

# Checks far from the boundary, never at it: `>=` -> `>` and `50` -> `51` survive, the rest die.
TOY_TEST = """from function.toy import grade


def test_grade():
    assert grade(100) == "pass"
    assert grade(0) == "fail"
"""


def test_mutants_are_spliced_into_the_source_and_compile():
    mutants = mutate.mutants_of("toy", TOY)
    described = {(m.line, m.description) for m in mutants}
    assert described == {
        (7, "condition negated"),
        (7, ">= -> >"),
        (7, "50 -> 51"),
        (7, "50 -> 0"),
        (8, "return value -> None"),
        (9, "return value -> None"),
    }, "docstrings and annotations are not mutated"
    for mutant in mutants:
        changed = mutate.apply(TOY, mutant)
        compile(changed, "toy.py", "exec")
        assert changed.splitlines()[:6] == TOY.splitlines()[:6], "only the mutated line changes"
    flipped = next(m for m in mutants if m.description == ">= -> >")
    assert "    if (score > 50):\n" in mutate.apply(TOY, flipped)


def test_a_weak_test_lets_mutants_survive_and_the_tree_is_left_untouched(tmp_path: Path):
    (tmp_path / "function").mkdir()
    (tmp_path / "function" / "__init__.py").write_text("")
    (tmp_path / "function" / "toy.py").write_text(TOY)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_toy.py").write_text(TOY_TEST)
    lines: list[str] = []

    results = mutate.mutate(
        tmp_path, ["toy"], {"toy": ("test_toy",)}, max_mutants=0, jobs=2, timeout=60, report=lines.append, env=BARE
    )

    outcomes = results["toy"]
    assert isinstance(outcomes, list)
    survived = sorted(o.mutant.description for o in outcomes if o.status == "survived")
    assert survived == ["50 -> 51", ">= -> >"]
    assert all(o.status == "killed" for o in outcomes if o.mutant.description not in survived)
    assert "toy: 6 mutants, 4 killed, 2 survived, 0 timeout" in lines
    assert (tmp_path / "function" / "toy.py").read_text() == TOY, "mutants live in copies, never in the tree"


def test_a_module_whose_tests_fail_unmutated_is_not_counted(tmp_path: Path):
    (tmp_path / "function").mkdir()
    (tmp_path / "function" / "toy.py").write_text(TOY)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_toy.py").write_text("def test_broken():\n    assert False\n")

    results = mutate.mutate(
        tmp_path, ["toy"], {"toy": ("test_toy",)}, max_mutants=2, jobs=1, report=lambda _: None, env=BARE
    )

    assert results == {"toy": "unmutated tests failed"}, "a red suite would otherwise kill every mutant"


def test_every_module_of_function_has_its_tests_mapped():
    modules = {p.stem for p in (ROOT / "function").glob("*.py")}
    assert modules <= set(mutate.TESTS_FOR), "a new module needs its line in devtools/mutate.py's TESTS_FOR"
    for tests in mutate.TESTS_FOR.values():
        for name in tests:
            assert (ROOT / "tests" / f"{name}.py").is_file(), name
