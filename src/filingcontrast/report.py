"""`filingcontrast report runs/NAME`: one self-contained HTML file (plots as base64 PNGs).

Reads what the run has — `metrics.jsonl` (training and per-epoch validation lines from train),
`metrics.json` and `predictions.jsonl` (from evaluate), `config.toml`, `train_summary.json` and
the adapter's record (the run's settings), the pairs file (example digests) — and writes
`runs/NAME/report.html` atomically. It opens with the verdict (accuracy and interval against
chance, the ceiling, the best baseline and zero-shot, with paired tests). Every section degrades
to a sentence saying what is missing instead of failing, so the report can be written after
training alone, after evaluation alone, or both.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from filingcontrast.errors import UserError
from filingcontrast.metrics import gap_closed
from filingcontrast.runtime import atomic_write_text, iter_jsonl, read_json

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:24px auto;padding:0 16px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee}.note{color:#555;font-style:italic}
.finding{background:#f6f9ff;border-left:4px solid #4a7fd4;padding:8px 12px}
.summary{background:#fffbea;border-left:4px solid #d4a24a;padding:10px 14px;line-height:1.5}
.wide{overflow-x:auto}td{white-space:nowrap}
.defs{font-size:.9em;color:#444}.defs dt{font-weight:600;float:left;clear:left;width:11em}
.defs dd{margin-left:11.5em;margin-bottom:2px}
.example{margin:10px 0;padding:6px 10px;border:1px solid #e4e4e4}
pre{white-space:pre-wrap;font-size:.85em;background:#fafafa;padding:6px}
"""


# ---------------------------------------------------------------------------------------------
# Reading the run


def read_jsonl(path: Path) -> list[dict]:
    """JSON lines; a torn last line (a crashed writer) is skipped, any other bad line is an error."""
    if not path.exists():
        return []
    return [obj for _, obj in iter_jsonl(path, torn_tail_ok=True)]


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class _Fields:
    """Type checks of the fields the report reads, so that a hand-edited or foreign
    metrics.json / metrics.jsonl is a one-line error naming the field, not a traceback."""

    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, field: str, what: str, v: Any) -> None:
        raise UserError(f"{self.where}: field {field}: expected {what}, got {repr(v)[:60]}")

    def num(self, field: str, v: Any, null: bool = True) -> None:
        if not (_is_num(v) or (null and v is None)):
            self.bad(field, "a number" + (" or null" if null else ""), v)

    def ci(self, field: str, v: Any) -> None:
        if v is not None and not (isinstance(v, list) and len(v) == 2 and all(map(_is_num, v))):
            self.bad(field, "[lo, hi] (two numbers) or null", v)

    def obj(self, field: str, v: Any, null: bool = True) -> dict:
        if not (isinstance(v, dict) or (null and v is None)):
            self.bad(field, "an object" + (" or null" if null else ""), v)
        return v or {}

    def acc_table(self, field: str, v: Any) -> None:
        """{key: {n, accuracy[, accuracy_ci]}} as by_item / by_confidence."""
        for key, row in self.obj(field, v).items():
            row = self.obj(f"{field}.{key}", row, null=False)
            self.num(f"{field}.{key}.n", row.get("n"), null=False)
            self.num(f"{field}.{key}.accuracy", row.get("accuracy"))
            self.ci(f"{field}.{key}.accuracy_ci", row.get("accuracy_ci"))


def check_metrics(m: dict, path: Path) -> None:
    """metrics.json as evaluate writes it (missing keys are fine: those sections say so)."""
    f = _Fields(str(path))
    for key in ("n_pairs", "n_pairs_in_split", "accuracy", "log_loss", "brier", "ece",
                "swap_consistency", "ceiling", "oracle_accuracy"):  # fmt: skip
        f.num(key, m.get(key))
    f.ci("accuracy_ci", m.get("accuracy_ci"))
    cal = f.obj("calibration", m.get("calibration"))
    for key in ("n_pairs", "bias", "temperature", "log_loss_before", "log_loss_after"):
        f.num(f"calibration.{key}", cal.get(key))
    blocks = {"uncalibrated": m["uncalibrated"]} if m.get("uncalibrated") is not None else {}
    blocks.update((f"baselines.{k}", v) for k, v in f.obj("baselines", m.get("baselines")).items())
    for name, b in list(blocks.items()):  # the model on a baseline's subset of the pairs
        if isinstance(b, dict) and b.get("fine_tuned_same_pairs") is not None:
            blocks[f"{name}.fine_tuned_same_pairs"] = b["fine_tuned_same_pairs"]
    for name, b in blocks.items():
        b = f.obj(name, b, null=False)
        if b.get("skipped") is not None and not isinstance(b["skipped"], str):
            f.bad(f"{name}.skipped", "a string", b["skipped"])
        for key in ("n", "accuracy", "log_loss", "brier", "ece", "swap_consistency",
                    "train_pairs"):  # fmt: skip
            f.num(f"{name}.{key}", b.get(key))
        f.ci(f"{name}.accuracy_ci", b.get("accuracy_ci"))
        vs = f.obj(f"{name}.vs_fine_tuned", b.get("vs_fine_tuned"))
        for key in ("only_fine_tuned_right", "only_baseline_right", "mcnemar_p") if vs else ():
            f.num(f"{name}.vs_fine_tuned.{key}", vs.get(key), null=False)
    f.acc_table("by_item", m.get("by_item"))
    f.acc_table("by_confidence", m.get("by_confidence"))
    rel = m.get("reliability")
    if rel is not None and not isinstance(rel, list):
        f.bad("reliability", "a list of bins", rel)
    for n, row in enumerate(rel or []):
        row = f.obj(f"reliability[{n}]", row, null=False)
        for key in ("n", "mean_p", "frac_a"):
            f.num(f"reliability[{n}].{key}", row.get(key))
    rk = f.obj("ranking", m.get("ranking"))
    for key in ("spearman_ic", "long_short_spread", "n_filings", "comparisons"):
        f.num(f"ranking.{key}", rk.get(key))
    points = rk.get("points")
    if points is not None and not isinstance(points, list):
        f.bad("ranking.points", "a list", points)
    for n, p in enumerate(points or []):
        p = f.obj(f"ranking.points[{n}]", p, null=False)
        f.num(f"ranking.points[{n}].score", p.get("score"), null=False)
        f.num(f"ranking.points[{n}].ret", p.get("ret"))


