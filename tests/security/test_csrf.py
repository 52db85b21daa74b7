"""Cross-site request forgery on every state-changing route.

The routes are found in the apps themselves (the consent middleware's
endpoints, the beacon's built-in and e-mail routes, every dashboard route
including the JSON API), and every one that accepts an unsafe method must
be listed here either as protected, then each forgery below is refused with
``403`` and changes nothing, or as intentionally exempt, then the property
that makes the exemption safe is asserted instead. A route added later
without an entry fails :func:`test_every_unsafe_route_is_accounted_for`.
"""

from __future__ import annotations

import ast
import inspect
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

import beacon.app
from beacon import Beacon
from beacon.auth import CSRF_COOKIE, SESSION_COOKIE, AccountStore, SessionSigner
from beacon.dashboard import create_dashboard
from beacon.email.tokens import EmailTokenSigner
from beacon.migrations import migrate
from beacon.receipts.store import ReceiptStore
from beacon.store import Store
from mypharm_consent import ConsentConfig
from mypharm_consent.cookie import ConsentCookie, new_consent_id
from mypharm_consent.csrf import TOKEN_MAX_AGE, CsrfGuard
from mypharm_consent.engine import ConsentEngine
from tests.beacon.email.email_fixtures import KEY
from tests.beacon.receipts.receipt_helpers import insert_receipts, make_receipt
from tests.beacon.stats.stats_dataset import ADMIN, SECRET_KEYS, csrf_of
from tests.consent.conftest import FakeClock, form_token, make_config
from tests.consent.sites import asgi_site, client_for, wsgi_site

FORM = "application/x-www-form-urlencoded"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
OTHER_KEY = "a-key-this-site-never-had-0123456789"

#: Consent endpoints that change state, each refusing every forgery.
CONSENT_PROTECTED = frozenset({"/_consent/decide", "/_consent/erase", "/_consent/erase/cancel"})
#: Dashboard routes (relative to the mount) that change state, each refusing every forgery.
DASHBOARD_PROTECTED = frozenset(
    {"/login", "/logout", "/users", "/users/{name}/remove", "/users/{name}/token"}
)
#: Beacon routes taking unsafe methods on purpose from anywhere, and why that is safe.
BEACON_EXEMPT = {
    "/e": "anonymous page view as sendBeacon posts it: no credential read, no cookie set",
    "/u/{token}": "RFC 8058 one-click unsubscribe, posted by mail providers from anywhere: "
    "bound to a signed token and idempotent",
}

#: Each forgery: request headers, and which form token goes with them.
FORGERIES = {
    "cross-site fetch": ({"sec-fetch-site": "cross-site"}, "genuine"),
    "same-site fetch": ({"sec-fetch-site": "same-site"}, "genuine"),
    "foreign origin": ({"origin": "https://evil.example"}, "genuine"),
    "null origin": ({"origin": "null"}, "genuine"),
    "missing token": ({}, None),
    "token of another key": ({}, "other-key"),
    "expired token": ({}, "expired"),
}
SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


# -- enumeration -----------------------------------------------------------------------


def _consent_paths(engine: ConsentEngine) -> set[str]:
    """Every endpoint path the consent engine names (its own and its history's)."""
    prefix = engine.config.prefix + "/"
    owners = [engine, engine.history]
    return {
        value
        for owner in owners
        for value in vars(owner).values()
        if isinstance(value, str) and value.startswith(prefix) and value != prefix
    }


def _beacon_builtin_paths() -> set[str]:
    """Path-like literals of the beacon's module: the endpoints it dispatches itself."""
    tree = ast.parse(inspect.getsource(beacon.app))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"/[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*", node.value)
    }


def _unsafe_routes(routes: list[Any]) -> set[str]:
    found = set()
    for route in routes:
        if isinstance(route, Route) and set(route.methods or ()) & set(UNSAFE):
            found.add(route.path)
        elif isinstance(route, Mount):
            found |= {route.path + path for path in _unsafe_routes(list(route.routes))}
    return found


