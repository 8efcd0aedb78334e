"""The simulated market: store contents, day-0 rule, exact abnormal returns, ceiling, effects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from filingcontrast.config import SimulateConfig, load_config
from filingcontrast.corpus import simulate as sim
from filingcontrast.corpus.store import INDEX_TICKER, TABLES, Store


def _cfg(tmp_path, name: str, **over):
    overrides = [f'store="{tmp_path / name}"'] + [f"simulate.{k}={v!r}" for k, v in over.items()]
    return load_config(None, [o.replace("'", '"') for o in overrides])


@pytest.fixture(scope="module")
def realistic_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    cfg = _cfg(tmp, "r.duckdb", filings=600, companies=40, preset="realistic")
    summary = sim.simulate_to_store(cfg)
    return cfg, summary


def test_store_has_every_table_in_the_real_schema(realistic_store):
    cfg, summary = realistic_store
    assert summary["filings"] == 600
    with Store(cfg.store, read_only=True) as st:
        assert st.count("filings") == 600 and st.count("truth") == 600
        assert {r["source"] for r in st.query("SELECT DISTINCT source FROM filings")} == {
            "simulated"
        }
        tickers = {r["ticker"] for r in st.query("SELECT DISTINCT ticker FROM prices")}
        assert INDEX_TICKER in tickers and len(tickers) == 41
        # Every 2.02 filing has an EX-99.1 press release stored as a separate exhibit row.
        missing = st.query(
            "SELECT f.accession FROM filings f WHERE list_contains(f.items, '2.02') AND NOT "
            "EXISTS (SELECT 1 FROM documents d WHERE d.accession = f.accession AND d.kind = "
            "'exhibit' AND d.exhibit_type = 'EX-99.1')"
        )
        assert missing == []
        main = st.query("SELECT text FROM documents WHERE kind = 'main' LIMIT 1")[0]["text"]
        for phrase in ("SECURITIES AND EXCHANGE COMMISSION", "FORM 8-K", "CURRENT REPORT",
                       "Exact name of registrant", "SIGNATURES"):  # fmt: skip
            assert phrase in main
        items = {i for r in st.query("SELECT items FROM filings") for i in r["items"]}
        assert len(items - {"9.01"}) >= 12
        for col in TABLES["truth"][1]:
            assert (
                st.query(f"SELECT count(*) AS n FROM truth WHERE {col.split()[0]} IS NULL")[0]["n"]
                == 0
            )


def test_headings_use_official_item_titles(realistic_store):
    cfg, _ = realistic_store
    with Store(cfg.store, read_only=True) as st:
        text = "\n".join(r["text"] for r in st.query("SELECT text FROM documents LIMIT 200"))
    assert "Item 2.02 Results of Operations and Financial Condition." in text
    assert re.search(r"Item 5\.02 Departure of Directors or Certain Officers", text)


def test_event_study_returns_equal_truth_plus_noise_and_day0_rule(realistic_store):
    """events.py's market-adjusted [0,+1] abnormal return equals the AR built into prices."""
    events = pytest.importorskip("filingcontrast.corpus.events")
    cfg, _ = realistic_store
    market = sim.simulate_market(cfg.simulate, cfg.stage_seed(cfg.simulate.seed))
    with Store(cfg.store, read_only=True) as st:
        rows = st.query(
            "SELECT e.accession, e.day0, e.abnormal_ret, f.accepted_at FROM events e JOIN "
            "filings f USING (accession) WHERE e.\"window\" = '0_1' AND e.method = "
            "'market_adjusted'"
        )
    assert len(rows) == 600
    got = np.array([r["abnormal_ret"] for r in rows])
    want = np.array([market.realized[r["accession"]] for r in rows])
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert all(r["day0"] == market.day0[r["accession"]] for r in rows)
    assert all(events.day0(r["accepted_at"]) == r["day0"] for r in rows)
    # The rule is exercised: after-close filings and filings on non-trading days both occur.
    local = [r["accepted_at"].astimezone(sim.ET) for r in rows]
    assert sum(t.hour >= 16 for t in local) > 30
    assert sum(t.date() != r["day0"] and t.hour < 16 for t, r in zip(local, rows)) > 5


