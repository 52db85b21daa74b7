"""Write N seeded synthetic events straight into the raw ``events`` table.

The events go in as TabSeparated blocks through one raw insert each (the way
the spool flusher writes), so the materialized views fill the aggregate
tables exactly as in production. The same seed gives the same events.

    .venv/bin/python benchmarks/generate_events.py --url chdb:///tmp/bench --events 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from beacon.demo import synthetic_events
from beacon.events import EVENT_COLUMNS
from beacon.migrations import migrate
from beacon.store import Store, open_store

__all__ = ["generate", "main"]


def generate(
    store: Store,
    count: int,
    *,
    seed: int = 1,
    days: int = 120,
    campaigns: int = 40,
    end: datetime | None = None,
    site: str = "bench.example",
) -> float:
    """Insert ``count`` events into ``store`` (migrated first); return the seconds it took."""
    migrate(store)
    started = time.perf_counter()
    for block in synthetic_events(
        count,
        seed=seed,
        end=end or datetime(2026, 11, 1, tzinfo=UTC),
        days=days,
        site=site,
        campaigns=campaigns,
        block_size=200_000,
    ):
        store.raw_insert("events", EVENT_COLUMNS, block)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="store URL, e.g. chdb:///tmp/bench")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--campaigns", type=int, default=40)
    args = parser.parse_args(argv)
    store = open_store(args.url)
    seconds = generate(store, args.events, seed=args.seed, days=args.days, campaigns=args.campaigns)
    rate = args.events / seconds if seconds else 0
    sys.stdout.write(f"{args.events} events in {seconds:.1f} s ({rate:,.0f} events/s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
