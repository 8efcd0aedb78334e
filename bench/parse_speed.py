"""Parser accuracy and speed on the shared edgar-8k reference set.

Usage: python bench/parse_speed.py [DATA_DIR] [--misses]
Prints a human table of misses, then one final JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from filingcontrast.corpus.parse import measure_reference

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edgar-8k"


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    data_dir = Path(args[0]) if args else DEFAULT
    res = measure_reference(data_dir)
    show = "--misses" in argv
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
    raise SystemExit(main(sys.argv[1:]))
