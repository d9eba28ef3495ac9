"""The embedded PostgreSQL's lifecycle where it goes wrong: a server that died, a pg_ctl that
cannot answer. `panoptic up` and the tests stop their server through `stop`, so a wrong "not
running" leaves a server behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from panoptic.suite.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from tests.support.replication import kill_server

pytestmark = pytest.mark.slow


def test_stopping_a_server_that_died_is_not_an_error_and_it_starts_again(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    assert server.ensure_started()
    try:
        kill_server(server)
        # Its postmaster.pid is left behind, naming a process that is gone.
        assert (server.pgdata / "postmaster.pid").exists()
        assert not server.is_running()
        server.stop()
        assert server.ensure_started(), "the server must start again after its crash"
        assert server.is_running()
    finally:
        server.stop()
    assert not server.is_running()
    server.stop()  # stopping a stopped server does nothing


def test_a_status_pg_ctl_cannot_read_is_an_error_not_a_stopped_server(tmp_path: Path) -> None:
    """pg_ctl failing to read the server's PID file says nothing of whether it runs: `stop`
    raises rather than leave a running server behind unnoticed."""
    server = EmbeddedPostgres(tmp_path / "pg")
    server.ensure_started()
    server.stop()
    pid_file = server.pgdata / "postmaster.pid"
    pid_file.mkdir()  # pg_ctl opens it and fails to read it
    try:
        with pytest.raises(EmbeddedPostgresError, match="pg_ctl status failed"):
            server.is_running()
        with pytest.raises(EmbeddedPostgresError, match="cannot tell whether"):
            server.stop()
    finally:
        shutil.rmtree(pid_file)
    assert not server.is_running()


def test_a_directory_never_initialised_is_not_running_and_stops_quietly(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "never")
    assert not server.is_running()
    server.stop()
    assert not server.pgdata.exists()
