"""Errors raised by the statistics layer.

::

    StatsError
    └── InvalidFilter   (also a ValueError: a date range, site or campaign that cannot be used)
"""

from __future__ import annotations

__all__ = ["InvalidFilter", "StatsError"]


class StatsError(Exception):
    """Base class of every error raised by :mod:`beacon.stats`."""


class InvalidFilter(StatsError, ValueError):
    """A filter value (date range, site, campaign, limit) is malformed or out of bounds.

    ``field`` names the offending parameter so that an API can point at it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
