"""Verdicts from a trained (or zero-shot) model: compare two filings, rank many.

The verdict never comes from sampled text. For a pair (A, B) the prompt ends with the answer's
first word "Filing", and the model's next-token logits for " A" and " B" give P(first shown is
better) in one forward pass. Each pair is scored in both orders, (A, B) and (B, A), and
P(A better) = (p_ab + 1 - p_ba) / 2, which cancels the model's position bias.

`rank` aggregates such verdicts over a deterministic k-regular comparison schedule with a
Bradley-Terry penalized maximum-likelihood fit on the soft verdicts (choix's objective, vectorized)
and percentile-bootstrap intervals over the comparisons (none for a filing in fewer than
MIN_CI_COMPARISONS comparisons: resampling cannot tell how much its score depends on them).

Heavy libraries (torch, transformers, peft) are imported inside functions so that the pure parts
(`bradley_terry`, `comparison_schedule`) stay cheap to import and test.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filingcontrast.calibration import Calibration
from filingcontrast.dataset import both_orders
from filingcontrast.errors import UserError, first_line
from filingcontrast.metrics import confidence_level
from filingcontrast.train import META_FILE, adapter_meta, load_trained, resolve_adapter_dir

DEFAULT_DIGEST_TOKENS = 900
"""Tokens per filing digest when the run does not say (half of a 2048-token row, minus the
question and the answer)."""
EXPLAIN_MAX_NEW_TOKENS = 80


# ---------------------------------------------------------------------------------------------
# Bradley-Terry over pairwise verdicts (pure).


MIN_CI_COMPARISONS = 4
"""Comparisons an item needs before its bootstrap interval says anything: with k of them, a
resample leaves all out with probability ~e^-k (the item's score then falls back to the
penalty's 0), which must stay under the 2.5 % an interval end reads (e^-4 = 1.8 %)."""


@dataclass
class BTResult:
    """Bradley-Terry log-strengths (mean 0) with 95 % bootstrap intervals (NaN: too few
    comparisons for one)."""

    scores: np.ndarray  # (n_items,)
    ci: np.ndarray  # (n_items, 2)
    comparisons: int


def comparison_schedule(n: int, k: int, seed: int = 0) -> list[tuple[int, int]]:
    """A deterministic design where every item meets about k others (k-regular when possible).

    Items are shuffled once from `seed`, placed on a cycle, and each is paired with its next
    ceil(k/2) neighbours (a circulant graph: connected, degree 2*ceil(k/2) capped at n-1).
    """
    if n < 2:
        return []
    order = np.random.default_rng(seed).permutation(n)
    reach = min((k + 1) // 2, n // 2)
    pairs: set[tuple[int, int]] = set()
    for pos in range(n):
        for step in range(1, reach + 1):
            i, j = int(order[pos]), int(order[(pos + step) % n])
            if i != j:
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def _bt_fit(
    n: int, comparisons: Sequence[tuple[int, int, float]], alpha: float, x0: Any = None
) -> np.ndarray:
    """Penalized maximum likelihood of Bradley-Terry log-strengths with soft outcomes.

    Objective (choix.opt_pairwise's, with each outcome weighted by its probability):
    sum_c [p_c * softplus(-(s_i - s_j)) + (1 - p_c) * softplus(s_i - s_j)] + alpha * |s|^2.
    Vectorized here because choix takes hard (winner, loser) tuples and loops over them in
    Python: expanding soft verdicts into tuples made a 200-resample bootstrap take minutes.
    tests/test_predict.py checks that hard outcomes give choix.opt_pairwise's answer.
    """
    from scipy.optimize import minimize

    if not comparisons:
        return np.zeros(n)
    arr = np.asarray(comparisons, dtype=float)  # (C, 3)
    i, j, p = arr[:, 0].astype(int), arr[:, 1].astype(int), arr[:, 2]

    def fun(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = s[i] - s[j]  # (C,)
        val = (p * np.logaddexp(0, -d) + (1 - p) * np.logaddexp(0, d)).sum() + alpha * s @ s
        g_d = 1 / (1 + np.exp(-d)) - p  # d(loss)/d(d)
        grad = 2 * alpha * s + np.bincount(i, g_d, n) - np.bincount(j, g_d, n)
        return float(val), grad

    x0 = np.zeros(n) if x0 is None else x0  # bootstrap fits start from the full fit
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return res.x - res.x.mean()


def bradley_terry(
    n_items: int,
    comparisons: Sequence[tuple[int, int, float]],
    alpha: float = 0.01,
    n_boot: int = 200,
    seed: int = 0,
) -> BTResult:
    """Fit Bradley-Terry log-strengths from soft comparisons (i, j, P(i beats j)).

    Intervals: 95 % percentile bootstrap over comparisons (resampled with replacement): how much
    a score depends on which comparisons were made. For an item in fewer than
    MIN_CI_COMPARISONS comparisons the interval is NaN: with one comparison every replicate
    repeats or drops it, which gave a zero-width interval (`rank a b`) or one ending at exactly
    0, i.e. false certainty.
    """
    comps = [(int(i), int(j), float(p)) for i, j, p in comparisons]
    scores = _bt_fit(n_items, comps, alpha)
    if n_boot <= 0 or not comps:  # no resampling, no interval (not a zero-width one)
        return BTResult(scores, np.full((n_items, 2), np.nan), len(comps))
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, n_items))
    for b in range(n_boot):
        idx = rng.integers(0, len(comps), size=len(comps))
        boots[b] = _bt_fit(n_items, [comps[t] for t in idx], alpha, scores)
    ci = np.quantile(boots, [0.025, 0.975], axis=0).T  # (n_items, 2)
    ends = np.array([(i, j) for i, j, _ in comps]).ravel()
    ci[np.bincount(ends, minlength=n_items) < MIN_CI_COMPARISONS] = np.nan
    return BTResult(scores, ci, len(comps))


# ---------------------------------------------------------------------------------------------
# Model loading with clear errors.


@dataclass
class Scorer:
    """A loaded model ready for verdicts; `has_adapter` tells whether zero-shot is separable;
    `calibration` is the adapter's (identity for the base model alone)."""

    model: Any
    tokenizer: Any
    formatter: Any
    meta: dict = field(default_factory=dict)
    has_adapter: bool = False
    calibration: Calibration = field(default_factory=Calibration)


ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
"""What `train` saves next to the adapter config: one of each group must be there."""


def check_adapter_files(adapter_dir: Path) -> None:
    """One-line errors for an adapter directory with missing or unreadable files (before the
    base model loads, and so that a missing file is not reported as a base-model mismatch)."""
    from filingcontrast.runtime import read_json

    for group, what in ((ADAPTER_WEIGHTS, "adapter weights"), (TOKENIZER_FILES, "tokenizer")):
        if not any((adapter_dir / name).is_file() for name in group):
            raise UserError(f"{adapter_dir}: {what} missing (no {' / '.join(group)})")
    config = read_json(adapter_dir / "adapter_config.json")  # UserError unless a JSON object
    if not config.get("peft_type"):
        raise UserError(f"{adapter_dir / 'adapter_config.json'}: field peft_type: missing")


def load_scorer(adapter: str | Path | None = None, base: str | None = None) -> Scorer:
    """The fine-tuned model (adapter given) or the base model alone (zero-shot)."""
    if adapter:
        from safetensors import SafetensorError

        adapter_dir = resolve_adapter_dir(adapter)
        meta = adapter_meta(adapter_dir)
        calibration = Calibration.from_dict(meta.get("calibration"), str(adapter_dir / META_FILE))
        check_adapter_files(adapter_dir)
        try:
            model, tokenizer, formatter, meta = load_trained(adapter_dir, base=base)
        except (OSError, SafetensorError) as exc:  # corrupt tokenizer / adapter weight files
            raise UserError(
                f"{adapter_dir}: cannot load adapter: {first_line(exc)[:200]}"
            ) from None
        except (RuntimeError, ValueError, KeyError) as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            # torch's load error opens with a generic line; the size mismatch says why.
            mismatch = next((ln for ln in lines if "mismatch" in ln), None)
            if mismatch is None:  # not a shape problem: say what failed, not "does not fit"
                raise UserError(
                    f"{adapter_dir}: cannot load adapter: {first_line(exc)[:200]}"
                ) from None
            raise UserError(
                f"{adapter_dir}: adapter does not fit base model {meta['base']!r}: {mismatch[:400]}"
            ) from None
        return Scorer(model, tokenizer, formatter, meta, hasattr(model, "peft_config"), calibration)
    from filingcontrast.config import TrainConfig
    from filingcontrast.dataset import PromptFormatter
    from filingcontrast.model import EMBEDDED_SPEC, load_base

    spec = base or EMBEDDED_SPEC
    model, tokenizer = load_base(spec)
    tc = TrainConfig()
    formatter = PromptFormatter(tokenizer, template=tc.template, system_prompt=tc.system_prompt)
    return Scorer(model, tokenizer, formatter, {"base": spec}, has_adapter=False)


def generate_analysis(
    model: Any, formatter: Any, instruction: str, choice: str, confidence: str, max_new_tokens: int
) -> str:
    """The answer as training rendered it (`pairs.render_output`), its decision and `Confidence:`
    fixed to the verdict and the level of its calibrated probability, and the analysis after
    `Analysis:` a greedy continuation (bounded, no sampling). Left to itself the model writes its
    own confidence word, which need not match the probability the verdict reports."""
    import torch

    from filingcontrast.pairs import render_output

    lead = render_output(choice, confidence, "").rstrip()  # "... Confidence: low. Analysis:"
    ids = formatter.prompt_ids(instruction) + formatter.answer_ids(lead)
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)  # (1, T)
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=formatter.tokenizer.pad_token_id,
        )
    new_ids = out[0, len(ids) :].tolist()
    kept = cut_repetition(new_ids)
    text = formatter.tokenizer.decode(kept, skip_special_tokens=True)
    return f"{lead}{text}".strip() + (" …" if len(kept) < len(new_ids) else "")


