"""The compiled page-view path writes exactly what the pure-Python path writes.

``beacon._speedups.record_pixel`` records a cached ``/p.gif`` request in one
call; these tests drive it and the Python path side by side with arbitrary
headers, client addresses, salts and times, and compare the rows and the
spool files byte for byte. The fallback (extension disabled or missing) is
run in subprocesses.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import types
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon import Beacon
from beacon.anonymize import FileSalts
from beacon.app import TRANSPARENT_GIF
from beacon.events import EVENT_COLUMNS, read_row_binary
from beacon.pageviews import PageviewEncoder, bound_pixel_recorder, epoch_ns, pixel_recorder
from beacon.spool import ROW_BINARY, Spool, SpoolDir, sealed_segments, stats_dict

try:
    from beacon import _speedups as speedups
except ImportError:  # built without a C compiler: only the fallback is tested
    speedups = None

compiled_only = pytest.mark.skipif(speedups is None, reason="beacon._speedups is not built")

SITE = "mypharm.fr"
DAY = date(2026, 3, 28)
DAY_START_NS = epoch_ns(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC))
NS_PER_DAY = 86_400 * 10**9
CHROME = (
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)

header_names = st.sampled_from(
    [b"user-agent", b"referer", b"host", b"cookie", b"User-Agent", b"x-forwarded-for", b"hos"]
)


def _oversized(*sizes: tuple[int, int]) -> st.SearchStrategy[bytes]:
    """Bytes around the given lengths (the caps), built from a short random pattern."""
    lengths = st.one_of(*(st.integers(low, high) for low, high in sizes))
    return st.tuples(st.binary(min_size=1, max_size=4), lengths).map(
        lambda found: (found[0] * found[1])[: found[1]]
    )


header_values = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([CHROME, b"Googlebot/2.1 (+http://www.google.com/bot.html)", b"\xff\xfe\x80"]),
    _oversized((250, 260), (505, 520), (4090, 4110)),
    st.text(max_size=30).map(lambda text: f"https://{text}/a?b=c".encode()),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=6)
queries = st.one_of(
    st.binary(max_size=60),
    st.sampled_from(
        [
            b"",
            b"u=%2Fproduits%3Futm_source%3Dnews&r=https%3A%2F%2Fwww.google.com%2F",
            b"u=/a&k=event&n=signup&utm_campaign=spring",
            b"u=%ff%fe&r=%zz",
        ]
    ),
    _oversized((4090, 4110)),
)
clients = st.one_of(
    st.none(),
    st.just(()),
    st.tuples(
        st.one_of(
            st.sampled_from(["192.0.2.5", "2001:db8::1", "", "\udcff\udcfe", "é"]),
            st.text(max_size=12),
        ),
        st.integers(0, 65535),
    ),
)


@dataclass
class Request:
    """One ``/p.gif`` request as the ASGI server hands it over, with its time."""

    headers: list[tuple[bytes, bytes]]
    query: bytes
    client: tuple[str, int] | tuple[()] | None
    now_ns: int
    scope: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.scope = {
            "type": "http",
            "method": "GET",
            "path": "/p.gif",
            "query_string": self.query,
            "headers": self.headers,
        }
        if self.client is not None:
            self.scope["client"] = self.client


requests = st.lists(
    st.builds(
        Request, headers, queries, clients, st.integers(DAY_START_NS, DAY_START_NS + 2 * NS_PER_DAY)
    ),
    min_size=1,
    max_size=6,
).map(lambda found: sorted(found, key=lambda request: request.now_ns))


def _python_path(
    encoder: PageviewEncoder, salts: FileSalts, spool: Spool, request: Request
) -> None:
    """What ``Beacon._record_pixel`` does without the accelerator (no proxy, no consent)."""
    values = dict(request.headers)
    client = request.scope.get("client")
    row = encoder.pixel_row(
        request.now_ns,
        salts,
        client[0] if client else "",
        values.get(b"user-agent", b"")[:512],
        request.query,
        values.get(b"referer", b"")[:4096],
        values.get(b"host", b"")[:256],
    )
    assert spool.append(row)


def _utf8(client: tuple[str, int] | tuple[()] | None) -> bool:
    """Whether the client address encodes to UTF-8 (not so with lone surrogates)."""
    try:
        (client[0] if client else "").encode()
    except UnicodeEncodeError:
        return False
    return True


def _spooled(spool_dir: SpoolDir) -> bytes:
    spool_dir.close()
    return b"".join(segment.read().data for segment in sealed_segments(spool_dir.path))


@dataclass
class Side:
    """One encoder, salt source and spool: the compiled side or the Python side."""

    encoder: PageviewEncoder
    salts: FileSalts
    spool_dir: SpoolDir
    spool: Spool


def _side(root: Path, salts_file: Path) -> Side:
    spool_dir = SpoolDir(root)
    return Side(
        PageviewEncoder(SITE, [SITE]),
        FileSalts(salts_file),
        spool_dir,
        spool_dir.spool("events", EVENT_COLUMNS, ROW_BINARY),
    )


def _sides(salts: list[bytes]) -> Iterator[tuple[Side, Side]]:
    with tempfile.TemporaryDirectory(prefix="speedups-") as tmp:
        root = Path(tmp)
        salts_file = root / "daily-salts.json"
        stored = {(DAY + timedelta(days=n)).isoformat(): salt.hex() for n, salt in enumerate(salts)}
        salts_file.write_text(json.dumps(stored))
        yield _side(root / "compiled", salts_file), _side(root / "python", salts_file)


@compiled_only
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=requests,
    salts=st.lists(st.binary(max_size=64), min_size=3, max_size=3),
)
def test_compiled_and_python_paths_spool_the_same_bytes(
    batch: list[Request], salts: list[bytes]
) -> None:
    for compiled, python in _sides(salts):
        recorder = pixel_recorder(compiled.salts)
        assert recorder is speedups.record_pixel
        for request in batch:
            # The first time, a cache miss or a salt not yet read: the Python path.
            for attempt in range(2):
                status = recorder(
                    request.scope, request.now_ns, compiled.encoder, compiled.salts, compiled.spool
                )
                if status is None:
                    _python_path(compiled.encoder, compiled.salts, compiled.spool, request)
                if attempt:
                    # Everything is cached now; only an unencodable address is left to Python.
                    assert status is (True if _utf8(request.client) else None)
                _python_path(python.encoder, python.salts, python.spool, request)
        compiled_bytes = _spooled(compiled.spool_dir)
        assert compiled_bytes == _spooled(python.spool_dir)
        assert compiled.spool_dir.stats == python.spool_dir.stats
        assert len(list(read_row_binary(compiled_bytes))) == 2 * len(batch)


@compiled_only
def test_the_hash_is_the_keyed_blake2b_of_the_python_path() -> None:
    """Inputs around BLAKE2b's 128-byte block, empty and long keys: the same digests."""
    for size in (0, 1, 32, 63, 64):
        for agent_size in (0, 90, 104, 105, 106, 232, 233, 400, 512, 600):
            salts = [bytes(range(size)), b"\x01" * size, b""]
            for compiled, python in _sides(salts):
                request = Request(
                    [(b"user-agent", b"A" * agent_size), (b"host", b"www.mypharm.fr")],
                    b"u=/",
                    ("198.51.100.7", 443),
                    DAY_START_NS + 5,
                )
                _python_path(compiled.encoder, compiled.salts, compiled.spool, request)
                assert speedups.record_pixel(
                    request.scope, request.now_ns, compiled.encoder, compiled.salts, compiled.spool
                )
                _python_path(python.encoder, python.salts, python.spool, request)
                _python_path(python.encoder, python.salts, python.spool, request)
                assert _spooled(compiled.spool_dir) == _spooled(python.spool_dir)


