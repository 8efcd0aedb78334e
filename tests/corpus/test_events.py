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


# -- second audit: exact boundaries, windows not starting at day 0, gaps ------------------------


@pytest.mark.parametrize(
    "utc, expected",
    [
        # Winter (EST, UTC-5): Wed 2021-01-27, close 16:00 EST = 21:00 UTC.
        ("2021-01-27T20:59:59Z", dt.date(2021, 1, 27)),
        ("2021-01-27T21:00:00Z", dt.date(2021, 1, 28)),
        ("2021-01-27T14:30:00Z", dt.date(2021, 1, 27)),  # 09:30 sharp, the open: same day
        ("2021-01-27T14:29:59Z", dt.date(2021, 1, 27)),  # just before the open: same day
        # Monday after the spring change (Sun 2021-03-14): EDT, close = 20:00 UTC.
        ("2021-03-15T19:59:59Z", dt.date(2021, 3, 15)),
        ("2021-03-15T20:00:00Z", dt.date(2021, 3, 16)),
        # Friday before the spring change: still EST, 20:30 UTC is 15:30 -> same day.
        ("2021-03-12T20:30:00Z", dt.date(2021, 3, 12)),
        # Monday after the autumn change (Sun 2021-11-07): EST again, close = 21:00 UTC.
        ("2021-11-08T20:59:59Z", dt.date(2021, 11, 8)),
        ("2021-11-08T21:00:00Z", dt.date(2021, 11, 9)),
        # Friday before it: EDT, 20:30 UTC is 16:30 -> next session (Monday).
        ("2021-11-05T20:30:00Z", dt.date(2021, 11, 8)),
        # On the change day itself (a Sunday): the next session.
        ("2021-03-14T07:30:00Z", dt.date(2021, 3, 15)),  # 03:30 EDT, just after the jump
        ("2021-11-07T05:30:00Z", dt.date(2021, 11, 8)),  # 01:30 EDT, the repeated hour
        # A weekday holiday (Good Friday 2021-04-02) before the open -> Monday.
        ("2021-04-02T12:00:00Z", dt.date(2021, 4, 5)),
        # The evening before a holiday (Thanksgiving 2021-11-25) -> Friday.
        ("2021-11-24T22:00:00Z", dt.date(2021, 11, 26)),
        # 22:00 ET is already the next day in UTC: still only the next session.
        ("2021-01-28T03:00:00Z", dt.date(2021, 1, 28)),
    ],
)
def test_day0_boundaries_in_utc_across_dst(utc: str, expected: dt.date) -> None:
    """16:00 ET is 21:00 UTC in winter and 20:00 UTC in summer; day 0 follows the New York wall
    clock on the exact second, whatever side of a DST change the filing is on."""
    stamp = pd.Timestamp(utc)
    assert ev.day0(stamp.to_pydatetime()) == expected
    assert ev.day0_series(pd.Series([stamp]))[0] == expected


def _exact_market_model(p0: int, seed: int = 11):
    """Prices following r = alpha + beta * m exactly inside day 0's estimation window and another
    model elsewhere (see test_market_model_estimates_only_on_the_window_before_the_event)."""
    rng = np.random.default_rng(seed)
    days = sessions("2019-01-02", "2021-06-30")
    n = len(days)
    alpha, beta = 0.0004, 1.7
    m = rng.normal(0.0003, 0.01, n)
    r = 0.003 - 0.8 * m + rng.normal(0, 0.01, n)
    est = np.arange(p0 - (ev.EST_GAP + ev.EST_LEN - 1), p0 - ev.EST_GAP + 1)
    r[est] = alpha + beta * m[est]
    m[0] = r[0] = 0.0
    return days, 100 * np.cumprod(1 + r), 1000 * np.cumprod(1 + m), alpha, beta