def cut_repetition(ids: Sequence[int], repeats: int = 3) -> list[int]:
    """`ids` without a loop at its end: when the last `repeats` x p tokens repeat with a period
    p >= 2, keep the looping stretch's first period only. Greedy decoding of a small model can
    loop until the token limit (the base model wrote " 2022-01-14" over and over); a text that
    does not end in a loop (one that ends with the end token, say) is returned unchanged."""
    ids = list(ids)
    n = len(ids)
    # Every period that loops at the end is tried and the one whose loop starts earliest wins:
    # a loop ending in a run of one token also has periods 2, 3 ... over that run alone.
    cut = n
    for p in range(2, n // repeats + 1):
        if all(ids[i] == ids[i - p] for i in range(n - (repeats - 1) * p, n)):
            start = n - repeats * p  # the periodic stretch starts here or earlier
            while start > 0 and ids[start - 1] == ids[start - 1 + p]:
                start -= 1
            cut = min(cut, start + p)
    return ids[:cut]


# ---------------------------------------------------------------------------------------------
# Compare and rank.


def _digest_tokens(scorer: Scorer) -> int:
    return int(scorer.meta.get("digest_tokens") or DEFAULT_DIGEST_TOKENS)


def key_facts_of(doc: Any) -> list[str]:
    """The `Key facts:` of one filing, extracted and anonymized as `pairs` does it."""
    from filingcontrast.pairs import default_signals, filing_signals

    return filing_signals(doc, default_signals, anonymize=True)[0]


def _facts(scorer: Scorer, docs: Sequence[Any]) -> list[list[str]] | None:
    """Key facts per doc when the adapter was trained on digests with them, else None."""
    return [key_facts_of(d) for d in docs] if scorer.meta.get("key_facts") else None


def _load_doc(ref: str, store: str | None) -> Any:
    """A filing from a .htm/.txt path, or from the store by accession id."""
    from filingcontrast import pairs

    path = Path(ref)
    if path.exists():
        if not path.is_file():
            raise UserError(f"{ref}: not a file")
        if path.stat().st_size == 0:
            raise UserError(f"{ref}: empty file")
        return pairs.filing_doc_from_file(path)
    if store:
        from filingcontrast.corpus.store import Store

        if not Path(store).exists():
            raise UserError(f"{store}: store not found")
        with Store(store, read_only=True) as opened:
            return pairs.filing_doc_from_store(opened, ref)
    raise UserError(f"{ref}: no such file (pass --store to look up an accession id)")


def side_digits(x: float, centre: float, digits: int = 4) -> int:
    """`digits`, or more where rounding to `digits` would land on `centre` while x is not
    there: P(A) = 0.49996 shown as 0.5 beside the choice "B" hides why it is B."""
    while round(x, digits) == centre and x != centre and digits < 12:
        digits += 1
    return digits


def round_keeping_side(x: float, centre: float, digits: int = 4) -> float:
    return round(x, side_digits(x, centre, digits))


def _check_distinct(refs: Sequence[str], docs: Sequence[Any]) -> None:
    """The same file (by resolved path), accession or document (by its text: a copy under
    another name) given twice is a mistake: a filing compared with itself is a coin flip, and
    a duplicate in rank gets two scores."""
    seen: dict[str, str] = {}
    texts: dict[str, str] = {}
    for ref, doc in zip(refs, docs, strict=True):
        path = Path(ref)
        key = str(path.resolve()) if path.exists() else ref
        if key in seen:
            raise UserError(f"{ref}: given twice (the same filing as {seen[key]!r})")
        seen[key] = ref
        text = doc.full_text()
        if text.strip() and text in texts:
            raise UserError(f"{ref}: the same document as {texts[text]!r} (a copy?)")
        texts[text] = ref


def compare(
    model: Any,
    formatter: Any,
    doc_a: Any,
    doc_b: Any,
    *,
    digest_tokens: int = DEFAULT_DIGEST_TOKENS,
    key_facts: bool = False,
    explain: bool = False,
    max_new_tokens: int = EXPLAIN_MAX_NEW_TOKENS,
    calibration: Calibration | None = None,
) -> dict:
    """Which of two `FilingDoc`s had the better abnormal return: the DESIGN compare JSON
    (`calibrated` says whether the adapter's validation-fitted calibration was applied)."""
    from filingcontrast import pairs

    t0 = time.perf_counter()
    tok = formatter.tokenizer
    # the signal rules' facts: in the digests when the adapter was trained with them, and
    # returned with --explain (one extraction for both)
    facts = [key_facts_of(doc_a), key_facts_of(doc_b)] if key_facts or explain else None
    digest_facts = facts if key_facts else None
    dig_a, dig_b = pairs.filing_digests([doc_a, doc_b], digest_tokens, tok, facts=digest_facts)
    instr_ab = pairs.render_instruction(dig_a, dig_b)
    instr_ba = pairs.render_instruction(dig_b, dig_a)
    p_a, p_ab, p_ba = both_orders(
        model, formatter, [instr_ab], [instr_ba], batch_size=2, calibration=calibration
    )
    pa = float(p_a[0])
    choice = "A" if pa >= 0.5 else "B"
    result: dict[str, Any] = {
        "choice": choice,
        "p_a": round_keeping_side(pa, 0.5),
        "confidence": confidence_level(pa),
        "p_ab": round(float(p_ab[0]), 4),
        "p_ba": round(float(p_ba[0]), 4),
        "calibrated": bool(calibration is not None and calibration.fitted),
    }
    if explain:
        result["analysis"] = generate_analysis(
            model, formatter, instr_ab, choice, result["confidence"], max_new_tokens
        )
        # What the signal rules read in each filing (training's analyses were written from
        # them): the generated text can misstate numbers; these are the facts to check it by.
        result["facts"] = {"A": facts[0], "B": facts[1]}
    result["ms"] = int(round((time.perf_counter() - t0) * 1000))
    return result


def compare_cli(
    a: str,
    b: str,
    adapter: str | None = None,
    base: str | None = None,
    store: str | None = None,
    explain: bool = False,
) -> dict:
    """`filingcontrast compare A B`: load documents first (cheap errors), then the model."""
    doc_a, doc_b = _load_doc(a, store), _load_doc(b, store)
    _check_distinct([a, b], [doc_a, doc_b])
    scorer = load_scorer(adapter, base)
    result = compare(
        scorer.model,
        scorer.formatter,
        doc_a,
        doc_b,
        digest_tokens=_digest_tokens(scorer),
        key_facts=bool(scorer.meta.get("key_facts")),
        explain=explain,
        calibration=scorer.calibration,
    )
    return _with_warnings(result, {"A": doc_a, "B": doc_b})


def _with_warnings(result: dict, docs: dict[str, Any]) -> dict:
    """Add the parser's doubts about the input files, by side or file, when there are any: a
    filing without item headings (an image-only or truncated file) may be scored on its cover."""
    warnings = {key: "; ".join(doc.warnings) for key, doc in docs.items() if doc.warnings}
    if warnings:
        result["warnings"] = warnings
    return result


def rank_digests(
    model: Any,
    formatter: Any,
    digests: Sequence[str],
    k: int = 4,
    seed: int = 0,
    batch_size: int = 8,
    extra: Sequence[tuple[int, int, float]] = (),
    n_boot: int = 200,
    calibration: Calibration | None = None,
    schedule: Sequence[tuple[int, int]] | None = None,
    progress: str | None = None,
) -> tuple[BTResult, list[tuple[int, int, float]]]:
    """Bradley-Terry fit of digests from model verdicts on a k-regular schedule (or the given
    `schedule`), both orders, plus any already-scored `extra` comparisons (i, j, P(i beats j))."""
    from filingcontrast.pairs import render_instruction

    sched = comparison_schedule(len(digests), k, seed) if schedule is None else list(schedule)
    comps = list(extra)
    if sched:
        ab = [render_instruction(digests[i], digests[j]) for i, j in sched]
        ba = [render_instruction(digests[j], digests[i]) for i, j in sched]
        p_a, _, _ = both_orders(model, formatter, ab, ba, batch_size, calibration, progress)
        comps += [(i, j, float(p)) for (i, j), p in zip(sched, p_a, strict=True)]
    return bradley_terry(len(digests), comps, n_boot=n_boot, seed=seed), comps


def rank_cli(
    files: Sequence[str],
    adapter: str | None = None,
    base: str | None = None,
    k: int = 4,
    store: str | None = None,
) -> dict:
    """`filingcontrast rank FILES...`: {"ranking": [{rank, id, score, ci}], "comparisons": n}."""
    for f in files:  # `rank DIR` is one argument: say what it is before counting
        if Path(f).is_dir():
            raise UserError(f"{f}: a directory; pass its filings (e.g. {f.rstrip('/')}/*.htm)")
    if len(files) < 2:
        raise UserError("rank: need at least two filings")
    if k < 1:
        raise UserError(f"-k {k}: must be >= 1")
    docs = [_load_doc(f, store) for f in files]
    _check_distinct(files, docs)
    scorer = load_scorer(adapter, base)
    from filingcontrast.pairs import filing_digests

    digests = filing_digests(
        docs, _digest_tokens(scorer), scorer.formatter.tokenizer, facts=_facts(scorer, docs)
    )
    bt, comps = rank_digests(
        scorer.model,
        scorer.formatter,
        digests,
        k=k,
        calibration=scorer.calibration,
        progress="rank (both orders)",
    )
    order = np.argsort(-bt.scores, kind="stable")
    ranking = [
        {
            "rank": r + 1,
            "id": str(files[i]),
            "score": round_keeping_side(float(bt.scores[i]), 0.0),
            "ci": None if np.isnan(bt.ci[i]).any() else [round(float(x), 4) for x in bt.ci[i]],
        }
        for r, i in enumerate(order)
    ]
    result: dict[str, Any] = {"ranking": ranking, "comparisons": len(comps)}
    without = sum(row["ci"] is None for row in ranking)
    if without:  # say what it takes, instead of only "no interval" per row
        result["note"] = (
            f"{without} of {len(files)} filings have no interval: one needs >= "
            f"{MIN_CI_COMPARISONS} comparisons of the filing, e.g. at least "
            f"{MIN_CI_COMPARISONS + 1} filings with -k {MIN_CI_COMPARISONS}"
        )
    return _with_warnings(result, {str(f): doc for f, doc in zip(files, docs, strict=True)})