def check_log_lines(train: list[dict], evals: list[dict], path: Path) -> None:
    """The metrics.jsonl fields the plots read."""
    f = _Fields(str(path))
    for r in train:
        f.num("step (train line)", r["step"], null=False)
        f.num("loss (train line)", r["loss"], null=False)
    for r in evals:
        f.num("epoch (eval line)", r["epoch"], null=False)
        f.num("valid_loss (eval line)", r.get("valid_loss"))
        f.acc_table("by_item (eval line)", r.get("by_item"))


# ---------------------------------------------------------------------------------------------
# Plots


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fig(w: float = 7, h: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def plot_loss(train: list[dict], evals: list[dict]) -> str | None:
    if not train and not evals:
        return None
    fig, ax = _fig()
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1, label="train loss")
    # Place each epoch's validation loss at the last step of that epoch.
    last_step = {}
    for r in train:
        last_step[r.get("epoch")] = r["step"]
    pts = [(last_step.get(e["epoch"], e["epoch"]), e["valid_loss"]) for e in evals
           if e.get("valid_loss") is not None]  # fmt: skip
    if pts:
        ax.plot(*zip(*pts, strict=True), "o-", color="C3", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (answer tokens)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_reliability(rel: list[dict]) -> str | None:
    """Each bin's mean prediction against its share of A wins, with the bin's Wilson interval
    and its n: a bin of 5 pairs is a rough estimate, and the reader should see which those are."""
    from filingcontrast.metrics import wilson_ci

    pts = [(r["mean_p"], r["frac_a"], int(r["n"])) for r in rel or [] if r.get("n")]
    if not pts:
        return None
    fig, ax = _fig(5, 4.5)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    xs, ys, ns = zip(*pts, strict=True)
    cis = [wilson_ci(y * n, n) for y, n in zip(ys, ns, strict=True)]
    err = [[max(0.0, y - lo) for y, (lo, _) in zip(ys, cis, strict=True)],
           [max(0.0, hi - y) for y, (_, hi) in zip(ys, cis, strict=True)]]  # fmt: skip
    ax.errorbar(xs, ys, yerr=err, fmt="o-", color="C0", lw=1, capsize=3,
                label="bins of width 0.1 (95 % Wilson interval)")  # fmt: skip
    for x, y, n in pts:
        ax.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(6, -10), fontsize=7)
    ax.set_xlabel("predicted P(A better), calibrated")
    ax.set_ylabel("observed share of A wins")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def item_name(code: str) -> str:
    """ "2.02 earnings": the code with the short event label the prompts use."""
    from filingcontrast.digest import ITEM_LABELS

    label = ITEM_LABELS.get(code)
    return f"{code} {label}" if label else code


def _xerr(acc: list[float], cis: list[list[float] | None]) -> list[list[float]]:
    """Error-bar lengths below and above each accuracy from its [lo, hi] (None: no bar); an
    accuracy outside its own interval (a hand-edited file) gets no bar on that side, since
    matplotlib refuses negative lengths."""
    cis = [ci or [a, a] for a, ci in zip(acc, cis, strict=True)]
    return [[max(0.0, a - ci[0]) for a, ci in zip(acc, cis, strict=True)],
            [max(0.0, ci[1] - a) for a, ci in zip(acc, cis, strict=True)]]  # fmt: skip


def plot_by_item(by_item: dict, top: int = 15) -> str | None:
    rows = sorted(by_item.items(), key=lambda kv: -kv[1]["n"])[:top]
    if not rows:
        return None
    fig, ax = _fig(7, 0.35 * len(rows) + 1)
    names = [f"{item_name(k)} (n={v['n']})" for k, v in rows]
    acc = [v["accuracy"] for _, v in rows]
    ax.barh(names, acc, xerr=_xerr(acc, [v.get("accuracy_ci") for _, v in rows]), color="C0",
            capsize=3)  # fmt: skip
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy (95 % CI)")
    return _png(fig)


