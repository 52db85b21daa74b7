"""Types of the compiled accelerator of the page-view hot path (see :mod:`beacon.pageviews`)."""

from collections.abc import Callable, MutableMapping
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

class Recorder:
    """:func:`record_pixel` bound to a beacon's clock, encoder, salts and spool."""

    spool: Spool

    def __init__(
        self, clock_ns: Callable[[], int], encoder: PageviewEncoder, salts: SaltSource, spool: Spool
    ) -> None: ...
    def __call__(self, scope: MutableMapping[str, Any], /) -> bool | None:
        """Record the request as :func:`record_pixel` does, at ``clock_ns()``."""
