"""``receipt_erasures``: erasure requests and their outcome, one row per change.

Keyed by the SHA-256 digest of the consent id; the newest ``version`` of a
digest is its state (``requested``, ``cancelled`` or ``done``). The plain
consent id is kept only while the erasure is pending or cancelled: the
``done`` row blanks it, so after an erasure nothing of the id remains but its
digest (see :mod:`beacon.receipts.store`). Small, so on a cluster every node
holds all of it. Rows expire with the receipts' default retention.
"""

from __future__ import annotations

from beacon.migrations import Schema
from beacon.migrations.m0050_consent_receipts import RECEIPT_RETENTION_MONTHS

__all__ = ["statements"]


def statements(schema: Schema) -> list[str]:
    """Create ``receipt_erasures``, one table replicated on all nodes."""
    return schema.create_table(
        "receipt_erasures",
        [
            ("consent_digest", "String"),
            ("consent_id", "String"),
            ("state", "LowCardinality(String)"),
            ("requested_at", "DateTime64(3, 'UTC')"),
            ("due_at", "DateTime64(3, 'UTC')"),
            ("done_at", "Nullable(DateTime64(3, 'UTC'))"),
            ("version", "UInt64"),
        ],
        engine="ReplacingMergeTree",
        engine_args="version",
        order_by="consent_digest",
        ttl=f"toDateTime(requested_at) + INTERVAL {RECEIPT_RETENTION_MONTHS} MONTH DELETE",
        everywhere=True,
    )
