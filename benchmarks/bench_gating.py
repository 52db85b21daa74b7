"""Throughput cost of the consent layer (banner injection + gating) on a Starlette site.

The same Starlette app is served bare and behind ``ConsentMiddleware``, one
after the other, by the same server (uvicorn with httptools + uvloop) on a
loopback port and loaded by ``wrk -t1 -c32`` (keep-alive, no cookie: a first
visit, so the banner is injected) for several rounds, alternating, so that
both see the same machine load. The median of each is reported with the
ratio, and so is the server's CPU time per request (user + system time of
the server process over the requests it answered, from ``/proc``), which
moves much less than the rate when other jobs share the machine. Routes:

* ``/tagged``: 30 KB product page with Google Analytics, the Meta pixel, a
  YouTube embed and social links (gated, placeholder rendered);
* ``/tagged-unique``: the same with a different comment in every answer, so
  that gating cannot reuse a page it rewrote before;
* ``/first-party``: 30 KB product page without third-party tags;
* ``/api/products.json``: a JSON answer (passed through untouched).

    .venv/bin/python benchmarks/bench_gating.py [--rounds 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from loopback import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROUTES = ("/tagged", "/tagged-unique", "/first-party", "/api/products.json")


def _wrk(url: str, seconds: int) -> tuple[float, int]:
    """Requests per second and requests answered."""
    result = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", url],
        check=True,
        capture_output=True,
        text=True,
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    count = re.search(r"(\d+) requests in", result.stdout)
    if not rate or not count:
        raise RuntimeError(result.stdout)
    return float(rate.group(1)), int(count.group(1))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(app: str, seconds: int) -> dict[str, tuple[float, float]]:
    """Requests per second and server CPU µs per request of each route (one fresh server)."""
    port = free_port()
    command = [
        str(BIN / "uvicorn"),
        f"benchmarks.gating_apps:{app}",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_port(port)
        rates = {}
        for route in ROUTES:
            url = f"http://127.0.0.1:{port}{route}"
            _wrk(url, 1)
            before = _cpu_seconds(server.pid)
            rate, count = _wrk(url, seconds)
            cpu = (_cpu_seconds(server.pid) - before) / max(count, 1) * 1e6
            rates[route] = (rate, cpu)
        return rates
    finally:
        server.terminate()
        server.wait(timeout=30)


def gating_share(repeat: int = 200) -> list[tuple[str, float, float]]:
    """CPU microseconds of ``gate_html`` alone per page: first time, and remembered."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gating_apps import CONFIG, FIRST_PARTY, TAGGED

    from mypharm_consent import ConsentState
    from mypharm_consent.gating import gate_html

    state = ConsentState.undecided()
    rows = []
    for name, page in (("/tagged", TAGGED), ("/first-party", FIRST_PARTY)):
        start = time.process_time()
        for index in range(repeat):
            gate_html(f"{page}<!-- {index} -->", state, CONFIG)
        fresh = (time.process_time() - start) / repeat * 1e6
        start = time.process_time()
        for _ in range(repeat):
            gate_html(page, state, CONFIG)
        remembered = (time.process_time() - start) / repeat * 1e6
        rows.append((name, fresh, remembered))
    return rows


def main() -> None:
    """Run the rounds and print a Markdown table of medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {
        app: {route: [] for route in ROUTES} for app in ("bare", "consent")
    }
    for _ in range(args.rounds):
        for app in ("bare", "consent"):
            for route, measured in measure(app, args.seconds).items():
                runs[app][route].append(measured)
    print(
        "| route | bare Starlette (req/s) | with ConsentMiddleware (req/s) | ratio"
        " | server CPU µs/request, bare | with ConsentMiddleware | CPU ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for route in ROUTES:
        bare = statistics.median(rate for rate, _ in runs["bare"][route])
        consent = statistics.median(rate for rate, _ in runs["consent"][route])
        bare_cpu = statistics.median(cpu for _, cpu in runs["bare"][route])
        consent_cpu = statistics.median(cpu for _, cpu in runs["consent"][route])
        print(
            f"| `{route}` | {bare:,.0f} | {consent:,.0f} | {consent / bare:.0%}"
            f" | {bare_cpu:,.0f} | {consent_cpu:,.0f} | {bare_cpu / consent_cpu:.0%} |",
            flush=True,
        )
    print()
    print("| page | `gate_html`, new page (µs CPU) | `gate_html`, page seen before (µs CPU) |")
    print("| --- | ---: | ---: |")
    for name, fresh, remembered in gating_share():
        print(f"| `{name}` | {fresh:,.0f} | {remembered:,.0f} |")


if __name__ == "__main__":
    main()
