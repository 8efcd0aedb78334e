"""Pairs: leak-free splits, balance, pairing rules, budget, answers, files (tiny in-test store)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from filingcontrast.config import PairsConfig, RunConfig
from filingcontrast.corpus.calendar import sessions
from filingcontrast.corpus.store import Store
from filingcontrast.errors import ConfigError, UserError
from filingcontrast.pairs import (
    AGAINST,
    SPLITS,
    FilingDoc,
    anonymize_text,
    build_pairs,
    filing_digest,
    filing_digests,
    filing_doc_from_file,
    filing_doc_from_store,
    load_pairs,
    pairs_stats,
    render_analysis,
    render_output,
    swapped_instruction,
)

ASSETS = Path(__file__).resolve().parent / "assets" / "pairs"
N_COMPANIES = 12
NAMES = [
    "Acme Robotics, Inc.",
    "Borealis Energy Corporation",
    "Cobalt Bancorp",
    "Dunmore Foods Co.",
    "Everline Software Holdings, Inc.",
    "Fairgate Pharmaceuticals Ltd.",
    "Glenrock Mining Corp.",
    "Halcyon Retail Group",
    "Ironvale Logistics, Inc.",
    "Juniper Creek Medical, Inc.",
    "Kestrel Aerospace Corporation",
    "Lumen Harbor Realty Trust",
]
TICKERS = [
    "ACMR",
    "BORE",
    "CBLT",
    "DUNF",
    "EVSW",
    "FGPH",
    "GLRK",
    "HLCY",
    "IRVL",
    "JCMD",
    "KSTL",
    "LHRT",
]
SECTORS = ["tech", "energy", "finance", "staples"]
FILLER = [
    "The Company operates {n} distribution centers across the region.",
    "Employees participated in the annual safety training program.",
    "The board meets regularly to review governance matters.",
    "Office space in the headquarters building was renovated during the year.",
]


def filing_text(name: str, ticker: str, item: str, i: int, mood: int) -> str:
    """A plain-text 8-K with cover page, one item, safe-harbor text, 9.01 and signatures."""
    verb = "raised" if mood > 0 else "lowered" if mood < 0 else "reaffirmed"
    filler = " ".join(f.format(n=i % 9 + 2) for f in FILLER * 6)
    if item == "2.02":
        body = (
            f"On May {i % 28 + 1}, 2021, {name} (NYSE: {ticker}) reported quarterly EPS of "
            f"$1.{i % 90 + 10:02d} versus consensus of $1.20. {name} {verb} its full-year "
            f"guidance. {filler}"
        )
        title = "Results of Operations and Financial Condition"
    else:
        body = (
            f"On May {i % 28 + 1}, 2021, the Chief Financial Officer of {name} resigned. {filler}"
        )
        title = "Departure of Directors or Certain Officers"
    return (
        "UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nWashington, D.C. 20549\n\nFORM 8-K\n\n"
        f"CURRENT REPORT\n\n{name.upper()}\n(Exact name of registrant as specified in its charter)"
        f"\n\nItem {item} {title}.\n\n{body}\n\nThis report contains forward-looking statements "
        "within the meaning of the Private Securities Litigation Reform Act of 1995.\n\n"
        "Item 9.01 Financial Statements and Exhibits.\n\n(d) Exhibits\n99.1 Press release\n\n"
        "SIGNATURES\n\nPursuant to the requirements of the Securities Exchange Act of 1934, the "
        "registrant has duly caused this report to be signed on its behalf.\n"
    )


def fake_signals(text: str) -> tuple[list[str], float]:
    """Stand-in for signals.extract_signals/signal_score: reads the verb of the guidance."""
    m = re.search(r"(raised|lowered|reaffirmed) its full-year guidance", text)
    if not m:
        return (["CFO resigned"], -0.5) if "resigned" in text else ([], 0.0)
    score = {"raised": 1.0, "lowered": -1.0, "reaffirmed": 0.0}[m.group(1)]
    return [f"guidance {m.group(1)}"], score


def make_store(path: Path, n_filings: int = 160, seed: int = 0) -> Path:
    """Companies, filings, documents, events (0_1 market_adjusted) and truth; a few skips."""
    rng = np.random.default_rng(seed)
    days = sessions("2021-01-04", "2021-12-31")
    companies = [
        {"cik": str(1000 + k), "ticker": TICKERS[k], "name": NAMES[k], "sector": SECTORS[k % 4]}
        for k in range(N_COMPANIES)
    ]
    filings, documents, events, truth = [], [], [], []
    for i in range(n_filings):
        k = int(rng.integers(N_COMPANIES))
        day = days[i * (len(days) - 5) // n_filings]
        item = "2.02" if rng.random() < 0.6 else "5.02"
        mood = int(rng.integers(-1, 2))
        acc = f"0000{1000 + k}-21-{i:06d}"
        accepted = dt.datetime.combine(day, dt.time(21, 5), dt.UTC)  # 17:05 ET: after the close
        filings.append(
            {
                "accession": acc,
                "cik": str(1000 + k),
                "ticker": TICKERS[k],
                "form": "8-K",
                "accepted_at": accepted,
                "filing_date": day,
                "items": [item, "9.01"],
                "source": "simulated",
            }
        )
        main = filing_text(NAMES[k], TICKERS[k], item, i, mood)
        documents.append({"accession": acc, "name": "main.txt", "kind": "main", "text": main})
        ex = f"{NAMES[k]} announces results. Revenue grew {i % 20}% to ${100 + i}.5 million."
        documents.append(
            {
                "accession": acc,
                "name": "ex99.txt",
                "kind": "exhibit",
                "exhibit_type": "EX-99.1",
                "text": ex,
            }
        )
        expected = 0.01 * mood
        ar = float(expected + rng.normal(0, 0.02))
        skip = "no_prices" if i % 40 == 7 else None
        events.append(
            {
                "accession": acc,
                "window": "0_1",
                "method": "market_adjusted",
                "day0": days[days.index(day) + 1],
                "abnormal_ret": None if skip else ar,
                "skip_reason": skip,
            }
        )
        truth.append(
            {
                "accession": acc,
                "expected_abnormal_ret": expected,
                "noise_scale": 0.02,
                "noise_df": 4.0,
            }
        )
    with Store(path) as store:  # frames: executemany is slow in DuckDB
        for table, rows in (
            ("companies", companies),
            ("filings", filings),
            ("documents", documents),
            ("events", events),
            ("truth", truth),
        ):
            store.upsert_frame(table, pd.DataFrame(rows))
    return path


def config(store: Path, **pairs: object) -> RunConfig:
    base = {"max_tokens": 512, "valid_frac": 0.2, "test_frac": 0.2, "max_days_apart": 5}
    base.update(pairs)
    return RunConfig(base="tiny-llama", store=str(store), pairs=PairsConfig(**base))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "s.duckdb")


@pytest.fixture(scope="module")
def built(store: Path, tmp_path_factory: pytest.TempPathFactory, tokenizer) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pairs") / "pairs"
    summary = build_pairs(config(store), out, tokenizer=tokenizer, signal_fn=fake_signals)
    return out, summary


def all_rows(out: Path) -> dict[str, list[dict]]:
    return {s: load_pairs(out, s) for s in SPLITS}


# ---------------------------------------------------------------------------------------------


def test_no_leakage_between_splits(built: tuple[Path, dict]) -> None:
    out, summary = built
    rows = all_rows(out)
    days = {s: sorted(r["meta"][x]["day0"] for r in rows[s] for x in "ab") for s in SPLITS}
    accs = {s: {r["meta"][x]["accession"] for r in rows[s] for x in "ab"} for s in SPLITS}
    gap = summary["split_boundaries"]["embargo_sessions"]
    for early, late in (("train", "valid"), ("valid", "test"), ("train", "test")):
        assert not accs[early] & accs[late]
        assert days[early][-1] < days[late][0]
        # trading sessions strictly between the last early day0 and the first late day0
        between = sessions(days[early][-1], days[late][0])[1:-1]
        assert len(between) >= gap, (early, late, len(between), gap)
    for s in SPLITS:  # every row is in the file of its split
        assert all(r["meta"]["split"] == s for r in rows[s])


def test_a_win_share_balanced(built: tuple[Path, dict]) -> None:
    out, summary = built
    for split, rows in all_rows(out).items():
        n_a = sum(r["meta"]["winner"] == "A" for r in rows)
        assert n_a == len(rows) // 2, split
        assert summary["splits"][split]["rows"] == len(rows)
        used = {r["meta"][x]["accession"] for r in rows for x in "ab"}
        stats = summary["splits"][split]
        assert stats["filings"] == len(used)
        assert stats["unpaired"] == stats["filings_in_split"] - len(used) >= 0


def test_swap_augment_only_in_train(store: Path, tmp_path: Path, tokenizer) -> None:
    cfg = config(store, swap_augment=True)
    build_pairs(cfg, tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)
    rows = all_rows(tmp_path / "p")
    train_ids = [r["meta"]["pair_id"] for r in rows["train"]]
    assert all(train_ids.count(p) == 2 for p in train_ids)
    assert sum(r["meta"]["winner"] == "A" for r in rows["train"]) * 2 == len(rows["train"])
    assert not any(r["meta"]["swapped"] for s in ("valid", "test") for r in rows[s])


def test_key_facts_line_states_the_analysis_facts(store: Path, tmp_path: Path, tokenizer) -> None:
    """pairs.key_facts: each digest's first content line is the facts its analysis cites."""
    summary = build_pairs(config(store, key_facts=True), tmp_path / "p", tokenizer=tokenizer,
                          signal_fn=fake_signals)  # fmt: skip
    assert summary["key_facts"] is True
    rows = [r for split in all_rows(tmp_path / "p").values() for r in split]
    assert rows
    for r in rows:
        for side in "ab":
            digest = r["meta"][side]["digest"]
            line = next(ln for ln in digest.splitlines() if ln.startswith("Key facts: "))
            facts = line.removeprefix("Key facts: ").removesuffix(".")
            cited = f"Filing {side.upper()}: {facts}." if facts != "none extracted" else (
                f"Filing {side.upper()}: no clear signals.")  # fmt: skip
            assert cited in r["output"], (line, r["output"])
    # Off by default: no such line.
    rows = [r for split in all_rows(built_dir(store, tmp_path, tokenizer)).values() for r in split]
    assert not any("Key facts:" in r["instruction"] for r in rows)


