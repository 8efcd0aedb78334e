"""Tiny pairs rows in the contract format, shared by test_dataset.py and test_train.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

GOOD = ["earnings beat consensus", "guidance raised", "record revenue", "buyback announced"]
BAD = ["earnings missed consensus", "guidance cut", "CEO resigned", "convertible notes offering"]


def instruction(digest_a: str, digest_b: str) -> str:
    """pairs.render_instruction when H-pairs' module is there, else the same shape by hand."""
    try:
        from filingcontrast.pairs import render_instruction
    except ImportError:
        return (
            "Compare Filing A (8-K) and Filing B (8-K). Which is better?"
            f"\n\nFiling A:\n{digest_a}\n\nFiling B:\n{digest_b}"
        )
    return render_instruction(digest_a, digest_b)


def digest(item: str, text: str) -> str:
    return f"Items: {item}\n{text}"


def make_row(i: int, winner: str, text_a: str, text_b: str, items=("2.02", "8.01")) -> dict:
    digest_a, digest_b = digest(items[0], text_a), digest(items[1], text_b)
    analysis = "Filing A shows stronger signals." if winner == "A" else "Filing B is stronger."
    return {
        "instruction": instruction(digest_a, digest_b),
        "input": "",
        "output": f"Filing {winner} resulted in better performance. Confidence: high. "
        f"Analysis: {analysis}",
        "meta": {
            "pair_id": f"p{i}",
            "split": "train",
            "winner": winner,
            "gap": 0.03,
            "window": "0_1",
            "confidence": "high",
            "a": {
                "accession": f"a{i}",
                "day0": "2021-05-04",
                "items": [items[0]],
                "abnormal_ret": 0.02 if winner == "A" else -0.01,
                "digest": digest_a,
            },
            "b": {
                "accession": f"b{i}",
                "day0": "2021-05-05",
                "items": [items[1]],
                "abnormal_ret": 0.02 if winner == "B" else -0.01,
                "digest": digest_b,
            },
        },
    }


def toy_rows(n: int, seed: int = 0, filler: int = 0) -> list[dict]:
    """Learnable toy pairs: the filing with a good phrase wins; `filler` words pad the digests."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        good, bad = rng.choice(GOOD), rng.choice(BAD)
        pad = " ".join(rng.choice(["company", "filed", "report", "item"]) for _ in range(filler))
        pad = f" {pad}" if pad else ""
        items = rng.choice([("2.02", "8.01"), ("5.02", "2.02"), ("7.01", "7.01")])
        if rng.random() < 0.5:
            rows.append(make_row(i, "A", good + pad, bad + pad, items))
        else:
            rows.append(make_row(i, "B", bad + pad, good + pad, items))
    return rows


def write_pairs(directory: Path, train: list[dict], valid: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("valid", valid), ("test", valid)):
        (directory / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory
