"""The migration framework: discovery, idempotence, and the DDL of every layout."""

from __future__ import annotations

import re

import pytest

from beacon.exceptions import ConfigurationError, MigrationError
from beacon.migrations import Migration, Schema, applied_versions, discover, migrate
from beacon.store import Store

CORE_TABLES = {
    "events",
    "daily_salts",
    "schema_migrations",
    "site_daily",
    "pages_daily",
    "referrers_daily",
    "utm_daily",
    "devices_daily",
    "bots_daily",
}


def test_migrations_are_numbered_and_ordered() -> None:
    found = discover()
    versions = [m.version for m in found]
    assert versions == sorted(set(versions))
    assert {1, 2, 3} <= set(versions)


def test_migrate_creates_the_schema_once(clickhouse_url: str) -> None:
    store = Store(clickhouse_url)
    first = migrate(store)
    assert [m.version for m in first] == [m.version for m in discover()]
    tables = {row[0] for row in store.query_rows("SHOW TABLES")}
    assert tables >= CORE_TABLES
    assert migrate(store) == []
    assert applied_versions(store) == {m.version for m in discover()}


def test_events_table_has_ttl_partitions_and_dedup(store: Store) -> None:
    (ddl,) = store.query_rows("SHOW CREATE TABLE events")[0]
    assert "PARTITION BY toYYYYMM(ts)" in ddl
    assert "ORDER BY (site, kind, ts)" in ddl
    assert "toIntervalMonth(25)" in ddl
    assert "non_replicated_deduplication_window = 10000" in ddl
    columns = dict(
        store.query_rows(
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = 'events'"
        )
    )
    assert columns["ts"] == "DateTime64(3, 'UTC')"
    assert columns["visitor_hash"] == "UInt64"
    assert columns["kind"].startswith("Enum8(")
    assert columns["site"] == "LowCardinality(String)"


def test_retention_is_configurable(clickhouse_url: str) -> None:
    store = Store(clickhouse_url)
    migrate(store, retention_months=13)
    (ddl,) = store.query_rows("SHOW CREATE TABLE events")[0]
    assert "toIntervalMonth(13)" in ddl


def test_a_failing_migration_is_not_recorded_and_runs_again(clickhouse_url: str) -> None:
    store = Store(clickhouse_url)
    broken = Migration(60, "broken", lambda schema: ["CREATE TABLE nonsense ("])
    with pytest.raises(MigrationError, match="0060_broken"):
        migrate(store, migrations=[broken])
    assert 60 not in applied_versions(store)
    fixed = Migration(
        60, "broken", lambda schema: ["CREATE TABLE IF NOT EXISTS ok (x UInt8) ENGINE = Memory"]
    )
    assert migrate(store, migrations=[fixed]) == [fixed]


def _statements(cluster: str | None) -> str:
    schema = Schema("beacon", cluster=cluster)
    return "\n".join(s for m in discover() if m.version < 20 for s in m.statements(schema))


def test_single_node_ddl_has_no_cluster_parts() -> None:
    ddl = _statements(None)
    assert "ON CLUSTER" not in ddl
    assert "Replicated" not in ddl
    assert "Distributed" not in ddl
    assert "_local" not in ddl


def test_cluster_ddl_uses_replicated_local_tables_behind_distributed_ones() -> None:
    ddl = _statements("main")
    creates = re.findall(
        r"CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\S+) (ON CLUSTER \S+)", ddl
    )
    assert creates
    assert all(on == "ON CLUSTER `main`" for _, on in creates)
    assert "CREATE TABLE IF NOT EXISTS `beacon`.`events_local` ON CLUSTER `main`" in ddl
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
        in ddl
    )
    assert (
        "CREATE TABLE IF NOT EXISTS `beacon`.`events` ON CLUSTER `main`"
        " AS `beacon`.`events_local`\n"
        "ENGINE = Distributed(`main`, `beacon`, `events_local`, visitor_hash)"
    ) in ddl
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}'" in ddl
    assert "replicated_deduplication_window = 10000" in ddl
    assert "non_replicated_deduplication_window" not in ddl


def test_cluster_views_read_and_write_local_tables() -> None:
    ddl = _statements("main")
    views = re.findall(r"CREATE MATERIALIZED VIEW .*? TO (\S+)\nAS (.*)", ddl)
    assert len(views) == 6
    for target, select in views:
        assert target.endswith("_local`")
        assert "FROM `beacon`.`events_local`" in select


def test_cluster_shared_tables_are_replicated_on_every_node() -> None:
    ddl = _statements("main")
    salts = next(s for s in ddl.split("CREATE") if "`daily_salts`" in s)
    assert (
        "ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}')"
        in salts
    )
    assert "daily_salts_local" not in ddl


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"database": "bad-name"}, id="database"),
        pytest.param({"database": "b", "cluster": "bad name"}, id="cluster"),
        pytest.param({"database": "b", "retention_months": 0}, id="retention"),
    ],
)
def test_schema_settings_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Schema(**kwargs)  # type: ignore[arg-type]


def test_helpers_refuse_malformed_definitions() -> None:
    schema = Schema("beacon")
    with pytest.raises(MigrationError):
        schema.create_table("t", [], order_by="x")
    with pytest.raises(MigrationError):
        schema.create_table("t", [("x", "UInt8")], engine="Memory", order_by="x")
    with pytest.raises(MigrationError):
        schema.create_materialized_view("v", target="t", source="events", select="SELECT 1")
