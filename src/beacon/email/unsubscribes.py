"""Opt-outs: the rows written to ``email_unsubscribes`` and the queries over them.

An opt-out is written through the lossless spool (like every event), so the
unsubscribe endpoint answers even while ClickHouse is down and nothing it
acknowledged is lost. Reading goes straight to the store: the answer reflects
what has been flushed (the spool is flushed about every second).

A recipient is unsubscribed when the newest of its rows says so
(``argMax(unsubscribed, ts)``), which keeps the answer right before
``ReplacingMergeTree`` merges and lets a re-subscription (a newer row with
``unsubscribed = 0``) undo an opt-out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from beacon.events import tsv_escape
from beacon.store import Store

__all__ = [
    "UNSUBSCRIBES_TABLE",
    "UNSUBSCRIBE_COLUMNS",
    "Unsubscribe",
    "UnsubscribeRecord",
    "unsubscribed_among",
    "unsubscribed_list",
]

#: The durable opt-out table (no TTL).
UNSUBSCRIBES_TABLE = "email_unsubscribes"
#: Its columns, in spool (TabSeparated) order.
UNSUBSCRIBE_COLUMNS: tuple[str, ...] = ("ts", "site", "recipient", "campaign", "unsubscribed")

_QUERY_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class UnsubscribeRecord:
    """One opt-out (``unsubscribed=True``) or re-subscription, ready for the spool."""

    ts: datetime
    site: str
    recipient: int
    campaign: str
    unsubscribed: bool = True

    def to_tsv(self) -> bytes:
        """The row as one TabSeparated line (with its trailing newline)."""
        ts = self.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        fields = (
            ts,
            tsv_escape(self.site),
            str(self.recipient),
            tsv_escape(self.campaign),
            "1" if self.unsubscribed else "0",
        )
        return ("\t".join(fields) + "\n").encode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """A recipient reference that is currently unsubscribed, with when and from which campaign."""

    recipient: int
    campaign: str
    ts: datetime


def unsubscribed_among(store: Store, site: str, recipients: Iterable[int]) -> set[int]:
    """The references among ``recipients`` that are unsubscribed on ``site``.

    Blocking (run it in a worker thread from async code); raises
    :class:`~beacon.exceptions.StoreError` when the store cannot answer, so
    a mailer never mistakes an outage for "nobody unsubscribed".
    """
    wanted = sorted(set(recipients))
    found: set[int] = set()
    table = f"`{store.database}`.`{UNSUBSCRIBES_TABLE}`"
    for start in range(0, len(wanted), _QUERY_CHUNK):
        rows = store.query_rows(
            f"SELECT recipient FROM {table} "
            "WHERE site = {site:String} AND recipient IN {refs:Array(UInt64)} "
            "GROUP BY recipient HAVING argMax(unsubscribed, ts) = 1",
            parameters={"site": site, "refs": wanted[start : start + _QUERY_CHUNK]},
        )
        found.update(int(row[0]) for row in rows)
    return found


def unsubscribed_list(store: Store, site: str, campaign: str | None = None) -> list[Unsubscribe]:
    """Every recipient currently unsubscribed on ``site``, oldest opt-out first.

    With ``campaign``, only those whose opt-out came from that campaign.
    Blocking; raises :class:`~beacon.exceptions.StoreError` when the store
    cannot answer.
    """
    table = f"`{store.database}`.`{UNSUBSCRIBES_TABLE}`"
    having = "argMax(unsubscribed, ts) = 1"
    parameters: dict[str, object] = {"site": site}
    if campaign is not None:
        having += " AND argMax(campaign, ts) = {campaign:String}"
        parameters["campaign"] = campaign
    rows = store.query_rows(
        f"SELECT recipient, argMax(campaign, ts), max(ts) FROM {table} "
        f"WHERE site = {{site:String}} GROUP BY recipient HAVING {having} "
        "ORDER BY max(ts), recipient",
        parameters=parameters,
    )
    return [
        Unsubscribe(recipient=int(row[0]), campaign=str(row[1]), ts=row[2].replace(tzinfo=UTC))
        for row in rows
    ]
