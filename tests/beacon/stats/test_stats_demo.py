"""Demo data is generated once, labelled, and comes with a working demo account."""

from __future__ import annotations

import collections
from datetime import UTC, datetime

from beacon.auth import AccountStore
from beacon.demo import DEMO_SITE, seed_demo, synthetic_events
from beacon.stats import DateRange, StatsQueries
from beacon.store import Store

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_synthetic_events_are_seeded_and_well_formed():
    first = b"".join(synthetic_events(2000, seed=3, end=NOW, days=30))
    again = b"".join(synthetic_events(2000, seed=3, end=NOW, days=30, block_size=7))
    assert first == again
    assert first != b"".join(synthetic_events(2000, seed=4, end=NOW, days=30))
    lines = first.decode().splitlines()
    assert len(lines) == 2000
    assert {len(line.split("\t")) for line in lines} == {20}
    kinds = collections.Counter(line.split("\t")[2] for line in lines)
    assert set(kinds) == {"pageview", "ad_click", "open", "click", "unsubscribe"}
    assert all(line.split("\t")[1] == DEMO_SITE for line in lines)
    assert max(line[:10] for line in lines) <= "2026-11-20"


def test_seed_demo_once_with_a_fresh_password(clickhouse_url):
    store = Store(clickhouse_url)
    account = seed_demo(store, events=3000, now=NOW)
    accounts = AccountStore(store)
    assert accounts.authenticate(account.name, account.password).role == "admin"
    events = store.query_rows("SELECT count() FROM events")[0][0]
    assert events == 3000
    again = seed_demo(store, events=3000, now=NOW)
    assert store.query_rows("SELECT count() FROM events")[0][0] == events
    assert again.password != account.password
    assert accounts.authenticate(account.name, account.password) is None
    queries = StatsQueries(store, today=lambda: NOW.date())
    totals = queries.site_totals(DateRange.last_days(30, today=NOW.date()), site=DEMO_SITE)
    assert totals.pageviews > 1000
    assert all(c.campaign.startswith("demo-") for c in queries.campaigns())
    assert queries.consent(DateRange.last_days(30, today=NOW.date())).decisions == 400


def test_demo_dashboard_is_labelled(stats_store, stats_accounts, live_server):
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from beacon.dashboard import create_dashboard

    from .stats_dataset import ADMIN, log_in

    dashboard = create_dashboard(stats_store, secret_keys=["k"], secure_cookies=False, demo=True)
    server = live_server(Starlette(routes=[Mount("/stats", app=dashboard)]))
    with httpx.Client(base_url=server.url) as client:
        log_in(client, *ADMIN)
        page = client.get("/stats/")
        assert 'class="demo"' in page.text
        assert "Données de démonstration" in page.text
