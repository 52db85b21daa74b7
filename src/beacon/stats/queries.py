"""The statistics queries, answered from the aggregate tables.

:class:`StatsQueries` is the one entry point used by the dashboard, the JSON
API and the command line, so every output shows the same numbers. Each
breakdown applies the k-anonymity rule in SQL: a value seen by fewer than
``k`` distinct visitors (or recipients) is merged into the ``other`` bucket,
whose distinct count is the union of the merged values' visitors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from beacon.migrations.m0030_campaign_aggregates import CAMPAIGN_DEVICES, CAMPAIGN_HOURLY
from beacon.migrations.m0031_ad_clicks_daily import AD_CLICKS_DAILY
from beacon.receipts.rows import RECEIPTS_TABLE
from beacon.receipts.stats import decisions_by_action, optin_by_day, optin_by_revision
from beacon.stats.errors import InvalidFilter
from beacon.stats.filters import DateRange
from beacon.stats.results import (
    OTHER,
    BreakdownRow,
    CampaignDetail,
    CampaignSummary,
    ClickCounts,
    ConsentCategoryRate,
    ConsentReport,
    DailyPoint,
    LinkRow,
    OpenCounts,
    SiteOverview,
    SiteTotals,
    TimelinePoint,
)
from beacon.stats.rollup import ROLLUP_SOURCES, SiteRollup
from beacon.store import Store

__all__ = [
    "DEFAULT_K",
    "HOURLY_SPAN",
    "NONE_VALUE",
    "SITE_DIMENSIONS",
    "CampaignDimension",
    "SiteDimension",
    "StatsQueries",
]

#: Default k of the k-anonymity rule.
DEFAULT_K = 5
#: A campaign's timeline is hourly for at least this long, up to the end of that UTC day.
HOURLY_SPAN = timedelta(hours=48)
#: Label given to an empty breakdown value (no referrer, no UTM tag...).
NONE_VALUE = "(none)"

CampaignDimension = Literal["device", "browser", "os"]
SiteDimension = Literal[
    "page",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "device",
    "browser",
    "os",
    "ad",
    "bot",
]
#: Every site dimension, in display order.
SITE_DIMENSIONS: tuple[str, ...] = (*(name for name in ROLLUP_SOURCES if name != "total"), "bot")
_CAMPAIGN_DIMENSIONS = ("device", "browser", "os")
_DAY = timedelta(days=1)

_CAMPAIGN_COLUMNS = """
    sumIf(events, kind = 'open') AS opens,
    uniqMergeIf(recipients, kind = 'open') AS opens_unique,
    sumIf(events, kind = 'open' AND machine = 0) AS opens_human,
    sumIf(events, kind = 'open' AND machine = 1) AS opens_machine,
    uniqMergeIf(recipients, kind = 'open' AND machine = 0) AS opens_unique_human,
    uniqMergeIf(recipients, kind = 'open' AND machine = 1) AS opens_unique_machine,
    sumIf(events, kind = 'click') AS clicks,
    uniqMergeIf(recipients, kind = 'click') AS clicks_unique,
    sumIf(events, kind = 'click' AND machine = 0) AS clicks_human,
    sumIf(events, kind = 'click' AND machine = 1) AS clicks_scanner,
    uniqMergeIf(recipients, kind = 'click' AND machine = 0) AS clicks_unique_human,
    uniqMergeIf(recipients, kind = 'click' AND machine = 1) AS clicks_unique_scanner,
    uniqMergeIf(recipients, kind = 'unsubscribe') AS unsubscribes,
    uniqMerge(recipients) AS reached,
    min(hour) AS first_seen,
    max(hour) AS last_seen"""


class StatsQueries:
    """Statistics over the aggregate tables of one ClickHouse database.

    ``store`` holds the beacon's tables (see :mod:`beacon.migrations`);
    ``k`` is the k-anonymity threshold (at least 1; 1 disables merging);
    ``today`` (a clock, UTC by default) tells which days are finished and
    read from the site rollup (see :mod:`beacon.stats.rollup`).
    """

    def __init__(
        self, store: Store, *, k: int = DEFAULT_K, today: Callable[[], date] | None = None
    ) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        self.store = store
        self.k = k
        self.rollup = SiteRollup(store, today=today) if today else SiteRollup(store)

    def _rows(self, sql: str, parameters: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        return self.store.query_rows(sql, parameters)

    # -- campaigns -------------------------------------------------------------------

    def campaigns(
        self, *, site: str | None = None, days: DateRange | None = None
    ) -> list[CampaignSummary]:
        """Every campaign with its summary, most recent first."""
        where, parameters = _campaign_where(None, site, days)
        rows = self._rows(
            f"SELECT campaign, {_CAMPAIGN_COLUMNS} FROM {CAMPAIGN_HOURLY} "
            f"WHERE {where} GROUP BY campaign ORDER BY last_seen DESC, campaign",
            parameters,
        )
        return [_summary(row[0], row[1:]) for row in rows]

    def campaign_summary(
        self, campaign: str, *, site: str | None = None, days: DateRange | None = None
    ) -> CampaignSummary | None:
        """One campaign's summary, or ``None`` when nothing was recorded for it."""
        where, parameters = _campaign_where(campaign, site, days)
        row = self._rows(
            f"SELECT count(), {_CAMPAIGN_COLUMNS} FROM {CAMPAIGN_HOURLY} WHERE {where}",
            parameters,
        )[0]
        return _summary(campaign, row[1:]) if row[0] else None

    def campaign_timeline(
        self, campaign: str, *, site: str | None = None
    ) -> tuple[TimelinePoint, ...]:
        """Opens and clicks hourly for the first 48 hours (to the end of that day), then daily.

        Buckets without events are included with zeros so that charts show gaps.
        """
        where, parameters = _campaign_where(campaign, site, None)
        first = self._rows(
            f"SELECT min(hour), count() FROM {CAMPAIGN_HOURLY} WHERE {where}", parameters
        )
        if not first or not first[0][1]:
            return ()
        start = _utc(first[0][0])
        cutoff = datetime.combine((start + HOURLY_SPAN).date(), datetime.min.time(), UTC) + _DAY
        rows = self._rows(
            f"""SELECT
                if(hour < {{cutoff:DateTime('UTC')}}, hour, toStartOfDay(hour, 'UTC')) AS bucket,
                sumIf(events, kind = 'open') AS opens,
                uniqMergeIf(recipients, kind = 'open') AS opens_unique,
                sumIf(events, kind = 'open' AND machine = 1) AS opens_machine,
                sumIf(events, kind = 'click') AS clicks,
                uniqMergeIf(recipients, kind = 'click') AS clicks_unique,
                sumIf(events, kind = 'click' AND machine = 1) AS clicks_scanner
            FROM {CAMPAIGN_HOURLY}
            WHERE {where} AND kind IN ('open', 'click')
            GROUP BY bucket ORDER BY bucket""",
            {**parameters, "cutoff": cutoff.replace(tzinfo=None)},
        )
        found = {_utc(row[0]): row[1:] for row in rows}
        if not found:
            return ()
        last = max(found)
        points = []
        moment = start
        while moment <= last:
            granularity: Literal["hour", "day"] = "hour" if moment < cutoff else "day"
            values = found.get(moment, (0, 0, 0, 0, 0, 0))
            points.append(TimelinePoint(moment, granularity, *(int(value) for value in values)))
            moment += timedelta(hours=1) if granularity == "hour" else _DAY
        return tuple(points)

    def campaign_links(
        self, campaign: str, *, site: str | None = None, days: DateRange | None = None
    ) -> tuple[LinkRow, ...]:
        """Clicks per link, most clicked first; links with fewer than k clickers merged."""
        where, parameters = _campaign_where(campaign, site, days)
        rows = self._rows(
            f"""SELECT
                if(unique_clickers < {{k:UInt64}}, {{other:String}}, link) AS bucket,
                sum(clicks) AS total,
                uniqMerge(state) AS unique_total,
                sum(human) AS human_total,
                sum(scanner) AS scanner_total,
                uniqMerge(human_state) AS unique_human_total
            FROM (
                SELECT
                    link,
                    sum(events) AS clicks,
                    sumIf(events, machine = 0) AS human,
                    sumIf(events, machine = 1) AS scanner,
                    uniqMerge(recipients) AS unique_clickers,
                    uniqMergeState(recipients) AS state,
                    uniqMergeStateIf(recipients, machine = 0) AS human_state
                FROM {CAMPAIGN_HOURLY}
                WHERE {where} AND kind = 'click'
                GROUP BY link
            )
            GROUP BY bucket
            ORDER BY bucket = {{other:String}}, unique_total DESC, total DESC, bucket""",
            {**parameters, "k": self.k, "other": OTHER},
        )
        return tuple(LinkRow(str(row[0]), *(int(value) for value in row[1:])) for row in rows)

    def campaign_breakdown(
        self, campaign: str, dimension: CampaignDimension, *, site: str | None = None
    ) -> tuple[BreakdownRow, ...]:
        """Human opens and clicks of a campaign per device class, browser or OS.

        Machine opens and scanner clicks are left out: their User-Agent is the
        proxy's or the scanner's, not the recipient's.
        """
        if dimension not in _CAMPAIGN_DIMENSIONS:
            raise InvalidFilter("dimension", f"one of {', '.join(_CAMPAIGN_DIMENSIONS)}")
        where, parameters = _campaign_where(campaign, site, None, time=False)
        return self._merged_breakdown(
            CAMPAIGN_DEVICES,
            dimension,
            "events",
            "recipients",
            f"{where} AND machine = 0 AND kind IN ('open', 'click')",
            parameters,
        )

    def campaign_detail(self, campaign: str, *, site: str | None = None) -> CampaignDetail | None:
        """Everything the campaign page shows, or ``None`` for an unknown campaign."""
        summary = self.campaign_summary(campaign, site=site)
        if summary is None:
            return None
        return CampaignDetail(
            summary=summary,
            timeline=self.campaign_timeline(campaign, site=site),
            links=self.campaign_links(campaign, site=site),
            devices=self.campaign_breakdown(campaign, "device", site=site),
            browsers=self.campaign_breakdown(campaign, "browser", site=site),
            oses=self.campaign_breakdown(campaign, "os", site=site),
        )

    # -- site --------------------------------------------------------------------------

    def sites(self) -> list[str]:
        """Sites that recorded page views or campaign events, sorted."""
        rows = self._rows(
            "SELECT DISTINCT toString(site) FROM site_daily UNION DISTINCT "
            f"SELECT DISTINCT toString(site) FROM {CAMPAIGN_HOURLY}",
            {},
        )
        return sorted(str(row[0]) for row in rows if row[0])

    def _extras_where(self, site: str | None) -> str:
        return "day BETWEEN {start:Date} AND {end:Date}" + (
            " AND site = {site:String}" if site is not None else ""
        )

    def site_totals(self, days: DateRange, *, site: str | None = None) -> SiteTotals:
        """Human page views, visitors (daily uniques summed), bot page views and ad clicks."""
        self.rollup.ensure(["total"], days)
        return self._totals(days, site)

    def _totals(self, days: DateRange, site: str | None) -> SiteTotals:
        return _sum_days(self._daily(days, site))

    def site_daily(self, days: DateRange, *, site: str | None = None) -> tuple[DailyPoint, ...]:
        """One point per day of the range (days without traffic are zeros)."""
        self.rollup.ensure(["total"], days)
        return self._daily(days, site)

    def _daily(self, days: DateRange, site: str | None) -> tuple[DailyPoint, ...]:
        inner = self.rollup.daily_sql(["total"], days, site)
        where = self._extras_where(site)
        rows = self._rows(
            f"""SELECT day, sum(p), sum(v), sum(b), sum(a) FROM (
                SELECT day, toUInt64(events) AS p, toUInt64(visitors) AS v,
                    toUInt64(0) AS b, toUInt64(0) AS a
                FROM ({inner})
                UNION ALL
                SELECT day, 0, 0, toUInt64(sum(hits)), 0 FROM bots_daily WHERE {where} GROUP BY day
                UNION ALL
                SELECT day, 0, 0, 0, toUInt64(sum(clicks))
                FROM {AD_CLICKS_DAILY} WHERE {where} GROUP BY day
            ) GROUP BY day ORDER BY day""",
            self.rollup.parameters(days, site),
        )
        found = {row[0]: row[1:] for row in rows}
        return tuple(
            DailyPoint(day, *(int(value) for value in found.get(day, (0, 0, 0, 0))))
            for day in days.each_day()
        )

    def site_breakdown(
        self, dimension: SiteDimension, days: DateRange, *, site: str | None = None
    ) -> tuple[BreakdownRow, ...]:
        """Events and visitors (daily uniques summed) per value of ``dimension``, rare merged.

        Page, referrer, UTM and device dimensions count human page views;
        ``ad`` counts ad clicks; ``bot`` counts bot page views per crawler
        name (software, not people: neither visitors nor merging apply).
        """
        if dimension == "bot":
            return self._bots(days, site)
        if dimension not in SITE_DIMENSIONS:
            raise InvalidFilter("dimension", f"one of {', '.join(SITE_DIMENSIONS)}")
        self.rollup.ensure([dimension], days)
        return self._breakdowns([dimension], days, site)[dimension]

    def _bots(self, days: DateRange, site: str | None) -> tuple[BreakdownRow, ...]:
        rows = self._rows(
            f"""SELECT if(browser = '', {{none:String}}, toString(browser)) AS value,
                toUInt64(sum(hits)) AS total
            FROM bots_daily WHERE {self._extras_where(site)}
            GROUP BY value ORDER BY total DESC, value""",
            {"start": days.start, "end": days.end, "site": site, "none": NONE_VALUE},
        )
        return tuple(BreakdownRow(str(row[0]), int(row[1]), 0) for row in rows)

    def _breakdowns(
        self, dimensions: Sequence[str], days: DateRange, site: str | None
    ) -> dict[str, tuple[BreakdownRow, ...]]:
        inner = self.rollup.daily_sql(dimensions, days, site)
        rows = self._rows(
            f"""SELECT
                dimension,
                if(visitor_days < {{k:UInt64}}, {{other:String}}, value) AS bucket,
                sum(event_count) AS total_events,
                sum(visitor_days) AS total_visitors
            FROM (
                SELECT dimension, if(value = '', {{none:String}}, value) AS value,
                    sum(events) AS event_count, sum(visitors) AS visitor_days
                FROM ({inner})
                GROUP BY dimension, value
            )
            GROUP BY dimension, bucket
            ORDER BY dimension, bucket = {{other:String}}, total_visitors DESC, total_events DESC,
                bucket""",
            {
                **self.rollup.parameters(days, site),
                "k": self.k,
                "other": OTHER,
                "none": NONE_VALUE,
            },
        )
        found: dict[str, list[BreakdownRow]] = {name: [] for name in dimensions}
        for dimension, value, events, visitors in rows:
            found[str(dimension)].append(BreakdownRow(str(value), int(events), int(visitors)))
        return {name: tuple(values) for name, values in found.items()}

    def site_overview(
        self, days: DateRange, *, site: str | None = None, limit: int | None = 10
    ) -> SiteOverview:
        """The site page: totals, daily points and the top ``limit`` of each breakdown."""
        self.rollup.ensure(["total", *SITE_DIMENSIONS[:-1]], days)
        found = self._breakdowns(SITE_DIMENSIONS[:-1], days, site)
        found["bot"] = self._bots(days, site)
        daily = self._daily(days, site)

        def top(dimension: str) -> tuple[BreakdownRow, ...]:
            rows = found[dimension]
            return rows if limit is None else _top(rows, limit)

        return SiteOverview(
            site=site,
            start=days.start,
            end=days.end,
            totals=_sum_days(daily),
            daily=daily,
            pages=top("page"),
            referrers=top("referrer"),
            utm_sources=top("utm_source"),
            utm_mediums=top("utm_medium"),
            utm_campaigns=top("utm_campaign"),
            devices=top("device"),
            browsers=top("browser"),
            oses=top("os"),
            bots=top("bot"),
            ads=top("ad"),
        )

    # -- consent -----------------------------------------------------------------------

    def consent_available(self) -> bool:
        """Whether this database holds consent receipts."""
        rows = self._rows(
            "SELECT count() FROM system.tables "
            "WHERE database = currentDatabase() AND name = {table:String}",
            {"table": RECEIPTS_TABLE},
        )
        return bool(rows[0][0])

    def consent(self, days: DateRange) -> ConsentReport:
        """Opt-in rates per category, per day and per policy revision, and decisions per action.

        A policy revision chosen by fewer than k distinct consent ids is merged
        into ``other``. Receipts are few (one per decision), so these counts
        read the receipts table itself.
        """
        if not self.consent_available():
            return ConsentReport(False, days.start, days.end, 0, (), (), ())
        by_day = optin_by_day(self.store, days.start, days.end)
        rare = {
            int(row[0])
            for row in self._rows(
                f"""SELECT policy_revision FROM {RECEIPTS_TABLE}
                WHERE toDate(ts, 'UTC') BETWEEN {{start:Date}} AND {{end:Date}}
                GROUP BY policy_revision HAVING uniqExact(consent_id) < {{k:UInt64}}""",
                {"start": days.start, "end": days.end, "k": self.k},
            )
        }
        merged: dict[tuple[str, str], list[int]] = {}
        for rate in optin_by_revision(self.store, days.start, days.end):
            group = OTHER if rate.group in rare else str(rate.group)
            counts = merged.setdefault((group, rate.category), [0, 0, 0, 0])
            for index, value in enumerate(
                (rate.decisions, rate.granted, rate.refused, rate.customized)
            ):
                counts[index] += value
        actions: dict[str, int] = {}
        for count in decisions_by_action(self.store, days.start, days.end):
            actions[count.action] = actions.get(count.action, 0) + count.decisions
        return ConsentReport(
            available=True,
            start=days.start,
            end=days.end,
            decisions=sum(actions.values()),
            by_day=tuple(
                ConsentCategoryRate(
                    str(rate.group),
                    rate.category,
                    rate.decisions,
                    rate.granted,
                    rate.refused,
                    rate.customized,
                )
                for rate in by_day
            ),
            by_revision=tuple(
                ConsentCategoryRate(group, category, *counts)
                for (group, category), counts in sorted(
                    merged.items(), key=lambda item: (item[0][0] == OTHER, _revision_key(item[0]))
                )
            ),
            actions=tuple(
                BreakdownRow(action, total, 0)
                for action, total in sorted(actions.items(), key=lambda item: (-item[1], item[0]))
            ),
        )

    # -- shared ------------------------------------------------------------------------

    def _merged_breakdown(
        self,
        table: str,
        value_column: str,
        events_column: str,
        uniques_column: str,
        where: str,
        parameters: Mapping[str, Any],
    ) -> tuple[BreakdownRow, ...]:
        rows = self._rows(
            f"""SELECT
                if(distinct_count < {{k:UInt64}}, {{other:String}}, value) AS bucket,
                sum(event_count) AS total,
                uniqMerge(state) AS uniques
            FROM (
                SELECT
                    if({value_column} = '', {{none:String}}, toString({value_column})) AS value,
                    sum({events_column}) AS event_count,
                    uniqMerge({uniques_column}) AS distinct_count,
                    uniqMergeState({uniques_column}) AS state
                FROM {table}
                WHERE {where}
                GROUP BY value
            )
            GROUP BY bucket
            ORDER BY bucket = {{other:String}}, uniques DESC, total DESC, bucket""",
            {**parameters, "k": self.k, "other": OTHER, "none": NONE_VALUE},
        )
        return tuple(BreakdownRow(str(row[0]), int(row[1]), int(row[2])) for row in rows)


