"""How fast does the trainer learn the decision token? lr 2e-4 vs 1e-3 on learnable toy pairs.

    python bench/lr_probe.py [--train 48] [--valid 24] [--lrs 2e-4,1e-3]

Toy pairs (tests/train_rows.py): the filing whose digest holds a good phrase ("guidance raised")
wins. One epoch per lr on the embedded model; prints valid accuracy (both orders) and valid loss
after the epoch, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchargs import lr_list, nonneg_int, positive_int, run  # noqa: E402

from filingcontrast.config import load_config  # noqa: E402
from filingcontrast.train import train  # noqa: E402
from tests.train_rows import toy_rows, write_pairs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=positive_int, default=48)
    ap.add_argument("--valid", type=positive_int, default=24)
    ap.add_argument("--filler", type=nonneg_int, default=20, help="filler words per digest")
    ap.add_argument("--lrs", type=lr_list, default="2e-4,1e-3")
    ap.add_argument("--base", default="smollm2-135m-instruct")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs = write_pairs(
            Path(tmp) / "pairs",
            toy_rows(args.train, 0, args.filler),
            toy_rows(args.valid, 1, args.filler),
        )
        for lr in args.lrs:
            cfg = load_config(None, [f'base="{args.base}"', f'name="lr{lr}"',
                                     f'runs_dir="{tmp}/runs"', "train.epochs=1",
                                     f"train.lr={lr!r}", "train.save_every=0"])  # fmt: skip
            t0 = time.perf_counter()
            summary = train(cfg, pairs)
            ev = summary["evals"][-1]
            results.append({"lr": lr, "valid_accuracy": ev["valid_accuracy"],
                            "valid_loss": ev["valid_loss"], "steps": summary["steps"],
                            "first_loss": summary["losses"][0], "last_loss": summary["losses"][-1],
                            "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    print(
        f"{'lr':>8} {'steps':>5} {'first loss':>10} {'last loss':>9} {'valid loss':>10} {'valid acc':>9}"
    )
    for r in results:
        print(f"{r['lr']:>8.0e} {r['steps']:>5} {r['first_loss']:>10.3f} {r['last_loss']:>9.3f} "
              f"{r['valid_loss']:>10.3f} {r['valid_accuracy']:>9.3f}")  # fmt: skip
    print(json.dumps({"bench": "lr_probe", "rows": results}))


if __name__ == "__main__":
    run(main, "lr_probe")