def comparison_rows(m: dict) -> list[tuple[str, float | None, list | None]]:
    """(name, accuracy, ci) of the model, each baseline (and the model on a baseline's subset
    of the pairs), the oracle and the ceiling."""
    rows = [("fine-tuned", m.get("accuracy"), m.get("accuracy_ci"))]
    for name, b in (m.get("baselines") or {}).items():
        if b.get("n") is not None and b["n"] != m.get("n_pairs"):
            name = f"{name} (n={b['n']})"  # scored on a subset (evaluate.zero_shot_max_pairs)
        rows.append((name, b.get("accuracy"), b.get("accuracy_ci")))
        same = b.get("fine_tuned_same_pairs")
        if same:
            rows.append((f"fine-tuned (same n={same.get('n')})", same.get("accuracy"),
                         same.get("accuracy_ci")))  # fmt: skip
    if m.get("oracle_accuracy") is not None:
        rows.append(("oracle", m["oracle_accuracy"], None))
    if m.get("ceiling") is not None:
        rows.append(("Bayes ceiling", m["ceiling"], None))
    return rows


def plot_vs_baselines(m: dict) -> str | None:
    """Horizontal bars with their values; the ceiling is a line (an expectation, which a
    realized figure on a finite sample, the oracle's included, may exceed), not a bar."""
    rows = [r for r in comparison_rows(m) if r[1] is not None and r[0] != "Bayes ceiling"]
    if not rows:
        return None
    fig, ax = _fig(7, 0.42 * len(rows) + 1.2)
    names = [r[0] for r in rows]
    acc = [r[1] for r in rows]
    lo, hi = _xerr(acc, [r[2] for r in rows])
    colors = ["C3" if n.startswith("fine-tuned") else "C2" if n == "oracle" else "C7"
              for n in names]  # fmt: skip
    ax.barh(names, acc, xerr=[lo, hi], color=colors, capsize=3)
    for y, (a, h) in enumerate(zip(acc, hi, strict=True)):
        ax.text(min(a + h + 0.01, 0.93), y, f"{a:.3f}", va="center", fontsize=8)
    ax.axvline(0.5, color="grey", ls="--", lw=1, label="chance (0.5)")
    if m.get("ceiling") is not None:
        ax.axvline(m["ceiling"], color="C2", ls="-.", lw=1.5,
                   label=f"Bayes ceiling ({m['ceiling']:.3f})")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("pairwise accuracy (95 % CI)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(rows)), ncol=2,
              fontsize=8, frameon=False)  # fmt: skip
    return _png(fig)


def plot_bt_scatter(ranking: dict, window: str | None) -> str | None:
    pts = [
        (p["score"], p["ret"]) for p in (ranking or {}).get("points", []) if p["ret"] is not None
    ]
    if len(pts) < 2:
        return None
    fig, ax = _fig(6, 4)
    xs, ys = zip(*pts, strict=True)
    ax.scatter(xs, ys, s=12, alpha=0.7)
    ax.axhline(0, color="grey", lw=0.8)
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Bradley-Terry score (model; higher = judged better)")
    ax.set_ylabel(f"realized abnormal return{f', window {window}' if window else ''}")
    return _png(fig)


def item_accuracy_by_epoch(evals: list[dict]) -> dict[str, dict[int, tuple[int, float]]]:
    """item -> epoch -> (n, accuracy); trainer keys like "2.02|5.02" count for both items."""
    out: dict[str, dict[int, list[float]]] = {}
    for e in evals:
        for key, v in (e.get("by_item") or {}).items():
            for item in set(str(key).split("|")):
                n, acc = v.get("n", 0), v.get("accuracy")
                if acc is None or not n:
                    continue
                cell = out.setdefault(item, {}).setdefault(int(e["epoch"]), [0, 0.0])
                cell[0] += n
                cell[1] += n * acc
    return {
        item: {ep: (int(c[0]), c[1] / c[0]) for ep, c in sorted(eps.items())}
        for item, eps in out.items()
    }


def plot_items_by_epoch(table: dict, top: int = 8) -> str | None:
    """Per-item validation accuracy across epochs; None with fewer than two epochs (a single
    point per item says nothing about learning by epoch)."""
    epochs = sorted({e for eps in table.values() for e in eps})
    if len(epochs) < 2:
        return None
    items = sorted(table, key=lambda k: -max(n for n, _ in table[k].values()))[:top]
    fig, ax = _fig()
    for item in items:
        eps = sorted(table[item])
        n = max(k for k, _ in table[item].values())
        ax.plot(eps, [table[item][e][1] for e in eps], "o-", label=f"{item_name(item)} (n={n})")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(ncol=2, fontsize=8)
    return _png(fig)


HYPOTHESIS = (
    "the hypothesis that a model learns beat/miss first, magnitudes in the second epoch and "
    "item-specific patterns (convertible debt, CEO departures) in the third"
)


