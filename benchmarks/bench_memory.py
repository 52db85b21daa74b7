"""Peak memory under load: the beacon and the consent middleware against their bare apps.

Each app is served by uvicorn (httptools, uvloop) in a fresh process and
loaded by ``wrk -t1 -c32`` (keep-alive) replaying varied requests from a Lua
script; the server's RSS, and its anonymous part (the memory it allocated,
without the pages of mapped files), are read from ``/proc/PID/status`` every
50 ms, at rest after start-up and under load. Rounds alternate between the apps so that
they see the same machine; medians are reported, with the ratio of each
app's peak to its bare app's peak in the same run.

- Beacon (``benchmarks/pixel_apps.py``): the bare ASGI GIF app against the
  beacon spooling only (``ingest="external"``, no ClickHouse in the process)
  and the beacon flushing into the embedded engine in the same process. The
  page views vary by page, referrer, campaign and User-Agent, one in ten with
  a page and one in twenty with a User-Agent never seen before (the caches
  must stay bounded).
- Consent middleware (``benchmarks/gating_apps.py``): the bare Starlette
  site against the same site behind ``ConsentMiddleware``, over 30 KB tagged
  and first-party pages, a page that differs in every answer, and JSON.

    .venv/bin/python benchmarks/bench_memory.py [--rounds 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from loopback import free_port, uvicorn_command, wait_port

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
_REFERRERS = ["", "https://www.google.com/", "https://www.facebook.com/", "https://t.co/x"]
_CAMPAIGNS = ["", "&utm_source=newsletter&utm_medium=email&utm_campaign=novembre"]


@dataclass(frozen=True)
class Pair:
    """An app and its baseline, both ``module:attribute`` of ``benchmarks``, and their load."""

    title: str
    baseline: str
    apps: tuple[str, ...]
    requests: tuple[tuple[str, str], ...]


def _pixel_requests(count: int = 5000) -> tuple[tuple[str, str], ...]:
    rng = random.Random(3)
    requests = []
    for _ in range(count):
        if rng.random() < 0.1:
            page = f"/conseils/archive-{rng.randrange(10**9)}"
        else:
            page = f"/conseils/article-{rng.randrange(100)}"
        if rng.random() < 0.05:
            agent = f"Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0.{rng.randrange(10**6)}.0"
        else:
            agent = rng.choice(_AGENTS)
        query = f"u={quote(page)}&r={quote(rng.choice(_REFERRERS))}{rng.choice(_CAMPAIGNS)}"
        requests.append((f"/p.gif?{query}", agent))
    return tuple(requests)


def _site_requests(count: int = 400) -> tuple[tuple[str, str], ...]:
    paths = ["/tagged"] * 4 + ["/first-party"] * 3 + ["/tagged-unique", "/api/products.json"] * 1
    rng = random.Random(4)
    return tuple((rng.choice(paths), rng.choice(_AGENTS)) for _ in range(count))


PAIRS = (
    Pair(
        "Beacon `/p.gif`",
        "pixel_apps:bare",
        ("pixel_apps:pixel_spool", "pixel_apps:pixel"),
        _pixel_requests(),
    ),
    Pair("Consent middleware", "gating_apps:bare", ("gating_apps:consent",), _site_requests()),
)
_LABELS = {
    "pixel_apps:bare": "bare ASGI GIF app",
    "pixel_apps:pixel_spool": "beacon, spool only",
    "pixel_apps:pixel": "beacon + embedded engine flushing in-process",
    "gating_apps:bare": "bare Starlette site",
    "gating_apps:consent": "same site + ConsentMiddleware",
}


def rss_bytes(pid: int) -> tuple[int, int]:
    """The resident set size of process ``pid`` and its anonymous part, from ``/proc``.

    The anonymous part (``RssAnon``) is the memory the process allocated
    itself; the rest is pages of mapped files (libraries, and the beacon's
    spool segment, whose pages become resident as events are written to it).
    """
    sizes: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            sizes[name] = int(value.split()[0]) * 1024
    if len(sizes) != 2:
        raise RuntimeError(f"no VmRSS or RssAnon for process {pid}")
    return sizes["VmRSS"], sizes["RssAnon"]


def _lua(requests: tuple[tuple[str, str], ...], path: Path) -> None:
    rows = ",\n".join(
        f'    wrk.format("GET", [==[{target}]==], {{["User-Agent"] = [==[{agent}]==]}})'
        for target, agent in requests
    )
    path.write_text(
        "local requests\nlocal index = 0\n"
        f"init = function(args)\n  requests = {{\n{rows}\n  }}\nend\n"
        "request = function()\n  index = index % #requests + 1\n  return requests[index]\nend\n"
    )


def measure(app: str, script: Path, seconds: int, work: Path) -> tuple[int, int, int]:
    """RSS at rest after start-up, peak RSS and peak anonymous RSS under load of ``app``.

    Served by a fresh server.
    """
    port = free_port()
    env = {**os.environ, "BENCH_DIR": str(work), "PYTHONPATH": str(ROOT)}
    command = uvicorn_command(f"benchmarks.{app}", port)
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    peak = peak_anonymous = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_anonymous
        while not done.wait(0.05):
            resident, anonymous = rss_bytes(server.pid)
            peak = max(peak, resident)
            peak_anonymous = max(peak_anonymous, anonymous)

    try:
        wait_port(port, timeout=120)
        done.wait(1.0)
        at_rest, anonymous_at_rest = rss_bytes(server.pid)
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            subprocess.run(
                [
                    "wrk",
                    "-t1",
                    "-c32",
                    f"-d{seconds}s",
                    "-s",
                    str(script),
                    f"http://127.0.0.1:{port}",
                ],
                check=True,
                capture_output=True,
            )
        finally:
            done.set()
            sampler.join()
    finally:
        server.terminate()
        server.wait(timeout=60)
    return at_rest, max(peak, at_rest), max(peak_anonymous, anonymous_at_rest)


def main() -> None:
    """Run the rounds and print a Markdown table of medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10, help="length of each load")
    args = parser.parse_args()
    print(
        "| app | RSS at rest (MiB) | peak RSS under load (MiB) | peak vs bare app"
        " | peak anonymous RSS (MiB) | anonymous vs bare app |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |"
    )
    for pair in PAIRS:
        apps = (pair.baseline, *pair.apps)
        rest: dict[str, list[int]] = {app: [] for app in apps}
        peaks: dict[str, list[int]] = {app: [] for app in apps}
        anonymous: dict[str, list[int]] = {app: [] for app in apps}
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            script = Path(tmp) / "load.lua"
            _lua(pair.requests, script)
            for _ in range(args.rounds):
                for app in apps:
                    at_rest, peak, peak_anonymous = measure(app, script, args.seconds, Path(tmp))
                    rest[app].append(at_rest)
                    peaks[app].append(peak)
                    anonymous[app].append(peak_anonymous)
        bare_peak = statistics.median(peaks[pair.baseline])
        bare_anonymous = statistics.median(anonymous[pair.baseline])
        for app in apps:
            peak = statistics.median(peaks[app])
            peak_anonymous = statistics.median(anonymous[app])
            print(
                f"| {pair.title}: {_LABELS[app]} | {statistics.median(rest[app]) / MIB:,.1f} "
                f"| {peak / MIB:,.1f} | {peak / bare_peak:.2f}x "
                f"| {peak_anonymous / MIB:,.1f} | {peak_anonymous / bare_anonymous:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
