"""Result types of the statistics queries, with their tabular and JSON forms.

Counts named ``unique`` are distinct recipients (campaigns) or distinct daily
visitor hashes (site); ``human`` and ``machine``/``scanner`` split the same
events by the flag the e-mail endpoints record (image proxies, link scanners).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any, Literal

__all__ = [
    "OTHER",
    "BreakdownRow",
    "CampaignDetail",
    "CampaignSummary",
    "ClickCounts",
    "ConsentCategoryRate",
    "ConsentReport",
    "DailyPoint",
    "LinkRow",
    "OpenCounts",
    "SiteOverview",
    "SiteTotals",
    "TimelinePoint",
    "as_json",
]

#: Label of the bucket into which rare breakdown values are merged (k-anonymity).
OTHER = "other"


@dataclasses.dataclass(frozen=True, slots=True)
class OpenCounts:
    """Opens of a campaign: every open event, and distinct recipients who opened."""

    total: int
    unique: int
    human: int
    machine: int
    unique_human: int
    unique_machine: int


@dataclasses.dataclass(frozen=True, slots=True)
class ClickCounts:
    """Clicks of a campaign: every click, and distinct recipients who clicked."""

    total: int
    unique: int
    human: int
    scanner: int
    unique_human: int
    unique_scanner: int


@dataclasses.dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One campaign's headline numbers.

    ``reached`` is the number of distinct recipients seen by any open, click
    or unsubscribe (the mailer's send count is not known to the beacon).
    ``ctr`` (click-through rate) is unique human clickers / reached;
    ``cto`` (click-to-open rate) is unique human clickers / unique openers.
    Both are ``None`` when their denominator is zero.
    """

    campaign: str
    first_seen: datetime
    last_seen: datetime
    opens: OpenCounts
    clicks: ClickCounts
    unsubscribes: int
    reached: int

    @property
    def ctr(self) -> float | None:
        """Click-through rate: unique human clickers per recipient reached."""
        return _ratio(self.clicks.unique_human, self.reached)

    @property
    def cto(self) -> float | None:
        """Click-to-open rate: unique human clickers per unique opener."""
        return _ratio(self.clicks.unique_human, self.opens.unique)


@dataclasses.dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Opens and clicks in one time bucket (an hour early in a campaign, then a day)."""

    start: datetime
    granularity: Literal["hour", "day"]
    opens: int
    opens_unique: int
    opens_machine: int
    clicks: int
    clicks_unique: int
    clicks_scanner: int


@dataclasses.dataclass(frozen=True, slots=True)
class LinkRow:
    """Clicks on one link of a campaign (or on the merged rare links, ``other``)."""

    link: str
    clicks: int
    unique: int
    human: int
    scanner: int
    unique_human: int


@dataclasses.dataclass(frozen=True, slots=True)
class BreakdownRow:
    """One value of a breakdown: its events and distinct visitors or recipients."""

    value: str
    events: int
    uniques: int


@dataclasses.dataclass(frozen=True, slots=True)
class CampaignDetail:
    """Everything the campaign page shows."""

    summary: CampaignSummary
    timeline: tuple[TimelinePoint, ...]
    links: tuple[LinkRow, ...]
    devices: tuple[BreakdownRow, ...]
    browsers: tuple[BreakdownRow, ...]
    oses: tuple[BreakdownRow, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class SiteTotals:
    """Site numbers over a range. Bots are counted apart and excluded elsewhere.

    ``visitors`` is the number of distinct daily visitor hashes in the range:
    the hash salt changes every day, so a person who visits on three days
    counts three times (the sum of daily uniques).
    """

    pageviews: int
    visitors: int
    bot_pageviews: int
    ad_clicks: int


@dataclasses.dataclass(frozen=True, slots=True)
class DailyPoint:
    """One day of the site: human page views, unique visitors, bot page views, ad clicks."""

    day: date
    pageviews: int
    visitors: int
    bot_pageviews: int
    ad_clicks: int


@dataclasses.dataclass(frozen=True, slots=True)
class SiteOverview:
    """The site page: totals, days, and the top of each breakdown (rare values merged)."""

    site: str | None
    start: date
    end: date
    totals: SiteTotals
    daily: tuple[DailyPoint, ...]
    pages: tuple[BreakdownRow, ...]
    referrers: tuple[BreakdownRow, ...]
    utm_sources: tuple[BreakdownRow, ...]
    utm_mediums: tuple[BreakdownRow, ...]
    utm_campaigns: tuple[BreakdownRow, ...]
    devices: tuple[BreakdownRow, ...]
    browsers: tuple[BreakdownRow, ...]
    oses: tuple[BreakdownRow, ...]
    bots: tuple[BreakdownRow, ...]
    ads: tuple[BreakdownRow, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ConsentCategoryRate:
    """Decisions about one category in one group: a day (ISO date) or a policy revision."""

    group: str
    category: str
    decisions: int
    granted: int
    refused: int
    customized: int

    @property
    def granted_rate(self) -> float | None:
        """Share of decisions that granted the category."""
        return _ratio(self.granted, self.decisions)

    @property
    def refused_rate(self) -> float | None:
        """Share of decisions that refused the category."""
        return _ratio(self.refused, self.decisions)

    @property
    def customized_rate(self) -> float | None:
        """Share of decisions taken category by category (not accept/refuse all)."""
        return _ratio(self.customized, self.decisions)


@dataclasses.dataclass(frozen=True, slots=True)
class ConsentReport:
    """Opt-in rates per category, per day and per policy revision.

    ``available`` is false when the site stores no consent receipts (the
    receipts table does not exist): the other fields are then empty.
    ``actions`` counts decisions per action over the range (``uniques`` unused).
    The ``necessary`` category is left out: it is never a choice.
    """

    available: bool
    start: date
    end: date
    decisions: int
    by_day: tuple[ConsentCategoryRate, ...]
    by_revision: tuple[ConsentCategoryRate, ...]
    actions: tuple[BreakdownRow, ...]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def as_json(value: Any) -> Any:
    """A result (dataclasses, tuples, dates) as plain JSON-ready values.

    Properties that are part of a result's meaning (``ctr``, ``cto``, rates)
    are included next to the fields.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {
            field.name: as_json(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
        for name in _DERIVED.get(type(value), ()):
            out[name] = getattr(value, name)
        return out
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [as_json(item) for item in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


_DERIVED: dict[type, tuple[str, ...]] = {
    CampaignSummary: ("ctr", "cto"),
    ConsentCategoryRate: ("granted_rate", "refused_rate", "customized_rate"),
}
