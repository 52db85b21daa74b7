"""The on-disk spool: append, seal, torn rows, restarts, overflow policy, orphan claiming."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beacon.events import EVENT_COLUMNS, PixelEvent, read_row_binary
from beacon.exceptions import ConfigurationError
from beacon.spool import (
    BOOT_ID,
    OPEN_SUFFIX,
    ROW_BINARY,
    SEALED_SUFFIX,
    SegmentData,
    SpoolDir,
    claim_orphans,
    owner_dirs,
    sealed_segments,
)

COLUMNS = ("a", "b")
#: The checkout's own data directory (git-ignored), on the disk the code is on.
_DATA = Path(__file__).resolve().parents[2] / ".data" / "tests"


def test_lines_are_on_disk_when_append_returns(tmp_path: Path) -> None:
    spool_dir = SpoolDir(tmp_path)
    spool = spool_dir.spool("things", COLUMNS)
    assert spool.append(b"1\tone\n")
    (open_file,) = spool.directory.glob(f"*{OPEN_SUFFIX}")
    assert open_file.read_bytes().rstrip(b"\0") == b"a\tb\n1\tone\n"
    spool_dir.close()
    (segment,) = sealed_segments(spool_dir.path)
    assert segment.table == "things"
    assert segment.read() == SegmentData(["a", "b"], b"1\tone\n", 0)
    assert segment.dedup_token == f"things/{segment.segment_id}"


def test_segments_rotate_by_size_and_age(tmp_path: Path) -> None:
    spool_dir = SpoolDir(tmp_path, segment_max_bytes=65536, segment_max_age=3600)
    spool = spool_dir.spool("things", COLUMNS)
    for _ in range(1500):
        spool.append(b"1\t" + b"x" * 98 + b"\n")
    spool_dir.maintain()
    assert len(sealed_segments(spool_dir.path)) == 2
    spool_dir.segment_max_age = 0.0
    spool_dir.maintain()
    assert len(sealed_segments(spool_dir.path)) == 3
    lines = sum(s.read().rows for s in sealed_segments(spool_dir.path))
    assert lines == 1500
    spool_dir.release()


def test_overflow_drops_the_newest_and_counts(tmp_path: Path) -> None:
    spool_dir = SpoolDir(tmp_path, segment_max_bytes=65536, max_bytes=131072)
    spool = spool_dir.spool("things", COLUMNS)
    line = b"1\t" + b"x" * 97 + b"\n"
    results = [spool.append(line) for _ in range(2000)]
    accepted = results.count(True)
    assert 0 < accepted < 2000
    assert results == [True] * accepted + [False] * (2000 - accepted)
    assert spool_dir.stats.dropped == 2000 - accepted
    assert not spool.append(b"x" * 20000 + b"\n")
    assert spool_dir.stats.accepted == accepted
    spool_dir.close()
    stored = sum(s.read().rows for s in sealed_segments(spool_dir.path))
    assert stored == accepted


def test_torn_last_line_is_left_out(tmp_path: Path) -> None:
    segment_file = tmp_path / "w-1-aa" / "things" / f"20260101T000000.000000-1-x{SEALED_SUFFIX}"
    segment_file.parent.mkdir(parents=True)
    segment_file.write_bytes(b"a\tb\n1\tone\n2\ttw" + b"\0" * 100)
    (segment,) = sealed_segments(tmp_path / "w-1-aa")
    assert segment.read() == SegmentData(["a", "b"], b"1\tone\n", 4)


def test_configuration_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        SpoolDir(tmp_path, fsync_interval=0)
    with pytest.raises(ConfigurationError):
        SpoolDir(tmp_path, segment_max_bytes=4096)
    spool_dir = SpoolDir(tmp_path)
    spool_dir.spool("things", COLUMNS)
    with pytest.raises(ConfigurationError):
        spool_dir.spool("things", ("other",))
    spool_dir.release()


def test_live_directories_are_not_claimed_dead_ones_are(tmp_path: Path) -> None:
    live = SpoolDir(tmp_path)
    live.spool("things", COLUMNS).append(b"1\tlive\n")
    dead = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import os
                from beacon.spool import SpoolDir
                spool = SpoolDir({str(tmp_path)!r}).spool("things", ("a", "b"))
                spool.append(b"2\\tdead\\n")
                os._exit(0)
            """),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dead.returncode == 0, dead.stderr
    assert len(owner_dirs(tmp_path)) == 2
    with claim_orphans(tmp_path, exclude=live.path) as orphans:
        assert len(orphans) == 1
        (segment,) = sealed_segments(orphans[0])
        assert segment.read().data == b"2\tdead\n"
        segment.path.unlink()
    assert owner_dirs(tmp_path) == [live.path]
    with claim_orphans(tmp_path) as orphans:
        assert orphans == []
    live.release()
    (kept,) = sealed_segments(live.path)
    assert kept.read().data == b"1\tlive\n"


