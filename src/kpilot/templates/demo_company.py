"""The demo company, Northwind Cloud: a B2B SaaS with years of connected, realistic data.

`generate_demo` writes a complete workspace (kpilot.yaml + data/*.csv) that ends at `today`, so the
board always shows a live story. The data is generated as a funnel with real delays, so that the
leading indicators really lead and kpilot's lead-lag discovery has something true to find:

    web sessions, ad spend -> leads (same day) -> MQL (minutes to days) -> demo booked (days to
    ~2 weeks) -> demo held (days) -> deal created (days) -> won/lost (3-6 weeks, lognormal)
    -> subscription starts (days) -> monthly churn, more likely when product usage is low.

The story, relative to `today` (see `DemoCalendar`):
- growth of ~35 % a year, few leads at weekends, slow Augusts and an empty Christmas week;
- LinkedIn Ads (about half of the demos) paused for 3 weeks from the Monday 8 weeks before this
  week: demos dip at once, won revenue ~5 weeks later (the last weeks before `today`), new MRR
  after that; it then restarts with a 40 % catch-up budget for 5 weeks, so the leading indicators
  of the last complete week are back on plan while the lagging ones still pay for the gap;
- a release 12 weeks ago broke the accounting integration of small customers for 7 weeks: their
  usage falls at once, and logo churn rises over the next two months (usage leads churn).

Targets are set from the generated history (a trend per quarter, or last year's level for rates),
so the board's last complete periods are mostly green, with churn amber or red.

The generator is vectorized with NumPy (~150k rows in about half a second) and deterministic for a
seed. Timestamps are naive local times of the workspace's time zone (Europe/Paris); money is EUR.
The templates (`kpilot.templates.saas`, `.smarketing`) reuse it with one year for their sample data;
`kpilot.templates.demo` sets the targets and writes the workspaces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kpilot.model.periods import Grain, add_months, period_start

EPOCH = date(1970, 1, 1)
SEED = 7                              # the default company; `kpilot demo --seed` draws another one
MARKER = ".kpilot-demo"               # marks a folder `kpilot demo` may regenerate
DAY = 86_400
GROWTH_PER_YEAR = 1.35
WARM_UP_MONTHS = 4
CATCH_UP = 1.4                        # LinkedIn budget after the pause, while it makes up for it
SHOCK_PHI, SHOCK_SD = 0.6, 0.16      # week-to-week swings of campaign quality (AR(1) in log)

SEGMENTS = ("smb", "mid_market", "enterprise")
WEB_CHANNELS = ("seo", "direct", "referral", "google_ads", "linkedin_ads")
PAID_CHANNELS = ("google_ads", "linkedin_ads")
LEAD_CHANNELS = (*WEB_CHANNELS, "outbound", "events")

# Volumes are anchored at `today` (a weekday's level now) and shrink back in time with the growth,
# so a one-year sample (templates) and a three-year demo look the same at the end.
ORGANIC_SESSIONS = {"seo": 5400.0, "direct": 1950.0, "referral": 680.0}
DAILY_BUDGET = {"google_ads": 2300.0, "linkedin_ads": 1800.0}
COST_PER_SESSION = {"google_ads": 2.0, "linkedin_ads": 5.0}
ENGAGEMENT = {"seo": 0.55, "direct": 0.62, "referral": 0.6, "google_ads": 0.44, "linkedin_ads": 0.5}
LEADS_PER_SESSION = {"seo": 0.0065, "direct": 0.007, "referral": 0.019, "google_ads": 0.016, "linkedin_ads": 0.1}
OUTBOUND_LEADS = 12.0
EVENT_LEADS = 90.0
EVENT_DAYS = ((3, 19), (6, 11), (9, 16))  # trade shows (month, day); two days each
# Per lead channel, in LEAD_CHANNELS order. LinkedIn brings ~45 % of demos: pausing it shows.
INSTANT_MQL = np.array([0.5, 0.5, 0.6, 0.5, 0.85, 0.6, 0.5])
MQL_RATE = np.array([0.22, 0.25, 0.5, 0.3, 0.5, 0.45, 0.35])
DEMO_RATE = np.array([0.45, 0.45, 0.6, 0.45, 0.65, 0.5, 0.45])
WIN_BY_CHANNEL = np.array([1.0, 1.05, 1.35, 0.95, 1.1, 0.85, 0.95])
SEGMENT_MIX = np.array([
    [0.68, 0.26, 0.06], [0.6, 0.3, 0.1], [0.5, 0.35, 0.15], [0.7, 0.25, 0.05],
    [0.4, 0.42, 0.18], [0.25, 0.45, 0.3], [0.35, 0.42, 0.23],
])
# Per segment, in SEGMENTS order.
MQL_BY_SEGMENT = np.array([0.9, 1.1, 1.25])
DEAL_RATE = np.array([0.55, 0.62, 0.7])
WIN_RATE = np.array([0.34, 0.28, 0.22])
ACV = np.array([6000.0, 14000.0, 30000.0])           # median annual contract value, EUR
CYCLE_DAYS = np.array([20.0, 25.0, 32.0])            # median days from deal created to closed
CHURN_BASE = np.array([0.024, 0.012, 0.006])          # monthly logo churn at normal usage
SEAT_PRICE = 32.0
LEGACY_MIX = np.array([0.4, 0.41, 0.19])             # the segments the funnel wins, for older customers
WINS_PER_MONTH = 88.0                                 # new customers a month at `today`'s level

WEB_WEEKDAY = np.array([1.08, 1.12, 1.1, 1.04, 0.94, 0.52, 0.48])
LEAD_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.4, 0.35])   # forms filled per session
OUTBOUND_WEEKDAY = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.0, 0.0])
SPEND_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.7])
MONTH_SEASON = np.array([0.98, 1.02, 1.06, 1.02, 0.98, 1.0, 0.92, 0.74, 1.04, 1.08, 1.06, 0.92])

# name, segment it sells to, months before `today` it was hired, skill (multiplies the win rate)
SALES_REPS = (
    ("Emma Laurent", 0, 120, 1.05), ("Lucas Moreau", 0, 120, 0.95), ("Chloé Dubois", 0, 20, 1.0),
    ("Nathan Girard", 0, 9, 0.72), ("Sophie Martin", 1, 120, 1.1), ("Thomas Lefèvre", 1, 26, 0.95),
    ("Julien Bernard", 2, 120, 1.0), ("Camille Roux", 2, 16, 1.05),
)

Tables = dict[str, pa.Table]


@dataclass(frozen=True)
class DemoCalendar:
    """The dates of the demo story, all relative to `today` so the data always ends now."""

    today: date
    start: date             # first day of the data
    warm_up: date           # the funnel runs from here, so the first weeks have deals in flight
    pause_start: date       # LinkedIn Ads paused (a Monday)
    pause_end: date         # first day it runs again, with a catch-up budget...
    catch_up_end: date      # ...until this day
    incident_start: date    # integration broken for small customers
    incident_end: date

    @classmethod
    def around(cls, today: date, years: int) -> DemoCalendar:
        if years < 1:
            raise ValueError(f"years must be at least 1 (got {years})")
        month = period_start(today, Grain.month)
        pause = period_start(today, Grain.week) - timedelta(weeks=8)
        return cls(
            today=today,
            start=add_months(month, -12 * years),
            warm_up=add_months(month, -12 * years - WARM_UP_MONTHS),
            pause_start=pause,
            pause_end=pause + timedelta(weeks=3),
            catch_up_end=pause + timedelta(weeks=8),
            incident_start=today - timedelta(weeks=12),
            incident_end=today - timedelta(weeks=5),
        )


def day_no(d: date) -> int:
    return (d - EPOCH).days


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 0 = Monday: 1970-01-01 was a Thursday


def _next_weekday(days: np.ndarray) -> np.ndarray:
    dow = _weekday(days)
    return days + np.where(dow == 5, 2, np.where(dow == 6, 1, 0))


def _office_after(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A time during office hours, on a weekday, at or after each timestamp (people book at work)."""
    day = t // DAY
    out = _next_weekday(day) * DAY + _minutes(rng.uniform(8.5, 18.5, t.size))
    later = _next_weekday(day + 1) * DAY + _minutes(rng.uniform(8.5, 18.5, t.size))
    chosen: np.ndarray = np.where(out > t, out, later)
    return chosen


