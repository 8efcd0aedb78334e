"""Two runs' verdicts on the same pairs: accuracies, discordant pairs and McNemar's exact test.

    python bench/paired_accuracy.py runs/A/predictions.jsonl runs/B/predictions.jsonl

Both files are `evaluate` outputs on the same split; pairs are matched by `pair_id` (a pair in
one file only is an error). With few pairs two runs' intervals overlap even when one is better
on most pairs where they disagree; the paired test uses exactly those pairs. Prints one JSON line
{"bench": "paired_accuracy", ...}; `raw_sd` is the spread of the uncalibrated P(A better).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from filingcontrast.metrics import correctness, paired_comparison


def load(path: Path) -> dict[str, dict]:
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return {r["pair_id"]: r for r in rows}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        sys.exit(f"paired_accuracy: {path}: not an evaluate predictions.jsonl ({exc})")


def credit(rec: dict) -> float:
    """1 right, 0 wrong, 0.5 for P(A) == 0.5 (as evaluate's accuracy counts it)."""
    return float(correctness([rec["p_a"]], [rec["winner"] == "A"])[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    args = ap.parse_args()
    a, b = load(args.first), load(args.second)
    if set(a) != set(b):
        sys.exit(f"paired_accuracy: {args.first} and {args.second} score different pairs "
                 f"({len(set(a) ^ set(b))} differ)")  # fmt: skip
    keys = sorted(a)
    first, second = [credit(a[k]) for k in keys], [credit(b[k]) for k in keys]
    result = {
        "bench": "paired_accuracy",
        "pairs": len(a),
        "accuracy": [sum(first) / len(a), sum(second) / len(b)],
        **paired_comparison(first, second),
        "raw_sd": [statistics.pstdev(r["raw"]["p_a"] for r in d.values()) for d in (a, b)],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
