"""The documentation holds together: its links resolve, the README stays short, the tests it cites
exist, and it names every asset, job, schedule, sensor and check of the code location."""

import ast
import itertools
import re
import unicodedata
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt

PROJECT = Path(__file__).resolve().parents[1]
TESTS = PROJECT / "coinmarket_assets_tests"
README = PROJECT / "README.md"
OPERATIONS = PROJECT / "docs" / "operations.md"
GUARANTEES = PROJECT / "docs" / "guarantees.md"
README_LIMIT = 12_000  # characters: a page a newcomer reads in minutes
# `file.py::test_name`, the file under coinmarket_assets_tests/.
CITED_TEST = re.compile(r"`((?:\w+/)*test_\w+\.py)::(test_\w+)`")
CITED_FILE = re.compile(r"`((?:\w+/)*test_\w+\.py)`")
PARSER = MarkdownIt("commonmark").enable("table")


def documents() -> list[Path]:
    return [README, PROJECT / "ARCHITECTURE.md", *sorted((PROJECT / "docs").glob("*.md"))]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation and symbols dropped (but ``-``
    and ``_``), spaces turned into hyphens."""
    kept = (
        c
        for c in heading.lower()
        if c in " -" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc"
    )
    return "".join(kept).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of the headings of a Markdown file, repeats numbered as GitHub numbers them."""
    tokens = PARSER.parse(path.read_text())
    seen: dict[str, int] = {}
    found = set()
    for heading, inline in itertools.pairwise(tokens):
        if heading.type != "heading_open":
            continue
        words = [c for c in inline.children or [] if c.type in ("text", "code_inline")]
        text = "".join(c.content for c in words)
        slug = github_slug(text)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return frozenset(found)


def links(path: Path) -> list[str]:
    """Every link and image target of a Markdown file (code blocks and code spans excluded)."""
    targets = []
    for token in PARSER.parse(path.read_text()):
        for child in token.children or []:
            target = child.attrGet("href") or child.attrGet("src")
            if isinstance(target, str):
                targets.append(target)
    return targets


def broken_link(document: Path, target: str) -> str | None:
    """Why a relative link of ``document`` does not resolve, or None if it does (or is external)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    path = (document.parent / unquote(parts.path)).resolve() if parts.path else document
    if not path.exists():
        return "no such file"
    if parts.fragment and (path.suffix != ".md" or parts.fragment not in anchors(path)):
        return f"no heading #{parts.fragment} in {path.relative_to(PROJECT)}"
    return None


def test_every_relative_link_resolves_to_a_file_and_heading():
    broken = {
        f"{document.relative_to(PROJECT)}: {target}": reason
        for document in documents()
        for target in links(document)
        if (reason := broken_link(document, target)) is not None
    }
    assert broken == {}


def test_anchors_are_the_ones_github_renders():
    assert github_slug("Backfill a month") == "backfill-a-month"
    assert github_slug("Running `dagster` yourself") == "running-dagster-yourself"
    assert github_slug("Guarantees, and the tests that prove them") == (
        "guarantees-and-the-tests-that-prove-them"
    )
    assert github_slug("The `coinmarket` command: dev & co.") == "the-coinmarket-command-dev--co"
    assert broken_link(README, "docs/operations.md#no-such-heading") is not None
    assert broken_link(README, "docs/no-such-file.md") == "no such file"


def test_the_readme_is_under_12000_characters():
    length = len(README.read_text())
    assert length < README_LIMIT, f"README.md has {length} characters; move some to docs/"


@cache
def defined_tests(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def test_every_test_the_docs_cite_exists():
    cited = [
        (document.relative_to(PROJECT), file, name)
        for document in (GUARANTEES, PROJECT / "ARCHITECTURE.md")
        for file, name in CITED_TEST.findall(document.read_text())
    ]
    assert len(cited) > 20, "docs/guarantees.md should cite tests as `file.py::test_name`"
    missing = [
        f"{document}: {file}::{name}"
        for document, file, name in cited
        if not (TESTS / file).is_file() or name not in defined_tests(TESTS / file)
    ]
    files = {file for file in CITED_FILE.findall(GUARANTEES.read_text())}
    missing += [f"docs/guarantees.md: {file}" for file in files if not (TESTS / file).is_file()]
    assert missing == []


def test_the_docs_name_every_definition_of_the_code_location():
    from coinmarket_assets.definitions import defs

    repository = defs.get_repository_def()
    assets = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    operated = {key.name for key in repository.asset_graph.asset_check_keys}
    operated |= {schedule.name for schedule in repository.schedule_defs}
    operated |= {sensor.name for sensor in repository.sensor_defs}
    operated |= {job.name for job in repository.get_all_jobs() if not job.name.startswith("__")}
    readme, operations = README.read_text(), OPERATIONS.read_text()
    unnamed = sorted(f"README.md: {a}" for a in assets if f"`{a}`" not in readme)
    unnamed += sorted(f"docs/operations.md: {n}" for n in operated if f"`{n}`" not in operations)
    assert unnamed == []
