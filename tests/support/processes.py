"""Starting Panoptic's own commands as real processes on loopback, and stopping them by PID;
free ports, and a listener that sees who connects to a port."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from panoptic.bench.common import free_ports

ROOT = Path(__file__).resolve().parent.parent.parent


# Probed ports are released at once, and the kernel may hand the same one out again: one
# sequence for the whole test session never gives a port twice.
_PORTS = free_ports()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never the same one twice."""
    return next(_PORTS)


class ConnectionTrap:
    """A listening socket on 127.0.0.1:`port` that counts who connects, and hangs up on them at
    once; a context manager that stops listening when the block ends."""

    def __init__(self, port: int) -> None:
        self.connections = 0
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen()
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        """Stops listening."""
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def __enter__(self) -> ConnectionTrap:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def grpc_serving(address: str, credentials: grpc.ChannelCredentials | None = None) -> bool:
    """Whether the gRPC service at `address` answers its health check with SERVING."""
    channel = (
        grpc.insecure_channel(address)
        if credentials is None
        else grpc.secure_channel(address, credentials)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def answers_200(url: str) -> bool:
    """Whether a GET of `url` answers 200 within a second (no answer at all is a no)."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def run_panoptic(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Runs one `panoptic` command to its end and returns what it printed (never raises)."""
    return subprocess.run(
        [sys.executable, "-m", "panoptic", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def service_env(database_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """An environment for a `panoptic` command: loopback, free ports, JSON logs, quick stops."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PANOPTIC_")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "PANOPTIC_DATA_DIR": str(data_dir),
            "PANOPTIC_BIND_HOST": "127.0.0.1",
            "PANOPTIC_LOG_FORMAT": "json",
            "PANOPTIC_SHUTDOWN_GRACE_SECONDS": "2",
            "PANOPTIC_INDEXER_TOKEN": "test-token-0123456789abcdef",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in ("indexer", "retriever", "gateway", "dashboard"):
        env.setdefault(f"PANOPTIC_{name.upper()}_PORT", str(free_port()))
        env.setdefault(f"PANOPTIC_{name.upper()}_METRICS_PORT", str(free_port()))
    env["PANOPTIC_INDEXER_ADDRESS"] = f"127.0.0.1:{env['PANOPTIC_INDEXER_PORT']}"
    env["PANOPTIC_RETRIEVER_ADDRESS"] = f"127.0.0.1:{env['PANOPTIC_RETRIEVER_PORT']}"
    env.update(overrides)
    return env


@dataclass
class PanopticProcess:
    """A running `panoptic ...` command whose output is kept in a file."""

    args: tuple[str, ...]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> PanopticProcess:
        """Launches the command."""
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "panoptic", *self.args],
            env=dict(self.env),
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def output(self) -> str:
        """Everything the command wrote so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Sends `sig` to this process (by its PID) and waits for it to exit."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def wait(self, timeout: float = 60) -> int:
        """Waits for the command to end by itself."""
        code = self.process.wait(timeout)
        self._log.close()
        return code


@contextlib.contextmanager
def running(
    args: tuple[str, ...], env: Mapping[str, str], log_path: Path
) -> Iterator[PanopticProcess]:
    """A `panoptic` command running for the block, stopped (SIGTERM, by PID) afterwards."""
    process = PanopticProcess(args, env, log_path).start()
    try:
        yield process
    finally:
        process.stop()


def start_serving(
    args: tuple[str, ...],
    env: Mapping[str, str],
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float = 30,
) -> PanopticProcess:
    """Starts a `panoptic` command and waits until `ready()`; fails with the command's output
    should it exit first, and stops it when the wait fails."""
    process = PanopticProcess(args, env, log_path).start()

    def started() -> bool:
        if process.process.poll() is not None:
            command = " ".join(args)
            raise AssertionError(f"`panoptic {command}` exited early:\n{process.output}")
        return ready()

    try:
        wait_for(started, timeout=timeout)
    except BaseException:
        process.stop()
        raise
    return process


def grpc_address(name: str, env: Mapping[str, str]) -> str:
    """Where the gRPC service `name` (indexer or retriever) started with `env` listens."""
    return f"127.0.0.1:{env[f'PANOPTIC_{name.upper()}_PORT']}"


def start_grpc_service(
    name: str,
    env: Mapping[str, str],
    log_path: Path,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = 30,
) -> PanopticProcess:
    """Starts `panoptic indexer` or `panoptic retriever` and waits until its health check says
    SERVING; fails with its output should it exit first."""
    ready = functools.partial(grpc_serving, grpc_address(name, env), credentials)
    return start_serving((name,), env, log_path, ready, timeout)


@contextlib.contextmanager
def running_grpc_service(name: str, env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """A serving indexer or retriever for the block, stopped (SIGTERM, by PID) afterwards;
    yields its address."""
    process = start_grpc_service(name, env, log_path)
    try:
        yield grpc_address(name, env)
    finally:
        process.stop()


def wait_for(predicate: object, timeout: float = 30, interval: float = 0.1) -> None:
    """Polls a zero-argument callable until it returns true; fails the test on timeout."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
