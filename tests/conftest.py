"""Fixtures shared by every test package: a real headless Chromium, a live server, the log."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """An ASGI app served by uvicorn on a loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="auto"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], LiveServer]]:
    """Factory: ``live_server(app)`` serves ``app`` and returns the running server."""
    servers: list[LiveServer] = []

    def start(app: Any) -> LiveServer:
        server = LiveServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page for one test."""
    context = browser.new_context(locale="fr-FR")
    yield context.new_page()
    context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests keep screenshots and other artifacts for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded ClickHouse directory of this test process.

    chDB binds a process to the first directory it opens, for the life of the
    process, so every in-process test shares this directory and isolates
    itself with a database of its own (see ``clickhouse_url``).
    """
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def clickhouse_url(chdb_path: Path) -> str:
    """A ``chdb://`` URL naming a fresh, empty database for one test."""
    return f"chdb://{chdb_path}?database=t_{uuid.uuid4().hex[:12]}"


class SuiteLog(logging.Handler):
    """Every log record of the test run, one line each with its arguments, appended to a file."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.DEBUG)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._file.write(self.format(record).replace("\n", "\\n") + "\n")
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            if not self._file.closed:
                self._file.flush()
        finally:
            self.release()

    def close(self) -> None:
        # ``logging.config.dictConfig`` (uvicorn calls it for every live server) closes
        # every handler in the process: the file stays open until ``finish``.
        self.flush()

    def finish(self) -> None:
        """Close the file at the end of the run."""
        self.acquire()
        try:
            self._file.close()
        finally:
            self.release()
        super().close()


@pytest.fixture(scope="session", autouse=True)
def suite_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteLog]:
    """Every logger at DEBUG, into ``suite.log`` under the run's base temporary directory.

    The privacy scan (``tests/security/test_privacy_scan.py``) reads it last.
    """
    handler = SuiteLog(tmp_path_factory.getbasetemp() / "suite.log")
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)
    handler.finish()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last, then the modules that declare ``RUNS_LAST = True``.

    The synchronous Playwright API keeps an event loop running in the main
    thread for as long as the session's browser lives, which would stop every
    later test from starting an event loop of its own there. The privacy scan
    runs after everything, so that it sees every table and log line.
    """
    items.sort(
        key=lambda item: (
            getattr(getattr(item, "module", None), "RUNS_LAST", False),
            item.get_closest_marker("browser") is not None,
        )
    )
