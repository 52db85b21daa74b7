"""Fixtures of the statistics tests: the hand-built dataset in a real embedded database,
accounts, and the dashboard served over real HTTP (see ``stats_dataset`` for the numbers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon.migrations import migrate
from beacon.store import Store, open_store

from .stats_dataset import ADMIN, SECRET_KEYS, VIEWER, fill_dataset


@pytest.fixture(scope="session")
def stats_url(chdb_path: Path) -> str:
    """A database holding the hand-built event set, shared by the read-only tests."""
    return f"chdb://{chdb_path}?database=stats_dataset"


@pytest.fixture(scope="session")
def stats_store(stats_url: str) -> Iterator[Store]:
    """The store of :func:`stats_url`, migrated and filled once per test session."""
    store = open_store(stats_url)
    migrate(store)
    fill_dataset(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS `{store.database}`")


@pytest.fixture(scope="session")
def stats_accounts(stats_store: Store) -> dict[str, str]:
    """An admin and a viewer account in the dataset's database; returns the API token of each."""
    from beacon.auth import AccountStore

    accounts = AccountStore(stats_store)
    accounts.add(*ADMIN, role="admin")
    accounts.add(*VIEWER, role="viewer")
    return {name: accounts.create_token(name, "tests") for name, _ in (ADMIN, VIEWER)}


@pytest.fixture
def dashboard(stats_store: Store, stats_accounts: dict[str, str]) -> Any:
    """The dashboard over the dataset, plain HTTP cookies (TestClient speaks http)."""
    from beacon.dashboard import create_dashboard

    return create_dashboard(stats_store, secret_keys=SECRET_KEYS, secure_cookies=False)


@pytest.fixture
def site_app(dashboard: Any) -> Any:
    """A host app mounting the dashboard at /stats, as a site would."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    return Starlette(routes=[Mount("/stats", app=dashboard)])


@pytest.fixture
def client(site_app: Any, live_server: Any) -> Iterator[httpx.Client]:
    """An HTTP client of the host app served on a loopback port; redirects are not followed."""
    server = live_server(site_app)
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        yield http
