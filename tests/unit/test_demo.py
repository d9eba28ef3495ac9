"""Unit tests for the synthetic corpus generator in `panoptic.suite.demo` (memory only, no I/O)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from google.protobuf import json_format

from panoptic.suite import demo
from panoptic.v1 import resources_pb2

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
CLAIM_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
OUTPUT_ONLY = {"claimCount", "revision", "createTime", "updateTime"}


@dataclass(frozen=True)
class Corpus:
    """The bodies of a generated corpus, split by kind, in the order they were yielded."""

    records: list[dict[str, Any]]
    topics: list[dict[str, Any]]
    actors: list[dict[str, Any]]
    claims: list[dict[str, Any]]

    @classmethod
    def generate(cls, **sizes: int) -> Corpus:
        """Generates a corpus with `demo.generate_corpus(**sizes)` and splits it."""
        records = list(demo.generate_corpus(**sizes))
        return cls(
            records=records,
            topics=[r["topic"] for r in records if "topic" in r],
            actors=[r["actor"] for r in records if "actor" in r],
            claims=[r["claim"] for r in records if "claim" in r],
        )


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    """The default corpus (seed 42, 20,000 claims), generated once for the module."""
    return Corpus.generate()


@pytest.fixture(scope="module")
def scaled() -> Corpus:
    """A corpus far larger in actors and topics than the word lists, generated once."""
    return Corpus.generate(seed=7, actors=5000, topics=300, claims=50_000)


def jsonl(**sizes: int) -> str:
    """The JSONL text `write_jsonl` makes of a corpus."""
    out = io.StringIO()
    demo.write_jsonl(demo.generate_corpus(**sizes), out)
    return out.getvalue()


def parse_time(text: str) -> datetime:
    """An RFC 3339 UTC timestamp as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_references_resolve(corpus: Corpus) -> None:
    """Every parent, actor and topic a record names was yielded, parents before children."""
    seen_topics: set[str] = set()
    for topic in corpus.topics:
        parent = topic.get("parentId")
        assert parent is None or parent in seen_topics, topic
        seen_topics.add(topic["id"])
    actor_ids = {actor["id"] for actor in corpus.actors}
    for claim in corpus.claims:
        assert claim["actorId"] in actor_ids
        assert set(claim["topicIds"]) <= seen_topics
        assert 1 <= len(claim["topicIds"]) <= 3
        assert len(set(claim["topicIds"])) == len(claim["topicIds"])


def assert_ids_unique_and_well_formed(corpus: Corpus) -> None:
    """Topic and actor ids are unique slugs; claim ids are unique and use the allowed set."""
    for bodies, pattern in (
        (corpus.topics, SLUG),
        (corpus.actors, SLUG),
        (corpus.claims, CLAIM_ID),
    ):
        ids = [body["id"] for body in bodies]
        assert len(set(ids)) == len(ids)
        bad = [i for i in ids if len(i) > 128 or not pattern.fullmatch(i)]
        assert not bad, bad[:5]


def test_same_seed_gives_identical_jsonl() -> None:
    """Two runs with the same seed and sizes write exactly the same JSONL text."""
    assert jsonl(seed=3) == jsonl(seed=3)


def test_same_seed_gives_the_same_bytes_as_ever() -> None:
    """Seed 42's 2,000-claim corpus is byte for byte the one every earlier version made.

    Pinned so that moving or reformatting the words in `demo_data/` cannot change the corpus
    that `make run` loads and the benchmarks measure.
    """
    digest = hashlib.sha256(jsonl(seed=42, claims=2000).encode()).hexdigest()
    assert digest == "6aa95e28bde57f90cbefbd8d1627ff6763b06fb2534aef0441843aea5257b6f8"


def test_different_seed_gives_different_actors_and_claims() -> None:
    """Another seed keeps the fixed topic tree but changes the actors and the claims."""
    first = jsonl(seed=1, claims=500).splitlines()
    second = jsonl(seed=2, claims=500).splitlines()
    assert first[:40] == second[:40]
    assert first[40:240] != second[40:240]
    assert first[240:] != second[240:]


def test_smaller_corpus_is_a_prefix_of_a_larger_one() -> None:
    """With the same seed, the first N claims do not depend on how many claims are asked for."""
    small = jsonl(seed=5, claims=300).splitlines()
    large = jsonl(seed=5, claims=1000).splitlines()
    assert large[: len(small)] == small


def test_default_sizes(corpus: Corpus) -> None:
    """The defaults give 40 topics, 200 actors and 20,000 claims, in that order."""
    assert (len(corpus.topics), len(corpus.actors), len(corpus.claims)) == (40, 200, 20_000)
    kinds = [next(iter(record)) for record in corpus.records]
    assert kinds == ["topic"] * 40 + ["actor"] * 200 + ["claim"] * 20_000


