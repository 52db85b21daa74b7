"""Fixtures of the beacon core tests: a migrated store, beacons that clean up after them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from beacon import Beacon
from beacon.migrations import migrate
from beacon.store import Store

SITE = "mypharm.fr"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


class Clock:
    """A settable clock for the beacon (aware UTC datetimes)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 2, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def store(clickhouse_url: str) -> Store:
    """A fresh database on the session's embedded engine, with every migration applied."""
    result = Store(clickhouse_url)
    migrate(result)
    return result


@pytest.fixture
def clock() -> Clock:
    """The beacon's clock, moved by the test."""
    return Clock()


@pytest.fixture
def make_beacon(
    tmp_path: Path, clickhouse_url: str, clock: Clock
) -> Iterator[Callable[..., Beacon]]:
    """Factory of beacons on this test's database, spooling under ``tmp_path``, closed after."""
    made: list[Beacon] = []

    def make(**options: Any) -> Beacon:
        options.setdefault("clickhouse_url", clickhouse_url)
        options.setdefault("spool_dir", tmp_path / "spool")
        options.setdefault("site", SITE)
        options.setdefault("clock", clock)
        tracker = Beacon(**options)
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.close(timeout=5.0)


def all_table_text(store: Store) -> str:
    """Every row of every table of the store's database, as text."""
    tables = store.query_rows(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine NOT IN ('MaterializedView', 'View')",
        parameters={"db": store.database},
    )
    chunks = []
    for (name,) in tables:
        chunks.append(
            store.query_rows(
                f"SELECT arrayStringConcat(groupArray(toString(tuple(*))), '\\n') "
                f"FROM `{store.database}`.`{name}`"
            )[0][0]
        )
    return "\n".join(chunks)
