"""Who may read the statistics: accounts, passwords, sessions, tokens, throttling.

* :class:`AccountStore`: accounts (roles ``viewer`` and ``admin``) with
  salted scrypt password hashes, and API tokens stored as SHA-256 digests.
* :class:`SessionSigner`: the signed session cookie and CSRF tokens.
* :class:`SessionRevocations`: sessions ended by logging out, for every process.
* :class:`LoginThrottle`: failed logins limited per account and per address.
"""

from beacon.auth.accounts import (
    ROLES,
    TOKEN_PREFIX,
    Account,
    AccountError,
    AccountStore,
    Role,
    check_password,
    check_username,
    credential_stamp,
)
from beacon.auth.passwords import hash_password, verify_password
from beacon.auth.revocations import SessionRevocations
from beacon.auth.sessions import CSRF_COOKIE, SESSION_COOKIE, Session, SessionSigner
from beacon.auth.throttle import LoginThrottle

__all__ = [
    "CSRF_COOKIE",
    "ROLES",
    "SESSION_COOKIE",
    "TOKEN_PREFIX",
    "Account",
    "AccountError",
    "AccountStore",
    "LoginThrottle",
    "Role",
    "Session",
    "SessionRevocations",
    "SessionSigner",
    "check_password",
    "check_username",
    "credential_stamp",
    "hash_password",
    "verify_password",
]
