"""docker-compose.yml's replica, for real without a container engine: deploy/postgres's scripts
run as the postgres image runs them, on the embedded PostgreSQL's binaries (18, the image's
major version), and the replica's own healthcheck, read from the compose file, judges it.

The primary is made as the image makes it: `initdb` with the owner as superuser, the image's
`host all all all scram-sha-256` line, a server on its socket alone while the init script runs,
then the server on the network. The replica reaches the primary over TCP on loopback, which
stands for the compose network: the loopback lines `initdb` writes are left out, so that the
replica gets in only through the init script's line, with the replication role's password.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from panoptic.suite.embedded_pg import POSTGRES_BIN_PATH, _make_traversable, _server_user
from tests.support.processes import ROOT, free_port, wait_for

pytestmark = pytest.mark.slow

REPLICA_SERVICE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][
    "postgres-replica"
]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "initdb" / "replication.sh"
REPLICA_SCRIPT = ROOT / "deploy" / "postgres" / "replica.sh"
OWNER, DATABASE = "panoptic_owner", "panoptic"
PASSWORD = "replication-password-0123456789"
SLOT = REPLICA_SERVICE["environment"]["REPLICATION_SLOT"]


def as_server_user(argv: list[str]) -> list[str]:
    """`argv` run as the user the embedded PostgreSQL runs as (PostgreSQL refuses root)."""
    user = _server_user()
    if user is None:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root needs setpriv (Debian package `util-linux`)")
    return [setpriv, f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]


def script_env(**variables: str) -> dict[str, str]:
    """This process's environment without libpq's variables, PostgreSQL's binaries first on
    PATH, and `variables`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env["PATH"] = f"{POSTGRES_BIN_PATH}:{env['PATH']}"
    return {**env, **variables}


