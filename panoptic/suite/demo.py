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
from typing import Any, TextIO, TypeAlias

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
# Topics: eight roots with four children each; more topics are aspects of the children.

TOPIC_TREE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Economy", ("Taxation", "Jobs and wages", "Public finances", "Trade")),
    ("Health", ("Hospitals", "Public health", "Mental health", "Drug pricing")),
    ("Environment", ("Climate change", "Energy policy", "Air quality", "Biodiversity")),
    ("Education", ("Schools", "Universities", "Teachers", "Early childhood")),
    ("Justice", ("Policing", "Courts", "Prisons", "Organised crime")),
    ("Foreign affairs", ("Defence", "Diplomacy", "Development aid", "Migration")),
    ("Infrastructure", ("Public transport", "Roads and bridges", "Housing", "Broadband")),
    (
        "Technology",
        ("Artificial intelligence", "Data protection", "Online platforms", "Cybersecurity"),
    ),
)
TOPIC_ASPECTS = (
    "funding",
    "regulation",
    "reform",
    "regional",
    "international",
    "research",
    "workforce",
    "transparency",
)

# ---------------------------------------------------------------------------------------------
# Actors: invented people from several name pools, and invented organisations.


@dataclass(frozen=True, slots=True)
class NamePool:
    """First and last names that go together in one country's naming conventions."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


PERSON_NAME_POOLS = (
    NamePool(
        ("Amelia", "Oliver", "Harriet", "Callum", "Rosalind", "Declan", "Imogen", "Felix"),
        ("Pembrook", "Hartwell", "Fairbairn", "Lockridge", "Thornbury", "Whitcombe", "Greaves"),
    ),
    NamePool(
        ("Camille", "Étienne", "Margaux", "Théo", "Solène", "Bastien", "Inès", "Gaspard"),
        ("Fournier", "Lemaire", "Vasseur", "Garnier", "Duval", "Morvan", "Besnard", "Aubert"),
    ),
    NamePool(
        ("Lena", "Jonas", "Greta", "Maximilian", "Frieda", "Lukas", "Mareike", "Henrik"),
        ("Kessler", "Hartmann", "Vogt", "Brenner", "Falkenberg", "Weidner", "Reuter", "Krämer"),
    ),
    NamePool(
        ("Lucía", "Mateo", "Valeria", "Diego", "Ximena", "Álvaro", "Paloma", "Gonzalo"),
        ("Salcedo", "Montoya", "Villalobos", "Peñalver", "Aranda", "Quintana", "Barrientos"),
    ),
    NamePool(
        ("João", "Beatriz", "Thiago", "Larissa", "Rafael", "Gabriela", "Vinícius", "Luana"),
        ("Albuquerque", "Cavalcanti", "Figueiredo", "Nogueira", "Sampaio", "Bezerra", "Rezende"),
    ),
    NamePool(
        ("Giulia", "Lorenzo", "Chiara", "Matteo", "Alessia", "Tommaso", "Federica", "Riccardo"),
        ("Bellandi", "Ferraresi", "Mancuso", "Santoro", "Guidetti", "Rinaldi", "Farinelli"),
    ),
    NamePool(
        ("Zofia", "Kacper", "Agnieszka", "Tomasz", "Marta", "Wojciech"),
        ("Nowak", "Mazur", "Kaczmarek", "Wójcik", "Krawczyk", "Sikora", "Baran"),
    ),
    NamePool(
        ("Chiamaka", "Tunde", "Ngozi", "Emeka", "Folake", "Obinna", "Adaeze", "Segun"),
        ("Adeyemi", "Eze", "Balogun", "Nwosu", "Olawale", "Okafor", "Ibekwe"),
    ),
    NamePool(
        ("Ananya", "Rohan", "Priya", "Arjun", "Kavya", "Vikram", "Meera", "Nikhil"),
        ("Iyer", "Banerjee", "Deshpande", "Kulkarni", "Menon", "Sengupta", "Venkataraman"),
    ),
    NamePool(
        ("Sanne", "Daan", "Fleur", "Bram", "Lotte", "Joris", "Astrid", "Oskar"),
        ("de Vries", "van Dijk", "Visser", "Mulder", "Lindqvist", "Bergström", "Holmgren"),
    ),
)
NICKNAMES = (
    "Iron {first}",
    "Steady {first}",
    "{first} the Fixer",
    "The Professor",
    "The Referee",
    "The Bulldozer",
    "Comrade {last}",
    "Citizen {last}",
)
PLACES = (
    "Port Alder",
    "Kestrel Bay",
    "Saint-Aurèle",
    "Lindmark",
    "Ribeira Clara",
    "Castelvento",
    "Westerholm",
    "Marisol del Valle",
    "Dunraven Cross",
    "Tiberlake",
)
COUNTRIES = ("Valdoria", "Estmark", "Castoria", "Meridia", "Kelvaria", "Lusitara")
POLICY_AREAS = (
    "Finance",
    "Health",
    "Environment",
    "Education",
    "Justice",
    "Foreign Affairs",
    "Transport",
    "Digital Affairs",
    "Energy",
    "Housing",
    "Labour",
    "Defence",
)
SECTORS = ("transport", "health-care", "steel", "teaching", "retail", "farming")
PERSON_DESCRIPTIONS = (
    "Member of parliament for {place} since {year}.",
    "Mayor of {place}, first elected in {year}.",
    "Former minister of {area} and a long-serving party strategist.",
    "Economist and newspaper columnist based in {place}.",
    "Leader of the opposition in the {place} regional assembly.",
    "Trade-union leader who has represented {sector} workers since {year}.",
    "Senator from {place} and chair of the {area} committee.",
    "Campaigner on {area} who founded a local advocacy group in {place}.",
    "Regional governor of {place}, re-elected in {year}.",
)
PARTY_WORDS = ("Green", "Progressive", "Liberal", "Social", "Civic", "National", "United", "Free")
PARTY_NOUNS = ("Future", "Renewal", "Left", "Centre", "Voice", "Horizon", "Dawn", "Commons")
PARTY_FORMS = ("Party", "Movement", "Front", "Coalition", "Union")
PARTY_POSITIONS = (
    "centre-left",
    "centre-right",
    "green",
    "liberal",
    "social-democratic",
    "conservative",
    "regionalist",
)
COMPANY_STEMS = (
    "Altavera",
    "Brightmoor",
    "Corvane",
    "Dunmere",
    "Elvanor",
    "Kestrelle",
    "Lumora",
    "Norhaven",
    "Orsella",
    "Quenby",
    "Rivenhall",
    "Solvane",
    "Tarrow",
    "Vexley",
)
# (name part, how a description calls the industry)
COMPANY_INDUSTRIES = (
    ("Energy", "Energy"),
    ("Logistics", "Logistics"),
    ("Pharma", "Pharmaceutical"),
    ("Telecom", "Telecommunications"),
    ("Foods", "Food-processing"),
    ("Motors", "Car-making"),
    ("Bank", "Banking"),
    ("Mining", "Mining"),
    ("Airways", "Aviation"),
    ("Insurance", "Insurance"),
)
COMPANY_SUFFIXES = ("Group", "Holdings", "plc", "AG", "SA", "Ltd")
# (name part, what the group campaigns for)
NGO_CAUSES = (
    ("Clean Rivers", "cleaner rivers and stricter limits on water pollution"),
    ("Fair Housing", "affordable homes and tenants' rights"),
    ("Open Budget", "transparent public spending"),
    ("Safe Streets", "safer neighbourhoods and better street lighting"),
    ("Digital Rights", "privacy and free expression online"),
    ("Patient Voice", "shorter waiting times and patients' rights"),
    ("Rural Futures", "investment in villages and small towns"),
    ("Clear Air", "lower air pollution in cities"),
    ("Fair Wages", "a living wage for every worker"),
    ("Child Literacy", "reading programmes in primary schools"),
)
NGO_FORMS = ("Trust", "Network", "Foundation", "Watch", "Alliance", "Institute", "Forum")
# Speakers that are neither people nor organisations: (name, aliases, description).
OTHER_SPEAKERS = (
    (
        "Anonymous {area} Official",
        ("a senior official", "government source"),
        "An unnamed official whose remarks on {area_lower} were reported by several outlets.",
    ),
    (
        "{place} Citizens' Petition",
        ("the {place} petition",),
        "A citizens' petition launched in {place} and signed by thousands of residents.",
    ),
    (
        "Open Letter on {area}",
        ("the open letter", "the {area_lower} letter"),
        "An open letter on {area_lower} signed by academics and community leaders.",
    ),
    (
        "The {place} Observer Blog",
        ("{place} Observer",),
        "A pseudonymous political blog covering {place}.",
    ),
)

# ---------------------------------------------------------------------------------------------
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


@dataclass(frozen=True, slots=True)
class TopicVocabulary:
    """What claims on one root topic talk about, in one language."""

    bad: tuple[str, ...]
    good: tuple[str, ...]
    policies: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Publisher:
    """An invented outlet and its domain under the reserved `.example` TLD."""

    name: str
    domain: str


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


ENGLISH = Phrasebook(
    claims=(
        "We will cut {bad} by {n} percent {when}.",
        "Our government will bring {bad} down by {n} percent {when}, and we will publish the"
        " figures every year.",
        "{Bad} has risen by {n} percent since {since}, and this government refuses to take"
        " responsibility for it.",
        "{Bad} has fallen by {n} percent since {since}, which shows that our plan is working.",
        "We have opposed {policy} since {since}, because {reason}.",
        "We fully support {policy}, which would save about {bn} billion euros over {years} years.",
        "{Policy} would cost taxpayers {bn} billion euros and would do nothing to reduce {bad}.",
        "The previous government promised in {since} to reduce {bad} but let it rise by {n}"
        " percent instead.",
        "If we win, {bad} will fall by {n} percent {when}; that is a commitment, not an"
        " aspiration.",
        "Nobody seriously believes that {policy} will cut {bad} by {n} percent, because {reason}.",
        "We will invest {bn} billion euros to increase {good} {when}, because {reason}.",
        "I have opposed {policy} since {since}, and I will keep opposing it as long as I hold"
        " office.",
        "Our own figures show that {bad} could fall by {n} percent {when} without any new taxes.",
        "The opposition's plan would push {bad} up by {n} percent, and ordinary families would"
        " pay the price.",
        "We are ready to back {policy} as long as {bad} does not rise by more than {n} percent.",
        "Under our plan, {good} will be {n} percent higher {when} than it is today.",
        "I promised to increase {good} by {n} percent {when}, and I intend to keep that promise.",
        "{Good} has dropped by {n} percent since {since}, and that is simply unacceptable.",
        "We will double {good} {when} and pay the {bn} billion euros it costs by closing tax"
        " loopholes.",
        "There is no evidence that {policy} has reduced {bad} since {since}, whatever the"
        " minister claims.",
        "Independent experts estimate that {policy} will lower {bad} by {n} percent {when}.",
        "The minister promised to cut {bad} by {n} percent {when}, but nothing has happened.",
    ),
    follow_ups=(
        "That is a promise, not an aspiration.",
        "The figures from the national statistics office make this perfectly clear.",
        "Anyone who says otherwise has not read the report.",
        "We will publish a detailed plan {when}.",
        "The full programme will cost about {bn} billion euros over {years} years.",
        "Working families in {place} have waited long enough.",
        "The minister has had {years} years to fix this and has done nothing.",
        "We owe it to the next generation to get this right.",
        "I have said this in parliament many times, and I will say it again.",
        "Our opponents have no credible answer to that.",
        "This is about fairness, not ideology.",
        "The independent budget office confirmed these numbers last month.",
        "Every region, including {place}, will see the difference.",
        "We discussed this with mayors, nurses and business owners across the country.",
        "A poll last month found that {share} percent of voters agree with us.",
        "In {place} alone, this would make a real difference for thousands of families.",
        "{Reason}.",
    ),
    openers=(
        "Let me be clear.",
        "Make no mistake.",
        "The facts are simple.",
        "I want to be honest with voters.",
        "I said it before and I will say it again.",
    ),
    deadlines=(
        "by {later}",
        "before the end of {later}",
        "within {years} years",
        "before the next election",
        "over the next {years} years",
        "by the end of this parliament",
    ),
    small_numbers=("two", "three", "four", "five"),
    titles=(
        "{actor} on {topic}",
        "{actor} sets out plans on {topic}",
        "Interview: {actor} on {topic}",
        "{actor} answers questions on {topic}",
        "What {actor} said about {topic}",
        "{actor} speaks in parliament on {topic}",
    ),
    publishers=(
        Publisher("The Daily Ledger", "daily-ledger.example"),
        Publisher("Northbridge Herald", "northbridge-herald.example"),
        Publisher("Civic Wire", "civic-wire.example"),
        Publisher("The Meridian Post", "meridian-post.example"),
        Publisher("Harbourside Chronicle", "harbourside-chronicle.example"),
        Publisher("Parliamentary Record", "parliamentary-record.example"),
    ),
    topics={
        "economy": TopicVocabulary(
            bad=(
                "income tax for low earners",
                "youth unemployment",
                "the budget deficit",
                "public debt",
                "inflation",
                "the cost of living",
                "fuel duty",
            ),
            good=(
                "the number of apprenticeships",
                "lending to small businesses",
                "the value of manufactured exports",
                "the number of skilled jobs",
            ),
            policies=(
                "the proposed wealth tax",
                "the new pension reform",
                "a four-day working week",
                "the free-trade agreement with the southern bloc",
                "the planned rise in sales tax",
                "a universal basic income",
            ),
            reasons=(
                "working families cannot wait any longer",
                "the numbers simply do not add up",
                "small businesses are already struggling",
                "it would put thousands of jobs at risk",
            ),
        ),
        "health": TopicVocabulary(
            bad=(
                "the average waiting time for surgery",
                "the price of prescription drugs",
                "child obesity",
                "the shortage of family doctors",
                "spending on temporary agency staff",
                "smoking among teenagers",
            ),
            good=(
                "the number of nurses",
                "funding for mental-health services",
                "the number of hospital beds",
                "access to dental care",
                "vaccination coverage",
            ),
            policies=(
                "the plan to close rural hospitals",
                "the sugar tax",
                "the new patient-fee scheme",
                "the merger of regional health boards",
                "the ban on menthol cigarettes",
                "privatising hospital cleaning services",
            ),
            reasons=(
                "patients are already waiting far too long",
                "nurses are leaving the profession every week",
                "prevention is cheaper than cure",
                "rural families depend on their local hospital",
            ),
        ),
        "environment": TopicVocabulary(
            bad=(
                "carbon pollution",
                "air pollution in our cities",
                "plastic waste",
                "the average household energy bill",
                "the use of coal in power generation",
                "water pollution in our rivers",
            ),
            good=(
                "the share of renewable energy",
                "the number of protected natural areas",
                "investment in home insulation",
                "the recycling rate",
                "tree cover in urban areas",
            ),
            policies=(
                "the carbon tax on aviation",
                "the ban on new petrol cars",
                "the new offshore wind programme",
                "the expansion of the northern coal mine",
                "the deposit scheme for plastic bottles",
                "the plan to reopen nuclear plants",
            ),
            reasons=(
                "the climate will not wait for the next election",
                "clean air is a basic right",
                "the transition must be fair to rural communities",
                "energy bills are already too high",
            ),
        ),
        "education": TopicVocabulary(
            bad=(
                "the average class size",
                "the number of pupils leaving school without qualifications",
                "the cost of university tuition",
                "the number of teacher vacancies",
                "student debt",
                "the attainment gap between rich and poor pupils",
            ),
            good=(
                "the starting salary for teachers",
                "the number of free nursery places",
                "funding for school buildings",
                "adult literacy",
                "access to early-years education",
            ),
            policies=(
                "the plan to scrap tuition fees",
                "the new national curriculum",
                "the four-day school week",
                "the ban on mobile phones in classrooms",
                "the merger of small rural schools",
                "the expansion of selective schools",
            ),
            reasons=(
                "every child deserves the same chance",
                "teachers are exhausted",
                "our universities are losing talent abroad",
                "parents have been ignored for too long",
            ),
        ),
        "justice": TopicVocabulary(
            bad=(
                "violent crime",
                "the backlog in the criminal courts",
                "knife crime among young people",
                "reoffending",
                "overcrowding in prisons",
                "online fraud",
            ),
            good=(
                "the number of police officers on the street",
                "funding for victim support",
                "the number of community officers",
                "legal aid for families",
                "the number of rehabilitation places in prisons",
            ),
            policies=(
                "the new sentencing guidelines",
                "the plan to privatise probation services",
                "mandatory body cameras for police officers",
                "the early-release scheme",
                "facial recognition in public spaces",
                "the merger of regional police forces",
            ),
            reasons=(
                "people deserve to feel safe in their own streets",
                "victims have waited years for justice",
                "prisons are already at breaking point",
                "civil liberties matter",
            ),
        ),
        "foreign-affairs": TopicVocabulary(
            bad=(
                "our dependence on imported gas",
                "irregular migration",
                "the trade deficit with our neighbours",
                "the volume of arms exports to conflict zones",
                "the backlog of asylum applications",
            ),
            good=(
                "defence spending",
                "development aid",
                "the number of diplomats abroad",
                "cooperation with our neighbours",
                "humanitarian funding",
            ),
            policies=(
                "the new defence pact",
                "the border agreement with our southern neighbour",
                "the cut to the foreign aid budget",
                "joining the regional customs union",
                "the plan to reintroduce military service",
                "the latest sanctions package",
            ),
            reasons=(
                "our security depends on strong alliances",
                "we cannot turn our backs on people in need",
                "our exporters need stability",
                "national sovereignty is not for sale",
            ),
        ),
        "infrastructure": TopicVocabulary(
            bad=(
                "the price of rail fares",
                "traffic congestion in the capital",
                "the number of potholes on rural roads",
                "the average rent",
                "the number of delays on commuter trains",
                "the housing waiting list",
            ),
            good=(
                "the number of affordable homes",
                "investment in rail",
                "broadband coverage in rural areas",
                "the number of cycle lanes",
                "the frequency of rural bus services",
            ),
            policies=(
                "the high-speed rail line",
                "the congestion charge",
                "the rent freeze",
                "the new motorway bypass",
                "the sale of public housing",
                "the national fibre programme",
            ),
            reasons=(
                "commuters are paying more for a worse service",
                "young people cannot afford a home",
                "rural areas have been left behind",
                "our bridges are falling apart",
            ),
        ),
        "technology": TopicVocabulary(
            bad=(
                "the number of data breaches in public services",
                "the spread of disinformation online",
                "the number of cyber attacks on hospitals",
                "the digital skills gap",
                "screen time among children",
            ),
            good=(
                "investment in artificial intelligence research",
                "the number of computer science graduates",
                "the average broadband speed",
                "funding for cybersecurity",
                "public trust in digital services",
            ),
            policies=(
                "the new data protection law",
                "the ban on facial recognition",
                "the tax on large online platforms",
                "the national digital identity card",
                "age checks for social media",
                "the artificial intelligence act",
            ),
            reasons=(
                "citizens must stay in control of their data",
                "innovation should not come at the cost of privacy",
                "children need protecting online",
                "we cannot leave this to a handful of tech giants",
            ),
        ),
    },
)

FRENCH = Phrasebook(
    claims=(
        "Nous allons réduire {bad} de {n} % {when}.",
        "{Bad} a augmenté de {n} % depuis {since}, et le gouvernement refuse d'en assumer la"
        " responsabilité.",
        "{Bad} a baissé de {n} % depuis {since}, ce qui prouve que notre politique fonctionne.",
        "Nous rejetons {policy} depuis {since}, car {reason}.",
        "Nous soutenons pleinement {policy}, qui permettrait d'économiser {bn} milliards"
        " d'euros en {years} ans.",
        "{Policy} coûterait {bn} milliards d'euros aux contribuables sans réduire {bad}.",
        "Le gouvernement précédent avait promis de réduire {bad}, mais rien n'a changé depuis"
        " {since}.",
        "Si nous gagnons, {bad} baissera de {n} % {when} : c'est un engagement, pas une promesse"
        " en l'air.",
        "Nous investirons {bn} milliards d'euros pour augmenter {good} {when}, car {reason}.",
        "D'après nos propres chiffres, {bad} pourrait baisser de {n} % {when} sans nouvel impôt.",
        "J'ai promis d'augmenter {good} de {n} % {when}, et je tiendrai parole.",
    ),
    follow_ups=(
        "C'est un engagement, pas une promesse en l'air.",
        "Les chiffres de l'institut national de la statistique sont très clairs.",
        "Ceux qui disent le contraire n'ont pas lu le rapport.",
        "Nous présenterons un plan détaillé {when}.",
        "Les familles de {place} ont assez attendu.",
        "C'est une question de justice, pas d'idéologie.",
        "Nos adversaires n'ont aucune réponse crédible à cela.",
        "Selon un sondage récent, {share} % des électeurs sont d'accord avec nous.",
        "Je l'ai dit à l'Assemblée et je le répète aujourd'hui.",
        "{Reason}.",
    ),
    openers=(
        "Soyons clairs.",
        "Je veux être honnête avec les électeurs.",
        "Les faits sont simples.",
    ),
    deadlines=(
        "d'ici {later}",
        "avant la fin du quinquennat",
        "en {years} ans",
        "avant les prochaines élections",
        "dans les {years} prochaines années",
    ),
    small_numbers=("deux", "trois", "quatre", "cinq"),
    titles=(
        "Entretien avec {actor}",
        "{actor} s'explique",
        "{actor} répond aux questions des lecteurs",
    ),
    publishers=(
        Publisher("Le Courrier du Matin", "courrier-du-matin.example"),
        Publisher("La Gazette Civique", "gazette-civique.example"),
    ),
    topics={
        "economy": TopicVocabulary(
            bad=("le chômage des jeunes", "la dette publique", "l'inflation"),
            good=("l'investissement public", "le nombre d'apprentis"),
            policies=("la taxe sur les grandes fortunes", "la réforme des retraites"),
            reasons=(
                "les familles ne peuvent plus attendre",
                "les chiffres ne tiennent pas la route",
            ),
        ),
        "health": TopicVocabulary(
            bad=(
                "le temps d'attente aux urgences",
                "le prix des médicaments",
                "la pénurie de médecins généralistes",
            ),
            good=("le nombre d'infirmières", "le budget de la santé mentale"),
            policies=("la fermeture des hôpitaux ruraux", "la taxe sur les boissons sucrées"),
            reasons=(
                "les patients attendent déjà beaucoup trop longtemps",
                "la prévention coûte moins cher que les soins",
            ),
        ),
        "environment": TopicVocabulary(
            bad=(
                "la pollution de l'air dans nos villes",
                "la consommation de charbon",
                "le montant des factures d'énergie",
            ),
            good=("la part des énergies renouvelables", "le nombre de zones protégées"),
            policies=(
                "la taxe carbone sur le transport aérien",
                "l'interdiction des voitures à essence",
            ),
            reasons=(
                "le climat n'attendra pas les prochaines élections",
                "l'air pur est un droit fondamental",
            ),
        ),
        "education": TopicVocabulary(
            bad=("le nombre d'élèves par classe", "le décrochage scolaire", "le coût des études"),
            good=("le salaire des enseignants", "le nombre de places en crèche"),
            policies=("la réforme du baccalauréat", "l'interdiction des téléphones à l'école"),
            reasons=("chaque enfant mérite les mêmes chances", "les enseignants sont épuisés"),
        ),
        "justice": TopicVocabulary(
            bad=("la délinquance violente", "le délai de jugement", "la surpopulation carcérale"),
            good=("le nombre de policiers sur le terrain", "l'aide aux victimes"),
            policies=(
                "la réforme de la justice pénale",
                "la reconnaissance faciale dans l'espace public",
            ),
            reasons=(
                "chacun doit se sentir en sécurité dans sa rue",
                "les victimes attendent depuis trop longtemps",
            ),
        ),
        "foreign-affairs": TopicVocabulary(
            bad=(
                "notre dépendance au gaz importé",
                "le déficit commercial",
                "le retard dans le traitement des demandes d'asile",
            ),
            good=("le budget de la défense", "l'aide au développement"),
            policies=("le nouveau pacte de défense", "le retour du service militaire"),
            reasons=(
                "notre sécurité dépend de nos alliances",
                "nous ne pouvons pas tourner le dos aux plus fragiles",
            ),
        ),
        "infrastructure": TopicVocabulary(
            bad=(
                "le prix des billets de train",
                "le niveau des loyers",
                "la congestion dans la capitale",
            ),
            good=("le nombre de logements sociaux", "la couverture en fibre optique des campagnes"),
            policies=("la nouvelle ligne à grande vitesse", "le péage urbain"),
            reasons=("les jeunes n'arrivent plus à se loger", "les zones rurales ont été oubliées"),
        ),
        "technology": TopicVocabulary(
            bad=(
                "la désinformation en ligne",
                "le nombre de cyberattaques contre les hôpitaux",
                "la fracture numérique",
            ),
            good=(
                "l'investissement dans l'intelligence artificielle",
                "le nombre de diplômés en informatique",
            ),
            policies=("la taxe sur les grandes plateformes", "la carte d'identité numérique"),
            reasons=(
                "les citoyens doivent garder le contrôle de leurs données",
                "les enfants doivent être protégés en ligne",
            ),
        ),
    },
)

GERMAN = Phrasebook(
    claims=(
        "Wir werden {bad} {when} um {n} Prozent senken.",
        "{Bad} ist seit {since} um {n} Prozent gestiegen, und die Regierung schaut tatenlos zu.",
        "{Bad} ist seit {since} um {n} Prozent gesunken, ein klarer Beweis, dass unsere Politik"
        " wirkt.",
        "Wir lehnen {policy} seit {since} entschieden ab, denn {reason}.",
        "Wir unterstützen {policy} ausdrücklich, denn damit sparen wir in {years} Jahren {bn}"
        " Milliarden Euro.",
        "{Policy} würde die Steuerzahler {bn} Milliarden Euro kosten und {bad} kein bisschen"
        " verringern.",
        "Wenn wir gewinnen, wird {bad} {when} um {n} Prozent sinken, und das ist ein Versprechen.",
        "Wir werden {bn} Milliarden Euro investieren, um {good} {when} zu erhöhen, denn {reason}.",
        "Nach unseren eigenen Zahlen könnte {bad} {when} um {n} Prozent sinken, ganz ohne neue"
        " Steuern.",
        "Ich habe versprochen, {good} {when} um {n} Prozent zu erhöhen, und ich halte Wort.",
    ),
    follow_ups=(
        "Das ist ein Versprechen, keine vage Absicht.",
        "Die Zahlen des Statistikamts sind eindeutig.",
        "Wer etwas anderes behauptet, hat den Bericht nicht gelesen.",
        "Wir legen {when} einen detaillierten Plan vor.",
        "Die Familien in {place} haben lange genug gewartet.",
        "Es geht um Gerechtigkeit, nicht um Ideologie.",
        "Unsere Gegner haben darauf keine glaubwürdige Antwort.",
        "Laut einer aktuellen Umfrage stimmen uns {share} Prozent der Wähler zu.",
        "{Reason}.",
    ),
    openers=(
        "Ich sage es ganz deutlich.",
        "Machen wir uns nichts vor.",
        "Die Fakten sind einfach.",
    ),
    deadlines=(
        "bis {later}",
        "bis Ende {later}",
        "innerhalb von {years} Jahren",
        "vor der nächsten Wahl",
        "in den nächsten {years} Jahren",
    ),
    small_numbers=("zwei", "drei", "vier", "fünf"),
    titles=(
        "Interview mit {actor}",
        "{actor} im Gespräch",
        "{actor} stellt sich den Fragen der Leser",
    ),
    publishers=(
        Publisher("Morgenblatt Nord", "morgenblatt-nord.example"),
        Publisher("Abendkurier Süd", "abendkurier-sued.example"),
    ),
    topics={
        "economy": TopicVocabulary(
            bad=("die Jugendarbeitslosigkeit", "die Staatsverschuldung", "die Inflation"),
            good=("die Zahl der Ausbildungsplätze", "die Investition in den Mittelstand"),
            policies=("die geplante Vermögensteuer", "die neue Rentenreform"),
            reasons=(
                "die Familien können nicht länger warten",
                "die Rechnung geht einfach nicht auf",
            ),
        ),
        "health": TopicVocabulary(
            bad=(
                "die Wartezeit auf Operationen",
                "die Zuzahlung für Medikamente",
                "die Zahl unbesetzter Hausarztpraxen",
            ),
            good=("die Zahl der Pflegekräfte", "die Versorgung mit Kinderärzten"),
            policies=("die Schließung ländlicher Krankenhäuser", "die Zuckersteuer"),
            reasons=(
                "die Patienten warten schon viel zu lange",
                "Vorbeugung ist billiger als Behandlung",
            ),
        ),
        "environment": TopicVocabulary(
            bad=(
                "die Luftverschmutzung in unseren Städten",
                "die Kohleverstromung",
                "die Plastikverschmutzung der Flüsse",
            ),
            good=("die Zahl der Windräder an Land", "die Fläche geschützter Naturgebiete"),
            policies=("die CO2-Steuer auf Flugreisen", "das Verbot neuer Benzinautos"),
            reasons=(
                "das Klima wartet nicht auf die nächste Wahl",
                "saubere Luft ist ein Grundrecht",
            ),
        ),
        "education": TopicVocabulary(
            bad=(
                "die Größe der Schulklassen",
                "die Zahl der Schulabbrecher",
                "die Belastung der Lehrkräfte",
            ),
            good=("die Bezahlung der Lehrkräfte", "die Zahl der Kita-Plätze"),
            policies=("die neue Lehrplanreform", "das Handyverbot an Schulen"),
            reasons=(
                "jedes Kind verdient die gleichen Chancen",
                "die Lehrkräfte sind am Ende ihrer Kräfte",
            ),
        ),
        "justice": TopicVocabulary(
            bad=(
                "die Gewaltkriminalität",
                "die Verfahrensdauer an den Strafgerichten",
                "die Überbelegung der Gefängnisse",
            ),
            good=(
                "die Zahl der Polizeikräfte auf der Straße",
                "die Unterstützung für Opfer von Straftaten",
            ),
            policies=("die Gesichtserkennung im öffentlichen Raum", "die Reform des Strafrechts"),
            reasons=(
                "die Menschen müssen sich in ihren Straßen sicher fühlen",
                "die Opfer warten seit Jahren auf Gerechtigkeit",
            ),
        ),
        "foreign-affairs": TopicVocabulary(
            bad=(
                "die Abhängigkeit von importiertem Gas",
                "die irreguläre Migration",
                "die Zahl offener Asylverfahren",
            ),
            good=("die Entwicklungshilfe", "die Zahl der Botschaftsstellen im Ausland"),
            policies=("die Wiedereinführung der Wehrpflicht", "das neue Verteidigungsabkommen"),
            reasons=(
                "unsere Sicherheit hängt von starken Bündnissen ab",
                "wir dürfen Menschen in Not nicht im Stich lassen",
            ),
        ),
        "infrastructure": TopicVocabulary(
            bad=(
                "die Miete in den Großstädten",
                "die Zahl der Zugverspätungen",
                "die Staubelastung in der Hauptstadt",
            ),
            good=("die Zahl bezahlbarer Wohnungen", "die Breitbandversorgung auf dem Land"),
            policies=("die neue Schnellbahnstrecke", "die Citymaut"),
            reasons=(
                "junge Menschen können sich keine Wohnung mehr leisten",
                "der ländliche Raum wurde vergessen",
            ),
        ),
        "technology": TopicVocabulary(
            bad=(
                "die Desinformation im Netz",
                "die Zahl der Cyberangriffe auf Krankenhäuser",
                "die digitale Kluft",
            ),
            good=("die Förderung der KI-Forschung", "die Zahl der Informatikabsolventen"),
            policies=("die Digitalsteuer für große Plattformen", "die digitale Identitätskarte"),
            reasons=(
                "die Bürger müssen die Kontrolle über ihre Daten behalten",
                "Kinder müssen im Netz geschützt werden",
            ),
        ),
    },
)

SPANISH = Phrasebook(
    claims=(
        "Vamos a reducir {bad} un {n} % {when}.",
        "{Bad} ha subido un {n} % desde {since}, y el Gobierno se niega a asumir su"
        " responsabilidad.",
        "{Bad} ha bajado un {n} % desde {since}, lo que demuestra que nuestro plan funciona.",
        "Rechazamos {policy} desde {since}, porque {reason}.",
        "Apoyamos plenamente {policy}, que permitiría ahorrar {bn} mil millones de euros en"
        " {years} años.",
        "{Policy} costaría {bn} mil millones de euros a los contribuyentes y no reduciría {bad}.",
        "Si ganamos, {bad} bajará un {n} % {when}; es un compromiso, no una promesa vacía.",
        "Invertiremos {bn} mil millones de euros para aumentar {good} {when}, porque {reason}.",
        "Según nuestras propias cifras, {bad} podría bajar un {n} % {when} sin nuevos impuestos.",
        "Prometí aumentar {good} un {n} % {when}, y voy a cumplir mi palabra.",
    ),
    follow_ups=(
        "Es un compromiso, no una promesa vacía.",
        "Las cifras del instituto de estadística son muy claras.",
        "Quien diga lo contrario no ha leído el informe.",
        "Presentaremos un plan detallado {when}.",
        "Las familias de {place} ya han esperado bastante.",
        "Es una cuestión de justicia, no de ideología.",
        "Nuestros adversarios no tienen una respuesta creíble.",
        "Según una encuesta reciente, el {share} % de los votantes está de acuerdo con nosotros.",
        "{Reason}.",
    ),
    openers=("Quiero ser muy claro.", "Los hechos son sencillos.", "Lo he dicho muchas veces."),
    deadlines=(
        "antes de {later}",
        "para {later}",
        "en {years} años",
        "antes de las próximas elecciones",
        "durante los próximos {years} años",
    ),
    small_numbers=("dos", "tres", "cuatro", "cinco"),
    titles=("Entrevista con {actor}", "{actor} responde a los lectores", "La propuesta de {actor}"),
    publishers=(
        Publisher("El Heraldo Cívico", "heraldo-civico.example"),
        Publisher("Diario del Puerto", "diario-del-puerto.example"),
    ),
    topics={
        "economy": TopicVocabulary(
            bad=("el paro juvenil", "la deuda pública", "la inflación"),
            good=("la inversión pública", "el número de aprendices"),
            policies=("el nuevo impuesto sobre el patrimonio", "la reforma de las pensiones"),
            reasons=("las familias no pueden esperar más", "las cuentas simplemente no cuadran"),
        ),
        "health": TopicVocabulary(
            bad=(
                "la lista de espera quirúrgica",
                "el precio de los medicamentos",
                "la falta de médicos de familia",
            ),
            good=("el número de enfermeras", "la financiación de la salud mental"),
            policies=(
                "el cierre de hospitales rurales",
                "el impuesto sobre las bebidas azucaradas",
            ),
            reasons=("los pacientes ya esperan demasiado", "prevenir es más barato que curar"),
        ),
        "environment": TopicVocabulary(
            bad=(
                "la contaminación del aire en nuestras ciudades",
                "el uso del carbón",
                "la factura de la luz",
            ),
            good=("la cuota de energías renovables", "la superficie de espacios protegidos"),
            policies=(
                "el impuesto al carbono sobre los vuelos",
                "la prohibición de los coches de gasolina",
            ),
            reasons=(
                "el clima no esperará a las próximas elecciones",
                "respirar aire limpio es un derecho básico",
            ),
        ),
        "education": TopicVocabulary(
            bad=(
                "el abandono escolar",
                "el número de alumnos por aula",
                "el precio de las matrículas universitarias",
            ),
            good=("el salario de los docentes", "el número de plazas de guardería"),
            policies=("la nueva ley de educación", "la prohibición de los móviles en las aulas"),
            reasons=(
                "todos los niños merecen las mismas oportunidades",
                "los docentes están agotados",
            ),
        ),
        "justice": TopicVocabulary(
            bad=(
                "la delincuencia violenta",
                "el retraso en los juzgados",
                "el hacinamiento en las cárceles",
            ),
            good=("el número de policías en la calle", "el apoyo a las víctimas"),
            policies=(
                "la reforma del código penal",
                "el reconocimiento facial en espacios públicos",
            ),
            reasons=(
                "la gente tiene derecho a sentirse segura en su barrio",
                "las víctimas llevan años esperando justicia",
            ),
        ),
        "foreign-affairs": TopicVocabulary(
            bad=(
                "la dependencia del gas importado",
                "el déficit comercial",
                "el retraso en las solicitudes de asilo",
            ),
            good=("el gasto en defensa", "la ayuda al desarrollo"),
            policies=("el nuevo pacto de defensa", "el regreso del servicio militar"),
            reasons=(
                "nuestra seguridad depende de alianzas sólidas",
                "no podemos dar la espalda a quien lo necesita",
            ),
        ),
        "infrastructure": TopicVocabulary(
            bad=(
                "el precio del alquiler",
                "el precio de los billetes de tren",
                "el atasco diario en la capital",
            ),
            good=("el número de viviendas asequibles", "la cobertura de fibra en zonas rurales"),
            policies=("la nueva línea de alta velocidad", "el peaje urbano"),
            reasons=("los jóvenes no pueden pagar una vivienda", "el mundo rural ha sido olvidado"),
        ),
        "technology": TopicVocabulary(
            bad=(
                "la desinformación en internet",
                "el número de ciberataques contra hospitales",
                "la brecha digital",
            ),
            good=(
                "la inversión en inteligencia artificial",
                "el número de titulados en informática",
            ),
            policies=(
                "la tasa a las grandes plataformas digitales",
                "el documento de identidad digital",
            ),
            reasons=(
                "los ciudadanos deben controlar sus datos",
                "los niños necesitan protección en la red",
            ),
        ),
    },
)

BRAZILIAN_PORTUGUESE = Phrasebook(
    claims=(
        "Vamos reduzir {bad} em {n}% {when}.",
        "{Bad} aumentou {n}% desde {since}, e o governo se recusa a assumir a responsabilidade.",
        "{Bad} caiu {n}% desde {since}, o que prova que o nosso plano está funcionando.",
        "Rejeitamos {policy} desde {since}, porque {reason}.",
        "Apoiamos plenamente {policy}, que vai economizar {bn} bilhões de reais em {years} anos.",
        "{Policy} custaria {bn} bilhões de reais aos contribuintes e não reduziria {bad}.",
        "Se vencermos, {bad} vai cair {n}% {when}; é um compromisso, não uma promessa vazia.",
        "Vamos investir {bn} bilhões de reais para aumentar {good} {when}, porque {reason}.",
        "Pelos nossos próprios números, {bad} pode cair {n}% {when} sem novos impostos.",
        "Prometi aumentar {good} em {n}% {when}, e vou cumprir a minha palavra.",
    ),
    follow_ups=(
        "É um compromisso, não uma promessa vazia.",
        "Os números do instituto de estatística são muito claros.",
        "Quem diz o contrário não leu o relatório.",
        "Vamos apresentar um plano detalhado {when}.",
        "As famílias de {place} já esperaram demais.",
        "É uma questão de justiça, não de ideologia.",
        "Nossos adversários não têm nenhuma resposta séria.",
        "Segundo uma pesquisa recente, {share}% dos eleitores concordam conosco.",
        "{Reason}.",
    ),
    openers=("Quero ser muito claro.", "Os fatos são simples.", "Já disse isso muitas vezes."),
    deadlines=(
        "até {later}",
        "antes do fim de {later}",
        "em {years} anos",
        "antes das próximas eleições",
        "nos próximos {years} anos",
    ),
    small_numbers=("dois", "três", "quatro", "cinco"),
    titles=("Entrevista com {actor}", "{actor} responde aos leitores", "A proposta de {actor}"),
    publishers=(
        Publisher("Jornal da Serra", "jornal-da-serra.example"),
        Publisher("Gazeta do Litoral", "gazeta-do-litoral.example"),
    ),
    topics={
        "economy": TopicVocabulary(
            bad=("o desemprego entre os jovens", "a dívida pública", "a inflação"),
            good=("o investimento público", "o número de aprendizes"),
            policies=("o novo imposto sobre grandes fortunas", "a reforma da Previdência"),
            reasons=("as famílias não podem mais esperar", "a conta simplesmente não fecha"),
        ),
        "health": TopicVocabulary(
            bad=("a fila para cirurgias", "o preço dos remédios", "a falta de médicos de família"),
            good=("o número de enfermeiros", "o financiamento da saúde mental"),
            policies=(
                "o fechamento de hospitais no interior",
                "o imposto sobre bebidas açucaradas",
            ),
            reasons=("os pacientes já esperam tempo demais", "prevenir custa menos do que tratar"),
        ),
        "environment": TopicVocabulary(
            bad=("o desmatamento", "a poluição do ar nas grandes cidades", "a conta de luz"),
            good=("a participação das energias renováveis", "a área de reservas protegidas"),
            policies=("o imposto sobre carbono na aviação", "a proibição de carros a gasolina"),
            reasons=(
                "o clima não vai esperar as próximas eleições",
                "ar limpo é um direito básico",
            ),
        ),
        "education": TopicVocabulary(
            bad=("a evasão escolar", "o número de alunos por turma", "o valor das mensalidades"),
            good=("o salário dos professores", "o número de vagas em creches"),
            policies=("o novo currículo nacional", "a proibição de celulares nas salas de aula"),
            reasons=(
                "toda criança merece as mesmas oportunidades",
                "os professores estão exaustos",
            ),
        ),
        "justice": TopicVocabulary(
            bad=("a violência urbana", "a demora nos tribunais", "a superlotação dos presídios"),
            good=("o número de policiais nas ruas", "o apoio às vítimas"),
            policies=("a reforma do Código Penal", "o reconhecimento facial em espaços públicos"),
            reasons=(
                "as pessoas têm o direito de se sentir seguras",
                "as vítimas esperam há anos por justiça",
            ),
        ),
        "foreign-affairs": TopicVocabulary(
            bad=(
                "a dependência de gás importado",
                "o déficit comercial",
                "a fila de pedidos de refúgio",
            ),
            good=("o orçamento da defesa", "a ajuda ao desenvolvimento"),
            policies=("o novo acordo de defesa", "a volta do serviço militar obrigatório"),
            reasons=(
                "a nossa segurança depende de alianças fortes",
                "não podemos dar as costas a quem precisa",
            ),
        ),
        "infrastructure": TopicVocabulary(
            bad=(
                "o preço do aluguel",
                "o preço da passagem de ônibus",
                "o congestionamento na capital",
            ),
            good=("o número de moradias populares", "a cobertura de banda larga no interior"),
            policies=("o novo trem de alta velocidade", "o pedágio urbano"),
            reasons=("os jovens não conseguem pagar um aluguel", "o interior foi esquecido"),
        ),
        "technology": TopicVocabulary(
            bad=(
                "a desinformação nas redes",
                "o número de ataques cibernéticos contra hospitais",
                "a exclusão digital",
            ),
            good=(
                "o investimento em inteligência artificial",
                "o número de formados em computação",
            ),
            policies=("a taxa sobre as grandes plataformas", "a carteira de identidade digital"),
            reasons=(
                "os cidadãos precisam controlar os seus dados",
                "as crianças precisam de proteção na internet",
            ),
        ),
    },
)

PHRASEBOOKS: Mapping[str, Phrasebook] = {
    "en": ENGLISH,
    "fr": FRENCH,
    "de": GERMAN,
    "es": SPANISH,
    "pt-BR": BRAZILIAN_PORTUGUESE,
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
    spans several areas; past the 40 in TOPIC_TREE come aspects of the children
    ("energy-policy-funding"), numbered once the aspects run out.
    """
    allocator = _SlugAllocator()
    roots = [(name, allocator.allocate(name)) for name, _ in TOPIC_TREE]
    result = [_Topic(root_id, name, "", root_id, name.lower()) for name, root_id in roots]
    children: list[_Topic] = []
    for position in range(max(len(kids) for _, kids in TOPIC_TREE)):
        for (_, kids), (_, root_id) in zip(TOPIC_TREE, roots, strict=True):
            if position < len(kids):
                name = kids[position]
                children.append(
                    _Topic(allocator.allocate(name), name, root_id, root_id, name.lower())
                )
    result.extend(children)
    extra = 0
    while len(result) < count:
        parent = children[extra % len(children)]
        aspect = TOPIC_ASPECTS[(extra // len(children)) % len(TOPIC_ASPECTS)]
        round_number = extra // (len(children) * len(TOPIC_ASPECTS)) + 1
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
    pool = rng.choice(PERSON_NAME_POOLS)
    first, last = rng.choice(pool.first_names), rng.choice(pool.last_names)
    nickname = rng.choice(NICKNAMES).format(first=first, last=last)
    description = rng.choice(PERSON_DESCRIPTIONS).format(
        place=rng.choice(PLACES),
        year=rng.randint(1998, 2015),
        area=rng.choice(POLICY_AREAS).lower(),
        sector=rng.choice(SECTORS),
    )
    aliases = (f"{first[0]}. {last}", last, nickname)
    return f"{first} {last}", aliases, "ACTOR_KIND_PERSON", description


def _invent_party(rng: random.Random) -> _ActorDraft:
    word, noun, form = rng.choice(PARTY_WORDS), rng.choice(PARTY_NOUNS), rng.choice(PARTY_FORMS)
    name = f"{word} {noun} {form}"
    description = (
        f"A {rng.choice(PARTY_POSITIONS)} political party founded in {rng.randint(1950, 2015)},"
        f" strongest in {rng.choice(PLACES)}."
    )
    return name, (_abbreviation(name), f"{word} {noun}"), "ACTOR_KIND_ORGANISATION", description


def _invent_ministry(rng: random.Random) -> _ActorDraft:
    country, area = rng.choice(COUNTRIES), rng.choice(POLICY_AREAS)
    name = f"{country} Ministry of {area}"
    description = f"Government department of {country} responsible for {area.lower()}."
    aliases = (_abbreviation(name), f"Ministry of {area}", f"{area} Ministry")
    return name, aliases, "ACTOR_KIND_ORGANISATION", description


def _invent_company(rng: random.Random) -> _ActorDraft:
    stem, (industry, described_as) = rng.choice(COMPANY_STEMS), rng.choice(COMPANY_INDUSTRIES)
    name = f"{stem} {industry} {rng.choice(COMPANY_SUFFIXES)}"
    description = (
        f"{described_as} company headquartered in {rng.choice(PLACES)},"
        f" founded in {rng.randint(1890, 2012)}."
    )
    aliases = (_abbreviation(name), stem, f"{stem} {industry}")
    return name, aliases, "ACTOR_KIND_ORGANISATION", description


def _invent_ngo(rng: random.Random) -> _ActorDraft:
    (cause, mission), form = rng.choice(NGO_CAUSES), rng.choice(NGO_FORMS)
    name = f"{cause} {form}"
    description = f"Non-profit group campaigning for {mission}, based in {rng.choice(PLACES)}."
    return name, (_abbreviation(name), cause), "ACTOR_KIND_ORGANISATION", description


def _invent_other(rng: random.Random) -> _ActorDraft:
    name, aliases, description = rng.choice(OTHER_SPEAKERS)
    area = rng.choice(POLICY_AREAS)
    slots = {"area": area, "area_lower": area.lower(), "place": rng.choice(PLACES)}
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
        "place": rng.choice(PLACES),
        "years": years,
    }