def _events(count: int) -> list[PixelEvent]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        PixelEvent(
            ts=start + timedelta(milliseconds=n),
            site="mypharm.fr",
            kind="pageview",
            path=f"/p/{n}",
            visitor_hash=n * 7919,
            device="mobile",
        )
        for n in range(count)
    ]


def _binary_spool(tmp_path: Path) -> tuple[SpoolDir, list[PixelEvent]]:
    spool_dir = SpoolDir(tmp_path, segment_max_age=3600)
    spool = spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY)
    events = _events(50)
    for event in events:
        assert spool.append(event.to_row_binary())
    return spool_dir, events


def test_row_binary_segments_read_back_every_row(tmp_path: Path) -> None:
    spool_dir, events = _binary_spool(tmp_path)
    spool_dir.close()
    (segment,) = sealed_segments(spool_dir.path)
    contents = segment.read()
    assert (contents.columns, contents.fmt, contents.rows) == (list(EVENT_COLUMNS), ROW_BINARY, 50)
    assert contents.dropped_bytes == 0
    assert list(read_row_binary(contents.data)) == events


def test_row_binary_row_torn_by_a_kill_is_left_out(tmp_path: Path) -> None:
    spool_dir, events = _binary_spool(tmp_path)
    spool = spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY)
    (open_file,) = spool.directory.glob(f"*{OPEN_SUFFIX}")
    segment = spool._open
    assert segment is not None
    # A process killed inside a copy: the row's bytes are half there, its end not recorded.
    half = events[0].to_row_binary()[:20]
    segment.mapping[segment.size : segment.size + len(half)] = half
    segment.mapping.flush()
    copy = tmp_path / "w-9-dead" / "events" / open_file.with_suffix(SEALED_SUFFIX).name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(open_file.read_bytes())
    (dead,) = sealed_segments(copy.parent.parent)
    contents = dead.read()
    assert contents.rows == 50
    assert list(read_row_binary(contents.data)) == events
    spool_dir.release()


def test_after_a_restart_only_rows_flushed_to_disk_count(tmp_path: Path) -> None:
    spool_dir, events = _binary_spool(tmp_path)
    spool_dir.maintain()
    spool_dir.fsync_interval = 0.001
    spool_dir._last_fsync = 0.0
    spool_dir.maintain()
    spool = spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY)
    for event in _events(5):
        spool.append(event.to_row_binary())
    (open_file,) = spool.directory.glob(f"*{OPEN_SUFFIX}")
    raw = open_file.read_bytes()
    copy = tmp_path / "w-9-boot" / "events" / open_file.with_suffix(SEALED_SUFFIX).name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(raw.replace((BOOT_ID or "-").encode(), b"0" * len(BOOT_ID or "-"), 1))
    (rebooted,) = sealed_segments(copy.parent.parent)
    contents = rebooted.read()
    assert contents.rows == 50
    assert list(read_row_binary(contents.data)) == events
    assert contents.dropped_bytes == sum(len(e.to_row_binary()) for e in _events(5))
    copy.write_bytes(raw)
    assert rebooted.read().rows == 55
    spool_dir.release()


