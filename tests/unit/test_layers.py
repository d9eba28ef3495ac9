"""The tree's layers hold: no package imports one above it or another service's internals.

The layers are the README's ("Architecture: the layers of the tree"). Every import counts,
including those inside functions, which is where an upward import likes to hide.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("indexer", "retriever", "gateway", "dashboard")
ABOVE_SERVICES = ("panoptic.suite", "panoptic.cli", "panoptic.bench", "panoptic.__main__")

# What each package must never import: a module named here, or any module below it.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "panoptic.core": (
        "services", "migrations", "panoptic.model", "panoptic.reads", "panoptic.client",
        *ABOVE_SERVICES,
    ),
    # The model of a claim and its ids stands on core and the contract alone.
    "panoptic.model": (
        "services", "migrations", "panoptic.reads", "panoptic.client", *ABOVE_SERVICES,
    ),
    "migrations": ("services", "panoptic.reads", "panoptic.client", *ABOVE_SERVICES),
    "panoptic.reads": ("services", "migrations", "panoptic.client", *ABOVE_SERVICES),
    "panoptic.client": ("services", "migrations", "panoptic.reads", *ABOVE_SERVICES),
    **{
        f"services.{service}": (
            *(f"services.{other}" for other in SERVICES if other != service),
            *ABOVE_SERVICES,
        )
        for service in SERVICES
    },
    # The gateway learns the API by reflection: no generated stubs, no database, no read model.
    "services.gateway": (
        *(f"services.{other}" for other in SERVICES if other != "gateway"),
        *ABOVE_SERVICES,
        "panoptic.v1",
        "panoptic.reads",
        "panoptic.core.db",
        "migrations",
        "asyncpg",
        "sqlalchemy",
    ),
    "panoptic.suite": ("panoptic.cli", "panoptic.bench", "panoptic.__main__"),
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> Iterator[Path]:
    for top in ("panoptic", "services", "migrations"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "v1" not in path.relative_to(ROOT).parts[:2]:
                yield path


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module `path` imports, with the line, `from a import b` counting as `a.b`."""
    package = module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations() -> list[str]:
    found = []
    for path in source_files():
        importer = module_name(path)
        rules = [forbidden for package, forbidden in FORBIDDEN.items() if within(importer, package)]
        for line, imported in imported_modules(path):
            for forbidden in rules:
                hit = next((name for name in forbidden if within(imported, name)), None)
                if hit is not None:
                    relative = path.relative_to(ROOT)
                    found.append(f"{relative}:{line}: {importer} imports {imported} ({hit})")
    return found


def test_no_package_imports_a_layer_above_it_or_another_services_internals() -> None:
    """core, the model, migrations, the read model and the client import no service, suite, CLI
    or benchmark; no service imports another; the gateway imports no stubs and no database code."""
    assert violations() == []


@pytest.mark.parametrize(
    ("importer", "source", "expected"),
    [
        ("panoptic/core/x.py", "from services.indexer import handler", "services"),
        ("panoptic/core/x.py", "def f():\n    import panoptic.suite.demo", "panoptic.suite"),
        ("services/dashboard/x.py", "from services.retriever import queries", "services.retriever"),
        ("services/gateway/x.py", "from panoptic.v1 import resources_pb2", "panoptic.v1"),
        ("services/gateway/x.py", "import asyncpg", "asyncpg"),
        ("migrations/x.py", "from panoptic.suite import migrate", "panoptic.suite"),
        ("panoptic/model/x.py", "from panoptic.reads import queries", "panoptic.reads"),
        ("panoptic/core/x.py", "from panoptic.model import claims", "panoptic.model"),
    ],
)  # fmt: skip
def test_the_check_finds_a_forbidden_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, importer: str, source: str, expected: str
) -> None:
    """Each kind of forbidden import, planted in a copy of the tree's layout, is reported."""
    planted = tmp_path / importer
    planted.parent.mkdir(parents=True)
    planted.write_text(source + "\n")
    for top in ("panoptic", "services", "migrations"):
        (tmp_path / top).mkdir(exist_ok=True)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    [report] = violations()
    assert report.endswith(f"({expected})")
