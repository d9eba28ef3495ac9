"""Links from the code and the README to `docs/` pages lead to a page and a section that exist."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

LINK = re.compile(r"docs/([\w./-]+\.md)(?:#([\w-]+))?")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
SOURCES = ("panoptic", "services", "migrations")


def anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation gone, dashes."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def linking_files() -> list[Path]:
    """The README and every Python file outside the generated code."""
    files = [ROOT / "README.md"]
    for source in SOURCES:
        files.extend(p for p in (ROOT / source).rglob("*.py") if "panoptic/v1/" not in p.as_posix())
    return files


def test_every_docs_link_names_an_existing_page_and_section() -> None:
    """Each `docs/<page>.md#<section>` named in code or README resolves to a heading there."""
    broken: list[str] = []
    linked: set[str] = set()
    for path in linking_files():
        for page, section in LINK.findall(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(ROOT)}: docs/{page}#{section}"
            target = ROOT / "docs" / page
            linked.add(page)
            if not target.is_file():
                broken.append(f"{where} (no such page)")
            elif section and section not in {
                anchor(h) for h in HEADING.findall(target.read_text(encoding="utf-8"))
            }:
                broken.append(f"{where} (no such section)")
    assert "performance.md" in linked
    assert not broken, broken


def test_anchor_follows_github() -> None:
    """Headings become the fragments GitHub links them by."""
    assert anchor("Claims by id: a power of two of parameters") == (
        "claims-by-id-a-power-of-two-of-parameters"
    )
    assert anchor("GetClaim queries in flight") == "getclaim-queries-in-flight"
