"""The ``on_decision`` hook that turns every consent decision into a stored receipt.

:class:`ReceiptRecorder` is handed to ``ConsentConfig(on_decision=...)``. It
runs inside the request that carried the decision, so it only appends a line
to the beacon's lossless spool (a local file append, no ClickHouse round
trip) and never raises: a receipt that cannot be spooled is counted and
logged, and the visitor's choice is honoured all the same. The spool's
flusher inserts the lines into ``consent_receipts`` later, with the same
deduplication and retry guarantees as page views.

The first time a banner hash is seen, the banner it stands for (as returned
by ``banner_html``) is spooled into ``banner_versions`` as well, so that the
wording each receipt refers to is kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from beacon.receipts.rows import (
    BANNER_VERSION_COLUMNS,
    BANNER_VERSIONS_TABLE,
    RECEIPT_COLUMNS,
    RECEIPTS_TABLE,
    banner_version_tsv,
    receipt_tsv,
)
from beacon.spool import Spool
from mypharm_consent.banner import shown_banner
from mypharm_consent.decisions import ConsentDecision
from mypharm_consent.receipts import ConsentReceipt, is_consent_id

__all__ = ["BannerLookup", "ReceiptRecorder", "SpoolSource"]

logger = logging.getLogger("beacon.receipts")

#: Returns the rendered banner for ``(banner_hash, language)``, or ``None``
#: when the hash is not one this process rendered.
BannerLookup = Callable[[str, str], str | None]


class SpoolSource(Protocol):
    """What hands out lossless spools by table: a :class:`~beacon.Beacon` or a
    :class:`~beacon.spool.SpoolDir`."""

    def spool(self, table: str, columns: Sequence[str]) -> Spool:
        """The spool of ``table`` in this process."""
        ...


class ReceiptRecorder:
    """Spools a receipt for every decision; use it as ``ConsentConfig.on_decision``.

    ``spools`` is the site's :class:`~beacon.Beacon` (or a spool directory
    its flusher drains): receipts go through the same lossless spool as page
    views. ``banner_html`` returns the rendered banner
    of a hash (by default :func:`mypharm_consent.banner.shown_banner`, which
    knows every banner this process rendered). ``recorded`` and ``failed``
    count receipts spooled and lost; the consent id never reaches a log line.
    """

    def __init__(
        self,
        spools: SpoolSource,
        *,
        banner_html: BannerLookup | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.spools = spools
        self.banner_html = banner_html if banner_html is not None else shown_banner
        self.clock = clock
        self.recorded = 0
        self.failed = 0
        self._stored_banners: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, decision: ConsentDecision) -> None:
        """Spool the receipt of ``decision`` (and its banner, the first time). Never raises."""
        try:
            if not is_consent_id(decision.consent_id):
                raise ValueError("the decision carries no valid consent id")
            receipt = ConsentReceipt.from_decision(decision)
            self._record_banner(receipt)
            spooled = self.spools.spool(RECEIPTS_TABLE, RECEIPT_COLUMNS).append(
                receipt_tsv(receipt)
            )
        except Exception as exc:
            self._lost(decision, type(exc).__name__)
            return
        if not spooled:
            self._lost(decision, "spool full or not writable")
            return
        with self._lock:
            self.recorded += 1

    def _lost(self, decision: ConsentDecision, reason: str) -> None:
        with self._lock:
            self.failed += 1
        # Never the consent id: it must not reach a log line.
        logger.error(
            "a %s consent receipt could not be spooled: %s",
            getattr(decision, "action", "?"),
            reason,
        )

    def _record_banner(self, receipt: ConsentReceipt) -> None:
        key = receipt.banner_hash
        if not key or key in self._stored_banners:
            return
        html = self.banner_html(key, receipt.language)
        if html is None:
            return
        line = banner_version_tsv(key, receipt.language, html, self.clock())
        if not self.spools.spool(BANNER_VERSIONS_TABLE, BANNER_VERSION_COLUMNS).append(line):
            return
        with self._lock:
            self._stored_banners.add(key)
