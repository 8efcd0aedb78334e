"""Smoke runs of the diagnostic scripts under bench/ on the tiny model and the test pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_decision_probe_runs_and_reports_every_layer():
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "decision_probe.py"), "--base", "tiny-llama",
         "--pairs", str(REPO / "tests" / "assets" / "pairs"), "--train", "8", "--test", "4",
         "--layers", "1,2"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "decision_probe" and result["train_pairs"] == 8
    assert set(result["layers"]) == {"1", "2"}
    for probes in result["layers"].values():
        assert set(probes) == {"decision", "pooled"}
        assert all(0.0 <= acc <= 1.0 for acc in probes.values())


def test_label_noise_counts_every_pair_once_per_table():
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "label_noise.py"),
         "--pairs", str(REPO / "tests" / "assets" / "pairs")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert sum(b["pairs"] for b in result["buckets"].values()) == result["pairs"]
    assert result["min_gap"]["0"]["pairs"] == result["pairs"]


def test_paired_accuracy_counts_discordant_pairs(tmp_path):
    def write(name, p_as):
        recs = [{"pair_id": str(i), "winner": "A", "p_a": p, "raw": {"p_a": p}}
                for i, p in enumerate(p_as)]  # fmt: skip
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in recs))
        return str(tmp_path / name)

    first, second = write("a.jsonl", [0.6, 0.4, 0.4, 0.6]), write("b.jsonl", [0.6, 0.6, 0.6, 0.4])
    script = str(REPO / "bench" / "paired_accuracy.py")
    out = subprocess.run([sys.executable, script, first, second], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["only_first_right"], result["only_second_right"]) == (1, 2)
    assert result["accuracy"] == [0.5, 0.75] and 0 < result["mcnemar_p"] <= 1
    other = write("c.jsonl", [0.6])
    bad = subprocess.run([sys.executable, script, first, other], capture_output=True, text=True)
    assert bad.returncode != 0 and "score different pairs" in bad.stderr
