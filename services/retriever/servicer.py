"""The RetrieverService servicer: protobuf in, checked values to the handler, protobuf out.

Every refusal leaves as a rich status (AIP-193) with an ErrorInfo reason, through core's one
mapping (`Refusals`): INVALID_ARGUMENT with a BadRequest naming each field, NOT_FOUND,
DEADLINE_EXCEEDED, UNAVAILABLE. Messages say what to do; none carries SQL or anything internal.
"""

from __future__ import annotations

import grpc

from panoptic.core.consistency import ConsistencyTokens
from panoptic.core.grpc_refusals import Refusals
from panoptic.model.claims import claim_message
from panoptic.reads.domain import ClaimView
from panoptic.reads.handler import RetrieverHandler
from panoptic.v1 import resources_pb2, retriever_service_pb2, retriever_service_pb2_grpc
from services.retriever import convert, validation


class RetrieverServicer(retriever_service_pb2_grpc.RetrieverServiceServicer):
    """Every read of the contract."""

    def __init__(self, handler: RetrieverHandler, tokens: ConsistencyTokens) -> None:
        self._handler = handler
        self._tokens = tokens

    def _must_see(self, request: validation.ConsistentRead) -> int | None:
        """The log position the read must see, from its consistency token (None: any)."""
        return validation.consistency_position(request.consistency_token, self._tokens)

    async def GetClaim(  # noqa: N802 - named by the proto
        self, request: retriever_service_pb2.GetClaimRequest, context: grpc.aio.ServicerContext
    ) -> resources_pb2.Claim:
        """One claim, retracted or not."""
        async with Refusals(context):
            claim_id, view = validation.get_claim(request)
            if view is ClaimView.FULL:
                claim, referents = await self._handler.get_full_claim(
                    claim_id, context.time_remaining(), self._must_see(request)
                )
                return convert.claim_in_view(claim, referents)
            claim = await self._handler.get_claim(
                claim_id, context.time_remaining(), self._must_see(request)
            )
        return claim_message(claim)

    async def ListClaims(  # noqa: N802 - named by the proto
        self, request: retriever_service_pb2.ListClaimsRequest, context: grpc.aio.ServicerContext
    ) -> retriever_service_pb2.ListClaimsResponse:
        """A page of claims matching the filters."""
        async with Refusals(context):
            page = await self._handler.list_claims(
                validation.list_claims(request), context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.ListClaimsResponse(
            claims=[convert.claim_in_view(claim, page.referents) for claim in page.items],
            next_page_token=page.next_page_token,
        )

    async def SearchClaims(  # noqa: N802 - named by the proto
        self, request: retriever_service_pb2.SearchClaimsRequest, context: grpc.aio.ServicerContext
    ) -> retriever_service_pb2.SearchClaimsResponse:
        """A page of claims matching a text query, most relevant first."""
        async with Refusals(context):
            page = await self._handler.search_claims(
                validation.search_claims(request), context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.SearchClaimsResponse(
            results=[convert.search_result(hit, page.referents) for hit in page.items],
            next_page_token=page.next_page_token,
        )

    async def ListClaimRevisions(  # noqa: N802 - named by the proto
        self,
        request: retriever_service_pb2.ListClaimRevisionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> retriever_service_pb2.ListClaimRevisionsResponse:
        """A page of one claim's history, oldest first."""
        async with Refusals(context):
            claim_id, page_request = validation.list_revisions(request)
            page = await self._handler.list_revisions(
                claim_id, page_request, context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.ListClaimRevisionsResponse(
            revisions=[convert.revision_message(revision) for revision in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetActor(  # noqa: N802 - named by the proto
        self, request: retriever_service_pb2.GetActorRequest, context: grpc.aio.ServicerContext
    ) -> resources_pb2.Actor:
        """One actor."""
        async with Refusals(context):
            actor_id = validation.resource_id(request.actor_id, "actorId")
            actor = await self._handler.get_actor(
                actor_id, context.time_remaining(), self._must_see(request)
            )
        return convert.actor_message(actor)

    async def ListActors(  # noqa: N802 - named by the proto
        self, request: retriever_service_pb2.ListActorsRequest, context: grpc.aio.ServicerContext
    ) -> retriever_service_pb2.ListActorsResponse:
        """A page of actors, by id or by a typo-tolerant name query."""
        async with Refusals(context):
            query, page_request = validation.list_actors(request)
            page = await self._handler.list_actors(
                query, page_request, context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.ListActorsResponse(
            actors=[convert.actor_message(actor) for actor in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetActorTimeline(  # noqa: N802 - named by the proto
        self,
        request: retriever_service_pb2.GetActorTimelineRequest,
        context: grpc.aio.ServicerContext,
    ) -> retriever_service_pb2.ActorTimeline:
        """An actor's claims per period, with a few samples each."""
        async with Refusals(context):
            timeline = validation.actor_timeline(request)
            buckets = await self._handler.actor_timeline(
                timeline, context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.ActorTimeline(
            actor_id=timeline.actor_id,
            topic_id=timeline.topic_id or "",
            interval=request.interval,
            buckets=[convert.timeline_bucket(bucket) for bucket in buckets],
        )

    async def GetTopic(  # noqa: N802 - named by the proto
        self, request: retriever_service_pb2.GetTopicRequest, context: grpc.aio.ServicerContext
    ) -> resources_pb2.Topic:
        """One topic."""
        async with Refusals(context):
            topic_id = validation.resource_id(request.topic_id, "topicId")
            topic = await self._handler.get_topic(
                topic_id, context.time_remaining(), self._must_see(request)
            )
        return convert.topic_message(topic)

    async def ListTopics(  # noqa: N802 - named by the proto
        self, request: retriever_service_pb2.ListTopicsRequest, context: grpc.aio.ServicerContext
    ) -> retriever_service_pb2.ListTopicsResponse:
        """A page of topics by id, optionally only one topic's children."""
        async with Refusals(context):
            parent_id, page_request = validation.list_topics(request)
            page = await self._handler.list_topics(
                parent_id, page_request, context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.ListTopicsResponse(
            topics=[convert.topic_message(topic) for topic in page.items],
            next_page_token=page.next_page_token,
        )

    async def BatchGetActors(  # noqa: N802 - named by the proto
        self,
        request: retriever_service_pb2.BatchGetActorsRequest,
        context: grpc.aio.ServicerContext,
    ) -> retriever_service_pb2.BatchGetActorsResponse:
        """Actors by id, in the order asked (AIP-231)."""
        async with Refusals(context):
            actors = await self._handler.batch_get_actors(
                validation.batch_ids(request.ids), context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.BatchGetActorsResponse(
            actors=[convert.actor_message(actor) for actor in actors]
        )

    async def BatchGetTopics(  # noqa: N802 - named by the proto
        self,
        request: retriever_service_pb2.BatchGetTopicsRequest,
        context: grpc.aio.ServicerContext,
    ) -> retriever_service_pb2.BatchGetTopicsResponse:
        """Topics by id, in the order asked (AIP-231)."""
        async with Refusals(context):
            topics = await self._handler.batch_get_topics(
                validation.batch_ids(request.ids), context.time_remaining(), self._must_see(request)
            )
        return retriever_service_pb2.BatchGetTopicsResponse(
            topics=[convert.topic_message(topic) for topic in topics]
        )