@compiled_only
def test_everything_but_a_cached_request_is_left_to_python() -> None:
    for compiled, _python in _sides([b"s" * 32, b"t" * 32, b"u" * 32]):
        request = Request([(b"user-agent", CHROME)], b"u=/a", ("192.0.2.1", 1), DAY_START_NS)

        def record(
            scope: Any = request.scope, now_ns: int = request.now_ns, side: Side = compiled
        ) -> bool | None:
            return speedups.record_pixel(scope, now_ns, side.encoder, side.salts, side.spool)

        assert record() is None  # nothing cached yet
        _python_path(compiled.encoder, compiled.salts, compiled.spool, request)
        assert record() is True
        assert record(now_ns=request.now_ns + NS_PER_DAY) is None  # a new day
        assert record(now_ns=-1) is None
        assert record(scope={**request.scope, "query_string": "u=/a"}) is None
        assert record(scope={**request.scope, "headers": [[b"user-agent", CHROME]]}) is None
        assert record(scope={**request.scope, "client": ("192.0.2.1\udcff", 1)}) is None
        assert record(scope={**request.scope, "client": 42}) is None
        assert record(scope=list(request.scope.items())) is None
        compiled.spool.close()  # no open segment: Python opens the next one
        assert record() is None
        _python_path(compiled.encoder, compiled.salts, compiled.spool, request)
        assert record() is True
        accepted = compiled.spool_dir.stats.accepted
        compiled.spool_dir.stats.bytes_used = compiled.spool_dir.max_bytes  # spool full
        assert record() is None
        assert compiled.spool_dir.stats.accepted == accepted
        compiled.spool_dir.close()
        with pytest.raises(TypeError):
            speedups.record_pixel(request.scope)  # type: ignore[call-arg]


