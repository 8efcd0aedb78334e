"""Contrastive pairs with leak-free time splits (`filingcontrast pairs --store S --out DIR`).

Steps (docs/pairs.md has the long form and the reasons):

1. **Events**: the `events` rows of `pairs.window` / `pairs.method` joined with filings, companies
   and (simulated stores) truth. Rows with a `skip_reason` or no abnormal return are excluded and
   counted by reason in the summary.
2. **Splits by time with an embargo**: filings sorted by day 0; the last `test_frac` of them form
   test, the `valid_frac` before that validation, the rest train. Filings whose day 0 falls less
   than `embargo_days + window end` sessions before the next split's first day 0 are dropped, so
   no return window of an earlier split reaches into a later one. Optional company hold-out keeps
   a share of companies out of train entirely.
3. **Pairing** inside each split only (so no filing or date is shared across splits): day 0s at
   most `max_days_apart` sessions apart, different companies, optionally a shared item / same
   sector, |abnormal-return gap| >= `min_gap`; candidate pairs are visited in a seeded random
   order and kept while both filings have fewer than `max_pairs_per_filing` pairs.
4. **Rows**: the winner's position is balanced to exactly half A per split (odd counts: B has one
   more); the prompt is the seed's question plus both filings' digests (`digest.py`) within the
   token budget; the answer states the winner, a confidence from the gap in noise units, and an
   analysis built only from the filings' extracted signals (never from the outcome).

Everything is deterministic from the stage seed. Output is written to a temp directory that is
renamed into place, so a killed run never leaves a complete-looking pairs directory.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from filingcontrast.config import PairsConfig, RunConfig, parse_window
from filingcontrast.digest import (  # noqa: F401  (re-exported: the contract names pairs.*)
    EXHIBIT_ITEMS,
    FilingDoc,
    anonymize_text,
    count_tokens,
    digests_with_counts,
    filing_digest,
    filing_digests,
    filing_doc_from_file,
    filing_doc_from_store,
    filing_docs_from_store,
    render_instruction,
    render_question,
    swapped_instruction,
)
from filingcontrast.errors import ConfigError, UserError
from filingcontrast.runtime import check_field_types, iter_jsonl, read_json

SPLITS = ("train", "valid", "test")
TEMPLATE_OVERHEAD = 40  # chat template + system prompt tokens around instruction and answer
BUDGET_SLACK = 4  # joins between question and digests may tokenize a little differently
ANALYSIS_MAX_TOKENS = 60
# Confidence from z = gap / (sqrt(2) * sigma): P(true sign = observed sign) ~ Phi(z) >= 0.84 / 0.69.
CONFIDENCE_HIGH = 1.0
CONFIDENCE_MEDIUM = 0.5
MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation
DECISION = "Filing {w} resulted in better performance."
AGAINST = "the market reaction went against these signals."
ROW_FIELDS = ("instruction", "input", "output", "meta")
# summary.json fields later stages read (a hand edit to the wrong type is an error)
SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "tokenizer": (str,),
    "digest_tokens": (int, type(None)),
    "key_facts": (bool,),
}
META_FIELDS = ("pair_id", "split", "winner", "gap", "window", "confidence", "a", "b")
SIDE_FIELDS = ("accession", "day0", "items", "abnormal_ret", "digest")

SignalFn = Callable[[str], tuple[list[str], float]]


@dataclass
class Event:
    """One filing's event row for the chosen window and method, with what pairing needs."""

    accession: str
    day0: dt.date
    idx: int  # position of day0 in the NYSE session calendar (trading-day arithmetic)
    ar: float
    ticker: str | None
    cik: str | None
    sector: str | None
    items: list[str]
    truth: dict[str, float] | None

    @property
    def company(self) -> str:
        """Who filed it, for same-company rules and holdouts (a filing with neither ticker nor
        CIK is its own company, never everyone else's)."""
        return self.ticker or self.cik or self.accession


@dataclass
class Pair:
    x: Event
    y: Event

    @property
    def gap(self) -> float:
        return abs(self.x.ar - self.y.ar)

    @property
    def winner(self) -> Event:
        return self.x if self.x.ar > self.y.ar else self.y

    @property
    def loser(self) -> Event:
        return self.y if self.x.ar > self.y.ar else self.x


# ---------------------------------------------------------------------------------------------
# Loading events.


