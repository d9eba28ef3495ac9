"""A deterministic synthetic corpus of topics, actors and claims, for demos and benchmarks.

`generate_corpus` yields `IndexRecord` objects in the proto3 JSON mapping (the lines
`panoptic index` reads) and `write_jsonl` writes them out. The same seed and sizes give the same
bytes on any machine, on any day and under any PYTHONHASHSEED: one `random.Random(seed)` makes
every choice, nothing iterates a set, and time is a fixed ten-year window, never the clock.
Every name, place and outlet in here is invented.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import unicodedata
from bisect import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, TextIO, TypeAlias, TypeVar

from pydantic import ConfigDict, TypeAdapter, with_config

# The corpus covers ten full years that are over, so no claim is ever "in the future".
WINDOW_START = datetime(2016, 1, 1, tzinfo=UTC)
WINDOW_END = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
_WINDOW_SECONDS = int((WINDOW_END - WINDOW_START).total_seconds())

ZIPF_EXPONENT = 1.1  # weight of the item of rank r is 1 / r**1.1: a few items get most claims
MAX_ID_LENGTH = 128
MIN_WORDS, MAX_WORDS = 15, 40
LANGUAGE_WEIGHTS = (("en", 0.80), ("fr", 0.06), ("de", 0.05), ("es", 0.05), ("pt-BR", 0.04))
FOCUS_SHARE = 0.4  # share of an actor's claims whose main topic is in the actor's favourite area
RELATED_FROM_SAME_ROOT = 0.8  # chance that a second or third topic shares the first one's root
OPENER_CHANCE = 0.2
EXTRA_SENTENCE_CHANCE = 0.25

# ---------------------------------------------------------------------------------------------
# Words: the invented world (topics, speakers, places) and, per language, the phrases claims are
# made of. They are package data in `demo_data/`, read once at import, so that code stays code.

_Words = TypeVar("_Words")
_STRICT = ConfigDict(strict=True, extra="forbid")  # a misspelt or missing field fails at import


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class NamePool:
    """First and last names that go together in one country's naming conventions."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class World:
    """The invented world claims are about: the topics, and the words actors are made of.

    Topics are eight roots with four children each; more topics are aspects of the children.
    Actors are invented people from several name pools, and invented organisations.
    """

    topic_tree: tuple[tuple[str, tuple[str, ...]], ...]  # (root, its children)
    topic_aspects: tuple[str, ...]
    person_name_pools: tuple[NamePool, ...]
    nicknames: tuple[str, ...]  # may use {first} and {last}
    places: tuple[str, ...]
    countries: tuple[str, ...]
    policy_areas: tuple[str, ...]
    sectors: tuple[str, ...]
    person_descriptions: tuple[str, ...]  # may use {place}, {year}, {area} and {sector}
    party_words: tuple[str, ...]
    party_nouns: tuple[str, ...]
    party_forms: tuple[str, ...]
    party_positions: tuple[str, ...]
    company_stems: tuple[str, ...]
    company_industries: tuple[tuple[str, str], ...]  # (name part, how a description calls it)
    company_suffixes: tuple[str, ...]
    ngo_causes: tuple[tuple[str, str], ...]  # (name part, what the group campaigns for)
    ngo_forms: tuple[str, ...]
    # Speakers that are neither people nor organisations: (name, aliases, description), which
    # may use {area}, {area_lower} and {place}.
    other_speakers: tuple[tuple[str, tuple[str, ...], str], ...]


