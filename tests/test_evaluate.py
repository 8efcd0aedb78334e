"""evaluate: end to end on tiny-llama with a tiny PEFT adapter and the pairs fixtures."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from filingcontrast.config import RunConfig
from filingcontrast.errors import UserError

ASSETS = Path(__file__).resolve().parent / "assets" / "pairs"
KEYS = ("split", "n_pairs", "accuracy", "accuracy_ci", "log_loss", "brier", "ece",
        "swap_consistency", "ceiling", "oracle_accuracy", "by_item", "by_confidence",
        "reliability", "baselines", "ranking")  # fmt: skip


def make_adapter(run_dir: Path, base: str = "tiny-llama") -> Path:
    """A tiny LoRA adapter on tiny-llama, saved like train.save_adapter does."""
    from peft import LoraConfig, get_peft_model

    from filingcontrast.config import TrainConfig
    from filingcontrast.model import load_base

    model, tok = load_base("tiny-llama", seed=0)
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    # Non-zero B so the adapter actually changes the outputs (LoRA B starts at zero).
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)
    adapter = run_dir / "adapter"
    peft_model.save_pretrained(adapter)
    tok.save_pretrained(adapter)
    meta = {"base": base, "template": "chat", "system_prompt": TrainConfig().system_prompt}
    (adapter / "filingcontrast.json").write_text(json.dumps(meta))
    return adapter


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    if not (ASSETS / "test.jsonl").exists():
        pytest.skip("pairs fixtures not present")
    run = tmp_path_factory.mktemp("runs") / "tiny"
    make_adapter(run)
    return run


def test_evaluate_run_writes_all_keys(run_dir):
    from filingcontrast.evaluate import evaluate_run

    cfg = RunConfig(name="tiny", base="tiny-llama")
    cfg.evaluate.bootstrap = 100
    cfg.evaluate.rank_k = 2
    m = evaluate_run(run_dir, ASSETS, cfg)
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(m))
    for key in KEYS:
        assert key in on_disk, key
    n = on_disk["n_pairs"]
    assert n == sum(1 for _ in open(ASSETS / "test.jsonl"))
    lo, hi = on_disk["accuracy_ci"]
    assert lo <= on_disk["accuracy"] <= hi
    assert 0 <= on_disk["swap_consistency"] <= 1
    assert set(on_disk["baselines"]) == {"majority", "signal_rule", "tfidf_logreg", "zero_shot"}
    assert "accuracy" in on_disk["baselines"]["zero_shot"]
    assert on_disk["ceiling"] is not None  # fixtures are simulated (truth in meta)
    assert set(on_disk["ranking"]) >= {"spearman_ic", "long_short_spread"}
    preds = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == n
    for p in preds:
        assert p["p_a"] == pytest.approx((p["p_ab"] + 1 - p["p_ba"]) / 2)
        assert set(p["zero_shot"]) == {"p_a", "p_ab", "p_ba"}
    # The adapter changes the verdicts (zero-shot really is the base without it).
    assert not np.allclose([p["p_a"] for p in preds], [p["zero_shot"]["p_a"] for p in preds])
    # Each baseline's P(A) per pair, and its paired comparison with the model recomputed from them.
    from scipy.stats import binomtest

    from filingcontrast.metrics import correctness

    assert on_disk["n_pairs_in_split"] == n
    y = np.array([p["winner"] == "A" for p in preds])
    model = correctness(np.array([p["p_a"] for p in preds]), y)
    for name in ("majority", "signal_rule", "tfidf_logreg", "zero_shot"):
        key = "zero_shot" if name == "zero_shot" else None
        p_base = [p[key]["p_a"] if key else p["baselines"][name] for p in preds]
        base = correctness(np.array(p_base), y)
        vs = on_disk["baselines"][name]["vs_fine_tuned"]
        assert vs["only_fine_tuned_right"] == int(((model == 1) & (base == 0)).sum()), name
        assert vs["only_baseline_right"] == int(((model == 0) & (base == 1)).sum()), name
        only = (vs["only_fine_tuned_right"], vs["only_baseline_right"])
        expected = binomtest(only[0], sum(only)).pvalue if sum(only) else 1.0
        assert vs["mcnemar_p"] == pytest.approx(expected), name
        assert base.mean() == pytest.approx(on_disk["baselines"][name]["accuracy"])


def test_report_after_evaluate(run_dir):
    from filingcontrast.report import write_report

    if not (run_dir / "metrics.json").exists():
        pytest.skip("evaluate test did not run")
    text = write_report(run_dir).read_text()
    assert text.count("data:image/png;base64,") >= 4


def test_pairs_without_labels_is_user_error(run_dir, tmp_path):
    from filingcontrast.evaluate import evaluate_run

    pairs = tmp_path / "pairs"
    shutil.copytree(ASSETS, pairs)
    rows = [json.loads(x) for x in (pairs / "test.jsonl").read_text().splitlines()]
    del rows[1]["meta"]["winner"]
    (pairs / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError) as err:
        evaluate_run(run_dir, pairs, RunConfig(name="tiny", base="tiny-llama"))
    msg = str(err.value)
    assert "\n" not in msg and "test.jsonl:2" in msg and "winner" in msg


def test_missing_adapter_and_pairs_are_user_errors(tmp_path, run_dir):
    from filingcontrast.evaluate import evaluate_run

    with pytest.raises(UserError, match="adapter not found"):
        evaluate_run(tmp_path / "none", ASSETS, RunConfig())
    with pytest.raises(UserError, match="pairs directory not found"):
        evaluate_run(run_dir, tmp_path / "nopairs", RunConfig())


def test_binary_pairs_file_and_file_for_dir_are_user_errors(run_dir, tmp_path):
    from filingcontrast.evaluate import evaluate_run

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "test.jsonl").write_bytes(b"\xff\xfe\x00garbage\x96\n")
    cfg = RunConfig(name="tiny", base="tiny-llama")
    with pytest.raises(UserError, match=r"test\.jsonl: not UTF-8 text"):
        evaluate_run(run_dir, pairs, cfg)
    with pytest.raises(UserError, match="not a directory"):
        evaluate_run(run_dir, pairs / "test.jsonl", cfg)


def test_evaluate_cli_unlabelled_pairs_exit_1(run_dir, tmp_path, capsys):
    from filingcontrast.cli import main

    pairs = tmp_path / "pairs"
    shutil.copytree(ASSETS, pairs)
    rows = [json.loads(x) for x in (pairs / "test.jsonl").read_text().splitlines()]
    for r in rows:
        r["meta"].pop("winner", None)
    (pairs / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = main(["evaluate", "--adapter", str(run_dir), "--pairs", str(pairs), 'base="tiny-llama"'])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and "winner" in errors[0], err


def test_evaluate_refuses_a_named_base_other_than_the_adapters(run_dir, capsys):
    """Regression: `evaluate ... base=smollm2-135m-instruct` on a tiny-llama adapter ran and
    recorded tiny-llama (compare --base refuses the same)."""
    from filingcontrast.cli import main

    rc = main(["evaluate", "--adapter", str(run_dir), "--pairs", str(ASSETS),
               "base=smollm2-135m-instruct"])  # fmt: skip
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and "trained on 'tiny-llama'" in errors[0], errors


def test_evaluate_applies_the_adapters_calibration(run_dir, tmp_path):
    """metrics.json's model figures use the stored calibration; `uncalibrated` keeps the raw."""
    from filingcontrast.calibration import Calibration
    from filingcontrast.evaluate import evaluate_run

    run = tmp_path / "cal"
    shutil.copytree(run_dir / "adapter", run / "adapter")
    meta_path = run / "adapter" / "filingcontrast.json"
    cal = Calibration(temperature=0.5, bias=0.3, n_pairs=10)
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "calibration": cal.to_dict()}))
    cfg = RunConfig(name="cal", base="tiny-llama")
    cfg.evaluate.bootstrap = 50
    cfg.evaluate.baselines = []
    m = evaluate_run(run, ASSETS, cfg)
    assert m["calibration"]["temperature"] == 0.5
    assert set(m["uncalibrated"]) >= {"accuracy", "ece", "swap_consistency"}
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    for p in preds:
        assert p["p_ab"] == pytest.approx(float(cal.per_order(p["raw"]["p_ab"])))
        assert p["p_ba"] == pytest.approx(float(cal.per_order(p["raw"]["p_ba"])))
        assert p["p_a"] == pytest.approx((p["p_ab"] + 1 - p["p_ba"]) / 2)


