"""Fixtures of the e-mail tests: a beacon on the real engine, served over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon import Beacon

from .email_fixtures import BASE_URL, KEY, SITE, WallClock, host_app


@pytest.fixture
def clock() -> WallClock:
    """The beacon's clock, advanced by the test to time opens and clicks."""
    return WallClock()


@pytest.fixture
def make_tracker(tmp_path: Path, clock: WallClock) -> Iterator[Callable[..., Beacon]]:
    """Factory of beacons spooling under ``tmp_path``, closed at the end of the test."""
    made: list[Beacon] = []

    def make(clickhouse_url: str, **options: Any) -> Beacon:
        options.setdefault("spool_dir", tmp_path / "spool")
        tracker = Beacon(clickhouse_url, [KEY], SITE, base_url=BASE_URL, clock=clock, **options)
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.close(timeout=2.0)


@pytest.fixture
def served(
    make_tracker: Callable[..., Beacon], clickhouse_url: str, live_server: Any
) -> Iterator[tuple[Beacon, httpx.Client]]:
    """A beacon on the real engine, mounted at ``/b`` of a site served by uvicorn."""
    tracker = make_tracker(clickhouse_url)
    server = live_server(host_app(tracker))
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        yield tracker, http
