"""Cost of User-Agent classification: cache hits and misses.

    .venv/bin/python benchmarks/bench_useragent.py

A hit is a User-Agent already classified (the LRU cache); a miss parses a new
string with ua-parser (fastest backend available) and the crawler patterns.
"""

from __future__ import annotations

import time

from beacon.useragent import classify

AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{}.0.{}.{} Safari/537.36"
)


def per_call(calls: list[str]) -> float:
    """Microseconds per :func:`classify` call over ``calls``."""
    start = time.perf_counter()
    for agent in calls:
        classify(agent)
    return (time.perf_counter() - start) / len(calls) * 1e6


def main() -> None:
    """Print hit and miss costs (best of five rounds)."""
    warm = AGENT.format(120, 0, 0)
    classify(warm)
    hit = min(per_call([warm] * 200_000) for _ in range(5))
    misses = [AGENT.format(100 + n % 50, n, n * 7) for n in range(5 * 2000)]
    miss = min(per_call(misses[r * 2000 : (r + 1) * 2000]) for r in range(5))
    print("| case | µs per call |")
    print("| --- | ---: |")
    print(f"| cache hit | {hit:.2f} |")
    print(f"| cache miss (new User-Agent) | {miss:.1f} |")


if __name__ == "__main__":
    main()
