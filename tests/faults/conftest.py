"""Fixtures of the fault-injection suite: beacons in this process or served in their own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon import Beacon
from beacon.app import TRANSPARENT_GIF
from beacon.spool import OPEN_SUFFIX, SEALED_SUFFIX

SITE = "faults.example"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
BIN = Path(sys.executable).parent

_SERVER = """
import json, os, uvicorn
from beacon import Beacon
options = json.loads(os.environ["FAULT_BEACON"])
port = options.pop("port")
tracker = Beacon(**options)
uvicorn.run(tracker.app, host="127.0.0.1", port=port, log_level="warning")
"""


def wait_until(
    condition: Callable[[], object], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def run_python(code: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (its own chDB directory), capturing its output."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stored_paths(chdb: Path) -> dict[str, int]:
    """``{path: rows}`` of the ``events`` table in the chDB directory ``chdb`` (a subprocess)."""
    done = run_python(f"""
        import json
        from beacon.store import open_store
        store = open_store("chdb://{chdb}")
        print(json.dumps(dict(store.query_rows("SELECT path, count() FROM events GROUP BY path"))))
    """)
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spooled_files(root: Path) -> list[Path]:
    """Segment files (open or sealed) left under a spool root."""
    return sorted([*root.rglob(f"*{SEALED_SUFFIX}"), *root.rglob(f"*{OPEN_SUFFIX}")])


class ServedBeacon:
    """A :class:`Beacon` served by uvicorn in a process of its own; its stderr kept in a file."""

    def __init__(self, tmp_path: Path, port: int, **options: Any) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = tmp_path / f"server-{port}.log"
        env = {**os.environ, "FAULT_BEACON": json.dumps({"port": port, **options})}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(_SERVER)], stderr=log, env=env
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``/health`` answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    pytest.fail(f"the served beacon did not start:\n{self.log.read_text()}")
                time.sleep(0.2)

    def health(self) -> dict[str, Any]:
        """The beacon's ``/health`` counters."""
        answer = httpx.get(f"{self.url}/health", timeout=10)
        assert answer.status_code == 200
        result: dict[str, Any] = answer.json()
        return result

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful stop: on SIGTERM uvicorn runs the lifespan shutdown (which flushes).

        uvicorn then ends by the signal it caught, so the status is -SIGTERM.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=timeout) in (0, -signal.SIGTERM)

    def kill(self) -> None:
        """``kill -9`` if still running, and reap."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nobody listens on (free when the test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve_beacon(tmp_path: Path) -> Iterator[Callable[..., ServedBeacon]]:
    """Factory: ``serve_beacon(port, **Beacon options)`` starts a served beacon, killed after."""
    servers: list[ServedBeacon] = []

    def start(port: int, **options: Any) -> ServedBeacon:
        options.setdefault("site", SITE)
        server = ServedBeacon(tmp_path, port, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def make_beacon(tmp_path: Path, clickhouse_url: str) -> Iterator[Callable[..., Beacon]]:
    """Factory of in-process beacons on this test's database, closed after the test."""
    made: list[Beacon] = []

    def make(**options: Any) -> Beacon:
        options.setdefault("clickhouse_url", clickhouse_url)
        options.setdefault("spool_dir", tmp_path / "spool")
        options.setdefault("site", SITE)
        tracker = Beacon(**options)
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.close(timeout=10.0)


class PixelLoad:
    """Client threads requesting ``/p.gif`` back to back, each page view with its own path.

    ``answered`` lists the paths answered 200 with the GIF; ``failures``
    everything else (another status, another body, a connection error).
    """

    def __init__(self, url: str, prefix: str, threads: int = 2) -> None:
        self.url = url
        self.prefix = prefix
        self.answered: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]

    def __enter__(self) -> PixelLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, worker: int) -> None:
        headers = {"user-agent": CHROME}
        with httpx.Client(base_url=self.url, timeout=20, headers=headers) as http:
            n = 0
            while not self._stop.is_set():
                path = f"/{self.prefix}-{worker}-{n}"
                n += 1
                try:
                    answer = http.get("/p.gif", params={"u": path})
                except httpx.HTTPError as exc:
                    self.failures.append(f"{path}: {type(exc).__name__}")
                    continue
                if answer.status_code == 200 and answer.content == TRANSPARENT_GIF:
                    self.answered.append(path)
                else:
                    self.failures.append(f"{path}: {answer.status_code}")


def pixel(http: httpx.Client, path: str) -> bool:
    """One page view of ``path``; whether it was answered 200 with the GIF."""
    answer = http.get("/p.gif", params={"u": path}, headers={"user-agent": CHROME})
    return answer.status_code == 200 and answer.content == TRANSPARENT_GIF
