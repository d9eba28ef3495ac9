"""The built package carries the data files the code reads at run time, not only its modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

PACKAGES = ("panoptic", "services", "migrations")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The file names inside a wheel built, offline, from a copy of this checkout."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:  # a copy, so the build leaves no build/ or egg-info in the checkout
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        timeout=240,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_carries_the_demo_corpus_words(wheel_names: set[str]) -> None:
    """Every file of `panoptic/suite/demo_data/`, which the demo reads at import, is packaged."""
    data = ROOT / "panoptic" / "suite" / "demo_data"
    expected = {path.relative_to(ROOT).as_posix() for path in data.iterdir()}
    assert expected
    assert expected <= wheel_names, sorted(expected - wheel_names)


def test_wheel_carries_the_api_explorer(wheel_names: set[str]) -> None:
    """The explorer's pages and scripts, and Swagger UI's files that `make setup` copies into
    the gateway's package (git-ignored) with their licence, are all in the wheel."""
    static = ROOT / "services" / "gateway" / "static"
    assert (static / "vendor").is_dir(), "Swagger UI's files are missing: run `make setup`"
    expected = {path.relative_to(ROOT).as_posix() for path in static.rglob("*") if path.is_file()}
    assert {"LICENSE", "swagger-ui-bundle.js", "docs.html"} <= {
        name.rsplit("/", 1)[-1] for name in expected
    }
    assert expected <= wheel_names, sorted(expected - wheel_names)
