"""Events per second the flusher moves from spool segments into the embedded engine.

    .venv/bin/python benchmarks/bench_flusher.py [--events 1000000]

Spools page-view events (the full 20-column line), seals them, then times the
flusher inserting every segment (one ``raw_insert`` each, with its
deduplication token) into a migrated database, every materialized view of
the schema included (``--no-views``: the raw table alone).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beacon.events import EVENT_COLUMNS, PixelEvent
from beacon.flusher import Flusher
from beacon.migrations import migrate
from beacon.spool import SpoolDir
from beacon.store import Store


def main() -> None:
    """Spool the events, flush them, print the rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--no-views",
        action="store_true",
        help="drop the materialized views first: the raw events table alone",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"chdb://{Path(tmp) / 'ch'}")
        migrate(store)
        views = [
            name
            for (name,) in store.query_rows(
                "SELECT name FROM system.tables WHERE database = currentDatabase() "
                "AND engine = 'MaterializedView'"
            )
        ]
        if args.no_views:
            for name in views:
                store.command(f"DROP VIEW {name}")
        spool_dir = SpoolDir(Path(tmp) / "spool", segment_max_age=3600)
        spool = spool_dir.spool("events", EVENT_COLUMNS)
        start = datetime(2026, 11, 2, tzinfo=UTC)
        lines = [
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
            ).to_tsv()
            for n in range(10_000)
        ]
        for n in range(args.events):
            spool.append(lines[n % len(lines)])
        spool_dir.close()
        flusher = Flusher(store, [Path(tmp) / "spool"], own=spool_dir)
        began = time.perf_counter()
        assert flusher.drain_once()
        elapsed = time.perf_counter() - began
        ((stored,),) = store.query_rows("SELECT count() FROM events")
        assert stored == args.events
        print("| materialized views | events | segments | seconds | events/s |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        print(
            f"| {0 if args.no_views else len(views)} | {args.events:,} "
            f"| {flusher.stats.flushed_segments} | {elapsed:.2f} | {args.events / elapsed:,.0f} |"
        )


if __name__ == "__main__":
    main()
