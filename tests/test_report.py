"""report: self-contained HTML from a synthetic run (and a headless-Chromium render check)."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from filingcontrast.errors import UserError
from filingcontrast.report import epoch_finding, item_accuracy_by_epoch, write_report

REPO = Path(__file__).resolve().parents[1]


def _fake_run(tmp_path: Path, with_eval: bool = True, with_metrics: bool = True) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    lines = []
    for step in range(1, 31):
        lines.append(
            {
                "type": "train",
                "step": step,
                "epoch": 1 + (step - 1) // 10,
                "loss": 2.0 / step**0.3,
                "lr": 1e-4,
                "tokens_per_s": 100.0,
            }
        )
        if with_eval and step % 10 == 0:
            ep = step // 10
            lines.append(
                {
                    "type": "eval",
                    "epoch": ep,
                    "valid_loss": 1.5 - 0.1 * ep,
                    "valid_accuracy": 0.5 + 0.05 * ep,
                    "by_item": {
                        "2.02|2.02": {"n": 40, "accuracy": 0.55 + 0.1 * ep},
                        "5.02|8.01": {"n": 20, "accuracy": 0.5 + 0.02 * ep},
                    },
                }
            )
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if with_metrics:
        rng = np.random.default_rng(0)
        m = {
            "split": "test",
            "n_pairs": 100,
            "accuracy": 0.7,
            "accuracy_ci": [0.61, 0.79],
            "log_loss": 0.6,
            "brier": 0.2,
            "ece": 0.05,
            "swap_consistency": 0.9,
            "ceiling": 0.85,
            "oracle_accuracy": 0.83,
            "by_item": {"2.02": {"n": 60, "accuracy": 0.75, "accuracy_ci": [0.6, 0.85]}},
            "by_confidence": {"high": {"n": 30, "accuracy": 0.9}},
            "reliability": [
                {
                    "lo": i / 10,
                    "hi": (i + 1) / 10,
                    "n": 10,
                    "mean_p": i / 10 + 0.05,
                    "frac_a": i / 10,
                }
                for i in range(10)
            ],
            "baselines": {
                "majority": {"accuracy": 0.5, "accuracy_ci": [0.4, 0.6]},
                "zero_shot": {"skipped": "no adapter"},
            },
            "ranking": {
                "spearman_ic": 0.3,
                "long_short_spread": 0.01,
                "n_filings": 50,
                "comparisons": 120,
                "points": [
                    {"id": str(i), "score": float(s), "ci": [0, 0], "ret": float(s * 0.01)}
                    for i, s in enumerate(rng.normal(size=50))
                ],
            },
        }
        (run / "metrics.json").write_text(json.dumps(m))
    return run


def test_report_has_sections_and_embedded_pngs(tmp_path):
    path = write_report(_fake_run(tmp_path))
    text = path.read_text()
    sections = ("metrics", "baselines", "run", "reliability", "by-item", "ranking", "examples",
                "loss", "epochs")  # fmt: skip
    for section in sections:
        assert f"id='{section}'" in text
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 6
    assert "http://" not in text and "https://" not in text  # self-contained
    assert "Bayes ceiling" in text and "skipped" in text


def test_report_without_eval_lines_or_metrics_says_so(tmp_path):
    text = write_report(_fake_run(tmp_path, with_eval=False, with_metrics=False)).read_text()
    assert "No eval lines" in text and "No metrics.json" in text
    with pytest.raises(UserError):
        write_report(tmp_path / "missing")


def test_report_without_metrics_json_makes_no_calibration_claim(tmp_path):
    text = write_report(_fake_run(tmp_path, with_metrics=False)).read_text()
    assert "too few validation pairs" not in text and "None / None" not in text


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m: m.update(accuracy="high"), "field accuracy: expected a number"),
        (lambda m: m["baselines"].update(x=3), "field baselines.x: expected an object"),
        (lambda m: m["by_item"]["2.02"].pop("n"), "field by_item.2.02.n: expected a number"),
        (lambda m: m.update(reliability=[{"n": 2, "mean_p": "x"}]), "reliability[0].mean_p"),
        (lambda m: m["ranking"].update(points=[{"ret": 1}]), "ranking.points[0].score"),
        (lambda m: m.update(accuracy_ci=[0.1]), "field accuracy_ci: expected [lo, hi]"),
    ],
)
def test_malformed_metrics_json_is_one_line_error(tmp_path, edit, needle):
    run = _fake_run(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    edit(m)
    (run / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(UserError) as err:
        write_report(run)
    assert "metrics.json: " in str(err.value) and needle in str(err.value)
    assert "\n" not in str(err.value) and not (run / "report.html").exists()


def test_bad_metrics_jsonl_and_file_for_run_dir_are_one_line_errors(tmp_path):
    run = _fake_run(tmp_path, with_metrics=False)
    (run / "metrics.jsonl").write_bytes(b"\x8c\xff binary\n")
    with pytest.raises(UserError, match=r"metrics\.jsonl: not UTF-8 text"):
        write_report(run)
    (run / "metrics.jsonl").write_text(json.dumps({"type": "train", "step": 1, "loss": "x"}))
    with pytest.raises(UserError, match=r"metrics\.jsonl: field loss \(train line\)"):
        write_report(run)
    with pytest.raises(UserError, match="not a directory"):
        write_report(run / "metrics.jsonl")


def test_epoch_finding_names_the_biggest_gain():
    evals = [
        {"epoch": 1, "by_item": {"2.02|2.02": {"n": 50, "accuracy": 0.6}}},
        {"epoch": 2, "by_item": {"2.02|2.02": {"n": 50, "accuracy": 0.8}}},
    ]
    table = item_accuracy_by_epoch(evals)
    assert table["2.02"] == {1: (50, 0.6), 2: (50, 0.8)}
    assert "largest gain on item 2.02 (+0.20" in epoch_finding(table)
    assert "beyond sampling noise" in epoch_finding(table)  # 0.20 > 1/sqrt(50)
    small = item_accuracy_by_epoch([{**e, "by_item": {"2.02": {**e["by_item"]["2.02|2.02"],
                                                               "n": 10}}} for e in evals])  # fmt: skip
    assert "does not support the hypothesis" in epoch_finding(small)  # 0.20 < 1/sqrt(10)
    assert "cannot be assessed" in epoch_finding(item_accuracy_by_epoch(evals[:1]))


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
def test_report_renders_in_headless_chromium(tmp_path):
    report = write_report(_fake_run(tmp_path))
    png = tmp_path / "shot.png"
    subprocess.run(
        [str(REPO / "bench" / "render_report.sh"), str(report), str(png), "1200,2000"],
        check=True,
        timeout=150,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000


@pytest.mark.slow
def test_train_evaluate_report_pipeline(tmp_path):
    """H-train's train() on the pairs fixtures, then evaluate_run and the report (~25 s)."""
    from filingcontrast.config import load_config
    from filingcontrast.evaluate import evaluate_run
    from filingcontrast.train import train

    pairs = Path(__file__).resolve().parent / "assets" / "pairs"
    cfg = load_config(None, ['name="t"', 'base="tiny-llama"', f'runs_dir="{tmp_path}"',
                             "train.epochs=2", "evaluate.bootstrap=50", "evaluate.rank_k=2"])  # fmt: skip
    train(cfg, pairs)
    metrics = evaluate_run(tmp_path / "t", pairs, cfg)
    assert metrics["n_pairs"] > 0
    text = write_report(tmp_path / "t").read_text()
    assert "No eval lines" not in text and "largest gain on item" in text
    assert text.count("data:image/png;base64,") == 6