def epoch_finding(table: dict) -> str:
    """A sentence on what the per-epoch item accuracies show about learning by epoch."""
    epochs = sorted({e for eps in table.values() for e in eps})
    if len(epochs) < 2:
        return (
            "Only one validation pass was logged, so learning by epoch cannot be assessed; "
            f"{HYPOTHESIS} is untested here."
        )
    parts, real = [], []
    for prev, cur in zip(epochs, epochs[1:], strict=False):
        gains = [
            (table[i][cur][1] - table[i][prev][1], i, table[i][cur][0])
            for i in table
            if prev in table[i] and cur in table[i]
        ]
        if not gains:
            continue
        gain, item, n = max(gains)
        parts.append(f"epoch {prev}→{cur}: largest gain on item {item} ({gain:+.2f}, n={n})")
        # A gain counts as real when it exceeds ~2 standard errors of an accuracy (1/sqrt(n)).
        real += [
            f"{i} in epoch {cur} ({g:+.2f}, n={k})" for g, i, k in gains if g > 1 / math.sqrt(k)
        ]
    first = epochs[0]
    beat = table.get("2.02", {}).get(first)
    first_txt = (
        f"After epoch {first}, item 2.02 (earnings) pairs score {beat[1]:.2f} (n={beat[0]})."
        if beat
        else "No item 2.02 (earnings) pairs were in the validation split."
    )
    verdict = (
        "Gains beyond sampling noise (> 1/√n): " + "; ".join(real) + "."
        if real
        else "No per-item gain between epochs exceeds sampling noise (1/√n), so the data does "
        f"not support {HYPOTHESIS}."
    )
    joined = "; ".join(parts)
    return f"{first_txt} {joined[:1].upper() + joined[1:]}. {verdict}"


# ---------------------------------------------------------------------------------------------
# What the run was: its config, training summary and adapter record


def run_facts(run_dir: Path) -> dict[str, Any]:
    """The settings a reader needs beside the figures, from what the run directory has:
    config.toml (resolved by train), train_summary.json, adapter/filingcontrast.json. Missing
    files give missing facts; a damaged one is a one-line error naming it."""
    from filingcontrast.config import read_toml

    cfg = read_toml(run_dir / "config.toml") if (run_dir / "config.toml").is_file() else {}
    summary = read_json(run_dir / "train_summary.json", missing_ok=True) or {}
    meta = read_json(run_dir / "adapter" / "filingcontrast.json", missing_ok=True) or {}
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    pairs = cfg.get("pairs") if isinstance(cfg.get("pairs"), dict) else {}
    rows = summary.get("train_rows") if isinstance(summary.get("train_rows"), dict) else {}
    valid = summary.get("valid_rows") if isinstance(summary.get("valid_rows"), dict) else {}
    return {
        "base": meta.get("base") or cfg.get("base"),
        "template": meta.get("template") or summary.get("template"),
        # Rows the optimizer steps went through (a run stopped by max_steps sees fewer than
        # it kept); older summaries lack it: then what training kept.
        "train_rows": summary.get("rows_seen", rows.get("kept")),
        "train_rows_kept": rows.get("kept"),
        "valid_rows": valid.get("kept"),
        "steps": summary.get("steps"),
        "epochs": train.get("epochs"),
        "lr": train.get("lr"),
        "lora": (
            f"r {train['lora_r']}, alpha {train.get('lora_alpha')}, dropout "
            f"{train.get('lora_dropout')}"
            if "lora_r" in train
            else None
        ),
        "decision_weight": train.get("decision_weight"),
        "min_train_gap": train.get("min_train_gap"),
        "chosen_epoch": meta.get("epoch"),
        "chosen_valid_accuracy": meta.get("valid_accuracy"),
        "digest_tokens": meta.get("digest_tokens"),
        "window": pairs.get("window"),
        "method": pairs.get("method"),
        # A swap-augmented training split holds each pair in both orders: rows, not pairs.
        "row_unit": "rows (pairs in both orders)" if pairs.get("swap_augment") else "pairs",
    }


# ---------------------------------------------------------------------------------------------
# HTML


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    if isinstance(x, list) and len(x) == 2 and all(isinstance(v, float) for v in x):
        return f"[{x[0]:.{nd}f}, {x[1]:.{nd}f}]"
    return html.escape(str(x))


def _p(p: float) -> str:
    """A p-value as HTML text (its "<" escaped: a bare one is a parse error)."""
    return f"{p:.2g}" if p >= 0.001 else "&lt; 0.001"


def _img(b64: str | None, alt: str, missing: str) -> str:
    if b64 is None:
        return f'<p class="note">{html.escape(missing)}</p>'
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _table(rows: str) -> str:
    """A table that scrolls sideways on a narrow screen instead of widening the page."""
    return f"<div class='wide'><table>{rows}</table></div>"


def _paired(b: dict) -> str:
    v = b.get("vs_fine_tuned")
    if not v or not (v["only_fine_tuned_right"] or v["only_baseline_right"]):
        return "—"  # none, or no pair where exactly one is right (a coin flip on every pair)
    return (f"{v['only_fine_tuned_right']} / {v['only_baseline_right']}, "
            f"p {_p(v['mcnemar_p'])}")  # fmt: skip


