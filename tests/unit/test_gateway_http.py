"""The gateway's HTTP pieces without I/O: errors, validators, encodings, rate limits, OpenAPI."""

from __future__ import annotations

from typing import Any

import grpc
import jsonschema
import orjson
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from panoptic.model.ids import SLUG
from services.gateway.descriptors import build
from services.gateway.errors import HTTP_STATUS, ApiError, from_rpc_error, rate_limited
from services.gateway.openapi import build_openapi
from services.gateway.ratelimit import RateLimiter
from services.gateway.responses import entity_tag, negotiate_encoding, not_modified
from services.gateway.rules import exposed_routes
from tests.support.gateway import packaged_files


class FakeRpcError:
    """What the gateway reads of a failed call: a code, details and trailers."""

    def __init__(self, code: grpc.StatusCode, details: str, status: Any = None) -> None:
        self._code, self._details = code, details
        self._trailers = () if status is None else (("grpc-status-details-bin", status),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers


def rich(code: grpc.StatusCode, message: str, *details: Any) -> bytes:
    """A serialized google.rpc.Status as the retriever sends it."""
    packed = []
    for detail in details:
        container = any_pb2.Any()
        container.Pack(detail)
        packed.append(container)
    return status_pb2.Status(
        code=code.value[0], message=message, details=packed
    ).SerializeToString()


def error_json(error: ApiError) -> dict[str, Any]:
    """The AIP-193 body."""
    body: dict[str, Any] = orjson.loads(error.body())["error"]
    return body


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.OUT_OF_RANGE, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.CANCELLED, 499),
        (grpc.StatusCode.UNKNOWN, 500),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.DATA_LOSS, 500),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    ],
)
def test_grpc_codes_map_to_the_standard_http_statuses(code: grpc.StatusCode, status: int) -> None:
    """Each code gets google/rpc/code.proto's HTTP status, in the status and the body."""
    assert HTTP_STATUS[code] == status
    error = from_rpc_error(FakeRpcError(code, "x", rich(code, "what happened")), "rid")
    assert error.status == status
    assert error_json(error)["code"] == status
    assert error_json(error)["status"] == code.name


def test_rich_details_pass_through_in_proto3_json_with_their_type() -> None:
    """ErrorInfo and BadRequest from the trailer reach the client with their @type."""
    info = error_details_pb2.ErrorInfo(reason="INVALID_PAGE_SIZE", domain="panoptic.v1")
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="pageSize", description="must be >= 0"
            )
        ]
    )
    status = rich(grpc.StatusCode.INVALID_ARGUMENT, "1 invalid field: pageSize", info, bad)
    body = error_json(
        from_rpc_error(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "x", status), "r")
    )
    assert body == {
        "code": 400,
        "message": "1 invalid field: pageSize",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "INVALID_PAGE_SIZE",
                "domain": "panoptic.v1",
            },
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "pageSize", "description": "must be >= 0"}],
            },
        ],
    }


@pytest.mark.parametrize(
    ("code", "rich_status"),
    [
        (grpc.StatusCode.UNAVAILABLE, False),
        (grpc.StatusCode.DEADLINE_EXCEEDED, False),
        (grpc.StatusCode.INVALID_ARGUMENT, False),
        (grpc.StatusCode.INTERNAL, True),
        (grpc.StatusCode.UNKNOWN, True),
        (grpc.StatusCode.DATA_LOSS, False),
    ],
)
def test_internal_detail_never_leaks(code: grpc.StatusCode, rich_status: bool) -> None:
    """Library-made and INTERNAL-like statuses are answered generically, with the request id."""
    secret = "failed to connect to all addresses; last error: 10.1.2.3:50052 SELECT * FROM claims"
    trailer = rich(code, secret) if rich_status else None
    body = error_json(from_rpc_error(FakeRpcError(code, secret, trailer), "req-42"))
    assert "10.1.2.3" not in orjson.dumps(body).decode()
    assert "SELECT" not in orjson.dumps(body).decode()
    assert body["details"][0]["reason"] == f"UPSTREAM_{code.name}"
    assert body["details"][0]["metadata"] == {"requestId": "req-42"}


def test_rate_limited_answers_carry_retry_after_and_retry_info() -> None:
    """A 429 says when to come back, in a header and a RetryInfo detail."""
    error = rate_limited(0.2)
    assert error.status == 429
    assert error.headers == {"retry-after": "1"}
    assert error_json(error)["details"][1] == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "1s",
    }


def test_the_token_bucket_allows_bursts_then_refills_at_the_rate() -> None:
    """A client gets `burst` requests at once, then one per 1/rate seconds; clients are apart."""
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0
    now[0] += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_idle_clients_are_forgotten_when_too_many_are_tracked() -> None:
    """Memory stays bounded: full buckets are dropped past the tracking limit."""
    now = [0.0]
    limiter = RateLimiter(rate=10.0, burst=1, clock=lambda: now[0], max_clients=10)
    for number in range(10):
        limiter.acquire(f"client-{number}")
    now[0] += 1.0
    limiter.acquire("one-more")
    assert len(limiter._buckets) == 1


