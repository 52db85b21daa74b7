"""Every answered page view survives ``kill -9`` of the server and is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.fault, pytest.mark.slow]

SERVER = """
import sys, uvicorn
from beacon import Beacon
tracker = Beacon("chdb://{chdb}", site="crash.example", spool_dir="{spool}")
uvicorn.run(tracker.app, host="127.0.0.1", port={port}, log_level="warning")
"""

RESTART = """
import json, sys
from beacon.cli import main
from beacon.store import open_store
status = main(["ingest", "--once", "--url", "chdb://{chdb}", "--spool", "{spool}"])
store = open_store("chdb://{chdb}")
rows = store.query_rows("SELECT path, count() FROM events GROUP BY path")
print(json.dumps({{"status": status, "paths": dict(rows)}}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _burst(url: str, total: int, answered: list[str], kill_after: int, pid: int) -> None:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(total):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                try:
                    answer = await http.get(f"/p.gif?u=/page-{n}")
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200:
                    answered.append(f"/page-{n}")
                    if len(answered) == kill_after:
                        os.kill(pid, signal.SIGKILL)

        await asyncio.gather(*(worker() for _ in range(16)))


def test_kill_9_in_a_burst_loses_no_answered_event(tmp_path: Path) -> None:
    chdb, spool, port = tmp_path / "ch", tmp_path / "spool", _free_port()
    code = SERVER.format(chdb=chdb, spool=spool, port=port)
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        answered: list[str] = []
        asyncio.run(_burst(f"http://127.0.0.1:{port}", 1200, answered, 600, server.pid))
    finally:
        server.kill()
        server.wait(timeout=30)
    assert server.returncode == -signal.SIGKILL
    assert len(answered) >= 600
    restart = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RESTART.format(chdb=chdb, spool=spool))],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert restart.returncode == 0, restart.stderr
    result = json.loads(restart.stdout.strip().splitlines()[-1])
    assert result["status"] == 0
    stored: dict[str, int] = result["paths"]
    missing = [path for path in answered if path not in stored]
    assert missing == []
    assert set(stored.values()) == {1}
    assert len(stored) >= len(answered)
