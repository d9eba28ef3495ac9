"""Query strings into request messages, responses into proto3 JSON, and `fields=` masks."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format, timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.descriptors import build
from services.gateway.transcode import (
    QueryError,
    RequestTranscoder,
    ResponseRenderer,
    _timestamp,
    apply_field_mask,
    parse_field_mask,
    suggest,
)
from tests.support.gateway import made_up_api, packaged_files

# Every kind of field a query parameter can set, nested two levels deep.
_KINDS = """
syntax: "proto3"
package: "test.v1"
dependency: "google/protobuf/timestamp.proto"
dependency: "google/protobuf/duration.proto"
dependency: "google/protobuf/wrappers.proto"
message_type {
  name: "Window"
  field { name: "start_time" number: 1 type: TYPE_MESSAGE
      type_name: ".google.protobuf.Timestamp" json_name: "startTime" }
  field { name: "length" number: 2 type: TYPE_MESSAGE
      type_name: ".google.protobuf.Duration" json_name: "length" }
  field { name: "inner" number: 3 type: TYPE_MESSAGE type_name: ".test.v1.Inner"
      json_name: "inner" }
}
message_type {
  name: "Inner"
  field { name: "deep_flag" number: 1 type: TYPE_BOOL json_name: "deepFlag" }
}
message_type {
  name: "Kinds"
  field { name: "text" number: 1 type: TYPE_STRING json_name: "text" }
  field { name: "page_size" number: 2 type: TYPE_INT32 json_name: "pageSize" }
  field { name: "big" number: 3 type: TYPE_INT64 json_name: "big" }
  field { name: "count" number: 4 type: TYPE_UINT32 json_name: "count" }
  field { name: "ratio" number: 5 type: TYPE_DOUBLE json_name: "ratio" }
  field { name: "show_all" number: 6 type: TYPE_BOOL json_name: "showAll" }
  field { name: "color" number: 7 type: TYPE_ENUM type_name: ".test.v1.Color" json_name: "color" }
  field { name: "tags" number: 8 label: LABEL_REPEATED type: TYPE_STRING json_name: "tags" }
  field { name: "colors" number: 9 label: LABEL_REPEATED type: TYPE_ENUM
      type_name: ".test.v1.Color" json_name: "colors" }
  field { name: "blob" number: 10 type: TYPE_BYTES json_name: "blob" }
  field { name: "window" number: 11 type: TYPE_MESSAGE type_name: ".test.v1.Window"
      json_name: "window" }
  field { name: "limit" number: 12 type: TYPE_MESSAGE
      type_name: ".google.protobuf.Int32Value" json_name: "limit" }
  field { name: "item_id" number: 13 type: TYPE_STRING json_name: "itemId" }
}
enum_type {
  name: "Color"
  value { name: "COLOR_UNSPECIFIED" number: 0 }
  value { name: "COLOR_DARK_RED" number: 1 }
  value { name: "COLOR_GREEN" number: 2 }
}
"""


def kinds_transcoder(bound: tuple[str, ...] = ("item_id",)) -> RequestTranscoder:
    """A transcoder for the made-up `Kinds` request with `item_id` bound by the path."""
    api = made_up_api(_KINDS)
    return RequestTranscoder(api.pool.FindMessageTypeByName("test.v1.Kinds"), bound)


def as_json(message: Any) -> dict[str, Any]:
    """A message in proto3 JSON, default values left out."""
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result


def test_every_scalar_kind_is_parsed_by_json_name() -> None:
    """Strings, int32, int64, uint32, doubles, bools, enums and bytes land in their fields."""
    request = kinds_transcoder().build(
        {"item_id": "a/b"},
        [
            ("text", "héllo wörld"),
            ("pageSize", "-7"),
            ("big", "9223372036854775807"),
            ("count", "4294967295"),
            ("ratio", "0.25"),
            ("showAll", "TRUE"),
            ("color", "COLOR_GREEN"),
            ("blob", "aGk_"),
        ],
    )
    assert as_json(request) == {
        "itemId": "a/b",
        "text": "héllo wörld",
        "pageSize": -7,
        "big": "9223372036854775807",
        "count": 4294967295,
        "ratio": 0.25,
        "showAll": True,
        "color": "COLOR_GREEN",
        "blob": "aGk/",
    }


def test_proto_names_are_accepted_as_well_as_json_names() -> None:
    """`page_size` and `pageSize`, `window.start_time` and `window.startTime` are the same."""
    by_proto = kinds_transcoder().build(
        {}, [("page_size", "3"), ("window.start_time", "2024-01-02T03:04:05Z")]
    )
    by_json = kinds_transcoder().build(
        {}, [("pageSize", "3"), ("window.startTime", "2024-01-02T03:04:05Z")]
    )
    assert (
        as_json(by_proto)
        == as_json(by_json)
        == {
            "pageSize": 3,
            "window": {"startTime": "2024-01-02T03:04:05Z"},
        }
    )


@pytest.mark.parametrize(
    ("query", "first", "second", "field"),
    [
        ([("pageSize", "3"), ("page_size", "4")], "pageSize", "page_size", "pageSize"),
        ([("page_size", "3"), ("pageSize", "3")], "page_size", "pageSize", "pageSize"),
        (
            [
                ("window.start_time", "2024-01-02T03:04:05Z"),
                ("window.startTime", "2025-01-01T00:00:00Z"),
            ],
            "window.start_time",
            "window.startTime",
            "window.startTime",
        ),
    ],
)
def test_a_field_given_by_both_its_names_is_refused_naming_both(
    query: list[tuple[str, str]], first: str, second: str, field: str
) -> None:
    """`pageSize=3&page_size=4` is one field given twice: refused, not the last value kept."""
    with pytest.raises(QueryError) as raised:
        kinds_transcoder().build({}, query)
    assert raised.value.parameter == field
    assert f"'{first}' and '{second}' name the same field" in raised.value.message


def test_repeated_fields_take_repeated_parameters_in_order() -> None:
    """`tags=a&tags=b` appends both; repeated enums too."""
    request = kinds_transcoder().build(
        {}, [("tags", "b"), ("colors", "green"), ("tags", "a"), ("colors", "1")]
    )
    assert as_json(request) == {"tags": ["b", "a"], "colors": ["COLOR_GREEN", "COLOR_DARK_RED"]}


def test_nested_fields_timestamps_durations_and_wrappers() -> None:
    """Dotted paths reach nested messages; well-known types take their JSON string forms."""
    request = kinds_transcoder().build(
        {},
        [
            ("window.startTime", "2024-05-01T12:30:00.5+02:00"),
            ("window.length", "1.5s"),
            ("window.inner.deepFlag", "1"),
            ("limit", "0"),
        ],
    )
    assert as_json(request) == {
        "window": {
            "startTime": "2024-05-01T10:30:00.500Z",
            "length": "1.500s",
            "inner": {"deepFlag": True},
        },
        "limit": 0,
    }
    assert request.HasField("limit")  # a wrapper set to zero is present, unlike a plain int32


@pytest.mark.parametrize(
    ("value", "number"),
    [("COLOR_DARK_RED", 1), ("DARK_RED", 1), ("dark_red", 1), ("Color_Green", 2), ("2", 2)],
)
def test_enums_by_full_name_short_name_any_case_or_number(value: str, number: int) -> None:
    """An enum is accepted with or without its prefix, in any case, or by its number."""
    request: Any = kinds_transcoder().build({}, [("color", value)])
    assert request.color == number


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ([("pageSize", "ten")], "pageSize", "must be an integer from -2147483648 to 2147483647"),
        ([("pageSize", "2147483648")], "pageSize", "must be an integer"),
        ([("count", "-1")], "count", "must be an integer from 0"),
        ([("big", "1.5")], "big", "must be an integer"),
        ([("ratio", "half")], "ratio", "must be a number"),
        ([("showAll", "yes")], "showAll", "must be true or false"),
        ([("color", "PURPLE")], "color", "must be one of COLOR_DARK_RED, COLOR_GREEN"),
        ([("color", "7")], "color", "must be one of"),
        ([("blob", "%%%")], "blob", "must be base64"),
        ([("window.startTime", "yesterday")], "window.startTime", "RFC 3339 timestamp"),
        ([("window.length", "5 minutes")], "window.length", "duration"),
        ([("limit", "x")], "limit", "must be an integer"),
        ([("text", "a"), ("text", "b")], "text", "takes one value but was given 2"),
        ([("itemId", "x")], "itemId", "set by the path"),
        ([("item_id", "x")], "item_id", "set by the path"),
    ],
)
def test_malformed_values_name_their_parameter(
    query: list[tuple[str, str]], parameter: str, message: str
) -> None:
    """Each bad value is a QueryError naming the parameter as the client spelled it."""
    with pytest.raises(QueryError) as raised:
        kinds_transcoder().build({}, query)
    assert raised.value.parameter == parameter
    assert message in raised.value.message
    assert f"'{parameter}'" in raised.value.message


@pytest.mark.parametrize(
    ("name", "guess"),
    [
        ("pagesize", "pageSize"),
        ("PAGE_SIZE", "pageSize"),
        ("showALL", "showAll"),
        ("colour", "color"),
        ("window.startTim", "window.startTime"),
        ("feilds", "fields"),
    ],
)
def test_unknown_parameters_are_named_with_the_closest_valid_one(name: str, guess: str) -> None:
    """An unknown parameter is refused with a did-you-mean for the nearest known name."""
    with pytest.raises(QueryError) as raised:
        kinds_transcoder().build({}, [(name, "1")])
    assert raised.value.parameter == name
    assert raised.value.message == f"unknown query parameter '{name}'; did you mean '{guess}'?"


def test_an_unknown_parameter_without_a_near_miss_lists_what_is_accepted() -> None:
    """With nothing close, the message lists the route's parameters instead."""
    with pytest.raises(QueryError, match="this route accepts: text, pageSize"):
        kinds_transcoder().build({}, [("zzzzzz", "1")])
    assert suggest("zzzzzz", ["text"]) is None


