"""ESN template (IT services firm): occupancy rate TACE as North Star, plus a year of sample data.

The sample firm has about sixty consultants who alternate missions and bench time. Consultants,
missions, timesheets and sales opportunities are simulated day by day from one random stream, so
every metric of the template (TACE, daily rate, margin per consultant, bench, pipeline, staffing
lead time, attrition) tells one consistent story and the same `today` always gives the same files.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from kpilot.model.periods import Grain, add_months, next_start
from kpilot.templates import Cell, sample_start, write_sample

SEED = 20_261_126

GRADES = ("junior", "confirmed", "senior", "manager")
GRADE_WEIGHTS = (0.25, 0.35, 0.30, 0.10)
# Fully loaded yearly cost (salary, payroll taxes, paid leave) divided by the ~205 days actually
# worked in a year, so that leave costs nothing on the day it is taken: accountants spread it over
# the year, and a margin that collapses every August would be noise, not a signal. With the list
# daily rate of each grade this gives the 25-35 % gross margin typical of French ESNs.
DAILY_COST = {"junior": 270, "confirmed": 330, "senior": 410, "manager": 480}
LIST_RATE = {"junior": 500, "confirmed": 600, "senior": 710, "manager": 860}
PRACTICES = ("data", "cloud", "software", "cybersecurity")
PRACTICE_WEIGHTS = (0.3, 0.25, 0.3, 0.15)
CLIENTS = (
    "Banque Rhodanienne", "Assurances du Centre", "Transalpes Logistique", "Groupe Vellance",
    "Mutuelle Horizon", "Energies Durance", "Cristal Retail", "Aeronautique Saint-Exupéry",
    "Pharmalys", "Ville de Lyon", "Métropole Numérique", "Caisse Régionale Alpes",
    "Nexa Telecom", "Optimum Santé", "Agrinova", "Société des Eaux du Sud",
)
BUSINESS_MANAGERS = ("Claire Martin", "Julien Petit", "Sophie Durand", "Karim Benali")
# Fixed-date French public holidays: no timesheet rows on those days (moveable feasts are ignored).
HOLIDAYS = ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25))

INITIAL_HEADCOUNT = 56
HIRES_PER_MONTH = 1.6
MONTHLY_ATTRITION = 0.012
STAGE_PROBABILITY = {"qualification": 0.1, "proposal": 0.35, "negotiation": 0.7}

TABLES: dict[str, tuple[str, ...]] = {
    "consultants": ("consultant_id", "name", "hired_on", "left_on", "grade", "daily_cost", "practice"),
    "timesheets": ("consultant_id", "date", "kind", "days", "mission_id"),
    "missions": ("mission_id", "consultant_id", "client", "start_date", "end_date", "daily_rate",
                 "requested_on", "is_renewal", "end_notice_on"),
    "opportunities": ("opportunity_id", "created_at", "proposal_sent_at", "closed_at", "stage", "amount",
                      "probability", "owner", "client", "practice"),
}

FIRST_NAMES = ("Léa", "Hugo", "Chloé", "Lucas", "Manon", "Nathan", "Camille", "Théo", "Inès", "Louis",
               "Sarah", "Gabriel", "Emma", "Yanis", "Julie", "Maxime", "Amira", "Antoine", "Zoé", "Mehdi")
LAST_NAMES = ("Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
              "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent",
              "Fournier", "Morel", "Girard", "Andre", "Mercier", "Dupont", "Lambert", "Bonnet", "Faure")


def write(target: Path, language: str, today: date) -> None:
    """Write kpilot.yaml (in `language`) and data/*.csv with sample data ending at `today`."""
    write_sample(target, "esn", language, today, TABLES, generate(today))


@dataclass
class Consultant:
    consultant_id: str
    name: str
    hired_on: date
    left_on: date | None
    grade: str
    daily_cost: int
    practice: str


@dataclass
class Mission:
    mission_id: str
    consultant_id: str
    client: str
    start: int  # index into the business-day calendar
    end: int  # index of the last day, inclusive
    daily_rate: float
    requested_on: date
    is_renewal: bool


class Calendar:
    """Business days (weekdays minus fixed public holidays), from a burn-in period to past `today`."""

    def __init__(self, first: date, last: date):
        self.days: list[date] = []
        d = first
        while d <= last:
            if d.weekday() < 5 and (d.month, d.day) not in HOLIDAYS:
                self.days.append(d)
            d += timedelta(days=1)

    def index(self, d: date) -> int:
        """Index of the first business day on or after `d` (len(days) when past the end)."""
        return bisect.bisect_left(self.days, d)

    def day(self, i: int) -> date:
        return self.days[max(0, min(i, len(self.days) - 1))]


def _weekday(d: date) -> date:
    """The next Monday when `d` falls on a weekend (nobody is hired or sends a proposal on Sunday)."""
    return d + timedelta(days=7 - d.weekday()) if d.weekday() >= 5 else d


def _working_time(t: datetime) -> datetime:
    return datetime.combine(_weekday(t.date()), t.time())


def _consultants(rng: np.random.Generator, start: date, today: date) -> list[Consultant]:
    people: list[Consultant] = []

    def add(hired_on: date) -> None:
        grade = str(rng.choice(GRADES, p=GRADE_WEIGHTS))
        # Attrition is a constant monthly hazard once the trial period (3 months) is over.
        risk_from = max(start, hired_on + timedelta(days=90))
        months = rng.exponential(1 / MONTHLY_ATTRITION)
        left = _weekday(risk_from + timedelta(days=int(months * 30.4)))
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        people.append(Consultant(
            consultant_id=f"C{len(people) + 1:03d}", name=name, hired_on=hired_on,
            left_on=left if left <= today else None, grade=grade,
            daily_cost=int(round(DAILY_COST[grade] * rng.normal(1, 0.06) / 5) * 5),
            practice=str(rng.choice(PRACTICES, p=PRACTICE_WEIGHTS)),
        ))

    for _ in range(INITIAL_HEADCOUNT):
        add(_weekday(start - timedelta(days=int(rng.integers(30, 2400)))))
    month = start
    while month <= today:
        for _ in range(rng.poisson(HIRES_PER_MONTH)):
            # Most consultants start on a Monday early in the month.
            hired = _weekday(month + timedelta(days=int(rng.integers(0, 3)) * 7))
            if hired <= today:
                add(hired)
        month = next_start(month, Grain.month)
    return people


def _bench_gap(rng: np.random.Generator, d: date) -> int:
    """Business days between two missions: longer in summer and at year end, when clients start less."""
    mean = 24 * (1.5 if d.month in (7, 8, 12) else 1.0)
    return int(min(1 + rng.geometric(1 / mean), 60))


def _rate(rng: np.random.Generator, grade: str, client_factor: float, on: date, start: date) -> float:
    # Rates of new missions drift up ~3 % a year, the usual yearly renegotiation in the trade.
    years = (on - start).days / 365
    return float(round(LIST_RATE[grade] * client_factor * (1 + 0.03 * years) * rng.normal(1, 0.03) / 5) * 5)


def _missions(rng: np.random.Generator, cal: Calendar, people: list[Consultant], start: date,
              today: date) -> tuple[list[Mission], dict[str, list[tuple[int, int, Mission | None]]]]:
    """Each consultant's timeline: a list of (first day, last day, mission or None for bench)."""
    factors = {c: float(rng.uniform(0.92, 1.1)) for c in CLIENTS}
    missions: list[Mission] = []
    timelines: dict[str, list[tuple[int, int, Mission | None]]] = {}
    for person in people:
        veteran = person.hired_on < cal.days[0]  # already employed when the burn-in starts
        i = cal.index(person.hired_on)
        stop = cal.index(person.left_on) if person.left_on else len(cal.days)  # exclusive
        spans: list[tuple[int, int, Mission | None]] = []
        staffed = rng.random() < (0.85 if veteran else 0.5)
        length = int(rng.integers(10, 150)) if veteran and staffed else 0
        if not staffed:
            # A new hire waits for a first mission; a veteran on bench is part-way through it.
            gap = int(rng.integers(1, 25) if veteran else rng.integers(5, 25))
            spans.append((i, min(i + gap, stop) - 1, None))
            i += gap
        previous: Mission | None = None
        while i < stop:
            length = length or int(rng.integers(45, 180))
            end = min(i + length, stop) - 1
            length = 0
            if previous is not None:  # a renewal: same client, rate renegotiated up to +4 %
                client = previous.client
                rate = float(round(previous.daily_rate * float(rng.uniform(1.0, 1.04)) / 5) * 5)
                requested = cal.day(previous.end) - timedelta(days=int(rng.integers(15, 35)))
            else:
                client = str(rng.choice(CLIENTS))
                rate = _rate(rng, person.grade, factors[client], cal.day(i), start)
                requested = cal.day(i) - timedelta(days=int(rng.integers(3, 20)))
            mission = Mission(f"M{len(missions) + 1:04d}", person.consultant_id, client, i, end, rate,
                              requested, previous is not None)
            missions.append(mission)
            spans.append((i, end, mission))
            previous = mission
            i = end + 1
            if rng.random() < 0.35:
                continue  # renewed: the next mission follows at once with the same client
            gap = _bench_gap(rng, cal.day(min(i, len(cal.days) - 1)))
            spans.append((i, min(i + gap, stop) - 1, None))
            i += gap
            previous = None
        timelines[person.consultant_id] = spans
    # Keep what a staffing tool would show today: missions running during the sample, and those
    # already requested that start soon.
    horizon = today + timedelta(days=45)
    kept = [m for m in missions
            if cal.day(m.end) >= start and m.requested_on <= today and cal.day(m.start) <= horizon]
    for n, m in enumerate(kept, 1):
        m.mission_id = f"M{n:04d}"
    return kept, timelines


def _leave_days(rng: np.random.Generator, cal: Calendar) -> set[int]:
    """One consultant's leave: two summer weeks, often the Christmas week, and scattered days."""
    out: set[int] = set()
    for year in sorted({d.year for d in cal.days}):
        summer = date(year, 7, 1) + timedelta(days=int(rng.integers(0, 42)))
        if summer >= cal.days[0]:
            begin = cal.index(summer)
            out.update(range(begin, begin + 10))
        if rng.random() < 0.6:
            out.update(range(cal.index(date(year, 12, 24)), cal.index(date(year + 1, 1, 1))))
    out.update(int(i) for i in np.flatnonzero(rng.random(len(cal.days)) < 0.05))
    return out


def _timesheets(rng: np.random.Generator, cal: Calendar, people: list[Consultant],
                timelines: dict[str, list[tuple[int, int, Mission | None]]], start: date,
                today: date) -> list[tuple[Cell, ...]]:
    rows: list[tuple[Cell, ...]] = []
    first_day = cal.index(start)
    last = cal.index(today + timedelta(days=1))  # exclusive: timesheets are filled up to today
    for person in people:
        leave = _leave_days(rng, cal)
        hired = cal.index(person.hired_on)
        onboarding = set(range(hired, hired + 2)) if person.hired_on >= cal.days[0] else set()
        for first, end, mission in timelines[person.consultant_id]:
            for i in range(max(first, first_day), min(end + 1, last)):
                d = cal.days[i]
                cid = person.consultant_id
                u = rng.random()
                if i in onboarding:
                    rows.append((cid, d, "training", 1.0, None))
                elif i in leave:
                    rows.append((cid, d, "leave", 1.0, None))
                elif mission is not None:
                    if u < 0.04:  # half a day at the office: team meeting, pre-sales help
                        rows.append((cid, d, "billed", 0.5, mission.mission_id))
                        rows.append((cid, d, "internal", 0.5, None))
                    elif u < 0.045:
                        rows.append((cid, d, "training", 1.0, None))
                    else:
                        rows.append((cid, d, "billed", 1.0, mission.mission_id))
                elif u < 0.22:
                    rows.append((cid, d, "training", 1.0, None))
                elif u < 0.32:
                    rows.append((cid, d, "internal", 1.0, None))
                else:
                    rows.append((cid, d, "bench", 1.0, None))
    rows.sort(key=lambda r: (str(r[1]), str(r[0])))
    return rows


def _opportunities(rng: np.random.Generator, start: date, today: date) -> list[tuple[Cell, ...]]:
    rows: list[tuple[Cell, ...]] = []
    d = start - timedelta(days=60)  # an open pipeline already exists on the first day of the sample
    n = 0
    while d <= today:
        if d.weekday() < 5:
            growth = 1 + 0.12 * (d - start).days / 365
            # Fewer opportunities are opened on Mondays (internal meetings) and Fridays.
            weekday = (0.8, 1.1, 1.15, 1.1, 0.85)[d.weekday()]
            for _ in range(rng.poisson(1.6 * growth * weekday)):
                n += 1
                created = datetime.combine(d, time(int(rng.integers(8, 19)), int(rng.integers(0, 60))))
                amount = float(rng.choice((20, 40, 60, 80, 100, 120, 160)) * round(rng.uniform(550, 800)))
                amount = round(amount / 500) * 500.0
                stage, moved = "qualification", created
                proposal: datetime | None = None
                if rng.random() < 0.75:
                    proposal = _working_time(created + timedelta(days=int(rng.integers(2, 12)),
                                                                hours=int(rng.integers(0, 5))))
                    stage, moved = "proposal", proposal
                    if rng.random() < 0.55:
                        stage, moved = "negotiation", proposal + timedelta(days=int(rng.integers(5, 20)))
                prob = STAGE_PROBABILITY[stage]
                won = rng.random() < prob
                closed: datetime | None = _working_time(moved + timedelta(days=int(rng.integers(5, 25))))
                final = "won" if won else "lost"
                if closed is not None and closed.date() > today:
                    # Still open today: show the stage it has reached so far.
                    closed, final = None, "qualification"
                    if proposal is not None and proposal.date() <= today:
                        negotiating = stage == "negotiation" and moved.date() <= today
                        final = "negotiation" if negotiating else "proposal"
                    else:
                        proposal = None
                    prob = STAGE_PROBABILITY[final]
                rows.append((f"O{n:05d}", created, proposal, closed, final, amount, prob,
                             str(rng.choice(BUSINESS_MANAGERS)), str(rng.choice(CLIENTS)),
                             str(rng.choice(PRACTICES, p=PRACTICE_WEIGHTS))))
        d += timedelta(days=1)
    return rows


def generate(today: date) -> dict[str, list[tuple[Cell, ...]]]:
    """The four sample tables as rows, deterministic for a given `today`."""
    rng = np.random.default_rng(SEED)
    start = sample_start(today)
    # Two years of burn-in before the sample: missions and bench spells are then out of step
    # between consultants, as in a real firm, instead of all starting on the first day.
    cal = Calendar(add_months(start, -24), today + timedelta(days=400))
    people = _consultants(rng, start, today)
    missions, timelines = _missions(rng, cal, people, start, today)
    timesheets = _timesheets(rng, cal, people, timelines, start, today)
    opportunities = _opportunities(rng, start, today)
    consultants: list[tuple[Cell, ...]] = [
        (p.consultant_id, p.name, p.hired_on, p.left_on, p.grade, p.daily_cost, p.practice) for p in people
    ]
    mission_rows: list[tuple[Cell, ...]] = []
    for m in missions:
        end = cal.day(m.end)
        mission_rows.append((m.mission_id, m.consultant_id, m.client, cal.day(m.start), end, m.daily_rate,
                             m.requested_on, m.is_renewal, end - timedelta(days=30)))
    return {"consultants": consultants, "timesheets": timesheets, "missions": mission_rows,
            "opportunities": opportunities}
