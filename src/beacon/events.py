"""The anonymized event, the one record every beacon endpoint produces.

A :class:`PixelEvent` holds only anonymized values: a visitor hash instead of
the IP address and User-Agent, browser/OS families and a device class instead
of the User-Agent, a referrer host instead of the referrer URL, a recipient
reference (keyed hash) instead of an e-mail address. It is written to the
spool as one TabSeparated line that ClickHouse reads as-is, so flushing a
spool segment is a single raw insert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

__all__ = ["EVENT_COLUMNS", "EventKind", "PixelEvent", "tsv_escape"]

EventKind = Literal["pageview", "event", "open", "click", "unsubscribe", "ad_click"]

#: Columns of the raw ``events`` table, in spool (TabSeparated) order.
EVENT_COLUMNS: tuple[str, ...] = (
    "ts",
    "site",
    "kind",
    "path",
    "referrer_host",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "visitor_hash",
    "browser",
    "os",
    "device",
    "is_bot",
    "campaign",
    "link",
    "recipient",
    "machine",
    "name",
)

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def tsv_escape(value: str) -> str:
    """Escape ``value`` for a ClickHouse TabSeparated field."""
    return value.translate(_ESCAPES)


@dataclass(frozen=True, slots=True)
class PixelEvent:
    """One anonymized event, ready for the spool.

    ``visitor_hash`` is the daily keyed hash of (salt, site, IP, User-Agent);
    ``recipient`` is the keyed hash carried by e-mail tokens (0 when there is
    none); ``machine`` flags image-proxy opens and scanner clicks.
    """

    ts: datetime
    site: str
    kind: EventKind
    path: str = ""
    referrer_host: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_term: str = ""
    utm_content: str = ""
    visitor_hash: int = 0
    browser: str = ""
    os: str = ""
    device: str = "unknown"
    is_bot: bool = False
    campaign: str = ""
    link: str = ""
    recipient: int = 0
    machine: bool = False
    name: str = ""

    def to_tsv(self) -> bytes:
        """The event as one TabSeparated line (with its trailing newline)."""
        ts = self.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        fields = (
            ts,
            tsv_escape(self.site),
            self.kind,
            tsv_escape(self.path),
            tsv_escape(self.referrer_host),
            tsv_escape(self.utm_source),
            tsv_escape(self.utm_medium),
            tsv_escape(self.utm_campaign),
            tsv_escape(self.utm_term),
            tsv_escape(self.utm_content),
            str(self.visitor_hash),
            tsv_escape(self.browser),
            tsv_escape(self.os),
            tsv_escape(self.device),
            "1" if self.is_bot else "0",
            tsv_escape(self.campaign),
            tsv_escape(self.link),
            str(self.recipient),
            "1" if self.machine else "0",
            tsv_escape(self.name),
        )
        return ("\t".join(fields) + "\n").encode("utf-8", "replace")
