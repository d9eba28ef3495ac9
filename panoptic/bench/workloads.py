"""The request sequences `panoptic bench gateway` sends: what a workload of the REST API asks for.

Each workload is a fixed list of request paths drawn once with a fixed seed; wrk walks the same
list from its start for every target and round, so every target answers the same requests.
Popularity follows Zipf's law where a workload says so: the key of rank k (in a shuffled order
of the keys, fixed by the seed) is drawn with a weight of 1/k^s, s being the exponent.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

WORKLOADS = ("get-uniform", "get-zipf", "list-search")
DEFAULT_ZIPF_EXPONENT = 1.0
PATHS_PER_WORKLOAD = 100_000
PAGE_SIZE = 20
# The list-search mix, in shares of its requests: what a reader paging through the feed does
# most, searching next, and browsing a topic least.
_MIX = (("actor", 0.4), ("search", 0.4), ("topic", 0.2))
_SEARCH_WORD = re.compile(r"[a-z]{5,}")


@dataclass(frozen=True)
class Corpus:
    """What a benchmark loaded: the keys its requests name."""

    claim_ids: Sequence[str]
    actor_ids: Sequence[str]
    topic_ids: Sequence[str]
    claim_texts: Sequence[str]


@dataclass(frozen=True)
class Workload:
    """A named, described sequence of request paths."""

    name: str
    title: str
    paths: Sequence[str]
    get_claim_only: bool
    """Every request is a GetClaim (the only route the hand-written peer serves)."""


def zipf_draws(keys: Sequence[str], count: int, exponent: float, rng: random.Random) -> list[str]:
    """`count` keys drawn with Zipf's law over a shuffled order of `keys`."""
    ranked = list(keys)
    rng.shuffle(ranked)
    weights = itertools.accumulate(1 / rank**exponent for rank in range(1, len(ranked) + 1))
    return rng.choices(ranked, cum_weights=list(weights), k=count)


def build_workloads(
    corpus: Corpus,
    names: Sequence[str] = WORKLOADS,
    *,
    exponent: float = DEFAULT_ZIPF_EXPONENT,
    count: int = PATHS_PER_WORKLOAD,
    seed: int = 42,
) -> list[Workload]:
    """The workloads named, in the order named."""
    claims = f"{len(corpus.claim_ids):,} claims"
    builders = {
        "get-uniform": lambda rng: Workload(
            "get-uniform",
            f"GET /v1/claims/{{id}}, ids uniformly at random over {claims}",
            [f"/v1/claims/{i}" for i in rng.choices(corpus.claim_ids, k=count)],
            get_claim_only=True,
        ),
        "get-zipf": lambda rng: Workload(
            "get-zipf",
            f"GET /v1/claims/{{id}}, ids by Zipf's law (s={exponent:g}) over {claims}",
            [f"/v1/claims/{i}" for i in zipf_draws(corpus.claim_ids, count, exponent, rng)],
            get_claim_only=True,
        ),
        "list-search": lambda rng: Workload(
            "list-search",
            f"ListClaims by actor (40 %) and topic (20 %), SearchClaims (40 %), {PAGE_SIZE} a "
            f"page; actors, topics and searched claims by Zipf's law (s={exponent:g})",
            list_search_paths(corpus, count, exponent, rng),
            get_claim_only=False,
        ),
    }
    unknown = set(names) - builders.keys()
    if unknown:
        raise ValueError(f"unknown workloads {sorted(unknown)}; known: {', '.join(WORKLOADS)}")
    return [builders[name](random.Random(f"{seed}-{name}")) for name in names]


def list_search_paths(corpus: Corpus, count: int, exponent: float, rng: random.Random) -> list[str]:
    """ListClaims and SearchClaims requests in the shares of `_MIX`, shuffled together.

    A search asks for one word (five letters or more) of a claim drawn by Zipf's law, so that
    common words are searched more often, as in the texts themselves.
    """
    shares = {kind: round(count * share) for kind, share in _MIX}
    actors = zipf_draws(corpus.actor_ids, shares["actor"], exponent, rng)
    topics = zipf_draws(corpus.topic_ids, shares["topic"], exponent, rng)
    texts = zipf_draws(corpus.claim_texts, shares["search"], exponent, rng)
    paths = [f"/v1/claims?actorId={actor}&pageSize={PAGE_SIZE}" for actor in actors]
    paths += [f"/v1/claims?topicId={topic}&pageSize={PAGE_SIZE}" for topic in topics]
    for text in texts:
        words = _SEARCH_WORD.findall(text.lower()) or ["claim"]
        paths.append(f"/v1/claims:search?query={quote(rng.choice(words))}&pageSize={PAGE_SIZE}")
    rng.shuffle(paths)
    return paths