def test_a_spool_keeps_one_format(tmp_path: Path) -> None:
    spool_dir = SpoolDir(tmp_path)
    spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY)
    with pytest.raises(ConfigurationError):
        spool_dir.spool("events", EVENT_COLUMNS)
    with pytest.raises(ConfigurationError):
        spool_dir.spool("other", COLUMNS, "JSONEachRow")
    spool_dir.release()


def _rows_after_a_restart(open_file: Path, tmp_path: Path) -> int:
    """The rows a reader trusts in ``open_file`` once the machine has restarted (flushed ones)."""
    copy = tmp_path / f"w-9-boot{secrets.token_hex(2)}" / "events" / "s.seg"
    copy.parent.mkdir(parents=True)
    raw = open_file.read_bytes()
    copy.write_bytes(raw.replace((BOOT_ID or "-").encode(), b"0" * len(BOOT_ID or "-"), 1))
    (rebooted,) = sealed_segments(copy.parent.parent)
    return rebooted.read().rows


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="an fdatasync on Linux only")
def test_the_periodic_flush_is_an_fdatasync_of_the_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Linux the flush syncs the segment's file (a call that releases the GIL), and only a
    flush that returned moves the segment's durable end; sealing relies on its fsync."""
    spool_dir, events = _binary_spool(tmp_path)
    spool = spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY)
    segment = spool._open
    assert segment is not None
    (open_file,) = spool.directory.glob(f"*{OPEN_SUFFIX}")
    calls: list[tuple[str, int]] = []
    sync, datasync = os.fsync, os.fdatasync

    def failing(fd: int) -> None:
        calls.append(("fdatasync", fd))
        raise OSError(errno.EIO, "disk gone")

    monkeypatch.setattr(os, "fdatasync", failing)
    spool.maintain(fsync=True, max_age=3600.0)
    assert calls == [("fdatasync", segment.fd)]
    assert _rows_after_a_restart(open_file, tmp_path) == 0
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append(("fdatasync", fd)) or datasync(fd))
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", fd)) or sync(fd))
    spool.maintain(fsync=True, max_age=3600.0)
    assert len(calls) == 1  # nothing appended since: nothing to flush
    assert spool.append(_events(1)[0].to_row_binary())
    spool.maintain(fsync=True, max_age=3600.0)
    assert calls[1:] == [("fdatasync", segment.fd)]
    assert _rows_after_a_restart(open_file, tmp_path) == len(events) + 1
    fd = segment.fd
    spool.maintain(fsync=False, max_age=0.0)
    # The seal: the file's fsync (then its directory's), no separate flush of the pages.
    assert calls[2] == ("fsync", fd)
    assert [name for name, _ in calls[2:]] == ["fsync"] * len(calls[2:])
    (sealed,) = sealed_segments(spool_dir.path)
    assert sealed.read().rows == len(events) + 1
    spool_dir.release()


def _pauses_while(call: Callable[[], object]) -> tuple[float, float]:
    """Run ``call`` in a thread: (how long it took, the longest pause of this thread meanwhile)."""
    done = threading.Event()
    took: list[float] = []

    def run() -> None:
        start = time.perf_counter()
        call()
        took.append(time.perf_counter() - start)
        done.set()

    thread = threading.Thread(target=run)
    longest = 0.0
    previous = time.perf_counter()
    thread.start()
    while not done.is_set():
        now = time.perf_counter()
        longest = max(longest, now - previous)
        previous = now
    thread.join()
    return took[0], longest


#: Timings of a flush against its control: how long ``mmap.flush()`` took and
#: the longest pause of another thread meanwhile, then (took, pause) of each
#: periodic flush timed, the last one the one that settled it.
_Stall = tuple[float, float, list[tuple[float, float]]]