def test_same_seed_gives_identical_store_and_other_seed_differs(tmp_path):
    def dump(path):
        with Store(path, read_only=True) as st:
            out = {}
            for table, (key, _) in TABLES.items():
                if table == "events":
                    continue  # another stage's output; it is a function of the prices
                out[table] = st.frame(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
            return out

    a = _cfg(tmp_path, "a.duckdb", filings=150, companies=12, preset="realistic")
    b = _cfg(tmp_path, "b.duckdb", filings=150, companies=12, preset="realistic")
    c = _cfg(tmp_path, "c.duckdb", filings=150, companies=12, preset="realistic", seed=5)
    for cfg in (a, b, c):
        sim.simulate_to_store(cfg)
    da, db, dc = dump(a.store), dump(b.store), dump(c.store)
    for table in da:
        assert da[table].equals(db[table]), table
    assert not da["truth"].equals(dc["truth"])
    # A rerun into the same store replaces the earlier simulated rows, it does not pile up.
    sim.simulate_to_store(c.__class__(**{**c.__dict__, "store": a.store}))
    with Store(a.store, read_only=True) as st:
        assert st.count("filings") == 150


def test_ceiling_matches_monte_carlo_within_one_point():
    market = sim.simulate_market(SimulateConfig(filings=800, companies=40, preset="realistic"), 3)
    pairs = sim.quick_pairs(market, min_gap=0.01)[:300]
    ceiling = sim.bayes_ceiling(pairs)
    rng = np.random.default_rng(0)
    m = 4000
    accs = []
    for p in pairs:
        ta, tb = p["a"]["truth"], p["b"]["truth"]
        d = (
            (ta["expected"] - tb["expected"])
            + ta["scale"] * rng.standard_t(ta["df"], m)
            - tb["scale"] * rng.standard_t(tb["df"], m)
        )
        kept = np.abs(d) >= 0.01
        oracle_a = ta["expected"] >= tb["expected"]
        accs.append(np.mean((d[kept] > 0) == oracle_a))
    assert abs(ceiling - float(np.mean(accs))) < 0.01
    uncond = sim.bayes_ceiling(pairs, min_gap=0.0)
    assert uncond < ceiling  # the gap filter drops near-ties, which the oracle gets wrong most
    # The oracle's verdicts on the realized winners land near the ceiling.
    realized = sim.oracle_accuracy(pairs)
    assert abs(realized - ceiling) < 0.08
    assert sim.bayes_ceiling(pairs, window="0_3") is None
    # the market model's estimated betas add noise the stored law does not describe
    assert sim.bayes_ceiling(pairs, method="market_model") is None


@pytest.mark.parametrize("preset,lo,hi", [("demo", 0.80, 0.90), ("realistic", 0.58, 0.68)])
def test_presets_hit_their_ceiling_targets(preset, lo, hi):
    market = sim.simulate_market(SimulateConfig(filings=1500, preset=preset), 11)
    assert lo < sim.bayes_ceiling(sim.quick_pairs(market)) < hi


def test_regression_recovers_effect_signs():
    """OLS of realized abnormal returns on driver categories recovers each documented sign."""
    market = sim.simulate_market(SimulateConfig(filings=3000, preset="demo"), 4)
    cats: list[set[str]] = []
    for d in market.truth["drivers"]:
        labels = set()
        for drv in json.loads(d):
            k = drv["kind"]
            if k == "earnings":
                labels.add("beat" if drv["eps"] > drv["eps_ref"] else "miss")
            elif k == "departure":
                labels.add(f"departure_{drv['mode']}")
            elif k == "dividend":
                labels.add(f"dividend_{drv['change']}")
            else:
                labels.add(k)
        cats.append(labels)
    names = sorted(set().union(*cats))
    x = np.array([[1.0 if n in c else 0.0 for n in names] for c in cats])
    y = np.array([market.realized[a] for a in market.truth["accession"]])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    got = dict(zip(names, coef))
    expected_sign = {
        "beat": 1, "miss": -1, "buyback": 1, "equity_offering": -1, "convertible": -1,
        "restatement": -1, "bankruptcy": -1, "delisting": -1, "dividend_cut": -1,
        "dividend_raise": 1, "dividend_initiate": 1, "departure_resignation": -1,
        "contract": 1,
    }  # fmt: skip
    for name, sign in expected_sign.items():
        assert np.sign(got[name]) == sign, (name, got[name])
    assert got["bankruptcy"] < got["restatement"] < got["equity_offering"]


KEYWORDS_POS = r"\b(?:beat|exceed\w*|above|rais\w*|increas\w*|strong|record|pleased|growth|up)\b"
KEYWORDS_NEG = (
    r"\b(?:miss\w*|below|short|lower\w*|cut|declin\w*|loss|resign\w*|terminat\w*|"
    r"restat\w*|bankruptcy|impairment|offering|convertible|suspend\w*|reduc\w*|down)\b"
)


def test_keyword_rule_scores_clearly_below_the_oracle():
    market = sim.simulate_market(SimulateConfig(filings=2000, preset="realistic"), 21)
    docs = market.documents.groupby("accession")["text"].apply(" ".join).to_dict()

    def kw(acc: str) -> int:
        t = docs[acc]
        return len(re.findall(KEYWORDS_POS, t, re.I)) - len(re.findall(KEYWORDS_NEG, t, re.I))

    pairs = sim.quick_pairs(market)
    keyword = np.mean(
        [("A" if kw(p["a"]["accession"]) >= kw(p["b"]["accession"]) else "B") == p["winner"]
         for p in pairs]
    )  # fmt: skip
    oracle = sim.oracle_accuracy(pairs)
    assert keyword < oracle - 0.04, (keyword, oracle)


def test_demo_filings_are_short_after_boilerplate():
    """Demo informative text (items + release, no cover/signature/legal) stays ~120 tokens."""
    market = sim.simulate_market(SimulateConfig(filings=200, preset="demo"), 2)
    lengths = []
    for _acc, g in market.documents.groupby("accession"):
        text = "\n".join(g["text"])
        body = re.findall(r"Item \d\.\d\d [^\n]*\n\n(.*?)(?=\n\nItem |\n\nSIGNATURES)", text, re.S)
        body = [b for b in body if not b.startswith("(d) Exhibits")]
        release = "\n".join(g[g["kind"] == "exhibit"]["text"])
        words = len(" ".join(body).split()) + len(release.split())
        lengths.append(words)
    assert np.median(lengths) < 90  # words; ~1.3 tokens per word


def test_config_rejects_bad_noise_df():
    from filingcontrast.errors import ConfigError

    with pytest.raises(ConfigError, match="noise_df"):
        SimulateConfig(noise_df=1.5)


def test_refuses_a_store_with_real_filings(tmp_path):
    from filingcontrast.errors import UserError

    cfg = _cfg(tmp_path, "mixed.duckdb", filings=20, companies=4)
    with Store(cfg.store) as st:
        st.upsert("filings", [{"accession": "0000000001-21-000001", "source": "edgar"}])
    with pytest.raises(UserError, match="real"):
        sim.simulate_to_store(cfg)


def test_cli_simulate_writes_the_store(tmp_path, capsys):
    from filingcontrast.cli import main

    store = tmp_path / "cli.duckdb"
    rc = main(
        ["simulate", "--filings", "40", "--seed", "2", "--preset", "demo", "--store", str(store)]
    )
    assert rc in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["filings"] == 40 and out["preset"] == "demo"
    with Store(store, read_only=True) as st:
        assert st.count("truth") == 40


def test_cli_seed_wins_over_the_config_files_simulate_seed(tmp_path, capsys):
    """Regression: `simulate --seed 3` with `[simulate] seed = 7` in the config ran seed 7."""
    from filingcontrast.cli import main

    config = tmp_path / "c.toml"
    config.write_text("[simulate]\nseed = 7\nfilings = 30\ncompanies = 4\n")
    store = tmp_path / "s.duckdb"
    assert main(["simulate", "--config", str(config), "--seed", "3", "--store", str(store)]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"start": "1993-02-01"}, r"simulate.start=1993-02-01: .* start on 1994-02-08 or later"),
        ({"start": "2099-01-04"}, r"simulate.start=2099-01-04, .* past the NYSE calendar's end"),
        ({"filings": 50000}, r"simulate.filings=50000, .* past the NYSE calendar's end"),
    ],
)
def test_period_outside_the_calendar_is_a_one_line_error(tmp_path, overrides, message):
    """Regression: a 31-line exchange_calendars DateOutOfBounds traceback."""
    from filingcontrast.errors import UserError

    cfg = _cfg(tmp_path, "cal.duckdb", **{"filings": 40, "companies": 4, **overrides})
    with pytest.raises(UserError, match=message) as err:
        sim.simulate_to_store(cfg)
    assert "\n" not in str(err.value) and not Path(cfg.store).exists()