def built_dir(store: Path, tmp_path: Path, tokenizer) -> Path:
    build_pairs(config(store), tmp_path / "plain", tokenizer=tokenizer, signal_fn=fake_signals)
    return tmp_path / "plain"


def test_min_gap_and_rules(store: Path, tmp_path: Path, tokenizer) -> None:
    cfg = config(store, min_gap=0.02, same_item=True, max_days_apart=3)
    summary = build_pairs(cfg, tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)
    assert summary["pairs_dropped"]["near_tie"] > 0
    for rows in all_rows(tmp_path / "p").values():
        for r in rows:
            m = r["meta"]
            assert abs(m["a"]["abnormal_ret"] - m["b"]["abnormal_ret"]) >= 0.02 - 1e-6
            assert set(m["a"]["items"]) - {"9.01"} == set(m["b"]["items"]) - {"9.01"}
            assert m["a"]["ticker"] != m["b"]["ticker"]
            d0 = sessions(min(m["a"]["day0"], m["b"]["day0"]), max(m["a"]["day0"], m["b"]["day0"]))
            assert len(d0) - 1 <= 3
            winner = m[m["winner"].lower()]
            loser = m["b" if m["winner"] == "A" else "a"]
            assert winner["abnormal_ret"] > loser["abnormal_ret"]


def test_max_pairs_per_filing(store: Path, tmp_path: Path, tokenizer) -> None:
    cfg = config(store, max_pairs_per_filing=1, min_gap=0.0)
    build_pairs(cfg, tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)
    seen = [
        r["meta"][x]["accession"]
        for rows in all_rows(tmp_path / "p").values()
        for r in rows
        for x in "ab"
    ]
    assert len(seen) == len(set(seen))


def test_skips_counted(built: tuple[Path, dict]) -> None:
    _, summary = built
    assert summary["events"]["dropped"]["skip:no_prices"] == 4
    assert summary["events"]["dropped"].get("embargo", 0) > 0
    saved = json.loads((built[0] / "summary.json").read_text())
    assert saved["splits"] == summary["splits"]


def test_anonymization(built: tuple[Path, dict], store: Path, tmp_path: Path, tokenizer) -> None:
    out, _ = built
    text = "\n".join(
        r["instruction"] + r["output"] for rows in all_rows(out).values() for r in rows
    )
    for name, ticker in zip(NAMES, TICKERS, strict=True):
        core = name.split(",")[0].split(" Corp")[0]
        assert core.upper() not in text.upper(), name
        assert ticker not in text
    assert "the Company" in text and "[TICKER]" in text
    cfg = config(store, anonymize=False)
    build_pairs(cfg, tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)
    plain = "\n".join(r["instruction"] for r in load_pairs(tmp_path / "p", "train"))
    assert any(t in plain for t in TICKERS)


def test_budget_respected_and_answer_intact(built: tuple[Path, dict], tokenizer) -> None:
    out, summary = built
    for rows in all_rows(out).values():
        for r in rows:
            n_prompt = len(tokenizer(r["instruction"], add_special_tokens=False)["input_ids"])
            n_answer = len(tokenizer(r["output"], add_special_tokens=False)["input_ids"])
            assert n_prompt + n_answer + 40 <= 512
            assert r["instruction"].startswith("Compare Filing A (")
            assert "). Which is better?" in r["instruction"].split("\n")[0]
            for side in "ab":
                digest = r["meta"][side]["digest"]
                assert digest in r["instruction"]
                assert (
                    len(tokenizer(digest, add_special_tokens=False)["input_ids"])
                    <= summary["digest_tokens"]
                )
                assert digest.startswith("Form: 8-K\nItems: ")
                assert "forward-looking" not in digest and "SIGNATURES" not in digest
            assert r["output"].startswith(f"Filing {r['meta']['winner']} resulted in better")
            assert re.search(r" Confidence: (high|medium|low)\. Analysis: .+\.$", r["output"])
            assert r["output"].count("Filing") >= 3  # decision + both filings' facts, uncut


