"""The documentation stays short, current and connected: a README that fits on a few screens, a
configuration page generated from the settings, links that lead somewhere, one name for the design."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensorpipe.config.reference import PAGE, REGENERATE, configuration_page

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE_SPAN = re.compile(r"`[^`]*`")
_NOT_IN_REPO = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".sensorpipe", "__pycache__"}
_OLD_DESIGN_NAME = "DESIGN" + ".md"  # spelled apart, so this file does not hold the name it looks for


def _prose(path: Path) -> Iterator[str]:
    """The lines outside fenced code blocks, where links and headings are Markdown."""
    fenced = False
    for line in path.read_text().splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            yield line


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of `path`: lower case, punctuation dropped, `-` for spaces."""
    seen: Counter[str] = Counter()
    anchors = set()
    for line in _prose(path):
        if not line.startswith("#"):
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.lstrip("#").strip())
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def _links(path: Path) -> Iterator[str]:
    for line in _prose(path):
        yield from _LINK.findall(_CODE_SPAN.sub("", line))


def test_the_readme_fits_in_its_budget() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move details to docs/ (at most {README_MAX_LINES})"


def test_the_configuration_page_is_generated_from_the_current_settings() -> None:
    assert (ROOT / PAGE).read_text() == configuration_page() + "\n", f"{PAGE} is out of date: run `{REGENERATE}`"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        file = (page.parent / target).resolve() if target else page
        if not file.exists():
            broken.append(f"{link}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{link}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_design_is_named_by_its_page_in_the_repository_only() -> None:
    def files(directory: Path) -> Iterator[Path]:
        for path in directory.iterdir():
            if path.is_dir() and path.name not in _NOT_IN_REPO and not path.name.endswith(".egg-info"):
                yield from files(path)
            elif path.is_file():
                yield path

    naming = []
    for path in files(ROOT):
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if _OLD_DESIGN_NAME in text:
            naming.append(str(path.relative_to(ROOT)))
    assert not naming, f"{_OLD_DESIGN_NAME} is not in this repository; point at docs/design.md instead: {naming}"
