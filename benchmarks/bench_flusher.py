"""Events per second the flusher moves from spool segments into the embedded engine.

    .venv/bin/python benchmarks/bench_flusher.py [--events 1000000] [--no-views]

Spools page-view events (the full 20-column row, in the spool's format:
``RowBinary``, or ``--format TabSeparated`` for the text format other tables'
spools use), seals them, then times the flusher inserting every segment (one
``raw_insert`` each, with its deduplication token) into a migrated database,
every materialized view of the schema included (``--no-views``: the raw
table alone). Several rounds, each into a fresh database; the median is
reported.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beacon.events import EVENT_COLUMNS, PixelEvent
from beacon.flusher import Flusher
from beacon.migrations import migrate
from beacon.spool import ROW_BINARY, TAB_SEPARATED, SpoolDir
from beacon.store import Store


def _rows(fmt: str) -> list[bytes]:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    events = [
        PixelEvent(
            ts=start + timedelta(milliseconds=n),
            site="bench.example",
            kind="pageview",
            path=f"/products/{n % 500}",
            referrer_host=("www.google.com", "", "duckduckgo.com")[n % 3],
            utm_source=("", "newsletter")[n % 2],
            visitor_hash=n * 2654435761 % 2**64,
            browser="Chrome",
            os="Windows",
            device="desktop",
        )
        for n in range(10_000)
    ]
    return [e.to_row_binary() if fmt == ROW_BINARY else e.to_tsv() for e in events]


def one_round(
    root: Path, database: str, events: int, fmt: str, no_views: bool
) -> tuple[int, float]:
    """(materialized views, events/s) of one flush of ``events`` into a fresh database."""
    store = Store(f"chdb://{root / 'ch'}?database={database}")
    migrate(store)
    views = [
        name
        for (name,) in store.query_rows(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine = 'MaterializedView'"
        )
    ]
    if no_views:
        for name in views:
            store.command(f"DROP VIEW {name}")
    spool_root = root / f"spool-{database}"
    spool_dir = SpoolDir(spool_root, segment_max_age=3600)
    spool = spool_dir.spool("events", EVENT_COLUMNS, fmt)
    rows = _rows(fmt)
    for n in range(events):
        spool.append(rows[n % len(rows)])
    spool_dir.close()
    flusher = Flusher(store, [spool_root], own=spool_dir)
    began = time.perf_counter()
    assert flusher.drain_once()
    elapsed = time.perf_counter() - began
    ((stored,),) = store.query_rows("SELECT count() FROM events")
    assert stored == events, (stored, events)
    spool_dir.release()
    return (0 if no_views else len(views)), events / elapsed


def main() -> None:
    """Spool the events, flush them, print the median rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", choices=(ROW_BINARY, TAB_SEPARATED), default=ROW_BINARY)
    parser.add_argument(
        "--no-views",
        action="store_true",
        help="drop the materialized views first: the raw events table alone",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rates = []
        views = 0
        for n in range(args.rounds):
            views, rate = one_round(Path(tmp), f"r{n}", args.events, args.format, args.no_views)
            rates.append(rate)
    print("| spool format | materialized views | events | rounds | median events/s | range |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {args.format} | {views} | {args.events:,} | {args.rounds} "
        f"| {statistics.median(rates):,.0f} | {min(rates):,.0f}–{max(rates):,.0f} |"
    )


if __name__ == "__main__":
    main()
