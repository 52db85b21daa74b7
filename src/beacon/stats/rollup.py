"""Finished days of the site aggregates, copied once as plain numbers.

Visitors are kept as ``uniq`` states in the daily site aggregates; merging
90 days of them for every breakdown costs hundreds of milliseconds on tens of
millions of events. A finished day no longer changes, so its numbers (events
and the day's distinct visitors per value) are copied into
``site_rollup_daily`` the first time a query needs them; ranges then read
plain numbers for finished days and states only for today and yesterday.

A day's copy is checked against the source on every read, cheaply (event
sums need no state): when late events (a spool replayed after an outage)
changed a day, the day is copied again. Visitors over a range are therefore
daily uniques summed, which is what distinct daily visitor hashes give anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from beacon.migrations.m0031_ad_clicks_daily import AD_CLICKS_DAILY
from beacon.migrations.m0033_site_rollup import SITE_ROLLUP, SITE_ROLLUP_DAYS
from beacon.stats.filters import DateRange
from beacon.store import Store

__all__ = ["LIVE_DAYS", "ROLLUP_SOURCES", "RollupSource", "SiteRollup"]

#: Today and yesterday are read from the live aggregates (late events still arrive).
LIVE_DAYS = 2


@dataclass(frozen=True, slots=True)
class RollupSource:
    """Where a dimension's daily numbers live: table, value expression, events column."""

    table: str
    value: str
    events: str


#: Every rolled-up dimension of the site. ``total`` is the whole site (value ``''``).
ROLLUP_SOURCES: dict[str, RollupSource] = {
    "total": RollupSource("site_daily", "''", "pageviews"),
    "page": RollupSource("pages_daily", "path", "pageviews"),
    "referrer": RollupSource("referrers_daily", "referrer_host", "pageviews"),
    "utm_source": RollupSource("utm_daily", "utm_source", "pageviews"),
    "utm_medium": RollupSource("utm_daily", "utm_medium", "pageviews"),
    "utm_campaign": RollupSource("utm_daily", "utm_campaign", "pageviews"),
    "device": RollupSource("devices_daily", "device", "pageviews"),
    "browser": RollupSource("devices_daily", "browser", "pageviews"),
    "os": RollupSource("devices_daily", "os", "pageviews"),
    "ad": RollupSource(AD_CLICKS_DAILY, "ad", "clicks"),
}


#: Dimensions copied together, by the group whose daily events total is checked.
_GROUP_OF: dict[str, str] = {name: "ad" if name == "ad" else "pageviews" for name in ROLLUP_SOURCES}
_CHECKED: dict[str, RollupSource] = {
    "pageviews": ROLLUP_SOURCES["total"],
    "ad": ROLLUP_SOURCES["ad"],
}


def _today() -> date:
    return datetime.now(UTC).date()


