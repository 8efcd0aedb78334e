"""Prices: CSV validation, the yfinance adapter (with a fake download), index handling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from filingcontrast.corpus import prices
from filingcontrast.corpus.store import INDEX_TICKER, Store
from filingcontrast.errors import UserError


def _csv(tmp_path, text: str):
    path = tmp_path / "p.csv"
    path.write_text(text)
    return path


def test_csv_gaps_nan_nonpositive_are_counted_not_stored(tmp_path) -> None:
    path = _csv(
        tmp_path,
        "ticker,date,close,adj_close\n"
        "abc,2021-01-04,10,9.5\n"
        "ABC,2021-01-05,11,\n"  # adj_close empty -> close
        "ABC,2021-01-06,NaN,\n"
        "ABC,2021-01-07,-1,-1\n"
        "ABC,2021-01-08,0,0\n"
        "ABC,2021-01-04,10,9.5\n",  # exact duplicate: harmless
    )
    frame, report = prices.read_prices_csv(path)
    assert list(frame["adj_close"]) == [9.5, 11.0]
    assert list(frame["ticker"]) == ["ABC", "ABC"]
    assert report["skipped_rows"] == {"missing_value": 1, "non_positive": 2}
    assert report["skipped_lines"]["non_positive"] == [5, 6]


def test_csv_non_trading_days_are_counted_not_stored(tmp_path) -> None:
    # Regression: weekend and holiday rows were stored and then ignored by the event study.
    path = _csv(
        tmp_path,
        "ticker,date,close\n"
        "ABC,2020-01-03,10\n"
        "ABC,2020-01-04,10\n"  # Saturday
        "ABC,2020-01-05,10\n"  # Sunday
        "ABC,2020-01-20,10\n"  # Martin Luther King Jr. Day
        "ABC,1990-01-02,10\n"  # before the calendar's first session
        "ABC,2020-01-21,11\n"
        "ABC,2020-01-04,10\n",  # an exact repeat of a skipped row: counted once
    )
    frame, report = prices.read_prices_csv(path)
    assert [d.isoformat() for d in frame["date"]] == ["2020-01-03", "2020-01-21"]
    assert report["skipped_rows"] == {"not_a_trading_day": 4}
    assert report["skipped_lines"]["not_a_trading_day"] == [3, 4, 5, 6]


@pytest.mark.parametrize(
    "text, message",
    [
        ("ticker,date,close\n", r"p\.csv: no price rows to store \(no data rows\)"),
        (
            "ticker,date,close\nA,2020-01-04,1\nA,2020-01-06,\n",
            r"p\.csv: no price rows to store \(1 missing_value, 1 not_a_trading_day\)",
        ),
    ],
)
def test_csv_with_nothing_to_store_is_an_error(tmp_path, text, message) -> None:
    with pytest.raises(UserError, match=message):
        prices.read_prices_csv(_csv(tmp_path, text))


@pytest.mark.parametrize(
    "text, message",
    [
        ("ticker,day,close\nA,2021-01-04,1\n", r"p\.csv:1: header: missing column\(s\) date"),
        ("ticker,date,close,adjclose\n", r"p\.csv:1: header: unknown column\(s\) adjclose"),
        # The filings manifest given for --csv: named as JSON, not its first record as columns.
        (
            '{"id": "0000950123-10-078896", "ticker": "T00", "path": "a.htm"}\n',
            r"p\.csv:1: not a CSV \(it starts like JSON\)",
        ),  # fmt: skip
        (
            "ticker,date,close," + ",".join(f"c{i}" * 20 for i in range(7)) + "\n",
            r"unknown column\(s\) c0c0c0c0c0c0c0c0c0c0c0c0c0c\.\.\.(, (c\d)+c\.\.\.){4} and 2 more;",
        ),
        ("ticker,date,close\nA,04/01/2021,1\n", r"p\.csv:2: field date: '04/01/2021'"),
        ("ticker,date,close\nA,2021-01-04,ten\n", r"p\.csv:2: field close: 'ten' is not a number"),
        ("ticker,date,close\n,2021-01-04,1\n", r"p\.csv:2: field ticker: empty"),
        (
            "ticker,date,close\nA,2021-01-04,1\nA,2021-01-04,2\n",
            r"p\.csv:3: A 2021-01-04 appears again with different prices \(first on line 2\)",
        ),
    ],
)
def test_csv_errors_name_file_line_field(tmp_path, text, message) -> None:
    with pytest.raises(UserError, match=message):
        prices.read_prices_csv(_csv(tmp_path, text))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"p\.csv:1: header: missing column\(s\) ticker, date, close; expected"),
        (
            "ticker,date,close,close\nA,2021-01-04,1,2\n",
            r"p\.csv:1: header: repeated column\(s\) close",
        ),
        ("ticker,date,close\nA,2021-01-04,1,2\n", r"p\.csv:2: 1 more cells than the header"),
        ("ticker,date,close\nA,2021-01-04\n", r"p\.csv:2: field close: missing"),
        ("ticker,date,close\nA,2021-01-04,inf\n", r"p\.csv:2: field close: 'inf' is not a finite"),
        ("ticker,date,close\n\nA,2021-01-04,x\n", r"p\.csv:3: field close"),  # blank line counted
    ],
)
def test_csv_malformed_rows_are_errors_not_silently_dropped(tmp_path, text, message) -> None:
    with pytest.raises(UserError, match=message):
        prices.read_prices_csv(_csv(tmp_path, text))


def test_csv_not_utf8_is_a_one_line_error(tmp_path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"ticker,date,close\n\xe9A,2021-01-04,1\n")
    with pytest.raises(UserError, match=r"p\.csv: not UTF-8 text \(byte 18\)"):
        prices.read_prices_csv(path)


def test_ingest_prices_csv_with_index_symbol(tmp_path) -> None:
    path = _csv(
        tmp_path,
        "ticker,date,close\nA,2021-01-04,1\nSPY,2021-01-04,300\nSPY,2021-01-05,301\n",
    )
    summary = prices.ingest_prices(tmp_path / "s.duckdb", csv_path=path, index_symbol="SPY")
    assert summary["stored"] == 5 and summary["index_rows"] == 2
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        rows = store.query(
            "SELECT date, close FROM prices WHERE ticker = ? ORDER BY 1", [INDEX_TICKER]
        )
    assert rows == [
        {"date": dt.date(2021, 1, 4), "close": 300.0},
        {"date": dt.date(2021, 1, 5), "close": 301.0},
    ]


def _fake_download(columns_multi: bool = True, drop_adj: bool = False):
    calls = []

    def download(tickers, start=None, end=None, auto_adjust=True, **kw):
        calls.append({"tickers": tickers, "start": start, "end": end, "auto_adjust": auto_adjust})
        days = pd.DatetimeIndex(
            pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06"]), name="Date"
        )
        fields = ["Close"] + ([] if drop_adj else ["Adj Close"])
        if columns_multi:
            cols = pd.MultiIndex.from_product([fields, tickers], names=["Price", "Ticker"])
            data = np.arange(len(days) * len(cols), dtype=float).reshape(len(days), -1) + 1
            frame = pd.DataFrame(data, index=days, columns=cols)
            frame.iloc[1, 0] = np.nan  # a gap in the first ticker's close
            return frame
        return pd.DataFrame({f: [10.0, 11.0, 12.0] for f in fields}, index=days)

    return download, calls


def test_yfinance_adapter_reads_adj_close_with_auto_adjust_false() -> None:
    download, calls = _fake_download()
    frame = prices.fetch_yfinance(["AAA", "BBB"], "2021-01-01", download=download)
    assert calls[0]["auto_adjust"] is False
    assert set(frame.columns) == {"ticker", "date", "close", "adj_close"}
    aaa = frame[frame.ticker == "AAA"].set_index("date")
    assert len(aaa) == 2  # the NaN close is dropped, not filled
    # Close block comes first, Adj Close second: values differ, and we read the right one.
    assert (frame["adj_close"] != frame["close"]).all()
    single = prices.fetch_yfinance(["AAA"], "2021-01-01", download=_fake_download(False)[0])
    assert list(single["adj_close"]) == [10.0, 11.0, 12.0]


def test_yfinance_missing_adj_close_is_an_error() -> None:
    with pytest.raises(UserError, match="Adj Close"):
        prices.fetch_yfinance(["AAA"], "2021-01-01", download=_fake_download(drop_adj=True)[0])


def test_ingest_prices_yfinance_stores_index(tmp_path) -> None:
    download, calls = _fake_download()
    summary = prices.ingest_prices(
        tmp_path / "s.duckdb",
        tickers="aaa,bbb",
        since="2021-01-01",
        source="yfinance",
        index_symbol="^GSPC",
        download=download,
    )
    assert calls[0]["tickers"] == ["AAA", "BBB", "^GSPC"]
    assert summary["index_rows"] == 3
    with pytest.raises(UserError, match="--tickers"):
        prices.ingest_prices(tmp_path / "s.duckdb", source="yfinance", since="2021-01-01")
    with pytest.raises(UserError, match="--since"):
        prices.ingest_prices(tmp_path / "s.duckdb", source="yfinance", tickers="A", since="x")
    with pytest.raises(UserError, match="--csv"):
        prices.ingest_prices(tmp_path / "s.duckdb", source="csv")
    with pytest.raises(UserError, match="--tickers: applies to --source yfinance only"):
        prices.ingest_prices(tmp_path / "s.duckdb", csv_path="p.csv", tickers="AAPL")


@pytest.mark.parametrize(
    "rows",
    [
        "A,2021-01-04,10,9.5\nA,2021-01-04,10,9.0\n",  # same close, different adj_close
        "A,2021-01-04,10,\nA,2021-01-04,10,9.5\n",  # empty adj_close is the close: 10 != 9.5
    ],
)
def test_csv_repeat_with_a_different_adj_close_is_an_error(tmp_path, rows) -> None:
    """A repeated (ticker, date) must repeat both prices; the event study reads adj_close, so a
    different adjusted close under the same close is a conflict, not a harmless duplicate."""
    path = _csv(tmp_path, "ticker,date,close,adj_close\n" + rows)
    with pytest.raises(
        UserError,
        match=r"p\.csv:3: A 2021-01-04 appears again with different prices \(first on line 2\)",
    ):
        prices.read_prices_csv(path)


def test_csv_header_is_case_insensitive_and_cells_are_trimmed(tmp_path) -> None:
    path = _csv(
        tmp_path,
        "Ticker,Date,Close,Adj_Close\n"
        "abc, 2021-01-04 ,10,9.5\n"
        "ABC,2021-01-05,NA,\n"  # NA / null / None / NaN: a missing value, not an error
        "ABC,2021-01-06,null,\n"
        "ABC,2021-01-07,11,None\n",  # empty adj_close -> close
    )
    frame, report = prices.read_prices_csv(path)
    assert [d.isoformat() for d in frame["date"]] == ["2021-01-04", "2021-01-07"]
    assert list(frame["adj_close"]) == [9.5, 11.0]
    assert report["skipped_rows"] == {"missing_value": 2}
    assert report["skipped_lines"]["missing_value"] == [3, 4]


def test_csv_adj_close_errors_name_the_adj_close_field(tmp_path) -> None:
    with pytest.raises(UserError, match=r"p\.csv:3: field adj_close: 'x' is not a number"):
        prices.read_prices_csv(
            _csv(tmp_path, "ticker,date,close,adj_close\nA,2021-01-04,1,1\nA,2021-01-05,1,x\n")
        )


def test_csv_path_that_is_not_a_file_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(UserError, match=r"prices CSV not found"):
        prices.read_prices_csv(tmp_path)  # a directory
    with pytest.raises(UserError, match=r"nope\.csv: prices CSV not found"):
        prices.read_prices_csv(tmp_path / "nope.csv")


def test_index_symbol_is_matched_case_insensitively(tmp_path) -> None:
    """CSV tickers are upper-cased, so `--index-symbol spy` must find the SPY rows."""
    path = _csv(tmp_path, "ticker,date,close\nspy,2021-01-04,300\nSPY,2021-01-05,301\n")
    summary = prices.ingest_prices(tmp_path / "s.duckdb", csv_path=path, index_symbol="spy")
    assert summary["index_rows"] == 2


def test_yfinance_index_symbol_comes_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(prices.INDEX_ENV, "^GSPC")
    download, calls = _fake_download()
    summary = prices.ingest_prices(
        tmp_path / "s.duckdb", tickers="aaa", since="2021-01-01", until="2021-01-07",
        source="yfinance", download=download,
    )  # fmt: skip
    assert calls[0]["tickers"] == ["AAA", "^GSPC"]
    assert calls[0]["start"] == "2021-01-01" and calls[0]["end"] == "2021-01-07"
    assert summary["index_symbol"] == "^GSPC" and summary["index_rows"] == 3


def test_yfinance_drops_non_positive_closes_and_fills_a_missing_adj_close() -> None:
    def download(tickers, start=None, end=None, auto_adjust=True, **kw):
        days = pd.DatetimeIndex(
            pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07"]), name="Date"
        )
        return pd.DataFrame(
            {"Close": [10.0, 0.0, -1.0, 12.0], "Adj Close": [9.0, 0.0, 5.0, np.nan]}, index=days
        )

    frame = prices.fetch_yfinance(["AAA"], "2021-01-01", download=download)
    assert [d.isoformat() for d in frame["date"]] == ["2021-01-04", "2021-01-07"]
    assert list(frame["close"]) == [10.0, 12.0]
    assert list(frame["adj_close"]) == [9.0, 12.0]
