"""The history endpoints behave the same through the ASGI and the WSGI middleware."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from beacon.flusher import Flusher
from beacon.receipts import ReceiptRecorder, ReceiptStore
from beacon.spool import SpoolDir
from beacon.store import Store
from mypharm_consent import Category, ConsentConfig, ConsentMiddleware
from mypharm_consent.cookie import ConsentCookie
from mypharm_consent.wsgi import ConsentWSGIMiddleware
from tests.consent.sites import SyncASGITransport

PAGE = b"<!doctype html><html><head><title>t</title></head><body><p>Bonjour</p></body></html>"
CATEGORIES = [
    Category(
        "analytics",
        label={"fr": "Mesure", "en": "Analytics"},
        description={"fr": "Audience", "en": "Audience"},
    ),
]


def asgi_client(config: ConsentConfig) -> httpx.Client:
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(ConsentMiddleware, config=config)
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://testserver")


def wsgi_client(config: ConsentConfig) -> httpx.Client:
    def home(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE]

    transport = httpx.WSGITransport(app=ConsentWSGIMiddleware(home, config=config))
    return httpx.Client(transport=transport, base_url="http://testserver")


@pytest.fixture(params=["asgi", "wsgi"])
def adapter(
    request: pytest.FixtureRequest, store: Store, tmp_path: Path
) -> Iterator[tuple[httpx.Client, ReceiptStore, SpoolDir, ConsentConfig]]:
    spool = SpoolDir(tmp_path / "spool")
    receipts = ReceiptStore(store)
    config = ConsentConfig(
        secret_keys=["adapter-tests-secret-key-00001"],
        categories=CATEGORIES,
        cookie_secure=False,
        on_decision=ReceiptRecorder(spool),
        receipts=receipts,
    )
    build = asgi_client if request.param == "asgi" else wsgi_client
    with build(config) as client:
        yield client, receipts, spool, config


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_history_endpoints(
    adapter: tuple[httpx.Client, ReceiptStore, SpoolDir, ConsentConfig], store: Store
) -> None:
    client, receipts, spool, config = adapter
    token = csrf_of(client.get("/").text)
    decided = client.post(
        "/_consent/decide",
        data={"action": "accept_all", "csrf": token, "next": "/"},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    payload = ConsentCookie(config).decode(client.cookies[config.cookie_name])
    assert payload is not None
    consent_id = payload.consent_id

    spool.close()
    Flusher(store, [spool.root], own=spool).drain_once()

    page = client.get("/_consent/preferences")
    assert page.status_code == 200
    assert "Tout accepté" in page.text
    assert 'href="/_consent/history.json"' in page.text

    download = client.get("/_consent/history.json")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    assert [r["consent_id"] for r in download.json()["receipts"]] == [consent_id]

    token = csrf_of(page.text)
    foreign = client.post(
        "/_consent/erase",
        data={"csrf": token},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403
    assert receipts.erasure_status(consent_id).state == "none"

    erase = client.post("/_consent/erase", data={"csrf": token}, follow_redirects=False)
    assert erase.status_code == 303
    assert erase.headers["location"].startswith("/_consent/preferences?history=erasure-requested")
    assert receipts.erasure_status(consent_id).state == "requested"
    shown = client.get(erase.headers["location"]).text
    assert "Votre demande d&#39;effacement est enregistrée" in shown
    assert "Annuler l&#39;effacement" in shown

    cancel = client.post(
        "/_consent/erase/cancel",
        data={"csrf": token},
        headers={"accept": "application/json"},
    )
    assert cancel.status_code == 200
    assert cancel.json()["outcome"] == "erasure-cancelled"
    assert receipts.erasure_status(consent_id).state == "cancelled"

    client.cookies.clear()
    anonymous = client.get("/_consent/history.json")
    assert (anonymous.status_code, anonymous.json()) == (404, {"outcome": "no-consent"})
    assert client.get("/_consent/erase").status_code == 405
