"""The banner in a real headless Chromium: with and without JavaScript, by keyboard, under CSP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from .conftest import FakeClock, load_example, make_config
from .sites import asgi_site

pytestmark = pytest.mark.browser

BANNER = "#mypharm-consent-banner"
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; form-action 'self'; base-uri 'none'"
)


@pytest.fixture(scope="module")
def demo_app(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BEACON_CLICKHOUSE_URL", f"chdb://{chdb_path}?database=demo_browser")
        patch.chdir(tmp_path_factory.mktemp("demo"))
        yield load_example("examples/starlette_site/app.py").app


@pytest.fixture
def demo(live_server: Callable[[Any], Any], demo_app: Any) -> str:
    return str(live_server(demo_app).url)


@pytest.fixture
def no_js_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="fr-FR", java_script_enabled=False)
    yield context.new_page()
    context.close()


LISTEN_FROM_THE_START = """
window.consentEvents = [];
document.addEventListener("mypharm:consent", (e) => window.consentEvents.push(e.detail));
"""


def consent_cookies(page: Any) -> list[dict[str, Any]]:
    return [c for c in page.context.cookies() if c["name"] == "mypharm_consent"]


def record_consent_events(page: Any) -> None:
    page.evaluate(
        """() => {
            window.consentEvents = [];
            document.addEventListener(
                "mypharm:consent", (e) => window.consentEvents.push(e.detail)
            );
        }"""
    )


def focus_in_banner(page: Any) -> bool:
    return bool(
        page.evaluate("() => document.activeElement.closest('#mypharm-consent-banner') !== null")
    )


def test_banner_shows_on_first_visit(page: Any, demo: str, artifacts_dir: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(demo + "/")
    banner = page.locator(BANNER)
    banner.wait_for(state="visible")
    assert banner.get_attribute("role") == "dialog"
    assert page.get_by_role("dialog", name="Vos choix sur les cookies").is_visible()
    for label in ("Accepter tout", "Refuser tout", "Personnaliser"):
        assert page.get_by_role("button", name=label, exact=True).is_visible()
    boxes = [
        page.get_by_role("button", name=label, exact=True).bounding_box()
        for label in ("Accepter tout", "Refuser tout", "Personnaliser")
    ]
    sizes = {(round(box["width"]), round(box["height"])) for box in boxes}
    assert len(sizes) == 1, f"the three choices differ in size: {sizes}"
    assert consent_cookies(page) == []
    assert page.context.cookies() == []
    page.screenshot(path=str(artifacts_dir / "consent-banner.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts_dir / "consent-banner-mobile.png"))


def test_refusing_hides_the_banner_without_reload_and_survives_reload(page: Any, demo: str) -> None:
    page.add_init_script(LISTEN_FROM_THE_START)
    page.goto(demo + "/produits")
    page.locator(BANNER).wait_for(state="visible")
    assert page.evaluate("() => window.consentEvents") == []
    page.evaluate("() => { window.notReloaded = true; }")
    page.get_by_role("button", name="Refuser tout", exact=True).click()
    page.locator(BANNER).wait_for(state="hidden")
    assert page.evaluate("() => window.notReloaded") is True
    assert page.evaluate("() => window.consentEvents") == [{"granted": ["necessary"]}]
    assert page.locator("#mypharm-consent-reopen").is_visible()
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["mypharm_consent"]
    assert cookies[0]["httpOnly"] is True
    assert cookies[0]["sameSite"] == "Lax"
    page.reload()
    assert page.locator(BANNER).count() == 0
    page.wait_for_function("() => window.consentEvents.length > 0")
    # On a page load with a decision known, the script announces it once.
    assert page.evaluate("() => window.consentEvents") == [{"granted": ["necessary"]}]
    assert "Mesure d'audience : désactivée" in page.locator("footer").inner_text()
    assert page.locator("#mypharm-consent-reopen").is_visible()


def test_customising_with_javascript_stays_on_the_page(page: Any, demo: str) -> None:
    page.goto(demo + "/")
    record_consent_events(page)
    page.get_by_role("button", name="Personnaliser", exact=True).click()
    assert page.url == demo + "/"
    analytics = page.get_by_role("checkbox", name="Mesure d'audience")
    assert analytics.is_visible()
    assert not analytics.is_checked()
    assert not page.get_by_role("checkbox", name="Marketing").is_checked()
    analytics.check()
    page.get_by_role("button", name="Enregistrer mes choix").click()
    page.locator(BANNER).wait_for(state="hidden")
    assert page.evaluate("() => window.consentEvents") == [{"granted": ["analytics", "necessary"]}]
    page.reload()
    assert "Mesure d'audience : activée" in page.locator("footer").inner_text()
    assert "Marketing : désactivé" in page.locator("footer").inner_text()


def test_choices_work_with_javascript_off(no_js_page: Any, demo: str) -> None:
    page = no_js_page
    page.goto(demo + "/contact")
    assert page.locator(BANNER).is_visible()
    page.get_by_role("button", name="Accepter tout", exact=True).click()
    page.wait_for_url(demo + "/contact")
    assert page.locator(BANNER).count() == 0
    assert "Marketing : activé" in page.locator("footer").inner_text()
    assert [c["name"] for c in page.context.cookies()] == ["mypharm_consent"]
    # Withdrawing is as easy as consenting: the reopen link, one button.
    page.locator("#mypharm-consent-reopen").click()
    page.get_by_role("button", name="Refuser tout", exact=True).click()
    page.wait_for_url(demo + "/contact")
    assert "Marketing : désactivé" in page.locator("footer").inner_text()


def test_customising_with_javascript_off_uses_the_preferences_page(
    no_js_page: Any, demo: str, artifacts_dir: Path
) -> None:
    page = no_js_page
    page.goto(demo + "/produits")
    page.get_by_role("button", name="Personnaliser", exact=True).click()
    page.wait_for_url("**/_consent/preferences?next=%2Fproduits")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Gérer mes préférences")
    page.screenshot(path=str(artifacts_dir / "consent-preferences.png"), full_page=True)
    assert not page.get_by_role("checkbox", name="Marketing").is_checked()
    page.get_by_role("checkbox", name="Marketing").check()
    page.get_by_role("button", name="Enregistrer mes choix").click()
    page.wait_for_url(demo + "/produits")
    footer = page.locator("footer").inner_text()
    assert "Marketing : activé" in footer
    assert "Mesure d'audience : désactivée" in footer


def test_keyboard_only_flow(page: Any, demo: str) -> None:
    page.goto(demo + "/")
    page.locator(BANNER).wait_for(state="visible")
    assert focus_in_banner(page)
    reached: list[str] = []
    for _ in range(8):
        page.keyboard.press("Tab")
        if not focus_in_banner(page):
            break
        reached.append(page.evaluate("() => document.activeElement.textContent.trim()"))
    for label in ("Continuer sans accepter", "Accepter tout", "Refuser tout", "Personnaliser"):
        assert label in reached, reached
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Escape")
    assert page.locator(BANNER).is_visible()
    assert page.context.cookies() == []
    page.reload()
    assert page.locator(BANNER).is_visible()
    # Open the details by keyboard, close them with Escape: still no choice.
    page.get_by_role("button", name="Personnaliser", exact=True).focus()
    page.keyboard.press("Enter")
    assert page.get_by_role("checkbox", name="Mesure d'audience").is_visible()
    page.keyboard.press("Escape")
    assert not page.get_by_role("checkbox", name="Mesure d'audience").is_visible()
    assert page.context.cookies() == []
    page.get_by_role("button", name="Refuser tout", exact=True).focus()
    page.keyboard.press("Enter")
    page.locator(BANNER).wait_for(state="hidden")
    assert len(consent_cookies(page)) == 1


def _with_strict_csp(app: Any) -> Any:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", STRICT_CSP.encode()),
                ]
            await send(message)

        await app(scope, receive, send_with_csp if scope["type"] == "http" else send)

    return wrapped


def test_everything_works_under_a_strict_content_security_policy(
    page: Any, live_server: Callable[[Any], Any]
) -> None:
    server = live_server(_with_strict_csp(asgi_site(make_config(), FakeClock.real())))
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto(server.url + "/")
    record_consent_events(page)
    assert page.locator(BANNER).evaluate("el => getComputedStyle(el).position") == "fixed"
    page.get_by_role("button", name="Accepter tout", exact=True).click()
    page.locator(BANNER).wait_for(state="hidden")
    assert page.evaluate("() => window.consentEvents[0].granted") == [
        "analytics",
        "marketing",
        "necessary",
        "preferences",
    ]
    assert [v for v in violations if "Content Security Policy" in v] == []
