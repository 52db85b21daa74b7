"""Anonymization: what is kept of a request, before anything is buffered or written.

* The IP address is used only as an input of :func:`visitor_hash` and is
  never stored, spooled or logged. It comes from the ASGI peer, or from a
  proxy header only when the peer is a configured trusted proxy
  (:func:`client_ip`).
* The visitor hash is a keyed BLAKE2b hash of (site, IP, User-Agent) with the
  random salt of the UTC day as key: the same browser is one visitor within
  a day and cannot be linked across days once the salt is gone.
* Daily salts are random (:mod:`secrets`), stored in ClickHouse so that every
  node shares them (:class:`StoreSalts`), or in a file for worker processes
  that do not own the store (:class:`FileSalts`). Today's and yesterday's are
  kept; older ones are deleted, so no salt lives past about 48 hours.
* A page URL is reduced to its path (:func:`page_path`) and its ``utm_*``
  parameters (:func:`utm_params`); any other query parameter or fragment is
  dropped. A referrer is reduced to its host, and to nothing when it is the
  site itself (:func:`referrer_host`).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from hashlib import blake2b
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote_plus, urlsplit

if TYPE_CHECKING:
    from beacon.store import Store

__all__ = [
    "MAX_PATH_LENGTH",
    "UTM_FIELDS",
    "FileSalts",
    "SaltSource",
    "StoreSalts",
    "TrustedProxies",
    "client_ip",
    "page_path",
    "referrer_host",
    "split_query",
    "utm_params",
    "visitor_hash",
]

#: The ``utm_*`` parameters kept from page URLs, as columns of the events table.
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
#: Paths are cut to this many characters.
MAX_PATH_LENGTH = 1024
_MAX_VALUE_LENGTH = 200
_EMAIL_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_SALT_BYTES = 32


def visitor_hash(salt: bytes, site: str, ip: str, user_agent: str) -> int:
    """The daily visitor identifier: a 64-bit keyed hash of (site, IP, User-Agent).

    ``salt`` is the day's random salt (the BLAKE2b key); without it the hash
    cannot be recomputed from a known IP address and User-Agent.
    """
    digest = blake2b(
        f"{site}\0{ip}\0{user_agent}".encode("utf-8", "surrogateescape"),
        digest_size=8,
        key=salt,
    ).digest()
    return int.from_bytes(digest, "little")


def split_query(query: str) -> Iterable[tuple[str, str]]:
    """Decoded ``(name, value)`` pairs of a query string; never raises."""
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name, errors="replace")
        if "%" in value or "+" in value:
            value = unquote_plus(value, errors="replace")
        yield name, value


def _clean(value: str) -> str:
    return "".join(ch for ch in value[:_MAX_VALUE_LENGTH] if ch.isprintable()).strip()


def utm_params(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``utm_*`` values among ``pairs`` (first one wins), cleaned and cut.

    An e-mail address in a value (some mailers tag links with the
    subscriber's) is replaced by ``(e-mail)``: no address may reach the store.
    """
    found: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in UTM_FIELDS and key not in found:
            cleaned = _clean(value)
            if cleaned:
                found[key] = _EMAIL_ADDRESS.sub("(e-mail)", cleaned) if "@" in cleaned else cleaned
    return found


def page_path(url: str) -> tuple[str, dict[str, str]]:
    """The path of a page URL (or path) and its ``utm_*`` parameters; nothing else.

    Query parameters other than ``utm_*`` (which may carry e-mail addresses,
    tokens or search terms) and the fragment are dropped.
    """
    url = url.strip()
    if not url:
        return "", {}
    try:
        parts = urlsplit(url)
    except ValueError:
        return "", {}
    path = parts.path or "/"
    if "%" in path:
        path = unquote_plus(path.replace("+", "%2B"), errors="replace")
    if not path.startswith("/"):
        path = "/" + path
    path = "".join(ch for ch in path[:MAX_PATH_LENGTH] if ch.isprintable())
    return path, utm_params(split_query(parts.query))


