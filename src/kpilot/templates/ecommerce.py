"""E-commerce template: net revenue as North Star, return rate beside it, and a year of sample data.

The sample shop sells home lighting online. Sessions, ad spend, orders, customers and returns are
drawn from one expected daily level (trend x season x weekday x channel), so conversion, order
value, repeat purchases, returns and ROAS agree with each other. The same level, without noise,
gives the phased monthly revenue budget written into kpilot.yaml: e-commerce is seasonal (sales in
January and July, Black Friday, Christmas), and a flat target would make August red every year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from kpilot.model.periods import Grain, label, next_start, periods_between
from kpilot.templates import Cell, sample_start, write_sample

SEED = 20_261_127

# Sessions per day at the start of the sample, conversion rate, and share of orders placed by
# returning customers, per channel: email and direct traffic are mostly existing customers.
CHANNELS: dict[str, tuple[float, float, float]] = {
    "seo": (1100, 0.018, 0.30),
    "direct": (600, 0.027, 0.60),
    "google_ads": (750, 0.024, 0.22),
    "meta_ads": (550, 0.013, 0.15),
    "email": (250, 0.038, 0.85),
}
# Daily ad budget (EUR) at the start of the sample, per paid channel.
AD_BUDGET = {"google_ads": 360.0, "meta_ads": 215.0}
YEARLY_GROWTH = 0.18
WEEKDAY = (1.04, 1.0, 0.98, 0.97, 0.9, 0.95, 1.16)  # Monday..Sunday: Sunday evening is the peak
SEASON = {1: 1.05, 2: 0.92, 3: 0.96, 4: 0.97, 5: 0.97, 6: 0.98, 7: 1.02, 8: 0.86, 9: 0.97, 10: 1.0,
          11: 1.1, 12: 1.18}
SALES_MONTHS = (1, 7)  # French legal sales periods: more conversion, smaller baskets
MEAN_BASKET = 71.0
RETURN_PROBABILITY = 0.09
FULL_REFUND_SHARE = 0.8  # other returns are partial: one item of the basket, refunded 30-70 %
RETURN_REASONS = ("damaged", "not_as_described", "changed_mind", "late_delivery", "wrong_item")
RETURN_REASON_WEIGHTS = (0.3, 0.25, 0.25, 0.1, 0.1)
COUNTRIES = ("FR", "BE", "CH", "LU", "DE")
COUNTRY_WEIGHTS = (0.8, 0.08, 0.05, 0.02, 0.05)
HOUR_WEIGHTS = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3, 3.2, 3.5, 4, 3.8, 3.5, 3.5,
                         3.6, 3.8, 4.2, 5, 6, 6.5, 5, 2.5])
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()

TABLES: dict[str, tuple[str, ...]] = {
    "web_sessions": ("date", "channel", "sessions"),
    "orders": ("order_id", "customer_id", "ordered_at", "channel", "net_amount", "is_first_order"),
    "order_returns": ("return_id", "order_id", "returned_at", "refund_amount", "reason"),
    "ad_spend": ("date", "channel", "amount"),
    "customers": ("customer_id", "created_at", "acquisition_channel", "country"),
}


def write(target: Path, language: str, today: date) -> None:
    """Write kpilot.yaml (in `language`) and data/*.csv with sample data ending at `today`."""
    write_sample(target, "ecommerce", language, today, TABLES, generate(today),
                 targets={"net_revenue": revenue_budget(today)})


def _black_friday(year: int) -> date:
    """The day after the fourth Thursday of November (US Thanksgiving)."""
    first = date(year, 11, 1)
    thanksgiving = first + timedelta(days=(3 - first.weekday()) % 7 + 21)
    return thanksgiving + timedelta(days=1)


@dataclass(frozen=True)
class Day:
    """The expected level of one day: traffic multiplier, conversion multiplier, basket multiplier."""

    traffic: float
    conversion: float
    basket: float


def _day(d: date, start: date) -> Day:
    growth = 1 + YEARLY_GROWTH * (d - start).days / 365
    traffic = growth * SEASON[d.month] * WEEKDAY[d.weekday()]
    conversion, basket = 1.0, 1.0
    if d.month in SALES_MONTHS and d.day <= 28:
        conversion, basket = 1.15, 0.9
    if abs((d - _black_friday(d.year)).days) <= 3:  # Black Friday week, through Cyber Monday
        traffic, conversion, basket = traffic * 1.6, 1.25, 0.92
    return Day(traffic, conversion, basket)


def _expected_sales(d: date, start: date) -> float:
    level = _day(d, start)
    orders = sum(base * level.traffic * rate * level.conversion for base, rate, _ in CHANNELS.values())
    return orders * MEAN_BASKET * level.basket


def revenue_budget(today: date) -> list[tuple[str, float]]:
    """Monthly net revenue targets from the sample's first month to the end of next year.

    The budget is 98 % of the sample's expected level; the drawn months land a few percent around
    it, so most are green and some amber, as in a shop that budgets realistically. Values are not
    rounded here: kpilot.yaml gets them as `target_number` writes every generated target.
    """
    start = sample_start(today)
    out: list[tuple[str, float]] = []
    for month in periods_between(start, date(today.year + 1, 12, 1), Grain.month):
        days = (next_start(month, Grain.month) - month).days
        sales = sum(_expected_sales(month + timedelta(days=k), start) for k in range(days))
        out.append((label(month, Grain.month), 0.98 * sales))
    return out


def _times(rng: np.random.Generator, d: date, n: int) -> list[datetime]:
    hours = rng.choice(24, size=n, p=HOUR_WEIGHTS)
    minutes = rng.integers(0, 60, size=n)
    return [datetime.combine(d, time(int(h), int(m))) for h, m in zip(hours, minutes, strict=True)]


def _existing_customers(rng: np.random.Generator, start: date, n: int) -> list[tuple[Cell, ...]]:
    """The shop existed before the sample: customers acquired over the previous three years."""
    ages = rng.integers(1, 3 * 365, size=n)
    channels = rng.choice(list(CHANNELS), size=n)
    countries = rng.choice(COUNTRIES, size=n, p=COUNTRY_WEIGHTS)
    hours, minutes = rng.choice(24, size=n, p=HOUR_WEIGHTS), rng.integers(0, 60, size=n)
    created = sorted(datetime.combine(start - timedelta(days=int(ages[k])), time(int(hours[k]), int(minutes[k])))
                     for k in range(n))
    return [(f"CU{k + 1:06d}", created[k], str(channels[k]), str(countries[k])) for k in range(n)]


def generate(today: date) -> dict[str, list[tuple[Cell, ...]]]:
    """The five sample tables as rows, deterministic for a given `today`."""
    rng = np.random.default_rng(SEED)
    start = sample_start(today)
    customers = _existing_customers(rng, start, 14_000)
    sessions: list[tuple[Cell, ...]] = []
    spend: list[tuple[Cell, ...]] = []
    orders: list[tuple[Cell, ...]] = []
    returns: list[tuple[Cell, ...]] = []
    now = datetime.combine(today, time(23, 59))
    d = start
    while d <= today:
        level = _day(d, start)
        placed: list[tuple[datetime, str, float]] = []
        for channel, (base, rate, returning) in CHANNELS.items():
            n_sessions = int(base * level.traffic * rng.lognormal(0, 0.08))
            sessions.append((d, channel, n_sessions))
            if channel in AD_BUDGET:
                # Budgets follow the season but not the weekday: campaigns run on daily caps.
                growth = 1 + YEARLY_GROWTH * (d - start).days / 365
                amount = AD_BUDGET[channel] * growth * SEASON[d.month] * rng.uniform(0.9, 1.1)
                spend.append((d, channel, round(amount, 2)))
            n_orders = int(rng.poisson(n_sessions * rate * level.conversion))
            placed.extend((at, channel, returning) for at in _times(rng, d, n_orders))
        # Handle the day's orders in time order, so order and customer numbers grow with time.
        placed.sort()
        n = len(placed)
        is_new, recency, size = rng.random(n), rng.exponential(1 / 3, n), rng.lognormal(-0.125, 0.5, n)
        country = rng.choice(COUNTRIES, size=n, p=COUNTRY_WEIGHTS)
        is_returned, delay, hour_shift = rng.random(n), rng.integers(3, 28, n), rng.integers(-6, 6, n)
        is_partial, partial = rng.random(n), rng.uniform(0.3, 0.7, n)
        reason = rng.choice(RETURN_REASONS, size=n, p=RETURN_REASON_WEIGHTS)
        for j, (at, channel, returning) in enumerate(placed):
            first = bool(is_new[j] >= returning)
            if first:
                customer_id = f"CU{len(customers) + 1:06d}"
                customers.append((customer_id, at, channel, str(country[j])))
            else:
                # Recent customers come back more often than old ones.
                k = len(customers) - 1 - min(int(recency[j] * len(customers)), len(customers) - 1)
                customer_id = str(customers[k][0])
            # Returning customers fill bigger baskets; the two factors average to 1 on this mix.
            basket = MEAN_BASKET * level.basket * (0.96 if first else 1.06)
            amount = round(float(basket * size[j]), 2)  # lognormal of mean 1
            order_id = f"OR{len(orders) + 1:06d}"
            orders.append((order_id, customer_id, at, channel, amount, first))
            back = at + timedelta(days=int(delay[j]), hours=int(hour_shift[j]))
            if is_returned[j] < RETURN_PROBABILITY and back <= now:  # returns not yet received are not exported
                refund = round(amount * float(partial[j]), 2) if is_partial[j] >= FULL_REFUND_SHARE else amount
                returns.append((order_id, back, refund, str(reason[j])))
        d += timedelta(days=1)
    returns.sort(key=lambda r: str(r[1]))
    returns = [(f"RE{k + 1:05d}", *r) for k, r in enumerate(returns)]
    return {"web_sessions": sessions, "orders": orders, "order_returns": returns, "ad_spend": spend,
            "customers": customers}
