"""Dashboard sessions: no fixation, and logging out ends the session on the server.

A session cookie planted in a browser before login is never the one used
after it (every login issues a new session id and ends the one presented);
after logging out, a copy of the cookie no longer opens anything, in this
process at once and in every other process sharing the store.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from beacon.auth import SESSION_COOKIE, AccountStore
from beacon.dashboard import create_dashboard
from beacon.dashboard.app import Dashboard
from beacon.store import Store
from tests.beacon.stats.stats_dataset import ADMIN, SECRET_KEYS, csrf_of, log_in

VIEWER = ("session-viewer", "session viewer password")


def _session_of(response: httpx.Response) -> str:
    for name, value in response.headers.multi_items():
        if name == "set-cookie" and value.startswith(SESSION_COOKIE + "="):
            return value.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError("no session cookie was set")


def _opens(http: httpx.Client, session: str) -> bool:
    """Whether ``session`` opens a page and the API (both agree, or the test fails)."""
    http.cookies.clear()
    http.cookies.set(SESSION_COOKIE, session)
    page = http.get("/stats/campaigns").status_code
    api = http.get("/stats/api/sites").status_code
    http.cookies.clear()
    assert (page, api) in ((200, 200), (303, 401)), (page, api)
    return page == 200


@pytest.fixture(scope="module")
def viewer(dashboard_store: Store) -> tuple[str, str]:
    AccountStore(dashboard_store).add(*VIEWER, role="viewer")
    return VIEWER


@pytest.fixture
def second_worker(dashboard_store: Store, live_server: Any) -> tuple[Dashboard, str]:
    """Another dashboard process over the same store (its own caches), served apart."""
    dashboard = create_dashboard(
        dashboard_store, secret_keys=SECRET_KEYS, k=1, secure_cookies=False
    )
    server = live_server(Starlette(routes=[Mount("/stats", app=dashboard)]))
    return dashboard, server.url


def test_login_never_keeps_a_planted_session(
    dashboard_client: httpx.Client, viewer: tuple[str, str]
) -> None:
    http = dashboard_client
    planted = _session_of(log_in(http, *viewer))  # the attacker's own, genuine session
    assert _opens(http, planted)
    http.cookies.set(SESSION_COOKIE, planted, path="/stats")
    issued = _session_of(log_in(http, *ADMIN))
    assert issued != planted
    assert _opens(http, issued)
    # The planted session was presented at login: it is over, for its owner too.
    assert _opens(http, planted) is False


def test_every_login_issues_a_new_session(dashboard_client: httpx.Client) -> None:
    sessions = set()
    for _ in range(3):
        dashboard_client.cookies.clear()
        sessions.add(_session_of(log_in(dashboard_client, *ADMIN)))
    assert len(sessions) == 3
    assert all(_opens(dashboard_client, session) for session in sessions)


def test_logout_ends_a_copied_session(logged_in: httpx.Client, dashboard_store: Store) -> None:
    session = logged_in.cookies.get(SESSION_COOKIE)
    assert session
    other = httpx.Client(base_url=str(logged_in.base_url), follow_redirects=False, timeout=30)
    with other:
        assert _opens(other, session)
        page = logged_in.get("/stats/users")
        logout = logged_in.post("/stats/logout", data={"csrf": csrf_of(page.text)})
        assert logout.status_code == 303
        assert SESSION_COOKIE in logout.headers["set-cookie"]
        assert _opens(other, session) is False
    stored = str(dashboard_store.query_rows("SELECT * FROM dashboard_session_revocations"))
    assert ADMIN[0] in stored
    signed_id = session.split(".")[0]
    assert signed_id not in stored  # only a digest of the id is kept


def test_logout_reaches_every_worker(
    logged_in: httpx.Client, second_worker: tuple[Dashboard, str]
) -> None:
    dashboard, url = second_worker
    session = logged_in.cookies.get(SESSION_COOKIE)
    assert session
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as other:
        assert _opens(other, session)  # the other worker now holds it as live, for a moment
        page = logged_in.get("/stats/users")
        assert logged_in.post("/stats/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
        # Once that moment is over (no waiting here: the test ends it), the logout is seen.
        dashboard.revocations.cache_seconds = 0
        assert _opens(other, session) is False


def test_a_new_password_ends_every_session_but_a_fresh_login_works(
    dashboard_client: httpx.Client, dashboard_store: Store
) -> None:
    accounts = AccountStore(dashboard_store)
    accounts.add("rotating", "first password here")
    first = _session_of(log_in(dashboard_client, "rotating", "first password here"))
    assert dashboard_client.get("/stats/campaigns").status_code == 200
    accounts.set_password("rotating", "second password here")
    dashboard_client.cookies.clear()
    dashboard_client.cookies.set(SESSION_COOKIE, first, path="/stats")
    assert dashboard_client.get("/stats/campaigns").status_code == 303
    dashboard_client.cookies.clear()
    log_in(dashboard_client, "rotating", "second password here")
    assert dashboard_client.get("/stats/campaigns").status_code == 200