def test_zero_shot_on_a_subset_reports_the_model_on_the_same_pairs(run_dir, tmp_path):
    """evaluate.zero_shot_max_pairs: zero-shot scores the first N pairs only, and its block
    carries the fine-tuned model's accuracy on exactly those pairs (recomputed here)."""
    from filingcontrast.evaluate import evaluate_run
    from filingcontrast.metrics import correctness

    run = tmp_path / "zs"
    shutil.copytree(run_dir / "adapter", run / "adapter")
    cfg = RunConfig(name="zs", base="tiny-llama")
    cfg.evaluate.bootstrap = 50
    cfg.evaluate.baselines = ["zero_shot"]
    cfg.evaluate.zero_shot_max_pairs = 3
    m = evaluate_run(run, ASSETS, cfg)
    assert m["n_pairs"] > 3
    zs = m["baselines"]["zero_shot"]
    assert zs["n"] == 3 and zs["fine_tuned_same_pairs"]["n"] == 3
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert [("zero_shot" in p) for p in preds] == [True] * 3 + [False] * (len(preds) - 3)
    first = preds[:3]
    credit = correctness(np.array([p["p_a"] for p in first]),
                         np.array([p["winner"] == "A" for p in first]))  # fmt: skip
    assert zs["fine_tuned_same_pairs"]["accuracy"] == pytest.approx(float(credit.mean()))