def test_every_record_parses_as_index_record(corpus: Corpus) -> None:
    """Each record is exactly one of topic, actor or claim and parses with no unknown fields."""
    for record in corpus.records:
        assert len(record) == 1
        message = json_format.ParseDict(record, resources_pb2.IndexRecord())
        assert message.WhichOneof("record") == next(iter(record))


def test_output_only_fields_are_left_out(corpus: Corpus) -> None:
    """No record sets a field the service computes (counts, revision, create or update time)."""
    for record in corpus.records:
        (body,) = record.values()
        assert not OUTPUT_ONLY & body.keys()


def test_topic_hierarchy(corpus: Corpus) -> None:
    """Eight roots, every other topic has a yielded parent, and parents come before children."""
    roots = [topic for topic in corpus.topics if "parentId" not in topic]
    assert len(roots) == 8
    assert {"economy", "health", "environment", "energy-policy"} <= {t["id"] for t in corpus.topics}
    assert_references_resolve(corpus)


def test_claims_refer_to_yielded_actors_and_topics(corpus: Corpus) -> None:
    """Every claim names a yielded actor and one to three distinct yielded topics."""
    assert_references_resolve(corpus)
    assert {len(claim["topicIds"]) for claim in corpus.claims} == {1, 2, 3}


def test_ids_are_unique_and_well_formed(corpus: Corpus) -> None:
    """Topic and actor ids are unique lowercase slugs; claim ids are unique and URL-safe."""
    assert_ids_unique_and_well_formed(corpus)
    assert all(re.fullmatch(r"c-[0-9a-f]{16}", claim["id"]) for claim in corpus.claims)


def test_times_are_rfc3339_inside_the_ten_year_window(corpus: Corpus) -> None:
    """statedAt lies in 2016-2025 and publishedAt follows it by at most three days."""
    years: Counter[int] = Counter()
    for claim in corpus.claims:
        stated_text, published_text = claim["statedAt"], claim["source"]["publishedAt"]
        assert RFC3339_UTC.fullmatch(stated_text)
        assert RFC3339_UTC.fullmatch(published_text)
        stated, published = parse_time(stated_text), parse_time(published_text)
        assert demo.WINDOW_START <= stated <= published <= demo.WINDOW_END
        assert (published - stated).total_seconds() <= 3 * 24 * 3600
        years[stated.year] += 1
    assert sorted(years) == list(range(2016, 2026))
    assert years[2025] > years[2016]  # activity grows over time


