"""The beacon: a pure ASGI app that counts page views into ClickHouse, losslessly.

::

    tracker = Beacon(site="mypharm.fr", clickhouse_url="chdb:///srv/site/.data/clickhouse")
    app.mount("/b", tracker.app)            # or run tracker.app on its own

Endpoints (relative to the mount point)
---------------------------------------
``GET /p.gif``      page view (query ``u`` page URL or path, else the ``Referer``
                    header; ``r`` referrer; ``utm_*``; ``k``/``n`` kind and name
                    for custom events): a 43-byte GIF, ``Cache-Control: no-store``.
``POST /e``         the same as a small JSON object (``navigator.sendBeacon``): 204.
``GET /beacon.js``  the external script sending page views (see ``static/beacon.js``).
``GET /health``     JSON counters: accepted, dropped, flush failures, pending segments...

Every answer is given whatever happens: malformed or non-UTF-8 input,
oversized headers or bodies, ClickHouse down, spool full; the failure is
counted, never raised. ``/p.gif`` is dispatched on the raw ASGI scope, before
any routing.

Extra routes
------------
Other parts of a site's beacon (e-mail opens, clicks, unsubscribes) add
Starlette routes, matched after the built-in endpoints::

    tracker = Beacon(..., routes=email_routes(email_tracker))
    tracker.add_routes([Route("/o/{token}.gif", open_pixel)])

Their endpoints record through :meth:`Beacon.record` (events) or
:meth:`Beacon.spool` (rows of another table), both lossless.

Start-up and shutdown
---------------------
Standalone (``uvicorn module:tracker.app``), the app handles the ASGI
lifespan itself. Mounted in a host app, whose lifespan does not reach mounted
apps, the beacon starts by itself on its first request; hand it the host's
lifespan so that migrations run at start-up and shutdown flushes::

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with tracker.lifespan():
            yield

    app = Starlette(routes=[Mount("/b", tracker.app)], lifespan=lifespan)

(or ``await tracker.startup()`` / ``await tracker.shutdown()``). Store work
always runs in threads, never on the event loop.

Several worker processes
------------------------
Each process has its own spool directory under ``spool_dir``. With a
ClickHouse server every worker flushes its own spool (``ingest="inline"``).
With the embedded engine only one process may own the database: run the
workers with ``ingest="external"`` (they spool, share daily salts through a
file, and never open the store) and one ``beacon ingest --spool DIR`` process
that owns the database and drains every worker's spool.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread
from starlette.routing import BaseRoute, Router

from beacon.anonymize import (
    FileSalts,
    SaltSource,
    StoreSalts,
    TrustedProxies,
    client_ip,
    utm_params,
)
from beacon.email.tracker import EmailTracker
from beacon.events import EVENT_COLUMNS, PixelEvent
from beacon.exceptions import ConfigurationError, StoreError
from beacon.flusher import Flusher
from beacon.migrations import DEFAULT_RETENTION_MONTHS, migrate
from beacon.pageviews import (
    BoundPixelRecorder,
    PageHit,
    PageviewEncoder,
    bound_pixel_recorder,
    epoch_ns,
    page_event,
    pixel_recorder,
)
from beacon.spool import (
    ROW_BINARY,
    TAB_SEPARATED,
    Spool,
    SpoolDir,
    compiled_speedups,
    stats_dict,
)
from beacon.store import Store

if TYPE_CHECKING:
    from mypharm_consent.config import ConsentConfig
    from mypharm_consent.state import ConsentState

__all__ = ["DEFAULT_SPOOL_DIR", "EVENTS_TABLE", "TRANSPARENT_GIF", "AppStats", "Beacon"]

logger = logging.getLogger("beacon")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The raw events table every :class:`PixelEvent` goes to.
EVENTS_TABLE = "events"
#: Where spools live when nothing else is configured (relative to the CWD).
DEFAULT_SPOOL_DIR = Path(".data") / "spool"
#: The smallest transparent 1x1 GIF (43 bytes).
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_NO_STORE = (b"cache-control", b"no-store, max-age=0")
# No ``X-Content-Type-Options: nosniff`` here: the body is always the same
# valid GIF, which no sniffing can read as anything else, and the header
# would cost every page view 31 bytes and the server's validation of one
# more header (beacon.js, a script, does carry it).
_GIF_HEADERS = (
    (b"content-type", b"image/gif"),
    (b"content-length", b"43"),
    _NO_STORE,
)
_EMPTY_HEADERS = ((b"content-length", b"0"), _NO_STORE)
_MAX_QUERY = 4096
_MAX_HEADER = 4096
_MAX_FIELD = 2048
_SCRIPT = resources.files("beacon").joinpath("static/beacon.js").read_bytes()
_SCRIPT_HEADERS = (
    (b"content-type", b"text/javascript; charset=utf-8"),
    (b"content-length", str(len(_SCRIPT)).encode()),
    (b"cache-control", b"public, max-age=3600"),
    (b"x-content-type-options", b"nosniff"),
)


if TYPE_CHECKING or compiled_speedups is None:

    @dataclass
    class AppStats:
        """Counters of the request side (integers, updated on the event loop)."""

        requests: int = 0
        recorded: int = 0
        not_consented: int = 0
        bad_requests: int = 0
        record_failures: int = 0
        housekeeping_failures: int = 0

else:
    # The same counters as C integers, which the compiled front counts in.
    AppStats = compiled_speedups.AppStats


async def _front_call(front: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """The compiled front's ``__call__`` looked up by name: the tracker's own path.

    Servers tell an ASGI 3 application by its ``__call__`` being a coroutine
    function; a call of the front itself goes through its C slot instead.
    """
    await front.beacon(scope, receive, send)


if compiled_speedups is not None:
    compiled_speedups.define_call(_front_call)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _text(raw: bytes, limit: int = _MAX_FIELD) -> str:
    return raw[:limit].decode("utf-8", "replace")


class Beacon:
    """The first-party, anonymous beacon of one site; ``tracker.app`` is its ASGI app.

    ``clickhouse_url``: the store (see :mod:`beacon.store`; default
    ``BEACON_CLICKHOUSE_URL`` else ``chdb://`` under ``.data/clickhouse``).
    ``secret_keys`` (newest first) sign the tokens of the e-mail endpoints;
    ``base_url`` is the public URL where the app is mounted, used in e-mail
    links (default ``BEACON_BASE_URL``; see :attr:`email`).
    ``site`` is the site's name stored with each event and, with
    ``own_hosts``, the hosts whose referrers count as internal.
    ``analytics_requires_consent``: record only visitors who granted
    ``analytics_category`` (read from ``scope["state"]["consent"]`` when the
    consent middleware runs in front, else from the consent cookie of
    ``consent``); by default audience measurement runs under the CNIL
    exemption. ``trusted_proxies`` (addresses or networks, or ``"*"``) may
    name the client in ``proxy_header``. The spool is flushed to disk every
    ``fsync_interval`` seconds and handed to ClickHouse every
    ``flush_interval`` seconds (fewer, larger inserts mean fewer parts to
    merge). ``ingest``: ``"inline"`` flushes
    into the store from this process, ``"external"`` only spools (see
    ``beacon ingest``). ``clock`` returns the current aware datetime.
    """

    def __init__(
        self,
        clickhouse_url: str | None = None,
        secret_keys: Sequence[str] = (),
        site: str = "",
        *,
        analytics_requires_consent: bool = False,
        analytics_category: str = "analytics",
        consent: ConsentConfig | None = None,
        spool_dir: str | os.PathLike[str] = DEFAULT_SPOOL_DIR,
        ingest: Literal["inline", "external"] = "inline",
        trusted_proxies: Iterable[str] = (),
        proxy_header: str = "x-forwarded-for",
        own_hosts: Iterable[str] = (),
        routes: Sequence[BaseRoute] = (),
        base_url: str | None = None,
        retention_months: int = DEFAULT_RETENTION_MONTHS,
        fsync_interval: float = 1.0,
        flush_interval: float = 5.0,
        spool_max_bytes: int = 1024 * 1024 * 1024,
        max_body_bytes: int = 4096,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not isinstance(site, str) or not site.strip() or len(site) > 253:
            raise ConfigurationError("site must be the site's name, e.g. 'mypharm.fr'")
        if isinstance(secret_keys, str) or any(
            not isinstance(k, str) or len(k) < 16 for k in secret_keys
        ):
            raise ConfigurationError("secret_keys must be a list of strings of 16+ characters")
        if ingest not in ("inline", "external"):
            raise ConfigurationError("ingest must be 'inline' or 'external'")
        if (
            analytics_requires_consent
            and consent is not None
            and analytics_category not in consent.category_names
        ):
            raise ConfigurationError(
                f"analytics_category {analytics_category!r} is not a category of the consent"
                f" configuration {list(consent.category_names)}"
            )
        if not 256 <= max_body_bytes <= 65536:
            raise ConfigurationError("max_body_bytes must be between 256 and 65536")
        if not 1 <= retention_months <= 1200:
            raise ConfigurationError("retention_months must be between 1 and 1200")
        if fsync_interval <= 0 or flush_interval <= 0:
            raise ConfigurationError("fsync_interval and flush_interval must be positive (s)")
        if spool_max_bytes < 16 * 1024 * 1024:
            raise ConfigurationError("spool_max_bytes must be at least 16 MiB (one segment)")
        try:
            self.proxies = TrustedProxies(trusted_proxies, proxy_header)
        except ValueError as exc:
            raise ConfigurationError(f"bad trusted_proxies entry: {exc}") from exc
        self.clickhouse_url = clickhouse_url
        self.store = Store(clickhouse_url)
        self.secret_keys = tuple(secret_keys)
        self.site = site.strip()
        self.own_hosts = (self.site, *(h.lower() for h in own_hosts))
        self.analytics_requires_consent = analytics_requires_consent
        self.analytics_category = analytics_category
        self.consent = consent
        self._cookie_reader: Callable[[str | None], ConsentState] | None = None
        if consent is not None:
            self._cookie_reader = _consent_reader(consent)
        self.spool_root = Path(spool_dir).resolve()
        self.ingest = ingest
        self.retention_months = retention_months
        self.fsync_interval = fsync_interval
        self.flush_interval = flush_interval
        self.spool_max_bytes = spool_max_bytes
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.stats = AppStats()
        self.salts: SaltSource = (
            StoreSalts(self.store)
            if ingest == "inline"
            else FileSalts(self.spool_root / "daily-salts.json")
        )
        self.router = Router(routes=list(routes))
        self._encoder = PageviewEncoder(self.site, self.own_hosts)
        self._read_proxy_header = self.proxies.enabled
        # The compiled path records cached page views that need no consent
        # check; everything else takes the Python path.
        self._fast_pixel = None if analytics_requires_consent else pixel_recorder(self.salts)
        self._clock_ns: Callable[[], int] = (
            time.time_ns if clock is _utc_now else lambda: epoch_ns(clock())
        )
        forget = weakref.WeakMethod(self._forget_parent_process)
        os.register_at_fork(after_in_child=lambda: (method := forget()) and method())
        # A beacon started on its first request (mounted without its lifespan)
        # still runs threads inside the embedded engine when the interpreter
        # exits; the engine must not be torn down under them.
        stop = weakref.WeakMethod(self._stop_at_exit)
        self._exit_hook: Callable[[], object] = lambda: (method := stop()) and method()
        self._register_exit_hook()
        self._email = EmailTracker.for_beacon(self, base_url) if self.secret_keys else None
        self.flusher: Flusher | None = None
        self._spool_dir: SpoolDir | None = None
        self._events: Spool | None = None
        # The compiled path bound to this process's spool (set when it opens).
        self._record_fast: BoundPixelRecorder | None = None
        # With the accelerator, ``app`` is a compiled front that answers GET
        # /p.gif itself once the recorder is bound (see ``_bind_recorder``).
        self._front: Any = (
            compiled_speedups.PixelFront(
                self, self.stats, self._record_slow, _GIF_HEADERS, TRANSPARENT_GIF
            )
            if compiled_speedups is not None
            and self._fast_pixel is not None
            and not self._read_proxy_header
            else None
        )
        self._start_lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self._housekeeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._schema_ready = threading.Event()
        self._started = False

    @property
    def email(self) -> EmailTracker:
        """E-mail campaign tracking (see :mod:`beacon.email`); needs ``secret_keys``."""
        if self._email is None:
            raise ConfigurationError("e-mail tracking needs secret_keys (16+ characters each)")
        return self._email

    # -- recording ----------------------------------------------------------

    def spool(self, table: str, columns: Sequence[str], fmt: str = TAB_SEPARATED) -> Spool:
        """The lossless spool of ``table`` in this process, rows in ``fmt``."""
        self._ensure_started()
        assert self._spool_dir is not None
        return self._spool_dir.spool(table, columns, fmt)

    def _events_spool(self) -> Spool:
        return self.spool(EVENTS_TABLE, EVENT_COLUMNS, ROW_BINARY)

    def record(self, event: PixelEvent) -> bool:
        """Append ``event`` to the spool (on disk when this returns); ``False`` if dropped."""
        spool = self._events
        if spool is None:
            spool = self._events = self._events_spool()
        return spool.append(event.to_row_binary())

    def consent_allows(self, scope: Scope, cookie_header: str | None) -> bool:
        """Whether this request may be recorded under the consent settings."""
        if not self.analytics_requires_consent:
            return True
        state = (scope.get("state") or {}).get("consent")
        if state is None and self._cookie_reader is not None:
            state = self._cookie_reader(cookie_header)
        return state is not None and bool(state.allows(self.analytics_category))

    def _record_hit(self, scope: Scope, hit: PageHit, headers: dict[bytes, bytes]) -> None:
        if not self.consent_allows(scope, _cookie_header(scope["headers"])):
            self.stats.not_consented += 1
            return
        if not hit.page:
            hit = PageHit(
                _text(headers.get(b"referer", b"")), hit.referrer, hit.utm, hit.kind, hit.name
            )
        now = self.clock()
        client = scope.get("client")
        peer = client[0] if client else None
        ip = client_ip(peer, scope["headers"], self.proxies) if self.proxies.enabled else peer
        host = headers.get(b"host", b"").decode("latin-1").partition(":")[0].lower()
        event = page_event(
            hit,
            now=now,
            site=self.site,
            ip=ip or "",
            user_agent=_text(headers.get(b"user-agent", b""), 512),
            salt=self.salts.salt_for(now.date()),
            own_hosts=(*self.own_hosts, host) if host else self.own_hosts,
        )
        if self.record(event):
            self.stats.recorded += 1
        else:
            self.stats.record_failures += 1

    # -- ASGI ---------------------------------------------------------------

    @property
    def app(self) -> ASGIApp:
        """The ASGI application (mount it, or serve it on its own).

        The tracker itself, or, with the compiled accelerator, a front that
        answers ``GET /p.gif`` without a coroutine and hands every other
        request to the tracker.
        """
        front: ASGIApp | None = self._front
        return front if front is not None else self

    def _bind_recorder(self, recorder: BoundPixelRecorder | None) -> None:
        """Bind (or, with ``None``, drop) the compiled recorder of this process's spool."""
        self._record_fast = recorder
        if self._front is not None:
            self._front.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection: fast path first, then extra routes."""
        kind = scope["type"]
        if kind == "http":
            if not self._started:
                self._ensure_started()
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            method = scope["method"]
            if path == "/p.gif" and method == "GET":
                # The hot path, inline: record, then the GIF.
                self.stats.requests += 1
                record = self._record_fast
                try:
                    recorded = record is not None and record(scope)
                except Exception as exc:
                    self._record_slow(scope, exc)
                else:
                    if recorded:
                        self.stats.recorded += 1
                    else:
                        self._record_slow(scope, None)
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [*_GIF_HEADERS]}
                )
                await send({"type": "http.response.body", "body": TRANSPARENT_GIF})
            elif path == "/p.gif" and method == "HEAD":
                self.stats.requests += 1
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [*_GIF_HEADERS]}
                )
                await send({"type": "http.response.body", "body": b""})
            elif path == "/e" and method == "POST":
                await self._event(scope, receive, send)
            elif path == "/beacon.js" and method in ("GET", "HEAD"):
                await send(
                    {"type": "http.response.start", "status": 200, "headers": list(_SCRIPT_HEADERS)}
                )
                await send(
                    {"type": "http.response.body", "body": _SCRIPT if method == "GET" else b""}
                )
            elif path == "/health" and method == "GET":
                await self._health(send)
            else:
                await self.router(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.router(scope, receive, send)

    def _record_slow(self, scope: Scope, error: Exception | None) -> None:
        """Record a ``/p.gif`` request the compiled recorder left, or count its failure."""
        if error is None:
            try:
                self._record_pixel(scope)
                return
            except Exception as exc:
                error = exc
        self.stats.bad_requests += 1
        # Only the type: a message or traceback could quote the request.
        logger.debug("pixel request not recorded: %s", type(error).__name__)

    def _record_pixel(self, scope: Scope) -> None:
        """Record a ``/p.gif`` request the bound compiled recorder left (or has not got).

        Behind trusted proxies the compiled path is tried here, with the
        forwarded address worked out once for both paths.
        """
        raw_headers = scope["headers"]
        client = scope.get("client")
        now_ns = self._clock_ns()
        if self._read_proxy_header:
            ip = client_ip(client[0] if client else "", raw_headers, self.proxies)
            fast = self._fast_pixel
            spool = self._events
            if (
                fast is not None
                and spool is not None
                and fast(scope, now_ns, self._encoder, self.salts, spool, ip)
            ):
                self.stats.recorded += 1
                return
        else:
            ip = client[0] if client else ""
        if self.analytics_requires_consent and not self.consent_allows(
            scope, _cookie_header(raw_headers)
        ):
            self.stats.not_consented += 1
            return
        headers = dict(raw_headers)
        get = headers.get
        row = self._encoder.pixel_row(
            now_ns,
            self.salts,
            ip,
            get(b"user-agent", b"")[:512],
            scope.get("query_string", b""),
            get(b"referer", b"")[:_MAX_HEADER],
            get(b"host", b"")[:256],
        )
        spool = self._events
        if spool is None:
            spool = self._events = self._events_spool()
        if spool.append(row):
            self.stats.recorded += 1
        else:
            self.stats.record_failures += 1

    async def _event(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.stats.requests += 1
        try:
            body = await self._read_body(receive)
            if body is None:
                self.stats.bad_requests += 1
            else:
                data = json.loads(body.decode("utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("the event must be a JSON object")
                values = {k: data.get(k) for k in ("u", "r", "k", "n")}
                strings = {
                    k: v[:_MAX_FIELD] if isinstance(v, str) else "" for k, v in values.items()
                }
                utm = utm_params((str(k), v) for k, v in data.items() if isinstance(v, str))
                hit = PageHit(
                    strings["u"], strings["r"], utm, strings["k"] or "pageview", strings["n"]
                )
                self._record_hit(scope, hit, _headers(scope))
        except Exception as exc:
            self.stats.bad_requests += 1
            logger.debug("event request not recorded: %s", type(exc).__name__)
        await send({"type": "http.response.start", "status": 204, "headers": list(_EMPTY_HEADERS)})
        await send({"type": "http.response.body", "body": b""})

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        too_big = False
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                too_big = True
            elif chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return None if too_big else b"".join(chunks)

    async def _health(self, send: Send) -> None:
        body = json.dumps(self.counters(), sort_keys=True).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    _NO_STORE,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- life cycle ---------------------------------------------------------

    @property
    def spool_path(self) -> Path | None:
        """This process's spool directory, once the beacon has started."""
        return self._spool_dir.path if self._spool_dir is not None else None

    def add_routes(self, routes: Iterable[BaseRoute]) -> None:
        """Add Starlette routes, matched after the built-in endpoints."""
        self.router.routes.extend(routes)

    def counters(self) -> dict[str, Any]:
        """Every counter of the beacon, as a flat JSON-ready dictionary."""
        result: dict[str, Any] = {"status": "ok", **stats_dict(self.stats)}
        if self._spool_dir is not None:
            result.update({f"spool_{k}": v for k, v in stats_dict(self._spool_dir.stats).items()})
        if self.flusher is not None:
            result.update(asdict(self.flusher.stats))
        if self._email is not None:
            result.update({f"email_{k}": v for k, v in sorted(self._email.failures.items())})
        result["schema_ready"] = self._schema_ready.is_set()
        result["ingest"] = self.ingest
        return result

    def _ensure_started(self) -> None:
        """Open this process's spool now and start the background work (non-blocking)."""
        with self._start_lock:
            if self._spool_dir is not None and self._spool_dir.pid == os.getpid():
                self._started = True
                return
            self._spool_dir = SpoolDir(
                self.spool_root,
                fsync_interval=self.fsync_interval,
                segment_max_age=self.flush_interval,
                max_bytes=self.spool_max_bytes,
            )
            self._spool_dir.start()
            self._events = self._spool_dir.spool(EVENTS_TABLE, EVENT_COLUMNS, ROW_BINARY)
            if self._fast_pixel is not None and not self._read_proxy_header:
                self._bind_recorder(
                    bound_pixel_recorder(self._clock_ns, self._encoder, self.salts, self._events)
                )
            self._stop.clear()
            self._housekeeper = threading.Thread(
                target=self._housekeep, name="beacon-housekeeper", daemon=True
            )
            self._housekeeper.start()
            self._started = True

    def _forget_parent_process(self) -> None:
        """In a forked child: the parent's spool, threads and store are not ours."""
        self._spool_dir = None
        self._events = None
        self._bind_recorder(None)
        self.flusher = None
        self._housekeeper = None
        # Locks held by the parent's threads at fork time would never be released here.
        self._start_lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self._stop = threading.Event()
        self._schema_ready = threading.Event()
        self.store = Store(self.clickhouse_url)
        if isinstance(self.salts, StoreSalts):
            self.salts = StoreSalts(self.store)
        self._started = False

    def _prepare(self) -> None:
        """Migrate the schema once, then run a flusher for this spool (inline mode)."""
        if self.ingest == "external":
            return
        with self._prepare_lock:
            if not self._schema_ready.is_set():
                migrate(self.store, retention_months=self.retention_months)
                self._schema_ready.set()
                # The store's client exists now, with its exit-time finalizers.
                self._register_exit_hook()
            spool_dir = self._spool_dir
            flusher = self.flusher
            if spool_dir is not None and (flusher is None or flusher.own is not spool_dir):
                self.flusher = Flusher(self.store, [self.spool_root], own=spool_dir)
                self.flusher.start()

    def _housekeep(self) -> None:
        backoff = 0.5
        next_salt = 0.0
        while not self._stop.is_set():
            try:
                self._prepare()
                if time.monotonic() >= next_salt:
                    self.salts.refresh(self.clock())
                    next_salt = time.monotonic() + 30.0
                backoff = 0.5
                wait = 1.0
            except Exception as exc:
                self.stats.housekeeping_failures += 1
                logger.warning("beacon housekeeping failed, retrying in %.1f s: %s", backoff, exc)
                wait, backoff = backoff, min(backoff * 2, 30.0)
            self._stop.wait(wait)

    def _register_exit_hook(self) -> None:
        """(Re-)register the exit hook last, so it runs before the driver's own clean-up."""
        atexit.unregister(self._exit_hook)
        atexit.register(self._exit_hook)

    def _stop_at_exit(self) -> None:
        """At interpreter exit: flush briefly and stop the threads, if still running."""
        if self._started and self._spool_dir is not None and self._spool_dir.pid == os.getpid():
            self._shutdown_sync(timeout=5.0)

    def _startup_sync(self) -> None:
        self._ensure_started()
        try:
            self._prepare()
            self.salts.refresh(self.clock())
        except StoreError as exc:
            logger.warning("store not ready at start-up, events are spooled meanwhile: %s", exc)

    def _shutdown_sync(self, timeout: float) -> None:
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join(timeout=timeout)
        if self.flusher is not None:
            self.flusher.stop(timeout=timeout)
        if self._spool_dir is not None:
            self._spool_dir.release()
            self._spool_dir = None
            self._events = None
            self._bind_recorder(None)
        self._started = False

    async def startup(self) -> None:
        """Open the spool, migrate the store and start flushing (store work in a thread)."""
        await anyio.to_thread.run_sync(self._startup_sync)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Flush what is spooled (up to ``timeout`` seconds) and stop the background threads."""
        await anyio.to_thread.run_sync(self._shutdown_sync, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Synchronous :meth:`shutdown`, for scripts and tests without an event loop."""
        self._shutdown_sync(timeout)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """``async with tracker.lifespan():`` inside a host app's lifespan."""
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()


def _headers(scope: Scope) -> dict[bytes, bytes]:
    wanted = {}
    for name, value in scope["headers"]:
        if name in (b"user-agent", b"referer", b"host") and name not in wanted:
            wanted[name] = value[:_MAX_HEADER]
    return wanted


def _cookie_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's cookies as one header value (HTTP/2 may split them), size-capped."""
    values = [value for name, value in headers if name == b"cookie"]
    if not values:
        return None
    return _text(b"; ".join(values), _MAX_HEADER)


def _consent_reader(config: ConsentConfig) -> Callable[[str | None], ConsentState]:
    """A function from a ``Cookie`` header to the visitor's consent state."""
    from mypharm_consent.cookie import ConsentCookie

    cookie = ConsentCookie(config)

    def read(cookie_header: str | None) -> ConsentState:
        return cookie.state(cookie.read(cookie_header))

    return read