# Claim texts: per language, sentence frames filled with phrases about the claim's root topic.
#
# Frame slots: {bad}/{Bad} something the speaker wants lower, {good}/{Good} something to raise,
# {policy}/{Policy} a proposal, {reason} a clause completing "because", {n} a percentage,
# {share} a poll's percentage, {bn} billions, {when} a deadline, {since} an earlier year,
# {place} an invented place, {years} a small number in words. Capitalised slot names start
# the sentence.
#
# Every {bad} and {good} is singular, so "has risen" agrees; in French, Spanish and Portuguese
# no frame puts "de" or "a" before a slot, which would need a contraction ("du", "del", "do");
# German phrases are feminine or neuter, whose nominative and accusative are the same.


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class TopicVocabulary:
    """What claims on one root topic talk about, in one language."""

    bad: tuple[str, ...]
    good: tuple[str, ...]
    policies: tuple[str, ...]
    reasons: tuple[str, ...]


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class Publisher:
    """An invented outlet and its domain under the reserved `.example` TLD."""

    name: str
    domain: str


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class Phrasebook:
    """How one language phrases claims and the titles of the documents quoting them."""

    claims: tuple[str, ...]
    follow_ups: tuple[str, ...]
    openers: tuple[str, ...]
    deadlines: tuple[str, ...]  # fill {when}; may use {later} (a year) and {years}
    small_numbers: tuple[str, ...]  # fill {years}: two to five, in words
    titles: tuple[str, ...]  # may use {actor} and {topic}
    publishers: tuple[Publisher, ...]
    topics: Mapping[str, TopicVocabulary]  # by root topic id


def _load(kind: type[_Words], name: str) -> _Words:
    """Reads `demo_data/<name>` as a `kind`."""
    text = (resources.files(__package__) / "demo_data" / name).read_text(encoding="utf-8")
    return TypeAdapter(kind).validate_json(text)


WORLD = _load(World, "world.json")
PHRASEBOOKS: Mapping[str, Phrasebook] = {
    language: _load(Phrasebook, f"phrasebook.{language}.json") for language, _ in LANGUAGE_WEIGHTS
}

# ---------------------------------------------------------------------------------------------
# Public API


def generate_corpus(
    *, seed: int = 42, claims: int = 20_000, actors: int = 200, topics: int = 40
) -> Iterator[dict[str, Any]]:
    """Yields the corpus as IndexRecord JSON objects in the proto3 JSON mapping.

    First all topics (parents before children), then all actors, then the claims. Claims are
    made one at a time, so memory does not grow with `claims`; the first N claims are the same
    whatever `claims` is, so a small corpus is a prefix of a larger one.
    """
    if claims < 0:
        raise ValueError(f"claims must be at least 0, not {claims}")
    if actors < 1 or topics < 1:
        raise ValueError(f"actors and topics must be at least 1, not {actors} and {topics}")
    return _records(seed=seed, claims=claims, actors=actors, topics=topics)


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Writes each record as one compact JSON line and returns the number of lines written.

    Keys keep each dict's order (the proto field order, for `generate_corpus`). Non-ASCII
    characters are escaped so the bytes do not depend on the encoding `out` was opened with.
    """
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    written = 0
    for record in records:
        out.write(encoder.encode(record))
        out.write("\n")
        written += 1
    return written


# ---------------------------------------------------------------------------------------------
# Building blocks


@dataclass(frozen=True, slots=True)
class _Topic:
    """A generated topic, with the root whose vocabulary its claims use."""

    id: str
    display_name: str
    parent_id: str  # empty for a root
    root_id: str
    title_name: str  # how document titles name it, e.g. "energy policy"


@dataclass(frozen=True, slots=True)
class _Actor:
    """A generated actor, with the root topic it talks about most."""

    id: str
    display_name: str
    aliases: tuple[str, ...]
    kind: str
    description: str
    focus_root_id: str


@dataclass(frozen=True, slots=True)
class _WeightedChoice:
    """Draws indexes 0..n-1 in proportion to fixed weights (what `random.choices` does inside)."""

    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, weights: Iterable[float]) -> _WeightedChoice:
        """A choice with the given weights, in order."""
        return cls(tuple(itertools.accumulate(weights)))

    @classmethod
    def zipf(cls, count: int, rng: random.Random) -> _WeightedChoice:
        """Weight 1/rank**ZIPF_EXPONENT, with ranks shuffled so the favourite is not always 0."""
        ranks = list(range(1, count + 1))
        rng.shuffle(ranks)
        return cls.of(rank**-ZIPF_EXPONENT for rank in ranks)

    def draw(self, rng: random.Random) -> int:
        """One index; the upper bound guards against `random() * total` rounding up to total."""
        total = self.cumulative[-1]
        return bisect(self.cumulative, rng.random() * total, 0, len(self.cumulative) - 1)


class _SlugAllocator:
    """Hands out unique slugs, adding -2, -3, … when a base slug is already taken."""

    def __init__(self) -> None:
        self._taken: set[str] = set()  # only looked up, never iterated, so order cannot leak
        self._next_suffix: dict[str, int] = {}

    def taken(self, text: str) -> bool:
        """Whether `text` would need a numeric suffix."""
        return _slugify(text) in self._taken

    def allocate(self, text: str) -> str:
        """A unique slug for `text`."""
        base = _slugify(text)
        slug = base
        while slug in self._taken:
            suffix = self._next_suffix.get(base, 2)
            self._next_suffix[base] = suffix + 1
            tail = f"-{suffix}"
            slug = base[: MAX_ID_LENGTH - len(tail)].rstrip("-") + tail
        self._taken.add(slug)
        return slug


_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Letters that NFKD does not split into an ASCII letter and an accent.
_ASCII_FALLBACKS = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae"})


def _slugify(text: str) -> str:
    """A lowercase `[a-z0-9]` slug with inner dashes, at most MAX_ID_LENGTH characters."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FALLBACKS))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    slug = _NOT_SLUG.sub("-", ascii_text).strip("-")
    return slug[:MAX_ID_LENGTH].rstrip("-") or "x"


