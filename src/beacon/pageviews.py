"""From the plain values of a page-view request to an anonymized :class:`PixelEvent`.

Framework-free: the ASGI app (and anything else) hands over strings already
taken from the request; this module applies every anonymization rule of
:mod:`beacon.anonymize` before an event exists.

Compiled accelerator
--------------------
The optional C extension ``beacon._speedups`` (built at install time when a
C compiler is available) records a ``/p.gif`` request whose parts are all
cached in one call: headers, cache look-ups, keyed hash, row, append to the
spool (see :func:`pixel_recorder`, and :func:`bound_pixel_recorder` for the
same call bound to one beacon's clock, encoder, salts and spool). It hands
every other case (a cache miss, a new day, a salt not settled yet, a
segment to open) back to the
pure-Python path of :meth:`PageviewEncoder.pixel_row`, which stays the
definition of the row and is used alone when the extension is missing or
when the environment variable ``BEACON_SPEEDUPS`` is ``0`` at import.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from beacon.anonymize import (
    FileSalts,
    SaltSource,
    StoreSalts,
    page_path,
    referrer_host,
    split_query,
    utm_params,
    visitor_hash,
)
from beacon.events import EVENT_COLUMNS, PixelEvent, encode_columns
from beacon.spool import compiled_speedups
from beacon.useragent import classify

if TYPE_CHECKING:
    from beacon.spool import Spool

__all__ = [
    "CLIENT_KINDS",
    "MAX_NAME_LENGTH",
    "SPEEDUPS",
    "BoundPixelRecorder",
    "PageHit",
    "PageviewEncoder",
    "PixelRecorder",
    "bound_pixel_recorder",
    "epoch_ns",
    "hit_from_query",
    "page_event",
    "pixel_recorder",
]

logger = logging.getLogger("beacon")

#: ``record_pixel(scope, now_ns, encoder, salts, spool, ip)``: ``True`` once a cached
#: page view's row is in the spool, ``None`` when the Python path must record it;
#: ``ip`` (or ``None``: the scope's client) is the address read from a trusted proxy.
PixelRecorder = Callable[
    [MutableMapping[str, Any], int, "PageviewEncoder", SaltSource, "Spool", str | None],
    bool | None,
]
#: A :data:`PixelRecorder` bound to one beacon's clock (nanoseconds since the
#: epoch), encoder, salts and spool, called with the ASGI scope alone (the
#: client address is the scope's).
BoundPixelRecorder = Callable[[MutableMapping[str, Any]], bool | None]


_record_pixel: PixelRecorder | None = (
    compiled_speedups.record_pixel if compiled_speedups is not None else None
)
#: Whether the compiled accelerator ``beacon._speedups`` is in use in this process.
SPEEDUPS = _record_pixel is not None

#: Event kinds a browser may send.
CLIENT_KINDS = frozenset({"pageview", "event"})
#: Custom event names are cut to this length.
MAX_NAME_LENGTH = 100


@dataclass(frozen=True, slots=True)
class PageHit:
    """What a browser reported: page URL or path, referrer, utm_* values, kind, name."""

    page: str = ""
    referrer: str = ""
    utm: Mapping[str, str] | None = None
    kind: str = "pageview"
    name: str = ""


def page_event(
    hit: PageHit,
    *,
    now: datetime,
    site: str,
    ip: str,
    user_agent: str,
    salt: bytes,
    own_hosts: Iterable[str],
) -> PixelEvent:
    """The anonymized event of a page hit (the IP and User-Agent do not survive it)."""
    path, utm = page_path(hit.page)
    if hit.utm:
        utm = {**utm, **hit.utm}
    agent = classify(user_agent)
    kind = hit.kind if hit.kind in CLIENT_KINDS else "pageview"
    name = "".join(ch for ch in hit.name[:MAX_NAME_LENGTH] if ch.isprintable()).strip()
    return PixelEvent(
        ts=now,
        site=site,
        kind="event" if kind == "event" else "pageview",
        path=path,
        referrer_host=referrer_host(hit.referrer, own_hosts),
        utm_source=utm.get("utm_source", ""),
        utm_medium=utm.get("utm_medium", ""),
        utm_campaign=utm.get("utm_campaign", ""),
        utm_term=utm.get("utm_term", ""),
        utm_content=utm.get("utm_content", ""),
        visitor_hash=visitor_hash(salt, site, ip, user_agent),
        browser=agent.browser,
        os=agent.os,
        device=agent.device,
        is_bot=agent.is_bot,
        name=name if kind == "event" else "",
    )


_PAGE_CACHE_SIZE = 4096
_AGENT_CACHE_SIZE = 4096
_I64 = struct.Struct("<q")
_NS_PER_DAY = 86_400 * 10**9
#: Columns of a row: ts | site..utm_content | visitor_hash | browser..is_bot | campaign..name
_PAGE_COLUMNS = (1, 10)
_AGENT_COLUMNS = (11, 15)
_TAIL_COLUMNS = (15, len(EVENT_COLUMNS))


if TYPE_CHECKING or compiled_speedups is None:

    class _EncoderFields:
        """The UTC day an encoder is on (C fields with the accelerator)."""

        _day_number: int
        _day: date

else:
    _EncoderFields = compiled_speedups.EncoderFields


class PageviewEncoder(_EncoderFields):
    """Turns a pixel request's raw values into its spool row, fast.

    The same ``RowBinary`` row as ``page_event(...).to_row_binary()``, built
    from cached parts: the page parts (path, referrer host, utm values, event
    name) are cached per raw query string, ``Referer`` and ``Host``; the
    User-Agent part per raw header; the keyed hash state per salt; the UTC
    day per day. The caches are bounded (emptied when full), and hold only
    anonymized values besides their raw keys, which stay in memory only.
    """

    def __init__(self, site: str, own_hosts: Iterable[str]) -> None:
        self.site = site
        self.own_hosts = tuple(own_hosts)
        # These attributes, their names and types, are read by ``beacon._speedups``.
        self._site_bytes = site.encode() + b"\0"
        self._pages: dict[tuple[bytes, bytes, bytes], tuple[bytes, bytes]] = {}
        self._agents: dict[bytes, tuple[bytes, bytes]] = {}
        self._hashers: dict[bytes, Any] = {}
        self._day_number = -1
        self._day = _EPOCH.date()

    def page_part(self, query: bytes, referer: bytes, host: bytes) -> tuple[bytes, bytes]:
        """The encoded columns ``site`` to ``utm_content``, and ``campaign`` to ``name``."""
        key = (query, referer, host)
        part = self._pages.get(key)
        if part is None:
            if len(self._pages) >= _PAGE_CACHE_SIZE:
                self._pages.clear()
            part = self._pages[key] = self._encode_page(hit_from_query(query, referer), host)
        return part

    def _encode_page(self, hit: PageHit, host: bytes) -> tuple[bytes, bytes]:
        event = page_event(
            hit,
            now=_EPOCH,
            site=self.site,
            ip="",
            user_agent="",
            salt=b"",
            own_hosts=self._own(host),
        )
        return encode_columns(event, *_PAGE_COLUMNS), encode_columns(event, *_TAIL_COLUMNS)

    def _own(self, host: bytes) -> tuple[str, ...]:
        name = host.decode("latin-1").partition(":")[0].lower()
        return (*self.own_hosts, name) if name else self.own_hosts

    def agent_part(self, user_agent: bytes) -> tuple[bytes, bytes]:
        """(the User-Agent as hashed, its encoded ``browser`` to ``is_bot`` columns)."""
        found = self._agents.get(user_agent)
        if found is None:
            if len(self._agents) >= _AGENT_CACHE_SIZE:
                self._agents.clear()
            text = user_agent[:512].decode("utf-8", "replace")
            info = classify(text)
            event = PixelEvent(
                ts=_EPOCH,
                site="",
                kind="pageview",
                browser=info.browser,
                os=info.os,
                device=info.device,
                is_bot=info.is_bot,
            )
            found = self._agents[user_agent] = (
                text.encode("utf-8", "surrogateescape"),
                encode_columns(event, *_AGENT_COLUMNS),
            )
        return found

    def pixel_row(
        self,
        now_ns: int,
        salts: SaltSource,
        ip: str,
        user_agent: bytes,
        query: bytes,
        referer: bytes,
        host: bytes,
    ) -> bytes:
        """The spool row of a ``/p.gif`` request, equal to ``page_event(...).to_row_binary()``.

        ``now_ns`` is the time in nanoseconds since the epoch (``time.time_ns()``);
        the salt is that UTC day's from ``salts``. The request path: cache hits
        are looked up inline, misses go through :meth:`page_part` and
        :meth:`agent_part`.
        """
        day_number = now_ns // _NS_PER_DAY
        if day_number != self._day_number:
            self._day = (_EPOCH + timedelta(days=day_number)).date()
            self._day_number = day_number
        page = self._pages.get((query, referer, host)) or self.page_part(query, referer, host)
        agent = self._agents.get(user_agent) or self.agent_part(user_agent)
        salt = salts.salt_for(self._day)
        hasher = self._hashers.get(salt)
        if hasher is None:
            if len(self._hashers) > 4:
                self._hashers.clear()
            hasher = self._hashers[salt] = blake2b(digest_size=8, key=salt)
        state = hasher.copy()
        state.update(
            b"%b%b\0%b" % (self._site_bytes, ip.encode("utf-8", "surrogateescape"), agent[0])
        )
        return b"%b%b%b%b%b" % (
            _I64.pack(now_ns // 1_000_000),
            page[0],
            state.digest(),
            agent[1],
            page[1],
        )


def pixel_recorder(salts: SaltSource) -> PixelRecorder | None:
    """The compiled recorder of cached page views, when built and usable with ``salts``.

    It reads the salts already settled in memory, so it serves the salt
    sources of :mod:`beacon.anonymize` (whose :meth:`~SaltSource.salt_for`
    returns them as they are) and no other; ``None`` means every page view
    takes the Python path.
    """
    if _record_pixel is None or type(salts).salt_for not in _SETTLED_SALT_LOOKUPS:
        return None
    return _record_pixel


def bound_pixel_recorder(
    clock_ns: Callable[[], int], encoder: PageviewEncoder, salts: SaltSource, spool: Spool
) -> BoundPixelRecorder | None:
    """:func:`pixel_recorder` bound to its arguments: one call per request, the scope alone.

    Saves the hot path the look-ups of the four on every request; ``None``
    whenever :func:`pixel_recorder` is.
    """
    if pixel_recorder(salts) is None:
        return None
    from beacon._speedups import Recorder

    return Recorder(clock_ns, encoder, salts, spool)


_SETTLED_SALT_LOOKUPS = (StoreSalts.salt_for, FileSalts.salt_for)


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, exactly."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_QUERY = 4096
_MAX_FIELD = 2048


def hit_from_query(query: bytes, referer: bytes = b"") -> PageHit:
    """The page hit a ``/p.gif`` query string describes (``Referer`` when ``u`` is absent)."""
    pairs = list(split_query(query[:_MAX_QUERY].decode("utf-8", "replace")))
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in ("u", "r", "k", "n") and key not in fields:
            fields[key] = value[:_MAX_FIELD]
    page = fields.get("u", "") or referer[:_MAX_FIELD].decode("utf-8", "replace")
    return PageHit(
        page,
        fields.get("r", ""),
        utm_params(pairs),
        fields.get("k", "pageview"),
        fields.get("n", ""),
    )
