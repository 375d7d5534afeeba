"""Cron schedules: the five-field expressions of a source's `schedule:`, and their next run time.

Times are wall-clock times in the workspace's time zone. On the day clocks go forward, a time that does
not exist (02:30 in Europe/Paris on the last Sunday of March) is skipped; on the day they go back, a time
that happens twice runs once, at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kpilot.model.errors import Message, msg

# (name, lowest, highest, names for values)
_FIELDS: tuple[tuple[Message, int, int, tuple[str, ...]], ...] = (
    (msg("minute"), 0, 59, ()),
    (msg("hour"), 0, 23, ()),
    (msg("day of month"), 1, 31, ()),
    (msg("month"), 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    (msg("day of week"), 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
_HORIZON_DAYS = 366 * 5  # a schedule such as "0 0 30 2 *" never runs: give up looking after that


class CronError(ValueError):
    """A cron expression that cannot be read; its text says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression: minute, hour, day of month, month, day of week."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`

    def matches_day(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        in_month, in_week = d.day in self.days, (d.isoweekday() % 7) in self.weekdays
        # Cron's rule: when both day fields are restricted, a day matching either one runs.
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, moment: datetime, tz: str | ZoneInfo) -> datetime:
        """The first run strictly after `moment` (aware), as an aware UTC datetime."""
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        after = moment.astimezone(UTC)
        local = after.astimezone(zone)
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                        run = wall.astimezone(UTC)
                        if run <= after or not _exists(wall, zone):
                            continue
                        return run
            day += timedelta(days=1)
        raise CronError(msg("schedule '{schedule}' never runs (no such date within five years)", schedule=self.text))


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether a wall-clock time happens at all (not in the hour skipped when clocks go forward)."""
    back = wall.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


def parse_cron(text: str) -> Cron:
    """Read a cron expression ("*/15 * * * *", "0 7 * * mon-fri", "@daily"); raises CronError."""
    expanded = _MACROS.get(text.strip().lower(), text)
    parts = expanded.split()
    if len(parts) != 5:
        raise CronError(msg("schedule '{schedule}' has {n} field(s); a cron schedule has 5: minute hour "
                            "day-of-month month day-of-week, e.g. \"*/15 * * * *\" (every 15 minutes) or "
                            "\"0 7 * * mon-fri\" (weekdays at 7:00)", schedule=text, n=len(parts)))
    sets = [_field(text, part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(text, frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]), weekdays,
                any_day=parts[2] == "*", any_weekday=parts[4] == "*")


def _field(text: str, part: str, name: Message, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    out: set[int] = set()
    for item in part.split(","):
        body, _, step_text = item.partition("/")
        step = _number(text, step_text, name, names, low) if step_text else 1
        if step_text and (not step_text.isdigit() or not 1 <= step <= high):
            raise _bad(text, item, name, low, high)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _number(text, a, name, names, low), _number(text, b, name, names, low)
        else:
            first = _number(text, body, name, names, low)
            last = high if step_text else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise _bad(text, item, name, low, high)
        out.update(range(first, last + 1, step))
    return out


def _number(text: str, token: str, name: Message, names: tuple[str, ...], low: int) -> int:
    if token.isdigit():
        return int(token)
    if token.lower() in names:
        return names.index(token.lower()) + (low if name == "month" else 0)
    raise CronError(msg("schedule '{schedule}': '{value}' is not a valid {field}", schedule=text, value=token,
                        field=name))


def _bad(text: str, item: str, name: Message, low: int, high: int) -> CronError:
    return CronError(msg("schedule '{schedule}': '{value}' is not a valid {field}; write a number from {low} to "
                         "{high}, a range a-b, a list a,b or a step */n", schedule=text, value=item, field=name,
                         low=low, high=high))


__all__ = ["Cron", "CronError", "parse_cron"]
