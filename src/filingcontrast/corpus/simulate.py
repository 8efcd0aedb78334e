"""A simulated market of 8-K filings with known ground truth (`filingcontrast simulate`).

What it writes into the store, in the schema real data uses (`source = "simulated"`):
companies, filings (acceptance timestamps that exercise the day-0 rule), documents (the 8-K main
document as plain text plus EX-99.1 press releases), daily prices for every company and the
market index (`INDEX_TICKER`), and the `truth` table: per filing the expected market-adjusted
abnormal return over the `0_1` window, the Student-t noise (scale, df) and the drivers (JSON).

Returns model (see docs/simulated-market.md for the literature behind each driver):
    AR[0,+1] = sum(driver effects) * effect_scale + scale * t(df)
The prices are built so that the event study's market-adjusted abnormal return over [0, +1]
(stock minus index compounded return from the close before day 0 to the close of day +1) equals
exactly that number: background returns (beta * market + sector + small idiosyncratic noise) on
all other days, and on the event's two return days the stock's return is solved for the target.
`bayes_ceiling` and `oracle_accuracy` use the stored truth.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from filingcontrast.config import PairsConfig, RunConfig, SimulateConfig
from filingcontrast.corpus import calendar
from filingcontrast.corpus.sim_text import ROLE_TITLES, Company, render_filing
from filingcontrast.corpus.store import INDEX_TICKER, Store, document_row
from filingcontrast.errors import UserError
from filingcontrast.metrics import accuracy

ET = ZoneInfo("America/New_York")
BURN_IN_SESSIONS = 260
"""Price history before the first filing (estimation windows of the market model)."""
TAIL_SESSIONS = 10
"""Price history after the last day 0 (the longest return window is 0_5)."""
MIN_SPACING = 3
"""Trading days between two day 0s of the same company: their [0,+1] windows never overlap."""
MIN_AR = -0.9
"""Realized abnormal returns are floored here so prices stay positive (only bankruptcies in the
far t-tail are touched; see docs/simulated-market.md)."""


@dataclass(frozen=True)
class Preset:
    """Noise and event mix of a preset."""

    noise_scale: float
    """Scale of the Student-t event-window noise for a mid-size company."""
    noise_df: float
    """Degrees of freedom of the Student-t noise (fat tails)."""
    kinds: dict[str, float]
    """Primary event kind -> frequency."""


PRESETS: dict[str, Preset] = {
    "demo": Preset(
        noise_scale=0.027,
        noise_df=5.0,
        kinds={
            "earnings": 0.44,
            "equity_offering": 0.08,
            "buyback": 0.08,
            "departure": 0.10,
            "dividend": 0.06,
            "restatement": 0.06,
            "bankruptcy": 0.04,
            "convertible": 0.05,
            "delisting": 0.05,
            "contract": 0.04,
        },
    ),
    "realistic": Preset(
        noise_scale=0.05,
        noise_df=3.0,
        kinds={
            "earnings": 0.30,
            "departure": 0.09,
            "appointment": 0.06,
            "other": 0.06,
            "presentation": 0.06,
            "vote": 0.06,
            "contract": 0.06,
            "credit_facility": 0.04,
            "convertible": 0.03,
            "equity_offering": 0.04,
            "buyback": 0.04,
            "dividend": 0.05,
            "guidance_update": 0.025,
            "restructuring": 0.025,
            "impairment": 0.02,
            "restatement": 0.01,
            "delisting": 0.01,
            "bankruptcy": 0.005,
        },
    ),
}

SIZE_NOISE = {"small": 1.3, "mid": 1.0, "large": 0.7}
"""Event-window noise multiplier by company size (small caps are noisier)."""

SECTORS = {
    "Technology": ["Systems", "Software", "Networks", "Micro", "Data", "Cloud"],
    "Healthcare": ["Therapeutics", "Biosciences", "Medical", "Health", "Pharma"],
    "Industrials": ["Industries", "Manufacturing", "Aerospace", "Machinery", "Logistics"],
    "Consumer": ["Brands", "Foods", "Retail", "Apparel", "Home"],
    "Energy": ["Energy", "Resources", "Petroleum", "Power", "Renewables"],
    "Financials": ["Financial", "Bancorp", "Capital", "Holdings", "Insurance"],
}
NAME_WORDS = [
    "Northwind", "Bluefield", "Crescent", "Summit", "Redwood", "Harbor", "Granite", "Meridian",
    "Pioneer", "Silverline", "Cobalt", "Evergreen", "Lakeshore", "Ironwood", "Beacon", "Falcon",
    "Orchid", "Sterling", "Keystone", "Aurora", "Cascade", "Vertex", "Juniper", "Horizon",
    "Atlas", "Solano", "Tidewater", "Prairie", "Copperleaf", "Westbrook", "Halcyon", "Ridgeway",
]  # fmt: skip
SUFFIXES = ["Inc.", "Corporation", "Holdings, Inc.", "Co.", "Group, Inc."]
FIRST = ["James", "Robert", "Michael", "David", "Thomas", "Daniel", "Mark", "Paul", "Steven",
         "Andrew", "Kevin", "Brian", "Richard", "Joseph", "Charles", "Peter", "Mary", "Linda",
         "Susan", "Karen", "Laura", "Emily", "Sarah", "Michelle", "Anna", "Julia"]  # fmt: skip
LAST = ["Smith", "Johnson", "Walker", "Chen", "Patel", "Miller", "Nguyen", "Garcia", "Rossi",
        "Keller", "Murphy", "Bennett", "Foster", "Hughes", "Sullivan", "Brooks", "Reyes"]  # fmt: skip
CITIES = [
    ("Austin", "Texas", "78701"), ("Boston", "Massachusetts", "02110"),
    ("San Jose", "California", "95110"), ("Chicago", "Illinois", "60606"),
    ("Denver", "Colorado", "80202"), ("Atlanta", "Georgia", "30303"),
    ("Houston", "Texas", "77002"), ("Minneapolis", "Minnesota", "55402"),
]  # fmt: skip
COUNTERPARTIES = [
    "a U.S. federal agency", "a leading global automaker", "a Fortune 100 retailer",
    "a national wireless carrier", "a major hospital network", "a state department of "
    "transportation",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Return drivers: the effect of each fact (before effect_scale). Sources in the docs.


def earnings_surprise(eps: float, ref: float) -> float:
    """Surprise relative to the reference EPS (denominator floored so tiny EPS do not explode)."""
    return (eps - ref) / max(abs(ref), 0.10)


def earnings_effect(ev: dict[str, Any]) -> float:
    s = earnings_surprise(ev["eps"], ev["eps_ref"])
    eff = 0.05 * math.tanh(s / 0.08)  # S-shaped response (Freeman & Tse 1992)
    if ev.get("preannounced"):
        eff *= 0.2  # already priced in at the pre-announcement
    rs = (ev["revenue"] - ev["revenue_ref"]) / ev["revenue_ref"]
    eff += 0.01 * math.tanh(rs / 0.02)
    eff += GUIDANCE_EFFECT.get(ev.get("guidance") or "", 0.0)
    return eff


GUIDANCE_EFFECT = {"raised": 0.025, "lowered": -0.035, "reaffirmed": 0.0}
DEPARTURE_EFFECT = {
    ("CEO", "retirement"): 0.0,
    ("CEO", "resignation"): -0.03,
    ("CEO", "termination"): -0.015,
    ("CEO", "termination_after_poor"): 0.015,
    ("CFO", "retirement"): 0.0,
    ("CFO", "resignation"): -0.02,
    ("CFO", "termination"): -0.01,
    ("CFO", "termination_after_poor"): 0.005,
    ("other", "retirement"): 0.0,
    ("other", "resignation"): -0.005,
    ("other", "termination"): -0.003,
    ("other", "termination_after_poor"): 0.0,
}
DIVIDEND_EFFECT = {"raise": 0.01, "initiate": 0.03, "cut": -0.04, "suspend": -0.06, "regular": 0.0}


def event_effect(ev: dict[str, Any], co: Company) -> float:
    """Expected [0,+1] abnormal return of one event (before effect_scale)."""
    k = ev["kind"]
    if k == "earnings":
        return earnings_effect(ev)
    if k == "guidance_update":
        return {"raised": 0.02, "lowered": -0.04, "reaffirmed": 0.0}[ev["guidance"]]
    if k == "equity_offering":
        if ev["private"]:
            return 0.01  # private placements: positive (Wruck 1989; Hertzel & Smith 1993)
        return -min(0.015 + 0.3 * ev["amount"] / co.market_cap_m, 0.06)
    if k == "convertible":
        return -min(0.015 + 0.1 * ev["amount"] / co.market_cap_m, 0.05)
    if k == "credit_facility":
        return 0.003
    if k == "departure":
        role = ev["role"] if ev["role"] in ROLE_TITLES else "other"
        return DEPARTURE_EFFECT[(role, ev["mode"])]
    if k == "buyback":
        return min(0.01 + 0.3 * ev["amount"] / co.market_cap_m, 0.06)
    if k == "dividend":
        return DIVIDEND_EFFECT[ev["change"]]
    if k == "restructuring":
        return -0.01
    if k == "impairment":
        return -min(0.01 + 0.2 * ev["charge"] / co.market_cap_m, 0.06)
    if k == "restatement":
        return -0.09
    if k == "delisting":
        return -0.05 if ev["reason"] == "bid_price" else -0.04
    if k == "bankruptcy":
        return -0.25
    if k == "contract":
        return 0.06 * math.tanh(ev["value"] / co.revenue_m / 0.2)
    return 0.0  # vote, presentation, other, appointment


# ---------------------------------------------------------------------------------------------
# Companies.


NAME_TRIES = 200
"""Draws of a fresh company name before numbering one (a sector has 800-960 names)."""


def make_companies(n: int, rng: np.random.Generator) -> list[Company]:
    sectors = list(SECTORS)
    tickers: set[str] = set()
    names: set[str] = set()
    out = []
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    for i in range(n):
        sector = sectors[int(rng.integers(len(sectors)))]
        for _ in range(NAME_TRIES):
            name = (
                f"{NAME_WORDS[int(rng.integers(len(NAME_WORDS)))]} "
                f"{SECTORS[sector][int(rng.integers(len(SECTORS[sector])))]} "
                f"{SUFFIXES[int(rng.integers(len(SUFFIXES)))]}"
            )
            if name not in names:
                break
        else:  # the sector's names are (nearly) all taken: number the last one drawn
            base, k = name, 2
            while name in names:
                name, k = f"{base} {k}", k + 1
        names.add(name)
        while True:
            ticker = "".join(rng.choice(letters, size=int(rng.integers(3, 5))))
            if ticker not in tickers:
                break
        tickers.add(ticker)
        size = ["small", "mid", "large"][int(rng.choice(3, p=[0.45, 0.35, 0.20]))]
        rev = {"small": 150.0, "mid": 1500.0, "large": 15000.0}[size] * float(rng.lognormal(0, 0.5))
        mcap = rev * float(rng.uniform(1.0, 5.0))
        city, state, zipc = CITIES[int(rng.integers(len(CITIES)))]

        out.append(
            Company(
                cik=str(1_900_000 + i * 7 + int(rng.integers(7))),
                ticker=ticker,
                name=name,
                sector=sector,
                size=size,
                state="Delaware" if rng.random() < 0.7 else state,
                file_number=f"001-{int(rng.integers(30000, 42000))}",
                irs_id=f"{int(rng.integers(10, 99))}-{int(rng.integers(1000000, 9999999))}",
                address=f"{int(rng.integers(100, 9999))} {LAST[int(rng.integers(len(LAST)))]} "
                f"Parkway, {city}, {state} {zipc}",
                city=f"{city}, {state}",
                phone=f"({int(rng.integers(200, 989))}) 555-{int(rng.integers(1000, 9999))}",
                exchange="The Nasdaq Stock Market LLC"
                if rng.random() < 0.55
                else "New York Stock Exchange",
                revenue_m=round(rev, 1),
                market_cap_m=round(mcap, 1),
                officers={"CEO": _person(rng), "CFO": _person(rng), "COO": _person(rng)},
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Events.


def _person(rng: np.random.Generator) -> str:
    return f"{FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]}"


def _quarter(day: dt.date) -> tuple[str, int]:
    """The fiscal quarter just reported on `day` ("first quarter ended March 31, 2022", year)."""
    q_end_month = ((day.month - 1) // 3) * 3  # quarter before the current one
    year = day.year if q_end_month > 0 else day.year - 1
    q_end_month = q_end_month or 12
    last = (dt.date(year + (q_end_month == 12), q_end_month % 12 + 1, 1) - dt.timedelta(days=1)).day
    names = {3: "first", 6: "second", 9: "third", 12: "fourth"}
    return (
        f"{names[q_end_month]} quarter ended {dt.date(year, q_end_month, last):%B} {last}, {year}",
        year,
    )


def draw_earnings(
    co: Company, day: dt.date, rng: np.random.Generator, demo: bool
) -> dict[str, Any]:
    q, fy = _quarter(day)
    neg = (not demo) and rng.random() < 0.1
    ref = round(float(rng.lognormal(-0.3, 0.6)) * (-0.3 if neg else 1.0), 2)
    if ref == 0:
        ref = 0.05
    if demo:
        s = float(rng.choice([-1, 1])) * float(rng.uniform(0.05, 0.30))
    else:
        s = 0.025 + 0.06 * float(rng.standard_t(4))
    eps = round(ref + s * max(abs(ref), 0.10), 2)
    rref = round(co.revenue_m / 4 * float(rng.uniform(0.9, 1.1)), 1)
    if demo:
        rs = math.copysign(float(rng.uniform(0.01, 0.05)), s)
    else:
        rs = float(rng.normal(0.005, 0.025))
    ev: dict[str, Any] = {
        "kind": "earnings",
        "quarter": q,
        "fy": fy + 1 if q.startswith("fourth") else fy,
        "eps": eps,
        "eps_ref": ref,
        "ref_kind": "consensus" if demo or rng.random() < 0.8 else "outlook",
        "adjusted": (not demo) and rng.random() < 0.6,
        "revenue": round(rref * (1 + rs), 1),
        "revenue_ref": rref,
        "revenue_growth": float(rng.normal(0.06, 0.1)),
        "preannounced": (not demo) and rng.random() < 0.08,
    }
    ev["gaap_eps"] = round(eps - float(rng.uniform(0.05, 0.4)), 2)
    beat = eps > ref
    if demo:
        if rng.random() < 0.2:
            ev["guidance"] = "raised" if beat else "lowered"
    elif rng.random() < 0.5:
        p = [0.45, 0.4, 0.15] if beat else [0.15, 0.4, 0.45]
        ev["guidance"] = ["raised", "reaffirmed", "lowered"][int(rng.choice(3, p=p))]
    if ev.get("guidance"):
        _guidance_ranges(ev, co, rng)
    return ev


def _guidance_ranges(ev: dict[str, Any], co: Company, rng: np.random.Generator) -> None:
    mid = co.revenue_m * float(rng.uniform(0.95, 1.05))
    half = mid * 0.02
    move = {"raised": rng.uniform(0.02, 0.06), "lowered": -rng.uniform(0.03, 0.08)}.get(
        ev["guidance"], 0.0
    )
    new = mid * (1 + float(move))
    ev["prior_lo"], ev["prior_hi"] = round(mid - half), round(mid + half)
    ev["guide_lo"], ev["guide_hi"] = round(new - half), round(new + half)
    if ev["guidance"] == "reaffirmed":
        ev["guide_lo"], ev["guide_hi"] = ev["prior_lo"], ev["prior_hi"]


def draw_event(
    kind: str, co: Company, day: dt.date, rng: np.random.Generator, demo: bool
) -> dict[str, Any]:
    """Facts of one event of `kind` (what the text says and the driver needs)."""
    u = float(rng.random())
    if kind == "earnings":
        return draw_earnings(co, day, rng, demo)
    if kind == "guidance_update":
        ev = {"kind": kind, "guidance": "raised" if u < 0.4 else "lowered", "fy": day.year}
        _guidance_ranges(ev, co, rng)
        return ev
    if kind == "equity_offering":
        amount = co.market_cap_m * float(rng.uniform(0.03, 0.15))
        price = float(rng.uniform(8, 120))
        return {
            "kind": kind,
            "private": (not demo) and u < 0.25,
            "amount": round(amount, 1),
            "price": round(price, 2),
            "shares": int(amount * 1e6 / price // 1000 * 1000),
        }
    if kind == "convertible":
        price = float(rng.uniform(10, 150))
        return {
            "kind": kind,
            "amount": round(co.market_cap_m * float(rng.uniform(0.05, 0.2)) / 5) * 5,
            "coupon": float(rng.choice([0.0, 0.25, 0.5, 0.75, 1.25, 2.0, 3.5])),
            "maturity": day.year + int(rng.integers(5, 8)),
            "conv_price": round(price * 1.3, 2),
        }
    if kind == "credit_facility":
        return {
            "kind": kind,
            "amount": round(co.revenue_m * float(rng.uniform(0.1, 0.5)) / 25) * 25 or 25,
            "maturity": day.year + 5,
        }
    if kind == "departure":
        roles = ["CEO", "CFO"] if demo else ["CEO", "CFO", "other"]
        role = roles[int(rng.choice(len(roles), p=[0.5, 0.5] if demo else [0.4, 0.4, 0.2]))]
        modes = ["retirement", "resignation", "termination", "termination_after_poor"]
        mode = modes[int(rng.choice(4, p=[0.35, 0.35, 0.15, 0.15]))]
        return {
            "kind": kind,
            "role": role,
            "role_title": "Chief Operating Officer",
            "mode": mode,
            "person": co.officers.get(role, co.officers["COO"]),
            "successor": _person(rng),
        }
    if kind == "appointment":
        return {"kind": kind, "person": _person(rng)}
    if kind == "buyback":
        return {"kind": kind, "amount": round(co.market_cap_m * float(rng.uniform(0.02, 0.12)))}
    if kind == "dividend":
        p = [0.35, 0.15, 0.2, 0.1, 0.2] if not demo else [0.3, 0.2, 0.3, 0.2, 0.0]
        change = ["raise", "initiate", "cut", "suspend", "regular"][int(rng.choice(5, p=p))]
        old = round(float(rng.uniform(0.10, 1.0)), 2)
        new = {
            "raise": round(old * float(rng.uniform(1.05, 1.25)), 2),
            "cut": round(old * float(rng.uniform(0.3, 0.7)), 2),
            "initiate": old,
            "suspend": 0.0,
            "regular": old,
        }[change]
        if change == "raise" and new <= old:
            new = round(old + 0.01, 2)
        return {"kind": kind, "change": change, "old": old, "new": new}
    if kind == "restructuring":
        return {
            "kind": kind,
            "headcount_pct": float(rng.uniform(0.04, 0.15)),
            "charge": round(co.revenue_m * float(rng.uniform(0.005, 0.03)), 1),
        }
    if kind == "impairment":
        return {"kind": kind, "charge": round(co.market_cap_m * float(rng.uniform(0.02, 0.15)), 1)}
    if kind == "restatement":
        return {"kind": kind, "year": day.year - 1}
    if kind == "delisting":
        return {"kind": kind, "reason": "bid_price" if u < 0.7 else "late_filing"}
    if kind == "bankruptcy":
        return {"kind": kind}
    if kind == "contract":
        rel = float(rng.lognormal(-2.5, 0.9)) if not demo else float(rng.uniform(0.1, 0.5))
        return {
            "kind": kind,
            "value": round(co.revenue_m * rel, 1),
            "years": int(rng.integers(2, 6)),
            "counterparty": COUNTERPARTIES[int(rng.integers(len(COUNTERPARTIES)))],
        }
    if kind == "vote":
        f = int(rng.integers(5_000_000, 90_000_000))
        return {"kind": kind, "votes_for": f, "votes_against": int(f * rng.uniform(0.02, 0.3))}
    return {"kind": kind}


def draw_filing_events(
    co: Company, day: dt.date, kind: str, rng: np.random.Generator, demo: bool
) -> list[dict[str, Any]]:
    """The primary event plus (realistic preset) secondary events carried in the same filing."""
    events = [draw_event(kind, co, day, rng, demo)]
    if demo:
        return events
    if kind == "earnings":
        u = float(rng.random())
        if u < 0.2:  # dividend declared in the earnings release only (exhibit-only signal)
            ev = draw_event("dividend", co, day, rng, demo)
            ev["exhibit_only"] = True
            events.append(ev)
        elif u < 0.28:
            ev = draw_event("buyback", co, day, rng, demo)
            ev["exhibit_only"] = True
            events.append(ev)
        elif u < 0.33:
            events.append(draw_event("restructuring", co, day, rng, demo))
        elif u < 0.38 and events[0]["eps"] < events[0]["eps_ref"]:
            # A CEO let go alongside a miss: the market often welcomes it (Huson et al. 2004).
            ev = draw_event("departure", co, day, rng, demo)
            ev.update(role="CEO", mode="termination_after_poor", person=co.officers["CEO"])
            events.append(ev)
    elif kind == "departure" and rng.random() < 0.3:
        events.append(draw_event("appointment", co, day, rng, demo))
    elif kind == "convertible" and rng.random() < 0.3:
        events.append(draw_event("buyback", co, day, rng, demo))  # capped-call style combos
    return events


def driver_record(ev: dict[str, Any], effect: float) -> dict[str, Any]:
    """What goes into truth.drivers: the kind, its effect and the facts that set it."""
    keep = {
        k: v
        for k, v in ev.items()
        if k not in {"quarter", "person", "successor", "counterparty", "role_title"}
    }
    keep["effect"] = round(effect, 6)
    return keep


# ---------------------------------------------------------------------------------------------
# Schedule: day 0s and acceptance timestamps.


def schedule(
    n_filings: int, n_companies: int, n_days: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(company index, day-0 index into the filing period) per filing, sorted by day 0.

    Same-company day 0s are at least MIN_SPACING sessions apart so event windows never overlap.
    """
    counts = rng.multinomial(n_filings, np.full(n_companies, 1.0 / n_companies))
    comp, days = [], []
    for c, k in enumerate(counts):
        if k == 0:
            continue
        slots = np.arange(int(rng.integers(MIN_SPACING)), n_days, MIN_SPACING)
        chosen = np.sort(rng.choice(len(slots), size=int(k), replace=False))
        comp.append(np.full(k, c))
        days.append(slots[chosen])
    comp_a, days_a = np.concatenate(comp), np.concatenate(days)
    order = np.lexsort((comp_a, days_a))
    return comp_a[order], days_a[order]