@pytest.fixture(scope="module")
def receipts_store(chdb_path: Path) -> Store:
    """A migrated database for the consent history (receipts) of this module."""
    store = Store(f"chdb://{chdb_path}?database=csrf_{uuid.uuid4().hex[:12]}")
    migrate(store)
    return store


def _history_config(store: Store) -> ConsentConfig:
    return make_config(receipts=ReceiptStore(store))


def test_every_unsafe_route_is_accounted_for(
    receipts_store: Store, dashboard_store: Store, beacon_client: tuple[Beacon, httpx.Client]
) -> None:
    # Consent: every endpoint the engine names, probed with a POST carrying no token.
    clock = FakeClock()
    config = _history_config(receipts_store)
    engine = ConsentEngine(config, clock=clock)
    consent_paths = _consent_paths(engine)
    assert "/_consent/decide" in consent_paths
    accepting = set()
    with client_for("asgi", asgi_site(config, clock)) as client:
        for path in consent_paths:
            target = path + "consent.js" if path.endswith("/") else path
            answer = client.post(target, content=b"x=1", headers={"content-type": FORM})
            assert answer.status_code in (403, 405), (path, answer.status_code)
            if answer.status_code != 405:
                accepting.add(path)
    assert accepting == CONSENT_PROTECTED

    # Dashboard: its Starlette routes, the JSON API included.
    dashboard = create_dashboard(dashboard_store, secret_keys=SECRET_KEYS, secure_cookies=False)
    assert any(getattr(route, "path", "").startswith("/api/") for route in dashboard.routes)
    assert _unsafe_routes(dashboard.routes) == DASHBOARD_PROTECTED

    # Beacon: the endpoints it dispatches itself (probed), then its added routes.
    tracker, http = beacon_client
    builtin = _beacon_builtin_paths()
    assert {"/p.gif", "/e"} <= builtin
    taking_posts = set()
    for path in builtin:
        answer = http.post("/b" + path, content=b"{}", headers={"content-type": "text/plain"})
        assert answer.status_code < 500, path
        if answer.status_code not in (404, 405):
            taking_posts.add(path)
    taking_posts |= _unsafe_routes(tracker.router.routes)
    assert taking_posts == set(BEACON_EXEMPT)


# -- the consent endpoints -------------------------------------------------------------


@dataclass
class ConsentSite:
    """A client of the consent test site with history, and what it needs to forge."""

    client: httpx.Client
    config: ConsentConfig
    clock: FakeClock
    receipts: ReceiptStore
    consent_id: str

    def token(self, kind: str | None) -> str | None:
        if kind == "genuine":
            return form_token(self.client.get("/_consent/preferences").text)
        if kind == "other-key":
            return CsrfGuard(make_config(secret_keys=[OTHER_KEY]), clock=self.clock).token()
        if kind == "expired":
            signed_long_ago = self.clock.now - TOKEN_MAX_AGE - 1
            return CsrfGuard(self.config, clock=lambda: signed_long_ago).token()
        return None

    def post(self, path: str, token: str | None, headers: dict[str, str]) -> httpx.Response:
        fields = {"action": "accept_all", "next": "/", **({"csrf": token} if token else {})}
        return self.client.post(
            path,
            content=str(httpx.QueryParams(fields)).encode(),
            headers={"content-type": FORM, **headers},
        )


@pytest.fixture(params=["asgi", "wsgi"])
def consent_site(request: pytest.FixtureRequest, receipts_store: Store) -> Iterator[ConsentSite]:
    """The consent site (history on), a visitor with a consent cookie and one stored receipt."""
    clock = FakeClock()
    config = _history_config(receipts_store)
    app = asgi_site(config, clock) if request.param == "asgi" else wsgi_site(config, clock)
    consent_id = new_consent_id()
    insert_receipts(receipts_store, make_receipt(consent_id))
    with client_for(str(request.param), app) as client:
        cookie = ConsentCookie(config, clock=clock).encode(consent_id, frozenset({"analytics"}))
        client.cookies.set(config.cookie_name, cookie)
        yield ConsentSite(client, config, clock, ReceiptStore(receipts_store), consent_id)