def summary_box(m: dict, facts: dict) -> str:
    """The verdict first: the model's accuracy and interval against chance, the ceiling, the
    best baseline and the zero-shot model, each with the paired test where there is one."""
    acc, ci = m.get("accuracy"), m.get("accuracy_ci")
    if acc is None:
        return ""
    n, n_split = m.get("n_pairs"), m.get("n_pairs_in_split")
    of = f" (the first {n} of {n_split} in the split)" if n_split and n_split != n else ""
    out = [f"<b>Fine-tuned model: {acc:.3f}</b> {_fmt(ci)} on {_fmt(n)} "
           f"{_fmt(m.get('split'))} pairs{of}."]  # fmt: skip
    if ci and ci[1] < 0.5:
        out.append("Its 95 % interval lies below 0.5: worse than a coin here.")
    elif ci and ci[0] <= 0.5:
        out.append("Its 95 % interval includes 0.5: not distinguishable from a coin here.")
    ceiling = m.get("ceiling")
    closed = gap_closed(acc, ceiling)
    if closed is not None:
        share = (
            "it is at or below chance, so it closes none of the gap from chance to the ceiling"
            if acc <= 0.5
            else "it is at or above the ceiling here (a finite sample can exceed it)"
            if acc >= ceiling
            else f"the model closes {closed:.0%} of the gap from chance to the ceiling"
        )
        out.append(f"Bayes ceiling {ceiling:.3f}: {share}.")
    base = m.get("baselines") or {}
    fitted = {k: b for k, b in base.items()
              if k not in ("zero_shot", "majority") and _is_num(b.get("accuracy"))}  # fmt: skip
    if fitted:
        name, b = max(fitted.items(), key=lambda kv: kv[1]["accuracy"])
        out.append(f"Best baseline: {html.escape(name)} {b['accuracy']:.3f}; "
                   f"{_versus(acc, b, html.escape(name))}")  # fmt: skip
    zs = base.get("zero_shot") or {}
    if _is_num(zs.get("accuracy")):
        same = zs.get("fine_tuned_same_pairs") or ({"accuracy": acc} if zs.get("n") == n else {})
        v = zs.get("vs_fine_tuned")
        test = f" (McNemar p {_p(v['mcnemar_p'])})" if v else ""
        where = (f", where the fine-tuned model scores {same['accuracy']:.3f}{test}"
                 if _is_num(same.get("accuracy")) else "")  # fmt: skip
        out.append(f"The base model zero-shot scores {zs['accuracy']:.3f} on {_fmt(zs.get('n'))} "
                   f"pairs{where}.")  # fmt: skip
    rows = facts.get("train_rows")
    if rows is not None:
        fits = [(k, base[k]["train_pairs"]) for k in ("tfidf_logreg", "majority")
                if _is_num((base.get(k) or {}).get("train_pairs"))]  # fmt: skip
        counts = dict.fromkeys(n for _, n in fits)  # one clause per count, in first-seen order
        beside = "".join(
            f"; {' and '.join(k for k, m in fits if m == n)} fitted all {n} training rows"
            for n in counts
        )
        out.append(f"The model's optimizer steps went through {_fmt(rows)} training "
                   f"{_fmt(facts.get('row_unit', 'pairs'))}{beside}.")  # fmt: skip
    return f"<div class='summary'>{' '.join(out)}</div>"


def _versus(acc: float, b: dict, name: str) -> str:
    """ "beats" only when the paired test says so; otherwise what the accuracies show."""
    v = b.get("vs_fine_tuned")
    significant = v is not None and v["mcnemar_p"] < 0.05
    if acc > b["accuracy"]:
        word = "the model beats it" if significant else "the model scores higher"
    elif acc < b["accuracy"]:
        word = "it beats the model" if significant else "the model scores lower"
    else:
        word = "the two are level"
    if not v:
        return f"{word}."
    return (f"{word}: where they differ, the model is right on {v['only_fine_tuned_right']} "
            f"pairs and {name} on {v['only_baseline_right']} (McNemar p "
            f"{_p(v['mcnemar_p'])}).")  # fmt: skip


def _pair(a: Any, b: Any, form: str = "{} / {}") -> str | None:
    """Two facts in one cell ("1 / 44"), unescaped (the table escapes it); None if both lack."""
    if a is None and b is None:
        return None
    text = lambda v: "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    return form.format(text(a), text(b))


def run_table(facts: dict, m: dict) -> str:
    rows = [
        ("base model", facts.get("base") or m.get("base")),
        ("prompt template", facts.get("template")),
        (f"training {facts.get('row_unit', 'pairs')} seen (of those kept)",
         _pair(facts.get("train_rows"), facts.get("train_rows_kept"), "{} (of {})")),
        ("epochs / optimizer steps", _pair(facts.get("epochs"), facts.get("steps"))),
        ("learning rate", facts.get("lr")),
        ("LoRA", facts.get("lora")),
        ("decision-token loss weight", facts.get("decision_weight")),
        ("min. realized gap of training pairs", facts.get("min_train_gap")),
        ("digest tokens per filing", facts.get("digest_tokens")),
        ("validation pairs (epoch choice, calibration)", facts.get("valid_rows")),
        ("chosen epoch (its validation accuracy)",
         _pair(facts.get("chosen_epoch"), facts.get("chosen_valid_accuracy"), "{} ({})")),
        ("return window / method", _pair(facts.get("window"), facts.get("method"))),
    ]  # fmt: skip
    shown = [(k, v) for k, v in rows if v is not None]
    if not shown:
        return "<p class='note'>No config.toml, train_summary.json or adapter record.</p>"
    value = lambda v: f"{v:g}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731  (lr 0.001, not 0.0010)
    return _table("".join(f"<tr><td>{html.escape(k)}</td><td>{value(v)}</td></tr>"
                          for k, v in shown))  # fmt: skip


