"""Path templates (google/api/http.proto's grammar) and what the gateway agrees to expose."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from panoptic.v1 import field_rules_pb2, resources_pb2, retriever_service_pb2
from services.gateway.descriptors import build
from services.gateway.rules import (
    Router,
    TemplateError,
    UnsafeExposure,
    exposed_routes,
    has_dot_segment,
    parse_template,
)
from tests.support.gateway import made_up_api, packaged_files

RETRIEVER = "panoptic.v1.RetrieverService"


def test_a_single_segment_variable_matches_one_non_empty_segment() -> None:
    """`{claim_id}` takes exactly one segment and decodes it, slashes included."""
    template = parse_template("/v1/claims/{claim_id}")
    assert template.match("/v1/claims/abc") == {"claim_id": "abc"}
    assert template.match("/v1/claims/a%2Fb%20c") == {"claim_id": "a/b c"}
    assert template.match("/v1/claims/") is None
    assert template.match("/v1/claims/abc/def") is None
    assert template.match("/v1/claims") is None


def test_literals_match_byte_for_byte_on_the_raw_path() -> None:
    """Percent-encoded literals or slashes never stand in for the template's literal segments."""
    template = parse_template("/v1/claims/{claim_id}")
    assert template.match("/v1%2Fclaims/abc") is None
    assert template.match("/v1/claim%73/abc") is None
    assert template.match("/V1/claims/abc") is None


def test_the_custom_verb_is_split_off_the_last_segment() -> None:
    """`/v1/claims:search` matches only with its verb; a verb-less template keeps the colon."""
    search = parse_template("/v1/claims:search")
    assert search.verb == "search"
    assert search.match("/v1/claims:search") == {}
    assert search.match("/v1/claims") is None
    assert search.match("/v1/claims:searchx") is None
    assert parse_template("/v1/claims/{claim_id}").match("/v1/claims/a:b") == {"claim_id": "a:b"}


def test_variables_with_segment_patterns_and_double_wildcards() -> None:
    """`{name=shelves/*/books/*}` spans four segments; `**` takes the rest, keeping %2F encoded."""
    books = parse_template("/v1/{name=shelves/*/books/*}:get")
    assert books.match("/v1/shelves/s1/books/b%201:get") == {"name": "shelves/s1/books/b 1"}
    assert books.match("/v1/shelves/s1/books:get") is None
    rest = parse_template("/v1/files/{path=**}")
    assert rest.match("/v1/files/a/b%2Fc/d") == {"path": "a/b%2Fc/d"}
    assert rest.match("/v1/files") is None
    nested = parse_template("/v1/{parent.name}/items")
    assert nested.match("/v1/x/items") == {"parent.name": "x"}


@pytest.mark.parametrize(
    "source",
    [
        "v1/claims",
        "/v1/{claim_id",
        "/v1/claim_id}",
        "/v1/{a{b}}",
        "/v1/{1bad}",
        "/v1/**/tail",
        "/v1/{x=**}/tail",
        "/v1/./claims",
        "/v1/claims:",
        "/v1/{x}/{x}",
        "/v1/pre{x}",
    ],
)
def test_malformed_templates_are_refused(source: str) -> None:
    """Templates outside the grammar raise TemplateError instead of matching something odd."""
    with pytest.raises(TemplateError):
        parse_template(source)


def test_dot_segments_are_recognised_plain_and_encoded() -> None:
    """`.`/`..` segments in any spelling are flagged so the router can refuse them."""
    assert has_dot_segment("/v1/claims/../actors")
    assert has_dot_segment("/v1/claims/%2e%2E/actors")
    assert has_dot_segment("/v1/./claims")
    assert not has_dot_segment("/v1/claims/a..b")
    assert not has_dot_segment("/v1/claims/.hidden")


def test_the_retriever_exposes_exactly_its_get_bindings() -> None:
    """All eleven methods, ListClaims twice (additional_bindings): twelve GET routes."""
    routes = exposed_routes(build(packaged_files()).pool, [RETRIEVER])
    assert sorted((route.method.name, route.template.source) for route in routes) == sorted(
        [
            ("GetClaim", "/v1/claims/{claim_id}"),
            ("ListClaims", "/v1/claims"),
            ("ListClaims", "/v1/actors/{actor_id}/claims"),
            ("SearchClaims", "/v1/claims:search"),
            ("ListClaimRevisions", "/v1/claims/{claim_id}/revisions"),
            ("GetActor", "/v1/actors/{actor_id}"),
            ("ListActors", "/v1/actors"),
            ("GetActorTimeline", "/v1/actors/{actor_id}/timeline"),
            ("GetTopic", "/v1/topics/{topic_id}"),
            ("ListTopics", "/v1/topics"),
            ("BatchGetActors", "/v1/actors:batchGet"),
            ("BatchGetTopics", "/v1/topics:batchGet"),
        ]
    )
    assert {route.grpc_path.rsplit("/", 1)[0] for route in routes} == {f"/{RETRIEVER}"}


