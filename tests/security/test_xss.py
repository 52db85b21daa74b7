"""Cross-site scripting through configurable texts and stored dimensions.

Every text a site may configure (banner and page texts, category labels and
descriptions, service labels) and every stored dimension the dashboard shows
(paths, referrer hosts, UTM values, campaigns, link URLs, ad names, browser
families) is set to markup; every page must show it escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from beacon.events import PixelEvent
from beacon.store import Store
from mypharm_consent import Category, ConsentConfig, ConsentState, Service
from mypharm_consent.gating import gate_html
from mypharm_consent.texts import DEFAULT_TEXTS
from tests.beacon.email.email_fixtures import SITE
from tests.beacon.stats.stats_dataset import insert_events
from tests.consent.conftest import FakeClock, decide, make_config
from tests.consent.sites import asgi_site, client_for, wsgi_site

from .hostile import ATTRIBUTE_BREAK, SCRIPT, assert_escaped

HOSTILE = f"{SCRIPT}{ATTRIBUTE_BREAK}"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _hostile_categories() -> list[Category]:
    text = {"fr": HOSTILE, "en": HOSTILE}
    service = Service("hostile", label=HOSTILE, hosts=("*.tracker.example",), description=text)
    return [
        Category("analytics", label=text, description=text, services=(service,)),
        Category("marketing", label=text, description=text),
    ]


def _hostile_config() -> ConsentConfig:
    texts = {language: dict.fromkeys(DEFAULT_TEXTS[language], HOSTILE) for language in ("fr", "en")}
    return make_config(texts=texts, categories=_hostile_categories())


@pytest.fixture(params=["asgi", "wsgi"])
def hostile_site(request: pytest.FixtureRequest) -> httpx.Client:
    """The consent test site with every configurable text set to markup."""
    config = _hostile_config()
    clock = FakeClock()
    app = asgi_site(config, clock) if request.param == "asgi" else wsgi_site(config, clock)
    return client_for(str(request.param), app)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_configured_texts_are_escaped_on_every_consent_page(
    hostile_site: httpx.Client, language: str
) -> None:
    headers = {"accept-language": language}
    pages = {
        "banner": hostile_site.get("/", headers=headers),
        "preferences": hostile_site.get("/_consent/preferences", headers=headers),
        "error": hostile_site.post(
            "/_consent/decide",
            content=b"action=accept_all",
            headers={"content-type": "application/x-www-form-urlencoded", **headers},
        ),
        "not found": hostile_site.get("/_consent/nothing-here", headers=headers),
    }
    assert pages["error"].status_code == 403
    for name, response in pages.items():
        assert_escaped(response.text)
        assert ESCAPED_SCRIPT in response.text, name
    decided = decide(hostile_site, "save", categories=("analytics",))
    assert decided.status_code == 303
    after = hostile_site.get("/_consent/preferences", headers=headers)
    assert_escaped(after.text)
    assert ESCAPED_SCRIPT in after.text


def test_service_labels_are_escaped_in_gating_placeholders() -> None:
    config = make_config(categories=_hostile_categories())
    page = '<body><iframe src="https://www.tracker.example/embed"></iframe></body>'
    for language in ("fr", "en"):
        output = gate_html(page, ConsentState.undecided(), config, language=language)
        assert "data-src=" in output
        assert_escaped(output)
        assert ESCAPED_SCRIPT in output


#: Stored dimensions the dashboard shows, each set to markup.
DIMENSIONS = {
    "path": "/" + HOSTILE,
    "referrer_host": HOSTILE,
    "utm_source": HOSTILE,
    "utm_medium": HOSTILE,
    "utm_campaign": HOSTILE,
    "browser": HOSTILE,
    "os": HOSTILE,
}
CAMPAIGN = "lettre" + HOSTILE


def _hostile_events() -> list[PixelEvent]:
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    events = [
        PixelEvent(ts=moment, site=SITE, kind="pageview", visitor_hash=n, **DIMENSIONS)
        for n in range(1, 4)
    ]
    events += [
        PixelEvent(
            ts=moment, site=SITE, kind="ad_click", path="/", name=HOSTILE, link="/" + HOSTILE
        ),
        PixelEvent(ts=moment, site=SITE, kind="open", campaign=CAMPAIGN, recipient=7),
        PixelEvent(
            ts=moment,
            site=SITE,
            kind="click",
            campaign=CAMPAIGN,
            recipient=7,
            link="https://mypharm.fr/" + HOSTILE,
        ),
    ]
    return events


def test_stored_dimensions_are_escaped_on_every_dashboard_page(
    dashboard_store: Store, logged_in: httpx.Client
) -> None:
    insert_events(dashboard_store, _hostile_events())
    today = datetime.now(UTC).date()
    span = f"from={(today - timedelta(days=7)).isoformat()}&to={today.isoformat()}"
    campaign = quote(CAMPAIGN, safe="")
    pages = [
        "/stats/",
        f"/stats/site?{span}",
        f"/stats/site?{span}&site={quote(SITE)}",
        "/stats/campaigns",
        f"/stats/campaigns/{campaign}",
        f"/stats/campaigns/{campaign}/links",
        "/stats/consent",
    ]
    shown = set()
    for path in pages:
        response = logged_in.get(path)
        assert response.status_code == 200, path
        assert_escaped(response.text)
        if ESCAPED_SCRIPT in response.text:
            shown.add(path)
    # The markup is really shown (escaped) where those dimensions are listed.
    assert set(pages[1:3] + pages[4:6]) <= shown
