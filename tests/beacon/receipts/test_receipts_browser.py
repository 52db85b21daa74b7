"""Proof of consent end to end: a real browser decides, downloads, erases; real engine.

The site is the consent middleware in front of a Starlette app, with the
beacon's spool and flusher writing receipts into the embedded ClickHouse.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from beacon import Beacon
from beacon.receipts import ReceiptRecorder, ReceiptStore
from mypharm_consent import Category, ConsentConfig, ConsentMiddleware
from mypharm_consent.banner import BannerRenderer
from mypharm_consent.cookie import ConsentCookie
from mypharm_consent.receipts import ConsentReceipt

from .receipt_helpers import table_contents

pytestmark = pytest.mark.browser

CATEGORIES = [
    Category(
        "analytics",
        label={"fr": "Mesure d'audience", "en": "Analytics"},
        description={"fr": "Statistiques de visite.", "en": "Visit statistics."},
    ),
    Category(
        "marketing",
        label={"fr": "Marketing", "en": "Marketing"},
        description={"fr": "Publicités adaptées.", "en": "Relevant ads."},
    ),
]
PAGE = (
    "<!doctype html><html lang='fr'><head><title>Pharmacie</title></head>"
    "<body><h1>Pharmacie du Centre</h1></body></html>"
)


class Clock:
    """The receipt store's clock, moved by the test past the grace period."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Site:
    def __init__(self, clickhouse_url: str, spool: Path) -> None:
        self.clock = Clock()
        self.url = ""
        self.tracker = Beacon(clickhouse_url=clickhouse_url, site="shop.example", spool_dir=spool)
        self.receipts = ReceiptStore(self.tracker.store, clock=self.clock)
        self.recorder = ReceiptRecorder(self.tracker)
        self.config = ConsentConfig(
            secret_keys=["receipts-browser-test-secret-0001"],
            categories=CATEGORIES,
            cookie_secure=False,
            on_decision=self.recorder,
            receipts=self.receipts,
        )

        async def home(request: Request) -> HTMLResponse:
            return HTMLResponse(PAGE)

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            async with self.tracker.lifespan():
                yield

        self.app = Starlette(routes=[Route("/", home)], lifespan=lifespan)
        self.app.add_middleware(ConsentMiddleware, config=self.config)

    def consent_id(self, context: Any) -> str:
        [cookie] = [c for c in context.cookies() if c["name"] == self.config.cookie_name]
        payload = ConsentCookie(self.config).decode(cookie["value"])
        assert payload is not None
        return payload.consent_id

    def wait_for(self, consent_id: str, count: int) -> list[ConsentReceipt]:
        deadline = time.monotonic() + 30
        while True:
            history = self.receipts.history(consent_id)
            if len(history) >= count or time.monotonic() > deadline:
                return history
            time.sleep(0.2)


@pytest.fixture
def site(clickhouse_url: str, tmp_path: Path, live_server: Callable[[Any], Any]) -> Site:
    built = Site(clickhouse_url, tmp_path / "spool")
    built.url = live_server(built.app).url
    return built


