"""What a visitor has consented to, as read from the request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mypharm_consent.config import NECESSARY

__all__ = ["ConsentState"]


@dataclass(frozen=True)
class ConsentState:
    """The visitor's consent for the current request.

    ``decided`` is false on a first visit and whenever the cookie is missing,
    expired, tampered with, signed by an unknown key or given under an older
    policy revision: the banner must then be shown and only ``necessary`` is
    granted. ``gpc`` tells that the browser sent ``Sec-GPC: 1``.
    """

    decided: bool
    granted: frozenset[str]
    consent_id: str | None = None
    revision: int | None = None
    decided_at: datetime | None = None
    gpc: bool = False

    def allows(self, category: str) -> bool:
        """Whether ``category`` is granted (``necessary`` always is)."""
        return category == NECESSARY or category in self.granted

    @classmethod
    def undecided(cls, *, gpc: bool = False) -> ConsentState:
        """The state of a visitor who has made no valid choice yet."""
        return cls(decided=False, granted=frozenset({NECESSARY}), gpc=gpc)
