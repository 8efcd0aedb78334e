"""`filingcontrast evaluate`: the model and its baselines on one split, written to metrics.json.

What is measured (all on the chosen split, default `test`; never on training data: pairs with
a filing the adapter trained on are refused, and pairs sharing a filing with those that chose
its epoch and fitted its calibration are counted under `in_sample`):

- the model's P(A better) from both orders (see predict.py): accuracy with a bootstrap 95 % CI,
  log-loss, Brier, ECE with the reliability diagram's bins, swap consistency, accuracy by item
  (a pair counts for every item code of A or B) and by confidence level (predict's thresholds);
- the Bayes ceiling and the oracle's accuracy when the pairs carry simulated truth (else null);
- baselines (baselines.py) plus zero-shot = the same base model with the adapter disabled (one
  model load for both);
- ranking: Bradley-Terry scores of the split's filings from the model's verdicts (the pairs'
  own comparisons plus a k-regular schedule that tops every filing up to `rank_k` comparisons),
  their Spearman IC with the realized abnormal returns and the top-minus-bottom quintile spread.

The model's figures use the adapter's calibration (calibration.py: position bias and temperature
fitted on the validation pairs during training), as compare and rank do; `uncalibrated` holds the
same figures from the raw decision probabilities. Zero-shot is reported raw.

Outputs (atomic): `RUN/metrics.json` and `RUN/predictions.jsonl` (per pair: pair_id, winner,
p_a, p_ab, p_ba for the model (calibrated, and `raw`) and for zero-shot, on the pairs it scored:
`evaluate.zero_shot_max_pairs` can limit it to the first N).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from filingcontrast import metrics as M
from filingcontrast.config import RunConfig
from filingcontrast.errors import UserError
from filingcontrast.pairs import a_won, check_pairs_dir, pair_filings, pair_items
from filingcontrast.runtime import RunDir, atomic_write_json, atomic_write_text


def check_labelled(rows: Sequence[dict], path: Path) -> None:
    """Every row must carry meta.winner A/B (evaluate needs labels)."""
    if not rows:
        raise UserError(f"{path}: no pairs to evaluate")
    for n, row in enumerate(rows, start=1):
        winner = (row.get("meta") or {}).get("winner")
        if winner not in ("A", "B"):
            raise UserError(
                f"{path}:{n}: field meta.winner: missing or not A/B ({winner!r}); "
                "evaluate needs labelled pairs"
            )


def check_unseen(rows: Sequence[dict], seen: Any, path: Path) -> int:
    """Refuse pairs with a filing the adapter trained on (`seen_filings.train` in its
    filingcontrast.json); return how many share a filing with the pairs that chose its epoch
    and fitted its calibration (`seen_filings.valid`): those figures are in-sample. Adapters
    trained before the record existed are not checked."""
    if not isinstance(seen, dict):
        return 0
    trained = set(seen.get("train") or [])
    clashes = [(n, pair_filings(row) & trained) for n, row in enumerate(rows, start=1)]
    clashes = [(n, accs) for n, accs in clashes if accs]
    if clashes:
        n, accs = clashes[0]
        raise UserError(
            f"{path}:{n}: filing {min(accs)} is one the adapter trained on ({len(clashes)} of "
            f"{len(rows)} pairs have one); evaluate on pairs it did not learn from"
        )
    tuned = set(seen.get("valid") or [])
    return sum(bool(pair_filings(row) & tuned) for row in rows)


def _load_split(pairs_dir: Path, split: str, required: bool = True) -> list[dict]:
    from filingcontrast.pairs import load_pairs

    path = pairs_dir / f"{split}.jsonl"
    if not path.exists():
        if required:
            raise UserError(f"{path}: pairs file not found")
        return []
    return list(load_pairs(pairs_dir, split))


def _ceiling(rows: Sequence[dict]) -> tuple[float | None, float | None]:
    """(Bayes ceiling, oracle accuracy) when every pair carries simulated truth, else (None, None)."""
    metas = [r["meta"] for r in rows]
    if not all((m.get("a") or {}).get("truth") and (m.get("b") or {}).get("truth") for m in metas):
        return None, None
    from filingcontrast.corpus.simulate import bayes_ceiling, oracle_accuracy

    window, method = metas[0].get("window", "0_1"), metas[0].get("method", "market_adjusted")
    ceiling = bayes_ceiling(metas, window=window, method=method)
    ceiling = None if ceiling is None else float(ceiling)
    return ceiling, oracle_accuracy(metas)


def _model_block(
    p_a: np.ndarray, p_ab: np.ndarray, p_ba: np.ndarray, rows: Sequence[dict], ec: Any, seed: int
) -> dict:
    y = a_won(rows)
    out = M.prob_metrics(p_a, y, ec.ece_bins, ec.bootstrap, seed)
    out["swap_consistency"] = M.swap_consistency(p_ab, p_ba)
    credit = M.correctness(p_a, y)
    out["by_item"] = M.grouped_accuracy([pair_items(r) for r in rows], credit, ec.bootstrap, seed)
    out["by_confidence"] = M.grouped_accuracy(
        [[M.confidence_level(float(p))] for p in p_a], credit, ec.bootstrap, seed
    )
    out["reliability"] = M.reliability(p_a, y, ec.ece_bins)
    return out


def _baseline_block(p: np.ndarray, rows: Sequence[dict], ec: Any, seed: int, probs: bool) -> dict:
    y = a_won(rows)
    if probs:
        return M.prob_metrics(p, y, ec.ece_bins, ec.bootstrap, seed)
    credit = M.correctness(p, y)
    return {
        "n": int(credit.size),
        "accuracy": float(credit.mean()),
        "accuracy_ci": M.bootstrap_ci(credit, ec.bootstrap, seed),
    }


def _vs_fine_tuned(p_model: np.ndarray, p_baseline: np.ndarray, y: np.ndarray) -> dict:
    """The model against a baseline on the same pairs (McNemar on the discordant ones)."""
    paired = M.paired_comparison(M.correctness(p_model, y), M.correctness(p_baseline, y))
    return {
        "only_fine_tuned_right": paired["only_first_right"],
        "only_baseline_right": paired["only_second_right"],
        "coin_flip_pairs": paired["coin_flip_pairs"],
        "mcnemar_p": paired["mcnemar_p"],
    }


def _filings(rows: Sequence[dict]) -> tuple[list[dict], list[tuple[int, int]]]:
    """Unique filings of the pairs (accession, digest, abnormal_ret) and each pair's indices."""
    index: dict[str, int] = {}
    filings: list[dict] = []
    pair_idx = []
    for row in rows:
        ids = []
        for side in ("a", "b"):
            f = row["meta"][side]
            acc = str(f.get("accession"))
            if acc not in index:
                index[acc] = len(filings)
                filings.append(
                    {"id": acc, "digest": f.get("digest") or "", "ret": f.get("abnormal_ret")}
                )
            ids.append(index[acc])
        pair_idx.append((ids[0], ids[1]))
    return filings, pair_idx