def _consent_state(site: ConsentSite, path: str) -> Callable[[httpx.Response], Any]:
    """What must not change when a forgery to ``path`` is refused."""
    if path == "/_consent/decide":
        return lambda response: response.headers.get("set-cookie")
    return lambda response: site.receipts.erasure_status(site.consent_id).state


@pytest.mark.parametrize("path", sorted(CONSENT_PROTECTED))
def test_consent_endpoints_refuse_every_forgery(consent_site: ConsentSite, path: str) -> None:
    if path == "/_consent/erase/cancel":
        consent_site.receipts.request_erasure(consent_site.consent_id)
    state = _consent_state(consent_site, path)
    before = state(httpx.Response(200))
    for name, (headers, kind) in FORGERIES.items():
        response = consent_site.post(path, consent_site.token(kind), headers)
        assert response.status_code == 403, name
        assert "set-cookie" not in response.headers, name
        assert state(response) == before, name
    genuine = consent_site.post(path, consent_site.token("genuine"), SAME_ORIGIN)
    assert genuine.status_code == 303
    assert state(genuine) != before


# -- the dashboard ---------------------------------------------------------------------


def _csrf_cookie(client: httpx.Client) -> str:
    value = client.cookies.get(CSRF_COOKIE)
    assert value
    return value


def _dashboard_token(client: httpx.Client, kind: str | None) -> str | None:
    cookie = _csrf_cookie(client)
    if kind == "genuine":
        return csrf_of(client.get("/stats/login").text)
    if kind == "other-key":
        return SessionSigner([OTHER_KEY]).csrf_token(cookie)
    if kind == "expired":
        max_age = SessionSigner(SECRET_KEYS).max_age
        old = SessionSigner(SECRET_KEYS, clock=lambda: time.time() - max_age - 1)
        return old.csrf_token(cookie)
    if kind == "other-session":
        other = SessionSigner(SECRET_KEYS)
        return other.csrf_token(other.new_csrf_value())
    return None


@dataclass
class DashboardCase:
    """One state-changing dashboard route: its form, and the state a forgery must not change."""

    path: str
    fields: dict[str, str]
    success: int
    state: Callable[[httpx.Client, httpx.Response], Any]


def _token_count(store: Store, name: str) -> int:
    rows = store.query_rows(
        "SELECT count() FROM dashboard_tokens WHERE name = {name:String}", {"name": name}
    )
    return int(rows[0][0])


def _dashboard_cases(store: Store) -> dict[str, DashboardCase]:
    accounts = AccountStore(store)
    suffix = uuid.uuid4().hex[:8]
    target = f"target-{suffix}"
    accounts.add(target, "target's password")
    newcomer = f"mallory-{suffix}"
    return {
        "/login": DashboardCase(
            "/stats/login",
            {"username": ADMIN[0], "password": ADMIN[1], "next": "/stats/"},
            303,
            lambda client, response: SESSION_COOKIE in response.headers.get("set-cookie", ""),
        ),
        "/logout": DashboardCase(
            "/stats/logout",
            {},
            303,
            lambda client, response: client.get("/stats/users").status_code,
        ),
        "/users": DashboardCase(
            "/stats/users",
            {"name": newcomer, "password": "mallory's password", "role": "admin"},
            200,
            lambda client, response: accounts.get(newcomer) is not None,
        ),
        "/users/{name}/remove": DashboardCase(
            f"/stats/users/{target}/remove",
            {},
            200,
            lambda client, response: accounts.get(target) is not None,
        ),
        "/users/{name}/token": DashboardCase(
            f"/stats/users/{target}/token",
            {},
            200,
            lambda client, response: _token_count(store, target),
        ),
    }