def test_digest_budget_follows_the_documented_formula(built: tuple[Path, dict], tokenizer) -> None:
    """docs: each digest gets (max_tokens - longest question - longest answer - 40 - 4) // 2,
    the question being the instruction without its two digests."""
    out, summary = built
    rows = [r for split in all_rows(out).values() for r in split]
    questions = {
        r["instruction"]
        .replace(r["meta"]["a"]["digest"], "", 1)
        .replace(r["meta"]["b"]["digest"], "", 1)
        for r in rows
    }
    q_max = max(len(tokenizer(q, add_special_tokens=False)["input_ids"]) for q in questions)
    a_max = max(len(tokenizer(r["output"], add_special_tokens=False)["input_ids"]) for r in rows)
    assert summary["digest_tokens"] == (512 - q_max - a_max - 40 - 4) // 2
    assert summary["max_row_tokens"] <= 512


def test_digest_keeps_informative_sentences(built: tuple[Path, dict]) -> None:
    rows = load_pairs(built[0], "train")
    digests = [r["meta"][s]["digest"] for r in rows for s in "ab"]
    earnings = [d for d in digests if "\nItems: 2.02 " in d]
    assert earnings
    for d in earnings:
        assert "guidance" in d and "EPS" in d  # numbers and guidance outrank filler
        assert "EX-99.1:" in d
        assert "(after the close)" in d


def test_analysis_never_contradicts_decision() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        winner = "A" if rng.random() < 0.5 else "B"
        sa, sb = rng.integers(-2, 3, size=2).astype(float)
        fa = [f"fact a{i}" for i in range(rng.integers(0, 4))]
        fb = [f"fact b{i}" for i in range(rng.integers(0, 4))]
        text = render_analysis(winner, fa, fb, sa, sb)
        loser = "B" if winner == "A" else "A"
        s_win, s_lose = (sa, sb) if winner == "A" else (sb, sa)
        assert f"favour Filing {loser}" not in text
        if s_lose > s_win:
            assert text.endswith(AGAINST)
        elif s_win > s_lose:
            assert text.endswith(f"The signals favour Filing {winner}.")
        out = render_output(winner, "low", text)
        assert out.startswith(f"Filing {winner} resulted in better performance.")


def test_analysis_on_equal_scores_says_neither_dominates() -> None:
    """Equal signal scores favour nobody (docs: "Neither filing's signals clearly dominate.")."""
    for winner in "AB":
        for score in (-1.0, 0.0, 0.5):
            text = render_analysis(winner, ["fact a"], ["fact b"], score, score)
            assert text == (
                "Filing A: fact a. Filing B: fact b. Neither filing's signals clearly dominate."
            )


def test_analysis_short(tokenizer) -> None:
    facts = [f"revenue grew {i}% to ${i}00.0 million" for i in range(20)]
    text = render_analysis("A", facts, facts, 1.0, 0.0, tokenizer)
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 60
    assert text.endswith("The signals favour Filing A.")


def test_deterministic(store: Path, built: tuple[Path, dict], tmp_path: Path, tokenizer) -> None:
    build_pairs(config(store), tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)
    for s in SPLITS:
        assert (tmp_path / "p" / f"{s}.jsonl").read_bytes() == (
            built[0] / f"{s}.jsonl"
        ).read_bytes()
    other = dataclasses.replace(config(store), seed=7)
    build_pairs(other, tmp_path / "q", tokenizer=tokenizer, signal_fn=fake_signals)
    assert (tmp_path / "q" / "train.jsonl").read_bytes() != (built[0] / "train.jsonl").read_bytes()


def test_swapped_instruction(built: tuple[Path, dict]) -> None:
    row = load_pairs(built[0], "test")[0]
    swapped = swapped_instruction(row)
    a, b = row["meta"]["a"]["digest"], row["meta"]["b"]["digest"]
    assert swapped.index(b) < swapped.index(a)
    assert swapped.split("\n")[0].startswith("Compare Filing A (")


def test_holdout_companies(store: Path, tmp_path: Path, tokenizer) -> None:
    cfg = config(store, holdout_companies=0.25)
    summary = build_pairs(cfg, tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)
    held = set(summary["holdout_companies"])
    assert len(held) == 3
    rows = all_rows(tmp_path / "p")
    assert not held & {r["meta"][x]["ticker"] for r in rows["train"] for x in "ab"}
    assert held & {r["meta"][x]["ticker"] for s in ("valid", "test") for r in rows[s] for x in "ab"}


