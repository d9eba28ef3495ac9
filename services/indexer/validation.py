"""Checks an indexing request before anything is written, reporting every problem at once.

Field paths use the proto3 JSON names the pipelines send (`claims[3].statedAt`), so a
pipeline can point at the offending line of its own input. References to actors and topics
that are not in the batch are checked later, against the database, in the same transaction.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import langcodes
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from panoptic.core.timestamps import timestamp_problem, to_datetime
from panoptic.model.ids import CLAIM_ID, LANGUAGE_SHAPE, REQUEST_ID, SLUG
from panoptic.v1 import indexer_service_pb2, resources_pb2

MAX_NAME_CHARS = 300
MAX_ALIASES = 50
MAX_DESCRIPTION_CHARS = 2_000
MAX_TOPICS_PER_CLAIM = 20
MAX_URL_CHARS = 2_048
MAX_REASON_CHARS = 2_000
# A pipeline's clock may run a little ahead of ours; beyond this a statement is "in the future".
CLOCK_SKEW = timedelta(minutes=5)
# "http(s)://", an ASCII host (and port), then anything but whitespace after a "/", "?" or "#":
# what urlsplit reads as an http(s) scheme and a non-empty host, with no character it removes
# or strips (tabs, line breaks, leading controls) and no IPv6 brackets it would check.
_PLAIN_WEB_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]*)?(?:[/?#]\S*)?")
# The enums' known numbers (`EnumTypeWrapper.values()` builds a new list at every call).
_ACTOR_KINDS = frozenset(resources_pb2.ActorKind.values())
_CLAIM_STATES = frozenset(resources_pb2.ClaimState.values())


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field, as `google.rpc.BadRequest.FieldViolation` carries it."""

    field: str
    description: str
    reason: str = "INVALID_FIELD"


@dataclass(frozen=True)
class Limits:
    """The configurable limits validation enforces."""

    max_batch_claims: int = 1_000
    max_text_chars: int = 20_000


def validate_index_request(
    request: indexer_service_pb2.IndexClaimsRequest, limits: Limits, now: datetime | None = None
) -> list[FieldViolation]:
    """Every problem of the request that can be seen without the database."""
    now = now or datetime.now(UTC)
    problems = _request_id_problems(request.request_id)
    problems += character_problems(request)
    if len(request.claims) > limits.max_batch_claims:
        problems.append(
            FieldViolation(
                "claims",
                f"a batch holds at most {limits.max_batch_claims} claims; this one has "
                f"{len(request.claims)}: split it",
                "BATCH_TOO_LARGE",
            )
        )
    problems += _duplicates("actors", [actor.id for actor in request.actors])
    problems += _duplicates("topics", [topic.id for topic in request.topics])
    problems += _duplicates("claims", [claim.id for claim in request.claims])
    for index, actor in enumerate(request.actors):
        problems += _actor_problems(f"actors[{index}]", actor)
    for index, topic in enumerate(request.topics):
        problems += _topic_problems(f"topics[{index}]", topic)
    problems += _topic_cycles(request.topics)
    latest = now + CLOCK_SKEW  # the latest statement time accepted
    for index, claim in enumerate(request.claims):
        problems += _claim_problems(f"claims[{index}]", claim, limits, latest)
    return problems


def validate_retract_request(
    request: indexer_service_pb2.RetractClaimRequest,
) -> list[FieldViolation]:
    """Every problem of a retraction request."""
    problems = _request_id_problems(request.request_id)
    problems += character_problems(request)
    if not request.claim_id:
        problems.append(FieldViolation("claimId", "required", "REQUIRED"))
    elif not CLAIM_ID.matches(request.claim_id):
        problems.append(FieldViolation("claimId", "is not a valid claim id"))
    if len(request.reason) > MAX_REASON_CHARS:
        problems.append(FieldViolation("reason", f"longer than {MAX_REASON_CHARS} characters"))
    return problems


def character_problems(message: Message, path: str = "") -> list[FieldViolation]:
    """Characters PostgreSQL cannot store, in every string field of `message`, however deep.

    PostgreSQL's text refuses NUL. Lone surrogates and invalid UTF-8 never get this far:
    protobuf refuses them as it parses a request. Each field's length is checked with its
    other rules, where its limit is known.
    """
    if not _holds_nul(message):  # the usual case, answered without naming a single field
        return []
    problems = []
    for field, value in message.ListFields():
        name = f"{path}.{field.json_name}" if path else field.json_name
        repeated = field.is_repeated
        items = (
            [(f"{name}[{index}]", item) for index, item in enumerate(value)]
            if repeated
            else [(name, value)]
        )
        for item_path, item in items:
            if field.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                problems.append(
                    FieldViolation(item_path, "contains a NUL character, which cannot be stored")
                )
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                problems += character_problems(item, item_path)
    return problems