DEFINITIONS = (
    "<dl class='defs'>"
    "<dt>majority</dt><dd>constant P(A) = the training pairs' share won by the first-shown "
    "filing; pairs are position-balanced, so this is 0.5 (a coin) or, with an odd number of "
    "training pairs, within one pair of it.</dd>"
    "<dt>signal_rule</dt><dd>hand-set weights on signals extracted from each digest (EPS "
    "surprise, guidance, offerings, …); on simulated data these are the simulator's own "
    "drivers, so it sits near the oracle.</dd>"
    "<dt>tfidf_logreg</dt><dd>TF-IDF of each digest, logistic regression on the difference "
    "A − B, fitted on all training pairs.</dd>"
    "<dt>zero_shot</dt><dd>the base model with the adapter disabled, same prompt and "
    "scoring.</dd>"
    "<dt>oracle</dt><dd>picks the filing with the higher expected return (simulator truth), "
    "scored on the realized winners.</dd>"
    "<dt>Bayes ceiling</dt><dd>the oracle's expected accuracy given the simulator's noise; a "
    "realized figure on a finite sample can exceed it.</dd>"
    "<dt>swap consistency</dt><dd>share of pairs where the same filing is chosen with A and "
    "B swapped (each order scored on its own).</dd>"
    "<dt>vs fine-tuned</dt><dd>pairs only the model gets right / pairs only the baseline gets "
    "right, and McNemar's exact test on them.</dd>"
    "</dl>"
)


def metrics_table(m: dict) -> str:
    cols = ("accuracy", "95 % CI", "log-loss", "Brier", "ECE", "swap consistency", "n",
            "vs fine-tuned")  # fmt: skip
    head = "<tr><th>model</th>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
    rows = [("fine-tuned", m)]
    if m.get("uncalibrated"):
        rows.append(("fine-tuned, uncalibrated", m["uncalibrated"]))
    for name, b in (m.get("baselines") or {}).items():
        rows.append((name, b))
        same = b.get("fine_tuned_same_pairs")
        if same:  # a baseline scored on a subset: the model on exactly those pairs, beside it
            rows.append((f"fine-tuned, the same {_fmt(same.get('n'))} pairs as {name}", same))
    body = []
    for name, b in rows:
        if b.get("skipped"):
            body.append(f"<tr><td>{html.escape(name)}</td><td colspan={len(cols)}>skipped: "
                        f"{html.escape(b['skipped'])}</td></tr>")  # fmt: skip
            continue
        keys = ("accuracy", "accuracy_ci", "log_loss", "brier", "ece", "swap_consistency")
        cells = [b.get(k) for k in keys]
        n = b.get("n", m.get("n_pairs"))
        body.append(
            f"<tr><td>{html.escape(name)}</td>"
            + "".join(f"<td>{_fmt(c)}</td>" for c in cells)
            + f"<td>{_fmt(n)}</td><td>{_paired(b)}</td></tr>"
        )
    extra = [
        ("split", m.get("split")),
        ("pairs", m.get("n_pairs")),
        ("Bayes ceiling (simulated truth)", m.get("ceiling")),
        ("oracle accuracy (simulated truth)", m.get("oracle_accuracy")),
        ("gap from chance to ceiling closed", gap_closed(m.get("accuracy"), m.get("ceiling"))),
    ]
    side = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v, 4)}</td></tr>" for k, v in extra
                   if v is not None)  # fmt: skip
    return _table(f"{head}{''.join(body)}") + DEFINITIONS + _table(side)


def confidence_table(m: dict) -> str:
    from filingcontrast.metrics import CONFIDENCE_HIGH, CONFIDENCE_MEDIUM

    by_conf = m.get("by_confidence") or {}
    if not by_conf:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['n']}</td><td>{_fmt(v['accuracy'])}</td>"
        f"<td>{_fmt(v.get('accuracy_ci'))}</td></tr>"
        for k, v in by_conf.items()
    )
    return (
        "<h3>By confidence</h3>"
        + _table(f"<tr><th>level</th><th>n</th><th>accuracy</th><th>95 % CI</th></tr>{rows}")
        + f"<p class='note'>Levels of the calibrated P(A better): high when max(p, 1 − p) ≥ "
        f"{CONFIDENCE_HIGH:.3f}, medium when ≥ {CONFIDENCE_MEDIUM:.3f}, else low (the "
        "probabilities a Gaussian return gap of 1 and 0.5 noise units gives; training labels "
        "use the same levels).</p>"
    )


