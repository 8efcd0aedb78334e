"""End to end on the embedded model: `filingcontrast demo --quick` (what `make demo` runs, small)."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

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


def test_quick_demo_end_to_end_and_rerun_reuses_stages(tmp_path, cli_allocator):
    out, _ = run_demo(tmp_path)
    run = tmp_path / "runs" / "demo-quick"
    metrics = json.loads((run / "metrics.json").read_text())
    assert EXPECTED_METRICS <= set(metrics)
    assert metrics["n_pairs"] == 8
    # The headline accuracy is the share of the predictions the model got right (a tie half).
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    right = [
        0.5 if p["p_a"] == 0.5 else float((p["p_a"] > 0.5) == (p["winner"] == "A")) for p in preds
    ]
    assert len(preds) == 8 and metrics["accuracy"] == pytest.approx(sum(right) / 8)
    assert metrics["ceiling"] is not None and 0.5 < metrics["ceiling"] < 1.0
    assert set(metrics["baselines"]) == {"majority", "signal_rule", "tfidf_logreg", "zero_shot"}
    # The demo's settings: zero-shot on the first pairs only, beside the model on the same ones;
    # training on the pairs with a clear realized gap, said in the log.
    assert metrics["baselines"]["zero_shot"]["n"] == 4
    assert metrics["baselines"]["zero_shot"]["fine_tuned_same_pairs"]["n"] == 4
    log = (run / "log.txt").read_text()
    assert "min_train_gap 0.08: " in log
    # Started as a process, the demo restarted itself with mimalloc preloaded (Linux, where
    # the wheel is a dependency): peak RSS of training well under glibc's (docs/training.md).
    assert f"threads, allocator {cli_allocator});" in log
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


# ---------------------------------------------------------------------------------------------
# The stage cache, on the real pipeline wiring with the stage functions replaced by fast fakes.


class FakeStages:
    """Stand-ins for the five stage functions: each writes small files from its settings and
    records its name in `calls`; `interrupt` names a stage that raises KeyboardInterrupt."""

    def __init__(self, monkeypatch):
        import filingcontrast.corpus.simulate as sim
        import filingcontrast.evaluate as ev
        import filingcontrast.pairs as pairs
        import filingcontrast.report as report
        import filingcontrast.train as train

        self.calls: list[str] = []
        self.resumed: list[bool] = []
        self.interrupt: str | None = None
        self.extra: dict[str, str] = {}  # split -> a line more (the pairs came out different)
        self.bad_checkpoint = False  # a resume fails with CheckpointError (damaged checkpoint)
        self.complete = train.COMPLETE
        monkeypatch.setattr(sim, "simulate_to_store", self.simulate)
        monkeypatch.setattr(pairs, "build_pairs", self.pairs)
        monkeypatch.setattr(train, "train", self.train)
        monkeypatch.setattr(ev, "evaluate_run", self.evaluate)
        monkeypatch.setattr(report, "write_report", self.report)

    def _call(self, name):
        self.calls.append(name)
        if self.interrupt == name:
            raise KeyboardInterrupt

    def simulate(self, cfg):
        from filingcontrast.corpus.store import Store

        self._call("simulate")
        with Store(cfg.store) as store, store.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('sim', ?)", [str(cfg.simulate)])

    def pairs(self, cfg, out):
        self._call("pairs")
        out.mkdir(parents=True, exist_ok=True)
        for split in ("train", "valid", "test"):
            line = json.dumps({"pairs": str(cfg.pairs)}) + "\n"
            (out / f"{split}.jsonl").write_text(line + self.extra.get(split, ""))
        (out / "summary.json").write_text(json.dumps({"seconds": time.time()}))

    def train(self, cfg, pairs_dir, resume=False, resume_hint=""):
        from filingcontrast.errors import CheckpointError
        from filingcontrast.train import check_out_dir

        run = cfg.run_dir
        if resume and self.bad_checkpoint:
            self.resumed.append(resume)
            raise CheckpointError(f"{run}: checkpoint damaged")
        check_out_dir(run, resume)  # what the real one refuses: leftovers of an earlier run
        self.resumed.append(resume)
        (run / "metrics.jsonl").write_text('{"type": "train", "step": 1}\n')
        ckpt = run / "checkpoints" / "step-0000001"
        ckpt.mkdir(parents=True, exist_ok=True)
        (ckpt / self.complete).write_text("1")
        self._call("train")  # interrupted after its checkpoint, as a Ctrl-C mid-epoch
        (run / "adapter").mkdir(exist_ok=True)
        (run / "adapter" / "weights").write_text(
            f"{cfg.train.lr} {(pairs_dir / 'train.jsonl').read_text()}"
        )
        (run / "train_summary.json").write_text("{}")

    def evaluate(self, run_dir, pairs_dir, cfg):
        self._call("evaluate")
        adapter = (run_dir / "adapter" / "weights").read_text()
        metrics = {"split": "test", "n_pairs": 8, "accuracy": 0.5, "adapter": adapter,
                   "evaluate": str(cfg.evaluate)}  # fmt: skip
        (run_dir / "predictions.jsonl").write_text("{}\n")
        (run_dir / "metrics.json").write_text(json.dumps(metrics))

    def report(self, run_dir):
        self._call("report")
        metrics = (run_dir / "metrics.json").read_text()
        (run_dir / "report.html").write_text(f"<p>{metrics}</p>")


def fake_demo(tmp_path, *overrides):
    from filingcontrast.config import load_config
    from filingcontrast.demo import run_pipeline

    cfg = load_config(None, [f'runs_dir="{tmp_path}/runs"', f'store="{tmp_path}/data/s.duckdb"',
                             'name="t"', *overrides])  # fmt: skip
    messages: list[str] = []
    run_pipeline(cfg, messages.append)
    return messages


def test_rerun_reruns_exactly_the_stages_a_change_reaches(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    assert fake.calls == ["simulate", "pairs", "train", "evaluate", "report"]
    fake.calls.clear()
    assert sum("up to date" in m for m in fake_demo(tmp_path)) == 5 and fake.calls == []
    fake_demo(tmp_path, "train.lr=2e-3")
    assert fake.calls == ["train", "evaluate", "report"]
    fake.calls.clear()
    fake_demo(tmp_path, "train.lr=2e-3", "evaluate.bootstrap=10")
    assert fake.calls == ["evaluate", "report"]
    fake.calls.clear()
    # Settings that only change the speed of training keep the adapter.
    fake_demo(tmp_path, "train.lr=2e-3", "evaluate.bootstrap=10", "train.threads=1")
    assert fake.calls == []


def test_missing_or_damaged_outputs_are_rerun_not_reused(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    run = tmp_path / "runs" / "t"
    report = (run / "report.html").read_text()
    cases = [
        (lambda: (run / "metrics.json").write_text('{"split": "te'), ["evaluate"]),
        (lambda: shutil.rmtree(run / "adapter"), ["train"]),
        (lambda: (run / "adapter" / "weights").write_text("other"), ["train"]),
        (lambda: (run / "pairs" / "valid.jsonl").unlink(), ["pairs"]),
        (lambda: (tmp_path / "data" / "s.duckdb").unlink(), ["simulate"]),
        (lambda: (run / "report.html").write_text(""), ["report"]),
        (lambda: (run / "stages.json").write_text("{"), ["simulate", "pairs", "train", "evaluate", "report"]),
        (lambda: (run / "stages.json").write_text('{"simulate": "ef18", "pairs": {"outputs": []}}'),
         ["simulate", "pairs"]),
    ]  # fmt: skip
    for damage, first in cases:
        damage()
        fake.calls.clear()
        messages = fake_demo(tmp_path)
        # The damaged stage reruns; a later one only if what it reads came out different.
        assert fake.calls[: len(first)] == first, (first, fake.calls, messages)
        assert (run / "report.html").read_text() == report
    # A truncated metrics.json came back the same: the report of it was reused.
    (run / "metrics.json").write_text("{")
    fake.calls.clear()
    fake_demo(tmp_path)
    assert fake.calls == ["evaluate"]


def test_an_interrupted_stage_is_resumed_or_redone_and_stale_results_go(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    run = tmp_path / "runs" / "t"
    fake.interrupt, fake.calls = "train", []
    with pytest.raises(KeyboardInterrupt):
        fake_demo(tmp_path, "train.lr=2e-3")
    # The old adapter's results must not stay beside the new config looking finished.
    for name in ("adapter", "metrics.json", "predictions.jsonl", "report.html"):
        assert not (run / name).exists(), name
    stages = json.loads((run / "stages.json").read_text())
    assert stages["train"]["running"] and "evaluate" not in stages
    fake.interrupt, fake.calls, fake.resumed = None, [], []
    fake_demo(tmp_path, "train.lr=2e-3")
    assert fake.calls == ["train", "evaluate", "report"] and fake.resumed == [True]
    assert (
        "2e-3" in (run / "adapter" / "weights").read_text()
        or "0.002" in (run / "adapter" / "weights").read_text()
    )
    # Killed (no Ctrl-C, no checkpoint) after writing part of its log: trained from the start.
    stages = json.loads((run / "stages.json").read_text())
    stages["train"] = {**stages["train"], "running": True}
    (run / "stages.json").write_text(json.dumps(stages))
    shutil.rmtree(run / "checkpoints")
    fake.calls, fake.resumed = [], []
    fake_demo(tmp_path, "train.lr=2e-3")
    assert fake.calls[0] == "train" and fake.resumed == [False]  # the same adapter: no more
    # Interrupted while evaluating: redone, never reused.
    fake.interrupt, fake.calls = "evaluate", []
    with pytest.raises(KeyboardInterrupt):
        fake_demo(tmp_path, "train.lr=2e-3", "evaluate.bootstrap=10")
    assert not (run / "metrics.json").exists() and not (run / "report.html").exists()
    fake.interrupt, fake.calls = None, []
    fake_demo(tmp_path, "train.lr=2e-3", "evaluate.bootstrap=10")
    assert fake.calls == ["evaluate", "report"]
    assert "bootstrap=10" in json.loads((run / "metrics.json").read_text())["evaluate"]


def test_demo_never_replaces_a_store_that_is_not_a_simulated_one(tmp_path, monkeypatch):
    from filingcontrast.corpus.store import Store
    from filingcontrast.errors import UserError

    fake = FakeStages(monkeypatch)
    notes = tmp_path / "data" / "s.duckdb"
    notes.parent.mkdir()
    notes.write_text("precious")
    with pytest.raises(UserError, match="not a DuckDB file"):
        fake_demo(tmp_path)
    assert notes.read_text() == "precious" and fake.calls == []
    notes.unlink()
    with Store(notes) as store, store.transaction() as con:
        con.execute("INSERT INTO filings (accession, source) VALUES ('1', 'edgar')")
    with pytest.raises(UserError, match="1 real"):
        fake_demo(tmp_path)
    notes.unlink()
    fake_demo(tmp_path)  # an earlier simulated store is replaced
    assert fake.calls[0] == "simulate"


def test_demo_leaves_a_run_it_did_not_make_alone(tmp_path, monkeypatch):
    from filingcontrast.errors import UserError

    fake = FakeStages(monkeypatch)
    run = tmp_path / "runs" / "t"
    (run / "adapter").mkdir(parents=True)  # `filingcontrast train --out runs/t`, hours of it
    (run / "adapter" / "adapter_model.safetensors").write_text("weights")
    (run / "config.toml").write_text("mine")
    with pytest.raises(UserError, match="holds a run the demo did not make"):
        fake_demo(tmp_path)
    assert (run / "adapter" / "adapter_model.safetensors").read_text() == "weights"
    assert (run / "config.toml").read_text() == "mine" and fake.calls == []


def test_headline_names_each_baseline_with_its_paired_test(tmp_path):
    from filingcontrast.demo import headline

    m = {"split": "test", "n_pairs": 128, "accuracy": 0.578, "accuracy_ci": [0.49, 0.66],
         "ceiling": 0.845, "oracle_accuracy": 0.855,
         "baselines": {"tfidf_logreg": {"accuracy": 0.758, "vs_fine_tuned": {
             "only_fine_tuned_right": 9, "only_baseline_right": 32, "mcnemar_p": 0.00042}},
             "zero_shot": {"accuracy": 0.484, "fine_tuned_same_pairs": {"n": 64, "accuracy": 0.594}},
             "majority": {"accuracy": 0.5, "vs_fine_tuned": {"only_fine_tuned_right": 0,
                          "only_baseline_right": 0, "coin_flip_pairs": 128, "mcnemar_p": 1.0}}}}  # fmt: skip
    text = headline(m, tmp_path)
    assert (
        "tfidf_logreg       accuracy 0.758  [only model right 9, only tfidf_logreg 32, p 0.00042]"
        in text
    )
    assert "(first 64 pairs; fine-tuned 0.594 on them)" in text and "closed: 23%" in text
    assert "majority           accuracy 0.500\n" in text  # a coin on every pair: no paired test
    below = headline({**m, "accuracy": 0.375}, tmp_path)
    assert "closed: none (at or below chance)" in below  # not "-98%"


ALL_STAGES = ["simulate", "pairs", "train", "evaluate", "report"]


@pytest.mark.parametrize(
    "split, rerun",
    [
        ("train", ["pairs", "train", "evaluate", "report"]),
        ("valid", ["pairs", "train"]),  # same adapter: its evaluation is reused
        ("test", ["pairs", "evaluate"]),  # same metrics: the report is reused
    ],
)
def test_rebuilt_pairs_that_came_out_different_rerun_the_stages_reading_them(
    tmp_path, monkeypatch, split, rerun
):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    run = tmp_path / "runs" / "t"
    (run / "pairs" / "summary.json").unlink()  # pairs reruns ...
    fake.extra, fake.calls = {split: '{"more": 1}\n'}, []  # ... and this split comes out changed
    fake_demo(tmp_path)
    assert fake.calls == rerun


@pytest.mark.parametrize(
    "override",
    ["train.threads=1", "train.save_every=7", "train.lean_memory=true",
     'train.grad_checkpointing="off"', "train.checkpointing_threshold=64"],
)  # fmt: skip
def test_each_speed_only_train_setting_keeps_the_adapter(tmp_path, monkeypatch, override):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    fake.calls = []
    messages = fake_demo(tmp_path, override)
    assert fake.calls == [] and sum("up to date" in m for m in messages) == 5


def test_a_new_filingcontrast_version_reruns_every_stage(tmp_path, monkeypatch):
    import filingcontrast.demo as demo

    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    fake.calls = []
    monkeypatch.setattr(demo, "__version__", "999.0.0")
    fake_demo(tmp_path)
    assert fake.calls == ALL_STAGES


def test_tree_digest_sees_names_and_bytes_but_not_hidden_temp_files(tmp_path):
    from filingcontrast.demo import tree_digest

    d = tmp_path / "adapter"
    (d / "sub").mkdir(parents=True)
    (d / "weights").write_text("abc")
    (d / "sub" / "cfg.json").write_text("{}")
    first = tree_digest(d)
    assert first is not None and tree_digest(d) == first
    (d / ".weights.tmp-123").write_text("half written")  # an atomic write in progress
    (d / ".cache").mkdir()
    (d / ".cache" / "x").write_text("y")
    assert tree_digest(d) == first
    (d / "weights").rename(d / "weights2")  # same bytes under another name
    assert tree_digest(d) != first
    (d / "weights2").rename(d / "weights")
    assert tree_digest(d) == first
    (d / "weights").write_text("abd")
    assert tree_digest(d) != first
    assert tree_digest(tmp_path / "nothing") is None
    assert tree_digest(d / "weights") is not None


def test_demos_sharing_a_store_reuse_each_others_identical_simulation(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path, 'name="a"')
    fake_demo(tmp_path, 'name="b"')  # rewrites the store: same rows, other file bytes
    fake.calls = []
    fake_demo(tmp_path, 'name="a"')
    assert fake.calls == []


def test_a_stage_that_writes_nothing_is_an_error_not_a_result(tmp_path, monkeypatch):
    import filingcontrast.report as report
    from filingcontrast.errors import UserError

    fake = FakeStages(monkeypatch)
    monkeypatch.setattr(report, "write_report", lambda run_dir: fake._call("report"))
    with pytest.raises(UserError, match=r"report\.html: the report stage finished without writing"):
        fake_demo(tmp_path)
    stages = json.loads((tmp_path / "runs" / "t" / "stages.json").read_text())
    assert stages["report"].get("running")  # never recorded as done


def test_a_record_cut_short_under_other_settings_is_not_taken_as_this_runs(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    run = tmp_path / "runs" / "t"
    # Training finished (adapter, checkpoint) but the demo died before recording it.
    stages = json.loads((run / "stages.json").read_text())
    stages["train"] = {**stages["train"], "running": True}
    (run / "stages.json").write_text(json.dumps(stages))
    fake.calls, fake.resumed = [], []
    fake_demo(tmp_path, "train.lr=2e-3")  # other settings: that adapter is not this run's
    assert fake.calls == ["train", "evaluate", "report"] and fake.resumed == [False]
    weights = (run / "adapter" / "weights").read_text()
    assert weights.startswith("0.002 ")


def test_a_resume_from_a_damaged_checkpoint_trains_from_the_start(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake.interrupt = "train"
    with pytest.raises(KeyboardInterrupt):
        fake_demo(tmp_path)
    fake.interrupt, fake.bad_checkpoint, fake.calls, fake.resumed = None, True, [], []
    messages = fake_demo(tmp_path)
    assert fake.resumed == [True, False] and fake.calls == ["train", "evaluate", "report"]
    assert any("cannot resume" in m and "training from the start" in m for m in messages)
    assert (tmp_path / "runs" / "t" / "adapter" / "weights").is_file()


def test_a_simulate_rerun_with_other_settings_removes_every_later_result(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    run = tmp_path / "runs" / "t"
    fake.interrupt, fake.calls = "pairs", []
    with pytest.raises(KeyboardInterrupt):
        fake_demo(tmp_path, "simulate.filings=300")
    assert fake.calls == ["simulate", "pairs"]
    for name in ("pairs", "adapter", "metrics.json", "predictions.jsonl", "report.html"):
        assert not (run / name).exists(), name
    stages = json.loads((run / "stages.json").read_text())
    assert set(stages) == {"simulate", "pairs"} and stages["pairs"]["running"]
    fake.interrupt, fake.calls = None, []
    fake_demo(tmp_path, "simulate.filings=300")
    assert fake.calls == ["pairs", "train", "evaluate", "report"]


def test_an_empty_store_file_is_replaced(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    store = tmp_path / "data" / "s.duckdb"
    store.parent.mkdir()
    store.write_bytes(b"")
    fake_demo(tmp_path)
    assert fake.calls == ALL_STAGES and store.stat().st_size > 0


def test_a_duckdb_file_with_other_tables_is_left_alone(tmp_path, monkeypatch):
    import duckdb

    from filingcontrast.errors import UserError

    fake = FakeStages(monkeypatch)
    store = tmp_path / "data" / "s.duckdb"
    store.parent.mkdir()
    con = duckdb.connect(str(store))
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.execute("INSERT INTO invoices VALUES (7)")
    con.close()
    with pytest.raises(UserError, match="not a filingcontrast store .*invoices"):
        fake_demo(tmp_path)
    assert fake.calls == []
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT id FROM invoices").fetchall() == [(7,)]
    con.close()


def _damage(store):
    store.write_bytes(b"\0" * 8 + b"DUCK" + b"garbage" * 1000)


def test_a_damaged_store_is_replaced_only_if_this_run_made_it(tmp_path, monkeypatch):
    from filingcontrast.errors import UserError

    fake = FakeStages(monkeypatch)
    store = tmp_path / "data" / "s.duckdb"
    store.parent.mkdir()
    _damage(store)
    before = store.read_bytes()
    with pytest.raises(UserError, match="cannot open it"):
        fake_demo(tmp_path)  # someone's damaged database: not ours to throw away
    assert store.read_bytes() == before and fake.calls == []
    store.unlink()
    fake_demo(tmp_path)
    _damage(store)  # the demo's own store, damaged; rerun with other simulate settings
    fake.calls = []
    fake_demo(tmp_path, "simulate.filings=300")
    assert fake.calls == ALL_STAGES and store.read_bytes() != before


def test_a_damaged_store_of_this_run_is_simulated_again_on_the_same_command(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    _damage(tmp_path / "data" / "s.duckdb")
    fake.calls = []
    fake_demo(tmp_path)
    assert fake.calls[0] == "simulate"


def test_an_old_write_ahead_log_is_not_replayed_onto_the_new_store(tmp_path, monkeypatch):
    import duckdb

    fake = FakeStages(monkeypatch)
    fake_demo(tmp_path)
    store = tmp_path / "data" / "s.duckdb"
    # A process killed while writing the old store left its write-ahead log beside it.
    con = duckdb.connect(str(store))
    con.execute("SET wal_autocheckpoint='1TB'")
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("INSERT OR REPLACE INTO meta VALUES ('x', 'old')")
    wal = store.with_name(store.name + ".wal")
    log = wal.read_bytes()
    con.close()
    wal.write_bytes(log)
    fake.calls = []
    fake_demo(tmp_path, "simulate.filings=300")
    assert fake.calls == ALL_STAGES and not wal.exists()
    con = duckdb.connect(str(store), read_only=True)
    assert "300" in con.execute("SELECT value FROM meta WHERE key = 'sim'").fetchone()[0]
    con.close()


def test_a_simulation_cut_short_leaves_no_temp_files_and_the_old_store(tmp_path, monkeypatch):
    import filingcontrast.corpus.simulate as sim
    from filingcontrast.corpus.store import Store

    FakeStages(monkeypatch)
    fake_demo(tmp_path)
    store = tmp_path / "data" / "s.duckdb"
    digest_before = store.read_bytes()

    def half(cfg):
        with Store(cfg.store) as s, s.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('sim', 'half')")
        raise KeyboardInterrupt

    monkeypatch.setattr(sim, "simulate_to_store", half)
    with pytest.raises(KeyboardInterrupt):
        fake_demo(tmp_path, "simulate.filings=300")
    assert sorted(p.name for p in store.parent.iterdir() if ".tmp-" in p.name) == []
    assert store.read_bytes() == digest_before


def test_a_run_dir_a_demo_left_before_its_first_stage_is_taken(tmp_path, monkeypatch):
    fake = FakeStages(monkeypatch)
    run = tmp_path / "runs" / "t"
    run.mkdir(parents=True)
    for name in ("config.toml", "log.txt", ".demo.lock"):
        (run / name).write_text("")
    fake_demo(tmp_path)
    assert fake.calls == ALL_STAGES


def test_a_store_that_is_a_directory_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    from filingcontrast.errors import ConfigError

    fake = FakeStages(monkeypatch)
    (tmp_path / "data" / "s.duckdb").mkdir(parents=True)
    with pytest.raises(ConfigError, match="store: must name a DuckDB file"):
        fake_demo(tmp_path)
    assert not (tmp_path / "runs").exists() and fake.calls == []


def test_a_second_demo_waits_for_the_first_to_release_the_lock(tmp_path):
    import threading

    from filingcontrast.demo import _locked

    lock = tmp_path / "runs" / "t" / ".demo.lock"
    said: list[str] = []
    order: list[str] = []

    def second():
        with _locked(lock, "runs/t", said.append):
            order.append("second")

    with _locked(lock, "runs/t", said.append):
        t = threading.Thread(target=second)
        t.start()
        deadline = time.time() + 5
        while not said and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        order.append("first")
    t.join(5)
    assert said == ["waiting for another demo that is using runs/t ..."]
    assert order == ["first", "second"]


def test_headline_without_ci_or_ceiling_and_at_exact_chance(tmp_path):
    from filingcontrast.demo import headline

    bare = headline({"split": "test", "n_pairs": 8, "accuracy": 0.625}, tmp_path)
    assert "fine-tuned model   accuracy 0.625  95% CI [n/a, n/a]" in bare
    assert "Bayes ceiling" not in bare and "closed" not in bare
    assert bare.endswith(f"Report: {tmp_path / 'report.html'}")
    chance = headline({"split": "test", "n_pairs": 8, "accuracy": 0.5, "ceiling": 0.8}, tmp_path)
    assert "closed: none (at or below chance)" in chance  # not "0%"


def test_quick_and_config_are_exclusive_and_quick_is_the_small_config(tmp_path):
    from filingcontrast.config import load_config
    from filingcontrast.demo import demo_config_path, run_demo
    from filingcontrast.errors import ConfigError

    with pytest.raises(ConfigError, match="give --quick or --config, not both"):
        run_demo(str(tmp_path / "mine.toml"), quick=True)
    assert load_config(demo_config_path(True), []).name == "demo-quick"
    assert load_config(demo_config_path(False), []).name == "demo"
