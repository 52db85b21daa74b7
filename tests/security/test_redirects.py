"""Open redirects and header injection on every redirecting route.

The consent choice (``next``), the consent history outcomes, the dashboard
login, logout, language switch and log-in-first redirect (``next``) and the
e-mail click links (signed destination) only ever send a browser to a path
of the site, or, for a click, to the destination the sender signed; CR/LF in
a ``next``, a path or a token never reaches a response header.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from beacon import Beacon
from beacon.email.exceptions import InstrumentationError
from beacon.email.tokens import EmailTokenSigner
from beacon.receipts.store import ReceiptStore
from beacon.store import Store
from tests.beacon.email.email_fixtures import KEY
from tests.beacon.stats.stats_dataset import ADMIN, csrf_of
from tests.consent.conftest import FakeClock, decide, form_token, make_config
from tests.consent.sites import asgi_site, client_for

from .hostile import OFF_SITE, assert_same_site


def _no_control_in_headers(response: httpx.Response) -> None:
    for name, value in response.headers.raw:
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", name + value), (name, value)
    assert "injected" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("target", OFF_SITE)
def test_consent_choice_never_leaves_the_site(consent_client: httpx.Client, target: str) -> None:
    response = decide(consent_client, "reject_all", next_path=target)
    assert response.status_code == 303
    assert_same_site(response.headers["location"])
    _no_control_in_headers(response)


def test_consent_choice_keeps_a_genuine_return_path(consent_client: httpx.Client) -> None:
    response = decide(consent_client, "accept_all", next_path="/panier?etape=2#paiement")
    assert response.headers["location"] == "/panier?etape=2#paiement"


@pytest.mark.parametrize("target", OFF_SITE)
def test_preferences_page_never_links_off_site(consent_client: httpx.Client, target: str) -> None:
    response = consent_client.get(f"/_consent/preferences?next={quote(target)}")
    assert response.status_code == 200
    form_token(response.text)
    for value in re.findall(r'name="next" value="([^"]*)"', response.text):
        assert_same_site(value.replace("&amp;", "&"))
    assert "evil.example" not in response.text


@pytest.mark.parametrize("target", OFF_SITE)
def test_dashboard_login_never_leaves_the_dashboard(
    dashboard_client: httpx.Client, target: str
) -> None:
    form = dashboard_client.get("/stats/login", params={"next": target})
    assert form.status_code == 200
    hidden = re.findall(r'name="next" value="([^"]*)"', form.text)
    assert hidden
    for value in hidden:
        assert_same_site(value.replace("&amp;", "&"), "/stats")
    response = dashboard_client.post(
        "/stats/login",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrf": csrf_of(form.text),
            "next": target,
        },
    )
    assert response.status_code == 303
    assert_same_site(response.headers["location"], "/stats")
    _no_control_in_headers(response)


@pytest.mark.parametrize("target", OFF_SITE)
def test_dashboard_language_switch_never_leaves_the_dashboard(
    dashboard_client: httpx.Client, target: str
) -> None:
    response = dashboard_client.get("/stats/lang", params={"to": "en", "next": target})
    assert response.status_code == 303
    assert_same_site(response.headers["location"], "/stats")
    _no_control_in_headers(response)


def test_dashboard_login_keeps_a_genuine_return_path(dashboard_client: httpx.Client) -> None:
    form = dashboard_client.get("/stats/login")
    response = dashboard_client.post(
        "/stats/login",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrf": csrf_of(form.text),
            "next": "/stats/site?from=2026-11-01",
        },
    )
    assert response.headers["location"] == "/stats/site?from=2026-11-01"


FORGED_CLICKS = (
    "",
    "x",
    "AAAA.BBBB",
    "aHR0cHM6Ly9ldmlsLmV4YW1wbGUv.AAAAAAAAAAAAAAAAAAAAAA",
    "https%3A%2F%2Fevil.example%2F",
    "%0d%0aLocation:%20https://evil.example",
    "..%2F..%2F",
    "A" * 5000,
)


@pytest.mark.parametrize("token", FORGED_CLICKS)
def test_forged_click_tokens_redirect_nowhere(
    beacon_client: tuple[Beacon, httpx.Client], token: str
) -> None:
    _, http = beacon_client
    response = http.get(f"/b/c/{token}")
    assert response.status_code in (400, 404)
    assert "location" not in response.headers
    _no_control_in_headers(response)


def test_click_tokens_of_another_key_or_kind_redirect_nowhere(
    beacon_client: tuple[Beacon, httpx.Client],
) -> None:
    tracker, http = beacon_client
    other = EmailTokenSigner(["a-key-this-site-never-had-0123456789"])
    ours = EmailTokenSigner([KEY])
    recipient = ours.recipient_ref("alice@example.org")
    for token in (
        other.click_token("lettre", recipient, "https://evil.example/", 0),
        ours.open_token("lettre", recipient),
        ours.unsubscribe_token("lettre", recipient),
    ):
        response = http.get(f"/b/c/{token}")
        assert response.status_code == 400
        assert "location" not in response.headers
    genuine = tracker.email.signer.click_token("lettre", recipient, "https://mypharm.fr/a", 0)
    response = http.get(f"/b/c/{genuine}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://mypharm.fr/a"


def test_destinations_with_line_breaks_never_reach_a_header(
    beacon_client: tuple[Beacon, httpx.Client],
) -> None:
    tracker, http = beacon_client
    signer = EmailTokenSigner([KEY])
    recipient = signer.recipient_ref("alice@example.org")
    with pytest.raises(InstrumentationError):
        signer.click_token("lettre", recipient, "https://mypharm.fr/a\r\nSet-Cookie: x=1", 0)
    html = tracker.email.instrument(
        '<a href="https://mypharm.fr/a&#13;&#10;Set-Cookie:%20injected=1">promo</a>',
        campaign="lettre",
        recipient="alice@example.org",
    )
    link = re.search(r'href="https://mypharm\.fr/b(/c/[^"]+)"', html)
    assert link is not None
    response = http.get("/b" + link.group(1))
    assert response.status_code == 302
    _no_control_in_headers(response)
    assert response.headers["location"].startswith("https://mypharm.fr/a")


#: Paths under the dashboard that a hostile link could send an anonymous browser to.
HOSTILE_DASHBOARD_PATHS = (
    "/stats/campaigns/%0d%0aSet-Cookie:%20injected=1",
    "/stats/campaigns/x%0aLocation:%20https://evil.example",
    "/stats//evil.example",
    "/stats/%2F%2Fevil.example",
    "/stats/%5C%5Cevil.example",
    "/stats/site?from=%0d%0aSet-Cookie:%20injected=1",
    "/stats/site?next=https://evil.example/",
)


@pytest.mark.parametrize("path", HOSTILE_DASHBOARD_PATHS)
def test_login_required_redirect_stays_on_the_dashboard(
    dashboard_client: httpx.Client, path: str
) -> None:
    response = dashboard_client.get(path)
    _no_control_in_headers(response)
    if response.status_code == 404:
        # A decoded line break matches no route of the host site: nothing to follow.
        assert "location" not in response.headers
        assert "%0a" in path.lower()
        return
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/stats/login?next=")
    # The page asked for travels in the query, encoded; logging in goes back to it, on site.
    form = dashboard_client.get(location)
    assert form.status_code == 200
    for value in re.findall(r'name="next" value="([^"]*)"', form.text):
        assert value.replace("&amp;", "&").startswith("/stats/")
    logged = dashboard_client.post(
        "/stats/login",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrf": csrf_of(form.text),
            "next": re.findall(r'name="next" value="([^"]*)"', form.text)[0].replace("&amp;", "&"),
        },
    )
    assert logged.status_code == 303
    _no_control_in_headers(logged)
    target = logged.headers["location"]
    assert target.startswith("/stats/")
    assert not target.startswith("//")
    assert "\\" not in target


@pytest.mark.parametrize("target", OFF_SITE[:6])
def test_logout_goes_to_the_login_page_whatever_is_posted(
    logged_in: httpx.Client, target: str
) -> None:
    page = logged_in.get("/stats/users")
    response = logged_in.post("/stats/logout", data={"csrf": csrf_of(page.text), "next": target})
    assert response.status_code == 303
    assert response.headers["location"] == "/stats/login"
    _no_control_in_headers(response)


@pytest.mark.parametrize("target", OFF_SITE)
def test_history_outcomes_redirect_to_the_preferences_page_only(
    clickhouse_url: str, target: str
) -> None:
    config = make_config(receipts=ReceiptStore(Store(clickhouse_url)))
    clock = FakeClock()
    with client_for("asgi", asgi_site(config, clock)) as client:
        token = form_token(client.get("/_consent/preferences").text)
        for path in ("/_consent/erase", "/_consent/erase/cancel"):
            response = client.post(
                path,
                data={"csrf": token, "next": target, "history": target},
                headers={"sec-fetch-site": "same-origin"},
            )
            assert response.status_code == 303
            assert response.headers["location"].startswith("/_consent/preferences?history=")
            assert "evil" not in response.headers["location"]
            assert_same_site(response.headers["location"])
            _no_control_in_headers(response)


def test_replayed_click_tokens_always_go_to_the_signed_destination(
    beacon_client: tuple[Beacon, httpx.Client],
) -> None:
    tracker, http = beacon_client
    signer = tracker.email.signer
    recipient = signer.recipient_ref("alice@example.org")
    genuine = signer.click_token("lettre", recipient, "https://mypharm.fr/promo?x=1", 3)
    # Replays (a forwarded message, a scanner) change nothing but the click count.
    for query in ("", "?next=https://evil.example/", "?url=https://evil.example/"):
        response = http.get(f"/b/c/{genuine}{query}")
        assert response.status_code == 302
        assert response.headers["location"] == "https://mypharm.fr/promo?x=1"
    # Any change to the token, even one character, is a forgery.
    payload, signature = genuine.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for forged in (f"{flipped}.{signature}", f"{payload}.{signature[::-1]}", payload):
        response = http.get(f"/b/c/{forged}")
        assert response.status_code == 400
        assert "location" not in response.headers


@pytest.mark.parametrize(
    "token",
    ["%0d%0aSet-Cookie:%20injected=1", "x%0aLocation:%20https://evil.example", "A" * 5000],
    ids=["crlf", "lf", "long"],
)
def test_hostile_tokens_never_reach_a_header(
    beacon_client: tuple[Beacon, httpx.Client], token: str
) -> None:
    _, http = beacon_client
    for method, path in (
        ("GET", f"/b/o/{token}.gif"),
        ("GET", f"/b/u/{token}"),
        ("POST", f"/b/u/{token}"),
    ):
        response = http.request(method, path)
        assert response.status_code in (400, 404), path
        assert "location" not in response.headers
        _no_control_in_headers(response)
