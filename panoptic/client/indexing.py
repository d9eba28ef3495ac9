"""The pipeline client: streams a JSON Lines file of IndexRecords through StreamIndexClaims.

Request ids are derived from the file's content and each batch's position, so resending a
batch — after a retry, a crash or a restart — can never index it twice: the indexer answers a
known request id with its first response. Batches travel in streams of a few at a time, and
after each stream is acknowledged the client records how far it got, so an interrupted run
resumes where it stopped. UNAVAILABLE and DEADLINE_EXCEEDED are retried with exponential
backoff and jitter (INTERNAL as well, see RETRYABLE); any other error stops the run with the
offending line named.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import json_format

from panoptic.core.errors import PanopticError
from panoptic.core.rpc_status import details_of
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc, resources_pb2

# Transient by definition. INTERNAL too: grpc.aio's client reports an indexer dying mid-stream as
# INTERNAL "Internal error from Core" instead of UNAVAILABLE (grpc/grpc#36066), and resending is
# safe whatever happened, because every batch keeps its request id.
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}
)


class IndexFileError(PanopticError):
    """The file or the indexer refused the run; the message names the line and the cause."""


@dataclass(frozen=True)
class ClientOptions:
    """How the client talks to the indexer."""

    address: str
    token: str
    batch_size: int = 500
    batches_per_stream: int = 10
    max_attempts: int = 8
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    stream_timeout_seconds: float = 300.0
    credentials: grpc.ChannelCredentials | None = None


@dataclass(frozen=True)
class Batch:
    """One request and, for error messages, the file line of each of its records."""

    index: int
    request: indexer_service_pb2.IndexClaimsRequest
    claim_lines: tuple[int, ...]
    actor_lines: tuple[int, ...]
    topic_lines: tuple[int, ...]

    def line_of(self, field_path: str) -> int | None:
        """The file line a violation's field path (`claims[3].statedAt`) points into."""
        collection, _, rest = field_path.partition("[")
        lines = {"claims": self.claim_lines, "actors": self.actor_lines, "topics": self.topic_lines}
        if collection not in lines or not rest:
            return None
        try:
            position = int(rest.split("]", 1)[0])
        except ValueError:
            return None
        chosen = lines[collection]
        return chosen[position] if position < len(chosen) else None


@dataclass
class Summary:
    """What a run did."""

    batches_sent: int = 0
    batches_skipped: int = 0
    batches_replayed: int = 0
    claims: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    retries: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for people."""
        rate = self.claims / self.seconds if self.seconds else 0.0
        skipped = f", {self.batches_skipped} skipped as done" if self.batches_skipped else ""
        if self.batches_replayed:
            skipped += f", {self.batches_replayed} already indexed (nothing written)"
        return (
            f"indexed {self.claims} claims in {self.batches_sent} batches{skipped}: "
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged; "
            f"{self.retries} retries; {self.seconds:.1f} s ({rate:,.0f} claims/s)"
        )


def file_digest(path: Path) -> str:
    """The SHA-256 of the file's bytes: the root of its request ids."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def count_claims(path: Path) -> int:
    """How many claim records the file holds (for the progress bar)."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.lstrip().startswith(b'{"claim"'))


def read_batches(path: Path, digest: str, batch_size: int) -> Iterator[Batch]:
    """The file's records grouped into batches; actors and topics go with the next claims."""
    request = indexer_service_pb2.IndexClaimsRequest()
    lines: dict[str, list[int]] = {"claims": [], "actors": [], "topics": []}
    index = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = _parse_line(line, number)
            kind = record.WhichOneof("record")
            if kind == "claim":
                request.claims.append(record.claim)
                lines["claims"].append(number)
            elif kind == "actor":
                request.actors.append(record.actor)
                lines["actors"].append(number)
            else:
                request.topics.append(record.topic)
                lines["topics"].append(number)
            if len(request.claims) >= batch_size:
                yield _batch(index, digest, request, lines)
                index += 1
                request = indexer_service_pb2.IndexClaimsRequest()
                lines = {"claims": [], "actors": [], "topics": []}
    if request.claims or request.actors or request.topics:
        yield _batch(index, digest, request, lines)


def _parse_line(line: str, number: int) -> resources_pb2.IndexRecord:
    try:
        record = json_format.Parse(line, resources_pb2.IndexRecord())
    except (json_format.ParseError, json.JSONDecodeError) as error:
        raise IndexFileError(f"line {number} is not a valid IndexRecord: {error}") from None
    if record.WhichOneof("record") is None:
        raise IndexFileError(f"line {number} holds no actor, topic or claim")
    return record


def _batch(
    index: int,
    digest: str,
    request: indexer_service_pb2.IndexClaimsRequest,
    lines: dict[str, list[int]],
) -> Batch:
    request.request_id = f"file-{digest[:24]}:{index}"
    return Batch(
        index,
        request,
        tuple(lines["claims"]),
        tuple(lines["actors"]),
        tuple(lines["topics"]),
    )


