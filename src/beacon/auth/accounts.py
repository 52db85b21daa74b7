"""Dashboard accounts and API tokens, stored in ClickHouse.

Accounts live in ``dashboard_users`` (one row per version; the newest wins),
tokens in ``dashboard_tokens`` as SHA-256 digests: the token itself is shown
once, when it is created, and never stored. Every method blocks on the
store: call it from a worker thread in an async app.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from beacon.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    verify_password,
)
from beacon.exceptions import BeaconError
from beacon.migrations.m0032_dashboard_accounts import DASHBOARD_TOKENS, DASHBOARD_USERS
from beacon.store import Store

__all__ = [
    "ROLES",
    "TOKEN_PREFIX",
    "Account",
    "AccountError",
    "AccountStore",
    "Role",
    "check_password",
    "check_username",
    "credential_stamp",
]

Role = Literal["viewer", "admin"]
#: Roles, least privileged first: viewers read statistics, admins also manage accounts.
ROLES: tuple[Role, ...] = ("viewer", "admin")
#: Every API token starts with this, so that a leaked one is easy to recognise.
TOKEN_PREFIX = "bst_"  # noqa: S105 - a public marker, not a secret

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# Compared against when the account does not exist, so that timing does not tell.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class AccountError(BeaconError, ValueError):
    """An account operation cannot be done: bad name, weak password, unknown account..."""


@dataclass(frozen=True, slots=True)
class Account:
    """A dashboard user: name, role, and when the account was created."""

    name: str
    role: Role
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        """Whether this account may manage other accounts."""
        return self.role == "admin"


def check_username(name: str) -> str:
    """``name`` if it is a valid account name (letters, digits, ``._@-``, at most 64)."""
    if not _USERNAME.match(name):
        raise AccountError(
            "an account name has 1 to 64 letters, digits or . _ @ - and starts with a letter "
            "or digit"
        )
    return name


def check_password(password: str) -> str:
    """``password`` if it is long enough and not absurdly long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def credential_stamp(password_hash: str) -> str:
    """A short digest of a password hash: equal while the password is unchanged."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountStore:
    """Create, find, authenticate and remove dashboard accounts and their API tokens."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _write_user(
        self, name: str, role: str, password_hash: str, created_at: datetime, *, deleted: bool
    ) -> None:
        self.store.command(
            f"INSERT INTO {DASHBOARD_USERS} (name, role, password_hash, created_at, deleted, "
            "version) VALUES ({name:String}, {role:String}, {hash:String}, "
            "{created:DateTime('UTC')}, {deleted:UInt8}, {version:UInt64})",
            parameters={
                "name": name,
                "role": role,
                "hash": password_hash,
                "created": created_at.replace(tzinfo=None, microsecond=0),
                "deleted": int(deleted),
                "version": time.time_ns(),
            },
        )

    def _row(self, name: str) -> tuple[Account, str] | None:
        rows = self.store.query_rows(
            f"SELECT argMax(role, version), argMax(password_hash, version), "
            f"argMax(deleted, version), argMax(created_at, version) FROM {DASHBOARD_USERS} "
            "WHERE name = {name:String} GROUP BY name",
            {"name": name},
        )
        if not rows or rows[0][2]:
            return None
        role, password_hash, _, created_at = rows[0]
        account = Account(name, cast(Role, role), created_at.replace(tzinfo=UTC))
        return account, str(password_hash)

    def get(self, name: str) -> Account | None:
        """The account called ``name``, or ``None``."""
        found = self._row(name)
        return found[0] if found else None

    def get_with_stamp(self, name: str) -> tuple[Account, str] | None:
        """The account and its credential stamp, which changes with its password.

        Sessions carry the stamp they were opened with, so changing a password
        ends every session opened with the old one.
        """
        found = self._row(name)
        if found is None:
            return None
        account, password_hash = found
        return account, credential_stamp(password_hash)

    def list(self) -> list[Account]:
        """Every account, sorted by name."""
        rows = self.store.query_rows(
            f"SELECT name, argMax(role, version), argMax(created_at, version) "
            f"FROM {DASHBOARD_USERS} GROUP BY name HAVING argMax(deleted, version) = 0 "
            "ORDER BY name"
        )
        return [Account(str(n), cast(Role, r), c.replace(tzinfo=UTC)) for n, r, c in rows]

    def add(self, name: str, password: str, role: Role = "viewer") -> Account:
        """Create an account; raise :class:`AccountError` if it exists or the input is bad."""
        check_username(name)
        check_password(password)
        if role not in ROLES:
            raise AccountError(f"the role is one of {', '.join(ROLES)}")
        if self.get(name) is not None:
            raise AccountError(f"the account {name!r} exists already")
        created = datetime.now(UTC).replace(microsecond=0)
        self._write_user(name, role, hash_password(password), created, deleted=False)
        return Account(name, role, created)

    def set_password(self, name: str, password: str) -> None:
        """Replace the password of ``name``."""
        check_password(password)
        found = self._row(name)
        if found is None:
            raise AccountError(f"no account called {name!r}")
        account, _ = found
        self._write_user(
            name, account.role, hash_password(password), account.created_at, deleted=False
        )

    def remove(self, name: str) -> None:
        """Delete ``name`` and revoke its API tokens."""
        found = self._row(name)
        if found is None:
            raise AccountError(f"no account called {name!r}")
        account, password_hash = found
        self._write_user(name, account.role, password_hash, account.created_at, deleted=True)
        self.store.command(
            f"INSERT INTO {DASHBOARD_TOKENS} (token_hash, name, label, created_at, deleted, "
            "version) SELECT token_hash, name, argMax(label, version), argMax(created_at, "
            f"version), 1, {{version:UInt64}} FROM {DASHBOARD_TOKENS} "
            "WHERE name = {name:String} GROUP BY token_hash, name",
            parameters={"name": name, "version": time.time_ns()},
        )

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is right; ``None`` otherwise (same work either way)."""
        found = self._row(name) if _USERNAME.match(name) else None
        if found is None:
            verify_password(password, _DUMMY_HASH)
            return None
        account, password_hash = found
        return account if verify_password(password, password_hash) else None

    def create_token(self, name: str, label: str = "") -> str:
        """A new API token for ``name``; only its digest is stored, so show it now."""
        if self.get(name) is None:
            raise AccountError(f"no account called {name!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.store.command(
            f"INSERT INTO {DASHBOARD_TOKENS} (token_hash, name, label, created_at, deleted, "
            "version) VALUES ({hash:String}, {name:String}, {label:String}, "
            "{created:DateTime('UTC')}, 0, {version:UInt64})",
            parameters={
                "hash": _token_digest(token),
                "name": name,
                "label": label[:200],
                "created": datetime.now(UTC).replace(tzinfo=None, microsecond=0),
                "version": time.time_ns(),
            },
        )
        return token

    def verify_token(self, token: str) -> Account | None:
        """The account a bearer token belongs to, or ``None`` if unknown or revoked."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        rows = self.store.query_rows(
            f"SELECT argMax(name, version), argMax(deleted, version) FROM {DASHBOARD_TOKENS} "
            "WHERE token_hash = {hash:String} GROUP BY token_hash",
            {"hash": _token_digest(token)},
        )
        if not rows or rows[0][1]:
            return None
        return self.get(str(rows[0][0]))