def test_more_companies_than_a_sectors_names_still_finishes():
    """Regression: 5,000 companies looped forever once a sector's 800 names were taken."""
    companies = sim.make_companies(5000, np.random.default_rng(0))
    assert len({c.name for c in companies}) == 5000
    assert len({c.ticker for c in companies}) == 5000


def test_oracle_accuracy_counts_ties_half():
    """Regression: ties in expected return were credited to "A", so the oracle's accuracy
    depended on where the pairs builder put those winners (realistic preset: neutral filings tie
    at 0 in ~12 % of pairs). A tie now counts half, whoever won, as in bayes_ceiling."""

    def meta(ea: float, eb: float, winner: str) -> dict:
        return {
            "a": {"truth": {"expected": ea}},
            "b": {"truth": {"expected": eb}},
            "winner": winner,
        }

    decided = [meta(0.02, -0.01, "A"), meta(0.0, 0.03, "A")]  # right, wrong
    ties_a = [meta(0.0, 0.0, "A")] * 2
    ties_b = [meta(0.0, 0.0, "B")] * 2
    assert sim.oracle_accuracy(decided + ties_a) == sim.oracle_accuracy(decided + ties_b) == 0.5
    assert sim.oracle_accuracy(decided[:1] + ties_b) == pytest.approx(2 / 3)


def _truth_pair(ea: float, sa: float, da: float, eb: float, sb: float, db: float, **meta) -> dict:
    return {
        "a": {"truth": {"expected": ea, "scale": sa, "df": da}},
        "b": {"truth": {"expected": eb, "scale": sb, "df": db}},
        **meta,
    }


def _hand_win_probability(ea, sa, da, eb, sb, db, g: float) -> float:
    """docs/simulated-market.md: P(|dE| + N >= g) / (P(|dE| + N >= g) + P(|dE| + N <= -g)),
    N = sa*Ta - sb*Tb, integrated over Tb's density with scipy's adaptive quadrature (the code
    uses 2,000 quantiles of Tb instead)."""
    from scipy import integrate, stats

    mu = abs(ea - eb)

    def p_at_least(x: float) -> float:  # P(sa*Ta - sb*Tb >= x)
        f = lambda y: stats.t.pdf(y, db) * stats.t.sf((x + sb * y) / sa, da)  # noqa: E731
        return integrate.quad(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]

    hit, miss = p_at_least(g - mu), p_at_least(g + mu)  # miss: |dE| + N <= -g, by symmetry
    return hit / (hit + miss)