def _holds_nul(message: Message) -> bool:
    """Whether any string field of `message`, however deep, holds a NUL: a walk that builds no
    field path and visits only the fields that can hold text (docs/performance.md#nul-check)."""
    strings, messages = _text_fields(message.DESCRIPTOR)
    for name, repeated in strings:
        value = getattr(message, name)
        if any("\x00" in item for item in value) if repeated else "\x00" in value:
            return True
    for name, repeated in messages:
        if repeated:
            if any(_holds_nul(item) for item in getattr(message, name)):
                return True
        elif message.HasField(name) and _holds_nul(getattr(message, name)):
            return True
    return False


@functools.cache
def _text_fields(
    descriptor: Descriptor,
) -> tuple[tuple[tuple[str, bool], ...], tuple[tuple[str, bool], ...]]:
    """The string fields of a message type, and its message fields whose type holds text."""
    strings = tuple(
        (field.name, field.is_repeated)
        for field in descriptor.fields
        if field.type == FieldDescriptor.TYPE_STRING
    )
    messages = tuple(
        (field.name, field.is_repeated)
        for field in descriptor.fields
        if field.message_type is not None and _holds_text(field.message_type)
    )
    return strings, messages


@functools.cache
def _holds_text(descriptor: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a message of this type can hold a string anywhere (a Timestamp cannot)."""
    if descriptor.full_name in seen:  # a recursive type: its other fields decide
        return False
    inner = seen | {descriptor.full_name}
    return any(
        field.type == FieldDescriptor.TYPE_STRING
        or (field.message_type is not None and _holds_text(field.message_type, inner))
        for field in descriptor.fields
    )


# Pipelines send a handful of distinct tags millions of times: parse each tag once.
@functools.lru_cache(maxsize=1024)
def normalise_language(tag: str) -> str:
    """The canonical spelling of a valid BCP-47 tag (`pt-br` becomes `pt-BR`)."""
    return str(langcodes.standardize_tag(tag))


@functools.lru_cache(maxsize=1024)
def _is_language_tag(tag: str) -> bool:
    return LANGUAGE_SHAPE.matches(tag) and bool(langcodes.tag_is_valid(tag))


def _request_id_problems(request_id: str) -> list[FieldViolation]:
    if not request_id:
        return [FieldViolation("requestId", "required: an idempotency key per batch", "REQUIRED")]
    if not REQUEST_ID.matches(request_id):
        return [FieldViolation("requestId", REQUEST_ID.rule)]
    return []


def _duplicates(collection: str, ids: list[str]) -> list[FieldViolation]:
    counts = Counter(ids)
    seen: set[str] = set()
    problems = []
    for index, item_id in enumerate(ids):
        if item_id and counts[item_id] > 1:
            if item_id in seen:
                problems.append(
                    FieldViolation(
                        f"{collection}[{index}].id",
                        f"duplicate id {item_id!r} in this batch",
                        "DUPLICATE_ID",
                    )
                )
            seen.add(item_id)
    return problems


def _slug_problems(path: str, value: str) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(path, "required", "REQUIRED")]
    if not SLUG.matches(value):
        return [FieldViolation(path, SLUG.rule)]
    return []


def _name_problems(path: str, value: str) -> list[FieldViolation]:
    if not value.strip():
        return [FieldViolation(path, "required, and not blank", "REQUIRED")]
    if len(value) > MAX_NAME_CHARS:
        return [FieldViolation(path, f"longer than {MAX_NAME_CHARS} characters")]
    return []


def _actor_problems(path: str, actor: resources_pb2.Actor) -> list[FieldViolation]:
    problems = _slug_problems(f"{path}.id", actor.id)
    problems += _name_problems(f"{path}.displayName", actor.display_name)
    if len(actor.aliases) > MAX_ALIASES:
        problems.append(FieldViolation(f"{path}.aliases", f"more than {MAX_ALIASES} aliases"))
    for index, alias in enumerate(actor.aliases):
        problems += _name_problems(f"{path}.aliases[{index}]", alias)
    if actor.kind not in _ACTOR_KINDS:
        problems.append(FieldViolation(f"{path}.kind", f"unknown kind {actor.kind}"))
    if len(actor.description) > MAX_DESCRIPTION_CHARS:
        problems.append(
            FieldViolation(f"{path}.description", f"longer than {MAX_DESCRIPTION_CHARS} characters")
        )
    return problems


def _topic_problems(path: str, topic: resources_pb2.Topic) -> list[FieldViolation]:
    problems = _slug_problems(f"{path}.id", topic.id)
    problems += _name_problems(f"{path}.displayName", topic.display_name)
    if topic.parent_id:
        if topic.parent_id == topic.id:
            problems.append(FieldViolation(f"{path}.parentId", "a topic cannot be its own parent"))
        else:
            problems += _slug_problems(f"{path}.parentId", topic.parent_id)
    return problems


def _topic_cycles(topics: Sequence[resources_pb2.Topic]) -> list[FieldViolation]:
    """Parent chains within the batch that loop back on themselves."""
    # A topic that is its own parent is reported by `_topic_problems` already: once is enough.
    parents = {
        topic.id: topic.parent_id
        for topic in topics
        if topic.parent_id and topic.parent_id != topic.id
    }
    problems = []
    for index, topic in enumerate(topics):
        seen = {topic.id}
        current = parents.get(topic.id)
        while current:
            if current in seen:
                problems.append(
                    FieldViolation(
                        f"topics[{index}].parentId", "parent links in this batch form a cycle"
                    )
                )
                break
            seen.add(current)
            current = parents.get(current)
    return problems


def _claim_problems(
    path: str, claim: resources_pb2.Claim, limits: Limits, latest: datetime
) -> list[FieldViolation]:
    """A claim's problems, each field path prefixed with `path` only once there are any: most
    claims have none, and building a path for every field checked was a fifth of the cost of
    validating a batch."""
    problems = _claim_field_problems(claim, limits, latest)
    return [replace(problem, field=f"{path}.{problem.field}") for problem in problems]


def _claim_field_problems(
    claim: resources_pb2.Claim, limits: Limits, latest: datetime
) -> list[FieldViolation]:
    """A claim's problems, with paths relative to the claim. Each field is read once: protobuf
    makes a new Python string at every read of a string field."""
    problems = []
    claim_id, topic_ids, text, confidence = claim.id, claim.topic_ids, claim.text, claim.confidence
    if not claim_id:
        problems.append(FieldViolation("id", "required", "REQUIRED"))
    elif not CLAIM_ID.matches(claim_id):
        problems.append(FieldViolation("id", CLAIM_ID.rule))
    problems += _slug_problems("actorId", claim.actor_id)
    if not topic_ids:
        problems.append(FieldViolation("topicIds", "at least one topic", "REQUIRED"))
    elif len(topic_ids) > MAX_TOPICS_PER_CLAIM:
        problems.append(FieldViolation("topicIds", f"at most {MAX_TOPICS_PER_CLAIM} topics"))
    for index, topic_id in enumerate(topic_ids):
        if not SLUG.matches(topic_id):  # a valid one needs no path
            problems += _slug_problems(f"topicIds[{index}]", topic_id)
    if len(set(topic_ids)) != len(topic_ids):
        problems.append(FieldViolation("topicIds", "lists a topic more than once"))
    if not text.strip():
        problems.append(FieldViolation("text", "required, and not blank", "REQUIRED"))
    elif len(text) > limits.max_text_chars:
        problems.append(
            FieldViolation(
                "text",
                f"{len(text)} characters; the limit is {limits.max_text_chars}",
                "TEXT_TOO_LONG",
            )
        )
    problems += _stated_at_problems("statedAt", claim, latest)
    problems += _language_problems("language", claim.language)
    if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        problems.append(FieldViolation("confidence", f"must be between 0 and 1, not {confidence}"))
    if claim.state not in _CLAIM_STATES:
        problems.append(FieldViolation("state", f"unknown state {claim.state}"))
    problems += _source_problems("source", claim.source)
    return problems


def _stated_at_problems(
    path: str, claim: resources_pb2.Claim, latest: datetime
) -> list[FieldViolation]:
    if not claim.HasField("stated_at"):
        return [FieldViolation(path, "required: when the statement was made", "REQUIRED")]
    problems = _time_problems(path, claim.stated_at)
    if problems:
        return problems
    if to_datetime(claim.stated_at) > latest:
        return [FieldViolation(path, "is in the future", "IN_FUTURE")]
    return []


def _language_problems(path: str, language: str) -> list[FieldViolation]:
    if not language:
        return [FieldViolation(path, "required: a BCP-47 tag such as en or pt-BR", "REQUIRED")]
    if not _is_language_tag(language):
        return [FieldViolation(path, f"{language!r} {LANGUAGE_SHAPE.rule}")]
    return []


def _source_problems(path: str, source: resources_pb2.Source) -> list[FieldViolation]:
    problems = []
    url = source.url
    if url:
        if not is_web_url(url):
            problems.append(FieldViolation(f"{path}.url", "must be an absolute http(s) URL"))
        elif len(url) > MAX_URL_CHARS:
            problems.append(
                FieldViolation(f"{path}.url", f"longer than {MAX_URL_CHARS} characters")
            )
    for name in ("title", "publisher"):
        if len(getattr(source, name)) > MAX_NAME_CHARS * 4:
            problems.append(FieldViolation(f"{path}.{name}", "too long"))
    if source.HasField("published_at"):
        problems += _time_problems(f"{path}.publishedAt", source.published_at)
    return problems


def is_web_url(url: str) -> bool:
    """Whether `url` is an absolute http(s) URL as `urlsplit` reads it: its scheme is http or
    https and it names a host."""
    # Most URLs a pipeline sends are plainly so, and a pattern says so in a fraction of the time
    # urlsplit takes (a tenth of the cost of validating a claim). Whatever it does not match
    # (another spelling of the scheme, whitespace, brackets, other characters in the host) is
    # left to urlsplit; a test holds the two to the same answers.
    if _PLAIN_WEB_URL.fullmatch(url):
        return True
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _time_problems(path: str, value: timestamp_pb2.Timestamp) -> list[FieldViolation]:
    problem = timestamp_problem(value)
    return [] if problem is None else [FieldViolation(path, problem, "TIME_OUT_OF_RANGE")]