def test_report_opens_with_the_verdict_and_paired_tests(tmp_path):
    """The reader sees first whether the model beats chance, the best baseline and zero-shot,
    with the paired test, the ceiling's share and what the model trained on (review: the page
    opened with a bare table and hid that TF-IDF fitted 8.6x the model's pairs)."""
    run = _fake_run(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    m["accuracy"], m["accuracy_ci"], m["n_pairs_in_split"] = 0.58, [0.49, 0.66], 339
    m["baselines"]["tfidf_logreg"] = {
        "n": 100, "accuracy": 0.75, "accuracy_ci": [0.66, 0.83], "train_pairs": 1508,
        "vs_fine_tuned": {"only_fine_tuned_right": 5, "only_baseline_right": 22,
                          "coin_flip_pairs": 0, "mcnemar_p": 0.0012},
    }  # fmt: skip
    m["baselines"]["majority"]["train_pairs"] = 1508
    (run / "metrics.json").write_text(json.dumps(m))
    (run / "train_summary.json").write_text(json.dumps({"steps": 44, "rows_seen": 176,
                                                        "train_rows": {"kept": 2021}}))  # fmt: skip
    (run / "config.toml").write_text('base = "x"\n[train]\nlr = 0.001\nepochs = 1\n'
                                     'lora_r = 16\n[pairs]\nwindow = "0_1"\n')  # fmt: skip
    text = write_report(run).read_text()
    summary = re.search(r"<div class='summary'>(.*?)</div>", text).group(1)
    assert "0.580</b> [0.490, 0.660] on 100 test pairs (the first 100 of 339" in summary
    assert "includes 0.5" in summary and "closes 23% of the gap" in summary
    assert "Best baseline: tfidf_logreg 0.750; it beats the model: where they differ" in summary
    assert "right on 5 pairs and tfidf_logreg on 22 (McNemar p 0.0012)" in summary
    assert ("went through 176 training pairs; tfidf_logreg and majority fitted all 1508 training "
            "rows.") in summary  # fmt: skip
    assert "<td>176 (of 2021)</td>" in text  # a run stopped early saw fewer than it kept
    assert "<td>5 / 22, p 0.0012</td>" in text  # the paired column of the metrics table
    assert "<td>learning rate</td><td>0.001</td>" in text and "<td>1 / 44</td>" in text
    assert "name='viewport'" in text and "class='wide'" in text  # narrow screens scroll tables
    # One validation pass: no per-epoch plot (a point per item shows nothing), the sentence only.
    one = [ln for ln in (run / "metrics.jsonl").read_text().splitlines()
           if '"eval"' not in ln or '"epoch": 1' in ln]  # fmt: skip
    (run / "metrics.jsonl").write_text("\n".join(one) + "\n")
    text = write_report(run).read_text()
    assert 'alt="items by epoch"' not in text and "cannot be assessed" in text


def test_report_holds_no_bare_less_than_sign(tmp_path):
    """Regression: "McNemar p < 0.001" went into the page unescaped (an HTML parse error that
    browsers happened to forgive)."""
    run = _fake_run(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    m["baselines"]["signal_rule"] = {"n": 100, "accuracy": 0.86, "vs_fine_tuned": {
        "only_fine_tuned_right": 8, "only_baseline_right": 42, "mcnemar_p": 1.2e-06}}  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(m))
    text = write_report(run).read_text()
    text = re.sub(r"<(script|style)\b.*?</\1>", "", text, flags=re.S)
    assert "8 / 42, p &lt; 0.001" in text
    assert not re.findall(r"<(?![A-Za-z/!])", text)


@pytest.mark.parametrize(
    "acc, ci, vs_p, expected",
    [
        # Below chance: not "includes 0.5", not "closes -29 % of the gap".
        (0.40, [0.31, 0.48], 0.001, ["lies below 0.5", "closes none of the gap", "it beats the"]),
        # Above the ceiling on this sample: not "closes 116 %".
        (0.90, [0.84, 0.95], 0.001, ["at or above the ceiling", "the model beats it"]),
        # Higher than the baseline but not significantly: not "beats".
        (0.62, [0.49, 0.71], 0.40, ["includes 0.5", "closes 34%", "the model scores higher:"]),
    ],
)
def test_summary_says_only_what_the_figures_support(tmp_path, acc, ci, vs_p, expected):
    run = _fake_run(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    m["accuracy"], m["accuracy_ci"] = acc, ci
    name = "<b>odd</b>"  # a user-named baseline is escaped in the summary too
    m["baselines"] = {name: {"n": 100, "accuracy": 0.6, "vs_fine_tuned": {
        "only_fine_tuned_right": 3, "only_baseline_right": 9, "mcnemar_p": vs_p}}}  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(m))
    summary = re.search(r"<div class='summary'>(.*?)</div>", write_report(run).read_text())
    for phrase in expected:
        assert phrase in summary.group(1), (phrase, summary.group(1))
    assert "<b>odd</b>" not in summary.group(1) and "&lt;b&gt;odd" in summary.group(1)
    if "includes 0.5" not in expected:
        assert "includes 0.5" not in summary.group(1)


def test_report_examples_show_the_most_confident_verdicts_with_digests(tmp_path):
    run = _fake_run(tmp_path)
    pairs = run / "pairs"
    pairs.mkdir()
    rows, preds = [], []
    for i, (p_a, winner) in enumerate([(0.9, "A"), (0.55, "A"), (0.2, "A"), (0.45, "B"),
                                       (0.5, "B")]):  # fmt: skip
        side = lambda d: {"items": ["2.02"], "abnormal_ret": 0.01 * i, "digest": f"{d} <{i}>"}  # noqa: E731, B023
        rows.append({"meta": {"pair_id": f"p{i}", "a": side("alpha"), "b": side("beta")}})
        preds.append({"pair_id": f"p{i}", "winner": winner, "p_a": p_a})
    (pairs / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    text = write_report(run).read_text()
    examples = text.split("id='examples'")[1].split("<h2")[0]
    assert examples.index("P(A better) = 0.900") < examples.index("P(A better) = 0.550")
    assert examples.index("<b>right</b>") < examples.index("<b>wrong</b>: P(A better) = 0.200")
    assert "alpha &lt;2&gt;" in examples and "2.02 earnings" in examples  # escaped digests
    assert "= 0.500" not in examples  # a coin flip is neither right nor wrong


def test_baseline_scored_on_a_subset_is_labelled_with_its_n():
    from filingcontrast.report import comparison_rows

    m = {"accuracy": 0.6, "accuracy_ci": [0.5, 0.7], "n_pairs": 128,
         "baselines": {"majority": {"n": 128, "accuracy": 0.5},
                       "zero_shot": {"n": 64, "accuracy": 0.53}}}  # fmt: skip
    names = [r[0] for r in comparison_rows(m)]
    assert names == ["fine-tuned", "majority", "zero_shot (n=64)"]
    m["baselines"]["zero_shot"]["fine_tuned_same_pairs"] = {"n": 64, "accuracy": 0.6}
    assert [r[0] for r in comparison_rows(m)][-1] == "fine-tuned (same n=64)"


def test_zero_shot_subset_is_shown_beside_the_model_on_the_same_pairs(tmp_path):
    """Regression: the report set zero-shot on 64 pairs beside the model on 128 without the
    model's figure on those 64 (metrics.json had it)."""
    run = _fake_run(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    m["baselines"]["zero_shot"] = {"n": 40, "accuracy": 0.48, "accuracy_ci": [0.33, 0.63],
                                   "fine_tuned_same_pairs": {"n": 40, "accuracy": 0.66,
                                                             "accuracy_ci": [0.5, 0.8]}}  # fmt: skip
    m["by_item"]["2.02"]["accuracy_ci"] = None  # a cell without an interval: no error bar
    (run / "metrics.json").write_text(json.dumps(m))
    text = write_report(run).read_text()
    assert "fine-tuned, the same 40 pairs as zero_shot</td><td>0.660" in text
