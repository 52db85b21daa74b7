"""A full spool: the newest events are dropped and counted, the pixel keeps answering.

Two ways to run out of room: the spool's own cap (``spool_max_bytes``, with
ClickHouse away so that the older events are still on the spool's disk), and
the file system itself under a beacon served in its own process, either a
real ``ENOSPC`` on a 40 MiB tmpfs (mounting one needs root: any other user
runs that case as root of a user namespace of its own) or ``EFBIG``
under a file-size limit set on the server process (``RLIMIT_FSIZE``, any
user). Once room is back, new events flow again and everything that was
accepted is stored once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon import Beacon
from beacon.events import PixelEvent
from beacon.spool import OPEN_SUFFIX

from .conftest import SITE, ServedBeacon, pixel, spooled_files, stored_paths, wait_until

pytestmark = pytest.mark.fault

MIB = 1024 * 1024


def _stored(tracker: Beacon) -> dict[str, int]:
    return dict(tracker.store.query_rows("SELECT path, count() FROM events GROUP BY path"))


def _event(path: str) -> PixelEvent:
    return PixelEvent(ts=datetime.now(UTC), site=SITE, kind="pageview", path=path, visitor_hash=7)


def test_the_spool_cap_drops_the_newest_and_keeps_the_older(
    make_beacon: Callable[..., Beacon], live_server: Callable[[Any], Any]
) -> None:
    tracker = make_beacon(spool_max_bytes=16 * MIB, flush_interval=0.5)
    server = live_server(tracker.app)
    tracker.store.command("RENAME TABLE events TO events_away")
    kept: list[str] = []
    # Long paths fill the 16 MiB cap with fewer events; short ones fill the last bytes,
    # so that a page view (with its browser and OS) no longer fits.
    while tracker.record(_event(path := f"/kept-{len(kept)}/{'x' * 1000}")):
        kept.append(path)
    while True:
        while tracker.record(_event(path := f"/k{len(kept)}")):
            kept.append(path)
        # The background recount of the disk use, racing with the appends above, may
        # have counted a few of them out; once it ran with no append in flight, the
        # count is exact.
        time.sleep(0.5)
        if not tracker.record(_event(path := f"/k{len(kept)}")):
            break
        kept.append(path)
    dropped = tracker.counters()["spool_dropped"]
    over = [f"/over-{n}" for n in range(50)]
    with httpx.Client(base_url=server.url, timeout=20) as http:
        assert all(pixel(http, path) for path in over)
        full = http.get("/health").json()
        tracker.store.command("RENAME TABLE events_away TO events")
        assert tracker.flusher is not None
        tracker.flusher.wake()
        wait_until(
            lambda: tracker.counters()["spool_bytes_used"] < 8 * MIB,
            timeout=60,
            what="the spool to drain",
        )
        after = [f"/after-{n}" for n in range(50)]
        assert all(pixel(http, path) for path in after)
        recovered = http.get("/health").json()
    server.stop()

    assert len(kept) > 5_000
    assert full["spool_accepted"] == len(kept)
    assert full["spool_dropped"] == dropped + len(over)
    assert full["record_failures"] == len(over)
    assert recovered["spool_dropped"] == full["spool_dropped"]
    assert recovered["spool_accepted"] == len(kept) + len(after)
    assert _stored(tracker) == dict.fromkeys(kept + after, 1)


class FullDisk:
    """The spool's file system, filled and freed on demand for the server process ``pid``."""

    def __init__(
        self, spool_dir: Path, fill: Callable[[int], None], free: Callable[[int], None]
    ) -> None:
        self.spool_dir = spool_dir
        self.fill = fill
        self.free = free