@compiled_only
def test_other_salt_sources_take_the_python_path() -> None:
    class FixedSalts:
        def salt_for(self, day: date) -> bytes:
            return b"fixed"

        def refresh(self, now: datetime) -> None:
            return None

    assert pixel_recorder(FixedSalts()) is None
    assert (
        bound_pixel_recorder(lambda: 0, PageviewEncoder(SITE, [SITE]), FixedSalts(), None) is None
    )  # type: ignore[arg-type]


@compiled_only
def test_the_bound_recorder_reads_its_clock_and_records_as_record_pixel_does() -> None:
    for bound, direct in _sides([b"s" * 16, b"t" * 16, b"u" * 16]):
        request = Request([(b"user-agent", CHROME)], b"u=/b", ("192.0.2.4", 1), DAY_START_NS + 7)
        reads: list[int] = []

        def clock(reads: list[int] = reads, now_ns: int = request.now_ns) -> int:
            reads.append(now_ns)
            return now_ns

        recorder = bound_pixel_recorder(clock, bound.encoder, bound.salts, bound.spool)
        assert isinstance(recorder, speedups.Recorder)
        assert recorder.spool is bound.spool
        assert recorder(request.scope) is None  # nothing cached yet
        _python_path(bound.encoder, bound.salts, bound.spool, request)
        assert recorder(request.scope) is True
        assert reads == [request.now_ns, request.now_ns]
        _python_path(direct.encoder, direct.salts, direct.spool, request)
        assert speedups.record_pixel(
            request.scope, request.now_ns, direct.encoder, direct.salts, direct.spool
        )
        assert _spooled(bound.spool_dir) == _spooled(direct.spool_dir)
        with pytest.raises(TypeError):
            recorder()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            recorder(request.scope, scope=request.scope)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            speedups.Recorder(None, bound.encoder, bound.salts, bound.spool)  # type: ignore[arg-type]

        def broken() -> int:
            raise RuntimeError("no clock")

        with pytest.raises(RuntimeError):
            speedups.Recorder(broken, bound.encoder, bound.salts, bound.spool)(request.scope)


@compiled_only
def test_the_bound_recorder_follows_what_its_fixed_parts_hold() -> None:
    """The encoder's caches, the spool's counters and lock are read once, their contents live."""
    for bound, direct in _sides([b"s" * 16, b"t" * 16, b"u" * 16]):
        request = Request([(b"user-agent", CHROME)], b"u=/c", ("192.0.2.9", 1), DAY_START_NS + 9)
        recorder = bound_pixel_recorder(
            lambda now=request.now_ns: now, bound.encoder, bound.salts, bound.spool
        )
        assert recorder is not None
        stats = bound.spool.owner.stats
        _python_path(bound.encoder, bound.salts, bound.spool, request)
        assert recorder(request.scope) is True
        assert stats.accepted == 2
        # Caches emptied in place (as when they are full): the recorder sees it at once.
        bound.encoder._agents.clear()
        assert recorder(request.scope) is None
        _python_path(bound.encoder, bound.salts, bound.spool, request)
        assert recorder(request.scope) is True
        # The spool's counters are the Python path's: a full spool is seen at once too.
        bound.spool.owner.max_bytes = stats.bytes_used
        assert recorder(request.scope) is None
        assert stats.accepted == 4
        assert stats.dropped == 0
        bound.spool.owner.max_bytes = 1 << 30
        # The lock is the spool's: held elsewhere, the recorder waits for it.
        lock = bound.spool._lock
        assert lock.acquire()
        done: list[bool | None] = []

        def record(
            done: list[bool | None] = done,
            recorder: Any = recorder,
            scope: dict[str, Any] = request.scope,
        ) -> None:
            done.append(recorder(scope))

        worker = threading.Thread(target=record)
        worker.start()
        worker.join(0.2)
        assert worker.is_alive()
        assert not done
        lock.release()
        worker.join(5)
        assert done == [True]
        assert stats.accepted == 5
        for _ in range(5):
            _python_path(direct.encoder, direct.salts, direct.spool, request)
        assert _spooled(bound.spool_dir) == _spooled(direct.spool_dir)