def test_the_fields_parameter_is_the_gateways_not_the_requests() -> None:
    """`fields` never reaches the request message."""
    request = kinds_transcoder().build({}, [("fields", "text")])
    assert as_json(request) == {}


def test_the_retrievers_requests_transcode_from_the_contracts_parameters() -> None:
    """ListClaims takes API.md's filters by JSON or proto name, enums by short name too."""
    pool = build(packaged_files()).pool
    transcoder = RequestTranscoder(
        pool.FindMessageTypeByName("panoptic.v1.ListClaimsRequest"), ("actor_id",)
    )
    request = transcoder.build(
        {"actor_id": "jane-doe"},
        [
            ("topicId", "energy"),
            ("stated_after", "2024-01-01T00:00:00Z"),
            ("statedBefore", "2025-01-01T00:00:00Z"),
            ("language", "en"),
            ("showRetracted", "true"),
            ("orderBy", "stated_at asc"),
            ("pageSize", "20"),
            ("pageToken", "abc"),
        ],
    )
    assert as_json(request) == {
        "actorId": "jane-doe",
        "topicId": "energy",
        "statedAfter": "2024-01-01T00:00:00Z",
        "statedBefore": "2025-01-01T00:00:00Z",
        "language": "en",
        "showRetracted": True,
        "orderBy": "stated_at asc",
        "pageSize": 20,
        "pageToken": "abc",
    }
    timeline = RequestTranscoder(
        pool.FindMessageTypeByName("panoptic.v1.GetActorTimelineRequest"), ("actor_id",)
    )
    assert as_json(timeline.build({"actor_id": "a"}, [("interval", "month")]))["interval"] == (
        "TIMELINE_INTERVAL_MONTH"
    )


