"""Charts, tables and languages, as plain functions."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from beacon.dashboard.charts import Series, bar_chart, line_chart, nice_ceiling
from beacon.dashboard.i18n import MESSAGES, negotiate, translate
from beacon.stats import Column, Table


def test_line_chart_draws_every_point_accessibly():
    svg = str(
        line_chart(
            chart_id="c",
            title="Opens <& clicks>",
            desc="details",
            labels=["a", "b", "c"],
            series=[Series("opens", [0, 5, 10]), Series("clicks", [1, 2, 3])],
        )
    )
    assert 'role="img"' in svg
    assert '<title id="c-title">Opens &lt;&amp; clicks&gt;</title>' in svg
    assert '<desc id="c-desc">details</desc>' in svg
    assert svg.count('class="point"') == 6
    points = re.findall(r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)"', svg)
    heights = [float(cy) for _, cy in points[:3]]
    assert heights[0] > heights[1] > heights[2]  # larger values are drawn higher
    assert svg.count("<polyline") == 2
    assert "<li>" in svg  # the legend


def test_line_chart_of_one_point_and_of_nothing():
    single = str(
        line_chart(chart_id="s", title="t", desc="d", labels=["x"], series=[Series("a", [3])])
    )
    assert single.count('class="point"') == 1
    empty = str(line_chart(chart_id="e", title="t", desc="d", labels=[], series=[]))
    assert "<svg" in empty


def test_bar_chart_escapes_and_shortens_labels():
    svg = str(
        bar_chart(
            chart_id="b",
            title="Links",
            desc="d",
            rows=[("https://example.org/" + "x" * 80 + "?a=<b>", 9), ("other", 0)],
        )
    )
    assert svg.count('class="bar"') == 2
    assert "<b>" not in svg
    assert "…" in svg
    assert 'width="0.0"' in svg  # a zero value has no bar


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (240, 250), (999, 1000)]
)
def test_nice_ceiling(value, expected):
    assert nice_ceiling(value) == expected


def test_table_text_and_csv():
    table = Table(
        "t",
        (Column("name", "Name", "text"), Column("n", "Count"), Column("r", "Rate", "rate")),
        (("=HYPERLINK(1)", 12345, 0.5), ("b", 2, None)),
    )
    text = table.to_text().splitlines()
    assert text[0] == "Name           Count   Rate"
    assert text[1] == "-------------  -----  -----"
    assert text[2] == "=HYPERLINK(1)  12345  50.0%"
    assert text[3] == "b                  2      –"
    rows = table.to_csv().splitlines()
    assert rows == ["name,n,r", "'=HYPERLINK(1),12345,0.5000", "b,2,"]
    assert table.records()[1] == {"name": "b", "n": 2, "r": None}


def test_table_dates():
    table = Table(
        "d",
        (Column("day", "Day", "date"), Column("at", "At", "datetime")),
        ((date(2026, 11, 1), datetime(2026, 11, 2, 8, tzinfo=UTC)),),
    )
    assert table.to_csv().splitlines()[1] == "2026-11-01,2026-11-02T08:00:00Z"
    assert table.to_text().splitlines()[2].split() == ["2026-11-01", "2026-11-02", "08:00"]


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "fr"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "de-DE,de;q=0.9,en;q=0.5,fr;q=0.4", "en"),
        (None, "en;q=0.2,fr;q=0.8", "fr"),
        (None, "en;q=0", "fr"),
        (None, "en;q=abc", "fr"),
        ("en", "fr", "en"),
        ("xx", "en", "en"),
    ],
)
def test_language_negotiation(cookie, header, expected):
    assert negotiate(cookie, header) == expected


def test_every_message_exists_in_both_languages():
    for key, texts in MESSAGES.items():
        assert set(texts) == {"fr", "en"}, key
        assert all(text.strip() for text in texts.values()), key
    assert translate("k_note", "en", k=5).startswith("Privacy: a value seen by fewer than 5")