@compiled_only
def test_a_recorder_without_an_encoder_and_spool_leaves_every_request_to_python() -> None:
    for bound, _ in _sides([b"s" * 16]):
        request = Request([(b"user-agent", CHROME)], b"u=/d", ("192.0.2.9", 1), DAY_START_NS + 9)
        _python_path(bound.encoder, bound.salts, bound.spool, request)
        odd = speedups.Recorder(lambda now=request.now_ns: now, object(), bound.salts, object())
        assert odd(request.scope) is None
        assert bound.spool.owner.stats.accepted == 1
        # Parts that were missing when it was made are looked for again on every call.
        late = types.SimpleNamespace()
        recorder = speedups.Recorder(lambda now=request.now_ns: now, late, bound.salts, bound.spool)
        assert recorder(request.scope) is None
        # The encoder's attributes, its day among them (a C field with the accelerator).
        late.__dict__.update(
            vars(bound.encoder), _day_number=bound.encoder._day_number, _day=bound.encoder._day
        )
        assert recorder(request.scope) is True
        assert bound.spool.owner.stats.accepted == 2


@compiled_only
def test_a_recorder_in_a_cycle_through_what_it_read_once_is_collected() -> None:
    for bound, _ in _sides([b"s" * 16]):
        encoder = PageviewEncoder(SITE, [SITE])
        recorder = speedups.Recorder(lambda: DAY_START_NS, encoder, bound.salts, bound.spool)
        encoder._pages[(b"cycle", b"", b"")] = recorder  # type: ignore[assignment]
        alive = weakref.ref(encoder)
        del encoder, recorder
        gc.collect()
        assert alive() is None


def _fresh_beacon(root: Path, clock: Any, proxies: tuple[str, ...]) -> Beacon:
    return Beacon(
        f"chdb://{root / 'clickhouse'}",
        site=SITE,
        spool_dir=root / "spool",
        ingest="external",
        clock=clock,
        trusted_proxies=proxies,
    )


