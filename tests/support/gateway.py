"""Driving a real `panoptic gateway` from tests, and APIs made up for the transcoder's tests."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.api import annotations_pb2  # noqa: F401 - lets text format parse google.api.http
from google.protobuf import descriptor_pb2, duration_pb2, text_format, wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from panoptic.core.db import DatabaseUrl
from services.gateway.descriptors import PACKAGED_DESCRIPTOR_SET, LoadedDescriptors, build
from tests.conftest import random_id
from tests.support.corpus import batches_of, index_requests
from tests.support.processes import (
    PanopticProcess,
    answers_200,
    running_grpc_service,
    start_serving,
)


def base_url(env: Mapping[str, str]) -> str:
    """Where the gateway started with `env` listens."""
    return f"http://127.0.0.1:{env['PANOPTIC_GATEWAY_PORT']}"


def start_gateway(
    env: Mapping[str, str], log_path: Path, timeout: float = 30, probe: str = "/readyz"
) -> PanopticProcess:
    """Starts `panoptic gateway` and waits until `probe` answers 200; fails with its output."""
    ready = functools.partial(answers_200, base_url(env) + probe)
    return start_serving(("gateway",), env, log_path, ready, timeout)


@contextlib.contextmanager
def running_gateway(
    env: Mapping[str, str], log_path: Path, probe: str = "/readyz"
) -> Iterator[PanopticProcess]:
    """A serving gateway for the block, stopped (SIGTERM, by PID) afterwards."""
    process = start_gateway(env, log_path, probe=probe)
    try:
        yield process
    finally:
        process.stop()


def packaged_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The compiled descriptors of this checkout (with imports and comments)."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(
        PACKAGED_DESCRIPTOR_SET.read_bytes()
    )
    return list(descriptor_set.file)


def made_up_api(proto_text: str, name: str = "test/made_up.proto") -> LoadedDescriptors:
    """A pool with the packaged files plus one written in FileDescriptorProto text format.

    It may import `google/api/annotations.proto`, `panoptic/v1/resources.proto` and the
    timestamp, duration and wrapper well-known types.
    """
    made = text_format.Parse(proto_text, descriptor_pb2.FileDescriptorProto())
    made.name = name
    well_known = []
    for module in (duration_pb2, wrappers_pb2):
        file = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(file)
        well_known.append(file)
    return build([*packaged_files(), *well_known, made])


def descriptor_set_bytes(loaded: LoadedDescriptors) -> bytes:
    """The pool's files as a serialized FileDescriptorSet, as a descriptor file holds them."""
    return descriptor_pb2.FileDescriptorSet(file=list(loaded.files)).SerializeToString()


# --- a small corpus, loaded through the indexer's handler --------------------------------------


@dataclass(frozen=True)
class GatewayCorpus:
    """Hand-made records with random ids: two actors, two topics, six claims, two revised."""

    prefix: str

    @property
    def ann(self) -> str:
        """The actor with five claims."""
        return f"{self.prefix}-ann"

    @property
    def bob(self) -> str:
        """The actor with one claim."""
        return f"{self.prefix}-bob"

    @property
    def energy(self) -> str:
        """The root topic."""
        return f"{self.prefix}-energy"

    @property
    def wind(self) -> str:
        """A child topic of energy."""
        return f"{self.prefix}-wind"

    def claim(self, number: int) -> str:
        """The id of claim 1 to 6."""
        return f"{self.prefix}-c{number}"


# (number, actor, topics, language, month of 2024, text)
_CLAIMS = (
    (1, "ann", ("energy",), "en", 1, "Wind farms will double by 2030, starting on the coast."),
    (2, "ann", ("energy", "wind"), "fr", 2, "Les éoliennes en mer seront doublées avant 2030."),
    (3, "ann", ("wind",), "en", 3, "The harbour bridge repairs begin in spring."),
    (4, "ann", ("energy",), "en", 4, "Coal plants will close this decade."),
    (5, "ann", ("energy",), "en", 5, "Solar panels go on every school roof."),
    (6, "bob", ("wind",), "en", 6, "Offshore wind is too expensive."),
)


def corpus_records(corpus: GatewayCorpus) -> list[dict[str, Any]]:
    """The corpus as IndexRecord JSON: topics, actors, then claims."""
    records: list[dict[str, Any]] = [
        {"topic": {"id": corpus.energy, "displayName": "Energy"}},
        {"topic": {"id": corpus.wind, "displayName": "Wind", "parentId": corpus.energy}},
        {
            "actor": {
                "id": corpus.ann,
                "displayName": f"Annabel Quixotic {corpus.prefix}",
                "aliases": ["Annie"],
                "kind": "ACTOR_KIND_PERSON",
            }
        },
        {"actor": {"id": corpus.bob, "displayName": "Bob", "kind": "ACTOR_KIND_ORGANISATION"}},
    ]
    for number, actor, topics, language, month, text in _CLAIMS:
        records.append(
            {
                "claim": {
                    "id": corpus.claim(number),
                    "actorId": getattr(corpus, actor),
                    "topicIds": [getattr(corpus, topic) for topic in topics],
                    "text": text,
                    "statedAt": datetime(2024, month, 10, 12, tzinfo=UTC).isoformat(),
                    "source": {"url": f"https://news.example/{number}", "title": "News"},
                    "language": language,
                    "confidence": 0.5 + number / 20,
                }
            }
        )
    return records


