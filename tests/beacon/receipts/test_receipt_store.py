"""ReceiptStore on the real embedded engine: history, export, erasure, purge."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from beacon.exceptions import StoreUnavailable
from beacon.receipts.rows import BANNER_VERSION_COLUMNS, banner_version_tsv
from beacon.receipts.store import (
    EXPORT_FORMAT,
    ReceiptStore,
    ReceiptStoreUnavailable,
    consent_digest,
)
from beacon.store import Store
from mypharm_consent.receipts import (
    ErasureAlreadyRequested,
    ErasureDeadlinePassed,
    ErasureNotPending,
    ReceiptProvider,
    UnknownConsentId,
)

from .receipt_helpers import START, insert_receipts, make_receipt, table_contents

ALICE = "alice-consent-id-0001"
BOB = "bob-consent-id-000002"
DAY = timedelta(hours=24)


def test_is_a_receipt_provider(receipts: ReceiptStore) -> None:
    assert isinstance(receipts, ReceiptProvider)


def test_history_is_oldest_first_and_round_trips(store: Store, receipts: ReceiptStore) -> None:
    later = make_receipt(
        ALICE,
        5,
        action="reject_all",
        granted=("necessary",),
        refused=("analytics", "marketing"),
        source="no-js",
        language="en",
    )
    first = make_receipt(ALICE, 0)
    insert_receipts(store, later, first, make_receipt(BOB, 1))
    assert receipts.history(ALICE) == [first, later]
    assert receipts.history(ALICE, limit=1) == [later]
    assert receipts.history(ALICE, limit=5) == [first, later]
    assert receipts.history("nobody-has-this-id") == []
    with pytest.raises(ValueError, match="positive"):
        receipts.history(ALICE, limit=0)


@pytest.mark.parametrize(
    "bad_id",
    ["", "short", "x" * 65, "' OR 1=1 --", "id with spaces", "é" * 10, "a/b/c/d/e/f"],
    ids=["empty", "too-short", "too-long", "sql", "spaces", "non-ascii", "slashes"],
)
def test_malformed_ids_are_refused_clearly(receipts: ReceiptStore, bad_id: str) -> None:
    for call in (
        receipts.history,
        receipts.export,
        receipts.request_erasure,
        receipts.cancel_erasure,
        receipts.erasure_status,
        receipts.erase_now,
    ):
        with pytest.raises(UnknownConsentId, match="not a consent id"):
            call(bad_id)


def test_export_holds_receipts_banners_and_erasure(store: Store, receipts: ReceiptStore) -> None:
    insert_receipts(store, make_receipt(ALICE, 0), make_receipt(BOB, 0, banner_hash="c" * 32))
    banner = '<div id="mypharm-consent-banner">\n\tCookies ? "Oui" \\ l\'été</div>'
    store.raw_insert(
        "banner_versions",
        BANNER_VERSION_COLUMNS,
        banner_version_tsv("b" * 32, "fr", banner, START)
        + banner_version_tsv("b" * 32, "fr", banner, START + DAY),
    )
    document = json.loads(receipts.export(ALICE))
    assert document["format"] == EXPORT_FORMAT
    assert document["consent_id"] == ALICE
    assert document["receipts"] == [
        {
            "consent_id": ALICE,
            "time": "2026-11-02T09:30:00.000Z",
            "action": "accept_all",
            "granted": ["analytics", "marketing", "necessary"],
            "refused": [],
            "policy_revision": 1,
            "banner_hash": "b" * 32,
            "language": "fr",
            "source": "js",
            "device_class": "desktop",
        }
    ]
    assert document["banners"] == {
        "b" * 32: {"language": "fr", "first_seen": "2026-11-02T09:30:00.000Z", "html": banner}
    }
    assert document["erasure"]["state"] == "none"


def test_export_of_an_unknown_id_says_so(receipts: ReceiptStore) -> None:
    with pytest.raises(UnknownConsentId, match="no receipt is stored"):
        receipts.export(ALICE)


def test_erasure_after_grace_leaves_nothing_of_the_id(
    store: Store, receipts: ReceiptStore, clock: Any
) -> None:
    insert_receipts(store, make_receipt(ALICE, 0), make_receipt(ALICE, 3), make_receipt(BOB, 1))
    status = receipts.request_erasure(ALICE)
    assert status.state == "requested"
    assert status.due_at == START + DAY

    clock.advance(DAY - timedelta(seconds=1))
    assert receipts.purge_due().erased == 0
    assert len(receipts.history(ALICE)) == 2

    clock.advance(timedelta(seconds=1))
    report = receipts.purge_due()
    assert report.erased == 1
    assert receipts.history(ALICE) == []
    assert receipts.erasure_status(ALICE).state == "done"
    assert receipts.erasure_status(ALICE).done_at == START + DAY
    assert [r.consent_id for r in receipts.history(BOB)] == [BOB]
    for table, content in table_contents(store).items():
        assert ALICE not in content, f"{table} still holds the erased id"
    assert BOB in table_contents(store)["consent_receipts"]

    assert receipts.purge_due().erased == 0


def test_cancel_during_grace_keeps_receipts(
    store: Store, receipts: ReceiptStore, clock: Any
) -> None:
    insert_receipts(store, make_receipt(ALICE))
    receipts.request_erasure(ALICE)
    clock.advance(DAY / 2)
    assert receipts.cancel_erasure(ALICE).state == "cancelled"
    clock.advance(DAY)
    assert receipts.purge_due().erased == 0
    assert len(receipts.history(ALICE)) == 1
    assert receipts.erasure_status(ALICE).state == "cancelled"
    # A cancelled erasure can be asked again, with a fresh grace period.
    again = receipts.request_erasure(ALICE)
    assert again.due_at == clock.now + DAY


def test_bad_requests_get_clear_messages(store: Store, receipts: ReceiptStore, clock: Any) -> None:
    with pytest.raises(UnknownConsentId, match="nothing to erase"):
        receipts.request_erasure(ALICE)
    with pytest.raises(ErasureNotPending, match="nothing to cancel"):
        receipts.cancel_erasure(ALICE)

    insert_receipts(store, make_receipt(ALICE))
    receipts.request_erasure(ALICE)
    with pytest.raises(ErasureAlreadyRequested, match="already requested") as twice:
        receipts.request_erasure(ALICE)
    assert twice.value.status.due_at == START + DAY

    clock.advance(DAY)
    with pytest.raises(ErasureDeadlinePassed, match="can no longer be cancelled"):
        receipts.cancel_erasure(ALICE)
    receipts.purge_due()
    with pytest.raises(ErasureAlreadyRequested, match="already erased"):
        receipts.request_erasure(ALICE)
    with pytest.raises(ErasureDeadlinePassed):
        receipts.cancel_erasure(ALICE)
    with pytest.raises(ErasureAlreadyRequested, match="already erased"):
        receipts.erase_now(ALICE)
    # The history of an erased id is empty, not an error.
    assert json.loads(receipts.export(ALICE))["erasure"]["state"] == "done"


def test_erase_now_skips_the_grace_period(store: Store, receipts: ReceiptStore) -> None:
    insert_receipts(store, make_receipt(ALICE), make_receipt(BOB))
    receipts.request_erasure(ALICE)
    status = receipts.erase_now(ALICE)
    assert status.state == "done"
    assert status.requested_at == START
    assert receipts.history(ALICE) == []
    assert len(receipts.history(BOB)) == 1
    with pytest.raises(UnknownConsentId):
        receipts.erase_now("never-seen-consent-id")


class FailingStore(Store):
    """The real store, except that statements containing ``fail_on`` fail once."""

    fail_on: str = ""

    def _fail(self, sql: str) -> None:
        if self.fail_on and self.fail_on in sql:
            self.fail_on = ""
            raise StoreUnavailable("injected outage", url=self.location.display_url)

    def command(self, sql: str, parameters: Any = None, settings: Any = None) -> Any:
        self._fail(sql)
        return super().command(sql, parameters, settings)

    def raw_insert(self, table: str, columns: Any, data: bytes, **kwargs: Any) -> None:
        self._fail(f"INSERT INTO {table} " + data.decode())
        super().raw_insert(table, columns, data, **kwargs)


@pytest.mark.fault
@pytest.mark.parametrize(
    "fail_on",
    [
        "DELETE FROM `{db}`.`consent_receipts`",
        "'done'",
        "DELETE FROM `{db}`.`receipt_erasures`",
        "APPLY DELETED MASK",
    ],
    ids=["delete-receipts", "record-done", "forget-plain-id", "rewrite-parts"],
)
def test_an_interrupted_purge_is_finished_by_the_next(
    store: Store, clock: Any, fail_on: str
) -> None:
    failing = FailingStore(store.url)
    receipts = ReceiptStore(failing, clock=clock)
    insert_receipts(store, make_receipt(ALICE), make_receipt(BOB))
    receipts.request_erasure(ALICE)
    clock.advance(DAY)
    failing.fail_on = fail_on.replace("{db}", store.database).replace("'done'", "\tdone\t")
    with pytest.raises(ReceiptStoreUnavailable):
        receipts.purge_due()
    assert receipts.erasure_status(ALICE).state in ("requested", "done")
    receipts.purge_due()
    assert receipts.erasure_status(ALICE).state == "done"
    assert receipts.history(ALICE) == []
    for table, content in table_contents(store).items():
        assert ALICE not in content, f"{table} still holds the erased id"
    assert len(receipts.history(BOB)) == 1


def test_receipts_arriving_after_the_erasure_are_swept(
    store: Store, receipts: ReceiptStore, clock: Any
) -> None:
    insert_receipts(store, make_receipt(ALICE, 0))
    clock.advance(timedelta(minutes=10))
    receipts.erase_now(ALICE)
    # A spool segment replayed after an outage brings an old receipt back...
    insert_receipts(store, make_receipt(ALICE, 1))
    # ...while a decision taken after the erasure starts a new history.
    clock.advance(timedelta(hours=1))
    newer = make_receipt(ALICE, 120)
    insert_receipts(store, newer)
    report = receipts.purge_due()
    assert report.late_receipts == 1
    assert receipts.history(ALICE) == [newer]


def test_digest_is_what_clickhouse_computes(store: Store) -> None:
    [(computed,)] = store.query_rows("SELECT lower(hex(SHA256({cid:String})))", {"cid": ALICE})
    assert computed == consent_digest(ALICE)


def test_missing_tables_say_how_to_fix(clickhouse_url: str) -> None:
    bare = ReceiptStore(Store(clickhouse_url))
    with pytest.raises(ReceiptStoreUnavailable, match="beacon init-db"):
        bare.history(ALICE)


def test_retention_is_configurable(store: Store, receipts: ReceiptStore) -> None:
    [(before,)] = store.query_rows(
        "SELECT create_table_query FROM system.tables"
        " WHERE database = {db:String} AND name = 'consent_receipts'",
        {"db": store.database},
    )
    assert "toIntervalMonth(60)" in before
    try:
        receipts.set_retention(72)
        [(after,)] = store.query_rows(
            "SELECT create_table_query FROM system.tables"
            " WHERE database = {db:String} AND name = 'consent_receipts'",
            {"db": store.database},
        )
        assert "toIntervalMonth(72)" in after
    finally:
        receipts.set_retention(60)
    for months in (0, 1201, True):
        with pytest.raises(ValueError, match="1 to 1200"):
            receipts.set_retention(months)


def test_grace_period_must_not_be_negative(store: Store) -> None:
    with pytest.raises(ValueError, match="negative"):
        ReceiptStore(store, erasure_grace=timedelta(hours=-1))
