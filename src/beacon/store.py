"""The ClickHouse store: one URL names where the events live.

Two places, one client library (clickhouse-connect):

``chdb:///abs/dir?database=NAME``
    The embedded ClickHouse engine (chDB) inside this process, installed by
    the ``embedded`` extra. ``database`` defaults to ``beacon``. A relative
    directory is written ``chdb:relative/dir``. One process owns a directory;
    a process can open only one directory for its whole life.
``http://user:pass@host:8123/db`` or ``https://...:8443/db``
    A ClickHouse server. The database defaults to ``beacon``; ``?cluster=NAME``
    makes the schema use ``ON CLUSTER``, Replicated tables and Distributed
    tables (see :mod:`beacon.migrations`).

The embedded engine shares the web process's memory, so its caches are
bounded (:data:`EMBEDDED_ENGINE_CACHES`: 64 MiB for marks and primary keys,
16 MiB for the others, against ClickHouse's server defaults of up to 5 GiB);
each can be set in the URL, in bytes, e.g.
``chdb:///dir?mark_cache_size=268435456``. They take effect when the process
first opens the directory.

Without a URL, ``BEACON_CLICKHOUSE_URL`` is used, else the embedded engine in
``.data/clickhouse`` under the current working directory (the project's root
when started with ``make demo`` or ``uvicorn`` from there).

The clickhouse-connect client is synchronous (chDB has no async client), so
:class:`Store` methods block: call them from a worker thread
(``anyio.to_thread.run_sync``), never on the event loop. Queries and
statements on the embedded engine are serialized by a lock; its inserts
(:meth:`Store.raw_insert`) each borrow a connection of their own to the
same engine, so that several run at once on several cores (the flusher
inserts two segments at a time) and none waits for a query. The HTTP
client is used without a session, so concurrent calls are safe.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from beacon.exceptions import (
    EmbeddedEngineMissing,
    EmbeddedLocked,
    EmbeddedPathConflict,
    InvalidStoreURL,
    StoreError,
    StoreUnavailable,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_EMBEDDED_DIR",
    "EMBEDDED_ENGINE_CACHES",
    "ENV_URL",
    "Store",
    "StoreLocation",
    "default_url",
    "open_store",
    "parse_store_url",
]

#: Environment variable naming the store when no URL is given.
ENV_URL = "BEACON_CLICKHOUSE_URL"
#: The embedded engine's directory when nothing else is configured (relative to the CWD).
DEFAULT_EMBEDDED_DIR = Path(".data") / "clickhouse"
#: Database used when the URL names none.
DEFAULT_DATABASE = "beacon"
#: Cache sizes (bytes) the embedded engine starts with; ``chdb://`` URL options override them.
EMBEDDED_ENGINE_CACHES: Mapping[str, int] = {
    "mark_cache_size": 64 << 20,
    "primary_index_cache_size": 64 << 20,
    "index_mark_cache_size": 16 << 20,
    "query_condition_cache_size": 16 << 20,
    "compiled_expression_cache_size": 16 << 20,
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CLUSTER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")

# The directory this process bound the embedded engine to (chDB allows one per process).
_embedded_lock = threading.Lock()
_embedded_path: str | None = None
# Ownership locks of the embedded directory, held until the process exits.
_owner_fds: list[int] = []
_OWNER_FILE = ".beacon-owner"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed store URL: which engine, where, which database, which cluster."""

    kind: Literal["chdb", "http"]
    database: str
    path: str = ""
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""
    secure: bool = False
    cluster: str | None = None
    engine_options: tuple[tuple[str, int], ...] = tuple(EMBEDDED_ENGINE_CACHES.items())

    @property
    def display_url(self) -> str:
        """The URL with the password masked, safe for logs and error messages."""
        if self.kind == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        scheme = "https" if self.secure else "http"
        auth = quote(self.username, safe="") + (":***" if self.password else "")
        cluster = f"?cluster={self.cluster}" if self.cluster else ""
        return f"{scheme}://{auth}@{self.host}:{self.port}/{self.database}{cluster}"


def default_url() -> str:
    """``BEACON_CLICKHOUSE_URL`` if set, else the embedded engine under ``.data/clickhouse``."""
    from_env = os.environ.get(ENV_URL, "").strip()
    if from_env:
        return from_env
    return f"chdb://{DEFAULT_EMBEDDED_DIR.resolve()}"


def _database(value: str, url: str) -> str:
    if not _IDENTIFIER.match(value):
        raise InvalidStoreURL(
            f"bad database name {value!r}: use letters, digits and underscores", url=url
        )
    return value


def _options(query: str, allowed: set[str], url: str) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise InvalidStoreURL(f"malformed query string in store URL: {exc}", url=url) from exc
    unknown = set(parsed) - allowed
    if unknown:
        raise InvalidStoreURL(
            f"unknown store URL option(s) {sorted(unknown)}; allowed: {sorted(allowed)}", url=url
        )
    return {key: values[-1] for key, values in parsed.items()}


