"""Soak: minutes of mixed traffic at half the measured maximum, watching memory and losses.

A demo-like site (:func:`create_app`: HTML pages with third-party tags and a
JSON route behind ``ConsentMiddleware``, consent receipts, the beacon mounted
at ``/b`` with e-mail tracking, all on the embedded engine) is served by
uvicorn (httptools, uvloop) in a subprocess, and gets a mix of requests:
page views as pixels (``/b/p.gif``, varied pages, referrers, campaigns and
User-Agents, with a long tail never seen twice) and as ``POST /b/e``, e-mail
opens and clicks, HTML pages with and without a consent cookie, the
preferences page, consent decisions, and JSON.

1. The maximum rate of the mix is measured on a throwaway server: ``wrk -t1
   -c32`` replaying the mix from a Lua script (the script's own client at
   full speed when wrk is not installed).
2. A fresh server gets the mix at half that rate for ``--minutes`` from a
   paced client (open loop: request *i* is due *i / rate* seconds after the
   start) over keep-alive connections; its RSS is read from ``/proc`` every
   few seconds.
3. SIGTERM (the graceful shutdown flushes the spool), then the checks: RSS
   growth from the 1-minute mark to the end under 10 %, no spool segment
   left, as many events and receipts stored as requests answered, no 5xx.

    .venv/bin/python benchmarks/soak.py [--minutes 10]

Prints a Markdown summary; exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SITE = "soak.example"
T = TypeVar("T")
SITE_KEY = "soak-benchmark-secret-key-0123456789"

_USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
]
_PAGES = ["/", "/produits", "/contact", "/pharmacie-de-garde"] + [
    f"/conseils/article-{n}" for n in range(60)
]
_REFERRERS = [
    "",
    "https://www.google.com/",
    "https://www.bing.com/search?q=pharmacie",
    "https://duckduckgo.com/",
    "https://www.facebook.com/",
    "https://t.co/abc",
    "https://www.doctissimo.fr/forum/sante",
]
_UTMS = [
    "",
    "&utm_source=newsletter&utm_medium=email&utm_campaign=soak-novembre",
    "&utm_source=facebook&utm_medium=social&utm_campaign=automne",
    "&utm_source=google&utm_medium=cpc&utm_campaign=vitamines",
]
_KINDS = {
    "pixel": 40,
    "event": 8,
    "open": 8,
    "click": 6,
    "page": 22,
    "preferences": 4,
    "decide": 2,
    "json": 10,
}
#: Kinds whose answer means one row in ``events``, with the status that says so.
RECORDING = {"pixel": 200, "event": 204, "open": 200, "click": 302}

_PAGE = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>{title} – Pharmacie du Marché</title>
<script async src="https://www.googletagmanager.com/gtag/js?id=G-SOAK01"></script>
<script src="/b/beacon.js" defer></script>
</head>
<body>
<header><a href="/">Pharmacie du Marché</a> <a href="/_consent/preferences">Cookies</a></header>
<main><h1>{title}</h1>
{products}
<iframe src="https://www.youtube.com/embed/soak{number}" title="Conseil vidéo"></iframe>
</main>
<footer><p>Pharmacie du Marché, 1 place du Marché.</p></footer>
</body>
</html>
"""
_PRODUCT = (
    '<article class="product"><h2>Produit {n}</h2><p>Comprimés, boîte de {count}.</p>'
    '<p class="price">{price} €</p><a href="/produits/{n}">Voir</a></article>\n'
)


