"""Statistics results as :class:`~beacon.stats.table.Table` objects.

One function per table the dashboard, the API's CSV and the command line
show; column keys are the JSON field names, labels are English (the
dashboard translates them by key).
"""

from __future__ import annotations

from collections.abc import Sequence

from beacon.stats.results import (
    BreakdownRow,
    CampaignSummary,
    ConsentCategoryRate,
    DailyPoint,
    LinkRow,
    SiteTotals,
    TimelinePoint,
)
from beacon.stats.table import Column, Table

__all__ = [
    "breakdown_table",
    "campaigns_table",
    "consent_table",
    "daily_table",
    "links_table",
    "site_totals_table",
    "timeline_table",
]

_UNIQUES_LABELS = {"visitors": "Visitors", "recipients": "Recipients", "decisions": "Decisions"}


def campaigns_table(summaries: Sequence[CampaignSummary], name: str = "campaigns") -> Table:
    """One row per campaign: opens, clicks, rates, unsubscribes."""
    return Table(
        name=name,
        columns=(
            Column("campaign", "Campaign", "text"),
            Column("first_seen", "First event", "datetime"),
            Column("reached", "Reached"),
            Column("opens", "Opens"),
            Column("opens_unique", "Unique opens"),
            Column("opens_human", "Human opens"),
            Column("opens_machine", "Machine opens"),
            Column("clicks", "Clicks"),
            Column("clicks_unique", "Unique clicks"),
            Column("clicks_human", "Human clicks"),
            Column("clicks_scanner", "Scanner clicks"),
            Column("ctr", "CTR", "rate"),
            Column("cto", "CTO", "rate"),
            Column("unsubscribes", "Unsubscribes"),
        ),
        rows=tuple(
            (
                s.campaign,
                s.first_seen,
                s.reached,
                s.opens.total,
                s.opens.unique,
                s.opens.human,
                s.opens.machine,
                s.clicks.total,
                s.clicks.unique,
                s.clicks.human,
                s.clicks.scanner,
                s.ctr,
                s.cto,
                s.unsubscribes,
            )
            for s in summaries
        ),
    )


def timeline_table(points: Sequence[TimelinePoint]) -> Table:
    """Opens and clicks per bucket (hourly, then daily)."""
    return Table(
        name="timeline",
        columns=(
            Column("start", "Start (UTC)", "datetime"),
            Column("granularity", "Bucket", "text"),
            Column("opens", "Opens"),
            Column("opens_unique", "Unique opens"),
            Column("opens_machine", "Machine opens"),
            Column("clicks", "Clicks"),
            Column("clicks_unique", "Unique clicks"),
            Column("clicks_scanner", "Scanner clicks"),
        ),
        rows=tuple(
            (
                p.start,
                p.granularity,
                p.opens,
                p.opens_unique,
                p.opens_machine,
                p.clicks,
                p.clicks_unique,
                p.clicks_scanner,
            )
            for p in points
        ),
    )


def links_table(links: Sequence[LinkRow]) -> Table:
    """Clicks per link."""
    return Table(
        name="links",
        columns=(
            Column("link", "Link", "text"),
            Column("clicks", "Clicks"),
            Column("unique", "Unique clicks"),
            Column("human", "Human clicks"),
            Column("scanner", "Scanner clicks"),
            Column("unique_human", "Unique human clicks"),
        ),
        rows=tuple(
            (row.link, row.clicks, row.unique, row.human, row.scanner, row.unique_human)
            for row in links
        ),
    )


def breakdown_table(
    name: str, rows: Sequence[BreakdownRow], *, value_label: str, uniques: str | None = "visitors"
) -> Table:
    """A breakdown: value, events and (unless ``uniques`` is ``None``) distinct people."""
    columns = [Column("value", value_label, "text"), Column("events", "Events")]
    if uniques is not None:
        columns.append(Column(uniques, _UNIQUES_LABELS[uniques]))
    return Table(
        name=name,
        columns=tuple(columns),
        rows=tuple(
            (row.value, row.events, row.uniques) if uniques else (row.value, row.events)
            for row in rows
        ),
    )


def site_totals_table(totals: SiteTotals) -> Table:
    """The site's totals over the range, one row."""
    return Table(
        name="totals",
        columns=(
            Column("pageviews", "Page views"),
            Column("visitors", "Visitors (daily uniques summed)"),
            Column("bot_pageviews", "Bot page views"),
            Column("ad_clicks", "Ad clicks"),
        ),
        rows=((totals.pageviews, totals.visitors, totals.bot_pageviews, totals.ad_clicks),),
    )


def daily_table(points: Sequence[DailyPoint]) -> Table:
    """One row per day: page views, unique visitors, bot page views, ad clicks."""
    return Table(
        name="daily",
        columns=(
            Column("day", "Day", "date"),
            Column("pageviews", "Page views"),
            Column("visitors", "Visitors"),
            Column("bot_pageviews", "Bot page views"),
            Column("ad_clicks", "Ad clicks"),
        ),
        rows=tuple((p.day, p.pageviews, p.visitors, p.bot_pageviews, p.ad_clicks) for p in points),
    )


def consent_table(name: str, rates: Sequence[ConsentCategoryRate], *, group_label: str) -> Table:
    """Opt-in rates per group (day or policy revision) and category."""
    return Table(
        name=name,
        columns=(
            Column("group", group_label, "text"),
            Column("category", "Category", "text"),
            Column("decisions", "Decisions"),
            Column("granted", "Granted"),
            Column("refused", "Refused"),
            Column("customized", "Customized"),
            Column("granted_rate", "Opt-in rate", "rate"),
            Column("refused_rate", "Refusal rate", "rate"),
        ),
        rows=tuple(
            (
                r.group,
                r.category,
                r.decisions,
                r.granted,
                r.refused,
                r.customized,
                r.granted_rate,
                r.refused_rate,
            )
            for r in rates
        ),
    )
