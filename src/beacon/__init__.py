"""beacon: anonymous first-party pixel, e-mail tracking and statistics in ClickHouse."""

from beacon.events import PixelEvent

__all__ = ["PixelEvent"]

__version__ = "0.1.0"