def test_strong_etags_match_across_encodings_and_weak_forms() -> None:
    """If-None-Match finds the tag as sent, weak, with an encoding suffix, in a list, or `*`."""
    tag = entity_tag(b'{"id":"c-1"}')
    assert tag == entity_tag(b'{"id":"c-1"}') != entity_tag(b'{"id":"c-2"}')
    core = tag.strip('"')
    for header in (tag, f"W/{tag}", f'"{core}-gzip"', f'"{core}-br"', f'"other", {tag}', "*"):
        assert not_modified(header, tag), header
    assert not not_modified('"other"', tag)
    assert not not_modified("", tag)


@pytest.mark.parametrize(
    ("header", "choice"),
    [
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip;q=0.5", "gzip"),
        ("identity", None),
        ("*", "br"),
        ("gzip;q=0", None),
        ("", None),
    ],
)
def test_encoding_negotiation_prefers_brotli_then_gzip(header: str, choice: str | None) -> None:
    """Accept-Encoding with q-values picks brotli, else gzip, else identity."""
    assert negotiate_encoding(header) == choice


def test_the_openapi_document_covers_every_route_with_comments() -> None:
    """Every route, its parameters and schemas are described from the proto comments, the
    batch gets and the claim views among them."""
    loaded = build(packaged_files())
    routes = exposed_routes(loaded.pool, ["panoptic.v1.RetrieverService"])
    document = build_openapi(routes, loaded)
    assert document["openapi"] == "3.1.0"
    assert sorted(document["paths"]) == sorted(
        [
            "/v1/actors",
            "/v1/actors/{actor_id}",
            "/v1/actors/{actor_id}/claims",
            "/v1/actors/{actor_id}/timeline",
            "/v1/actors:batchGet",
            "/v1/claims",
            "/v1/claims/{claim_id}",
            "/v1/claims/{claim_id}/revisions",
            "/v1/claims:search",
            "/v1/topics",
            "/v1/topics/{topic_id}",
            "/v1/topics:batchGet",
        ]
    )
    get_claim = document["paths"]["/v1/claims/{claim_id}"]["get"]
    assert get_claim["summary"] == "Returns one claim, retracted or not."
    assert get_claim["parameters"][0]["description"] == "The claim's id. Required."
    list_claims = document["paths"]["/v1/claims"]["get"]
    names = [parameter["name"] for parameter in list_claims["parameters"]]
    assert names == [
        "actorId",
        "topicId",
        "statedAfter",
        "statedBefore",
        "language",
        "showRetracted",
        "orderBy",
        "pageSize",
        "pageToken",
        "consistencyToken",
        "view",
        "fields",
    ]
    consistency = next(p for p in list_claims["parameters"] if p["name"] == "consistencyToken")
    assert "consistency token from the indexer" in consistency["description"]
    view = next(p for p in list_claims["parameters"] if p["name"] == "view")
    assert view["schema"]["enum"] == [
        "CLAIM_VIEW_UNSPECIFIED",
        "CLAIM_VIEW_BASIC",
        "CLAIM_VIEW_FULL",
    ]
    for path in ("/v1/claims/{claim_id}", "/v1/claims:search", "/v1/actors/{actor_id}/claims"):
        parameters = document["paths"][path]["get"]["parameters"]
        assert [p["schema"] for p in parameters if p["name"] == "view"] == [view["schema"]], path
    for path, kind in (("/v1/actors:batchGet", "Actor"), ("/v1/topics:batchGet", "Topic")):
        batch_get = document["paths"][path]["get"]
        assert batch_get["summary"].startswith(f"Returns up to 100 {kind.lower()}s by id")
        ids = batch_get["parameters"][0]
        assert (ids["name"], ids["in"], ids["required"], ids["explode"]) == (
            "ids",
            "query",
            True,
            True,
        )
        assert ids["schema"]["minItems"] == 1
        assert ids["schema"]["maxItems"] == 100
        assert ids["schema"]["items"]["pattern"] == SLUG.pattern
        answer = batch_get["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": f"#/components/schemas/panoptic.v1.BatchGet{kind}sResponse"}
    schemas = document["components"]["schemas"]
    claim = schemas["panoptic.v1.Claim"]
    assert claim["properties"]["referents"]["readOnly"] is True
    assert (
        claim["properties"]["referents"]["$ref"]
        == "#/components/schemas/panoptic.v1.ClaimReferents"
    )
    assert claim["properties"]["revision"]["type"] == "string"
    assert claim["properties"]["revision"]["readOnly"] is True
    assert claim["properties"]["statedAt"]["format"] == "date-time"
    assert "CLAIM_STATE_RETRACTED" in schemas["panoptic.v1.ClaimState"]["enum"]
    assert get_claim["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    # Every schema is itself valid JSON Schema (OpenAPI 3.1 uses draft 2020-12).
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
