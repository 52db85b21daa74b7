"""Receipts and banner versions survive the TabSeparated trip into ClickHouse intact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon.receipts.rows import (
    BANNER_VERSION_COLUMNS,
    RECEIPT_COLUMNS,
    banner_version_tsv,
    receipt_tsv,
)
from beacon.store import Store
from mypharm_consent.receipts import ConsentReceipt

from .receipt_helpers import make_receipt

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
names = st.lists(text, max_size=4).map(tuple)
moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def test_columns_are_those_of_the_tables(store: Store) -> None:
    for table, columns in (
        ("consent_receipts", RECEIPT_COLUMNS),
        ("banner_versions", BANNER_VERSION_COLUMNS),
    ):
        rows = store.query_rows(
            "SELECT name FROM system.columns WHERE database = {db:String}"
            " AND table = {t:String} AND default_kind != 'MATERIALIZED' ORDER BY position",
            {"db": store.database, "t": table},
        )
        assert tuple(name for (name,) in rows) == columns


def test_a_receipt_is_one_line() -> None:
    line = receipt_tsv(make_receipt("x" * 22, action="a\tb\nc"))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert line.count(b"\t") == len(RECEIPT_COLUMNS) - 1


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(consent_id=text, action=text, granted=names, refused=names, banner=text, when=moments)
def test_any_text_round_trips(
    store: Store,
    consent_id: str,
    action: str,
    granted: tuple[str, ...],
    refused: tuple[str, ...],
    banner: str,
    when: datetime,
) -> None:
    # Hypothesis runs many examples per test: the marker tells this one's rows apart.
    marker = uuid.uuid4().hex
    receipt = ConsentReceipt(
        consent_id=consent_id,
        time=when,
        action=action,
        granted=granted,
        refused=refused,
        policy_revision=4_000_000_000,
        banner_hash=banner,
        language=action,
        source=banner,
        device_class=marker,
    )
    store.raw_insert(
        "consent_receipts",
        RECEIPT_COLUMNS,
        receipt_tsv(receipt),
        settings={"insert_deduplication_token": marker},
    )
    store.raw_insert(
        "banner_versions",
        BANNER_VERSION_COLUMNS,
        banner_version_tsv(marker, action, banner, when),
    )
    [row] = store.query_rows(
        f"SELECT {', '.join(RECEIPT_COLUMNS)} FROM consent_receipts"
        " WHERE device_class = {marker:String}",
        {"marker": marker},
    )
    assert row[0] == consent_id
    assert row[1].replace(tzinfo=UTC) == when
    assert (row[2], tuple(row[3]), tuple(row[4]), row[5]) == (
        action,
        granted,
        refused,
        4_000_000_000,
    )
    assert (row[6], row[7], row[8], row[9]) == (banner, action, banner, marker)
    [(html, language)] = store.query_rows(
        "SELECT html, language FROM banner_versions WHERE banner_hash = {h:String}",
        {"h": marker},
    )
    assert (html, language) == (banner, action)
