"""``consent_receipts``: one row per consent decision, kept as proof of consent.

Sorted by (consent_id, ts) so that the receipts of one consent id (what the
preferences page, ``beacon consent show`` and erasure look up) are read from
a few granules. Partitioned by month and dropped after the retention period
(:data:`RECEIPT_RETENTION_MONTHS`, five years by default: the usual
limitation period for civil claims; see
:meth:`beacon.receipts.ReceiptStore.set_retention`). On a cluster, rows are
sharded by consent id so that a lookup or an erasure touches one shard.
No IP address and no User-Agent are ever stored: only a device class.
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["RECEIPT_RETENTION_MONTHS", "statements"]

#: Default retention of receipts: five years.
RECEIPT_RETENTION_MONTHS = 60


def statements(schema: Schema) -> list[str]:
    """Create ``consent_receipts`` (``_local`` + Distributed on a cluster)."""
    return schema.create_table(
        "consent_receipts",
        [
            ("consent_id", "String"),
            ("ts", "DateTime64(3, 'UTC')"),
            ("action", "LowCardinality(String)"),
            ("granted", "Array(LowCardinality(String))"),
            ("refused", "Array(LowCardinality(String))"),
            ("policy_revision", "UInt32"),
            ("banner_hash", "LowCardinality(String)"),
            ("language", "LowCardinality(String)"),
            ("source", "LowCardinality(String)"),
            ("device_class", "LowCardinality(String)"),
        ],
        partition_by="toYYYYMM(ts)",
        order_by="(consent_id, ts)",
        ttl=f"toDateTime(ts) + INTERVAL {RECEIPT_RETENTION_MONTHS} MONTH DELETE",
        settings={"ttl_only_drop_parts": 1},
        sharding_key="cityHash64(consent_id)",
    )
