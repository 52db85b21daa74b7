"""The flusher on the real engine: one insert per segment, dedup on replay, outages, bad data."""

from __future__ import annotations

import shutil
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from beacon.events import EVENT_COLUMNS, PixelEvent
from beacon.flusher import Flusher, is_data_error
from beacon.spool import ROW_BINARY, TAB_SEPARATED, SpoolDir, sealed_segments
from beacon.store import Store

from .conftest import SITE


def _event(n: int) -> PixelEvent:
    return PixelEvent(
        ts=datetime(2026, 11, 2, 9, 0, n % 60, tzinfo=UTC),
        site=SITE,
        kind="pageview",
        path=f"/p{n % 7}",
        visitor_hash=1000 + n % 13,
        browser="Firefox",
        os="Linux",
        device="desktop",
    )


def _spool_events(root: Path, count: int, fmt: str = ROW_BINARY) -> SpoolDir:
    spool_dir = SpoolDir(root)
    spool = spool_dir.spool("events", EVENT_COLUMNS, fmt)
    for n in range(count):
        event = _event(n)
        assert spool.append(event.to_row_binary() if fmt == ROW_BINARY else event.to_tsv())
    return spool_dir


def _counts(store: Store) -> tuple[int, int, int]:
    ((events,),) = store.query_rows("SELECT count() FROM events")
    ((views, visitors),) = store.query_rows(
        "SELECT sum(pageviews), uniqMerge(visitors) FROM site_daily"
    )
    return events, views, visitors


def test_segments_are_inserted_and_deleted(store: Store, tmp_path: Path) -> None:
    spool_dir = _spool_events(tmp_path, 500)
    flusher = Flusher(store, [tmp_path], own=spool_dir)
    assert flusher.stop(timeout=30)
    assert _counts(store) == (500, 500, 13)
    assert sealed_segments(spool_dir.path) == []
    assert flusher.stats.flushed_rows == 500


def test_every_value_of_a_row_binary_segment_arrives_as_written(
    store: Store, tmp_path: Path
) -> None:
    spool_dir = SpoolDir(tmp_path)
    spool = spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY)
    odd = PixelEvent(
        ts=datetime(2026, 11, 2, 9, 30, 1, 123000, tzinfo=UTC),
        site=SITE,
        kind="click",
        path="/é\t\n\\x",
        referrer_host="duck.example",
        utm_source="s",
        utm_medium="m",
        utm_campaign="c" * 300,
        utm_term="t",
        utm_content="\u2028",
        visitor_hash=2**64 - 1,
        browser="Safari",
        os="iOS",
        device="tablet",
        is_bot=True,
        campaign="spring",
        link="https://mypharm.fr/a",
        recipient=2**63,
        machine=True,
        name="n",
    )
    assert spool.append(odd.to_row_binary())
    flusher = Flusher(store, [tmp_path], own=spool_dir)
    assert flusher.stop(timeout=30)
    (row,) = store.query_rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events")
    stored = dict(zip(EVENT_COLUMNS, row, strict=True))
    stored["ts"] = stored["ts"].replace(tzinfo=UTC)
    assert PixelEvent(**stored) == odd


def test_text_segments_are_still_inserted(store: Store, tmp_path: Path) -> None:
    spool_dir = _spool_events(tmp_path, 40, TAB_SEPARATED)
    flusher = Flusher(store, [tmp_path], own=spool_dir)
    assert flusher.stop(timeout=30)
    assert _counts(store) == (40, 40, 13)


def test_a_replayed_segment_counts_once_in_events_and_aggregates(
    store: Store, tmp_path: Path
) -> None:
    spool_dir = _spool_events(tmp_path, 300)
    spool_dir.close()
    (segment,) = sealed_segments(spool_dir.path)
    keep = tmp_path / "copy"
    shutil.copy(segment.path, keep)
    flusher = Flusher(store, [tmp_path], own=spool_dir)
    assert flusher.insert(segment) == 300
    shutil.copy(keep, segment.path)
    assert flusher.insert(segment) == 300
    assert _counts(store) == (300, 300, 13)


def test_nothing_is_lost_while_the_table_is_away(store: Store, tmp_path: Path) -> None:
    spool_dir = _spool_events(tmp_path, 200)
    spool_dir.close()
    store.command("RENAME TABLE events TO events_away")
    flusher = Flusher(store, [tmp_path], own=spool_dir, tick=0.05, max_backoff=0.2)
    assert flusher.drain_once() is False
    assert flusher.stats.flush_failures == 1
    assert "events" in flusher.stats.last_error
    assert len(sealed_segments(spool_dir.path)) == 1
    store.command("RENAME TABLE events_away TO events")
    assert flusher.stop(timeout=30)
    assert _counts(store) == (200, 200, 13)


