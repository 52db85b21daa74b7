"""``site_rollup_daily``: finished days of the site aggregates, with plain numbers.

The daily site aggregates keep visitors as ``uniq`` states, and reading a
90-day range means merging millions of state elements. Once a day is over,
its numbers no longer change, so the statistics layer copies each finished
day into this table as plain counts: per site, dimension (``total``, ``page``,
``referrer``, ``utm_source``...), day and value, the events and the day's
distinct visitors. ``site_rollup_days`` records, per site, dimension and day,
the event total the copy was made from; when late events change a day's
total in the source table, the day is copied again (``ReplacingMergeTree``:
the newest version wins, read with ``FINAL``).
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["SITE_ROLLUP", "SITE_ROLLUP_DAYS", "statements"]

SITE_ROLLUP = "site_rollup_daily"
SITE_ROLLUP_DAYS = "site_rollup_days"


def statements(schema: Schema) -> list[str]:
    """Create the rollup table and its ledger of copied days."""
    return [
        *schema.create_table(
            SITE_ROLLUP,
            [
                ("site", "LowCardinality(String)"),
                ("dimension", "LowCardinality(String)"),
                ("day", "Date"),
                ("value", "String"),
                ("events", "UInt64"),
                ("visitors", "UInt64"),
                ("version", "UInt64"),
            ],
            engine="ReplacingMergeTree",
            engine_args="version",
            partition_by="toYYYYMM(day)",
            order_by="(site, dimension, day, value)",
            ttl=f"day + INTERVAL {schema.retention_months} MONTH DELETE",
            sharding_key="cityHash64(site, day)",
        ),
        *schema.create_table(
            SITE_ROLLUP_DAYS,
            [
                ("site", "LowCardinality(String)"),
                ("dimension", "LowCardinality(String)"),
                ("day", "Date"),
                ("events", "UInt64"),
                ("version", "UInt64"),
            ],
            engine="ReplacingMergeTree",
            engine_args="version",
            order_by="(dimension, day, site)",
            everywhere=True,
        ),
    ]
