"""The user-facing docs (README.md, docs/*.md, reports/README.md) point only at what a checkout has.

No issue-tracker references ("issue 14", "(issue 18)", "#16", "issue16-..."): a reader of the
repository has no tracker to look them up in. No links or repository paths to files that are not
in the repository: every relative markdown link, every path under a top-level folder of the
repository (``docs/<page>``, ``reports/<folder>/``, ``hera_router/<module>``, ``ops/...``) and every ``*.md``
file name must name something that exists. docs/research/ (investigation notes) is not checked.
The two indexes, docs/README.md and reports/README.md, list every page and every report folder.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "reports" / "README.md"]

# Folders whose paths the pages name as repository paths.
TOP_DIRS = ("docs", "reports", "hera_router", "tests", "benchmarks", "ops", "docker", "examples", "migrations")

# Paths that may be named although they are not in the checkout; keep this short and explicit.
ALLOWED_MISSING = (
    "reports/real-edge/",  # the real-edge-model report, being recorded (`hera-router eval real-edge` writes it)
    "docker/.env",  # the user's copy of docker/.env.example
    "benchmarks/results/continual.json",  # written by benchmarks/bench_continual.py, not recorded yet
)
# Report folders that reports/README.md may name before they are recorded.
REPORTS_BEING_RECORDED = ("real-edge",)

ISSUE_REF = re.compile(r"\bissues?\s*#?\s*\d+|\bissue\d+|(?<![\w&/#])#\d+\b", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)\s]+)\)")
FULL_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"(?<![\w./<-])((?:" + "|".join(TOP_DIRS) + r")/[\w./*-]*)")
MD_NAME = re.compile(r"(?<![\w/.-])([\w.-]+\.md)\b")


@cache
def markdown_names() -> frozenset[str]:
    """The names of the checkout's markdown files (hidden folders such as .venv and .git skipped)."""
    names: set[str] = set()
    for _root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
        names.update(f for f in files if f.endswith(".md"))
    return frozenset(names)


def exists(path: str) -> bool:
    """A repository path (file, folder or glob) that names something in the checkout."""
    path = path.rstrip(".,;:").split("#", maxsplit=1)[0]
    if path.startswith(ALLOWED_MISSING) or not path:
        return True
    if any(ch in path for ch in "*?["):
        return any(True for _ in REPO.glob(path))
    return (REPO / path).exists()


def link_resolves(page: Path, target: str) -> bool:
    resolved = (page.parent / target.split("#", maxsplit=1)[0]).resolve()
    return resolved.is_relative_to(REPO) and exists(str(resolved.relative_to(REPO)))


def link_stub(page: Path, match: re.Match[str]) -> str:
    text, target = match.group(1), match.group(2)
    if not link_resolves(page, target):
        return match.group(0)
    return "[LINK](LINK)" if text.strip("`") == target else f"[{text}](LINK)"


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def test_pages_found() -> None:
    assert REPO / "docs" / "README.md" in PAGES
    assert len(PAGES) >= 5


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_issue_references(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    # A link to a file that exists is fine, and so is its text when the text is that file's name.
    text = FULL_LINK.sub(lambda m: link_stub(page, m), text)
    # A path that exists may carry an issue number in its name (docs/research/issue16-..., the
    # graphs report folder): it is a file name the code uses, not a reference to the tracker.
    text = REPO_PATH.sub(lambda m: "PATH" if exists(m.group(1)) else m.group(1), text)
    found = [f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}" for m in ISSUE_REF.finditer(text)]
    assert not found, f"{page_id(page)} refers to issues: {found}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1).split("#", maxsplit=1)[0]
        if not target or re.match(r"[a-z]+://|mailto:", target):
            continue
        resolved = (page.parent / target).resolve()
        if not resolved.is_relative_to(REPO):
            broken.append(f"{target} (outside the repository)")
        elif not exists(str(resolved.relative_to(REPO))):
            broken.append(target)
    assert not broken, f"{page_id(page)} links to missing files: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_repository_paths_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = sorted({m.group(1) for m in REPO_PATH.finditer(text) if not exists(m.group(1))})
    outside = sorted(set(re.findall(r"\.\./[\w./-]+", text)) - {m.group(1) for m in LINK.finditer(text)})
    assert not missing, f"{page_id(page)} names paths that are not in the repository: {missing}"
    assert not outside, f"{page_id(page)} names paths outside the repository: {outside}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_markdown_files_named_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = sorted({m.group(1) for m in MD_NAME.finditer(text)} - markdown_names())
    assert not missing, f"{page_id(page)} names markdown files the repository does not have: {missing}"


def test_checker_catches_what_it_is_for() -> None:
    assert ISSUE_REF.search("the ladder (issue 18)")
    assert ISSUE_REF.search("see #16 for the repro")
    assert ISSUE_REF.search("the issue16-repro notes")
    assert not ISSUE_REF.search("step 3 of 8, colour #12ab34, [link](#section-2)")
    assert not exists("docs/no-such-page.md")
    assert not exists("reports/matrix-nonexistent/")
    assert exists("reports/real-edge/README.md")
    assert exists("hera_router/config.py")


def linked(page: Path) -> set[Path]:
    """What the page's relative links point at, resolved."""
    text = page.read_text(encoding="utf-8")
    return {(page.parent / m.group(1).split("#", maxsplit=1)[0]).resolve() for m in LINK.finditer(text)}


def test_docs_index_lists_every_page() -> None:
    docs = REPO / "docs"
    index = linked(docs / "README.md")
    pages = [p for p in docs.rglob("*.md") if p.name != "README.md"]
    folders = [p for p in (docs / "research").iterdir() if p.is_dir()]
    missing = [str(p.relative_to(REPO)) for p in [*pages, *folders] if p.resolve() not in index]
    assert not missing, f"docs/README.md does not list: {missing}"


def test_reports_index_names_every_folder() -> None:
    reports = REPO / "reports"
    text = (reports / "README.md").read_text(encoding="utf-8")
    index = linked(reports / "README.md")
    folders = sorted(p for p in reports.iterdir() if p.is_dir())
    missing = [p.name for p in folders if p.resolve() not in index]
    assert not missing, f"reports/README.md does not list: {missing}"
    for name in REPORTS_BEING_RECORDED:
        assert f"`{name}/`" in text or (reports / name).resolve() in index
