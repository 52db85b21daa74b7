"""Opt-in statistics over receipts: exact counts on known data, real engine."""

from __future__ import annotations

from datetime import date

import pytest

from beacon.receipts.stats import (
    ActionCount,
    OptInRate,
    decisions_by_action,
    optin_by_day,
    optin_by_revision,
)
from beacon.store import Store

from .receipt_helpers import insert_receipts, make_receipt

ALL = ("analytics", "marketing", "necessary")
DAY1, DAY2 = date(2026, 11, 2), date(2026, 11, 3)


@pytest.fixture
def decided(store: Store) -> Store:
    insert_receipts(
        store,
        # Day 1, revision 1: accept all, refuse all, one custom choice.
        make_receipt("visitor-a-000000001", 0, granted=ALL),
        make_receipt(
            "visitor-b-000000001",
            1,
            action="reject_all",
            granted=("necessary",),
            refused=("analytics", "marketing"),
        ),
        make_receipt(
            "visitor-c-000000001",
            2,
            action="save",
            granted=("analytics", "necessary"),
            refused=("marketing",),
        ),
        # Day 2 (24 h later), revision 2: a change and a withdrawal.
        make_receipt(
            "visitor-a-000000001",
            24 * 60,
            action="change",
            policy_revision=2,
            granted=("marketing", "necessary"),
            refused=("analytics",),
        ),
        make_receipt(
            "visitor-c-000000001",
            24 * 60 + 5,
            action="withdraw",
            policy_revision=2,
            granted=("necessary",),
            refused=("analytics", "marketing"),
        ),
    )
    return store


def test_per_day_and_category(decided: Store) -> None:
    rates = optin_by_day(decided, DAY1, DAY2)
    assert rates == [
        OptInRate(DAY1, "analytics", decisions=3, granted=2, refused=1, customized=1),
        OptInRate(DAY1, "marketing", decisions=3, granted=1, refused=2, customized=1),
        OptInRate(DAY2, "analytics", decisions=2, granted=0, refused=2, customized=1),
        OptInRate(DAY2, "marketing", decisions=2, granted=1, refused=1, customized=1),
    ]
    assert rates[0].granted_share == pytest.approx(2 / 3)
    assert rates[0].refused_share == pytest.approx(1 / 3)
    assert rates[0].customized_share == pytest.approx(1 / 3)
    assert all(rate.category != "necessary" for rate in rates)


def test_per_revision(decided: Store) -> None:
    assert optin_by_revision(decided, DAY1, DAY2) == [
        OptInRate(1, "analytics", decisions=3, granted=2, refused=1, customized=1),
        OptInRate(1, "marketing", decisions=3, granted=1, refused=2, customized=1),
        OptInRate(2, "analytics", decisions=2, granted=0, refused=2, customized=1),
        OptInRate(2, "marketing", decisions=2, granted=1, refused=1, customized=1),
    ]


def test_range_and_time_zone(decided: Store) -> None:
    assert [r.group for r in optin_by_day(decided, DAY2, DAY2)] == [DAY2, DAY2]
    # 09:30 UTC is 23:30 the evening before in Tahiti (UTC-10).
    tahiti = optin_by_day(decided, date(2026, 11, 1), DAY2, timezone="Pacific/Tahiti")
    assert {r.group for r in tahiti} == {date(2026, 11, 1), DAY1}


def test_actions_per_day(decided: Store) -> None:
    assert decisions_by_action(decided, DAY1, DAY2) == [
        ActionCount(DAY1, "accept_all", 1),
        ActionCount(DAY1, "reject_all", 1),
        ActionCount(DAY1, "save", 1),
        ActionCount(DAY2, "change", 1),
        ActionCount(DAY2, "withdraw", 1),
    ]


def test_no_decisions_no_rows_and_no_division_by_zero(store: Store) -> None:
    assert optin_by_day(store, DAY1, DAY2) == []
    assert OptInRate(DAY1, "analytics", 0, 0, 0, 0).granted_share is None


@pytest.mark.parametrize(
    ("start", "end", "timezone", "message"),
    [
        (DAY2, DAY1, "UTC", "before it starts"),
        (date(2000, 1, 1), DAY2, "UTC", "ten years"),
        (DAY1, DAY2, "Mars/Olympus", "unknown time zone"),
        (DAY1, DAY2, "../../etc/passwd", "unknown time zone"),
    ],
    ids=["reversed", "too-long", "unknown-zone", "path-zone"],
)
def test_bad_filters_are_refused(
    store: Store, start: date, end: date, timezone: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        optin_by_day(store, start, end, timezone=timezone)
