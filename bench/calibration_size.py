"""Does a calibration fitted on more validation pairs calibrate the test pairs better?

    python bench/calibration_size.py --pairs runs/demo/pairs \
        --valid /tmp/ev/x7/predictions.jsonl --test runs/demo/predictions.jsonl

`--valid` is an `evaluate --split valid evaluate.max_pairs=0` output of the adapter (all
validation pairs, raw per-order probabilities under `raw`), `--test` its test-split output. For
each size N the calibration (`calibration.fit_calibration`: position bias and temperature) is
fitted on the N validation pairs that training would sample (`train.max_valid_pairs=N`, the same
seeded subset), then applied to the test pairs' raw probabilities and to the validation pairs it
did not see. The uncalibrated rows give the AUC and spread of P(A better) on both splits. Size 48 with the demo's adapter reproduces the demo's calibrated test figures.
Prints a table, then one JSON line {"bench": "calibration_size", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from benchargs import int_list, nonneg_int, run
from sklearn.metrics import roc_auc_score

from filingcontrast import metrics as M
from filingcontrast.calibration import Calibration, fit_calibration
from filingcontrast.pairs import load_pairs
from filingcontrast.train import _cap


def load(path: Path) -> dict[str, dict]:
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return {r["pair_id"]: r for r in rows if r["raw"]["p_ab"] is not None}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        sys.exit(f"calibration_size: {path}: not an evaluate predictions.jsonl ({exc})")


def figures(cal: Calibration, rows: list[dict]) -> dict[str, float]:
    ab = np.array([r["raw"]["p_ab"] for r in rows])  # (n,)
    ba = np.array([r["raw"]["p_ba"] for r in rows])  # (n,)
    y = np.array([r["winner"] == "A" for r in rows], dtype=int)
    p_a, c_ab, c_ba = cal.apply(ab, ba)
    return {
        "n": len(rows),
        "accuracy": round(M.accuracy(p_a, y), 3),
        "log_loss": round(M.log_loss(p_a, y), 3),
        "ece": round(M.ece(p_a, y), 3),
        "swap_consistency": round(M.swap_consistency(c_ab, c_ba), 3),
        "auc": round(float(roc_auc_score(y, p_a)), 3),  # the signal, whatever the scale
        "sd": round(float(np.std(p_a)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, required=True, help="the run's pairs directory")
    ap.add_argument("--valid", type=Path, required=True, help="predictions.jsonl, valid split")
    ap.add_argument("--test", type=Path, required=True, help="predictions.jsonl, test split")
    ap.add_argument("--sizes", type=int_list(0), default="48,96,144,0",
                    help="validation pairs (0 = all)")  # fmt: skip
    ap.add_argument("--seed", type=nonneg_int, default=0, help="the run's seed (picks the subset)")
    args = ap.parse_args()
    valid, test = load(args.valid), list(load(args.test).values())
    pairs = load_pairs(args.pairs, "valid")  # missing or bad file: one line (benchargs.run)
    order = [str(r["meta"]["pair_id"]) for r in pairs]
    missing = [p for p in order if p not in valid]
    if missing:
        sys.exit(f"calibration_size: {args.valid}: lacks {len(missing)} of the pairs' valid split")
    uncalibrated = {
        "test": figures(Calibration(), test),
        "valid_all": figures(Calibration(), list(valid.values())),
    }
    results = [{"fitted_on": 0, "calibration": None, **uncalibrated}]
    for size in args.sizes:
        chosen = {str(r["meta"]["pair_id"]) for r in _cap(pairs, size, args.seed)}
        fit_rows = [valid[p] for p in order if p in chosen]
        cal = fit_calibration([r["raw"]["p_ab"] for r in fit_rows],
                              [r["raw"]["p_ba"] for r in fit_rows],
                              [r["winner"] for r in fit_rows])  # fmt: skip
        rest = [valid[p] for p in order if p not in chosen]
        results.append({
            "fitted_on": len(fit_rows),
            "calibration": {"temperature": round(cal.temperature, 3), "bias": round(cal.bias, 3)},
            "test": figures(cal, test),
            "valid_rest": figures(cal, rest) if rest else None,
        })  # fmt: skip
    print("fitted on | T     | bias  | test acc | log-loss | ECE   | swap  | rest ECE")
    for r in results:
        c, t, rest = r["calibration"] or {}, r["test"], r.get("valid_rest") or {}
        print(f"{r['fitted_on'] or 'none':>9} | {c.get('temperature', 1):<5} | "
              f"{c.get('bias', 0):<5} | {t['accuracy']:<8} | {t['log_loss']:<8} | {t['ece']:<5} | "
              f"{t['swap_consistency']:<5} | {rest.get('ece', '-')}")  # fmt: skip
    for split, f in uncalibrated.items():
        print(
            f"uncalibrated, {split}: AUC {f['auc']}, s.d. of P(A better) {f['sd']}, "
            f"log-loss {f['log_loss']} ({f['n']} pairs)"
        )
    print(json.dumps({"bench": "calibration_size", "results": results}))


if __name__ == "__main__":
    run(main, "calibration_size")