def calibration_note(m: dict) -> str:
    """What the calibration did, on validation and on this split, with the raw figures."""
    if not m:
        return ""
    if m.get("calibration") is None:  # metrics.json of an older evaluate
        return "<p class='note'>metrics.json records no calibration.</p>"
    cal = m["calibration"]
    raw = m.get("uncalibrated") or {}
    if not cal.get("n_pairs"):
        return "<p class='note'>No calibration was fitted (too few validation pairs).</p>"
    here = (
        f" On this split, uncalibrated &rarr; calibrated: log-loss {_fmt(raw.get('log_loss'))} "
        f"&rarr; {_fmt(m.get('log_loss'))}, ECE {_fmt(raw.get('ece'))} &rarr; "
        f"{_fmt(m.get('ece'))}, swap consistency {_fmt(raw.get('swap_consistency'))} &rarr; "
        f"{_fmt(m.get('swap_consistency'))}."
        if raw
        else ""
    )
    return (
        f"<p>The plot shows calibrated probabilities. Calibration was fitted on "
        f"{_fmt(cal['n_pairs'])} validation pairs (both orders): position bias "
        f"{_fmt(cal.get('bias'), 3)} (decision logit), temperature "
        f"{_fmt(cal.get('temperature'), 3)}; validation log-loss per order "
        f"{_fmt(cal.get('log_loss_before'))} &rarr; {_fmt(cal.get('log_loss_after'))}.{here} "
        "Accuracy is the same with and without it: the verdict averages both orders, and "
        "shifting and scaling each order's decision logit alike cannot change which filing "
        "that average favours.</p>"
    )


def ranking_note(m: dict, facts: dict) -> str:
    rk = m.get("ranking") or {}
    if not rk:
        return ""
    pts = [(p["score"], p["ret"]) for p in rk.get("points") or [] if p.get("ret") is not None]
    pval = ""
    if len(pts) >= 3 and rk.get("spearman_ic") is not None:
        from scipy.stats import spearmanr

        pval = f", p {_p(float(spearmanr(*zip(*pts, strict=True)).pvalue))}"
    spread = rk.get("long_short_spread")
    window = html.escape(str(facts["window"])) if facts.get("window") else None
    return (
        f"<p>Each test filing scored by a Bradley–Terry fit to the model's pairwise verdicts "
        f"({_fmt(rk.get('n_filings'))} filings, {_fmt(rk.get('comparisons'))} comparisons). "
        f"Spearman IC with the realized abnormal return{f' (window {window})' if window else ''}"
        f": {_fmt(rk.get('spearman_ic'))} (n {_fmt(rk.get('n_filings'))}{pval}); mean return "
        f"of the top score quintile minus the bottom one: "
        f"{'—' if spread is None else f'{spread:+.2%}'}.</p>"
    )


def examples(m: dict, run_dir: Path, k: int = 2) -> str:
    """The model's most confident right and wrong verdicts with what it read: the digests from
    the pairs file, when the run directory (demo) or the recorded pairs path still has it."""
    preds = read_jsonl(run_dir / "predictions.jsonl") if m else []
    split = m.get("split") if m else None
    candidates = [run_dir / "pairs" / f"{split}.jsonl"]
    if m and m.get("pairs"):
        candidates.append(Path(str(m["pairs"])) / f"{split}.jsonl")
    found = next((p for p in candidates if split and p.is_file()), None)
    if not preds or found is None:
        return "<p class='note'>No predictions.jsonl or pairs file to show examples from.</p>"
    # Only for display: rows or predictions of the wrong shape are left out, not an error.
    rows = {r["meta"].get("pair_id"): r for _, r in iter_jsonl(found)
            if isinstance(r.get("meta"), dict) and isinstance(r["meta"].get("pair_id"), str)}  # fmt: skip
    scored = [(p, rows[p["pair_id"]]) for p in preds if isinstance(p.get("pair_id"), str)
              and p["pair_id"] in rows and _is_num(p.get("p_a"))
              and p.get("winner") in ("A", "B")]  # fmt: skip
    decided = [(p, r) for p, r in scored if p["p_a"] != 0.5]  # a coin flip is neither
    right = [(p, r) for p, r in decided if (p["p_a"] > 0.5) == (p["winner"] == "A")]
    wrong = [(p, r) for p, r in decided if (p["p_a"] > 0.5) != (p["winner"] == "A")]
    by_conf = lambda pr: -abs(pr[0]["p_a"] - 0.5)  # noqa: E731
    out = []
    for title, group in (("right", right), ("wrong", wrong)):
        for p, r in sorted(group, key=by_conf)[:k]:
            out.append(_example(title, p, r["meta"]))
    if not out:
        return "<p class='note'>No scored pairs matched the pairs file.</p>"
    return (f"<p>From {html.escape(str(found))}: the {k} most confident right and wrong "
            "verdicts, with the digests the model read.</p>" + "".join(out))  # fmt: skip


