"""Signed e-mail tokens: round trips, rotation, and every way a token can be bad."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous.encoding import base64_decode

from beacon.email.exceptions import InstrumentationError, TokenError
from beacon.email.tokens import (
    MAX_CAMPAIGN_BYTES,
    MAX_TOKEN_LENGTH,
    EmailTokenSigner,
    normalize_address,
)
from beacon.email.urls import MAX_DESTINATION_BYTES

KEY = "k" * 32
OLD_KEY = "o" * 32
NEW_KEY = "n" * 32
CAMPAIGN = "2026-12-newsletter"
URL = "https://mypharm.fr/promo/noel-2026?utm_source=newsletter&utm_medium=email"


@pytest.fixture
def signer() -> EmailTokenSigner:
    return EmailTokenSigner([KEY])


def test_open_token_round_trip(signer: EmailTokenSigner) -> None:
    ref = signer.recipient_ref("alice@example.org")
    token = signer.verify("open", signer.open_token(CAMPAIGN, ref))
    assert (token.kind, token.campaign, token.recipient, token.url) == ("open", CAMPAIGN, ref, "")


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "http://example.org",
        "https://exämple.fr/café?q=été#haut",
        "https://例え.jp/パス",
        "HTTPS://Example.org/Path",
        "https://user:pw@example.org:8443/a%20b?x=1&y=%C3%A9",
    ],
    ids=["typical", "http-no-path", "idn-unicode", "japanese", "upper-scheme", "userinfo-port"],
)
def test_click_token_keeps_destination_exactly(signer: EmailTokenSigner, url: str) -> None:
    ref = signer.recipient_ref("alice@example.org")
    token = signer.verify("click", signer.click_token(CAMPAIGN, ref, url, 300))
    assert (token.url, token.link, token.campaign, token.recipient) == (url, 300, CAMPAIGN, ref)


def test_tokens_are_compact(signer: EmailTokenSigner) -> None:
    ref = signer.recipient_ref("alice@example.org")
    open_token = signer.open_token(CAMPAIGN, ref)
    click_token = signer.click_token(CAMPAIGN, ref, URL, 3)
    # Packed payload + 128-bit signature: far shorter than signed JSON would be.
    assert len(open_token) == 61
    assert len(signer.unsubscribe_token(CAMPAIGN, ref)) == 61
    assert len(click_token) == 149
    assert all(c.isalnum() or c in "-_." for c in open_token + click_token)


def test_kinds_cannot_be_swapped(signer: EmailTokenSigner) -> None:
    ref = signer.recipient_ref("alice@example.org")
    token = signer.open_token(CAMPAIGN, ref)
    with pytest.raises(TokenError) as info:
        signer.verify("unsubscribe", token)
    assert info.value.reason == "signature"


def test_key_rotation_newest_first() -> None:
    old = EmailTokenSigner([OLD_KEY])
    rotated = EmailTokenSigner([NEW_KEY, OLD_KEY])
    retired = EmailTokenSigner([NEW_KEY])
    ref = old.recipient_ref("alice@example.org")
    old_token = old.open_token(CAMPAIGN, ref)
    new_token = rotated.open_token(CAMPAIGN, ref)
    assert rotated.verify("open", old_token).recipient == ref
    assert retired.verify("open", new_token).recipient == ref  # the newest key signs
    with pytest.raises(TokenError):
        retired.verify("open", old_token)


def test_recipient_ref_survives_adding_a_key() -> None:
    before = EmailTokenSigner([OLD_KEY]).recipient_ref("alice@example.org")
    assert EmailTokenSigner([NEW_KEY, OLD_KEY]).recipient_ref("alice@example.org") == before
    pinned = EmailTokenSigner([NEW_KEY], recipient_key="r" * 32)
    assert pinned.recipient_ref("alice@example.org") != before
    assert EmailTokenSigner([OLD_KEY], recipient_key="r" * 32).recipient_ref(
        "alice@example.org"
    ) == pinned.recipient_ref("alice@example.org")


def test_recipient_ref_is_a_keyed_hash_of_the_normalized_address(
    signer: EmailTokenSigner,
) -> None:
    ref = signer.recipient_ref("alice@example.org")
    assert signer.recipient_ref("  Alice@EXAMPLE.org ") == ref
    assert signer.recipient_ref("bob@example.org") != ref
    assert EmailTokenSigner(["x" * 32]).recipient_ref("alice@example.org") != ref
    assert 0 < ref < 2**64
    token = signer.open_token(CAMPAIGN, ref)
    payload = base64_decode(token.split(".")[0])
    assert b"alice" not in payload
    assert b"example" not in payload


def test_normalize_address_idn_domain() -> None:
    assert normalize_address(" Alice@Exämple.ORG") == "alice@xn--exmple-cua.org"
    assert normalize_address("alice@xn--exmple-cua.org") == "alice@xn--exmple-cua.org"
    assert normalize_address("Subscriber-42") == "subscriber-42"


def _flip(token: str, index: int) -> str:
    char = "A" if token[index] != "A" else "B"
    return token[:index] + char + token[index + 1 :]


def _bad_tokens(signer: EmailTokenSigner) -> dict[str, str]:
    ref = signer.recipient_ref("alice@example.org")
    good = signer.click_token(CAMPAIGN, ref, URL, 0)
    payload, signature = good.split(".")
    forged_payload = EmailTokenSigner(["f" * 32]).click_token(
        CAMPAIGN, ref, "https://evil.example/", 0
    )
    return {
        "empty": "",
        "truncated": good[:-5],
        "no-signature": payload,
        "payload-only-dot": payload + ".",
        "flipped-payload": _flip(good, 20),
        "flipped-signature": _flip(good, len(good) - 3),
        "foreign-key": forged_payload,
        "spliced": forged_payload.split(".")[0] + "." + signature,
        "oversized": "A" * (MAX_TOKEN_LENGTH + 1),
        "non-ascii": good[:10] + "é" + good[11:],
        "garbage": "../../etc/passwd",
        "not-base64": "!!!!." + signature,
        "wrong-kind": signer.open_token(CAMPAIGN, ref),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty", "truncated", "no-signature", "payload-only-dot", "flipped-payload",
        "flipped-signature", "foreign-key", "spliced", "oversized", "non-ascii",
        "garbage", "not-base64", "wrong-kind",
    ],
)  # fmt: skip
def test_bad_tokens_raise_token_error(signer: EmailTokenSigner, case: str) -> None:
    with pytest.raises(TokenError) as info:
        signer.verify("click", _bad_tokens(signer)[case])
    assert info.value.reason in {"length", "charset", "signature", "format"}
    assert isinstance(info.value, ValueError)


def test_oversized_token_is_refused_before_the_signature_check(
    signer: EmailTokenSigner,
) -> None:
    with pytest.raises(TokenError) as info:
        signer.verify("open", "A" * (MAX_TOKEN_LENGTH + 1))
    assert info.value.reason == "length"


def test_longest_legitimate_token_fits(signer: EmailTokenSigner) -> None:
    campaign = "c" * MAX_CAMPAIGN_BYTES
    url = "https://e.org/" + "p" * (MAX_DESTINATION_BYTES - 14)
    token = signer.click_token(campaign, 2**64 - 1, url, 2**28 - 1)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert signer.verify("click", token).url == url


@pytest.mark.parametrize(
    ("campaign", "recipient"),
    [
        ("", 1),
        ("   ", 1),
        ("a\tb", 1),
        ("x" * (MAX_CAMPAIGN_BYTES + 1), 1),
        ("ok", 0),
        ("ok", 2**64),
    ],
    ids=["empty", "blank", "control-char", "too-long", "zero-ref", "ref-overflow"],
)
def test_bad_campaign_or_ref_refused_at_signing(
    signer: EmailTokenSigner, campaign: str, recipient: int
) -> None:
    with pytest.raises(InstrumentationError):
        signer.open_token(campaign, recipient)


@pytest.mark.parametrize(
    "keys", [[], "a-single-string-key-of-32-chars!", ["short"]], ids=["none", "string", "short"]
)
def test_bad_keys_refused(keys: object) -> None:
    with pytest.raises(InstrumentationError):
        EmailTokenSigner(keys)  # type: ignore[arg-type]


@given(
    campaign=st.text(
        st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
    ).filter(str.strip),
    ref=st.integers(min_value=1, max_value=2**64 - 1),
    link=st.integers(min_value=0, max_value=2**28 - 1),
    path=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs")), max_size=60),
)
def test_click_round_trip_property(campaign: str, ref: int, link: int, path: str) -> None:
    signer = EmailTokenSigner([KEY])
    url = "https://example.org/" + path.strip()
    token = signer.verify("click", signer.click_token(campaign, ref, url, link))
    assert (token.campaign, token.recipient, token.link, token.url) == (campaign, ref, link, url)


@given(st.text(max_size=200))
def test_arbitrary_text_never_verifies(text: str) -> None:
    signer = EmailTokenSigner([KEY])
    with pytest.raises(TokenError):
        signer.verify("click", text)
