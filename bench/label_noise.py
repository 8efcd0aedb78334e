"""How noisy are a simulated market's pair labels? Agreement of the realized winner with the
filing of higher *expected* abnormal return (simulator truth in `meta.*.truth`), by gap.

    python bench/label_noise.py --pairs runs/demo/pairs [--split train]

The labels of real pairs are realized winners too; this shows (on simulated data, where the
truth is known) how much of that label is chance as the realized gap shrinks, which is what
`train.min_train_gap` acts on. Prints a table and one final JSON line {"bench": "label_noise"}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchargs import run

from filingcontrast.pairs import load_pairs

BUCKETS = (0.0, 0.02, 0.04, 0.08)
THRESHOLDS = (0.0, 0.05, 0.08, 0.12)


def agrees(row: dict) -> bool:
    """The realized winner is the side with the higher expected return."""
    a, b = row["meta"]["a"]["truth"]["expected"], row["meta"]["b"]["truth"]["expected"]
    return (a > b) == (row["meta"]["winner"] == "A")


def share(rows: list[dict]) -> float | None:
    return sum(agrees(r) for r in rows) / len(rows) if rows else None


def _simulated(row: dict) -> bool:
    """A simulated pair: both sides carry the simulator's expected return, and a gap."""
    meta = row.get("meta") or {}
    sides = [meta.get(s) for s in ("a", "b")]
    return isinstance(meta.get("gap"), (int, float)) and all(
        isinstance(s, dict) and isinstance((s.get("truth") or {}).get("expected"), (int, float))
        for s in sides
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--pairs", type=Path, default=Path("runs/demo/pairs"), help="pairs directory")
    ap.add_argument("--split", default="train", choices=["train", "valid", "test"])
    args = ap.parse_args()
    if args.pairs.is_file():
        sys.exit(f"label_noise: --pairs {args.pairs}: a file; pass the pairs directory")
    rows = load_pairs(args.pairs, args.split)  # a bad file: one line (benchargs.run)
    if not rows or not all(_simulated(r) for r in rows):
        sys.exit(f"label_noise: {args.pairs}/{args.split}.jsonl: needs simulated pairs "
                 "(meta.a.truth / meta.b.truth on every row)")  # fmt: skip
    edges = [*BUCKETS, float("inf")]
    buckets = {}
    print(f"{'gap':>12} {'pairs':>6} {'agree':>6}")
    for lo, hi in zip(edges, edges[1:], strict=False):
        sel = [r for r in rows if lo <= r["meta"]["gap"] < hi]
        buckets[f"{lo:g}-{hi:g}"] = {"pairs": len(sel), "agree": share(sel)}
        print(f"{lo:>5.2f}-{hi:<6.2f} {len(sel):>6} {share(sel) or 0:>6.3f}")
    thresholds = {}
    for t in THRESHOLDS:
        sel = [r for r in rows if r["meta"]["gap"] >= t]
        thresholds[f"{t:g}"] = {"pairs": len(sel), "agree": share(sel)}
        print(f"  gap >= {t:<5g} {len(sel):>6} {share(sel) or 0:>6.3f}")
    print(json.dumps({"bench": "label_noise", "split": args.split, "pairs": len(rows),
                      "buckets": buckets, "min_gap": thresholds}))  # fmt: skip


if __name__ == "__main__":
    run(main, "label_noise")