def run(argv: list[str], env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs a command as the server user to its end (whatever its exit code)."""
    return subprocess.run(
        as_server_user(argv),
        env=dict(env or script_env()),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Server:
    """A PostgreSQL data directory, and where its server listens."""

    pgdata: Path
    port: int

    @property
    def socket_dir(self) -> Path:
        return self.pgdata.parent / f"{self.pgdata.name}-socket"

    def options(self, listen: str) -> list[str]:
        """The server's options: `listen` addresses, its socket and port."""
        socket = ["-k", str(self.socket_dir), "-p", str(self.port)]
        return ["-c", f"listen_addresses={listen}", *socket]

    def sql(self, query: str, database: str = DATABASE) -> str:
        """Runs a query as the owner over the socket (trusted there); its output, unaligned."""
        target = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", OWNER, "-d", database]
        psql = [str(POSTGRES_BIN_PATH / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        result = run([*psql, *target, "-c", query])
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def pg_ctl(self, *args: str) -> None:
        """Runs pg_ctl on the server, waiting for it; a server it starts logs to a file (not to
        pg_ctl's output, which it would keep open)."""
        log = ["-l", str(self.pgdata.parent / f"{self.pgdata.name}.log")]
        pg_ctl = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w"]
        result = run([*pg_ctl, *args, *(log if args[0] == "start" else [])])
        assert result.returncode == 0, result.stderr


def make_primary_as_the_image_does(base: Path) -> Server:
    """A primary initialised as the postgres image initialises one, the init script run
    against its socket-only server, then started on loopback."""
    primary = Server(base / "primary", free_port())
    primary.socket_dir.mkdir()
    shutil.chown(primary.socket_dir, _server_user() or os.getuid())
    (base / "owner-password").write_text("owner-password\n")
    initdb = [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(primary.pgdata), f"--username={OWNER}"]
    result = run([*initdb, f"--pwfile={base / 'owner-password'}", "--locale=C.UTF-8"])
    assert result.returncode == 0, result.stderr
    hba = primary.pgdata / "pg_hba.conf"
    local = [line for line in hba.read_text().splitlines() if line.startswith("local")]
    hba.write_text("\n".join([*local, "host all all all scram-sha-256", ""]))
    primary.pg_ctl("start", "-o", " ".join(primary.options("''")))
    primary.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
    init_env = script_env(
        POSTGRES_USER=OWNER,
        POSTGRES_DB=DATABASE,
        PGDATA=str(primary.pgdata),
        PGHOST=str(primary.socket_dir),
        PGPORT=str(primary.port),
        POSTGRES_REPLICATION_PASSWORD=PASSWORD,
    )
    result = run(["bash", str(INIT_SCRIPT)], init_env)
    assert result.returncode == 0, result.stderr
    primary.pg_ctl("stop", "-m", "fast")
    primary.pg_ctl("start", "-o", " ".join(primary.options("127.0.0.1")))
    return primary


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory the server user owns and can reach."""
    path = tmp_path_factory.mktemp("compose-replication")
    if (user := _server_user()) is not None:
        shutil.chown(path, user, user)
        _make_traversable(path.parent)
    return path


@pytest.fixture(scope="module")
def primary(base: Path) -> Iterator[Server]:
    server = make_primary_as_the_image_does(base)
    try:
        yield server
    finally:
        server.pg_ctl("stop", "-m", "fast")


def replica_env(primary: Server, pgdata: Path, password: str = PASSWORD) -> dict[str, str]:
    """The replica service's environment from the compose file, the password supplied, the
    primary on loopback where compose names the `postgres` service, and the image's PGDATA."""
    env = {name: str(value) for name, value in REPLICA_SERVICE["environment"].items()}
    assert env["PGHOST"] == "postgres"
    env.update(PGHOST="127.0.0.1", PGPORT=str(primary.port), PGDATA=str(pgdata))
    env["POSTGRES_REPLICATION_PASSWORD"] = password
    return script_env(**env)


@contextlib.contextmanager
def running_replica(primary: Server, replica: Server, log: Path) -> Iterator[None]:
    """The replica service's entrypoint and command, as compose runs them, healthy by its
    healthcheck for the block; then a fast stop (SIGINT to the postmaster, which the script
    has become)."""
    command = [*REPLICA_SERVICE["command"], *replica.options("127.0.0.1")]
    replica.socket_dir.mkdir(exist_ok=True)
    shutil.chown(replica.socket_dir, _server_user() or os.getuid())
    with log.open("a") as output:
        process = subprocess.Popen(
            as_server_user(["bash", str(REPLICA_SCRIPT), *command]),
            env=replica_env(primary, replica.pgdata),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: process.poll() is not None or healthy(replica, primary), timeout=120)
        assert process.poll() is None, f"the replica exited:\n{log.read_text()}"
        yield
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=60)


def healthy(server: Server, primary: Server) -> bool:
    """Whether the replica service's healthcheck passes against `server`, run with the
    container's environment (there PGPORT is the server's own port, 5432, too)."""
    check = REPLICA_SERVICE["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL"
    env = replica_env(primary, server.pgdata)
    env["PGPORT"] = str(server.port)
    return run(["sh", "-c", check[1].replace("$$", "$")], env).returncode == 0


def streams(primary: Server, replica: Server, value: str) -> bool:
    """Whether a row written on the primary now is read on the replica (bounded wait)."""
    primary.sql(f"INSERT INTO marks VALUES ('{value}')")

    def replayed() -> bool:
        return replica.sql(f"SELECT count(*) FROM marks WHERE mark = '{value}'") == "1"

    wait_for(replayed, timeout=60)
    return primary.sql(f"SELECT active FROM pg_replication_slots WHERE slot_name = '{SLOT}'") == "t"


def test_the_replica_copies_the_primary_streams_and_is_healthy_only_as_a_standby(
    primary: Server, base: Path
) -> None:
    """With an empty volume the replica copies the primary as the replication role, with its
    password, through the init script's pg_hba line, and streams from its own slot; its
    healthcheck passes on it and fails on the primary (not in recovery) and once it stops.
    Restarted, it starts from its data without copying again."""
    primary.sql("CREATE TABLE IF NOT EXISTS marks (mark text)")
    replica = Server(base / "replica", free_port())
    log = base / "replica.log"
    with running_replica(primary, replica, log):
        assert streams(primary, replica, "first")
        assert not healthy(primary, primary)
    assert not healthy(replica, primary)
    with running_replica(primary, replica, log):
        assert streams(primary, replica, "after a restart")
    assert log.read_text().count("replica: copying the primary") == 1


def test_a_replica_with_a_new_volume_replaces_the_slot_of_the_lost_one(
    primary: Server, base: Path
) -> None:
    """An empty volume copies the primary again, though the slot of the copy it replaces is
    still there: the script drops it and makes it anew, and the replica streams."""
    primary.sql("CREATE TABLE IF NOT EXISTS marks (mark text)")
    for attempt in ("one", "two"):
        replica = Server(base / f"volume-{attempt}", free_port())
        with running_replica(primary, replica, base / f"volume-{attempt}.log"):
            assert streams(primary, replica, f"volume {attempt}")
        slots = primary.sql("SELECT slot_name FROM pg_replication_slots")
        assert slots.split() == [SLOT]


def test_a_wrong_password_copies_nothing(primary: Server, base: Path) -> None:
    """The replication role gets in with its password only; a failed copy leaves no data
    behind, so that the next start copies again."""
    pgdata = base / "wrong-password"
    result = run(
        ["bash", str(REPLICA_SCRIPT), "true"], replica_env(primary, pgdata, password="wrong")
    )
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr
    assert not (pgdata / "PG_VERSION").exists()
