"""The on-disk spool: every accepted event is on disk before the answer goes out.

Layout under a spool root (one root may serve several worker processes)::

    ROOT/
      w-<pid>-<random>/          one directory per process, flock'ed by it (.lock)
        events/                  one sub-directory per target table
          <segment id>.open      the segment being appended to
          <segment id>.seg       sealed segments, waiting for the flusher
      rejected/                  segments ClickHouse refused to parse (kept, counted)

A segment holds rows in one of ClickHouse's input formats, so flushing it is
one ``raw_insert`` of its bytes with the segment id as
``insert_deduplication_token``. Two formats:

``TabSeparated``
    A header line naming the columns, then one text line per row. A row
    torn by the death of the process has no newline yet and is left out.
``RowBinary`` (the page-view spool: smaller, and no text for the engine to parse)
    A header line ``@RowBinary <boot id>`` plus the columns, then two pairs
    of 64-bit (end offset, row count): the rows written (updated after every
    row, so a row torn by ``kill -9`` is never counted) and the rows flushed
    to disk (updated after each periodic flush). A reader trusts the first when the
    machine has not restarted since the segment was written (same boot id)
    and the second after a restart, when only flushed pages are sure to be
    on disk.

Durability: a segment is preallocated and mapped in memory (``MAP_SHARED``),
so :meth:`Spool.append` copies the line into the kernel's page cache before
returning: it survives ``kill -9`` of the process, at the cost of a memory
copy instead of a system call. Segments are flushed to disk every
``fsync_interval`` seconds (default 1 s) by a background thread, never once
per event, which bounds what a power cut can lose. On Linux the flush is an
``fdatasync`` of the segment's file (what ``msync(MS_SYNC)`` of a shared
mapping does there), which lets the other threads run while the disk
works; ``mmap.flush()`` would keep the interpreter's lock for the whole
write, stalling the server's event loop for as long every second. A
segment left by a dead process ends with the unused, zeroed part of its
preallocation, which readers ignore. Segments are sealed (renamed ``.seg``) when they reach
``segment_max_bytes`` or ``segment_max_age`` seconds.

Overflow policy: when the spool directory holds ``max_bytes`` (default
1 GiB, i.e. several million events, hours of a ClickHouse outage), new events
are dropped, newest first, and counted in ``SpoolStats.dropped``; older
events already on disk are never thrown away for newer ones.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import os
import secrets
import shutil
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from beacon.exceptions import ConfigurationError, SpoolError, SpoolLocked

__all__ = [
    "BOOT_ID",
    "OPEN_SUFFIX",
    "ROW_BINARY",
    "SEALED_SUFFIX",
    "TAB_SEPARATED",
    "Segment",
    "SegmentData",
    "Spool",
    "SpoolDir",
    "SpoolStats",
    "claim_orphans",
    "owner_dirs",
    "reject",
    "sealed_segments",
    "stats_dict",
]

logger = logging.getLogger("beacon")

OPEN_SUFFIX = ".open"
SEALED_SUFFIX = ".seg"
TAB_SEPARATED = "TabSeparated"
ROW_BINARY = "RowBinary"
_BINARY_MARK = b"@" + ROW_BINARY.encode()
_OFFSETS = struct.Struct("<QQQQ")
_PAIR = struct.Struct("<QQ")
_LOCK = ".lock"
_REJECTED = "rejected"
_OWNER_PREFIX = "w-"
#: Linux tracks the pages written through a shared mapping in the page cache,
#: and its ``msync(MS_SYNC)`` is an ``fdatasync`` of the mapped range; so the
#: file's descriptor is synced instead, by a call that releases the GIL
#: (CPython's ``mmap.flush()`` holds it for the whole ``msync``).
_SYNC_BY_FD = sys.platform.startswith("linux")


def _load_compiled() -> ModuleType | None:
    """``beacon._speedups`` when it is built and not turned off (``BEACON_SPEEDUPS=0``)."""
    if os.environ.get("BEACON_SPEEDUPS", "1") == "0":
        logger.debug("BEACON_SPEEDUPS=0: page views take the pure-Python path")
        return None
    try:
        from beacon import _speedups
    except ImportError:
        logger.debug("beacon._speedups is not built: page views take the pure-Python path")
        return None
    return _speedups


#: ``beacon._speedups`` when it is built and not turned off, else ``None``.
compiled_speedups = _load_compiled()

if TYPE_CHECKING or compiled_speedups is None:

    @dataclass
    class SpoolStats:
        """Counters of one spool directory (integers, updated in place)."""

        accepted: int = 0
        dropped: int = 0
        write_errors: int = 0
        sealed: int = 0
        bytes_used: int = 0

    class _SegmentFields:
        """The write position of a segment being written."""

        __slots__ = ("offsets", "rows", "size")

        offsets: int
        rows: int
        size: int

        def hold(self, mapping: mmap.mmap) -> None:
            """Keep the mapping's memory for the compiled append (nothing to do here)."""

        def let_go(self) -> None:
            """Give the mapping's memory back before it is closed (nothing to do here)."""

    class _SpoolFields:
        """A spool's open segment, and whether it was written since its last flush."""

        _open: _OpenSegment | None
        _dirty: bool

    class _SpoolDirFields:
        """The bounds a spool directory's appends check."""

        max_bytes: int
        max_line_bytes: int
        segment_max_bytes: int

    _AppendsLock = threading.Lock
