"""``beacon.js`` in real headless Chromium: page views and custom events reach the store."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from beacon import Beacon

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="fr"><head><title>Produits</title>
<script src="/b/beacon.js" defer></script></head>
<body><h1>Produits</h1>
<noscript><img src="/b/p.gif" alt="" width="1" height="1"></noscript></body></html>"""


def _wait_for(tracker: Beacon, recorded: int) -> None:
    deadline = time.monotonic() + 20
    while tracker.counters()["recorded"] < recorded:
        assert time.monotonic() < deadline, tracker.counters()
        time.sleep(0.05)


def test_script_sends_page_views_and_events(
    make_beacon: Callable[..., Beacon], live_server: Any, page: Any
) -> None:
    tracker = make_beacon()

    async def produits(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    site = Starlette(routes=[Route("/produits", produits), Mount("/b", tracker.app)])
    server = live_server(site)
    page.goto(f"{server.url}/produits?utm_source=newsletter&email=alice%40example.org#x")
    _wait_for(tracker, 1)
    page.evaluate("window.beacon.track('newsletter-signup')")
    _wait_for(tracker, 2)
    server.stop()
    tracker.close()
    rows = tracker.store.query_rows(
        "SELECT kind, path, utm_source, name, is_bot FROM events ORDER BY kind"
    )
    assert rows == [
        ("pageview", "/produits", "newsletter", "", True),
        ("event", "/produits", "newsletter", "newsletter-signup", True),
    ]


def test_noscript_image_counts_the_page_from_its_referer(
    make_beacon: Callable[..., Beacon], live_server: Any, browser: Any
) -> None:
    tracker = make_beacon()

    async def produits(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    site = Starlette(routes=[Route("/produits", produits), Mount("/b", tracker.app)])
    server = live_server(site)
    context = browser.new_context(java_script_enabled=False)
    try:
        context.new_page().goto(f"{server.url}/produits?token=s3cret")
        _wait_for(tracker, 1)
    finally:
        context.close()
    server.stop()
    tracker.close()
    assert tracker.store.query_rows("SELECT kind, path FROM events") == [("pageview", "/produits")]
