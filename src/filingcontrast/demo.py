"""`filingcontrast demo`: the whole pipeline offline on the simulated market.

simulate -> pairs (time split) -> LoRA training of the embedded model -> evaluation against the
baselines and the Bayes ceiling -> HTML report. Each stage is skipped when its output exists and
was made from the same inputs: a stage's key is a hash of its config section, the run seed, the
base model and the key of the stage before it, recorded in `<run>/stages.json`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from filingcontrast import __version__
from filingcontrast.config import RunConfig, load_config, to_dict
from filingcontrast.runtime import RunDir, atomic_write_json, read_json

STAGES_FILE = "stages.json"


def demo_config_path(quick: bool) -> Path:
    """The packaged demo config (ships inside the package so `pip install` users have it)."""
    name = "quick.toml" if quick else "demo.toml"
    return Path(str(resources.files("filingcontrast") / "configs" / name))


def stage_key(*parts: Any) -> str:
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class StageCache:
    """Which stages of a run are done, keyed by their inputs."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / STAGES_FILE
        self.done: dict[str, str] = read_json(self.path, missing_ok=True) or {}

    def run(
        self, name: str, key: str, outputs: list[Path], fn: Callable[[], Any], echo: Callable
    ) -> bool:
        """Run `fn` unless the stage is recorded with `key` and its outputs exist. True if ran."""
        if self.done.get(name) == key and all(p.exists() for p in outputs):
            echo(f"[{name}] up to date, reusing {', '.join(str(p) for p in outputs)}")
            return False
        # Forget this stage (and so everything after it) before running: a crash mid-stage must
        # not leave an old key next to half-new outputs.
        self.done.pop(name, None)
        atomic_write_json(self.path, self.done)
        start = time.time()
        echo(f"[{name}] running ...")
        fn()
        self.done[name] = key
        atomic_write_json(self.path, self.done)
        echo(f"[{name}] done in {time.time() - start:.0f} s")
        return True


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_pipeline(cfg: RunConfig, echo: Callable[[str], None] = _echo) -> dict[str, Any]:
    """Run every stage of `cfg` (reusing finished ones) and return the metrics."""
    from filingcontrast.corpus.simulate import simulate_to_store
    from filingcontrast.evaluate import evaluate_run
    from filingcontrast.pairs import build_pairs
    from filingcontrast.report import write_report
    from filingcontrast.train import train

    run = RunDir.create(cfg)
    cache = StageCache(run.path)
    pairs_dir = run.path / "pairs"
    store = Path(cfg.store)

    k_sim = stage_key("simulate", to_dict(cfg.simulate), cfg.seed, str(store))
    k_pairs = stage_key("pairs", k_sim, to_dict(cfg.pairs), cfg.seed, cfg.base)
    k_train = stage_key("train", k_pairs, to_dict(cfg.train), cfg.seed, cfg.base)
    k_eval = stage_key("evaluate", k_train, to_dict(cfg.evaluate), cfg.seed)

    def simulate() -> None:
        if store.exists():  # a store from other settings: start clean so rows cannot mix
            store.unlink()
        simulate_to_store(cfg)

    def train_fresh() -> None:
        # The stage's inputs changed: what an earlier training left must not be resumed or mixed
        # into this run's metrics.
        for name in ("checkpoints", "adapter", "merged"):
            shutil.rmtree(run.path / name, ignore_errors=True)
        for name in ("metrics.jsonl", "train_summary.json"):
            (run.path / name).unlink(missing_ok=True)
        train(cfg, pairs_dir, resume=False)

    cache.run("simulate", k_sim, [store], simulate, echo)
    cache.run(
        "pairs", k_pairs, [pairs_dir / "summary.json"], lambda: build_pairs(cfg, pairs_dir), echo
    )
    cache.run("train", k_train, [run.path / "adapter"], train_fresh, echo)
    cache.run(
        "evaluate",
        k_eval,
        [run.path / "metrics.json"],
        lambda: evaluate_run(run.path, pairs_dir, cfg),
        echo,
    )
    cache.run("report", k_eval, [run.path / "report.html"], lambda: write_report(run.path), echo)
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
        lines.append(line)
    if ceiling is not None:
        lines.append(f"  Bayes ceiling      accuracy {fmt(ceiling)}")
        if metrics.get("oracle_accuracy") is not None:
            lines.append(f"  oracle (realized)  accuracy {fmt(metrics['oracle_accuracy'])}")
        if ceiling > 0.5:
            lines.append(
                f"  gap from 0.5 to the ceiling closed: {(acc - 0.5) / (ceiling - 0.5):.0%}"
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
    cfg = load_config(config_path or demo_config_path(quick), overrides or [])
    start = time.time()
    metrics = run_pipeline(cfg)
    print(headline(metrics, cfg.run_dir))
    print(f"Wall time: {time.time() - start:.0f} s")
    return 0