def _top_up_schedule(
    n: int, existing: Sequence[tuple[int, int]], k: int, seed: int
) -> list[tuple[int, int]]:
    """Pairs from the k-regular schedule that bring filings below k comparisons up to k."""
    from filingcontrast.predict import comparison_schedule

    degree = np.zeros(n, dtype=int)
    seen = set()
    for i, j in existing:
        degree[i] += 1
        degree[j] += 1
        seen.add((min(i, j), max(i, j)))
    extra = []
    for i, j in comparison_schedule(n, k, seed):
        if (i, j) in seen or (degree[i] >= k and degree[j] >= k):
            continue
        extra.append((i, j))
        degree[i] += 1
        degree[j] += 1
    return extra


def _ranking(
    scorer: Any, rows: Sequence[dict], p_a: np.ndarray, ec: Any, seed: int
) -> dict[str, Any]:
    from filingcontrast.predict import rank_digests

    filings, pair_idx = _filings(rows)
    # The pairs' own verdicts, plus the top-up comparisons scored the way `rank` scores them.
    scored = [(i, j, float(p)) for (i, j), p in zip(pair_idx, p_a, strict=True)]
    extra = _top_up_schedule(len(filings), pair_idx, ec.rank_k, seed)
    bt, comps = rank_digests(
        scorer.model,
        scorer.formatter,
        [f["digest"] for f in filings],
        seed=seed,
        batch_size=ec.batch_size,
        extra=scored,
        n_boot=min(ec.bootstrap, 200),
        calibration=scorer.calibration,
        schedule=extra,
        progress="rank (top-up comparisons)",
    )
    have = [n for n, f in enumerate(filings) if f["ret"] is not None]
    scores = bt.scores[have]
    rets = np.array([float(filings[n]["ret"]) for n in have])
    return {
        "spearman_ic": M.spearman_ic(scores, rets),
        "long_short_spread": M.long_short_spread(scores, rets, 5),
        "n_filings": len(filings),
        "comparisons": len(comps),
        "extra_comparisons": len(extra),
        "points": [
            {
                "id": filings[n]["id"],
                "score": float(bt.scores[n]),
                "ci": None if np.isnan(bt.ci[n]).any() else [float(x) for x in bt.ci[n]],
                "ret": filings[n]["ret"],
            }
            for n in range(len(filings))
        ],
    }


