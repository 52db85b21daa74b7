"""The anonymized event, the one record every beacon endpoint produces.

A :class:`PixelEvent` holds only anonymized values: a visitor hash instead of
the IP address and User-Agent, browser/OS families and a device class instead
of the User-Agent, a referrer host instead of the referrer URL, a recipient
reference (keyed hash) instead of an e-mail address. It is written to the
spool as one row in ClickHouse's ``RowBinary`` format (:meth:`PixelEvent.to_row_binary`),
which the engine reads without parsing text, so flushing a spool segment is a
single raw insert; :func:`read_row_binary` reads such rows back.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

__all__ = [
    "DEVICES",
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "EventKind",
    "PixelEvent",
    "encode_columns",
    "read_row_binary",
    "row_binary_string",
    "tsv_escape",
]

EventKind = Literal["pageview", "event", "open", "click", "unsubscribe", "ad_click"]
#: The values of the ``kind`` column's ``Enum8``, numbered from 1 in this order.
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
#: The values of the ``device`` column's ``Enum8``, numbered from 1 in this order.
DEVICES: tuple[str, ...] = ("unknown", "desktop", "mobile", "tablet", "bot")

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

    def to_row_binary(self) -> bytes:
        """The event as one row of ClickHouse's ``RowBinary`` format (the spool's format)."""
        return encode_columns(self, 0, len(EVENT_COLUMNS))


_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KIND_CODES = {kind: bytes([code]) for code, kind in enumerate(EVENT_KINDS, start=1)}
_DEVICE_CODES = {device: bytes([code]) for code, device in enumerate(DEVICES, start=1)}


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def row_binary_string(value: str) -> bytes:
    """``value`` as a ``RowBinary`` String: its UTF-8 length as a LEB128 varint, then the bytes."""
    data = value.encode("utf-8", "replace")
    return _varint(len(data)) + data


def _timestamp(value: datetime) -> bytes:
    return _I64.pack((value - _EPOCH) // timedelta(milliseconds=1))


def _flag(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "ts": _timestamp,
    "kind": lambda kind: _KIND_CODES[kind],
    "visitor_hash": _U64.pack,
    "recipient": _U64.pack,
    "device": lambda device: _DEVICE_CODES.get(device, b"\x01"),
    "is_bot": _flag,
    "machine": _flag,
}


def encode_columns(event: PixelEvent, start: int, stop: int) -> bytes:
    """``RowBinary`` of the columns ``EVENT_COLUMNS[start:stop]`` of ``event``.

    A whole row is ``encode_columns(event, 0, len(EVENT_COLUMNS))``; slices let a
    caller cache the parts of a row that repeat from one event to the next.
    """
    return b"".join(
        _ENCODERS.get(name, row_binary_string)(getattr(event, name))
        for name in EVENT_COLUMNS[start:stop]
    )


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise ValueError("RowBinary data ends inside a row")
        chunk, self.pos = self.data[self.pos : end], end
        return chunk

    def string(self) -> str:
        size = shift = 0
        while True:
            (byte,) = self.take(1)
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        return self.take(size).decode("utf-8", "replace")


def _decode(reader: _Reader, name: str) -> Any:
    if name == "ts":
        return _EPOCH + timedelta(milliseconds=_I64.unpack(reader.take(8))[0])
    if name in ("visitor_hash", "recipient"):
        return _U64.unpack(reader.take(8))[0]
    if name in ("kind", "device"):
        values = EVENT_KINDS if name == "kind" else DEVICES
        code = reader.take(1)[0]
        if not 1 <= code <= len(values):
            raise ValueError(f"bad {name} code {code}")
        return values[code - 1]
    if name in ("is_bot", "machine"):
        return reader.take(1) != b"\x00"
    return reader.string()


def read_row_binary(data: bytes) -> Iterator[PixelEvent]:
    """The events of ``RowBinary`` rows (a spool segment's data); ``ValueError`` if torn."""
    reader = _Reader(data)
    while reader.pos < len(data):
        yield PixelEvent(**{name: _decode(reader, name) for name in EVENT_COLUMNS})
