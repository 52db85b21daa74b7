"""Guessing dashboard passwords: throttled per account and per address, compared in constant time.

Repeated wrong passwords lock the account name (known or not) and then the
client address out for a while: ``429`` with ``Retry-After``, even for the
right password, which is then not even checked. The throttle keeps
addresses only as keyed digests. Comparisons of secrets go through
``hmac.compare_digest`` and an unknown account costs the same scrypt work as
a known one: asserted on the code paths taken, never by timing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

import beacon.auth.accounts
import beacon.auth.passwords
from beacon.auth import SESSION_COOKIE, AccountStore, LoginThrottle, hash_password
from beacon.dashboard.app import Dashboard
from beacon.store import Store
from tests.beacon.stats.stats_dataset import ADMIN, SECRET_KEYS, log_in

PER_ACCOUNT, PER_ADDRESS, WINDOW = 3, 5, 600.0
LOOPBACK = "127.0.0.1"


class _Clock:
    """Monotonic seconds that the test moves."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttled(
    dashboard_store: Store, live_server: Any
) -> tuple[httpx.Client, LoginThrottle, _Clock]:
    """A dashboard with a small throttle on a clock the test moves, and a client of it."""
    clock = _Clock()
    throttle = LoginThrottle(
        max_per_account=PER_ACCOUNT, max_per_address=PER_ADDRESS, window=WINDOW, clock=clock
    )
    dashboard = Dashboard(
        dashboard_store, secret_keys=SECRET_KEYS, k=1, secure_cookies=False, throttle=throttle
    )
    server = live_server(Starlette(routes=[Mount("/stats", app=dashboard)]))
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    return client, throttle, clock


def _assert_locked_out(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= WINDOW + 1
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "location" not in response.headers
    assert "Réessayez dans" in response.text


@pytest.fixture
def counted_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password hash checked by the account store, in order."""
    calls: list[str] = []
    real = beacon.auth.accounts.verify_password

    def spy(password: str, encoded: str) -> bool:
        calls.append(encoded)
        return real(password, encoded)

    monkeypatch.setattr(beacon.auth.accounts, "verify_password", spy)
    return calls


def test_wrong_passwords_lock_the_account_even_for_the_right_one(
    throttled: tuple[httpx.Client, LoginThrottle, _Clock], counted_verifications: list[str]
) -> None:
    client, _, clock = throttled
    with client:
        for _ in range(PER_ACCOUNT):
            assert log_in(client, ADMIN[0], "a wrong guess").status_code == 401
        checked = len(counted_verifications)
        _assert_locked_out(log_in(client, *ADMIN))
        _assert_locked_out(log_in(client, ADMIN[0].upper(), ADMIN[1]))
        assert len(counted_verifications) == checked  # the password was not even checked
        assert client.get("/stats/campaigns").status_code == 303
        clock.now += WINDOW + 1
        assert log_in(client, *ADMIN).status_code == 303
        assert client.get("/stats/campaigns").status_code == 200


def test_unknown_accounts_lock_out_alike(
    throttled: tuple[httpx.Client, LoginThrottle, _Clock],
) -> None:
    client, _, _ = throttled
    with client:
        for _ in range(PER_ACCOUNT):
            assert log_in(client, "nobody-here", "a wrong guess").status_code == 401
        _assert_locked_out(log_in(client, "nobody-here", "a wrong guess"))


def test_one_address_guessing_many_accounts_is_locked_out(
    throttled: tuple[httpx.Client, LoginThrottle, _Clock], dashboard_store: Store
) -> None:
    client, throttle, clock = throttled
    AccountStore(dashboard_store).add("spray-target", "spray target password")
    with client:
        for attempt in range(PER_ADDRESS):
            # A different name each time: no single account reaches its own limit.
            response = log_in(client, f"sprayed-{attempt}", "a wrong guess")
            assert response.status_code == 401
        _assert_locked_out(log_in(client, "spray-target", "spray target password"))
        assert throttle.retry_after("spray-target", "192.0.2.44") == 0  # elsewhere: allowed
        clock.now += WINDOW + 1
        assert log_in(client, "spray-target", "spray target password").status_code == 303
    kept = repr(vars(throttle))
    assert LOOPBACK not in kept
    assert "spray-target" not in kept  # a success forgets the account's failures


def test_secrets_are_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, counted_verifications: list[str], dashboard_store: Store
) -> None:
    compared: list[tuple[Any, Any]] = []
    real: Callable[[Any, Any], bool] = hmac.compare_digest

    def spy(first: Any, second: Any) -> bool:
        compared.append((first, second))
        return real(first, second)

    monkeypatch.setattr(beacon.auth.passwords.hmac, "compare_digest", spy)
    monkeypatch.setattr(secrets, "compare_digest", spy)

    # Password hashes.
    encoded = hash_password("the password 1")
    assert beacon.auth.passwords.verify_password("the password 1", encoded)
    assert not beacon.auth.passwords.verify_password("the password 2", encoded)
    assert len(compared) == 2

    # An unknown or malformed account name costs the same scrypt work as a wrong password.
    accounts = AccountStore(dashboard_store)
    for name in (ADMIN[0], "no-such-account", "bad name!"):
        before = len(counted_verifications)
        assert accounts.authenticate(name, "a wrong guess") is None
        assert len(counted_verifications) == before + 1, name
        assert counted_verifications[-1].startswith("scrypt$")

    # CSRF tokens against their cookie.
    signer = beacon.auth.SessionSigner(SECRET_KEYS)
    cookie = signer.new_csrf_value()
    compared.clear()
    assert signer.csrf_valid(cookie, signer.csrf_token(cookie))
    assert (cookie, cookie) in compared

    # The credential stamp a session carries against the account's.
    dashboard = Dashboard(dashboard_store, secret_keys=SECRET_KEYS, secure_cookies=False)
    found = accounts.get_with_stamp(ADMIN[0])
    assert found is not None
    session = dashboard.signer.dumps(ADMIN[0], found[1])
    scope = {"type": "http", "headers": [(b"cookie", f"{SESSION_COOKIE}={session}".encode())]}
    compared.clear()
    account = dashboard.account_of(Request(scope))
    assert account is not None
    assert account.name == ADMIN[0]
    assert (found[1], found[1]) in compared
