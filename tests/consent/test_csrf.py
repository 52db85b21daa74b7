"""The decide endpoint's CSRF guard, unit by unit (the protocol tests cover it end to end)."""

from __future__ import annotations

import pytest

from mypharm_consent.csrf import TOKEN_MAX_AGE, TOKEN_REUSE_SECONDS, CsrfGuard

from .conftest import OLD_SECRET, SECRET, FakeClock, make_config


@pytest.fixture
def guard(clock: FakeClock) -> CsrfGuard:
    return CsrfGuard(make_config(), clock=clock)


@pytest.mark.parametrize(
    ("headers", "host"),
    [
        ({}, "shop.example"),
        ({"origin": "https://shop.example"}, "shop.example"),
        ({"origin": "https://shop.example:443"}, "shop.example"),
        ({"origin": "http://shop.example:8000"}, "shop.example:8000"),
        ({"origin": "https://SHOP.example"}, "shop.example"),
        ({"sec-fetch-site": "same-origin"}, "shop.example"),
        ({"sec-fetch-site": "none"}, "shop.example"),
    ],
    ids=["no-headers", "origin", "default-port", "explicit-port", "case", "same-origin", "none"],
)
def test_same_site_posts_pass(guard: CsrfGuard, headers: dict[str, str], host: str) -> None:
    assert guard.check(headers, host, guard.token()) is None


@pytest.mark.parametrize(
    ("headers", "host"),
    [
        ({"origin": "https://evil.example"}, "shop.example"),
        ({"origin": "https://shop.example:8443"}, "shop.example"),
        ({"origin": "https://shop.example"}, None),
        ({"origin": "null"}, "shop.example"),
        ({"origin": "ftp://shop.example"}, "shop.example"),
        ({"origin": "http://[::1"}, "shop.example"),
        ({"sec-fetch-site": "cross-site"}, "shop.example"),
        ({"sec-fetch-site": "same-site"}, "shop.example"),
        ({"sec-fetch-site": "same-origin", "origin": "https://evil.example"}, "shop.example"),
    ],
    ids=[
        "foreign",
        "other-port",
        "no-host",
        "null",
        "ftp",
        "malformed",
        "cross-site",
        "same-site",
        "mixed",
    ],
)
def test_cross_site_posts_are_refused(
    guard: CsrfGuard, headers: dict[str, str], host: str | None
) -> None:
    refusal = guard.check(headers, host, guard.token())
    assert refusal is not None
    assert refusal.stale_form is False


def test_tokens_expire_after_a_week(guard: CsrfGuard, clock: FakeClock) -> None:
    token = guard.token()
    clock.advance(TOKEN_MAX_AGE)
    assert guard.check({}, "shop.example", token) is None
    clock.advance(1)
    refusal = guard.check({}, "shop.example", token)
    assert refusal is not None
    assert refusal.stale_form is True


@pytest.mark.parametrize("token", [None, "", "garbage", "a.b.c", "x" * 300, "é.é.é"], ids=repr)
def test_missing_or_forged_tokens_are_refused(guard: CsrfGuard, token: str | None) -> None:
    assert guard.check({}, "shop.example", token) is not None


def test_tokens_survive_key_rotation(clock: FakeClock) -> None:
    old = CsrfGuard(make_config(secret_keys=[OLD_SECRET]), clock=clock)
    rotated = CsrfGuard(make_config(secret_keys=[SECRET, OLD_SECRET]), clock=clock)
    assert rotated.check({}, "h", old.token()) is None
    assert old.check({}, "h", rotated.token()) is not None


def test_one_token_is_shared_for_a_window_then_rotates(guard: CsrfGuard, clock: FakeClock) -> None:
    first = guard.token()
    clock.advance(TOKEN_REUSE_SECONDS - 1)
    assert guard.token() == first
    clock.advance(1)
    second = guard.token()
    assert second != first
    assert guard.token() == second
    # Both stay valid: a form rendered before the rotation can still be posted.
    assert guard.check({}, "shop.example", first) is None
    assert guard.check({}, "shop.example", second) is None


def test_a_shared_token_still_expires_a_week_after_it_was_signed(
    guard: CsrfGuard, clock: FakeClock
) -> None:
    signed = guard.token()
    clock.advance(TOKEN_REUSE_SECONDS - 1)
    handed_late = guard.token()
    assert handed_late == signed
    clock.advance(TOKEN_MAX_AGE - TOKEN_REUSE_SECONDS + 2)
    refusal = guard.check({}, "shop.example", handed_late)
    assert refusal is not None
    assert refusal.stale_form is True


def test_a_clock_going_back_gets_a_fresh_token(guard: CsrfGuard, clock: FakeClock) -> None:
    first = guard.token()
    clock.advance(-5)
    assert guard.token() != first
