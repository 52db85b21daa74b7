"""Throughput cost of the consent layer (banner injection + gating) on a Starlette site.

The same Starlette app is served bare and behind ``ConsentMiddleware`` by two
servers of the same kind (uvicorn with httptools + uvloop, or ``--server
granian``) on loopback ports,
and loaded in turn by ``wrk -t1 -c32`` (keep-alive, no cookie: a first visit,
so the banner is injected). Every round starts a fresh pair of servers and
measures each route on both back to back, in alternating order, so that each
pair sees the same machine load; the medians of the per-round ratios are
reported. So is the server's CPU time per request
(user + system time of the server process over the requests it answered,
from ``/proc``), which moves much less than the rate when other jobs share
the machine. Routes:

* ``/tagged``: 30 KB product page with Google Analytics, the Meta pixel, a
  YouTube embed and social links (gated, placeholder rendered);
* ``/tagged-unique``: the same with a different comment in every answer, so
  that no answer is ever the same as one before (it is spliced into the
  last page gated in full there: see ``mypharm_consent.splice``);
* ``/tagged-personal``: the same as rendered for one visitor: a new form token
  in a ``<meta>`` of the head, the visitor's name in the header and a counter
  in the footer (three changes, spliced);
* ``/tagged-nonce``: the same with a new CSP nonce on every script (in tags
  gating reads: gated in full every time);
* ``/first-party``: 30 KB product page without third-party tags;
* ``/first-party-unique``: the same, different in every answer (as a page
  with a per-request form token is);
* ``/api/products.json``: a JSON answer (passed through untouched).

    .venv/bin/python benchmarks/bench_gating.py [--rounds 7] [--seconds 2]
        [--route /tagged ...] [--against bare|passthrough|sniffing|padded] [--server granian]
        [--in-process] [--paired [--returning]]

After the table come the ratios of each round, sorted, which show how much
they spread. ``--against bare`` serves the bare site twice: the ratios it prints are how
far two identical servers differ on the machine, the noise floor of the
others. ``--against passthrough`` puts the site behind a middleware that
only calls the next app: what adding any pure ASGI middleware costs.
``--against sniffing`` puts it behind one that wraps ``send`` and reads each
response's ``content-type``: the least a middleware that rewrites HTML pages
does to every response, HTML or not. ``--against padded`` serves the bare
site with ``/tagged`` and ``/first-party`` as long as the consent layer makes
them for a first visit (a comment of ``gating_apps.ADDED_BYTES``): what the
added bytes alone cost the server.

``--paired`` measures differently: in every round both servers run at the
same time, pinned to one processor, and each route is loaded on both at the
same time (``wrk -c32`` each, keep-alive, on the other processors). The busy servers
share the core and whatever slows the machine slows both in the same
seconds, so the ratio of their rates is the ratio of their costs per
request, with far less noise than runs one after the other.
``--returning`` (with ``--paired``) sends a genuine consent cookie with every
request (analytics granted, next to another cookie): a returning visitor,
whose state is read from the cookie rather than a first visit's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopback import (
    SERVERS,
    Sample,
    free_port,
    paired_rounds,
    server_command,
    tree_cpu_seconds,
    wait_port,
)

ROOT = Path(__file__).resolve().parent.parent
ROUTES = (
    "/tagged",
    "/tagged-unique",
    "/tagged-personal",
    "/tagged-nonce",
    "/first-party",
    "/first-party-unique",
    "/api/products.json",
)


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


def serve(app: str, kind: str = "uvicorn") -> tuple[subprocess.Popen[bytes], int]:
    """A fresh ``kind`` server serving ``benchmarks.gating_apps:{app}``, and its port."""
    port = free_port()
    command = server_command(kind, f"benchmarks.gating_apps:{app}", port)
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_port(port)
    except RuntimeError:
        server.terminate()
        server.wait(timeout=30)
        raise
    return server, port


def measure(server: subprocess.Popen[bytes], port: int, route: str, seconds: int) -> Sample:
    """Requests per second and server CPU µs per request of one route on one server."""
    url = f"http://127.0.0.1:{port}{route}"
    before = tree_cpu_seconds(server.pid)
    rate, count = _wrk(url, seconds)
    cpu = (tree_cpu_seconds(server.pid) - before) / max(count, 1) * 1e6
    return rate, cpu


def gating_share(repeat: int = 200, batches: int = 5) -> list[tuple[str, float, ...]]:
    """CPU microseconds per page, in-process, of gating and of the whole rewrite.

    On a new page (a different comment each time): ``gate_html`` on the
    decoded text (``remember=False``, as callers that keep pages themselves
    use it; decoding not counted); the same from UTF-8 bytes to UTF-8 bytes
    (decoded, gated, encoded: what the middleware did before ``gate_utf8``);
    ``gate_utf8`` on the bytes (what it calls now); the engine's whole
    rewrite of the bytes (gating, banner, headers), as it does it (the page
    spliced into the one gated before) and with every page gated in full;
    and ``gate_html`` on a page seen before. The
    best of ``batches`` batches of ``repeat`` pages each. The third page is
    ``/tagged`` with a ``>`` in a quoted attribute value near its top
    (``data-rule="stock > 0"``, as front-end frameworks write them), which
    takes gating's full read.
    """
    sys.path.insert(0, str(ROOT))
    from benchmarks.gating_apps import CONFIG, FIRST_PARTY, TAGGED

    from mypharm_consent import ConsentState
    from mypharm_consent.engine import ConsentEngine, _markup_byte_position
    from mypharm_consent.gating import gate_html, gate_utf8
    from mypharm_consent.splice import SpliceStore

    state = ConsentState.undecided()
    engine = ConsentEngine(CONFIG)
    in_full = ConsentEngine(CONFIG)
    # No page is ever kept to splice from (twice its size is over max_bytes).
    in_full.splices = SpliceStore(_markup_byte_position, max_bytes=0)
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    rows: list[tuple[str, float, ...]] = []
    full_read = TAGGED.replace("<main>", '<main data-rule="stock > 0">', 1)
    pages = (("/tagged", TAGGED), ("/first-party", FIRST_PARTY), ("/tagged, full read", full_read))
    counter = iter(range(10**9))

    def best(run: Callable[[Any], object], page: str, fresh: bool, *, encoded: bool) -> float:
        """The least CPU µs per page of ``page`` (a new one each time if ``fresh``).

        The pages are made (and encoded to UTF-8 if ``encoded``) before the clock starts.
        """
        found = float("inf")
        for _ in range(batches):
            texts = [f"{page}<!-- {next(counter)} -->" if fresh else page for _ in range(repeat)]
            inputs: list[Any] = [text.encode() for text in texts] if encoded else texts
            start = time.process_time()
            for value in inputs:
                run(value)
            found = min(found, (time.process_time() - start) / repeat * 1e6)
        return found

    for name, page in pages:
        target = name.partition(",")[0]

        def rewrite(body: bytes, target: str = target) -> object:
            return engine.rewrite_page(state, headers, body, target=target)

        def rewrite_in_full(body: bytes, target: str = target) -> object:
            return in_full.rewrite_page(state, headers, body, target=target)

        def as_text(body: bytes) -> bytes:
            text = gate_html(body.decode(), state, CONFIG, remember=False)
            return text.encode(errors="xmlcharrefreplace")

        rows.append(
            (
                name,
                best(
                    lambda text: gate_html(text, state, CONFIG, remember=False),
                    page,
                    True,
                    encoded=False,
                ),
                best(as_text, page, True, encoded=True),
                best(lambda body: gate_utf8(body, state, CONFIG), page, True, encoded=True),
                best(lambda text: gate_html(text, state, CONFIG), page, False, encoded=False),
                best(rewrite, page, True, encoded=True),
                best(rewrite_in_full, page, True, encoded=True),
            )
        )
    return rows


def _round(
    apps: tuple[str, str],
    routes: tuple[str, ...],
    order: tuple[int, int],
    seconds: int,
    kind: str = "uvicorn",
) -> dict[str, tuple[Sample, Sample]]:
    """One round on a fresh pair of servers: each route on both, back to back in ``order``.

    Fresh servers every round: two processes running the same code differ
    by several percent for their whole life (memory layout, hash seeds), so
    the same pair must not serve every round.
    """
    servers: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for app in apps:
            servers.append(serve(app, kind))
            for route in routes:
                _wrk(f"http://127.0.0.1:{servers[-1][1]}{route}", 1)
        found: dict[str, tuple[Sample, Sample]] = {}
        for route in routes:
            samples = {side: measure(*servers[side], route, seconds) for side in order}
            found[route] = (samples[0], samples[1])
        return found
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    """Run the rounds and print a Markdown table of medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument(
        "--against",
        choices=("consent", "bare", "passthrough", "sniffing", "padded"),
        default="consent",
        help="the second server: the site with the middleware, a second bare one"
        " (how far two identical servers differ on this machine), or the site behind"
        " a middleware that only calls the next app (what any middleware costs), or"
        " behind one that reads the type of every response (what any middleware"
        " rewriting pages costs), or a bare one whose pages are as long as the"
        " consent layer makes them (what the added bytes cost)",
    )
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--route", action="append", choices=ROUTES, help="default: all")
    parser.add_argument("--in-process", action="store_true", help="only the in-process table")
    parser.add_argument(
        "--paired",
        action="store_true",
        help="serve both at the same time on one shared core, and load both at once",
    )
    parser.add_argument(
        "--returning",
        action="store_true",
        help="with --paired: every request carries a genuine consent cookie (analytics"
        " granted) and another cookie, as a returning visitor's do",
    )
    args = parser.parse_args()
    if args.returning and not args.paired:
        parser.error("--returning needs --paired")
    if args.in_process:
        _print_gating_share()
        return
    routes = tuple(args.route or ROUTES)
    apps = ("bare", args.against)
    runs: list[dict[str, list[Sample]]] = [{route: [] for route in routes} for _ in apps]
    if args.paired:
        for route in routes:
            for first, second in paired_rounds(
                [
                    (
                        lambda port, app=app: server_command(
                            args.server, f"benchmarks.gating_apps:{app}", port
                        ),
                        {"PYTHONPATH": str(ROOT)},
                    )
                    for app in apps
                ],
                route,
                rounds=args.rounds,
                seconds=args.seconds,
                cwd=ROOT,
                headers=[_returning_cookie()] if args.returning else [],
            ):
                runs[0][route].append(first)
                runs[1][route].append(second)
    else:
        for index in range(args.rounds):
            order = (0, 1) if index % 2 == 0 else (1, 0)
            for route, samples in _round(apps, routes, order, args.seconds, args.server).items():
                for side in (0, 1):
                    runs[side][route].append(samples[side])
    second = {
        "consent": "with ConsentMiddleware",
        "bare": "second bare server",
        "passthrough": "with a pass-through middleware",
        "sniffing": "with a middleware reading the response type",
        "padded": "bare, pages longer by what the banner adds",
    }[args.against]
    how = "at the same time, on one shared core" if args.paired else "one after the other"
    who = "a returning visitor (consent cookie)" if args.returning else "a first visit (no cookie)"
    print(f"Server: {args.server}; the two served {how}; every request from {who}.")
    print()
    print(
        f"| route | bare Starlette (req/s) | {second} (req/s) | ratio"
        f" | server CPU µs/request, bare | {second} | CPU ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for route in routes:
        bare, other = runs[0][route], runs[1][route]
        pairs = list(zip(bare, other, strict=True))
        ratio = statistics.median(o[0] / b[0] for b, o in pairs)
        cpu_ratio = statistics.median(b[1] / o[1] for b, o in pairs)
        print(
            f"| `{route}` | {statistics.median(r for r, _ in bare):,.0f}"
            f" | {statistics.median(r for r, _ in other):,.0f} | {ratio:.0%}"
            f" | {statistics.median(c for _, c in bare):,.0f}"
            f" | {statistics.median(c for _, c in other):,.0f} | {cpu_ratio:.0%} |",
            flush=True,
        )
    print("\nRatios of each round, sorted (rate; CPU):")
    for route in routes:
        pairs = list(zip(runs[0][route], runs[1][route], strict=True))
        rates = " ".join(f"{x:.0%}" for x in sorted(o[0] / b[0] for b, o in pairs))
        cpus = " ".join(f"{x:.0%}" for x in sorted(b[1] / o[1] for b, o in pairs))
        print(f"`{route}`: {rates}; {cpus}")
    if args.against == "consent":
        print()
        _print_gating_share()


def _returning_cookie() -> str:
    """A ``Cookie`` header line with a consent cookie the benchmark's site accepts."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gating_apps import CONFIG

    from mypharm_consent.engine import ConsentEngine

    value = ConsentEngine(CONFIG).cookie.encode("b" * 22, frozenset({"analytics"}))
    return f"Cookie: _ga=GA1.2.3.4; mypharm_consent={value}"


def _print_gating_share() -> None:
    """The in-process table of :func:`gating_share`, in Markdown."""
    print(
        "| page | `gate_html`, new page (µs CPU) | decoded, `gate_html`, encoded"
        " | `gate_utf8`, new page | `gate_html`, page seen before | whole rewrite, new page"
        " | the same, gated in full |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, *figures in gating_share():
        print(f"| `{name}` | " + " | ".join(f"{value:,.0f}" for value in figures) + " |")


if __name__ == "__main__":
    main()