def _example(title: str, pred: dict, meta: dict) -> str:
    sides = []
    for side in ("a", "b"):
        f = meta.get(side) if isinstance(meta.get(side), dict) else {}
        ret = f.get("abnormal_ret")
        codes = f.get("items") or []
        items = ", ".join(
            item_name(str(i)) for i in (codes if isinstance(codes, list) else [codes])
        )
        sides.append(
            f"<details><summary>Filing {side.upper()}: {html.escape(items or '?')}; realized "
            f"abnormal return {'—' if not _is_num(ret) else f'{ret:+.2%}'}</summary>"
            f"<pre>{html.escape(str(f.get('digest') or '(no digest recorded)'))}</pre></details>"
        )
    choice = "A" if pred["p_a"] > 0.5 else "B"
    return (
        f"<div class='example'><b>{title}</b>: P(A better) = {pred['p_a']:.3f} → Filing "
        f"{choice}; Filing {html.escape(str(pred['winner']))} won.{''.join(sides)}</div>"
    )


def build_report(run_dir: Path) -> str:
    from filingcontrast import __version__

    lines = read_jsonl(run_dir / "metrics.jsonl")
    train = [r for r in lines if r.get("type") == "train" and "loss" in r and "step" in r]
    evals = [r for r in lines if r.get("type") == "eval" and "epoch" in r]
    check_log_lines(train, evals, run_dir / "metrics.jsonl")
    m = read_json(run_dir / "metrics.json", missing_ok=True)
    if m is not None:
        check_metrics(m, run_dir / "metrics.json")
    facts = run_facts(run_dir)
    table = item_accuracy_by_epoch(evals)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>filingcontrast report: {html.escape(run_dir.name)}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>filingcontrast run <code>{html.escape(run_dir.name)}</code></h1>",
        f"<p class='note'>Written by filingcontrast {__version__} from the run directory's "
        "metrics.json, metrics.jsonl, config.toml, train_summary.json and predictions.</p>",
    ]
    if m:
        parts.append(summary_box(m, facts))
        in_sample = m.get("in_sample")
        if isinstance(in_sample, dict):
            parts.append(
                f"<p><b>In-sample:</b> {_fmt(in_sample.get('pairs'))} of these pairs share a "
                "filing with the validation pairs that chose the adapter's epoch and fitted its "
                "calibration; these figures flatter the model.</p>"
            )
    parts.append("<h2 id='metrics'>Metrics</h2>")
    if m:
        parts.append(metrics_table(m) + confidence_table(m))
    else:
        parts.append("<p class='note'>No metrics.json: run <code>filingcontrast evaluate</code> "
                     "first.</p>")  # fmt: skip
    parts.append("<h2 id='baselines'>Model vs baselines vs ceiling</h2>")
    parts.append(_img(plot_vs_baselines(m or {}), "accuracy comparison", "No evaluation yet."))
    parts.append("<h2 id='run'>The run</h2>")
    parts.append(run_table(facts, m or {}))
    parts.append("<h2 id='reliability'>Reliability diagram</h2>")
    rel = (m or {}).get("reliability")
    parts.append(_img(plot_reliability(rel), "reliability diagram", "No reliability data."))
    if m and m.get("ece") is not None:
        parts.append(f"<p>Expected calibration error (10 equal-width bins): {_fmt(m['ece'])}.</p>")
    parts.append(calibration_note(m or {}))
    parts.append("<h2 id='by-item'>Accuracy by item</h2>")
    parts.append(_img(plot_by_item((m or {}).get("by_item") or {}), "accuracy by item",
                      "No per-item results."))  # fmt: skip
    parts.append("<p class='note'>A pair counts for every item code of either filing; 9.01 "
                 "(exhibits) accompanies most earnings releases, so its row mostly repeats "
                 "2.02's.</p>")  # fmt: skip
    parts.append("<h2 id='ranking'>Bradley-Terry score vs realized return</h2>")
    parts.append(_img(plot_bt_scatter((m or {}).get("ranking"), facts.get("window")),
                      "BT scatter", "No ranking data."))  # fmt: skip
    parts.append(ranking_note(m or {}, facts))
    parts.append("<h2 id='examples'>Examples</h2>")
    parts.append(examples(m or {}, run_dir))
    parts.append("<h2 id='loss'>Training and validation loss</h2>")
    parts.append(
        _img(plot_loss(train, evals), "loss curves", "No training lines in metrics.jsonl.")
    )
    if train and not evals:
        parts.append("<p class='note'>No validation (eval) lines were logged.</p>")
    parts.append("<h2 id='epochs'>Accuracy by item type at each epoch</h2>")
    if evals:
        plot = plot_items_by_epoch(table)
        if plot:
            parts.append(_img(plot, "items by epoch", ""))
        parts.append(f"<p class='finding'>{html.escape(epoch_finding(table))}</p>")
    else:
        parts.append("<p class='note'>No eval lines in metrics.jsonl (train with "
                     "train.eval_every_epoch=true), so learning by epoch cannot be shown.</p>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: Path) -> Path:
    """Write `run_dir/report.html` (self-contained) and return its path."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise UserError(f"{run_dir}: not a directory (pass the run directory, runs/NAME)")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    if not (run_dir / "metrics.jsonl").exists() and not (run_dir / "metrics.json").exists():
        raise UserError(f"{run_dir}: nothing to report (no metrics.jsonl or metrics.json)")
    out = run_dir / "report.html"
    atomic_write_text(out, build_report(run_dir))
    return out
