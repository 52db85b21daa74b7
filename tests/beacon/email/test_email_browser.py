"""In real Chromium: the pixel loads, a tracked link lands exactly where the original did,
and the unsubscribe page works with JavaScript switched off."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from beacon import Beacon
from beacon.email.tracker import EmailTracker

from .email_fixtures import KEY, SITE, WallClock, stored_counts

pytestmark = pytest.mark.browser

CAMPAIGN = "2026-12-newsletter"
# Headless Chromium names itself "HeadlessChrome", which counts as a bot; a reader's does not.
READER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _site(tracker: Beacon) -> Starlette:
    async def landing(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"landing {request.url.path}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with tracker.lifespan():
            yield

    return Starlette(
        routes=[Route("/landing/{rest:path}", landing), Mount("/b", tracker.app)],
        lifespan=lifespan,
    )


def test_browser_open_click_and_unsubscribe(
    make_tracker: Callable[..., Beacon],
    clickhouse_url: str,
    live_server: Any,
    browser: Any,
    clock: WallClock,
) -> None:
    tracker = make_tracker(clickhouse_url)
    server = live_server(_site(tracker))
    # The mailer's side: same keys, the public URL of the mounted beacon.
    mailer = EmailTracker(f"{server.url}/b", [KEY], SITE)
    destination = f"{server.url}/landing/café/é?q=ü&r=1"
    html = mailer.instrument(
        f'<html><body><p><a id="go" href="{destination}">Offre</a></p></body></html>',
        campaign=CAMPAIGN,
        recipient="alice@example.org",
    )
    unsubscribe = mailer.unsubscribe_url(CAMPAIGN, "alice@example.org")

    context = browser.new_context(java_script_enabled=False, locale="fr-FR", user_agent=READER)
    try:
        page = context.new_page()
        with page.expect_response(lambda r: "/b/o/" in r.url) as pixel:
            page.set_content(html)
        assert pixel.value.status == 200
        assert pixel.value.headers["content-type"] == "image/gif"

        direct = context.new_page()
        direct.goto(destination)
        clock.advance(30)
        page.click("#go")
        page.wait_for_url("**/landing/**")
        assert page.url == direct.url
        assert page.inner_text("body") == direct.inner_text("body")

        page.goto(unsubscribe)
        assert page.inner_text("h1") == "Se désabonner"
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("h1") == "Désinscription enregistrée"
    finally:
        context.close()

    assert stored_counts(tracker, CAMPAIGN) == {
        ("open", "", 0): 1,
        ("click", f"{server.url}/landing/café/é", 0): 1,
        ("unsubscribe", "", 0): 1,
    }
    assert tracker.email.is_unsubscribed("alice@example.org")
