"""Fuzzing e-mail link tokens: anything forged is a :class:`TokenError`, never a destination."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from beacon.email.exceptions import TokenError
from beacon.email.tokens import EmailTokenSigner, TokenKind
from tests.beacon.email.email_fixtures import KEY
from tests.fuzz.conftest import FUZZ

SIGNER = EmailTokenSigner([KEY])
OTHER = EmailTokenSigner(["another-key-nobody-uses-0123456789"])
RECIPIENT = SIGNER.recipient_ref("alice@example.org")
DESTINATION = "https://mypharm.fr/promo?x=1"
GENUINE = {
    "open": SIGNER.open_token("lettre-mars", RECIPIENT),
    "click": SIGNER.click_token("lettre-mars", RECIPIENT, DESTINATION, 2),
    "unsubscribe": SIGNER.unsubscribe_token("lettre-mars", RECIPIENT),
}
KINDS: tuple[TokenKind, ...] = get_args(TokenKind)
TOKEN_CHARS = st.sampled_from("ABCDEFabcdef0123456789-_.=+/%:\\\r\n \x00é")
TOKENS = (
    st.text(max_size=200)
    | st.text(TOKEN_CHARS, max_size=120)
    | st.binary(max_size=120).map(lambda raw: raw.decode("latin-1"))
    | st.builds(
        lambda kind, head, tail: head + GENUINE[kind] + tail,
        st.sampled_from(KINDS),
        st.text(TOKEN_CHARS, max_size=3),
        st.text(TOKEN_CHARS, max_size=3),
    )
)


def _verify_or_refuse(kind: TokenKind, token: str) -> object:
    try:
        return SIGNER.verify(kind, token)
    except TokenError:
        return None


@FUZZ
@given(st.sampled_from(KINDS), TOKENS)
def test_arbitrary_strings_are_refused_or_genuine(kind: TokenKind, token: str) -> None:
    found = _verify_or_refuse(kind, token)
    if found is not None:
        # Only one of our own tokens verifies, and only as its own kind.
        assert found == SIGNER.verify(kind, GENUINE[kind])


@FUZZ
@given(
    st.sampled_from(KINDS),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=20),
    st.integers(1, (1 << 64) - 1),
    st.builds(
        "{}://{}/{}".format,
        st.sampled_from(["http", "https"]),
        st.sampled_from(["mypharm.fr", "evil.example", "xn--exmple-cua.org"]),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
    ),
    st.integers(0, 1000),
)
def test_tokens_signed_with_another_key_or_for_another_kind_are_refused(
    kind: TokenKind, campaign: str, recipient: int, url: str, link: int
) -> None:
    assume(campaign.strip() and len(campaign.encode()) <= 128)
    forged = {
        "open": OTHER.open_token(campaign, recipient),
        "click": OTHER.click_token(campaign, recipient, url, link),
        "unsubscribe": OTHER.unsubscribe_token(campaign, recipient),
    }
    for forged_kind, token in forged.items():
        with pytest.raises(TokenError):
            SIGNER.verify(kind, token)
        own = {
            "open": SIGNER.open_token(campaign, recipient),
            "click": SIGNER.click_token(campaign, recipient, url, link),
            "unsubscribe": SIGNER.unsubscribe_token(campaign, recipient),
        }[forged_kind]
        if forged_kind != kind:
            with pytest.raises(TokenError):
                SIGNER.verify(kind, own)
        else:
            verified = SIGNER.verify(kind, own)
            assert verified.campaign == campaign
            assert verified.recipient == recipient
            if kind == "click":
                assert verified.url == url
                assert verified.link == link


@FUZZ
@given(st.integers(0, len(GENUINE["click"]) - 1), st.characters(codec="ascii"))
def test_a_changed_click_token_never_leads_elsewhere(position: int, char: str) -> None:
    token = GENUINE["click"]
    forged = token[:position] + char + token[position + 1 :]
    assume(forged != token)
    found = _verify_or_refuse("click", forged)
    if found is not None:
        # Only another base64 spelling of the very same signed token.
        assert found == SIGNER.verify("click", token)
        assert position > token.rindex(".")
