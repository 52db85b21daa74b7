"""Shared pieces of the e-mail tests: constants, a settable clock, a simulated mailbox."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from beacon import Beacon

KEY = "email-test-key-0123456789abcdef"
SITE = "mypharm.fr"
PUBLIC = "https://mypharm.fr"
BASE_URL = PUBLIC + "/b"
NEWSLETTER = (Path(__file__).parent / "newsletter.html").read_text(encoding="utf-8")
TRACKED_LINK = re.compile(r"https://mypharm\.fr/b/c/[A-Za-z0-9_\-.]+")
PIXEL = re.compile(r"https://mypharm\.fr/b/o/[A-Za-z0-9_\-.]+\.gif")


class WallClock:
    """A settable clock for the beacon: event times and burst timing follow it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Mailbox:
    """One recipient's instrumented copy of a message, fetched over HTTP like a mail client."""

    def __init__(self, tracker: Beacon, http: httpx.Client, campaign: str, address: str) -> None:
        self.http = http
        self.html = tracker.email.instrument(NEWSLETTER, campaign=campaign, recipient=address)
        self.links = TRACKED_LINK.findall(self.html)
        pixel = PIXEL.search(self.html)
        assert pixel is not None
        self.pixel = pixel.group(0)

    def get(self, url: str, user_agent: str, method: str = "GET") -> httpx.Response:
        path = url.removeprefix(PUBLIC)
        return self.http.request(method, path, headers={"User-Agent": user_agent})

    def open(self, user_agent: str) -> httpx.Response:
        return self.get(self.pixel, user_agent)

    def click(self, link: int, user_agent: str, method: str = "GET") -> httpx.Response:
        return self.get(self.links[link], user_agent, method)


def host_app(tracker: Beacon) -> Starlette:
    """A site mounting the beacon at ``/b`` and handing it its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with tracker.lifespan():
            yield

    return Starlette(routes=[Mount("/b", tracker.app)], lifespan=lifespan)


def stored_counts(tracker: Beacon, campaign: str) -> dict[tuple[str, str, int], int]:
    """Flush the spool, then count stored events by (kind, link, machine)."""
    tracker.close()
    rows = tracker.store.query_rows(
        f"SELECT kind, link, machine, count() FROM `{tracker.store.database}`.events "
        "WHERE campaign = {campaign:String} GROUP BY kind, link, machine",
        parameters={"campaign": campaign},
    )
    return {(str(kind), str(link), int(machine)): int(n) for kind, link, machine, n in rows}
