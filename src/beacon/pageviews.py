"""From the plain values of a page-view request to an anonymized :class:`PixelEvent`.

Framework-free: the ASGI app (and anything else) hands over strings already
taken from the request; this module applies every anonymization rule of
:mod:`beacon.anonymize` before an event exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

from beacon.anonymize import (
    SaltSource,
    page_path,
    referrer_host,
    split_query,
    utm_params,
    visitor_hash,
)
from beacon.events import PixelEvent
from beacon.useragent import classify

__all__ = [
    "CLIENT_KINDS",
    "MAX_NAME_LENGTH",
    "PageHit",
    "PageviewEncoder",
    "epoch_ns",
    "hit_from_query",
    "page_event",
]

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


class PageviewEncoder:
    """Turns a pixel request's raw values into its spool line, fast.

    The same line as ``page_event(...).to_tsv()``, built from cached parts:
    the page part (path, referrer host, utm values) is cached per raw query
    string, ``Referer`` and ``Host``; the User-Agent part per raw header; the
    keyed hash state per salt; the timestamp text and UTC day per second. The caches are
    bounded (emptied when full), and hold only anonymized values besides
    their raw keys, which stay in memory only.
    """

    def __init__(self, site: str, own_hosts: Iterable[str]) -> None:
        self.site = site
        self.own_hosts = tuple(own_hosts)
        self._site_bytes = site.encode() + b"\0"
        self._pages: dict[tuple[bytes, bytes, bytes], str] = {}
        self._agents: dict[bytes, tuple[bytes, str]] = {}
        self._hashers: dict[bytes, Any] = {}
        self._second = -1
        self._second_text = ""
        self._day = _EPOCH.date()

    def page_part(self, query: bytes, referer: bytes, host: bytes) -> str:
        """Escaped fields from ``site`` to ``utm_content``, then a tab and the tail marker."""
        key = (query, referer, host)
        part = self._pages.get(key)
        if part is None:
            if len(self._pages) >= _PAGE_CACHE_SIZE:
                self._pages.clear()
            part = self._pages[key] = self._encode_page(hit_from_query(query, referer), host)
        return part

    def _encode_page(self, hit: PageHit, host: bytes) -> str:
        event = page_event(
            hit,
            now=_EPOCH,
            site=self.site,
            ip="",
            user_agent="",
            salt=b"",
            own_hosts=self._own(host),
        )
        fields = event.to_tsv().decode("utf-8").rstrip("\n").split("\t")
        # fields: ts, site..utm_content (1-9), visitor_hash, agent (11-14), tail (15-19)
        return "\t".join(fields[1:10]) + "\0" + "\t".join(fields[15:])

    def _own(self, host: bytes) -> tuple[str, ...]:
        name = host.decode("latin-1").partition(":")[0].lower()
        return (*self.own_hosts, name) if name else self.own_hosts

    def agent_part(self, user_agent: bytes) -> tuple[bytes, str]:
        """(the User-Agent as hashed, its escaped browser/os/device/is_bot fields)."""
        found = self._agents.get(user_agent)
        if found is None:
            if len(self._agents) >= _AGENT_CACHE_SIZE:
                self._agents.clear()
            text = user_agent[:512].decode("utf-8", "replace")
            info = classify(text)
            fields = (
                PixelEvent(
                    ts=_EPOCH,
                    site="",
                    kind="pageview",
                    browser=info.browser,
                    os=info.os,
                    device=info.device,
                    is_bot=info.is_bot,
                )
                .to_tsv()
                .decode("utf-8")
                .split("\t")[11:15]
            )
            found = self._agents[user_agent] = (
                text.encode("utf-8", "surrogateescape"),
                "\t".join(fields),
            )
        return found

    def _hash(self, salt: bytes, ip: str, agent: bytes) -> int:
        hasher = self._hashers.get(salt)
        if hasher is None:
            if len(self._hashers) > 4:
                self._hashers.clear()
            hasher = self._hashers[salt] = blake2b(digest_size=8, key=salt)
        state = hasher.copy()
        state.update(self._site_bytes + ip.encode("utf-8", "surrogateescape") + b"\0" + agent)
        return int.from_bytes(state.digest(), "little")

    def pixel_line(
        self,
        *,
        now_ns: int,
        salts: SaltSource,
        ip: str,
        user_agent: bytes,
        query: bytes,
        referer: bytes,
        host: bytes,
    ) -> bytes:
        """The spool line of a ``/p.gif`` request, equal to ``page_event(...).to_tsv()``.

        ``now_ns`` is the time in nanoseconds since the epoch (``time.time_ns()``);
        the salt is that UTC day's from ``salts``.
        """
        second = now_ns // 1_000_000_000
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._second_text = moment.strftime("%Y-%m-%d %H:%M:%S")
            self._day = moment.date()
            self._second = second
        page, _, tail = self.page_part(query, referer, host).partition("\0")
        agent, agent_fields = self.agent_part(user_agent)
        visitor = self._hash(salts.salt_for(self._day), ip, agent)
        millis = _MILLIS[now_ns // 1_000_000 % 1000]
        return (f"{self._second_text}{millis}\t{page}\t{visitor}\t{agent_fields}\t{tail}\n").encode(
            "utf-8", "replace"
        )


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, exactly."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLIS = tuple(f".{n:03d}" for n in range(1000))
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
