"""Speed of `filingcontrast simulate`: generation, store writes and the event study.

    python bench/simulate_speed.py [--filings 10000] [--preset realistic] [--seed 0]

Prints a human table, then one JSON line
{"bench": "simulate_speed", "filings": ..., "seconds": ..., "filings_per_s": ...}.
The target (issue #3) is 10,000 filings in <= 30 s end to end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchargs import nonneg_int, positive_int, run

from filingcontrast.config import load_config
from filingcontrast.corpus.simulate import simulate_to_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filings", type=positive_int, default=10000)
    ap.add_argument("--preset", default="realistic", choices=["demo", "realistic"])
    ap.add_argument("--seed", type=nonneg_int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.duckdb"
        cfg = load_config(
            None,
            [
                f'store="{store}"',
                f"seed={args.seed}",
                f"simulate.filings={args.filings}",
                f'simulate.preset="{args.preset}"',
            ],
        )
        t0 = time.perf_counter()
        summary = simulate_to_store(cfg)
        total = time.perf_counter() - t0
    sec = summary["seconds"]
    events_s = summary["events"].get("seconds") if isinstance(summary["events"], dict) else None
    rows = [
        ("generate (companies, text, prices)", sec["generate"]),
        ("write store", sec["write"]),
        ("event study (events.py)", events_s if events_s is not None else float("nan")),
        ("total", round(total, 2)),
    ]
    print(f"simulate: {args.filings} filings, preset {args.preset}, seed {args.seed}")
    print(f"{'stage':<38}{'seconds':>10}")
    for name, s in rows:
        print(f"{name:<38}{s:>10.2f}")
    print(
        f"documents {summary['documents']}, price rows {summary['price_rows']}, "
        f"companies {summary['companies']}"
    )
    print(
        json.dumps(
            {
                "bench": "simulate_speed",
                "filings": args.filings,
                "preset": args.preset,
                "seconds": round(total, 2),
                "filings_per_s": round(args.filings / total, 1),
                "generate_s": sec["generate"],
                "write_s": sec["write"],
                "events_s": events_s,
                "target_s": 30,
            }
        )
    )


if __name__ == "__main__":
    run(main, "simulate_speed")
