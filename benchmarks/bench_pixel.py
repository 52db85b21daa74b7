"""Throughput of ``GET /p.gif`` against a bare ASGI app answering the same GIF.

Both apps are served, one after the other, by the same server (uvicorn with
httptools + uvloop, and granian when installed) on a loopback port and loaded
by ``wrk -t1 -c32`` (keep-alive) for several rounds, alternating, so that
both see the same machine load; the median of each is reported with the
ratio. The beacon runs twice: spooling only (the request path) and with its
flusher inserting into the embedded engine in the same process. Next to the
throughput, the server's CPU time per request (user + system, read from
``/proc`` for the server and its worker processes) is reported: on a shared
machine it moves less than the throughput does.

The beacon records cached page views through the compiled accelerator
``beacon._speedups`` when it is built; ``--compare-python`` adds a run of the
spooling beacon forced onto the pure-Python path (``BEACON_SPEEDUPS=0``), in
process and served, so that both appear side by side.

``--control`` serves the bare app a second time in every round, as one more
column: the ratio of two identical servers is how far apart the same code
lands on this machine in the same run, the noise the other ratios carry.
Under the table, the ratios of each round (the beacon's rate over the bare
one measured just before or after it) show their spread.

``--paired`` measures differently: in every round the bare app and one
other are served at the same time, both servers pinned to one processor,
and loaded at the same time (``wrk -c32`` each, keep-alive, on the other processors).
The two busy servers share the core, and whatever slows the machine slows
both in the same seconds, so the ratio of their rates is the ratio of their
costs per request with much less noise than runs one after the other (two
bare servers measure within a few percent of each other in every round).
Its table gives, per server and pair, the median ratio of the rounds and
their range.

    .venv/bin/python benchmarks/bench_pixel.py [--rounds 5] [--seconds 5] [--compare-python]
        [--control] [--paired]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopback import (
    BIN,
    free_port,
    paired_rounds,
    server_command,
    tree_cpu_seconds,
    wait_port,
)

ROOT = Path(__file__).resolve().parent.parent

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
PATH = "/p.gif?u=%2Fproduits%3Futm_source%3Dnews&r=https%3A%2F%2Fwww.google.com%2F"


def measure(
    kind: str, app: str, seconds: int, bench_dir: Path, extra_env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(requests per second, server CPU µs per request) of one wrk run on a fresh server."""
    port = free_port()
    env = {**os.environ, "BENCH_DIR": str(bench_dir), "PYTHONPATH": str(ROOT), **(extra_env or {})}
    server = subprocess.Popen(
        server_command(kind, f"benchmarks.pixel_apps:{app}", port), cwd=ROOT, env=env
    )
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}{PATH}"
        subprocess.run(
            ["wrk", "-t1", "-c32", "-d1s", "-H", f"User-Agent: {USER_AGENT}", url],
            check=True,
            capture_output=True,
        )
        cpu_before = tree_cpu_seconds(server.pid)
        result = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{seconds}s", "-H", f"User-Agent: {USER_AGENT}", url],
            check=True,
            capture_output=True,
            text=True,
        )
        cpu = tree_cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    found = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not found:
        raise RuntimeError(result.stdout)
    rate = float(found.group(1))
    return rate, cpu / (rate * seconds) * 1e6


