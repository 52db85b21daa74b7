"""The flusher: moves sealed spool segments into ClickHouse, each as one insert.

Each segment is inserted with one ``raw_insert`` in its own format
(``RowBinary`` for page views, ``TabSeparated`` for other tables) and
``insert_deduplication_token`` = its id, so a segment inserted twice (the
process died between the acknowledgement and the deletion) is counted once.
A segment file is deleted only after ClickHouse acknowledged the insert.

Up to ``workers`` segments (default 2) are inserted at once, each from a
thread of its own: ClickHouse parses, sorts and aggregates an insert on one
core, so two at a time keep both cores of a small machine busy
(``benchmarks/bench_flusher.py``). Segments are independent (each carries
its own deduplication token), so their order does not matter.

While ClickHouse is down, inserts are retried with exponential backoff
(0.5 s doubling up to 30 s) and the segments stay on disk. A segment
ClickHouse cannot parse is moved to ``ROOT/rejected/`` and counted, so one bad
file never blocks the others. At start-up the directories of dead processes
(their lock is free) are claimed and replayed; ``beacon ingest`` runs the
same loop over other live workers' sealed segments as well.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from beacon.exceptions import StoreUnavailable
from beacon.spool import Segment, SpoolDir, claim_orphans, owner_dirs, reject, sealed_segments
from beacon.store import Store

__all__ = ["Flusher", "FlusherStats", "is_data_error"]

logger = logging.getLogger("beacon.flusher")

_DATA_ERRORS = (
    "CANNOT_PARSE",
    "INCORRECT_DATA",
    "INCORRECT_NUMBER_OF_COLUMNS",
    "UNKNOWN_ELEMENT_OF_ENUM",
    "CANNOT_READ_ALL_DATA",
    "TOO_LARGE_STRING_SIZE",
    "NO_SUCH_COLUMN_IN_TABLE",
    "THERE_IS_NO_COLUMN",
)


@dataclass
class FlusherStats:
    """Counters of a flusher (plain ints, updated in place under its lock)."""

    flushed_segments: int = 0
    flushed_rows: int = 0
    flush_failures: int = 0
    rejected_segments: int = 0
    torn_bytes: int = 0
    pending_segments: int = 0
    last_error: str = ""


def is_data_error(exc: BaseException) -> bool:
    """Whether ClickHouse refused the data itself (retrying cannot help)."""
    if isinstance(exc, StoreUnavailable):
        return False
    text = f"{getattr(exc, 'name', '') or ''} {exc}"
    return any(name in text for name in _DATA_ERRORS)


class Flusher:
    """Inserts sealed segments found under spool ``roots`` into ``store``.

    ``own`` is this process's :class:`SpoolDir` (its segments first; its open
    segments are sealed on :meth:`stop`). Directories of dead processes are
    always claimed; ``include_live`` also takes the sealed segments of live
    processes (``beacon ingest``, for workers that do not own the store).
    ``workers`` segments are inserted at once (at least 1).
    """

    def __init__(
        self,
        store: Store,
        roots: Sequence[str | Path],
        *,
        own: SpoolDir | None = None,
        include_live: bool = False,
        tick: float = 0.25,
        max_backoff: float = 30.0,
        workers: int = 2,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.store = store
        self.workers = workers
        self.roots = [Path(r).resolve() for r in roots]
        self.own = own
        self.include_live = include_live
        self.tick = tick
        self.max_backoff = max_backoff
        self.stats = FlusherStats()
        self._backoff = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._settings: dict[str, int | str] = {
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            # Parse a segment in 1 MiB chunks on two threads: about 1.4x the
            # single-threaded rate on two cores (benchmarks/bench_flusher.py).
            "max_insert_threads": 2,
            "min_chunk_bytes_for_parallel_parsing": 1048576,
        }
        if store.cluster:
            self._settings["distributed_foreground_insert"] = 1

    def insert(self, segment: Segment) -> int:
        """Insert one segment and delete it; return its row count.

        Raises :class:`~beacon.exceptions.StoreError` (or the driver's error)
        when the insert was not acknowledged; the file is then kept.
        """
        try:
            contents = segment.read()
        except FileNotFoundError:
            return 0
        with self._stats_lock:
            self.stats.torn_bytes += contents.dropped_bytes
        rows = contents.rows
        if rows:
            self.store.raw_insert(
                segment.table,
                contents.columns,
                contents.data,
                fmt=contents.fmt,
                settings={**self._settings, "insert_deduplication_token": segment.dedup_token},
            )
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        with self._stats_lock:
            self.stats.flushed_segments += 1
            self.stats.flushed_rows += rows
        return rows

    def _segments(self, root: Path, orphans: list[Path]) -> list[Segment]:
        dirs: list[Path] = []
        if self.own is not None and self.own.root == root:
            dirs.append(self.own.path)
        dirs += orphans
        if self.include_live:
            dirs += [d for d in owner_dirs(root) if d not in dirs]
        found: list[Segment] = []
        for directory in dirs:
            found += sealed_segments(directory)
        return found

    def drain_once(self) -> bool:
        """Insert every sealed segment available now; ``True`` if none is left behind."""
        with self._drain_lock:
            for root in self.roots:
                exclude = self.own.path if self.own is not None else None
                with claim_orphans(root, exclude=exclude) as orphans:
                    segments = self._segments(root, orphans)
                    self.stats.pending_segments = len(segments)
                    for start in range(0, len(segments), self.workers):
                        batch = segments[start : start + self.workers]
                        if not all(self._flush_all(batch, root)):
                            self._backoff = min(self.max_backoff, max(0.5, self._backoff * 2))
                            logger.warning(
                                "flush failed, retrying in %.1f s: %s",
                                self._backoff,
                                self.stats.last_error,
                            )
                            return False
            self._backoff = 0.0
            return True

    def _flush_all(self, batch: list[Segment], root: Path) -> list[bool]:
        """Flush the segments of ``batch`` at once; whether each went in (or was rejected)."""
        if len(batch) == 1:
            return [self._flush(batch[0], root)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="beacon-insert")
        return list(self._pool.map(lambda segment: self._flush(segment, root), batch))

    def _flush(self, segment: Segment, root: Path) -> bool:
        try:
            self.insert(segment)
        except StoreUnavailable as exc:
            self._failed(exc)
            return False
        except Exception as exc:
            if is_data_error(exc):
                moved = reject(segment, root)
                with self._stats_lock:
                    self.stats.rejected_segments += 1
                    self.stats.pending_segments -= 1
                logger.error("segment rejected by ClickHouse, kept in %s: %s", moved, exc)
                return True
            self._failed(exc)
            return False
        with self._stats_lock:
            self.stats.pending_segments -= 1
        return True

    def _failed(self, exc: BaseException) -> None:
        with self._stats_lock:
            self.stats.flush_failures += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]

    def wake(self) -> None:
        """Ask the flusher thread to run a pass now (e.g. after a segment was sealed)."""
        self._wake.set()

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="beacon-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.drain_once()
            self._wake.wait(self._backoff or self.tick)
            self._wake.clear()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread, seal open segments and flush until empty or ``timeout``.

        Returns ``True`` when everything was flushed; otherwise the rest stays
        on disk and is replayed by the next start or ``beacon ingest``.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
            self._thread = None
        if self.own is not None and not self.own.closed:
            self.own.close()
        try:
            while True:
                if self.drain_once():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(self._backoff, remaining))
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
