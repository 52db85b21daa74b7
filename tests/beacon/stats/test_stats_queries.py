"""The statistics queries give the exact numbers of the hand-built event set (see conftest)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from beacon.stats import (
    BreakdownRow,
    ClickCounts,
    DateRange,
    InvalidFilter,
    LinkRow,
    OpenCounts,
    StatsQueries,
    parse_campaign,
    parse_site,
)

from .stats_dataset import CAMPAIGN, LINK_A, SITE

NOVEMBER = DateRange(date(2026, 11, 1), date(2026, 11, 3))


@pytest.fixture
def queries(stats_store):
    return StatsQueries(stats_store)


def test_campaign_summary(queries):
    summary = queries.campaign_summary(CAMPAIGN)
    assert summary is not None
    assert summary.opens == OpenCounts(
        total=10, unique=8, human=7, machine=3, unique_human=6, unique_machine=3
    )
    assert summary.clicks == ClickCounts(
        total=11, unique=8, human=9, scanner=2, unique_human=7, unique_scanner=1
    )
    assert summary.unsubscribes == 1
    assert summary.reached == 9
    assert summary.ctr == pytest.approx(7 / 9)
    assert summary.cto == pytest.approx(7 / 8)
    assert summary.first_seen == datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert summary.last_seen == datetime(2026, 11, 5, 14, tzinfo=UTC)


def test_campaign_filters(queries):
    assert queries.campaign_summary("no-such-campaign") is None
    assert queries.campaign_summary(CAMPAIGN, site="other.example") is None
    first_day = queries.campaign_summary(
        CAMPAIGN, days=DateRange(date(2026, 11, 2), date(2026, 11, 2))
    )
    assert first_day is not None
    assert first_day.clicks.total == 10  # r6's click of 2026-11-05 is outside the range
    assert [s.campaign for s in queries.campaigns(site=SITE)] == [CAMPAIGN]
    assert queries.campaigns(site="other.example") == []


def test_campaign_links_merge_rare_links(queries):
    assert queries.campaign_links(CAMPAIGN) == (
        LinkRow(LINK_A, clicks=9, unique=8, human=8, scanner=1, unique_human=7),
        LinkRow("other", clicks=2, unique=2, human=1, scanner=1, unique_human=1),
    )


def test_k_of_one_shows_every_link(stats_store):
    links = StatsQueries(stats_store, k=1).campaign_links(CAMPAIGN)
    assert [(row.link, row.clicks, row.unique) for row in links] == [
        (LINK_A, 9, 8),
        ("https://mypharm.fr/conseils", 2, 2),
    ]


def test_larger_k_merges_everything_into_other(stats_store):
    links = StatsQueries(stats_store, k=9).campaign_links(CAMPAIGN)
    assert links == (LinkRow("other", 11, 8, 9, 2, 7),)


def test_campaign_devices_count_humans_only(queries):
    assert queries.campaign_breakdown(CAMPAIGN, "device") == (
        BreakdownRow("mobile", 13, 5),
        BreakdownRow("other", 3, 2),
    )
    assert queries.campaign_breakdown(CAMPAIGN, "os") == (
        BreakdownRow("iOS", 13, 5),
        BreakdownRow("other", 3, 2),
    )
    with pytest.raises(InvalidFilter):
        queries.campaign_breakdown(CAMPAIGN, "colour")  # type: ignore[arg-type]


def test_campaign_timeline_hourly_then_daily(queries):
    timeline = queries.campaign_timeline(CAMPAIGN)
    hourly = [p for p in timeline if p.granularity == "hour"]
    daily = [p for p in timeline if p.granularity == "day"]
    # 2026-11-02 08:00 + 48 h reaches 2026-11-04; hourly to the end of that day.
    assert hourly[0].start == datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert hourly[-1].start == datetime(2026, 11, 4, 23, tzinfo=UTC)
    assert len(hourly) == 64
    assert [p.start for p in daily] == [datetime(2026, 11, 5, tzinfo=UTC)]
    first = hourly[0]
    assert (first.opens, first.opens_unique, first.opens_machine) == (7, 7, 2)
    assert (first.clicks, first.clicks_unique, first.clicks_scanner) == (5, 3, 2)
    assert [(p.opens, p.clicks) for p in hourly[1:4]] == [(2, 3), (1, 1), (0, 1)]
    assert (daily[0].opens, daily[0].clicks) == (0, 1)
    assert sum(p.opens for p in timeline) == 10
    assert sum(p.clicks for p in timeline) == 11


def test_site_totals_and_days(queries):
    totals = queries.site_totals(NOVEMBER)
    assert (totals.pageviews, totals.visitors, totals.bot_pageviews, totals.ad_clicks) == (
        10,
        9,
        4,
        7,
    )
    daily = queries.site_daily(NOVEMBER)
    assert [(p.day.day, p.pageviews, p.visitors, p.bot_pageviews, p.ad_clicks) for p in daily] == [
        (1, 7, 6, 0, 5),
        (2, 3, 3, 4, 2),
        (3, 0, 0, 0, 0),
    ]
    assert queries.site_totals(NOVEMBER, site="other.example").pageviews == 0


def test_site_breakdowns_merge_rare_values(queries):
    overview = queries.site_overview(NOVEMBER, site=SITE)
    assert overview.pages == (BreakdownRow("/", 9, 9), BreakdownRow("other", 1, 1))
    # direct (no referrer) and duckduckgo.com have 1 and 3 visitors: merged.
    assert overview.referrers == (
        BreakdownRow("www.google.com", 6, 5),
        BreakdownRow("other", 4, 4),
    )
    assert overview.utm_sources == (BreakdownRow("newsletter", 6, 5), BreakdownRow("other", 4, 4))
    assert overview.devices == (BreakdownRow("desktop", 6, 5), BreakdownRow("other", 4, 4))
    assert overview.ads == (BreakdownRow("vitamins-banner", 7, 7),)
    assert overview.bots == (BreakdownRow("Googlebot", 4, 0),)


def test_site_breakdown_without_merging(stats_store):
    rows = StatsQueries(stats_store, k=1).site_breakdown("referrer", NOVEMBER)
    assert rows == (
        BreakdownRow("www.google.com", 6, 5),
        BreakdownRow("duckduckgo.com", 3, 3),
        BreakdownRow("(none)", 1, 1),
    )


def test_site_breakdown_refuses_unknown_dimension(queries):
    with pytest.raises(InvalidFilter) as caught:
        queries.site_breakdown("shoe_size", NOVEMBER)  # type: ignore[arg-type]
    assert caught.value.field == "dimension"


def test_consent_rates(queries):
    report = queries.consent(NOVEMBER)
    assert report.available
    assert report.decisions == 7
    assert [
        (r.group, r.category, r.decisions, r.granted, r.refused, r.customized)
        for r in report.by_day
    ] == [
        ("2026-11-01", "analytics", 5, 3, 2, 2),
        ("2026-11-01", "marketing", 5, 3, 2, 2),
        ("2026-11-02", "analytics", 2, 1, 1, 0),
        ("2026-11-02", "marketing", 2, 1, 1, 0),
    ]
    # Revision 2 was answered by two consent ids only: merged into "other".
    assert [(r.group, r.category, r.decisions, r.granted) for r in report.by_revision] == [
        ("3", "analytics", 5, 3),
        ("3", "marketing", 5, 3),
        ("other", "analytics", 2, 1),
        ("other", "marketing", 2, 1),
    ]
    assert report.by_day[0].granted_rate == pytest.approx(0.6)
    assert [(a.value, a.events) for a in report.actions] == [
        ("accept_all", 3),
        ("reject_all", 2),
        ("save", 2),
    ]


def test_sites(queries):
    assert queries.sites() == [SITE]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-13-01", None, "from"),
        ("yesterday", None, "from"),
        (None, "2026-02-30", "to"),
        ("2026-11-05", "2026-11-01", "from"),
        ("2000-01-01", "2026-01-01", "from"),
    ],
    ids=["bad-month", "words", "bad-day", "reversed", "too-long"],
)
def test_bad_date_ranges_are_refused(start, end, field):
    with pytest.raises(InvalidFilter) as caught:
        DateRange.parse(start, end)
    assert caught.value.field == field


def test_date_range_defaults():
    days = DateRange.parse(None, None, today=date(2026, 11, 30))
    assert (days.start, days.end, days.days) == (date(2026, 11, 1), date(2026, 11, 30), 30)


def test_name_filters():
    assert parse_site("  ") is None
    assert parse_site(" mypharm.fr ") == "mypharm.fr"
    with pytest.raises(InvalidFilter):
        parse_site("a\x00b")
    with pytest.raises(InvalidFilter):
        parse_campaign("")
    with pytest.raises(InvalidFilter):
        parse_campaign("x" * 201)


def test_k_must_be_positive(stats_store):
    with pytest.raises(ValueError, match="k must be"):
        StatsQueries(stats_store, k=0)
