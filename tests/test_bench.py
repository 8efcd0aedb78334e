"""Smoke runs of the diagnostic scripts under bench/ on the tiny model and the test pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
    assert result["adapter"] is None and 0.0 <= result["own"] <= 1.0


def test_decision_probe_reads_an_adapters_hidden_states(tmp_path):
    from tests.test_evaluate import make_adapter

    adapter = make_adapter(tmp_path / "run")
    args = ["--pairs", str(REPO / "tests" / "assets" / "pairs"), "--train", "8", "--test", "4",
            "--layers", "2"]  # fmt: skip
    results = []
    for extra in ([], ["--adapter", str(adapter)]):
        out = subprocess.run(
            [sys.executable, str(REPO / "bench" / "decision_probe.py"), "--base", "tiny-llama",
             *args, *extra],
            capture_output=True, text=True, cwd=REPO, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base, tuned = results
    assert tuned["adapter"] == str(adapter) and 0.0 <= tuned["own_bias"] <= 1.0
    # the adapter's non-zero LoRA B changes what the model computes (not the base again)
    assert abs(tuned["own_mean_logit_diff"] - base["own_mean_logit_diff"]) > 1e-4


def test_compare_throughput_scores_real_pairs_in_both_orders():
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "compare_throughput.py"), "--base", "tiny-llama",
         "--pairs-dir", "tests/assets/pairs", "--split", "valid", "--pairs", "3",
         "--naive-pairs", "1", "--repeats", "1", "--gen-tokens", "2"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["prompts"] == "tests/assets/pairs" and result["pairs"] == 3
    # the assets' digests differ in length: a mean between the shortest and longest prompt
    lengths = out.stdout.split("tokens per prompt (")[1].split(";")[0].split("-")
    assert int(lengths[0]) < result["tokens_per_prompt"] < int(lengths[1])
    assert 0 < result["ratio_to_flop_limit"] and result["ours_pairs_per_s"] > 0
    # The shared prefix runs once: the executed share of the limit is the full one scaled by
    # the executed FLOPs (2 x params x tokens + causal attention, prefix counted once).
    shared, n = result["shared_prefix_tokens"], 6
    assert shared >= 8  # the tiny model's attention is small: weights dominate the ratio
    ours, noshare = result["rows"][0], result["rows"][1]
    assert noshare["ratio_to_limit_executed"] == pytest.approx(noshare["ratio_to_limit"])
    full_tokens = result["tokens_per_prompt"] * n
    share = (full_tokens - (n - 1) * shared) / full_tokens
    assert ours["ratio_to_limit_executed"] < ours["ratio_to_limit"]
    assert ours["ratio_to_limit_executed"] == pytest.approx(
        ours["ratio_to_limit"] * share, rel=0.05
    )


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
    # A coin flip (0.5) earns half credit, as evaluate counts it, and is never discordant.
    flip, right = write("d.jsonl", [0.5, 0.6]), write("e.jsonl", [0.6, 0.6])
    out = subprocess.run([sys.executable, script, flip, right], capture_output=True, text=True)
    result = json.loads(out.stdout)
    assert result["accuracy"] == [0.75, 1.0] and result["coin_flip_pairs"] == 1
    assert (result["only_first_right"], result["only_second_right"]) == (0, 0)
    other = write("c.jsonl", [0.6])
    bad = subprocess.run([sys.executable, script, first, other], capture_output=True, text=True)
    assert bad.returncode != 0 and "score different pairs" in bad.stderr


def test_calibration_size_fits_on_the_training_subset(tmp_path):
    rng = np.random.default_rng(0)
    assets = (REPO / "tests" / "assets" / "pairs" / "valid.jsonl").read_text().splitlines()
    by_winner = {r["meta"]["winner"]: r for r in map(json.loads, assets)}
    pairs, valid, test = tmp_path / "pairs", [], []
    pairs.mkdir()
    rows = []
    for i in range(40):
        winner = "A" if i % 2 else "B"
        row = by_winner[winner]
        rows.append({**row, "meta": {**row["meta"], "pair_id": f"v{i}"}})
        for out, pid in ((valid, f"v{i}"), (test, f"t{i}")):
            signal = 0.1 if winner == "A" else -0.1  # a weak signal under a strong "A" bias
            ab, ba = 0.7 + signal + rng.normal(0, 0.05), 0.7 - signal + rng.normal(0, 0.05)
            out.append({"pair_id": pid, "winner": winner, "p_a": 0.5,
                        "raw": {"p_a": (ab + 1 - ba) / 2, "p_ab": ab, "p_ba": ba}})  # fmt: skip
    (pairs / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, recs in (("valid.jsonl", valid), ("test.jsonl", test)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in recs))
    script = str(REPO / "bench" / "calibration_size.py")
    args = [sys.executable, script, "--pairs", str(pairs), "--valid", str(tmp_path / "valid.jsonl"),
            "--test", str(tmp_path / "test.jsonl"), "--sizes", "16,0"]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.splitlines()[-1])["results"]
    assert [r["fitted_on"] for r in results] == [0, 16, 40]
    none, *fitted = results
    assert none["test"]["swap_consistency"] < 0.2  # "A" in both orders, nearly every pair
    for r in fitted:  # removing the position bias makes the orders agree
        assert r["calibration"]["bias"] > 0.5 and r["test"]["swap_consistency"] > 0.9
    assert fitted[0]["valid_rest"]["n"] == 24 and fitted[1]["valid_rest"] is None
    (tmp_path / "valid.jsonl").write_text(json.dumps(valid[0]) + "\n")
    bad = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode != 0 and "lacks 39 of the pairs' valid split" in bad.stderr
    (pairs / "valid.jsonl").unlink()  # was an identity calibration for every size, exit 0
    missing = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert missing.returncode == 1 and "valid.jsonl: not found" in missing.stderr


BAD_ARGS = [
    # (script, arguments, exit code, what the one-line error says)
    ("decision_probe.py", ["--train", "0"], 2, "--train: must be >= 1"),
    ("decision_probe.py", ["--layers", "4,x"], 2, "--layers: expected an integer"),
    ("decision_probe.py", ["--pairs", "/nonexistent"], 1, "/nonexistent/train.jsonl: not found"),
    ("decision_probe.py", ["--base", "tiny-llama", "--pairs", "tests/assets/pairs", "--layers",
                           "1,99"], 1, "--layers 99: tiny-llama has hidden states 0-2"),
    ("decision_probe.py", ["--base", "/nonexistent", "--pairs", "tests/assets/pairs"], 1,
     "/nonexistent: base model directory not found"),
    ("compare_throughput.py", ["--naive-pairs", "0"], 2, "--naive-pairs: must be >= 1"),
    ("compare_throughput.py", ["--pairs-dir", "tests/assets/pairs", "--pairs", "5"], 1,
     "--pairs 5: tests/assets/pairs has only 4 test pairs"),
    ("lr_probe.py", ["--lrs", "1e-3,abc"], 2, "--lrs: expected numbers"),
    ("train_throughput.py", ["--settings", "400x5"], 2, "choose from 400x4,2048x1"),
    ("train_options.py", ["--steps", "-1"], 2, "--steps: must be >= 1"),
    ("simulate_speed.py", ["--filings", "0"], 2, "--filings: must be >= 1"),
    ("calibration_size.py", ["--pairs", "p", "--valid", "v", "--test", "t", "--sizes", "48,x"], 2,
     "--sizes: expected an integer"),
    ("label_noise.py", ["--pairs", "tests/assets/pairs/train.jsonl"], 1,
     "a file; pass the pairs directory"),
    ("parse_speed.py", ["/nonexistent"], 1, "/nonexistent/index.jsonl: not found"),
    ("parse_speed.py", ["--bogus"], 2, "unrecognized arguments: --bogus"),
    ("gpu_check.py", ["--answer", "4096"], 2, "--answer 4096 must be below --seq 2048"),
    ("render_report.sh", ["/nonexistent/report.html"], 1, "/nonexistent/report.html: not a file"),
]  # fmt: skip


def test_bad_arguments_are_one_line_errors_not_tracebacks():
    for script, args, code, message in BAD_ARGS:
        runner = ["bash"] if script.endswith(".sh") else [sys.executable]
        out = subprocess.run([*runner, str(REPO / "bench" / script), *args], cwd=REPO,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == code, (script, args, out.stderr[-2000:])
        assert message in out.stderr and "Traceback" not in out.stderr, (script, out.stderr)
        assert not out.stdout, (script, out.stdout[:500])  # nothing ran


def test_help_describes_instead_of_running():
    for script in ("parse_speed.py", "label_noise.py"):
        out = subprocess.run([sys.executable, str(REPO / "bench" / script), "--help"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0 and out.stdout.startswith("usage:"), out.stdout[:300]
        assert "bench" not in out.stdout.splitlines()[-1]  # no JSON result line
    out = subprocess.run(["bash", str(REPO / "bench" / "render_report.sh"), "--help"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0 and out.stdout.startswith("usage:")


def test_gpu_check_mfu_counts_the_matmuls_a_step_runs(tmp_path):
    """Useful FLOPs per token: 4 x the decoder's linear weights, the LM head (4*V*H) only where
    it runs (every position for full logits, the labelled ones for answer-only), causal
    attention (2*L*h*(seq+1) forward on average, twice that backward); no embedding lookup."""
    layers, seq, answer, vocab, hidden = 2, 32, 4, 32000, 64
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--smoke-cpu", "--skip-tests",
         "--layers", str(layers), "--seq", str(seq), "--answer", str(answer), "--steps", "1",
         "--batch", "1", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    head = vocab * hidden  # tie_word_embeddings=False: embed_tokens and lm_head, V x H each
    body = result["params"] - 2 * head
    attn = 2 * layers * hidden * (seq + 1)  # causal forward, per token
    for r in result["train_rows"]:
        share = 1.0 if r["logits"] == "full_logits" else answer / seq
        useful = 4 * body + 4 * head * share + 3 * attn
        expected = useful * r["tokens_per_s"] / 1e12 / result["bf16_matmul_tflops"]
        assert r["mfu"] == pytest.approx(expected, rel=0.1), r
