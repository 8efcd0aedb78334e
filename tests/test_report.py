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


def _edit_metrics(run: Path, edit) -> None:
    m = json.loads((run / "metrics.json").read_text())
    edit(m)
    (run / "metrics.json").write_text(json.dumps(m))


def _summary(text: str) -> str:
    return re.search(r"<div class='summary'>(.*?)</div>", text).group(1)


@pytest.mark.parametrize(
    "acc, ci, base_acc, present, absent",
    [
        # An interval that touches 0.5 includes it (closed interval): no claim of beating chance.
        (0.55, [0.5, 0.6], 0.6, ["includes 0.5"], ["lies below 0.5"]),
        # Touching 0.5 from below is not "below 0.5".
        (0.45, [0.4, 0.5], 0.6, ["includes 0.5", "closes none of the gap"], ["lies below 0.5"]),
        # Equal accuracies: neither "scores higher" nor "beats".
        (0.6, [0.52, 0.68], 0.6, ["the two are level"], ["scores higher", "beats"]),
    ],
)
def test_summary_interval_and_comparison_boundaries(tmp_path, acc, ci, base_acc, present, absent):
    run = _fake_run(tmp_path)

    def edit(m):
        m["accuracy"], m["accuracy_ci"] = acc, ci
        m["baselines"]["tfidf_logreg"] = {"n": 100, "accuracy": base_acc, "vs_fine_tuned": {
            "only_fine_tuned_right": 4, "only_baseline_right": 4, "mcnemar_p": 1.0}}  # fmt: skip

    _edit_metrics(run, edit)
    summary = _summary(write_report(run).read_text())
    for phrase in present:
        assert phrase in summary, (phrase, summary)
    for phrase in absent:
        assert phrase not in summary, (phrase, summary)


def test_summary_names_the_best_fitted_baseline_and_never_majority(tmp_path):
    run = _fake_run(tmp_path)  # baselines: majority 0.5 and a skipped zero_shot only
    summary = _summary(write_report(run).read_text())
    assert "Best baseline" not in summary  # majority is a coin, not a fitted baseline

    def edit(m):
        m["baselines"]["tfidf_logreg"] = {"n": 100, "accuracy": 0.75}
        m["baselines"]["signal_rule"] = {"n": 100, "accuracy": 0.86}
        m["baselines"]["majority"].update(accuracy=0.9, accuracy_ci=[0.8, 0.95])  # by chance

    _edit_metrics(run, edit)
    summary = _summary(write_report(run).read_text())
    assert "Best baseline: signal_rule 0.860" in summary


@pytest.mark.parametrize(
    "zero_shot, expected",
    [
        # On a subset with the model's figure on the same pairs: that figure, not the whole-split one.
        ({"n": 40, "accuracy": 0.48, "fine_tuned_same_pairs": {"n": 40, "accuracy": 0.66},
          "vs_fine_tuned": {"only_fine_tuned_right": 9, "only_baseline_right": 2,
                            "mcnemar_p": 0.065}},
         "zero-shot scores 0.480 on 40 pairs, where the fine-tuned model scores 0.660 "
         "(McNemar p 0.065)."),
        # On all the pairs: the model's own accuracy is the comparison.
        ({"n": 100, "accuracy": 0.52}, "zero-shot scores 0.520 on 100 pairs, where the "
         "fine-tuned model scores 0.700."),
        # On a subset without the model's figure there: no comparison is made up.
        ({"n": 40, "accuracy": 0.48}, "zero-shot scores 0.480 on 40 pairs."),
    ],
)  # fmt: skip
def test_summary_compares_zero_shot_on_the_same_pairs_only(tmp_path, zero_shot, expected):
    run = _fake_run(tmp_path)
    _edit_metrics(run, lambda m: m["baselines"].update(zero_shot=zero_shot))
    assert expected in _summary(write_report(run).read_text())