def test_responses_render_in_the_proto3_json_mapping() -> None:
    """camelCase names, int64 as strings, RFC 3339 times, enum names, defaults written."""
    pool = build(packaged_files()).pool
    claim_type = pool.FindMessageTypeByName("panoptic.v1.Claim")
    renderer = ResponseRenderer(claim_type, pool)
    claim = RequestTranscoder(claim_type, ()).message_class(
        id="c-1", revision=3, state=2, topic_ids=["t"]
    )
    claim.stated_at.FromJsonString("2024-05-01T12:30:00Z")
    assert renderer.to_json(claim) == {
        "id": "c-1",
        "actorId": "",
        "topicIds": ["t"],
        "text": "",
        "statedAt": "2024-05-01T12:30:00Z",
        "language": "",
        "confidence": 0.0,
        "state": "CLAIM_STATE_RETRACTED",
        "revision": "3",
    }


def test_field_masks_select_nested_and_repeated_fields_by_either_name() -> None:
    """`claims.id,claims.source.url,next_page_token` keeps just those, item by item."""
    pool = build(packaged_files()).pool
    response_type = pool.FindMessageTypeByName("panoptic.v1.ListClaimsResponse")
    tree = parse_field_mask(["claims.id,claims.source.url", "next_page_token"], response_type)
    value = {
        "claims": [
            {"id": "a", "text": "x", "source": {"url": "u", "title": "t"}},
            {"id": "b", "text": "y"},
        ],
        "nextPageToken": "",
    }
    assert apply_field_mask(value, tree) == {
        "claims": [{"id": "a", "source": {"url": "u"}}, {"id": "b"}],
        "nextPageToken": "",
    }
    assert parse_field_mask(["*"], response_type) is None
    whole = parse_field_mask(["claims", "claims.id"], response_type)
    assert apply_field_mask(value, whole) == {"claims": value["claims"]}


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ("claims.txt", "did you mean 'claims.text'?"),
        ("claim", "did you mean 'claims'?"),
        ("claims.statedAt.seconds", "has no subfields"),
        ("nextPageToken.x", "has no subfields"),
    ],
)
def test_unknown_field_mask_paths_are_refused_with_a_suggestion(mask: str, message: str) -> None:
    """A mask naming no field of the response is a QueryError on `fields`."""
    pool = build(packaged_files()).pool
    response_type = pool.FindMessageTypeByName("panoptic.v1.ListClaimsResponse")
    with pytest.raises(QueryError) as raised:
        parse_field_mask([mask], response_type)
    assert raised.value.parameter == "fields"
    assert message in raised.value.message