async def _call(tracker: Beacon, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await tracker.app(scope, receive, send)
    return sent


def _beacon_spool(tracker: Beacon) -> bytes:
    tracker.close(timeout=5.0)
    return b"".join(
        segment.read().data
        for owner in (tracker.spool_root).iterdir()
        if owner.name.startswith("w-")
        for segment in sealed_segments(owner)
    )


@compiled_only
@pytest.mark.parametrize("proxies", [(), ("*",)], ids=["direct", "behind-a-proxy"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=requests)
def test_the_beacon_spools_the_same_rows_with_and_without_the_accelerator(
    proxies: tuple[str, ...], batch: list[Request]
) -> None:
    now = [batch[0].now_ns]

    def clock() -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=now[0] // 1000)

    with tempfile.TemporaryDirectory(prefix="speedups-app-") as tmp:
        compiled = _fresh_beacon(Path(tmp) / "compiled", clock, proxies)
        assert compiled._fast_pixel is not None
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("beacon.app.pixel_recorder", lambda salts: None)
            python = _fresh_beacon(Path(tmp) / "python", clock, proxies)
        python.salts = compiled.salts  # one salt per day for both
        for request in batch * 2:
            now[0] = request.now_ns // 1000 * 1000
            for tracker in (compiled, python):
                sent = asyncio.run(_call(tracker, {**request.scope, "root_path": ""}))
                assert sent[0]["status"] == 200
        assert compiled.stats == python.stats
        assert compiled.stats.recorded == 2 * len(batch)
        assert _beacon_spool(compiled) == _beacon_spool(python)


@compiled_only
def test_behind_a_proxy_the_forwarded_address_is_hashed_in_c() -> None:
    now_ns = DAY_START_NS + 3_600 * 10**9

    def clock() -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=now_ns // 1000)

    recorded_in_c: list[object] = []

    def counting(salts: Any) -> Any:
        record = pixel_recorder(salts)
        assert record is not None

        def counted(*args: Any) -> bool | None:
            done = record(*args)
            recorded_in_c.append(args[5] if done else None)
            return done

        return counted

    headers = [(b"user-agent", CHROME), (b"host", SITE.encode())]
    proxied_scope = {
        "type": "http",
        "method": "GET",
        "path": "/p.gif",
        "query_string": b"u=/a",
        "headers": [*headers, (b"x-forwarded-for", b"198.51.100.9, 203.0.113.7")],
        "client": ("127.0.0.1", 40000),
        "root_path": "",
    }
    direct_scope = {**proxied_scope, "headers": headers, "client": ("203.0.113.7", 40000)}
    with tempfile.TemporaryDirectory(prefix="speedups-proxy-") as tmp:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("beacon.app.pixel_recorder", counting)
            proxied = _fresh_beacon(Path(tmp) / "proxied", clock, ("127.0.0.1",))
            patch.setattr("beacon.app.pixel_recorder", lambda salts: None)
            direct = _fresh_beacon(Path(tmp) / "direct", clock, ())
        direct.salts = proxied.salts
        for _ in range(2):
            asyncio.run(_call(proxied, proxied_scope))
            asyncio.run(_call(direct, direct_scope))
        # The first request fills the caches in Python, the second is recorded in C
        # with the right-most untrusted address of the chain.
        assert recorded_in_c == [None, "203.0.113.7"]
        assert _beacon_spool(proxied) == _beacon_spool(direct)


_FALLBACK = textwrap.dedent(
    """
    import asyncio, logging, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    {prelude}
    from beacon import Beacon
    from beacon.events import read_row_binary
    from beacon.pageviews import SPEEDUPS
    from beacon.spool import sealed_segments

    tracker = Beacon("chdb://" + sys.argv[1] + "/ch", site="mypharm.fr",
                     spool_dir=sys.argv[1] + "/spool", ingest="external")
    scope = {{"type": "http", "method": "GET", "path": "/p.gif", "root_path": "",
              "query_string": b"u=/fallback", "client": ("192.0.2.9", 1),
              "headers": [(b"user-agent", b"Mozilla/5.0 Firefox/120.0")]}}

    async def receive():
        return {{"type": "http.request", "body": b""}}

    async def send(message):
        return None

    for _ in range(3):
        asyncio.run(tracker.app(scope, receive, send))
    tracker.close()
    rows = b"".join(s.read().data for owner in tracker.spool_root.iterdir()
                    if owner.name.startswith("w-") for s in sealed_segments(owner))
    print(SPEEDUPS, tracker.stats.recorded, [e.path for e in read_row_binary(rows)])
    """
)


@pytest.mark.parametrize(
    ("prelude", "environment", "logged"),
    [
        ("", {"BEACON_SPEEDUPS": "0"}, "BEACON_SPEEDUPS=0: page views take the pure-Python path"),
        (
            "sys.modules['beacon._speedups'] = None",
            {},
            "beacon._speedups is not built: page views take the pure-Python path",
        ),
    ],
    ids=["disabled", "missing"],
)
def test_without_the_extension_the_python_path_records(
    tmp_path: Path, prelude: str, environment: dict[str, str], logged: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _FALLBACK.format(prelude=prelude), str(tmp_path)],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["False", "3", "['/fallback',", "'/fallback',", "'/fallback']"]
    assert logged in result.stderr


@compiled_only
def test_the_recorder_reads_the_system_clock_itself() -> None:
    """Given ``time.time_ns``, the recorder reads the same clock without calling it."""
    with tempfile.TemporaryDirectory(prefix="speedups-") as tmp:
        root = Path(tmp)
        today = datetime.now(UTC).date()
        salts_file = root / "daily-salts.json"
        salts_file.write_text(
            json.dumps({(today + timedelta(days=n)).isoformat(): "ab" * 16 for n in (-1, 0, 1)})
        )
        side = _side(root / "spool", salts_file)
        recorder = bound_pixel_recorder(time.time_ns, side.encoder, side.salts, side.spool)
        assert recorder is not None
        request = Request([(b"user-agent", CHROME)], b"u=/now", ("192.0.2.7", 1), time.time_ns())
        _python_path(side.encoder, side.salts, side.spool, request)
        before = time.time_ns()
        assert recorder(request.scope) is True
        after = time.time_ns()
        events = list(read_row_binary(_spooled(side.spool_dir)))
    assert [event.path for event in events] == ["/now", "/now"]
    stamp = epoch_ns(events[1].ts)
    # Stored to the millisecond.
    assert before // 1_000_000 * 1_000_000 <= stamp <= after


@compiled_only
def test_the_spool_keeps_what_an_append_touches_in_c_fields(tmp_path: Path) -> None:
    spool_dir = SpoolDir(tmp_path, segment_max_bytes=65536, max_bytes=1 << 20)
    spool = spool_dir.spool("events", ["a"])
    assert isinstance(spool_dir, speedups.SpoolDirFields)
    assert isinstance(spool, speedups.SpoolFields)
    assert type(spool_dir.stats) is speedups.SpoolStats
    assert type(spool_dir.appends_lock) is speedups.AppendsLock
    assert spool._open is None
    assert spool._dirty is False
    assert spool.append(b"x\n")
    assert isinstance(spool._open, speedups.SegmentFields)
    assert spool._dirty is True
    header = len(b"a\n")
    assert (spool._open.size, spool._open.rows, spool._open.offsets) == (header + 2, 0, 0)
    # The open segment's memory is held for the compiled append: not closed under it.
    with pytest.raises(BufferError):
        spool._open.mapping.close()
    with pytest.raises(RuntimeError, match="held already"):
        spool._open.hold(spool._open.mapping)
    encoder = PageviewEncoder(SITE, [SITE])
    assert isinstance(encoder, speedups.EncoderFields)
    assert encoder._day_number == -1
    with pytest.raises(TypeError):
        encoder._day_number = None  # type: ignore[assignment]
    stats = spool_dir.stats
    assert stats_dict(stats) == {
        "accepted": 1,
        "dropped": 0,
        "write_errors": 0,
        "sealed": 0,
        "bytes_used": header + 2,
    }
    assert repr(stats) == (
        f"SpoolStats(accepted=1, dropped=0, write_errors=0, sealed=0, bytes_used={header + 2})"
    )
    assert stats == speedups.SpoolStats(accepted=1, bytes_used=header + 2)
    assert stats != speedups.SpoolStats()
    with pytest.raises(TypeError):
        hash(stats)
    # A bound of the directory's, lowered in place, is seen by the next append.
    spool_dir.max_line_bytes = 1
    assert not spool.append(b"yy\n")
    assert stats.dropped == 1
    # The fields are integers: anything else is refused with a clear error, nothing changed.
    with pytest.raises(TypeError):
        stats.accepted = "2"  # type: ignore[assignment]
    with pytest.raises(OverflowError):
        stats.accepted = 1 << 64
    with pytest.raises(TypeError):
        spool_dir.max_bytes = 1.5  # type: ignore[assignment]
    with pytest.raises(TypeError):
        spool._dirty = 1  # type: ignore[assignment]
    assert stats.accepted == 1
    spool_dir.close()
    assert stats.sealed == 1


@pytest.mark.parametrize(
    "make_lock",
    [threading.Lock, *([speedups.AppendsLock] if speedups is not None else [])],
    ids=lambda make: make.__name__,
)
def test_the_appends_lock_is_a_lock(make_lock: Any) -> None:
    """The compiled lock answers as ``threading.Lock`` does (run against both)."""
    lock = make_lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(blocking=False) is False
    started = time.monotonic()
    assert lock.acquire(timeout=0.05) is False
    assert time.monotonic() - started >= 0.04
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(False, 1)
    with pytest.raises(ValueError, match="timeout value must be positive"):
        lock.acquire(timeout=-2)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()
    with pytest.raises(KeyError), lock:
        raise KeyError("inside")
    assert not lock.locked()
    # A thread waiting for the lock lets the others run.
    lock.acquire()
    waited: list[bool] = []
    worker = threading.Thread(target=lambda: waited.append(lock.acquire()))
    worker.start()
    counted = sum(1 for _ in range(200_000))
    assert counted == 200_000
    assert worker.is_alive()
    assert not waited
    lock.release()
    worker.join(5)
    assert waited == [True]
    lock.release()


@compiled_only
def test_the_compiled_front_answers_the_pixel_and_hands_on_the_rest(tmp_path: Path) -> None:
    tracker = _fresh_beacon(tmp_path, lambda: datetime.now(UTC), ())
    front = tracker.app
    assert isinstance(front, speedups.PixelFront)
    assert front.beacon is tracker
    # How servers tell an ASGI 3 app (uvicorn's auto interface, hypercorn, asgiref).
    assert inspect.iscoroutinefunction(front.__call__)
    assert asyncio.iscoroutinefunction(front.__call__)
    config = uvicorn.Config(front)
    config.load()
    assert config.interface == "asgi3"
    pixel = {"type": "http", "method": "GET", "path": "/p.gif", "headers": [], "client": None}
    # The first request starts the beacon (the Python path); the front answers the next.
    assert front.recorder is None
    python_sent = asyncio.run(_call(tracker, {**pixel, "query_string": b"u=/a"}))
    assert isinstance(front.recorder, speedups.Recorder)
    compiled_sent = asyncio.run(_call(tracker, {**pixel, "query_string": b"u=/a"}))
    assert isinstance(front({**pixel, "query_string": b"u=/a"}, None, None), speedups.PixelAnswer)
    assert compiled_sent == python_sent
    assert compiled_sent[1]["body"] == TRANSPARENT_GIF
    # Each answer gets messages and a header list of its own (middleware may change them).
    assert compiled_sent[0] is not python_sent[0]
    assert compiled_sent[0]["headers"] is not asyncio.run(_call(tracker, pixel))[0]["headers"]
    assert (tracker.stats.requests, tracker.stats.recorded) == (4, 4)
    # Mounted: the path under the root path; anything else is the beacon's.
    mounted = {**pixel, "root_path": "/b", "path": "/b/p.gif", "query_string": b"u=/m"}
    assert asyncio.run(_call(tracker, mounted))[1]["body"] == TRANSPARENT_GIF
    assert tracker.stats.recorded == 5
    assert asyncio.run(_call(tracker, {**pixel, "method": "HEAD"}))[1]["body"] == b""
    assert asyncio.run(_call(tracker, {**pixel, "path": "/p.gifx"}))[0]["status"] == 404
    script = asyncio.run(_call(tracker, {**pixel, "path": "/beacon.js"}))
    assert script[0]["status"] == 200
    assert (tracker.stats.requests, tracker.stats.recorded) == (6, 5)
    # A scope the compiled recorder leaves (odd headers) is recorded by the Python path.
    odd = {**pixel, "headers": ((b"user-agent", b"x"),), "query_string": b"u=/odd"}
    assert asyncio.run(_call(tracker, odd))[1]["body"] == TRANSPARENT_GIF
    assert tracker.stats.recorded == 6
    paths = [event.path for event in read_row_binary(_beacon_spool(tracker))]
    assert paths == ["/a", "/a", "/a", "", "/m", "/odd"]
    # Dropped (stopped), every request is the beacon's again.
    assert front.recorder is None
    with pytest.raises(TypeError):
        front.recorder = object()


@compiled_only
def test_a_failing_recorder_is_counted_and_the_pixel_still_answers(tmp_path: Path) -> None:
    broken = [False]

    def clock() -> datetime:
        if broken[0]:
            raise RuntimeError("clock gone")
        return datetime.now(UTC)

    tracker = _fresh_beacon(tmp_path, clock, ())
    pixel = {"type": "http", "method": "GET", "path": "/p.gif", "headers": []}
    asyncio.run(_call(tracker, {**pixel, "query_string": b"u=/a"}))
    broken[0] = True
    sent = asyncio.run(_call(tracker, {**pixel, "query_string": b"u=/a"}))
    assert sent[1]["body"] == TRANSPARENT_GIF
    assert (tracker.stats.requests, tracker.stats.recorded, tracker.stats.bad_requests) == (
        2,
        1,
        1,
    )
    tracker.close(timeout=5.0)


@compiled_only
def test_the_compiled_answer_awaits_a_send_that_suspends(tmp_path: Path) -> None:
    tracker = _fresh_beacon(tmp_path, lambda: datetime.now(UTC), ())
    pixel = {"type": "http", "method": "GET", "path": "/p.gif", "headers": []}
    asyncio.run(_call(tracker, pixel))
    front = tracker.app

    async def scenario() -> tuple[list[str], list[str], str]:
        sent: list[str] = []

        async def slow_send(message: dict[str, Any]) -> None:
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            sent.append(message["type"])

        await front(pixel, None, slow_send)
        # Cancelled while its first message is being sent: nothing more is sent.
        cancelled: list[str] = []

        async def stuck_send(message: dict[str, Any]) -> None:
            cancelled.append(message["type"])
            await asyncio.sleep(30)

        task = asyncio.ensure_future(front(pixel, None, stuck_send))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def failing_send(message: dict[str, Any]) -> None:
            raise ConnectionResetError("gone")

        with pytest.raises(ConnectionResetError):
            await front(pixel, None, failing_send)
        return sent, cancelled, "ok"

    sent, cancelled, _ = asyncio.run(scenario())
    assert sent == ["http.response.start", "http.response.body"]
    assert cancelled == ["http.response.start"]
    # Driven by hand, as a generator-based runner would: send(), throw() and close().
    answer = front(pixel, None, lambda message: _Suspending())
    assert answer.send(None) == "suspended"
    # The start message's sender returns; the body's suspends in turn, then returns.
    assert answer.send(None) == "suspended"
    with pytest.raises(StopIteration):
        answer.send(None)
    answer = front(pixel, None, lambda message: _Suspending())
    assert next(iter(answer.__await__())) == "suspended"
    with pytest.raises(ValueError, match="thrown"):
        answer.throw(ValueError("thrown"))
    answer = front(pixel, None, lambda message: _Suspending())
    answer.send(None)
    answer.close()
    with pytest.raises(StopIteration):
        answer.send(None)
    tracker.close(timeout=5.0)


class _Suspending:
    """An awaitable that suspends once (yielding ``"suspended"``), then returns."""

    def __await__(self) -> Iterator[str]:
        yield "suspended"


@compiled_only
def test_the_recorders_memo_gives_the_rows_of_the_python_path() -> None:
    """More pages than the memo's slots, each seen three times in a shuffled order."""
    queries = [f"u=/produit-{n}&utm_source=news".encode() for n in range(150)]
    agents = [CHROME, b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"]
    order = [(query, agents[n % 2]) for n, query in enumerate(queries)] * 3
    random.Random(7).shuffle(order)
    for bound, direct in _sides([b"s" * 16]):
        recorder = bound_pixel_recorder(
            lambda: DAY_START_NS + 5, bound.encoder, bound.salts, bound.spool
        )
        assert recorder is not None
        answers = []
        for query, agent in order:
            request = Request([(b"user-agent", agent)], query, ("192.0.2.1", 1), DAY_START_NS + 5)
            answer = recorder(request.scope)
            if answer is None:
                _python_path(bound.encoder, bound.salts, bound.spool, request)
            answers.append(answer)
            _python_path(direct.encoder, direct.salts, direct.spool, request)
        assert answers.count(True) == 2 * len(queries)
        # Emptied caches empty the memo: a request it holds goes to Python again.
        query, agent = order[-1]
        request = Request([(b"user-agent", agent)], query, ("192.0.2.1", 1), DAY_START_NS + 5)
        bound.encoder._pages.clear()
        assert recorder(request.scope) is None
        assert _spooled(bound.spool_dir) == _spooled(direct.spool_dir)


@compiled_only
def test_threads_recording_while_the_spool_lock_is_contended_write_whole_rows() -> None:
    """Threads share one recorder (a WSGI app's); waiting for the spool's lock lets
    the others run and replace memo entries: every row still comes out whole and right."""
    queries = [f"u=/fiche-{n}".encode() for n in range(120)]
    requests = [
        Request([(b"user-agent", CHROME)], query, ("192.0.2.3", 1), DAY_START_NS + 11)
        for query in queries
    ]
    for bound, direct in _sides([b"s" * 16]):
        recorder = bound_pixel_recorder(
            lambda: DAY_START_NS + 11, bound.encoder, bound.salts, bound.spool
        )
        assert recorder is not None
        for request in requests:
            _python_path(bound.encoder, bound.salts, bound.spool, request)
        lock = bound.spool._lock
        stop = threading.Event()

        def contend(stop: threading.Event = stop, lock: Any = lock) -> None:
            while not stop.is_set():
                with lock:
                    time.sleep(0.0005)
                time.sleep(0.0001)

        def record(offset: int, results: list[bool | None], recorder: Any = recorder) -> None:
            for n in range(1500):
                results.append(recorder(requests[(offset + 7 * n) % len(requests)].scope))

        contender = threading.Thread(target=contend)
        contender.start()
        outcomes: list[list[bool | None]] = [[] for _ in range(4)]
        workers = [
            threading.Thread(target=record, args=(offset, outcomes[offset])) for offset in range(4)
        ]
        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(60)
        finally:
            sys.setswitchinterval(previous)
            stop.set()
            contender.join(10)
        assert all(result is True for results in outcomes for result in results)
        for request in requests:
            _python_path(direct.encoder, direct.salts, direct.spool, request)
        for offset in range(4):
            for n in range(1500):
                _python_path(
                    direct.encoder,
                    direct.salts,
                    direct.spool,
                    requests[(offset + 7 * n) % len(requests)],
                )
        ours = sorted(event.path for event in read_row_binary(_spooled(bound.spool_dir)))
        theirs = sorted(event.path for event in read_row_binary(_spooled(direct.spool_dir)))
        assert len(ours) == len(requests) + 4 * 1500
        assert ours == theirs
