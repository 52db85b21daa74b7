"""Consent receipts: the cost of recording a decision, and of one visitor's lookup and erasure.

Every figure is measured next to a baseline run in the same process, so the
ratio holds on any machine:

- recording a decision (``ReceiptRecorder``, what the decide endpoint pays)
  vs appending one page view to the same spool (what the pixel pays);
- reading one consent id's receipts among ``--rows`` receipts (the sort key
  at work) vs the same query written so that the sort key cannot be used;
- erasing one consent id (lightweight ``DELETE``, then the parts that held
  its rows rewritten) vs rewriting the whole table once.

    .venv/bin/python benchmarks/bench_receipts.py [--seconds 1.0] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from beacon.events import PixelEvent
from beacon.migrations import migrate
from beacon.receipts import ReceiptRecorder, ReceiptStore
from beacon.spool import SpoolDir
from beacon.store import Store
from mypharm_consent.decisions import ConsentDecision

IDS = 200_000


def _run(action: Callable[[], object], seconds: float, batch: int) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            action()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def paired(
    measured: Callable[[], object],
    baseline: Callable[[], object],
    seconds: float,
    batch: int = 50,
) -> tuple[float, float]:
    """Calls per second of both, in alternating runs (the median of five each).

    Alternating keeps a burst of load from other processes from favouring
    one side of the ratio.
    """
    ours, theirs = [], []
    for _ in range(5):
        ours.append(_run(measured, seconds / 5, batch))
        theirs.append(_run(baseline, seconds / 5, batch))
    return statistics.median(ours), statistics.median(theirs)


def recording(seconds: float, directory: Path) -> tuple[float, float]:
    spool = SpoolDir(directory / "spool", max_bytes=4 * 1024**3, segment_max_bytes=64 * 1024**2)
    recorder = ReceiptRecorder(spool, banner_html=lambda banner_hash, language: "<div></div>")
    decision = ConsentDecision(
        consent_id="Zx3_kq9-VbN2mR7wT1yPdA",
        previous_consent_id=None,
        time=datetime.now(UTC),
        action="save",
        granted=frozenset({"necessary", "analytics"}),
        refused=frozenset({"marketing"}),
        policy_revision=3,
        banner_hash="6f0c2f7e9d1b4a53a8e2c07d91f3b6aa",
        language="fr",
        source="no-js",
        device_class="desktop",
    )
    event = PixelEvent(
        ts=datetime.now(UTC),
        site="mypharm.fr",
        kind="pageview",
        path="/produits/creme",
        referrer_host="www.google.com",
        visitor_hash=1234567890123,
        browser="Chrome",
        os="Windows",
        device="desktop",
    )
    events = spool.spool("events", ["ts"])
    record, baseline = paired(
        lambda: recorder(decision), lambda: events.append(event.to_tsv()), seconds
    )
    spool.release()
    return record, baseline


def lookups(seconds: float, rows: int, directory: Path) -> dict[str, float]:
    store = Store(f"chdb://{directory / 'clickhouse'}?database=bench")
    migrate(store)
    store.command(
        "INSERT INTO consent_receipts SELECT"
        f" concat('consent-', leftPad(toString(number % {IDS}), 12, '0')),"
        " now64(3) - toIntervalSecond(number),"
        " ['accept_all', 'reject_all', 'save'][number % 3 + 1],"
        " ['necessary', 'analytics'], ['marketing'], 1 + number % 4,"
        " concat('banner-', toString(number % 7)), 'fr', 'js', 'desktop'"
        f" FROM numbers({rows})"
    )
    receipts = ReceiptStore(store)
    counter = iter(range(10**9))

    def history() -> None:
        receipts.history(f"consent-{next(counter) % IDS:012d}")

    def off_key() -> None:
        # The same lookup with the sort key out of play: a scan of the id column.
        store.query_rows(
            "SELECT * FROM consent_receipts WHERE concat(consent_id, '') = {c:String} ORDER BY ts",
            {"c": f"consent-{next(counter) % IDS:012d}"},
        )

    figures: dict[str, float] = {}
    figures["history"], figures["off_key"] = paired(history, off_key, seconds, batch=1)
    erase_times = []
    for index in range(3):
        consent_id = f"consent-{index:012d}"
        start = time.perf_counter()
        receipts.erase_now(consent_id)
        erase_times.append(time.perf_counter() - start)
    figures["erase_ms"] = statistics.median(erase_times) * 1000
    rewrites = []
    for _ in range(3):
        start = time.perf_counter()
        store.command("OPTIMIZE TABLE consent_receipts FINAL", settings={"mutations_sync": 1})
        rewrites.append(time.perf_counter() - start)
    figures["rewrite_ms"] = statistics.median(rewrites) * 1000
    store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--rows", type=int, default=1_000_000, help="receipts in the table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        record, append = recording(args.seconds, directory)
        figures = lookups(args.seconds, args.rows, directory)
    print(
        f"record a decision: {record:,.0f}/s; append a page view: {append:,.0f}/s;"
        f" ratio {record / append:.2f}"
    )
    print(
        f"history of one consent id among {args.rows:,} receipts: {figures['history']:,.0f}/s;"
        f" same query without the sort key: {figures['off_key']:,.1f}/s;"
        f" ratio {figures['history'] / figures['off_key']:,.0f}"
    )
    print(
        f"erase one consent id now: {figures['erase_ms']:,.0f} ms;"
        f" rewrite the whole table (OPTIMIZE FINAL): {figures['rewrite_ms']:,.0f} ms;"
        f" ratio {figures['erase_ms'] / figures['rewrite_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
