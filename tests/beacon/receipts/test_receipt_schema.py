"""The receipt migrations on one node and on a cluster, and the periodic purger."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from beacon.migrations import Schema, discover
from beacon.receipts import ErasurePurger, ReceiptStore
from beacon.store import Store

from .receipt_helpers import insert_receipts, make_receipt


def rendered(schema: Schema) -> dict[str, str]:
    ours = {m.name: m for m in discover() if 50 <= m.version <= 59}
    assert sorted(ours) == ["banner_versions", "consent_receipts", "receipt_erasures"]
    return {name: "\n".join(m.statements(schema)) for name, m in ours.items()}


def test_single_node_ddl() -> None:
    ddl = rendered(Schema(database="site"))
    receipts = ddl["consent_receipts"]
    assert "ENGINE = MergeTree()" in receipts
    assert "ORDER BY (consent_id, ts)" in receipts
    assert "TTL toDateTime(ts) + INTERVAL 60 MONTH DELETE" in receipts
    assert "Distributed" not in receipts
    assert "ReplacingMergeTree(keep_earliest)" in ddl["banner_versions"]
    assert "ReplacingMergeTree(version)" in ddl["receipt_erasures"]


def test_cluster_ddl_shards_receipts_by_consent_id() -> None:
    ddl = rendered(Schema(database="site", cluster="main"))
    receipts = ddl["consent_receipts"]
    assert "`site`.`consent_receipts_local` ON CLUSTER `main`" in receipts
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}'" in receipts
    assert "Distributed(`main`, `site`, `consent_receipts_local`, cityHash64(consent_id))" in (
        receipts
    )
    for small in ("banner_versions", "receipt_erasures"):
        assert "ReplicatedReplacingMergeTree('/clickhouse/tables/all/" in ddl[small]
        assert "Distributed" not in ddl[small]


def test_migrations_are_idempotent(store: Store) -> None:
    schema = Schema(database=store.database)
    for migration in discover():
        if 50 <= migration.version <= 59:
            for statement in migration.statements(schema):
                store.command(statement)
    assert store.query_rows("SELECT count() FROM consent_receipts") == [(0,)]


def test_the_purger_carries_out_due_erasures(store: Store, clock: Any) -> None:
    receipts = ReceiptStore(store, clock=clock)
    insert_receipts(store, make_receipt("purged-consent-id-01"))
    receipts.request_erasure("purged-consent-id-01")
    clock.advance(timedelta(hours=25))
    purger = ErasurePurger(receipts, interval=0.05)
    with purger.running():
        deadline = time.monotonic() + 30
        while purger.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert purger.last_report is not None
    assert purger.last_report.erased == 1
    assert receipts.history("purged-consent-id-01") == []


def test_the_purger_survives_a_missing_store(clickhouse_url: str) -> None:
    purger = ErasurePurger(ReceiptStore(Store(clickhouse_url)))
    assert purger.run_once() is None
    assert (purger.runs, purger.failures) == (0, 1)
    with pytest.raises(ValueError, match="positive"):
        ErasurePurger(ReceiptStore(Store(clickhouse_url)), interval=0)