def load_events(store: Any, pc: PairsConfig) -> tuple[list[Event], Counter[str], int]:
    """Eligible events, dropped counts by reason, and the total number of event rows."""
    if store.count("events") == 0:
        raise UserError(f"{store.path}: the store has no events; run `filingcontrast events` first")
    rows = store.query(
        "SELECT e.accession, e.day0, e.abnormal_ret, e.skip_reason, f.ticker, f.cik, f.items, "
        "c.sector, t.expected_abnormal_ret, t.noise_scale, t.noise_df "
        "FROM events e JOIN filings f ON f.accession = e.accession "
        "LEFT JOIN companies c ON c.cik = f.cik "
        "LEFT JOIN truth t ON t.accession = e.accession "
        "WHERE e.window = ? AND e.method = ? ORDER BY e.day0, e.accession",
        [pc.window, pc.method],
    )
    if not rows:
        have = store.query('SELECT DISTINCT "window", method FROM events ORDER BY 1, 2')
        combos = ", ".join(f"{r['window']}/{r['method']}" for r in have) or "none"
        fix = (
            # quoted: TOML reads a bare 1_3 as the number 13
            f"compute that window with `filingcontrast events --store {store.path} "
            f"'pairs.window=\"{pc.window}\"'`"
            if all(r["window"] != pc.window for r in have)
            else "set pairs.window / pairs.method or rerun `filingcontrast events`"
        )
        raise UserError(
            f"{store.path}: no events for window {pc.window} method {pc.method} "
            f"(the store has: {combos}); {fix}"
        )
    dropped: Counter[str] = Counter()
    kept = []
    for r in rows:
        ar = r["abnormal_ret"]
        if r["skip_reason"]:
            dropped[f"skip:{r['skip_reason']}"] += 1
        elif r["day0"] is None:
            dropped["no_day0"] += 1
        elif ar is None or not math.isfinite(ar):
            dropped["no_abnormal_ret"] += 1
        else:
            kept.append(r)
    if not kept:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(dropped.items()))
        raise UserError(
            f"{store.path}: no filing has an abnormal return for window {pc.window} "
            f"({len(rows)} skipped: {reasons}); does the store have prices for these tickers?"
        )
    index = _session_index(min(r["day0"] for r in kept), max(r["day0"] for r in kept))
    # Truth is the simulator's for window 0_1; other windows have no known noise scale.
    use_truth = pc.window == "0_1"
    events = [
        Event(
            accession=r["accession"],
            day0=r["day0"],
            idx=index(r["day0"]),
            ar=float(r["abnormal_ret"]),
            ticker=r["ticker"],
            cik=r["cik"],
            sector=r["sector"],
            items=list(r["items"] or []),
            truth=(
                {
                    "expected": float(r["expected_abnormal_ret"]),
                    "scale": float(r["noise_scale"]),
                    "df": float(r["noise_df"]) if r["noise_df"] is not None else math.inf,
                }
                if use_truth and r["expected_abnormal_ret"] is not None and r["noise_scale"]
                else None
            ),
        )
        for r in kept
    ]
    return events, dropped, len(rows)


def _session_index(first: dt.date, last: dt.date) -> Callable[[dt.date], int]:
    """Day -> trading-session number (a non-session day gets the next session's number)."""
    from filingcontrast.corpus.calendar import sessions

    days = sessions(first - dt.timedelta(days=10), last + dt.timedelta(days=10))
    return lambda d: bisect.bisect_left(days, d)


# ---------------------------------------------------------------------------------------------
# Splits.


@dataclass
class SplitPlan:
    """Which events go where, and why the others were dropped."""

    events: dict[str, list[Event]]
    dropped: Counter[str]
    holdout: list[str]
    boundaries: dict[str, Any]


def plan_splits(events: list[Event], pc: PairsConfig, seed: int) -> SplitPlan:
    """Time splits with an embargo gap of `embargo_days + window end` sessions between them."""
    ev = sorted(events, key=lambda e: (e.idx, e.accession))
    n = len(ev)
    v_pos = min(n - 1, round(n * (1 - pc.valid_frac - pc.test_frac)))
    t_pos = min(n - 1, round(n * (1 - pc.test_frac)))
    v_start, t_start = ev[v_pos].idx, ev[t_pos].idx
    gap = pc.embargo_days + parse_window(pc.window)[1]
    companies = sorted({e.company for e in ev})
    rng = np.random.default_rng([seed, 1])
    n_hold = round(len(companies) * pc.holdout_companies)
    holdout = sorted(rng.choice(companies, size=n_hold, replace=False).tolist()) if n_hold else []
    held = set(holdout)
    out: dict[str, list[Event]] = {s: [] for s in SPLITS}
    dropped: Counter[str] = Counter()
    for e in ev:
        if e.idx >= t_start:
            split = "test"
        elif v_start <= e.idx < t_start - gap:
            split = "valid"
        elif e.idx < v_start - gap:
            split = "train"
        else:
            dropped["embargo"] += 1
            continue
        if split == "train" and e.company in held:
            dropped["holdout_company"] += 1
            continue
        out[split].append(e)
    bounds = {"embargo_sessions": gap}
    for s in SPLITS:
        if out[s]:
            bounds[s] = [out[s][0].day0.isoformat(), out[s][-1].day0.isoformat()]
    return SplitPlan(out, dropped, holdout, bounds)


