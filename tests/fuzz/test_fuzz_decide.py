"""Fuzzing consent form posts through the engine's decide handler.

Whatever the body and headers, the answer is never a 5xx, no header carries
a control character, and a redirect only ever leads to a path of this site.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from mypharm_consent.engine import ConsentEngine, ConsentRequest
from tests.consent.conftest import FakeClock, make_config
from tests.fuzz.conftest import FUZZ

ENGINE = ConsentEngine(make_config(), clock=FakeClock())
TOKEN = ENGINE.csrf.token()

#: Return paths an attacker would try, and plain noise.
NEXTS = st.sampled_from(
    [
        "/",
        "/panier?x=1#top",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/ok\r\nSet-Cookie: x=1",
        "/ok%0d%0aLocation:%20https://evil.example",
        "/\t/evil.example",
        " //evil.example",
        "/é?q=ü",
        "/" + "a" * 3000,
    ]
) | st.text(max_size=60)
FIELDS = st.sampled_from(["csrf", "action", "category", "next", "lang", "from", "x", ""])
VALUES = st.sampled_from(
    [
        TOKEN,
        "accept_all",
        "reject_all",
        "save",
        "analytics",
        "marketing",
        "necessary",
        "fr",
        "en",
        "preferences",
        "banner",
    ]
) | st.text(max_size=30)


def _encode(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()


BODIES = st.one_of(
    st.binary(max_size=200),
    st.lists(st.tuples(FIELDS, VALUES), max_size=8).map(_encode),
    st.builds(
        lambda action, nxt, extra: _encode(
            [("csrf", TOKEN), ("action", action), ("next", nxt), *extra]
        ),
        st.sampled_from(["accept_all", "reject_all", "save"]),
        NEXTS,
        st.lists(st.tuples(FIELDS, VALUES), max_size=4),
    ),
    st.builds(
        lambda raw: b"csrf=" + TOKEN.encode() + b"&action=save&next=" + raw,
        st.binary(max_size=60),
    ),
)
HEADER_SETS = st.fixed_dictionaries(
    {"content-type": st.sampled_from(["application/x-www-form-urlencoded"])},
    optional={
        "origin": st.sampled_from(["https://shop.example", "null", "https://evil.example", "::"]),
        "sec-fetch-site": st.sampled_from(["same-origin", "cross-site", "none"]),
        "accept": st.sampled_from(["application/json", "text/html", "*/*"]),
        "accept-language": st.text(max_size=20),
        "cookie": st.text(max_size=60),
        "user-agent": st.text(max_size=40),
        "sec-gpc": st.sampled_from(["1", "0", " 1 "]),
    },
)


def _assert_same_site(location: str) -> None:
    for form in (location, unquote(location)):
        assert form.startswith("/"), location
        assert not form.startswith("//"), location
        assert "\\" not in form, location
    parts = urlsplit(location)
    assert not parts.scheme, location
    assert not parts.netloc, location


@FUZZ
@given(BODIES, HEADER_SETS)
def test_any_post_is_answered_safely(body: bytes, headers: dict[str, str]) -> None:
    pairs = [("host", "shop.example"), *headers.items()]
    request = ConsentRequest.from_pairs("POST", "/_consent/decide", "", pairs)
    response = ENGINE.handle(request, body)
    assert response.status < 500
    for name, value in response.headers:
        assert not any(ord(c) < 0x20 and c != "\t" for c in name + value), (name, value)
    if 300 <= response.status < 400:
        locations = [value for name, value in response.headers if name == "location"]
        assert len(locations) == 1
        _assert_same_site(locations[0])


@FUZZ
@given(NEXTS)
def test_a_valid_decision_always_returns_to_this_site(next_path: str) -> None:
    body = _encode([("csrf", TOKEN), ("action", "reject_all"), ("next", next_path)])
    request = ConsentRequest.from_pairs(
        "POST",
        "/_consent/decide",
        "",
        [("host", "shop.example"), ("content-type", "application/x-www-form-urlencoded")],
    )
    response = ENGINE.handle(request, body)
    assert response.status == 303
    _assert_same_site(dict(response.headers)["location"])
