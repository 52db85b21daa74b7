"""The privacy scan: personal data in any ClickHouse table or any log line of the test run.

:func:`scan_tables` looks through every column of every table of every
database of an embedded ClickHouse directory (system databases aside), the
search running inside ClickHouse; :func:`scan_log` through the log file the
suite writes (``tests/conftest.py``, one record a line). Both return what
they found, so that a test can show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from beacon.store import Store

__all__ = ["CLIENT_LOGGERS", "Finding", "scan_log", "scan_tables"]

#: Loggers of the tests' own HTTP clients: they record the requests a test
#: sends, personal data included by design, not what the project logged.
CLIENT_LOGGERS = ("httpx", "httpcore", "hpack")
_SYSTEM_DATABASES = ("system", "INFORMATION_SCHEMA", "information_schema")
# Engines without rows of their own: reading them reads tables scanned anyway.
_NO_OWN_ROWS = ("View", "MaterializedView", "Dictionary", "Distributed", "Merge", "Buffer")


@dataclass(frozen=True, slots=True)
class Finding:
    """Where a marker was found: a table column (with a row count) or a log line."""

    place: str
    detail: str


def _text_of(column: str, kind: str) -> str:
    """SQL turning any column into text, aggregate states included (their finished value)."""
    quoted = f"`{column.replace('`', '``')}`"
    if kind.startswith(("AggregateFunction", "Nullable(AggregateFunction")):
        return f"toString(finalizeAggregation({quoted}))"
    return f"toString({quoted})"


def scan_tables(
    store: Store, markers: Sequence[str], *, databases: Sequence[str] = ()
) -> tuple[int, list[Finding]]:
    """The number of tables read, and every column holding one of ``markers`` (any case).

    Every database but the system ones, or only ``databases`` when given.
    """
    only = "AND c.database IN {only:Array(String)}" if databases else ""
    columns = store.query_rows(
        "SELECT c.database, c.table, c.name, c.type FROM system.columns AS c "
        "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database NOT IN {system:Array(String)} AND NOT t.is_temporary "
        f"AND t.engine NOT IN {{engines:Array(String)}} {only} "
        "ORDER BY c.database, c.table, c.position",
        {"system": list(_SYSTEM_DATABASES), "engines": list(_NO_OWN_ROWS), "only": list(databases)},
    )
    tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for database, table, name, kind in columns:
        tables.setdefault((database, table), []).append((name, kind))
    search = "countIf(multiSearchAnyCaseInsensitiveUTF8({}, {{m:Array(String)}}))"
    findings: list[Finding] = []
    for (database, table), fields in tables.items():
        counts = ", ".join(search.format(_text_of(name, kind)) for name, kind in fields)
        (row,) = store.query_rows(
            f"SELECT {counts} FROM `{database}`.`{table.replace('`', '``')}`",
            {"m": list(markers)},
        )
        for (name, _), count in zip(fields, row, strict=True):
            if count:
                findings.append(Finding(f"{database}.{table}.{name}", f"{count} row(s)"))
    return len(tables), findings


def scan_log(path: Path, markers: Sequence[str]) -> tuple[int, list[Finding]]:
    """The number of log records read, and every one holding one of ``markers`` (any case)."""
    lowered = [marker.lower() for marker in markers]
    findings: list[Finding] = []
    records = 0
    with path.open(encoding="utf-8", errors="replace") as log:
        for number, line in enumerate(log, start=1):
            records += 1
            logger = line.split(" ", 2)[1].rstrip(":") if line.count(" ") >= 2 else ""
            if logger.split(".")[0] in CLIENT_LOGGERS:
                continue
            text = line.lower()
            hits = [marker for marker in lowered if marker in text]
            if hits:
                findings.append(Finding(f"{path.name}:{number}", f"{hits}: {line.strip()[:300]}"))
    return records, findings
