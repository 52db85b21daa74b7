"""Proof of consent as the consent layer sees it: receipts, erasure, and their provider.

Every decision a visitor makes is kept as a :class:`ConsentReceipt`: what was
chosen, when, under which policy revision and which banner wording. The
consent layer itself stores nothing; a site hands it a :class:`ReceiptProvider`
(``ConsentConfig.receipts``), and the preferences page uses it to show the
visitor their past receipts, let them download them, and erase them after a
grace period. :class:`beacon.receipts.ReceiptStore` is the ClickHouse-backed
provider.

Errors a provider raises, all :class:`~mypharm_consent.ConsentError`::

    ReceiptError
    ├── UnknownConsentId          nothing is stored under this consent id
    ├── ErasureAlreadyRequested   an erasure is already scheduled or done
    ├── ErasureNotPending         there is no scheduled erasure to cancel
    └── ErasureDeadlinePassed     the grace period is over: too late to cancel
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from mypharm_consent.decisions import ConsentDecision
from mypharm_consent.exceptions import ConsentError

__all__ = [
    "CONSENT_ID_PATTERN",
    "ConsentReceipt",
    "ErasureAlreadyRequested",
    "ErasureDeadlinePassed",
    "ErasureNotPending",
    "ErasureState",
    "ErasureStatus",
    "ReceiptError",
    "ReceiptProvider",
    "UnknownConsentId",
    "is_consent_id",
    "iso_utc",
]

#: What a consent id may look like: URL-safe characters only, 8 to 64 of them.
#: Anything else is refused before it reaches a query or a file name.
CONSENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

ErasureState = Literal["none", "requested", "cancelled", "done"]


def is_consent_id(value: object) -> bool:
    """Whether ``value`` has the shape of a consent id (not whether it is known)."""
    return isinstance(value, str) and CONSENT_ID_PATTERN.match(value) is not None


class ReceiptError(ConsentError):
    """Base of the errors about receipts; ``consent_id`` names the id concerned."""

    def __init__(self, message: str, *, consent_id: str) -> None:
        super().__init__(message)
        self.consent_id = consent_id


class UnknownConsentId(ReceiptError):
    """No receipt and no erasure is stored under this consent id."""


class ErasureAlreadyRequested(ReceiptError):
    """An erasure of this consent id is already scheduled (or already done).

    ``status`` is the erasure as it stands, so the message can tell when it
    is due or when it was carried out.
    """

    def __init__(self, message: str, *, consent_id: str, status: ErasureStatus) -> None:
        super().__init__(message, consent_id=consent_id)
        self.status = status


class ErasureNotPending(ReceiptError):
    """There is no scheduled erasure of this consent id to cancel."""


class ErasureDeadlinePassed(ReceiptError):
    """The grace period is over: the erasure can no longer be cancelled."""

    def __init__(self, message: str, *, consent_id: str, status: ErasureStatus) -> None:
        super().__init__(message, consent_id=consent_id)
        self.status = status


def iso_utc(moment: datetime) -> str:
    """``moment`` in ISO 8601, UTC, to the millisecond, with a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ConsentReceipt:
    """One stored decision: the proof that a visitor chose this, then, on that banner.

    ``banner_hash`` names the exact banner wording the visitor answered (its
    rendered text is kept once per hash). A receipt holds no IP address and
    no User-Agent string: ``device_class`` is all that is kept of the device.
    """

    consent_id: str
    time: datetime
    action: str
    granted: tuple[str, ...]
    refused: tuple[str, ...]
    policy_revision: int
    banner_hash: str
    language: str
    source: str
    device_class: str

    @classmethod
    def from_decision(cls, decision: ConsentDecision) -> ConsentReceipt:
        """The receipt of ``decision``, categories sorted so receipts compare equal."""
        return cls(
            consent_id=decision.consent_id,
            time=decision.time.astimezone(UTC),
            action=decision.action,
            granted=tuple(sorted(decision.granted)),
            refused=tuple(sorted(decision.refused)),
            policy_revision=decision.policy_revision,
            banner_hash=decision.banner_hash,
            language=decision.language,
            source=decision.source,
            device_class=decision.device_class,
        )

    def to_json(self) -> dict[str, Any]:
        """The receipt as a JSON-ready mapping (time in ISO 8601, UTC, milliseconds)."""
        return {
            "consent_id": self.consent_id,
            "time": iso_utc(self.time),
            "action": self.action,
            "granted": list(self.granted),
            "refused": list(self.refused),
            "policy_revision": self.policy_revision,
            "banner_hash": self.banner_hash,
            "language": self.language,
            "source": self.source,
            "device_class": self.device_class,
        }


@dataclass(frozen=True)
class ErasureStatus:
    """Where the erasure of a consent id stands.

    ``state`` is ``none`` when no erasure was ever asked, ``requested`` while
    the grace period runs (or until the next purge once it is over),
    ``cancelled`` when the visitor changed their mind, ``done`` once every
    receipt has been deleted. ``due_at`` is the end of the grace period.
    """

    state: ErasureState
    requested_at: datetime | None = None
    due_at: datetime | None = None
    done_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The status as a JSON-ready mapping."""
        return {
            "state": self.state,
            "requested_at": iso_utc(self.requested_at) if self.requested_at else None,
            "due_at": iso_utc(self.due_at) if self.due_at else None,
            "done_at": iso_utc(self.done_at) if self.done_at else None,
        }


@runtime_checkable
class ReceiptProvider(Protocol):
    """Where the preferences page reads and erases a visitor's receipts.

    Methods are synchronous (they may query a database): asynchronous callers
    run them in a worker thread. Every method takes the consent id from the
    visitor's *signed* cookie, so only its holder reaches its receipts.
    """

    def history(self, consent_id: str, limit: int | None = None) -> Sequence[ConsentReceipt]:
        """The receipts of ``consent_id``, oldest first (empty when there are none).

        With ``limit``, only the ``limit`` most recent ones.
        """
        ...

    def export(self, consent_id: str) -> bytes:
        """The consent history of ``consent_id`` as a UTF-8 JSON document."""
        ...

    def request_erasure(self, consent_id: str) -> ErasureStatus:
        """Schedule the erasure of every receipt of ``consent_id`` after the grace period."""
        ...

    def cancel_erasure(self, consent_id: str) -> ErasureStatus:
        """Cancel a scheduled erasure while the grace period runs."""
        ...

    def erasure_status(self, consent_id: str) -> ErasureStatus:
        """Where the erasure of ``consent_id`` stands."""
        ...
