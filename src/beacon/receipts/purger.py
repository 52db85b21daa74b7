"""Runs due erasures periodically in the process that owns the store.

Erasures become due 24 hours after they were requested; something must then
carry them out. ``beacon consent purge-due`` does it from cron; an
:class:`ErasurePurger` does it from inside the site's process (the one that
owns the embedded database, or any one process with a ClickHouse server).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from beacon.receipts.store import PurgeReport, ReceiptStore
from mypharm_consent.receipts import ReceiptError

__all__ = ["DEFAULT_PURGE_INTERVAL", "ErasurePurger"]

logger = logging.getLogger("beacon.receipts")

#: Seconds between two purges: an erasure is carried out at most this late.
DEFAULT_PURGE_INTERVAL = 900.0


class ErasurePurger:
    """A daemon thread calling :meth:`ReceiptStore.purge_due` every ``interval`` seconds.

    Failures (ClickHouse down) are logged and counted in ``failures``; the
    next run retries, and :meth:`ReceiptStore.purge_due` finishes whatever a
    failed run left half-way. ``last_report`` is the outcome of the last
    successful run.
    """

    def __init__(self, store: ReceiptStore, *, interval: float = DEFAULT_PURGE_INTERVAL) -> None:
        if not interval > 0:
            raise ValueError("interval must be a positive number of seconds")
        self.store = store
        self.interval = interval
        self.runs = 0
        self.failures = 0
        self.last_report: PurgeReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> PurgeReport | None:
        """Purge now; the report, or ``None`` if the store could not be used."""
        try:
            report = self.store.purge_due()
        except ReceiptError as exc:
            self.failures += 1
            logger.warning("purging due consent-receipt erasures failed: %s", type(exc).__name__)
            return None
        self.runs += 1
        self.last_report = report
        if report.erased or report.late_receipts:
            logger.info(
                "consent receipts: %d erasure(s) carried out, late receipts of %d id(s) deleted",
                report.erased,
                report.late_receipts,
            )
        return report

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def start(self) -> None:
        """Start the thread (a first purge runs after one interval)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="consent-receipt-purger", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds for a running purge."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    @contextlib.contextmanager
    def running(self) -> Iterator[ErasurePurger]:
        """``with purger.running():`` starts the thread and stops it on exit."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