def _host(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https", "android-app", ""):
        return ""
    return "".join(ch for ch in host[:253] if ch.isalnum() or ch in ".-_").lower().strip(".")


def _bare(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def referrer_host(referrer: str, own_hosts: Iterable[str]) -> str:
    """The host of ``referrer``; empty for no referrer or a page of the site itself.

    ``own_hosts`` are the site's host names (``www.`` is ignored when
    comparing); sub-domains of an own host count as the site itself.
    """
    host = _host(referrer)
    if not host:
        return ""
    bare = _bare(host)
    for own in own_hosts:
        own_bare = _bare(own.lower())
        if own_bare and (bare == own_bare or bare.endswith("." + own_bare)):
            return ""
    return host


class TrustedProxies:
    """Which peers may name the client in a proxy header, and which header.

    ``proxies`` are IP addresses or networks (``"10.0.0.0/8"``); ``"*"``
    trusts every peer (only behind a proxy that always sets the header, e.g.
    on a Unix socket). Empty: the header is never read.
    """

    def __init__(self, proxies: Iterable[str] = (), header: str = "x-forwarded-for") -> None:
        self.trust_all = False
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for proxy in proxies:
            if proxy == "*":
                self.trust_all = True
            else:
                networks.append(ipaddress.ip_network(proxy, strict=False))
        self.networks = tuple(networks)
        self.header = header.lower().encode("latin-1")

    @property
    def enabled(self) -> bool:
        """Whether any proxy is trusted."""
        return self.trust_all or bool(self.networks)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` is a trusted proxy."""
        if self.trust_all:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def client_ip(
    peer: str | None, headers: Iterable[tuple[bytes, bytes]], proxies: TrustedProxies
) -> str:
    """The client's IP address: the peer, or the proxy header when the peer is trusted.

    From an ``X-Forwarded-For`` chain, the right-most address that is not a
    trusted proxy is taken (the left part can be forged by the client).
    """
    address = peer or ""
    if not proxies.enabled or not proxies.trusts(address):
        return address
    for name, value in headers:
        if name == proxies.header:
            chain = [hop.strip() for hop in value.decode("latin-1").split(",") if hop.strip()]
            for hop in reversed(chain):
                if not proxies.trusts(hop):
                    return hop
            if chain:
                return chain[0]
    return address


class SaltSource(Protocol):
    """Where the daily salts come from.

    :meth:`salt_for` is called on the request path and must not block;
    :meth:`refresh` does the I/O and runs in a background thread.
    """

    def salt_for(self, day: date) -> bytes:
        """The salt of ``day`` (a provisional local one until :meth:`refresh` ran)."""
        ...

    def refresh(self, now: datetime) -> None:
        """Fetch or create the salts of the current days and delete expired ones."""
        ...


class _SaltCache:
    """Salts known in memory, plus one random candidate per day not yet known.

    A candidate is used while the shared salt is unknown (store down at
    start-up) and is offered as this node's proposal on the next refresh.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[date, bytes] = {}
        self._candidates: dict[date, bytes] = {}

    def salt_for(self, day: date) -> bytes:
        known = self._known.get(day)
        if known is not None:
            return known
        with self._lock:
            candidate = self._candidates.get(day)
            if candidate is None:
                candidate = self._candidates[day] = secrets.token_bytes(_SALT_BYTES)
            return candidate

    def _candidate(self, day: date) -> bytes:
        return _SaltCache.salt_for(self, day)

    def _settle(self, salts: Mapping[date, bytes], keep_from: date) -> None:
        with self._lock:
            known = {d: s for d, s in {**self._known, **salts}.items() if d >= keep_from}
            self._known = known
            self._candidates = {
                d: s for d, s in self._candidates.items() if d >= keep_from and d not in known
            }


def _days(now: datetime) -> tuple[date, date, list[date]]:
    """(yesterday, today, days needing a salt now: today, and tomorrow just before midnight)."""
    now = now.astimezone(UTC)
    today = now.date()
    needed = [today]
    if now.hour == 23 and now.minute >= 58:
        needed.append(today + timedelta(days=1))
    return today - timedelta(days=1), today, needed


class StoreSalts(_SaltCache):
    """Daily salts in the ``daily_salts`` table, shared by every node of the store.

    Nodes that find no salt for a day insert a random candidate; the winner
    is the row with the smallest (created_at, salt), so every node converges
    on the same salt at its next refresh even when they raced.
    """

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def refresh(self, now: datetime) -> None:
        """Read (or propose) today's salt, keep yesterday's, drop older ones."""
        yesterday, _today, needed = _days(now)
        table = f"`{self.store.database}`.daily_salts"
        query = (
            f"SELECT day, argMin(salt, (created_at, salt)) FROM {table} "
            "WHERE day >= {since:Date} GROUP BY day"
        )
        found = self._read(query, yesterday)
        missing = [day for day in needed if day not in found]
        if missing:
            stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            rows = b"".join(
                f"{day.isoformat()}\t{self._candidate(day).hex()}\t{stamp}\n".encode()
                for day in missing
            )
            self.store.raw_insert(table, ("day", "salt", "created_at"), rows)
            found = self._read(query, yesterday)
        self._settle(found, yesterday)
        stale = self.store.query_rows(
            f"SELECT DISTINCT day FROM {table} WHERE day < {{before:Date}}",
            parameters={"before": yesterday},
        )
        for (day,) in stale:
            self.store.command(f"ALTER TABLE {table} DROP PARTITION '{day.isoformat()}'")

    def _read(self, query: str, since: date) -> dict[date, bytes]:
        rows = self.store.query_rows(query, parameters={"since": since})
        return {day: bytes.fromhex(salt) for day, salt in rows}


class FileSalts(_SaltCache):
    """Daily salts in a JSON file shared by the worker processes of one machine.

    For workers that spool without owning the store (``ingest="external"``):
    the first worker that needs a day's salt writes it under an exclusive
    lock; the others read it. Reading a small file is cheap enough to do once
    a day on the request path. The file is created with mode 0600.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)

    def salt_for(self, day: date) -> bytes:
        """The day's shared salt, read (or written) from the file the first time it is asked."""
        known = self._known.get(day)
        if known is not None:
            return known
        self.refresh(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12))
        return super().salt_for(day)

    def refresh(self, now: datetime) -> None:
        """Read the file, add the missing salts, drop those older than yesterday."""
        yesterday, _today, needed = _days(now)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                stored = json.loads(self.path.read_text())
                salts = {date.fromisoformat(d): bytes.fromhex(s) for d, s in stored.items()}
            except (OSError, ValueError, AttributeError):
                salts = {}
            kept = {d: s for d, s in salts.items() if d >= yesterday}
            for day in needed:
                kept.setdefault(day, self._candidate(day))
            if kept != salts:
                tmp = self.path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    json.dump({d.isoformat(): s.hex() for d, s in kept.items()}, handle)
                os.replace(tmp, self.path)
        finally:
            os.close(lock_fd)
        self._settle(kept, yesterday)
