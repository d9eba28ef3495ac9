"""Protobuf to the indexer's domain values and back: the servicer's translations, in one place."""

from __future__ import annotations

from panoptic.core.timestamps import to_datetime
from panoptic.model.claims import ClaimContent, ClaimState
from panoptic.model.ids import SLUG
from panoptic.v1 import indexer_service_pb2, resources_pb2
from services.indexer.domain import (
    ActorRecord,
    BatchResult,
    IndexBatch,
    Outcome,
    References,
    TopicRecord,
)
from services.indexer.validation import normalise_language

_OUTCOMES = {
    Outcome.CREATED: indexer_service_pb2.INDEX_OUTCOME_CREATED,
    Outcome.UPDATED: indexer_service_pb2.INDEX_OUTCOME_UPDATED,
    Outcome.UNCHANGED: indexer_service_pb2.INDEX_OUTCOME_UNCHANGED,
}
_KINDS = {
    resources_pb2.ACTOR_KIND_UNSPECIFIED: "OTHER",
    resources_pb2.ACTOR_KIND_PERSON: "PERSON",
    resources_pb2.ACTOR_KIND_ORGANISATION: "ORGANISATION",
    resources_pb2.ACTOR_KIND_OTHER: "OTHER",
}


def batch_from_request(request: indexer_service_pb2.IndexClaimsRequest) -> IndexBatch:
    """The batch a request asks for, its values trimmed and normalised."""
    return IndexBatch(
        request_id=request.request_id,
        actors=tuple(
            ActorRecord(
                id=actor.id,
                display_name=actor.display_name.strip(),
                aliases=tuple(alias.strip() for alias in actor.aliases),
                kind=_KINDS[actor.kind],
                description=actor.description,
            )
            for actor in request.actors
        ),
        topics=tuple(
            TopicRecord(topic.id, topic.display_name.strip(), topic.parent_id or None)
            for topic in request.topics
        ),
        claims=tuple(claim_content(claim) for claim in request.claims),
    )


def references_from_request(request: indexer_service_pb2.IndexClaimsRequest) -> References:
    """What a request names, even one that fails validation: its well-formed ids only."""

    def slug(value: str) -> str | None:
        return value if SLUG.matches(value) else None

    return References(
        frozenset(actor.id for actor in request.actors if slug(actor.id)),
        tuple(
            (slug(topic.id), slug(topic.parent_id) if topic.parent_id else None)
            for topic in request.topics
        ),
        tuple(
            (slug(claim.actor_id), tuple(slug(topic_id) for topic_id in claim.topic_ids))
            for claim in request.claims
        ),
    )


def claim_content(claim: resources_pb2.Claim) -> ClaimContent:
    """What a claim message says, as the values a revision records."""
    source = claim.source
    return ClaimContent(
        id=claim.id,
        actor_id=claim.actor_id,
        topic_ids=tuple(claim.topic_ids),
        text=claim.text,
        stated_at=to_datetime(claim.stated_at),
        source_url=source.url,
        source_title=source.title,
        source_publisher=source.publisher,
        source_published_at=(
            to_datetime(source.published_at) if source.HasField("published_at") else None
        ),
        language=normalise_language(claim.language),
        confidence=claim.confidence,
        state=ClaimState.RETRACTED
        if claim.state == resources_pb2.CLAIM_STATE_RETRACTED
        else ClaimState.ACTIVE,
    )


def response_from_result(result: BatchResult) -> indexer_service_pb2.IndexClaimsResponse:
    """The IndexClaims answer for one batch."""
    return indexer_service_pb2.IndexClaimsResponse(
        created=result.count(Outcome.CREATED),
        updated=result.count(Outcome.UPDATED),
        unchanged=result.count(Outcome.UNCHANGED),
        claims=[
            indexer_service_pb2.IndexedClaim(
                claim_id=claim.claim_id, revision=claim.revision, outcome=_OUTCOMES[claim.outcome]
            )
            for claim in result.claims
        ],
        actors_upserted=result.actors_upserted,
        topics_upserted=result.topics_upserted,
        batches=1,
    )