def test_windows_that_start_after_day0() -> None:
    """Window (s, e) with s > 0 runs from the close of day0+s-1 to the close of day0+e, and
    the market model's expected return covers its e-s+1 days (not e+1)."""
    p0 = 400
    days, stock, index, alpha, beta = _exact_market_model(p0)
    prices = pd.concat(
        [_series("ABC", days, list(stock)), _series(INDEX_TICKER, days, list(index))]
    )
    at = dt.datetime.combine(days[p0], dt.time(11, 0), NY)
    filings = pd.DataFrame([{"accession": "x", "ticker": "ABC", "accepted_at": at}])
    out = ev.compute_events(filings, prices, windows=["1_3", (2, 5), (4, 4)])
    assert out["skip_reason"].isna().all()
    got = out.set_index(["window", "method"])
    for s, e in ((1, 3), (2, 5), (4, 4)):
        name = f"{s}_{e}"
        ret = stock[p0 + e] / stock[p0 + s - 1] - 1
        iret = index[p0 + e] / index[p0 + s - 1] - 1
        assert got.loc[(name, "market_adjusted"), "ret"] == pytest.approx(ret, rel=1e-12)
        assert got.loc[(name, "market_adjusted"), "abnormal_ret"] == pytest.approx(ret - iret)
        expected = ret - ((e - s + 1) * alpha + beta * iret)
        assert got.loc[(name, "market_model"), "abnormal_ret"] == pytest.approx(expected, abs=1e-7)
        assert got.loc[(name, "market_model"), "day0"] == days[p0]


def test_window_may_start_on_the_first_price_day() -> None:
    """The close before the window being the ticker's first price is enough; one session earlier
    is too_early (the mirror of test_window_may_end_on_the_last_price_day)."""
    days = sessions("2021-06-01", "2021-06-30")  # Jun 1 (Tue) is the first price of both
    prices = pd.concat(
        [
            _series("ABC", days, [50.0 + i for i in range(len(days))]),
            _series(INDEX_TICKER, days, [100.0] * len(days)),
        ]
    )
    filings = pd.DataFrame(
        [
            _filing("first", "ABC", "2021-06-02T12:00:00Z"),  # day 0 Jun 2: base = Jun 1
            _filing("early", "ABC", "2021-06-01T12:00:00Z"),  # base = May 28: no price
            _filing("later", "ABC", "2021-06-01T21:00:00Z"),  # 17:00 EDT: day 0 Jun 2
        ]
    )
    out = ev.compute_events(filings, prices, windows=[(0, 1), (1, 1)], methods=["market_adjusted"])
    got = {(r.accession, r.window): r for r in out.itertuples()}
    assert got["first", "0_1"].skip_reason is None
    assert got["first", "0_1"].abnormal_ret == pytest.approx(52.0 / 50.0 - 1)
    assert got["later", "0_1"].skip_reason is None
    assert got["early", "0_1"].skip_reason == "too_early"
    assert np.isnan(got["early", "0_1"].abnormal_ret)
    assert got["early", "1_1"].skip_reason is None  # base = day 0 = Jun 1 itself
    assert got["early", "1_1"].abnormal_ret == pytest.approx(51.0 / 50.0 - 1)


def test_gap_in_the_index_is_an_index_skip_not_a_silent_nan() -> None:
    """An index price missing at the window's base or end: the stock's return is kept, the
    abnormal return is NULL with reason index_missing_day (the index exists, it has a gap);
    a gap strictly inside the window does not matter (only the two closes are used)."""
    days = sessions("2021-06-01", "2021-06-30")
    index = [100.0 + i for i in range(len(days))]
    jun15 = days.index(dt.date(2021, 6, 15))
    index[jun15] = np.nan
    prices = pd.concat(
        [_series("ABC", days, [50.0] * len(days)), _series(INDEX_TICKER, days, index)]
    )
    filings = pd.DataFrame(
        [
            _filing("end", "ABC", "2021-06-14T12:00:00Z"),  # day0+1 = Jun 15: index gap
            _filing("base", "ABC", "2021-06-16T12:00:00Z"),  # base = Jun 15: index gap
            _filing("inside", "ABC", "2021-06-14T12:00:00Z"),  # window 0_3 spans Jun 15
        ]
    )
    out = ev.compute_events(filings, prices, windows=[(0, 1), (0, 3)], methods=["market_adjusted"])
    got = {(r.accession, r.window): r for r in out.itertuples()}
    for acc in ("end", "base"):
        row = got[acc, "0_1"]
        assert row.skip_reason == "index_missing_day", acc
        assert row.ret == pytest.approx(0.0) and np.isnan(row.index_ret)
        assert np.isnan(row.abnormal_ret)
    inside = got["inside", "0_3"]
    assert inside.skip_reason is None
    assert inside.index_ret == pytest.approx(index[jun15 + 2] / index[jun15 - 2] - 1)
    assert inside.abnormal_ret == pytest.approx(-inside.index_ret)