def test_three_decisions_export_erase_purge(
    site: Site, browser: Any, page: Any, artifacts_dir: Path
) -> None:
    url = site.url
    served = httpx.get(url + "/", headers={"accept-language": "fr"}).text

    # Another visitor decides too: their receipts must survive the erasure.
    other_context = browser.new_context(locale="fr-FR")
    other = other_context.new_page()
    other.goto(url + "/")
    other.get_by_role("button", name="Refuser tout").first.click()
    other.wait_for_selector("#mypharm-consent-banner", state="hidden")

    # 1. Accept everything on the banner (the script posts it).
    page.goto(url + "/")
    page.get_by_role("button", name="Accepter tout").click()
    page.wait_for_selector("#mypharm-consent-banner", state="hidden")
    consent_id = site.consent_id(page.context)

    # 2. Withdraw marketing in one click on the preferences page.
    # Each click posts a form: wait for its answer before the next step, so the
    # decisions reach the server in the order they were made.
    page.goto(url + "/_consent/preferences")
    with page.expect_navigation():
        page.locator("[data-mpc-toggle=marketing]").click()
    # 3. Refuse everything from the same page.
    page.goto(url + "/_consent/preferences")
    with page.expect_navigation():
        page.get_by_role("button", name="Refuser tout").click()
    assert site.consent_id(page.context) == consent_id

    stored = site.wait_for(consent_id, 3)
    assert [(r.action, r.source) for r in stored] == [
        ("accept_all", "js"),
        ("withdraw", "preferences"),
        ("reject_all", "preferences"),
    ]

    # The page lists them, newest first.
    page.goto(url + "/_consent/preferences")
    rows = page.locator(".mpc-receipt")
    assert rows.count() == 3
    assert "Tout refusé" in rows.nth(0).inner_text()
    assert "Tout accepté" in rows.nth(2).inner_text()
    page.screenshot(path=str(artifacts_dir / "receipts-preferences-history.png"), full_page=True)

    # Download: the JSON says what was clicked, and which banner was served.
    with page.expect_download() as download_info:
        page.locator("[data-mpc-download]").click()
    download = download_info.value
    assert download.suggested_filename == "consent-history.json"
    document = json.loads(Path(download.path()).read_text())
    assert [
        (r["action"], r["granted"], r["refused"], r["source"]) for r in document["receipts"]
    ] == [
        ("accept_all", ["analytics", "marketing", "necessary"], [], "js"),
        ("withdraw", ["analytics", "necessary"], ["marketing"], "preferences"),
        ("reject_all", ["necessary"], ["analytics", "marketing"], "preferences"),
    ]
    renderer = BannerRenderer(site.config)
    banner_hash = document["receipts"][0]["banner_hash"]
    assert banner_hash == renderer.banner_hash("fr")
    assert document["receipts"][1]["banner_hash"] == renderer.banner_hash("fr", "preferences.html")
    shown = document["banners"][banner_hash]["html"]
    token = served.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert shown.replace('name="csrf" value=""', f'name="csrf" value="{token}"') in served
    assert all(r["device_class"] == "desktop" for r in document["receipts"])

    # Privacy: neither the IP address nor the User-Agent is stored.
    user_agent = page.evaluate("navigator.userAgent")
    receipt_tables = {
        name: content
        for name, content in table_contents(site.tracker.store).items()
        if name in ("consent_receipts", "banner_versions", "receipt_erasures")
    }
    for content in receipt_tables.values():
        assert user_agent not in content
        assert "127.0.0.1" not in content

    # Erase: scheduled with a 24-hour grace period, cancellable from the same page.
    page.locator("[data-mpc-erase]").click()
    page.wait_for_load_state()
    assert page.locator("[data-mpc-erasure=requested]").is_visible()
    page.screenshot(path=str(artifacts_dir / "receipts-erasure-scheduled.png"), full_page=True)
    assert site.receipts.erasure_status(consent_id).state == "requested"
    page.locator("[data-mpc-cancel-erasure]").click()
    page.wait_for_load_state()
    assert site.receipts.erasure_status(consent_id).state == "cancelled"
    page.locator("[data-mpc-erase]").click()
    page.wait_for_load_state()

    site.clock.offset = timedelta(hours=23)
    assert site.receipts.purge_due().erased == 0
    site.clock.offset = timedelta(hours=24, seconds=1)
    assert site.receipts.purge_due().erased == 1

    for name, content in table_contents(site.tracker.store).items():
        assert consent_id not in content, f"{name} still holds the erased consent id"
    other_id = site.consent_id(other_context)
    assert [r.action for r in site.receipts.history(other_id)] == ["reject_all"]
    other_context.close()

    # The next visit to the page gives the browser a new consent id, same choices.
    page.goto(url + "/_consent/preferences")
    assert "Votre historique de consentement a été effacé." in page.content()
    rotated = site.consent_id(page.context)
    assert rotated != consent_id
    assert page.locator(".mpc-receipt").count() == 0
