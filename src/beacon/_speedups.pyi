"""Types of the compiled accelerator of the page-view hot path (see :mod:`beacon.pageviews`)."""

from collections.abc import MutableMapping
from typing import Any

from beacon.anonymize import SaltSource
from beacon.pageviews import PageviewEncoder
from beacon.spool import Spool

def record_pixel(
    scope: MutableMapping[str, Any],
    now_ns: int,
    encoder: PageviewEncoder,
    salts: SaltSource,
    spool: Spool,
    ip: str | None = None,
    /,
) -> bool | None:
    """Record a cached ``/p.gif`` request: ``True`` once in the spool, ``None`` otherwise.

    ``ip`` replaces the scope's client address (the address read from a trusted proxy's header).
    """
