"""The beacon app end to end on the real engine: dimensions, privacy, consent, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from beacon import Beacon
from beacon.app import TRANSPARENT_GIF
from beacon.events import PixelEvent, read_row_binary
from beacon.spool import sealed_segments

from .conftest import CHROME, SITE, Clock, all_table_text

IP = "203.0.113.77"
SECRET_QUERY = "email=alice%40example.org&token=s3cr3t-t0ken"


def client(app: Any, ip: str = IP, base: str = "https://mypharm.fr") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base)


def flush(tracker: Beacon) -> None:
    """Seal and insert everything spooled so far (the flusher's own code path)."""
    tracker.close(timeout=10.0)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_page_views_arrive_with_their_dimensions(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon()

    async def visit() -> None:
        async with client(tracker.app) as http:
            answer = await http.get(
                "/p.gif",
                params={
                    "u": f"https://mypharm.fr/produits/vitamine-c?{SECRET_QUERY}"
                    "&utm_source=newsletter&utm_medium=email&utm_campaign=nov#top",
                    "r": "https://www.google.com/search?q=vitamine",
                },
                headers={"user-agent": CHROME},
            )
            assert answer.status_code == 200
            assert answer.content == TRANSPARENT_GIF
            assert answer.headers["content-type"] == "image/gif"
            assert "no-store" in answer.headers["cache-control"]

    run(visit())
    flush(tracker)
    rows = tracker.store.query_rows(
        "SELECT site, kind, path, referrer_host, utm_source, utm_medium, utm_campaign, "
        "browser, os, toString(device), is_bot, visitor_hash != 0 FROM events"
    )
    assert rows == [
        (
            SITE,
            "pageview",
            "/produits/vitamine-c",
            "www.google.com",
            "newsletter",
            "email",
            "nov",
            "Chrome",
            "Windows",
            "desktop",
            False,
            True,
        )
    ]
    assert tracker.store.query_rows(
        "SELECT path, sum(pageviews), uniqMerge(visitors) FROM pages_daily GROUP BY path"
    ) == [("/produits/vitamine-c", 1, 1)]
    assert tracker.store.query_rows(
        "SELECT referrer_host, sum(pageviews) FROM referrers_daily GROUP BY referrer_host"
    ) == [("www.google.com", 1)]


def test_no_ip_user_agent_or_query_is_stored_anywhere(
    make_beacon: Callable[..., Beacon],
) -> None:
    tracker = make_beacon(trusted_proxies=["127.0.0.1"])
    agent = CHROME + " UniqueMarker/9.9"

    async def visit() -> None:
        async with client(tracker.app) as http:
            await http.get(f"/p.gif?u=/compte%3F{SECRET_QUERY}", headers={"user-agent": agent})
            await http.get(
                "/p.gif",
                headers={"user-agent": agent, "referer": f"https://mypharm.fr/a?{SECRET_QUERY}"},
            )
            await http.post(
                "/e",
                content=f'{{"k": "event", "n": "signup", "u": "/b?{SECRET_QUERY}"}}',
                headers={"user-agent": agent},
            )
        async with client(tracker.app, ip="127.0.0.1") as http:
            await http.get(
                "/p.gif?u=/c", headers={"user-agent": agent, "x-forwarded-for": "198.51.100.23"}
            )

    run(visit())
    flush(tracker)
    assert tracker.store.query_rows("SELECT count() FROM events") == [(4,)]
    text = all_table_text(tracker.store)
    assert "/compte" in text  # the scan does see the stored paths
    for secret in (IP, "198.51.100.23", "UniqueMarker", "Mozilla/5.0", "alice", "s3cr3t"):
        assert secret not in text


def test_same_visitor_is_one_unique_a_day_and_two_over_two_days(
    make_beacon: Callable[..., Beacon], clock: Clock
) -> None:
    tracker = make_beacon()

    async def visit(path: str) -> None:
        async with client(tracker.app) as http:
            await http.get(f"/p.gif?u={path}", headers={"user-agent": CHROME})

    for path in ("/", "/a", "/b"):
        run(visit(path))
        clock.advance(minutes=20)
    clock.advance(days=1)
    run(visit("/"))
    flush(tracker)
    by_day = tracker.store.query_rows(
        "SELECT day, sum(pageviews), uniqMerge(visitors) FROM site_daily GROUP BY day ORDER BY day"
    )
    assert [(views, uniques) for _, views, uniques in by_day] == [(3, 1), (1, 1)]
    over_both = tracker.store.query_rows("SELECT uniqExact(visitor_hash) FROM events")
    assert over_both == [(2,)]


def test_other_visitors_are_other_uniques(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon()

    async def visits() -> None:
        for ip in ("192.0.2.1", "192.0.2.2"):
            async with client(tracker.app, ip=ip) as http:
                await http.get("/p.gif?u=/", headers={"user-agent": CHROME})
        async with client(tracker.app, ip="192.0.2.1") as http:
            await http.get("/p.gif?u=/", headers={"user-agent": CHROME + " Edg/120"})

    run(visits())
    flush(tracker)
    assert tracker.store.query_rows("SELECT uniqMerge(visitors) FROM site_daily") == [(3,)]


def test_bots_are_counted_apart(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon()
    bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

    async def visits() -> None:
        async with client(tracker.app) as http:
            await http.get("/p.gif?u=/", headers={"user-agent": bot})
            await http.get("/p.gif?u=/", headers={"user-agent": CHROME})

    run(visits())
    flush(tracker)
    assert tracker.store.query_rows("SELECT sum(pageviews) FROM site_daily") == [(1,)]
    assert tracker.store.query_rows(
        "SELECT browser, sum(hits) FROM bots_daily GROUP BY browser"
    ) == [("Googlebot", 1)]


def test_internal_referrers_are_empty(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon(own_hosts=["shop.example"])

    async def visits() -> None:
        async with client(tracker.app) as http:
            for referrer in (
                "https://www.mypharm.fr/a",
                "https://blog.mypharm.fr/b",
                "https://shop.example/",
                "https://duckduckgo.com/?q=x",
            ):
                await http.get("/p.gif", params={"u": "/", "r": referrer})

    run(visits())
    flush(tracker)
    rows = tracker.store.query_rows("SELECT referrer_host FROM events ORDER BY referrer_host")
    assert rows == [("",), ("",), ("",), ("duckduckgo.com",)]


def test_event_endpoint_records_custom_events(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon()

    async def send() -> None:
        async with client(tracker.app) as http:
            answer = await http.post(
                "/e",
                content=b'{"k": "event", "n": "newsletter-signup", '
                b'"u": "/inscription?utm_source=fb"}',
                headers={"content-type": "text/plain;charset=UTF-8", "user-agent": CHROME},
            )
            assert answer.status_code == 204
            assert answer.content == b""

    run(send())
    flush(tracker)
    assert tracker.store.query_rows("SELECT kind, name, path, utm_source FROM events") == [
        ("event", "newsletter-signup", "/inscription", "fb")
    ]


BAD_PIXELS = [
    pytest.param(b"/p.gif?u=%ff%fe%fd&r=%c3%28", id="non-utf8-escapes"),
    pytest.param(b"/p.gif?u=\xff\xfe&r=\xc3(", id="raw-non-utf8"),
    pytest.param(b"/p.gif?%%%&&&==&u", id="malformed-query"),
    pytest.param(b"/p.gif?u=" + b"a" * 20000, id="huge-query"),
    pytest.param(b"/p.gif?r=http://[::1/&u=http://[bad", id="bad-urls"),
    pytest.param(b"/p.gif?u=/%00%09%0a%0d\\", id="control-characters"),
    pytest.param(b"/p.gif?k=open&n=x", id="kind-not-allowed"),
]


def _scope(target: bytes) -> dict[str, Any]:
    path, _, query = target.partition(b"?")
    return {
        "type": "http",
        "method": "GET",
        "path": path.decode(),
        "raw_path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"user-agent", b"\xff\xfe" * 5000), (b"referer", b"\x80" * 9000)],
        "client": None,
    }


def _call(tracker: Beacon, scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    run(tracker.app(scope, receive, send))
    return messages


def _spooled_events(tracker: Beacon) -> list[PixelEvent]:
    path = tracker.spool_path
    assert path is not None
    tracker.close()
    return [
        event for segment in sealed_segments(path) for event in read_row_binary(segment.read().data)
    ]


@pytest.mark.parametrize("target", BAD_PIXELS)
def test_bad_pixel_input_still_gets_the_gif(
    make_beacon: Callable[..., Beacon], target: bytes
) -> None:
    tracker = make_beacon(ingest="external")
    messages = _call(tracker, _scope(target))
    assert messages[0]["status"] == 200
    assert messages[1]["body"] == TRANSPARENT_GIF
    for event in _spooled_events(tracker):
        assert event.kind == "pageview"


def test_bad_input_that_is_recorded_is_stored(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon()
    for param in BAD_PIXELS:
        _call(tracker, _scope(param.values[0]))
    recorded = tracker.counters()["recorded"]
    assert recorded == len(BAD_PIXELS)
    flush(tracker)
    assert tracker.counters()["rejected_segments"] == 0
    assert tracker.store.query_rows("SELECT count() FROM events") == [(recorded,)]


BAD_EVENTS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"\xff\xfe{}", id="non-utf8"),
    pytest.param(b"[1, 2, 3]", id="array"),
    pytest.param(b'{"u": 5, "k": ["x"], "n": null}', id="wrong-types"),
    pytest.param(b'{"u": "/' + b"x" * 70000 + b'"}', id="oversized"),
    pytest.param(b'{"k": "click", "u": "/"}', id="kind-not-allowed"),
]


@pytest.mark.parametrize("body", BAD_EVENTS)
def test_bad_event_bodies_get_204(make_beacon: Callable[..., Beacon], body: bytes) -> None:
    tracker = make_beacon(ingest="external")

    async def send() -> None:
        async with client(tracker.app) as http:
            answer = await http.post("/e", content=body)
            assert answer.status_code == 204

    run(send())
    for event in _spooled_events(tracker):
        assert event.kind in ("pageview", "event")


def test_oversized_body_is_counted_not_recorded(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon()

    async def send() -> None:
        async with client(tracker.app) as http:
            await http.post("/e", content=b'{"u": "/' + b"x" * 9000 + b'"}')

    run(send())
    assert tracker.counters()["bad_requests"] == 1
    assert tracker.counters()["recorded"] == 0


def test_refused_analytics_records_nothing_but_answers(
    make_beacon: Callable[..., Beacon],
) -> None:
    from mypharm_consent.config import Category, ConsentConfig
    from mypharm_consent.cookie import ConsentCookie, new_consent_id

    analytics = Category(
        "analytics", {"fr": "Mesure d'audience", "en": "Analytics"}, {"fr": "Stats", "en": "Stats"}
    )
    config = ConsentConfig(secret_keys=["k" * 32], categories=[analytics])
    cookie = ConsentCookie(config)
    refused = cookie.encode(new_consent_id(), frozenset())
    granted = cookie.encode(new_consent_id(), frozenset({"analytics"}))
    tracker = make_beacon(analytics_requires_consent=True, consent=config)

    async def visits() -> None:
        async with client(tracker.app) as http:
            for value in (refused, None, "garbage", granted):
                http.cookies.clear()
                if value is not None:
                    http.cookies.set(config.cookie_name, value)
                answer = await http.get("/p.gif?u=/", headers={"user-agent": CHROME})
                assert answer.content == TRANSPARENT_GIF

    run(visits())
    assert tracker.counters()["not_consented"] == 3
    flush(tracker)
    assert tracker.store.query_rows("SELECT count() FROM events") == [(1,)]


def test_consent_state_from_the_middleware_is_used(make_beacon: Callable[..., Beacon]) -> None:
    from mypharm_consent.state import ConsentState

    tracker = make_beacon(analytics_requires_consent=True)
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    for granted in (frozenset({"necessary"}), frozenset({"necessary", "analytics"})):
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/p.gif",
            "query_string": b"u=/",
            "headers": [],
            "client": (IP, 1),
            "state": {"consent": ConsentState(decided=True, granted=granted)},
        }
        run(tracker.app(scope, receive, send))
    assert tracker.counters()["not_consented"] == 1
    assert tracker.counters()["recorded"] == 1


def test_by_default_audience_is_measured_without_consent(
    make_beacon: Callable[..., Beacon],
) -> None:
    tracker = make_beacon()

    async def visit() -> None:
        async with client(tracker.app) as http:
            await http.get("/p.gif?u=/")

    run(visit())
    assert tracker.counters()["recorded"] == 1


def test_script_and_health(make_beacon: Callable[..., Beacon]) -> None:
    tracker = make_beacon()

    async def fetch() -> None:
        async with client(tracker.app) as http:
            script = await http.get("/beacon.js")
            assert script.status_code == 200
            assert script.headers["content-type"].startswith("text/javascript")
            assert b"sendBeacon" in script.content
            await http.get("/p.gif?u=/")
            health = (await http.get("/health")).json()
            assert health["status"] == "ok"
            assert health["recorded"] == 1
            assert health["spool_accepted"] == 1
            assert (await http.get("/nothing-here")).status_code == 404

    run(fetch())


def test_extra_routes_are_dispatched_after_the_fast_path(
    make_beacon: Callable[..., Beacon],
) -> None:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.path_params['name']}")

    tracker = make_beacon(routes=[Route("/hello/{name}", hello)])
    tracker.add_routes([Route("/p.gif", hello)])

    async def fetch() -> None:
        async with client(tracker.app) as http:
            assert (await http.get("/hello/world")).text == "hello world"
            assert (await http.get("/p.gif")).content == TRANSPARENT_GIF

    run(fetch())


def test_mounted_in_a_host_app_with_its_lifespan(
    make_beacon: Callable[..., Beacon], live_server: Any
) -> None:
    tracker = make_beacon()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with tracker.lifespan():
            yield

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    host = Starlette(routes=[Route("/", home), Mount("/b", tracker.app)], lifespan=lifespan)
    server = live_server(host)
    assert tracker.counters()["schema_ready"] is True
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/").text == "home"
        answer = http.get("/b/p.gif?u=/mounted", headers={"user-agent": CHROME})
        assert answer.content == TRANSPARENT_GIF
        assert http.get("/b/health").json()["recorded"] == 1
    server.stop()
    assert tracker.store.query_rows("SELECT path FROM events") == [("/mounted",)]


def test_standalone_app_handles_its_own_lifespan(
    make_beacon: Callable[..., Beacon], live_server: Any
) -> None:
    tracker = make_beacon()
    server = live_server(tracker.app)
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/p.gif?u=/alone").content == TRANSPARENT_GIF
    server.stop()
    assert tracker.store.query_rows("SELECT path FROM events") == [("/alone",)]


def test_bad_configuration_fails_at_construction() -> None:
    from beacon.exceptions import ConfigurationError
    from mypharm_consent.config import ConsentConfig

    for options in (
        {"site": ""},
        {"site": SITE, "secret_keys": ["short"]},
        {"site": SITE, "ingest": "sometimes"},
        {"site": SITE, "trusted_proxies": ["not-an-ip"]},
        {"site": SITE, "max_body_bytes": 10},
        {"site": SITE, "retention_months": 0},
        {"site": SITE, "fsync_interval": 0},
        {"site": SITE, "spool_max_bytes": 1000},
        {"site": SITE, "analytics_requires_consent": True, "consent": ConsentConfig(["k" * 32])},
    ):
        with pytest.raises(ConfigurationError):
            Beacon(**options)


@pytest.mark.fault
def test_events_answered_while_the_store_fails_are_stored_after(
    make_beacon: Callable[..., Beacon],
) -> None:
    tracker = make_beacon()
    run(tracker.startup())
    tracker.store.command("RENAME TABLE events TO events_away")

    async def visits(start: int) -> None:
        async with client(tracker.app) as http:
            for n in range(start, start + 20):
                answer = await http.get(f"/p.gif?u=/during-{n}")
                assert answer.content == TRANSPARENT_GIF

    run(visits(0))
    deadline = time.monotonic() + 30
    while tracker.counters()["flush_failures"] == 0:
        assert time.monotonic() < deadline, tracker.counters()
        time.sleep(0.05)
    run(visits(20))
    tracker.store.command("RENAME TABLE events_away TO events")
    flush(tracker)
    assert tracker.store.query_rows("SELECT count(), uniqExact(path) FROM events") == [(40, 40)]


_EXIT_SCRIPT = """
import asyncio, sys
from pathlib import Path
import httpx
from beacon import Beacon

root = Path(sys.argv[1])
tracker = Beacon(f"chdb://{root / 'ch'}", site="exit.example", spool_dir=root / "spool")


async def main() -> None:
    transport = httpx.ASGITransport(app=tracker.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/p.gif?u=/exit")).status_code == 200
    await asyncio.sleep(1.5)


asyncio.run(main())
"""

_COUNT_SCRIPT = """
import sys
from beacon.store import Store
store = Store(f"chdb://{sys.argv[1]}/ch")
print(store.query_rows("SELECT count() FROM events WHERE path = '/exit'")[0][0])
"""


def test_a_beacon_started_by_its_first_request_exits_cleanly_and_flushes(
    tmp_path: Path,
) -> None:
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _EXIT_SCRIPT, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    count = subprocess.run(
        [sys.executable, "-c", _COUNT_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert count.returncode == 0, count.stderr[-2000:]
    assert count.stdout.split()[-1] == "2"