def acceptance_time(day0: dt.date, prev_session: dt.date, rng: np.random.Generator) -> dt.datetime:
    """A UTC acceptance timestamp whose day 0 (16:00 ET / non-trading-day rule) is `day0`."""
    u = float(rng.random())
    gap_days = [prev_session + dt.timedelta(days=i) for i in range(1, (day0 - prev_session).days)]
    if u < 0.35:  # pre-market on day 0
        local = dt.datetime.combine(day0, dt.time(6, 0)) + dt.timedelta(
            seconds=int(rng.integers(0, 3.5 * 3600))
        )
    elif u < 0.55:  # during the session
        local = dt.datetime.combine(day0, dt.time(9, 30)) + dt.timedelta(
            seconds=int(rng.integers(0, 6.5 * 3600))
        )
    elif u < 0.85 or not gap_days:  # after the close on the previous session
        local = dt.datetime.combine(prev_session, dt.time(16, 0, 1)) + dt.timedelta(
            seconds=int(rng.integers(0, 5 * 3600))
        )
    else:  # a weekend or holiday before day 0
        d = gap_days[int(rng.integers(len(gap_days)))]
        local = dt.datetime.combine(d, dt.time(8, 0)) + dt.timedelta(
            seconds=int(rng.integers(0, 10 * 3600))
        )
    return local.replace(tzinfo=ET).astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------------
