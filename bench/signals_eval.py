"""Precision and recall of signals.extract_signals against the simulated market's truth.

    python bench/signals_eval.py [--filings 600] [--preset realistic] [--seed 7] [--show-errors 5]
    python bench/signals_eval.py --real [--examples 40]   # spot-check on ../shared/data/edgar-8k

Prints a per-signal-type table, then one JSON line {"bench": "signals_eval", ...}.
`--real` runs the extractor over the real 8-Ks (no labels: counts per signal and examples).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from benchargs import nonneg_int, positive_int, run

from filingcontrast.config import SimulateConfig
from filingcontrast.corpus.simulate import simulate_market, truth_labels
from filingcontrast.signals import extract_signals


def evaluate(filings: int, preset: str, seed: int, show_errors: int = 0) -> dict[str, Any]:
    """Per signal type (label prefix): true positives, false positives, false negatives."""
    market = simulate_market(SimulateConfig(filings=filings, preset=preset), seed)
    docs = market.documents.sort_values(
        ["accession", "kind", "name"], ascending=[True, False, True]
    )
    text = docs.groupby("accession")["text"].apply(lambda t: "\n\n".join(t)).to_dict()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    shown = 0
    for row in market.truth.itertuples():
        truth = truth_labels(json.loads(row.drivers))
        got = extract_signals(text[row.accession]).labels()
        for lab in truth | got:
            t = lab.split(":")[0]
            key = "tp" if lab in truth and lab in got else ("fn" if lab in truth else "fp")
            counts[t][key] += 1
        if truth != got and shown < show_errors:
            shown += 1
            print(f"--- {row.accession} truth={sorted(truth)} got={sorted(got)}")
    table = {}
    for t, c in sorted(counts.items()):
        p = c["tp"] / max(c["tp"] + c["fp"], 1)
        r = c["tp"] / max(c["tp"] + c["fn"], 1)
        table[t] = {**c, "precision": round(p, 3), "recall": round(r, 3)}
    return table


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edgar-8k"


def real_spot_check(examples: int) -> None:
    """Counts per signal type on the real filings, and the facts found in a few of them."""
    from filingcontrast.corpus.parse import parse_8k_file
    from filingcontrast.errors import UserError

    rows = [json.loads(x) for x in (SHARED / "index.jsonl").read_text().splitlines()]
    counts: Counter[str] = Counter()
    shown = 0
    with_signal = errors = 0
    for r in rows:
        try:
            text = parse_8k_file(SHARED / "filings" / r["filename"]).text
        except UserError:
            errors += 1
            continue
        sig = extract_signals(text)
        labels = sig.labels()
        with_signal += bool(labels)
        counts.update(lab.split(":")[0] for lab in labels)
        if labels and shown < examples:
            shown += 1
            print(f"{r['filename']:<48} {','.join(r['items']):<22} {'; '.join(sig.facts())}")
    print(f"\n{len(rows)} filings, {errors} unparsable, {with_signal} with at least one signal")
    for t, n in counts.most_common():
        print(f"  {t:<14}{n:>5}")
    print(json.dumps({"bench": "signals_real", "filings": len(rows), "with_signal": with_signal,
                      "counts": dict(counts)}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filings", type=positive_int, default=600)
    ap.add_argument("--preset", default="realistic", choices=["demo", "realistic"])
    ap.add_argument("--seed", type=nonneg_int, default=7)
    ap.add_argument("--show-errors", type=nonneg_int, default=0)
    ap.add_argument("--real", action="store_true", help="spot-check on the real edgar-8k files")
    ap.add_argument("--examples", type=nonneg_int, default=40)
    args = ap.parse_args()
    if args.real:
        if not (SHARED / "index.jsonl").is_file():
            raise SystemExit(f"signals_eval: {SHARED / 'index.jsonl'}: not found (--real needs "
                             "the shared edgar-8k reference set)")  # fmt: skip
        real_spot_check(args.examples)
        return
    table = evaluate(args.filings, args.preset, args.seed, args.show_errors)
    print(f"{'signal':<14}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>8}")
    for t, c in table.items():
        print(
            f"{t:<14}{c['tp']:>6}{c['fp']:>6}{c['fn']:>6}{c['precision']:>11.3f}{c['recall']:>8.3f}"
        )
    print(
        json.dumps(
            {
                "bench": "signals_eval",
                "preset": args.preset,
                "filings": args.filings,
                "seed": args.seed,
                "min_precision": min((c["precision"] for c in table.values()), default=None),
                "min_recall": min((c["recall"] for c in table.values()), default=None),
                "by_type": table,
            }
        )
    )


if __name__ == "__main__":
    run(main, "signals_eval")
