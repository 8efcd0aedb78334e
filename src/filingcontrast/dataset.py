"""Prompt templates, answer-only labels, batching, the shared loss step and decision scoring.

A training row (a pairs JSONL line) becomes `prompt ids + answer ids + end id`:

- `inst`: the seed's `[INST] {instruction}\\n{input} [/INST] {output}<eos>`;
- `chat`: the tokenizer's chat template (system message = `TrainConfig.system_prompt`, prompt
  rendered with `add_generation_prompt=True`), answer, then the end-of-turn token (`<|im_end|>`).

Prompt and answer are tokenized separately and concatenated; every row is checked against
tokenizing the full text once, so a token merge across the boundary is an error, never a silently
shifted mask. Labels are -100 on every prompt token and the end token is always trained — masking
is by position, never by comparing ids with the pad id (pad == eos here). Text that looks like a
template marker is neutralized first so it cannot move the mask.

`loss_step` is the one loss used by training and evaluation: it runs the decoder body (no head),
gathers the positions whose next token carries a label and applies the LM head to those only, so
the prompt never pays for full-vocabulary logits. `score_decisions` does the same for the one
decision position of each prompt (the " A"/" B" after "Filing").
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from filingcontrast.errors import UserError

log = logging.getLogger(__name__)

IGNORE = -100
# Literal markers of the `inst` template: not special tokens, but they must not appear in content.
INST_MARKERS = ("[INST]", "[/INST]")
# The answer's first word; the decision token (" A"/" B") follows it.
ANSWER_LEAD = "Filing"


def neutralize(text: str, markers: Sequence[str]) -> str:
    """Break up template markers inside content ("[INST]" -> "[ INST ]", "<|im_end|>" ->
    "< |im_end| >") so that filing text cannot open or close a turn or move the label mask."""
    for marker in sorted(set(markers), key=len, reverse=True):
        if len(marker) >= 3 and marker in text:
            text = text.replace(marker, f"{marker[0]} {marker[1:-1]} {marker[-1]}")
    return text


@dataclass
class Example:
    """One encoded row: `input_ids` = prompt + answer + end, labels -100 on the prompt."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int
    decision_pos: int  # index in input_ids of the decision token, -1 if the answer has none
    pair_id: str = ""
    trimmed: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "prompt_len": self.prompt_len,
            "decision_pos": self.decision_pos,
            "pair_id": self.pair_id,
            "trimmed": self.trimmed,
        }


@dataclass
class EncodeSummary:
    """What happened to the rows: kept, trimmed to fit, refused (with reasons)."""

    rows: int = 0
    kept: int = 0
    trimmed: int = 0
    refused: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "kept": self.kept,
            "trimmed": self.trimmed,
            "refused": dict(self.refused),
        }


