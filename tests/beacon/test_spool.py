"""The on-disk spool: append, seal, torn lines, overflow policy, orphan claiming."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from beacon.exceptions import ConfigurationError
from beacon.spool import (
    OPEN_SUFFIX,
    SEALED_SUFFIX,
    SpoolDir,
    claim_orphans,
    owner_dirs,
    sealed_segments,
)

COLUMNS = ("a", "b")


def test_lines_are_on_disk_when_append_returns(tmp_path: Path) -> None:
    spool_dir = SpoolDir(tmp_path)
    spool = spool_dir.spool("things", COLUMNS)
    assert spool.append(b"1\tone\n")
    (open_file,) = spool.directory.glob(f"*{OPEN_SUFFIX}")
    assert open_file.read_bytes().rstrip(b"\0") == b"a\tb\n1\tone\n"
    spool_dir.close()
    (segment,) = sealed_segments(spool_dir.path)
    assert segment.table == "things"
    assert segment.read() == (["a", "b"], b"1\tone\n", 0)
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
    lines = sum(s.read()[1].count(b"\n") for s in sealed_segments(spool_dir.path))
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
    stored = sum(s.read()[1].count(b"\n") for s in sealed_segments(spool_dir.path))
    assert stored == accepted


def test_torn_last_line_is_left_out(tmp_path: Path) -> None:
    segment_file = tmp_path / "w-1-aa" / "things" / f"20260101T000000.000000-1-x{SEALED_SUFFIX}"
    segment_file.parent.mkdir(parents=True)
    segment_file.write_bytes(b"a\tb\n1\tone\n2\ttw" + b"\0" * 100)
    (segment,) = sealed_segments(tmp_path / "w-1-aa")
    assert segment.read() == (["a", "b"], b"1\tone\n", 4)


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
        assert segment.read()[1] == b"2\tdead\n"
        segment.path.unlink()
    assert owner_dirs(tmp_path) == [live.path]
    with claim_orphans(tmp_path) as orphans:
        assert orphans == []
    live.release()
    (kept,) = sealed_segments(live.path)
    assert kept.read()[1] == b"1\tlive\n"