else:
    # The same fields as C integers (see beacon._speedups): the compiled append
    # reads and writes them directly, and Python as attributes, as above.
    SpoolStats = compiled_speedups.SpoolStats
    _SegmentFields = compiled_speedups.SegmentFields
    _SpoolFields = compiled_speedups.SpoolFields
    _SpoolDirFields = compiled_speedups.SpoolDirFields
    _AppendsLock = compiled_speedups.AppendsLock


def stats_dict(stats: Any) -> dict[str, int]:
    """The counters of ``stats`` (a :class:`SpoolStats`, or a compiled counters type) by name."""
    as_dict = getattr(stats, "as_dict", None)
    counters: dict[str, int] = as_dict() if as_dict is not None else asdict(stats)
    return counters


def _boot_id() -> str:
    """This boot of the machine (Linux), to tell a process death from a restart."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip().replace("-", "")
    except OSError:
        return ""


BOOT_ID = _boot_id()


@dataclass(frozen=True, slots=True)
class SegmentData:
    """What a sealed segment holds: its columns, rows, format, and bytes left out.

    ``dropped_bytes`` counts a torn last row, or rows written after the last
    flush to disk when the machine restarted since.
    """

    columns: list[str]
    data: bytes
    dropped_bytes: int
    fmt: str = TAB_SEPARATED
    binary_rows: int = 0

    @property
    def rows(self) -> int:
        """How many rows :attr:`data` holds."""
        return self.binary_rows if self.fmt == ROW_BINARY else self.data.count(b"\n")


@dataclass(frozen=True, slots=True)
class Segment:
    """A sealed segment file of one target table."""

    path: Path
    table: str

    @property
    def segment_id(self) -> str:
        """The unique id of the segment (its file name without suffix)."""
        return self.path.name.removesuffix(SEALED_SUFFIX)

    @property
    def dedup_token(self) -> str:
        """The ``insert_deduplication_token`` of this segment's insert."""
        return f"{self.table}/{self.segment_id}"

    def read(self) -> SegmentData:
        """The segment's complete rows (see the module's notes on formats)."""
        raw = self.path.read_bytes()
        if raw.startswith(_BINARY_MARK):
            return _read_binary(raw)
        raw = raw.rstrip(b"\0")
        header, newline, body = raw.partition(b"\n")
        if not newline:
            return SegmentData([], b"", len(raw))
        columns = header.decode("ascii").split("\t")
        end = body.rfind(b"\n") + 1
        return SegmentData(columns, body[:end], len(body) - end)


def _binary_header(columns: Sequence[str]) -> bytes:
    line = "\t".join((f"@{ROW_BINARY} {BOOT_ID or '-'}", *columns)) + "\n"
    return line.encode("ascii")


def _read_binary(raw: bytes) -> SegmentData:
    header, newline, _ = raw.partition(b"\n")
    start = len(header) + 1 + _OFFSETS.size
    if not newline or len(raw) < start:
        return SegmentData([], b"", len(raw))
    mark, *columns = header.decode("ascii").split("\t")
    written, rows, synced, synced_rows = _OFFSETS.unpack_from(raw, len(header) + 1)
    end = written
    if mark.partition(" ")[2] != (BOOT_ID or "-"):
        end, rows = synced, synced_rows
    # A file cut shorter than its rows (damaged) fails to parse and is set aside.
    end = min(max(start, end), len(raw))
    return SegmentData(columns, raw[start:end], max(0, written - end), ROW_BINARY, rows)