def _minutes(hours: np.ndarray) -> np.ndarray:
    return (hours * 60).astype(np.int64) * 60


def _pick(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row of `probabilities` (rows sum to 1)."""
    cum = probabilities.cumsum(axis=1)
    picked: np.ndarray = (rng.random(len(probabilities))[:, None] > cum[:, :-1]).sum(axis=1)
    return picked


def _season(days: np.ndarray) -> np.ndarray:
    """Demand by day of year: slow August, empty Christmas week; smoothed like real demand."""
    dt = days.astype("datetime64[D]")
    month = dt.astype("datetime64[M]").astype(np.int64) % 12
    dom = (dt - dt.astype("datetime64[M]")).astype(np.int64) + 1
    factor = MONTH_SEASON[month]
    factor = np.convolve(np.pad(factor, 5, mode="edge"), np.ones(11) / 11, mode="valid")
    holiday = ((month == 11) & (dom >= 22)) | ((month == 0) & (dom <= 1))
    season: np.ndarray = np.where(holiday, 0.35, factor)
    return season


def _acv(rng: np.random.Generator, seg: np.ndarray) -> np.ndarray:
    """Annual contract values, rounded to 100 EUR as sales quote them."""
    values: np.ndarray = np.round(rng.lognormal(np.log(ACV[seg]), 0.25) / 100) * 100
    return values


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    noise = rng.normal(0.0, sd, n)
    out = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = phi * acc + noise[i]
        out[i] = acc
    return out


def _timestamps(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype("datetime64[s]"), mask=None if valid is None else ~valid)


def _dates(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype("datetime64[D]"), mask=None if valid is None else ~valid)


def _ids(prefix: str, n: int, width: int) -> pa.Array:
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)])


def _labels(names: tuple[str, ...], index: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(names)).cast(pa.string())


class _Generator:
    """Builds the tables in funnel order; each step reads the arrays of the step before."""

    def __init__(self, cal: DemoCalendar, seed: int):
        self.cal = cal
        self.rng = np.random.default_rng(seed)
        self.now = day_no(cal.today) * DAY          # data stops at midnight this morning
        self.days = np.arange(day_no(cal.warm_up), day_no(cal.today))
        self.dow = _weekday(self.days)
        self.level = GROWTH_PER_YEAR ** ((self.days - day_no(cal.today)) / 365.25)
        self.season = _season(self.days)
        weeks = (self.days - self.days[0] + self.dow[0]) // 7
        # Campaign quality varies week to week; it flows down the funnel, which is what lets
        # lead-lag discovery see demos lead revenue.
        shock = _ar1(self.rng, int(weeks[-1]) + 1, SHOCK_PHI, SHOCK_SD)[weeks]
        # Calm weeks from ten weeks before the pause to today, so the story's events stand out from
        # the usual swings and the board's last periods tell that story rather than noise.
        calm = self.days >= day_no(cal.pause_start) - 70
        self.shock = np.exp(np.where(calm, 0.25 * shock, shock))
        self.tables: Tables = {}

    def run(self) -> Tables:
        sessions = self._marketing()
        self._leads(sessions)
        self._meetings()
        self._deals()
        self._customers()
        return self._trim()

    def _trim(self) -> Tables:
        """Drop the warm-up, like an export "since <start>"; deals still open or closed since then stay."""
        first_day = pa.scalar(self.cal.start, type=pa.date32())
        start = pa.scalar(datetime.combine(self.cal.start, time()), type=pa.timestamp("s"))
        t = self.tables
        keep = {
            "web_sessions": pc.greater_equal(t["web_sessions"]["date"], first_day),
            "ad_spend": pc.greater_equal(t["ad_spend"]["date"], first_day),
            "leads": pc.greater_equal(t["leads"]["created_at"], start),
            "meetings": pc.greater_equal(t["meetings"]["booked_at"], start),
            "deals": pc.or_kleene(pc.greater_equal(t["deals"]["created_at"], start),
                                  pc.fill_null(pc.greater_equal(t["deals"]["closed_at"], start), True)),
        }
        return {name: table.filter(keep[name]) if name in keep else table for name, table in t.items()}

    def _marketing(self) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.days.size
        paused = (self.days >= day_no(self.cal.pause_start)) & (self.days < day_no(self.cal.pause_end))
        sessions: dict[str, np.ndarray] = {}
        spend_rows: list[tuple[int, np.ndarray]] = []
        for ch, base in ORGANIC_SESSIONS.items():
            lam = base * self.level * self.season * WEB_WEEKDAY[self.dow] * rng.lognormal(0, 0.06, n)
            sessions[ch] = rng.poisson(lam)
        for ch in PAID_CHANNELS:
            spend = (DAILY_BUDGET[ch] * self.level**0.9 * self.season * SPEND_WEEKDAY[self.dow]
                     * rng.lognormal(0, 0.08, n))
            if ch == "linkedin_ads":
                catch_up = (self.days >= day_no(self.cal.pause_end)) & (self.days < day_no(self.cal.catch_up_end))
                spend = np.where(paused, 0.0, np.where(catch_up, CATCH_UP * spend, spend))
            spend = np.round(spend, 2)
            spend_rows.append((PAID_CHANNELS.index(ch), spend))
            lam = spend / COST_PER_SESSION[ch] * WEB_WEEKDAY[self.dow] / SPEND_WEEKDAY[self.dow]
            sessions[ch] = rng.poisson(lam * rng.lognormal(0, 0.07, n))
        web = np.stack([sessions[ch] for ch in WEB_CHANNELS], axis=1)
        engaged = rng.binomial(web, np.array([ENGAGEMENT[ch] for ch in WEB_CHANNELS]))
        nc = len(WEB_CHANNELS)
        self.tables["web_sessions"] = pa.table({
            "date": _dates(np.repeat(self.days, nc)),
            "channel": _labels(WEB_CHANNELS, np.tile(np.arange(nc), n)),
            "sessions": pa.array(web.ravel().astype(np.int64)),
            "engaged_sessions": pa.array(engaged.ravel().astype(np.int64)),
        })
        amounts = np.stack([s for _, s in spend_rows], axis=1)
        self.tables["ad_spend"] = pa.table({
            "date": _dates(np.repeat(self.days, len(PAID_CHANNELS))),
            "channel": _labels(PAID_CHANNELS, np.tile(np.arange(len(PAID_CHANNELS)), n)),
            "amount": pa.array(amounts.ravel()),
        })
        return sessions

    def _leads(self, sessions: dict[str, np.ndarray]) -> None:
        rng, days = self.rng, self.days
        lam = np.zeros((days.size, len(LEAD_CHANNELS)))
        for j, name in enumerate(WEB_CHANNELS):
            lam[:, j] = sessions[name] * LEADS_PER_SESSION[name] * LEAD_WEEKDAY[self.dow] * self.shock
        lam[:, LEAD_CHANNELS.index("outbound")] = (OUTBOUND_LEADS * self.level * self.season
                                                   * OUTBOUND_WEEKDAY[self.dow] * np.sqrt(self.shock))
        for year in range(self.cal.warm_up.year, self.cal.today.year + 1):
            for month, dom in EVENT_DAYS:
                first = int(_next_weekday(np.array([day_no(date(year, month, dom))]))[0])
                hit = (days == first) | (days == first + 1)
                lam[hit, LEAD_CHANNELS.index("events")] = EVENT_LEADS * self.level[hit]
        counts = rng.poisson(lam).ravel()
        cell = np.repeat(np.arange(counts.size), counts)
        day, ch = days[cell // len(LEAD_CHANNELS)], cell % len(LEAD_CHANNELS)
        n = day.size
        weekend = _weekday(day) >= 5
        hour = np.where(rng.random(n) < 0.55, rng.normal(10.5, 1.4, n), rng.normal(15.0, 1.8, n))
        hour = np.where(weekend, rng.uniform(9.0, 22.0, n), hour).clip(6.0, 23.9)
        created = day * DAY + _minutes(hour)
        order = np.argsort(created, kind="stable")
        created, ch = created[order], ch[order]
        seg = _pick(rng, SEGMENT_MIX[ch])
        p_mql = np.minimum(MQL_RATE[ch] * MQL_BY_SEGMENT[seg], 0.95)
        # Many leads score on the form itself (LinkedIn lead-gen forms almost all), the rest after nurturing.
        instant = rng.random(n) < INSTANT_MQL[ch]
        delay = np.where(instant, rng.uniform(300, 5400, n), rng.exponential(3 * DAY, n))
        mql_at = created + delay.astype(np.int64) // 60 * 60
        is_mql = (rng.random(n) < p_mql) & (mql_at < self.now)
        self.lead = {"created": created, "channel": ch, "segment": seg, "is_mql": is_mql, "mql_at": mql_at}

    def _meetings(self) -> None:
        rng, lead = self.rng, self.lead
        n = lead["created"].size
        draw = rng.random(n)
        wants_demo = lead["is_mql"] & (draw < DEMO_RATE[lead["channel"]])
        wants_call = lead["is_mql"] & ~wants_demo & (draw > 1 - 0.3)
        delay = np.where(wants_demo, rng.lognormal(math.log(2 * DAY), 0.7, n),
                         rng.lognormal(math.log(1.5 * DAY), 0.6, n))
        booked = _office_after(rng, lead["mql_at"] + delay.astype(np.int64))
        is_demo = wants_demo & (booked < self.now)
        is_call = wants_call & (booked < self.now)
        idx = np.flatnonzero(is_demo | is_call)
        idx = idx[np.argsort(booked[idx], kind="stable")]
        m = idx.size
        kind = np.where(is_demo[idx], 0, 1)
        booked_m = booked[idx]
        scheduled = _office_after(rng, booked_m + rng.lognormal(math.log(3 * DAY), 0.5, m).astype(np.int64))
        happened = scheduled < self.now
        held = rng.random(m) < np.where(kind == 0, 0.86, 0.8)
        lead["sql_at"] = np.where(is_demo, booked, 0)
        lead["is_sql"] = is_demo
        self.meeting = {"lead": idx, "kind": kind, "booked": booked_m, "scheduled": scheduled,
                        "held": held & happened}
        self.tables["meetings"] = pa.table({
            "meeting_id": _ids("M", m, 6),
            "lead_id": pa.array([f"L{i + 1:06d}" for i in idx]),
            "booked_at": _timestamps(booked_m),
            "scheduled_at": _timestamps(scheduled),
            "type": _labels(("demo", "discovery"), kind),
            "held": pa.array(held, mask=~happened),
        })
        self.tables["leads"] = pa.table({
            "lead_id": _ids("L", n, 6),
            "created_at": _timestamps(lead["created"]),
            "channel": _labels(LEAD_CHANNELS, lead["channel"]),
            "segment": _labels(SEGMENTS, lead["segment"]),
            "is_mql": pa.array(lead["is_mql"]),
            "mql_at": _timestamps(lead["mql_at"], lead["is_mql"]),
            "is_sql": pa.array(lead["is_sql"]),
            "sql_at": _timestamps(lead["sql_at"], lead["is_sql"]),
        })

    def _deals(self) -> None:
        rng, lead, meet = self.rng, self.lead, self.meeting
        demo = np.flatnonzero((meet["kind"] == 0) & meet["held"])
        li = meet["lead"][demo]
        seg = lead["segment"][li]
        keep = rng.random(demo.size) < DEAL_RATE[seg]
        created = _office_after(rng, meet["scheduled"][demo] + rng.exponential(1.5 * DAY, demo.size).astype(np.int64))
        keep &= created < self.now
        order = np.argsort(created[keep], kind="stable")
        li, seg, created = li[keep][order], seg[keep][order], created[keep][order]
        n = created.size
        ch = lead["channel"][li]
        owner = self._owners(seg, created)
        skill = np.array([r[3] for r in SALES_REPS])[owner]
        won = rng.random(n) < WIN_RATE[seg] * WIN_BY_CHANNEL[ch] * skill
        cycle = rng.lognormal(np.log(CYCLE_DAYS[seg]), 0.25) * np.where(won, 1.0, 1.15)
        closed = _office_after(rng, created + (cycle * DAY).astype(np.int64))
        is_closed = closed < self.now
        amount = _acv(rng, seg)
        stage = np.where(~is_closed, 0, np.where(won, 1, 2))
        cycle_days = np.round((closed - created) / DAY).astype(np.int64)
        self.deal = {"created": created, "closed": closed, "won": won & is_closed, "segment": seg,
                     "amount": amount}
        self.tables["deals"] = pa.table({
            "deal_id": _ids("D", n, 5),
            "lead_id": pa.array([f"L{i + 1:06d}" for i in li]),
            "created_at": _timestamps(created),
            "closed_at": _timestamps(closed, is_closed),
            "stage": _labels(("open", "won", "lost"), stage),
            "amount": pa.array(amount),
            "segment": _labels(SEGMENTS, seg),
            "owner": _labels(tuple(r[0] for r in SALES_REPS), owner),
            "source_channel": _labels(LEAD_CHANNELS, ch),
            "cycle_days": pa.array(cycle_days, mask=~is_closed),
        })

    def _owners(self, seg: np.ndarray, created: np.ndarray) -> np.ndarray:
        """Deals go to a rep of their segment, among those hired by then (new reps win less)."""
        this_month = period_start(self.cal.today, Grain.month)
        hired = np.array([day_no(add_months(this_month, -r[2])) * DAY for r in SALES_REPS])
        rep_seg = np.array([r[1] for r in SALES_REPS])
        eligible = (rep_seg[None, :] == seg[:, None]) & (hired[None, :] <= created[:, None])
        return _pick(self.rng, eligible / eligible.sum(axis=1, keepdims=True))

    def _customers(self) -> None:
        rng, cal, deal = self.rng, self.cal, self.deal
        today = day_no(cal.today)
        won = np.flatnonzero(deal["won"])
        start_won = deal["closed"][won] // DAY + rng.integers(1, 11, won.size)
        won, start_won = won[start_won < today], start_won[start_won < today]
        # Customers signed before the warm-up, at the pace of the growth curve.
        first = add_months(cal.start, -36)
        months = [add_months(first, k) for k in range(36 - WARM_UP_MONTHS)]
        per_month = rng.poisson([WINS_PER_MONTH * GROWTH_PER_YEAR ** ((day_no(m) - today) / 365.25) for m in months])
        legacy_start = np.concatenate([
            day_no(m) + rng.integers(0, (add_months(m, 1) - m).days, k) for m, k in zip(months, per_month, strict=True)
        ]).astype(np.int64)
        legacy_seg = _pick(rng, np.tile(LEGACY_MIX, (legacy_start.size, 1)))
        legacy_mrr = _acv(rng, legacy_seg) / 12
        start = np.concatenate([legacy_start, start_won])
        seg = np.concatenate([legacy_seg, deal["segment"][won]])
        mrr = np.round(np.concatenate([legacy_mrr, deal["amount"][won] / 12]), 2)
        deal_no = np.concatenate([np.full(legacy_start.size, -1), won])
        order = np.argsort(start, kind="stable")
        start, seg, mrr, deal_no = start[order], seg[order], mrr[order], deal_no[order]
        end, usage = self._churn(start, seg, mrr, first)
        plan = np.where(mrr < 700, 0, np.where(mrr < 2500, 1, 2))
        n = start.size
        customer_ids = [f"C{i:05d}" for i in range(1, n + 1)]
        self.tables["subscriptions"] = pa.table({
            "subscription_id": _ids("S", n, 5),
            "customer_id": pa.array(customer_ids),
            "deal_id": pa.array([f"D{i + 1:05d}" if i >= 0 else None for i in deal_no]),
            "start_date": _dates(start),
            "end_date": _dates(end, end > 0),
            "mrr": pa.array(mrr),
            "plan": _labels(("starter", "growth", "enterprise"), plan),
            "segment": _labels(SEGMENTS, seg),
        })
        sub, month_start, seats, active = usage
        self.tables["product_usage"] = pa.table({
            "month": _dates(month_start),
            "customer_id": pa.array(customer_ids).take(pa.array(sub)),
            "segment": _labels(SEGMENTS, seg[sub]),
            "plan": _labels(("starter", "growth", "enterprise"), plan[sub]),
            "seats": pa.array(seats),
            "active_users": pa.array(active),
        })

    def _churn(self, start: np.ndarray, seg: np.ndarray, mrr: np.ndarray,
               first: date) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Monthly churn driven by usage; returns end days (0 = still active) and the usage rows."""
        rng, cal = self.rng, self.cal
        today = day_no(cal.today)
        months = [first]
        while day_no(add_months(months[-1], 1)) < today:
            months.append(add_months(months[-1], 1))
        m0 = np.array([day_no(x) for x in months])
        m1 = np.array([day_no(add_months(x, 1)) for x in months])
        n, k = start.size, m0.size
        inc0, inc1 = day_no(cal.incident_start), day_no(cal.incident_end)
        incident = np.clip(np.minimum(m1, inc1) - np.maximum(m0, inc0), 0, None) / (m1 - m0)
        august = np.array([x.month == 8 for x in months])
        start_month = np.searchsorted(m0, start, side="right") - 1
        age = np.arange(k)[None, :] - start_month[:, None]
        health = rng.normal(0.0, 1.0, n) + np.array([0.0, 0.15, 0.3])[seg]
        drift = np.zeros((n, k))
        for j in range(1, k):
            drift[:, j] = 0.6 * drift[:, j - 1] + rng.normal(0.0, 0.25, n)
        logit = (1.1 + 0.8 * health[:, None] + drift - 0.9 * (age == 0) - 0.4 * (age == 1)
                 - 0.35 * august[None, :] - 1.3 * incident[None, :] * (seg == 0)[:, None])
        usage = 1 / (1 + np.exp(-logit))
        # The product keeps improving: the same usage churned more a few years ago.
        improving = GROWTH_PER_YEAR ** (-0.25 * (m0 - today) / 365.25)
        end = np.zeros(n, dtype=np.int64)
        alive = np.ones(n, dtype=bool)
        for j in range(1, k):
            recent = 0.3 * usage[:, j] + 0.7 * usage[:, j - 1]  # churn follows usage with a lag
            hazard = CHURN_BASE[seg] * np.exp(4.0 * (0.72 - recent)) * improving[j]
            day = m0[j] + (rng.random(n) * (m1[j] - m0[j])).astype(np.int64)
            churn = alive & (age[:, j] >= 2) & (rng.random(n) < hazard) & (day < today)
            end[churn] = day[churn]
            alive &= ~churn
        # Usage is exported once a month is over: one row per customer active during that month.
        done = (m1 <= today) & (m0 >= day_no(cal.start))
        active = ((start[:, None] < m1[None, :]) & ((end[:, None] == 0) | (end[:, None] > m0[None, :]))
                  & done[None, :])
        sub, col = np.nonzero(active)
        seats = np.maximum(1, np.round(mrr[sub] / SEAT_PRICE)).astype(np.int64)
        users = rng.binomial(seats, usage[sub, col]).astype(np.int64)
        return end, (sub, m0[col], seats, users)


def write_tables(tables: Mapping[str, pa.Table], data_dir: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Write tables as CSV files (one per table, named after it); returns the paths written."""
    data_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names if names is not None else tables:
        table = tables[name]
        path = data_dir / f"{name}.csv"
        with path.open("wb") as f:
            # No quoting: values never hold commas, and unquoted files read the same everywhere.
            f.write((",".join(table.column_names) + "\n").encode())
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        out.append(path)
    return out
