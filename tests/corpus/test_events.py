"""Day 0 rule, event-window returns and the market model on hand-made series."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filingcontrast.corpus import events as ev
from filingcontrast.corpus.calendar import is_session, sessions
from filingcontrast.corpus.store import INDEX_TICKER, Store

NY = ZoneInfo("America/New_York")


# -- day 0 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "local, expected",
    [
        (dt.datetime(2021, 7, 2, 17, 0), dt.date(2021, 7, 6)),  # Fri after close, Jul 4 holiday
        (dt.datetime(2021, 7, 2, 15, 59), dt.date(2021, 7, 2)),
        (dt.datetime(2021, 7, 2, 16, 0), dt.date(2021, 7, 6)),  # 16:00 sharp is after the close
        (dt.datetime(2021, 7, 2, 6, 0), dt.date(2021, 7, 2)),  # before the open -> same day
        (dt.datetime(2021, 7, 3, 10, 0), dt.date(2021, 7, 6)),  # Saturday
        (dt.datetime(2021, 12, 24, 9, 0), dt.date(2021, 12, 27)),  # Christmas observed (Fri)
        (dt.datetime(2022, 1, 3, 23, 59), dt.date(2022, 1, 4)),
    ],
)
def test_day0_known_cases(local: dt.datetime, expected: dt.date) -> None:
    assert ev.day0(local.replace(tzinfo=NY)) == expected


def test_day0_converts_from_utc() -> None:
    # 2021-03-15 20:30 UTC = 16:30 EDT (after the close); 19:30 UTC = 15:30 EDT.
    assert ev.day0(dt.datetime(2021, 3, 15, 20, 30, tzinfo=dt.UTC)) == dt.date(2021, 3, 16)
    assert ev.day0(dt.datetime(2021, 3, 15, 19, 30, tzinfo=dt.UTC)) == dt.date(2021, 3, 15)


def test_day0_rejects_naive() -> None:
    with pytest.raises(ValueError, match="time zone"):
        ev.day0(dt.datetime(2021, 7, 2, 12, 0))


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(1995, 1, 1), max_value=dt.datetime(2026, 6, 1)),
    st.sampled_from([NY, dt.UTC, ZoneInfo("Asia/Tokyo")]),
)
def test_day0_properties(naive: dt.datetime, zone: ZoneInfo) -> None:
    accepted = naive.replace(tzinfo=zone)
    local = accepted.astimezone(NY)
    d0 = ev.day0(accepted)
    assert is_session(d0)
    assert d0 >= local.date()
    same_day = is_session(local.date()) and local.hour < 16
    assert (d0 == local.date()) == same_day
    # No session is skipped: nothing strictly between the acceptance date and day 0.
    between = sessions(local.date() + dt.timedelta(days=1), d0 - dt.timedelta(days=1))
    assert between == []


def test_day0_vectorised_matches_scalar() -> None:
    stamps = pd.Series(
        pd.to_datetime(
            ["2021-07-02T21:00:00Z", "2021-07-02T19:59:00Z", "2020-02-29T12:00:00Z", None],
            utc=True,
        )
    )
    out = ev.day0_series(stamps)
    assert list(out[:3]) == [ev.day0(t.to_pydatetime()) for t in stamps[:3]]
    assert pd.isna(out[3])


# -- returns -----------------------------------------------------------------------------------


def _series(ticker: str, days: list[dt.date], values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"ticker": ticker, "date": days, "adj_close": values})


def _filing(acc: str, ticker: str, when: str) -> dict:
    return {"accession": acc, "ticker": ticker, "accepted_at": pd.Timestamp(when)}


def test_window_returns_known_answers() -> None:
    days = sessions("2021-06-28", "2021-07-14")  # Jul 5 is a holiday
    n = len(days)
    stock = [100.0 + i for i in range(n)]
    index = [200.0] * n
    index[days.index(dt.date(2021, 7, 7))] = 210.0  # day0+1 for the filing below
    prices = pd.concat([_series("ABC", days, stock), _series(INDEX_TICKER, days, index)])
    # Accepted Friday Jul 2 17:00 ET -> day 0 Tue Jul 6; base = close of Fri Jul 2.
    filings = pd.DataFrame([_filing("A1", "ABC", "2021-07-02T17:00:00-04:00")])
    out = ev.compute_events(filings, prices, windows=["0_1", (0, 3)], methods=["market_adjusted"])
    out = out.set_index("window")
    base = stock[days.index(dt.date(2021, 7, 2))]
    d1 = stock[days.index(dt.date(2021, 7, 7))]
    d3 = stock[days.index(dt.date(2021, 7, 9))]
    assert out.loc["0_1", "day0"] == dt.date(2021, 7, 6)
    assert out.loc["0_1", "ret"] == pytest.approx(d1 / base - 1)
    assert out.loc["0_1", "index_ret"] == pytest.approx(0.05)
    assert out.loc["0_1", "abnormal_ret"] == pytest.approx(d1 / base - 1 - 0.05)
    assert out.loc["0_3", "ret"] == pytest.approx(d3 / base - 1)
    assert out.loc["0_3", "index_ret"] == pytest.approx(0.0)
    assert out["skip_reason"].isna().all()


def test_skip_reasons_are_recorded() -> None:
    days = sessions("2021-06-01", "2021-06-30")
    n = len(days)
    values = [50.0] * n
    values[days.index(dt.date(2021, 6, 15))] = np.nan  # a gap
    prices = pd.concat(
        [
            _series("GAP", days, values),
            _series("NEG", days, [50.0] * (n - 1) + [-1.0]),  # non-positive last price
            _series(INDEX_TICKER, days, [100.0] * n),
        ]
    )
    filings = pd.DataFrame(
        [
            _filing("nope", "ZZZ", "2021-06-10T12:00:00Z"),  # no prices
            _filing("early", "GAP", "2021-06-01T12:00:00Z"),  # base = May 28, before data
            _filing("late", "GAP", "2021-06-30T12:00:00Z"),  # day0+1 = Jul 1, after data
            _filing("gap", "GAP", "2021-06-14T12:00:00Z"),  # day0+1 = Jun 15 is NaN
            _filing("neg", "NEG", "2021-06-29T12:00:00Z"),  # Jun 30 <= 0 -> treated as missing
            _filing("ok", "GAP", "2021-06-08T12:00:00Z"),
            {"accession": "nots", "ticker": "GAP", "accepted_at": pd.NaT},
            _filing("future", "GAP", "2199-01-01T12:00:00Z"),
        ]
    )
    out = ev.compute_events(filings, prices, windows=[(0, 1)], methods=["market_adjusted"])
    reasons = dict(zip(out["accession"], out["skip_reason"]))
    assert reasons == {
        "nope": "no_prices",
        "early": "too_early",
        "late": "missing_after",
        "gap": "missing_day",
        "neg": "missing_after",
        "ok": None,
        "nots": "no_accepted_at",
        "future": "outside_calendar",
    }
    assert len(out) == len(filings)  # nothing dropped
    assert out.loc[out.skip_reason.notna(), "abnormal_ret"].isna().all()


def test_missing_index_is_a_skip() -> None:
    days = sessions("2021-06-01", "2021-06-30")
    prices = _series("ABC", days, [10.0] * len(days))
    filings = pd.DataFrame([_filing("a", "ABC", "2021-06-10T12:00:00Z")])
    out = ev.compute_events(filings, prices, windows=[(0, 1)], methods=["market_adjusted"])
    assert out.loc[0, "skip_reason"] == "no_index_prices"
    assert out.loc[0, "ret"] == pytest.approx(0.0)


def test_market_model_recovers_alpha_beta() -> None:
    rng = np.random.default_rng(7)
    days = sessions("2019-01-01", "2021-12-31")
    n = len(days)
    alpha, beta = 0.0004, 1.7
    m = rng.normal(0.0003, 0.01, n)
    r = alpha + beta * m + rng.normal(0, 0.002, n)
    m[0] = r[0] = 0.0
    prices = pd.concat(
        [
            _series("ABC", days, list(100 * np.cumprod(1 + r))),
            _series(INDEX_TICKER, days, list(1000 * np.cumprod(1 + m))),
        ]
    )
    d0 = days[600]
    at = dt.datetime.combine(d0, dt.time(11, 0), NY)
    filings = pd.DataFrame([{"accession": "x", "ticker": "ABC", "accepted_at": at}])
    stock_ret = ev._daily_returns(ev._price_vector(prices[prices.ticker == "ABC"]))
    index_ret = ev._daily_returns(ev._price_vector(prices[prices.ticker == INDEX_TICKER]))
    pos0 = ev.day0_positions(filings["accepted_at"])
    a_hat, b_hat, count = ev._market_model(stock_ret, index_ret, pos0)
    assert count[0] == ev.EST_LEN
    assert b_hat[0] == pytest.approx(beta, abs=0.05)
    assert a_hat[0] == pytest.approx(alpha, abs=0.0005)
    out = ev.compute_events(filings, prices, windows=[(0, 1)], methods=["market_model"])
    row = out.iloc[0]
    expected = row["ret"] - (2 * a_hat[0] + b_hat[0] * row["index_ret"])
    assert row["abnormal_ret"] == pytest.approx(expected)
    # The abnormal return is the noise: small compared with the raw return's market part.
    assert abs(row["abnormal_ret"]) < 0.02


def test_bad_windows_and_methods() -> None:
    f = pd.DataFrame([_filing("a", "X", "2021-06-10T12:00:00Z")])
    days = sessions("2021-06-01", "2021-06-30")
    p = _series("X", days, [1.0] * len(days))
    with pytest.raises(ValueError, match="window"):
        ev.compute_events(f, p, windows=[(2, 1)])
    with pytest.raises(ValueError, match="method"):
        ev.compute_events(f, p, methods=["capm"])


def test_missing_store_is_a_user_error(tmp_path) -> None:
    from filingcontrast.errors import UserError

    with pytest.raises(UserError, match="store not found"):
        ev.compute_events_in_store(tmp_path / "none.duckdb")


def test_market_model_needs_enough_estimation_days() -> None:
    days = sessions("2021-01-01", "2021-12-31")
    prices = pd.concat(
        [
            _series("ABC", days, list(np.linspace(10, 20, len(days)))),
            _series(INDEX_TICKER, days, list(np.linspace(100, 120, len(days)))),
        ]
    )
    at = dt.datetime.combine(days[100], dt.time(11, 0), NY)  # only ~70 estimation days
    filings = pd.DataFrame([{"accession": "x", "ticker": "ABC", "accepted_at": at}])
    out = ev.compute_events(filings, prices, windows=[(0, 1)])
    reasons = dict(zip(out["method"], out["skip_reason"]))
    assert reasons == {"market_adjusted": None, "market_model": "insufficient_estimation"}


def test_compute_events_in_store_keeps_provided_and_is_idempotent(tmp_path) -> None:
    days = sessions("2021-01-04", "2021-03-31")
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        store.upsert_frame(
            "prices",
            pd.concat(
                [
                    _series("ABC", days, list(np.linspace(10, 12, len(days)))),
                    _series(INDEX_TICKER, days, [100.0] * len(days)),
                ]
            ),
        )
        store.upsert(
            "filings",
            [
                {
                    "accession": "a",
                    "ticker": "ABC",
                    "accepted_at": dt.datetime(2021, 2, 1, 15, tzinfo=dt.UTC),
                    "items": ["2.02"],
                    "source": "files",
                },
                {"accession": "b", "ticker": "QQQ", "items": ["8.01"], "source": "files"},
            ],
        )
        store.upsert(
            "events",
            [{"accession": "b", "window": "0_1", "method": "provided", "abnormal_ret": 0.01}],
        )
    first = ev.compute_events_in_store(path)
    second = ev.compute_events_in_store(path)
    assert first["events"] == second["events"] == 2 * 3 * 2
    with Store(path, read_only=True) as store:
        assert store.count("events") == 2 * 3 * 2 + 1
        provided = store.query("SELECT abnormal_ret FROM events WHERE method = 'provided'")
        assert provided == [{"abnormal_ret": 0.01}]
    stats = ev.corpus_stats(path)
    assert "no_accepted_at" in stats and "files" in stats and "2.02" in stats

    # A window asked for once (`filingcontrast events pairs.window=1_3`) is kept by later
    # recomputations with the defaults (ingest and simulate recompute events).
    from filingcontrast.cli import main

    assert main(["events", "--store", str(path), 'pairs.window="1_3"']) == 0
    again = ev.compute_events_in_store(path)
    assert again["windows"] == ["0_1", "0_3", "0_5", "1_3"] and again["events"] == 2 * 4 * 2


def test_compute_events_is_fast() -> None:
    rng = np.random.default_rng(0)
    days = sessions("2020-01-01", "2022-12-31")[:500]
    tickers = [f"T{i}" for i in range(150)] + [INDEX_TICKER]
    prices = pd.DataFrame(
        {
            "ticker": np.repeat(tickers, len(days)),
            "date": np.tile(np.array(days, dtype=object), len(tickers)),
            "adj_close": np.exp(np.cumsum(rng.normal(0, 0.01, len(tickers) * len(days)))),
        }
    )
    n = 5000
    filings = pd.DataFrame(
        {
            "accession": [f"a{i}" for i in range(n)],
            "ticker": rng.choice(tickers[:150], n),
            "accepted_at": pd.Timestamp("2020-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 690 * 24 * 60, n), unit="min"),
        }
    )
    import time

    t0 = time.perf_counter()
    out = ev.compute_events(filings, prices)
    assert time.perf_counter() - t0 < 10
    assert len(out) == n * 6
    assert out["abnormal_ret"].notna().mean() > 0.5


def test_market_model_estimates_only_on_the_window_before_the_event() -> None:
    """alpha, beta come from the EST_LEN sessions ending EST_GAP sessions before day 0 (positions
    day0-279 .. day0-30), never from the gap before the event, day 0 or the window itself.

    Inside that estimation window the stock follows r = alpha + beta * m exactly; every other
    day (and hugely so on day 0 and day 0+1) it follows another model, so any shift of the
    window changes the fit.
    """
    rng = np.random.default_rng(11)
    days = sessions("2019-01-02", "2021-06-30")
    n, p0 = len(days), 400
    alpha, beta = 0.0004, 1.7
    m = rng.normal(0.0003, 0.01, n)
    r = 0.003 - 0.8 * m + rng.normal(0, 0.01, n)  # outside the estimation window
    est = np.arange(p0 - (ev.EST_GAP + ev.EST_LEN - 1), p0 - ev.EST_GAP + 1)
    assert len(est) == ev.EST_LEN and est[-1] == p0 - 30
    r[est] = alpha + beta * m[est]
    r[p0], r[p0 + 1] = 0.40, 0.35  # a huge reaction: it would pull alpha/beta if included
    m[0] = r[0] = 0.0
    stock = 100 * np.cumprod(1 + r)
    index = 1000 * np.cumprod(1 + m)
    prices = pd.concat(
        [_series("ABC", days, list(stock)), _series(INDEX_TICKER, days, list(index))]
    )
    at = dt.datetime.combine(days[p0], dt.time(11, 0), NY)  # before the close: day 0 = days[p0]
    filings = pd.DataFrame([{"accession": "x", "ticker": "ABC", "accepted_at": at}])

    stock_ret = ev._daily_returns(ev._price_vector(prices[prices.ticker == "ABC"]))
    index_ret = ev._daily_returns(ev._price_vector(prices[prices.ticker == INDEX_TICKER]))
    a_hat, b_hat, count = ev._market_model(
        stock_ret, index_ret, ev.day0_positions(filings["accepted_at"])
    )
    assert count[0] == ev.EST_LEN
    assert a_hat[0] == pytest.approx(alpha, abs=1e-9)
    assert b_hat[0] == pytest.approx(beta, abs=1e-7)

    out = ev.compute_events(filings, prices, windows=[(0, 1), (0, 3)], methods=["market_model"])
    out = out.set_index("window")
    assert out.loc["0_1", "day0"] == days[p0]
    assert out["skip_reason"].isna().all()
    for name, e in (("0_1", 1), ("0_3", 3)):
        ret = stock[p0 + e] / stock[p0 - 1] - 1
        iret = index[p0 + e] / index[p0 - 1] - 1
        assert out.loc[name, "ret"] == pytest.approx(ret, rel=1e-12)
        assert out.loc[name, "index_ret"] == pytest.approx(iret, rel=1e-12)
        expected = ret - ((e + 1) * alpha + beta * iret)  # by hand, from the true alpha, beta
        assert out.loc[name, "abnormal_ret"] == pytest.approx(expected, abs=1e-7)


def test_window_may_end_on_the_last_price_day() -> None:
    """A window whose last session is the ticker's last price is complete; one session later is
    missing_after."""
    days = sessions("2021-06-01", "2021-06-30")  # Jun 30 (Wed) is the last price of both
    prices = pd.concat(
        [
            _series("ABC", days, [50.0 + i for i in range(len(days))]),
            _series(INDEX_TICKER, days, [100.0] * len(days)),
        ]
    )
    filings = pd.DataFrame(
        [
            _filing("end01", "ABC", "2021-06-29T12:00:00Z"),  # day 0 Jun 29, day0+1 = Jun 30
            _filing("end03", "ABC", "2021-06-25T12:00:00Z"),  # day 0 Fri Jun 25, day0+3 = Jun 30
            _filing("past", "ABC", "2021-06-30T12:00:00Z"),  # day0+1 = Jul 1: no price
        ]
    )
    out = ev.compute_events(filings, prices, windows=[(0, 1), (0, 3)], methods=["market_adjusted"])
    got = {(r.accession, r.window): r for r in out.itertuples()}
    at = {d: 50.0 + days.index(d) for d in days}
    jun = lambda d: at[dt.date(2021, 6, d)]  # noqa: E731
    assert got["end01", "0_1"].skip_reason is None
    assert got["end01", "0_1"].abnormal_ret == pytest.approx(jun(30) / jun(28) - 1)
    assert got["end03", "0_3"].skip_reason is None
    assert got["end03", "0_3"].abnormal_ret == pytest.approx(jun(30) / jun(24) - 1)
    assert got["end03", "0_1"].skip_reason is None
    assert got["past", "0_1"].skip_reason == "missing_after"
    assert got["end01", "0_3"].skip_reason == "missing_after"


def test_insufficient_estimation_keeps_no_abnormal_return() -> None:
    """A market-model row skipped for too few estimation days has no abnormal return, though
    its raw and index returns are known (and the market-adjusted row has one)."""
    days = sessions("2021-01-01", "2021-12-31")
    rng = np.random.default_rng(3)
    prices = pd.concat(
        [
            _series("ABC", days, list(50 * np.cumprod(1 + rng.normal(0, 0.01, len(days))))),
            _series(INDEX_TICKER, days, list(100 * np.cumprod(1 + rng.normal(0, 0.01, len(days))))),
        ]
    )
    at = dt.datetime.combine(days[100], dt.time(11, 0), NY)  # ~70 estimation days < EST_MIN
    filings = pd.DataFrame([{"accession": "x", "ticker": "ABC", "accepted_at": at}])
    out = ev.compute_events(filings, prices, windows=[(0, 1)]).set_index("method")
    mm = out.loc["market_model"]
    assert mm["skip_reason"] == "insufficient_estimation"
    assert np.isfinite(mm["ret"]) and np.isfinite(mm["index_ret"])
    assert np.isnan(mm["abnormal_ret"])
    adjusted = out.loc["market_adjusted"]
    assert adjusted["skip_reason"] is None and np.isfinite(adjusted["abnormal_ret"])


def test_price_on_a_non_trading_day_never_stands_in_for_a_session() -> None:
    """Rows dated on a weekend or holiday are ignored: they neither fill the next session's gap
    nor overwrite its price (whatever the row order)."""
    days = sessions("2021-06-01", "2021-07-30")
    jul6 = days.index(dt.date(2021, 7, 6))  # Mon Jul 5 is Independence Day observed
    values = [100.0] * len(days)
    gap = _series("GAP", days[:jul6] + days[jul6 + 1 :], values[:jul6] + values[jul6 + 1 :])
    holiday = _series("GAP", [dt.date(2021, 7, 5)], [80.0])  # Jul 6 itself has no price
    late = _series("LATE", days, values)
    saturday = _series("LATE", [dt.date(2021, 7, 3)], [80.0])  # listed after Jul 6's row
    prices = pd.concat([gap, holiday, late, saturday, _series(INDEX_TICKER, days, values)])
    filings = pd.DataFrame(
        [
            _filing("gap", "GAP", "2021-07-07T12:00:00-04:00"),  # day 0 Jul 7: base = Jul 6
            _filing("late", "LATE", "2021-07-07T12:00:00-04:00"),
        ]
    )
    out = ev.compute_events(filings, prices, windows=[(0, 1)], methods=["market_adjusted"])
    out = out.set_index("accession")
    assert out.loc["gap", "skip_reason"] == "missing_day"
    assert np.isnan(out.loc["gap", "ret"])
    assert out.loc["late", "skip_reason"] is None
    assert out.loc["late", "ret"] == pytest.approx(0.0)  # 100 -> 100, not 80 -> 100