def _bytes(value: str | None, default: int, name: str, url: str) -> int:
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 15:
        raise InvalidStoreURL(f"{name} must be a number of bytes, got {value!r}", url=url)
    return int(value)


def parse_store_url(url: str) -> StoreLocation:
    """Parse a store URL (see the module docstring) or raise :class:`InvalidStoreURL`."""
    safe = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise InvalidStoreURL(f"malformed store URL: {exc}", url=safe) from exc
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        options = _options(parts.query, {"database", *EMBEDDED_ENGINE_CACHES}, safe)
        if parts.netloc:
            raise InvalidStoreURL(
                "a chdb URL names a directory: chdb:///absolute/dir or chdb:relative/dir",
                url=safe,
            )
        directory = unquote(parts.path) or str(DEFAULT_EMBEDDED_DIR)
        database = _database(options.get("database") or DEFAULT_DATABASE, safe)
        caches = {
            name: _bytes(options.get(name), size, name, safe)
            for name, size in EMBEDDED_ENGINE_CACHES.items()
        }
        return StoreLocation(
            kind="chdb",
            database=database,
            path=str(Path(directory).resolve()),
            engine_options=tuple(caches.items()),
        )
    if scheme in ("http", "https"):
        options = _options(parts.query, {"cluster"}, safe)
        if not parts.hostname:
            raise InvalidStoreURL("a server URL needs a host: http://host:8123/db", url=safe)
        try:
            port = parts.port or (8443 if scheme == "https" else 8123)
        except ValueError as exc:
            raise InvalidStoreURL(f"bad port in store URL: {exc}", url=safe) from exc
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > 1:
            raise InvalidStoreURL("the URL path names one database: /db", url=safe)
        database = _database(unquote(segments[0]) if segments else DEFAULT_DATABASE, safe)
        cluster = options.get("cluster") or None
        if cluster is not None and not _CLUSTER.match(cluster):
            raise InvalidStoreURL(f"bad cluster name {cluster!r}", url=safe)
        return StoreLocation(
            kind="http",
            database=database,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            secure=scheme == "https",
            cluster=cluster,
        )
    raise InvalidStoreURL(
        f"unknown store URL scheme {parts.scheme!r}: use chdb://, http:// or https://", url=safe
    )


