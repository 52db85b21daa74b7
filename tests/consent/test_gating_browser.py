"""Gating in a real headless Chromium: nothing runs before consent, everything once after."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mypharm_consent import ConsentMiddleware
from mypharm_consent.gating import gate_html

from .gating_pages import EVERYTHING, NOTHING, ROBUSTNESS, gating_config, loopback_site

pytestmark = pytest.mark.browser


@pytest.fixture
def served(live_server: Callable[[Any], Any]) -> str:
    return str(live_server(loopback_site()).url)


def third_party_requests(page: Any) -> list[str]:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    return requests


def loaded(requests: list[str], path: str) -> bool:
    return any(url.split("?")[0].endswith(path) for url in requests)


def test_nothing_runs_before_consent_and_everything_once_after_accepting(
    page: Any, served: str
) -> None:
    requests = third_party_requests(page)
    page.goto(served)
    page.wait_for_load_state("load")
    assert page.evaluate("() => [window.trackerRuns, window.inlineRuns, window.statsRuns]") == [
        None,
        None,
        None,
    ]
    assert not loaded(requests, "/third-party/tracker.js")
    assert not loaded(requests, "/third-party/pixel.gif")
    assert not loaded(requests, "/third-party/embed")
    assert page.evaluate("() => document.cookie") == ""
    assert page.locator(".mypharm-gate").is_visible()
    page.evaluate("() => { window.notReloaded = true; }")

    page.get_by_role("button", name="Accepter tout").click()
    page.wait_for_function("() => window.trackerRuns === 1 && window.statsRuns === 1")
    assert page.evaluate("() => window.notReloaded") is True
    assert page.evaluate("() => [window.trackerRuns, window.inlineRuns, window.statsRuns]") == [
        1,
        1,
        1,
    ]
    # Document order: the external script ran before the inline one after it.
    assert page.evaluate("() => window.order") == ["external", "inline"]
    page.wait_for_function("() => document.getElementById('pixel').complete")
    assert loaded(requests, "/third-party/pixel.gif")
    page.frame_locator("#video").locator("#inside").wait_for()
    assert page.locator(".mypharm-gate").count() == 0
    assert "lb_id=1" in page.evaluate("() => document.cookie")

    # Another announcement (e.g. a later change) never runs a script twice.
    page.evaluate(
        """() => document.dispatchEvent(new CustomEvent("mypharm:consent",
            {detail: {granted: ["necessary", "analytics", "marketing"]}}))"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => [window.trackerRuns, window.inlineRuns, window.statsRuns]") == [
        1,
        1,
        1,
    ]

    page.reload()
    page.wait_for_function("() => window.trackerRuns === 1")
    assert page.evaluate("() => window.inlineRuns") == 1
    assert page.locator(".mypharm-gate").count() == 0


def test_activation_works_under_a_strict_content_security_policy(page: Any, served: str) -> None:
    page.add_init_script(
        """window.violations = [];
        document.addEventListener("securitypolicyviolation",
            (e) => window.violations.push(e.violatedDirective + " " + e.blockedURI));"""
    )
    page.goto(f"{served}/strict")
    assert page.locator(".mypharm-gate").is_visible()
    page.get_by_role("button", name="Accepter tout").click()
    page.wait_for_function("() => window.trackerRuns === 1 && window.inlineRuns === 1")
    page.frame_locator("#video").locator("#inside").wait_for()
    assert page.evaluate("() => window.violations") == []


def test_a_page_that_changes_on_every_request_is_spliced_and_still_gated(
    page: Any, live_server: Callable[[Any], Any]
) -> None:
    site = loopback_site()
    served = str(live_server(site).url)
    page.add_init_script(
        """window.violations = [];
        document.addEventListener("securitypolicyviolation",
            (e) => window.violations.push(e.violatedDirective + " " + e.blockedURI));"""
    )
    requests = third_party_requests(page)
    for visit in (1, 2, 3):
        page.goto(f"{served}/personal")
        assert page.locator("#visit").inner_text() == f"Visite {visit}"
    # The second and third pages were spliced into the first one gated.
    middleware = site.middleware_stack
    while not isinstance(middleware, ConsentMiddleware):
        middleware = middleware.app
    assert middleware.engine.splices.spliced == 2
    assert page.evaluate("() => [window.trackerRuns, window.inlineRuns, window.statsRuns]") == [
        None,
        None,
        None,
    ]
    assert not loaded(requests, "/third-party/tracker.js")
    assert page.locator(".mypharm-gate").is_visible()
    page.get_by_role("button", name="Accepter tout").click()
    # The inline script runs under this page's own nonce.
    page.wait_for_function(
        "() => window.trackerRuns === 1 && window.inlineRuns === 1 && window.statsRuns === 1"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => [window.trackerRuns, window.inlineRuns, window.statsRuns]") == [
        1,
        1,
        1,
    ]
    assert page.evaluate("() => window.violations") == []


def test_refusing_keeps_everything_inert(page: Any, served: str) -> None:
    requests = third_party_requests(page)
    page.goto(served)
    page.get_by_role("button", name="Refuser tout").click()
    page.locator("#mypharm-consent-banner").wait_for(state="hidden")
    page.reload()
    page.wait_for_load_state("load")
    assert page.evaluate("() => [window.trackerRuns, window.inlineRuns]") == [None, None]
    assert not loaded(requests, "/third-party/tracker.js")
    assert page.locator(".mypharm-gate").is_visible()


