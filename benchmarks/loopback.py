"""Loopback helpers shared by the benchmarks that serve an app and load it with wrk."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

__all__ = [
    "BIN",
    "SERVERS",
    "free_port",
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
