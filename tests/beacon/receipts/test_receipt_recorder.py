"""ReceiptRecorder: every decision reaches ClickHouse through the real spool and flusher."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beacon.flusher import Flusher
from beacon.receipts.recorder import ReceiptRecorder
from beacon.receipts.store import ReceiptStore
from beacon.spool import SpoolDir
from beacon.store import Store
from mypharm_consent.decisions import ConsentDecision
from mypharm_consent.receipts import ConsentReceipt

CONSENT_ID = "Zx3_kq9-VbN2mR7wT1yPdA"
BANNER = '<div id="mypharm-consent-banner">Nous utilisons des cookies…</div>'
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def decision(consent_id: str = CONSENT_ID, minutes: int = 0, **fields: object) -> ConsentDecision:
    values: dict[str, object] = {
        "consent_id": consent_id,
        "previous_consent_id": None,
        "time": WHEN + timedelta(minutes=minutes),
        "action": "save",
        "granted": frozenset({"necessary", "analytics"}),
        "refused": frozenset({"marketing"}),
        "policy_revision": 2,
        "banner_hash": "f" * 32,
        "language": "fr",
        "source": "no-js",
        "device_class": "mobile",
    }
    values.update(fields)
    return ConsentDecision(**values)  # type: ignore[arg-type]


def banners(known: dict[str, str]) -> object:
    def lookup(banner_hash: str, language: str) -> str | None:
        return known.get(banner_hash)

    return lookup


def flush(spool: SpoolDir, store: Store) -> None:
    spool.close()
    assert Flusher(store, [spool.root], own=spool).drain_once()


def test_decisions_become_receipts_and_the_banner_is_kept_once(
    tmp_path: Path, store: Store
) -> None:
    spool = SpoolDir(tmp_path / "spool")
    recorder = ReceiptRecorder(spool, banner_html=banners({"f" * 32: BANNER}))  # type: ignore[arg-type]
    made = [
        decision(
            minutes=0,
            action="accept_all",
            granted=frozenset({"necessary", "analytics", "marketing"}),
            refused=frozenset(),
        ),
        decision(minutes=1),
        decision(
            minutes=2,
            action="withdraw",
            granted=frozenset({"necessary"}),
            refused=frozenset({"analytics", "marketing"}),
        ),
    ]
    for each in made:
        recorder(each)
    assert (recorder.recorded, recorder.failed) == (3, 0)
    flush(spool, store)

    history = ReceiptStore(store).history(CONSENT_ID)
    assert history == [ConsentReceipt.from_decision(d) for d in made]
    assert history[1].granted == ("analytics", "necessary")
    assert history[1].refused == ("marketing",)
    rows = store.query_rows("SELECT banner_hash, language, html FROM banner_versions")
    assert rows == [("f" * 32, "fr", BANNER)]


def test_an_unknown_banner_is_looked_up_again_later(tmp_path: Path, store: Store) -> None:
    known: dict[str, str] = {}
    spool = SpoolDir(tmp_path / "spool")
    recorder = ReceiptRecorder(spool, banner_html=banners(known))  # type: ignore[arg-type]
    recorder(decision(minutes=0))
    known["f" * 32] = BANNER
    recorder(decision(minutes=1))
    recorder(decision(minutes=2))
    flush(spool, store)
    assert store.query_rows("SELECT count(), any(html) FROM banner_versions") == [(1, BANNER)]
    assert len(ReceiptStore(store).history(CONSENT_ID)) == 3


def test_a_lost_receipt_never_reaches_the_visitor_nor_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = SpoolDir(tmp_path / "spool")
    recorder = ReceiptRecorder(spool, banner_html=banners({}))  # type: ignore[arg-type]
    recorder(decision(minutes=0))
    # The disk goes away under the spool: appends fail, the decision still succeeds.
    spool.close()
    shutil.rmtree(spool.path / "consent_receipts")
    with caplog.at_level(logging.ERROR, logger="beacon.receipts"):
        recorder(decision(minutes=1))
        recorder(decision(consent_id="not a valid id"))
    assert (recorder.recorded, recorder.failed) == (1, 2)
    assert "could not be spooled" in caplog.text
    assert CONSENT_ID not in caplog.text
    assert "not a valid id" not in caplog.text


def test_a_full_spool_is_counted(tmp_path: Path) -> None:
    spool = SpoolDir(tmp_path / "spool", segment_max_bytes=65536, max_bytes=65536)
    recorder = ReceiptRecorder(spool, banner_html=banners({}))  # type: ignore[arg-type]
    for minute in range(1000):
        recorder(decision(minutes=minute))
    assert recorder.failed > 0
    assert recorder.recorded + recorder.failed == 1000
    assert spool.stats.dropped == recorder.failed
