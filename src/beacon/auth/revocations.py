"""Dashboard sessions ended on the server, shared by every process through ClickHouse.

A signed session cookie is valid until it expires; deleting it from the
browser that logs out does nothing to a copy of it. Logging out therefore
records the session's id (as a SHA-256 digest) in
``dashboard_session_revocations``, and every request checks it there.

Each process keeps what it learnt for a moment: an ended session stays
ended in its memory for the session's lifetime, and a live one is asked
again after ``cache_seconds``, so another process sees a logout within that
delay and the one that logged out sees it at once. Every method blocks on
the store: call it from a worker thread in an async app.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from beacon.auth.sessions import Session
from beacon.migrations.m0034_dashboard_session_revocations import SESSION_REVOCATIONS
from beacon.store import Store

__all__ = ["DEFAULT_CACHE_SECONDS", "SessionRevocations"]

#: How long a process trusts that a session is still live before asking again.
DEFAULT_CACHE_SECONDS = 2.0
# Beyond this many remembered sessions, stale entries are dropped.
_PRUNE_ABOVE = 10_000


def _digest(session: Session) -> str:
    return hashlib.sha256(session.session_id.encode("utf-8")).hexdigest()


class SessionRevocations:
    """Ends sessions (:meth:`revoke`) and tells whether one was ended (:meth:`is_revoked`).

    ``max_age`` is the sessions' lifetime in seconds: an ended session is
    remembered that long. ``clock`` is monotonic seconds, for the cache.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_age: int,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0 or cache_seconds < 0:
            raise ValueError("max_age must be positive and cache_seconds not negative")
        self.store = store
        self.max_age = max_age
        self.cache_seconds = cache_seconds
        self._clock = clock
        # digest -> (revoked, when this process learnt it)
        self._known: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def _remember(self, digest: str, revoked: bool) -> None:
        now = self._clock()
        with self._lock:
            self._known[digest] = (revoked, now)
            if len(self._known) > _PRUNE_ABOVE:
                for key, (ended, seen) in list(self._known.items()):
                    if now - seen > (self.max_age if ended else self.cache_seconds):
                        del self._known[key]

    def revoke(self, session: Session) -> None:
        """End ``session`` for every process (this one at once)."""
        digest = _digest(session)
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        self.store.command(
            f"INSERT INTO {SESSION_REVOCATIONS} (session_hash, name, revoked_at, expires_at) "
            "VALUES ({hash:String}, {name:String}, {now:DateTime('UTC')}, "
            "{expires:DateTime('UTC')})",
            parameters={
                "hash": digest,
                "name": session.name,
                "now": now,
                "expires": now + timedelta(seconds=self.max_age),
            },
        )
        self._remember(digest, True)

    def is_revoked(self, session: Session) -> bool:
        """Whether ``session`` was ended by a logout (in any process)."""
        digest = _digest(session)
        with self._lock:
            known = self._known.get(digest)
        if known is not None and (known[0] or self._clock() - known[1] < self.cache_seconds):
            return known[0]
        rows = self.store.query_rows(
            f"SELECT count() FROM {SESSION_REVOCATIONS} WHERE session_hash = {{hash:String}}",
            {"hash": digest},
        )
        revoked = bool(rows and rows[0][0])
        self._remember(digest, revoked)
        return revoked
