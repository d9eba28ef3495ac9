"""What the dashboard computes for its pages: revision diffs, charts, timelines and formats."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import QueryParams

from panoptic.model.claims import ClaimRow
from panoptic.reads.domain import Interval
from panoptic.reads.queries import RevisionRow, TimelineBucket
from services.dashboard import formatting
from services.dashboard.charts import Bar, axis_label, bar_chart, nice_ceiling
from services.dashboard.pages.actors import timeline_bars
from services.dashboard.pages.claims import claim_query
from services.dashboard.queries import HIDDEN_STATEMENT, _shown_statement, like_pattern
from services.dashboard.revisions import TextPiece, claim_diff, history_diffs, text_diff
from services.dashboard.state import url_with

MOMENT = datetime(2024, 5, 1, 12, tzinfo=UTC)


def claim(**overrides: object) -> ClaimRow:
    base = ClaimRow(
        id="c1",
        actor_id="jane-doe",
        topic_ids=("energy",),
        text="We will double the wind farms by 2030.",
        stated_at=MOMENT,
        source_url="https://news.example/1",
        source_title="News",
        source_publisher="",
        source_published_at=None,
        language="en",
        confidence=0.9,
        state="ACTIVE",
        revision=1,
        create_time=MOMENT,
        update_time=MOMENT,
    )
    return base._replace(**overrides)  # type: ignore[arg-type]


def test_text_diff_marks_words_not_lines() -> None:
    """A changed word is one removal and one addition; the rest is kept as it was."""
    pieces = text_diff("We will double the wind farms.", "We will triple the wind farms.")
    assert pieces == (
        TextPiece("same", "We will "),
        TextPiece("removed", "double"),
        TextPiece("added", "triple"),
        TextPiece("same", " the wind farms."),
    )


def test_text_diff_rebuilds_both_texts_exactly() -> None:
    """An inserted phrase is one addition, and each side's pieces give back its text."""
    old, new = "every school roof.", "every school and hospital roof."
    pieces = text_diff(old, new)
    assert TextPiece("added", "and hospital ") in pieces
    assert "".join(p.text for p in pieces if p.kind != "removed") == new
    assert "".join(p.text for p in pieces if p.kind != "added") == old


def test_identical_texts_have_no_change() -> None:
    """Comparing a text with itself finds nothing."""
    assert text_diff("same text", "same text") == (TextPiece("same", "same text"),)


def test_claim_diff_lists_the_fields_that_changed() -> None:
    """State, topics and confidence changes are listed with old and new values."""
    diff = claim_diff(
        claim(),
        claim(state="RETRACTED", topic_ids=("energy", "wind"), confidence=0.5),
        1,
        2,
    )
    assert not diff.text_changed
    assert [(c.field, c.old, c.new) for c in diff.fields] == [
        ("state", "ACTIVE", "RETRACTED"),
        ("topics", "energy", "energy, wind"),
        ("confidence", "0.900", "0.500"),
    ]
    assert claim_diff(claim(), claim(revision=2), 1, 2).unchanged


def test_history_diffs_compare_each_revision_with_the_one_before() -> None:
    """Every revision after the first gets its diff, keyed by its number."""
    revisions = [
        RevisionRow(n, "CREATED" if n == 1 else "UPDATED", MOMENT, f"r{n}", "", claim(text=t))
        for n, t in ((1, "a b"), (2, "a c"), (3, "a c d"))
    ]
    diffs = history_diffs(revisions)
    assert sorted(diffs) == [2, 3]
    assert TextPiece("added", " d") in diffs[3].text


def test_nice_ceilings_and_axis_labels() -> None:
    """The value axis tops out at a round number and shortens thousands."""
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 11, 23, 240, 999)] == [
        1,
        1,
        5,
        10,
        20,
        25,
        250,
        1000,
    ]
    assert [axis_label(v) for v in (0, 950, 2000, 2500, 1_200_000)] == [
        "0",
        "950",
        "2k",
        "2.5k",
        "1.2M",
    ]


def test_charts_escape_labels_and_stack_series() -> None:
    """Tooltips and titles are escaped; each non-zero value of a bar is one rectangle."""
    svg = str(
        bar_chart(
            [Bar("<b>", "a <script> tip", (2, 3)), Bar("", "empty", (0, 0))],
            title='Claims "&" more',
            series=("new", "changed"),
        )
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'aria-label="Claims &#34;&amp;&#34; more"' in svg
    assert len(re.findall(r'<rect class="series-\d"', svg)) == 2  # the empty bar draws none
    assert len(re.findall(r'class="swatch series-\d"', svg)) == 2


def test_timeline_bars_fill_empty_periods_across_a_year_end() -> None:
    """Monthly buckets from November to February give four bars, zero where none was said."""
    first = datetime(2023, 11, 1, tzinfo=UTC)
    last = datetime(2024, 2, 1, tzinfo=UTC)
    buckets = [
        TimelineBucket(first, 2, (claim(),)),
        TimelineBucket(last, 1, ()),
    ]
    bars = timeline_bars(buckets, Interval.MONTH, first, last)
    assert [bar.values for bar in bars] == [(2,), (0,), (0,), (1,)]
    assert bars[0].tooltip.startswith("2023-11: 2 claims — e.g.")
    assert bars[2].tooltip == "2024-01: 0 claims"


def test_claim_query_checks_dates_and_state() -> None:
    """Dates are whole days (the end inclusive); a bad date or state is reported, not raised."""
    query = claim_query(QueryParams("q=wind&from=2024-01-01&to=2024-01-31&state=all&order=asc"))
    assert query.text == "wind"
    assert query.filters.stated_after == datetime(2024, 1, 1, tzinfo=UTC)
    assert query.filters.stated_before == datetime(2024, 2, 1, tzinfo=UTC)
    assert query.filters.show_retracted
    assert query.ascending
    bad = claim_query(QueryParams("from=01/02/2024&state=deleted"))
    assert len(bad.errors) == 2


def test_url_with_keeps_the_other_parameters() -> None:
    """Changing one parameter keeps the rest; None or "" removes one."""
    params = QueryParams("q=wind&page=abc&empty=")
    assert url_with(params, "/claims", page=None) == "/claims?q=wind"
    assert url_with(params, "/claims", state="all") == "/claims?q=wind&page=abc&state=all"


def test_statements_that_may_hold_a_password_are_hidden() -> None:
    """pg_stat_statements keeps some utility statements literally; those never reach a page."""
    assert _shown_statement("ALTER ROLE x PASSWORD 'hunter2'") == HIDDEN_STATEMENT
    assert _shown_statement("SELECT  1\n FROM t") == "SELECT 1 FROM t"


def test_like_patterns_take_wildcards_literally() -> None:
    """A topic search for "100%_x" looks for exactly that text."""
    assert like_pattern("100%_x\\") == "%100\\%\\_x\\\\%"


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (formatting.number, 1234567, "1\u202f234\u202f567"),
        (formatting.size, 1536, "1.5 KiB"),
        (formatting.size, 512, "512 B"),
        (formatting.percent, 0.9876, "98.8 %"),
        (formatting.percent, None, "—"),
        (formatting.duration, timedelta(days=3, hours=4, minutes=5), "3 d 4 h"),
        (formatting.duration, timedelta(seconds=42), "42 s"),
        (formatting.utc, MOMENT, "2024-05-01 12:00 UTC"),
        (formatting.milliseconds, 1234.5, "1\u202f234 ms"),
    ],
)
def test_formats(function: object, value: object, expected: str) -> None:
    """Numbers, sizes, ratios, spans and times read the same on every page."""
    assert callable(function)
    assert function(value) == expected