class ProgressFile:
    """How many leading batches of a file the indexer has acknowledged, kept across runs."""

    def __init__(self, directory: Path, digest: str) -> None:
        self._path = directory / f"{digest}.json"

    def batches_done(self) -> int:
        """Acknowledged batches recorded by an earlier run (0 if none)."""
        try:
            return int(json.loads(self._path.read_text())["batches_done"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def record(self, batches_done: int) -> None:
        """Records progress atomically (write, then rename)."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"batches_done": batches_done}))
        temporary.replace(self._path)

    def finish(self) -> None:
        """Forgets the file once every batch is in."""
        self._path.unlink(missing_ok=True)


async def index_file(
    path: Path,
    options: ClientOptions,
    *,
    progress_dir: Path | None = None,
    resume: bool = True,
    on_claims: Callable[[int], object] = lambda claims: None,
) -> Summary:
    """Streams `path` to the indexer; returns the summary, or raises `IndexFileError`.

    `on_claims` hears of each run of claims acknowledged (or skipped, being acknowledged by an
    earlier run), for a progress bar over `count_claims(path)`.
    """
    started = time.monotonic()
    digest = file_digest(path)
    progress = ProgressFile(progress_dir or path.parent / ".panoptic-progress", digest)
    skip = progress.batches_done() if resume else 0
    summary = Summary(batches_skipped=skip)
    metadata = (("authorization", f"Bearer {options.token}"),)
    if options.credentials is not None:
        channel = grpc.aio.secure_channel(options.address, options.credentials)
    else:
        channel = grpc.aio.insecure_channel(options.address)
    async with channel:
        stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
        chunk: list[Batch] = []
        for batch in read_batches(path, digest, options.batch_size):
            if batch.index < skip:
                on_claims(len(batch.request.claims))
                continue
            chunk.append(batch)
            if len(chunk) == options.batches_per_stream:
                await _send(stub, chunk, metadata, options, summary)
                progress.record(chunk[-1].index + 1)
                on_claims(sum(len(b.request.claims) for b in chunk))
                chunk = []
        if chunk:
            await _send(stub, chunk, metadata, options, summary)
            on_claims(sum(len(b.request.claims) for b in chunk))
    progress.finish()
    summary.seconds = time.monotonic() - started
    return summary


async def _send(
    stub: indexer_service_pb2_grpc.IndexerServiceStub,
    chunk: list[Batch],
    metadata: tuple[tuple[str, str], ...],
    options: ClientOptions,
    summary: Summary,
) -> None:
    """Sends a chunk of batches on one stream, retrying transient failures with the same ids."""
    for attempt in range(1, options.max_attempts + 1):
        try:
            response = await stub.StreamIndexClaims(
                _requests(chunk), metadata=metadata, timeout=options.stream_timeout_seconds
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in RETRYABLE and attempt < options.max_attempts:
                summary.retries += 1
                delay = min(
                    options.max_backoff_seconds, options.backoff_seconds * 2 ** (attempt - 1)
                )
                await asyncio.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - jitter
                continue
            raise IndexFileError(_explain(error, chunk)) from None
        summary.batches_sent += len(chunk)
        summary.batches_replayed += response.replayed_batches
        summary.claims += sum(len(batch.request.claims) for batch in chunk)
        summary.created += response.created
        summary.updated += response.updated
        summary.unchanged += response.unchanged
        return


async def _requests(chunk: list[Batch]) -> AsyncIterator[indexer_service_pb2.IndexClaimsRequest]:
    for batch in chunk:
        yield batch.request


def _explain(error: grpc.aio.AioRpcError, chunk: list[Batch]) -> str:
    """The indexer's refusal in the file's terms: which batch, which lines, what is wrong.

    A stream fails at its first bad batch (earlier ones are committed); the error's ErrorInfo
    names that batch's request id.
    """
    message = f"the indexer refused the run: {error.code().name}: {error.details()}"
    details = details_of(error)
    request_ids = {
        detail.metadata.get("requestId") for detail in details if hasattr(detail, "metadata")
    }
    violations = [v for detail in details for v in getattr(detail, "field_violations", ())]
    failing = next((b for b in chunk if b.request.request_id in request_ids), None)
    if not violations or failing is None:
        return message
    located = []
    for violation in violations[:10]:
        line = failing.line_of(violation.field)
        where = f"line {line}" if line else f"batch {failing.index}"
        located.append(f"{where} ({violation.field}): {violation.description}")
    more = f"\n  ... and {len(violations) - 10} more" if len(violations) > 10 else ""
    return (
        f"the indexer refused batch {failing.index} ({error.code().name}); nothing of it was "
        "written, earlier batches were:\n  " + "\n  ".join(located) + more
    )
