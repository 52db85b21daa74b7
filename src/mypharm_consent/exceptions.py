"""Exceptions raised by :mod:`mypharm_consent`.

The tree::

    ConsentError
    └── ConfigurationError    a setting is invalid (raised at start-up)
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "ConsentError"]


class ConsentError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(ConsentError, ValueError):
    """A configuration value is invalid; the message says which and why."""
