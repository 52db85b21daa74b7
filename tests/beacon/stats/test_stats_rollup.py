"""Finished days are read from plain copies; late events make a day be copied again."""

from __future__ import annotations

from datetime import date

import pytest

from beacon.events import PixelEvent
from beacon.migrations import migrate
from beacon.stats import BreakdownRow, DateRange, StatsQueries
from beacon.store import Store

from .stats_dataset import SITE, at, fill_dataset, insert_events

NOVEMBER = DateRange(date(2026, 11, 1), date(2026, 11, 3))


@pytest.fixture
def fresh_store(clickhouse_url):
    store = Store(clickhouse_url)
    migrate(store)
    fill_dataset(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS `{store.database}`")


def _copied_days(store: Store) -> list[tuple[str, date]]:
    return [
        (str(dimension), day)
        for dimension, day in store.query_rows(
            "SELECT DISTINCT dimension, day FROM site_rollup_days ORDER BY dimension, day"
        )
    ]


@pytest.mark.parametrize(
    "today",
    [date(2026, 11, 2), date(2026, 11, 4), date(2026, 11, 30)],
    ids=["all-live", "first-day-copied", "all-copied"],
)
def test_same_numbers_live_or_copied(fresh_store, today):
    queries = StatsQueries(fresh_store, today=lambda: today)
    overview = queries.site_overview(NOVEMBER)
    assert (overview.totals.pageviews, overview.totals.visitors) == (10, 9)
    assert [(p.pageviews, p.visitors) for p in overview.daily] == [(7, 6), (3, 3), (0, 0)]
    assert overview.referrers == (
        BreakdownRow("www.google.com", 6, 5),
        BreakdownRow("other", 4, 4),
    )
    assert overview.ads == (BreakdownRow("vitamins-banner", 7, 7),)


def test_only_finished_days_are_copied(fresh_store):
    StatsQueries(fresh_store, today=lambda: date(2026, 11, 3)).site_totals(NOVEMBER)
    assert _copied_days(fresh_store) == [("pageviews", date(2026, 11, 1))]


def test_late_events_make_the_day_copied_again(fresh_store):
    queries = StatsQueries(fresh_store, today=lambda: date(2026, 11, 30))
    assert queries.site_totals(NOVEMBER).pageviews == 10
    late = [
        PixelEvent(ts=at(1, 18, minute), site=SITE, kind="pageview", path="/", visitor_hash=50 + n)
        for n, minute in enumerate(range(3))
    ]
    insert_events(fresh_store, late)
    totals = queries.site_totals(NOVEMBER)
    assert (totals.pageviews, totals.visitors) == (13, 12)
    assert queries.site_breakdown("page", NOVEMBER)[0] == BreakdownRow("/", 12, 12)
