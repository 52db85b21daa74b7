"""Throttling of failed logins, per account and per client address, in memory.

After ``max_per_account`` failures for one account (or ``max_per_address``
from one address) within ``window`` seconds, further attempts are refused
until the oldest failure leaves the window. Addresses are kept only as a
keyed hash, in this process's memory; they never reach ClickHouse or a log.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginThrottle"]

# Beyond this many tracked keys, expired ones are dropped on each failure.
_PRUNE_ABOVE = 10_000


class LoginThrottle:
    """Counts recent failures and says how long a caller must wait before trying again."""

    def __init__(
        self,
        *,
        max_per_account: int = 5,
        max_per_address: int = 20,
        window: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_per_account < 1 or max_per_address < 1 or window <= 0:
            raise ValueError("throttle limits and window must be positive")
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.window = window
        self._clock = clock
        self._key = secrets.token_bytes(16)
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _keys(self, account: str, address: str | None) -> list[tuple[str, int]]:
        keys = [("u:" + account.lower(), self.max_per_account)]
        if address:
            digest = hashlib.blake2b(address.encode(), key=self._key, digest_size=16).hexdigest()
            keys.append(("a:" + digest, self.max_per_address))
        return keys

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures

    def retry_after(self, account: str, address: str | None) -> float:
        """Seconds to wait before the next attempt is allowed (0 when allowed now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(account, address):
                failures = self._recent(key, now)
                if len(failures) >= limit:
                    wait = max(wait, failures[-limit] + self.window - now)
        return wait

    def failed(self, account: str, address: str | None) -> None:
        """Record a failed attempt."""
        now = self._clock()
        with self._lock:
            for key, _ in self._keys(account, address):
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > _PRUNE_ABOVE:
                for key in list(self._failures):
                    self._recent(key, now)

    def succeeded(self, account: str) -> None:
        """Forget the account's failures after a successful login."""
        with self._lock:
            self._failures.pop("u:" + account.lower(), None)
