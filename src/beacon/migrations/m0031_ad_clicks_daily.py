"""``ad_clicks_daily``: clicks on the links a site marks as ads, per day, ad and page.

The ad is named by the event's ``name`` when the site gives one, else by its
link. ``visitors`` is a ``uniq`` state of the daily visitor hash (read it
with ``uniqMerge(visitors)``). Bots are left out.
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["AD_CLICKS_DAILY", "statements"]

AD_CLICKS_DAILY = "ad_clicks_daily"


def statements(schema: Schema) -> list[str]:
    """Create the table and the view that fills it from ``events``."""
    key = "site, day, ad, path"
    return [
        *schema.create_table(
            AD_CLICKS_DAILY,
            [
                ("site", "LowCardinality(String)"),
                ("day", "Date"),
                ("ad", "String"),
                ("path", "String"),
                ("clicks", "SimpleAggregateFunction(sum, UInt64)"),
                ("visitors", "AggregateFunction(uniq, UInt64)"),
            ],
            engine="AggregatingMergeTree",
            partition_by="toYYYYMM(day)",
            order_by=f"({key})",
            ttl=f"day + INTERVAL {schema.retention_months} MONTH DELETE",
        ),
        *schema.create_materialized_view(
            f"{AD_CLICKS_DAILY}_mv",
            target=AD_CLICKS_DAILY,
            source="events",
            select=(
                "SELECT site, toDate(ts) AS day, "
                "toString(if(name != '', toString(name), link)) AS ad, path, "
                "count() AS clicks, uniqState(visitor_hash) AS visitors "
                "FROM {source} WHERE kind = 'ad_click' AND NOT is_bot "
                f"GROUP BY {key}"
            ),
        ),
    ]
