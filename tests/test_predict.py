"""predict: Bradley-Terry, the comparison schedule, batched decision scoring, compare/rank CLI."""

import json

import numpy as np
import pytest

from filingcontrast.errors import UserError
from filingcontrast.predict import (
    bradley_terry,
    comparison_schedule,
    load_scorer,
    resolve_adapter_dir,
)


def test_schedule_is_deterministic_and_near_regular():
    s = comparison_schedule(20, 4, seed=3)
    assert s == comparison_schedule(20, 4, seed=3)
    assert s != comparison_schedule(20, 4, seed=4)
    deg = np.bincount(np.array(s).ravel(), minlength=20)
    assert deg.min() >= 4 and deg.max() <= 4
    assert all(i < j for i, j in s)
    assert comparison_schedule(3, 10, 0) == [(0, 1), (0, 2), (1, 2)]


def test_bradley_terry_recovers_known_order():
    rng = np.random.default_rng(0)
    true = np.linspace(-2, 2, 12)
    comps = []
    for i, j in comparison_schedule(12, 6, seed=1) * 3:
        p = 1 / (1 + np.exp(-(true[i] - true[j])))
        comps.append((i, j, float(rng.random() < p)))
    bt = bradley_terry(12, comps, n_boot=50, seed=0)
    from scipy.stats import spearmanr

    assert spearmanr(bt.scores, true).statistic > 0.85
    assert bt.scores.mean() == pytest.approx(0.0, abs=1e-9)
    assert np.all(bt.ci[:, 0] <= bt.ci[:, 1])
    assert np.mean((bt.ci[:, 0] <= bt.scores) & (bt.scores <= bt.ci[:, 1])) > 0.8


def test_bradley_terry_soft_outcomes():
    # Soft verdicts with P(0 beats 1) = 0.8 everywhere: 0 ranks above 1 above 2.
    bt = bradley_terry(3, [(0, 1, 0.8), (1, 2, 0.8), (0, 2, 0.9)], n_boot=0)
    assert bt.scores[0] > bt.scores[1] > bt.scores[2]
    assert np.isnan(bt.ci).all()  # no bootstrap: no interval, never a zero-width "certain" one


def test_soft_fit_matches_choix_on_hard_outcomes():
    import choix

    from filingcontrast.predict import _bt_fit

    data = [(0, 1), (0, 1), (1, 0), (1, 2), (2, 3), (0, 3), (3, 2), (0, 2)]
    ref = choix.opt_pairwise(4, data, alpha=0.05)
    ours = _bt_fit(4, [(w, loser, 1.0) for w, loser in data], alpha=0.05)
    assert np.allclose(ours, ref - ref.mean(), atol=1e-3)


def test_missing_adapter_is_user_error(tmp_path):
    with pytest.raises(UserError, match="adapter not found"):
        resolve_adapter_dir(tmp_path / "nope")
    (tmp_path / "adapter").mkdir()
    with pytest.raises(UserError, match="not a filingcontrast adapter"):
        resolve_adapter_dir(tmp_path)


def test_adapter_for_other_base_is_user_error(tmp_path):
    ad = tmp_path / "adapter"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (ad / "adapter_model.safetensors").write_bytes(b"")
    (ad / "tokenizer.json").write_text("{}")
    (ad / "filingcontrast.json").write_text(json.dumps({"base": "tiny-llama"}))
    with pytest.raises(UserError, match="trained on 'tiny-llama'"):
        load_scorer(tmp_path, base="smollm2-135m-instruct")


def test_batched_scorer_matches_unbatched_and_dataset_scorer():
    pytest.importorskip("filingcontrast.dataset")
    from filingcontrast.dataset import PromptFormatter, score_decisions
    from filingcontrast.model import load_base

    model, tok = load_base("tiny-llama", seed=1)
    fmt = PromptFormatter(tok, system_prompt="You compare SEC 8-K filings.")
    texts = [
        "Compare Filing A (beat) and Filing B (miss). Which is better?",
        "Short one.",
        "A much longer instruction " * 20 + "Which is better?",
    ]
    batched = score_decisions(model, fmt, texts, batch_size=8)
    single = np.array([score_decisions(model, fmt, [t])[0] for t in texts])
    assert np.allclose(batched, single, atol=1e-5)
    assert np.all((batched > 0) & (batched < 1))


