"""LoRA training on tiny-llama: resume equals an uninterrupted run, outputs load with plain peft."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from filingcontrast.config import load_config
from filingcontrast.errors import CheckpointError, UserError
from filingcontrast.train import latest_checkpoint, load_trained, train, with_min_gap
from tests.train_rows import make_row, toy_rows, write_pairs


def _cfg(runs: Path, name: str, *extra: str):
    return load_config(
        None,
        [
            'base="tiny-llama"',
            f'name="{name}"',
            f'runs_dir="{runs.as_posix()}"',
            "train.epochs=2",
            "train.lr=1e-3",
            "train.batch_size=2",
            "train.grad_accum=2",
            "train.save_every=3",
            "train.max_valid_pairs=6",
            "train.threads=1",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), toy_rows(24, 0), toy_rows(6, 1))


@pytest.fixture(scope="module")
def full_run(pairs_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cfg = _cfg(runs, "full")
    return cfg, train(cfg, pairs_dir)


def _validation_rows() -> list[dict]:
    """10 validation pairs (calibration.MIN_PAIRS is 8), the last one far over 256 tokens."""
    long = make_row(9, "B", "guidance cut" + " filed report" * 200,
                    "record revenue" + " filed report" * 200)  # fmt: skip
    return toy_rows(9, 3) + [long]


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    """Two epochs with validation (>= 8 pairs: the calibration is fitted), max_seq_len 256,
    decision_weight 3; with what the validation scorer was given and gave back each epoch."""
    import filingcontrast.train as T

    pairs = write_pairs(tmp_path_factory.mktemp("pairs8"), toy_rows(8, 2), _validation_rows())
    cfg = _cfg(tmp_path_factory.mktemp("runs"), "scored", "train.max_valid_pairs=0",
               "train.max_seq_len=256", "train.decision_weight=3", "train.save_every=0")  # fmt: skip
    real, calls = T.pair_probabilities, []

    def scorer(model, formatter, rows, *args, **kwargs):
        out = real(model, formatter, rows, *args, **kwargs)
        calls.append(([r["instruction"] for r in rows], out))
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(T, "pair_probabilities", scorer)
        summary = train(cfg, pairs)
    return cfg, pairs, summary, calls


def _formatter(cfg):
    from filingcontrast.dataset import PromptFormatter
    from filingcontrast.model import load_tokenizer

    return PromptFormatter(load_tokenizer(cfg.base), cfg.train.template, cfg.train.system_prompt)


def test_validation_scores_the_fitted_prompts(scored_run):
    """Regression: validation scored the untrimmed instruction of a row over max_seq_len (the
    score that picks the epoch and fits the calibration), not the prompt training saw."""
    cfg, _, summary, calls = scored_run
    fmt, rows = _formatter(cfg), _validation_rows()
    fitted = [fmt.fit_row(r, 256)["instruction"] for r in rows]
    assert fitted[:-1] == [r["instruction"] for r in rows[:-1]]
    untrimmed = len(fmt.prompt_ids(rows[-1]["instruction"]))
    assert len(fmt.decision_prompt_ids(fitted[-1])) < 256 < untrimmed
    assert len(calls) == len(summary["evals"]) == 2
    assert all(given == fitted for given, _ in calls)


def test_validation_accuracy_and_kept_epoch_follow_the_winners(scored_run):
    """Each epoch's valid_accuracy is the credit of the scored P(A) against the rows' winners, and
    the adapter kept is the epoch with the best (accuracy, -loss)."""
    from filingcontrast.metrics import correctness

    cfg, _, summary, calls = scored_run
    a_won = [float(r["meta"]["winner"] == "A") for r in _validation_rows()]
    accuracies = [float(correctness(p_a, a_won).mean()) for _, (p_a, _, _) in calls]
    assert any(acc != 0.5 for acc in accuracies)  # labels read backwards would show
    assert [e["valid_accuracy"] for e in summary["evals"]] == pytest.approx(accuracies, abs=1e-12)
    scores = [(e["valid_accuracy"], -e["valid_loss"]) for e in summary["evals"]]
    best = max(range(len(scores)), key=lambda k: scores[k])
    meta = json.loads((cfg.run_dir / "adapter" / "filingcontrast.json").read_text())
    assert meta["epoch"] == summary["evals"][best]["epoch"]
    assert meta["valid_accuracy"] == accuracies[best]


def test_calibration_is_fitted_on_the_kept_epochs_validation_scores(scored_run):
    """With >= 8 validation pairs the adapter stores a fitted calibration: the one fitted on its
    epoch's scores, p_ab as P(A first) and p_ba as P(B first), against the winners."""
    from filingcontrast.calibration import fit_calibration

    cfg, _, summary, calls = scored_run
    winners = [r["meta"]["winner"] for r in _validation_rows()]
    meta = json.loads((cfg.run_dir / "adapter" / "filingcontrast.json").read_text())
    kept = [e["epoch"] for e in summary["evals"]].index(meta["epoch"])
    _, p_ab, p_ba = calls[kept][1]
    expected = fit_calibration(p_ab, p_ba, winners).to_dict()
    assert expected["n_pairs"] == 10
    assert expected != fit_calibration(p_ba, p_ab, winners).to_dict()  # orientation shows
    assert meta["calibration"] == pytest.approx(expected, rel=1e-9)