async def load_corpus(database_url: DatabaseUrl) -> GatewayCorpus:
    """Indexes the corpus, then retracts claim 4 and rewrites claim 5 (revision 2 each)."""
    corpus = GatewayCorpus(random_id("gw"))
    first = batches_of(corpus_records(corpus), prefix=f"{corpus.prefix}-load")
    second_records = [
        record
        for record in corpus_records(corpus)
        if "claim" in record and record["claim"]["id"] in (corpus.claim(4), corpus.claim(5))
    ]
    second_records[0]["claim"]["state"] = "CLAIM_STATE_RETRACTED"
    second_records[1]["claim"]["text"] = "Solar panels go on every school and hospital roof."
    second = batches_of(second_records, prefix=f"{corpus.prefix}-revise")
    await index_requests(database_url, [*first, *second])
    return corpus


# --- a retriever and a gateway, as processes ---------------------------------------------------


@contextlib.contextmanager
def running_stack(env: Mapping[str, str], logs: Path) -> Iterator[str]:
    """A retriever and a gateway for the block; yields the gateway's base URL."""
    with (
        running_grpc_service("retriever", env, logs / "retriever.log"),
        running_gateway(env, logs / "gateway.log"),
    ):
        yield base_url(env)


# --- a scripted stand-in for the retriever -----------------------------------------------------


@dataclass
class FakeRetriever:
    """A RetrieverService that answers GetClaim as the claim id says, and records metadata.

    `code-NOT_FOUND` fails with that code and a plain message, `rich-NOT_FOUND` with a rich
    status (an ErrorInfo whose reason is `TEST_NOT_FOUND`), `slow` sleeps a second; any other id
    is returned as a claim (`big` with a 5 kB text). Every other method answers an empty
    response.
    """

    address: str
    metadata: list[dict[str, str]]
    server: Any

    def stop(self) -> None:
        """Stops the server at once."""
        self.server.stop(None).wait()


RICH_MESSAGE = "the claim was taken down by its publisher"
PLAIN_SECRET = "upstream 10.9.8.7:5432 said: relation claims_internal does not exist"


@contextlib.contextmanager
def fake_retriever(port: int) -> Iterator[FakeRetriever]:
    """A FakeRetriever on 127.0.0.1:`port`, with health and reflection, for the block."""
    from concurrent import futures

    from grpc_health.v1 import health
    from grpc_reflection.v1alpha import reflection
    from grpc_status import rpc_status

    from panoptic.core.rpc_status import error_status
    from panoptic.v1 import resources_pb2, retriever_service_pb2, retriever_service_pb2_grpc

    seen: list[dict[str, str]] = []

    class Servicer(retriever_service_pb2_grpc.RetrieverServiceServicer):
        def GetClaim(self, request: Any, context: Any) -> Any:  # noqa: N802 - named by the proto
            seen.append(dict(context.invocation_metadata()))
            claim_id = request.claim_id
            kind, _, code_name = claim_id.partition("-")
            if kind == "code":
                context.abort(getattr(grpc.StatusCode, code_name), PLAIN_SECRET)
            if kind == "rich":
                code = getattr(grpc.StatusCode, code_name)
                status = error_status(code, RICH_MESSAGE, f"TEST_{code_name}")
                context.abort_with_status(rpc_status.to_status(status))
            if claim_id == "slow":
                time.sleep(1)
            text = "a long statement " * 300 if claim_id == "big" else "made up"
            return resources_pb2.Claim(id=claim_id, text=text, revision=1)

        def ListClaims(self, request: Any, context: Any) -> Any:  # noqa: N802
            seen.append(dict(context.invocation_metadata()))
            return retriever_service_pb2.ListClaimsResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    retriever_service_pb2_grpc.add_RetrieverServiceServicer_to_server(Servicer(), server)
    name = retriever_service_pb2.DESCRIPTOR.services_by_name["RetrieverService"].full_name
    health_servicer = health.HealthServicer()
    health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([name, reflection.SERVICE_NAME], server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield FakeRetriever(f"127.0.0.1:{port}", seen, server)
    finally:
        server.stop(None).wait()