# ---------------------------------------------------------------------------------------------
# CLI: compare / rank end to end on tiny-llama, and one-line errors for bad input.

PARSE = __import__("pathlib").Path(__file__).resolve().parent / "assets" / "parse"


def _cli(capsys, *argv):
    from filingcontrast.cli import main

    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tests.test_evaluate import make_adapter

    run = tmp_path_factory.mktemp("cmp") / "run"
    make_adapter(run)
    return run


def test_compare_and_rank_cli_end_to_end(capsys, tiny_run):
    a, b = PARSE / "simulated.txt", PARSE / "modern_full_submission.txt"
    rc, out, err = _cli(capsys, "compare", str(a), str(b), "--adapter", str(tiny_run), "--json",
                        "--explain")  # fmt: skip
    assert rc == 0, err
    res = json.loads(out)
    assert res["choice"] in ("A", "B") and 0 < res["p_a"] < 1 and res["ms"] >= 0
    assert res["confidence"] in ("high", "medium", "low")
    # The explanation opens with the verdict and the calibrated confidence, then the analysis.
    lead = (f"Filing {res['choice']} resulted in better performance. "
            f"Confidence: {res['confidence']}. Analysis:")  # fmt: skip
    assert res["analysis"].startswith(lead) and len(res["analysis"]) > len(lead)
    assert (res["choice"] == "A") == (res["p_a"] >= 0.5)
    # The extracted facts to check the generated text by (simulated.txt states its EPS).
    assert set(res["facts"]) == {"A", "B"} and any("EPS" in f for f in res["facts"]["A"])
    assert res["calibrated"] is False  # make_adapter stores no calibration
    # Swapping the files mirrors the verdict exactly (both orders are averaged).
    rc, out, _ = _cli(capsys, "compare", str(b), str(a), "--adapter", str(tiny_run), "--json")
    assert json.loads(out)["p_a"] == pytest.approx(1 - res["p_a"], abs=2e-4)
    files = [str(PARSE / n) for n in ("simulated.txt", "modern_full_submission.txt",
                                      "old_style.txt")]  # fmt: skip
    rc, out, err = _cli(capsys, "rank", *files, "--adapter", str(tiny_run), "-k", "2", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert [r["rank"] for r in res["ranking"]] == [1, 2, 3]
    assert sorted(r["id"] for r in res["ranking"]) == sorted(files)
    assert res["comparisons"] == 3
    # Two comparisons per filing: no bootstrap interval (MIN_CI_COMPARISONS), said as such.
    assert all(r["ci"] is None for r in res["ranking"])
    assert res["note"].startswith("3 of 3 filings have no interval: one needs >= 4 comparisons")
    rc, out, err = _cli(capsys, "rank", *files, "--adapter", str(tiny_run), "-k", "2")
    assert rc == 0 and out.count("[no interval]") == 3, err
    assert "at least 5 filings with -k 4" in out  # what it takes, not just that it lacks


def test_compare_bad_inputs_are_one_line_errors(capsys, tmp_path, tiny_run):
    good, other = str(PARSE / "simulated.txt"), str(PARSE / "old_style.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases = [
        ((str(empty), good, "--adapter", str(tiny_run)), "empty"),
        ((str(PARSE / "form_10k.htm"), good, "--adapter", str(tiny_run)), "8-K"),
        ((good, other, "--adapter", str(tmp_path / "nope")), "adapter not found"),
        ((good, str(tmp_path / "missing.txt"), "--adapter", str(tiny_run)), "no such file"),
        (
            (good, other, "--adapter", str(tiny_run), "--base", "smollm2-135m-instruct"),
            "trained on 'tiny-llama'",
        ),
    ]
    for argv, needle in cases:
        rc, out, err = _cli(capsys, "compare", *argv)
        assert rc == 1, (argv, err)
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and needle in errors[0], err


def test_rank_of_a_directory_says_so(capsys, tmp_path, tiny_run):
    """Regression: `rank DIR` said "need at least two filings"."""
    rc, _, err = _cli(capsys, "rank", str(tmp_path), "--adapter", str(tiny_run))
    assert rc == 1 and f"error: {tmp_path}: a directory; pass its filings" in err, err


def test_compare_and_rank_show_the_parsers_doubts(capsys, tmp_path, tiny_run):
    """A file with no item headings (here only a cover and an image) is scored, but not
    silently: both commands name it and the parser's warning, on stderr and in the JSON."""
    cover = tmp_path / "image_only.htm"
    cover.write_text("<html><body><p>FORM 8-K</p><img src='scan.jpg'></body></html>")
    good, other = str(PARSE / "simulated.txt"), str(PARSE / "old_style.txt")
    rc, out, err = _cli(capsys, "compare", str(cover), good, "--adapter", str(tiny_run), "--json")
    assert rc == 0, err
    assert json.loads(out)["warnings"] == {"A": "no item headings found"}
    assert f"warning: {cover}: no item headings found" in err.splitlines()
    rc, out, err = _cli(capsys, "compare", good, other, "--adapter", str(tiny_run), "--json")
    assert rc == 0 and "warnings" not in json.loads(out) and "warning" not in err
    rc, out, err = _cli(capsys, "rank", good, str(cover), other, "--adapter", str(tiny_run),
                        "-k", "2", "--json")  # fmt: skip
    assert rc == 0 and json.loads(out)["warnings"] == {str(cover): "no item headings found"}
    assert f"warning: {cover}: no item headings found" in err.splitlines()


def test_adapter_whose_weights_do_not_fit_base(capsys, tmp_path, tiny_run):
    import shutil

    run = tmp_path / "other"
    shutil.copytree(tiny_run, run)
    meta_path = run / "adapter" / "filingcontrast.json"
    meta = json.loads(meta_path.read_text())
    meta["base"] = "smollm2-135m-instruct"  # tiny-llama LoRA shapes cannot load into it
    meta_path.write_text(json.dumps(meta))
    good, other = str(PARSE / "simulated.txt"), str(PARSE / "old_style.txt")
    rc, _, err = _cli(capsys, "compare", good, other, "--adapter", str(run))
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and "does not fit" in errors[0], err
    assert "mismatch" in errors[0]


def test_compare_builds_digests_like_training(tiny_run, tmp_path, monkeypatch):
    """An adapter trained on key-facts digests of N tokens gets the same digests in compare."""
    import shutil

    import filingcontrast.pairs as pairs_mod
    from filingcontrast.predict import compare_cli

    run = tmp_path / "kf"
    shutil.copytree(tiny_run / "adapter", run / "adapter")
    meta_path = run / "adapter" / "filingcontrast.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "digest_tokens": 120, "key_facts": True}))
    seen = []
    real = pairs_mod.filing_digests

    def spy(docs, budget, tok, anonymize=True, facts=None):
        out = real(docs, budget, tok, anonymize, facts)
        seen.append((budget, out))
        return out

    monkeypatch.setattr(pairs_mod, "filing_digests", spy)
    compare_cli(str(PARSE / "simulated.txt"), str(PARSE / "modern_full_submission.txt"),
                adapter=str(run))  # fmt: skip
    ((budget, digests),) = seen
    assert budget == 120
    assert all("\nKey facts: " in d for d in digests)


def test_adapter_dir_with_missing_or_corrupt_files(capsys, tmp_path, tiny_run):
    """A missing weight or tokenizer file, a broken adapter_config.json or a truncated
    safetensors file: one line naming the problem, never "does not fit base model" or a
    traceback."""
    import shutil

    a, b = str(PARSE / "simulated.txt"), str(PARSE / "old_style.txt")

    def broken(name, change):
        run = tmp_path / name
        shutil.copytree(tiny_run, run)
        change(run / "adapter")
        return run

    weights = "adapter_model.safetensors"
    cases = [
        (lambda ad: (ad / weights).unlink(), "adapter weights missing"),
        (lambda ad: (ad / "tokenizer.json").unlink(), "tokenizer missing"),
        (lambda ad: (ad / "adapter_config.json").write_text("[]"), "expected a JSON object"),
        (lambda ad: (ad / "adapter_config.json").write_text("{}"), "peft_type"),
        (lambda ad: (ad / weights).write_bytes((ad / weights).read_bytes()[:100]),
         "cannot load adapter"),
    ]  # fmt: skip
    for n, (change, needle) in enumerate(cases):
        rc, _, err = _cli(capsys, "compare", a, b, "--adapter", str(broken(f"r{n}", change)))
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert rc == 1 and len(errors) == 1 and needle in errors[0], (needle, err)
        assert "does not fit" not in errors[0]


def test_same_filing_twice_is_user_error(capsys, tmp_path, tiny_run):
    a, b = PARSE / "simulated.txt", PARSE / "old_style.txt"
    for argv in (
        ("compare", str(a), str(a)),
        ("compare", str(a), str(PARSE / ".." / "parse" / a.name)),  # same file, other spelling
        ("rank", str(a), str(b), str(a)),
    ):
        rc, _, err = _cli(capsys, *argv, "--adapter", str(tiny_run))
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert rc == 1 and len(errors) == 1 and "given twice" in errors[0], (argv, err)
    # A copy under another name: the same document, refused before the model loads.
    copy = tmp_path / "copy.txt"
    copy.write_bytes(a.read_bytes())
    for argv in (("compare", str(a), str(copy)), ("rank", str(b), str(a), str(copy))):
        rc, _, err = _cli(capsys, *argv, "--adapter", str(tiny_run))
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert rc == 1 and len(errors) == 1, (argv, err)
        assert errors[0] == f"error: {copy}: the same document as {str(a)!r} (a copy?)"


def test_identical_content_is_an_exact_tie(tiny_run):
    """One filing against itself: both orders score the same, so P(A) is exactly 0.5 (and the
    verdict is A, as `p_a >= 0.5` says), not 0.49999999999999994 and "B". (The CLI refuses
    such a comparison: test_same_filing_twice_is_user_error.)"""
    from filingcontrast.predict import _load_doc, compare, load_scorer

    scorer = load_scorer(str(tiny_run))
    doc = _load_doc(str(PARSE / "simulated.txt"), None)
    res = compare(scorer.model, scorer.formatter, doc, doc, calibration=scorer.calibration)
    assert res["p_ab"] == res["p_ba"] and res["p_a"] == 0.5 and res["choice"] == "A"


def test_bradley_terry_no_interval_from_too_few_comparisons():
    # Regression: one comparison gave a zero-width interval, i.e. false certainty.
    bt = bradley_terry(2, [(0, 1, 0.6)], n_boot=50, seed=0)
    assert bt.scores[0] > 0 > bt.scores[1]
    assert np.isnan(bt.ci).all()
    # All pairs of 5 items but (3, 4): items 0-2 have 4 comparisons, 3 and 4 have 3.
    comps = [(i, j, 0.5 + 0.1 * (j - i)) for i in range(5) for j in range(i + 1, 5)]
    bt = bradley_terry(5, [c for c in comps if c[:2] != (3, 4)], n_boot=50, seed=0)
    assert not np.isnan(bt.ci[:3]).any() and np.isnan(bt.ci[3:]).all()
    assert np.all((bt.ci[:3, 0] <= bt.scores[:3]) & (bt.scores[:3] <= bt.ci[:3, 1]))


def test_cut_repetition_removes_only_a_loop_at_the_end():
    from filingcontrast.predict import cut_repetition

    date = [17, 4, 4, 5, 9]  # " 2022-01-14", say
    assert cut_repetition([3, 8] + date * 5 + date[:2]) == [3, 8] + date
    assert cut_repetition([1, 2, 3, 4, 5, 6]) == [1, 2, 3, 4, 5, 6]
    # a repeated stretch in the middle (",000,000,000") is not a loop at the end
    text = [1, 9, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 7, 8, 2]
    assert cut_repetition(text) == text
    assert cut_repetition([5, 5, 5, 5, 5, 5]) == [5, 5]  # period 1 counts as period 2
    # a loop that ends in a run of one token: its own period, not the run's, decides
    loop = [1, 2, 3, 0, 0, 0, 0, 0, 0]
    assert cut_repetition([7] + loop * 4) == [7] + loop


def test_printed_probabilities_keep_the_side_they_lie_on():
    """Regression: compare printed "B (P(A better) = 0.500 ...)" and JSON p_a 0.5 for
    P(A) = 0.49996, and rank printed -0.000: the rounding hid why the choice was B."""
    from filingcontrast.cli import _decimal
    from filingcontrast.predict import round_keeping_side

    assert (
        round_keeping_side(0.49996, 0.5) == 0.49996 and round_keeping_side(0.46312, 0.5) == 0.4631
    )
    assert round_keeping_side(0.5, 0.5) == 0.5
    assert [_decimal(0.49996, 3), _decimal(0.4631, 3), _decimal(0.5, 3)] == [
        "0.49996",
        "0.463",
        "0.500",
    ]
    assert [_decimal(-2e-5, 3, sign=True), _decimal(0.0, 3, sign=True)] == ["-0.00002", "+0.000"]


# ---------------------------------------------------------------------------------------------
# compare / rank: the verdict from both orders, the calibration, the aggregation into a ranking.


@pytest.fixture(scope="module")
def tiny_scorer(tiny_run):
    return load_scorer(str(tiny_run))


def _two_docs():
    from filingcontrast.predict import _load_doc

    return [
        _load_doc(str(PARSE / n), None) for n in ("simulated.txt", "modern_full_submission.txt")
    ]


def _raw_both_orders(scorer, doc_a, doc_b):
    """P(first shown is better) for (A, B) and (B, A), scored here from the real prompts."""
    from filingcontrast import pairs
    from filingcontrast.dataset import score_decisions
    from filingcontrast.predict import DEFAULT_DIGEST_TOKENS

    dig_a, dig_b = pairs.filing_digests([doc_a, doc_b], DEFAULT_DIGEST_TOKENS, scorer.tokenizer)
    prompts = [pairs.render_instruction(dig_a, dig_b), pairs.render_instruction(dig_b, dig_a)]
    p_ab, p_ba = score_decisions(scorer.model, scorer.formatter, prompts, batch_size=2)
    return float(p_ab), float(p_ba)


def test_compare_averages_the_two_orders(tiny_scorer):
    """p_a = 0.5 + (p_ab - p_ba) / 2 with p_ba scored with B shown first (a p_ba scored on the
    unswapped prompt again would give p_a = 0.5 for every pair, which the mirror check in
    test_compare_and_rank_cli_end_to_end cannot see)."""
    from filingcontrast.predict import compare

    doc_a, doc_b = _two_docs()
    p_ab, p_ba = _raw_both_orders(tiny_scorer, doc_a, doc_b)
    assert p_ab != p_ba  # the two orders differ, so P(A) is not 0.5
    res = compare(tiny_scorer.model, tiny_scorer.formatter, doc_a, doc_b)
    assert res["p_ab"] == pytest.approx(p_ab, abs=1e-4)
    assert res["p_ba"] == pytest.approx(p_ba, abs=1e-4)
    assert res["p_a"] == pytest.approx(0.5 + (p_ab - p_ba) / 2, abs=1e-4)
    # round_keeping_side keeps the digits that tell P(A) from 0.5
    assert res["p_a"] != 0.5 and res["choice"] == ("A" if p_ab > p_ba else "B")
    assert res["calibrated"] is False


def test_compare_and_rank_apply_the_calibration(tiny_scorer):
    """A fitted calibration maps each order's raw probability before the two are averaged."""
    from filingcontrast.calibration import Calibration
    from filingcontrast.dataset import score_decisions
    from filingcontrast.pairs import render_instruction
    from filingcontrast.predict import compare, rank_digests

    cal = Calibration(temperature=0.25, bias=-0.25, n_pairs=10)
    doc_a, doc_b = _two_docs()
    raw_ab, raw_ba = _raw_both_orders(tiny_scorer, doc_a, doc_b)
    ab, ba = float(cal.per_order(raw_ab)), float(cal.per_order(raw_ba))
    assert abs(ab - raw_ab) > 0.01 and abs(ba - raw_ba) > 0.01  # it changes things
    res = compare(tiny_scorer.model, tiny_scorer.formatter, doc_a, doc_b, calibration=cal)
    assert res["p_ab"] == pytest.approx(ab, abs=1e-4)
    assert res["p_ba"] == pytest.approx(ba, abs=1e-4)
    assert res["p_a"] == pytest.approx(0.5 + (ab - ba) / 2, abs=1e-4)
    assert res["calibrated"] is True
    # rank's comparisons: P(i beats j) from the calibrated orders too.
    digests = [f"Form: 8-K\nItems: 2.02\nRevenue grew {g}% to ${m} million." for g, m in
               ((5, 165), (-3, 120), (12, 240))]  # fmt: skip
    sched = [(0, 1), (0, 2), (1, 2)]
    prompts = [render_instruction(digests[i], digests[j]) for i, j in sched]
    prompts += [render_instruction(digests[j], digests[i]) for i, j in sched]
    raw = score_decisions(tiny_scorer.model, tiny_scorer.formatter, prompts, batch_size=8)
    want = 0.5 + (cal.per_order(raw[:3]) - cal.per_order(raw[3:])) / 2
    _, comps = rank_digests(tiny_scorer.model, tiny_scorer.formatter, digests, n_boot=0,
                            calibration=cal, schedule=sched)  # fmt: skip
    assert [c[:2] for c in comps] == sched
    assert np.allclose([c[2] for c in comps], want, atol=1e-5)
    assert not np.allclose(want, 0.5 + (raw[:3] - raw[3:]) / 2, atol=1e-4)


def test_rank_orders_filings_by_their_pairwise_verdicts(monkeypatch):
    """rank's aggregation, with the model replaced by known verdicts: filing 2 beats 0 beats 1
    (Bradley-Terry log-strengths 1.5, 0, -1), so the ranking is 2, 0, 1 with the scores a
    Bradley-Terry fit of exactly those comparisons gives."""
    import re
    from types import SimpleNamespace

    import filingcontrast.pairs as pairs_mod
    import filingcontrast.predict as predict_mod
    from filingcontrast.predict import Scorer, rank_cli

    strength = {"D0": 0.0, "D1": -1.0, "D2": 1.5}

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def p_first(instruction):
        a, b = re.search(r"Filing A:\nD(\d)\n\nFiling B:\nD(\d)$", instruction).groups()
        return sigmoid(strength[f"D{a}"] - strength[f"D{b}"])

    def fake_both_orders(model, formatter, ab, ba, batch_size=8, calibration=None, progress=None):
        p_ab, p_ba = np.array([p_first(s) for s in ab]), np.array([p_first(s) for s in ba])
        return 0.5 + (p_ab - p_ba) / 2, p_ab, p_ba

    scorer = Scorer(model=None, tokenizer=None, formatter=SimpleNamespace(tokenizer=None))
    monkeypatch.setattr(predict_mod, "load_scorer", lambda adapter, base: scorer)
    monkeypatch.setattr(pairs_mod, "filing_digests",
                        lambda docs, *a, **kw: [f"D{n}" for n in range(len(docs))])  # fmt: skip
    monkeypatch.setattr(predict_mod, "both_orders", fake_both_orders)
    files = [str(PARSE / n) for n in ("simulated.txt", "modern_full_submission.txt",
                                      "old_style.txt")]  # fmt: skip
    res = rank_cli(files, adapter="unused", k=2)
    assert res["comparisons"] == 3
    assert [r["id"] for r in res["ranking"]] == [files[2], files[0], files[1]]
    assert [r["rank"] for r in res["ranking"]] == [1, 2, 3]
    s = [strength[f"D{n}"] for n in range(3)]
    comps = [(i, j, sigmoid(s[i] - s[j])) for i, j in [(0, 1), (0, 2), (1, 2)]]
    want = bradley_terry(3, comps, n_boot=0).scores
    assert [r["score"] for r in res["ranking"]] == pytest.approx(want[[2, 0, 1]], abs=1e-4)
    assert want[2] > want[0] > want[1]
