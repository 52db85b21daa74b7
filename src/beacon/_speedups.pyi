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

class SpoolStats:
    """Counters of one spool directory, as C integers (see :class:`beacon.spool.SpoolStats`)."""

    accepted: int
    dropped: int
    write_errors: int
    sealed: int
    bytes_used: int

    def __init__(
        self,
        accepted: int = 0,
        dropped: int = 0,
        write_errors: int = 0,
        sealed: int = 0,
        bytes_used: int = 0,
    ) -> None: ...
    def as_dict(self) -> dict[str, int]:
        """The counters by name."""

class AppendsLock:
    """The lock of a spool directory's appends: a ``threading.Lock`` the compiled append takes."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, as ``threading.Lock.acquire`` does; whether it was taken."""
    def release(self) -> None:
        """Give the lock back (``RuntimeError`` if it is not held)."""
    def locked(self) -> bool:
        """Whether the lock is held."""
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc_info: object) -> None: ...

class SegmentFields:
    """The write position of a segment being written, as C integers."""

    size: int
    rows: int
    offsets: int

class SpoolFields:
    """A spool's open segment and whether it was written since its last flush."""

    _open: Any
    _dirty: bool

class SpoolDirFields:
    """The bounds a spool directory's appends check, as C integers."""

    max_bytes: int
    max_line_bytes: int
    segment_max_bytes: int
