"""The signed consent cookie: what it holds, how it is written and read back.

The value is a short, readable payload signed with :mod:`itsdangerous`::

    1:<consent id>:<policy revision>:<granted categories, "~"-separated>.<timestamp>.<signature>

It only uses characters allowed in a cookie value without quoting, stays well
under 300 bytes for any sensible configuration (checked at start-up), and the
signer's timestamp is the decision time. Anything wrong with a cookie (bad
signature, unknown key, expired, older policy revision, garbage, oversized)
reads as "no consent yet", never as an error.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache

from itsdangerous import BadData, TimestampSigner

from mypharm_consent.config import NECESSARY, ConsentConfig
from mypharm_consent.exceptions import ConfigurationError
from mypharm_consent.state import ConsentState

__all__ = [
    "COOKIE_SALT",
    "MAX_COOKIE_BYTES",
    "Clock",
    "ConsentCookie",
    "CookiePayload",
    "VerifiedCookie",
    "cookie_values",
    "new_consent_id",
]

#: Dedicated salt: a signature made for another purpose never validates here.
COOKIE_SALT = "mypharm-consent.cookie.v1"
#: Hard limit on ``name=value`` of the consent cookie.
MAX_COOKIE_BYTES = 300
#: Values longer than this are not even looked at.
_MAX_VALUE_CHARS = 1024
_FORMAT_VERSION = "1"
_CONSENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,43}$")
_REVISION = re.compile(r"^[1-9][0-9]{0,8}$")

#: Returns the current time as seconds since the epoch (``time.time``).
Clock = Callable[[], float]


def new_consent_id() -> str:
    """A fresh random consent identifier (128 bits, URL-safe, 22 characters)."""
    return secrets.token_urlsafe(16)


def cookie_values(cookie_header: str | None, name: str) -> Iterator[str]:
    """Every value sent for cookie ``name`` in a ``Cookie`` header, in order.

    A browser may send the same name twice (e.g. one cookie set for the host
    and one for a parent domain); callers try each. Malformed pairs are skipped.
    """
    if not cookie_header or not name:
        return
    # Only the pairs that mention the name are cut out of the header (a
    # browser's holds dozens of other cookies), each once, in order.
    found = cookie_header.find(name)
    while found != -1:
        start = cookie_header.rfind(";", 0, found) + 1
        end = cookie_header.find(";", found)
        if end == -1:
            end = len(cookie_header)
        key, sep, value = cookie_header[start:end].partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            yield value
        found = cookie_header.find(name, end)


class _ClockSigner(TimestampSigner):
    """A timestamp signer whose notion of "now" comes from an injected clock."""

    def __init__(self, secret_keys: list[str], *, salt: str, clock: Clock) -> None:
        super().__init__(secret_keys, salt=salt, digest_method=hashlib.sha256)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


@dataclass(frozen=True)
class CookiePayload:
    """What a genuine consent cookie says, whatever its policy revision."""

    consent_id: str
    revision: int
    granted: frozenset[str]
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class VerifiedCookie:
    """A cookie value whose signature and shape are genuine (its age is checked apart)."""

    #: What the value says.
    payload: CookiePayload
    #: When it was signed (seconds since the epoch).
    timestamp: int
    #: The decided states without and with Global Privacy Control, when the
    #: cookie's revision is the configuration's; ``None`` otherwise.
    states: tuple[ConsentState, ConsentState] | None


#: Visitors without a valid choice, without and with Global Privacy Control.
_UNDECIDED = (ConsentState.undecided(), ConsentState.undecided(gpc=True))


class ConsentCookie:
    """Encodes and decodes the consent cookie for one configuration.

    ``clock`` replaces :func:`time.time` (tests use it to age cookies).
    Raises :class:`~mypharm_consent.ConfigurationError` at construction when
    the largest possible cookie (every category granted) would not fit in
    :data:`MAX_COOKIE_BYTES`.
    """

    def __init__(self, config: ConsentConfig, *, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.max_age = int(config.consent_max_age.total_seconds())
        # itsdangerous wants keys oldest first and signs with the last one;
        # the configuration lists them newest first.
        self._signer = _ClockSigner(
            list(reversed(config.secret_keys)),
            salt=COOKIE_SALT,
            clock=clock,
        )
        self._known = frozenset(config.category_names)
        # A visitor sends the same cookie with every request: verify it once.
        # Only the signature and shape are cached, never the verdict on its
        # age or revision, which every read checks again.
        self._verified = lru_cache(maxsize=4096)(self._verify)
        largest = self.encode("A" * 22, frozenset(config.category_names))
        if len(config.cookie_name) + 1 + len(largest) > MAX_COOKIE_BYTES:
            raise ConfigurationError(
                f"the consent cookie would exceed {MAX_COOKIE_BYTES} bytes with every category"
                " granted: use fewer or shorter category names, or a shorter cookie_name"
            )

    def encode(self, consent_id: str, granted: frozenset[str]) -> str:
        """The signed cookie value for a decision taken now."""
        names = "~".join(sorted(granted - {NECESSARY}))
        payload = f"{_FORMAT_VERSION}:{consent_id}:{self.config.policy_revision}:{names}"
        return self._signer.sign(payload).decode("ascii")

    def decode(self, value: str) -> CookiePayload | None:
        """The payload of a genuine, unexpired cookie value, or ``None``.

        The revision is not compared with the configuration here, so that a
        cookie given under an older policy can still name the previous
        consent id of a new decision.
        """
        verified = self._fresh(value)
        return verified.payload if verified is not None else None

    def _fresh(self, value: str) -> VerifiedCookie | None:
        if not value or len(value) > _MAX_VALUE_CHARS or not value.isascii():
            return None
        verified = self._verified(value)
        if verified is None:
            return None
        # Same rule as itsdangerous' max_age, applied on every read because
        # the verification itself is cached.
        age = int(self.clock()) - verified.timestamp
        if age < 0 or age > self.max_age:
            return None
        return verified

    def _verify(self, value: str) -> VerifiedCookie | None:
        """Signature and shape check, independent of the time (so it can be cached)."""
        try:
            raw, timestamp = self._signer.unsign(value, return_timestamp=True)
            payload = raw.decode("ascii")
        except (BadData, UnicodeDecodeError):
            return None
        parts = payload.split(":")
        if len(parts) != 4 or parts[0] != _FORMAT_VERSION:
            return None
        _, consent_id, revision, names = parts
        if not _CONSENT_ID.match(consent_id) or not _REVISION.match(revision):
            return None
        granted = frozenset(n for n in names.split("~") if n in self._known) | {NECESSARY}
        decided_at = timestamp.astimezone(UTC)
        found = CookiePayload(
            consent_id=consent_id,
            revision=int(revision),
            granted=granted,
            decided_at=decided_at,
        )
        if found.revision != self.config.policy_revision:
            return VerifiedCookie(found, int(decided_at.timestamp()), None)
        states = (
            ConsentState(True, granted, consent_id, found.revision, decided_at, gpc=False),
            ConsentState(True, granted, consent_id, found.revision, decided_at, gpc=True),
        )
        return VerifiedCookie(found, int(decided_at.timestamp()), states)

    def read(self, cookie_header: str | None) -> CookiePayload | None:
        """The first genuine consent cookie in a ``Cookie`` header, any revision."""
        current: CookiePayload | None = None
        for value in cookie_values(cookie_header, self.config.cookie_name):
            payload = self.decode(value)
            if payload is None:
                continue
            if payload.revision == self.config.policy_revision:
                return payload
            current = current or payload
        return current

    def state(self, payload: CookiePayload | None, *, gpc: bool = False) -> ConsentState:
        """The consent state a payload stands for: undecided unless current."""
        if payload is None or payload.revision != self.config.policy_revision:
            return ConsentState.undecided(gpc=gpc)
        return ConsentState(
            decided=True,
            granted=payload.granted,
            consent_id=payload.consent_id,
            revision=payload.revision,
            decided_at=payload.decided_at,
            gpc=gpc,
        )

    def read_state(self, cookie_header: str | None, *, gpc: bool = False) -> ConsentState:
        """``state(read(cookie_header), gpc=gpc)``, without building anything per request.

        The state of a genuine, current cookie is built once, when its
        signature is first verified; its age is checked on every call.
        """
        return self.state_of(cookie_values(cookie_header, self.config.cookie_name), gpc=gpc)

    def state_of(self, values: Iterable[str], *, gpc: bool = False) -> ConsentState:
        """:meth:`read_state` from the consent cookie's values, as :func:`cookie_values` finds them.

        The first genuine, current value decides; none means undecided.
        """
        return self.state_among(self.current_values(values), gpc=gpc)

    def current_values(self, values: Iterable[str]) -> tuple[VerifiedCookie, ...]:
        """The genuine values of the current policy among ``values``, in order.

        What does not depend on the time, so that it can be remembered: which
        of them still counts (its age) is :meth:`state_among`'s to say.
        """
        return tuple(
            verified
            for value in values
            if value and len(value) <= _MAX_VALUE_CHARS and value.isascii()
            for verified in (self._verified(value),)
            if verified is not None and verified.states is not None
        )

    def state_among(
        self, current: tuple[VerifiedCookie, ...], *, gpc: bool = False
    ) -> ConsentState:
        """The state of the first of :meth:`current_values` still within its age, if any."""
        now = int(self.clock())
        for verified in current:
            age = now - verified.timestamp
            if 0 <= age <= self.max_age:
                assert verified.states is not None
                return verified.states[gpc]
        return _UNDECIDED[gpc]

    def set_cookie_header(self, value: str) -> str:
        """A ``Set-Cookie`` value storing ``value`` for the configured consent life."""
        expires = datetime.fromtimestamp(int(self.clock()) + self.max_age, UTC)
        return self._header(value, self.max_age, expires)

    def expired_cookie_header(self) -> str:
        """A ``Set-Cookie`` value deleting the consent cookie (same path, domain, flags)."""
        return self._header("", 0, datetime.fromtimestamp(0, UTC))

    def _header(self, value: str, max_age: int, expires: datetime) -> str:
        parts = [
            f"{self.config.cookie_name}={value}",
            f"Max-Age={max_age}",
            f"Expires={format_datetime(expires, usegmt=True)}",
            "Path=/",
        ]
        if self.config.cookie_domain:
            parts.append(f"Domain={self.config.cookie_domain}")
        if self.config.cookie_secure:
            parts.append("Secure")
        parts += ["HttpOnly", "SameSite=Lax"]
        return "; ".join(parts)
