"""Fixtures of the receipt tests: a migrated store, a clock that tests move, receipts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from beacon.migrations import migrate
from beacon.receipts.store import ReceiptStore
from beacon.store import Store

from .receipt_helpers import START


@dataclass
class MovableClock:
    """A clock tests move forward explicitly."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture(scope="session")
def _migrated(chdb_path: Path) -> Store:
    """One migrated database for the receipt tests (migrating costs about a second)."""
    beacon_store = Store(f"chdb://{chdb_path}?database=receipts_{uuid.uuid4().hex[:8]}")
    migrate(beacon_store)
    return beacon_store


@pytest.fixture
def store(_migrated: Store) -> Store:
    """The migrated database, its receipt tables emptied."""
    for table in ("consent_receipts", "banner_versions", "receipt_erasures"):
        _migrated.command(f"TRUNCATE TABLE `{_migrated.database}`.`{table}`")
    return _migrated


@pytest.fixture
def receipts(store: Store, clock: MovableClock) -> ReceiptStore:
    return ReceiptStore(store, clock=clock)