def create_app() -> Any:
    """The soaked site (``uvicorn --factory benchmarks.soak:create_app``).

    ``SOAK_DIR`` holds its spool and embedded database; ``SOAK_BASE_URL`` is
    where it is served (for the e-mail links).
    """
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route

    from beacon.receipts import ReceiptRecorder
    from mypharm_consent import Category, ConsentConfig, ConsentMiddleware

    directory = Path(os.environ["SOAK_DIR"])
    base_url = os.environ.get("SOAK_BASE_URL", "http://127.0.0.1:8000")
    tracker = _tracker(directory, base_url)
    text = {"fr": "Texte", "en": "Text"}
    config = ConsentConfig(
        secret_keys=[SITE_KEY],
        cookie_secure=False,
        on_decision=ReceiptRecorder(tracker),
        categories=[
            Category("preferences", label=text, description=text, cookies=("pref_*",)),
            Category("analytics", label=text, description=text, services=("google-analytics",)),
            Category("marketing", label=text, description=text, services=("youtube",)),
        ],
    )

    def page(title: str, number: int) -> str:
        products = "".join(
            _PRODUCT.format(n=number * 20 + n, count=8 + n % 3 * 8, price=f"{n % 9 + 1},90")
            for n in range(20)
        )
        return _PAGE.format(title=title, number=number, products=products)

    pages = {path: page(path.rsplit("/", 1)[-1] or "Accueil", n) for n, path in enumerate(_PAGES)}
    stock = {"products": [{"sku": n, "stock": n % 13} for n in range(100)]}

    async def html(request: Request) -> Response:
        return HTMLResponse(pages.get(request.url.path, pages["/"]))

    async def stock_json(request: Request) -> Response:
        return JSONResponse(stock)

    def engine_memory() -> dict[str, int]:
        rows = tracker.store.query_rows(
            "SELECT metric, value FROM system.metrics WHERE metric = 'MemoryTracking'"
            " OR (metric LIKE '%Cache%Bytes%' AND value != 0)"
        )
        return {str(name): int(value) for name, value in rows}

    async def memory(request: Request) -> Response:
        # Where the server's memory goes: Python objects, the C heap, the embedded engine's count.
        engine = await anyio.to_thread.run_sync(engine_memory)
        return JSONResponse(
            {
                "python_blocks": sys.getallocatedblocks(),
                "engine_bytes": engine.pop("MemoryTracking"),
                "engine_caches": engine,
                **_c_heap(),
                "traced": _traced_growth() if os.environ.get("SOAK_TRACE_MEMORY") else [],
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with tracker.lifespan():
            yield

    routes = [Route(path, html) for path in _PAGES]
    routes += [
        Route("/api/stock.json", stock_json),
        Route("/_soak/memory", memory),
        Mount("/b", app=tracker.app),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(ConsentMiddleware, config=config)],
        lifespan=lifespan,
    )


def _tracker(directory: Path, base_url: str) -> Any:
    from beacon import Beacon

    return Beacon(
        f"chdb://{directory / 'clickhouse'}",
        secret_keys=[SITE_KEY],
        site=SITE,
        spool_dir=directory / "spool",
        base_url=f"{base_url}/b",
    )


# -- the traffic --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One request of the mix: its kind, method, target, headers and body."""

    kind: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass
class Mix:
    """Generates the requests of the mix, and learns the form token and a consent cookie."""

    origin: str
    seed: int = 1
    csrf: str = ""
    consent_cookie: str = ""
    #: Written in place of the never-seen-before numbers (the Lua script draws them).
    unique_marker: str = ""
    rng: random.Random = field(init=False)
    opens: list[str] = field(init=False)
    clicks: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        email = _tracker(Path(tempfile.gettempdir()) / "soak-unused", self.origin).email
        prefix = len(self.origin)
        self.opens = [
            email.pixel_url("soak-novembre", f"client{n}@example.org")[prefix:] for n in range(300)
        ]
        self.clicks = [
            email.click_url(
                "soak-novembre", f"client{n}@example.org", "https://soak.example/produits", 1
            )[prefix:]
            for n in range(300)
        ]

    def _unique(self) -> str:
        if self.unique_marker:
            return self.unique_marker
        return str(self.rng.randrange(10**9))

    def _agent(self) -> str:
        if self.rng.random() < 0.05:
            # The long tail: a User-Agent never seen before.
            return (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
                f" Chrome/124.0.{self._unique()}.0 Safari/537.36"
            )
        return self.rng.choice(_USER_AGENTS)

    def _page(self) -> str:
        if self.rng.random() < 0.1:
            return f"/conseils/archive-{self._unique()}"
        return self.rng.choice(_PAGES)

    def next(self) -> Call:
        """The next request of the mix."""
        rng = self.rng
        kind = rng.choices(list(_KINDS), weights=list(_KINDS.values()))[0]
        agent = ("User-Agent", self._agent())
        if kind == "pixel":
            referrer = rng.choice(_REFERRERS)
            query = f"u={quote(self._page())}&r={quote(referrer)}{rng.choice(_UTMS)}"
            return Call(kind, "GET", f"/b/p.gif?{query}", (agent,))
        if kind == "event":
            body = json.dumps({"u": self._page(), "r": rng.choice(_REFERRERS)}).encode()
            headers = (agent, ("Content-Type", "text/plain"))
            return Call(kind, "POST", "/b/e", headers, body)
        if kind == "open":
            return Call(kind, "GET", rng.choice(self.opens), (agent,))
        if kind == "click":
            return Call(kind, "GET", rng.choice(self.clicks), (agent,))
        cookie = (("Cookie", self.consent_cookie),) if self.consent_cookie else ()
        language = ("Accept-Language", rng.choice(["fr-FR,fr;q=0.9", "en-GB,en;q=0.8"]))
        if kind == "page":
            decided = cookie if rng.random() < 0.5 else ()
            return Call(kind, "GET", rng.choice(_PAGES), (agent, language, *decided))
        if kind == "preferences":
            return Call(kind, "GET", "/_consent/preferences", (agent, language, *cookie))
        if kind == "decide" and self.csrf:
            action = rng.choice(["accept_all", "reject_all"])
            form = f"csrf={self.csrf}&next=%2F&lang=fr&from=banner&action={action}"
            headers = (
                agent,
                ("Origin", self.origin),
                ("Content-Type", "application/x-www-form-urlencoded"),
            )
            return Call(kind, "POST", "/_consent/decide", headers, form.encode())
        return Call("json", "GET", "/api/stock.json", (agent,))

    def observe(
        self, request: Call, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """Learn the banner's form token and a granted consent cookie from answers."""
        if request.kind == "page" and status == 200:
            found = re.search(rb'name="csrf" value="([^"]+)"', body)
            if found:
                self.csrf = found.group(1).decode()
        if request.kind == "decide" and status == 303 and "accept_all" in request.body.decode():
            for name, value in headers:
                if name == "set-cookie" and "max-age=0" not in value.lower():
                    self.consent_cookie = value.split(";", 1)[0]


# -- a small HTTP/1.1 client --------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection to the server (plain asyncio streams)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: Call) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send ``request``, read the whole answer: (status, headers, body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in request.headers]
        if request.body or request.method == "POST":
            lines.append(f"Content-Length: {len(request.body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers: list[tuple[str, str]] = []
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        fields = dict(headers)
        if "content-length" in fields:
            body = await reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            body = b"".join(chunks)
        else:
            body = await reader.read()
            fields["connection"] = "close"
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        """Close the socket (the next exchange reconnects)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    """Answers by (kind, status), client-side errors by kind, and the pace kept."""

    answers: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    sent: int = 0
    seconds: float = 0.0
    late: float = 0.0

    def count(self, kind: str, status: int | None = None) -> int:
        """Answers of ``kind`` (with ``status`` if given)."""
        return sum(n for (k, s), n in self.answers.items() if k == kind and status in (None, s))

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(n for (_, status), n in self.answers.items() if status >= 500)


async def drive(
    port: int, mix: Mix, seconds: float, rate: float | None, connections: int = 32
) -> Tally:
    """Send the mix for ``seconds``: ``rate`` requests per second, or as fast as possible."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    start = loop.time()
    end = start + seconds

    async def worker() -> None:
        connection = Connection(port)
        while True:
            index = tally.sent
            now = loop.time()
            due = start + index / rate if rate else now
            if due >= end or now >= end:
                break
            tally.sent += 1
            delay = due - now
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                tally.late = max(tally.late, -delay)
            request = mix.next()
            try:
                status, headers, body = await connection.exchange(request)
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ) as exc:
                tally.errors[f"{request.kind}: {type(exc).__name__}"] += 1
                connection.close()
                continue
            tally.answers[request.kind, status] += 1
            mix.observe(request, status, headers, body)
        connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    tally.seconds = loop.time() - start
    return tally


# -- the server ---------------------------------------------------------------


def serve(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """Start uvicorn (httptools, uvloop) on ``port`` serving :func:`create_app`."""
    env = {
        **os.environ,
        "SOAK_DIR": str(directory),
        "SOAK_BASE_URL": f"http://127.0.0.1:{port}",
        "PYTHONPATH": str(ROOT),
    }
    from loopback import uvicorn_command

    command = uvicorn_command("benchmarks.soak:create_app", port, "--factory")
    return subprocess.Popen(command, cwd=ROOT, env=env)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on uvloop: the client must cost the machine less than the server."""
    import uvloop

    return uvloop.run(coroutine)


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid``, from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def stop(server: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Graceful stop: SIGTERM runs the lifespan shutdown (which flushes), then wait."""
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=timeout)


async def _get_json(port: int, target: str) -> dict[str, Any]:
    connection = Connection(port)
    status, _, body = await connection.exchange(Call("diagnostics", "GET", target))
    connection.close()
    if status != 200:
        raise RuntimeError(f"GET {target}: {status}")
    result: dict[str, Any] = json.loads(body)
    return result


_LUA = """
local requests, index = {}, 0
init = function(args)
  requests = {
ROWS
  }
  for _, r in ipairs(requests) do
    if not r.unique then r.raw = wrk.format(r.method, r.path, r.headers, r.body) end
  end
end
request = function()
  index = index % #requests + 1
  local r = requests[index]
  if r.raw then return r.raw end
  local n = tostring(math.random(1, 1000000000))
  local headers = {}
  for k, v in pairs(r.headers) do headers[k] = (v:gsub("MARKER", n)) end
  return wrk.format(r.method, (r.path:gsub("MARKER", n)), headers, r.body)
end
"""


def _lua_script(mix: Mix, path: Path, count: int = 3000) -> None:
    """A wrk script replaying ``count`` requests of the mix; the long tail stays unique."""

    def literal(text: str) -> str:
        return "[==[" + text + "]==]"

    marker = "UNIQUEMARKER"
    mix.unique_marker = marker
    rows = []
    for _ in range(count):
        request = mix.next()
        headers = ", ".join(f"[ {literal(k)} ] = {literal(v)}" for k, v in request.headers)
        body = literal(request.body.decode()) if request.body else "nil"
        unique = str(marker in request.target + str(request.headers)).lower()
        rows.append(
            f"    {{method = {literal(request.method)}, path = {literal(request.target)}, "
            f"headers = {{{headers}}}, body = {body}, unique = {unique}}},"
        )
    mix.unique_marker = ""
    path.write_text(_LUA.replace("MARKER", marker).replace("ROWS", "\n".join(rows)))


def measure_max(seconds: float) -> tuple[float, str]:
    """The mix's maximum rate (req/s) on a throwaway server, and how it was measured."""
    from loopback import free_port, wait_port

    with tempfile.TemporaryDirectory(prefix="soak-max-") as tmp:
        port = free_port()
        server = serve(Path(tmp), port)
        try:
            wait_port(port, timeout=120)
            origin = f"http://127.0.0.1:{port}"
            mix = Mix(origin, seed=7)
            _run(drive(port, mix, 3.0, None, connections=8))
            if shutil.which("wrk"):
                script = Path(tmp) / "mix.lua"
                _lua_script(mix, script)
                done = subprocess.run(
                    ["wrk", "-t1", "-c32", f"-d{seconds:.0f}s", "-s", str(script), origin],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
                if not found:
                    raise RuntimeError(done.stdout)
                return float(found.group(1)), "wrk -t1 -c32, Lua script replaying the mix"
            tally = _run(drive(port, mix, seconds, None))
            return tally.sent / tally.seconds, "the soak client at full speed (no wrk)"
        finally:
            stop(server)


@dataclass
class Samples:
    """RSS samples of the server, (seconds since the start, bytes), and where it goes."""

    points: list[tuple[float, int]] = field(default_factory=list)
    #: ``/_soak/memory`` at the 1-minute mark and at the end.
    details: list[dict[str, Any]] = field(default_factory=list)

    def at(self, seconds: float) -> int:
        """The first sample taken at or after ``seconds``."""
        return next(rss for t, rss in self.points if t >= seconds)


async def _sample(
    pid: int, port: int, samples: Samples, every: float, mark: float, until: Callable[[], bool]
) -> None:
    start = time.monotonic()
    while not until():
        elapsed = time.monotonic() - start
        samples.points.append((elapsed, rss_bytes(pid)))
        if elapsed >= mark and not samples.details:
            samples.details.append(await _get_json(port, "/_soak/memory"))
        await asyncio.sleep(every)


def _stored(directory: Path) -> tuple[int, int, dict[str, int]]:
    """(events, receipts, events by kind) stored; open only once the server is gone."""
    from beacon.receipts.rows import RECEIPTS_TABLE
    from beacon.store import open_store

    store = open_store(f"chdb://{directory / 'clickhouse'}")
    ((events,),) = store.query_rows("SELECT count() FROM events")
    ((receipts,),) = store.query_rows(f"SELECT count() FROM {RECEIPTS_TABLE}")
    kinds = dict(store.query_rows("SELECT toString(kind), count() FROM events GROUP BY kind"))
    return events, receipts, kinds


def _segments(root: Path) -> list[Path]:
    from beacon.spool import OPEN_SUFFIX, SEALED_SUFFIX

    return [*root.rglob(f"*{SEALED_SUFFIX}"), *root.rglob(f"*{OPEN_SUFFIX}")]


@contextlib.contextmanager
def _work_dir(keep: str | None) -> Iterator[Path]:
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            yield Path(tmp)


def soak(minutes: float, max_seconds: float, sample_every: float, keep: str | None) -> bool:
    """Run the whole soak, print the Markdown summary; ``True`` when every check holds."""
    from loopback import free_port, wait_port

    maximum, how = measure_max(max_seconds)
    rate = maximum / 2
    print(
        f"maximum of the mix: {maximum:,.0f} req/s ({how}); soaking at {rate:,.0f} req/s "
        f"for {minutes:g} min",
        flush=True,
    )
    with _work_dir(keep) as directory:
        port = free_port()
        server = serve(directory, port)
        samples = Samples()
        try:
            wait_port(port, timeout=120)
            mix = Mix(f"http://127.0.0.1:{port}")

            async def run() -> Tally:
                done = False
                mark = min(60.0, minutes * 30)
                sampler = asyncio.create_task(
                    _sample(server.pid, port, samples, sample_every, mark, lambda: done)
                )
                tally = await drive(port, mix, minutes * 60, rate)
                done = True
                await sampler
                # The end sample comes first: the diagnostics' own queries allocate.
                samples.points.append((tally.seconds, rss_bytes(server.pid)))
                samples.details.append(await _get_json(port, "/_soak/memory"))
                return tally

            async def health() -> dict[str, Any]:
                return await _get_json(port, "/b/health")

            tally = _run(run())
            counters = _run(health())
        finally:
            stop(server)
        left = _segments(directory / "spool")
        events, receipts, kinds = _stored(directory)
    answered_events = sum(tally.count(kind, status) for kind, status in RECORDING.items())
    answered_receipts = tally.count("decide", 303)
    one_minute = samples.at(min(60.0, minutes * 30))
    end = samples.points[-1][1]
    peak = max(rss for _, rss in samples.points)
    growth = (end - one_minute) / one_minute
    checks = {
        "RSS growth from the 1-minute mark to the end < 10 %": growth < 0.10,
        "zero 5xx": tally.server_errors == 0,
        "no client-side error (reset, timeout)": not tally.errors,
        "spool drained (no segment left after shutdown)": not left,
        "events stored == events answered": events == answered_events,
        "receipts stored == decisions answered": receipts == answered_receipts,
    }
    _summary(
        minutes,
        maximum,
        how,
        rate,
        tally,
        samples,
        one_minute,
        end,
        peak,
        growth,
        events,
        answered_events,
        receipts,
        answered_receipts,
        kinds,
        counters,
        left,
        checks,
    )
    return all(checks.values())


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _c_heap() -> dict[str, int]:
    """The C heap as glibc counts it: bytes in use and bytes held free (0 without glibc)."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {"heap_used": 0, "heap_free": 0}
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {"heap_used": info.uordblks + info.hblkhd, "heap_free": info.fordblks}


def _traced_growth(lines: int = 12) -> list[str]:
    """Python memory allocated since the first call and still held, by source line.

    The first call starts tracing (``--trace-memory``, from the 1-minute
    mark); later calls list the lines holding the most of it.
    """
    if not tracemalloc.is_tracing():
        tracemalloc.start(1)
        return []
    top = tracemalloc.take_snapshot().statistics("lineno")[:lines]
    return [
        f"{stat.size / 1024:,.0f} KiB in {stat.count:,} blocks: {stat.traceback}" for stat in top
    ]


def _memory_rows(samples: Samples) -> list[tuple[str, str]]:
    if len(samples.details) < 2:
        return []
    mark, end = samples.details[0], samples.details[-1]
    mib = 1024 * 1024
    return [
        (
            "embedded engine's tracked memory, 1 min / end",
            f"{mark['engine_bytes'] / mib:,.1f} / {end['engine_bytes'] / mib:,.1f} MiB",
        ),
        (
            "Python allocated blocks, 1 min / end",
            f"{mark['python_blocks']:,} / {end['python_blocks']:,}",
        ),
        (
            "C heap in use / held free (glibc), 1 min / end",
            f"{mark['heap_used'] / mib:,.1f} / {mark['heap_free'] / mib:,.1f} MiB, "
            f"{end['heap_used'] / mib:,.1f} / {end['heap_free'] / mib:,.1f} MiB",
        ),
        (
            "embedded engine's caches at the end",
            ", ".join(
                f"{name} {value / mib:,.1f} MiB" for name, value in end["engine_caches"].items()
            )
            or "empty",
        ),
        *(("still held, allocated after 1 min", line) for line in end["traced"]),
    ]


def _summary(
    minutes: float,
    maximum: float,
    how: str,
    rate: float,
    tally: Tally,
    samples: Samples,
    one_minute: int,
    end: int,
    peak: int,
    growth: float,
    events: int,
    answered_events: int,
    receipts: int,
    answered_receipts: int,
    kinds: dict[str, int],
    health: dict[str, Any],
    left: list[Path],
    checks: dict[str, bool],
) -> None:
    mib = 1024 * 1024
    print(f"\n## Soak: {minutes:g} min of mixed traffic at half the maximum\n")
    print("| measure | value |")
    print("| --- | ---: |")
    rows = [
        ("maximum rate of the mix", f"{maximum:,.0f} req/s ({how})"),
        ("target rate (half)", f"{rate:,.0f} req/s"),
        (
            "requests sent",
            f"{tally.sent:,} in {tally.seconds:,.0f} s "
            f"({tally.sent / tally.seconds:,.0f} req/s; largest lag behind the schedule "
            f"{tally.late * 1000:,.0f} ms)",
        ),
        ("5xx answers", f"{tally.server_errors}"),
        ("client-side errors", ", ".join(f"{k} {n}" for k, n in tally.errors.items()) or "0"),
        (
            "RSS at 1 min / end / peak",
            f"{one_minute / mib:,.1f} / {end / mib:,.1f} / {peak / mib:,.1f} MiB",
        ),
        ("RSS growth, 1 min to end", f"{growth:+.1%}"),
        ("events answered / stored", f"{answered_events:,} / {events:,}"),
        ("stored events by kind", ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items()))),
        ("decisions answered / receipts stored", f"{answered_receipts:,} / {receipts:,}"),
        ("spool segments left after shutdown", f"{len(left)}"),
        *_memory_rows(samples),
        (
            "flush failures, dropped, write errors (/health)",
            f"{health.get('flush_failures', 0)}, {health.get('spool_dropped', 0)}, "
            f"{health.get('spool_write_errors', 0)}",
        ),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\n| kind | answers by status |")
    print("| --- | --- |")
    for kind in _KINDS:
        statuses = sorted((s, n) for (k, s), n in tally.answers.items() if k == kind)
        print(f"| {kind} | {', '.join(f'{s}: {n:,}' for s, n in statuses)} |")
    print("\n| RSS sample (s) | MiB |")
    print("| ---: | ---: |")
    step = max(1, len(samples.points) // 20)
    for t, rss in samples.points[::step] + samples.points[-1:]:
        print(f"| {t:,.0f} | {rss / mib:,.1f} |")
    print("\n| check | result |")
    print("| --- | --- |")
    for name, ok in checks.items():
        print(f"| {name} | {'pass' if ok else 'FAIL'} |")


def main() -> None:
    """Parse the options, soak, exit 1 if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=10.0, help="length of the max run")
    parser.add_argument("--sample-every", type=float, default=2.0, help="RSS sampling period (s)")
    parser.add_argument("--keep", metavar="DIR", help="keep the spool and database in DIR")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="trace the server's Python allocations from the 1-minute mark (slows it down)",
    )
    args = parser.parse_args()
    if args.trace_memory:
        os.environ["SOAK_TRACE_MEMORY"] = "1"
    ok = soak(args.minutes, args.max_seconds, args.sample_every, args.keep)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
