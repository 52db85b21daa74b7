"""Signed session cookies and CSRF tokens of the dashboard.

The session cookie carries the account name, a stamp of its credentials
(changing the password ends older sessions) and a random session id, signed
with itsdangerous under a salt of its own (so no other signed value of the
site can be replayed as a session) and limited by ``max_age``. Every login
issues a new session id, so a cookie planted before login is never the one
used after it. Logging out revokes the session id on the server (see
:mod:`beacon.auth.revocations`), so a copy of the cookie stops working too.
Each request re-reads the account, so a removed account or a changed role
takes effect at once.

CSRF protection is a double-submit token: a random value in its own
``SameSite=Strict`` cookie, and the same value signed, with the time it was
signed, in every form; a POST is accepted only when the signed form value
matches the cookie and was signed less than ``max_age`` seconds ago.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "Session", "SessionSigner"]

SESSION_COOKIE = "beacon_stats_session"
CSRF_COOKIE = "beacon_stats_csrf"
_SESSION_SALT = "beacon.dashboard.session"
_CSRF_SALT = "beacon.dashboard.csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: the account name, its credential stamp, a random id for this login."""

    name: str
    stamp: str
    session_id: str


class _ClockedSigner(TimestampSigner):
    """A timestamp signer reading the time from a given clock (tests move it)."""

    def __init__(self, keys: list[str], *, salt: str, clock: Callable[[], float]) -> None:
        super().__init__(keys, salt=salt)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class SessionSigner:
    """Signs and checks session cookies and CSRF tokens.

    ``secret_keys`` are newest first: the first signs, all verify (key rotation).
    Sessions and CSRF tokens both expire after ``max_age`` seconds; ``clock``
    (seconds since the epoch) dates the CSRF tokens.
    """

    def __init__(
        self,
        secret_keys: Sequence[str],
        *,
        max_age: int = 12 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret_keys or any(not key for key in secret_keys):
            raise ValueError("at least one non-empty secret key is needed")
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        keys = list(reversed(secret_keys))  # itsdangerous signs with the last key
        self.max_age = max_age
        self._sessions = URLSafeTimedSerializer(keys, salt=_SESSION_SALT)
        self._csrf = _ClockedSigner(keys, salt=_CSRF_SALT, clock=clock)

    def dumps(self, name: str, stamp: str) -> str:
        """A new session cookie value for ``name`` whose credentials have ``stamp``."""
        return self._sessions.dumps({"u": name, "c": stamp, "s": secrets.token_urlsafe(12)})

    def loads(self, value: str | None) -> Session | None:
        """The session in a cookie value, or ``None`` when missing, tampered with or expired."""
        if not value or len(value) > 4096:
            return None
        try:
            data = self._sessions.loads(value, max_age=self.max_age)
        except BadData:
            return None
        if not isinstance(data, dict):
            return None
        name, stamp, session_id = data.get("u"), data.get("c"), data.get("s")
        if not all(isinstance(value, str) for value in (name, stamp, session_id)):
            return None
        return Session(str(name), str(stamp), str(session_id))

    @staticmethod
    def new_csrf_value() -> str:
        """A fresh random value for the CSRF cookie."""
        return secrets.token_urlsafe(24)

    def csrf_token(self, cookie_value: str) -> str:
        """The token forms carry for the CSRF cookie ``cookie_value``."""
        return self._csrf.sign(cookie_value).decode("ascii")

    def csrf_valid(self, cookie_value: str | None, form_token: str | None) -> bool:
        """Whether a submitted form token matches the browser's CSRF cookie and is recent."""
        if not cookie_value or not form_token or len(form_token) > 512:
            return False
        try:
            value = self._csrf.unsign(form_token, max_age=self.max_age).decode("ascii")
        except (BadData, UnicodeDecodeError):
            return False
        return secrets.compare_digest(value, cookie_value)
