"""Fuzzing pixel query strings through the page-view encoder.

Whatever the bytes of the query string, ``Referer`` and ``Host``, the encoder
returns one well-formed ``RowBinary`` row of the ``events`` table (it reads back
as exactly one event, with nothing left over), and no query parameter other
than ``utm_*`` survives in it.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from beacon.events import EVENT_COLUMNS, read_row_binary
from beacon.pageviews import PageviewEncoder
from tests.fuzz.conftest import FUZZ

#: A marker put only in parameters that must never be stored.
SECRET = "zqsecretzq"
NOW_NS = 1_800_000_000_123_000_000


class FixedSalts:
    """One constant salt for every day (the encoder only reads it)."""

    def salt_for(self, day: date) -> bytes:
        """The salt of ``day``."""
        return b"0123456789abcdef"

    def refresh(self) -> None:
        """Nothing to refresh."""


SALTS = FixedSalts()
ENCODER = PageviewEncoder("mypharm.fr", ["mypharm.fr"])
QUERY_CHARS = st.sampled_from("u=r&k=n%2F?#+;utm_source:/\\\t\n\r\x00é\u2028 ab1.")
NAMES = st.sampled_from(
    ["email", "token", "q", "utm", "utm_", "utmsource", "UTM_X", "gclid", "fbclid", "s"]
)


def _row(query: bytes, referer: bytes = b"", host: bytes = b"mypharm.fr") -> dict[str, Any]:
    row = ENCODER.pixel_row(
        now_ns=NOW_NS,
        salts=SALTS,
        ip="192.0.2.7",
        user_agent=b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        query=query,
        referer=referer,
        host=host,
    )
    (event,) = read_row_binary(row)
    assert event.to_row_binary() == row
    return {name: getattr(event, name) for name in EVENT_COLUMNS}


@FUZZ
@given(
    st.binary(max_size=300) | st.text(QUERY_CHARS, max_size=200).map(str.encode),
    st.binary(max_size=80),
    st.binary(max_size=40),
)
def test_any_request_gives_one_well_formed_row(query: bytes, referer: bytes, host: bytes) -> None:
    _row(query, referer, host)


@FUZZ
@given(
    st.text(max_size=40),
    NAMES,
    st.text(max_size=30),
    st.sampled_from(["source", "medium", "campaign", "term", "content"]),
    st.text(max_size=40),
    st.booleans(),
)
def test_only_utm_parameters_survive(
    path: str, name: str, noise: str, utm: str, utm_value: str, fragment: bool
) -> None:
    secret = SECRET + noise
    page = f"https://mypharm.fr/{quote(path)}?{name}={quote(secret)}&utm_{utm}={quote(utm_value)}"
    if fragment:
        page += "#" + quote(secret)
    referrer = f"https://duck.example/search?{name}={quote(secret)}"
    query = f"u={quote(page)}&r={quote(referrer)}&{name}={quote(secret)}".encode()
    stored = _row(query)
    assert SECRET not in repr(stored)
    assert stored["referrer_host"] == "duck.example"
    assert stored["path"].startswith("/")
    if utm_value.strip() and all(ch.isprintable() for ch in utm_value):
        assert stored[f"utm_{utm}"]
