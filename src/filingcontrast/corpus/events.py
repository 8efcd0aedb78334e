"""Event study: day 0 of each filing and its (abnormal) returns over event windows.

Definitions (docs/corpus.md has the long form):

* **day 0** is the first NYSE session on which the market could react to the filing: the
  acceptance date in New York when that date is a session and the filing was accepted before
  16:00 ET (before the open counts as that day), otherwise the next session.
* A window `(s, e)` (name `"s_e"`, default `0_1`, `0_3`, `0_5`) runs from the close of session
  `day0 + s - 1` to the close of session `day0 + e`; its return is
  `adj_close[day0 + e] / adj_close[day0 + s - 1] - 1`. Positions count NYSE sessions, so a
  session without a price is a gap (`missing_day`), never silently skipped over.
* `market_adjusted`: abnormal = stock window return - index window return (`INDEX_TICKER`).
* `market_model`: alpha, beta by OLS of daily stock returns on daily index returns over the
  `EST_LEN` (250) sessions ending `EST_GAP` (30) sessions before day 0; needs `EST_MIN` (120)
  days where both returns exist. abnormal = ret - (n_days * alpha + beta * index_ret).

A filing whose return cannot be computed keeps a row with `skip_reason` set (see SKIP_REASONS).
Everything is vectorised per ticker with NumPy over the full session calendar, so ~10,000
filings x 150 tickers take well under a second.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from filingcontrast.config import window_name
from filingcontrast.corpus.calendar import xnys
from filingcontrast.corpus.store import INDEX_TICKER, Store

NY_TZ = "America/New_York"
MARKET_CLOSE_HOUR = 16  # filings accepted at/after 16:00 ET react the next session

DEFAULT_WINDOWS: tuple[tuple[int, int], ...] = ((0, 1), (0, 3), (0, 5))
DEFAULT_METHODS: tuple[str, ...] = ("market_adjusted", "market_model")
METHODS = ("market_adjusted", "market_model")

EST_LEN = 250  # market-model estimation window, in sessions
EST_GAP = 30  # the estimation window ends this many sessions before day 0
EST_MIN = 120  # minimum valid daily returns in the estimation window

# Why an event row has no return. Every filing x window x method gets a row; these explain gaps.
SKIP_REASONS = {
    "no_accepted_at": "the filing has no acceptance time",
    "outside_calendar": "day 0 falls outside the NYSE calendar this build knows",
    "no_prices": "no prices at all for the filing's ticker",
    "too_early": "the ticker's prices start after the close before the window",
    "missing_after": "the ticker's prices end before the window ends (delisted or not yet)",
    "missing_day": "a price the window needs is missing/NaN/non-positive (gap in the series)",
    "no_index_prices": "no market index prices (INDEX_TICKER) in the store",
    "index_missing_day": "an index price the window needs is missing",
    "insufficient_estimation": f"fewer than {EST_MIN} valid days in the market-model estimation window",
}

EVENT_COLUMNS = [
    "accession",
    "window",
    "method",
    "day0",
    "ret",
    "index_ret",
    "abnormal_ret",
    "skip_reason",
]


def parse_window(name: str) -> tuple[int, int]:
    """ "0_3" -> (0, 3); the range is checked by the caller, so that "-1_1" is refused as the
    window (-1, 1) (config.parse_window refuses such names outright)."""
    start, end = name.split("_")
    return int(start), int(end)


def _normalize_windows(windows: Sequence[tuple[int, int] | str]) -> list[tuple[int, int]]:
    """Windows as (start, end) pairs; names like "0_3" are accepted too."""
    out = [parse_window(w) if isinstance(w, str) else (int(w[0]), int(w[1])) for w in windows]
    for s, e in out:
        if s < 0 or e < s:
            raise ValueError(f"bad window ({s}, {e}): need 0 <= start <= end")
    return out


@functools.lru_cache(maxsize=1)
def _session_days() -> np.ndarray:
    """All NYSE sessions the calendar knows, as a read-only datetime64[D] array."""
    days = xnys().sessions.values.astype("datetime64[D]")
    days.setflags(write=False)
    return days


# --------------------------------------------------------------------------------------------
# Day 0


def day0(accepted_at: dt.datetime) -> dt.date:
    """The trading day on which the market could first react to a filing accepted at `accepted_at`.

    After 16:00 America/New_York or on a non-trading day -> the next session; before 16:00 on a
    session (including before the 09:30 open) -> that session. `accepted_at` must be tz-aware.
    """
    if accepted_at.tzinfo is None or accepted_at.utcoffset() is None:
        raise ValueError(f"accepted_at {accepted_at.isoformat()} has no time zone")
    out = day0_positions(pd.Series([pd.Timestamp(accepted_at)]))
    if out[0] < 0:
        raise ValueError(f"accepted_at {accepted_at.isoformat()} is outside the NYSE calendar")
    return _session_days()[out[0]].astype(object)


def day0_positions(accepted_at: pd.Series) -> np.ndarray:
    """Vectorised day 0 as positions into the session calendar.

    -1 = no acceptance time, -2 = outside the calendar's range.

    Naive timestamps are taken as UTC (the store keeps accepted_at in UTC).
    """
    ts = pd.to_datetime(accepted_at, utc=True)
    local = ts.dt.tz_convert(NY_TZ)
    valid = local.notna().to_numpy()
    local_date = local.dt.tz_localize(None).dt.normalize().to_numpy().astype("datetime64[D]")
    after_close = (local.dt.hour >= MARKET_CLOSE_HOUR).to_numpy()
    # Earliest calendar day the market could react; day 0 is the first session on/after it.
    candidate = local_date + after_close.astype("timedelta64[D]")
    days = _session_days()
    pos = np.searchsorted(days, candidate, side="left")
    before_start = candidate < days[0] if len(days) else np.ones(len(pos), bool)
    inside = (pos < len(days)) & ~before_start
    return np.where(valid & inside, pos, np.where(valid, -2, -1)).astype(np.int64)


def day0_series(accepted_at: pd.Series) -> pd.Series:
    """Day 0 as dates (NaT where unknown), aligned to `accepted_at`'s index."""
    pos = day0_positions(accepted_at)
    days = _session_days()
    out = np.where(pos >= 0, days[np.clip(pos, 0, len(days) - 1)], np.datetime64("NaT"))
    return pd.Series(pd.to_datetime(out), index=accepted_at.index).dt.date


