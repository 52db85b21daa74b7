"""Marketing and site statistics, answered from the aggregate tables.

:class:`StatsQueries` is the entry point; results are frozen dataclasses
(:mod:`beacon.stats.results`) that convert to tables (:mod:`beacon.stats.reports`)
for CSV, terminal and HTML output, and to JSON with :func:`as_json`. Every
breakdown merges values seen by fewer than ``k`` distinct visitors or
recipients into ``other`` (k-anonymity, ``k = 5`` by default).
"""

from beacon.stats.errors import InvalidFilter, StatsError
from beacon.stats.filters import DateRange, parse_campaign, parse_site
from beacon.stats.queries import DEFAULT_K, SITE_DIMENSIONS, StatsQueries
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
    as_json,
)
from beacon.stats.table import Column, Table

__all__ = [
    "DEFAULT_K",
    "OTHER",
    "SITE_DIMENSIONS",
    "BreakdownRow",
    "CampaignDetail",
    "CampaignSummary",
    "ClickCounts",
    "Column",
    "ConsentCategoryRate",
    "ConsentReport",
    "DailyPoint",
    "DateRange",
    "InvalidFilter",
    "LinkRow",
    "OpenCounts",
    "SiteOverview",
    "SiteTotals",
    "StatsError",
    "StatsQueries",
    "Table",
    "TimelinePoint",
    "as_json",
    "parse_campaign",
    "parse_site",
]