class PromptFormatter:
    """Renders and tokenizes prompts and answers for one tokenizer and template."""

    def __init__(self, tokenizer: Any, template: str = "auto", system_prompt: str = "") -> None:
        if template not in ("auto", "chat", "inst"):
            raise UserError(f"template={template!r}: must be auto, chat or inst")
        has_chat = bool(getattr(tokenizer, "chat_template", None))
        if template == "auto":
            template = "chat" if has_chat else "inst"
        if template == "chat" and not has_chat:
            raise UserError("template=chat: this tokenizer has no chat template; use inst")
        self.tokenizer = tokenizer
        self.template = template
        self.system_prompt = system_prompt
        specials = list(getattr(tokenizer, "all_special_tokens", []) or [])
        self.markers = tuple(specials) + INST_MARKERS + ("<|im_start|>", "<|im_end|>")
        self.end_id = self._end_id()
        # Chat answers follow "assistant\n"; inst answers follow "[/INST]" after one space.
        self.answer_sep = "" if template == "chat" else " "
        self.lead_ids = self._ids(self.answer_sep + ANSWER_LEAD)
        id_a, id_b = self._ids(" A"), self._ids(" B")
        if len(id_a) != 1 or len(id_b) != 1:
            raise UserError("tokenizer: ' A' and ' B' must each be one token")
        self.decision_token_ids: tuple[int, int] = (id_a[0], id_b[0])

    def _end_id(self) -> int:
        tok = self.tokenizer
        if self.template == "chat":
            # The chat template closes a turn with its end-of-turn token (e.g. <|im_end|>).
            probe = tok.apply_chat_template(
                [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
                tokenize=False,
            )
            for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "</s>"):
                if marker in probe and marker in tok.get_vocab():
                    return tok.convert_tokens_to_ids(marker)
        if tok.eos_token_id is None:
            raise UserError("tokenizer has no EOS token; cannot mark the end of the answer")
        return int(tok.eos_token_id)

    def _ids(self, text: str) -> list[int]:
        """Content tokens: no BOS, special-token strings split into plain text."""
        return list(
            self.tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids
        )

    def clean(self, text: str) -> str:
        return neutralize(text, self.markers)

    def prompt_text(self, instruction: str, input: str = "") -> str:
        instruction, input = self.clean(instruction), self.clean(input)
        if self.template == "inst":
            return f"[INST] {instruction}\n{input} [/INST]"
        user = instruction if not input else f"{instruction}\n\n{input}"
        messages = [{"role": "user", "content": user}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.clean(self.system_prompt)})
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def _text_ids(self, text: str) -> list[int]:
        """Template text: its own markers are special tokens (content was neutralized)."""
        add = self.template == "inst"  # the inst form starts with BOS when the tokenizer uses one
        return list(self.tokenizer(text, add_special_tokens=add).input_ids)

    def prompt_ids(self, instruction: str, input: str = "") -> list[int]:
        return self._text_ids(self.prompt_text(instruction, input))

    def decision_prompt_ids(self, instruction: str, input: str = "") -> list[int]:
        """Prompt + the answer's first word ("Filing"): the next token is " A" or " B"."""
        return self.prompt_ids(instruction, input) + self.lead_ids

    def answer_ids(self, output: str) -> list[int]:
        return self._ids(self.answer_sep + self.clean(output))

    def check_boundary(self, prompt: str, answer: str, joined: list[int]) -> None:
        """Tokenizing prompt + answer in one go must give the concatenated ids."""
        full = self._text_ids(prompt + self.answer_sep + self.clean(answer))
        if full != joined:
            at = next((i for i, (x, y) in enumerate(zip(full, joined)) if x != y), None)
            at = min(len(full), len(joined)) if at is None else at
            raise UserError(
                f"template {self.template}: prompt/answer token boundary mismatch at token {at} "
                f"(separate {joined[max(0, at - 2) : at + 3]} vs joined {full[max(0, at - 2) : at + 3]}); "
                "the answer would be trained on shifted labels"
            )

    def encode(self, row: dict, max_seq_len: int, check: bool = True) -> Example | str:
        """An `Example`, or the reason string why the row cannot be trained on."""
        instruction, input_ = row.get("instruction", ""), row.get("input", "") or ""
        output = row.get("output", "")
        meta = row.get("meta") or {}
        if not output.strip():
            return "empty_answer"
        answer = self.answer_ids(output) + [self.end_id]
        room = max_seq_len - len(answer)
        text = self.prompt_text(instruction, input_)  # rendered once: ids and boundary check
        prompt = self._text_ids(text)
        trimmed = False
        if len(prompt) > room:
            if len(self.prompt_ids("", input_)) + 16 > room:
                # no room left for the instruction: the answer, or else the `input` field
                return (
                    "answer_too_long" if len(self.prompt_ids("")) + 16 > room else "input_too_long"
                )
            instruction = self._fit_instruction(instruction, input_, meta, room)[0]
            if instruction is None:
                return "prompt_does_not_fit"
            text = self.prompt_text(instruction, input_)
            prompt, trimmed = self._text_ids(text), True
        ids = prompt + answer
        if check:
            self.check_boundary(text, output, ids[:-1])
        labels = [IGNORE] * len(prompt) + answer
        if all(label == IGNORE for label in labels[1:]):  # the first label is never predicted
            return "no_trainable_labels"
        pos = len(prompt) + len(self.lead_ids)
        decision_pos = pos if pos < len(ids) and ids[pos] in self.decision_token_ids else -1
        return Example(ids, labels, len(prompt), decision_pos, str(meta.get("pair_id", "")),
                       trimmed)  # fmt: skip

    def fit_row(self, row: dict, max_seq_len: int) -> dict:
        """`row` with its digests (and instruction) shortened as `encode` shortens them, so that
        scoring it in both orders (`pairs.swapped_instruction` reads the digests) sees the
        prompt training would; the row itself when it fits or cannot be fitted."""
        meta = row.get("meta") or {}
        answer = self.answer_ids(row.get("output", "")) + [self.end_id]
        room = max_seq_len - len(answer)
        input_ = row.get("input", "") or ""
        if len(self.prompt_ids(row.get("instruction", ""), input_)) <= room:
            return row
        instruction, da, db = self._fit_instruction(row.get("instruction", ""), input_, meta, room)
        if instruction is None or da is None or db is None:
            return row
        sides = {"a": {**meta["a"], "digest": da}, "b": {**meta["b"], "digest": db}}
        return {**row, "instruction": instruction, "meta": {**meta, **sides}}

    def _fit_instruction(
        self, instruction: str, input_: str, meta: dict, room: int
    ) -> tuple[str | None, str | None, str | None]:
        """(instruction, digest A, digest B): the digests shortened (re-rendered via
        pairs.render_instruction) until the prompt fits `room` tokens; the instruction's middle
        cut instead (digests None) when they are too short to carry the cut; None if nothing
        fits."""
        from filingcontrast.pairs import render_instruction as render

        da, db = (meta.get("a") or {}).get("digest"), (meta.get("b") or {}).get("digest")
        for _ in range(6):
            over = len(self.prompt_ids(instruction, input_)) - room
            if over <= 0:
                return instruction, da, db
            if da and db:
                ta, tb = self._ids(da), self._ids(db)
                # share what is left evenly; a short digest gives its unused share to the other
                budget = len(ta) + len(tb) - over - 8
                ka = min(len(ta), max(budget // 2, budget - len(tb)))
                kb = min(len(tb), budget - ka)
                if ka < 8 or kb < 8:
                    da = db = None  # digests too short to carry the cut: trim the middle instead
                    continue
                da = self._decode(ta[:ka]) + (" …" if ka < len(ta) else "")
                db = self._decode(tb[:kb]) + (" …" if kb < len(tb) else "")
                instruction = render(da, db)
            else:
                toks = self._ids(instruction)
                keep = len(toks) - over - 8
                if keep < 16:
                    return None, None, None
                head = keep * 3 // 4  # the question sits at the end: keep a tail too
                instruction = (
                    self._decode(toks[:head])
                    + " … "
                    + self._decode(toks[len(toks) - (keep - head) :])
                )
        if len(self.prompt_ids(instruction, input_)) > room:
            return None, None, None
        return instruction, da, db

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)


SHOWN_REFUSALS = 3
"""Refused rows named one by one in the log; the rest are counted in one line."""


def encode_rows(
    formatter: PromptFormatter, rows: Sequence[dict], max_seq_len: int
) -> tuple[list[Example], EncodeSummary]:
    """Encode rows; refused rows are counted by reason (and logged), never silently dropped."""
    summary = EncodeSummary(rows=len(rows))
    out: list[Example] = []
    for i, row in enumerate(rows):
        ex = formatter.encode(row, max_seq_len)
        if isinstance(ex, str):
            summary.refused[ex] += 1
            if sum(summary.refused.values()) <= SHOWN_REFUSALS:  # the rest are counted below
                pair_id = (row.get("meta") or {}).get("pair_id")
                log.warning("row %d (%s): refused: %s", i, pair_id, ex)
            continue
        summary.kept += 1
        summary.trimmed += ex.trimmed
        out.append(ex)
    hidden = sum(summary.refused.values()) - SHOWN_REFUSALS
    if hidden > 0:
        log.warning("... and %d more rows refused (%s)", hidden, dict(summary.refused))
    return out, summary


# ---------------------------------------------------------------------------------------------
# Batching


def collate(examples: Sequence[Example | dict], pad_id: int) -> dict[str, Any]:
    """Right-pad a micro-batch: input_ids with `pad_id`, labels with -100, attention mask by
    length, `decision_mask` True at each row's decision token. Pure; configure with partial."""
    import torch

    rows = [e.to_dict() if isinstance(e, Example) else e for e in examples]
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # [B, T]
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)  # [B, T]
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, T]
    decision = torch.zeros((len(rows), width), dtype=torch.bool)  # [B, T]
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        mask[i, :n] = 1
        if r.get("decision_pos", -1) >= 0:
            decision[i, r["decision_pos"]] = True
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "decision_mask": decision}


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, bucket_batches: int = 16
) -> list[list[int]]:
    """Batches of row indices with similar lengths: shuffle rows, sort each bucket of
    `bucket_batches` batches by length, cut into batches, shuffle the batch order (by `seed`)."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * bucket_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        bucket = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [bucket[j : j + batch_size] for j in range(0, len(bucket), batch_size)]
    rng.shuffle(batches)
    return batches


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions over all positions of the batches."""
    real = sum(lengths[i] for b in batches for i in b)
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    return 0.0 if total == 0 else 1 - real / total


