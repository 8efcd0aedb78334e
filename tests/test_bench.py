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