class SiteRollup:
    """Copies finished days on demand and builds SQL reading copies plus live days."""

    def __init__(self, store: Store, *, today: Callable[[], date] = _today) -> None:
        self.store = store
        self._today = today

    def last_finished_day(self) -> date:
        """The newest day read from the copy; later days are read live."""
        return self._today() - timedelta(days=LIVE_DAYS)

    def split(self, days: DateRange) -> tuple[DateRange | None, DateRange | None]:
        """The part of ``days`` read from copies, and the part read live."""
        boundary = self.last_finished_day()
        finished = (
            DateRange(days.start, min(days.end, boundary)) if days.start <= boundary else None
        )
        live_start = max(days.start, boundary + timedelta(days=1))
        live = DateRange(live_start, days.end) if live_start <= days.end else None
        return finished, live

    def ensure(self, dimensions: Iterable[str], days: DateRange) -> None:
        """Copy (again) every finished day of ``days`` whose copy is missing or stale.

        Page views reach every page-view table at once, so one check of the
        site's daily totals covers all page-view dimensions; ad clicks are
        checked on their own table.
        """
        finished, _ = self.split(days)
        if finished is None:
            return
        groups = list(dict.fromkeys(_GROUP_OF[name] for name in dimensions))
        parameters: dict[str, Any] = {"start": finished.start, "end": finished.end}
        sources = " UNION ALL ".join(
            f"SELECT '{group}' AS grp, toString(site) AS site, day, "
            f"toUInt64(sum({_CHECKED[group].events})) AS events FROM {_CHECKED[group].table} "
            "WHERE day BETWEEN {start:Date} AND {end:Date} GROUP BY site, day"
            for group in groups
        )
        rows = self.store.query_rows(
            f"""SELECT s.grp, s.day FROM ({sources}) AS s
            LEFT JOIN (
                SELECT toString(dimension) AS grp, toString(site) AS site, day,
                    argMax(events, version) AS events
                FROM {SITE_ROLLUP_DAYS}
                WHERE day BETWEEN {{start:Date}} AND {{end:Date}}
                GROUP BY grp, site, day
            ) AS c ON s.grp = c.grp AND s.site = c.site AND s.day = c.day
            WHERE c.events != s.events
            GROUP BY s.grp, s.day""",
            parameters,
        )
        stale: dict[str, list[date]] = {}
        for group, day in rows:
            stale.setdefault(str(group), []).append(day)
        for group, stale_days in stale.items():
            self._copy(group, stale_days)

    def _copy(self, group: str, days: list[date]) -> None:
        version = time.time_ns()
        members = [name for name, member_of in _GROUP_OF.items() if member_of == group]
        parameters = {"group": group, "days": days, "version": version}
        for dimension in members:
            source = ROLLUP_SOURCES[dimension]
            self.store.command(
                f"""INSERT INTO {SITE_ROLLUP}
                    (site, dimension, day, value, events, visitors, version)
                SELECT site, {{dimension:String}}, day, toString({source.value}) AS value,
                    sum({source.events}), uniqMerge(visitors), {{version:UInt64}}
                FROM {source.table} WHERE day IN {{days:Array(Date)}}
                GROUP BY site, day, value""",
                {**parameters, "dimension": dimension},
            )
        checked = _CHECKED[group]
        self.store.command(
            f"""INSERT INTO {SITE_ROLLUP_DAYS} (site, dimension, day, events, version)
            SELECT site, {{group:String}}, day, sum({checked.events}), {{version:UInt64}}
            FROM {checked.table} WHERE day IN {{days:Array(Date)}}
            GROUP BY site, day""",
            parameters,
        )

    def daily_sql(self, dimensions: Iterable[str], days: DateRange, site: str | None) -> str:
        """SQL of rows (dimension, day, value, events, visitors) over ``days``.

        Finished days come from the copies, live days from the states (one
        distinct count per day). Parameters: ``start``, ``end``,
        ``copy_end``, ``live_start`` and ``site`` when filtered (see
        :meth:`parameters`). Call :meth:`ensure` first.
        """
        finished, live = self.split(days)
        site_clause = " AND site = {site:String}" if site is not None else ""
        parts = []
        if finished is not None:
            names = ", ".join(f"'{name}'" for name in dict.fromkeys(dimensions))
            parts.append(
                "SELECT toString(dimension) AS dimension, day, value, events, visitors "
                f"FROM {SITE_ROLLUP} FINAL WHERE dimension IN ({names}) "
                "AND day BETWEEN {start:Date} AND {copy_end:Date}" + site_clause
            )
        if live is not None:
            for name in dict.fromkeys(dimensions):
                source = ROLLUP_SOURCES[name]
                parts.append(
                    f"SELECT '{name}' AS dimension, day, toString({source.value}) AS value, "
                    f"toUInt64(sum({source.events})) AS events, "
                    "toUInt64(uniqMerge(visitors)) AS visitors "
                    f"FROM {source.table} WHERE day BETWEEN {{live_start:Date}} AND {{end:Date}}"
                    f"{site_clause} GROUP BY day, value"
                )
        return " UNION ALL ".join(parts)

    def parameters(self, days: DateRange, site: str | None) -> dict[str, Any]:
        """The parameters :meth:`daily_sql` needs."""
        finished, live = self.split(days)
        parameters: dict[str, Any] = {"start": days.start, "end": days.end}
        parameters["copy_end"] = finished.end if finished else days.start
        parameters["live_start"] = live.start if live else days.end
        if site is not None:
            parameters["site"] = site
        return parameters
