"""Helpers of the receipt tests: receipts to insert, and every table's content."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from beacon.receipts.rows import RECEIPT_COLUMNS, receipt_tsv
from beacon.store import Store
from mypharm_consent.receipts import ConsentReceipt

START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def make_receipt(consent_id: str, minutes: int = 0, **fields: object) -> ConsentReceipt:
    """A receipt of ``consent_id`` taken ``minutes`` after :data:`START`."""
    values: dict[str, object] = {
        "consent_id": consent_id,
        "time": START + timedelta(minutes=minutes),
        "action": "accept_all",
        "granted": ("analytics", "marketing", "necessary"),
        "refused": (),
        "policy_revision": 1,
        "banner_hash": "b" * 32,
        "language": "fr",
        "source": "js",
        "device_class": "desktop",
    }
    values.update(fields)
    return ConsentReceipt(**values)  # type: ignore[arg-type]


def insert_receipts(store: Store, *receipts: ConsentReceipt) -> None:
    """Insert receipts exactly as a flushed spool segment would."""
    store.raw_insert(
        "consent_receipts",
        RECEIPT_COLUMNS,
        b"".join(receipt_tsv(r) for r in receipts),
        settings={"insert_deduplication_token": uuid.uuid4().hex},
    )


def table_contents(store: Store) -> dict[str, str]:
    """Every table of the database, its rows rendered as text (deleted rows included)."""
    tables = store.query_rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
        {"db": store.database},
    )
    contents: dict[str, str] = {}
    for (name,) in tables:
        rows = store.query_rows(
            f"SELECT * FROM `{store.database}`.`{name}`", settings={"apply_deleted_mask": 0}
        )
        contents[name] = repr(rows)
    return contents