def in_process(calls: int = 100_000) -> tuple[float, float]:
    """µs per request of the bare app and of the spooling beacon, called directly (no server)."""
    import asyncio

    os.environ.setdefault("BENCH_DIR", tempfile.mkdtemp(prefix="bench-pixel-"))
    sys.path.insert(0, str(ROOT))
    from benchmarks.pixel_apps import bare, pixel_spool

    path, _, query = PATH.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", USER_AGENT.encode())],
        "client": ("127.0.0.1", 50000),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: object) -> None:
        return None

    async def run(app: object, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            await app(scope, receive, send)  # type: ignore[operator]
        return (time.perf_counter() - start) / count * 1e6

    results: dict[str, list[float]] = {"bare": [], "pixel": []}
    asyncio.run(run(pixel_spool, 1000))
    for _ in range(5):
        results["bare"].append(asyncio.run(run(bare, calls)))
        results["pixel"].append(asyncio.run(run(pixel_spool, calls)))
    return statistics.median(results["bare"]), statistics.median(results["pixel"])


#: (column, app in pixel_apps, extra environment of the server)
RUNS = (
    ("bare", "bare", {}),
    ("pixel_spool", "pixel_spool", {}),
    ("pixel", "pixel", {}),
)
PYTHON_RUN = ("pixel_spool_python", "pixel_spool", {"BEACON_SPEEDUPS": "0"})
CONTROL_RUN = ("bare_again", "bare", {})


def _in_process_line() -> str:
    from beacon.pageviews import SPEEDUPS

    bare_us, pixel_us = in_process()
    path = "compiled accelerator" if SPEEDUPS else "pure Python"
    return (
        f"In process (no server, {path}): bare app {bare_us:.2f} µs per request, beacon /p.gif "
        f"{pixel_us:.2f} µs (adds {pixel_us - bare_us:.2f} µs: parse, anonymize, spool)."
    )


def main() -> None:
    """Run the rounds and print a Markdown table of medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--in-process", action="store_true", help="only the in-process costs")
    parser.add_argument(
        "--compare-python",
        action="store_true",
        help="also run the spooling beacon on its pure-Python path (BEACON_SPEEDUPS=0)",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="also serve the bare app a second time: the noise floor of the ratios",
    )
    parser.add_argument(
        "--paired",
        action="store_true",
        help="serve each app at the same time as the bare one, on one shared core",
    )
    args = parser.parse_args()
    print(_in_process_line())
    if args.compare_python:
        print(
            subprocess.run(
                [sys.executable, __file__, "--in-process"],
                env={**os.environ, "BEACON_SPEEDUPS": "0"},
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    print()
    if args.in_process:
        return
    runs = (*RUNS, PYTHON_RUN) if args.compare_python else RUNS
    if args.control:
        runs = (*runs, CONTROL_RUN)
    servers = [s for s in args.servers.split(",") if (BIN / s).exists() or shutil.which(s)]
    if args.paired:
        _print_paired(servers, runs, args.rounds, args.seconds)
        return
    header = (
        "| server | bare ASGI GIF (req/s; CPU µs/req) | beacon /p.gif, spool only | ratio "
        "| beacon /p.gif + embedded flush in-process | ratio |"
    )
    rule = "| --- | ---: | ---: | ---: | ---: | ---: |"
    if args.compare_python:
        header += " spool only, pure Python | ratio |"
        rule += " ---: | ---: |"
    if args.control:
        header += " bare again (control) | ratio |"
        rule += " ---: | ---: |"
    spreads: list[str] = []
    print(header)
    print(rule)
    loads = [f"start {_load()}"]
    for kind in servers:
        measured: dict[str, list[tuple[float, float]]] = {column: [] for column, _, _ in runs}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                for column, app, extra_env in runs:
                    measured[column].append(measure(kind, app, args.seconds, Path(tmp), extra_env))
        rate = {c: statistics.median(r for r, _ in measured[c]) for c in measured}
        cpu = {c: statistics.median(u for _, u in measured[c]) for c in measured}
        cells = [
            f"{rate[column]:,.0f}; {cpu[column]:.0f} µs | {rate[column] / rate['bare']:.0%}"
            for column, _, _ in runs[1:]
        ]
        print(
            f"| {kind} | {rate['bare']:,.0f}; {cpu['bare']:.0f} µs | {' | '.join(cells)} |",
            flush=True,
        )
        for column, _, _ in runs[1:]:
            ratios = sorted(
                r / b for (r, _), (b, _) in zip(measured[column], measured["bare"], strict=True)
            )
            spreads.append(
                f"{kind}, {column}: {' '.join(f'{x:.0%}' for x in ratios)}"
                f" (median {statistics.median(ratios):.0%})"
            )
        loads.append(f"after {kind} {_load()}")
    print("\nRatios of each round, sorted:\n" + "\n".join(spreads))
    print(f"\nLoad average (1, 5, 15 min): {'; '.join(loads)}")


def _print_paired(
    servers: list[str], runs: tuple[tuple[str, str, dict[str, str]], ...], rounds: int, seconds: int
) -> None:
    """The ``--paired`` table: each app served at the same time as the bare one."""
    print(
        "| server | app, at the same time as the bare one | bare (req/s; CPU µs/req)"
        " | the app | rate ratio (range) | CPU ratio (range) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    loads = [f"start {_load()}"]
    bare = runs[0]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in servers:
            for column, app, extra_env in runs[1:]:

                def command(port: int, app: str, kind: str = kind) -> list[str]:
                    return server_command(kind, f"benchmarks.pixel_apps:{app}", port)

                environment = {"BENCH_DIR": tmp, "PYTHONPATH": str(ROOT)}
                found = paired_rounds(
                    [
                        (lambda port: command(port, bare[1]), {**environment, **bare[2]}),
                        (lambda port, app=app: command(port, app), {**environment, **extra_env}),
                    ],
                    PATH,
                    rounds=rounds,
                    seconds=seconds,
                    cwd=ROOT,
                    headers=[f"User-Agent: {USER_AGENT}"],
                )
                rates = sorted(other[0] / base[0] for base, other in found)
                cpus = sorted(base[1] / other[1] for base, other in found)
                print(
                    f"| {kind} | {column} | {statistics.median(b[0] for b, _ in found):,.0f};"
                    f" {statistics.median(b[1] for b, _ in found):.0f} µs"
                    f" | {statistics.median(o[0] for _, o in found):,.0f};"
                    f" {statistics.median(o[1] for _, o in found):.0f} µs"
                    f" | {statistics.median(rates):.1%} ({rates[0]:.0%}-{rates[-1]:.0%})"
                    f" | {statistics.median(cpus):.1%} ({cpus[0]:.0%}-{cpus[-1]:.0%}) |",
                    flush=True,
                )
            loads.append(f"after {kind} {_load()}")
    print(f"\nLoad average (1, 5, 15 min): {'; '.join(loads)}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