_RENDERED = """
syntax: "proto3"
package: "test.v1"
dependency: "google/protobuf/timestamp.proto"
dependency: "google/protobuf/duration.proto"
dependency: "google/protobuf/wrappers.proto"
message_type {
  name: "Everything"
  field { name: "big" number: 1 type: TYPE_INT64 json_name: "big" }
  field { name: "ubig" number: 2 type: TYPE_UINT64 json_name: "ubig" }
  field { name: "small" number: 3 type: TYPE_FLOAT json_name: "small" }
  field { name: "wide" number: 4 type: TYPE_DOUBLE json_name: "wide" }
  field { name: "data" number: 5 type: TYPE_BYTES json_name: "data" }
  field { name: "color" number: 6 type: TYPE_ENUM type_name: ".test.v1.Shade" json_name: "color" }
  field { name: "times" number: 7 label: LABEL_REPEATED type: TYPE_MESSAGE
      type_name: ".google.protobuf.Timestamp" json_name: "times" }
  field { name: "span" number: 8 type: TYPE_MESSAGE
      type_name: ".google.protobuf.Duration" json_name: "span" }
  field { name: "maybe" number: 9 type: TYPE_MESSAGE
      type_name: ".google.protobuf.StringValue" json_name: "maybe" }
  field { name: "labels" number: 10 label: LABEL_REPEATED type: TYPE_MESSAGE
      type_name: ".test.v1.Everything.LabelsEntry" json_name: "labels" }
  field { name: "child" number: 11 type: TYPE_MESSAGE type_name: ".test.v1.Everything"
      json_name: "child" }
  field { name: "picked" number: 12 type: TYPE_STRING json_name: "picked" oneof_index: 0 }
  field { name: "opt" number: 13 type: TYPE_INT32
      json_name: "opt" proto3_optional: true oneof_index: 1 }
  field { name: "floats" number: 14 label: LABEL_REPEATED type: TYPE_DOUBLE json_name: "floats" }
  nested_type {
    name: "LabelsEntry"
    field { name: "key" number: 1 type: TYPE_STRING json_name: "key" }
    field { name: "value" number: 2 type: TYPE_INT64 json_name: "value" }
    options { map_entry: true }
  }
  oneof_decl { name: "choice" }
  oneof_decl { name: "_opt" }
}
enum_type { name: "Shade" value { name: "SHADE_UNSPECIFIED" number: 0 }
    value { name: "SHADE_DARK" number: 1 } }
"""