def test_decision_weight_counts_in_the_loss_normaliser(scored_run):
    """train.decision_weight=3: a step's loss is the decision-weighted mean (loss_step), the
    decision tokens counted 3 times in the denominator too. The LoRA B matrices start at zero,
    so step 1's loss is the base model's on the first step's rows."""
    import torch

    from filingcontrast.dataset import collate, encode_rows, loss_step
    from filingcontrast.model import load_base
    from filingcontrast.train import read_pairs, step_plan

    cfg, pairs, summary, _ = scored_run
    base, tok = load_base(cfg.base, device="cpu", seed=cfg.seed)
    examples, _ = encode_rows(_formatter(cfg), read_pairs(pairs, "train"), 256)
    first = step_plan([len(e) for e in examples], cfg.train, 1, cfg.seed, 0)[0]
    batch = collate([examples[i] for mb in first for i in mb], tok.pad_token_id)
    with torch.no_grad():
        expected, stats = loss_step(base, batch, decision_weight=3.0)
    assert stats["decision_tokens"] == 4
    assert summary["losses"][0] == pytest.approx(float(expected), rel=1e-5)


def test_cap_samples_whole_pairs_in_file_order():
    """train.max_train_pairs / max_valid_pairs: a seeded subset of whole pairs (both orders of a
    swap-augmented pair together), in file order, stopping at the first pair that reaches the
    cap; rows without a pair_id are sampled one by one."""
    import copy

    from filingcontrast.train import _cap

    rows = []
    for row in toy_rows(10, 0):
        second = copy.deepcopy(row)  # the other order: same pair_id
        second["meta"]["swapped"] = True
        rows += [row, second]
    subsets = set()
    for seed in range(4):
        for cap, size in ((6, 6), (5, 6), (1, 2)):
            kept = _cap(rows, cap, seed)
            assert len(kept) == size, (seed, cap)
            ids = [r["meta"]["pair_id"] for r in kept]
            assert all(ids.count(i) == 2 for i in ids), (seed, cap)
            where = [next(k for k, r in enumerate(rows) if r is x) for x in kept]
            assert where == sorted(where)
        subsets.add(tuple(r["meta"]["pair_id"] for r in _cap(rows, 6, seed)))
        assert _cap(rows, 6, seed) == _cap(rows, 6, seed)
    assert len(subsets) > 1  # the seed picks the pairs
    assert _cap(rows, 0, 0) is rows and _cap(rows, 20, 0) is rows
    loose = [{"instruction": str(i)} for i in range(10)]
    assert len(_cap(loose, 4, 0)) == 4


def test_train_writes_run_dir_and_metrics(full_run):
    cfg, summary = full_run
    run = cfg.run_dir
    assert summary["steps"] == summary["total_steps"] == 2 * 6  # 24 rows / (2 * 2) per step
    for name in ("config.toml", "log.txt", "metrics.jsonl", "adapter/adapter_config.json"):
        assert (run / name).exists(), name
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if x["type"] == "train"]
    eval_lines = [x for x in lines if x["type"] == "eval"]
    assert [x["step"] for x in train_lines] == list(range(1, 13))
    assert {"loss", "lr", "tokens_per_s", "padding_share", "epoch"} <= set(train_lines[0])
    assert len(eval_lines) == 2 and "2.02" in eval_lines[0]["by_item"]
    assert 0 <= eval_lines[-1]["valid_accuracy"] <= 1
    meta = json.loads((run / "adapter" / "filingcontrast.json").read_text())
    assert meta["base"] == "tiny-llama" and meta["template"] == "chat"
    assert meta["decision_ids"] == [330, 389]
    # What it learned from and what tuned it, for evaluate's check (evaluate.check_unseen).
    assert meta["seen_filings"]["train"] == sorted({f"{s}{i}" for s in "ab" for i in range(24)})
    assert meta["seen_filings"]["valid"] == sorted({f"{s}{i}" for s in "ab" for i in range(6)})
    # 6 validation pairs are below calibration.MIN_PAIRS: the identity is stored, not a fit.
    assert meta["calibration"] == {"temperature": 1.0, "bias": 0.0, "n_pairs": 0,
                                   "log_loss_before": None, "log_loss_after": None}  # fmt: skip
    assert summary["losses"][-1] < summary["losses"][0]  # lr 1e-3 on tiny-llama: loss goes down
    assert (latest_checkpoint(run) / "COMPLETE").exists()


def test_resume_reproduces_uninterrupted_losses(full_run, pairs_dir, tmp_path):
    _, full = full_run
    cfg = _cfg(tmp_path, "resumed")
    first = train(cfg, pairs_dir, stop_after=4)  # interrupted mid-epoch (6 steps/epoch)
    assert first["interrupted"] and first["steps"] == 4
    with pytest.raises(UserError, match="--resume"):
        train(cfg, pairs_dir)
    second = train(cfg, pairs_dir, resume=True, stop_after=4)  # across the epoch boundary
    assert second["steps"] == 8
    third = train(cfg, pairs_dir, resume=True)
    assert third["steps"] == 12 and not third["interrupted"]
    assert third["losses"] == pytest.approx(full["losses"], abs=1e-6)


