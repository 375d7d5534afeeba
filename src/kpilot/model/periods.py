"""Calendar periods: grains, the workspace's week start, and period references like "2026-Q1"."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum

from kpilot.model.errors import msg


class Grain(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"

    @property
    def order(self) -> int:
        return list(Grain).index(self)


class WeekStart(StrEnum):
    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"

    @property
    def isodow(self) -> int:
        """ISO day of week of the first day of a week: Monday = 1 ... Sunday = 7."""
        return list(WeekStart).index(self) + 1


def _month_start(d: date) -> date:
    return d.replace(day=1)


def add_months(d: date, months: int) -> date:
    """First-of-month arithmetic: `d` must be the first day of a month."""
    index = d.year * 12 + (d.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def period_start(d: date | datetime, grain: Grain, week_start: WeekStart = WeekStart.monday) -> date:
    """The first day of the period of `grain` that contains `d`."""
    if isinstance(d, datetime):
        d = d.date()
    if grain is Grain.day:
        return d
    if grain is Grain.week:
        back = (d.isoweekday() - week_start.isodow) % 7
        return d - timedelta(days=back)
    if grain is Grain.month:
        return _month_start(d)
    if grain is Grain.quarter:
        return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    return date(d.year, 1, 1)


def shift(start: date, grain: Grain, n: int) -> date:
    """The start of the period `n` periods after the one starting at `start` (n may be negative)."""
    if grain is Grain.day:
        return start + timedelta(days=n)
    if grain is Grain.week:
        return start + timedelta(days=7 * n)
    if grain is Grain.month:
        return add_months(start, n)
    if grain is Grain.quarter:
        return add_months(start, 3 * n)
    return date(start.year + n, 1, 1)


def next_start(start: date, grain: Grain) -> date:
    return shift(start, grain, 1)


def periods_between(first: date, last: date, grain: Grain, week_start: WeekStart = WeekStart.monday) -> list[date]:
    """Starts of all periods from the one containing `first` to the one containing `last`, inclusive."""
    out: list[date] = []
    cur = period_start(first, grain, week_start)
    end = period_start(last, grain, week_start)
    while cur <= end:
        out.append(cur)
        cur = next_start(cur, grain)
    return out


def label(start: date, grain: Grain, week_start: WeekStart = WeekStart.monday) -> str:
    """A short human label: 2026, 2026-Q1, 2026-01, 2026-W05 (ISO weeks) or the start date."""
    if grain is Grain.year:
        return f"{start.year}"
    if grain is Grain.quarter:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if grain is Grain.month:
        return f"{start.year}-{start.month:02d}"
    if grain is Grain.week and week_start is WeekStart.monday:
        iso = start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return start.isoformat()


_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.I)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)
_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")

PERIOD_FORMS = msg("2026, 2026-Q1, 2026-03, 2026-W05 or 2026-03-15")


def parse_period(value: object) -> tuple[Grain, date]:
    """Parse a period reference; returns the grain it names and its first day.

    Raises ValueError with the accepted forms when the text is not a period.
    """
    if isinstance(value, datetime):
        return Grain.day, value.date()
    if isinstance(value, date):
        return Grain.day, value
    if isinstance(value, int) and 1000 <= value <= 9999:
        return Grain.year, date(value, 1, 1)
    text = str(value).strip()
    try:
        if m := _YEAR.match(text):
            return Grain.year, date(int(m[1]), 1, 1)
        if m := _QUARTER.match(text):
            return Grain.quarter, date(int(m[1]), 3 * (int(m[2]) - 1) + 1, 1)
        if m := _MONTH.match(text):
            return Grain.month, date(int(m[1]), int(m[2]), 1)
        if m := _WEEK.match(text):
            return Grain.week, date.fromisocalendar(int(m[1]), int(m[2]), 1)
        if m := _DAY.match(text):
            return Grain.day, date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        pass
    raise ValueError(msg("'{text}' is not a period; write it as {forms}", text=text, forms=PERIOD_FORMS))


#: The dates kpilot computes as of: periods run up to the as-of date, so a date in year 9999 overflows and one
#: centuries ahead would only make long empty series.
DAY_RANGE = (date(1900, 1, 1), date(2199, 12, 31))


class NotADay(ValueError):
    """A text that is not a YYYY-MM-DD date in DAY_RANGE; `out_of_range` tells a real date too far off."""

    def __init__(self, message: str, *, out_of_range: bool = False):
        super().__init__(message)
        self.out_of_range = out_of_range


def parse_day(value: str) -> date:
    """An as-of day written YYYY-MM-DD, or NotADay saying what is wrong (not a date, or out of DAY_RANGE)."""
    try:
        grain, day = parse_period(value)
    except ValueError:
        grain, day = None, None
    if grain is not Grain.day or day is None:
        raise NotADay(msg("'{value}' is not a date; write it as YYYY-MM-DD", value=value))
    if not DAY_RANGE[0] <= day <= DAY_RANGE[1]:
        raise NotADay(msg("as_of {value} is out of range. Fix: give a date from {first} to {last}.", value=value,
                          first=DAY_RANGE[0].isoformat(), last=DAY_RANGE[1].isoformat()), out_of_range=True)
    return day


def period_range(value: object) -> tuple[date, date]:
    """The days a period reference covers, as [first day, first day after)."""
    grain, start = parse_period(value)
    return start, next_start(start, grain)
