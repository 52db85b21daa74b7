"""Fuzzing the consent cookie reader: nothing raises, only genuine values decode."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from mypharm_consent.cookie import ConsentCookie, new_consent_id
from tests.consent.conftest import FakeClock, make_config
from tests.fuzz.conftest import FUZZ

CLOCK = FakeClock()
COOKIE = ConsentCookie(make_config(), clock=CLOCK)
OPTIONAL = ("preferences", "analytics", "marketing")
GENUINE = COOKIE.encode(new_consent_id(), frozenset({"necessary", "analytics"}))
SIGNED = COOKIE.decode(GENUINE)
BASE64 = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
#: Characters a forger would play with: the cookie's own alphabet and separators.
COOKIE_ALPHABET = st.sampled_from(
    '0123456789abcdefABCDEF-_.:~=;" \t\r\n%\\' + "".join(OPTIONAL) + "\x00\xe9\u2028"
)
FORGERIES = (
    st.text(max_size=120)
    | st.text(COOKIE_ALPHABET, max_size=120)
    | st.binary(max_size=120).map(lambda raw: raw.decode("latin-1"))
    | st.builds(
        lambda consent_id, revision, names, stamp, signature: (
            f"1:{consent_id}:{revision}:{names}.{stamp}.{signature}"
        ),
        st.text(BASE64, min_size=16, max_size=43),
        st.integers(0, 999),
        st.text(st.sampled_from("~" + "".join(OPTIONAL)), max_size=30),
        st.text(BASE64, max_size=8),
        st.text(BASE64, max_size=45),
    )
)


@FUZZ
@given(FORGERIES)
def test_forged_values_never_decode_and_never_raise(value: str) -> None:
    assume(value != GENUINE)
    assert COOKIE.decode(value) is None
    state = COOKIE.read_state(f"mypharm_consent={value}")
    assert state.decided is False
    assert COOKIE.read_state(value).decided is False


@FUZZ
@given(st.integers(0, len(GENUINE) - 1), st.characters(codec="ascii") | st.characters())
def test_a_changed_genuine_value_never_says_anything_new(position: int, char: str) -> None:
    # Base64 lets a few spellings of the same signature through (``-`` and
    # ``+``, unused low bits of the last character): those still carry the
    # signed payload. Any other change is refused.
    forged = GENUINE[:position] + char + GENUINE[position + 1 :]
    assume(forged != GENUINE)
    payload = COOKIE.decode(forged)
    assert payload is None or payload == SIGNED
    state = COOKIE.read_state(f"mypharm_consent={forged}")
    assert not state.decided or state.granted == frozenset({"necessary", "analytics"})
    if position < GENUINE.rindex("."):
        assert payload is None


@FUZZ
@given(
    st.text(BASE64, min_size=16, max_size=43),
    st.sets(st.sampled_from(OPTIONAL)),
    st.text(st.sampled_from('a_=; \t"é'), max_size=12).map(lambda noise: noise.replace(";", "")),
)
def test_genuine_values_decode_to_what_was_signed(
    consent_id: str, granted: set[str], noise: str
) -> None:
    value = COOKIE.encode(consent_id, frozenset(granted))
    payload = COOKIE.decode(value)
    assert payload is not None
    assert payload.consent_id == consent_id
    assert payload.granted == frozenset(granted) | {"necessary"}
    state = COOKIE.read_state(f"{noise}; mypharm_consent={value}")
    assert state.decided is True
    assert state.granted == frozenset(granted) | {"necessary"}
