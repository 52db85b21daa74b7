"""``kill -9`` of the server in a burst: every answered event is stored once after restart.

A beacon served by uvicorn in its own process takes a burst of page views,
as pixels (``GET /p.gif``) and as ``navigator.sendBeacon`` posts
(``POST /e``), from 16 concurrent clients, and is killed with SIGKILL in the
middle of it. ``beacon ingest --once`` then claims the dead process's spool
and replays it into the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from beacon.app import TRANSPARENT_GIF

from .conftest import BIN, CHROME, ServedBeacon, stored_paths

pytestmark = [pytest.mark.fault, pytest.mark.slow]


async def _burst(url: str, total: int, answered: list[str], kill_after: int, pid: int) -> None:
    limits = httpx.Limits(max_connections=16)
    headers = {"user-agent": CHROME}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10, headers=headers) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(total):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                path = f"/page-{n}"
                try:
                    if n % 4:
                        answer = await http.get("/p.gif", params={"u": path})
                        ok = answer.status_code == 200 and answer.content == TRANSPARENT_GIF
                    else:
                        answer = await http.post("/e", content=json.dumps({"u": path}))
                        ok = answer.status_code == 204
                except httpx.HTTPError:
                    continue
                if ok:
                    answered.append(path)
                    if len(answered) == kill_after:
                        os.kill(pid, signal.SIGKILL)

        await asyncio.gather(*(worker() for _ in range(16)))


def test_kill_9_in_a_burst_loses_no_answered_event(
    serve_beacon: Callable[..., ServedBeacon], unused_port: int, tmp_path: Path
) -> None:
    chdb, spool = tmp_path / "ch", tmp_path / "spool"
    server = serve_beacon(unused_port, clickhouse_url=f"chdb://{chdb}", spool_dir=str(spool))
    server.wait_ready()
    answered: list[str] = []
    asyncio.run(_burst(server.url, 1200, answered, 600, server.process.pid))
    server.kill()
    assert server.process.returncode == -signal.SIGKILL
    assert len(answered) >= 600

    restart = subprocess.run(
        [str(BIN / "beacon"), "ingest", "--once", "--url", f"chdb://{chdb}", "--spool", str(spool)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert restart.returncode == 0, restart.stderr
    stored = stored_paths(chdb)
    assert [path for path in answered if path not in stored] == []
    assert set(stored.values()) == {1}
    assert len(stored) >= len(answered)
