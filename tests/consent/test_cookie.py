"""The consent cookie codec: signing, rotation, expiry, revisions, hostile values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mypharm_consent import Category, ConfigurationError
from mypharm_consent.cookie import (
    MAX_COOKIE_BYTES,
    ConsentCookie,
    cookie_values,
    new_consent_id,
)

from .conftest import OLD_SECRET, SECRET, FakeClock, make_config

ALL = frozenset({"necessary", "preferences", "analytics", "marketing"})


def codec(clock: FakeClock, **overrides: object) -> ConsentCookie:
    return ConsentCookie(make_config(**overrides), clock=clock)


def test_round_trip(clock: FakeClock) -> None:
    cookie = codec(clock)
    consent_id = new_consent_id()
    value = cookie.encode(consent_id, frozenset({"necessary", "analytics"}))
    payload = cookie.decode(value)
    assert payload is not None
    assert payload.consent_id == consent_id
    assert payload.revision == 1
    assert payload.granted == {"necessary", "analytics"}
    assert payload.decided_at == datetime.fromtimestamp(clock.now, UTC)
    state = cookie.state(payload)
    assert state.decided
    assert state.allows("analytics")
    assert not state.allows("marketing")


def test_consent_ids_are_random_and_url_safe() -> None:
    ids = {new_consent_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


def test_refusal_is_encoded_too(clock: FakeClock) -> None:
    cookie = codec(clock)
    payload = cookie.decode(cookie.encode(new_consent_id(), frozenset({"necessary"})))
    assert payload is not None
    assert payload.granted == {"necessary"}
    assert cookie.state(payload).decided


def test_the_cookie_stays_under_300_bytes_with_everything_granted(clock: FakeClock) -> None:
    long_names = [
        Category(
            f"category-number-{i:02d}",
            label={"fr": "x", "en": "x"},
            description={"fr": "x", "en": "x"},
        )
        for i in range(6)
    ]
    cookie = codec(clock, categories=long_names)
    names = frozenset(c.name for c in long_names) | {"necessary"}
    header = cookie.set_cookie_header(cookie.encode(new_consent_id(), names))
    assert len(header.split(";")[0]) < MAX_COOKIE_BYTES
    default = codec(clock)
    assert len(default.encode(new_consent_id(), ALL)) < 120


def test_a_configuration_whose_cookie_cannot_fit_is_refused(clock: FakeClock) -> None:
    many = [
        Category(
            f"a-rather-long-category-name-{i:02d}",
            label={"fr": "x", "en": "x"},
            description={"fr": "x", "en": "x"},
        )
        for i in range(10)
    ]
    with pytest.raises(ConfigurationError, match="300 bytes"):
        codec(clock, categories=many)


def test_every_single_character_change_is_detected(clock: FakeClock) -> None:
    cookie = codec(clock)
    value = cookie.encode("A" * 22, frozenset({"necessary"}))
    for position, char in enumerate(value):
        replacement = "B" if char != "B" else "C"
        tampered = value[:position] + replacement + value[position + 1 :]
        assert cookie.decode(tampered) is None, position


def test_key_rotation_newest_first(clock: FakeClock) -> None:
    old = codec(clock, secret_keys=[OLD_SECRET])
    rotated = codec(clock, secret_keys=[SECRET, OLD_SECRET])
    new_only = codec(clock, secret_keys=[SECRET])
    old_value = old.encode(new_consent_id(), ALL)
    assert rotated.decode(old_value) is not None
    assert new_only.decode(old_value) is None
    rotated_value = rotated.encode(new_consent_id(), ALL)
    assert new_only.decode(rotated_value) is not None
    assert old.decode(rotated_value) is None


def test_expiry_follows_the_configured_consent_life(clock: FakeClock) -> None:
    cookie = codec(clock, consent_max_age=timedelta(days=10))
    value = cookie.encode(new_consent_id(), ALL)
    clock.advance(10 * 24 * 3600)
    assert cookie.decode(value) is not None
    clock.advance(1)
    assert cookie.decode(value) is None


def test_a_cookie_from_the_future_is_refused(clock: FakeClock) -> None:
    cookie = codec(clock)
    value = cookie.encode(new_consent_id(), ALL)
    clock.advance(-3600)
    assert cookie.decode(value) is None


def test_an_older_revision_is_genuine_but_undecided(clock: FakeClock) -> None:
    previous = codec(clock, policy_revision=2)
    current = codec(clock, policy_revision=3)
    consent_id = new_consent_id()
    value = previous.encode(consent_id, ALL)
    payload = current.read(f"mypharm_consent={value}")
    assert payload is not None
    assert payload.consent_id == consent_id
    assert payload.revision == 2
    assert current.state(payload).decided is False


def test_categories_no_longer_configured_are_dropped(clock: FakeClock) -> None:
    wide = codec(clock)
    narrow = codec(clock, categories=[])
    payload = narrow.decode(wide.encode(new_consent_id(), ALL))
    assert payload is not None
    assert payload.granted == {"necessary"}


def test_a_cookie_signed_for_another_purpose_is_refused(clock: FakeClock) -> None:
    from itsdangerous import TimestampSigner

    foreign = TimestampSigner(SECRET, salt="session").sign(f"1:{'A' * 22}:1:analytics")
    assert codec(clock).decode(foreign.decode()) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "..",
        "1:x:1:.AAAA.AAAA",
        "A" * 2000,
        "\x00\x01\x02",
        "é" * 10,
        "1:AAAAAAAAAAAAAAAAAAAAAA:0:.awp97g.sig",
        "1:AAAAAAAAAAAAAAAAAAAAAA:1:analytics.!!!.sig",
    ],
    ids=["empty", "dot", "dots", "short-id", "oversized", "control", "non-ascii", "rev0", "bad-ts"],
)
def test_garbage_decodes_to_nothing(clock: FakeClock, value: str) -> None:
    cookie = codec(clock)
    assert cookie.decode(value) is None
    assert cookie.state(cookie.read(f"mypharm_consent={value}")).decided is False


def test_a_genuine_payload_with_bad_fields_is_refused(clock: FakeClock) -> None:
    cookie = codec(clock)
    signer = cookie._signer
    for payload in ("2:" + "A" * 22 + ":1:", "1:short:1:", "1:" + "A" * 22 + ":x:", "1:a:b"):
        assert cookie.decode(signer.sign(payload).decode()) is None, payload


def test_the_first_genuine_value_wins_among_duplicates(clock: FakeClock) -> None:
    cookie = codec(clock)
    consent_id = new_consent_id()
    good = cookie.encode(consent_id, ALL)
    header = f"other=1; mypharm_consent=forged; mypharm_consent={good}; mypharm_consent_x=2"
    payload = cookie.read(header)
    assert payload is not None
    assert payload.consent_id == consent_id


def test_cookie_values_parsing() -> None:
    header = ' a=1; mypharm_consent="quoted" ;broken; mypharm_consent=two; =x'
    assert list(cookie_values(header, "mypharm_consent")) == ["quoted", "two"]
    assert list(cookie_values(None, "mypharm_consent")) == []
    assert list(cookie_values("", "mypharm_consent")) == []


def test_set_cookie_header_attributes(clock: FakeClock) -> None:
    cookie = codec(clock, cookie_secure=True, cookie_domain=".mypharm.fr")
    header = cookie.set_cookie_header("v")
    assert header.startswith("mypharm_consent=v; Max-Age=15724800; Expires=")
    assert header.endswith("; Path=/; Domain=.mypharm.fr; Secure; HttpOnly; SameSite=Lax")


def test_expired_cookie_header_deletes_the_same_cookie(clock: FakeClock) -> None:
    cookie = codec(clock, cookie_secure=True, cookie_domain=".mypharm.fr")
    assert cookie.expired_cookie_header() == (
        "mypharm_consent=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/;"
        " Domain=.mypharm.fr; Secure; HttpOnly; SameSite=Lax"
    )


def test_consent_life_above_13_months_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="13 months"):
        make_config(consent_max_age=timedelta(days=400))


def test_a_cookie_read_before_still_expires(clock: FakeClock) -> None:
    cookie = codec(clock, consent_max_age=timedelta(days=10))
    header = f"mypharm_consent={cookie.encode(new_consent_id(), ALL)}"
    assert cookie.read_state(header).decided
    clock.advance(10 * 24 * 3600 + 1)
    assert cookie.read(header) is None
    assert cookie.read_state(header).decided is False


def test_a_tampered_value_is_never_taken_for_a_verified_one(clock: FakeClock) -> None:
    cookie = codec(clock)
    good = cookie.encode(new_consent_id(), ALL)
    # A change in the signed part (the last character of the signature may
    # differ only in base64 padding bits, which decode to the same bytes).
    forged = "2" + good[1:]
    for value in (forged, good, forged):
        state = cookie.read_state(f"mypharm_consent={value}")
        assert state.decided is (value == good)
    # The forged value was seen twice: still refused, and remembered as refused.
    assert cookie.decode(forged) is None


def test_the_verified_values_cannot_grow_without_bound(clock: FakeClock) -> None:
    cookie = codec(clock)
    good = cookie.encode(new_consent_id(), ALL)
    for index in range(5000):
        cookie.read_state(f"mypharm_consent={good[:-8]}{index:08d}")
    info = cookie._verified.cache_info()
    assert info.maxsize is not None
    assert info.currsize <= info.maxsize < 5000


def test_a_remembered_cookie_is_still_judged_by_the_current_revision(clock: FakeClock) -> None:
    previous = codec(clock, policy_revision=2)
    value = previous.encode(new_consent_id(), ALL)
    header = f"mypharm_consent={value}"
    assert previous.read_state(header).decided
    assert previous.read_state(header, gpc=True).gpc is True
    current = codec(clock, policy_revision=3)
    for _ in range(2):
        assert current.read_state(header).decided is False


@pytest.mark.parametrize("gpc", [False, True], ids=["no-gpc", "gpc"])
def test_read_state_is_the_state_of_what_read_returns(clock: FakeClock, gpc: bool) -> None:
    cookie = codec(clock)
    older = codec(clock, policy_revision=2).encode(new_consent_id(), ALL)
    good = cookie.encode(new_consent_id(), frozenset({"necessary", "analytics"}))
    headers = [
        None,
        "",
        "other=1",
        "mypharm_consent=forged",
        f"mypharm_consent={good}",
        f"mypharm_consent={older}; mypharm_consent={good}",
        f"mypharm_consent={older}",
    ]
    for header in headers:
        for _ in range(2):
            assert cookie.read_state(header, gpc=gpc) == cookie.state(
                cookie.read(header), gpc=gpc
            ), header


def _split_cookie_values(cookie_header: str, name: str) -> list[str]:
    """Every pair of the header cut apart: what ``cookie_values`` must agree with."""
    values = []
    for pair in cookie_header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            values.append(value)
    return values


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["mypharm_consent", "xmypharm_consent", "mypharm_consent2", " _ga"]),
            st.sampled_from(["", "=", "=v", '="q"', "=mypharm_consent", "=a=b", " = x "]),
        ),
        max_size=6,
    ),
    st.sampled_from([";", "; ", " ;", ";;"]),
)
def test_cookie_values_finds_what_splitting_every_pair_finds(
    pairs: list[tuple[str, str]], separator: str
) -> None:
    header = separator.join(key + rest for key, rest in pairs)
    expected = _split_cookie_values(header, "mypharm_consent")
    assert list(cookie_values(header, "mypharm_consent")) == expected
