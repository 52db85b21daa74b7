"""beacon: anonymous first-party pixel, e-mail tracking and statistics in ClickHouse.

``Beacon`` is the tracker of one site and ``tracker.app`` its ASGI app;
``PixelEvent`` is the anonymized record every endpoint produces; ``Store``
names the ClickHouse store by URL.
"""

from beacon.app import Beacon
from beacon.events import PixelEvent
from beacon.exceptions import BeaconError
from beacon.store import Store, open_store

__all__ = ["Beacon", "BeaconError", "PixelEvent", "Store", "open_store"]

__version__ = "0.1.0"
