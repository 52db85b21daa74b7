"""The example sites work as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse
from starlette.routing import Route

import mypharm_consent
from mypharm_consent import ConsentMiddleware, wsgi

from .conftest import decide, load_example, make_config
from .sites import client_for


def test_the_flask_site_shows_the_banner_and_remembers_the_choice() -> None:
    app = load_example("examples/flask_site/app.py").app
    with client_for("wsgi", app) as client:
        first = client.get("/")
        assert 'id="mypharm-consent-banner"' in first.text
        assert "Marketing autorisé : <strong>non</strong>" in first.text
        assert decide(client, "accept_all").status_code == 303
        after = client.get("/")
        assert 'id="mypharm-consent-banner"' not in after.text
        assert "Marketing autorisé : <strong>oui</strong>" in after.text


def test_the_starlette_demo_serves_every_page_with_the_banner(
    clickhouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_CLICKHOUSE_URL", clickhouse_url)
    monkeypatch.chdir(tmp_path)
    app = load_example("examples/starlette_site/app.py").app
    with client_for("asgi", app) as client:
        for path in ("/", "/produits", "/contact", "/confidentialite"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert 'id="mypharm-consent-banner"' in response.text, path
        assert client.get("/assets/site.css").status_code == 200
        sent = client.post("/contact", data={"name": "A", "email": "a@b.fr", "message": "?"})
        assert "Merci" in sent.text
        assert decide(client, "reject_all", next_path="/produits").headers["location"] == (
            "/produits"
        )
        assert "Mesure d'audience : <strong>désactivée</strong>" in client.get("/").text


def test_the_starlette_demo_mounts_the_beacon_and_the_dashboard(
    clickhouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_CLICKHOUSE_URL", clickhouse_url)
    monkeypatch.chdir(tmp_path)
    module = load_example("examples/starlette_site/app.py")
    home = module.app
    # The gated YouTube embed waits behind a click-to-load placeholder.
    with client_for("asgi", home) as client:
        page = client.get("/").text
        assert 'data-src="https://www.youtube-nocookie.com/embed/' in page
        assert ' src="https://www.youtube-nocookie.com/' not in page
        assert client.get("/b/p.gif?u=/produits").headers["content-type"] == "image/gif"
        assert client.get("/b/beacon.js").status_code == 200
        login = client.get("/stats/", follow_redirects=False)
        assert login.status_code in (302, 303, 307)
        assert "/stats/login" in login.headers["location"]
    module.tracker.close()
    stored = module.tracker.store.query_rows("SELECT path FROM events WHERE kind = 'pageview'")
    assert stored == [("/produits",)]


def test_the_public_surface() -> None:
    assert set(mypharm_consent.__all__) >= {
        "Category",
        "ConsentConfig",
        "ConsentDecision",
        "ConsentMiddleware",
        "ConsentState",
        "NECESSARY",
    }
    for name in mypharm_consent.__all__:
        assert hasattr(mypharm_consent, name), name
    assert wsgi.__all__ == ["ENVIRON_KEY", "ConsentWSGIMiddleware"]
    assert wsgi.ENVIRON_KEY == "mypharm_consent"


def test_gzip_outside_the_consent_layer_compresses_the_rewritten_page() -> None:
    async def page(request: object) -> HTMLResponse:
        return HTMLResponse("<html><body>" + "<p>Pharmacie</p>" * 200 + "</body></html>")

    app = Starlette(
        routes=[Route("/", page)],
        middleware=[
            Middleware(GZipMiddleware),
            Middleware(ConsentMiddleware, config=make_config()),
        ],
    )
    with client_for("asgi", app) as client:
        response = client.get("/", headers={"accept-encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert 'id="mypharm-consent-banner"' in response.text
