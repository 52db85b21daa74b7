"""Filters shared by every statistics query: a date range, a site, a campaign.

Values arrive as plain strings (query string, command line) and are validated
here once, so the queries only ever see well-formed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from beacon.stats.errors import InvalidFilter

__all__ = ["MAX_RANGE_DAYS", "DateRange", "parse_campaign", "parse_site"]

#: The longest range a query accepts (about ten years); raw events live 25 months.
MAX_RANGE_DAYS = 3660
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive range of UTC calendar days, ``start`` to ``end``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise InvalidFilter("from", "the start of the range is after its end")
        if (self.end - self.start).days >= MAX_RANGE_DAYS:
            raise InvalidFilter("from", f"a range spans at most {MAX_RANGE_DAYS} days")

    @property
    def days(self) -> int:
        """Number of days in the range."""
        return (self.end - self.start).days + 1

    def each_day(self) -> list[date]:
        """Every day of the range, in order."""
        return [self.start + timedelta(days=offset) for offset in range(self.days)]

    @classmethod
    def last_days(cls, days: int, *, today: date | None = None) -> DateRange:
        """The ``days`` days ending today (UTC) included."""
        end = today or datetime.now(UTC).date()
        return cls(end - timedelta(days=days - 1), end)

    @classmethod
    def parse(
        cls,
        start: str | None,
        end: str | None,
        *,
        default_days: int = 30,
        today: date | None = None,
    ) -> DateRange:
        """Build a range from ISO dates (``YYYY-MM-DD``); missing ends get defaults.

        Without ``end`` the range ends today (UTC); without ``start`` it covers
        ``default_days`` days up to its end.
        """
        end_day = _parse_day("to", end) if end else (today or datetime.now(UTC).date())
        start_day = (
            _parse_day("from", start) if start else end_day - timedelta(days=default_days - 1)
        )
        return cls(start_day, end_day)


def _parse_day(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidFilter(field, f"expected a date as YYYY-MM-DD, got {value[:40]!r}") from None


def _parse_name(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > _MAX_NAME:
        raise InvalidFilter(field, f"at most {_MAX_NAME} characters")
    if any(ord(char) < 32 for char in value):
        raise InvalidFilter(field, "control characters are not allowed")
    return value


def parse_site(value: str | None) -> str | None:
    """A site filter: ``None`` (or blank) means every site."""
    return _parse_name("site", value)


def parse_campaign(value: str | None) -> str:
    """A campaign name, required and non-blank."""
    name = _parse_name("campaign", value)
    if name is None:
        raise InvalidFilter("campaign", "a campaign name is required")
    return name
