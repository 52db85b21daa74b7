"""Nobody reads statistics without logging in; viewers cannot manage accounts."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Mount, Route

from beacon.auth import SESSION_COOKIE
from beacon.dashboard.app import PUBLIC_PATHS

from .stats_dataset import ADMIN, CAMPAIGN, VIEWER, csrf_of, log_in

SAMPLES = {"name": CAMPAIGN, "dimension": "page", "path": "dashboard.css"}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda match: SAMPLES[match.group(1)], path)


def _protected_requests(dashboard) -> list[tuple[str, str]]:
    requests = []
    for route in dashboard.routes:
        if isinstance(route, Mount):
            assert route.path == "/static", "only the stylesheet directory is mounted"
            continue
        assert isinstance(route, Route)
        if route.path in PUBLIC_PATHS:
            continue
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                requests.append((method, _concrete(route.path)))
    return requests


def test_every_route_is_enumerated(dashboard):
    requests = _protected_requests(dashboard)
    assert ("GET", "/api/openapi.json") in requests
    assert ("POST", "/users") in requests
    assert len(requests) >= 25


def test_anonymous_requests_are_refused_everywhere(dashboard, client):
    for method, path in _protected_requests(dashboard):
        response = client.request(method, "/stats" + path)
        if path.startswith("/api"):
            assert response.status_code == 401, (method, path)
            assert response.json() == {"error": "authentication required"}
            assert response.headers["www-authenticate"].startswith("Bearer")
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/stats/login?next=")


@pytest.mark.parametrize(
    "cookie",
    ["garbage", "eyJ1IjoiYWxpY2UiLCJzIjoieCJ9.aaaa.bbbb", ""],
    ids=["garbage", "forged-signature", "empty"],
)
def test_a_bad_session_cookie_is_no_session(client, cookie):
    client.cookies.set(SESSION_COOKIE, cookie, path="/stats")
    assert client.get("/stats/api/campaigns").status_code == 401
    assert client.get("/stats/campaigns").status_code == 303


def test_public_paths_only_show_the_login_form(client):
    login = client.get("/stats/login")
    assert login.status_code == 200
    assert 'name="password"' in login.text
    assert CAMPAIGN not in login.text
    assert client.get("/stats/static/dashboard.css").status_code == 200
    assert client.get("/stats/lang?to=en&next=/stats/").status_code == 303


def test_bearer_tokens_open_the_api(client, stats_accounts):
    headers = {"Authorization": f"Bearer {stats_accounts[VIEWER[0]]}"}
    assert client.get("/stats/api/campaigns", headers=headers).status_code == 200
    wrong = {"Authorization": "Bearer bst_not-a-real-token"}
    assert client.get("/stats/api/campaigns", headers=wrong).status_code == 401
    assert (
        client.get("/stats/api/campaigns", headers={"Authorization": "Basic eDp5"}).status_code
        == 401
    )


def test_login_sets_a_protected_session_cookie(client):
    response = log_in(client, *VIEWER)
    assert response.status_code == 303
    assert response.headers["location"] == "/stats/"
    cookie = next(value for name, value in response.headers.multi_items() if name == "set-cookie")
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Path=/stats" in cookie
    assert client.get("/stats/campaigns").status_code == 200


def test_secure_cookies_by_default(stats_store, stats_accounts, live_server):
    from starlette.applications import Starlette

    from beacon.dashboard import create_dashboard

    app = Starlette(routes=[Mount("/stats", app=create_dashboard(stats_store, secret_keys=["k"]))])
    import httpx

    server = live_server(app)
    with httpx.Client(base_url=server.url) as http:
        page = http.get("/stats/login")
        assert "Secure" in page.headers["set-cookie"]


def test_login_redirects_to_the_page_asked_for_but_never_off_site(client):
    page = client.get("/stats/login?next=/stats/site")
    assert 'name="next" value="/stats/site"' in page.text
    for target in ("https://evil.example/", "//evil.example/", "/elsewhere", "/stats\\@evil"):
        response = client.post(
            "/stats/login",
            data={
                "username": ADMIN[0],
                "password": ADMIN[1],
                "csrf": csrf_of(page.text),
                "next": target,
            },
        )
        assert response.headers["location"] == "/stats/"
        client.cookies.delete(SESSION_COOKIE)


def test_wrong_password_is_refused(client):
    response = log_in(client, ADMIN[0], "not the password")
    assert response.status_code == 401
    assert "incorrect" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_login_without_csrf_token_is_refused(client):
    client.get("/stats/login")
    response = client.post("/stats/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 403
    forged = client.post(
        "/stats/login",
        data={"username": ADMIN[0], "password": ADMIN[1], "csrf": "x.y"},
    )
    assert forged.status_code == 403


def test_cross_site_login_post_is_refused(client):
    page = client.get("/stats/login")
    response = client.post(
        "/stats/login",
        data={"username": ADMIN[0], "password": ADMIN[1], "csrf": csrf_of(page.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


def test_logout_ends_the_session(client):
    log_in(client, *VIEWER)
    page = client.get("/stats/campaigns")
    assert client.post("/stats/logout", data={}).status_code == 403  # no CSRF token
    response = client.post("/stats/logout", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/stats/login"
    assert client.get("/stats/campaigns").status_code == 303


def test_failed_logins_are_throttled_per_account(client):
    for _ in range(5):
        assert log_in(client, ADMIN[0], "wrong password").status_code == 401
    blocked = log_in(client, *ADMIN)  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Réessayez dans" in blocked.text
    assert log_in(client, *VIEWER).status_code == 303  # another account is not blocked


def test_viewer_cannot_manage_accounts(client):
    log_in(client, *VIEWER)
    page = client.get("/stats/campaigns")
    csrf = csrf_of(page.text)
    assert client.get("/stats/users").status_code == 403
    add = client.post(
        "/stats/users",
        data={"csrf": csrf, "name": "mallory", "password": "mallory password", "role": "admin"},
    )
    assert add.status_code == 403
    assert client.post(f"/stats/users/{ADMIN[0]}/remove", data={"csrf": csrf}).status_code == 403
    assert client.post(f"/stats/users/{ADMIN[0]}/token", data={"csrf": csrf}).status_code == 403
    assert 'href="/stats/users"' not in page.text


def test_admin_manages_accounts(client, stats_store):
    from beacon.auth import AccountStore

    log_in(client, *ADMIN)
    page = client.get("/stats/users")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    assert client.post("/stats/users", data={"name": "carol", "password": "x"}).status_code == 403
    weak = client.post(
        "/stats/users", data={"csrf": csrf, "name": "carol", "password": "short", "role": "viewer"}
    )
    assert weak.status_code == 400
    added = client.post(
        "/stats/users",
        data={"csrf": csrf, "name": "carol", "password": "carol's password", "role": "viewer"},
    )
    assert added.status_code == 200
    assert "carol" in added.text
    token_page = client.post("/stats/users/carol/token", data={"csrf": csrf})
    token = re.search(r'<code class="token">(bst_[^<]+)</code>', token_page.text)
    assert token
    assert AccountStore(stats_store).verify_token(token.group(1)).name == "carol"
    removed = client.post("/stats/users/carol/remove", data={"csrf": csrf})
    assert removed.status_code == 200
    assert AccountStore(stats_store).get("carol") is None
    assert AccountStore(stats_store).verify_token(token.group(1)) is None
    self_removal = client.post(f"/stats/users/{ADMIN[0]}/remove", data={"csrf": csrf})
    assert self_removal.status_code == 400


def test_security_headers(client):
    response = client.get("/stats/login")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_store_down_is_a_503_never_a_500(live_server):
    import httpx
    from starlette.applications import Starlette

    from beacon.dashboard import create_dashboard
    from beacon.store import Store

    dashboard = create_dashboard(
        Store("http://127.0.0.1:9/beacon"), secret_keys=["k"], secure_cookies=False
    )
    server = live_server(Starlette(routes=[Mount("/stats", app=dashboard)]))
    with httpx.Client(base_url=server.url) as http:
        api = http.get("/stats/api/campaigns", headers={"Authorization": "Bearer bst_x"})
        assert api.status_code == 503
        assert api.json() == {"error": "the statistics store is unavailable"}
        assert http.get("/stats/campaigns").status_code == 503
        page = http.get("/stats/login")
        assert page.status_code == 200
        login = http.post(
            "/stats/login",
            data={"username": "alice", "password": "whatever1", "csrf": csrf_of(page.text)},
        )
        assert login.status_code == 503


def test_changing_the_password_ends_older_sessions(client, stats_store):
    from beacon.auth import AccountStore

    accounts = AccountStore(stats_store)
    accounts.add("gina", "gina's first password")
    log_in(client, "gina", "gina's first password")
    assert client.get("/stats/campaigns").status_code == 200
    accounts.set_password("gina", "gina's second password")
    assert client.get("/stats/campaigns").status_code == 303
    accounts.remove("gina")
