"""REST through the gateway: a real `panoptic gateway` in front of a real retriever, on loopback.

Every route and every kind of parameter of the contract is exercised over HTTP; the corpus is
small, hand-made and loaded through the indexer's handler with random ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.gateway import GatewayCorpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    """An HTTP client on the module's running gateway."""
    with httpx.Client(base_url=gateway, timeout=10) as http:
        yield http


def get_json(client: httpx.Client, path: str, **params: Any) -> Any:
    """GET that must succeed; the JSON body."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def ids(claims: list[dict[str, Any]]) -> list[str]:
    """The ids of claims in a response."""
    return [claim["id"] for claim in claims]


def test_get_claim_renders_the_proto3_json_mapping(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """GET /v1/claims/{id}: camelCase, int64 as a string, RFC 3339 times, enums by name."""
    claim = get_json(client, f"/v1/claims/{corpus.claim(2)}")
    assert claim["id"] == corpus.claim(2)
    assert claim["actorId"] == corpus.ann
    assert claim["topicIds"] == [corpus.energy, corpus.wind]
    assert claim["text"] == "Les éoliennes en mer seront doublées avant 2030."
    assert claim["statedAt"] == "2024-02-10T12:00:00Z"
    assert claim["source"] == {"url": "https://news.example/2", "title": "News", "publisher": ""}
    assert claim["language"] == "fr"
    assert claim["confidence"] == pytest.approx(0.6)
    assert claim["state"] == "CLAIM_STATE_ACTIVE"
    assert claim["revision"] == "1"
    assert claim["createTime"].endswith("Z")


def test_a_retracted_claim_is_still_readable_by_id(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """Retracted claims answer GET by id with their state and new revision."""
    claim = get_json(client, f"/v1/claims/{corpus.claim(4)}")
    assert (claim["state"], claim["revision"]) == ("CLAIM_STATE_RETRACTED", "2")


def test_list_claims_filters_by_json_or_proto_names_alike(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """`actorId`/`actor_id`, `topicId`/`topic_id`: same request, newest statement first."""
    by_json = get_json(client, "/v1/claims", actorId=corpus.ann, topicId=corpus.energy)
    by_proto = get_json(client, "/v1/claims", actor_id=corpus.ann, topic_id=corpus.energy)
    assert by_json == by_proto
    assert ids(by_json["claims"]) == [corpus.claim(5), corpus.claim(2), corpus.claim(1)]
    assert by_json["nextPageToken"] == ""


def test_the_additional_binding_lists_an_actors_claims(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """GET /v1/actors/{id}/claims is ListClaims with actorId from the path."""
    nested = get_json(client, f"/v1/actors/{corpus.ann}/claims", topicId=corpus.wind)
    assert ids(nested["claims"]) == [corpus.claim(3), corpus.claim(2)]
    flat = get_json(client, "/v1/claims", actorId=corpus.ann, topicId=corpus.wind)
    assert nested == flat


def test_timestamps_booleans_strings_and_ordering(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """statedAfter/statedBefore (RFC 3339), showRetracted, language and orderBy all apply."""
    window = get_json(
        client,
        "/v1/claims",
        actorId=corpus.ann,
        statedAfter="2024-02-01T00:00:00Z",
        stated_before="2024-05-01T00:00:00+00:00",
        showRetracted="true",
        orderBy="stated_at asc",
    )
    assert ids(window["claims"]) == [corpus.claim(2), corpus.claim(3), corpus.claim(4)]
    french = get_json(client, "/v1/claims", actorId=corpus.ann, language="fr")
    assert ids(french["claims"]) == [corpus.claim(2)]


def test_pages_follow_next_page_token(client: httpx.Client, corpus: GatewayCorpus) -> None:
    """pageSize and pageToken page through a list without gaps or repeats."""
    seen: list[str] = []
    token = ""
    for _ in range(5):
        page = get_json(client, "/v1/claims", actorId=corpus.ann, pageSize="2", pageToken=token)
        seen += ids(page["claims"])
        token = page["nextPageToken"]
        if not token:
            break
    assert seen == [corpus.claim(5), corpus.claim(3), corpus.claim(2), corpus.claim(1)]


def test_search_uses_the_custom_verb(client: httpx.Client, corpus: GatewayCorpus) -> None:
    """GET /v1/claims:search returns scored, highlighted results with the same filters."""
    found = get_json(client, "/v1/claims:search", query="harbour bridge", actorId=corpus.ann)
    assert [result["claim"]["id"] for result in found["results"]] == [corpus.claim(3)]
    assert found["results"][0]["score"] > 0
    assert "<mark>" in found["results"][0]["highlight"]


def test_revisions_list_a_claims_history(client: httpx.Client, corpus: GatewayCorpus) -> None:
    """GET /v1/claims/{id}/revisions: oldest first, change kinds by enum name."""
    history = get_json(client, f"/v1/claims/{corpus.claim(5)}/revisions")
    assert [r["revision"] for r in history["revisions"]] == ["1", "2"]
    assert [r["change"] for r in history["revisions"]] == [
        "CLAIM_CHANGE_CREATED",
        "CLAIM_CHANGE_UPDATED",
    ]
    assert history["revisions"][1]["claim"]["text"].endswith("hospital roof.")


def test_actors_by_id_and_by_typo_tolerant_query(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """GET /v1/actors/{id} and GET /v1/actors?query= with a misspelt name."""
    actor = get_json(client, f"/v1/actors/{corpus.ann}")
    assert actor["kind"] == "ACTOR_KIND_PERSON"
    assert actor["aliases"] == ["Annie"]
    assert actor["claimCount"] == "4"
    found = get_json(client, "/v1/actors", query=f"Anabel Quixotik {corpus.prefix}")
    assert corpus.ann in [a["id"] for a in found["actors"]]


@pytest.mark.parametrize("interval", ["TIMELINE_INTERVAL_MONTH", "MONTH", "month", "3"])
def test_timelines_take_enums_by_name_short_name_or_number(
    client: httpx.Client, corpus: GatewayCorpus, interval: str
) -> None:
    """GET /v1/actors/{id}/timeline?interval=...: one bucket per month with claims."""
    timeline = get_json(
        client, f"/v1/actors/{corpus.ann}/timeline", interval=interval, topic_id=corpus.energy
    )
    assert timeline["interval"] == "TIMELINE_INTERVAL_MONTH"
    assert [bucket["startTime"][:7] for bucket in timeline["buckets"]] == [
        "2024-01",
        "2024-02",
        "2024-05",
    ]
    assert timeline["buckets"][0]["claimCount"] == "1"


def test_topics_by_id_and_by_parent(client: httpx.Client, corpus: GatewayCorpus) -> None:
    """GET /v1/topics/{id} and GET /v1/topics?parentId=."""
    wind = get_json(client, f"/v1/topics/{corpus.wind}")
    assert wind["parentId"] == corpus.energy
    children = get_json(client, "/v1/topics", parentId=corpus.energy)
    assert [topic["id"] for topic in children["topics"]] == [corpus.wind]


def test_fields_returns_a_partial_response(client: httpx.Client, corpus: GatewayCorpus) -> None:
    """`fields=` keeps only the named fields, into repeated messages too."""
    claim = get_json(client, f"/v1/claims/{corpus.claim(1)}", fields="id,source.url")
    assert claim == {"id": corpus.claim(1), "source": {"url": "https://news.example/1"}}
    page = get_json(
        client, "/v1/claims", actorId=corpus.bob, fields="claims.id,claims.state,nextPageToken"
    )
    assert page == {
        "claims": [{"id": corpus.claim(6), "state": "CLAIM_STATE_ACTIVE"}],
        "nextPageToken": "",
    }


def test_head_answers_like_get_without_a_body(client: httpx.Client, corpus: GatewayCorpus) -> None:
    """HEAD has GET's status and headers, and no body."""
    get = client.get(f"/v1/claims/{corpus.claim(1)}")
    head = client.head(f"/v1/claims/{corpus.claim(1)}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == get.headers["content-length"]


def test_openapi_docs_and_probes_are_served(client: httpx.Client) -> None:
    """/openapi.json, /docs (no external assets), /healthz and /readyz answer 200."""
    document = get_json(client, "/openapi.json")
    assert "/v1/claims:search" in document["paths"]
    # Learnt by reflection, yet described with the proto comments.
    get_claim = document["paths"]["/v1/claims/{claim_id}"]["get"]
    assert get_claim["summary"] == "Returns one claim, retracted or not."
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert "http://" not in docs.text
    assert "https://" not in docs.text
    assert get_json(client, "/healthz") == {"status": "SERVING"}
    assert get_json(client, "/readyz") == {"status": "SERVING"}