def _segment_id() -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}.{int(now * 1e6) % 1_000_000:06d}-{os.getpid()}-{secrets.token_hex(4)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _OpenSegment(_SegmentFields):
    """A segment being written: its file, preallocated and mapped in memory.

    ``offsets`` is where a ``RowBinary`` segment keeps its written and synced
    ends (0 for a ``TabSeparated`` one).
    """

    __slots__ = ("fd", "mapping", "opened_at", "path")

    def __init__(self, path: Path, capacity: int, header: bytes, binary: bool) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Reserving the blocks now turns a full disk into an error here,
            # instead of a SIGBUS when a mapped page is first written.
            os.posix_fallocate(fd, 0, capacity)
            self.mapping = mmap.mmap(
                fd, capacity, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self.fd, self.path = fd, path
        self.hold(self.mapping)
        self.mapping[: len(header)] = header
        self.size = len(header)
        self.offsets = self.rows = 0
        if binary:
            self.offsets = self.size
            self.size += _OFFSETS.size
            _OFFSETS.pack_into(self.mapping, self.offsets, self.size, 0, self.size, 0)
        self.opened_at = time.monotonic()

    def flush(self) -> None:
        """Write the mapped pages to disk, letting other threads run meanwhile (on Linux)."""
        if _SYNC_BY_FD:
            os.fdatasync(self.fd)
        else:
            self.mapping.flush()

    def synced(self, end: int, rows: int) -> None:
        """Record that the first ``rows`` rows, up to ``end``, are on disk (after a flush)."""
        if self.offsets:
            _PAIR.pack_into(self.mapping, self.offsets + _PAIR.size, end, rows)

    def seal(self) -> None:
        """Flush, cut the file to its data, fsync, close and rename it ``.seg``."""
        with contextlib.suppress(OSError, ValueError):
            self.synced(self.size, self.rows)
            if not _SYNC_BY_FD:
                self.mapping.flush()
        # On Linux the fsync below writes the mapped pages too.
        self.let_go()
        self.mapping.close()
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, self.size)
            os.fsync(self.fd)
        os.close(self.fd)
        os.rename(self.path, self.path.with_suffix(SEALED_SUFFIX))


class Spool(_SpoolFields):
    """Append-only segment files of one target table, inside a :class:`SpoolDir`.

    Thread-safe. A segment is preallocated and mapped in memory (shared with
    the kernel's page cache), so :meth:`append` is a memory copy: the row
    is in the file as soon as it returns and survives the death of the
    process, without a system call per event. ``fmt`` is the rows' format,
    ``"TabSeparated"`` (lines) or ``"RowBinary"``.
    """

    def __init__(
        self, owner: SpoolDir, table: str, columns: Sequence[str], fmt: str = TAB_SEPARATED
    ) -> None:
        if fmt not in (TAB_SEPARATED, ROW_BINARY):
            raise ConfigurationError(f"unknown spool format {fmt!r}")
        self.owner = owner
        self.table = table
        self.columns = tuple(columns)
        self.fmt = fmt
        self.directory = owner.path / table
        self.directory.mkdir(parents=True, exist_ok=True)
        self._binary = fmt == ROW_BINARY
        self._header = (
            _binary_header(self.columns)
            if self._binary
            else ("\t".join(self.columns) + "\n").encode("ascii")
        )
        # One lock per directory: appends and the recount of its disk use agree.
        self._lock = owner.appends_lock
        self._open: _OpenSegment | None = None
        self._dirty = False
        self._to_seal: list[_OpenSegment] = []

    def append(self, line: bytes) -> bool:
        """Write one row (a line with its newline, or a RowBinary row); ``False`` if dropped."""
        # beacon._speedups appends a page view the same way when it fits the open
        # segment (same lock, checks and counters): change both together.
        owner = self.owner
        stats = owner.stats
        size = len(line)
        with self._lock:
            if stats.bytes_used + size > owner.max_bytes or size > owner.max_line_bytes:
                stats.dropped += 1
                return False
            segment = self._open
            if segment is None or segment.size + size > owner.segment_max_bytes:
                if segment is not None:
                    self._rotate()
                try:
                    segment = self._open = self._new_segment()
                except OSError:
                    stats.write_errors += 1
                    stats.dropped += 1
                    return False
            end = segment.size + size
            segment.mapping[segment.size : end] = line
            segment.size = end
            if segment.offsets:
                segment.rows += 1
                _PAIR.pack_into(segment.mapping, segment.offsets, end, segment.rows)
            stats.bytes_used += size
            stats.accepted += 1
            self._dirty = True
            return True

    def _new_segment(self) -> _OpenSegment:
        path = self.directory / (_segment_id() + OPEN_SUFFIX)
        segment = _OpenSegment(path, self.owner.segment_max_bytes, self._header, self._binary)
        self.owner.stats.bytes_used += segment.size
        return segment

    def _rotate(self) -> None:
        if self._open is not None:
            self._to_seal.append(self._open)
        self._open, self._dirty = None, False

    def maintain(self, *, fsync: bool, max_age: float) -> None:
        """Flush the open segment to disk if asked, and seal segments that are full or old."""
        with self._lock:
            current = self._open
            if current is not None and time.monotonic() - current.opened_at >= max_age:
                self._rotate()
                current = None
            pending, self._to_seal = self._to_seal, []
            flush = fsync and self._dirty and current is not None
            written = (current.size, current.rows) if current is not None else (0, 0)
            if flush:
                self._dirty = False
        # Outside the lock: appends go on while the pages are written out. Only
        # this method seals (unmaps) segments, so ``current`` stays mapped.
        if flush and current is not None:
            with contextlib.suppress(OSError, ValueError):
                current.flush()
                current.synced(*written)
        for segment in pending:
            segment.seal()
            self.owner.stats.sealed += 1
        if pending:
            _fsync_dir(self.directory)

    @property
    def open_bytes(self) -> int:
        """Bytes written so far into the open segment."""
        segment = self._open
        return segment.size if segment is not None else 0

    def close(self) -> None:
        """Seal the open segment (flushed to disk)."""
        with self._lock:
            self._rotate()
        self.maintain(fsync=True, max_age=0.0)


class SpoolDir(_SpoolDirFields):
    """This process's spool directory under ``root``, holding one :class:`Spool` per table.

    The directory is locked (``flock``) for the life of the process, so a
    flusher or ``beacon ingest`` elsewhere knows it is alive; when the
    process dies the lock is released and its segments become orphans that
    the next flusher claims.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync_interval: float = 1.0,
        segment_max_bytes: int = 16 * 1024 * 1024,
        segment_max_age: float = 1.0,
        max_bytes: int = 1024 * 1024 * 1024,
    ) -> None:
        if fsync_interval <= 0 or segment_max_age <= 0:
            raise ConfigurationError("fsync_interval and segment_max_age must be positive")
        if segment_max_bytes < 65536 or max_bytes < segment_max_bytes:
            raise ConfigurationError("need 65536 <= segment_max_bytes <= max_bytes")
        self.root = Path(root).resolve()
        self.fsync_interval = fsync_interval
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_age = segment_max_age
        self.max_bytes = max_bytes
        #: Longer lines are refused (a segment must hold its header and the line).
        self.max_line_bytes = segment_max_bytes // 4
        self.stats = SpoolStats()
        self.pid = os.getpid()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.path = self.root / f"{_OWNER_PREFIX}{self.pid}-{secrets.token_hex(3)}"
            self.path.mkdir()
            self._lock_fd = os.open(self.path / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool directory under {self.root}: {exc}") from exc
        self._spools: dict[str, Spool] = {}
        self._spools_lock = threading.Lock()
        #: Held by every append of this directory's spools, and by the disk-use recount.
        self.appends_lock = _AppendsLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_fsync = time.monotonic()
        self.closed = False

    def spool(self, table: str, columns: Sequence[str], fmt: str = TAB_SEPARATED) -> Spool:
        """The spool of ``table`` with rows in ``fmt`` (created on first use)."""
        found = self._spools.get(table)
        if found is not None:
            if found.columns != tuple(columns) or found.fmt != fmt:
                raise ConfigurationError(f"spool {table} already open with other columns")
            return found
        with self._spools_lock:
            if table not in self._spools:
                self._spools[table] = Spool(self, table, columns, fmt)
            return self._spools[table]

    @property
    def spools(self) -> list[Spool]:
        """The table spools opened so far."""
        return list(self._spools.values())

    def maintain(self) -> None:
        """Seal old segments, fsync on the interval, recount disk use (background work)."""
        now = time.monotonic()
        fsync = now - self._last_fsync >= self.fsync_interval
        if fsync:
            self._last_fsync = now
        for spool in self.spools:
            spool.maintain(fsync=fsync, max_age=self.segment_max_age)
        # Sealed files only change here and in the flusher (which only removes
        # them), so they are counted outside the lock; open bytes under it.
        sealed = _disk_use(self.path)
        with self.appends_lock:
            self.stats.bytes_used = sealed + sum(s.open_bytes for s in self.spools)

    def start(self) -> None:
        """Start the background thread running :meth:`maintain`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="beacon-spool-sync", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        tick = min(self.fsync_interval, self.segment_max_age) / 4
        while not self._stop.wait(tick):
            with contextlib.suppress(OSError):
                self.maintain()

    def close(self) -> None:
        """Seal every open segment and stop the background thread (the lock stays)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        for spool in self.spools:
            spool.close()
        self.closed = True

    def release(self) -> None:
        """Close, then drop the lock and remove the directory if nothing is left in it."""
        if not self.closed:
            self.close()
        if not any(self.path.rglob(f"*{SEALED_SUFFIX}")):
            shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


def _disk_use(path: Path) -> int:
    """Bytes of the sealed segments under ``path`` (open ones are counted by their spool)."""
    total = 0
    for entry in path.rglob(f"*{SEALED_SUFFIX}"):
        with contextlib.suppress(OSError):
            if entry.is_file():
                total += entry.stat().st_size
    return total


def sealed_segments(owner_dir: Path) -> list[Segment]:
    """The sealed segments of one process directory, oldest first."""
    found: list[Segment] = []
    if not owner_dir.is_dir():
        return found
    for table_dir in owner_dir.iterdir():
        if table_dir.is_dir():
            found += [Segment(p, table_dir.name) for p in table_dir.glob(f"*{SEALED_SUFFIX}")]
    found.sort(key=lambda s: s.segment_id)
    return found


class _Orphan:
    """A dead process's spool directory, locked by the claimer while it drains it."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self.lock_fd = lock_fd

    def release(self) -> None:
        if not any(self.path.rglob(f"*{SEALED_SUFFIX}")) and not any(
            self.path.rglob(f"*{OPEN_SUFFIX}")
        ):
            shutil.rmtree(self.path, ignore_errors=True)
        os.close(self.lock_fd)


def _try_lock(directory: Path) -> int | None:
    try:
        fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise SpoolLocked(f"cannot lock {directory}: {exc}") from exc
    return fd


@contextlib.contextmanager
def claim_orphans(root: Path, *, exclude: Path | None = None) -> Iterator[list[Path]]:
    """Lock the directories of dead processes under ``root`` and seal their open segments.

    Yields the claimed directories (their sealed segments are now safe to
    drain); on exit, empty ones are removed and the locks released.
    """
    claimed: list[_Orphan] = []
    try:
        if root.is_dir():
            for directory in sorted(root.iterdir()):
                if not directory.name.startswith(_OWNER_PREFIX) or directory == exclude:
                    continue
                if not directory.is_dir():
                    continue
                fd = _try_lock(directory)
                if fd is None:
                    continue
                claimed.append(_Orphan(directory, fd))
                for open_segment in directory.glob(f"*/*{OPEN_SUFFIX}"):
                    os.rename(open_segment, open_segment.with_suffix(SEALED_SUFFIX))
        yield [orphan.path for orphan in claimed]
    finally:
        for orphan in claimed:
            orphan.release()


def owner_dirs(root: Path) -> list[Path]:
    """Every process directory under ``root`` (live or not)."""
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith(_OWNER_PREFIX))


def reject(segment: Segment, root: Path) -> Path:
    """Move a segment ClickHouse refused into ``root/rejected/`` and return its new path."""
    target_dir = root / _REJECTED
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{segment.table}-{segment.path.name}"
    os.replace(segment.path, target)
    return target
