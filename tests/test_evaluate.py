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
    import torch
    from peft import LoraConfig, get_peft_model

    from filingcontrast.config import TrainConfig
    from filingcontrast.model import load_base

    model, tok = load_base("tiny-llama", seed=0)
    # Seeded here, so the adapter is the same whichever tests ran before (and the global RNG is
    # left as it was).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"])
        peft_model = get_peft_model(model, lora)
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


@pytest.fixture(scope="module")
def evaluated(run_dir):
    """One evaluation of the tiny adapter on the fixtures' test split, shared by the tests that
    read its metrics.json, predictions.jsonl or report (whatever order they run in)."""
    from filingcontrast.evaluate import evaluate_run

    cfg = RunConfig(name="tiny", base="tiny-llama")
    cfg.evaluate.bootstrap = 100
    cfg.evaluate.rank_k = 2
    return evaluate_run(run_dir, ASSETS, cfg)


def _predictions(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]


def _swap_consistency(p_ab, p_ba) -> float:
    """Recomputed: the same filing chosen in both orders; an order at exactly 0.5, half."""
    per_pair = [0.5 if 0.5 in (ab, ba) else float((ab > 0.5) == (ba < 0.5))
                for ab, ba in zip(p_ab, p_ba, strict=True)]  # fmt: skip
    return sum(per_pair) / len(per_pair)


def test_evaluate_run_writes_all_keys(run_dir, evaluated):
    m = evaluated
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(m))
    for key in KEYS:
        assert key in on_disk, key
    n = on_disk["n_pairs"]
    assert n == sum(1 for _ in open(ASSETS / "test.jsonl"))
    lo, hi = on_disk["accuracy_ci"]
    assert lo <= on_disk["accuracy"] <= hi
    preds = _predictions(run_dir)
    p_ab, p_ba = [p["p_ab"] for p in preds], [p["p_ba"] for p in preds]
    assert on_disk["swap_consistency"] == pytest.approx(_swap_consistency(p_ab, p_ba))
    assert set(on_disk["baselines"]) == {"majority", "signal_rule", "tfidf_logreg", "zero_shot"}
    assert "accuracy" in on_disk["baselines"]["zero_shot"]
    assert on_disk["ceiling"] is not None  # fixtures are simulated (truth in meta)
    assert set(on_disk["ranking"]) >= {"spearman_ic", "long_short_spread"}
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


def test_report_after_evaluate(run_dir, evaluated):
    from filingcontrast.report import write_report

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
    # The headline figures are those of the calibrated P(A) (recomputed here from the
    # predictions), `uncalibrated` those of the raw one, and the two differ in this setup.
    winners = [p["winner"] for p in preds]
    cal_p = [p["p_a"] for p in preds]
    raw_p = [p["raw"]["p_a"] for p in preds]
    want, want_raw = _headline(cal_p, winners), _headline(raw_p, winners)
    for key in ("log_loss", "brier", "ece"):
        assert want[key] != pytest.approx(want_raw[key], rel=1e-6), key
    for key, value in want.items():
        assert m[key] == pytest.approx(value, rel=1e-9), key
        assert m["uncalibrated"][key] == pytest.approx(want_raw[key], rel=1e-9), key
    assert m["swap_consistency"] == pytest.approx(
        _swap_consistency([p["p_ab"] for p in preds], [p["p_ba"] for p in preds])
    )
    assert m["uncalibrated"]["swap_consistency"] == pytest.approx(
        _swap_consistency([p["raw"]["p_ab"] for p in preds], [p["raw"]["p_ba"] for p in preds])
    )


def _headline(p_a: list[float], winners: list[str], bins: int = 10) -> dict[str, float]:
    """Accuracy (0.5 for p = 0.5), log-loss, Brier and ECE (equal-width bins) recomputed."""
    p, y = np.array(p_a), np.array([w == "A" for w in winners], dtype=float)
    credit = np.where(p == 0.5, 0.5, ((p > 0.5) == (y == 1)).astype(float))
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(np.mean(which == b) * abs(p[which == b].mean() - y[which == b].mean())
              for b in range(bins) if np.any(which == b))  # fmt: skip
    return {
        "accuracy": float(credit.mean()),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(ece),
    }


