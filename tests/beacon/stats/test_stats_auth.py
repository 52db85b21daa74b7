"""Passwords, sessions, CSRF tokens, login throttling and accounts, each on its own."""

from __future__ import annotations

import time

import pytest

from beacon.auth import (
    AccountError,
    AccountStore,
    LoginThrottle,
    Session,
    SessionRevocations,
    SessionSigner,
    check_username,
    hash_password,
    verify_password,
)
from beacon.migrations import migrate
from beacon.store import Store


def test_password_hashes_are_salted_and_verify():
    first, second = hash_password("s3cret password"), hash_password("s3cret password")
    assert first != second
    assert first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret password", first)
    assert not verify_password("s3cret Password", first)


@pytest.mark.parametrize(
    "encoded",
    ["", "plain", "md5$x$y", "scrypt$a$b$c$d$e", "scrypt$16384$8$1$!!$!!", "scrypt$1$8$1$AA$AA"],
    ids=["empty", "no-scheme", "other-scheme", "not-numbers", "bad-base64", "bad-cost"],
)
def test_malformed_hashes_never_match(encoded):
    assert verify_password("anything", encoded) is False


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_per_account_and_per_address():
    clock = _Clock()
    throttle = LoginThrottle(max_per_account=3, max_per_address=5, window=60, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("alice", "192.0.2.1") == 0
        throttle.failed("alice", "192.0.2.1")
    assert throttle.retry_after("alice", "192.0.2.9") == pytest.approx(60)
    assert throttle.retry_after("ALICE", None) > 0  # names compare case-insensitively
    assert throttle.retry_after("bob", "192.0.2.1") == 0
    throttle.failed("bob", "192.0.2.1")
    throttle.failed("carol", "192.0.2.1")
    assert throttle.retry_after("dave", "192.0.2.1") > 0  # five failures from one address
    assert throttle.retry_after("dave", "192.0.2.2") == 0
    clock.now += 61
    assert throttle.retry_after("alice", "192.0.2.1") == 0


def test_throttle_forgets_an_account_after_success():
    throttle = LoginThrottle(max_per_account=2, clock=_Clock())
    throttle.failed("alice", None)
    throttle.succeeded("alice")
    throttle.failed("alice", None)
    assert throttle.retry_after("alice", None) == 0


def test_throttle_keeps_no_address_in_clear():
    throttle = LoginThrottle(clock=_Clock())
    throttle.failed("alice", "203.0.113.77")
    assert "203.0.113.77" not in repr(throttle.__dict__)


def test_throttle_validates_its_settings():
    with pytest.raises(ValueError, match="positive"):
        LoginThrottle(max_per_account=0)


def test_sessions_round_trip_and_resist_tampering():
    signer = SessionSigner(["new-key", "old-key"], max_age=60)
    value = signer.dumps("alice", "stamp")
    session = signer.loads(value)
    assert session is not None
    assert (session.name, session.stamp) == ("alice", "stamp")
    assert signer.loads(value[:-2] + "xx") is None
    assert signer.loads("") is None
    assert signer.loads("a" * 5000) is None
    assert SessionSigner(["other-key"]).loads(value) is None


def test_sessions_signed_with_an_old_key_still_verify():
    old = SessionSigner(["old-key"]).dumps("alice", "stamp")
    assert SessionSigner(["new-key", "old-key"]).loads(old).name == "alice"


def test_sessions_expire(monkeypatch):
    signer = SessionSigner(["key"], max_age=60)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now - 61)  # signed 61 seconds ago
    value = signer.dumps("alice", "stamp")
    monkeypatch.setattr(time, "time", lambda: now - 59)
    fresh = signer.dumps("alice", "stamp")
    monkeypatch.undo()
    assert signer.loads(value) is None
    assert signer.loads(fresh) is not None


