"""The docs hold together: every relative link resolves, and every setting is documented where the README says."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from conftest import PROJECT, ROOT

from devtools.__main__ import settings_table
from function.settings import SETTINGS

# Pages other branches create; the lead empties this list when they are merged. A listed page may be missing;
# a listed page that exists is checked like any other (and the test below asks for it to leave the list).
PENDING_PAGES: set[str] = set()

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
# A link or an image; its text may wrap onto the next line (the pages wrap at 120 columns), never across a paragraph.
_LINK = re.compile(r"!?\[(?:[^\]\n]|\n(?!\s*\n))*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced blocks and inline code, where a bracket is no link."""
    return _CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (``-`` and ``_`` kept), spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor, with GitHub's ``-1``, ``-2`` for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    return [t for t in _LINK.findall(_prose(page.read_text(encoding="utf-8"))) if not re.match(r"[a-z]+:", t)]


def test_the_slugs_are_githubs():
    assert slug("The record: `tasks deleted` lines") == "the-record-tasks-deleted-lines"
    assert slug("A count is exact or it is `null`") == "a-count-is-exact-or-it-is-null"
    assert slug("`make serve`") == "make-serve"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        name = file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else str(file)
        if not file.exists():
            if name not in PENDING_PAGES:
                broken.append(f"{target}: no such file")
            continue
        if anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor}")
    assert broken == []


def test_the_link_checker_sees_a_link_whose_text_wraps_and_an_image(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        'See the [local\ndevelopment](docs/no-such-page.md) page, ![a chart](docs/chart.png "title").\n\n'
        "[not\n\na link](nowhere.md)\n",
        encoding="utf-8",
    )
    assert links(page) == ["docs/no-such-page.md", "docs/chart.png"]


# A repository file named in backticks: a path under one of the project's folders, or a file at the top.
_REPO_DIRS = ("api", "bench", "deploy", "devtools", "docs", "events", "function", "tests")
_NAMED = re.compile(
    rf"`((?:(?:{'|'.join(_REPO_DIRS)})/[A-Za-z0-9_./-]+)|[A-Za-z0-9_-]+(?:[.-][A-Za-z0-9_]+)*\.(?:txt|in|toml|yml))`"
)
_MADE = ("bench/results.json",)  # written by a command the page names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_file_the_docs_name_exists(page: Path):
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    named = {name.split("#")[0].rstrip("/.") for name in _NAMED.findall(text)}
    missing = sorted(n for n in named if n not in _MADE and "*" not in n and "{" not in n and not (ROOT / n).exists())
    assert missing == []


def test_pending_pages_are_only_those_not_written_yet():
    assert [p for p in sorted(PENDING_PAGES) if (ROOT / p).exists()] == []


def test_the_links_are_found():
    """The checker sees links (a regex that matched nothing would pass every page)."""
    readme = links(ROOT / "README.md")
    assert "docs/settings.md" in readme and "docs/operations.md#sweep" in readme


def test_the_settings_page_holds_the_table_the_code_reads():
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert settings_table() in page
    assert [s.name for s in SETTINGS if f"| `{s.name}` |" not in page] == []


def test_the_readme_names_only_real_settings():
    names = {s.name for s in SETTINGS}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.M)) <= names


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def test_the_readme_says_the_fallback_order_the_code_takes(invoke, settings):
    """README, Schedule it nightly, names the settings an empty timer falls back to in the order the code takes them
    (targets.py: KPS_TARGETS before KPS_PROJECT_ID)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = readme.split("leave it empty to clean", 1)[1].split(":\n", 1)[0]
    said = [name for name in re.findall(r"`(KPS_[A-Z_]+)`", sentence) if name in ("KPS_PROJECT_ID", "KPS_TARGETS")]
    other = "0" * 31 + "a"
    settings.update({"KPS_PROJECT_ID": PROJECT, "KPS_TARGETS": f"cn-north-4:{other}", "KPS_DRY_RUN": "true"})
    timer = {
        "version": "v1.0",
        "time": "2026-11-29T03:00:00+08:00",
        "trigger_type": "TIMER",
        "trigger_name": "nightly",
        "user_event": "",
    }
    [result] = invoke(timer).result["results"]
    taken = "KPS_TARGETS" if result["project_id"] == other else "KPS_PROJECT_ID"
    assert said[0] == taken, f"the README says {said[0]} first; the function took {taken}"