# ---------------------------------------------------------------------------------------------
# Pairing.


def _shared_item(a: Event, b: Event) -> bool:
    """A shared item other than 9.01 (nearly every 8-K lists its exhibits under 9.01; old 7)."""
    ia = {i for i in a.items if i not in EXHIBIT_ITEMS} or set(a.items)
    ib = {i for i in b.items if i not in EXHIBIT_ITEMS} or set(b.items)
    return bool(ia & ib)


def _no_pairs_message(cfg: RunConfig, plan: SplitPlan, split: str, dropped: Counter[str]) -> str:
    """Why a split has no pairs: its filings, the candidate pairs each rule dropped, and what
    to relax (the rules that dropped some, e.g. same_sector when no filing has a sector)."""
    pc, events = cfg.pairs, plan.events[split]
    everywhere = {e.company for evs in plan.events.values() for e in evs}
    if len(everywhere) < 2:
        return (
            f"{cfg.store}: no pairs: every filing with returns in the store is one company's "
            "(a pair compares two companies' filings); add filings of another company"
        )
    companies = len({e.company for e in events})
    if companies < 2:  # nothing to relax in the pairing rules: a pair needs two companies
        embargoed = plan.dropped["embargo"]
        why = (
            f"the embargo (pairs.embargo_days={pc.embargo_days}) dropped {embargoed} filings "
            "between the splits; lower it or "
            if embargoed and not events
            else ""
        )
        fracs = f"pairs.valid_frac={pc.valid_frac:g}, pairs.test_frac={pc.test_frac:g}"
        return (
            f"{cfg.store}: split {split} has no pairs: {len(events)} filings of {companies} "
            f"companies in it, and a pair needs two companies; {why}give the split more filings "
            f"({fracs}) or the store more companies"
        )
    counts = ", ".join(f"{k} {v}" for k, v in dropped.most_common()) or "none within max_days_apart"
    knobs = ["pairs.min_gap"] if dropped["near_tie"] else []
    knobs.append("pairs.max_days_apart")
    if dropped["different_item"]:
        knobs.append("pairs.same_item")
    if dropped["different_sector"]:
        no_sector = sum(e.sector is None for e in events)
        knobs.append(f"pairs.same_sector ({no_sector} of {len(events)} filings have no sector)")
    relax = " / ".join(knobs)
    return (
        f"{cfg.store}: split {split} has no pairs ({len(events)} filings in it; candidate pairs "
        f"dropped: {counts}); relax {relax} or change the split fractions"
    )


def pair_split(
    events: list[Event], pc: PairsConfig, rng: np.random.Generator
) -> tuple[list[Pair], Counter[str]]:
    """Candidate pairs by the rules, then a seeded greedy pass capped per filing."""
    ev = sorted(events, key=lambda e: (e.idx, e.accession))
    dropped: Counter[str] = Counter()
    candidates: list[Pair] = []
    for i, a in enumerate(ev):
        for b in ev[i + 1 :]:
            if b.idx - a.idx > pc.max_days_apart:
                break
            if a.company == b.company:
                dropped["same_company"] += 1
            elif pc.same_item and not _shared_item(a, b):
                dropped["different_item"] += 1
            elif pc.same_sector and (a.sector is None or a.sector != b.sector):
                dropped["different_sector"] += 1
            elif abs(a.ar - b.ar) < pc.min_gap or a.ar == b.ar:
                dropped["near_tie"] += 1
            else:
                candidates.append(Pair(a, b))
    used: Counter[str] = Counter()
    chosen: list[Pair] = []
    for k in rng.permutation(len(candidates)):
        p = candidates[k]
        k_max = pc.max_pairs_per_filing
        if used[p.x.accession] < k_max and used[p.y.accession] < k_max:
            chosen.append(p)
            used[p.x.accession] += 1
            used[p.y.accession] += 1
        else:
            dropped["filing_cap"] += 1
    if pc.max_pairs and len(chosen) > pc.max_pairs:
        dropped["max_pairs"] += len(chosen) - pc.max_pairs
        chosen = chosen[: pc.max_pairs]  # already in random order
    chosen.sort(key=lambda p: (min(p.x.idx, p.y.idx), p.x.accession, p.y.accession))
    return chosen, dropped


