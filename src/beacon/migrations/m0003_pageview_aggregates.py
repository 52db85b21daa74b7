"""Daily page-view aggregates behind the site statistics, fed by materialized views.

Each table holds, per site and UTC day and one dimension, the number of page
views (``pageviews``, a ``sum``) and the visitors (``visitors``, a ``uniq``
state of ``visitor_hash``: read it with ``uniqMerge(visitors)``). Bots are
left out of every table but ``bots_daily``, where they are counted apart by
crawler name. Query with ``GROUP BY`` and ``sum``/``uniqMerge``: parts are
merged in the background, so rows of one key may still be split.

=================  ============================================
table              dimension(s)
=================  ============================================
site_daily         (none: the whole site)
pages_daily        path
referrers_daily    referrer_host (empty: direct or internal)
utm_daily          utm_source, utm_medium, utm_campaign
devices_daily      device, browser, os
bots_daily         browser (crawler name); ``hits`` only
=================  ============================================
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["statements"]

_HUMAN_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "site_daily": (),
    "pages_daily": (("path", "String"),),
    "referrers_daily": (("referrer_host", "LowCardinality(String)"),),
    "utm_daily": (
        ("utm_source", "LowCardinality(String)"),
        ("utm_medium", "LowCardinality(String)"),
        ("utm_campaign", "LowCardinality(String)"),
    ),
    "devices_daily": (
        ("device", "LowCardinality(String)"),
        ("browser", "LowCardinality(String)"),
        ("os", "LowCardinality(String)"),
    ),
}


def statements(schema: Schema) -> list[str]:
    """Create the aggregate tables and the views that fill them from ``events``."""
    result: list[str] = []
    for table, dimensions in _HUMAN_TABLES.items():
        names = [name for name, _ in dimensions]
        key = ", ".join(["site", "day", *names])
        result += schema.create_table(
            table,
            [
                ("site", "LowCardinality(String)"),
                ("day", "Date"),
                *dimensions,
                ("pageviews", "SimpleAggregateFunction(sum, UInt64)"),
                ("visitors", "AggregateFunction(uniq, UInt64)"),
            ],
            engine="AggregatingMergeTree",
            partition_by="toYYYYMM(day)",
            order_by=f"({key})",
            ttl=f"day + INTERVAL {schema.retention_months} MONTH DELETE",
        )
        selected = "".join(
            f"{'toString(device)' if name == 'device' else name} AS {name}, " for name in names
        )
        result += schema.create_materialized_view(
            f"{table}_mv",
            target=table,
            source="events",
            select=(
                f"SELECT site, toDate(ts) AS day, {selected}"
                "count() AS pageviews, uniqState(visitor_hash) AS visitors "
                "FROM {source} WHERE kind = 'pageview' AND NOT is_bot "
                f"GROUP BY {key}"
            ),
        )
    result += schema.create_table(
        "bots_daily",
        [
            ("site", "LowCardinality(String)"),
            ("day", "Date"),
            ("browser", "LowCardinality(String)"),
            ("hits", "SimpleAggregateFunction(sum, UInt64)"),
        ],
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(day)",
        order_by="(site, day, browser)",
        ttl=f"day + INTERVAL {schema.retention_months} MONTH DELETE",
    )
    result += schema.create_materialized_view(
        "bots_daily_mv",
        target="bots_daily",
        source="events",
        select=(
            "SELECT site, toDate(ts) AS day, browser, count() AS hits "
            "FROM {source} WHERE kind = 'pageview' AND is_bot "
            "GROUP BY site, day, browser"
        ),
    )
    return result
