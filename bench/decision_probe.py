"""Where is the signal? Linear probes on the frozen base model's hidden states for demo pairs.

    python bench/decision_probe.py --pairs runs/demo/pairs [--train 300] [--test 150]

For each pair's decision prompt (chat template, ending in the answer's "Filing"), one forward
pass of the base model (no adapter) collects, at several layers:

- `decision`: the hidden state at the last position, the one whose next-token logits give the
  verdict; a logistic regression on it predicts the winner;
- `pooled`: the mean hidden state over Filing A's digest tokens minus that over Filing B's; a
  logistic regression on the difference is a per-filing linear score compared across the pair.

Probes are fitted on `--train` pairs of the train split and scored on `--test` pairs of the test
split (pairs shown in their stored order, whose A/B sides are random). If `pooled` is far above
`decision`, the base model already encodes each filing's quality but not at the position that
has to answer; the fine-tune then has to learn the routing as well as the judgement.
With `--adapter DIR` the same probes run on a fine-tuned model's hidden states (its template
and system prompt), beside the adapter's own readout: the sign of logit(A) - logit(B) at the
decision position (`own`), and that logit difference with a bias and scale fitted on the train
pairs (`own+bias`, a one-feature probe). A `decision` probe far above `own+bias` means the
fine-tune built features its LM head does not read.
Prints a table and one final JSON line {"bench": "decision_probe", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from benchargs import int_list, positive_int, run
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from filingcontrast.config import TrainConfig
from filingcontrast.dataset import PromptFormatter
from filingcontrast.model import EMBEDDED_SPEC, load_base
from filingcontrast.pairs import load_pairs
from filingcontrast.predict import load_scorer
from filingcontrast.runtime import set_threads


def digest_spans(text: str, row: dict) -> list[tuple[int, int]]:
    """Character spans of Filing A's and Filing B's digests inside the rendered prompt."""
    spans = []
    for side in ("a", "b"):
        digest = row["meta"][side]["digest"]
        start = text.find(digest)
        if start < 0:
            sys.exit(f"decision_probe: pair {row['meta'].get('pair_id')}: digest {side} is not "
                     "in the instruction verbatim (trimmed pairs?)")  # fmt: skip
        spans.append((start, start + len(digest)))
    return spans


def features(model, formatter, rows, layers):
    """{layer: (decision [N, H], pooled difference [N, H])}, labels [N] (1 = A won) and the
    model's own logit(A) - logit(B) at the decision position [N]."""
    tok = formatter.tokenizer
    dec = {layer: [] for layer in layers}
    pool = {layer: [] for layer in layers}
    labels, own = [], []
    id_a, id_b = formatter.decision_token_ids
    for row in rows:
        text = formatter.prompt_text(row["instruction"], row.get("input", ""))
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = formatter.decision_prompt_ids(row["instruction"], row.get("input", ""))
        assert ids == list(enc.input_ids) + formatter.lead_ids  # offsets index the scored ids
        offsets = np.array(enc.offset_mapping)  # [T, 2]
        lead = [False] * len(formatter.lead_ids)  # the answer's "Filing": in neither digest
        ma, mb = (
            torch.from_numpy(np.append((offsets[:, 0] >= s) & (offsets[:, 1] <= e), lead))
            for s, e in digest_spans(text, row)
        )  # [T] each
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
        for layer in layers:
            h = out.hidden_states[layer][0]  # [T, H]
            dec[layer].append(h[-1].numpy())
            pool[layer].append((h[ma].mean(0) - h[mb].mean(0)).numpy())
        labels.append(1 if row["meta"]["winner"] == "A" else 0)
        own.append(float(out.logits[0, -1, id_a] - out.logits[0, -1, id_b]))
    return (
        {layer: (np.stack(dec[layer]), np.stack(pool[layer])) for layer in layers},
        np.array(labels),
        np.array(own),
    )


def probe_accuracy(x_train, y_train, x_test, y_test) -> float:
    folds = int(min(5, np.bincount(y_train, minlength=2).min()))  # tiny smoke runs: fewer folds
    if folds < 2:
        raise SystemExit("decision_probe: the train pairs need at least two wins for A and for B")
    clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=8, cv=folds, max_iter=2000))
    clf.fit(x_train, y_train)
    return float((clf.predict(x_test) == y_test).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, default=Path("runs/demo/pairs"))
    ap.add_argument("--train", type=positive_int, default=300)
    ap.add_argument("--test", type=positive_int, default=150)
    ap.add_argument("--layers", type=int_list(0), default="4,10,16,22,30",
                    help="hidden-state indices, 0 = embeddings")  # fmt: skip
    ap.add_argument("--base", default=EMBEDDED_SPEC)
    ap.add_argument("--adapter", type=Path, help="probe this fine-tuned adapter's hidden states")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
    # the cheap checks first; a bad file is one line (benchargs.run)
    train_rows = load_pairs(args.pairs, "train")[: args.train]
    test_rows = load_pairs(args.pairs, "test")[: args.test]
    set_threads(0)
    if args.adapter:  # the prompt as this adapter was trained and is scored with
        scorer = load_scorer(args.adapter, base=None if args.base == EMBEDDED_SPEC else args.base)
        model, formatter = scorer.model.eval(), scorer.formatter
    else:
        model, tokenizer = load_base(args.base, device="cpu", dtype="float32")
        tc = TrainConfig()  # the prompt exactly as training and scoring render it
        formatter = PromptFormatter(tokenizer, tc.template, tc.system_prompt)
    layers, top = args.layers, model.config.num_hidden_layers
    if max(layers) > top:
        sys.exit(f"decision_probe: --layers {max(layers)}: {args.base} has hidden states 0-{top}")
    t0 = time.perf_counter()
    f_train, y_train, own_train = features(model, formatter, train_rows, layers)
    f_test, y_test, own_test = features(model, formatter, test_rows, layers)
    seconds = time.perf_counter() - t0
    result = {"layers": {}, "train_pairs": len(y_train), "test_pairs": len(y_test),
              "test_share_a": float(y_test.mean()), "seconds": round(seconds, 1),
              "adapter": str(args.adapter) if args.adapter else None,
              "own": float(((own_test > 0) == (y_test == 1)).mean()),
              "own_mean_logit_diff": float(own_test.mean()),
              "own_bias": probe_accuracy(own_train[:, None], y_train, own_test[:, None], y_test)}  # fmt: skip
    print(f"own readout (sign of logit A - B): {result['own']:.3f}; with a fitted bias and "
          f"scale: {result['own_bias']:.3f}")  # fmt: skip
    print(f"{'layer':>5} {'decision':>9} {'pooled A-B':>11}   (test accuracy, {len(y_test)} pairs)")
    for layer in layers:
        acc_dec = probe_accuracy(f_train[layer][0], y_train, f_test[layer][0], y_test)
        acc_pool = probe_accuracy(f_train[layer][1], y_train, f_test[layer][1], y_test)
        result["layers"][layer] = {"decision": acc_dec, "pooled": acc_pool}
        print(f"{layer:>5} {acc_dec:>9.3f} {acc_pool:>11.3f}")
    print(json.dumps({"bench": "decision_probe", **result}))


if __name__ == "__main__":
    run(main, "decision_probe")