# ---------------------------------------------------------------------------------------------
# The shared loss: decoder body + LM head on labelled positions only


def _parts(model: Any) -> tuple[Any, Any]:
    """(decoder body without head, LM head) of an HF causal LM, a PeftModel or a DDP wrapper."""
    inner = getattr(model, "module", model)  # DDP / accelerate wrapper
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    body = inner.get_decoder() if hasattr(inner, "get_decoder") else inner.model
    return body, inner.get_output_embeddings()


def _answer_loss_sums(
    model: Any, batch: dict[str, Any], decision_weight: float = 1.0
) -> tuple[Any, Any, dict[str, Any]]:
    """(weighted CE sum, weight sum, stats) over the labelled positions of a batch."""
    import torch
    import torch.nn.functional as F

    body, head = _parts(model)
    hidden = body(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state  # [B, T, H]
    targets = batch["labels"][:, 1:]  # [B, T-1]: position t predicts token t+1
    keep = targets != IGNORE  # [B, T-1]
    logits = head(hidden[:, :-1][keep]).float()  # [N, V]
    gold = targets[keep]  # [N]
    ce = F.cross_entropy(logits, gold, reduction="none")  # [N]
    weights = torch.ones_like(ce)
    decision = batch.get("decision_mask")
    n_dec = 0
    dec_correct = 0
    if decision is not None:
        is_dec = decision[:, 1:][keep]  # [N]
        n_dec = int(is_dec.sum())
        if decision_weight != 1.0:
            weights = torch.where(is_dec, torch.full_like(ce, decision_weight), weights)
        if n_dec:
            dec_correct = int((logits[is_dec].argmax(-1) == gold[is_dec]).sum())
    stats = {
        "label_tokens": int(keep.sum()),
        "tokens": int(batch["attention_mask"].sum()),
        "decision_tokens": n_dec,
        "decision_correct": dec_correct,
    }
    return (ce * weights).sum(), weights.sum(), stats


def loss_step(
    model: Any, batch: dict[str, Any], decision_weight: float = 1.0
) -> tuple[Any, dict[str, Any]]:
    """Mean (decision-weighted) next-token loss over the answer tokens of `batch`.

    Shared by training and evaluation. Returns `(loss, stats)`; stats has `label_tokens`,
    `tokens` (non-pad), `decision_tokens` and `decision_correct`. A batch without any labelled
    position is an error: it would give a silent zero loss."""
    total, weight, stats = _answer_loss_sums(model, batch, decision_weight)
    if stats["label_tokens"] == 0:
        raise ValueError("batch has no labelled answer tokens: the loss would be a silent zero")
    return total / weight, stats


# ---------------------------------------------------------------------------------------------
# Decision scoring


def common_prefix_len(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix all prompts share, leaving each at least one token."""
    if not prompts:
        return 0
    first, limit = prompts[0], min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


MIN_SHARED_PREFIX = 8
"""Shorter shared prefixes are recomputed per prompt: the cache copy would cost more."""


def shared_prefix_len(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens `score_decisions` runs once for all prompts (0: none shared worth caching)."""
    n = common_prefix_len(prompts)
    return n if n >= MIN_SHARED_PREFIX else 0


def _prefix_cache(body: Any, prefix: Sequence[int], device: Any) -> Any:
    """The decoder's KV cache for `prefix` (batch 1), computed once per scoring call."""
    import torch

    ids = torch.tensor([list(prefix)], device=device)  # [1, P]
    out = body(input_ids=ids, use_cache=True)
    return out.cache if hasattr(out, "cache") else out.past_key_values


def _cache_kwarg(body: Any) -> str:
    """transformers renamed `past_key_values` to `cache` (5.x, old name deprecated)."""
    import inspect

    return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"


def score_decisions(
    model: Any,
    formatter: PromptFormatter,
    instructions: Sequence[str],
    batch_size: int = 8,
    share_prefix: bool = True,
    progress: str | None = None,
) -> np.ndarray:
    """P(A) for each instruction: softmax over the (" A", " B") logits at the decision position
    (after the answer's "Filing"). Right-padded batches sorted by length; the head runs on the
    last real position of each row only. The token prefix every prompt shares (system message,
    "Compare Filing A (") is run once and its KV cache reused by every batch. `progress` names
    a progress bar over the prompts (none when None)."""
    import copy

    import torch
    from tqdm.auto import tqdm

    prompts = [formatter.decision_prompt_ids(text) for text in instructions]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = np.zeros(len(prompts), dtype=np.float64)
    body, head = _parts(model)
    device = next(body.parameters()).device
    pad = formatter.tokenizer.pad_token_id or 0
    id_a, id_b = formatter.decision_token_ids
    shared = shared_prefix_len(prompts) if share_prefix else 0
    bar = tqdm(total=len(prompts), desc=progress, unit="prompt", disable=progress is None)
    with torch.no_grad(), bar:
        cache = _prefix_cache(body, prompts[0][:shared], device) if shared else None
        cache_kwarg = _cache_kwarg(body) if shared else ""
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            rest = [prompts[i][shared:] for i in idx]
            width = max(len(r) for r in rest)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)  # [B, T]
            mask = torch.zeros((len(idx), shared + width), dtype=torch.long)  # [B, P+T]
            mask[:, :shared] = 1
            for row, r in enumerate(rest):
                ids[row, : len(r)] = torch.tensor(r)
                mask[row, shared : shared + len(r)] = 1
            ids, mask = ids.to(device), mask.to(device)
            kwargs: dict[str, Any] = {"use_cache": False}
            if cache is not None:
                past = copy.deepcopy(cache)  # the forward appends to it
                past.batch_repeat_interleave(len(idx))
                kwargs = {"use_cache": True, cache_kwarg: past}
            hidden = body(input_ids=ids, attention_mask=mask, **kwargs).last_hidden_state
            last = mask[:, shared:].sum(1) - 1  # [B]
            h = hidden[torch.arange(len(idx), device=device), last]  # [B, H]
            logits = head(h).float()[:, [id_a, id_b]]  # [B, 2]
            p_a = torch.softmax(logits, dim=-1)[:, 0].cpu().numpy()
            out[idx] = p_a
            bar.update(len(idx))
    bad = int((~np.isfinite(out)).sum())
    if bad:  # a NaN would be scored as a "B" verdict and counted, never seen
        from filingcontrast.errors import UserError

        raise UserError(
            f"the model's P(A) is not a number for {bad} of {len(out)} prompts: its weights "
            "(a diverged or damaged adapter) or a half-precision overflow"
        )
    return out


def pair_probabilities(
    model: Any,
    formatter: PromptFormatter,
    rows: Sequence[dict],
    batch_size: int = 8,
    swap: Callable[[dict], str] | None = None,
    progress: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_a, p_ab, p_ba): p_ab = P(A) as shown, p_ba = P(first shown) with B shown first
    (`pairs.swapped_instruction`), p_a = (p_ab + 1 - p_ba) / 2 cancels position bias."""
    if swap is None:
        from filingcontrast.pairs import swapped_instruction as swap
    firsts = [r["instruction"] for r in rows]
    seconds = [swap(r) for r in rows]
    return both_orders(model, formatter, firsts, seconds, batch_size, progress=progress)


def both_orders(
    model: Any,
    formatter: PromptFormatter,
    instr_ab: Sequence[str],
    instr_ba: Sequence[str],
    batch_size: int = 8,
    calibration: Any = None,
    progress: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_a, p_ab, p_ba) for pairs given in both orders, scored in one batched sweep; with a
    `calibration.Calibration` the per-order probabilities are calibrated before averaging."""
    prompts = list(instr_ab) + list(instr_ba)
    probs = score_decisions(model, formatter, prompts, batch_size, progress=progress)
    p_ab, p_ba = probs[: len(instr_ab)], probs[len(instr_ab) :]
    if calibration is not None:
        return calibration.apply(p_ab, p_ba)
    # 0.5 + (p_ab - p_ba) / 2, not (p_ab + 1 - p_ba) / 2: equal orders give exactly 0.5 (a coin
    # flip, half credit), where the other rounding can land on 0.49999999999999994.
    return 0.5 + (p_ab - p_ba) / 2.0, p_ab, p_ba