def test_load_this_content_activates_only_that_iframe(page: Any, served: str) -> None:
    page.goto(served)
    placeholder = page.locator(".mypharm-gate")
    assert placeholder.get_attribute("role") == "group"
    assert "Loopback Ads" in placeholder.inner_text()
    assert "127.0.0.1" in placeholder.inner_text()
    page.get_by_role("button", name="Charger ce contenu").click()
    page.frame_locator("#video").locator("#inside").wait_for()
    assert page.locator(".mypharm-gate").count() == 0
    assert page.evaluate("() => window.trackerRuns") is None
    assert [c for c in page.context.cookies() if c["name"] == "mypharm_consent"] == []


def test_always_allow_grants_the_category_without_reload(page: Any, served: str) -> None:
    page.goto(served)
    page.evaluate("() => { window.notReloaded = true; }")
    page.get_by_role("button", name="Toujours autoriser Loopback Ads").click()
    page.wait_for_function("() => window.trackerRuns === 1 && window.inlineRuns === 1")
    page.frame_locator("#video").locator("#inside").wait_for()
    assert page.evaluate("() => window.notReloaded") is True
    assert page.evaluate("() => window.statsRuns") is None
    assert [c for c in page.context.cookies() if c["name"] == "mypharm_consent"]
    page.reload()
    page.wait_for_function("() => window.trackerRuns === 1")
    assert page.evaluate("() => window.statsRuns") is None


def test_placeholder_buttons_are_reachable_by_keyboard(page: Any, served: str) -> None:
    page.goto(served)
    load = page.get_by_role("button", name="Charger ce contenu")
    load.focus()
    page.keyboard.press("Enter")
    page.frame_locator("#video").locator("#inside").wait_for()


def test_consent_mode_signals_default_then_update(page: Any, served: str) -> None:
    page.goto(served)
    commands = page.evaluate(
        "() => window.dataLayer.map((entry) => Array.prototype.slice.call(entry))"
    )
    assert commands[0][:2] == ["consent", "default"]
    assert commands[0][2]["ad_storage"] == "denied"
    assert commands[0][2]["security_storage"] == "granted"
    page.get_by_role("button", name="Accepter tout").click()
    page.wait_for_function(
        """() => window.dataLayer.some((entry) => entry[0] === "consent"
            && entry[1] === "update" && entry[2].ad_storage === "granted")"""
    )
    update = page.evaluate(
        """() => Array.prototype.slice.call(window.dataLayer.filter(
            (entry) => entry[1] === "update").pop())"""
    )
    assert update[2] == {
        "ad_personalization": "granted",
        "ad_storage": "granted",
        "ad_user_data": "granted",
        "analytics_storage": "granted",
        "functionality_storage": "denied",
        "personalization_storage": "denied",
        "security_storage": "granted",
    }


@pytest.fixture
def gpc_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="fr-FR", extra_http_headers={"Sec-GPC": "1"})
    context.add_init_script(
        "Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})"
    )
    yield context.new_page()
    context.close()


def test_gpc_refuses_marketing_by_default_but_the_visitor_decides(
    gpc_page: Any, served: str
) -> None:
    page = gpc_page
    page.goto(served)
    assert page.locator("[data-gate-gpc]").is_visible()
    assert page.evaluate("() => window.trackerRuns") is None
    assert ["set", "ads_data_redaction", True] in page.evaluate(
        "() => window.dataLayer.map((entry) => Array.prototype.slice.call(entry))"
    )
    page.get_by_role("button", name="Accepter tout").click()
    page.wait_for_function("() => window.trackerRuns === 1")


# -- robustness, with the browser as the judge ---------------------------------


def robustness_app() -> Starlette:
    config = gating_config(consent_mode=False)

    async def case(request: Request) -> Response:
        html = ROBUSTNESS[int(request.path_params["index"])][1]
        if request.query_params.get("gated") == "1":
            html = gate_html(html, NOTHING, config)
        return HTMLResponse(html)

    return Starlette(routes=[Route("/case/{index:int}", case)])


THIRD_PARTY = re.compile(r"^[a-z]+://(?:[^/]*\.)?adpartner\.example(?::\d+)?/")


def refusing(requested: list[str]) -> Callable[[Any], None]:
    """A route handler that notes and aborts every request to the third-party host."""

    def refuse(route: Any) -> None:
        requested.append(route.request.url)
        route.abort()

    return refuse


def test_browser_loads_nothing_gated_from_the_rewritten_pages(
    browser: Any, live_server: Callable[[Any], Any]
) -> None:
    """Chromium's own parser judges, with JavaScript on and off: no request to the host."""
    url = live_server(robustness_app()).url
    leaks: dict[str, list[str]] = {}
    reached: set[str] = set()
    for javascript in (True, False):
        context = browser.new_context(java_script_enabled=javascript)
        requested: list[str] = []

        context.route(THIRD_PARTY, refusing(requested))
        page = context.new_page()
        try:
            for index, (name, _, _, _) in enumerate(ROBUSTNESS):
                for gated in (True, False):
                    requested.clear()
                    page.goto(f"{url}/case/{index}?gated={int(gated)}")
                    page.wait_for_load_state("load")
                    if gated and requested:
                        leaks[f"{name} (javascript {javascript})"] = list(requested)
                    if not gated and requested:
                        reached.add(name)
        finally:
            context.close()
    assert leaks == {}
    # The same pages, not gated, do reach the host: the judge can see.
    assert reached == {
        name for name, _, gated, _ in ROBUSTNESS if any("adpartner" in url.lower() for url in gated)
    }


def test_granted_pages_are_served_exactly_as_written() -> None:
    for _, html, _, _ in ROBUSTNESS:
        assert gate_html(html, EVERYTHING, gating_config(consent_mode=False)) == html
