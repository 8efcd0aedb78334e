"""`filingcontrast report runs/NAME`: one self-contained HTML file (plots as base64 PNGs).

Reads what the run has — `metrics.jsonl` (training and per-epoch validation lines from train),
`metrics.json` (from evaluate), `config.toml` — and writes `runs/NAME/report.html` atomically.
Every section degrades to a sentence saying what is missing instead of failing, so the report can
be written after training alone, after evaluation alone, or both.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from filingcontrast.errors import UserError
from filingcontrast.runtime import atomic_write_text, iter_jsonl, read_json

# Items the seed's epoch story names: beat/miss (2.02 results of operations), CEO departures
# (5.02), convertible debt (2.03 direct financial obligations, 3.02 unregistered equity sales).
SEED_ITEMS = {"2.02": "earnings (beat/miss)", "5.02": "officer departures", "2.03": "debt",
              "3.02": "unregistered equity sales"}  # fmt: skip
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:24px auto;padding:0 16px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee}.note{color:#555;font-style:italic}
.finding{background:#f6f9ff;border-left:4px solid #4a7fd4;padding:8px 12px}
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
    for key in ("n_pairs", "accuracy", "log_loss", "brier", "ece", "swap_consistency",
                "ceiling", "oracle_accuracy"):  # fmt: skip
        f.num(key, m.get(key))
    f.ci("accuracy_ci", m.get("accuracy_ci"))
    f.obj("calibration", m.get("calibration"))
    blocks = {"uncalibrated": m["uncalibrated"]} if m.get("uncalibrated") is not None else {}
    blocks.update((f"baselines.{k}", v) for k, v in f.obj("baselines", m.get("baselines")).items())
    for name, b in list(blocks.items()):  # the model on a baseline's subset of the pairs
        if isinstance(b, dict) and b.get("fine_tuned_same_pairs") is not None:
            blocks[f"{name}.fine_tuned_same_pairs"] = b["fine_tuned_same_pairs"]
    for name, b in blocks.items():
        b = f.obj(name, b, null=False)
        if b.get("skipped") is not None and not isinstance(b["skipped"], str):
            f.bad(f"{name}.skipped", "a string", b["skipped"])
        for key in ("n", "accuracy", "log_loss", "brier", "ece"):
            f.num(f"{name}.{key}", b.get(key))
        f.ci(f"{name}.accuracy_ci", b.get("accuracy_ci"))
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
    pts = [(r["mean_p"], r["frac_a"], r["n"]) for r in rel or [] if r.get("n")]
    if not pts:
        return None
    fig, ax = _fig(5, 4.5)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    xs, ys, ns = zip(*pts, strict=True)
    ax.scatter(xs, ys, s=[20 + 200 * n / max(ns) for n in ns], color="C0", label="bins (size = n)")
    ax.plot(xs, ys, color="C0", lw=1)
    ax.set_xlabel("predicted P(A better)")
    ax.set_ylabel("observed share of A wins")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return _png(fig)


def plot_by_item(by_item: dict, top: int = 15) -> str | None:
    rows = sorted(by_item.items(), key=lambda kv: -kv[1]["n"])[:top]
    if not rows:
        return None
    fig, ax = _fig(7, 0.35 * len(rows) + 1)
    names = [f"{k} (n={v['n']})" for k, v in rows]
    acc = [v["accuracy"] for _, v in rows]
    cis = [
        v.get("accuracy_ci") or [a, a] for a, (_, v) in zip(acc, rows, strict=True)
    ]  # null: none
    err = [[a - ci[0] for a, ci in zip(acc, cis, strict=True)],
           [ci[1] - a for a, ci in zip(acc, cis, strict=True)]]  # fmt: skip
    ax.barh(names, acc, xerr=err, color="C0", capsize=3)
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy (95 % CI)")
    return _png(fig)


def comparison_rows(m: dict) -> list[tuple[str, float | None, list | None]]:
    """(name, accuracy, ci) of the model, each baseline, the oracle and the ceiling."""
    rows = [("fine-tuned", m.get("accuracy"), m.get("accuracy_ci"))]
    for name, b in (m.get("baselines") or {}).items():
        if b.get("n") is not None and b["n"] != m.get("n_pairs"):
            name = f"{name} (n={b['n']})"  # scored on a subset (evaluate.zero_shot_max_pairs)
        rows.append((name, b.get("accuracy"), b.get("accuracy_ci")))
    if m.get("oracle_accuracy") is not None:
        rows.append(("oracle", m["oracle_accuracy"], None))
    if m.get("ceiling") is not None:
        rows.append(("Bayes ceiling", m["ceiling"], None))
    return rows


def plot_vs_baselines(m: dict) -> str | None:
    rows = [r for r in comparison_rows(m) if r[1] is not None]
    if not rows:
        return None
    fig, ax = _fig()
    names = [r[0] for r in rows]
    acc = [r[1] for r in rows]
    lo = [a - (r[2][0] if r[2] else a) for a, r in zip(acc, rows, strict=True)]
    hi = [(r[2][1] if r[2] else a) - a for a, r in zip(acc, rows, strict=True)]
    colors = ["C3" if n == "fine-tuned" else "C2" if n in ("oracle", "Bayes ceiling") else "C7"
              for n in names]  # fmt: skip
    ax.bar(names, acc, yerr=[lo, hi], color=colors, capsize=4)
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("pairwise accuracy")
    ax.tick_params(axis="x", rotation=20)
    return _png(fig)


def plot_bt_scatter(ranking: dict) -> str | None:
    pts = [
        (p["score"], p["ret"]) for p in (ranking or {}).get("points", []) if p["ret"] is not None
    ]
    if len(pts) < 2:
        return None
    fig, ax = _fig(6, 4)
    xs, ys = zip(*pts, strict=True)
    ax.scatter(xs, ys, s=12, alpha=0.7)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("Bradley-Terry score (model)")
    ax.set_ylabel("realized abnormal return")
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
    if not table:
        return None
    items = sorted(table, key=lambda k: -max(n for n, _ in table[k].values()))[:top]
    fig, ax = _fig()
    for item in items:
        eps = sorted(table[item])
        ax.plot(eps, [table[item][e][1] for e in eps], "o-", label=f"{item}")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.legend(ncol=2, fontsize=8)
    return _png(fig)


def epoch_finding(table: dict) -> str:
    """A sentence on what the per-epoch item accuracies show about the seed's epoch story."""
    epochs = sorted({e for eps in table.values() for e in eps})
    if len(epochs) < 2:
        return (
            "Only one validation pass was logged, so learning by epoch cannot be assessed; "
            "the seed's claim (epoch 1 beat/miss, epoch 2 magnitudes, epoch 3 item-specific "
            "patterns) is untested here."
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
        "not show the seed's story (epoch 1 beat/miss, epoch 2 magnitudes, epoch 3 item-specific "
        "patterns such as convertible debt and CEO departures)."
    )
    joined = "; ".join(parts)
    return f"{first_txt} {joined[:1].upper() + joined[1:]}. {verdict}"


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