@pytest.mark.parametrize("route", sorted(DASHBOARD_PROTECTED))
def test_dashboard_routes_refuse_every_forgery(
    dashboard_store: Store, dashboard_client: httpx.Client, route: str
) -> None:
    case = _dashboard_cases(dashboard_store)[route]
    client = dashboard_client
    if route != "/login":
        form = client.get("/stats/login")
        response = client.post(
            "/stats/login",
            data={"username": ADMIN[0], "password": ADMIN[1], "csrf": csrf_of(form.text)},
        )
        assert response.status_code == 303
    else:
        client.get("/stats/login")
    forgeries = {**FORGERIES, "token of another session": ({}, "other-session")}
    before = case.state(client, httpx.Response(200))
    for name, (headers, kind) in forgeries.items():
        token = _dashboard_token(client, kind)
        fields = {**case.fields, **({"csrf": token} if token else {})}
        response = client.post(case.path, data=fields, headers=headers)
        assert response.status_code == 403, name
        assert "location" not in response.headers, name
        assert case.state(client, response) == before, name
    token = _dashboard_token(client, "genuine")
    genuine = client.post(case.path, data={**case.fields, "csrf": token or ""}, headers=SAME_ORIGIN)
    assert genuine.status_code == case.success
    assert case.state(client, genuine) != before


# -- the exempt beacon routes ----------------------------------------------------------


def test_event_posts_carry_no_authority(beacon_client: tuple[Beacon, httpx.Client]) -> None:
    tracker, http = beacon_client
    body = b'{"u": "/produits", "r": "https://www.example.net/"}'
    http.cookies.set("mypharm_consent", "anything")
    http.cookies.set(SESSION_COOKIE, "anything")
    answers = [
        http.post("/b/e", content=body, headers={"content-type": "text/plain", **headers})
        for headers in (SAME_ORIGIN, {"sec-fetch-site": "cross-site", "origin": "https://x.test"})
    ]
    for answer in answers:
        assert answer.status_code == 204
        assert answer.content == b""
        assert "set-cookie" not in answer.headers
    # The same anonymous answer either way: nothing about the visitor is disclosed.
    assert answers[0].headers == answers[1].headers
    assert tracker.counters()["recorded"] == 2


def test_one_click_unsubscribe_is_token_bound_and_idempotent(
    beacon_client: tuple[Beacon, httpx.Client],
) -> None:
    tracker, http = beacon_client
    email = tracker.email
    recipient = email.ref("alice@example.org")
    ours = EmailTokenSigner([KEY])
    cross_site = {
        "content-type": FORM,
        "sec-fetch-site": "cross-site",
        "origin": "https://mail.example",
    }
    forged = [
        "",
        "x",
        "AAAA.BBBB",
        EmailTokenSigner([OTHER_KEY]).unsubscribe_token("lettre", recipient),
        ours.open_token("lettre", recipient),
        ours.click_token("lettre", recipient, "https://mypharm.fr/a", 0),
    ]
    for token in forged:
        response = http.post(
            f"/b/u/{token}", content=b"List-Unsubscribe=One-Click", headers=cross_site
        )
        assert response.status_code in (400, 404, 405), token
        assert "set-cookie" not in response.headers
    genuine = ours.unsubscribe_token("lettre", recipient)
    # A mail provider posts from anywhere: cross-site is accepted, replays change nothing.
    for _ in range(3):
        response = http.post(
            f"/b/u/{genuine}", content=b"List-Unsubscribe=One-Click", headers=cross_site
        )
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
    tracker.close()
    (entry,) = email.unsubscribed()
    assert (entry.recipient, entry.campaign) == (recipient, "lettre")
    assert email.is_unsubscribed("alice@example.org")
    assert not email.is_unsubscribed("bob@example.org")
    rows = tracker.store.query_rows(
        "SELECT uniqExact(recipient) FROM events WHERE kind = 'unsubscribe' AND campaign = 'lettre'"
    )
    assert rows == [(1,)]
