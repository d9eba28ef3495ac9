"""Driving a real `panoptic indexer` from tests: start it, authenticate, build its requests."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from prometheus_client.parser import text_string_to_metric_families

from panoptic.core.rpc_status import details_of
from panoptic.core.timestamps import timestamp
from panoptic.v1 import indexer_service_pb2, resources_pb2
from tests.conftest import random_id
from tests.support.processes import PanopticProcess, start_grpc_service

Metadata = tuple[tuple[str, str], ...]
# A statement time safely in the past, so no claim is "in the future".
STATED_AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def address_of(env: Mapping[str, str]) -> str:
    """Where the indexer started with `env` listens."""
    return f"127.0.0.1:{env['PANOPTIC_INDEXER_PORT']}"


def bearer(env: Mapping[str, str]) -> Metadata:
    """Call metadata carrying the indexer's token from `env`."""
    return (("authorization", f"Bearer {env['PANOPTIC_INDEXER_TOKEN']}"),)


def start_indexer(
    env: Mapping[str, str],
    log_path: Path,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = 30,
) -> PanopticProcess:
    """Starts `panoptic indexer` and waits until it serves; fails with its output if it dies."""
    return start_grpc_service("indexer", env, log_path, credentials, timeout)


@contextlib.contextmanager
def running_indexer(
    env: Mapping[str, str], log_path: Path, credentials: grpc.ChannelCredentials | None = None
) -> Iterator[PanopticProcess]:
    """A serving indexer for the block, stopped (SIGTERM, by PID) afterwards."""
    process = start_indexer(env, log_path, credentials)
    try:
        yield process
    finally:
        process.stop()


# --- requests ----------------------------------------------------------------------------------


def actor(actor_id: str | None = None, **fields: Any) -> resources_pb2.Actor:
    """An actor with a fresh id unless one is given."""
    values: dict[str, Any] = {
        "id": actor_id or random_id("actor"),
        "display_name": "Jane Doe",
        "kind": resources_pb2.ACTOR_KIND_PERSON,
    }
    return resources_pb2.Actor(**(values | fields))


def topic(topic_id: str | None = None, **fields: Any) -> resources_pb2.Topic:
    """A topic with a fresh id unless one is given."""
    values: dict[str, Any] = {"id": topic_id or random_id("topic"), "display_name": "Energy"}
    return resources_pb2.Topic(**(values | fields))


def claim(
    actor_id: str, topic_ids: list[str], claim_id: str | None = None, **fields: Any
) -> resources_pb2.Claim:
    """A valid claim by `actor_id` on `topic_ids`, with a fresh id unless one is given."""
    values: dict[str, Any] = {
        "id": claim_id or random_id("claim"),
        "actor_id": actor_id,
        "topic_ids": topic_ids,
        "text": "We will double the number of wind farms by 2030.",
        "stated_at": timestamp(STATED_AT),
        "source": resources_pb2.Source(
            url="https://news.example/2024/05/wind",
            title="Wind pledge",
            publisher="News Example",
            published_at=timestamp(STATED_AT + timedelta(hours=2)),
        ),
        "language": "en",
        "confidence": 0.875,
    }
    return resources_pb2.Claim(**(values | fields))


def index_request(
    *claims: resources_pb2.Claim,
    actors: tuple[resources_pb2.Actor, ...] = (),
    topics: tuple[resources_pb2.Topic, ...] = (),
    request_id: str | None = None,
) -> indexer_service_pb2.IndexClaimsRequest:
    """One batch with a fresh request id unless one is given."""
    return indexer_service_pb2.IndexClaimsRequest(
        request_id=random_id("req") if request_id is None else request_id,
        actors=list(actors),
        topics=list(topics),
        claims=list(claims),
    )


# --- answers and the database ------------------------------------------------------------------


def error_reason(error: grpc.RpcError) -> str:
    """The `google.rpc.ErrorInfo` reason of a rich error."""
    reasons = [detail.reason for detail in details_of(error) if hasattr(detail, "reason")]
    assert len(reasons) == 1, f"expected one ErrorInfo in {details_of(error)}"
    return str(reasons[0])


def violated_fields(error: grpc.RpcError) -> list[str]:
    """The fields a `google.rpc.BadRequest` names, in order."""
    return [
        violation.field
        for detail in details_of(error)
        if hasattr(detail, "field_violations")
        for violation in detail.field_violations
    ]


async def stored_claim_ids(connection: asyncpg.Connection, ids: list[str]) -> set[str]:
    """Which of these claim ids are stored."""
    rows = await connection.fetch("SELECT id FROM claims WHERE id = ANY($1::text[])", ids)
    return {row["id"] for row in rows}


async def revision_counts(connection: asyncpg.Connection, ids: list[str]) -> dict[str, int]:
    """How many history entries each of these claims has (claims without any are left out)."""
    rows = await connection.fetch(
        "SELECT claim_id, count(*) AS n FROM claim_revisions"
        " WHERE claim_id = ANY($1::text[]) GROUP BY claim_id",
        ids,
    )
    return {row["claim_id"]: row["n"] for row in rows}


# --- metrics ------------------------------------------------------------------------------------

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: str) -> Samples:
    """The samples at a metrics endpoint, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(
        number
        for sample_labels, number in samples.get(name, [])
        if labels.items() <= sample_labels.items()
    )
