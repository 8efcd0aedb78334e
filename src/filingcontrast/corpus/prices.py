"""Daily prices into the store: a CSV importer and a yfinance adapter (optional extra).

CSV schema (header required, one row per ticker and trading day):
`ticker,date,close[,adj_close]` — date `YYYY-MM-DD`; `adj_close` (split/dividend adjusted)
defaults to `close` when the column is absent or the cell is empty. Rows whose ticker is
`^INDEX` (store.INDEX_TICKER) are the market index used for abnormal returns; `index_symbol`
copies another ticker's rows (e.g. SPY) to the index as well.

Bad rows: a malformed file (wrong header, a date or number that does not parse, the same ticker and
date twice with different values) raises UserError naming the file and line; a missing (empty/NaN)
or non-positive price, or a date that is not an NYSE trading day (a weekend, a holiday: the event
study counts trading days), is not stored and is counted in the summary's `skipped_rows` with its
first lines in `skipped_lines` (a gap then shows up as an event `skip_reason`, never as a silently
interpolated price). A file with no price row left to store is an error.

yfinance: `auto_adjust` defaults to True since yfinance 0.2.51, which drops the "Adj Close" column
and rewrites "Close"; we pass `auto_adjust=False` explicitly and read "Adj Close" and "Close".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from filingcontrast.corpus.calendar import parse_date_arg, sessions, xnys
from filingcontrast.corpus.store import INDEX_TICKER, Store
from filingcontrast.errors import UserError
from filingcontrast.runtime import read_utf8

CSV_REQUIRED = ("ticker", "date", "close")
CSV_OPTIONAL = ("adj_close",)
DEFAULT_INDEX_SYMBOL = "SPY"  # yfinance symbol stored as INDEX_TICKER (^GSPC also works)
INDEX_ENV = "FILINGCONTRAST_INDEX_SYMBOL"  # overrides the default without a code change
PRICE_COLUMNS = ["ticker", "date", "close", "adj_close"]


def _parse_price(raw: str, where: str, field: str) -> float | None:
    """A price cell: None when empty/NaN, UserError when not a number."""
    raw = (raw or "").strip()
    if raw == "" or raw.lower() in {"nan", "na", "null", "none"}:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{where}: field {field}: {raw!r} is not a number") from None
    if math.isinf(value):
        raise UserError(f"{where}: field {field}: {raw!r} is not a finite number")
    return None if math.isnan(value) else value


def _csv_header(path: Path, fieldnames: Sequence[str] | None) -> list[str]:
    """The lower-cased header; UserError for missing, unknown or repeated columns."""
    header = [h.strip().lower() for h in (fieldnames or [])]
    problems = []
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    unknown = [h for h in header if h not in CSV_REQUIRED + CSV_OPTIONAL]
    if unknown:
        shown = ", ".join(u if len(u) <= 30 else f"{u[:27]}..." for u in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        problems.append(f"unknown column(s) {shown}{more}")
    repeated = sorted({h for h in header if header.count(h) > 1} - set(unknown))
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise UserError(
            f"{path}:1: header: {'; '.join(problems)}; expected ticker,date,close[,adj_close]"
        )
    return header


def _check_cells(rec: dict[Any, Any], where: str) -> None:
    """A row with more cells than the header, or without a required cell, is malformed."""
    if None in rec:  # DictReader puts cells beyond the header under the key None
        raise UserError(f"{where}: {len(rec[None])} more cells than the header")
    absent = [c for c in CSV_REQUIRED if rec.get(c) is None]
    if absent:
        raise UserError(
            f"{where}: field {absent[0]}: missing (row has fewer cells than the header)"
        )


def read_prices_csv(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validated prices from a CSV file, and a report of the rows not stored (and why)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: prices CSV not found")
    rows: list[dict[str, Any]] = []
    skipped: dict[str, list[int]] = {
        "missing_value": [],
        "non_positive": [],
        "not_a_trading_day": [],
    }
    seen: dict[tuple[str, dt.date], tuple[int, float, float]] = {}
    text = read_utf8(path, "save the CSV as UTF-8")
    if text.lstrip().startswith(("{", "[")):  # a JSON(L) file, e.g. the filings manifest
        raise UserError(
            f"{path}:1: not a CSV (it starts like JSON); expected a header ticker,date,close"
            "[,adj_close]"
        )
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames = _csv_header(path, reader.fieldnames)
    for rec in reader:
        line = reader.line_num  # physical line: blank lines are skipped but counted
        where = f"{path}:{line}"
        _check_cells(rec, where)
        ticker = (rec.get("ticker") or "").strip().upper()
        if not ticker:
            raise UserError(f"{where}: field ticker: empty")
        try:
            day = dt.date.fromisoformat((rec.get("date") or "").strip())
        except ValueError:
            raise UserError(
                f"{where}: field date: {rec.get('date')!r} is not a date (YYYY-MM-DD)"
            ) from None
        close = _parse_price(rec.get("close"), where, "close")
        adj = _parse_price(rec.get("adj_close"), where, "adj_close")
        adj = close if adj is None else adj
        if close is None or adj is None:
            skipped["missing_value"].append(line)
            continue
        if close <= 0 or adj <= 0:
            skipped["non_positive"].append(line)
            continue
        key = (ticker, day)
        if key in seen and seen[key][1:] != (close, adj):
            raise UserError(
                f"{where}: {ticker} {day} appears again with different prices "
                f"(first on line {seen[key][0]})"
            )
        seen.setdefault(key, (line, close, adj))  # an exact repeat keeps the first line
        rows.append({"ticker": ticker, "date": day, "close": close, "adj_close": adj})
    trading = _trading_days({r["date"] for r in rows})
    for ticker, day in dict.fromkeys((r["ticker"], r["date"]) for r in rows):
        if day not in trading:  # the event study would ignore it without a word
            skipped["not_a_trading_day"].append(seen[(ticker, day)][0])
    rows = [r for r in rows if r["date"] in trading]
    if not rows:
        why = ", ".join(f"{len(v)} {k}" for k, v in skipped.items() if v) or "no data rows"
        raise UserError(f"{path}: no price rows to store ({why})")
    frame = pd.DataFrame(rows, columns=PRICE_COLUMNS).drop_duplicates(["ticker", "date"])
    report = {
        "rows": len(frame),
        "skipped_rows": {k: len(v) for k, v in skipped.items() if v},
        "skipped_lines": {k: v[:10] for k, v in skipped.items() if v},
    }
    return frame, report


def _yf_download() -> Callable[..., pd.DataFrame]:
    try:
        import yfinance
    except ImportError:
        raise UserError(
            "yfinance is not installed: pip install 'filingcontrast[yfinance]' "
            "(or use --no-prices and `filingcontrast ingest prices --csv FILE`)"
        ) from None
    return yfinance.download


def fetch_yfinance(
    tickers: Sequence[str],
    start: dt.date | str,
    end: dt.date | str | None = None,
    download: Callable[..., pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Daily close and adjusted close from yfinance as a long frame [ticker, date, close, adj_close].

    `download` defaults to `yfinance.download` (imported lazily); tests pass a fake with its
    signature and output shape (columns (Price, Ticker) MultiIndex, or flat for one ticker).
    """
    download = download or _yf_download()
    tickers = list(dict.fromkeys(tickers))
    if not tickers:
        return pd.DataFrame(columns=PRICE_COLUMNS)
    raw = download(
        tickers,
        start=str(start),
        end=None if end is None else str(end),
        auto_adjust=False,  # keep "Adj Close" (the default became True in yfinance 0.2.51)
        actions=False,
        progress=False,
        group_by="column",
    )
    if raw is None or len(raw) == 0:
        return pd.DataFrame(columns=PRICE_COLUMNS)
    parts = []
    for name, col in (("close", "Close"), ("adj_close", "Adj Close")):
        if isinstance(raw.columns, pd.MultiIndex):
            if col not in raw.columns.get_level_values(0):
                raise UserError(f"yfinance: no {col!r} column (was auto_adjust changed?)")
            block = raw[col]
        else:
            if col not in raw.columns:
                raise UserError(f"yfinance: no {col!r} column (was auto_adjust changed?)")
            block = raw[[col]].set_axis([tickers[0]], axis=1)
        long = block.rename_axis(index="date", columns="ticker").stack(future_stack=True)
        parts.append(long.rename(name))
    frame = pd.concat(parts, axis=1).reset_index()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame["ticker"] = frame["ticker"].astype(str).str.upper()
    frame["adj_close"] = frame["adj_close"].fillna(frame["close"])
    good = frame["close"].notna() & (frame["close"] > 0) & (frame["adj_close"] > 0)
    return frame.loc[good, PRICE_COLUMNS].reset_index(drop=True)