def _with_seen(run_dir: Path, tmp_path: Path, seen: dict) -> Path:
    """A copy of the tiny adapter whose filingcontrast.json records `seen_filings`."""
    run = tmp_path / "seen"
    shutil.copytree(run_dir / "adapter", run / "adapter")
    meta_path = run / "adapter" / "filingcontrast.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "seen_filings": seen}))
    return run


def _accessions(split: str) -> list[list[str]]:
    rows = [json.loads(x) for x in (ASSETS / f"{split}.jsonl").read_text().splitlines()]
    return [[r["meta"]["a"]["accession"], r["meta"]["b"]["accession"]] for r in rows]


def test_pairs_with_a_filing_the_adapter_trained_on_are_refused(run_dir, tmp_path):
    """Regression: evaluate scored the adapter's own training pairs (a test.jsonl copied from
    train.jsonl, or --split train) and wrote them up as results."""
    from filingcontrast.evaluate import evaluate_run

    trained = _accessions("test")[2][1]  # one filing of the third test pair
    run = _with_seen(run_dir, tmp_path, {"train": [trained], "valid": []})
    with pytest.raises(UserError) as err:
        evaluate_run(run, ASSETS, RunConfig(name="seen", base="tiny-llama"))
    msg = str(err.value)
    first = next(n for n, pair in enumerate(_accessions("test"), 1) if trained in pair)
    assert "\n" not in msg and f"test.jsonl:{first}: filing {trained} is one the adapter" in msg
    assert not (run / "metrics.json").exists()


def test_pairs_that_tuned_the_adapter_are_flagged_in_sample(run_dir, tmp_path):
    from filingcontrast.evaluate import evaluate_run

    tuned = [pair[0] for pair in _accessions("test")[:2]]
    run = _with_seen(run_dir, tmp_path, {"train": [], "valid": tuned})
    cfg = RunConfig(name="seen", base="tiny-llama")
    cfg.evaluate.bootstrap = 20
    cfg.evaluate.baselines = []
    m = evaluate_run(run, ASSETS, cfg)
    assert m["in_sample"]["pairs"] >= 2


def test_train_split_is_not_an_evaluation_split():
    from filingcontrast.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="evaluate.split"):
        load_config(None, ["evaluate.split=train"])