def _flush_stall(sizes: tuple[int, ...]) -> _Stall | None:
    """The flush timed against its control in a spool under the checkout's ``.data/``.

    Written on that disk: a temporary directory may be in memory, where a
    sync costs nothing and no stall can be seen with either call. The
    control is timed after each of ``sizes`` MiB more is appended, until it
    takes 20 ms or more; ``None`` if it never did (no stall to see there).
    """
    _DATA.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="flush-", dir=_DATA))
    # At most 32 + 64 + 96 MiB for the controls and 3 x 96 MiB flushed: one segment.
    spool_dir = SpoolDir(root, segment_max_bytes=512 << 20, segment_max_age=3600)
    spool = spool_dir.spool("things", COLUMNS)
    line = b"1\t" + b"x" * ((1 << 20) - 3) + b"\n"
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        for megabytes in sizes:
            for _ in range(megabytes):
                assert spool.append(line)
            segment = spool._open
            assert segment is not None
            control_took, control_pause = _pauses_while(segment.mapping.flush)
            if control_took < 0.02:
                continue  # too fast a disk to tell: more pages
            # A flush that kept the GIL would stall this thread for about as long
            # as it took, every time; a pause from elsewhere (the scheduler, other
            # threads of the process) is a one-off: up to three flushes are timed.
            attempts: list[tuple[float, float]] = []
            for _ in range(3):
                for _ in range(megabytes):
                    assert spool.append(line)
                took, pause = _pauses_while(lambda: spool.maintain(fsync=True, max_age=3600.0))
                attempts.append((took, pause))
                if pause < max(took, control_took) / 4:
                    break
            return control_took, control_pause, attempts
        return None
    finally:
        sys.setswitchinterval(switch)
        spool_dir.release()
        shutil.rmtree(root, ignore_errors=True)


#: ``msync`` and ``fdatasync`` of the C library, each 150 ms slower: a slow disk
#: on any machine, loaded into a process with ``LD_PRELOAD``.
_SLOW_SYNCS = """
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <time.h>

static void wait_a_while(void) {
    struct timespec pause = {0, 150000000};
    nanosleep(&pause, NULL);
}

int msync(void *address, size_t length, int flags) {
    static int (*real)(void *, size_t, int);
    if (real == NULL) {
        real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
    }
    wait_a_while();
    return real(address, length, flags);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    wait_a_while();
    return real(fd);
}
"""


def _flush_stall_on_a_slow_disk(tmp_path: Path) -> _Stall:
    """:func:`_flush_stall` in a process whose ``msync`` and ``fdatasync`` take 150 ms more."""
    compiler = shutil.which("cc")
    # No real slow sync can be made without one (a stand-in in Python would let go of
    # the GIL by itself, which is what this test tells apart): `make test` installs it.
    assert compiler is not None, "a C compiler (cc) builds the slowed msync and fdatasync"
    source = tmp_path / "slow_syncs.c"
    source.write_text(_SLOW_SYNCS)
    library = tmp_path / "slow_syncs.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(source), "-ldl"], check=True
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from tests.beacon.test_spool import _flush_stall; "
            "print(json.dumps(_flush_stall((4,))))",
        ],
        cwd=root,
        env={**os.environ, "LD_PRELOAD": str(library), "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(run.stdout)
    assert measured is not None, "the slowed msync did not slow the control"
    control_took, control_pause, attempts = measured
    return control_took, control_pause, [(took, pause) for took, pause in attempts]


def _assert_no_stall(measured: _Stall) -> None:
    control_took, control_pause, attempts = measured
    # The control keeps the GIL through its sync: the measurement sees that stall.
    assert control_pause > control_took / 2, measured
    took, pause = attempts[-1]
    assert pause < max(took, control_took) / 4, measured


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="an fdatasync on Linux only")
def test_the_periodic_flush_lets_the_other_threads_run(tmp_path: Path) -> None:
    """Flushing a segment to disk does not stall the process (a server's event loop).

    The control is ``mmap.flush()`` on as many fresh pages, which keeps the
    GIL for its whole ``msync``: it shows the measurement can see a stall.
    Measured on a disk made slow (the C library's ``msync`` and
    ``fdatasync`` each made 150 ms longer in a process of its own), so that
    there is a stall to see on any machine, and on the checkout's own disk
    when a sync there takes long enough to be seen (20 ms).
    """
    slowed = _flush_stall_on_a_slow_disk(tmp_path)
    assert slowed[0] >= 0.15, slowed  # the control went through the slowed msync
    _assert_no_stall(slowed)
    on_this_disk = _flush_stall((32, 64, 96))
    if on_this_disk is not None:
        _assert_no_stall(on_this_disk)
