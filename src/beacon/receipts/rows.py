"""Receipts and banner versions as TabSeparated rows ClickHouse reads as-is.

Receipts travel through the same lossless spool as page views, one
TabSeparated line per row, so that a spool segment is flushed with a single
raw insert into its table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from beacon.events import tsv_escape
from mypharm_consent.receipts import ConsentReceipt

__all__ = [
    "BANNER_VERSIONS_TABLE",
    "BANNER_VERSION_COLUMNS",
    "RECEIPTS_TABLE",
    "RECEIPT_COLUMNS",
    "banner_version_tsv",
    "receipt_tsv",
    "tsv_datetime",
]

#: The table every receipt lands in.
RECEIPTS_TABLE = "consent_receipts"
#: The table holding each distinct banner wording once.
BANNER_VERSIONS_TABLE = "banner_versions"

#: Columns of ``consent_receipts``, in spool (TabSeparated) order.
RECEIPT_COLUMNS: tuple[str, ...] = (
    "consent_id",
    "ts",
    "action",
    "granted",
    "refused",
    "policy_revision",
    "banner_hash",
    "language",
    "source",
    "device_class",
)

#: Columns of ``banner_versions``, in spool (TabSeparated) order.
BANNER_VERSION_COLUMNS: tuple[str, ...] = ("banner_hash", "language", "html", "first_seen")


def tsv_datetime(moment: datetime) -> str:
    """``moment`` as a ClickHouse ``DateTime64(3, 'UTC')`` text value."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


_QUOTED_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
)


def _tsv_array(values: Iterable[str]) -> str:
    # Inside a TabSeparated array, strings are quoted and escaped like SQL
    # literals; the quoted form already keeps tabs and newlines out.
    return "[" + ",".join("'" + v.translate(_QUOTED_ESCAPES) + "'" for v in values) + "]"


def receipt_tsv(receipt: ConsentReceipt) -> bytes:
    """``receipt`` as one ``consent_receipts`` line (with its trailing newline)."""
    fields = (
        tsv_escape(receipt.consent_id),
        tsv_datetime(receipt.time),
        tsv_escape(receipt.action),
        _tsv_array(receipt.granted),
        _tsv_array(receipt.refused),
        str(int(receipt.policy_revision)),
        tsv_escape(receipt.banner_hash),
        tsv_escape(receipt.language),
        tsv_escape(receipt.source),
        tsv_escape(receipt.device_class),
    )
    return ("\t".join(fields) + "\n").encode("utf-8", "replace")


def banner_version_tsv(banner_hash: str, language: str, html: str, first_seen: datetime) -> bytes:
    """One ``banner_versions`` line: the banner ``html`` a hash stands for."""
    fields = (
        tsv_escape(banner_hash),
        tsv_escape(language),
        tsv_escape(html),
        tsv_datetime(first_seen),
    )
    return ("\t".join(fields) + "\n").encode("utf-8", "replace")