def _finite(obj: Any) -> Any:
    """NaN/inf -> None so that metrics.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def score_rows(scorer: Any, rows: Sequence[dict], batch_size: int, zero_shot: bool = False):
    """(p_a, p_ab, p_ba) for pairs rows; `zero_shot` disables the adapter for the call.

    A row longer than the adapter's training `max_seq_len` is scored with its digests shortened
    as training and validation shortened them (`fit_row`), not at a length training never saw."""
    from filingcontrast.dataset import pair_probabilities

    limit = scorer.meta.get("max_seq_len")
    if limit:
        rows = [scorer.formatter.fit_row(r, limit) for r in rows]
    bar = "zero-shot (both orders)" if zero_shot else "evaluate (both orders)"
    with scorer.model.disable_adapter() if zero_shot else nullcontext():
        return pair_probabilities(scorer.model, scorer.formatter, rows, batch_size, progress=bar)


def evaluate_run(
    adapter_or_run_dir: Path, pairs_dir: Path, cfg: RunConfig, base: str | None = None
) -> dict:
    """Evaluate a trained adapter on `pairs_dir/<split>.jsonl`; write metrics.json and
    predictions.jsonl into the run directory; return the metrics. `base`, when given, must be
    the base the adapter was trained on (a one-line error otherwise, as compare --base)."""
    from filingcontrast import baselines as B
    from filingcontrast.predict import load_scorer
    from filingcontrast.train import adapter_meta, resolve_adapter_dir

    ec = cfg.evaluate
    seed = cfg.seed
    adapter_dir = resolve_adapter_dir(adapter_or_run_dir)
    run_dir = adapter_dir.parent if adapter_dir.name == "adapter" else adapter_dir
    pairs_dir = check_pairs_dir(pairs_dir)
    rows = _load_split(pairs_dir, ec.split)
    check_labelled(rows, pairs_dir / f"{ec.split}.jsonl")
    n_in_split = len(rows)
    if ec.max_pairs:
        rows = rows[: ec.max_pairs]
    seen = adapter_meta(adapter_dir).get("seen_filings")
    in_sample = check_unseen(rows, seen, pairs_dir / f"{ec.split}.jsonl")
    train_rows = _load_split(pairs_dir, "train", required=False)
    run = RunDir(run_dir)
    run.log(f"evaluate: {len(rows)} {ec.split} pairs from {pairs_dir}")

    scorer = load_scorer(adapter_dir, base)
    raw = score_rows(scorer, rows, ec.batch_size)
    # What compare/rank would answer: the adapter's validation-fitted calibration applied.
    p_a, p_ab, p_ba = scorer.calibration.apply(raw[1], raw[2])
    out: dict[str, Any] = {"split": ec.split, "n_pairs": len(rows), "n_pairs_in_split": n_in_split}
    if in_sample:
        out["in_sample"] = {
            "pairs": in_sample,
            "why": "the adapter's epoch choice and calibration used filings of these pairs",
        }
    block = _model_block(p_a, p_ab, p_ba, rows, ec, seed)
    out.update({k: block[k] for k in ("accuracy", "accuracy_ci", "log_loss", "brier", "ece")})
    out["swap_consistency"] = block["swap_consistency"]
    out["calibration"] = scorer.calibration.to_dict()
    raw_block = _model_block(*raw, rows, ec, seed)
    out["uncalibrated"] = {
        k: raw_block[k]
        for k in ("accuracy", "accuracy_ci", "log_loss", "brier", "ece", "swap_consistency")
    }
    out["ceiling"], out["oracle_accuracy"] = _ceiling(rows)
    for key in ("by_item", "by_confidence", "reliability"):
        out[key] = block[key]

    base: dict[str, Any] = {}
    zs = None
    per_pair: dict[str, np.ndarray] = {}  # each baseline's P(A) per pair, for predictions.jsonl
    if "majority" in ec.baselines:
        per_pair["majority"] = B.majority(train_rows, rows)
        base["majority"] = _baseline_block(per_pair["majority"], rows, ec, seed, False)
        base["majority"]["train_pairs"] = len(train_rows)
    if "signal_rule" in ec.baselines:
        per_pair["signal_rule"] = B.signal_rule(rows)
        base["signal_rule"] = _baseline_block(per_pair["signal_rule"], rows, ec, seed, False)
    if "tfidf_logreg" in ec.baselines:
        try:
            p = B.tfidf_logreg(train_rows, rows, seed) if train_rows else None
        except ValueError as exc:  # e.g. sklearn's "empty vocabulary" on hand-made pairs
            base["tfidf_logreg"] = {"skipped": f"cannot fit: {exc}"}
        else:
            if p is None:
                base["tfidf_logreg"] = {"skipped": "no training pairs to fit on"}
            else:
                per_pair["tfidf_logreg"] = p
                base["tfidf_logreg"] = _baseline_block(p, rows, ec, seed, True)
                base["tfidf_logreg"]["train_pairs"] = len(train_rows)
    y = a_won(rows)
    for name, p in per_pair.items():
        base[name]["vs_fine_tuned"] = _vs_fine_tuned(p_a, p, y)
    if "zero_shot" in ec.baselines:
        if scorer.has_adapter:
            zs_rows = rows[: ec.zero_shot_max_pairs] if ec.zero_shot_max_pairs else rows
            zs = score_rows(scorer, zs_rows, ec.batch_size, zero_shot=True)
            zb = _model_block(*zs, zs_rows, ec, seed)
            base["zero_shot"] = {k: v for k, v in zb.items() if k not in ("reliability",)}
            if len(zs_rows) < len(rows):  # a subset: the paired comparison the reader needs
                same = _baseline_block(p_a[: len(zs_rows)], zs_rows, ec, seed, probs=False)
                base["zero_shot"]["fine_tuned_same_pairs"] = same
            base["zero_shot"]["vs_fine_tuned"] = _vs_fine_tuned(
                p_a[: len(zs_rows)], zs[0], y[: len(zs_rows)]
            )
        else:
            base["zero_shot"] = {"skipped": "model has no adapter to disable"}
    out["baselines"] = base
    out["ranking"] = _ranking(scorer, rows, p_a, ec, seed)
    out["base"] = scorer.meta.get("base")
    out["adapter"] = str(adapter_dir)
    out["pairs"] = str(pairs_dir)
    out = _finite(out)

    lines = []
    for n, row in enumerate(rows):
        rec = {
            "pair_id": row["meta"].get("pair_id"),
            "winner": row["meta"]["winner"],
            "p_a": float(p_a[n]),
            "p_ab": float(p_ab[n]),
            "p_ba": float(p_ba[n]),
            "raw": {"p_a": float(raw[0][n]), "p_ab": float(raw[1][n]), "p_ba": float(raw[2][n])},
        }
        if zs is not None and n < len(zs[0]):
            rec["zero_shot"] = {"p_a": float(zs[0][n]), "p_ab": float(zs[1][n]),
                                "p_ba": float(zs[2][n])}  # fmt: skip
        if per_pair:
            rec["baselines"] = {name: float(p[n]) for name, p in per_pair.items()}
        lines.append(json.dumps(rec))
    atomic_write_text(run_dir / "predictions.jsonl", "\n".join(lines) + "\n")
    atomic_write_json(run_dir / "metrics.json", out)
    run.log(f"evaluate: accuracy {out['accuracy']:.3f} on {len(rows)} pairs -> metrics.json")
    return out
