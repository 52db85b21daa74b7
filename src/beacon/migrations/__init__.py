"""Numbered, idempotent schema migrations for the beacon database.

Adding a migration
------------------
1. Create ``src/beacon/migrations/mNNNN_short_name.py`` with the next free
   number of your range (0001-0019 core, 0020-0029 e-mail, 0030-0049
   statistics, 0050-0059 consent receipts). The module docstring says what it
   creates and why.
2. Define ``def statements(schema: Schema) -> list[str]``, built with the
   :class:`Schema` helpers so the same migration works on the embedded engine,
   a single server and a cluster::

       from beacon.migrations import Schema

       def statements(schema: Schema) -> list[str]:
           return [
               *schema.create_table(
                   "pages_hourly",
                   [("hour", "DateTime('UTC')"), ("site", "LowCardinality(String)"),
                    ("views", "SimpleAggregateFunction(sum, UInt64)")],
                   engine="AggregatingMergeTree",
                   order_by="(site, hour)",
               ),
               *schema.create_materialized_view(
                   "pages_hourly_mv",
                   target="pages_hourly",
                   source="events",
                   select="SELECT toStartOfHour(ts) AS hour, site, count() AS views "
                   "FROM {source} GROUP BY hour, site",
               ),
           ]

3. Every statement must be idempotent (the helpers emit ``IF NOT EXISTS``);
   a migration is recorded in ``schema_migrations`` only after all its
   statements ran, so a half-applied one is simply run again.

Migrations run with ``beacon init-db [--url URL] [--cluster NAME]`` and when a
:class:`~beacon.Beacon` starts. Never edit a migration once released: add one.

Cluster mode
------------
With a cluster name, :meth:`Schema.create_table` makes ``NAME_local`` (a
``Replicated*MergeTree`` on every node, ``{shard}``/``{replica}`` macros) and
``NAME``, a ``Distributed`` table over it; materialized views read the local
source table and write into the local target table, so each shard aggregates
its own rows and reads through ``NAME`` see the whole cluster. Readers and
writers always use the plain ``NAME``. Small tables every node must see in
full (``everywhere=True``: salts, applied migrations) are one replicated
table spanning all nodes instead.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from beacon.exceptions import ConfigurationError, MigrationError, StoreError

if TYPE_CHECKING:
    from beacon.store import Store

__all__ = [
    "DEDUP_WINDOW",
    "DEFAULT_RETENTION_MONTHS",
    "Migration",
    "Schema",
    "applied_versions",
    "discover",
    "migrate",
]

#: The CNIL's longest retention for audience-measurement data.
DEFAULT_RETENTION_MONTHS = 25
#: How many recent insert tokens each table remembers to drop replayed batches.
DEDUP_WINDOW = 10_000

_MODULE = re.compile(r"^m(\d{4})_([a-z0-9_]+)$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ConfigurationError(f"bad {what} {value!r}: use letters, digits and underscores")
    return value


@dataclass(frozen=True, slots=True)
class Schema:
    """Renders DDL for one database, on a single node or on a cluster.

    ``retention_months`` is the TTL of raw events; ``dedup_window`` is the
    number of insert tokens each table keeps for replay deduplication.
    """

    database: str
    cluster: str | None = None
    retention_months: int = DEFAULT_RETENTION_MONTHS
    dedup_window: int = DEDUP_WINDOW

    def __post_init__(self) -> None:
        _check_identifier(self.database, "database name")
        if self.cluster is not None and not re.match(
            r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", self.cluster
        ):
            raise ConfigurationError(f"bad cluster name {self.cluster!r}")
        if not 1 <= self.retention_months <= 1200:
            raise ConfigurationError("retention_months must be between 1 and 1200")

    @property
    def on_cluster(self) -> str:
        """`` ON CLUSTER `name```, or an empty string on a single node."""
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    def qualified(self, name: str) -> str:
        """``database.name``, quoted: the table readers and writers use."""
        return f"`{self.database}`.`{_check_identifier(name, 'table name')}`"

    def local_name(self, name: str) -> str:
        """The name of the table holding this node's rows (``NAME_local`` on a cluster)."""
        return f"{name}_local" if self.cluster else name

    def local(self, name: str) -> str:
        """The qualified local table (what materialized views read and write)."""
        return self.qualified(self.local_name(name))

    def _engine(self, engine: str, engine_args: str, everywhere: bool) -> str:
        if not engine.endswith("MergeTree"):
            raise MigrationError(f"create_table handles *MergeTree engines, not {engine!r}")
        if not self.cluster:
            return f"{engine}({engine_args})"
        if everywhere:
            path, replica = "/clickhouse/tables/all/{database}/{table}", "{shard}-{replica}"
        else:
            path, replica = "/clickhouse/tables/{shard}/{database}/{table}", "{replica}"
        args = f"'{path}', '{replica}'" + (f", {engine_args}" if engine_args else "")
        return f"Replicated{engine}({args})"

    def create_table(
        self,
        name: str,
        columns: Sequence[tuple[str, str]],
        *,
        engine: str = "MergeTree",
        engine_args: str = "",
        order_by: str,
        partition_by: str | None = None,
        ttl: str | None = None,
        settings: dict[str, str | int] | None = None,
        sharding_key: str = "rand()",
        everywhere: bool = False,
    ) -> list[str]:
        """DDL for a ``*MergeTree`` table ``name`` (plus its Distributed front on a cluster).

        ``columns`` are ``(name, type)`` pairs; ``engine_args`` are the
        engine's own arguments (e.g. the version column of a
        ``ReplacingMergeTree``). Deduplication of replayed inserts is always
        switched on. ``everywhere`` makes one table replicated on all nodes of
        the cluster (for small shared tables) instead of a sharded one.
        """
        if not columns:
            raise MigrationError(f"table {name} needs columns")
        column_sql = ",\n    ".join(
            f"`{_check_identifier(col, 'column name')}` {kind}" for col, kind in columns
        )
        window = (
            "replicated_deduplication_window"
            if self.cluster
            else ("non_replicated_deduplication_window")
        )
        all_settings: dict[str, str | int] = {window: self.dedup_window, **(settings or {})}
        clauses = [f"ENGINE = {self._engine(engine, engine_args, everywhere)}"]
        if partition_by:
            clauses.append(f"PARTITION BY {partition_by}")
        clauses.append(f"ORDER BY {order_by}")
        if ttl:
            clauses.append(f"TTL {ttl}")
        clauses.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in all_settings.items()))
        table = name if everywhere else self.local_name(name)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.qualified(table)}{self.on_cluster}\n"
            f"(\n    {column_sql}\n)\n" + "\n".join(clauses)
        ]
        if self.cluster and not everywhere:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {self.qualified(name)}{self.on_cluster}"
                f" AS {self.local(name)}\n"
                f"ENGINE = Distributed(`{self.cluster}`, `{self.database}`, "
                f"`{self.local_name(name)}`, {sharding_key})"
            )
        return statements

    def create_materialized_view(
        self, name: str, *, target: str, source: str, select: str
    ) -> list[str]:
        """DDL for a materialized view feeding ``target`` from inserts into ``source``.

        ``select`` names its source table as ``{source}``; on a cluster it is
        the local table, and the view writes into the local target table.
        """
        if "{source}" not in select:
            raise MigrationError(f"the select of {name} must read FROM {{source}}")
        body = select.replace("{source}", self.local(source))
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self.qualified(name)}{self.on_cluster}"
            f" TO {self.local(target)}\nAS {body}"
        ]


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration: its version, name and DDL renderer."""

    version: int
    name: str
    statements: Callable[[Schema], list[str]]


def discover() -> list[Migration]:
    """All migrations of this package, sorted by version (duplicates are an error)."""
    found: dict[int, Migration] = {}
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE.match(info.name)
        if not match:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        render = getattr(module, "statements", None)
        if not callable(render):
            raise MigrationError(f"migration {info.name} has no statements(schema) function")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}")
        found[version] = Migration(version=version, name=match.group(2), statements=render)
    return [found[v] for v in sorted(found)]


def _ledger(schema: Schema) -> list[str]:
    return schema.create_table(
        "schema_migrations",
        [("version", "UInt32"), ("name", "String"), ("applied_at", "DateTime64(3, 'UTC')")],
        engine="ReplacingMergeTree",
        order_by="version",
        everywhere=True,
    )


def applied_versions(store: Store) -> set[int]:
    """Versions already recorded in ``schema_migrations`` (empty when it does not exist)."""
    rows = store.query_rows(
        "SELECT name FROM system.tables "
        "WHERE database = {db:String} AND name = 'schema_migrations'",
        parameters={"db": store.database},
    )
    if not rows:
        return set()
    return {
        int(row[0])
        for row in store.query_rows(
            f"SELECT DISTINCT version FROM `{store.database}`.schema_migrations"
        )
    }


def migrate(
    store: Store,
    *,
    cluster: str | None = None,
    retention_months: int = DEFAULT_RETENTION_MONTHS,
    migrations: Sequence[Migration] | None = None,
) -> list[Migration]:
    """Apply every migration not yet recorded; return those applied, in order.

    ``cluster`` overrides the store URL's ``?cluster=``. Safe to run
    concurrently from several nodes: statements are idempotent and the ledger
    tolerates duplicate rows.
    """
    schema = Schema(
        database=store.database,
        cluster=cluster or store.cluster,
        retention_months=retention_months,
    )
    for statement in _ledger(schema):
        store.command(statement)
    done = applied_versions(store)
    applied: list[Migration] = []
    for migration in migrations if migrations is not None else discover():
        if migration.version in done:
            continue
        for statement in migration.statements(schema):
            try:
                store.command(statement)
            except StoreError:
                raise
            except Exception as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
        store.command(
            f"INSERT INTO `{store.database}`.schema_migrations (version, name, applied_at) "
            "VALUES ({version:UInt32}, {name:String}, now64(3))",
            parameters={"version": migration.version, "name": migration.name},
        )
        applied.append(migration)
    return applied