def _lock_directory(path: str, url: str) -> int:
    """Take this process's ownership lock of a chDB directory, kept for the process's life.

    The engine itself does not stop a second process from opening the same
    directory, so ownership is an exclusive ``flock`` on ``.beacon-owner``
    (which also records the owner's pid for the error message).
    """
    Path(path).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(path) / _OWNER_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise EmbeddedLocked(
            f"the chDB directory {path} is owned by another process (pid {owner or '?'}); only "
            "one process may own it: let other processes spool (ingest='external') and run "
            "`beacon ingest` in the owner",
            url=url,
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _check_other_process(path: str, url: str) -> None:
    """Raise :class:`EmbeddedLocked` if another process holds the engine's ``status`` lock."""
    status = Path(path) / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        owner = ""
        try:
            owner = status.read_text(errors="replace").strip().splitlines()[0]
        except (OSError, IndexError):
            owner = ""
        detail = f" ({owner})" if owner else ""
        raise EmbeddedLocked(
            f"the chDB directory {path} is open in another process{detail}; only one process "
            "may own it: let other processes spool and run `beacon ingest` in the owner",
            url=url,
        ) from None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _chdb_client(location: StoreLocation) -> Any:
    """A new clickhouse-connect connection to the embedded engine at ``location``."""
    from clickhouse_connect.driver._chdbclient import ChdbClient

    return ChdbClient(path=location.path, chdb_options=dict(location.engine_options))


def _open_embedded(location: StoreLocation) -> Any:
    global _embedded_path
    url = location.display_url
    try:
        import chdb  # noqa: F401
        import clickhouse_connect.driver._chdbclient  # noqa: F401
    except ImportError as exc:
        raise EmbeddedEngineMissing(
            "chdb:// needs the embedded engine: pip install 'mypharm-consent[embedded]'", url=url
        ) from exc
    with _embedded_lock:
        if _embedded_path is not None and _embedded_path != location.path:
            raise EmbeddedPathConflict(
                f"this process already opened the chDB directory {_embedded_path}; chDB allows "
                f"one directory per process, so {location.path} cannot be opened (use "
                "?database=NAME on the same directory instead)",
                url=url,
                opened=_embedded_path,
            )
        if _embedded_path is None:
            _check_other_process(location.path, url)
            _owner_fds.append(_lock_directory(location.path, url))
        try:
            client = _chdb_client(location)
        except DatabaseError as exc:
            if _embedded_path is None:
                os.close(_owner_fds.pop())
            if "already initialized" in str(exc):
                raise EmbeddedPathConflict(
                    f"this process already opened another chDB directory: {exc}", url=url
                ) from exc
            if "initializing EmbeddedServer" in str(exc):
                raise EmbeddedLocked(
                    f"the chDB directory {location.path} could not be opened; it is probably "
                    f"open in another process: {exc}",
                    url=url,
                ) from exc
            raise StoreError(f"cannot open the chDB directory: {exc}", url=url) from exc
        _embedded_path = location.path
    client.command(f"CREATE DATABASE IF NOT EXISTS `{location.database}`")
    client.database = location.database
    return client


def _open_server(location: StoreLocation) -> Any:
    import clickhouse_connect

    url = location.display_url
    try:
        client = clickhouse_connect.get_client(
            host=location.host,
            port=location.port,
            username=location.username,
            password=location.password,
            secure=location.secure,
            autogenerate_session_id=False,
            connect_timeout=5,
        )
        on_cluster = f" ON CLUSTER `{location.cluster}`" if location.cluster else ""
        client.command(f"CREATE DATABASE IF NOT EXISTS `{location.database}`{on_cluster}")
        client.database = location.database
    except OperationalError as exc:
        raise StoreUnavailable(f"the ClickHouse server did not answer: {exc}", url=url) from exc
    except DatabaseError as exc:
        raise StoreError(f"cannot use the ClickHouse server: {exc}", url=url) from exc
    return client


class Store:
    """A connection to the ClickHouse store named by a URL.

    The connection is made on first use (so a store that is down at start-up
    does not stop the site) and made again after a failure. Every method
    blocks: run it in a worker thread. ``cluster`` and ``database`` tell
    callers how the schema is laid out (see :mod:`beacon.migrations`).
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self.location = parse_store_url(self.url)
        self._client: Any = None
        self._connect_lock = threading.Lock()
        # chDB clients share one engine; serializing calls keeps per-handle state simple.
        self._call_lock: threading.Lock | None = (
            threading.Lock() if self.location.kind == "chdb" else None
        )
        # Embedded engine only: idle connections for inserts, one per insert in flight.
        self._insert_clients: list[Any] = []
        self._insert_lock = threading.Lock()

    @property
    def database(self) -> str:
        """The database holding the beacon tables."""
        return self.location.database

    @property
    def cluster(self) -> str | None:
        """The cluster name when the schema is replicated and sharded, else ``None``."""
        return self.location.cluster

    @property
    def embedded(self) -> bool:
        """Whether this is the in-process chDB engine."""
        return self.location.kind == "chdb"

    def connect(self) -> Any:
        """The clickhouse-connect client, connecting first if needed."""
        with self._connect_lock:
            if self._client is None:
                if self.location.kind == "chdb":
                    self._client = _open_embedded(self.location)
                else:
                    self._client = _open_server(self.location)
            return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self.connect()
        if self._call_lock is None:
            return self._invoke(client, method, *args, **kwargs)
        with self._call_lock:
            return self._invoke(client, method, *args, **kwargs)

    def _invoke(self, client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.method(...)``, a lost connection raised as :class:`StoreUnavailable`."""
        try:
            return getattr(client, method)(*args, **kwargs)
        except OperationalError as exc:
            if self.location.kind == "http":
                with self._connect_lock:
                    self._client = None
            raise StoreUnavailable(
                f"the store did not answer: {exc}", url=self.location.display_url
            ) from exc

    def command(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run a statement that returns no rows (DDL, DELETE...)."""
        return self._call("command", sql, parameters=parameters, settings=settings)

    def query_rows(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run a query and return its rows as tuples."""
        result = self._call("query", sql, parameters=parameters, settings=settings)
        return [tuple(row) for row in result.result_rows]

    def raw_insert(
        self,
        table: str,
        columns: Sequence[str],
        data: bytes,
        *,
        fmt: str = "TabSeparated",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert ``data`` (already in ``fmt``) into ``table`` as one block.

        Into the embedded engine, each insert in flight has a connection of
        its own (opened on first need, kept for the next), so that inserts
        from several threads run in parallel.
        """
        arguments = (table, list(columns), data)
        options = {"settings": dict(settings or {}), "fmt": fmt}
        if self._call_lock is None:
            self._call("raw_insert", *arguments, **options)
            return
        client = self._borrow_insert_client()
        try:
            self._invoke(client, "raw_insert", *arguments, **options)
        finally:
            with self._insert_lock:
                self._insert_clients.append(client)

    def _borrow_insert_client(self) -> Any:
        """An idle insert connection to the embedded engine, opened if none is idle."""
        self.connect()  # the engine is opened (and the directory locked) by the main client
        with self._insert_lock:
            if self._insert_clients:
                return self._insert_clients.pop()
        client = _chdb_client(self.location)
        client.database = self.location.database
        return client

    def close(self) -> None:
        """Close the clients (the embedded engine stays bound to this process)."""
        with self._connect_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        with self._insert_lock:
            clients, self._insert_clients = self._insert_clients, []
        for client in clients:
            client.close()

    def __repr__(self) -> str:
        return f"Store({self.location.display_url!r})"


def open_store(url: str | None = None) -> Store:
    """A :class:`Store` for ``url`` (default: :func:`default_url`), connected now.

    Raises a :class:`~beacon.exceptions.StoreError` subclass that says what is
    wrong: bad URL, missing ``embedded`` extra, chDB directory conflict or
    lock, server unavailable.
    """
    store = Store(url)
    store.connect()
    return store