# --------------------------------------------------------------------------------------------
# Returns


def _price_vector(frame: pd.DataFrame) -> np.ndarray:
    """One ticker's adjusted closes aligned to the session calendar (NaN where missing/invalid)."""
    days = _session_days()
    vec = np.full(len(days), np.nan)
    dates = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
    values = frame["adj_close"].to_numpy(dtype=float)
    pos = np.searchsorted(days, dates)
    on_session = (pos < len(days)) & (days[np.clip(pos, 0, len(days) - 1)] == dates)
    good = on_session & np.isfinite(values) & (values > 0)
    vec[pos[good]] = values[good]
    return vec


def _bounds(vec: np.ndarray) -> tuple[int, int]:
    """First and last session positions with a valid price (-1, -1 when none)."""
    idx = np.flatnonzero(np.isfinite(vec))
    return (int(idx[0]), int(idx[-1])) if len(idx) else (-1, -1)


def _window_return(
    vec: np.ndarray, base: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return over [base, end] positions and a skip code per row (0 ok, 1 too_early,
    2 missing_after, 3 missing_day, 4 no prices)."""
    first, last = _bounds(vec)
    n = len(vec)
    code = np.zeros(len(base), dtype=np.int8)
    if first < 0:
        code[:] = 4
        return np.full(len(base), np.nan), code
    b = vec[np.clip(base, 0, n - 1)]
    e = vec[np.clip(end, 0, n - 1)]
    ret = e / b - 1.0
    code[~np.isfinite(ret)] = 3
    code[end > last] = 2
    code[base < first] = 1
    ret[code != 0] = np.nan
    return ret, code


def _market_model(
    stock_ret: np.ndarray, index_ret: np.ndarray, pos0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS alpha, beta per event from daily returns in its estimation window, and valid counts.

    Shapes: stock_ret, index_ret [n_sessions] daily returns (NaN = missing); pos0 [n_events].
    """
    n = len(stock_ret)
    offsets = np.arange(-(EST_GAP + EST_LEN - 1), -EST_GAP + 1)  # [EST_LEN] relative to day 0
    idx = pos0[:, None] + offsets[None, :]  # [n_events, EST_LEN]
    inside = (idx >= 0) & (idx < n)
    idx = np.clip(idx, 0, n - 1)
    y = stock_ret[idx]  # [n_events, EST_LEN]
    x = index_ret[idx]
    valid = inside & np.isfinite(y) & np.isfinite(x)
    count = valid.sum(axis=1)
    y = np.where(valid, y, 0.0)
    x = np.where(valid, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = x.sum(axis=1) / count
        my = y.sum(axis=1) / count
        dx = np.where(valid, x - mx[:, None], 0.0)
        dy = np.where(valid, y - my[:, None], 0.0)
        beta = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
        alpha = my - beta * mx
    return alpha, beta, count


def _daily_returns(vec: np.ndarray) -> np.ndarray:
    out = np.full(len(vec), np.nan)
    out[1:] = vec[1:] / vec[:-1] - 1.0
    return out


_PRICE_CODES = {1: "too_early", 2: "missing_after", 3: "missing_day", 4: "no_prices"}


def compute_events(
    filings: pd.DataFrame,
    prices: pd.DataFrame,
    windows: Sequence[tuple[int, int] | str] = DEFAULT_WINDOWS,
    methods: Sequence[str] = DEFAULT_METHODS,
) -> pd.DataFrame:
    """Event rows (the `events` table's columns) for every filing x window x method.

    filings: columns accession, ticker, accepted_at (tz-aware or UTC-naive).
    prices: columns ticker, date, adj_close (rows with ticker == INDEX_TICKER are the index);
    a NaN adj_close falls back to `close` when that column exists.
    """
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown event method {method!r}; expected one of {METHODS}")
    windows = _normalize_windows(windows)
    if len(filings) == 0:
        return pd.DataFrame(columns=EVENT_COLUMNS)

    prices = prices.copy()
    if "close" in prices.columns:
        prices["adj_close"] = prices["adj_close"].astype(float).fillna(prices["close"])
    by_ticker = {t: g for t, g in prices.groupby("ticker", sort=False)}
    index_vec = (
        _price_vector(by_ticker[INDEX_TICKER])
        if INDEX_TICKER in by_ticker
        else np.full(len(_session_days()), np.nan)
    )
    index_daily = _daily_returns(index_vec)
    days = _session_days()

    filings = filings.reset_index(drop=True)
    pos0_all = day0_positions(filings["accepted_at"])
    parts: list[dict[str, np.ndarray]] = []
    tickers = filings["ticker"].fillna("").astype(str).to_numpy()
    accessions = filings["accession"].astype(object).to_numpy()
    for ticker in pd.unique(tickers):
        rows = np.flatnonzero(tickers == ticker)
        stock_vec = (
            _price_vector(by_ticker[ticker]) if ticker in by_ticker else np.full(len(days), np.nan)
        )
        parts.append(
            _events_for_ticker(
                accessions[rows],
                pos0_all[rows],
                stock_vec,
                index_vec,
                index_daily,
                windows,
                methods,
            )
        )
    # One frame from the per-ticker column arrays (building many small frames is the slow part).
    columns = {c: np.concatenate([p[c] for p in parts]) for c in EVENT_COLUMNS}
    out = pd.DataFrame(columns)
    out["day0"] = pd.to_datetime(out["day0"]).dt.date
    for col in ("accession", "window", "method"):
        out[col] = out[col].astype(str)
    # Kept as object so a missing reason is None (pandas would infer str with NaN).
    out["skip_reason"] = pd.Series(columns["skip_reason"], dtype=object)
    return out


def _events_for_ticker(
    accessions: np.ndarray,
    pos0: np.ndarray,
    stock_vec: np.ndarray,
    index_vec: np.ndarray,
    index_daily: np.ndarray,
    windows: Sequence[tuple[int, int]],
    methods: Sequence[str],
) -> dict[str, np.ndarray]:
    """All window x method rows for one ticker's filings, as column arrays (vectorised)."""
    days = _session_days()
    known = pos0 >= 0
    safe0 = np.where(known, pos0, 0)
    day0_dates = np.where(known, days[safe0], np.datetime64("NaT"))
    have_index = bool(np.isfinite(index_vec).any())
    if "market_model" in methods:
        alpha, beta, count = _market_model(_daily_returns(stock_vec), index_daily, safe0)
    cols: dict[str, list[np.ndarray]] = {c: [] for c in EVENT_COLUMNS}
    n = len(accessions)
    for s, e in windows:
        base, end = safe0 + s - 1, safe0 + e
        ret, code = _window_return(stock_vec, base, end)
        iret, icode = _window_return(index_vec, base, end)
        reason = np.full(n, None, dtype=object)
        for c, name in _PRICE_CODES.items():
            reason[code == c] = name
        reason[(code == 0) & (icode != 0)] = (
            "index_missing_day" if have_index else "no_index_prices"
        )
        reason[pos0 == -1] = "no_accepted_at"
        reason[pos0 == -2] = "outside_calendar"
        for method in methods:
            r = reason.copy()
            if method == "market_adjusted":
                abn = ret - iret
            else:
                abn = ret - ((e - s + 1) * alpha + beta * iret)
                r[(r == None) & (count < EST_MIN)] = "insufficient_estimation"  # noqa: E711
            ok = r == None  # noqa: E711
            cols["accession"].append(accessions)
            cols["window"].append(np.full(n, window_name((s, e)), dtype=object))
            cols["method"].append(np.full(n, method, dtype=object))
            cols["day0"].append(day0_dates)
            cols["ret"].append(np.where(code == 0, ret, np.nan))
            cols["index_ret"].append(np.where(icode == 0, iret, np.nan))
            cols["abnormal_ret"].append(np.where(ok, abn, np.nan))
            cols["skip_reason"].append(r)
    return {c: np.concatenate(v) for c, v in cols.items()}


# --------------------------------------------------------------------------------------------
# Store integration


def compute_events_in_store(
    store_path: str | Path,
    windows: Sequence[tuple[int, int] | str] = DEFAULT_WINDOWS,
    methods: Sequence[str] = DEFAULT_METHODS,
) -> dict:
    """Recompute `events` rows for every filing in the store (one transaction).

    Rows of other methods (e.g. "provided" returns from user files) are left untouched. Windows
    the store already has are recomputed too, so a window added once (`filingcontrast events
    'pairs.window="1_3"'`) survives later recomputations (ingest, simulate).
    Returns a summary: counts of filings, events with a return, and skips by reason.
    """
    t0 = time.perf_counter()
    with Store(store_path, create=False) as store:
        stored = store.query(
            'SELECT DISTINCT "window" FROM events WHERE method IN (SELECT unnest(?::VARCHAR[]))',
            [list(methods)],
        )
        windows = list(
            dict.fromkeys(_normalize_windows([*windows, *(r["window"] for r in stored)]))
        )
        filings = store.frame("SELECT accession, ticker, accepted_at FROM filings")
        prices = store.frame("SELECT ticker, date, close, adj_close FROM prices")
        events = compute_events(filings, prices, windows=windows, methods=methods)
        with store.transaction() as con:
            placeholders = ", ".join("?" for _ in methods)
            con.execute(f"DELETE FROM events WHERE method IN ({placeholders})", list(methods))
            store.upsert_frame("events", events[EVENT_COLUMNS])  # joins this transaction
    skipped = events["skip_reason"].dropna().value_counts().to_dict() if len(events) else {}
    return {
        "filings": int(len(filings)),
        "events": int(len(events)),
        "with_return": int(events["abnormal_ret"].notna().sum()) if len(events) else 0,
        "skipped": {str(k): int(v) for k, v in sorted(skipped.items())},
        "windows": [window_name(w) for w in windows],
        "methods": list(methods),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def corpus_stats(store_path: str | Path) -> str:
    """Human summary: filings by source and item, prices, events and skip reasons."""
    with Store(store_path, read_only=True) as store:
        lines = [f"store: {store.path}"]
        lines.append(f"filings: {store.count('filings')}  companies: {store.count('companies')}")
        lines.append("by source:")
        for r in store.query(
            "SELECT coalesce(source, '?') AS source, count(*) AS n FROM filings "
            "GROUP BY 1 ORDER BY 2 DESC"
        ):
            lines.append(f"  {r['source']:<12} {r['n']:>8}")
        lines.append("by form:")
        for r in store.query(
            "SELECT coalesce(form, '?') AS form, count(*) AS n FROM filings "
            "GROUP BY 1 ORDER BY 2 DESC"
        ):
            lines.append(f"  {r['form']:<12} {r['n']:>8}")
        lines.append("by item:")
        for r in store.query(
            "SELECT item, count(*) AS n FROM (SELECT unnest(items) AS item FROM filings) "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ):
            lines.append(f"  {r['item']:<12} {r['n']:>8}")
        p = store.query(
            "SELECT count(DISTINCT ticker) AS tickers, count(*) AS n, min(date) AS lo, "
            "max(date) AS hi FROM prices WHERE ticker <> ?",
            [INDEX_TICKER],
        )[0]
        idx = store.query("SELECT count(*) AS n FROM prices WHERE ticker = ?", [INDEX_TICKER])[0]
        lines.append(
            f"prices: {p['n']} rows, {p['tickers']} tickers"
            + (f", {p['lo']} .. {p['hi']}" if p["n"] else "")
            + "; "
            f"index ({INDEX_TICKER}): {idx['n']} rows"
        )
        lines.append("events (window, method: with return / skipped):")
        for r in store.query(
            'SELECT "window", method, count(abnormal_ret) AS ok, '
            "count(*) - count(abnormal_ret) AS skipped FROM events GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            lines.append(f"  {r['window']:<6} {r['method']:<16} {r['ok']:>8} / {r['skipped']}")
        lines.append("skip reasons (all windows and methods):")
        rows = store.query(
            "SELECT skip_reason, count(*) AS n FROM events WHERE skip_reason IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC"
        )
        if not rows:
            lines.append("  (none)")
        for r in rows:
            lines.append(f"  {r['skip_reason']:<24} {r['n']:>8}")
    return "\n".join(lines)
