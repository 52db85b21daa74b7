"""ClickHouse away for 30 s under load: every request answered, nothing lost or doubled after.

The beacon is served over real HTTP (uvicorn) on the real engine while two
client threads request page views back to back. The ``events`` table is
renamed away for 30 s, so every insert fails as it would with the store down,
then put back; a second test points a beacon at a ClickHouse server that does
not answer, then restarts it on the real engine over the same spool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon import Beacon

from .conftest import PixelLoad, pixel, spooled_files, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]

OUTAGE_SECONDS = 30.0


def _stored(tracker: Beacon) -> dict[str, int]:
    return dict(tracker.store.query_rows("SELECT path, count() FROM events GROUP BY path"))


def test_thirty_seconds_without_the_store_under_load_lose_nothing(
    make_beacon: Callable[..., Beacon], live_server: Callable[[Any], Any], tmp_path: Path
) -> None:
    tracker = make_beacon(flush_interval=0.5)
    server = live_server(tracker.app)
    with PixelLoad(server.url, "outage") as load:
        wait_until(lambda: tracker.counters()["flushed_rows"] >= 200, what="events flowing")
        tracker.store.command("RENAME TABLE events TO events_away")
        answered_before = len(load.answered)
        time.sleep(OUTAGE_SECONDS)
        during = tracker.counters()
        answered_during = len(load.answered) - answered_before
        tracker.store.command("RENAME TABLE events_away TO events")
        assert tracker.flusher is not None
        tracker.flusher.wake()
        wait_until(
            lambda: tracker.counters()["flushed_rows"] > during["flushed_rows"] + 100,
            timeout=60,
            what="the spooled events to flow after the outage",
        )
    server.stop()

    assert load.failures == []
    assert answered_during > 100
    assert during["flush_failures"] > 0
    assert during["pending_segments"] > 0
    assert "events" in during["last_error"]
    stored = _stored(tracker)
    assert len(stored) == len(load.answered)
    assert set(stored) == set(load.answered)
    assert set(stored.values()) == {1}
    assert spooled_files(tmp_path / "spool") == []


def test_a_server_that_does_not_answer_then_the_real_engine(
    make_beacon: Callable[..., Beacon],
    live_server: Callable[[Any], Any],
    unused_port: int,
    tmp_path: Path,
) -> None:
    down = make_beacon(clickhouse_url=f"http://127.0.0.1:{unused_port}/beacon", flush_interval=0.5)
    server = live_server(down.app)
    with httpx.Client(base_url=server.url, timeout=20) as http:
        answered = [f"/down-{n}" for n in range(300) if pixel(http, f"/down-{n}")]
        health = http.get("/health").json()
    server.stop()
    assert len(answered) == 300
    assert health["schema_ready"] is False
    assert health["spool_accepted"] == 300
    assert health["housekeeping_failures"] >= 1
    assert len(spooled_files(tmp_path / "spool")) >= 1

    recovered = make_beacon()
    server = live_server(recovered.app)
    with httpx.Client(base_url=server.url, timeout=20) as http:
        answered += [f"/back-{n}" for n in range(100) if pixel(http, f"/back-{n}")]
    server.stop()
    stored = _stored(recovered)
    assert sorted(stored) == sorted(answered)
    assert set(stored.values()) == {1}
    assert spooled_files(tmp_path / "spool") == []
