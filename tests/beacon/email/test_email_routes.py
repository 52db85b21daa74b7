"""The e-mail routes on their own: a standalone tracker whose sinks fail."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from beacon.email import EmailTracker, UnsubscribeRecord, email_routes
from beacon.events import PixelEvent

from .email_fixtures import BASE_URL, KEY, PUBLIC, SITE

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


class BrokenSinks:
    """Sinks that refuse everything, like a full or unwritable spool."""

    def __init__(self) -> None:
        self.events: list[PixelEvent] = []

    def record(self, event: PixelEvent) -> bool:
        self.events.append(event)
        return False

    def record_unsubscribe(self, row: UnsubscribeRecord) -> None:
        raise OSError("No space left on device")


class Client:
    """Requests through the ASGI app itself (``httpx.ASGITransport``), one event loop each."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as client:
                return await client.request(method, url, **options)

        # A thread of its own: the browser tests' Playwright keeps a loop in the main thread.
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(anyio.run, send).result()

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)


@pytest.fixture
def broken() -> tuple[EmailTracker, Client]:
    sinks = BrokenSinks()
    email = EmailTracker(
        BASE_URL,
        [KEY],
        SITE,
        record=sinks.record,
        record_unsubscribe=sinks.record_unsubscribe,
    )
    return email, Client(Starlette(routes=[Mount("/b", routes=email_routes(email))]))


def test_pixel_and_redirect_answer_when_recording_fails(
    broken: tuple[EmailTracker, Client],
) -> None:
    email, client = broken
    pixel = client.get(email.pixel_url("c", "a@b.fr"), headers={"User-Agent": FIREFOX})
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"
    click = client.get(email.click_url("c", "a@b.fr", "https://mypharm.fr/x"))
    assert click.status_code == 302
    assert click.headers["location"] == "https://mypharm.fr/x"
    assert email.failures["record_failed"] == 2


def test_unsubscribe_is_never_confirmed_unless_kept(
    broken: tuple[EmailTracker, Client],
) -> None:
    email, client = broken
    answer = client.post(email.unsubscribe_url("c", "a@b.fr"), headers={"Accept-Language": "en"})
    assert answer.status_code == 503
    assert "Please try again shortly" in answer.text
    assert email.failures["unsubscribe_failed"] == 1


def test_unknown_paths_and_methods(broken: tuple[EmailTracker, Client]) -> None:
    email, client = broken
    token = email.click_url("c", "a@b.fr", "https://mypharm.fr/x").rsplit("/", 1)[1]
    assert client.post(f"/b/c/{token}").status_code == 405
    assert client.get(f"/b/c/{token}/extra").status_code == 404
    assert client.get("/b/o/.gif").status_code == 404
    assert client.get(f"/b/c/{token}%2Fx").status_code == 404  # the server decodes %2F


def test_tracker_without_sinks_counts_what_it_cannot_record() -> None:
    email = EmailTracker(BASE_URL, [KEY], SITE)
    client = Client(Starlette(routes=[Mount("/b", routes=email_routes(email))]))
    click = client.get(email.click_url("c", "a@b.fr", "https://mypharm.fr/x"))
    assert click.status_code == 302
    assert email.failures["record_failed"] == 1
