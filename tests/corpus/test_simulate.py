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