def with_index(frame: pd.DataFrame, index_symbol: str | None) -> pd.DataFrame:
    """Add `index_symbol`'s rows again under INDEX_TICKER (the series abnormal returns use)."""
    if not index_symbol:
        return frame
    idx = frame[frame["ticker"] == index_symbol.upper()].assign(ticker=INDEX_TICKER)
    return pd.concat([frame[frame["ticker"] != INDEX_TICKER], idx], ignore_index=True)


def _trading_days(days: set[dt.date]) -> set[dt.date]:
    """The NYSE sessions among `days` (dates outside the calendar's range are not sessions)."""
    if not days:
        return set()
    cal = xnys()
    first, last = max(min(days), cal.first_session.date()), min(max(days), cal.last_session.date())
    return set(sessions(first, last)) & days if first <= last else set()


def store_prices(store: Store, frame: pd.DataFrame) -> int:
    """Upsert a validated price frame in one transaction."""
    frame = frame[PRICE_COLUMNS].copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return store.upsert_frame("prices", frame)


def ingest_prices(
    store_path: str | Path,
    csv_path: str | Path | None = None,
    tickers: str | Sequence[str] | None = None,
    since: str | None = None,
    source: str = "csv",
    index_symbol: str | None = None,
    until: str | None = None,
    download: Callable[..., pd.DataFrame] | None = None,
    recompute_events: bool = True,
) -> dict[str, Any]:
    """`filingcontrast ingest prices`: load prices from a CSV or yfinance, then refresh events."""
    if source == "csv":
        if not csv_path:
            raise UserError("--csv: a prices CSV is required with --source csv")
        for flag, value in (("--tickers", tickers), ("--since", since)):
            if value:  # silently storing every ticker of the CSV is not what was asked
                raise UserError(
                    f"{flag}: applies to --source yfinance only (a CSV is stored whole)"
                )
        frame, report = read_prices_csv(csv_path)
        frame = with_index(frame, index_symbol)
    elif source == "yfinance":
        if isinstance(tickers, str):
            tickers = [t.strip().upper() for t in tickers.split(",") if t.strip()]
        if not tickers:
            raise UserError("--tickers: give the tickers to download, e.g. --tickers AAPL,MSFT")
        if not since:
            raise UserError("--since: give the first date to download (YYYY-MM-DD)")
        parse_date_arg(since, "--since")
        symbol = index_symbol or os.environ.get(INDEX_ENV) or DEFAULT_INDEX_SYMBOL
        frame = fetch_yfinance([*tickers, symbol], since, until, download=download)
        frame = with_index(frame, symbol)
        report = {"rows": len(frame), "index_symbol": symbol}
    else:
        raise UserError(f"--source {source!r}: expected csv or yfinance")
    with Store(store_path) as store:
        stored = store_prices(store, frame)
        n_filings = store.count("filings")
    summary: dict[str, Any] = {
        "source": source,
        "stored": stored,
        "tickers": int(frame["ticker"].nunique()),
        "index_rows": int((frame["ticker"] == INDEX_TICKER).sum()),
        **{k: v for k, v in report.items() if k != "rows"},
    }
    if recompute_events and n_filings:
        from filingcontrast.corpus.events import compute_events_in_store

        summary["events"] = compute_events_in_store(store_path)
    return summary