def test_the_printed_resume_command_works_as_printed(full_run, pairs_dir, tmp_path, capsys):
    """Regression: the interrupt message said "continue with --resume", and `--resume` without
    every override of the first command was refused (settings differ)."""
    import shlex

    from filingcontrast.cli import main
    from filingcontrast.train import resume_command

    _, full = full_run
    cfg = _cfg(tmp_path, "hint")
    first = train(cfg, pairs_dir, stop_after=4)
    assert first["interrupted"]
    command = resume_command(cfg.run_dir, pairs_dir)
    assert command in (cfg.run_dir / "log.txt").read_text()
    assert main(shlex.split(command)[1:]) == 0
    last = json.loads(capsys.readouterr().out)
    assert last["losses"] == pytest.approx(full["losses"], abs=1e-6)


def test_incomplete_checkpoint_is_ignored(full_run):
    cfg, _ = full_run
    ckpts = cfg.run_dir / "checkpoints"
    fake = ckpts / "step-9999999"
    fake.mkdir()
    (fake / "adapter.pt").write_text("half")
    try:
        assert latest_checkpoint(cfg.run_dir).name != fake.name
    finally:
        shutil.rmtree(fake)


def test_adapter_loads_with_plain_peft(full_run, tmp_path):
    cfg, _ = full_run
    from filingcontrast.model import load_base

    base, tok = load_base("tiny-llama", device="cpu")
    base.save_pretrained(tmp_path / "base")
    script = textwrap.dedent(
        f"""
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer
        base = AutoModelForCausalLM.from_pretrained({str(tmp_path / "base")!r})
        tok = AutoTokenizer.from_pretrained({str(cfg.run_dir / "adapter")!r})
        model = PeftModel.from_pretrained(base, {str(cfg.run_dir / "adapter")!r}).eval()
        ids = torch.tensor([tok("Filing A resulted").input_ids])
        with torch.no_grad():
            print(float(model(input_ids=ids).logits[0, -1].sum()))
        """
    )
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    import torch

    model, tokenizer, formatter, meta = load_trained(cfg.run_dir, device="cpu")
    ids = torch.tensor([tokenizer("Filing A resulted").input_ids])
    with torch.no_grad():
        ours = float(model(input_ids=ids).logits[0, -1].sum())
        plain = float(base(input_ids=ids).logits[0, -1].sum())
    assert float(out.stdout.split()[-1]) == pytest.approx(ours, rel=1e-4)
    assert ours != pytest.approx(plain, rel=1e-6)  # the adapter changed the model
    assert formatter.template == meta["template"] == "chat"


def test_load_trained_errors(full_run, tmp_path):
    cfg, _ = full_run
    with pytest.raises(UserError, match="no trained adapter"):
        load_trained(tmp_path)
    with pytest.raises(UserError, match="field base: adapter was trained on"):
        load_trained(cfg.run_dir, base="smollm2-135m-instruct")


def test_merge_export_and_checkpointing(pairs_dir, tmp_path):
    cfg = _cfg(
        tmp_path, "merged", "train.max_steps=2", "train.merge=true", 'train.grad_checkpointing="on"'
    )
    summary = train(cfg, pairs_dir)
    assert summary["checkpointing"] == "full" and summary["steps"] == 2
    assert (cfg.run_dir / "merged" / "model.safetensors").exists()
    # max_steps stopped mid-epoch 1: the eval line, the adapter and the train lines say epoch 1
    # (the eval said 0), and each train line logs the rate its update used (warm-up: 0 first).
    lines = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 1, 1]
    meta = json.loads((cfg.run_dir / "adapter" / "filingcontrast.json").read_text())
    assert meta["epoch"] == 1
    assert [x["lr"] for x in lines if x["type"] == "train"] == [0.0, cfg.train.lr]
    assert not list(cfg.run_dir.glob(".*tmp*"))


def test_checkpointing_modes_train_the_same_losses(pairs_dir, tmp_path):
    """Checkpointing is speed and memory only (train.RESUME_FREE): three steps with dropout
    give the same losses, bit for bit, off and selective (the RNG stream is not disturbed by
    the recomputation)."""
    losses = {}
    for mode in ("off", "selective"):
        cfg = _cfg(tmp_path, mode, "train.max_steps=3", f'train.grad_checkpointing="{mode}"')
        assert train(cfg, pairs_dir)["checkpointing"] == (None if mode == "off" else mode)
        losses[mode] = _train_losses(cfg.run_dir)
    assert len(losses["off"]) == 3 and losses["off"] == losses["selective"]


def _train_losses(run_dir: Path) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["type"] == "train"]