def test_market_model_uses_only_days_where_both_returns_exist() -> None:
    """Gaps in the stock or the index inside the estimation window drop those days (a price gap
    drops two daily returns); alpha, beta are the OLS fit on the remaining pairs."""
    p0 = 400
    days, stock, index, _, _ = _exact_market_model(p0, seed=5)
    # Now make the fit depend on which days are used: noisy returns everywhere.
    rng = np.random.default_rng(9)
    stock = stock * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    stock = stock.copy()
    index = index.copy()
    stock[[p0 - 200, p0 - 150, p0 - 149]] = np.nan
    index[[p0 - 100, p0 - 60, p0 - 31]] = np.nan
    prices = pd.concat(
        [_series("ABC", days, list(stock)), _series(INDEX_TICKER, days, list(index))]
    )
    y = stock[1:] / stock[:-1] - 1
    x = index[1:] / index[:-1] - 1
    est = np.arange(p0 - 279, p0 - 29) - 1  # daily return at position i is y[i - 1]
    ok = np.isfinite(y[est]) & np.isfinite(x[est])
    # stock: 2 + 3 daily returns lost; index: 2 + 2 + 2 (p0-31 and p0-30, the window's end)
    assert ok.sum() == ev.EST_LEN - 11
    b, a = np.polyfit(x[est][ok], y[est][ok], 1)
    at = dt.datetime.combine(days[p0], dt.time(11, 0), NY)
    filings = pd.DataFrame([{"accession": "x", "ticker": "ABC", "accepted_at": at}])
    a_hat, b_hat, count = ev._market_model(
        ev._daily_returns(ev._price_vector(prices[prices.ticker == "ABC"])),
        ev._daily_returns(ev._price_vector(prices[prices.ticker == INDEX_TICKER])),
        ev.day0_positions(filings["accepted_at"]),
    )
    assert count[0] == ok.sum()
    assert a_hat[0] == pytest.approx(a, abs=1e-10) and b_hat[0] == pytest.approx(b, rel=1e-9)
    row = ev.compute_events(filings, prices, windows=[(0, 1)], methods=["market_model"]).iloc[0]
    assert row["skip_reason"] is None
    assert row["abnormal_ret"] == pytest.approx(row["ret"] - (2 * a + b * row["index_ret"]))


def test_market_model_keeps_the_price_skip_reason() -> None:
    """A window with a missing price says missing_day under both methods, even when the
    estimation window is also too short (the price gap is the first thing to fix)."""
    days = sessions("2021-01-01", "2021-12-31")
    values = list(np.linspace(10, 20, len(days)))
    values[101] = np.nan  # day0+1 of the filing below
    prices = pd.concat(
        [
            _series("ABC", days, values),
            _series(INDEX_TICKER, days, list(np.linspace(100, 120, len(days)))),
        ]
    )
    at = dt.datetime.combine(days[100], dt.time(11, 0), NY)  # ~70 estimation days
    filings = pd.DataFrame([{"accession": "x", "ticker": "ABC", "accepted_at": at}])
    out = ev.compute_events(filings, prices, windows=[(0, 1), (0, 0)])
    reasons = {(r.window, r.method): r.skip_reason for r in out.itertuples()}
    assert reasons == {
        ("0_1", "market_adjusted"): "missing_day",
        ("0_1", "market_model"): "missing_day",
        ("0_0", "market_adjusted"): None,
        ("0_0", "market_model"): "insufficient_estimation",
    }


@pytest.mark.parametrize("window", ["-1_1", (-1, 1), (-2, 0)])
def test_windows_before_day0_are_refused(window) -> None:
    f = pd.DataFrame([_filing("a", "X", "2021-06-10T12:00:00Z")])
    days = sessions("2021-06-01", "2021-06-30")
    p = _series("X", days, [1.0] * len(days))
    with pytest.raises(ValueError, match=r"bad window \(-\d, \d\): need 0 <= start <= end"):
        ev.compute_events(f, p, windows=[window])