def test_activity_is_zipf_like(corpus: Corpus) -> None:
    """A tenth of the actors make most claims, and the busiest makes many times the median."""
    per_actor = Counter(claim["actorId"] for claim in corpus.claims)
    counts = sorted((per_actor[actor["id"]] for actor in corpus.actors), reverse=True)
    assert sum(counts[: len(counts) // 10]) > 0.4 * len(corpus.claims)
    assert counts[0] > 10 * statistics.median(counts)
    per_topic = Counter(claim["topicIds"][0] for claim in corpus.claims)
    assert per_topic.most_common(1)[0][1] > 5 * statistics.median(per_topic.values())


def test_languages_are_mixed_with_english_the_majority(corpus: Corpus) -> None:
    """All five languages appear, English in about 80% of claims."""
    languages = Counter(claim["language"] for claim in corpus.claims)
    assert set(languages) == {"en", "fr", "de", "es", "pt-BR"}
    assert 0.75 < languages["en"] / len(corpus.claims) < 0.85


def test_texts_rarely_repeat(corpus: Corpus) -> None:
    """More than 95% of the 20,000 claim texts are distinct."""
    texts = [claim["text"] for claim in corpus.claims]
    assert len(set(texts)) > 0.95 * len(texts)


def test_texts_have_15_to_40_words(corpus: Corpus) -> None:
    """Every claim text, in every language, has between 15 and 40 words."""
    counts = [len(claim["text"].split()) for claim in corpus.claims]
    assert min(counts) >= demo.MIN_WORDS == 15
    assert max(counts) <= demo.MAX_WORDS == 40


@pytest.mark.parametrize("language", sorted(demo.PHRASEBOOKS))
def test_sentence_frames_fit_the_word_limits(language: str) -> None:
    """Filled with the longest phrases, a main sentence fits 40 words and a follow-up 26."""
    book = demo.PHRASEBOOKS[language]
    for root, words in book.topics.items():
        longest = _longest_fillers(book, words)
        for frame in book.claims:
            assert len(frame.format_map(longest).split()) <= demo.MAX_WORDS, (root, frame)
        for frame in book.follow_ups:
            limit = demo.MAX_WORDS - demo.MIN_WORDS + 1
            assert len(frame.format_map(longest).split()) <= limit, (root, frame)


def _longest_fillers(book: demo.Phrasebook, words: demo.TopicVocabulary) -> dict[str, str]:
    """The wordiest value of every slot a frame may use."""

    def longest(options: Iterable[str]) -> str:
        return max(options, key=lambda option: len(option.split()))

    years = longest(book.small_numbers)
    phrases = {
        "bad": longest(words.bad),
        "good": longest(words.good),
        "policy": longest(words.policies),
        "reason": longest(words.reasons),
    }
    return {
        **phrases,
        **{name.capitalize(): phrase for name, phrase in phrases.items()},
        "when": longest(deadline.format(later=2031, years=years) for deadline in book.deadlines),
        "place": longest(demo.WORLD.places),
        "years": years,
        "n": "40",
        "bn": "90",
        "share": "78",
        "since": "2008",
    }


def test_every_root_topic_has_words_in_every_language() -> None:
    """Each phrasebook covers every root topic of the world's topic tree."""
    root_count = len(demo.WORLD.topic_tree)
    roots = {topic["id"] for topic in Corpus.generate(claims=0, topics=root_count).topics}
    for book in demo.PHRASEBOOKS.values():
        assert set(book.topics) == roots


def test_most_actors_have_aliases_and_a_description(corpus: Corpus) -> None:
    """At least 80% of actors have one to three aliases, and all have a kind and description."""
    with_aliases = [actor for actor in corpus.actors if actor.get("aliases")]
    assert len(with_aliases) >= 0.8 * len(corpus.actors)
    assert all(1 <= len(actor["aliases"]) <= 3 for actor in with_aliases)
    assert all(actor["description"].endswith(".") for actor in corpus.actors)
    kinds = Counter(actor["kind"] for actor in corpus.actors)
    assert set(kinds) == {"ACTOR_KIND_PERSON", "ACTOR_KIND_ORGANISATION", "ACTOR_KIND_OTHER"}


def test_claim_fields_are_plausible(corpus: Corpus) -> None:
    """Claims are active, fairly confident and quote a titled source under `.example`."""
    for claim in corpus.claims:
        assert claim["state"] == "CLAIM_STATE_ACTIVE"
        assert 0.5 <= claim["confidence"] <= 1.0
        assert claim["confidence"] == round(claim["confidence"], 3)
        source = claim["source"]
        assert re.fullmatch(r"https://[a-z-]+\.example/\d{4}/\d{2}/[a-z0-9-]+", source["url"])
        assert source["title"]
        assert source["publisher"]


@pytest.mark.parametrize("claims", [0, 25])
def test_smallest_corpus_works(claims: int) -> None:
    """One actor and one root topic are enough, with or without claims."""
    small = Corpus.generate(claims=claims, actors=1, topics=1)
    assert [t["id"] for t in small.topics] == ["economy"]
    assert len(small.actors) == 1
    assert len(small.claims) == claims
    assert all(claim["topicIds"] == ["economy"] for claim in small.claims)
    assert_references_resolve(small)


def test_scaled_corpus_keeps_ids_unique_and_references_valid(scaled: Corpus) -> None:
    """5,000 actors, 300 topics and 50,000 claims still have unique, valid ids and references."""
    assert (len(scaled.topics), len(scaled.actors), len(scaled.claims)) == (300, 5000, 50_000)
    assert_ids_unique_and_well_formed(scaled)
    assert_references_resolve(scaled)


def test_write_jsonl_writes_one_compact_line_per_record() -> None:
    """write_jsonl returns the line count and writes compact JSON objects, text unescaped."""
    records = list(demo.generate_corpus(claims=200, actors=20, topics=10))
    out = io.StringIO()
    assert demo.write_jsonl(records, out) == len(records) == 230
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == records
    assert lines == [
        json.dumps(record, separators=(",", ":"), ensure_ascii=False) for record in records
    ]
    assert "\\u00" not in out.getvalue()
    assert out.getvalue().endswith("}\n")


@pytest.mark.parametrize(
    "sizes", [{"claims": -1}, {"actors": 0}, {"topics": 0}], ids=["claims", "actors", "topics"]
)
def test_invalid_sizes_are_refused_at_once(sizes: dict[str, int]) -> None:
    """Negative claims or fewer than one actor or topic raise ValueError before any record."""
    with pytest.raises(ValueError, match="at least"):
        demo.generate_corpus(**sizes)
