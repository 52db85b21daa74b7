"""The raw ``events`` table: one row per anonymized event (see :mod:`beacon.events`).

Partitioned by month and kept ``retention_months`` (25 by default, the CNIL's
longest retention for audience data), then whole parts are dropped. Sorted by
(site, kind, ts) because every statistic filters on a site, an event kind and
a time range. Replayed spool segments are dropped by the deduplication window.
"""

from __future__ import annotations

from beacon.events import DEVICES, EVENT_KINDS
from beacon.migrations import Schema

__all__ = ["statements"]


def _enum(values: tuple[str, ...]) -> str:
    return "Enum8(" + ", ".join(f"'{v}' = {i}" for i, v in enumerate(values, start=1)) + ")"


def statements(schema: Schema) -> list[str]:
    """Create ``events`` (``events_local`` + Distributed ``events`` on a cluster)."""
    return schema.create_table(
        "events",
        [
            ("ts", "DateTime64(3, 'UTC')"),
            ("site", "LowCardinality(String)"),
            ("kind", _enum(EVENT_KINDS)),
            ("path", "String"),
            ("referrer_host", "LowCardinality(String)"),
            ("utm_source", "LowCardinality(String)"),
            ("utm_medium", "LowCardinality(String)"),
            ("utm_campaign", "LowCardinality(String)"),
            ("utm_term", "String"),
            ("utm_content", "String"),
            ("visitor_hash", "UInt64"),
            ("browser", "LowCardinality(String)"),
            ("os", "LowCardinality(String)"),
            ("device", _enum(DEVICES)),
            ("is_bot", "Bool"),
            ("campaign", "LowCardinality(String)"),
            ("link", "String"),
            ("recipient", "UInt64"),
            ("machine", "Bool"),
            ("name", "LowCardinality(String)"),
        ],
        partition_by="toYYYYMM(ts)",
        order_by="(site, kind, ts)",
        ttl=f"toDateTime(ts) + INTERVAL {schema.retention_months} MONTH DELETE",
        settings={"ttl_only_drop_parts": 1},
        sharding_key="visitor_hash",
    )