def balance_positions(n: int, rng: np.random.Generator) -> list[bool]:
    """Exactly n // 2 pairs get the winner in position A (B has one more when n is odd)."""
    a_first = np.zeros(n, dtype=bool)
    a_first[rng.permutation(n)[: n // 2]] = True
    return a_first.tolist()


# ---------------------------------------------------------------------------------------------
# Answers.


def confidence_label(gap: float, sigma: float) -> str:
    """high / medium / low from z = gap / (sqrt(2) * sigma) (thresholds in docs/pairs.md)."""
    if not sigma or sigma <= 0 or not math.isfinite(sigma):
        return "low"
    z = gap / (math.sqrt(2.0) * sigma)
    return "high" if z >= CONFIDENCE_HIGH else "medium" if z >= CONFIDENCE_MEDIUM else "low"


def mad_sigma(returns: Sequence[float]) -> float:
    """Robust scale of abnormal returns: 1.4826 * median absolute deviation."""
    if not returns:
        return 0.0
    med = statistics.median(returns)
    return MAD_TO_SIGMA * statistics.median(abs(r - med) for r in returns)


def _count_tokens(text: str, tokenizer: Any) -> int:
    if tokenizer is None:
        return max(1, len(text) // 4)  # rough chars-per-token when no tokenizer is given
    return count_tokens(tokenizer, [text])[0]


def render_analysis(
    winner: str,
    facts_a: Sequence[str],
    facts_b: Sequence[str],
    score_a: float,
    score_b: float,
    tokenizer: Any = None,
    max_tokens: int = ANALYSIS_MAX_TOKENS,
) -> str:
    """Facts of both filings, then a verdict on the signals that never contradicts `winner`.

    Built only from the filings' extracted facts and signal scores, never from returns. When the
    loser's signals looked better, it says the market reaction went against them.
    """
    loser = "B" if winner == "A" else "A"
    s_win, s_lose = (score_a, score_b) if winner == "A" else (score_b, score_a)
    if s_win > s_lose:
        verdict = f"The signals favour Filing {winner}."
    elif s_win < s_lose:
        verdict = f"Filing {loser}'s signals looked stronger; {AGAINST}"
    else:
        verdict = "Neither filing's signals clearly dominate."
    fa, fb = list(facts_a), list(facts_b)
    while True:
        text = f"{_facts_sentence('A', fa)} {_facts_sentence('B', fb)} {verdict}"
        if _count_tokens(text, tokenizer) <= max_tokens or not (fa or fb):
            return text
        (fa if len(fa) >= len(fb) else fb).pop()  # drop the last fact of the longer list


def _facts_sentence(side: str, facts: Sequence[str]) -> str:
    return f"Filing {side}: {'; '.join(facts)}." if facts else f"Filing {side}: no clear signals."


def render_output(winner: str, confidence: str, analysis: str) -> str:
    """The answer: decision sentence first (the decision token is the word after "Filing")."""
    if winner not in ("A", "B"):
        raise ValueError(f"winner must be 'A' or 'B', got {winner!r}")
    return f"{DECISION.format(w=winner)} Confidence: {confidence}. Analysis: {analysis}"


def default_signals(text: str) -> tuple[list[str], float]:
    """Facts and signal score of a filing's text (signals.py)."""
    from filingcontrast.signals import extract_signals, signal_score

    s = extract_signals(text)
    return list(s.facts()), float(signal_score(s))


# ---------------------------------------------------------------------------------------------
# Building.


def _pair_id(a: str, b: str, pc: PairsConfig) -> str:
    key = "|".join(sorted([a, b]) + [pc.window, pc.method])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _side(e: Event, digest: str) -> dict[str, Any]:
    return {
        "accession": e.accession,
        "day0": e.day0.isoformat(),
        "items": e.items,
        "abnormal_ret": round(e.ar, 6),
        "ticker": e.ticker,
        "sector": e.sector,
        "digest": digest,
        "truth": e.truth,
    }


@dataclass
class _Draft:
    """A pair in its final A/B order, before digests are rendered."""

    split: str
    pair: Pair
    a: Event
    b: Event
    winner: str
    confidence: str
    output: str
    swapped: bool = False  # the second order of a swap-augmented training pair


def build_pairs(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    tokenizer: Any = None,
    signal_fn: SignalFn | None = None,
) -> dict[str, Any]:
    """Build `out_dir/{train,valid,test}.jsonl` and `summary.json`; return the summary."""
    from filingcontrast.corpus.store import Store

    started = time.perf_counter()
    pc = cfg.pairs
    seed = cfg.stage_seed(pc.seed)
    out_dir = Path(out_dir)
    signal_fn = signal_fn or default_signals
    if tokenizer is None:
        from filingcontrast.model import load_tokenizer

        tokenizer = load_tokenizer(cfg.base)
    with Store(cfg.store, read_only=True) as store:
        events, ev_dropped, n_rows = load_events(store, pc)
        plan = plan_splits(events, pc, seed)
        pairs: dict[str, list[Pair]] = {}
        pair_dropped: Counter[str] = Counter()
        for k, split in enumerate(SPLITS):
            pairs[split], dropped = pair_split(
                plan.events[split], pc, np.random.default_rng([seed, 2, k])
            )
            pair_dropped.update(dropped)
            if not pairs[split]:
                raise UserError(_no_pairs_message(cfg, plan, split, dropped))
        accessions = sorted({e.accession for ps in pairs.values() for p in ps for e in (p.x, p.y)})
        docs = filing_docs_from_store(store, accessions)
    missing = [a for a in accessions if not docs.get(a) or not docs[a].main_text]
    if missing:
        raise UserError(f"{cfg.store}: filing {missing[0]} has no main document text")
    signals = {a: filing_signals(docs[a], signal_fn, pc.anonymize) for a in accessions}
    sigma = _sigma(plan.events["train"])
    drafts = _drafts(pairs, pc, seed, signals, sigma, tokenizer)
    q_counts, a_counts = _part_counts(drafts, tokenizer)
    budget = _digest_budget(pc, q_counts, a_counts)
    facts = [signals[a][0] for a in accessions] if pc.key_facts else None
    digest_list, digest_counts = digests_with_counts(
        [docs[a] for a in accessions], budget, tokenizer, pc.anonymize, facts
    )
    digests = dict(zip(accessions, digest_list, strict=True))
    rows = _rows(drafts, digests, pc)
    lengths = _estimated_lengths(
        drafts, dict(zip(accessions, digest_counts, strict=True)), q_counts, a_counts
    )
    if max(lengths) > pc.max_tokens:
        if not pc.digest_tokens:  # the budget was derived from max_tokens: a bug, not the user's
            raise RuntimeError(f"row of {max(lengths)} tokens exceeds pairs.max_tokens")
        raise ConfigError(
            f"pairs.digest_tokens: {pc.digest_tokens} per digest makes rows of up to "
            f"{max(lengths)} tokens, over pairs.max_tokens={pc.max_tokens}; raise max_tokens or "
            "lower digest_tokens (0 = fit the digests to max_tokens)"
        )
    summary = _summary(cfg, pairs, rows, plan, ev_dropped, pair_dropped, n_rows, events)
    summary.update(
        digest_tokens=budget,
        key_facts=pc.key_facts,
        max_row_tokens=max(lengths),
        sigma={"truth_filings": sum(bool(e.truth) for e in events), "mad_train": sigma},
        seconds=round(time.perf_counter() - started, 2),
    )
    _write_atomic(out_dir, rows, summary)
    return summary


def filing_signals(doc: FilingDoc, signal_fn: SignalFn, anonymize: bool) -> tuple[list[str], float]:
    """(facts, score) of one filing from its full text, facts anonymized like its digest."""
    facts, score = signal_fn(doc.full_text())
    if anonymize:
        facts = [anonymize_text(f, doc.company, doc.ticker) for f in facts]
    return facts, score


def _sigma(train_events: list[Event]) -> float:
    return mad_sigma([e.ar for e in train_events])


def _pair_sigma(p: Pair, fallback: float) -> float:
    """sigma of one filing's noise: truth scales when both are known (simulated), else MAD."""
    if p.x.truth and p.y.truth:
        return math.sqrt((p.x.truth["scale"] ** 2 + p.y.truth["scale"] ** 2) / 2.0)
    return fallback


def _drafts(
    pairs: dict[str, list[Pair]],
    pc: PairsConfig,
    seed: int,
    signals: dict[str, tuple[list[str], float]],
    sigma: float,
    tokenizer: Any,
) -> list[_Draft]:
    drafts = []
    for k, split in enumerate(SPLITS):
        ps = pairs[split]
        a_first = balance_positions(len(ps), np.random.default_rng([seed, 3, k]))
        both = pc.swap_augment and split == "train"
        for p, win_a in zip(ps, a_first, strict=True):
            conf = confidence_label(p.gap, _pair_sigma(p, sigma))
            for j, wa in enumerate([win_a, not win_a] if both else [win_a]):
                a, b = (p.winner, p.loser) if wa else (p.loser, p.winner)
                winner = "A" if wa else "B"
                (fa, sa), (fb, sb) = signals[a.accession], signals[b.accession]
                analysis = render_analysis(winner, fa, fb, sa, sb, tokenizer)
                output = render_output(winner, conf, analysis)
                drafts.append(_Draft(split, p, a, b, winner, conf, output, swapped=j == 1))
    return drafts


def _part_counts(drafts: list[_Draft], tokenizer: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Token counts of the distinct question skeletons and answers, in one tokenizer batch."""
    questions = sorted({_skeleton(d) for d in drafts})
    outputs = sorted({d.output for d in drafts})
    counts = count_tokens(tokenizer, questions + outputs)
    return (
        dict(zip(questions, counts[: len(questions)], strict=True)),
        dict(zip(outputs, counts[len(questions) :], strict=True)),
    )


def _digest_budget(pc: PairsConfig, q_counts: dict[str, int], a_counts: dict[str, int]) -> int:
    """Tokens per digest: what the longest question and answer leave, split between A and B."""
    if pc.digest_tokens:
        return pc.digest_tokens
    q_max, a_max = max(q_counts.values()), max(a_counts.values())
    budget = (pc.max_tokens - q_max - a_max - TEMPLATE_OVERHEAD - BUDGET_SLACK) // 2
    if budget < 64:
        raise ConfigError(
            f"pairs.max_tokens: {pc.max_tokens} leaves {budget} tokens per digest after the "
            f"question ({q_max}) and answer ({a_max}); raise it"
        )
    return budget


def _rows(drafts: list[_Draft], digests: dict[str, str], pc: PairsConfig) -> list[dict[str, Any]]:
    rows = []
    for d in drafts:
        da, db = digests[d.a.accession], digests[d.b.accession]
        pid = _pair_id(d.a.accession, d.b.accession, pc)
        rows.append(
            {
                "instruction": render_instruction(da, db),
                "input": "",
                "output": d.output,
                "meta": {
                    "pair_id": pid,
                    "split": d.split,
                    "winner": d.winner,
                    "gap": round(d.pair.gap, 6),
                    "window": pc.window,
                    "method": pc.method,
                    # the selection rule the Bayes ceiling must condition on
                    "min_gap": pc.min_gap,
                    "confidence": d.confidence,
                    "swapped": d.swapped,
                    "a": _side(d.a, da),
                    "b": _side(d.b, db),
                },
            }
        )
    return rows


def _estimated_lengths(
    drafts: list[_Draft],
    digest_counts: dict[str, int],
    q_counts: dict[str, int],
    a_counts: dict[str, int],
) -> list[int]:
    """Prompt + answer + template tokens per row from its parts' counts (no re-tokenizing of
    whole prompts: that would double the build time; the budget keeps BUDGET_SLACK spare)."""
    return [
        q_counts[_skeleton(d)]
        + digest_counts[d.a.accession]
        + digest_counts[d.b.accession]
        + a_counts[d.output]
        + TEMPLATE_OVERHEAD
        for d in drafts
    ]


def _skeleton(d: _Draft) -> str:
    """The instruction without its digests."""
    return render_question(d.a.items, d.b.items) + "\n\nFiling A:\n\n\nFiling B:\n"


def _row_lengths(rows: list[dict[str, Any]], tokenizer: Any) -> list[int]:
    """Exact prompt + answer tokens per row, including the chat-template allowance."""
    n = len(rows)
    counts = count_tokens(tokenizer, [r["instruction"] for r in rows] + [r["output"] for r in rows])
    return [counts[i] + counts[n + i] + TEMPLATE_OVERHEAD for i in range(n)]


def _summary(
    cfg: RunConfig,
    pairs: dict[str, list[Pair]],
    rows: list[dict[str, Any]],
    plan: SplitPlan,
    ev_dropped: Counter[str],
    pair_dropped: Counter[str],
    n_rows: int,
    events: list[Event],
) -> dict[str, Any]:
    pc = cfg.pairs
    splits = {}
    for split in SPLITS:
        srows = [r for r in rows if r["meta"]["split"] == split]
        days = sorted(d for r in srows for d in (r["meta"]["a"]["day0"], r["meta"]["b"]["day0"]))
        filings = {r["meta"][s]["accession"] for r in srows for s in "ab"}
        splits[split] = {
            "pairs": len(pairs[split]),
            "rows": len(srows),
            "filings": len(filings),
            "filings_in_split": len(plan.events[split]),
            # eligible filings that found no partner (other company, within max_days_apart,
            # not a near tie, under max_pairs_per_filing...): pairs_dropped says which rule
            "unpaired": len(plan.events[split]) - len(filings),
            "day0_first": days[0],
            "day0_last": days[-1],
            "a_win_share": round(sum(r["meta"]["winner"] == "A" for r in srows) / len(srows), 4),
            "confidence": dict(Counter(r["meta"]["confidence"] for r in srows)),
        }
    return {
        "store": str(cfg.store),
        "window": pc.window,
        "method": pc.method,
        "seed": cfg.stage_seed(pc.seed),
        "tokenizer": cfg.base,
        "config": dataclasses.asdict(pc),
        "events": {
            "rows": n_rows,
            "eligible": len(events),
            "dropped": dict(sorted((ev_dropped + plan.dropped).items())),
        },
        "pairs_dropped": dict(sorted(pair_dropped.items())),
        "splits": splits,
        "split_boundaries": plan.boundaries,
        "holdout_companies": plan.holdout,
    }


def _write_atomic(out_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Write into a temp sibling directory, then rename it over `out_dir`."""
    if out_dir.exists() and not _replaceable(out_dir):
        raise UserError(
            f"{out_dir}: exists and is not a pairs directory; choose another --out or remove it"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for split in SPLITS:
            with (tmp / f"{split}.jsonl").open("w") as fh:
                for r in rows:
                    if r["meta"]["split"] == split:
                        fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replaceable(path: Path) -> bool:
    names = {p.name for p in path.iterdir()} if path.is_dir() else {"?"}
    return names <= {"train.jsonl", "valid.jsonl", "test.jsonl", "summary.json"}


# ---------------------------------------------------------------------------------------------
# Reading.


def a_won(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """1.0 where a labelled row's winner is A, else 0.0 (rows checked by `load_pairs`)."""
    return np.array([1.0 if r["meta"]["winner"] == "A" else 0.0 for r in rows])


def pair_items(row: dict[str, Any]) -> list[str]:
    """Item codes of filing A then B (a pair counts under each of them), or ["?"]."""
    meta = row.get("meta") or {}
    items = list((meta.get("a") or {}).get("items") or []) + list(
        (meta.get("b") or {}).get("items") or []
    )
    return [str(i) for i in items] or ["?"]


def pair_filings(row: dict[str, Any]) -> set[str]:
    """The accessions of a pair's two filings (none for hand-made pairs without them)."""
    meta = row.get("meta") or {}
    return {
        str(side["accession"])
        for side in (meta.get("a"), meta.get("b"))
        if isinstance(side, dict) and side.get("accession")
    }


def load_pairs(pairs_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """Rows of `pairs_dir/split.jsonl`, checked; UserError "file:line: ..." on a bad row."""
    if split not in SPLITS:
        raise UserError(f"split {split!r}: must be one of {', '.join(SPLITS)}")
    path = Path(pairs_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: not found (build it with `filingcontrast pairs --out DIR`)")
    rows = []
    seen: dict[tuple[str, bool], int] = {}  # (pair_id, swapped) -> line
    for n, row in iter_jsonl(path):
        problem = _row_problem(row)
        if problem:
            raise UserError(f"{path}:{n}: {problem}")
        key = (row["meta"]["pair_id"], bool(row["meta"].get("swapped")))
        if key in seen:  # counted twice, it would inflate n and narrow every interval
            raise UserError(
                f"{path}:{n}: field meta.pair_id: {key[0]!r} repeats line {seen[key]} "
                "(a second order of a pair needs meta.swapped = true)"
            )
        seen[key] = n
        rows.append(row)
    return rows


def _finite_number(x: Any) -> bool:
    """A JSON number that is a usable float (not a bool, NaN, ±Infinity or a 400-digit int)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _truth_problem(truth: Any) -> str | None:
    """What is wrong with a side's simulated truth (None: absent or fine), as `.field: ...`."""
    if truth is None:
        return None
    if not isinstance(truth, dict):
        return ": must be an object or null"
    if not _finite_number(truth.get("expected")):
        return f".expected: must be a finite number, got {truth.get('expected')!r}"
    scale = truth.get("scale")
    if not _finite_number(scale) or not scale > 0:
        return f".scale: must be a finite number > 0, got {scale!r}"
    df = truth.get("df", math.inf)  # Infinity: normal noise
    if isinstance(df, bool) or not isinstance(df, int | float) or not df > 2:
        return f".df: must be a number > 2 (or Infinity), got {df!r}"
    return None


def _row_problem(row: Any) -> str | None:
    """What is wrong with a row, or None."""
    if not isinstance(row, dict):
        return "row is not a JSON object"
    for f in ROW_FIELDS:
        if f not in row:
            return f"missing field {f}"
    for f in ("instruction", "input", "output"):
        if not isinstance(row[f], str):
            return f"field {f}: must be a string"
    meta = row["meta"]
    if not isinstance(meta, dict):
        return "field meta: must be an object"
    for f in META_FIELDS:
        if f not in meta:
            return f"missing field meta.{f}"
    if meta["winner"] not in ("A", "B"):
        return f"field meta.winner: must be 'A' or 'B', got {meta['winner']!r}"
    for f in ("pair_id", "window"):
        if not isinstance(meta[f], str):
            return f"field meta.{f}: must be a string, got {meta[f]!r}"
    for s in ("a", "b"):
        if not isinstance(meta[s], dict):
            return f"field meta.{s}: must be an object"
        side = meta[s]
        for f in SIDE_FIELDS:
            if f not in side:
                return f"missing field meta.{s}.{f}"
        for f in ("accession", "day0", "digest"):
            if not isinstance(side[f], str):
                return f"field meta.{s}.{f}: must be a string"
        if not (isinstance(side["items"], list) and all(isinstance(i, str) for i in side["items"])):
            return f"field meta.{s}.items: must be a list of item codes (strings)"
        ret = side["abnormal_ret"]
        if ret is not None and not _finite_number(ret):
            return f"field meta.{s}.abnormal_ret: must be a finite number or null, got {ret!r}"
        problem = _truth_problem(side.get("truth"))
        if problem:
            return f"field meta.{s}.truth{problem}"
    gap = meta["gap"]
    if not _finite_number(gap) or not gap >= 0:
        return f"field meta.gap: must be a finite number >= 0 (abs. return difference), got {gap!r}"
    if not isinstance(meta["confidence"], str):
        return "field meta.confidence: must be a string"
    if not row["output"].startswith(DECISION.format(w=meta["winner"])):
        return f"field output: must start with {DECISION.format(w=meta['winner'])!r}"
    return None


def check_pairs_dir(pairs_dir: str | Path) -> Path:
    """A pairs directory the user named: a file (e.g. its train.jsonl) or a missing path is a
    one-line error saying which, before anything looks for split files inside it."""
    pairs_dir = Path(pairs_dir)
    if pairs_dir.is_file():
        raise UserError(f"{pairs_dir}: not a directory (pass the pairs directory, not a file)")
    if not pairs_dir.is_dir():
        raise UserError(f"{pairs_dir}: pairs directory not found")
    return pairs_dir


def pairs_stats(pairs_dir: str | Path) -> str:
    """Counts per split, A-win share, confidence and item mix, token lengths (prompt + answer)."""
    pairs_dir = check_pairs_dir(pairs_dir)
    summary_path = pairs_dir / "summary.json"
    if not summary_path.is_file():
        raise UserError(f"{summary_path}: not found (not a complete pairs directory)")
    summary = read_json(summary_path)
    from filingcontrast.model import load_tokenizer

    check_field_types(summary_path, summary, SUMMARY_TYPES)
    spec = summary.get("tokenizer", "smollm2-135m-instruct")
    tokenizer = load_tokenizer(spec)
    lines = [f"{pairs_dir}: window {summary.get('window')} method {summary.get('method')}"]
    lines.append(
        f"{'split':<6} {'rows':>6} {'A-share':>8} {'high':>6} {'medium':>7} {'low':>6} "
        f"{'tok min':>8} {'median':>7} {'p95':>6} {'max':>6}  day0 range"
    )
    items: dict[str, Counter[str]] = {}
    for split in SPLITS:
        rows = load_pairs(pairs_dir, split)
        if not rows:
            lines.append(f"{split:<6} {0:>6}")
            continue
        conf = Counter(r["meta"]["confidence"] for r in rows)
        lens = np.array(_row_lengths(rows, tokenizer))
        share = sum(r["meta"]["winner"] == "A" for r in rows) / len(rows)
        days = sorted(r["meta"][s]["day0"] for r in rows for s in "ab")
        lines.append(
            f"{split:<6} {len(rows):>6} {share:>8.3f} {conf['high']:>6} {conf['medium']:>7} "
            f"{conf['low']:>6} {lens.min():>8} {int(np.median(lens)):>7} "
            f"{int(np.percentile(lens, 95)):>6} {lens.max():>6}  {days[0]} .. {days[-1]}"
        )
        items[split] = Counter(i for r in rows for s in "ab" for i in r["meta"][s]["items"])
    lines.append(f"token lengths: prompt + answer + {TEMPLATE_OVERHEAD} template ({spec})")
    lines.append("item mix (filing slots per split):")
    codes = sorted({c for cnt in items.values() for c in cnt})
    for code in codes:
        counts = "  ".join(f"{s}={items.get(s, Counter())[code]}" for s in SPLITS)
        lines.append(f"  {code:>5}  {counts}")
    dropped = summary.get("events", {}).get("dropped", {})
    if dropped:
        lines.append("filings dropped: " + ", ".join(f"{k}={v}" for k, v in dropped.items()))
    return "\n".join(lines)