def test_the_router_picks_the_right_route_for_each_path() -> None:
    """Verb routes win over variables, and deeper literal paths over shorter ones."""
    router = Router(exposed_routes(build(packaged_files()).pool, [RETRIEVER]))

    def method_of(path: str) -> tuple[str, dict[str, str]] | None:
        found = router.find(path)
        return None if found is None else (found[0].method.name, found[1])

    assert method_of("/v1/claims:search") == ("SearchClaims", {})
    assert method_of("/v1/actors:batchGet") == ("BatchGetActors", {})
    assert method_of("/v1/topics:batchGet") == ("BatchGetTopics", {})
    assert method_of("/v1/actors") == ("ListActors", {})
    assert method_of("/v1/claims/c-1") == ("GetClaim", {"claim_id": "c-1"})
    assert method_of("/v1/claims/c-1/revisions") == ("ListClaimRevisions", {"claim_id": "c-1"})
    assert method_of("/v1/actors/a-1/claims") == ("ListClaims", {"actor_id": "a-1"})
    assert method_of("/v1/actors/a-1") == ("GetActor", {"actor_id": "a-1"})
    assert method_of("/panoptic.v1.IndexerService/IndexClaims") is None
    assert method_of("/v1/claims/c-1/") is None


def test_the_indexer_can_never_be_exposed() -> None:
    """Allow-listing the IndexerService refuses: its methods are not free of side effects."""
    with pytest.raises(UnsafeExposure, match="NO_SIDE_EFFECTS"):
        exposed_routes(build(packaged_files()).pool, ["panoptic.v1.IndexerService"])


_SERVICE = """
syntax: "proto3"
package: "test.v1"
dependency: "google/api/annotations.proto"
message_type {{ name: "Req" field {{ name: "id" number: 1 type: TYPE_STRING json_name: "id" }} }}
service {{
  name: "Made"
  method {{
    name: "Get" input_type: ".test.v1.Req" output_type: ".test.v1.Req"
    options {{ idempotency_level: {level} [google.api.http] {{ {binding} }} }}
    {streaming}
  }}
}}
"""


@pytest.mark.parametrize(
    ("level", "binding", "streaming", "complaint"),
    [
        ("NO_SIDE_EFFECTS", 'post: "/v1/made" body: "*"', "", "POST binding"),
        ("NO_SIDE_EFFECTS", 'delete: "/v1/made/{id}"', "", "DELETE binding"),
        ("NO_SIDE_EFFECTS", 'custom { kind: "PURGE" path: "/v1/made" }', "", "PURGE binding"),
        (
            "NO_SIDE_EFFECTS",
            'get: "/v1/made" additional_bindings { put: "/v1/made" body: "*" }',
            "",
            "PUT binding",
        ),
        ("NO_SIDE_EFFECTS", 'get: "/v1/made" body: "*"', "", "cannot take a body"),
        ("IDEMPOTENT", 'get: "/v1/made"', "", "NO_SIDE_EFFECTS"),
        ("IDEMPOTENCY_UNKNOWN", 'get: "/v1/made"', "", "NO_SIDE_EFFECTS"),
        ("NO_SIDE_EFFECTS", 'get: "/v1/made"', "server_streaming: true", "streaming"),
        ("NO_SIDE_EFFECTS", 'get: "/v1/made/{nope}"', "", "not a field"),
    ],
)
def test_a_service_with_anything_but_safe_get_bindings_is_refused(
    level: str, binding: str, streaming: str, complaint: str
) -> None:
    """Non-GET bindings, bodies, unmarked or streaming methods refuse the whole service."""
    api = made_up_api(_SERVICE.format(level=level, binding=binding, streaming=streaming))
    with pytest.raises(UnsafeExposure, match=complaint):
        exposed_routes(api.pool, ["test.v1.Made"])


def test_an_unknown_or_missing_service_is_refused() -> None:
    """A service the API does not define, or an empty allow-list, cannot start a gateway."""
    pool = build(packaged_files()).pool
    with pytest.raises(UnsafeExposure, match="does not define"):
        exposed_routes(pool, ["panoptic.v1.NoSuchService"])
    with pytest.raises(UnsafeExposure, match="no service"):
        exposed_routes(pool, [])


def test_reflected_descriptors_get_the_comments_of_the_compiled_set() -> None:
    """Descriptors as grpcio reflection serves them (no comments) take the set's comments."""
    served = []
    for module in (field_rules_pb2, resources_pb2, retriever_service_pb2):
        served.append(
            descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        )
    dependencies = [f for f in packaged_files() if not f.name.startswith("panoptic/")]
    loaded = build([*dependencies, *served], packaged_files())
    assert loaded.comments["panoptic.v1.RetrieverService.GetClaim"] == (
        "Returns one claim, retracted or not. NOT_FOUND when it does not exist."
    )
    assert loaded.comments["panoptic.v1.Claim.text"].startswith("The statement itself")
    assert loaded.comments["panoptic.v1.ClaimState.CLAIM_STATE_RETRACTED"].startswith("The claim")
    changed = descriptor_pb2.FileDescriptorProto()
    changed.CopyFrom(served[2])
    changed.message_type[0].field[0].name = "renamed_id"
    elsewhere = build([*dependencies, *served[:2], changed], packaged_files())
    assert "panoptic.v1.RetrieverService.GetClaim" not in elsewhere.comments
