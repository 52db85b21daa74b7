"""A chDB directory owned by another process: a clear message naming it, never a traceback.

The command line refuses with exit status 2 and one line saying which
directory is owned and by which process. A served beacon starts anyway (the
pixel always answers): it says so once at start-up, spools, and takes the
store over as soon as the owner is gone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import BIN, ServedBeacon, pixel, spooled_files, stored_paths, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]

OWNER = """
import sys
from beacon.store import open_store
open_store("chdb://{chdb}")
print("owned", flush=True)
sys.stdin.read()
"""


class Owner:
    """Another process holding a chDB directory until :meth:`release`."""

    def __init__(self, chdb: Path) -> None:
        self.chdb = chdb
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(OWNER.format(chdb=chdb))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "owned"

    def release(self) -> None:
        """Let the owner exit (its locks go with it)."""
        if self.process.poll() is None:
            self.process.communicate("", timeout=60)


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Owner]:
    """A chDB directory owned by another live process."""
    holder = Owner(tmp_path / "owned")
    yield holder
    holder.release()


def _message_names_the_owner(text: str, owner: Owner) -> None:
    assert "Traceback" not in text
    assert str(owner.chdb) in text
    assert "another process" in text
    assert str(owner.process.pid) in text


@pytest.mark.parametrize(
    "command",
    [pytest.param(["init-db"], id="init-db"), pytest.param(["ingest", "--once"], id="ingest")],
)
def test_the_command_line_names_the_owned_directory(
    owner: Owner, command: list[str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(BIN / "beacon"), *command, "--url", f"chdb://{owner.chdb}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"beacon {command[0]}: ")
    assert done.stderr.count("\n") == 1
    _message_names_the_owner(done.stderr, owner)


def test_a_served_beacon_says_so_at_start_up_then_takes_over(
    owner: Owner, serve_beacon: Callable[..., ServedBeacon], unused_port: int, tmp_path: Path
) -> None:
    server = serve_beacon(
        unused_port, clickhouse_url=f"chdb://{owner.chdb}", spool_dir=str(tmp_path / "spool")
    )
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=20) as http:
        answered = [f"/locked-{n}" for n in range(50)]
        assert all(pixel(http, path) for path in answered)
    locked = server.health()
    lines = server.log.read_text().splitlines()
    assert "store not ready at start-up, events are spooled meanwhile: " in lines[0] + lines[1]
    for line in lines:
        _message_names_the_owner(line, owner)
    assert locked["schema_ready"] is False
    assert locked["spool_accepted"] == len(answered)

    owner.release()
    wait_until(
        lambda: server.health().get("flushed_rows") == len(answered),
        timeout=90,
        what="the beacon to take the store over",
    )
    server.stop()
    assert "Traceback" not in server.log.read_text()
    assert spooled_files(tmp_path / "spool") == []
    assert stored_paths(owner.chdb) == dict.fromkeys(answered, 1)
