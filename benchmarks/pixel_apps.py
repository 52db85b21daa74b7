"""The ASGI apps compared by ``bench_pixel.py``: a bare GIF app and the beacon.

Served by ``uvicorn benchmarks.pixel_apps:bare`` / ``:pixel`` / ``:pixel_spool``;
the beacon writes its spool and embedded database under ``BENCH_DIR``.
``pixel`` flushes into the embedded engine inside the server process (the
engine's inserts share the machine's cores with the server); ``pixel_spool``
only spools (``ingest="external"``, as web workers do when another process
owns the database or a ClickHouse server does the inserting work).
``BEACON_SPEEDUPS=0`` in the server's environment keeps the beacons on their
pure-Python path (no compiled accelerator).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from beacon import Beacon
from beacon.app import TRANSPARENT_GIF

__all__ = ["bare", "pixel", "pixel_spool"]

_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", b"43"),
    (b"cache-control", b"no-store, max-age=0"),
]


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: answers the same 43-byte GIF to every request, records nothing."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": list(_HEADERS)})
    await send({"type": "http.response.body", "body": TRANSPARENT_GIF})


_DIR = Path(os.environ.get("BENCH_DIR", ".data/bench"))
_URL = f"chdb://{_DIR.resolve() / 'clickhouse'}"
pixel = Beacon(_URL, site="bench.example", spool_dir=_DIR / "spool").app
pixel_spool = Beacon(_URL, site="bench.example", spool_dir=_DIR / "spool", ingest="external").app