def test_load_pairs_errors(tmp_path: Path, built: tuple[Path, dict]) -> None:
    good = (built[0] / "train.jsonl").read_text().splitlines()
    (tmp_path / "train.jsonl").write_text(good[0] + "\n{not json\n")
    with pytest.raises(UserError, match=r"train\.jsonl:2: invalid JSON"):
        load_pairs(tmp_path, "train")
    row = json.loads(good[0])
    del row["meta"]["b"]["digest"]
    (tmp_path / "valid.jsonl").write_text(good[0] + "\n" + good[1] + "\n" + json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"valid\.jsonl:3: missing field meta\.b\.digest"):
        load_pairs(tmp_path, "valid")
    row = json.loads(good[0])
    row["output"] = (
        row["output"]
        .replace("Filing A resulted", "Filing B resulted")
        .replace("Filing B resulted", "Filing C resulted")
    )
    (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"test\.jsonl:1: field output"):
        load_pairs(tmp_path, "test")
    with pytest.raises(UserError, match="not found"):
        load_pairs(tmp_path / "nope", "train")
    # Wrong types are named too (they used to surface as TypeErrors deep in evaluate/stats).
    for field, value, message in (
        ("digest", None, r"field meta\.a\.digest: must be a string"),
        ("items", "2.02", r"field meta\.a\.items: must be a list"),
        ("abnormal_ret", "high", r"field meta\.a\.abnormal_ret: must be a finite number"),
        # regressions: NaN / Infinity / 1e400 as an int nulled the IC or overflowed in evaluate
        ("abnormal_ret", math.nan, r"field meta\.a\.abnormal_ret: must be a finite number"),
        ("abnormal_ret", 10**400, r"field meta\.a\.abnormal_ret: must be a finite number"),
        ("truth", {"expected": "x", "scale": 0.02}, r"field meta\.a\.truth\.expected: must be"),
        ("truth", {"expected": 0.01, "scale": 0}, r"field meta\.a\.truth\.scale: must be .* > 0"),
        ("truth", [0.01], r"field meta\.a\.truth: must be an object or null"),
    ):
        row = json.loads(good[0])
        row["meta"]["a"][field] = value
        (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
        with pytest.raises(UserError, match=r"test\.jsonl:1: " + message):
            load_pairs(tmp_path, "test")
    # meta.gap feeds train.min_train_gap: a missing or negative gap is named, not compared.
    for value in (None, "0.03", -0.01):
        row = json.loads(good[0])
        row["meta"]["gap"] = value
        (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
        with pytest.raises(UserError, match=r"test\.jsonl:1: field meta\.gap: must be a finite"):
            load_pairs(tmp_path, "test")
    # regression: a list pair_id passed evaluate and broke the report (unhashable type)
    for field, value in (("pair_id", ["p1"]), ("window", 5)):
        row = json.loads(good[0])
        row["meta"][field] = value
        (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
        with pytest.raises(UserError, match=rf"test\.jsonl:1: field meta\.{field}: must be a str"):
            load_pairs(tmp_path, "test")
    # regression: every row twice doubled n and narrowed the interval without a word
    (tmp_path / "test.jsonl").write_text(good[0] + "\n" + good[1] + "\n" + good[0] + "\n")
    with pytest.raises(UserError, match=r"test\.jsonl:3: field meta\.pair_id: .* repeats line 1"):
        load_pairs(tmp_path, "test")


def test_bad_inputs(tmp_path: Path, store: Path, tokenizer) -> None:
    empty = tmp_path / "empty.duckdb"
    Store(empty).close()
    with pytest.raises(UserError, match="no events"):
        build_pairs(config(empty), tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)
    with pytest.raises(
        UserError, match=r"no events for window 0_3 .*events --store .* 'pairs\.window=\"0_3\"'"
    ):
        build_pairs(
            config(store, window="0_3"),
            tmp_path / "p",
            tokenizer=tokenizer,
            signal_fn=fake_signals,
        )
    with pytest.raises(
        UserError,
        match=r"split .* has no pairs \(\d+ filings in it; .*near_tie \d+.*relax pairs.min_gap",
    ):
        build_pairs(
            config(store, min_gap=0.5),
            tmp_path / "p",
            tokenizer=tokenizer,
            signal_fn=fake_signals,
        )
    # Regression: an explicit digest_tokens silently overrode max_tokens (rows of 1148 > 512).
    with pytest.raises(ConfigError, match=r"pairs.digest_tokens: 1000 per digest makes rows of"):
        build_pairs(
            config(store, digest_tokens=1000, max_tokens=256),
            tmp_path / "p",
            tokenizer=tokenizer,
            signal_fn=fake_signals,
        )
    assert not (tmp_path / "p").exists()
    # Regression: an embargo that empties a split was blamed on pairs.max_days_apart.
    with pytest.raises(
        UserError, match=r"split \w+ has no pairs: 0 filings .* embargo \(pairs.embargo_days=400"
    ):
        build_pairs(
            config(store, embargo_days=400),
            tmp_path / "p",
            tokenizer=tokenizer,
            signal_fn=fake_signals,
        )
    with pytest.raises(ConfigError, match="max_tokens"):
        build_pairs(
            config(store, max_tokens=256),
            tmp_path / "p",
            tokenizer=tokenizer,
            signal_fn=fake_signals,
        )
    assert not (tmp_path / "p").exists()  # failed runs leave nothing behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="not a pairs directory"):
        build_pairs(config(store), tmp_path / "mine", tokenizer=tokenizer, signal_fn=fake_signals)


def test_no_returns_is_clear_error(tmp_path: Path, tokenizer) -> None:
    path = make_store(tmp_path / "s.duckdb", n_filings=20)
    with Store(path) as st:
        st.con.execute("UPDATE events SET abnormal_ret = NULL, skip_reason = 'no_prices'")
    with pytest.raises(UserError, match="no filing has an abnormal return"):
        build_pairs(config(path), tmp_path / "p", tokenizer=tokenizer, signal_fn=fake_signals)


def test_pairs_stats(built: tuple[Path, dict]) -> None:
    text = pairs_stats(built[0])
    assert "train" in text and "A-share" in text and "2.02" in text


def test_assets_fixture_loads() -> None:
    """tests/assets/pairs is a valid pairs dir other engineers' tests use."""
    sizes = {s: len(load_pairs(ASSETS, s)) for s in SPLITS}
    assert sizes == {"train": 8, "valid": 4, "test": 4}
    for s in SPLITS:
        for r in load_pairs(ASSETS, s):
            assert r["meta"]["a"]["truth"] is not None
            assert r["instruction"].startswith("Compare Filing A (")


def test_anonymize_variants() -> None:
    text = (
        "Nuance Communications, Inc. (Nasdaq: NUAN) said NUANCE grew; nuance is a word. "
        "Contact ir@nuance.com or www.nuance.com."
    )
    out = anonymize_text(text, "NUANCE COMMUNICATIONS, INC.", "NUAN")
    assert out.startswith("The Company (Nasdaq: [TICKER]) said the Company grew; nuance is")
    assert "[EMAIL]" in out and "[URL]" in out and "nuance.com" not in out
    out = anonymize_text(
        "Home Health Corporation of America, Inc. expanded home health care.",
        "HOME HEALTH CORP OF AMERICA INC \\PA\\",
        None,
    )
    assert out == "The Company expanded home health care."
    assert anonymize_text("First Bancorp was first.", "First Bancorp", "FBP") == (
        "The Company was first."
    )
    assert anonymize_text("IT spending", "Gartner Inc", "IT") == "IT spending"  # a common word


def test_digest_budget_and_order(tokenizer) -> None:
    doc = FilingDoc(
        accession="x",
        items=["2.02", "9.01"],
        accepted_at=dt.datetime(2021, 5, 4, 13, 0, tzinfo=dt.UTC),
        company="Acme Robotics, Inc.",
        ticker="ACMR",
        main_text=filing_text("Acme Robotics, Inc.", "ACMR", "2.02", 3, 1),
        exhibits=[("EX-99.1", "Acme Robotics announces record revenue of $12.5 million.")],
    )
    for budget in (40, 80, 400):
        digest = filing_digest(doc, budget, tokenizer)
        assert len(tokenizer(digest, add_special_tokens=False)["input_ids"]) <= budget
        assert digest.startswith("Form: 8-K\nItems: 2.02 ")
        if budget >= 80:  # 40 is less than the headers: they are cut, never exceeded
            # one informative item: the "Items:" line names it, no "Item 2.02:" line is spent
            assert "Accepted: Tuesday 09:00 ET (before the open)\n" in digest
            assert "\nItem 2.02:" not in digest
    full = filing_digest(doc, 400, tokenizer)
    assert full.index("reported quarterly EPS") < full.index("raised its full-year guidance")
    assert "9.01" not in full.split("Accepted:")[1]  # the exhibit list is not in the body
    assert "Acme" not in full and "ACMR" not in full


def test_key_facts_over_the_budget_lose_whole_facts_never_half_of_one(tokenizer) -> None:
    """Regression: mandatory lines over the budget were cut at a token, so "convertible notes
    $5,060.0M" became "$5,060" in the prompt while the answer stated the full figure."""
    doc = FilingDoc(
        accession="x",
        items=["1.01", "2.03", "3.02"],
        accepted_at=dt.datetime(2021, 5, 4, 13, 0, tzinfo=dt.UTC),
        company="Acme Robotics, Inc.",
        ticker="ACMR",
        main_text=filing_text("Acme Robotics, Inc.", "ACMR", "2.02", 3, 1),
    )
    facts = ["convertible notes $5,060.0M (52% of market cap)", "EPS $0.55 missed consensus "
             "$0.67 by 17.9%", "revenue $335.9M beat consensus $331.5M by 1.3%"]  # fmt: skip
    full = filing_digest(doc, 400, tokenizer, facts=facts)
    assert f"Key facts: {'; '.join(facts)}." in full
    header = full.split("\nKey facts:")[0]
    n_header = len(tokenizer(header, add_special_tokens=False)["input_ids"])
    for budget in range(n_header + 1, n_header + 60, 3):
        digest = filing_digest(doc, budget, tokenizer, facts=facts)
        assert len(tokenizer(digest, add_special_tokens=False)["input_ids"]) <= budget
        line = next((x for x in digest.split("\n") if x.startswith("Key facts:")), None)
        if line is not None:
            kept = line[len("Key facts: ") :].removesuffix("; …").removesuffix(".").split("; ")
            assert kept == facts[: len(kept)], (budget, line)


def test_old_item_7_exhibit_list_is_dropped_like_9_01(tokenizer) -> None:
    from filingcontrast.digest import render_question

    text = (
        "FORM 8-K\n\nItem 5. Other Events.\n\nThe Company declared a special dividend of $1.00.\n\n"
        "Item 7. Financial Statements, Pro Forma Financial Information and Exhibits.\n\n"
        "(c) Exhibits\n99.1 -- Press release announcing the dividend\n"
    )
    doc = FilingDoc(accession="x", items=["5", "7"], company="Acme", ticker="ACME", main_text=text)
    digest = filing_digest(doc, 400, tokenizer)
    assert "special dividend" in digest and "Press release announcing" not in digest
    assert render_question(["5", "7"], ["7"]) == (
        "Compare Filing A (Item 5) and Filing B (Item 7). Which is better?"
    )


def test_real_filing_digest(edgar_8k: Path, tokenizer) -> None:
    files = sorted((edgar_8k / "filings").iterdir())[:20]
    for f in files:
        doc = filing_doc_from_file(f)
        digest = filing_digest(doc, 300, tokenizer)
        assert len(tokenizer(digest, add_special_tokens=False)["input_ids"]) <= 300
        assert digest.startswith("Form: 8-K")


def test_cli_with_real_signals(store: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("filingcontrast.signals")
    from filingcontrast.cli import main

    out = tmp_path / "pairs"
    args = ["pairs", "--store", str(store), "--out", str(out), 'base="tiny-llama"']
    assert main(args + ["pairs.max_tokens=512", "pairs.valid_frac=0.2", "pairs.test_frac=0.2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["splits"]) == set(SPLITS)
    rows = load_pairs(out, "train")
    assert any("guidance" in r["output"] for r in rows)  # facts from the real extractor
    assert main(["pairs", "stats", str(out)]) == 0
    assert "A-share" in capsys.readouterr().out


def test_filing_doc_from_store(store: Path, tmp_path: Path) -> None:
    with Store(store, read_only=True) as st:
        acc = st.query("SELECT accession FROM filings ORDER BY accession LIMIT 1")[0]["accession"]
        doc = filing_doc_from_store(st, acc)
        assert doc.company in NAMES and doc.ticker in TICKERS
        assert "Item " in doc.main_text and doc.exhibits[0][0] == "EX-99.1"
        assert doc.accepted_at is not None and doc.items[-1] == "9.01"
        with pytest.raises(UserError, match="no such filing"):
            filing_doc_from_store(st, "nope")
    # Regression: compare --store scored a filing whose documents were gone (a header-only
    # digest) where `pairs` refuses it.
    gone = tmp_path / "gone.duckdb"
    shutil.copy(store, gone)
    with Store(gone) as st:
        st.query("DELETE FROM documents WHERE accession = ?", [acc])
        with pytest.raises(UserError, match=f"filing {acc} has no main document text"):
            filing_doc_from_store(st, acc)


def test_pairs_from_provided_returns(store: Path, tmp_path: Path, tokenizer) -> None:
    # Regression: returns given in an `ingest files` manifest are stored with method "provided",
    # and pairs.method could not select them.
    import shutil

    import duckdb

    copy = tmp_path / "provided.duckdb"
    shutil.copy(store, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE events SET method = 'provided'")
    summary = build_pairs(config(copy, method="provided"), tmp_path / "p", tokenizer=tokenizer,
                          signal_fn=fake_signals)  # fmt: skip
    assert summary["splits"]["train"]["rows"] > 0
    row = load_pairs(tmp_path / "p", "train")[0]
    assert row["meta"]["method"] == "provided"


def test_digest_keeps_the_stated_facts_of_a_paraphrased_release(tokenizer) -> None:
    """Regression (realistic preset): the EPS-vs-estimate sentence of a release that says
    "earnings ... above Wall Street's average estimate" scored below the release's title and
    dateline (none of its words were keywords), so a tight budget kept a table header, the
    fragment "Eastern Time today." (split after "p.m.") and the investor contact instead."""
    release = (
        "Exhibit 99.1\n\nBeacon Foods Holdings, Inc. Announces Results for the Third Quarter Ended "
        "September 30, 2021\n\nAtlanta, Georgia -- November 4, 2021 -- Beacon Foods Holdings, Inc. "
        "(NYSE: SXNT) today announced the following.\nThe Company reported GAAP diluted earnings of "
        "$0.66 per share, above Wall Street's average estimate of $0.61.\nTotal revenue of "
        "$2,239,300,000 decreased 2% from the prior-year period, above the consensus of "
        "$2,161,300,000.\nManagement will host a conference call to discuss the results at 5:00 "
        "p.m. Eastern Time today.\n\n(in millions, except per share data) | Third Quarter | "
        "Consensus\nDiluted EPS | $0.66 | $0.61\n\nInvestor Contact: investors@sxnt.example.com\n"
    )
    doc = FilingDoc(
        accession="x",
        items=["2.02", "9.01"],
        accepted_at=dt.datetime(2021, 11, 4, 23, 16, tzinfo=dt.UTC),
        company="Beacon Foods Holdings, Inc.",
        ticker="SXNT",
        main_text="Item 2.02 Results of Operations and Financial Condition.\n\nThe Company issued "
        "a press release. A copy is furnished as Exhibit 99.1.\n",
        exhibits=[("EX-99.1", release)],
    )
    digest = filing_digest(doc, 80, tokenizer)
    assert "above Wall Street's average estimate of $0.61" in digest
    assert "Eastern Time today" not in digest and "Investor Contact" not in digest
    assert "| Third Quarter | Consensus" not in digest
    full = filing_digest(doc, 400, tokenizer)
    assert "at 5:00 p.m. Eastern Time today." in full  # one sentence, not split after "p.m."


def test_same_sector_without_sectors_says_so(tmp_path: Path, store: Path, tokenizer) -> None:
    # Regression: the error named min_gap / max_days_apart / same_item, never same_sector,
    # when the user's filings had no sector at all.
    import shutil

    copy = tmp_path / "nosector.duckdb"
    shutil.copy(store, copy)
    with Store(copy) as s:
        s.query("UPDATE companies SET sector = NULL")
    with pytest.raises(
        UserError, match=r"pairs\.same_sector \((\d+) of \1 filings have no sector\)"
    ):
        build_pairs(
            config(copy, same_sector=True),
            tmp_path / "p",
            tokenizer=tokenizer,
            signal_fn=fake_signals,
        )


def test_digest_reads_a_release_pasted_after_the_signature(tokenizer) -> None:
    # Regression: the parser now splits such a release off, but the digest read only the main
    # document's item sections and the store's exhibit documents, so the release never reached
    # the prompt (20 of the 353 real filings put it there).
    path = Path(__file__).resolve().parent / "assets" / "parse" / "pasted_exhibit.txt"
    doc = filing_doc_from_file(path)
    assert doc.exhibits == []  # one <DOCUMENT>: the release sits in the main text, as stored
    (digest,) = filing_digests([doc], 400, tokenizer)
    assert "EX-99.1:" in digest and "$1.42 per diluted share" in digest


# -- confidence: z = gap / (sqrt(2) * sigma), sigma from truth or the train split's MAD ---------


def hand_confidence(gap: float, sigma: float) -> str:
    """docs/pairs.md: high for z >= 1.0, medium for 0.5 <= z < 1.0, low below."""
    z = gap / (np.sqrt(2.0) * sigma)
    return "high" if z >= 1.0 else "medium" if z >= 0.5 else "low"


def stated_confidence(row: dict) -> str:
    m = re.search(r" Confidence: (high|medium|low)\. Analysis: ", row["output"])
    assert m, row["output"]
    assert m.group(1) == row["meta"]["confidence"]
    return m.group(1)


def hand_mad_sigma(returns: list[float]) -> float:
    r = np.asarray(returns, dtype=float)
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def test_confidence_label_divides_by_sqrt2_sigma() -> None:
    from filingcontrast.pairs import confidence_label

    # gap / sigma is >= the threshold, gap / (sqrt(2) sigma) is not: the sqrt(2) decides.
    assert confidence_label(0.025, 0.02) == "medium"  # z = 0.884 (0.025 / 0.02 = 1.25)
    assert confidence_label(0.012, 0.02) == "low"  # z = 0.424 (0.012 / 0.02 = 0.6)
    assert confidence_label(0.0283, 0.02) == "high"  # z = 1.0006
    assert confidence_label(0.0282, 0.02) == "medium"  # z = 0.997
    assert confidence_label(0.0142, 0.02) == "medium"  # z = 0.502
    assert confidence_label(0.0141, 0.02) == "low"  # z = 0.4985
    assert confidence_label(0.05, 0.0) == "low"  # no noise scale: never confident


def test_answer_confidence_from_truth_scale(built: tuple[Path, dict]) -> None:
    """The simulated store's truth gives every filing noise_scale 0.02, so sigma = 0.02 and
    the answer's confidence is the documented z = gap / (sqrt(2) * 0.02) bucket."""
    out, summary = built
    assert summary["sigma"]["truth_filings"] > 0
    rows = [r for split in all_rows(out).values() for r in split]
    decisive = 0  # rows whose word would differ with z = gap / sigma
    for r in rows:
        assert r["meta"]["a"]["truth"]["scale"] == r["meta"]["b"]["truth"]["scale"] == 0.02
        gap = r["meta"]["gap"]
        z = gap / (np.sqrt(2.0) * 0.02)
        if min(abs(z - 1.0), abs(z - 0.5)) < 1e-4:
            continue  # meta.gap is rounded; too close to a threshold to judge
        assert stated_confidence(r) == hand_confidence(gap, 0.02), (gap, r["output"])
        decisive += hand_confidence(gap, 0.02) != hand_confidence(gap * np.sqrt(2.0), 0.02)
    assert decisive >= 5  # the fixture has pairs on both sides of a threshold only with sqrt(2)


@pytest.fixture(scope="module")
def real_like_store(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test store as real filings would fill it: no simulated truth, so sigma falls back
    to the MAD of abnormal returns."""
    import shutil

    path = tmp_path_factory.mktemp("real") / "real.duckdb"
    shutil.copy(store, path)
    with Store(path) as s:
        s.query("DELETE FROM truth")
        s.query("UPDATE filings SET source = 'edgar'")
    return path


def eligible_returns(path: Path) -> list[tuple[dt.date, float]]:
    with Store(path, read_only=True) as s:
        rows = s.query(
            "SELECT day0, abnormal_ret FROM events WHERE \"window\" = '0_1' AND "
            "method = 'market_adjusted' AND skip_reason IS NULL AND abnormal_ret IS NOT NULL"
        )
    return [(r["day0"], r["abnormal_ret"]) for r in rows]


def test_mad_sigma_comes_from_train_split_only(
    real_like_store: Path, tmp_path: Path, tokenizer
) -> None:
    """Without truth, sigma = 1.4826 * MAD of the train split's abnormal returns: changing
    validation / test returns must not change it (leakage), and answers grade with it."""
    import shutil

    summary = build_pairs(config(real_like_store), tmp_path / "p", tokenizer=tokenizer,
                          signal_fn=fake_signals)  # fmt: skip
    assert summary["sigma"]["truth_filings"] == 0
    train_last = dt.date.fromisoformat(summary["split_boundaries"]["train"][1])
    events = eligible_returns(real_like_store)
    train = [ar for d0, ar in events if d0 <= train_last]
    assert 0 < len(train) < len(events)
    sigma = hand_mad_sigma(train)
    assert summary["sigma"]["mad_train"] == pytest.approx(sigma, rel=1e-9)

    # Scale every later return by 10: the MAD over all splits moves a lot, train's must not.
    later = tmp_path / "later.duckdb"
    shutil.copy(real_like_store, later)
    with Store(later) as s:
        s.query("UPDATE events SET abnormal_ret = abnormal_ret * 10 WHERE day0 > ?", [train_last])
    assert hand_mad_sigma([ar for _, ar in eligible_returns(later)]) > 1.5 * sigma
    other = build_pairs(config(later), tmp_path / "q", tokenizer=tokenizer, signal_fn=fake_signals)
    assert other["split_boundaries"] == summary["split_boundaries"]
    assert other["sigma"]["mad_train"] == pytest.approx(sigma, rel=1e-9)

    # Every answer, valid and test included, is graded with the train split's sigma.
    for out in (tmp_path / "p", tmp_path / "q"):
        rows = [r for split in all_rows(out).values() for r in split]
        assert all(r["meta"][x]["truth"] is None for r in rows for x in "ab")
        for r in rows:
            z = r["meta"]["gap"] / (np.sqrt(2.0) * sigma)
            if min(abs(z - 1.0), abs(z - 0.5)) < 1e-4:
                continue
            assert stated_confidence(r) == hand_confidence(r["meta"]["gap"], sigma), r["output"]


# ---------------------------------------------------------------------------------------------
# Fast rules (no store, no tokenizer): the split boundaries and embargo, holdouts, the pairing
# rules, position balance, confidence scale and event loading, on hand-made events.


def _ev(i: int, idx: int, ar: float, company: str | None = None, **kw: object):
    from filingcontrast.pairs import Event

    days = sessions("2021-01-04", "2022-12-30")
    base = {
        "accession": f"acc-{i:04d}",
        "day0": days[idx],
        "idx": idx,
        "ar": ar,
        "ticker": company if company is not None else f"T{i}",
        "cik": None,
        "sector": "tech",
        "items": ["2.02", "9.01"],
        "truth": None,
    }
    base.update(kw)
    return Event(**base)


class TestSplitAndPairRules:
    def _plan(self, events, **pc: object):
        from filingcontrast.pairs import plan_splits

        base = {"valid_frac": 0.2, "test_frac": 0.2, "embargo_days": 5, "window": "0_1"}
        base.update(pc)
        return plan_splits(events, PairsConfig(**base), seed=7)

    def test_split_boundaries_and_embargo_are_exact(self) -> None:
        """One filing a session: test starts at the 80th, valid at the 60th; E = 5 + 1 sessions
        before each start are embargoed (docs: valid = s(v) <= s < s(t) - E, train < s(v) - E)."""
        import random

        events = [_ev(i, i, 0.01 * (i % 7)) for i in range(100)]
        shuffled = events[:]
        random.Random(3).shuffle(shuffled)  # splits go by day 0, not by input order
        plan = self._plan(shuffled)
        idx = {s: [e.idx for e in plan.events[s]] for s in SPLITS}
        assert idx["test"] == list(range(80, 100))
        assert idx["valid"] == list(range(60, 74))
        assert idx["train"] == list(range(0, 54))
        assert plan.dropped["embargo"] == 12
        assert plan.boundaries["embargo_sessions"] == 6
        # exactly E sessions strictly between the last day 0 of one split and the next's first
        assert 60 - 53 - 1 == 6 and 80 - 73 - 1 == 6
        # a longer window widens the embargo by its end (E = 5 + 3)
        plan3 = self._plan(events, window="0_3")
        assert [e.idx for e in plan3.events["valid"]] == list(range(60, 72))
        assert [e.idx for e in plan3.events["train"]] == list(range(0, 52))
        assert plan3.dropped["embargo"] == 16

    def test_filings_of_one_day_never_straddle_a_split(self) -> None:
        """Three filings a day: the boundary filing's day mates all go to the later split."""
        events = [_ev(i, i // 3, 0.001 * i) for i in range(150)]  # days 0..49
        plan = self._plan(events, embargo_days=0, window="0_0")
        days = {s: {e.idx for e in plan.events[s]} for s in SPLITS}
        assert not days["train"] & days["valid"] and not days["valid"] & days["test"]
        assert max(days["train"]) < min(days["valid"]) <= max(days["valid"]) < min(days["test"])
        assert sum(len(v) for v in plan.events.values()) == 150  # E = 0: nothing dropped

    def test_holdout_companies_leave_train_only(self) -> None:
        events = [_ev(i, i, 0.01, company=f"C{i % 10}") for i in range(100)]
        plan = self._plan(events, holdout_companies=0.3)
        held = set(plan.holdout)
        assert len(held) == 3
        assert not held & {e.company for e in plan.events["train"]}
        for s in ("valid", "test"):  # kept where the model is evaluated
            assert held & {e.company for e in plan.events[s]}
        n_train_held = sum(1 for e in events if e.idx < 54 and e.company in held)
        assert plan.dropped["holdout_company"] == n_train_held > 0

    def _pairs(self, events, seed: int = 0, **pc: object):
        from filingcontrast.pairs import pair_split

        base = {"max_days_apart": 5, "min_gap": 0.01}
        base.update(pc)
        return pair_split(events, PairsConfig(**base), np.random.default_rng(seed))

    def test_max_days_apart_is_inclusive(self) -> None:
        pairs, _ = self._pairs([_ev(0, 10, 0.0), _ev(1, 15, 0.05)])
        assert len(pairs) == 1  # 5 sessions apart: allowed
        pairs, _ = self._pairs([_ev(0, 10, 0.0), _ev(1, 16, 0.05)])
        assert pairs == []

    def test_ties_are_never_pairs_and_min_gap_is_inclusive(self) -> None:
        pairs, dropped = self._pairs([_ev(0, 1, 0.02), _ev(1, 2, 0.02)], min_gap=0.0)
        assert pairs == [] and dropped["near_tie"] == 1  # no winner on equal returns
        pairs, dropped = self._pairs([_ev(0, 1, 0.5), _ev(1, 2, 0.25)], min_gap=0.25)
        assert len(pairs) == 1 and not dropped  # |gap| == min_gap is kept (only < drops)
        assert pairs[0].winner.accession == "acc-0000" and pairs[0].loser.accession == "acc-0001"
        pairs, dropped = self._pairs([_ev(0, 1, 0.5), _ev(1, 2, 0.26)], min_gap=0.25)
        assert pairs == [] and dropped["near_tie"] == 1

    def test_winner_is_the_higher_return_in_either_order(self) -> None:
        from filingcontrast.pairs import Pair

        lo, hi = _ev(0, 1, -0.03), _ev(1, 1, 0.01)
        for p in (Pair(lo, hi), Pair(hi, lo)):
            assert p.winner is hi and p.loser is lo and p.gap == pytest.approx(0.04)

    @pytest.mark.parametrize("k", [1, 2])
    def test_max_pairs_per_filing_caps_both_sides(self, k: int) -> None:
        events = [_ev(i, 3, 0.1 * i) for i in range(8)]  # 28 candidates, all pairable
        for seed in range(6):
            pairs, dropped = self._pairs(events, seed=seed, max_pairs_per_filing=k)
            used = Counter(e.accession for p in pairs for e in (p.x, p.y))
            assert max(used.values()) <= k, (seed, used)
            assert 8 * k // 2 - 1 <= len(pairs) <= 8 * k // 2
            assert dropped["filing_cap"] == 28 - len(pairs)

    def test_filings_without_ticker_or_cik_are_each_their_own_company(self) -> None:
        a = _ev(0, 1, 0.0, ticker=None, cik=None)
        b = _ev(1, 1, 0.05, ticker=None, cik=None)
        pairs, dropped = self._pairs([a, b])
        assert len(pairs) == 1 and not dropped["same_company"]
        same = [_ev(0, 1, 0.0, company="ACME"), _ev(1, 2, 0.05, company="ACME")]
        pairs, dropped = self._pairs(same)
        assert pairs == [] and dropped["same_company"] == 1

    def test_same_sector_needs_a_known_sector(self) -> None:
        events = [_ev(0, 1, 0.0, sector=None), _ev(1, 1, 0.05, sector=None)]
        pairs, dropped = self._pairs(events, same_sector=True)
        assert pairs == [] and dropped["different_sector"] == 1
        events = [_ev(0, 1, 0.0, sector="tech"), _ev(1, 1, 0.05, sector="tech")]
        assert len(self._pairs(events, same_sector=True)[0]) == 1

    def test_max_pairs_caps_each_split(self) -> None:
        events = [_ev(i, 3, 0.1 * i) for i in range(8)]
        uncapped, _ = self._pairs(events, max_pairs_per_filing=3)
        pairs, dropped = self._pairs(events, max_pairs=3, max_pairs_per_filing=3)
        assert len(pairs) == 3 and dropped["max_pairs"] == len(uncapped) - 3 > 0
        ids = {(p.x.accession, p.y.accession) for p in uncapped}
        assert {(p.x.accession, p.y.accession) for p in pairs} <= ids

    def test_balance_positions_gives_a_exactly_half_rounded_down(self) -> None:
        from filingcontrast.pairs import balance_positions

        for n in range(0, 12):
            flags = balance_positions(n, np.random.default_rng(n))
            assert len(flags) == n and sum(flags) == n // 2

    def test_confidence_thresholds_are_inclusive(self) -> None:
        """z exactly 1.0 is high and exactly 0.5 medium (docs: high for z >= 1.0, ...)."""
        from filingcontrast.pairs import confidence_label

        one = math.sqrt(2.0) * 0.02  # z = one / (sqrt(2) * 0.02) == 1.0 exactly
        assert confidence_label(one, 0.02) == "high"
        assert confidence_label(one * 0.5, 0.02) == "medium"
        assert confidence_label(math.nextafter(one * 0.5, 0.0), 0.02) == "low"

    def test_mad_sigma_is_the_scaled_median_absolute_deviation(self) -> None:
        from filingcontrast.pairs import mad_sigma

        returns = [0.0, 0.01, -0.01, 0.03, 0.02, 0.5]  # median 0.015; deviations' median 0.015
        assert mad_sigma(returns) == pytest.approx(1.4826 * 0.015)
        assert mad_sigma([]) == 0.0

    def test_pair_sigma_is_the_rms_of_the_two_truth_scales(self) -> None:
        from filingcontrast.pairs import Pair, _pair_sigma

        t = {"expected": 0.0, "df": 4.0}
        a = _ev(0, 1, 0.0, truth={**t, "scale": 0.01})
        b = _ev(1, 1, 0.05, truth={**t, "scale": 0.03})
        assert _pair_sigma(Pair(a, b), 0.5) == pytest.approx(math.sqrt(0.0005))
        assert _pair_sigma(Pair(a, _ev(2, 1, 0.0)), 0.5) == 0.5  # one unknown: the MAD fallback

    def test_load_events_drops_nan_returns_and_truth_outside_window_0_1(self) -> None:
        from filingcontrast.pairs import load_events

        days = sessions("2021-03-01", "2021-03-10")

        class FakeStore:
            path = "fake.duckdb"

            def __init__(self, window: str) -> None:
                self.window = window

            def count(self, table: str) -> int:
                return 3

            def query(self, sql: str, params=None):
                rows = []
                for i, ar in enumerate([0.01, float("nan"), -0.02]):
                    rows.append(
                        {"accession": f"a{i}", "day0": days[i], "abnormal_ret": ar,
                         "skip_reason": None, "ticker": f"T{i}", "cik": str(i),
                         "items": ["8.01"], "sector": None, "expected_abnormal_ret": 0.0,
                         "noise_scale": 0.02, "noise_df": 4.0}
                    )  # fmt: skip
                return rows

        events, dropped, n = load_events(FakeStore("0_1"), PairsConfig(window="0_1"))
        assert [e.accession for e in events] == ["a0", "a2"] and n == 3
        assert dropped == Counter({"no_abnormal_ret": 1})
        assert all(e.truth and e.truth["scale"] == 0.02 for e in events)
        events, _, _ = load_events(FakeStore("0_3"), PairsConfig(window="0_3"))
        assert all(e.truth is None for e in events)  # truth is the simulator's 0_1 noise only


class TestLoadPairsRows:
    """Row checks of load_pairs on the asset rows (no build needed)."""

    def _row(self) -> dict:
        return json.loads((ASSETS / "test.jsonl").read_text().splitlines()[0])

    def _load(self, tmp_path: Path, rows: list[dict]) -> list[dict]:
        (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return load_pairs(tmp_path, "test")

    def test_both_orders_of_a_swapped_pair_load(self, tmp_path: Path) -> None:
        row = self._row()
        row["meta"]["swapped"] = False
        other = json.loads(json.dumps(row))
        other["meta"]["swapped"] = True
        assert len(self._load(tmp_path, [row, other])) == 2
        with pytest.raises(UserError, match=r"test\.jsonl:2: field meta\.pair_id: .* repeats"):
            self._load(tmp_path, [row, row])

    def test_truth_df_must_exceed_two_and_gap_may_be_zero(self, tmp_path: Path) -> None:
        row = self._row()
        row["meta"]["a"]["truth"] = {"expected": 0.0, "scale": 0.02, "df": 2}
        with pytest.raises(UserError, match=r"field meta\.a\.truth\.df: must be a number > 2"):
            self._load(tmp_path, [row])
        row["meta"]["a"]["truth"]["df"] = math.inf  # normal noise
        row["meta"]["gap"] = 0.0  # returns within rounding of each other (pairs.min_gap = 0)
        assert len(self._load(tmp_path, [row])) == 1

    def test_swapped_instruction_shows_filing_b_first(self) -> None:
        rows = [json.loads(x) for x in (ASSETS / "train.jsonl").read_text().splitlines()]
        row = next(r for r in rows if r["meta"]["a"]["items"] != r["meta"]["b"]["items"])
        da, db = row["meta"]["a"]["digest"], row["meta"]["b"]["digest"]
        assert row["instruction"].endswith(f"Filing A:\n{da}\n\nFiling B:\n{db}")
        text = swapped_instruction(row)
        assert text.endswith(f"Filing A:\n{db}\n\nFiling B:\n{da}")
        question = row["instruction"].split("\n")[0]
        pa, pb = re.match(
            r"Compare Filing A \((.*)\) and Filing B \((.*)\)\. Which", question
        ).groups()
        assert pa != pb  # the question's parentheticals swap with the digests
        assert (
            text.split("\n")[0] == f"Compare Filing A ({pb}) and Filing B ({pa}). Which is better?"
        )
