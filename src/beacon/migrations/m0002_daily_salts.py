"""``daily_salts``: the random salt of each UTC day, shared by every node.

Each node that needs a day's salt and finds none inserts a random candidate;
all nodes then use the same winner, the candidate with the smallest
(created_at, salt), so concurrent inserts converge. The table is replicated
on every node of a cluster. Each refresh drops the partitions (days) older
than yesterday, so no salt outlives its second day (see :mod:`beacon.anonymize`).
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["statements"]


def statements(schema: Schema) -> list[str]:
    """Create ``daily_salts``, one table replicated on all nodes."""
    return schema.create_table(
        "daily_salts",
        [("day", "Date"), ("salt", "String"), ("created_at", "DateTime64(3, 'UTC')")],
        partition_by="day",
        order_by="(day, created_at, salt)",
        everywhere=True,
    )