def _campaign_where(
    campaign: str | None, site: str | None, days: DateRange | None, *, time: bool = True
) -> tuple[str, dict[str, Any]]:
    clauses = ["1"]
    parameters: dict[str, Any] = {}
    if campaign is not None:
        clauses.append("campaign = {campaign:String}")
        parameters["campaign"] = campaign
    if site is not None:
        clauses.append("site = {site:String}")
        parameters["site"] = site
    if days is not None and time:
        clauses.append("toDate(hour, 'UTC') BETWEEN {start:Date} AND {end:Date}")
        parameters.update(start=days.start, end=days.end)
    return " AND ".join(clauses), parameters


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _summary(campaign: str, row: Sequence[Any]) -> CampaignSummary:
    counts = [int(value) for value in row[:14]]
    return CampaignSummary(
        campaign=campaign,
        first_seen=_utc(row[14]),
        last_seen=_utc(row[15]),
        opens=OpenCounts(*counts[0:6]),
        clicks=ClickCounts(*counts[6:12]),
        unsubscribes=counts[12],
        reached=counts[13],
    )


def _sum_days(daily: Sequence[DailyPoint]) -> SiteTotals:
    """Totals of a range: sums of its days (visitors: daily uniques summed)."""
    return SiteTotals(
        pageviews=sum(point.pageviews for point in daily),
        visitors=sum(point.visitors for point in daily),
        bot_pageviews=sum(point.bot_pageviews for point in daily),
        ad_clicks=sum(point.ad_clicks for point in daily),
    )


def _top(rows: tuple[BreakdownRow, ...], limit: int) -> tuple[BreakdownRow, ...]:
    named = [row for row in rows if row.value != OTHER]
    merged = [row for row in rows if row.value == OTHER]
    return tuple(named[:limit] + merged)


def _revision_key(key: tuple[str, str]) -> tuple[int, str]:
    group, category = key
    return (int(group) if group.isdigit() else 0, category)
