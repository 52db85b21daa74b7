"""The ``email_unsubscribes`` table: opt-outs from e-mail campaigns, kept forever.

One row per unsubscribe (or re-subscribe) of a recipient reference, the keyed
hash that e-mail tokens carry; the address itself is never stored. The table
has no TTL: an opt-out must be honoured for as long as the site sends mail.
``ReplacingMergeTree(ts)`` keeps the latest row per (site, recipient); readers
still take ``argMax(unsubscribed, ts)`` so that the answer is right before
background merges have run. On a cluster, rows are sharded by recipient so a
recipient's history lives on one shard.
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["statements"]


def statements(schema: Schema) -> list[str]:
    """DDL of the opt-out table."""
    return schema.create_table(
        "email_unsubscribes",
        [
            ("ts", "DateTime64(3, 'UTC')"),
            ("site", "LowCardinality(String)"),
            ("recipient", "UInt64"),
            ("campaign", "String"),
            ("unsubscribed", "UInt8"),
        ],
        engine="ReplacingMergeTree",
        engine_args="ts",
        order_by="(site, recipient)",
        sharding_key="recipient",
    )
