"""In real headless Chromium: log in, open a campaign, see its chart drawn."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .stats_dataset import ADMIN, CAMPAIGN

pytestmark = pytest.mark.browser


def test_log_in_and_see_the_campaign_chart(site_app, live_server, page, artifacts_dir):
    server = live_server(site_app)
    page.goto(f"{server.url}/stats/campaigns/{quote(CAMPAIGN)}")
    assert "/stats/login" in page.url  # anonymous: sent to the login form first
    page.get_by_label("Nom du compte").fill(ADMIN[0])
    page.get_by_label("Mot de passe").fill(ADMIN[1])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"**/stats/campaigns/{quote(CAMPAIGN)}")

    chart = page.locator("svg#campaign-timeline")
    chart.wait_for()
    assert chart.get_attribute("role") == "img"
    assert (
        page.locator("svg#campaign-timeline > title").text_content()
        == "Ouvertures et clics dans le temps"
    )
    # 65 buckets (64 hours and one day) for each of the three series.
    assert page.locator("svg#campaign-timeline circle.point").count() == 3 * 65
    polyline = page.locator("svg#campaign-timeline .series-0 polyline")
    box = polyline.bounding_box()
    assert box is not None
    assert box["width"] > 200  # the line is drawn across the chart, not collapsed
    assert page.locator("svg#campaign-links .bar").count() == 2
    cards = page.locator(".cards .number").all_inner_texts()
    assert cards[:4] == ["10", "8", "7", "3"]
    page.screenshot(path=str(artifacts_dir / "stats-campaign.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(artifacts_dir / "stats-campaign-phone.png"), full_page=False)

    page.get_by_role("link", name="Tableau des liens").click()
    page.wait_for_url("**/links")
    assert page.locator("table[data-table=links] tbody tr").count() == 2


def test_site_page_in_english_and_by_keyboard(site_app, live_server, browser, artifacts_dir):
    server = live_server(site_app)
    context = browser.new_context(locale="en-GB", extra_http_headers={"Accept-Language": "en-GB"})
    page = context.new_page()
    try:
        page.goto(f"{server.url}/stats/login")
        assert page.evaluate("document.activeElement.name") == "username"  # autofocus
        page.keyboard.type(ADMIN[0])
        page.keyboard.press("Tab")
        page.keyboard.type(ADMIN[1])
        page.keyboard.press("Enter")
        page.wait_for_url("**/stats/")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.goto(f"{server.url}/stats/site?from=2026-11-01&to=2026-11-03")
        assert page.locator("svg#site-daily circle.point").count() == 4 * 3
        assert page.locator("table[data-table=referrer] tbody tr").count() == 2
        page.screenshot(path=str(artifacts_dir / "stats-site.png"), full_page=True)
    finally:
        context.close()