def test_metrics_table_shows_each_rows_own_n_raw_figures_and_paired_counts(tmp_path):
    run = _fake_run(tmp_path)

    def edit(m):
        m["n_pairs_in_split"] = 339
        m["uncalibrated"] = {"accuracy": 0.7, "log_loss": 0.69, "brier": 0.24, "ece": 0.12,
                             "swap_consistency": 0.3}  # fmt: skip
        m["calibration"] = {"n_pairs": 48, "bias": 0.3, "temperature": 2.0,
                            "log_loss_before": 0.7, "log_loss_after": 0.68}  # fmt: skip
        m["baselines"]["zero_shot"] = {
            "n": 40, "accuracy": 0.48, "accuracy_ci": [0.33, 0.63],
            "vs_fine_tuned": {"only_fine_tuned_right": 0, "only_baseline_right": 7,
                              "mcnemar_p": 0.016}}  # fmt: skip

    _edit_metrics(run, edit)
    text = write_report(run).read_text()
    assert ("<tr><td>fine-tuned, uncalibrated</td><td>0.700</td><td>—</td><td>0.690</td>"
            "<td>0.240</td><td>0.120</td><td>0.300</td><td>100</td>") in text  # fmt: skip
    # Zero-shot's n is its own subset's, and 0 pairs only the model gets right is still a test.
    assert ("<tr><td>zero_shot</td><td>0.480</td><td>[0.330, 0.630]</td><td>—</td><td>—</td>"
            "<td>—</td><td>—</td><td>40</td><td>0 / 7, p 0.016</td></tr>") in text  # fmt: skip
    # Scored pairs (not the split's), and the gap against the ceiling (not the oracle).
    assert "<td>pairs</td><td>100</td>" in text
    assert "<td>gap from chance to ceiling closed</td><td>0.5714</td>" in text
    assert ("On this split, uncalibrated &rarr; calibrated: log-loss 0.690 &rarr; 0.600, ECE "
            "0.120 &rarr; 0.050, swap consistency 0.300 &rarr; 0.900.") in text  # fmt: skip
    assert "Calibration was fitted on 48 validation pairs" in text


def test_calibration_on_no_pairs_is_not_claimed(tmp_path):
    run = _fake_run(tmp_path)
    _edit_metrics(run, lambda m: m.update(calibration={"n_pairs": 0, "bias": 0.0}))
    text = write_report(run).read_text()
    assert "No calibration was fitted" in text and "fitted on 0" not in text


def test_report_states_in_sample_pairs_row_unit_and_ranking_n(tmp_path):
    run = _fake_run(tmp_path)
    _edit_metrics(run, lambda m: m.update(in_sample={"pairs": 12}))
    (run / "config.toml").write_text("[pairs]\nswap_augment = true\n")
    (run / "train_summary.json").write_text(json.dumps({"steps": 9, "rows_seen": 64,
                                                        "train_rows": {"kept": 80}}))  # fmt: skip
    text = write_report(run).read_text()
    assert "<b>In-sample:</b> 12 of these pairs share a filing" in text
    assert "went through 64 training rows (pairs in both orders)." in _summary(text)
    row = "<td>training rows (pairs in both orders) seen (of those kept)</td><td>64 (of 80)"
    assert row in text
    assert ": 0.300 (n 50, p " in text  # the IC's n is filings, not comparisons (120)
    # An older train_summary.json without rows_seen: what training kept.
    (run / "train_summary.json").write_text(json.dumps({"train_rows": {"kept": 80}}))
    assert "went through 80 training rows" in _summary(write_report(run).read_text())


def test_ranking_point_without_a_return_is_left_out_of_the_scatter(tmp_path):
    run = _fake_run(tmp_path)
    _edit_metrics(run, lambda m: m["ranking"]["points"].append({"id": "x", "score": 0.1,
                                                                 "ret": None}))  # fmt: skip
    text = write_report(run).read_text()
    assert 'alt="BT scatter"' in text and "No ranking data" not in text