def test_csrf_tokens_match_their_cookie_only():
    signer = SessionSigner(["key"])
    cookie = signer.new_csrf_value()
    token = signer.csrf_token(cookie)
    assert signer.csrf_valid(cookie, token)
    assert not signer.csrf_valid(signer.new_csrf_value(), token)
    assert not signer.csrf_valid(cookie, cookie)
    assert not signer.csrf_valid(None, token)
    assert not signer.csrf_valid(cookie, None)
    assert not SessionSigner(["other"]).csrf_valid(cookie, token)


def test_csrf_tokens_expire_with_the_session():
    clock = _Clock()
    signer = SessionSigner(["key"], max_age=60, clock=clock)
    cookie = signer.new_csrf_value()
    token = signer.csrf_token(cookie)
    clock.now += 60
    assert signer.csrf_valid(cookie, token)
    clock.now += 1
    assert not signer.csrf_valid(cookie, token)
    assert signer.csrf_valid(cookie, signer.csrf_token(cookie))  # a fresh form works


def test_revoked_sessions_reach_every_process(clickhouse_url):
    store = Store(clickhouse_url)
    migrate(store)
    clock = _Clock()
    here = SessionRevocations(store, max_age=3600, cache_seconds=5, clock=clock)
    there = SessionRevocations(store, max_age=3600, cache_seconds=5, clock=clock)
    session, other = Session("alice", "stamp", "id-one"), Session("alice", "stamp", "id-two")
    assert not here.is_revoked(session)
    assert not there.is_revoked(session)
    here.revoke(session)
    assert here.is_revoked(session)  # at once where it was ended
    assert not there.is_revoked(session)  # elsewhere a live answer is trusted for 5 s
    clock.now += 5
    assert there.is_revoked(session)
    assert not there.is_revoked(other)
    dump = str(store.query_rows("SELECT * FROM dashboard_session_revocations"))
    assert "alice" in dump
    assert "id-one" not in dump  # only a digest of the id
    with pytest.raises(ValueError, match="max_age"):
        SessionRevocations(store, max_age=0)


def test_signer_needs_a_key():
    with pytest.raises(ValueError, match="secret key"):
        SessionSigner([])


@pytest.mark.parametrize("name", ["", "-dash", "a b", "x" * 65, "é", "a/b"])
def test_bad_account_names(name):
    with pytest.raises(AccountError):
        check_username(name)


def test_accounts_store_only_hashes(clickhouse_url):
    store = Store(clickhouse_url)
    migrate(store)
    accounts = AccountStore(store)
    accounts.add("alice", "alice's password", role="admin")
    with pytest.raises(AccountError, match="exists"):
        accounts.add("alice", "another password")
    with pytest.raises(AccountError, match="role"):
        accounts.add("bob", "bob's password", role="owner")  # type: ignore[arg-type]
    token = accounts.create_token("alice", "ci")
    dump = str(store.query_rows("SELECT * FROM dashboard_users")) + str(
        store.query_rows("SELECT * FROM dashboard_tokens")
    )
    assert "alice's password" not in dump
    assert token not in dump
    assert accounts.authenticate("alice", "alice's password").role == "admin"
    assert accounts.authenticate("alice", "wrong") is None
    assert accounts.authenticate("nobody", "alice's password") is None
    assert accounts.authenticate("bad name!", "x") is None
    stamp = accounts.get_with_stamp("alice")[1]
    accounts.set_password("alice", "a new password")
    assert accounts.get_with_stamp("alice")[1] != stamp
    assert accounts.authenticate("alice", "alice's password") is None
    assert accounts.authenticate("alice", "a new password") is not None
    assert accounts.verify_token(token).name == "alice"
    assert accounts.verify_token("bst_unknown") is None
    assert accounts.verify_token("no-prefix") is None
    assert [account.name for account in accounts.list()] == ["alice"]
    accounts.remove("alice")
    assert accounts.list() == []
    assert accounts.verify_token(token) is None
    with pytest.raises(AccountError, match="no account"):
        accounts.remove("alice")
    accounts.add("alice", "back again password")  # a removed name can be reused
    assert accounts.get("alice").role == "viewer"
