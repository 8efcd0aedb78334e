"""End to end on the embedded model: `filingcontrast demo --quick` (what `make demo` runs, small)."""

import json
import os
import subprocess
import sys
import time

EXPECTED_METRICS = {
    "split",
    "n_pairs",
    "accuracy",
    "accuracy_ci",
    "log_loss",
    "brier",
    "ece",
    "swap_consistency",
    "ceiling",
    "oracle_accuracy",
    "by_item",
    "baselines",
    "ranking",
}


def run_demo(cwd):
    start = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "filingcontrast", "demo", "--quick"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out, time.time() - start


def test_quick_demo_end_to_end_and_rerun_reuses_stages(tmp_path):
    out, _ = run_demo(tmp_path)
    run = tmp_path / "runs" / "demo-quick"
    metrics = json.loads((run / "metrics.json").read_text())
    assert EXPECTED_METRICS <= set(metrics)
    assert metrics["n_pairs"] == 8 and 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["ceiling"] is not None and 0.5 < metrics["ceiling"] < 1.0
    assert set(metrics["baselines"]) == {"majority", "signal_rule", "tfidf_logreg", "zero_shot"}
    # The demo's settings: zero-shot on the first pairs only, beside the model on the same ones;
    # training on the pairs with a clear realized gap, said in the log.
    assert metrics["baselines"]["zero_shot"]["n"] == 4
    assert metrics["baselines"]["zero_shot"]["fine_tuned_same_pairs"]["n"] == 4
    assert "min_train_gap 0.08: " in (run / "log.txt").read_text()
    # Calibration fitted on the 8 validation pairs and applied; raw figures kept beside it.
    assert metrics["calibration"]["n_pairs"] == 8
    assert set(metrics["uncalibrated"]) >= {"accuracy", "ece", "swap_consistency"}
    meta = json.loads((run / "adapter" / "filingcontrast.json").read_text())
    assert meta["calibration"] == metrics["calibration"] and meta["digest_tokens"] > 0
    for name in ("config.toml", "log.txt", "metrics.jsonl", "report.html", "predictions.jsonl"):
        assert (run / name).is_file(), name
    assert (run / "adapter" / "adapter_config.json").is_file()
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "Bayes ceiling" in out.stdout and "Report:" in out.stdout

    out2, seconds = run_demo(tmp_path)
    assert out2.stderr.count("up to date") == 5, out2.stderr
    assert seconds < 60
    assert json.loads((run / "metrics.json").read_text()) == metrics