def test_ranking_ic_is_that_of_the_pairs_verdicts(run_dir, tmp_path, monkeypatch):
    """metrics.json's ranking: Bradley-Terry scores of the split's filings from the model's
    verdicts on its pairs, oriented as the pairs are (P(A) is P(filing a beats filing b)), and
    their Spearman IC with the abnormal returns. The verdicts here are controlled: each pair's
    winner gets 0.8, so the scores follow the returns and the IC must be positive."""
    from scipy.stats import spearmanr

    import filingcontrast.evaluate as evaluate_mod
    from filingcontrast.predict import bradley_terry

    rows = [json.loads(x) for x in (ASSETS / "test.jsonl").read_text().splitlines()]

    def controlled(scorer, rows, batch_size, zero_shot=False):
        p_ab = np.array([0.8 if r["meta"]["winner"] == "A" else 0.2 for r in rows])
        return 0.5 + (p_ab - (1 - p_ab)) / 2, p_ab, 1 - p_ab

    monkeypatch.setattr(evaluate_mod, "score_rows", controlled)
    run = tmp_path / "ic"
    shutil.copytree(run_dir / "adapter", run / "adapter")
    cfg = RunConfig(name="ic", base="tiny-llama")
    cfg.evaluate.bootstrap = 20
    cfg.evaluate.baselines = []
    cfg.evaluate.rank_k = 1  # every filing is in a pair: no top-up comparisons by the model
    m = evaluate_mod.evaluate_run(run, ASSETS, cfg)
    assert m["ranking"]["extra_comparisons"] == 0
    # Independently: the filings, each pair's verdict from predictions.jsonl, the fit, the IC.
    ids: dict[str, int] = {}
    rets: dict[str, float] = {}
    comps = []
    for row, pred in zip(rows, _predictions(run), strict=True):
        assert pred["pair_id"] == row["meta"]["pair_id"]
        a, b = (row["meta"][side] for side in ("a", "b"))
        for f in (a, b):
            ids.setdefault(f["accession"], len(ids))
            rets[f["accession"]] = f["abnormal_ret"]
        comps.append((ids[a["accession"]], ids[b["accession"]], pred["p_a"]))
    scores = bradley_terry(len(ids), comps, n_boot=0).scores
    points = {pt["id"]: pt["score"] for pt in m["ranking"]["points"]}
    assert points == pytest.approx({acc: scores[n] for acc, n in ids.items()}, abs=1e-6)
    want = spearmanr(scores, [rets[acc] for acc in ids]).statistic
    assert want > 0.3
    assert m["ranking"]["spearman_ic"] == pytest.approx(want)


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


def test_rows_longer_than_training_are_scored_fitted_as_validation_was(monkeypatch):
    """A test prompt longer than the adapter's training max_seq_len is shortened in its digests
    as training and validation shortened theirs (fit_row), not scored at an unseen length."""
    import filingcontrast.dataset as dataset_mod
    from filingcontrast.dataset import PromptFormatter
    from filingcontrast.evaluate import score_rows
    from filingcontrast.model import load_tokenizer
    from filingcontrast.predict import Scorer
    from tests.train_rows import toy_rows

    fmt = PromptFormatter(load_tokenizer("tiny-llama"), "chat", "sys")
    long_row, short_row = toy_rows(1, filler=400)[0], toy_rows(1)[0]
    seen = []

    def fake_pair_probabilities(model, formatter, rows, batch_size, progress=None):
        seen.extend(rows)
        return np.full(len(rows), 0.5), np.full(len(rows), 0.5), np.full(len(rows), 0.5)

    monkeypatch.setattr(dataset_mod, "pair_probabilities", fake_pair_probabilities)
    scorer = Scorer(model=None, tokenizer=None, formatter=fmt, meta={"max_seq_len": 256})
    score_rows(scorer, [long_row, short_row], batch_size=2)
    assert seen[0] == fmt.fit_row(long_row, 256) and seen[0] != long_row
    assert seen[1] is short_row
    seen.clear()
    score_rows(Scorer(None, None, fmt, meta={}), [long_row], batch_size=2)  # older adapters
    assert seen == [long_row]


def test_no_ceiling_for_market_model_pairs():
    """Regression: the ceiling of market-adjusted truth was reported for market-model pairs."""
    from filingcontrast.evaluate import _ceiling
    from filingcontrast.runtime import iter_jsonl

    rows = [r for _, r in iter_jsonl(ASSETS / "test.jsonl")]
    ceiling, oracle = _ceiling(rows)
    assert ceiling is not None and oracle is not None
    for r in rows:
        r["meta"]["method"] = "market_model"
    assert _ceiling(rows) == (None, oracle)
