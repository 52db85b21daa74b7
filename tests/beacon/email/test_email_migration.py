"""The opt-out table's DDL, on one node and on a cluster."""

from __future__ import annotations

from beacon.migrations import Schema, discover
from beacon.migrations.m0020_email_unsubscribes import statements


def test_single_node() -> None:
    (ddl,) = statements(Schema("beacon"))
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS `beacon`.`email_unsubscribes`")
    assert "ENGINE = ReplacingMergeTree(ts)" in ddl
    assert "ORDER BY (site, recipient)" in ddl
    assert "TTL" not in ddl  # opt-outs are kept forever
    assert "non_replicated_deduplication_window" in ddl


def test_cluster_shards_by_recipient() -> None:
    local, distributed = statements(Schema("beacon", cluster="prod"))
    assert "`email_unsubscribes_local` ON CLUSTER `prod`" in local
    assert "ReplicatedReplacingMergeTree(" in local
    assert local.rstrip().endswith("replicated_deduplication_window = 10000")
    assert "TTL" not in local
    assert distributed.endswith("`email_unsubscribes_local`, recipient)")


def test_numbered_in_the_email_range() -> None:
    (migration,) = [m for m in discover() if m.name == "email_unsubscribes"]
    assert 20 <= migration.version <= 29