def test_examples_count_sides_and_the_recorded_pairs_path(tmp_path):
    """Split "valid", pairs only at the path metrics.json records: k=2 most confident of each
    kind, the model's choice and each side's own return."""
    run = _fake_run(tmp_path)
    pairs = tmp_path / "elsewhere"
    pairs.mkdir()
    _edit_metrics(run, lambda m: m.update(split="valid", pairs=str(pairs)))
    rows, preds = [], []
    for i, (p_a, winner) in enumerate([(0.9, "A"), (0.8, "B"), (0.7, "A"), (0.3, "B"),
                                       (0.1, "A"), (0.35, "A"), (0.6, "A")]):  # fmt: skip
        rows.append({"meta": {"pair_id": f"p{i}",
                              "a": {"items": ["2.02"], "abnormal_ret": 0.03, "digest": "da"},
                              "b": {"items": ["5.02"], "abnormal_ret": -0.02, "digest": "db"}}})  # fmt: skip
        preds.append({"pair_id": f"p{i}", "winner": winner, "p_a": p_a})
    (pairs / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    (run / "pairs").mkdir()  # another split's file, same ids: not what the model read here
    other = [{"meta": {**r["meta"], "a": {"digest": "from-test-split"}}} for r in rows]
    (run / "pairs" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
    examples = write_report(run).read_text().split("id='examples'")[1].split("<h2")[0]
    assert f"From {pairs / 'valid.jsonl'}:" in examples and "from-test-split" not in examples
    assert examples.count("<b>right</b>") == 2 and examples.count("<b>wrong</b>") == 2
    assert "<b>right</b>: P(A better) = 0.900 → Filing A; Filing A won." in examples
    assert "<b>right</b>: P(A better) = 0.300 → Filing B; Filing B won." in examples
    assert "<b>wrong</b>: P(A better) = 0.100 → Filing B; Filing A won." in examples
    assert "<b>wrong</b>: P(A better) = 0.800 → Filing A; Filing B won." in examples
    assert "= 0.700" not in examples and "= 0.350" not in examples  # less confident
    assert "abnormal return +3.00%" in examples and "abnormal return -2.00%" in examples
    assert "5.02 " in examples


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m: m.update(ceiling="0.85"), "field ceiling: expected a number"),
        (lambda m: m.update(calibration="none"), "field calibration: expected an object"),
        (lambda m: m["baselines"]["zero_shot"].update(skipped=3), "zero_shot.skipped"),
        (lambda m: m["baselines"].update(t={"accuracy": 0.7, "vs_fine_tuned": {
            "only_fine_tuned_right": 1, "only_baseline_right": 2}}),
         "field baselines.t.vs_fine_tuned.mcnemar_p: expected a number"),
        (lambda m: m["baselines"].update(zero_shot={"n": 40, "accuracy": 0.5,
                                                    "fine_tuned_same_pairs": {"accuracy": "x"}}),
         "field baselines.zero_shot.fine_tuned_same_pairs.accuracy"),
    ],
)  # fmt: skip
def test_more_malformed_metrics_json_fields_are_one_line_errors(tmp_path, edit, needle):
    run = _fake_run(tmp_path)
    _edit_metrics(run, edit)
    with pytest.raises(UserError) as err:
        write_report(run)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (run / "report.html").exists()


def test_metrics_jsonl_eval_line_without_epoch_and_torn_tail(tmp_path):
    run = _fake_run(tmp_path, with_metrics=False)
    good = (run / "metrics.jsonl").read_text()
    # A writer killed mid-line (a live run): the torn last line is skipped.
    (run / "metrics.jsonl").write_text(good + '{"type": "train", "st')
    assert 'alt="loss curves"' in write_report(run).read_text()
    (run / "metrics.jsonl").write_text(good + json.dumps({"type": "eval", "epoch": None}) + "\n")
    with pytest.raises(UserError, match=r"metrics\.jsonl: field epoch \(eval line\)"):
        write_report(run)


def test_empty_run_directory_is_nothing_to_report(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="nothing to report"):
        write_report(tmp_path / "empty")
    assert not (tmp_path / "empty" / "report.html").exists()


def test_report_is_replaced_not_overwritten_in_place(tmp_path):
    """A reader holding the old report (an open browser tab's file, a hard link, a copy being
    served) keeps a whole old page; the new one appears under the name at once."""
    import os

    run = _fake_run(tmp_path)
    old = write_report(run).read_text()
    os.link(run / "report.html", tmp_path / "held.html")
    _edit_metrics(run, lambda m: m.update(accuracy=0.612))
    new = write_report(run).read_text()
    assert "0.612" in new and (tmp_path / "held.html").read_text() == old
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json", "metrics.jsonl",
                                                     "report.html"]  # no temp file left  # fmt: skip


def test_user_named_strings_are_escaped_everywhere(tmp_path):
    run = tmp_path / "r<x-run>&"
    _fake_run(tmp_path).rename(run)

    def edit(m):
        m["baselines"]["<x-base>"] = {"n": 100, "accuracy": 0.6}
        m["baselines"]["zero_shot"]["skipped"] = "<x-skip>"
        m["by_confidence"]["<x-conf>"] = {"n": 3, "accuracy": 0.5}

    _edit_metrics(run, edit)
    pairs = run / "pairs"
    pairs.mkdir()
    meta = {"pair_id": "p0", "a": {"items": ["<x-item>"], "digest": "d"}, "b": {}}
    (pairs / "test.jsonl").write_text(json.dumps({"meta": meta}) + "\n")
    (run / "predictions.jsonl").write_text(json.dumps({"pair_id": "p0", "winner": "A",
                                                       "p_a": 0.9}) + "\n")  # fmt: skip
    text = write_report(run).read_text()
    assert "<x-" not in text
    for name in ("run", "base", "skip", "conf", "item"):
        assert f"&lt;x-{name}&gt;" in text, name
    assert "<title>filingcontrast report: r&lt;x-run&gt;&amp;</title>" in text


def test_strings_from_the_run_settings_are_escaped(tmp_path):
    """Regression: config.toml's pairs.window and train_summary.json's rows_seen went into the
    page raw."""
    run = _fake_run(tmp_path)
    (run / "config.toml").write_text('[pairs]\nwindow = "<x-window>"\n')
    (run / "train_summary.json").write_text(json.dumps({"rows_seen": "<x-rows>"}))
    text = write_report(run).read_text()
    assert "<x-" not in text and "&lt;x-window&gt;" in text and "&lt;x-rows&gt;" in text


