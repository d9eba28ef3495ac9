"""Hypothesis strategies for Panoptic's gRPC requests: any message a client can encode, and
valid requests with one part replaced by an arbitrary value, so that generation reaches past
the first check a service makes.

Messages are generated from their descriptors, so a field added to a proto is generated too.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from panoptic.v1 import indexer_service_pb2, resources_pb2, retriever_service_pb2
from tests.conftest import random_id

api = retriever_service_pb2
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1)

# Every code point protobuf will encode: lone surrogates it refuses to (a client cannot send
# them in a message; the malformed-bytes tests send them raw). NUL and the rest are in.
CHARACTERS = st.characters(exclude_categories=("Cs",))
# Values a validator may treat specially: blanks, NUL, controls, lookalikes, markup, SQL.
AWKWARD_TEXTS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t\n\r",
    "\u200b",
    "\ufeffa",
    "A",
    "-a",
    "a-",
    "a--b",
    "é",
    "\U0001f600",
    "%",
    "_",
    "\\",
    "'; DROP TABLE claims; --",
    "<script>",
    "stated_at desc",
    "STATED_AT   ASC",
    "en",
    "pt-BR",
    "x-klingon",
    "https://example.org/a",
    "javascript:alert(1)",
)
# Characters that text columns, JSON or terminals may refuse or mangle.
AWKWARD_CHARACTERS = ("\x00", "\x01", "\x7f", "\u0085", "\u2028", "\ufffe", "\uffff", "\U0010ffff")
TEXTS = st.one_of(
    st.text(CHARACTERS, max_size=40),
    st.sampled_from(AWKWARD_TEXTS),
    # An ordinary name with one awkward character in it, which a validator must still see.
    st.builds(
        "{}{}{}".format,
        st.sampled_from(("", "Jane ", "en")),
        st.sampled_from(AWKWARD_CHARACTERS),
        st.sampled_from(("", " Doe", "x")),
    ),
    # Around the limits (names 300, reasons 2,000, search 1,000, text 20,000 characters),
    # and far beyond them, in one or several bytes per character.
    st.builds(operator.mul, CHARACTERS, st.sampled_from((129, 301, 1_001, 2_001, 20_001, 60_000))),
)

# Seconds of the instants at the edges of what protobuf, Python and PostgreSQL represent.
_EDGE_SECONDS = (
    0,
    -1,
    -62_135_596_800,  # 0001-01-01T00:00:00Z, Timestamp's and Python's first instant
    -62_135_596_801,
    253_402_300_799,  # 9999-12-31T23:59:59Z, Timestamp's and Python's last second
    253_402_300_800,
    -210_866_803_200,  # 4713-01-01 BC, PostgreSQL's first day
    9_224_318_016_000,  # beyond PostgreSQL's last day in 294276
    1_714_566_600,  # 2024-05-01, an ordinary day
    4_102_444_800,  # 2100-01-01, in the future
    -(2**63),
    2**63 - 1,
)
TIMESTAMPS = st.one_of(
    st.builds(
        timestamp_pb2.Timestamp,
        seconds=st.sampled_from(_EDGE_SECONDS),
        nanos=st.sampled_from((0, 999_999_999)),
    ),
    st.builds(
        timestamp_pb2.Timestamp,
        seconds=st.one_of(st.integers(-(10**12), 10**12), INT64),
        nanos=st.one_of(st.integers(0, 999_999_999), INT32),
    ),
)

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: TEXTS,
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: st.floats(),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32,
    FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64,
    FieldDescriptor.TYPE_FIXED64: UINT64,
    # proto3 enums are open: any int32 travels, named or not.
    FieldDescriptor.TYPE_ENUM: st.one_of(st.integers(0, 5), INT32),
}


def messages(descriptor: Descriptor) -> st.SearchStrategy[Message]:
    """Any message of this type a client can encode: each field left out or set to any value."""
    if descriptor.full_name == timestamp_pb2.Timestamp.DESCRIPTOR.full_name:
        return TIMESTAMPS
    kind = message_factory.GetMessageClass(descriptor)
    optional = {field.name: _field_values(field) for field in descriptor.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: kind(**values))


def _element_values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return st.deferred(lambda: messages(field.message_type))
    return _SCALARS[field.type]


def _field_values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.is_repeated:
        return st.lists(_element_values(field), max_size=4)
    return _element_values(field)


@dataclass(frozen=True)
class _Spot:
    """One place in a message a mutation can replace: a field, or one element of a list."""

    parent: Message
    field: FieldDescriptor
    index: int | None = None

    def replace(self, value: Any) -> None:
        """Puts `value` in this place."""
        name = self.field.name
        if self.field.is_repeated and self.index is None:
            container = getattr(self.parent, name)
            del container[:]
            container.extend(value)
        elif self.index is not None and self.field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(self.parent, name)[self.index].CopyFrom(value)
        elif self.index is not None:
            getattr(self.parent, name)[self.index] = value
        elif self.field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(self.parent, name).CopyFrom(value)
        else:
            setattr(self.parent, name, value)

    def values(self) -> st.SearchStrategy[Any]:
        """What may go in this place: any value of its type, or leaving it out."""
        if self.index is not None:
            return _element_values(self.field)
        if self.field.type == FieldDescriptor.TYPE_MESSAGE and not self.field.is_repeated:
            kind = message_factory.GetMessageClass(self.field.message_type)
            return st.one_of(st.just(kind()), _field_values(self.field))
        return _field_values(self.field)


def _spots(message: Message) -> Iterator[_Spot]:
    """Every field of the message and of the messages in it, and every element of its lists."""
    for field in message.DESCRIPTOR.fields:
        yield _Spot(message, field)
        value = getattr(message, field.name)
        if field.is_repeated:
            for index, element in enumerate(value):
                yield _Spot(message, field, index)
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    yield from _spots(element)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and message.HasField(field.name):
            yield from _spots(value)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Message]) -> Message:
    """A valid message with one field, or one element of a list, replaced by any value."""
    message = draw(valid)
    spot = draw(st.sampled_from(list(_spots(message))))
    spot.replace(draw(spot.values()))
    return message


def requests(kind: type[Message], valid: st.SearchStrategy[Message]) -> st.SearchStrategy[Message]:
    """Requests of one type: mostly valid ones with a part replaced, some valid, some anything."""
    return st.one_of(mutated(valid), mutated(valid), valid, messages(kind.DESCRIPTOR))


# --- valid requests from known data -----------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """Data the servers hold before generation starts, so that valid requests find something.

    `salt` prefixes every id the strategies make up, so that they never meet other tests' data.
    """

    salt: str
    actor_ids: Sequence[str]
    topic_ids: Sequence[str]
    claim_ids: Sequence[str]
    words: Sequence[str]
    page_tokens: dict[str, str]
    """A next-page token each List or Search method answered, by method name."""


def _maybe(values: st.SearchStrategy[Any], absent: Any = "") -> st.SearchStrategy[Any]:
    return st.one_of(st.just(absent), values)


_PLAUSIBLE_TIMES = st.builds(
    timestamp_pb2.Timestamp,
    seconds=st.integers(1_500_000_000, 1_750_000_000),
    nanos=st.integers(0, 999_999_999),
)


# The first and last instants a Timestamp (and Python) holds: valid times that a careless
# conversion turns into something else (asyncpg writes Python's extremes as infinities).
_FIRST_AND_LAST_INSTANTS = st.builds(
    timestamp_pb2.Timestamp,
    seconds=st.sampled_from((-62_135_596_800, 253_402_300_799)),
    nanos=st.sampled_from((0, 999_999_999)),
)


def _fresh_request_ids(known: Known) -> st.SearchStrategy[str]:
    """A request id never used before, so that a request is not refused as a reused one.

    Random rather than drawn: Hypothesis draws the same few values again and again.
    """
    return st.builds(lambda: random_id(known.salt))


def _page_size() -> st.SearchStrategy[int]:
    return st.integers(0, 3)


def _token(known: Known, method: str) -> st.SearchStrategy[str]:
    return _maybe(st.just(known.page_tokens[method]))


@st.composite
def _new_actor(draw: st.DrawFn, known: Known) -> resources_pb2.Actor:
    return resources_pb2.Actor(
        id=f"{known.salt}-a{draw(st.integers(0, 20))}",
        display_name=draw(st.sampled_from(("Jane Doe", "Ann O'Neill", "Ōsaka Port Authority"))),
        aliases=draw(st.lists(st.sampled_from(("JD", "Jane")), max_size=2, unique=True)),
        kind=draw(st.integers(0, 3)),
        description=draw(_maybe(st.just("A speaker."))),
    )


@st.composite
def _new_topic(draw: st.DrawFn, known: Known) -> resources_pb2.Topic:
    return resources_pb2.Topic(
        id=f"{known.salt}-t{draw(st.integers(0, 20))}",
        display_name=draw(st.sampled_from(("Energy", "Harbours", "Tax"))),
        parent_id=draw(_maybe(st.sampled_from(known.topic_ids))),
    )


@st.composite
def _new_claim(
    draw: st.DrawFn, known: Known, actor_ids: Sequence[str], topic_ids: Sequence[str]
) -> resources_pb2.Claim:
    stated_at = draw(st.one_of(_PLAUSIBLE_TIMES, _FIRST_AND_LAST_INSTANTS))
    return resources_pb2.Claim(
        id=f"{known.salt}-c{draw(st.integers(0, 200))}",
        actor_id=draw(st.sampled_from(actor_ids)),
        topic_ids=draw(st.lists(st.sampled_from(topic_ids), min_size=1, max_size=3, unique=True)),
        text=" ".join(draw(st.lists(st.sampled_from(known.words), min_size=1, max_size=8))),
        stated_at=stated_at,
        source=draw(
            _maybe(
                st.builds(
                    resources_pb2.Source,
                    url=st.just("https://news.example/a"),
                    title=st.just("A title"),
                    publisher=st.just("News Example"),
                    published_at=st.just(stated_at),
                ),
                absent=None,
            )
        ),
        language=draw(st.sampled_from(("en", "pt-BR", "de"))),
        confidence=draw(st.floats(0, 1)),
        state=draw(st.sampled_from((0, 1, 2))),
    )


@st.composite
def valid_index_requests(draw: st.DrawFn, known: Known) -> indexer_service_pb2.IndexClaimsRequest:
    """A batch the indexer should accept: new or known actors and topics, claims on them."""
    actors = draw(st.lists(_new_actor(known), max_size=2, unique_by=lambda actor: actor.id))
    topics = draw(st.lists(_new_topic(known), max_size=2, unique_by=lambda topic: topic.id))
    actor_ids = [*known.actor_ids, *(actor.id for actor in actors)]
    topic_ids = [*known.topic_ids, *(topic.id for topic in topics)]
    claims = draw(
        st.lists(
            _new_claim(known, actor_ids, topic_ids), max_size=2, unique_by=lambda claim: claim.id
        )
    )
    return indexer_service_pb2.IndexClaimsRequest(
        request_id=draw(_fresh_request_ids(known)),
        actors=actors,
        topics=topics,
        claims=claims,
    )


@st.composite
def oversized_index_requests(
    draw: st.DrawFn, known: Known
) -> indexer_service_pb2.IndexClaimsRequest:
    """A batch at the claim limit (1,000) or one over it."""
    request = draw(valid_index_requests(known))
    template = draw(_new_claim(known, known.actor_ids, known.topic_ids))
    count = draw(st.sampled_from((1_000, 1_001)))
    del request.claims[:]
    for index in range(count):
        copy = request.claims.add()
        copy.CopyFrom(template)
        copy.id = f"{template.id}-{index}"
    return request


def index_requests(known: Known) -> st.SearchStrategy[indexer_service_pb2.IndexClaimsRequest]:
    """Any IndexClaimsRequest, mostly valid ones with one part replaced."""
    valid = valid_index_requests(known)
    return st.one_of(
        requests(indexer_service_pb2.IndexClaimsRequest, valid),
        oversized_index_requests(known),
    )


def retract_requests(known: Known) -> st.SearchStrategy[indexer_service_pb2.RetractClaimRequest]:
    """Any RetractClaimRequest, mostly valid ones with one part replaced."""
    valid = st.builds(
        indexer_service_pb2.RetractClaimRequest,
        claim_id=st.one_of(
            st.sampled_from(known.claim_ids),
            st.integers(0, 200).map(lambda n: f"{known.salt}-c{n}"),
        ),
        reason=_maybe(st.just("Misattributed.")),
        request_id=_fresh_request_ids(known),
    )
    return requests(indexer_service_pb2.RetractClaimRequest, valid)


def _valid_retriever_requests(known: Known) -> dict[str, st.SearchStrategy[Message]]:
    """A valid request of each RetrieverService method, on the known data."""
    claim = st.sampled_from(known.claim_ids)
    actor = st.sampled_from(known.actor_ids)
    topic = st.sampled_from(known.topic_ids)
    filters = {
        "actor_id": _maybe(actor),
        "topic_id": _maybe(topic),
        "stated_after": _maybe(_PLAUSIBLE_TIMES, absent=None),
        "stated_before": _maybe(_PLAUSIBLE_TIMES, absent=None),
        "language": _maybe(st.sampled_from(("en", "pt-BR"))),
        "show_retracted": st.booleans(),
        "page_size": _page_size(),
    }
    query = st.lists(st.sampled_from(known.words), min_size=1, max_size=3).map(" ".join)
    view = st.integers(0, 2)
    return {
        "GetClaim": st.builds(api.GetClaimRequest, claim_id=claim, view=view),
        "ListClaims": st.builds(
            api.ListClaimsRequest,
            order_by=st.sampled_from(("", "stated_at desc", "stated_at asc")),
            page_token=_token(known, "ListClaims"),
            view=view,
            **filters,
        ),
        "SearchClaims": st.builds(
            api.SearchClaimsRequest,
            query=query,
            page_token=_token(known, "SearchClaims"),
            view=view,
            **filters,
        ),
        "ListClaimRevisions": st.builds(
            api.ListClaimRevisionsRequest,
            claim_id=claim,
            page_size=_page_size(),
            page_token=_token(known, "ListClaimRevisions"),
        ),
        "GetActor": st.builds(api.GetActorRequest, actor_id=actor),
        "ListActors": st.builds(
            api.ListActorsRequest,
            query=_maybe(st.sampled_from(("Jane", "jnae", "Doe"))),
            page_size=_page_size(),
            page_token=_token(known, "ListActors"),
        ),
        "GetActorTimeline": st.builds(
            api.GetActorTimelineRequest,
            actor_id=actor,
            topic_id=_maybe(topic),
            interval=st.integers(1, 4),
            stated_after=_maybe(_PLAUSIBLE_TIMES, absent=None),
            stated_before=_maybe(_PLAUSIBLE_TIMES, absent=None),
            sample_size=st.integers(0, 10),
        ),
        "GetTopic": st.builds(api.GetTopicRequest, topic_id=topic),
        "ListTopics": st.builds(
            api.ListTopicsRequest,
            parent_id=_maybe(topic),
            page_size=_page_size(),
            page_token=_token(known, "ListTopics"),
        ),
        # Up to a little past the limit of 100 ids, known ones repeated.
        "BatchGetActors": st.builds(
            api.BatchGetActorsRequest, ids=st.lists(actor, min_size=1, max_size=102)
        ),
        "BatchGetTopics": st.builds(
            api.BatchGetTopicsRequest, ids=st.lists(topic, min_size=1, max_size=102)
        ),
    }


def retriever_requests(known: Known) -> st.SearchStrategy[tuple[str, Message]]:
    """(method, request) for every RetrieverService method, mostly valid with a part replaced."""
    service = api.DESCRIPTOR.services_by_name["RetrieverService"]
    valid = _valid_retriever_requests(known)
    assert set(valid) == set(service.methods_by_name), "a retriever method has no strategy"
    return st.one_of(
        *(
            requests(message_factory.GetMessageClass(method.input_type), valid[name]).map(
                _pair_with(name)
            )
            for name, method in service.methods_by_name.items()
        )
    )


def _pair_with(name: str) -> Callable[[Message], tuple[str, Message]]:
    return lambda request: (name, request)