# Prices.


def simulate_prices(
    n_days: int,
    companies: list[Company],
    event_comp: np.ndarray,
    event_day: np.ndarray,
    event_ar: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(index levels [n_days], stock adj_close [n_days, n_companies]).

    Background daily return: beta_c * m_t + sector_t + idio (small Student-t). For each event at
    session d, the returns of d and d+1 are set so that
        (1 + r_d)(1 + r_{d+1}) = (1 + m_d)(1 + m_{d+1}) + AR
    i.e. the market-adjusted [0,+1] abnormal return is exactly AR. 70% of AR lands on day 0.
    """
    n_c = len(companies)
    m = 0.0003 + 0.009 * rng.standard_t(5, n_days) / math.sqrt(5 / 3)  # [T]
    sectors = sorted({c.sector for c in companies})
    sec_idx = np.array([sectors.index(c.sector) for c in companies])
    f = 0.005 * rng.standard_normal((n_days, len(sectors)))  # [T, S]
    beta = rng.uniform(0.7, 1.3, n_c)  # [C]
    idio_scale = np.array([SIZE_NOISE[c.size] for c in companies]) * 0.008
    idio = idio_scale * rng.standard_t(4, (n_days, n_c)) / math.sqrt(2)  # [T, C]
    r = m[:, None] * beta[None, :] + f[:, sec_idx] + idio  # [T, C]
    d, c = event_day, event_comp
    gross0 = (1 + r[d, c]) * (1 + 0.7 * event_ar)
    target = (1 + m[d]) * (1 + m[d + 1]) + event_ar
    r[d, c] = gross0 - 1
    r[d + 1, c] = target / gross0 - 1
    p0 = rng.uniform(10, 150, n_c)
    stock = p0[None, :] * np.cumprod(1 + r, axis=0)  # [T, C]
    index = 3000.0 * np.cumprod(1 + m)  # [T]
    return index, stock


# ---------------------------------------------------------------------------------------------
# The whole market.


@dataclass
class Market:
    """Everything `simulate_to_store` writes, as frames."""

    companies: pd.DataFrame
    filings: pd.DataFrame
    documents: pd.DataFrame
    prices: pd.DataFrame
    truth: pd.DataFrame
    day0: dict[str, dt.date]
    """accession -> intended day 0 (tests check the events module agrees)."""
    realized: dict[str, float]
    """accession -> the market-adjusted [0,+1] abnormal return built into the prices."""


def preset_params(sim: SimulateConfig) -> tuple[Preset, float, float]:
    """(preset, noise scale, noise df) with the config's overrides applied."""
    preset = PRESETS[sim.preset]
    scale = sim.noise_scale or preset.noise_scale
    df = sim.noise_df or preset.noise_df
    return preset, scale, df


def _check_calendar_span(sim: SimulateConfig, first: dt.date, last: dt.date, per: int) -> None:
    """The simulated prices (a burn-in year before `simulate.start`, then the filings' period)
    must lie in the NYSE calendar: 1993-01-04 to a year from today."""
    lo, hi = dt.date.fromisoformat(calendar.FIRST_DAY), calendar.last_day()
    if first < lo:
        raise UserError(
            f"simulate.start={sim.start}: the simulation needs prices from {first} (a year of "
            f"burn-in); the NYSE calendar starts {lo}: start on "
            f"{lo + (dt.date.fromisoformat(sim.start) - first)} or later"
        )
    if last > hi:
        raise UserError(
            f"simulate.start={sim.start}, simulate.filings={sim.filings}, simulate.companies="
            f"{sim.companies}: {per} filings per company run to {last}, past the NYSE calendar's "
            f"end ({hi}, a year from today); start earlier, or spread the filings over more companies"
        )


def simulate_market(sim: SimulateConfig, seed: int) -> Market:
    """Generate the market in memory (deterministic in `seed`)."""
    preset, base_scale, noise_df = preset_params(sim)
    demo = sim.preset == "demo"
    ss = np.random.SeedSequence(seed)
    rng_co, rng_ev, rng_px, rng_tx, rng_noise = (np.random.default_rng(s) for s in ss.spawn(5))
    companies = make_companies(sim.companies, rng_co)

    start = dt.date.fromisoformat(sim.start)
    per_company = math.ceil(sim.filings / sim.companies)
    n_period = max(250, int(MIN_SPACING * per_company * 1.6) + 20)
    first, last = (
        start - dt.timedelta(days=400),
        start + dt.timedelta(days=int(n_period * 1.6) + 40),
    )
    _check_calendar_span(sim, first, last, per_company)
    before = calendar.sessions(first, start - dt.timedelta(days=1))
    after = calendar.sessions(start, last)
    if len(after) < n_period + TAIL_SESSIONS:
        raise ValueError("calendar too short for the simulated period")
    days = before[-BURN_IN_SESSIONS:] + after[: n_period + TAIL_SESSIONS]
    comp, d_rel = schedule(sim.filings, sim.companies, n_period, rng_ev)
    d_abs = d_rel + BURN_IN_SESSIONS

    kinds = list(preset.kinds)
    probs = np.array([preset.kinds[k] for k in kinds])
    kind_idx = rng_ev.choice(len(kinds), size=sim.filings, p=probs / probs.sum())
    noise_t = rng_noise.standard_t(noise_df, sim.filings)

    fil_rows, doc_rows, truth_rows, day0s = [], [], [], {}
    expected = np.empty(sim.filings)
    scales = np.empty(sim.filings)
    seq: dict[int, int] = {}
    for i in range(sim.filings):
        co = companies[int(comp[i])]
        day0 = days[int(d_abs[i])]
        accepted = acceptance_time(day0, days[int(d_abs[i]) - 1], rng_ev)
        local_date = accepted.astimezone(ET).date()
        events = draw_filing_events(co, local_date, kinds[int(kind_idx[i])], rng_ev, demo)
        effects = [event_effect(ev, co) * sim.effect_scale for ev in events]
        expected[i] = sum(effects)
        scales[i] = base_scale * SIZE_NOISE[co.size]
        items, main, exhibits = render_filing(co, events, local_date, rng_tx, sim.preset)
        seq[int(comp[i])] = seq.get(int(comp[i]), 0) + 1
        acc = f"{int(co.cik):010d}-{local_date.year % 100:02d}-{seq[int(comp[i])]:06d}"
        day0s[acc] = day0
        fil_rows.append(
            {
                "accession": acc,
                "cik": co.cik,
                "ticker": co.ticker,
                "form": "8-K",
                "accepted_at": pd.Timestamp(accepted),
                "filing_date": local_date,
                "items": items,
                "source": "simulated",
                "url": f"simulated://{co.ticker.lower()}/{acc}",
            }
        )
        main_name = f"{co.ticker.lower()}-8k_{local_date:%Y%m%d}.txt"
        doc_rows.append(document_row(acc, main_name, "main", None, main))
        for j, (etype, text) in enumerate(exhibits, start=1):
            doc_rows.append(document_row(acc, f"ex99-{j}.txt", "exhibit", etype, text))
        truth_rows.append(
            {
                "accession": acc,
                "expected_abnormal_ret": float(expected[i]),
                "noise_scale": float(scales[i]),
                "noise_df": float(noise_df),
                "drivers": json.dumps(
                    [driver_record(ev, e) for ev, e in zip(events, effects)], sort_keys=True
                ),
            }
        )
    ar = np.maximum(expected + scales * noise_t, MIN_AR)
    market_acc = [r["accession"] for r in fil_rows]
    index, stock = simulate_prices(len(days), companies, comp, d_abs, ar, rng_px)
    prices = _price_frame(days, companies, index, stock)
    comp_rows = [
        {
            "cik": c.cik,
            "ticker": c.ticker,
            "name": c.name,
            "sector": c.sector,
            "size": c.size,
            "source": "simulated",
        }
        for c in companies
    ]
    return Market(
        companies=pd.DataFrame(comp_rows),
        filings=pd.DataFrame(fil_rows),
        documents=pd.DataFrame(doc_rows),
        prices=prices,
        truth=pd.DataFrame(truth_rows),
        day0=day0s,
        realized=dict(zip(market_acc, ar.tolist())),
    )


def _price_frame(
    days: list[dt.date], companies: list[Company], index: np.ndarray, stock: np.ndarray
) -> pd.DataFrame:
    tickers = [INDEX_TICKER] + [c.ticker for c in companies]
    levels = np.concatenate([index[:, None], stock], axis=1)  # [T, C+1]
    n_t = len(days)
    date_col = np.tile(np.array(days, dtype="datetime64[D]"), len(tickers))
    adj = levels.T.reshape(-1)
    return pd.DataFrame(
        {
            "ticker": np.repeat(np.array(tickers, dtype=object), n_t),
            "date": date_col,
            "close": np.round(adj, 2),
            "adj_close": adj,
        }
    )


def _clear_simulated(con: Any, store_path: str) -> None:
    """Drop earlier simulated rows so a rerun with another seed leaves no stale filings.

    A store that holds anything real (filings, companies, or prices, e.g. after `ingest prices`
    alone) is refused: the simulated index series would overwrite the real one (both live under
    INDEX_TICKER), and real prices would sit beside the simulated market.
    """
    sim_tickers = "SELECT ticker FROM companies WHERE source = 'simulated'"
    counts = {
        "filings": "SELECT count(*) FROM filings WHERE source <> 'simulated'",
        "companies": "SELECT count(*) FROM companies WHERE source <> 'simulated'",
        "price rows": f"SELECT count(*) FROM prices WHERE ticker NOT IN ({sim_tickers}) AND "
        f"(ticker <> '{INDEX_TICKER}' OR NOT EXISTS ({sim_tickers}))",
    }
    for what, sql in counts.items():
        real = con.execute(sql).fetchone()[0]
        if real:
            raise UserError(
                f"{store_path}: store holds {real} real (non-simulated) {what}; simulate into "
                "a separate store (--store PATH)"
            )
    sub = "SELECT accession FROM filings WHERE source = 'simulated'"
    for table in ("documents", "events", "truth"):
        con.execute(f"DELETE FROM {table} WHERE accession IN ({sub})")
    con.execute(
        "DELETE FROM prices WHERE ticker IN (SELECT ticker FROM companies WHERE source = "
        f"'simulated') OR ticker = '{INDEX_TICKER}'"
    )
    con.execute("DELETE FROM filings WHERE source = 'simulated'")
    con.execute("DELETE FROM companies WHERE source = 'simulated'")


def simulate_to_store(cfg: RunConfig) -> dict[str, Any]:
    """Generate the simulated market into `cfg.store`, then run the event study on it."""
    sim = cfg.simulate
    seed = cfg.stage_seed(sim.seed)
    t0 = time.perf_counter()
    market = simulate_market(sim, seed)
    t_gen = time.perf_counter() - t0
    with Store(cfg.store) as store, store.transaction() as con:
        _clear_simulated(con, cfg.store)
        for table in ("companies", "filings", "documents", "prices", "truth"):
            frame = getattr(market, table)
            con.register("_sim_frame", frame)
            try:
                cols = ", ".join(frame.columns)
                con.execute(
                    f"INSERT OR REPLACE INTO {table} ({cols}) SELECT {cols} FROM _sim_frame"
                )
            finally:
                con.unregister("_sim_frame")
    t_write = time.perf_counter() - t0 - t_gen
    events_summary: Any
    try:
        from filingcontrast.corpus.events import compute_events_in_store
    except ImportError as exc:  # the events module is another stage; say so, never hide it
        events_summary = {"skipped": f"event study unavailable: {exc}"}
    else:
        events_summary = compute_events_in_store(cfg.store)
    items: dict[str, int] = {}
    for its in market.filings["items"]:
        for it in its:
            items[it] = items.get(it, 0) + 1
    preset, scale, df = preset_params(sim)
    return {
        "store": str(Path(cfg.store)),
        "preset": sim.preset,
        "seed": seed,
        "filings": len(market.filings),
        "companies": len(market.companies),
        "documents": len(market.documents),
        "price_rows": len(market.prices),
        "first_day0": str(min(market.day0.values())),
        "last_day0": str(max(market.day0.values())),
        "noise_scale": scale,
        "noise_df": df,
        "effect_scale": sim.effect_scale,
        "items": dict(sorted(items.items())),
        "events": events_summary,
        "seconds": {
            "generate": round(t_gen, 2),
            "write": round(t_write, 2),
            "total": round(time.perf_counter() - t0, 2),
        },
    }


# ---------------------------------------------------------------------------------------------
# Ground truth: the Bayes ceiling and the oracle.

_QUAD_POINTS = 2000


def _t_quantiles(df: np.ndarray) -> np.ndarray:
    """Equal-probability midpoints of a standard t for each df: [n, K]. The ppf runs once per
    distinct df (a market has one or a few), not once per pair."""
    from scipy import stats

    u = (np.arange(_QUAD_POINTS) + 0.5) / _QUAD_POINTS  # [K]
    distinct, index = np.unique(df, return_inverse=True)
    return stats.t.ppf(u[None, :], distinct[:, None])[index]


def _p_exceeds(
    x: np.ndarray, mu: np.ndarray, sa: np.ndarray, da: np.ndarray, nb: np.ndarray
) -> np.ndarray:
    """P(mu + sa*Ta - Nb >= x) per pair, by quadrature over Nb's quantiles `nb` [n, K]."""
    from scipy import stats

    z = (x[:, None] - mu[:, None] + nb) / sa[:, None]
    return stats.t.sf(z, da[:, None]).mean(axis=1)


def _truth_arrays(pairs_meta: list[dict[str, Any]]) -> tuple[np.ndarray, ...] | None:
    try:
        ta = [p["a"]["truth"] for p in pairs_meta]
        tb = [p["b"]["truth"] for p in pairs_meta]
        if any(t is None for t in ta + tb):
            return None
        arr = lambda ts, k: np.array([float(t[k]) for t in ts])  # noqa: E731
        return (
            arr(ta, "expected"),
            arr(ta, "scale"),
            arr(ta, "df"),
            arr(tb, "expected"),
            arr(tb, "scale"),
            arr(tb, "df"),
        )
    except (KeyError, TypeError):
        return None


def pair_win_probabilities(
    pairs_meta: list[dict[str, Any]], min_gap: float | None = None
) -> np.ndarray | None:
    """Per pair, P(the higher-expected filing realizes the higher return | |gap| >= min_gap).

    The pairs were kept only when their realized |AR_a - AR_b| >= min_gap, so the oracle's
    accuracy on them is conditional on that event:
        P(correct | kept) = P(D >= g) / (P(D >= g) + P(D <= -g)),  D = |dE| + noise_a - noise_b.
    `min_gap=None` reads each pair's `min_gap` from its meta, else PairsConfig's default.
    None when a pair lacks truth (real data).
    """
    arrs = _truth_arrays(pairs_meta)
    if arrs is None or not pairs_meta:
        return None
    ea, sa, da, eb, sb, db = arrs
    if min_gap is None:
        default = PairsConfig().min_gap
        g = np.array([float(p.get("min_gap", default)) for p in pairs_meta])
    else:
        g = np.full(len(pairs_meta), float(min_gap))
    mu = np.abs(ea - eb)
    nb = sb[:, None] * _t_quantiles(db)  # [n, K]: B's noise quantiles, shared by both tails
    hit = _p_exceeds(g, mu, sa, da, nb)
    miss = _p_exceeds(g, -mu, sa, da, nb)
    p = hit / np.maximum(hit + miss, 1e-300)
    return np.where(mu == 0, 0.5, p)


def bayes_ceiling(
    pairs_meta: list[dict[str, Any]],
    window: str = "0_1",
    min_gap: float | None = None,
    method: str = "market_adjusted",
) -> float | None:
    """Expected accuracy of the Bayes-optimal (oracle) verdicts on these pairs.

    The oracle knows each filing's expected abnormal return; given the Student-t noise and the
    pair selection rule |realized gap| >= min_gap, its best verdict is still the higher-expected
    filing, and this returns the mean of its per-pair win probabilities (conditional on
    selection; pass min_gap=0.0 for the unconditional version). None for windows other than
    "0_1" (truth is stored for that window only), for the market-model method (its estimated
    betas move each realized AR by ~0.4 %, noise the stored law does not describe, so the
    figure would only be approximate) and for pairs without truth.
    """
    if window != "0_1" or method != "market_adjusted":
        return None
    p = pair_win_probabilities(pairs_meta, min_gap)
    return None if p is None else float(p.mean())


def oracle_accuracy(pairs_meta: list[dict[str, Any]]) -> float:
    """Accuracy of the oracle's verdicts on the realized winners, a tie in expected return
    counting half (a coin flip, as `bayes_ceiling` and the signal rule count it). Crediting ties
    to "A" instead made the figure depend on where the pairs builder put those winners: on the
    realistic preset, whose neutral filings tie at 0, 21 of 128 test pairs are ties."""
    ea, eb = (np.array([float(p[s]["truth"]["expected"]) for p in pairs_meta]) for s in "ab")
    p_a = np.where(ea == eb, 0.5, (ea > eb).astype(float))  # the oracle's P(A better)
    return accuracy(p_a, [int(p["winner"] == "A") for p in pairs_meta])


# ---------------------------------------------------------------------------------------------
# Signal labels from the truth drivers (what signals.py must recover).


def truth_labels(drivers: list[dict[str, Any]]) -> set[str]:
    """Signal labels ("eps:beat", "buyback", "departure:CEO:resignation", ...) of one filing."""
    out: set[str] = set()
    for d in drivers:
        k = d["kind"]
        if k == "earnings":
            a, c = d["eps"], d["eps_ref"]
            out.add("eps:" + ("beat" if a > c else "miss" if a < c else "inline"))
            if d.get("guidance"):
                out.add(f"guidance:{d['guidance']}")
        elif k == "guidance_update":
            out.add(f"guidance:{d['guidance']}")
        elif k == "equity_offering":
            out.add("offering:private" if d["private"] else "offering:public")
        elif k == "convertible":
            out.add("convertible")
        elif k == "departure":
            role = d["role"] if d["role"] in ROLE_TITLES else "other"
            mode = "termination" if d["mode"].startswith("termination") else d["mode"]
            out.add(f"departure:{role}:{mode}")
        elif k == "buyback":
            out.add("buyback")
        elif k == "dividend":
            out.add(f"dividend:{d['change']}")
        elif k in ("restructuring", "impairment", "restatement", "delisting", "bankruptcy"):
            out.add(k)
        elif k == "contract":
            out.add("contract")
    return out


def quick_pairs(
    market: Market, min_gap: float = 0.01, max_days_apart: int = 5, seed: int = 0
) -> list[dict[str, Any]]:
    """Pairs meta (a/b with truth and realized abnormal_ret) for calibration and tests.

    A light stand-in for pairs.build_pairs: each filing is paired with one random filing whose
    day 0 is at most `max_days_apart` calendar-ish days later (7/5 per trading week), and the
    pair is kept when its realized |gap| >= min_gap.
    """
    rng = np.random.default_rng(seed)
    truth = market.truth.set_index("accession")
    accs = sorted(market.day0, key=lambda a: (market.day0[a], a))
    day = np.array([market.day0[a].toordinal() for a in accs])
    limit = int(math.ceil(max_days_apart * 7 / 5))
    out = []
    for i, a in enumerate(accs):
        hi = int(np.searchsorted(day, day[i] + limit, side="right"))
        if hi <= i + 1:
            continue
        b = accs[int(rng.integers(i + 1, hi))]
        ra, rb = market.realized[a], market.realized[b]
        if abs(ra - rb) < min_gap:
            continue
        side = {}
        for key, acc, r in (("a", a, ra), ("b", b, rb)):
            t = truth.loc[acc]
            side[key] = {
                "accession": acc,
                "abnormal_ret": r,
                "truth": {
                    "expected": float(t["expected_abnormal_ret"]),
                    "scale": float(t["noise_scale"]),
                    "df": float(t["noise_df"]),
                },
            }
        out.append({**side, "winner": "A" if ra > rb else "B", "gap": ra - rb})
    return out
