"""The one model of a claim holds together: its values, its columns, the schema and the message."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from sqlalchemy import CheckConstraint

from migrations import schema
from panoptic.bench.peer import claim_json
from panoptic.model.claims import (
    CONTENT_COLUMNS,
    TIME_COLUMNS,
    ClaimContent,
    ClaimRow,
    ClaimState,
    claim_columns,
    claim_from_record,
    claim_message,
)
from panoptic.model.ids import CLAIM_ID, LANGUAGE_SHAPE, REQUEST_ID, SLUG, Grammar
from panoptic.v1 import resources_pb2

MOMENT = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC)

ROW = ClaimRow(
    id="c-1",
    actor_id="jane-doe",
    topic_ids=("ferries", "budget"),
    text="The ferry will run at night.",
    stated_at=MOMENT,
    source_url="https://example.org/a",
    source_title="Title",
    source_publisher="Publisher",
    source_published_at=None,
    language="en",
    confidence=0.75,
    state="RETRACTED",
    revision=3,
    create_time=MOMENT,
    update_time=MOMENT,
)


def test_a_claims_content_is_the_stored_claims_first_twelve_columns() -> None:
    """`ClaimContent`'s fields are `ClaimRow`'s first twelve, in order, so one list serves both."""
    assert tuple(field.name for field in fields(ClaimContent)) == CONTENT_COLUMNS
    assert ClaimRow._fields[: len(CONTENT_COLUMNS)] == CONTENT_COLUMNS


def test_the_schema_stores_every_column_of_the_model() -> None:
    """Every column of a claim is a column of `claims`, its content a column of
    `claim_revisions` (the id as `claim_id`), and the time columns hold timestamps."""
    assert set(ClaimRow._fields) <= set(schema.claims.c.keys())
    revision_columns = set(schema.claim_revisions.c.keys())
    assert {"claim_id", *CONTENT_COLUMNS[1:]} <= revision_columns
    for name in TIME_COLUMNS:
        assert schema.claims.c[name].type.python_type is datetime


def test_a_row_listed_by_claim_columns_reads_back_as_the_claim() -> None:
    """`claim_from_record` reads the columns `claim_columns` lists, from any position, topic
    lists (which the driver returns as lists) becoming tuples."""
    listed = claim_columns(lambda name: name).split(", ")
    assert tuple(listed) == ClaimRow._fields
    record = ("bucket", 7, *ROW[:2], list(ROW.topic_ids), *ROW[3:])
    claim = claim_from_record(record, 2)
    assert claim == ROW
    assert isinstance(claim.topic_ids, tuple)


def test_a_stored_claims_content_is_what_its_request_carried() -> None:
    """`ClaimContent.of` keeps every content field and types the state, so that a stored claim
    and the request that indexed it hash alike."""
    content = ClaimContent.of(ROW)
    assert content.state is ClaimState.RETRACTED
    assert tuple(getattr(content, name) for name in CONTENT_COLUMNS) == ROW[:12]
    assert content.content_hash == ClaimContent.of(ROW._replace(revision=9)).content_hash


def test_the_message_carries_every_field_of_the_claim() -> None:
    """The one claim→message conversion fills each field from the claim, leaves an unknown
    publication time unset, and names the state by the API's enum."""
    message = claim_message(ROW)
    assert message.id == ROW.id
    assert list(message.topic_ids) == list(ROW.topic_ids)
    assert message.stated_at.ToDatetime(tzinfo=UTC) == MOMENT
    assert message.source.url == ROW.source_url
    assert not message.source.HasField("published_at")
    assert message.state == resources_pb2.CLAIM_STATE_RETRACTED
    assert message.revision == 3
    published = claim_message(ROW._replace(source_published_at=MOMENT, state="ACTIVE"))
    assert published.source.published_at.ToDatetime(tzinfo=UTC) == MOMENT
    assert published.state == resources_pb2.CLAIM_STATE_ACTIVE


def test_the_schema_checks_ids_by_the_same_grammar_as_validation() -> None:
    """The CHECK constraints on actor, topic and claim ids hold the model's own patterns."""
    checks = {
        table.name: {
            str(check.sqltext) for check in table.constraints if isinstance(check, CheckConstraint)
        }
        for table in (schema.actors, schema.topics, schema.claims)
    }
    assert f"id ~ '{SLUG.pattern}'" in checks["actors"]
    assert f"id ~ '{SLUG.pattern}'" in checks["topics"]
    assert f"id ~ '{CLAIM_ID.pattern}'" in checks["claims"]


@pytest.mark.parametrize(
    ("grammar", "good", "bad"),
    [
        (SLUG, ["a", "jane-doe", "a" * 128], ["", "-a", "a-", "Jane", "a_b", "a" * 129]),
        (CLAIM_ID, ["c-1", "A.b_c~d", "x" * 128], ["", "a b", "a/b", "x" * 129]),
        (REQUEST_ID, ["r-1", "pipe:2024/05", "x" * 128], ["", "a b", "x" * 129]),
        (LANGUAGE_SHAPE, ["en", "pt-BR", "zh-Hant-TW"], ["", "e", "en_US", "-en"]),
    ],
)  # fmt: skip
def test_each_id_grammar_accepts_its_shape_only(
    grammar: Grammar, good: list[str], bad: list[str]
) -> None:
    """Each grammar matches the values of its shape and no others."""
    assert all(grammar.matches(value) for value in good)
    assert not any(grammar.matches(value) for value in bad)


@pytest.mark.parametrize(
    "row",
    [
        ROW,
        ROW._replace(stated_at=MOMENT.replace(microsecond=0), source_published_at=MOMENT),
        ROW._replace(stated_at=MOMENT.replace(microsecond=123_456), state="ACTIVE"),
    ],
    ids=["milliseconds", "whole-seconds-and-published", "microseconds"],
)
def test_the_bench_peer_writes_a_claim_as_the_gateway_does(row: ClaimRow) -> None:
    """The gateway benchmark's hand-written peer spells its claim JSON out itself (it is the
    speed baseline); what it writes is the proto3 JSON of the model's message, which the
    gateway answers."""
    expected = json_format.MessageToDict(
        claim_message(row), always_print_fields_with_no_presence=True
    )
    assert claim_json(row) == expected
