"""signals.extract_signals: hand-written sentences, simulated ground truth, real filings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from filingcontrast.config import SimulateConfig
from filingcontrast.corpus.simulate import simulate_market, truth_labels
from filingcontrast.signals import extract_signals, parse_money, signal_score

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edgar-8k"


@pytest.mark.parametrize(
    "text,value",
    [("$1.2 billion", 1200.0), ("$1,200 million", 1200.0), ("$1.2bn", 1200.0),
     ("$450,000,000", 450.0), ("$25m", 25.0), ("$735,000", 0.735)],
)  # fmt: skip
def test_money_formats(text, value):
    assert parse_money(text) == pytest.approx(value)


def test_eps_beat_and_miss_with_negation_and_losses():
    s = extract_signals(
        "Adjusted EPS of $1.32 per diluted share beat the FactSet consensus of $1.20."
    )
    assert (s.eps_actual, s.eps_reference, s.eps_surprise_pct) == (1.32, 1.20, 10.0)
    assert "EPS $1.32 beat consensus $1.20 by 10.0%" in s.facts()
    s = extract_signals(
        "The Company reported a net loss per share of $0.12, which did not meet the consensus "
        "estimate of a loss of $0.08."
    )
    assert s.eps_actual == -0.12 and s.eps_reference == -0.08 and "eps:miss" in s.labels()
    assert signal_score(s) < 0


def test_guidance_read_from_numbers_not_verbs():
    s = extract_signals(
        "The Company now expects full-year 2023 revenue of $1.10 billion to $1.15 billion, "
        "compared with its previous outlook of $1.20 billion to $1.25 billion."
    )
    assert s.guidance == "lowered"
    s = extract_signals("The Company reaffirmed its fiscal 2023 outlook of $400 to $420 million.")
    assert s.guidance == "reaffirmed"
    assert extract_signals("The Company did not raise its outlook.").guidance is None


def test_departures_kind_and_role():
    s = extract_signals(
        "On May 2, 2023, Jane Roe notified the Company of her resignation as Chief Financial "
        "Officer, effective immediately."
    )
    assert [(d.role, d.kind) for d in s.departures] == [("CFO", "resignation")]
    s = extract_signals(
        "John Doe informed the Board of his decision to retire as President and Chief Executive "
        "Officer. The Board named Ann Lee as his successor."
    )
    assert [(d.role, d.kind, d.successor) for d in s.departures] == [("CEO", "retirement", True)]


def test_boilerplate_and_headings_do_not_fire():
    text = (
        "Item 3.01 Notice of Delisting or Failure to Satisfy a Continued Listing Rule or "
        "Standard; Transfer of Listing.\n\nForward-Looking Statements\nThese forward-looking "
        "statements involve risks and uncertainties, including restructuring charges, "
        "impairment charges we may record and bankruptcy of customers.\n"
    )
    assert extract_signals(text).labels() == set()


def test_other_signals():
    s = extract_signals(
        "The Board authorized a new share repurchase program of up to $500 million. The Board "
        "declared a quarterly dividend of $0.30 per share, a decrease from $0.45. On March 1, "
        "the Company filed voluntary petitions for relief under Chapter 11 of the Bankruptcy "
        "Code. The Audit Committee concluded that the financial statements should no longer "
        "be relied upon."
    )
    assert {"buyback", "dividend:cut", "bankruptcy", "restatement"} <= s.labels()
    assert s.buyback_amount == 500.0


def test_precision_recall_on_simulated_realistic_filings():
    """Per signal type, precision and recall >= 0.95 against the simulator's drivers."""
    market = simulate_market(SimulateConfig(filings=400, preset="realistic"), 99)
    docs = market.documents.sort_values(["accession", "kind"], ascending=[True, False])
    text = docs.groupby("accession")["text"].apply("\n\n".join).to_dict()
    tp, fp, fn = Counter(), Counter(), Counter()
    for row in market.truth.itertuples():
        truth = truth_labels(json.loads(row.drivers))
        got = extract_signals(text[row.accession]).labels()
        for lab in truth & got:
            tp[lab.split(":")[0]] += 1
        for lab in got - truth:
            fp[lab.split(":")[0]] += 1
        for lab in truth - got:
            fn[lab.split(":")[0]] += 1
    types = set(tp) | set(fp) | set(fn)
    assert len(types) >= 12
    for t in types:
        assert tp[t] / max(tp[t] + fp[t], 1) >= 0.95, t
        assert tp[t] / max(tp[t] + fn[t], 1) >= 0.95, t


def test_real_filings_spot_check():
    if not SHARED.exists():
        pytest.skip("shared edgar-8k data not present")
    parse = pytest.importorskip("filingcontrast.corpus.parse")
    rows = [json.loads(x) for x in (SHARED / "index.jsonl").read_text().splitlines()]
    by_name = {r["filename"]: r for r in rows}
    # SanDisk's 1.5% Convertible Senior Notes due 2017, $1.15 billion.
    name = "1000180_8K_2010_0000950123-10-080629.htm"
    assert name in by_name
    s = extract_signals(parse.parse_8k_file(SHARED / "filings" / name).text)
    assert s.convertible and s.convertible_amount == pytest.approx(1150.0)
    found = Counter()
    for r in rows[:120]:
        try:
            text = parse.parse_8k_file(SHARED / "filings" / r["filename"]).text
        except Exception:  # noqa: BLE001 - the parser's problem, not this test's
            continue
        for lab in extract_signals(text).labels():
            found[lab.split(":")[0]] += 1
    assert found["departure"] >= 3 and found["dividend"] >= 3