def _img(b64: str | None, alt: str, missing: str) -> str:
    if b64 is None:
        return f'<p class="note">{html.escape(missing)}</p>'
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def metrics_table(m: dict) -> str:
    head = "<tr><th>model</th><th>accuracy</th><th>95 % CI</th><th>log-loss</th><th>Brier</th>"
    head += "<th>ECE</th><th>n</th></tr>"
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
            body.append(f"<tr><td>{html.escape(name)}</td><td colspan=6>skipped: "
                        f"{html.escape(b['skipped'])}</td></tr>")  # fmt: skip
            continue
        cells = [b.get(k) for k in ("accuracy", "accuracy_ci", "log_loss", "brier", "ece")]
        n = b.get("n", m.get("n_pairs"))
        body.append(
            f"<tr><td>{html.escape(name)}</td>"
            + "".join(f"<td>{_fmt(c)}</td>" for c in cells)
            + f"<td>{_fmt(n)}</td></tr>"
        )
    rk = m.get("ranking") or {}
    extra = [
        ("split", m.get("split")),
        ("pairs", m.get("n_pairs")),
        ("swap consistency", m.get("swap_consistency")),
        ("Bayes ceiling (simulated truth)", m.get("ceiling")),
        ("oracle accuracy (simulated truth)", m.get("oracle_accuracy")),
        ("Spearman IC (BT score vs abnormal return)", rk.get("spearman_ic")),
        ("top-minus-bottom quintile spread", rk.get("long_short_spread")),
        (
            "filings ranked / comparisons",
            f"{_fmt(rk.get('n_filings'))} / {_fmt(rk.get('comparisons'))}" if rk else None,
        ),
    ]
    side = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v, 4)}</td></tr>" for k, v in extra)
    by_conf = m.get("by_confidence") or {}
    conf = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['n']}</td><td>{_fmt(v['accuracy'])}</td></tr>"
        for k, v in by_conf.items()
    )
    return (
        f"<table>{head}{''.join(body)}</table><table>{side}</table>"
        + (
            f"<h3>By confidence</h3><table><tr><th>level</th><th>n</th><th>accuracy</th></tr>"
            f"{conf}</table>"
            if conf
            else ""
        )  # fmt: skip
    )


