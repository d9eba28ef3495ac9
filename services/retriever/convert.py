"""The retriever's rows as the API's protobuf messages: the servicer's translations."""

from __future__ import annotations

from panoptic.core.timestamps import timestamp_fields
from panoptic.model.claims import ClaimRow, claim_message
from panoptic.reads.domain import Referents
from panoptic.reads.queries import (
    ActorRow,
    RevisionRow,
    SearchHit,
    TimelineBucket,
    TopicRow,
)
from panoptic.v1 import resources_pb2, retriever_service_pb2

_CHANGES = {
    "CREATED": resources_pb2.CLAIM_CHANGE_CREATED,
    "UPDATED": resources_pb2.CLAIM_CHANGE_UPDATED,
    "RETRACTED": resources_pb2.CLAIM_CHANGE_RETRACTED,
    "RESTORED": resources_pb2.CLAIM_CHANGE_RESTORED,
}
_KINDS = {
    "PERSON": resources_pb2.ACTOR_KIND_PERSON,
    "ORGANISATION": resources_pb2.ACTOR_KIND_ORGANISATION,
    "OTHER": resources_pb2.ACTOR_KIND_OTHER,
}


def claim_in_view(claim: ClaimRow, referents: Referents | None) -> resources_pb2.Claim:
    """A claim as the API shows it; with `referents` (the FULL view), naming its actor and
    topics, the topics in the order of `topic_ids`."""
    message = claim_message(claim)
    if referents is None:
        return message
    embedded = message.referents
    embedded.actor.id = claim.actor_id
    actor = referents.actors.get(claim.actor_id)
    if actor is not None:
        embedded.actor.display_name = actor.display_name
        embedded.actor.kind = _KINDS[actor.kind]
    for topic_id in claim.topic_ids:
        topic = referents.topics.get(topic_id)
        embedded.topics.add(id=topic_id, display_name="" if topic is None else topic.display_name)
    return message


def revision_message(revision: RevisionRow) -> resources_pb2.ClaimRevision:
    """One entry of a claim's history."""
    return resources_pb2.ClaimRevision(
        revision=revision.revision,
        claim=claim_message(revision.claim),
        change=_CHANGES[revision.change],
        record_time=timestamp_fields(revision.record_time),
        request_id=revision.request_id,
        reason=revision.reason,
    )


def search_result(
    hit: SearchHit, referents: Referents | None
) -> retriever_service_pb2.SearchResult:
    """One search hit; with `referents`, its claim in the FULL view."""
    return retriever_service_pb2.SearchResult(
        claim=claim_in_view(hit.claim, referents), score=hit.score, highlight=hit.highlight
    )


def actor_message(actor: ActorRow) -> resources_pb2.Actor:
    """An actor as the API shows it."""
    return resources_pb2.Actor(
        id=actor.id,
        display_name=actor.display_name,
        aliases=actor.aliases,
        kind=_KINDS[actor.kind],
        description=actor.description,
        claim_count=actor.claim_count,
        create_time=timestamp_fields(actor.create_time),
        update_time=timestamp_fields(actor.update_time),
    )


def timeline_bucket(bucket: TimelineBucket) -> retriever_service_pb2.TimelineBucket:
    """One period of a timeline."""
    return retriever_service_pb2.TimelineBucket(
        start_time=timestamp_fields(bucket.start_time),
        claim_count=bucket.claim_count,
        sample_claims=[claim_message(claim) for claim in bucket.samples],
    )


def topic_message(topic: TopicRow) -> resources_pb2.Topic:
    """A topic as the API shows it."""
    return resources_pb2.Topic(
        id=topic.id,
        display_name=topic.display_name,
        parent_id=topic.parent_id or "",
        claim_count=topic.claim_count,
    )