def test_calibration_fields_are_type_checked(tmp_path):
    run = _fake_run(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    m["calibration"] = {"n_pairs": "<x-n>", "bias": 0.1, "temperature": 0.8}
    (run / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=r"field calibration\.n_pairs: expected a number") as err:
        write_report(run)
    assert "\n" not in str(err.value)


def test_malformed_pairs_or_prediction_rows_are_left_out_of_the_examples(tmp_path):
    """Regression: a pairs row whose meta.a is not an object raised AttributeError, a list
    pair_id in predictions TypeError, and items given as a string showed as '2, ., 0, 2'."""
    run = _fake_run(tmp_path)
    (run / "pairs").mkdir()
    rows = [{"meta": {"pair_id": "p0", "a": "x", "b": {"items": "2.02"}}},
            {"meta": {"pair_id": ["p1"], "a": {}, "b": {}}}]  # fmt: skip
    (run / "pairs" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds = [{"pair_id": "p0", "winner": "A", "p_a": 0.9},
             {"pair_id": ["p1"], "winner": "A", "p_a": 0.8}]  # fmt: skip
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    examples = write_report(run).read_text().split("id='examples'")[1].split("<h2")[0]
    assert examples.count("<b>right</b>") == 1 and "Filing A: ?;" in examples
    assert "Filing B: 2.02 earnings;" in examples and "., 0" not in examples


def test_an_accuracy_outside_its_interval_still_plots(tmp_path):
    """A hand-edited metrics.json: matplotlib refused the negative error bar (a traceback)."""
    run = _fake_run(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    m["baselines"]["majority"]["accuracy_ci"] = [0.6, 0.7]  # accuracy 0.5
    m["by_item"]["2.02"]["accuracy_ci"] = [0.1, 0.2]  # accuracy 0.75
    (run / "metrics.json").write_text(json.dumps(m))
    text = write_report(run).read_text()
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 6


def test_a_coin_flip_is_never_shown_as_right_or_wrong(tmp_path):
    run = _fake_run(tmp_path)
    (run / "pairs").mkdir()
    meta = lambda i: {"meta": {"pair_id": f"p{i}", "a": {}, "b": {}}}  # noqa: E731
    (run / "pairs" / "test.jsonl").write_text("".join(json.dumps(meta(i)) + "\n" for i in (0, 1)))
    preds = [{"pair_id": "p0", "winner": "B", "p_a": 0.5}, {"pair_id": "p1", "winner": "A",
                                                             "p_a": 0.9}]  # fmt: skip
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    examples = write_report(run).read_text().split("id='examples'")[1].split("<h2")[0]
    assert examples.count("<b>right</b>") == 1 and "= 0.500" not in examples


def test_epoch_finding_first_epoch_and_drops_are_not_gains():
    evals = [
        {"epoch": 1, "by_item": {"2.02": {"n": 50, "accuracy": 0.6}, "5.02": {"n": 50,
                                                                             "accuracy": 0.9}}},
        {"epoch": 2, "by_item": {"2.02": {"n": 50, "accuracy": 0.62}, "5.02": {"n": 50,
                                                                              "accuracy": 0.5}}},
        {"epoch": 3, "by_item": {"2.02": {"n": 50, "accuracy": 0.65}}},
    ]  # fmt: skip
    text = epoch_finding(item_accuracy_by_epoch(evals))
    assert text.startswith("After epoch 1, item 2.02 (earnings) pairs score 0.60 (n=50).")
    assert "No per-item gain between epochs exceeds sampling noise" in text  # -0.40 is a drop


def test_confidence_table_spread_and_chosen_epoch_show_the_right_figures(tmp_path):
    run = _fake_run(tmp_path)
    _edit_metrics(run, lambda m: m["by_confidence"]["high"].update(accuracy_ci=[0.74, 0.97]))
    (run / "adapter").mkdir()
    (run / "adapter" / "filingcontrast.json").write_text(json.dumps({"epoch": 2,
                                                                     "valid_accuracy": 0.61}))  # fmt: skip
    (run / "train_summary.json").write_text(json.dumps({"valid_accuracy": 0.99}))
    text = write_report(run).read_text()
    assert "<tr><td>high</td><td>30</td><td>0.900</td><td>[0.740, 0.970]</td></tr>" in text
    assert "bottom one: +1.00%." in text  # long_short_spread 0.01 is a return: one percent
    assert "<td>chosen epoch (its validation accuracy)</td><td>2 (0.610)</td>" in text
