"""Proof of consent in ClickHouse: a receipt for every decision, export and erasure.

::

    from beacon import Beacon
    from beacon.receipts import ErasurePurger, ReceiptRecorder, ReceiptStore
    from mypharm_consent import ConsentConfig

    tracker = Beacon(site="mypharm.fr", clickhouse_url=...)
    receipts = ReceiptStore(tracker.store)
    config = ConsentConfig(
        secret_keys=[...],
        on_decision=ReceiptRecorder(tracker),  # spools a receipt per decision
        receipts=receipts,                     # history, download, erasure on the preferences page
    )
    purger = ErasurePurger(receipts)           # carries out erasures once their grace is over

Tables (migrations 0050-0052): ``consent_receipts`` (one row per decision,
kept five years by default), ``banner_versions`` (the banner each banner hash
stands for) and ``receipt_erasures`` (erasure requests and outcomes).
Opt-in statistics over the receipts are in :mod:`beacon.receipts.stats`.
"""

from beacon.receipts.purger import ErasurePurger
from beacon.receipts.recorder import ReceiptRecorder
from beacon.receipts.store import (
    BannerVersion,
    PurgeReport,
    ReceiptStore,
    ReceiptStoreUnavailable,
    consent_digest,
)

__all__ = [
    "BannerVersion",
    "ErasurePurger",
    "PurgeReport",
    "ReceiptRecorder",
    "ReceiptStore",
    "ReceiptStoreUnavailable",
    "consent_digest",
]
