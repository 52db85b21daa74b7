"""Exceptions raised by :mod:`beacon.email`.

The tree::

    EmailTrackingError
    ├── InstrumentationError   a message, link, campaign or setting cannot be instrumented
    └── TokenError             a token from a request failed verification

Both leaves are also :class:`ValueError`, so callers that only know "bad
value" still catch them.
"""

from __future__ import annotations

__all__ = ["EmailTrackingError", "InstrumentationError", "TokenError"]


class EmailTrackingError(Exception):
    """Base class of every error raised by the e-mail tracking package."""


class InstrumentationError(EmailTrackingError, ValueError):
    """The sender's input cannot be instrumented; the message says what and why.

    Raised before anything is sent: a ``javascript:``/``data:``/``vbscript:``
    link, a link too long to fit in a click token, an invalid campaign name,
    an invalid base URL or secret key.
    """


class TokenError(EmailTrackingError, ValueError):
    """A token taken from a request is not one of ours.

    Covers every way a token can fail: truncated, forged, signed with a key
    that has been removed, longer than :data:`~beacon.email.tokens.MAX_TOKEN_LENGTH`,
    non-ASCII, of the wrong kind or of an unknown format. ``reason`` is a
    short machine-readable word (``"length"``, ``"charset"``, ``"signature"``,
    ``"format"``) for counters and logs; the token itself is never included.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
