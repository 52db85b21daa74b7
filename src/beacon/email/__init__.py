"""E-mail campaign tracking: open pixel, signed click redirects, one-click unsubscribe.

The sending side instruments each message for one recipient::

    html = tracker.email.instrument(html, campaign="2026-12-newsletter",
                                    recipient="alice@example.org")
    headers = tracker.email.headers("2026-12-newsletter", "alice@example.org")

The receiving side (``/o/``, ``/c/``, ``/u/`` under the beacon's mount)
verifies the signed tokens, records anonymized events with machine opens and
scanner clicks flagged, and keeps opt-outs forever. The address never leaves
the sender's process: tokens and tables hold a keyed hash of it.
"""

from beacon.email.classify import MachineClassifier, MachineVerdict
from beacon.email.endpoints import TRANSPARENT_GIF, email_routes
from beacon.email.exceptions import EmailTrackingError, InstrumentationError, TokenError
from beacon.email.instrument import instrument_html
from beacon.email.tokens import (
    MAX_TOKEN_LENGTH,
    EmailToken,
    EmailTokenSigner,
    normalize_address,
)
from beacon.email.tracker import EmailTracker
from beacon.email.unsubscribes import Unsubscribe, UnsubscribeRecord

__all__ = [
    "MAX_TOKEN_LENGTH",
    "TRANSPARENT_GIF",
    "EmailToken",
    "EmailTokenSigner",
    "EmailTracker",
    "EmailTrackingError",
    "InstrumentationError",
    "MachineClassifier",
    "MachineVerdict",
    "TokenError",
    "Unsubscribe",
    "UnsubscribeRecord",
    "email_routes",
    "instrument_html",
    "normalize_address",
]
