"""``beacon init-db`` and ``beacon ingest``, and the multi-worker mode they serve."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from beacon import Beacon
from beacon.cli import main
from beacon.spool import owner_dirs, sealed_segments
from beacon.store import Store

from .conftest import CHROME


def test_init_db_applies_then_reports_up_to_date(
    clickhouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init-db", "--url", clickhouse_url]) == 0
    assert "applied 0001 events" in capsys.readouterr().out
    assert main(["init-db", "--url", clickhouse_url]) == 0
    assert "schema up to date" in capsys.readouterr().out


def test_init_db_prints_cluster_ddl_without_a_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["init-db", "--url", "http://nowhere:8123/beacon", "--cluster", "main", "--print"])
        == 0
    )
    out = capsys.readouterr().out
    assert "ON CLUSTER `main`" in out
    assert "ENGINE = Distributed(`main`, `beacon`, `events_local`, visitor_hash)" in out


def test_init_db_with_a_bad_url_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init-db", "--url", "ftp://x/y"]) == 2
    assert "unknown store URL scheme" in capsys.readouterr().err


def _visit(tracker: Beacon, paths: list[str]) -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=tracker.app, client=("192.0.2.8", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as http:
            for path in paths:
                await http.get(f"/p.gif?u={path}", headers={"user-agent": CHROME})

    asyncio.run(go())


def test_ingest_drains_workers_that_do_not_own_the_store(
    make_beacon: Callable[..., Beacon], clickhouse_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "workers"
    stopped = make_beacon(spool_dir=root, ingest="external")
    _visit(stopped, ["/a", "/b"])
    stopped.close()
    live = make_beacon(spool_dir=root, ingest="external")
    _visit(live, ["/c"])
    deadline = time.monotonic() + 30
    live_dir = live.spool_path
    assert live_dir is not None
    assert live_dir in owner_dirs(root)
    while not sealed_segments(live_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert main(["ingest", "--once", "--url", clickhouse_url, "--spool", str(root)]) == 0
    store = Store(clickhouse_url)
    assert store.query_rows("SELECT path FROM events ORDER BY path") == [("/a",), ("/b",), ("/c",)]
    hashes = store.query_rows("SELECT uniqExact(visitor_hash) FROM events")
    assert hashes == [(1,)]
    assert live.counters()["ingest"] == "external"
