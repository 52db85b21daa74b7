"""Fixtures of the security tests: the consent site under both adapters, a beacon, a dashboard.

Each builds on the real parts: the consent middlewares over the test site,
the beacon and the dashboard on the embedded ClickHouse engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from beacon import Beacon
from beacon.auth import AccountStore
from beacon.dashboard import create_dashboard
from beacon.migrations import migrate
from beacon.store import Store, open_store
from tests.beacon.email.email_fixtures import BASE_URL, KEY, SITE, host_app
from tests.beacon.stats.stats_dataset import ADMIN, SECRET_KEYS, log_in
from tests.consent.conftest import FakeClock, make_config
from tests.consent.sites import asgi_site, client_for, wsgi_site


@pytest.fixture(params=["asgi", "wsgi"])
def consent_client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A client of the consent test site, once per adapter."""
    config = make_config()
    clock = FakeClock()
    app = asgi_site(config, clock) if request.param == "asgi" else wsgi_site(config, clock)
    with client_for(str(request.param), app) as client:
        yield client


@pytest.fixture
def consent_served(live_server: Any) -> Iterator[httpx.Client]:
    """A client of the consent test site (ASGI) served by uvicorn, for streamed bodies."""
    server = live_server(asgi_site(make_config(), FakeClock()))
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        yield http


@pytest.fixture
def beacon_client(
    clickhouse_url: str, tmp_path: Path, live_server: Any
) -> Iterator[tuple[Beacon, httpx.Client]]:
    """A beacon on the real engine mounted at ``/b``, served over real HTTP."""
    tracker = Beacon(clickhouse_url, [KEY], SITE, base_url=BASE_URL, spool_dir=tmp_path / "spool")
    server = live_server(host_app(tracker))
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        yield tracker, http
    tracker.close(timeout=2.0)


@pytest.fixture(scope="module")
def dashboard_store(chdb_path: Path) -> Store:
    """A migrated store with an admin account, in a fresh database per test module.

    The database is left in place for the privacy scan that ends the run.
    """
    store = open_store(f"chdb://{chdb_path}?database=security_{uuid.uuid4().hex[:12]}")
    migrate(store)
    AccountStore(store).add(*ADMIN, role="admin")
    return store


@pytest.fixture
def dashboard_client(dashboard_store: Store, live_server: Any) -> Iterator[httpx.Client]:
    """A client of the dashboard (mounted at ``/stats``, k-anonymity off), not logged in."""
    dashboard = create_dashboard(
        dashboard_store, secret_keys=SECRET_KEYS, k=1, secure_cookies=False
    )
    server = live_server(Starlette(routes=[Mount("/stats", app=dashboard)]))
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        yield http


@pytest.fixture
def logged_in(dashboard_client: httpx.Client) -> httpx.Client:
    """The dashboard client, logged in as the admin."""
    response = log_in(dashboard_client, *ADMIN)
    assert response.status_code == 303
    return dashboard_client