def calibration_note(m: dict) -> str:
    """What the calibration did, with the raw figures beside the calibrated ones."""
    if not m:
        return ""
    if m.get("calibration") is None:  # metrics.json of an older evaluate
        return "<p class='note'>metrics.json records no calibration.</p>"
    cal = m["calibration"]
    raw = m.get("uncalibrated") or {}
    if not cal.get("n_pairs"):
        return "<p class='note'>No calibration was fitted (too few validation pairs).</p>"
    return (
        f"<p>Calibration fitted on {cal['n_pairs']} validation pairs (both orders): position "
        f"bias {_fmt(cal.get('bias'), 3)} (decision logit), temperature "
        f"{_fmt(cal.get('temperature'), 3)}; validation log-loss per order "
        f"{_fmt(cal.get('log_loss_before'))} &rarr; {_fmt(cal.get('log_loss_after'))}. "
        f"Uncalibrated on this split: ECE {_fmt(raw.get('ece'))}, swap consistency "
        f"{_fmt(raw.get('swap_consistency'))}.</p>"
    )


def build_report(run_dir: Path) -> str:
    lines = read_jsonl(run_dir / "metrics.jsonl")
    train = [r for r in lines if r.get("type") == "train" and "loss" in r and "step" in r]
    evals = [r for r in lines if r.get("type") == "eval" and "epoch" in r]
    check_log_lines(train, evals, run_dir / "metrics.jsonl")
    m = read_json(run_dir / "metrics.json", missing_ok=True)
    if m is not None:
        check_metrics(m, run_dir / "metrics.json")
    table = item_accuracy_by_epoch(evals)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>filingcontrast report: "
        f"{html.escape(run_dir.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>filingcontrast run <code>{html.escape(run_dir.name)}</code></h1>",
    ]
    if m:
        parts.append(
            f"<p>Base model <code>{_fmt(m.get('base'))}</code>, evaluated on the "
            f"<b>{_fmt(m.get('split'))}</b> split ({_fmt(m.get('n_pairs'))} pairs).</p>"
        )
        in_sample = m.get("in_sample")
        if isinstance(in_sample, dict):
            parts.append(
                f"<p><b>In-sample:</b> {_fmt(in_sample.get('pairs'))} of these pairs share a "
                "filing with the validation pairs that chose the adapter's epoch and fitted its "
                "calibration; these figures flatter the model.</p>"
            )
    parts.append("<h2 id='metrics'>Metrics</h2>")
    parts.append(metrics_table(m) if m else "<p class='note'>No metrics.json: run "
                 "<code>filingcontrast evaluate</code> first.</p>")  # fmt: skip
    parts.append("<h2 id='loss'>Training and validation loss</h2>")
    parts.append(
        _img(plot_loss(train, evals), "loss curves", "No training lines in metrics.jsonl.")
    )
    if train and not evals:
        parts.append("<p class='note'>No validation (eval) lines were logged.</p>")
    parts.append("<h2 id='baselines'>Model vs baselines vs ceiling</h2>")
    parts.append(_img(plot_vs_baselines(m or {}), "accuracy comparison", "No evaluation yet."))
    parts.append("<h2 id='reliability'>Reliability diagram</h2>")
    rel = (m or {}).get("reliability")
    parts.append(_img(plot_reliability(rel), "reliability diagram", "No reliability data."))
    if m and m.get("ece") is not None:
        parts.append(f"<p>Expected calibration error: {_fmt(m['ece'])}.</p>")
    parts.append(calibration_note(m or {}))
    parts.append("<h2 id='by-item'>Accuracy by item</h2>")
    parts.append(_img(plot_by_item((m or {}).get("by_item") or {}), "accuracy by item",
                      "No per-item results."))  # fmt: skip
    parts.append("<p class='note'>A pair counts for every item code of either filing.</p>")
    parts.append("<h2 id='ranking'>Bradley-Terry score vs realized return</h2>")
    parts.append(_img(plot_bt_scatter((m or {}).get("ranking")), "BT scatter", "No ranking data."))
    parts.append("<h2 id='epochs'>Accuracy by item type at each epoch</h2>")
    if evals:
        parts.append(_img(plot_items_by_epoch(table), "items by epoch", "No per-item eval data."))
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