def _tmpfs(tmp_path: Path) -> Iterator[FullDisk]:
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"root cannot mount a tmpfs: {mounted.stderr.strip()}"
    ballast: list[Path] = []

    def fill(pid: int) -> None:
        # Topped up on every call: sealing a segment gives its unused preallocation back.
        stat = os.statvfs(mount)
        free = stat.f_bavail * stat.f_frsize
        if free < 64 * 1024:
            return
        path = mount / f"ballast-{len(ballast)}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        ballast.append(path)
        try:
            os.posix_fallocate(fd, 0, free)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)

    def free(pid: int) -> None:
        for path in ballast:
            path.unlink(missing_ok=True)

    try:
        yield FullDisk(mount / "spool", fill, free)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _file_size_limit(tmp_path: Path) -> Iterator[FullDisk]:
    unlimited = resource.getrlimit(resource.RLIMIT_FSIZE)

    def fill(pid: int) -> None:
        # Smaller than one 16 MiB segment, larger than anything else the server writes.
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (8 * MIB, unlimited[1]))

    def free(pid: int) -> None:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, unlimited)

    yield FullDisk(tmp_path / "spool", fill, free)


@pytest.fixture(params=["tmpfs-enospc", "file-size-limit-efbig"])
def full_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FullDisk | None]:
    """A spool directory whose file system runs out of room when asked.

    ``None`` for the tmpfs when not root: mounting one needs root, and the
    test is then run again as root of a user namespace of its own.
    """
    if request.param == "tmpfs-enospc" and os.geteuid() != 0:
        yield None
        return
    make = _tmpfs if request.param == "tmpfs-enospc" else _file_size_limit
    with contextlib.contextmanager(make)(tmp_path) as disk:
        yield disk


def _again_as_root_of_a_user_namespace(node_id: str) -> None:
    """Run the test ``node_id`` again in a user and mount namespace where this user is root.

    There it may mount a tmpfs of its own (Linux, with unprivileged user
    namespaces, as Debian has by default).
    """
    unshare = shutil.which("unshare")
    namespace = [unshare, "--user", "--map-root-user", "--mount"] if unshare else []
    if not namespace or subprocess.run([*namespace, "true"], check=False).returncode != 0:
        # No file system of its own, so no real ENOSPC: nothing else makes one. CI runs
        # as root, where this case never comes here; it may not skip there.
        assert not os.environ.get("CI"), "CI must be able to mount a tmpfs (root or unshare)"
        pytest.skip("a tmpfs needs root, or unprivileged user namespaces (unshare), to mount")
    run = subprocess.run(
        [*namespace, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node_id],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout, run.stdout


def test_a_full_disk_drops_the_newest_and_keeps_answering(
    full_disk: FullDisk | None,
    serve_beacon: Callable[..., ServedBeacon],
    unused_port: int,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if full_disk is None:
        _again_as_root_of_a_user_namespace(request.node.nodeid)
        return
    chdb = tmp_path / "ch"
    server = serve_beacon(
        unused_port,
        clickhouse_url=f"chdb://{chdb}",
        spool_dir=str(full_disk.spool_dir),
        flush_interval=0.3,
    )
    server.wait_ready()
    pid = server.process.pid
    during: list[str] = []
    with httpx.Client(base_url=server.url, timeout=20) as http:
        before = [f"/before-{n}" for n in range(100)]
        assert all(pixel(http, path) for path in before)

        def view_while_full() -> bool:
            full_disk.fill(pid)
            during.append(f"/during-{len(during)}")
            assert pixel(http, during[-1])
            return bool(server.health()["spool_write_errors"])

        try:
            wait_until(view_while_full, what="the spool to hit the full disk")
            # Segments rotated before the error are sealed (their unused room given back)
            # and that room filled again: from now on, no append can find room.
            wait_until(lambda: not list(full_disk.spool_dir.rglob(f"*{OPEN_SUFFIX}")))
            full_disk.fill(pid)
            dropped = server.health()["spool_dropped"]
            for _ in range(50):
                view_while_full()
            full = server.health()
        finally:
            full_disk.free(pid)
        after = [f"/after-{n}" for n in range(50)]
        assert all(pixel(http, path) for path in after)
        recovered = server.health()
    server.stop()

    assert full["spool_dropped"] == dropped + 50
    assert full["spool_write_errors"] >= 51
    assert full["record_failures"] == full["spool_dropped"]
    assert recovered["spool_dropped"] == full["spool_dropped"]
    stored = stored_paths(chdb)
    kept_during = [path for path in during if path in stored]
    assert not set(during[-50:]) & set(stored)
    assert len(kept_during) == len(during) - full["spool_dropped"]
    assert stored == dict.fromkeys(before + kept_during + after, 1)
    assert spooled_files(full_disk.spool_dir) == []