def test_console_script_restarts_with_the_allocator_as_it_was_started(
    pairs_dir, tmp_path, cli_allocator
):
    """The `filingcontrast` script restarts itself with its own interpreter and script (not
    `python -m`, which would put the working directory first on sys.path and import a
    `filingcontrast` folder there); `python -c` calling main() is not restarted (replaying it
    could repeat the caller's work) and keeps the allocator it was started with."""
    script = Path(sys.executable).parent / "filingcontrast"
    if not script.is_file():
        pytest.skip("no console script next to this interpreter (package not pip-installed)")
    decoy = tmp_path / "filingcontrast"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy was imported')\n")
    args = ["train", "--pairs", str(pairs_dir), 'base="tiny-llama"', "train.max_steps=1",
            "train.eval_every_epoch=false", "train.threads=1"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    elsewhere = tmp_path / "elsewhere"  # `-c` imports from its working directory by design
    elsewhere.mkdir()
    for name, cmd, cwd in (
        ("script", [str(script), *args, "--out", str(tmp_path / "script")], tmp_path),
        ("inline", [sys.executable, "-c", "import sys; from filingcontrast.cli import main; "
                    "sys.exit(main())", *args, "--out", str(tmp_path / "inline")], elsewhere),
    ):  # fmt: skip
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        assert out.returncode == 0, (name, out.stderr[-2000:])
        log = (tmp_path / name / "log.txt").read_text()
        expected = cli_allocator if name == "script" else "system"
        assert f"allocator {expected});" in log, name


def test_two_cpu_processes_match_one_with_double_batch(pairs_dir, tmp_path, cli_allocator):
    """DDP over gloo: 2 processes x batch 2 train like 1 process x batch 4 (no dropout); each
    process trains on its own slice of every global micro-batch (~25 s)."""
    import filingcontrast

    common = [
        'base="tiny-llama"', "train.epochs=1", "train.lr=1e-3", "train.lora_dropout=0.0",
        "train.grad_accum=1", "train.max_steps=3", "train.eval_every_epoch=false",
        "train.threads=1",
    ]  # fmt: skip
    src = Path(filingcontrast.__file__).resolve().parents[1]  # the package this suite tests
    env = {**os.environ, "PYTHONPATH": str(src), "TOKENIZERS_PARALLELISM": "false",
           "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    one = subprocess.run(
        [sys.executable, "-m", "filingcontrast", "train", "--pairs", str(pairs_dir),
         "--out", str(tmp_path / "one"), *common, "train.batch_size=4"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        # `--cpu` with 2 processes starts only one; `--multi_gpu` without GPUs gives MULTI_CPU (gloo)
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "filingcontrast", "train", "--pairs", str(pairs_dir),
         "--out", str(tmp_path / "two"), *common, "train.batch_size=2"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    losses_one, losses_two = _train_losses(tmp_path / "one"), _train_losses(tmp_path / "two")
    assert len(losses_one) == len(losses_two) == 3
    assert losses_two == pytest.approx(losses_one, rel=1e-5)
    assert (tmp_path / "two" / "adapter" / "adapter_config.json").exists()
    # the launched processes restarted themselves with the allocator (rank 0's log says so)
    assert f"allocator {cli_allocator});" in (tmp_path / "two" / "log.txt").read_text()


def test_training_path_imports_without_corpus_and_plotting_libraries():
    """The GPU image has torch/transformers/peft/accelerate only: keep DuckDB, bs4 and
    matplotlib out of the training import path."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for name in ('duckdb', 'matplotlib', 'bs4', 'lxml', 'sklearn', 'pandas'):\n"
        "    sys.modules[name] = None\n"
        "import filingcontrast.train, filingcontrast.dataset, filingcontrast.pairs\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_lora_layers_adapts_only_the_top_layers_and_truncates_backward(tmp_path):
    """train.lora_layers=1 on the 2-layer tiny model: adapters in layer 1 only, every linear
    projection there, and no gradient reaches layer 0 (the backward stops at layer 1)."""
    import torch

    from filingcontrast.train import build_model

    model, _ = build_model(_cfg(tmp_path, "top", "train.lora_layers=1"), "cpu")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(".layers.1." in n for n in names)
    projections = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    assert projections == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"}  # fmt: skip
    seen = []
    layer0 = model.get_base_model().model.layers[0]
    layer0.register_full_backward_hook(lambda *a: seen.append(1))
    ids = torch.tensor([[1, 5, 9, 4]])
    model(input_ids=ids, labels=ids).loss.backward()
    assert seen == []  # nothing below the lowest adapted layer is differentiated
    with pytest.raises(UserError, match="train.lora_layers=3: .* only 2 decoder layers"):
        build_model(_cfg(tmp_path, "top", "train.lora_layers=3"), "cpu")
    # regression: peft's message printed the whole module, over 20 lines
    with pytest.raises(UserError, match=r"Target module LlamaModel is not supported") as info:
        build_model(_cfg(tmp_path, "top", 'train.lora_targets=["model"]'), "cpu")
    assert "\n" not in str(info.value)


def test_fused_lora_setting_picks_the_layer_class(tmp_path):
    """train.fused_lora (default true) builds filingcontrast.lora's layer; false, peft's own."""
    from peft.tuners.lora.layer import Linear as PeftLoraLinear

    from filingcontrast.lora import FusedLoraLinear
    from filingcontrast.train import build_model

    fused, _ = build_model(_cfg(tmp_path, "fused"), "cpu")
    plain, _ = build_model(_cfg(tmp_path, "plain", "train.fused_lora=false"), "cpu")
    assert sum(isinstance(m, FusedLoraLinear) for m in fused.modules()) == 14
    lora_plain = [m for m in plain.modules() if isinstance(m, PeftLoraLinear)]
    assert len(lora_plain) == 14 and not any(isinstance(m, FusedLoraLinear) for m in lora_plain)


def test_loraplus_ratio_gives_the_b_matrices_the_higher_lr(tmp_path):
    """train.loraplus_ratio=16: peft's LoRA+ groups, every lora_B weight at 16 x lr and every
    lora_A weight at lr; 0 (default) keeps one group at lr. Values in (0, 1) are refused."""
    from filingcontrast.train import build_model, make_optimizer

    cfg = _cfg(tmp_path, "plus", "train.loraplus_ratio=16")
    model, _ = build_model(cfg, "cpu")
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {names[id(p)]: g["lr"] for g in make_optimizer(model, cfg.train).param_groups
           for p in g["params"]}  # fmt: skip
    assert len(lrs) == sum(p.requires_grad for p in model.parameters())
    assert all(lr == pytest.approx(16e-3) for n, lr in lrs.items() if "lora_B" in n)
    assert all(lr == pytest.approx(1e-3) for n, lr in lrs.items() if "lora_A" in n)
    plain = make_optimizer(model, _cfg(tmp_path, "plain").train)
    assert [g["lr"] for g in plain.param_groups] == [1e-3]
    with pytest.raises(UserError, match="train.loraplus_ratio"):
        _cfg(tmp_path, "bad", "train.loraplus_ratio=0.5")


def test_adapter_load_does_not_repeat_peft_deprecation_warning(full_run):
    """Regression: every adapter load printed peft 0.21's FutureWarning about transformers 5's
    `is_gradient_checkpointing`; wrapping is now done with that one warning filtered."""
    import warnings

    cfg, _ = full_run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_trained(cfg.run_dir, device="cpu")
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


def test_min_train_gap_keeps_only_wide_gaps():
    """(A missing or non-numeric meta.gap is refused by pairs.load_pairs: test_pairs.py.)"""
    rows = toy_rows(4, 0)
    for row, gap in zip(rows, (0.005, 0.02, 0.08, 0.2), strict=True):
        row["meta"]["gap"] = gap
    assert with_min_gap(rows, 0.0) == rows
    kept = with_min_gap(rows, 0.05)
    assert [r["meta"]["gap"] for r in kept] == [0.08, 0.2]
    with pytest.raises(Exception, match="min_train_gap"):
        load_config(None, ["train.min_train_gap=-1"])


def test_min_train_gap_that_keeps_no_rows_is_a_one_line_error(pairs_dir, tmp_path):
    cfg = _cfg(tmp_path, "nogap", "train.min_train_gap=10.0")
    with pytest.raises(UserError, match=r"train\.min_train_gap=10: keeps 0 of 24 training rows"):
        train(cfg, pairs_dir)


def test_bad_out_dir_and_bad_pairs_fail_before_anything_is_written(pairs_dir, tmp_path):
    """Regressions: --out at a file was a bare OSError; a run dir left by a killed run (metrics,
    adapter, no checkpoint) was trained into again, appending to its metrics.jsonl; bad pairs
    and a --resume without checkpoint left a fresh run dir with a config.toml behind."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UserError, match="must be a directory"):
        train(_cfg(tmp_path, "file"), pairs_dir)
    left = tmp_path / "left"
    left.mkdir()
    (left / "metrics.jsonl").write_text('{"type": "train", "step": 1}\n')
    with pytest.raises(UserError, match=r"left: holds an earlier training run \(metrics.jsonl\)"):
        train(_cfg(tmp_path, "left"), pairs_dir)
    with pytest.raises(UserError, match="no complete checkpoint"):
        train(_cfg(tmp_path, "fresh"), pairs_dir, resume=True)
    bad = write_pairs(tmp_path / "bad-pairs", toy_rows(4, 0), toy_rows(2, 1))
    (bad / "train.jsonl").write_text((bad / "train.jsonl").read_text() + "{oops\n")
    with pytest.raises(UserError, match=r"train.jsonl:5: invalid JSON"):
        train(_cfg(tmp_path, "fresh"), bad)
    assert not (tmp_path / "fresh").exists()


def test_resume_refuses_other_settings_other_rows_and_damaged_checkpoints(
    full_run, pairs_dir, tmp_path, monkeypatch
):
    """Regressions: --resume with another lora_r was a size-mismatch traceback, with another
    grad_accum/epochs or other pairs it silently trained something else; a damaged checkpoint
    file was a torch traceback."""
    cfg, _ = full_run
    run = tmp_path / "copy"
    shutil.copytree(cfg.run_dir, run)
    with pytest.raises(UserError, match=r"train\.lora_r: checkpoint 16, now 8"):
        train(_cfg(tmp_path, "copy", "train.lora_r=8"), pairs_dir, resume=True)
    other = write_pairs(tmp_path / "other", toy_rows(24, 5), toy_rows(6, 1))
    with pytest.raises(UserError, match="training rows differ"):
        train(_cfg(tmp_path, "copy"), other, resume=True)
    with monkeypatch.context() as m:  # refused before the model loads (minutes on a big base)
        m.setattr("filingcontrast.train.build_model", lambda *a: pytest.fail("model loaded"))
        with pytest.raises(CheckpointError, match=r"train\.lora_r: checkpoint 16, now 8"):
            train(_cfg(tmp_path, "copy", "train.lora_r=8"), pairs_dir, resume=True)
    assert (run / "config.toml").read_text() == (cfg.run_dir / "config.toml").read_text()
    summary = (run / "train_summary.json").read_text()
    with pytest.raises(UserError, match=r"copy: training finished \(12 steps\); nothing to"):
        train(_cfg(tmp_path, "copy"), pairs_dir, resume=True)  # it rewrote the summary, evals lost
    assert (run / "train_summary.json").read_text() == summary
    (run / "train_summary.json").unlink()  # killed in the final phase: resume finishes it
    assert train(_cfg(tmp_path, "copy"), pairs_dir, resume=True)["steps"] == 12
    (latest_checkpoint(run) / "optimizer.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"optimizer\.pt: damaged checkpoint") as info:
        train(_cfg(tmp_path, "copy", "train.threads=2"), pairs_dir, resume=True)
    assert isinstance(info.value, CheckpointError)  # what the demo restarts from scratch on


@pytest.fixture
def terminal_signals():
    """SIGINT and SIGTERM as a terminal session has them. A suite started in the background
    (`make test &` in a script) inherits SIGINT ignored, and the trainer rightly leaves a
    handler it did not expect alone, so the Ctrl-C these tests send would be lost."""
    import signal

    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    old = {signum: signal.signal(signum, handler) for signum, handler in defaults.items()}
    yield
    for signum, handler in old.items():
        signal.signal(signum, handler)


def test_interrupts_mid_step_during_update_and_during_eval_resume_exactly(
    full_run, pairs_dir, tmp_path, monkeypatch, terminal_signals
):
    """Regressions: a Ctrl-C inside a step saved the RNG its dropout had advanced (the resumed
    losses differed from an uninterrupted run); one during the validation after an epoch lost
    that epoch's evaluation; metrics.jsonl lines written after the checkpoint were duplicated."""
    import signal

    import filingcontrast.train as T

    _, full = full_run
    cfg = _cfg(tmp_path, "cut")  # lora_dropout 0.05: random draws in every step
    real_step, real_eval, calls = T.train_step, T._eval_and_keep, {"step": 0, "eval": 0}

    def boom() -> None:
        raise KeyboardInterrupt

    def sigint_in_update(hold):
        def before_update() -> None:
            hold()
            os.kill(os.getpid(), signal.SIGINT)  # held until the step is recorded

        return before_update

    def step(*args, before_update=None, **kwargs):
        calls["step"] += 1
        if calls["step"] == 2:  # after forward/backward, before the update
            return real_step(*args, before_update=boom, **kwargs)
        if calls["step"] == 4:
            return real_step(*args, before_update=sigint_in_update(before_update), **kwargs)
        return real_step(*args, before_update=before_update, **kwargs)

    def first_eval_cut(*args, **kwargs):
        calls["eval"] += 1
        if calls["eval"] == 1:
            raise KeyboardInterrupt
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(T, "train_step", step)
    monkeypatch.setattr(T, "_eval_and_keep", first_eval_cut)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, pairs_dir)
    assert latest_checkpoint(cfg.run_dir).name == "step-0000001"  # step 2 not applied
    with pytest.raises(KeyboardInterrupt):
        train(cfg, pairs_dir, resume=True)
    assert latest_checkpoint(cfg.run_dir).name == "step-0000003"  # held until recorded
    with pytest.raises(KeyboardInterrupt):
        train(cfg, pairs_dir, resume=True)  # cut in the validation after epoch 1 (step 6)
    state = json.loads((latest_checkpoint(cfg.run_dir) / "state.json").read_text())
    assert state["global_step"] == 6 and state["pending_eval"]
    with (cfg.run_dir / "metrics.jsonl").open("a") as fh:  # as if killed after the checkpoint
        fh.write('{"type": "train", "step": 7, "loss": 0}\n{"type": "tr')
    last = train(cfg, pairs_dir, resume=True)
    assert last["losses"] == pytest.approx(full["losses"], abs=1e-6)
    lines = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["type"] == "train"] == list(range(1, 13))
    assert [x["epoch"] for x in lines if x["type"] == "eval"] == [1, 2]


def test_non_finite_loss_stops_with_one_line_and_no_summary(pairs_dir, tmp_path, monkeypatch):
    """Regression: a diverged run (NaN loss) finished as `done` with a NaN adapter."""
    import torch

    import filingcontrast.train as T

    real_build = T.build_model

    def diverged(cfg, device):  # one adapter weight is NaN, as after a diverged update
        model, tokenizer = real_build(cfg, device)
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if "lora_B" in n).fill_(float("nan"))
        return model, tokenizer

    monkeypatch.setattr(T, "build_model", diverged)
    cfg = _cfg(tmp_path, "nan")
    with pytest.raises(UserError, match=r"training loss is nan at step 1; lower train\.lr"):
        train(cfg, pairs_dir)
    assert not (cfg.run_dir / "train_summary.json").exists()
    assert not (cfg.run_dir / "adapter").exists()


def test_sigterm_checkpoints_like_ctrl_c(
    full_run, pairs_dir, tmp_path, monkeypatch, terminal_signals
):
    """Regression: SIGTERM (`timeout`, a scheduler stopping the job) killed the run without a
    checkpoint; it now stops as Ctrl-C does and --resume gives the uninterrupted losses."""
    import signal

    import filingcontrast.train as T

    _, full = full_run
    cfg = _cfg(tmp_path, "term")
    real_step, calls = T.train_step, {"step": 0}

    def step(*args, **kwargs):
        calls["step"] += 1
        if calls["step"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(T, "train_step", step)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(cfg, pairs_dir)
    assert stopped.value.signum == signal.SIGTERM  # the CLI exits 128 + 15, as a shell reports
    assert latest_checkpoint(cfg.run_dir).name == "step-0000002"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    monkeypatch.setattr(T, "train_step", real_step)
    last = train(cfg, pairs_dir, resume=True)
    assert last["losses"] == pytest.approx(full["losses"], abs=1e-6)


def _grads_and_backward_ops(model, mode: str) -> tuple[dict, dict]:
    """LoRA gradients of one loss on a fixed batch, and how many matmuls and attention-forward
    calls the backward pass ran (its own, plus whatever checkpointing recomputed)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from filingcontrast.train import enable_checkpointing

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: dict[str, int] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func)
            if "backward" not in name and ("aten.mm" in name or "scaled_dot_product" in name):
                key = "attention" if "scaled_dot_product" in name else "mm"
                self.ops[key] = self.ops.get(key, 0) + 1
            return func(*args, **(kwargs or {}))

    if mode != "off":
        enable_checkpointing(model, selective=mode == "selective")
    model.train()
    torch.manual_seed(0)  # the same LoRA dropout masks in every mode
    device = next(model.parameters()).device
    ids = torch.tensor([[1, 5, 9, 4, 7, 3, 8, 2], [2, 6, 4, 4, 9, 1, 3, 5]], device=device)
    loss = model(input_ids=ids, labels=ids).loss
    with Count() as count:
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return grads, count.ops


def test_selective_checkpointing_same_gradients_less_recomputation(tmp_path):
    """train.grad_checkpointing=selective: the same LoRA gradients, bit for bit, as no
    checkpointing and full checkpointing (dropout masks included), while its backward pass reruns no attention kernel
    and fewer matmuls than full checkpointing does."""
    import copy

    import torch

    from filingcontrast.train import build_model, checkpointing_mode

    model, _ = build_model(_cfg(tmp_path, "sel"), "cpu")
    results = {
        m: _grads_and_backward_ops(copy.deepcopy(model), m) for m in ("off", "on", "selective")
    }
    (g_off, ops_off), (g_full, ops_full), (g_sel, ops_sel) = (results[m] for m in results)
    for name, grad in g_off.items():  # bit for bit: checkpointing is a speed/memory setting
        assert torch.equal(g_full[name], grad) and torch.equal(g_sel[name], grad), name
    # the backward's own matmuls (input gradients, LoRA weight gradients) are in every count
    assert "attention" not in ops_off and "attention" not in ops_sel
    assert ops_full["attention"] == 2  # recomputed, one per layer of the tiny model
    assert ops_off["mm"] < ops_sel["mm"] < ops_full["mm"]
    tc = _cfg(tmp_path, "x", 'train.grad_checkpointing="selective"').train
    assert checkpointing_mode(tc, 10) == "selective"
    tc = _cfg(tmp_path, "x").train  # auto: full checkpointing past the threshold only
    assert checkpointing_mode(tc, tc.checkpointing_threshold) is None
    assert checkpointing_mode(tc, tc.checkpointing_threshold + 1) == "full"


def test_rows_seen_counts_what_the_steps_went_through():
    """A run stopped by max_steps trained on fewer rows than it kept; the report says so."""
    from filingcontrast.config import TrainConfig
    from filingcontrast.train import rows_seen

    tc = TrainConfig(batch_size=1, grad_accum=4)
    lengths = [100 + i for i in range(10)]  # 3 steps an epoch: 4, 4 and 2 rows
    assert [rows_seen(lengths, tc, 1, 0, s, 3) for s in (0, 2, 3, 5)] == [0, 8, 10, 18]


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("key_facts", "no", "bool"),  # regression: "no" was read as true and changed the prompt
        ("digest_tokens", "abc", "int or null"),
        ("base", 5, "str"),
        ("system_prompt", 5, "str"),
    ],
)
def test_hand_edited_adapter_meta_is_checked(tmp_path, field, value, expected):
    from filingcontrast.train import META_FILE, adapter_meta, pairs_digest_meta

    meta = {"base": "tiny-llama", "template": "chat", "key_facts": False, field: value}
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(UserError, match=rf"{META_FILE}: field {field}: expected {expected}, got"):
        adapter_meta(tmp_path)
    if field in ("key_facts", "digest_tokens"):  # the pairs summary train copies them from
        (tmp_path / "summary.json").write_text(json.dumps({field: value}))
        with pytest.raises(UserError, match=rf"summary\.json: field {field}: expected {expected}"):
            pairs_digest_meta(tmp_path)


# ---------------------------------------------------------------------------------------------
# Fast unit checks of the step's loss normalisation, validation loss and step plan (tiny model,
# no run directory).


@pytest.fixture(scope="module")
def tiny_parts():
    from filingcontrast.dataset import PromptFormatter, encode_rows
    from filingcontrast.model import load_base, load_tokenizer

    tok = load_tokenizer("tiny-llama")
    model, _ = load_base("tiny-llama", device="cpu")
    fmt = PromptFormatter(tok, "chat", "sys")
    rows = toy_rows(4, 5)
    for row, extra in zip(rows, (0, 40, 3, 70)):  # very different answer lengths per row
        row["output"] += " word" * extra
    examples, _ = encode_rows(fmt, rows, 1024)
    assert len(examples) == 4
    return model, fmt, rows, examples


def _step_loss_and_grads(model, examples, step, batch_size, grad_accum, weight, pad_id):
    """train_step on a plain model with a one-process stand-in for accelerate: its loss and the
    gradients it would apply."""
    from types import SimpleNamespace

    from filingcontrast.config import TrainConfig
    from filingcontrast.train import _module, train_step

    tc = TrainConfig(batch_size=batch_size, grad_accum=grad_accum, decision_weight=weight)
    acc = SimpleNamespace(num_processes=1, process_index=0, device="cpu",
                          backward=lambda loss: loss.backward())  # fmt: skip
    import torch

    grads = {}

    def capture():
        grads.update({n: p.grad.detach().clone() for n, p in model.named_parameters()
                      if p.grad is not None})  # fmt: skip

    optimizer = SimpleNamespace(step=lambda: None,
                                zero_grad=lambda set_to_none=True: model.zero_grad(set_to_none=True))  # fmt: skip
    scheduler = SimpleNamespace(step=lambda: None)
    model.zero_grad(set_to_none=True)
    wrapped = _module(model, weight)
    loss, tokens, padded = train_step(wrapped, acc, examples, step, tc, pad_id,
                                      optimizer, scheduler, before_update=capture)  # fmt: skip
    assert grads, "the update saw no gradients"
    first, grads = grads, {}
    # the same step again: nothing left over from the first (gradients cleared after the update)
    again, _, _ = train_step(wrapped, acc, examples, step, tc, pad_id, optimizer, scheduler,
                             before_update=capture)  # fmt: skip
    assert again == pytest.approx(loss, rel=1e-6)
    for name, g in first.items():
        torch.testing.assert_close(grads[name], g, rtol=1e-4, atol=1e-7, msg=name)
    return loss, first, tokens, padded


def test_accumulated_step_is_the_token_mean_of_the_whole_step_not_of_each_micro_batch(
    tiny_parts,
):
    """Regression class: loss normalised per micro-batch (mean of means) weighs a short answer's
    tokens like a long one's. With grad_accum the step's loss and gradients must equal one
    loss_step over all its rows (decision-weighted mean over every answer token of the step)."""
    import math

    import torch

    from filingcontrast.dataset import collate, loss_step

    model, fmt, _, examples = tiny_parts
    pad = fmt.tokenizer.pad_token_id
    weight = 3.0
    model.zero_grad(set_to_none=True)
    ref, _ = loss_step(model, collate(examples, pad), weight)
    ref.backward()
    ref = ref.detach()
    ref_grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
                 if p.grad is not None}  # fmt: skip
    model.zero_grad(set_to_none=True)
    # micro-batches with very different label counts: [short, long], [short, longest]
    accum, grads, tokens, padded = _step_loss_and_grads(model, examples, [[0, 1], [2, 3]], 2, 2,
                                                        weight, pad)  # fmt: skip
    one, grads1, _, _ = _step_loss_and_grads(model, examples, [[0, 1, 2, 3]], 4, 1, weight, pad)
    for got in (accum, one):
        assert math.isclose(got, float(ref), rel_tol=1e-4), (got, float(ref))
    for got in (grads, grads1):
        assert got.keys() == ref_grads.keys()
        for name, g in ref_grads.items():
            torch.testing.assert_close(got[name], g, rtol=1e-3, atol=1e-6, msg=name)
    assert tokens == sum(len(e) for e in examples)
    assert padded == 2 * max(len(examples[0]), len(examples[1])) + 2 * max(
        len(examples[2]), len(examples[3])
    )


def test_validation_loss_is_the_token_mean_over_all_rows_whatever_the_chunking(tiny_parts):
    """valid_loss (which picks the kept adapter on ties) is the decision-weighted token mean over
    every validation row: the same whatever batch_size * grad_accum chunks the rows."""
    import math

    from filingcontrast.config import TrainConfig
    from filingcontrast.dataset import collate, loss_step
    from filingcontrast.train import evaluate_valid

    model, fmt, rows, examples = tiny_parts
    import torch

    with torch.no_grad():
        ref, _ = loss_step(model, collate(examples, fmt.tokenizer.pad_token_id), 2.0)
    for bs, ga in ((1, 1), (1, 3), (4, 1)):
        tc = TrainConfig(batch_size=bs, grad_accum=ga, decision_weight=2.0, max_seq_len=1024)
        model.train()
        got = evaluate_valid(model, fmt, rows, examples, tc)
        assert model.training  # back in training mode (LoRA dropout) for the next steps
        assert math.isclose(got["valid_loss"], float(ref), rel_tol=1e-4), (bs, ga)
        assert got["n_pairs"] == 4 and len(got["p_ab"]) == 4


def test_step_plan_covers_every_row_once_per_epoch_in_a_new_order():
    from filingcontrast.config import TrainConfig
    from filingcontrast.train import checkpointing_mode, step_plan

    lengths = [50 + (i * 37) % 200 for i in range(40)]
    tc = TrainConfig(batch_size=2, grad_accum=3)
    plans = [step_plan(lengths, tc, 1, 7, epoch) for epoch in range(2)]
    for plan in plans:
        assert sorted(i for step in plan for mb in step for i in mb) == list(range(40))
        assert all(len(step) <= 3 and all(len(mb) <= 2 for mb in step) for step in plan)
        assert len(plan) == math.ceil(20 / 3)
    assert plans[0] != plans[1]  # each epoch reshuffles
    assert plans[0] == step_plan(lengths, tc, 1, 7, 0)  # and is reproducible (resume)
    # two processes: global micro-batches of batch_size * world rows
    two = step_plan(lengths, tc, 2, 7, 0)
    assert [len(mb) for step in two for mb in step] == [4] * 10
    assert sorted(i for step in two for mb in step for i in mb) == list(range(40))
    on = TrainConfig(grad_checkpointing="auto", checkpointing_threshold=100)
    assert checkpointing_mode(on, 101) == "full" and checkpointing_mode(on, 100) is None
    assert checkpointing_mode(TrainConfig(grad_checkpointing="selective"), 1) == "selective"
    assert checkpointing_mode(TrainConfig(grad_checkpointing="on"), 1) == "full"
    assert checkpointing_mode(TrainConfig(grad_checkpointing="off"), 10**9) is None
