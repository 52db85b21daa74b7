"""Loopback helpers shared by the benchmarks that serve an app and load it with wrk."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "BIN",
    "SERVERS",
    "Sample",
    "free_port",
    "paired_rounds",
    "server_command",
    "tree_cpu_seconds",
    "uvicorn_command",
    "wait_port",
]

#: The virtual environment's scripts (uvicorn, granian).
BIN = Path(sys.executable).parent


def uvicorn_command(target: str, port: int, *options: str) -> list[str]:
    """uvicorn serving ``target`` on ``port`` as every benchmark does: httptools, uvloop, quiet."""
    return [
        str(BIN / "uvicorn"),
        *options,
        target,
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


#: The servers the benchmarks can run an app on.
SERVERS = ("uvicorn", "granian")


def server_command(kind: str, target: str, port: int) -> list[str]:
    """``kind`` (one of :data:`SERVERS`) serving the ASGI app ``target`` on ``port``, quiet.

    uvicorn as :func:`uvicorn_command` runs it; granian with its ASGI
    interface, one worker, no websockets.
    """
    if kind == "uvicorn":
        return uvicorn_command(target, port)
    if kind != "granian":
        raise ValueError(f"unknown server {kind!r}: one of {', '.join(SERVERS)}")
    return [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-ws",
        target,
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until a server accepts connections on ``port``, or raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by process ``root`` and its descendants.

    Read from ``/proc`` (Linux). A server's CPU time per request moves much
    less than its rate when other jobs share the machine, and the
    descendants count too: granian and ``uvicorn --workers`` answer from
    child processes.
    """
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, used in times.items():
        walk = pid
        while walk > 1 and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            total += used
    return total


#: Requests per second, and server CPU µs per request.
Sample = tuple[float, float]


def _pinned(cpus: set[int]) -> dict[str, object]:
    """Popen arguments that run the child (and its children) on ``cpus`` only."""
    if not hasattr(os, "sched_setaffinity"):
        return {}
    return {"preexec_fn": lambda: os.sched_setaffinity(0, cpus)}


def paired_rounds(
    servers: Sequence[tuple[Callable[[int], list[str]], dict[str, str]]],
    path: str,
    *,
    rounds: int,
    seconds: int,
    cwd: Path,
    headers: Sequence[str] = (),
    connections: int = 32,
) -> list[tuple[Sample, Sample]]:
    """Serve two apps at once on one core, load both at once: a sample of each per round.

    ``servers`` is two pairs of the server's command for a port and its
    extra environment. Both servers run pinned
    to the same processor, the two ``wrk`` (``connections`` each) on the
    others, for ``seconds`` at the same time: the scheduler shares the core
    between two busy servers, and whatever slows the machine in those
    seconds (other tenants, frequency, interrupts) slows both alike, so the
    ratio of their rates is the ratio of their costs per request, far less
    noisy than servers measured one after the other. Fresh servers every
    round: two processes of the same code differ a little for their whole
    life.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpus = set(cpus[-1:])
    load_cpus = set(cpus[:-1]) or server_cpus
    options = [f"-H{header}" for header in headers]
    found: list[tuple[Sample, Sample]] = []
    for _ in range(rounds):
        started: list[tuple[subprocess.Popen[bytes], int]] = []
        try:
            for command, environment in servers:
                port = free_port()
                started.append(
                    (
                        subprocess.Popen(
                            command(port),
                            cwd=cwd,
                            env={**os.environ, **environment},
                            **_pinned(server_cpus),  # type: ignore[arg-type]
                        ),
                        port,
                    )
                )
            for _, port in started:
                wait_port(port)
            loads = [
                ["wrk", "-t1", f"-c{connections}", *options, f"http://127.0.0.1:{port}{path}"]
                for _, port in started
            ]
            for warm in [
                subprocess.Popen([*load, "-d1s"], stdout=subprocess.DEVNULL) for load in loads
            ]:
                warm.wait()
            before = [tree_cpu_seconds(server.pid) for server, _ in started]
            runs = [
                subprocess.Popen(
                    [*load, f"-d{seconds}s"],
                    stdout=subprocess.PIPE,
                    text=True,
                    **_pinned(load_cpus),  # type: ignore[arg-type]
                )
                for load in loads
            ]
            outputs = [run.communicate()[0] for run in runs]
            after = [tree_cpu_seconds(server.pid) for server, _ in started]
        finally:
            for server, _ in started:
                server.terminate()
                server.wait(timeout=30)
        samples: list[Sample] = []
        for output, used_before, used_after in zip(outputs, before, after, strict=True):
            rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
            count = re.search(r"(\d+) requests in", output)
            if not rate or not count:
                raise RuntimeError(output)
            samples.append(
                (
                    float(rate.group(1)),
                    (used_after - used_before) / max(int(count.group(1)), 1) * 1e6,
                )
            )
        found.append((samples[0], samples[1]))
    return found
