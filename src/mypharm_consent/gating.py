"""Server-side gating of third-party tags (scripts, pixels, iframes)."""

from __future__ import annotations

from mypharm_consent.config import ConsentConfig
from mypharm_consent.state import ConsentState

__all__ = ["gate_html"]


def gate_html(html: str, state: ConsentState, config: ConsentConfig) -> str:
    """Return ``html`` with the tags of categories ``state`` does not grant made inert."""
    return html
