"""Anonymization rules: visitor hash, page path, referrer host, client IP, daily salts."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from beacon.anonymize import (
    FileSalts,
    StoreSalts,
    TrustedProxies,
    client_ip,
    page_path,
    referrer_host,
    visitor_hash,
)
from beacon.store import Store

SALT = b"s" * 32


def test_visitor_hash_is_keyed_by_the_salt_and_covers_each_part() -> None:
    base = visitor_hash(SALT, "a.fr", "192.0.2.1", "UA")
    assert base == visitor_hash(SALT, "a.fr", "192.0.2.1", "UA")
    assert 0 <= base < 2**64
    others = {
        visitor_hash(b"t" * 32, "a.fr", "192.0.2.1", "UA"),
        visitor_hash(SALT, "b.fr", "192.0.2.1", "UA"),
        visitor_hash(SALT, "a.fr", "192.0.2.2", "UA"),
        visitor_hash(SALT, "a.fr", "192.0.2.1", "UB"),
    }
    assert base not in others
    assert len(others) == 4


@pytest.mark.parametrize(
    ("url", "path", "utm"),
    [
        pytest.param("/produits", "/produits", {}, id="path"),
        pytest.param("https://a.fr/x?email=a%40b.fr&id=3#frag", "/x", {}, id="query-dropped"),
        pytest.param(
            "https://a.fr/x?utm_source=nl&UTM_MEDIUM=mail&utm_source=other&ref=1",
            "/x",
            {"utm_source": "nl", "utm_medium": "mail"},
            id="utm-kept",
        ),
        pytest.param("https://a.fr", "/", {}, id="root"),
        pytest.param("relative/page", "/relative/page", {}, id="relative"),
        pytest.param("/caf%C3%A9", "/café", {}, id="decoded"),
        pytest.param("http://[bad", "", {}, id="malformed"),
        pytest.param("", "", {}, id="empty"),
        pytest.param("/a\x00\nb", "/ab", {}, id="control-characters"),
    ],
)
def test_page_path_keeps_only_the_path_and_utm(url: str, path: str, utm: dict[str, str]) -> None:
    assert page_path(url) == (path, utm)


def test_long_paths_are_cut() -> None:
    path, _ = page_path("/" + "a" * 5000)
    assert len(path) == 1024


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        pytest.param("https://www.google.com/search?q=x", "www.google.com", id="search"),
        pytest.param("https://Duck.Example:8443/a", "duck.example", id="port-and-case"),
        pytest.param("https://user:pw@evil.example/", "evil.example", id="userinfo"),
        pytest.param("https://mypharm.fr/a", "", id="own-site"),
        pytest.param("https://www.mypharm.fr/a", "", id="own-site-www"),
        pytest.param("https://blog.mypharm.fr/", "", id="own-subdomain"),
        pytest.param("https://notmypharm.fr/", "notmypharm.fr", id="lookalike"),
        pytest.param("javascript:alert(1)", "", id="javascript"),
        pytest.param("http://[::1", "", id="malformed"),
        pytest.param("", "", id="empty"),
    ],
)
def test_referrer_is_reduced_to_a_foreign_host(referrer: str, host: str) -> None:
    assert referrer_host(referrer, ["mypharm.fr"]) == host


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        pytest.param("192.0.2.9", b"198.51.100.1", [], "192.0.2.9", id="header-ignored"),
        pytest.param("10.0.0.2", b"198.51.100.1", ["10.0.0.0/8"], "198.51.100.1", id="trusted"),
        pytest.param(
            "10.0.0.2",
            b"6.6.6.6, 198.51.100.1, 10.0.0.3",
            ["10.0.0.0/8"],
            "198.51.100.1",
            id="rightmost-untrusted",
        ),
        pytest.param(
            "192.0.2.9", b"198.51.100.1", ["10.0.0.0/8"], "192.0.2.9", id="untrusted-peer"
        ),
        pytest.param("10.0.0.2", None, ["10.0.0.0/8"], "10.0.0.2", id="no-header"),
        pytest.param(None, b"198.51.100.1", ["*"], "198.51.100.1", id="unix-socket"),
    ],
)
def test_client_ip_reads_proxy_headers_only_from_trusted_peers(
    peer: str | None, forwarded: bytes | None, proxies: list[str], expected: str
) -> None:
    headers = [(b"x-forwarded-for", forwarded)] if forwarded is not None else []
    assert client_ip(peer, headers, TrustedProxies(proxies)) == expected


def test_other_proxy_headers_can_be_named() -> None:
    proxies = TrustedProxies(["*"], header="X-Real-IP")
    assert client_ip("10.0.0.1", [(b"x-real-ip", b"198.51.100.4")], proxies) == "198.51.100.4"


def test_nodes_racing_for_a_salt_converge(store: Store) -> None:
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    nodes = [
        StoreSalts(Store(f"chdb://{store.location.path}?database={store.database}"))
        for _ in range(4)
    ]
    provisional = [node.salt_for(now.date()) for node in nodes]
    assert len(set(provisional)) == 4
    threads = [threading.Thread(target=node.refresh, args=(now,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for node in nodes:
        node.refresh(now)
    agreed = {node.salt_for(now.date()) for node in nodes}
    assert len(agreed) == 1
    assert agreed.pop() in provisional


def test_salts_older_than_yesterday_are_deleted(store: Store) -> None:
    salts = StoreSalts(store)
    day0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for offset in range(4):
        salts.refresh(day0 + timedelta(days=offset))
    days = [row[0] for row in store.query_rows("SELECT DISTINCT day FROM daily_salts ORDER BY day")]
    assert days == [date(2026, 11, 3), date(2026, 11, 4)]
    assert salts.salt_for(date(2026, 11, 3)) != salts.salt_for(date(2026, 11, 4))


def test_tomorrows_salt_is_ready_before_midnight(store: Store) -> None:
    salts = StoreSalts(store)
    salts.refresh(datetime(2026, 11, 2, 23, 59, 30, tzinfo=UTC))
    other = StoreSalts(store)
    other.refresh(datetime(2026, 11, 3, 0, 0, 1, tzinfo=UTC))
    assert salts.salt_for(date(2026, 11, 3)) == other.salt_for(date(2026, 11, 3))


def test_worker_processes_share_salts_through_a_file(tmp_path: Path) -> None:
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    first, second = FileSalts(tmp_path / "salts.json"), FileSalts(tmp_path / "salts.json")
    first.refresh(now)
    second.refresh(now)
    assert first.salt_for(now.date()) == second.salt_for(now.date())
    assert (tmp_path / "salts.json").stat().st_mode & 0o777 == 0o600
    first.refresh(now + timedelta(days=3))
    assert now.date().isoformat() not in (tmp_path / "salts.json").read_text()
