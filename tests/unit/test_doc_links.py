"""Every relative link in the README and docs/ leads somewhere: the file exists, and an
anchor (`page.md#heading`, `#heading`) names a heading of that page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from stratum.testing.docs import anchors, links
from tests import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_the_docs_have_pages_to_check() -> None:
    assert len(PAGES) > 10
    assert (REPO / "docs" / "index.md") in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for line, target in links(page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith(("mailto:", "<")):
            continue
        path, _, anchor = unquote(target).partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"line {line}: {target}: no such file {dest.relative_to(REPO)}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            broken.append(f"line {line}: {target}: no heading #{anchor} in {dest.name}")
    assert not broken, "\n".join(broken)