def test_win_probability_uses_each_filings_own_noise_scale():
    """Exact per-pair values where A's and B's noise scales differ (the Monte Carlo test's one
    point of tolerance cannot tell B's scale from A's)."""
    from scipy import stats

    # Near-normal noise (df 1e8): closed form Phi((|dE| -+ g) / sqrt(sa^2 + sb^2)).
    normal = [(0.02, 0.01, -0.005, 0.04), (-0.005, 0.04, 0.02, 0.01), (0.0, 0.03, 0.015, 0.005)]
    pairs = [_truth_pair(ea, sa, 1e8, eb, sb, 1e8) for ea, sa, eb, sb in normal]
    got = sim.pair_win_probabilities(pairs, min_gap=0.01)
    for p, (ea, sa, eb, sb) in zip(got, normal, strict=True):
        s = np.hypot(sa, sb)
        hit = stats.norm.cdf((abs(ea - eb) - 0.01) / s)
        miss = stats.norm.cdf((-abs(ea - eb) - 0.01) / s)
        assert p == pytest.approx(hit / (hit + miss), abs=1e-5)  # quadrature: within 4e-6
    # Student-t noise with different scales and dfs, B the noisier filing.
    heavy = [(0.02, 0.01, 4.0, -0.005, 0.04, 3.0), (0.01, 0.005, 3.0, 0.0, 0.03, 5.0)]
    pairs = [_truth_pair(*c) for c in heavy]
    for g in (0.0, 0.01, 0.03):
        got = sim.pair_win_probabilities(pairs, min_gap=g)
        want = [_hand_win_probability(*c, g) for c in heavy]
        assert got == pytest.approx(want, abs=1e-6)
    # The ceiling is their mean; min_gap=None reads each pair's meta, else PairsConfig's 0.01.
    tagged = [_truth_pair(*heavy[0], min_gap=0.03), _truth_pair(*heavy[1])]
    want = np.mean([_hand_win_probability(*heavy[0], 0.03), _hand_win_probability(*heavy[1], 0.01)])
    assert sim.bayes_ceiling(tagged) == pytest.approx(want, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Return drivers: documented signs and sizes (docs/simulated-market.md, "Drivers").


def _company(revenue_m: float = 1000.0, market_cap_m: float = 4000.0) -> sim.Company:
    return sim.Company(
        cik="1900007", ticker="TEST", name="Test Systems Inc.", sector="Technology", size="mid",
        state="Delaware", file_number="001-30000", irs_id="12-3456789",
        address="100 Main Parkway, Austin, Texas 78701", city="Austin, Texas",
        phone="(512) 555-1000", exchange="New York Stock Exchange", revenue_m=revenue_m,
        market_cap_m=market_cap_m, officers={"CEO": "Mary Smith", "CFO": "James Chen",
                                             "COO": "Paul Reyes"},
    )  # fmt: skip


def _earnings(eps: float, ref: float, rev: float = 100.0, rev_ref: float = 100.0, **kw) -> dict:
    return {"kind": "earnings", "eps": eps, "eps_ref": ref, "revenue": rev,
            "revenue_ref": rev_ref, **kw}  # fmt: skip


def test_earnings_driver_is_s_shaped_in_the_surprise_with_documented_add_ons():
    co = _company()
    eff = lambda ev: sim.event_effect(ev, co)  # noqa: E731
    t1 = np.tanh(1.0)
    # EPS surprise s = (EPS - ref) / max(|ref|, 0.10): 0.05 * tanh(s / 0.08).
    assert eff(_earnings(1.08, 1.00)) == pytest.approx(0.05 * t1)  # beat: s = 0.08
    assert eff(_earnings(0.92, 1.00)) == pytest.approx(-0.05 * t1)  # miss
    assert eff(_earnings(1.00, 1.00)) == 0.0  # in line
    assert eff(_earnings(-0.46, -0.50)) == pytest.approx(0.05 * t1)  # smaller loss: a beat
    assert eff(_earnings(0.028, 0.02)) == pytest.approx(0.05 * t1)  # |ref| floored at 0.10
    assert eff(_earnings(3.00, 1.00)) == pytest.approx(0.05, abs=1e-9)  # saturates at 5%
    # A pre-announced result is worth a fifth of a fresh one.
    assert eff(_earnings(1.08, 1.00, preannounced=True)) == pytest.approx(0.01 * t1)
    # Revenue surprise: 0.01 * tanh(rs / 0.02).
    assert eff(_earnings(1.0, 1.0, rev=102.0)) == pytest.approx(0.01 * t1)
    assert eff(_earnings(1.0, 1.0, rev=98.0)) == pytest.approx(-0.01 * t1)
    # Guidance carried with earnings: +2.5% / 0 / -3.5% (bad news bigger).
    for guidance, want in (("raised", 0.025), ("reaffirmed", 0.0), ("lowered", -0.035)):
        assert eff(_earnings(1.0, 1.0, guidance=guidance)) == pytest.approx(want)
    # A beat with a guidance cut nets to a negative expected return.
    assert eff(_earnings(1.02, 1.00, guidance="lowered")) < 0


@pytest.mark.parametrize(
    ("event", "want"),
    [
        ({"kind": "guidance_update", "guidance": "raised"}, 0.02),
        ({"kind": "guidance_update", "guidance": "lowered"}, -0.04),
        # amounts relative to market cap 4,000: offering 5% -> -(1.5% + 1.5%)
        ({"kind": "equity_offering", "private": False, "amount": 200.0}, -0.03),
        ({"kind": "equity_offering", "private": False, "amount": 4000.0}, -0.06),  # cap
        ({"kind": "equity_offering", "private": True, "amount": 200.0}, 0.01),
        ({"kind": "convertible", "amount": 400.0}, -0.025),
        ({"kind": "convertible", "amount": 8000.0}, -0.05),  # cap
        ({"kind": "credit_facility", "amount": 100.0}, 0.003),
        ({"kind": "departure", "role": "CEO", "mode": "retirement"}, 0.0),
        ({"kind": "departure", "role": "CEO", "mode": "resignation"}, -0.03),
        ({"kind": "departure", "role": "CEO", "mode": "termination"}, -0.015),
        ({"kind": "departure", "role": "CEO", "mode": "termination_after_poor"}, 0.015),
        ({"kind": "departure", "role": "CFO", "mode": "resignation"}, -0.02),
        ({"kind": "departure", "role": "CFO", "mode": "termination"}, -0.01),
        ({"kind": "departure", "role": "CFO", "mode": "termination_after_poor"}, 0.005),
        ({"kind": "departure", "role": "other", "mode": "resignation"}, -0.005),
        ({"kind": "departure", "role": "other", "mode": "termination"}, -0.003),
        ({"kind": "buyback", "amount": 400.0}, 0.04),
        ({"kind": "buyback", "amount": 4000.0}, 0.06),  # cap
        ({"kind": "dividend", "change": "raise"}, 0.01),
        ({"kind": "dividend", "change": "initiate"}, 0.03),
        ({"kind": "dividend", "change": "cut"}, -0.04),
        ({"kind": "dividend", "change": "suspend"}, -0.06),
        ({"kind": "dividend", "change": "regular"}, 0.0),
        ({"kind": "restructuring", "charge": 10.0}, -0.01),
        ({"kind": "impairment", "charge": 400.0}, -0.03),
        ({"kind": "impairment", "charge": 40000.0}, -0.06),  # cap
        ({"kind": "restatement", "year": 2020}, -0.09),
        ({"kind": "delisting", "reason": "bid_price"}, -0.05),
        ({"kind": "delisting", "reason": "late_filing"}, -0.04),
        ({"kind": "bankruptcy"}, -0.25),
        # contract value relative to annual REVENUE (1,000), not market cap
        ({"kind": "contract", "value": 200.0}, 0.06 * np.tanh(1.0)),
        ({"kind": "vote"}, 0.0),
        ({"kind": "presentation"}, 0.0),
        ({"kind": "appointment"}, 0.0),
        ({"kind": "other"}, 0.0),
    ],
)
def test_event_drivers_have_the_documented_sign_and_size(event, want):
    assert sim.event_effect(event, _company()) == pytest.approx(want, abs=1e-12)


def test_truth_is_the_sum_of_driver_effects_times_effect_scale_with_noise_overrides():
    """E[AR] = effect_scale * sum(driver effects); the truth table stores the noise law actually
    used (config overrides x size multiplier); realized ARs are E[AR] + noise, floored at -90%."""
    base = sim.simulate_market(SimulateConfig(filings=150, companies=12, preset="demo"), 5)
    scaled = sim.simulate_market(
        SimulateConfig(filings=150, companies=12, preset="demo", effect_scale=10.0,
                       noise_scale=1e-9, noise_df=7.0), 5,
    )  # fmt: skip
    size = dict(zip(base.companies["cik"], base.companies["size"]))
    cik = dict(zip(base.filings["accession"], base.filings["cik"]))
    for market, scale, df in ((base, 0.027, 5.0), (scaled, 1e-9, 7.0)):
        for row in market.truth.itertuples():
            drivers = json.loads(row.drivers)
            assert row.expected_abnormal_ret == pytest.approx(
                sum(d["effect"] for d in drivers), abs=1e-5
            )
            assert row.noise_scale == pytest.approx(
                scale * sim.SIZE_NOISE[size[cik[row.accession]]]
            )
            assert row.noise_df == df
    np.testing.assert_allclose(
        scaled.truth["expected_abnormal_ret"], 10 * base.truth["expected_abnormal_ret"], atol=1e-12
    )
    # With (almost) no noise the realized AR is the expected one, floored at -90%.
    expected = scaled.truth.set_index("accession")["expected_abnormal_ret"]
    realized = np.array([scaled.realized[a] for a in expected.index])
    np.testing.assert_allclose(realized, np.maximum(expected.to_numpy(), -0.9), atol=1e-6)
    assert (expected < -0.9).sum() >= 5  # bankruptcies (-250%) and restatements (-90%)
    assert (scaled.prices["adj_close"] > 0).all()


def test_stored_noise_law_is_the_presets_times_the_size_multiplier(realistic_store):
    cfg, _ = realistic_store
    with Store(cfg.store, read_only=True) as st:
        rows = st.query(
            "SELECT t.noise_scale, t.noise_df, c.size FROM truth t JOIN filings f USING "
            "(accession) JOIN companies c ON c.cik = f.cik"
        )
    assert len(rows) == 600
    assert {r["size"] for r in rows} == {"small", "mid", "large"}
    for r in rows:
        assert r["noise_scale"] == pytest.approx(
            0.05 * {"small": 1.3, "mid": 1.0, "large": 0.7}[r["size"]]
        )
        assert r["noise_df"] == 3.0


# ---------------------------------------------------------------------------------------------
# The written text states the same facts the drivers used.

_MONEY = re.compile(r"\$(\d[\d,]*(?:\.\d+)?)(?:\s(billion|million)\b|(bn|m)\b)?")


def _amounts_m(text: str) -> list[float]:
    """Every dollar amount in `text`, in $ millions ($1.2 billion, $1,200 million, $1.2bn,
    $1,200,000,000, $25m)."""
    out = []
    for num, word, short in _MONEY.findall(text):
        v = float(num.replace(",", ""))
        unit = word or short
        out.append(v * 1000 if unit in ("billion", "bn") else v if unit else v / 1e6)
    return out


def _states_amount(text: str, amount_m: float) -> bool:
    return any(abs(v - amount_m) <= 0.05 * amount_m + 0.05 for v in _amounts_m(text))


def _eps(x: float) -> str:  # prose: "$1.16", "a loss of $0.26"
    return f"${x:.2f}" if x >= 0 else f"a loss of ${-x:.2f}"


def _table_eps(x: float) -> str:  # tables: "$1.16", "$(0.26)"
    return f"${x:.2f}" if x >= 0 else f"$({-x:.2f})"


_BEAT_WORDS = ("above", "ahead of", "exceeding", "beat", "topping")
_MISS_WORDS = ("below", "short of", "did not meet", "missing")
_INLINE_WORDS = ("in line", "matched")


def _check_earnings(d: dict, release: str, realistic: bool) -> None:
    eps, ref = d["eps"], d["eps_ref"]
    label = "Adjusted diluted EPS" if d["adjusted"] else "Diluted EPS"
    consensus = _table_eps(ref) if d["ref_kind"] == "consensus" else "n/a"
    assert f"{label} | {_table_eps(eps)} | {consensus}\n" in release
    lines = release.split("\n")
    said = [ln for ln in lines if _eps(eps) in ln and _eps(ref) in ln and "|" not in ln]
    assert len(said) == 1, (d, said)
    s = said[0]
    if eps > ref:
        assert not any(w in s for w in _MISS_WORDS + _INLINE_WORDS), (d, s)
    elif eps < ref:
        assert not any(w in s for w in _BEAT_WORDS + _INLINE_WORDS), (d, s)
    elif not s.startswith(("Against", "Compared with")):  # reference first: no verb at all
        assert any(w in s for w in _INLINE_WORDS), (d, s)
    assert (("As previously announced" in release) or ("pre-announced" in release)) == bool(
        d.get("preannounced")
    )
    rev, rref = d["revenue"], d["revenue_ref"]
    if not realistic:
        assert (
            f"Revenue was ${rev:,.1f} million versus the consensus of ${rref:,.1f} million."
            in release
        )
        assert "Revenue |" not in release  # demo: the one-row EPS table
        return
    assert f"Revenue | ${rev:,.1f} | ${rref:,.1f}\n" in release
    if d["adjusted"]:
        assert f"GAAP diluted EPS | {_table_eps(d['gaap_eps'])} | n/a\n" in release
    (r,) = [ln for ln in lines if ln.startswith(("Revenue was", "Total revenue of"))]
    got_rev, got_ref = _amounts_m(r)
    assert got_rev == pytest.approx(rev, abs=0.051) and got_ref == pytest.approx(rref, abs=0.051)
    rel = "above" if rev > rref else "below" if rev < rref else "in line with"
    assert f", {rel} the consensus of" in r, (d, r)
    g = d["revenue_growth"]
    pct = f"{abs(g):.0%}"
    assert (
        (f"up {pct}" in r or f"increased {pct}" in r)
        if g >= 0
        else (f"down {pct}" in r or f"decreased {pct}" in r)
    ), (d, r)


def _check_guidance(d: dict, text: str) -> None:
    g, fy = d["guidance"], d["fy"]
    (line,) = [ln for ln in text.split("\n") if f"fiscal {fy} revenue" in ln
               or f"full-year {fy} revenue" in ln]  # fmt: skip
    got = _amounts_m(line)
    prior = [d["prior_lo"], d["prior_hi"]]
    new = [d["guide_lo"], d["guide_hi"]]
    if g == "reaffirmed":
        assert new == prior
        assert got == pytest.approx(prior, abs=5.01), (d, line)
        return
    assert got == pytest.approx(new + prior, abs=5.01), (d, line)  # "to NEW (from) PRIOR"
    if g == "raised":
        assert sum(new) > sum(prior)
        assert any(w in line for w in ("raising", "Raised", "increase")), line
    else:
        assert sum(new) < sum(prior)
        assert any(w in line for w in ("lowering", "reduced", "softer")), line


def _check_event(d: dict, items: list[str], main: str, release: str) -> None:
    text = main + "\n" + release
    k = d["kind"]
    if k == "equity_offering":
        assert f"{d['shares']:,} " in text and _states_amount(text, d["amount"])
        assert f"${d['price']:.2f} per share" in text
        if d["private"]:
            assert "3.02" in items and "private placement" in text and "public" not in text
        else:
            assert "3.02" not in items and "public offering" in text and "private" not in text
    elif k == "convertible":
        assert _states_amount(main, d["amount"])
        assert f"{d['coupon']:.2f}% Convertible Senior Notes due {d['maturity']}" in main
    elif k == "credit_facility":
        assert _states_amount(main, d["amount"]) and f"maturing in {d['maturity']}" in main
    elif k == "departure":
        title = {"CEO": "Chief Executive Officer", "CFO": "Chief Financial Officer"}
        assert title.get(d["role"], "Chief Operating Officer") in main
        mode = d["mode"]
        words = {
            "retirement": ("retire",),
            "resignation": ("resign", "step down"),
        }.get(mode, ("terminated", "removed", "relieved"))
        assert any(w in main for w in words), (d, main[-1500:])
        poor = "disappointing results" in main or "poor financial performance" in main
        assert poor == (mode == "termination_after_poor"), d
    elif k == "buyback":
        assert _states_amount(text, d["amount"]) and ("repurchase" in text or "buyback" in text)
    elif k == "dividend":
        new, old, ch = f"${d['new']:.2f}", f"${d['old']:.2f}", d["change"]
        if ch in ("raise", "cut"):
            assert new in text and old in text and text.index(new) < text.index(old), (d, text)
            if ch == "raise":
                pct = f"{d['new'] / d['old'] - 1:.0%}"
                assert d["new"] > d["old"], d
                assert f"increase of {pct}" in text or f"{pct} increase" in text, (d, text)
            else:
                assert d["new"] < d["old"] and ("reduced" in text or "decrease" in text)
        elif ch == "suspend":
            assert "suspend" in text and d["new"] == 0.0
        elif ch == "initiate":
            assert new in text and "first" in text
        else:
            assert new in text and "unchanged" in text
    elif k == "restructuring":
        assert _states_amount(main, d["charge"]) and f"{d['headcount_pct']:.0%}" in main
    elif k == "impairment":
        assert "impairment charge" in main and _states_amount(main, d["charge"])
    elif k == "restatement":
        assert f"fiscal {d['year']}" in main and "restate" in main
    elif k == "delisting":
        assert ("below $1.00" in main) == (d["reason"] == "bid_price"), d
        assert ("not timely filed" in main) == (d["reason"] == "late_filing"), d
    elif k == "bankruptcy":
        assert "1.03" in items and "hapter 11" in main
    elif k == "contract":
        assert _states_amount(main, d["value"]), d
        assert f"{d['years']}-year" in main or f"{d['years']} years" in main
    elif k == "vote":
        assert f"{d['votes_for']:,} votes for, {d['votes_against']:,} votes against" in main


@pytest.fixture(scope="module", params=["demo", "realistic"])
def text_market(request):
    return request.param, sim.simulate_market(
        SimulateConfig(filings=500, companies=30, preset=request.param), 13
    )


def test_filing_text_states_the_facts_the_drivers_used(text_market):
    preset, market = text_market
    realistic = preset == "realistic"
    docs = market.documents
    main = dict(
        zip(docs.loc[docs.kind == "main", "accession"], docs.loc[docs.kind == "main", "text"])
    )
    ex = docs[docs.kind == "exhibit"]
    release = dict(zip(ex["accession"], ex["text"]))
    items = dict(zip(market.filings["accession"], market.filings["items"]))
    seen: set[str] = set()
    for acc, drivers in zip(market.truth["accession"], market.truth["drivers"]):
        its = list(items[acc])
        # Items are listed in numerical order and each has its heading in the main document.
        assert its == sorted(its, key=lambda c: tuple(map(int, c.split("."))))
        heads = [main[acc].index(f"\nItem {c} ") for c in its]
        assert heads == sorted(heads)
        ds = json.loads(drivers)
        for d in ds:
            seen.add(d["kind"])
            if d["kind"] == "earnings":
                _check_earnings(d, release[acc], realistic)
            if d["kind"] in ("earnings", "guidance_update") and d.get("guidance"):
                _check_guidance(d, release[acc])
            if d.get("exhibit_only"):  # realistic: a dividend/buyback told only in EX-99.1
                assert "8.01" not in its and "Item 8.01" not in main[acc], acc
                _check_event(d, its, "", release[acc])
            else:
                _check_event(d, its, main[acc], release.get(acc, ""))
    assert len(seen) >= (18 if realistic else 10), seen


@pytest.mark.parametrize(
    ("day", "quarter", "year"),
    [
        ("2023-01-20", "fourth quarter ended December 31, 2022", 2022),
        ("2023-03-31", "fourth quarter ended December 31, 2022", 2022),
        ("2023-04-25", "first quarter ended March 31, 2023", 2023),
        ("2024-07-29", "second quarter ended June 30, 2024", 2024),
        ("2023-11-02", "third quarter ended September 30, 2023", 2023),
    ],
)
def test_earnings_report_the_quarter_just_ended(day, quarter, year):
    import datetime as dt

    assert sim._quarter(dt.date.fromisoformat(day)) == (quarter, year)


# ---------------------------------------------------------------------------------------------
# Prices: trading calendar and time order; reruns.


def test_prices_are_every_nyse_session_and_cover_each_event(realistic_store):
    """One row per ticker and NYSE session (no weekend, holiday or gap), in time order, from 260
    sessions before the first day 0 (estimation window) to 10 sessions after the last."""
    import pandas as pd

    from filingcontrast.corpus import calendar

    events = pytest.importorskip("filingcontrast.corpus.events")
    cfg, _ = realistic_store
    with Store(cfg.store, read_only=True) as st:
        px = st.frame("SELECT ticker, date, close, adj_close FROM prices ORDER BY ticker, date")
        fil = st.frame("SELECT accession, accepted_at FROM filings")
    px["date"] = pd.to_datetime(px["date"]).dt.date
    dates = sorted(set(px["date"]))
    assert dates == calendar.sessions(dates[0], dates[-1])
    for ticker, g in px.groupby("ticker"):
        assert list(g["date"]) == dates, ticker
    assert (px["adj_close"] > 0).all()
    np.testing.assert_allclose(px["close"], px["adj_close"].round(2))
    pos = {d: i for i, d in enumerate(dates)}
    at = [pos[d] for d in events.day0_series(fil["accepted_at"])]
    assert min(at) >= sim.BURN_IN_SESSIONS and max(at) <= len(dates) - 1 - sim.TAIL_SESSIONS


def test_rerun_with_another_period_leaves_no_row_of_the_first_simulation(tmp_path):
    """docs: a rerun replaces all earlier simulated rows (prices and the index included)."""
    first = _cfg(tmp_path, "x.duckdb", filings=60, companies=6, preset="demo")
    second = _cfg(tmp_path, "x.duckdb", filings=40, companies=5, preset="realistic", seed=9,
                  start="2022-03-01")  # fmt: skip
    sim.simulate_to_store(first)
    sim.simulate_to_store(second)
    market = sim.simulate_market(second.simulate, second.stage_seed(second.simulate.seed))
    with Store(second.store, read_only=True) as st:
        assert st.count("filings") == 40 and st.count("truth") == 40
        assert st.count("companies") == 5
        assert st.count("documents") == len(market.documents)
        assert st.count("prices") == len(market.prices)
        index_rows = st.query("SELECT count(*) AS n FROM prices WHERE ticker = ?", [INDEX_TICKER])
        assert index_rows[0]["n"] == len(market.prices) // 6
        stale = st.query(
            "SELECT count(*) AS n FROM events WHERE accession NOT IN (SELECT accession FROM filings)"
        )
        assert stale[0]["n"] == 0


def test_eps_and_money_formats_read_back_as_the_amount():
    from filingcontrast.corpus import sim_text

    assert [sim_text.fmt_eps(x) for x in (1.5, 0.0, -0.12)] == ["$1.50", "$0.00", "a loss of $0.12"]
    assert [sim_text.fmt_table_eps(x) for x in (1.5, 0.0, -0.12)] == ["$1.50", "$0.00", "$(0.12)"]
    pk = sim_text.Picker(np.random.default_rng(0))
    for m in (0.5, 7.0, 25.0, 999.0, 1000.0, 1234.5, 15000.0):
        for _ in range(30):
            text = sim_text.fmt_money(m, pk)
            assert _states_amount(text, m), (m, text)
            (got,) = _amounts_m(sim_text.fmt_money(m, pk, precise=True))
            assert got == pytest.approx(m, abs=0.051), m


def test_a_store_with_real_prices_is_refused_and_left_untouched(tmp_path):
    import datetime as dt

    from filingcontrast.errors import UserError

    cfg = _cfg(tmp_path, "prices_only.duckdb", filings=20, companies=4)
    real = [
        {
            "ticker": INDEX_TICKER,
            "date": dt.date(2019, 1, 3),
            "close": 2447.89,
            "adj_close": 2447.89,
        },
        {"ticker": "AAPL", "date": dt.date(2019, 1, 3), "close": 142.19, "adj_close": 34.5},
    ]
    for rows in (real, real[:1]):  # a real index series alone is refused too
        with Store(cfg.store) as st:
            st.con.execute("DELETE FROM prices")
            st.upsert("prices", rows)
        with pytest.raises(UserError, match=r"store holds \d+ real \(non-simulated\) price rows"):
            sim.simulate_to_store(cfg)
        with Store(cfg.store, read_only=True) as st:
            kept = st.query("SELECT * FROM prices ORDER BY ticker")
        assert kept == sorted(rows, key=lambda r: r["ticker"])  # untouched
