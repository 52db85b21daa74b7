"""The statistics dashboard: HTML pages, a JSON API with OpenAPI, CSV, behind a login.

:func:`create_dashboard` returns an ASGI app to mount (``/stats`` by convention).
"""

from beacon.dashboard.app import Dashboard, create_dashboard

__all__ = ["Dashboard", "create_dashboard"]
