"""Parser accuracy and speed on the shared edgar-8k reference set.

Usage: python bench/parse_speed.py [DATA_DIR] [--misses]
Prints a human table of misses, then one final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchargs import run

from filingcontrast.corpus.parse import measure_reference

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edgar-8k"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT,
                    help="reference set: index.jsonl and filings/ (default: %(default)s)")  # fmt: skip
    ap.add_argument("--misses", action="store_true", help="print the parser warnings of misses")
    args = ap.parse_args(argv)
    if not (args.data_dir / "index.jsonl").is_file():
        sys.exit(f"parse_speed: {args.data_dir / 'index.jsonl'}: not found (DATA_DIR must hold "
                 "the reference set's index.jsonl and filings/)")  # fmt: skip
    res = measure_reference(args.data_dir)
    show = args.misses
    print(f"{'file':<48} {'reference':<28} parsed")
    for miss in res["misses"]:
        print(
            f"{miss['filename']:<48} {','.join(miss['reference']):<28} {','.join(miss['parsed'])}"
        )
        if show:
            for w in miss.get("warnings", []):
                print(f"    warning: {w}")
    print(
        f"item-set exact match {res['n_match']}/{res['n_filings']} = {res['item_set_accuracy']:.4f};"
        f" mean section Jaccard {res['mean_section_jaccard']:.3f};"
        f" parse time {res['seconds']:.1f} s ({res['filings_per_s']:.1f} filings/s)"
    )
    out = {"bench": "parse_8k", **{k: v for k, v in res.items() if k != "misses"}}
    out["n_misses"] = len(res["misses"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    run(lambda: main(sys.argv[1:]), "parse_speed")
