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
    for section in ("metrics", "loss", "baselines", "reliability", "by-item", "ranking", "epochs"):
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
    assert "does not show the seed's story" in epoch_finding(small)  # 0.20 < 1/sqrt(10)
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


def test_baseline_scored_on_a_subset_is_labelled_with_its_n():
    from filingcontrast.report import comparison_rows

    m = {"accuracy": 0.6, "accuracy_ci": [0.5, 0.7], "n_pairs": 128,
         "baselines": {"majority": {"n": 128, "accuracy": 0.5},
                       "zero_shot": {"n": 64, "accuracy": 0.53}}}  # fmt: skip
    names = [r[0] for r in comparison_rows(m)]
    assert names == ["fine-tuned", "majority", "zero_shot (n=64)"]


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