def _records(*, seed: int, claims: int, actors: int, topics: int) -> Iterator[dict[str, Any]]:
    """The corpus itself; `generate_corpus` validates the sizes before this starts."""
    rng = random.Random(seed)  # noqa: S311 — reproducibility is the point; nothing here is secret
    topic_list = _build_topics(topics)
    for topic in topic_list:
        yield _topic_record(topic)
    actor_list = _build_actors(actors, topic_list, rng)
    for actor in actor_list:
        yield _actor_record(actor)
    writer = _ClaimWriter.create(seed, actor_list, topic_list, rng)
    for index in range(claims):
        yield writer.claim_record(index)


def _build_topics(count: int) -> list[_Topic]:
    """`count` topics, every parent before its children.

    Roots come first, then the children of every root in turn, so that a small corpus still
    spans several areas; past the 40 in WORLD.topic_tree come aspects of the children
    ("energy-policy-funding"), numbered once the aspects run out.
    """
    allocator = _SlugAllocator()
    roots = [(name, allocator.allocate(name)) for name, _ in WORLD.topic_tree]
    result = [_Topic(root_id, name, "", root_id, name.lower()) for name, root_id in roots]
    children: list[_Topic] = []
    for position in range(max(len(kids) for _, kids in WORLD.topic_tree)):
        for (_, kids), (_, root_id) in zip(WORLD.topic_tree, roots, strict=True):
            if position < len(kids):
                name = kids[position]
                children.append(
                    _Topic(allocator.allocate(name), name, root_id, root_id, name.lower())
                )
    result.extend(children)
    extra = 0
    while len(result) < count:
        parent = children[extra % len(children)]
        aspect = WORLD.topic_aspects[(extra // len(children)) % len(WORLD.topic_aspects)]
        round_number = extra // (len(children) * len(WORLD.topic_aspects)) + 1
        label = f"{parent.display_name}: {aspect}"
        if round_number > 1:
            label = f"{label} {round_number}"
        result.append(
            _Topic(allocator.allocate(label), label, parent.id, parent.root_id, parent.title_name)
        )
        extra += 1
    return result[:count]


def _build_actors(count: int, topics: Sequence[_Topic], rng: random.Random) -> list[_Actor]:
    """`count` invented actors with unique ids, each with a favourite root topic."""
    allocator = _SlugAllocator()
    root_ids = list(dict.fromkeys(topic.root_id for topic in topics))
    return [_invent_actor(rng, allocator, root_ids) for _ in range(count)]


def _invent_actor(rng: random.Random, allocator: _SlugAllocator, root_ids: Sequence[str]) -> _Actor:
    """One actor; a name already taken is redrawn a few times before it gets a numeric suffix."""
    roll = rng.random()
    invent = next((inventor for share, inventor in _ACTOR_INVENTORS if roll < share), _invent_other)
    name, alias_options, kind, description = invent(rng)
    for _ in range(_REDRAWS_ON_TAKEN_NAME):
        if not allocator.taken(name):
            break
        name, alias_options, kind, description = invent(rng)
    alias_count = rng.choices((0, 1, 2, 3), weights=(10, 45, 30, 15))[0]
    aliases = rng.sample(alias_options, min(alias_count, len(alias_options)))
    return _Actor(
        id=allocator.allocate(name),
        display_name=name,
        aliases=tuple(alias for alias in aliases if alias != name),
        kind=kind,
        description=description,
        focus_root_id=rng.choice(root_ids),
    )


_REDRAWS_ON_TAKEN_NAME = 5
# name, alias options, kind, description
_ActorDraft: TypeAlias = tuple[str, tuple[str, ...], str, str]


def _invent_person(rng: random.Random) -> _ActorDraft:
    pool = rng.choice(WORLD.person_name_pools)
    first, last = rng.choice(pool.first_names), rng.choice(pool.last_names)
    nickname = rng.choice(WORLD.nicknames).format(first=first, last=last)
    description = rng.choice(WORLD.person_descriptions).format(
        place=rng.choice(WORLD.places),
        year=rng.randint(1998, 2015),
        area=rng.choice(WORLD.policy_areas).lower(),
        sector=rng.choice(WORLD.sectors),
    )
    aliases = (f"{first[0]}. {last}", last, nickname)
    return f"{first} {last}", aliases, "ACTOR_KIND_PERSON", description


def _invent_party(rng: random.Random) -> _ActorDraft:
    word, noun, form = (
        rng.choice(WORLD.party_words),
        rng.choice(WORLD.party_nouns),
        rng.choice(WORLD.party_forms),
    )
    name = f"{word} {noun} {form}"
    position = rng.choice(WORLD.party_positions)
    description = (
        f"A {position} political party founded in {rng.randint(1950, 2015)},"
        f" strongest in {rng.choice(WORLD.places)}."
    )
    return name, (_abbreviation(name), f"{word} {noun}"), "ACTOR_KIND_ORGANISATION", description


def _invent_ministry(rng: random.Random) -> _ActorDraft:
    country, area = rng.choice(WORLD.countries), rng.choice(WORLD.policy_areas)
    name = f"{country} Ministry of {area}"
    description = f"Government department of {country} responsible for {area.lower()}."
    aliases = (_abbreviation(name), f"Ministry of {area}", f"{area} Ministry")
    return name, aliases, "ACTOR_KIND_ORGANISATION", description


def _invent_company(rng: random.Random) -> _ActorDraft:
    stem, (industry, described_as) = (
        rng.choice(WORLD.company_stems),
        rng.choice(WORLD.company_industries),
    )
    name = f"{stem} {industry} {rng.choice(WORLD.company_suffixes)}"
    description = (
        f"{described_as} company headquartered in {rng.choice(WORLD.places)},"
        f" founded in {rng.randint(1890, 2012)}."
    )
    aliases = (_abbreviation(name), stem, f"{stem} {industry}")
    return name, aliases, "ACTOR_KIND_ORGANISATION", description


def _invent_ngo(rng: random.Random) -> _ActorDraft:
    (cause, mission), form = rng.choice(WORLD.ngo_causes), rng.choice(WORLD.ngo_forms)
    name = f"{cause} {form}"
    description = (
        f"Non-profit group campaigning for {mission}, based in {rng.choice(WORLD.places)}."
    )
    return name, (_abbreviation(name), cause), "ACTOR_KIND_ORGANISATION", description


def _invent_other(rng: random.Random) -> _ActorDraft:
    name, aliases, description = rng.choice(WORLD.other_speakers)
    area = rng.choice(WORLD.policy_areas)
    slots = {"area": area, "area_lower": area.lower(), "place": rng.choice(WORLD.places)}
    return (
        name.format_map(slots),
        tuple(alias.format_map(slots) for alias in aliases),
        "ACTOR_KIND_OTHER",
        description.format_map(slots),
    )


# (cumulative share, inventor): about 62% people, 33% organisations, 5% others.
_ACTOR_INVENTORS = (
    (0.62, _invent_person),
    (0.70, _invent_party),
    (0.77, _invent_ministry),
    (0.87, _invent_company),
    (0.95, _invent_ngo),
)


def _abbreviation(name: str) -> str:
    """The initials of a name's capitalised words: "Green Future Party" -> "GFP"."""
    return "".join(word[0] for word in name.split() if word[0].isupper())


def _topic_record(topic: _Topic) -> dict[str, Any]:
    """A topic as an IndexRecord JSON object."""
    body: dict[str, Any] = {"id": topic.id, "displayName": topic.display_name}
    if topic.parent_id:
        body["parentId"] = topic.parent_id
    return {"topic": body}


def _actor_record(actor: _Actor) -> dict[str, Any]:
    """An actor as an IndexRecord JSON object."""
    body: dict[str, Any] = {"id": actor.id, "displayName": actor.display_name}
    if actor.aliases:
        body["aliases"] = list(actor.aliases)
    body["kind"] = actor.kind
    body["description"] = actor.description
    return {"actor": body}


def _rfc3339(moment: datetime) -> str:
    """A UTC time as RFC 3339 with a `Z`, to the second."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _word_count(text: str) -> int:
    return text.count(" ") + 1


@dataclass(frozen=True, slots=True)
class _ClaimWriter:
    """Makes claim records one at a time from the actors, the topics and the seeded stream."""

    seed: int
    rng: random.Random
    actors: Sequence[_Actor]
    topics: Sequence[_Topic]
    actor_choice: _WeightedChoice
    topic_choice: _WeightedChoice
    language_choice: _WeightedChoice  # indexes LANGUAGE_WEIGHTS
    family: Mapping[str, Sequence[int]]  # root id -> indexes of the topics under that root

    @classmethod
    def create(
        cls, seed: int, actors: Sequence[_Actor], topics: Sequence[_Topic], rng: random.Random
    ) -> _ClaimWriter:
        """A writer whose Zipf ranks are drawn from `rng` now, before any claim."""
        family: dict[str, list[int]] = {}
        for index, topic in enumerate(topics):
            family.setdefault(topic.root_id, []).append(index)
        return cls(
            seed=seed,
            rng=rng,
            actors=actors,
            topics=topics,
            actor_choice=_WeightedChoice.zipf(len(actors), rng),
            topic_choice=_WeightedChoice.zipf(len(topics), rng),
            language_choice=_WeightedChoice.of(weight for _, weight in LANGUAGE_WEIGHTS),
            family=family,
        )

    def claim_record(self, index: int) -> dict[str, Any]:
        """The claim at `index` as an IndexRecord JSON object; call with 0, 1, 2, … in order."""
        rng = self.rng
        claim_id = _claim_id(self.seed, index)
        actor = self.actors[self.actor_choice.draw(rng)]
        topic_indexes = self._topic_indexes(actor)
        main_topic = self.topics[topic_indexes[0]]
        language = LANGUAGE_WEIGHTS[self.language_choice.draw(rng)][0]
        book = PHRASEBOOKS[language]
        stated_at = WINDOW_START + timedelta(seconds=_stated_offset(rng))
        published_at = min(stated_at + timedelta(seconds=_publication_delay(rng)), WINDOW_END)
        publisher = rng.choice(book.publishers)
        title = rng.choice(book.titles).format(
            actor=actor.display_name, topic=main_topic.title_name
        )
        url = f"https://{publisher.domain}/{published_at:%Y/%m}/{main_topic.id}-{claim_id[2:12]}"
        return {
            "claim": {
                "id": claim_id,
                "actorId": actor.id,
                "topicIds": [self.topics[i].id for i in topic_indexes],
                "text": _compose_text(rng, book, main_topic.root_id, stated_at.year),
                "statedAt": _rfc3339(stated_at),
                "source": {
                    "url": url,
                    "title": title,
                    "publisher": publisher.name,
                    "publishedAt": _rfc3339(published_at),
                },
                "language": language,
                # Extraction is usually sure of itself: squaring skews the values towards 1.
                "confidence": round(1.0 - 0.5 * rng.random() ** 2, 3),
                "state": "CLAIM_STATE_ACTIVE",
            }
        }

    def _topic_indexes(self, actor: _Actor) -> list[int]:
        """One to three distinct topics; the first by Zipf or the actor's favourite area."""
        rng = self.rng
        if rng.random() < FOCUS_SHARE:
            first = rng.choice(self.family[actor.focus_root_id])
        else:
            first = self.topic_choice.draw(rng)
        chosen = [first]
        roll = rng.random()
        wanted = 1 if roll < 0.55 else 2 if roll < 0.85 else 3  # 55% one, 30% two, 15% three
        same_root = self.family[self.topics[first].root_id]
        for _ in range(3 * (wanted - 1)):  # a few tries: small corpora may run out of topics
            if len(chosen) == wanted:
                break
            if rng.random() < RELATED_FROM_SAME_ROOT:
                candidate = rng.choice(same_root)
            else:
                candidate = self.topic_choice.draw(rng)
            if candidate not in chosen:
                chosen.append(candidate)
        return chosen


def _claim_id(seed: int, index: int) -> str:
    """A stable id for the claim at `index` of the corpus made from `seed`."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).hexdigest()
    return f"c-{digest}"


def _stated_offset(rng: random.Random) -> int:
    """Seconds after WINDOW_START, with activity growing threefold over the ten years.

    The density is proportional to 1 + 2x on [0, 1); this is its inverse distribution function.
    """
    fraction = (math.sqrt(1.0 + 8.0 * rng.random()) - 1.0) / 2.0
    return min(int(fraction * (_WINDOW_SECONDS + 1)), _WINDOW_SECONDS)


def _publication_delay(rng: random.Random) -> int:
    """Seconds from the statement to its publication: mostly the same day, at most three days."""
    if rng.random() < 0.6:
        return rng.randrange(0, 12 * 3600)
    return rng.randrange(0, 3 * 24 * 3600)


def _compose_text(rng: random.Random, book: Phrasebook, root_id: str, year: int) -> str:
    """A claim's text of MIN_WORDS to MAX_WORDS words about `root_id`, as said in `year`.

    A main sentence, then follow-up sentences until the text is long enough, then perhaps one
    more; an opener only when it still fits. Every main sentence is at most MAX_WORDS words and
    every follow-up at most MAX_WORDS - MIN_WORDS + 1 (tests/unit/test_demo.py checks both), so
    the bounds always hold.
    """
    slots = _slots(rng, book, book.topics[root_id], year)
    text = rng.choice(book.claims).format_map(slots)
    count = _word_count(text)
    if rng.random() < OPENER_CHANCE:
        opener = rng.choice(book.openers)
        if count + _word_count(opener) <= MAX_WORDS:
            text = f"{opener} {text}"
            count += _word_count(opener)
    while count < MIN_WORDS:
        # Terminates: two follow-ups always suffice, and every phrasebook has eight or more.
        follow_up = rng.choice(book.follow_ups).format_map(slots)
        if not _repeats(follow_up, text):
            text = f"{text} {follow_up}"
            count += _word_count(follow_up)
    if rng.random() < EXTRA_SENTENCE_CHANCE:
        follow_up = rng.choice(book.follow_ups).format_map(slots)
        if count + _word_count(follow_up) <= MAX_WORDS and not _repeats(follow_up, text):
            text = f"{text} {follow_up}"
    return text


def _repeats(sentence: str, text: str) -> bool:
    """Whether `text` already says `sentence`, e.g. as the "because …" clause of its frame."""
    return sentence.rstrip(".").lower() in text.lower()


def _slots(
    rng: random.Random, book: Phrasebook, words: TopicVocabulary, year: int
) -> dict[str, str]:
    """Fillers for every slot a frame may use, drawn fresh for each claim."""
    years = rng.choice(book.small_numbers)
    when = rng.choice(book.deadlines).format(later=year + rng.randint(1, 6), years=years)
    bad, good = rng.choice(words.bad), rng.choice(words.good)
    policy, reason = rng.choice(words.policies), rng.choice(words.reasons)
    return {
        "bad": bad,
        "Bad": _capitalised(bad),
        "good": good,
        "Good": _capitalised(good),
        "policy": policy,
        "Policy": _capitalised(policy),
        "reason": reason,
        "Reason": _capitalised(reason),
        "n": str(rng.randint(2, 40)),
        "bn": str(rng.randint(2, 90)),
        "share": str(rng.randint(35, 78)),
        "when": when,
        "since": str(year - rng.randint(1, 8)),
        "place": rng.choice(WORLD.places),
        "years": years,
    }
