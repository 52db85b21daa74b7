"""Exceptions raised by :mod:`beacon`.

The tree::

    BeaconError
    ├── ConfigurationError           a setting is invalid (raised at construction)
    ├── StoreError                   the ClickHouse store cannot be used
    │   ├── InvalidStoreURL          the store URL cannot be understood
    │   ├── EmbeddedEngineMissing    chdb:// asked for, the ``embedded`` extra not installed
    │   ├── EmbeddedPathConflict     this process already opened another chDB directory
    │   ├── EmbeddedLocked           another process owns the chDB directory
    │   └── StoreUnavailable         the store did not answer (down, refused, timed out)
    ├── MigrationError               a schema migration failed or is malformed
    └── SpoolError                   the on-disk spool cannot be used
        └── SpoolLocked              another live process owns the spool directory

Every store error carries ``url`` (with any password masked) so that a log
line says which store was meant.
"""

from __future__ import annotations

__all__ = [
    "BeaconError",
    "ConfigurationError",
    "EmbeddedEngineMissing",
    "EmbeddedLocked",
    "EmbeddedPathConflict",
    "InvalidStoreURL",
    "MigrationError",
    "SpoolError",
    "SpoolLocked",
    "StoreError",
    "StoreUnavailable",
]


class BeaconError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(BeaconError, ValueError):
    """A configuration value is invalid; the message says which and why."""


class StoreError(BeaconError):
    """The ClickHouse store named by ``url`` cannot be used."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class InvalidStoreURL(StoreError, ValueError):
    """The store URL has an unknown scheme, a bad database name or a bad option."""


class EmbeddedEngineMissing(StoreError, ImportError):
    """A ``chdb://`` URL was given but chDB is not installed.

    Install the ``embedded`` extra: ``pip install 'mypharm-consent[embedded]'``.
    """


class EmbeddedPathConflict(StoreError):
    """This process already opened a different chDB directory.

    The embedded engine binds a process to the first directory it opens, for
    the life of the process; ``opened`` is that directory.
    """

    def __init__(self, message: str, *, url: str = "", opened: str = "") -> None:
        super().__init__(message, url=url)
        self.opened = opened


class EmbeddedLocked(StoreError):
    """Another process has the chDB directory open.

    Only one process may own an embedded database; other worker processes
    spool their events and ``beacon ingest`` (run by the owner) drains them.
    """


class StoreUnavailable(StoreError):
    """The store did not answer: server down, connection refused, timeout."""


class MigrationError(BeaconError):
    """A schema migration is malformed or one of its statements failed."""


class SpoolError(BeaconError):
    """The on-disk spool cannot be used (permissions, bad directory)."""


class SpoolLocked(SpoolError):
    """Another live process owns this spool directory."""
