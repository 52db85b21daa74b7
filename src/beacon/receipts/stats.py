"""Opt-in statistics over consent receipts, for the statistics layer.

For each day (or policy revision) and each optional category: how many
decisions concerned the category, how many granted it, how many refused it,
and how many of those decisions were customized (the visitor ticked
categories one by one instead of accepting or refusing everything). Every
decision counts, whatever its source (banner, preferences page, a browser's
Global Privacy Control default). ``necessary`` is left out: it is never a
choice.

The functions block on ClickHouse: call them from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from beacon.receipts.rows import RECEIPTS_TABLE
from beacon.store import Store
from mypharm_consent.config import NECESSARY

__all__ = [
    "CUSTOMIZED_ACTIONS",
    "ActionCount",
    "OptInRate",
    "decisions_by_action",
    "optin_by_day",
    "optin_by_revision",
]

#: Actions where the visitor chose category by category.
CUSTOMIZED_ACTIONS: tuple[str, ...] = ("save", "change")


@dataclass(frozen=True, slots=True)
class OptInRate:
    """Decisions about one category in one group: a day, or a policy revision.

    ``group`` is a :class:`~datetime.date` (per day) or an ``int`` (per
    policy revision). ``customized`` counts the decisions about the category
    taken category by category; the ``*_share`` properties divide by
    ``decisions`` (``None`` when there are none).
    """

    group: date | int
    category: str
    decisions: int
    granted: int
    refused: int
    customized: int

    @property
    def granted_share(self) -> float | None:
        """Share of the decisions that granted the category."""
        return self.granted / self.decisions if self.decisions else None

    @property
    def refused_share(self) -> float | None:
        """Share of the decisions that refused the category."""
        return self.refused / self.decisions if self.decisions else None

    @property
    def customized_share(self) -> float | None:
        """Share of the decisions that were made category by category."""
        return self.customized / self.decisions if self.decisions else None


@dataclass(frozen=True, slots=True)
class ActionCount:
    """How many decisions of one kind (``accept_all``, ``reject_all``, ...) a day saw."""

    day: date
    action: str
    decisions: int


def _check_range(start: date, end: date) -> None:
    if not isinstance(start, date) or not isinstance(end, date):
        raise ValueError("start and end must be dates")
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    if (end - start) > timedelta(days=3660):
        raise ValueError("the range may span at most ten years")


def _check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    return timezone


def _range_parameters(start: date, end: date, timezone: str) -> dict[str, Any]:
    _check_range(start, end)
    return {"start": start, "end": end, "tz": _check_timezone(timezone)}


def _rates(store: Store, group: str, where: str, parameters: dict[str, Any]) -> list[OptInRate]:
    sql = (
        f"SELECT {group} AS grp, category, count() AS decisions,"
        " countIf(has(granted, category)),"
        " countIf(has(refused, category)),"
        " countIf(action IN {customized:Array(String)})"
        f" FROM `{store.database}`.`{RECEIPTS_TABLE}`"
        " ARRAY JOIN arrayDistinct(arrayConcat(granted, refused)) AS category"
        f" WHERE category != {{necessary:String}} {where}"
        " GROUP BY grp, category ORDER BY grp, category"
    )
    rows = store.query_rows(
        sql,
        {**parameters, "customized": list(CUSTOMIZED_ACTIONS), "necessary": NECESSARY},
    )
    return [
        OptInRate(
            group=grp if isinstance(grp, date) else int(grp),
            category=category,
            decisions=int(decisions),
            granted=int(granted),
            refused=int(refused),
            customized=int(customized),
        )
        for grp, category, decisions, granted, refused, customized in rows
    ]


_DAY = "toDate(ts, {tz:String})"
_IN_RANGE = f"AND {_DAY} BETWEEN {{start:Date}} AND {{end:Date}}"


def optin_by_day(store: Store, start: date, end: date, *, timezone: str = "UTC") -> list[OptInRate]:
    """Per day (in ``timezone``) from ``start`` to ``end`` inclusive, per category.

    Raises :class:`ValueError` for a reversed or over-long range or an unknown
    time zone.
    """
    return _rates(store, _DAY, _IN_RANGE, _range_parameters(start, end, timezone))


def optin_by_revision(
    store: Store, start: date, end: date, *, timezone: str = "UTC"
) -> list[OptInRate]:
    """Per policy revision and per category, over the decisions of ``start``..``end``."""
    return _rates(store, "policy_revision", _IN_RANGE, _range_parameters(start, end, timezone))


def decisions_by_action(
    store: Store, start: date, end: date, *, timezone: str = "UTC"
) -> list[ActionCount]:
    """Per day, how many decisions of each action (accept all, refuse all, ...)."""
    parameters = _range_parameters(start, end, timezone)
    rows = store.query_rows(
        f"SELECT {_DAY} AS day, action, count() FROM `{store.database}`.`{RECEIPTS_TABLE}`"
        f" WHERE 1 {_IN_RANGE} GROUP BY day, action ORDER BY day, action",
        parameters,
    )
    return [ActionCount(day=day, action=action, decisions=int(n)) for day, action, n in rows]
