"""No function outside generated code, migration versions and plotting is longer than 60 lines.

A function's length is counted from its `def` line to its last line, so a docstring and
comments count too: a reader has to get through them all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 60

# Generated stubs, the migration scripts (each a record of one step, read once) and the PDF
# report's plotting, whose figure-building calls read best as one piece each.
EXCLUDED = (
    ROOT / "panoptic" / "v1",
    ROOT / "migrations" / "versions",
    ROOT / "panoptic" / "bench" / "report" / "pdf.py",
)


def source_files() -> Iterator[Path]:
    for top in ("panoptic", "services", "migrations"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if not any(path == excluded or excluded in path.parents for excluded in EXCLUDED):
                yield path


def long_functions(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > LIMIT:
                yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)"


def test_no_function_is_longer_than_sixty_lines() -> None:
    """Every function in panoptic/, services/ and migrations/ spans at most 60 lines."""
    found = [entry for path in source_files() for entry in long_functions(path)]
    assert not found, "functions longer than 60 lines:\n" + "\n".join(found)
