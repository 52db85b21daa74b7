"""Latency of the statistics on millions of events, written to docs/benchmarks.md.

Generates N seeded events (default 10 million) into a fresh embedded
database, then measures the median latency of the two questions the
dashboard asks most: one campaign's summary and a 90-day site overview
(totals, daily points and the top 10 of every breakdown, about 14 queries).
As a baseline measured in the same run, the same 90-day totals are also
computed by scanning the raw ``events`` table, which is what the aggregate
tables spare.

    .venv/bin/python benchmarks/bench_stats.py --events 10000000 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from generate_events import generate

from beacon.stats import DateRange, StatsQueries
from beacon.store import Store, open_store

__all__ = ["main", "median_ms"]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## Statistics"
END = date(2026, 10, 31)


def median_ms(action: Callable[[], object], runs: int) -> float:
    """Median wall time of ``action`` in milliseconds, after one warm-up call."""
    action()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _raw_totals(store: Store, days: DateRange) -> object:
    return store.query_rows(
        "SELECT countIf(kind = 'pageview' AND NOT is_bot), "
        "uniqIf(visitor_hash, kind = 'pageview' AND NOT is_bot), "
        "countIf(kind = 'pageview' AND is_bot), countIf(kind = 'ad_click' AND NOT is_bot) "
        "FROM events WHERE toDate(ts) BETWEEN {start:Date} AND {end:Date}",
        {"start": days.start, "end": days.end},
    )


def _write_section(text: str) -> None:
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    start = current.find(SECTION + "\n")
    if start == -1:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        following = current.find("\n## ", start + len(SECTION))
        tail = current[following + 1 :] if following != -1 else ""
        updated = current[:start] + text + ("\n" + tail if tail else "")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(updated, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    # The engine stays bound to the directory and may still be writing in it at the end.
    with tempfile.TemporaryDirectory(
        prefix="bench-stats-", ignore_cleanup_errors=True
    ) as directory:
        store = open_store(f"chdb://{directory}?database=bench")
        seconds = generate(store, args.events, days=120, campaigns=40)
        store.command("OPTIMIZE TABLE campaign_hourly FINAL")
        queries = StatsQueries(store)
        campaign = queries.campaigns()[len(queries.campaigns()) // 2].campaign
        days = DateRange(END - timedelta(days=89), END)
        campaign_ms = median_ms(lambda: queries.campaign_summary(campaign), args.runs)
        detail_ms = median_ms(lambda: queries.campaign_detail(campaign), args.runs)
        overview_ms = median_ms(lambda: queries.site_overview(days), args.runs)
        totals_ms = median_ms(lambda: queries.site_totals(days), args.runs)
        raw_ms = median_ms(lambda: _raw_totals(store, days), max(args.runs // 3, 3))
        load = os.getloadavg()[0]
        rows = store.query_rows(
            "SELECT table, sum(rows) FROM system.parts "
            "WHERE active AND database = currentDatabase() "
            "AND table IN ('events', 'campaign_hourly', 'pages_daily', 'site_daily') "
            "GROUP BY table ORDER BY table"
        )
    lines = [
        SECTION,
        "",
        f"Measured on {platform.machine()} with {os.cpu_count()} cores shared with other work, "
        f"embedded engine (chDB), {args.events:,} generated events over 120 days "
        f"(40 campaigns), median of {args.runs} runs after a warm-up (the first read of a "
        f"range also copies its finished days into the site rollup). Load average during the "
        f"measurement: {load:.1f}.",
        "",
        "```",
        f".venv/bin/python benchmarks/bench_stats.py --events {args.events} --write",
        "```",
        "",
        "| question | median |",
        "| --- | ---: |",
        f"| campaign summary (one campaign) | {campaign_ms:.1f} ms |",
        f"| campaign page (summary, timeline, links, 3 breakdowns) | {detail_ms:.1f} ms |",
        f"| 90-day site overview (totals, days, 10 breakdowns) | {overview_ms:.1f} ms |",
        f"| 90-day site totals from the aggregates | {totals_ms:.1f} ms |",
        f"| baseline: the same totals scanning raw events | {raw_ms:.1f} ms |",
        "",
        f"The aggregates answer the totals {raw_ms / totals_ms:.0f}x faster than the raw scan "
        f"in the same run. Generating and inserting the events (materialized views included) "
        f"took {seconds:.0f} s ({args.events / seconds:,.0f} events/s). Rows after insertion: "
        + ", ".join(f"{table} {int(count):,}" for table, count in rows)
        + ".",
        "",
    ]
    text = "\n".join(lines)
    sys.stdout.write(text)
    if args.write:
        _write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