def test_the_compiled_renderer_writes_exactly_what_json_format_writes() -> None:
    """Every field kind, presence and nesting renders as MessageToDict would, default or set."""
    api = made_up_api(_RENDERED)
    everything = api.pool.FindMessageTypeByName("test.v1.Everything")
    renderer = ResponseRenderer(everything, api.pool)
    message_class = RequestTranscoder(everything, ()).message_class
    empty = message_class()
    full = message_class(
        big=-(2**62),
        ubig=2**64 - 1,
        small=0.1,
        wide=float("nan"),
        data=b"\x00\xffhi",
        color=7,
        labels={"a": 1, "b": -2},
        picked="yes",
        opt=0,
        floats=[1.5, float("inf"), float("-inf")],
    )
    for nanos in (0, 5_000_000, 123_000, 7):
        stamp = full.times.add()
        stamp.seconds, stamp.nanos = -62135596800 + 86400 * 400, nanos
    full.span.FromJsonString("3.5s")
    full.maybe.value = ""
    full.child.color = 1
    full.child.child.big = 3
    for message in (empty, full, full.child):
        expected = json_format.MessageToDict(
            message, always_print_fields_with_no_presence=True, descriptor_pool=api.pool
        )
        assert renderer.to_json(message) == expected


@given(
    # From 0001-01-01 to 9999-12-31T23:59:59, the range a Timestamp may hold, and any nanos;
    # every millisecond count, and whole seconds, micro- and nanoseconds, are each drawn often.
    seconds=st.integers(-62_135_596_800, 253_402_300_799),
    nanos=st.one_of(
        st.just(0),
        st.integers(0, 999).map(lambda millis: millis * 1_000_000),
        st.integers(0, 999_999).map(lambda micros: micros * 1000),
        st.integers(0, 999_999_999),
    ),
)
def test_a_timestamp_renders_as_json_format_writes_it(seconds: int, nanos: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert _timestamp(stamp) == stamp.ToJsonString()


def test_the_retrievers_responses_render_like_json_format() -> None:
    """A populated claim, revision and timeline render as MessageToDict does."""
    pool = build(packaged_files()).pool
    for name, text in [
        (
            "panoptic.v1.ListClaimRevisionsResponse",
            '{"revisions": [{"revision": "2", "change": "CLAIM_CHANGE_UPDATED",'
            ' "recordTime": "2024-05-01T12:30:00.250Z", "claim": {"id": "c", "confidence": 0.875,'
            ' "source": {"url": "u", "publishedAt": "2024-05-01T12:30:00Z"}}}],'
            ' "nextPageToken": "t"}',
        ),
        (
            "panoptic.v1.ActorTimeline",
            '{"actorId": "a", "interval": "TIMELINE_INTERVAL_WEEK", "buckets": [{"startTime":'
            ' "2024-01-01T00:00:00Z", "claimCount": "12", "sampleClaims": [{"id": "x"}]}]}',
        ),
    ]:
        message_type = pool.FindMessageTypeByName(name)
        message = RequestTranscoder(message_type, ()).message_class()
        json_format.Parse(text, message)
        expected = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
        assert ResponseRenderer(message_type, pool).to_json(message) == expected
