"""A visitor's decision, as handed to ``ConsentConfig.on_decision``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["ConsentDecision", "DecisionAction", "DecisionSource"]

DecisionAction = Literal[
    "accept_all",
    "reject_all",
    "save",
    "change",
    "withdraw",
    "gpc_default",
    "reprompt_answered",
]
DecisionSource = Literal["banner", "preferences", "js", "no-js"]


@dataclass(frozen=True)
class ConsentDecision:
    """One decision: what was shown, what was chosen, when.

    It carries no IP address and no User-Agent string: ``device_class`` is
    ``desktop``, ``mobile``, ``tablet``, ``bot`` or ``unknown``.
    ``banner_hash`` identifies the exact banner (template, texts, language)
    the visitor answered.
    """

    consent_id: str
    previous_consent_id: str | None
    time: datetime
    action: DecisionAction
    granted: frozenset[str]
    refused: frozenset[str]
    policy_revision: int
    banner_hash: str
    language: str
    source: DecisionSource
    device_class: str
