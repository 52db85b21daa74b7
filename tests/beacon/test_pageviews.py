"""The fast pixel encoder writes exactly the row of the plain PixelEvent path."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from beacon.anonymize import FileSalts
from beacon.events import read_row_binary
from beacon.pageviews import PageHit, PageviewEncoder, epoch_ns, hit_from_query, page_event

SALT = b"k" * 32
SALTS = FileSalts(Path(tempfile.mkdtemp(prefix="salts-")) / "salts.json")
AGENTS = [
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/120.0 Safari/537.36",
    b"Googlebot/2.1 (+http://www.google.com/bot.html)",
    b"\xff\xfe broken \t agent",
    b"",
]


def _reference(
    query: bytes, referer: bytes, host: bytes, agent: bytes, now: datetime, salt: bytes = SALT
) -> bytes:
    own = ("mypharm.fr", host.decode("latin-1").partition(":")[0].lower())
    return page_event(
        hit_from_query(query, referer),
        now=now,
        site="mypharm.fr",
        ip="192.0.2.5",
        user_agent=agent[:512].decode("utf-8", "replace"),
        salt=salt,
        own_hosts=[h for h in own if h],
    ).to_row_binary()


@settings(max_examples=300, deadline=None)
@given(
    page=st.text(max_size=60),
    referrer=st.text(max_size=40),
    utm=st.text(max_size=20),
    name=st.text(max_size=20),
    kind=st.sampled_from(["pageview", "event", "open", ""]),
    referer=st.binary(max_size=40),
    agent=st.sampled_from(AGENTS),
    millis=st.integers(min_value=0, max_value=10**10),
)
def test_encoder_row_equals_the_event_row(
    page: str,
    referrer: str,
    utm: str,
    name: str,
    kind: str,
    referer: bytes,
    agent: bytes,
    millis: int,
) -> None:
    query = (
        f"u={quote(page)}&r={quote(referrer)}&utm_source={quote(utm)}&n={quote(name)}&k={kind}"
    ).encode()
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=millis * 997)
    encoder = PageviewEncoder("mypharm.fr", ["mypharm.fr"])
    row = encoder.pixel_row(
        now_ns=epoch_ns(now),
        salts=SALTS,
        ip="192.0.2.5",
        user_agent=agent,
        query=query,
        referer=referer,
        host=b"www.mypharm.fr:443",
    )
    salt = SALTS.salt_for(now.date())
    assert row == _reference(query, referer, b"www.mypharm.fr:443", agent, now, salt)
    (event,) = read_row_binary(row)
    assert event.ts == now.replace(microsecond=now.microsecond // 1000 * 1000)


def test_cached_parts_do_not_leak_between_requests() -> None:
    encoder = PageviewEncoder("mypharm.fr", [])
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for n in range(60):
        now = start + timedelta(milliseconds=700 * n)
        query = f"u=/p{n % 5}&utm_campaign=c{n % 4}".encode()
        row = encoder.pixel_row(
            now_ns=epoch_ns(now),
            salts=SALTS,
            ip="192.0.2.5",
            user_agent=AGENTS[n % 3],
            query=query,
            referer=b"",
            host=b"",
        )
        salt = SALTS.salt_for(now.date())
        assert row == _reference(query, b"", b"", AGENTS[n % 3], now, salt)


def test_page_hits_from_the_referer_header_when_no_page_is_given() -> None:
    hit = hit_from_query(b"r=https%3A%2F%2Fduck.example%2F", b"https://mypharm.fr/a?secret=1")
    assert hit == PageHit("https://mypharm.fr/a?secret=1", "https://duck.example/", {})