def test_unparseable_segment_is_set_aside_and_the_rest_flows(store: Store, tmp_path: Path) -> None:
    spool_dir = SpoolDir(tmp_path)
    spool = spool_dir.spool("events", EVENT_COLUMNS)
    spool.append(b"not a date\t" + b"\t".join([b"x"] * 19) + b"\n")
    spool_dir.close()
    good = _spool_events(tmp_path, 10)
    good.release()
    flusher = Flusher(store, [tmp_path], own=spool_dir)
    assert flusher.drain_once()
    assert flusher.stats.rejected_segments == 1
    assert len(list((tmp_path / "rejected").iterdir())) == 1
    assert _counts(store)[0] == 10


def test_store_down_then_back_loses_nothing(store: Store, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = Store(f"http://127.0.0.1:{port}/beacon")
    spool_dir = _spool_events(tmp_path, 50)
    outage = Flusher(down, [tmp_path], own=spool_dir, max_backoff=0.1)
    assert outage.stop(timeout=1.0) is False
    assert outage.stats.flush_failures >= 1
    assert not is_data_error(RuntimeError(outage.stats.last_error))
    spool_dir.release()
    recovered = Flusher(store, [tmp_path])
    assert recovered.stop(timeout=30)
    assert _counts(store) == (50, 50, 13)


def test_two_segments_at_a_time_store_each_row_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first two inserts wait for each other before going in: unless the
    # flusher runs them at once, the meeting times out and the pass fails.
    meeting = threading.Barrier(2, timeout=30)
    callers: list[int] = []
    calls_lock = threading.Lock()
    raw_insert = store.raw_insert

    def insert_together(*args: Any, **kwargs: Any) -> None:
        with calls_lock:
            callers.append(threading.get_ident())
            first_two = len(callers) <= 2
        if first_two:
            meeting.wait()
        raw_insert(*args, **kwargs)

    monkeypatch.setattr(store, "raw_insert", insert_together)
    spool_dir = SpoolDir(tmp_path, segment_max_bytes=65536)
    spool = spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY)
    for n in range(7000):
        assert spool.append(_event(n).to_row_binary())
    spool_dir.close()
    segments = len(sealed_segments(spool_dir.path))
    assert segments >= 5
    flusher = Flusher(store, [tmp_path], own=spool_dir, workers=2)
    assert flusher.drain_once()
    assert _counts(store) == (7000, 7000, 13)
    assert flusher.stats.flushed_segments == segments
    assert flusher.stats.flushed_rows == 7000
    assert flusher.stats.pending_segments == 0
    assert sealed_segments(spool_dir.path) == []
    assert len(callers) == segments
    assert len(set(callers[:2])) == 2  # two threads
    # Two inserts were in flight at once, each on a connection of its own;
    # the later ones reused those two.
    assert len(store._insert_clients) == 2
    assert flusher.stop(timeout=30)
    assert flusher._pool is None


def test_a_rejected_segment_does_not_hold_back_the_one_inserted_beside_it(
    store: Store, tmp_path: Path
) -> None:
    spool_dir = SpoolDir(tmp_path)
    spool_dir.spool("events", EVENT_COLUMNS).append(
        b"not a date\t" + b"\t".join([b"x"] * 19) + b"\n"
    )
    spool_dir.close()
    good = _spool_events(tmp_path, 25)
    good.release()
    flusher = Flusher(store, [tmp_path], own=spool_dir, workers=2)
    assert flusher.drain_once()
    assert flusher.stats.rejected_segments == 1
    assert flusher.stats.flushed_rows == 25
    assert flusher.stats.pending_segments == 0
    assert _counts(store)[0] == 25
    flusher.stop(timeout=30)


def test_a_flusher_needs_at_least_one_worker(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        Flusher(store, [tmp_path], workers=0)


def test_store_inserts_from_two_threads_run_on_two_connections(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = b"".join(_event(n).to_row_binary() for n in range(50))
    # Both threads hold their connection before either inserts: a store that
    # handed out one connection at a time would make the meeting time out.
    meeting = threading.Barrier(2, timeout=30)
    borrowed: list[Any] = []
    borrow = store._borrow_insert_client

    def borrow_and_meet() -> Any:
        client = borrow()
        borrowed.append(client)
        meeting.wait()
        return client

    monkeypatch.setattr(store, "_borrow_insert_client", borrow_and_meet)
    failures: list[BaseException] = []

    def insert(token: str) -> None:
        try:
            store.raw_insert(
                "events",
                EVENT_COLUMNS,
                rows,
                fmt=ROW_BINARY,
                settings={"insert_deduplication_token": token},
            )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=insert, args=(f"t{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert _counts(store)[0] == 100
    assert len({id(client) for client in borrowed}) == 2
    assert store.connect() not in borrowed  # queries keep their own client
    assert sorted(map(id, store._insert_clients)) == sorted(map(id, borrowed))
    store.close()
    assert store._insert_clients == []
