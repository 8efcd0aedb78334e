"""`filingcontrast demo`: the whole pipeline offline on the simulated market.

simulate -> pairs (time split) -> LoRA training of the embedded model -> evaluation against the
baselines and the Bayes ceiling -> HTML report. Each stage is skipped when its outputs exist,
are byte for byte what it wrote, and were made from the same inputs: a stage's key is a hash of
its config section, the run seed, the base model, the settings of the stages before it and the
digests of the earlier outputs it reads, recorded in `<run>/stages.json` with the digests of its
own outputs. A stage that reruns first removes its old outputs, and those of later stages whose
settings changed, so an interrupted rerun never leaves an old result beside a new config; an
interrupted training is resumed from its checkpoint by the next run of the same command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from filingcontrast import __version__
from filingcontrast.config import RunConfig, load_config, to_dict
from filingcontrast.errors import CheckpointError, ConfigError, UserError, first_line
from filingcontrast.metrics import gap_closed
from filingcontrast.runtime import RunDir, atomic_write_json, hash_file, read_json

STAGES_FILE = "stages.json"
LOCK_FILE = ".demo.lock"
DEMO_RESUME_HINT = "run the same demo command again to resume"


def demo_config_path(quick: bool) -> Path:
    """The packaged demo config (ships inside the package so `pip install` users have it)."""
    name = "quick.toml" if quick else "demo.toml"
    return Path(str(resources.files("filingcontrast") / "configs" / name))


def stage_key(*parts: Any) -> str:
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def tree_digest(path: Path) -> str | None:
    """sha256 of a file's bytes, or of a directory's file names and bytes (hidden names such as
    temp files skipped); of a DuckDB store, its rows (`store.content_digest`); None when the
    path does not exist."""
    if path.is_file() and path.suffix == ".duckdb":
        import duckdb

        from filingcontrast.corpus.store import content_digest

        try:
            return content_digest(path)
        except duckdb.Error:
            pass  # damaged: its bytes' digest below matches no recorded one, so its stage reruns
    if path.is_file():
        files = [(".", path)]
    elif path.is_dir():
        files = sorted(
            (p.relative_to(path).as_posix(), p)
            for p in path.rglob("*")
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts)
        )
    else:
        return None
    h = hashlib.sha256()
    for rel, p in files:
        h.update(f"{rel}\0{p.stat().st_size}\0".encode())
        hash_file(h, p)
    return h.hexdigest()[:32]


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


@dataclass
class Stage:
    """One step of the pipeline as the cache sees it."""

    name: str
    config: str
    """Key of the settings this stage and every stage before it read (known before running)."""
    outputs: list[Path]
    """What it writes: all must exist and match their recorded digests for a rerun to reuse it."""
    fn: Callable[[bool], Any]
    """The work; its argument says whether an interrupted run with the same key may be resumed."""
    inputs: list[Path] = field(default_factory=list)
    """The outputs of earlier stages it reads: their digests are part of its key, so it reruns
    when they changed, and only then (a rebuilt input that came out the same is no change)."""
    clear: list[Path] = field(default_factory=list)
    """Removed before a fresh run (stages that do not replace their outputs atomically)."""
    stale: list[Path] | None = None
    """Removed when a rerun upstream with other settings made the outputs stale (default:
    `clear`); empty for outputs shared with other runs (the store)."""
    shown: list[Path] | None = None
    """What "up to date, reusing ..." names (default: `outputs`)."""
    resumable: bool = False
    """An interrupted run continues where it stopped (else it is redone)."""


class StageCache:
    """Which stages of a run are done, keyed by their inputs, and with what outputs."""

    def __init__(self, run_dir: Path, echo: Callable[[str], None]):
        self.path = run_dir / STAGES_FILE
        self.echo = echo
        try:
            done = read_json(self.path, missing_ok=True) or {}
        except UserError as exc:  # damaged by hand or by the disk: nothing is known to be done
            echo(f"{exc}; running every stage again")
            done = {}
        # Records without a key and output digests (older versions) prove nothing: run again.
        self.done: dict[str, dict] = {k: v for k, v in done.items() if _well_formed(v)}
        self.stages: list[Stage] = []
        self.digests: dict[str, str] = {}  # output path -> digest, of the stages done so far
        self._next = 0

    def _save(self) -> None:
        atomic_write_json(self.path, self.done)

    def run_through(self, last: str) -> None:
        """Run (or reuse) the stages up to and including `last`."""
        while self._next < len(self.stages):
            i, stage = self._next, self.stages[self._next]
            key = stage_key(stage.name, stage.config, [self.digests[str(p)] for p in stage.inputs])
            self.digests.update(self._run(i, stage, key))
            self._next += 1
            if stage.name == last:
                return

    def _verify(self, stage: Stage, recorded: dict[str, str]) -> tuple[str | None, dict[str, str]]:
        outputs: dict[str, str] = {}
        for p in stage.outputs:
            digest = tree_digest(p)
            if digest is None:
                return f"{p} is missing", {}
            if digest != recorded.get(str(p)):
                return f"{p} changed since the stage wrote it", {}
            outputs[str(p)] = digest
        return None, outputs

    def _run(self, i: int, stage: Stage, key: str) -> dict[str, str]:
        rec = self.done.get(stage.name) or {}
        if rec.get("key") == key and not rec.get("running"):
            problem, outputs = self._verify(stage, rec.get("outputs") or {})
            if problem is None:
                shown = ", ".join(map(str, stage.shown or stage.outputs))
                self.echo(f"[{stage.name}] up to date, reusing {shown}")
                return outputs
            self.echo(f"[{stage.name}] {problem}: running it again")
        resume = bool(rec.get("running")) and rec.get("key") == key
        if not resume:
            _remove(stage.clear)
            if stage.clear:  # this stage's old outputs are gone: so are results made from them
                self._drop_stale_after(i)
        # Recorded as running once its old outputs are gone (what a resume finds is this key's)
        # and before any work: a stage cut short is never reused, only resumed or redone.
        self.done[stage.name] = {"config": stage.config, "key": key, "running": True}
        self._save()
        start = time.time()
        self.echo(f"[{stage.name}] running ...")
        try:
            stage.fn(resume)
        except KeyboardInterrupt:
            self.echo(f"[{stage.name}] interrupted: run the same command again to "
                      f"{'resume' if stage.resumable else 'redo'} it")  # fmt: skip
            raise
        outputs = {}
        for p in stage.outputs:
            digest = tree_digest(p)
            if digest is None:
                raise UserError(f"{p}: the {stage.name} stage finished without writing it")
            outputs[str(p)] = digest
        self.done[stage.name] = {"config": stage.config, "key": key, "outputs": outputs}
        self._drop_stale_after(i)
        self.echo(f"[{stage.name}] done in {time.time() - start:.0f} s")
        return outputs

    def _drop_stale_after(self, i: int) -> None:
        """Forget, and remove the outputs of, later stages recorded with other settings: they
        will rerun, and until then must not look like results of this config."""
        for later in self.stages[i + 1 :]:
            rec = self.done.get(later.name)
            if rec is not None and rec.get("config") != later.config:
                _remove(later.clear if later.stale is None else later.stale)
                del self.done[later.name]
        self._save()


def _well_formed(rec: Any) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("config"), str)
        and isinstance(rec.get("key"), str)
        and isinstance(rec.get("outputs", {}), dict)
    )


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(lock: Path, what: str, echo: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive lock on `lock` (waiting, with a message, while another demo holds it)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo(f"waiting for another demo that is using {what} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def check_store_replaceable(store: Path, ours: bool) -> None:
    """The demo replaces its store with a new simulated market: refuse to do that to anything
    but an earlier simulated filingcontrast store (a damaged one only if this run made it)."""
    if not store.exists():
        return
    if not store.is_file():
        raise UserError(f"{store}: not a regular file; store= must name a DuckDB file")
    if store.stat().st_size == 0:
        return
    with store.open("rb") as fh:
        head = fh.read(12)
    advice = "the demo replaces its store with a simulated market: choose another store=PATH"
    if head[8:12] != b"DUCK":
        raise UserError(f"{store}: not a DuckDB file; {advice}")
    import duckdb

    from filingcontrast.corpus.store import foreign_tables, table_names

    try:
        con = duckdb.connect(str(store), read_only=True)
    except duckdb.Error as exc:
        first = first_line(exc)
        if "could not set lock" in first.lower() or "conflicting lock" in first.lower():
            raise UserError(f"{store}: in use by another process ({first})") from None
        if ours:
            return  # damaged, and made by this run: nothing of anyone's to keep
        raise UserError(f"{store}: cannot open it ({first}); delete it, or {advice}") from None
    try:
        foreign = foreign_tables(con)
        if foreign:
            raise UserError(f"{store}: not a filingcontrast store (it has other tables: "
                            f"{', '.join(foreign[:5])}); {advice}")  # fmt: skip
        if "filings" in table_names(con):
            real = con.execute(
                "SELECT count(*) FROM filings WHERE source <> 'simulated'"
            ).fetchone()[0]
            if real:
                raise UserError(f"{store}: holds {real} real (non-simulated) filings; {advice}")
    except duckdb.Error as exc:
        if not ours:
            raise UserError(
                f"{store}: cannot read it ({first_line(exc)}); delete it, or {advice}"
            ) from None
    finally:
        con.close()


def simulate_into(cfg: RunConfig, store: Path, ours: bool) -> None:
    """Simulate into a temp file beside `store`, then rename it into place: the store is never
    half-written, and a reader of the old one (another demo) keeps reading the old one."""
    from filingcontrast.corpus.simulate import simulate_to_store

    check_store_replaceable(store, ours)
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_name(f".{store.name}.tmp-{os.getpid()}")
    wal = [tmp, Path(f"{tmp}.wal")]
    _remove(wal)
    try:
        simulate_to_store(dataclasses.replace(cfg, store=str(tmp)))
        # A write-ahead log left by the old file must not be replayed onto ours.
        Path(f"{store}.wal").unlink(missing_ok=True)
        os.replace(tmp, store)
    finally:
        _remove(wal)


DEMO_FREE = {"config.toml", "log.txt", LOCK_FILE}
"""What a run directory may hold without a stages.json (a demo cut short before its first stage)."""


def check_run_dir(run_dir: Path) -> None:
    """Refuse a run directory that someone else's `filingcontrast train` (or anything else)
    filled: the demo would replace its adapter, pairs and metrics."""
    if (run_dir / STAGES_FILE).exists():
        return
    other = sorted(p.name for p in run_dir.iterdir() if p.name not in DEMO_FREE)
    if other:
        raise UserError(
            f"{run_dir}: holds a run the demo did not make ({', '.join(other[:4])}; no "
            f"{STAGES_FILE}); choose another name= or remove them"
        )


def run_pipeline(cfg: RunConfig, echo: Callable[[str], None] = _echo) -> dict[str, Any]:
    """Run every stage of `cfg` (reusing finished ones) and return the metrics."""
    from filingcontrast.evaluate import evaluate_run
    from filingcontrast.pairs import build_pairs
    from filingcontrast.report import write_report
    from filingcontrast.train import RESUME_FREE, latest_checkpoint, train

    store = Path(cfg.store)
    if not cfg.store.strip() or not store.name or (store.exists() and not store.is_file()):
        raise ConfigError(f"store: must name a DuckDB file, got {cfg.store!r}")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cfg.run_dir / LOCK_FILE, str(cfg.run_dir), echo):
        check_run_dir(cfg.run_dir)
        run = RunDir.create(cfg)
        cache = StageCache(run.path, echo)
        ours = "simulate" in cache.done
        pairs_dir = run.path / "pairs"
        split_files = [pairs_dir / f"{s}.jsonl" for s in ("train", "valid", "test")]
        train_outputs = [run.path / n for n in ("adapter", "metrics.jsonl", "train_summary.json")]
        if cfg.train.merge:
            train_outputs.append(run.path / "merged")
        train_clear = [*train_outputs, run.path / "checkpoints", run.path / "merged"]
        # train.RESUME_FREE settings change speed, not what is learned, and reuse the adapter;
        # but `merge`, which adds an output.
        speed_only = set(RESUME_FREE) - {"merge"}
        train_settings = {k: v for k, v in to_dict(cfg.train).items() if k not in speed_only}

        def train_stage(resume: bool) -> None:
            ckpt = latest_checkpoint(run.path) if resume else None
            if ckpt is not None and all(p.exists() for p in train_outputs):
                return  # it finished; only the record was cut short
            if ckpt is not None:
                echo(f"[train] resuming from {ckpt}")
                try:
                    train(cfg, pairs_dir, resume=True, resume_hint=DEMO_RESUME_HINT)
                    return
                except CheckpointError as exc:  # a damaged or foreign checkpoint: start over
                    echo(f"[train] cannot resume ({exc}); training from the start")
            # A fresh start (also after a kill before the first checkpoint): nothing an earlier
            # attempt left may be mixed in, and train refuses a directory holding it.
            _remove(train_clear)
            train(cfg, pairs_dir, resume=False, resume_hint=DEMO_RESUME_HINT)

        k_sim = stage_key("simulate", to_dict(cfg.simulate), cfg.seed, str(store))
        k_pairs = stage_key("pairs", k_sim, to_dict(cfg.pairs), cfg.seed, cfg.base)
        k_train = stage_key("train", k_pairs, train_settings, cfg.seed, cfg.base)
        k_eval = stage_key("evaluate", k_train, to_dict(cfg.evaluate), cfg.seed)
        adapter, metrics = run.path / "adapter", run.path / "metrics.json"
        cache.stages = [
            Stage("simulate", k_sim, [store], lambda _: simulate_into(cfg, store, ours), stale=[]),
            Stage("pairs", k_pairs, [*split_files, pairs_dir / "summary.json"],
                  lambda _: build_pairs(cfg, pairs_dir), inputs=[store], stale=[pairs_dir],
                  shown=[pairs_dir]),
            Stage("train", k_train, train_outputs, train_stage, inputs=split_files[:2],
                  clear=train_clear, shown=[adapter], resumable=True),
            Stage("evaluate", k_eval, [metrics, run.path / "predictions.jsonl"],
                  lambda _: evaluate_run(run.path, pairs_dir, cfg),
                  inputs=[adapter, split_files[0], split_files[2]],
                  clear=[metrics, run.path / "predictions.jsonl"], shown=[metrics]),
            Stage("report", stage_key("report", k_eval), [run.path / "report.html"],
                  lambda _: write_report(run.path), inputs=[metrics, run.path / "metrics.jsonl"],
                  clear=[run.path / "report.html"]),
        ]  # fmt: skip
        # The store may be shared with demos of other names: one at a time simulates or reads it.
        with _locked(store.with_name(f".{store.name}.lock"), str(store), echo):
            cache.run_through("pairs")
        cache.run_through("report")
        return read_json(run.path / "metrics.json")


def headline(metrics: dict[str, Any], run_dir: Path) -> str:
    """The numbers a person wants first, with the baselines and the ceiling beside them."""

    def fmt(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    acc = metrics["accuracy"]
    lo, hi = metrics.get("accuracy_ci") or (None, None)
    ceiling = metrics.get("ceiling")
    lines = [
        f"Test pairs: {metrics['n_pairs']} ({metrics['split']} split, held out by time)",
        f"  fine-tuned model   accuracy {fmt(acc)}  95% CI [{fmt(lo)}, {fmt(hi)}]",
    ]
    for name, row in (metrics.get("baselines") or {}).items():
        line = f"  {name:<18} accuracy {fmt(row.get('accuracy'))}"
        same = row.get("fine_tuned_same_pairs")
        if same:  # scored on a subset: say so, with the model's figure on the same pairs
            line += f"  (first {same['n']} pairs; fine-tuned {fmt(same['accuracy'])} on them)"
        paired = row.get("vs_fine_tuned")
        # The pairs where exactly one of the two is right, and McNemar's test; none for a
        # predictor that is a coin flip on every pair (the majority on balanced pairs).
        if paired and (paired["only_fine_tuned_right"] or paired["only_baseline_right"]):
            line += (f"  [only model right {paired['only_fine_tuned_right']}, only "
                     f"{name} {paired['only_baseline_right']}, p {paired['mcnemar_p']:.2g}]")  # fmt: skip
        lines.append(line)
    if ceiling is not None:
        lines.append(f"  Bayes ceiling      accuracy {fmt(ceiling)}")
        if metrics.get("oracle_accuracy") is not None:
            lines.append(f"  oracle (realized)  accuracy {fmt(metrics['oracle_accuracy'])}")
        closed = gap_closed(acc, ceiling)
        if closed is not None:
            lines.append(
                "  gap from 0.5 to the ceiling closed: "
                + ("none (at or below chance)" if closed <= 0 else f"{closed:.0%}")
            )
    lines.append(
        f"  ECE {fmt(metrics.get('ece'))}  swap consistency {fmt(metrics.get('swap_consistency'))}"
        f"  log-loss {fmt(metrics.get('log_loss'))}"
    )
    ranking = metrics.get("ranking") or {}
    if ranking:
        lines.append(
            f"  ranking: Spearman IC {fmt(ranking.get('spearman_ic'))}, top-minus-bottom quintile "
            f"spread {fmt(ranking.get('long_short_spread'))}"
        )
    lines.append(f"Report: {run_dir / 'report.html'}")
    return "\n".join(lines)


def run_demo(
    config_path: str | None = None, overrides: list[str] | None = None, quick: bool = False
) -> int:
    if quick and config_path:
        raise ConfigError(
            "--quick runs the packaged quick.toml; give --quick or --config, not both"
        )
    cfg = load_config(config_path or demo_config_path(quick), overrides or [])
    start = time.time()
    metrics = run_pipeline(cfg)
    print(headline(metrics, cfg.run_dir))
    print(f"Wall time: {time.time() - start:.0f} s")
    return 0
