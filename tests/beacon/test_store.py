"""Store URLs and the errors a store that cannot be used raises."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from beacon.exceptions import (
    EmbeddedEngineMissing,
    EmbeddedLocked,
    EmbeddedPathConflict,
    InvalidStoreURL,
    StoreUnavailable,
)
from beacon.store import (
    DEFAULT_EMBEDDED_DIR,
    EMBEDDED_ENGINE_CACHES,
    ENV_URL,
    Store,
    default_url,
    parse_store_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "chdb:///srv/site/ch?database=stats",
            {"kind": "chdb", "path": "/srv/site/ch", "database": "stats"},
            id="embedded",
        ),
        pytest.param(
            "chdb:///srv/site/ch", {"kind": "chdb", "database": "beacon"}, id="default-database"
        ),
        pytest.param(
            "http://reader:p%40ss@ch.internal:8123/analytics",
            {
                "kind": "http",
                "host": "ch.internal",
                "port": 8123,
                "username": "reader",
                "password": "p@ss",
                "database": "analytics",
                "secure": False,
                "cluster": None,
            },
            id="server",
        ),
        pytest.param(
            "https://ch.example.com/beacon?cluster=main",
            {
                "kind": "http",
                "port": 8443,
                "secure": True,
                "cluster": "main",
                "username": "default",
            },
            id="cluster",
        ),
    ],
)
def test_urls_are_parsed(url: str, expected: dict[str, object]) -> None:
    location = parse_store_url(url)
    for name, value in expected.items():
        assert getattr(location, name) == value


def test_relative_embedded_directory_is_resolved_against_the_cwd() -> None:
    assert parse_store_url("chdb:data/ch").path == str(Path("data/ch").resolve())


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("mysql://host/db", id="unknown-scheme"),
        pytest.param("chdb://host/dir", id="chdb-with-host"),
        pytest.param("chdb:///dir?database=bad-name", id="bad-database"),
        pytest.param("chdb:///dir?cluster=main", id="cluster-on-embedded"),
        pytest.param("http://host:8123/a/b", id="two-databases"),
        pytest.param("http://host:99999/db", id="bad-port"),
        pytest.param("http:///db", id="no-host"),
        pytest.param("http://host/db?cluster=bad name", id="bad-cluster"),
        pytest.param("http://host/db?colour=blue", id="unknown-option"),
        pytest.param("http://host/db?mark_cache_size=1", id="engine-option-on-server"),
        pytest.param("chdb:///dir?mark_cache_size=-1", id="negative-cache"),
        pytest.param("chdb:///dir?mark_cache_size=64MiB", id="cache-with-unit"),
        pytest.param("chdb:///dir?mark_cache_size=", id="empty-cache"),
        pytest.param("chdb:///dir?query_condition_cache_size=1e9", id="cache-as-float"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(InvalidStoreURL):
        Store(url)


def test_embedded_engine_caches_are_bounded_and_set_by_the_url() -> None:
    defaults = dict(parse_store_url("chdb:///srv/ch").engine_options)
    assert defaults == EMBEDDED_ENGINE_CACHES
    assert all(size <= 64 << 20 for size in defaults.values())
    chosen = dict(parse_store_url("chdb:///srv/ch?mark_cache_size=268435456").engine_options)
    assert chosen == {**EMBEDDED_ENGINE_CACHES, "mark_cache_size": 268435456}


def test_the_embedded_engine_starts_with_the_urls_cache_sizes(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}?primary_index_cache_size=33554432"
    done = _python(
        f"""
        from beacon.store import Store
        store = Store({url!r})
        for name, value in store.query_rows(
            "SELECT name, value FROM system.server_settings WHERE name LIKE '%cache_size'"
        ):
            print(name, value)
        """
    )
    assert done.returncode == 0, done.stderr
    settings = dict(line.split() for line in done.stdout.splitlines())
    assert settings["primary_index_cache_size"] == "33554432"
    for name, size in EMBEDDED_ENGINE_CACHES.items():
        if name != "primary_index_cache_size":
            assert settings[name] == str(size)


def test_password_never_shows_in_errors_or_repr() -> None:
    with pytest.raises(InvalidStoreURL) as caught:
        Store("http://user:hunter2@host/db?colour=blue")
    assert "hunter2" not in str(caught.value) + caught.value.url
    store = Store("http://user:hunter2@host/db")
    assert "hunter2" not in repr(store)


def test_default_url_comes_from_the_environment_then_data_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_URL, "http://ch:8123/x")
    assert default_url() == "http://ch:8123/x"
    monkeypatch.delenv(ENV_URL)
    assert default_url() == f"chdb://{DEFAULT_EMBEDDED_DIR.resolve()}"


def test_each_database_of_the_embedded_engine_is_its_own(clickhouse_url: str) -> None:
    store = Store(clickhouse_url)
    store.command("CREATE TABLE t (x UInt8) ENGINE = Memory")
    store.command("INSERT INTO t VALUES (7)")
    assert store.query_rows("SELECT x FROM t") == [(7,)]
    assert store.query_rows("SELECT currentDatabase()") == [(store.database,)]


def test_another_embedded_directory_in_this_process_is_refused(
    clickhouse_url: str, tmp_path: Path
) -> None:
    Store(clickhouse_url).connect()
    with pytest.raises(EmbeddedPathConflict) as caught:
        Store(f"chdb://{tmp_path / 'other'}").connect()
    assert caught.value.opened


def test_server_that_does_not_answer_is_unavailable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailable):
        Store(f"http://127.0.0.1:{port}/beacon").connect()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_directory_open_in_another_process_is_locked(tmp_path: Path) -> None:
    directory = tmp_path / "owned"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from beacon.store import open_store
                open_store("chdb://{directory}")
                print("ready", flush=True)
                sys.stdin.read()
            """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
        second = _python(f"""
            from beacon.exceptions import EmbeddedLocked
            from beacon.store import open_store
            try:
                open_store("chdb://{directory}")
            except EmbeddedLocked as exc:
                print("locked:", exc)
        """)
        assert second.stdout.startswith("locked:"), second.stderr
    finally:
        owner.communicate("", timeout=60)
    assert EmbeddedLocked.__doc__


def test_missing_embedded_extra_is_explained(tmp_path: Path) -> None:
    result = _python(f"""
        import sys
        sys.modules["chdb"] = None
        from beacon.exceptions import EmbeddedEngineMissing
        from beacon.store import open_store
        try:
            open_store("chdb://{tmp_path}")
        except EmbeddedEngineMissing as exc:
            print("missing:", exc)
    """)
    assert "missing:" in result.stdout, result.stderr
    assert "embedded" in result.stdout
    assert issubclass(EmbeddedEngineMissing, ImportError)
