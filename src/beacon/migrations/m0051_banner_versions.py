"""``banner_versions``: the banner each banner hash stands for, stored once.

A receipt names the banner the visitor answered by its hash; this table
keeps, per hash, the banner as rendered (HTML, without any per-visitor
value), so the exact wording can be shown years later. A
``ReplacingMergeTree`` collapses the copies every process writes; its
version column is derived from ``first_seen`` so that the earliest sighting
survives. Small, so on a cluster every node holds all of it.
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["statements"]

# 2100-01-01 in milliseconds: subtracting first_seen makes earlier sightings win.
_HORIZON_MS = 4_102_444_800_000


def statements(schema: Schema) -> list[str]:
    """Create ``banner_versions``, one table replicated on all nodes."""
    return schema.create_table(
        "banner_versions",
        [
            ("banner_hash", "String"),
            ("language", "LowCardinality(String)"),
            ("html", "String CODEC(ZSTD(3))"),
            ("first_seen", "DateTime64(3, 'UTC')"),
            (
                "keep_earliest",
                f"UInt64 MATERIALIZED {_HORIZON_MS} - toUnixTimestamp64Milli(first_seen)",
            ),
        ],
        engine="ReplacingMergeTree",
        engine_args="keep_earliest",
        order_by="banner_hash",
        everywhere=True,
    )
