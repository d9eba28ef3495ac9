"""Bad configuration ends `panoptic` with one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from panoptic.core.db import DatabaseUrl
from tests.support.processes import free_port, run_panoptic, service_env


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("panoptic: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://root@127.0.0.1/panoptic", "must start with postgresql://"),
        ("postgresql://root@127.0.0.1:99999999/panoptic", "port"),
        ("postgresql://root@127.0.0.1:5432", "names no database"),
    ],
)
def test_malformed_database_url(tmp_path: Path, url: str, fragment: str) -> None:
    """A malformed DATABASE_URL is named as such before anything connects."""
    env = service_env(url, tmp_path)
    _assert_one_clear_line(run_panoptic("migrate", env=env), "DATABASE_URL", fragment)


def test_unreachable_database(tmp_path: Path) -> None:
    """A DATABASE_URL nothing answers at says it cannot connect and how to fix it."""
    url = f"postgresql://nobody:secret-pw@127.0.0.1:{free_port()}/panoptic"
    env = service_env(url, tmp_path, PANOPTIC_DB_CONNECT_TIMEOUT_SECONDS="3")
    result = run_panoptic("migrate", env=env)
    _assert_one_clear_line(result, "cannot connect to PostgreSQL", "DATABASE_URL")
    assert "secret-pw" not in result.stderr


def test_port_in_use(database_url: DatabaseUrl, tmp_path: Path) -> None:
    """A service whose port is taken names the port and the variable that moves it."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = service_env(database_url.value, tmp_path, PANOPTIC_RETRIEVER_PORT=str(port))
        result = run_panoptic("retriever", env=env)
    _assert_one_clear_line(result, f"port {port}", "already in use", "PANOPTIC_RETRIEVER_PORT")


def test_invalid_setting(tmp_path: Path) -> None:
    """A setting of the wrong type names the variable."""
    env = service_env("postgresql://u@127.0.0.1/db", tmp_path, PANOPTIC_INDEXER_PORT="many")
    _assert_one_clear_line(run_panoptic("indexer", env=env), "PANOPTIC_INDEXER_PORT")


def test_production_without_secrets(tmp_path: Path) -> None:
    """Production mode refuses the development token."""
    env = service_env("postgresql://u@127.0.0.1/db", tmp_path, PANOPTIC_ENV="production")
    env["PANOPTIC_INDEXER_TOKEN"] = "changeme"
    _assert_one_clear_line(run_panoptic("indexer", env=env), "production", "PANOPTIC_INDEXER_TOKEN")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory owned by another user needs root")
def test_data_directory_owned_by_another_user(tmp_path: Path) -> None:
    """An embedded data directory that belongs to someone else is refused with what to do."""
    pgdata = tmp_path / "data" / "postgres"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("18\n")
    os.chown(pgdata, 54321, 54321)
    env = service_env("", tmp_path / "data")
    del env["DATABASE_URL"]
    _assert_one_clear_line(run_panoptic("migrate", env=env), "belongs to user", "PANOPTIC_DATA_DIR")
