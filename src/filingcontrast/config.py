"""Typed run configs: one dataclass per stage, one TOML file per run, dotted CLI overrides.

Every field carries a docstring (the string literal under it) and is validated in
`__post_init__`. `load_config` reads a TOML file, applies `key.sub=value` overrides and builds the
dataclasses; an unknown key, a wrong type or an out-of-range value raises `ConfigError` naming the
dotted key, which the CLI turns into a one-line message and exit code 2.

Stage config classes live here (not in the stage modules) so that reading a config never imports
torch, DuckDB or plotting libraries.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from filingcontrast.errors import ConfigError


def parse_window(name: str) -> tuple[int, int]:
    """ "0_3" -> (0, 3): a return window START_END in trading days from day 0 (ASCII digits,
    START <= END); ValueError otherwise. The one parser of window names (config, manifests,
    the event study)."""
    m = re.fullmatch(r"([0-9]+)_([0-9]+)", name)
    if not m or int(m[1]) > int(m[2]):
        raise ValueError(f"must look like 0_1 (start_end trading days), got {name!r}")
    return int(m[1]), int(m[2])


def window_name(window: tuple[int, int]) -> str:
    """(0, 3) -> "0_3", the name events are stored under ("00_03" is the same window)."""
    return f"{window[0]}_{window[1]}"


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {message}")


MAX_SIM_COMPANIES = 5_000
"""More simulated companies than this make ticker generation slow (and 475,000 impossible)."""


@dataclass
class SimulateConfig:
    """The simulated market (`filingcontrast simulate`)."""

    filings: int = 2000
    """Number of 8-K filings to generate."""
    companies: int = 150
    """Number of simulated companies (tickers)."""
    preset: Literal["demo", "realistic"] = "demo"
    """`demo`: clear signals, Bayes ceiling ~0.85; `realistic`: ceiling ~0.60-0.65 like real 8-Ks."""
    start: str = "2021-01-04"
    """First calendar date of the simulated period (ISO date)."""
    noise_scale: float = 0.0
    """Idiosyncratic noise scale (daily-return units over the event window); 0 = preset default."""
    effect_scale: float = 1.0
    """Multiplier on every return driver's effect size."""
    noise_df: float = 0.0
    """Degrees of freedom of the Student-t event-window noise (> 2); 0 = preset default."""
    seed: int = -1
    """Random seed; -1 = the run's seed."""

    def __post_init__(self) -> None:
        _check(self.seed >= -1, "seed", f"must be >= 0, or -1 for the run's seed, got {self.seed}")
        _check(self.filings > 0, "filings", f"must be > 0, got {self.filings}")
        _check(
            self.noise_df == 0 or self.noise_df > 2,
            "noise_df",
            f"must be 0 (preset default) or > 2, got {self.noise_df}",
        )
        # Upper bounds keep the market meaningful: beyond them returns overflow to inf prices
        # (1e300) or the ticker generator runs for minutes (and forever past 26^3 + 26^4).
        _check(
            1 < self.companies <= MAX_SIM_COMPANIES,
            "companies",
            f"must be in 2..{MAX_SIM_COMPANIES}, got {self.companies}",
        )
        _check(
            0 <= self.noise_scale <= 0.5,
            "noise_scale",
            f"must be in [0, 0.5] (a return's standard deviation), got {self.noise_scale}",
        )
        _check(
            0 < self.effect_scale <= 10,
            "effect_scale",
            f"must be in (0, 10] (a multiplier on the presets' effects), got {self.effect_scale}",
        )
        _check(_is_iso_date(self.start), "start", f"must be an ISO date, got {self.start!r}")


@dataclass
class PairsConfig:
    """Contrastive pairs and splits (`filingcontrast pairs`)."""

    window: str = "0_1"
    """Return window `START_END` in trading days from day 0 (e.g. `0_1`, `0_3`, `0_5`)."""
    method: Literal["market_adjusted", "market_model", "provided"] = "market_adjusted"
    """Abnormal-return method used for the label (`provided`: returns given in an `ingest
    files` manifest, stored as is)."""
    max_days_apart: int = 5
    """Pair only filings whose day 0s are at most this many trading days apart."""
    same_item: bool = False
    """Pair only filings that share an item code."""
    same_sector: bool = False
    """Pair only filings of companies in the same sector."""
    min_gap: float = 0.01
    """Drop near-ties: minimum |abnormal return A - abnormal return B|."""
    max_pairs_per_filing: int = 3
    """Each filing appears in at most this many pairs (swap-augmented copies not counted)."""
    swap_augment: bool = False
    """Also emit each training pair in the other order (B, A)."""
    valid_frac: float = 0.15
    """Share of the filings, ordered by day 0, used for validation (before the embargo cut)."""
    test_frac: float = 0.15
    """Share of the filings, ordered by day 0, used for test (the latest)."""
    embargo_days: int = 5
    """Trading days left out between splits, after the window end of the earlier split's last
    filing; must be >= the window's end."""
    holdout_companies: float = 0.0
    """Share of companies held out of training entirely (their filings only in valid/test)."""
    anonymize: bool = True
    """Replace company names and tickers in the prompt with neutral placeholders."""
    max_tokens: int = 2048
    """Token budget of prompt + answer; the filing digests share what the question leaves."""
    digest_tokens: int = 0
    """Tokens per filing digest; 0 = split `max_tokens` evenly between A and B."""
    key_facts: bool = False
    """Start each digest with a `Key facts:` line of what signals.py extracted (EPS vs consensus
    and surprise, guidance, offerings, departures, ...). The same line is rebuilt by compare
    and rank for an adapter trained with it (recorded in the adapter's metadata)."""
    max_pairs: int = 0
    """Cap on the number of pairs per split after pairing (0 = no cap)."""
    seed: int = -1
    """Random seed; -1 = the run's seed."""

    def __post_init__(self) -> None:
        _check(self.seed >= -1, "seed", f"must be >= 0, or -1 for the run's seed, got {self.seed}")
        try:
            start, end = parse_window(self.window)
        except ValueError as exc:
            raise ConfigError(f"window: {exc}") from None
        self.window = window_name((start, end))  # the stored name: "00_01" is 0_1
        _check(self.max_days_apart >= 0, "max_days_apart", "must be >= 0")
        _check(self.min_gap >= 0, "min_gap", f"must be >= 0, got {self.min_gap}")
        _check(self.max_pairs_per_filing >= 1, "max_pairs_per_filing", "must be >= 1")
        _check(0 < self.valid_frac < 1, "valid_frac", "must be in (0, 1)")
        _check(0 < self.test_frac < 1, "test_frac", "must be in (0, 1)")
        _check(
            self.valid_frac + self.test_frac < 1, "test_frac", "valid_frac + test_frac must be < 1"
        )
        _check(
            self.embargo_days >= end,
            "embargo_days",
            f"must be >= the window's end ({end}) so returns cannot overlap across splits",
        )
        _check(0 <= self.holdout_companies < 1, "holdout_companies", "must be in [0, 1)")
        _check(self.max_tokens >= 256, "max_tokens", f"must be >= 256, got {self.max_tokens}")
        _check(
            self.digest_tokens == 0 or self.digest_tokens >= 64,
            "digest_tokens",
            f"must be 0 (split max_tokens) or >= 64, got {self.digest_tokens}",
        )
        _check(self.max_pairs >= 0, "max_pairs", "must be >= 0")


@dataclass
class TrainConfig:
    """LoRA fine-tuning (`filingcontrast train`)."""

    template: Literal["auto", "chat", "inst"] = "auto"
    """Prompt template: `chat` = the tokenizer's chat template, `inst` = the seed's [INST] form."""
    system_prompt: str = "You compare SEC 8-K filings."
    """System message for the chat template (short: the model's default costs ~20 tokens)."""
    max_seq_len: int = 2048
    """Longest training row in tokens; digests are shortened to fit, never the answer."""
    epochs: int = 3
    """Passes over the training pairs."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0 = run all epochs)."""
    lr: float = 2e-4
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.05
    """Share of optimizer steps with linear warm-up before the cosine decay."""
    batch_size: int = 1
    """Rows per micro-batch (per process). One row needs no padding and is fastest on CPU."""
    grad_accum: int = 4
    """Micro-batches per optimizer step (effective batch = batch_size * grad_accum * processes)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA alpha (scale = alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    lora_targets: list[str] = field(default_factory=lambda: ["all-linear"])
    """Modules that get LoRA adapters; `all-linear` = every linear projection except the head."""
    fused_lora: bool = True
    """CPU fast path for LoRA layers (filingcontrast.lora): dropout masks from 16-bit uniforms
    (p rounded to 1/65536) and the scaling and residual add folded into one addmm. Same
    parameters and adapter files as peft's layer; false = peft's own forward."""
    lora_layers: int = 0
    """Adapt only the top N decoder layers (0 = all). The backward pass then stops at the lowest
    adapted layer. Measured by bench/train_options.py: the top 10 of 30 layers ran 1.4-1.6x the
    tokens/s of all layers (both without dropout)."""
    grad_checkpointing: Literal["auto", "on", "selective", "off"] = "auto"
    """Gradient checkpointing; `auto` turns it (full) on when a micro-batch has more tokens than
    the threshold. `selective` keeps the attention kernels' outputs and the matmul outputs no
    wider than the hidden size, and recomputes only the MLP's wide projections and elementwise
    ops (more memory than `on`, less recomputation)."""
    checkpointing_threshold: int = 4096
    """Tokens per micro-batch above which `auto` checkpointing turns on."""
    decision_weight: float = 1.0
    """Loss weight of the decision token (the A/B after "Filing"); 1 = plain next-token loss."""
    loraplus_ratio: float = 0.0
    """LoRA+ (peft `create_loraplus_optimizer`): the B matrices learn at `lr` times this ratio
    (the paper uses 16 with about half the usual lr); 0 = one lr for every adapter weight."""
    save_every: int = 100
    """Write a resumable checkpoint every N optimizer steps (0 = only at the end and on Ctrl-C)."""
    eval_every_epoch: bool = True
    """Evaluate loss and pairwise accuracy on the validation split after each epoch."""
    max_valid_pairs: int = 200
    """Cap on validation pairs scored after each epoch (0 = all)."""
    max_train_pairs: int = 0
    """Cap on training pairs (0 = all)."""
    min_train_gap: float = 0.0
    """Train only on pairs whose realized abnormal-return gap (`meta.gap`) is at least this;
    validation and test pairs are never filtered. Small gaps are mostly noise: the realized
    winner is then close to a coin flip around the expected one (docs/training.md)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Device; `auto` = CUDA when available."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Compute dtype; `auto` = fp32 on CPU (bf16 is ~100x slower there), bf16 on CUDA."""
    threads: int = 0
    """Torch intra-op threads on CPU (0 = the CPUs this process may use, shared by processes)."""
    lean_memory: bool = False
    """Trade speed for peak memory on CPU under glibc malloc (`FILINGCONTRAST_ALLOCATOR=system`
    or a library caller; the CLI's default, mimalloc, is already lean and ignores it): blocks of
    4 MiB and more are mapped per allocation and returned to the OS when freed, instead of being
    kept in a heap that fragments (`runtime.lean_allocator`). bench/train_throughput.py."""
    merge: bool = False
    """Also export the merged model (`merge_and_unload`) as safetensors."""

    def __post_init__(self) -> None:
        _check(self.max_seq_len >= 64, "max_seq_len", f"must be >= 64, got {self.max_seq_len}")
        _check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _check(self.max_steps >= 0, "max_steps", "must be >= 0")
        _check(0 < self.lr < 1, "lr", f"must be in (0, 1), got {self.lr}")
        _check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
        _check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _check(self.grad_accum >= 1, "grad_accum", f"must be >= 1, got {self.grad_accum}")
        _check(self.lora_r >= 1, "lora_r", f"must be >= 1, got {self.lora_r}")
        _check(self.lora_alpha >= 1, "lora_alpha", "must be >= 1")
        _check(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
        _check(len(self.lora_targets) > 0, "lora_targets", "must name at least one module")
        _check(self.lora_layers >= 0, "lora_layers", f"must be >= 0, got {self.lora_layers}")
        _check(self.checkpointing_threshold > 0, "checkpointing_threshold", "must be > 0")
        _check(
            0 < self.decision_weight <= 1000,
            "decision_weight",
            f"must be in (0, 1000], got {self.decision_weight}",
        )
        _check(
            self.loraplus_ratio == 0 or self.loraplus_ratio >= 1,
            "loraplus_ratio",
            f"must be 0 (off) or >= 1, got {self.loraplus_ratio}",
        )
        _check(self.save_every >= 0, "save_every", "must be >= 0")
        _check(self.max_valid_pairs >= 0, "max_valid_pairs", "must be >= 0")
        _check(self.max_train_pairs >= 0, "max_train_pairs", "must be >= 0")
        _check(self.min_train_gap >= 0, "min_train_gap", "must be >= 0")
        _check(0 <= self.threads <= 1024, "threads", f"must be in [0, 1024], got {self.threads}")


@dataclass
class EvalConfig:
    """Evaluation against baselines and the ceiling (`filingcontrast evaluate`)."""

    split: Literal["valid", "test"] = "test"
    """Which split of the pairs to evaluate on (never `train`: the model learned from it; and
    the adapter's epoch choice and calibration saw some validation pairs, which metrics.json
    then notes as `in_sample`)."""
    max_pairs: int = 0
    """Cap on evaluated pairs (0 = all)."""
    bootstrap: int = 1000
    """Bootstrap resamples for confidence intervals."""
    ece_bins: int = 10
    """Bins of the reliability diagram / expected calibration error."""
    baselines: list[str] = field(
        default_factory=lambda: ["majority", "signal_rule", "tfidf_logreg", "zero_shot"]
    )
    """Baselines computed in the same run."""
    zero_shot_max_pairs: int = 0
    """Score the zero-shot baseline on the first N evaluated pairs only (0 = all of them): it
    costs as much as the model's own scoring. Its block then records its `n` and the fine-tuned
    model's accuracy on those same pairs (`fine_tuned_same_pairs`)."""
    rank_k: int = 4
    """Each test filing is compared with k others for the Bradley-Terry ranking."""
    batch_size: int = 8
    """Rows per scoring forward pass."""

    def __post_init__(self) -> None:
        _check(self.max_pairs >= 0, "max_pairs", "must be >= 0")
        _check(self.bootstrap >= 0, "bootstrap", "must be >= 0")
        _check(self.ece_bins >= 2, "ece_bins", "must be >= 2")
        known = {"majority", "signal_rule", "tfidf_logreg", "zero_shot"}
        unknown = sorted(set(self.baselines) - known)
        _check(not unknown, "baselines", f"unknown baseline(s) {unknown}; known: {sorted(known)}")
        _check(self.rank_k >= 1, "rank_k", "must be >= 1")
        _check(self.zero_shot_max_pairs >= 0, "zero_shot_max_pairs", "must be >= 0")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")


@dataclass
class RunConfig:
    """One run of the pipeline: what `filingcontrast demo` and the stage commands read."""

    name: str = "demo"
    """Run name: artifacts go to `<runs_dir>/<name>/`."""
    seed: int = 0
    """The one seed every stage derives its randomness from."""
    base: str = "smollm2-135m-instruct"
    """Base model spec: `smollm2-135m-instruct` (embedded), `tiny-llama` (tests), a local HF
    checkpoint directory, or a hub id."""
    store: str = "data/filingcontrast.duckdb"
    """Corpus store (DuckDB file)."""
    runs_dir: str = "runs"
    """Directory that holds run directories."""
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        _check(
            bool(self.name)
            and "/" not in self.name
            and "\\" not in self.name
            and not self.name.startswith(".")
            and self.name == self.name.strip()
            and self.name.isprintable(),
            "name",
            f"must be a plain directory name (printable, no slashes, no leading dot or "
            f"surrounding spaces), got {self.name!r}",
        )
        _check(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        _check(bool(self.base), "base", "must not be empty")
        _check(bool(self.store.strip()), "store", "must not be empty")
        _check(bool(self.runs_dir.strip()), "runs_dir", "must not be empty")

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def stage_seed(self, stage_seed: int) -> int:
        """A stage's own seed, or the run's seed when the stage says -1."""
        return self.seed if stage_seed < 0 else stage_seed


# ---------------------------------------------------------------------------------------------
# Generic machinery: dict <-> dataclass with key paths in every error.


def _is_iso_date(text: str) -> bool:
    import datetime as dt

    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        _check(value in choices, key, f"must be one of {list(choices)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in typing.get_args(tp):
            if arm is type(None) and value is None:
                return None
            try:
                return _coerce(value, arm, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        hint = (
            ' (quote strings in a TOML list: ["q_proj", "v_proj"])' if str(value)[:1] == "[" else ""
        )
        _check(isinstance(value, list), key, f"expected a list, got {value!r}{hint}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        _check(isinstance(value, dict), key, f"expected a table, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        _check(isinstance(value, bool), key, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        _check(
            isinstance(value, int) and not isinstance(value, bool),
            key,
            f"expected an integer, got {value!r}",
        )
        _check(-(2**63) <= value < 2**63, key, f"must fit in 64 bits, got {value!r}")
        return value
    if tp is float:
        _check(
            isinstance(value, (int, float)) and not isinstance(value, bool),
            key,
            f"expected a number, got {value!r}",
        )
        _check(
            abs(value) < 1e308 and math.isfinite(value),
            key,
            f"must be a finite number, got {value!r}",
        )
        return float(value)
    if tp is str:
        if isinstance(value, datetime.date):  # TOML reads a bare 2021-01-04 as a date
            value = value.isoformat()
        # TOML reads a bare 1_3 as the number 13: say how to write the string
        hint = (
            " (TOML reads an unquoted 1_3 as the number 13: quote strings)"
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else ""
        )
        _check(isinstance(value, str), key, f"expected a string, got {value!r}{hint}")
        _check("\x00" not in value, key, f"must not contain a NUL character, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from `data`; unknown keys and bad values raise `ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if prefix and not str(exc).startswith(prefix):
            raise ConfigError(f"{prefix}{exc}") from None
        raise


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def parse_override_value(text: str) -> Any:
    """TOML scalar/array syntax (`1e-4`, `true`, `[1, 2]`, `"x"`); anything else is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides to a nested dict (in place) and return it."""
    for item in overrides:
        dotted, eq, raw = item.partition("=")
        parts = dotted.strip().split(".")
        if not eq or not all(p.strip() for p in parts):
            raise ConfigError(f"{item}: override must look like key.sub=value")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"{where}: expected a table, got {child!r}")
            node = child
        node[parts[-1]] = parse_override_value(raw.strip())
    return data


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, cls: type = RunConfig
) -> Any:
    """Read a TOML config (or defaults), apply dotted overrides, validate, return the dataclass."""
    file_data = read_toml(path) if path else {}
    data = copy.deepcopy(file_data)
    try:
        apply_overrides(data, overrides or [])
        return from_dict(cls, data)
    except ConfigError as exc:
        # Name the file only when the bad key is in it, not set by a command-line override.
        if path and not _from_override(str(exc), overrides or [], file_data):
            raise ConfigError(f"{path}: {exc}") from None
        raise


def _from_override(message: str, overrides: list[str], file_data: dict[str, Any]) -> bool:
    """Whether the key a ConfigError message starts with (`train.lr: ...`) was set by one of
    `overrides` (or is inside a value one set, or above one and absent from the file)."""
    key = message.split(": ", 1)[0].split("[", 1)[0]
    node: Any = file_data
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    for item in overrides:
        set_key = item.partition("=")[0].strip()
        if key == set_key or key.startswith(f"{set_key}."):
            return True
        if set_key.startswith(f"{key}.") and node is None:
            return True
    return False


def dump_toml(cfg: Any) -> str:
    """The resolved config as TOML (what every run writes to `config.toml`)."""
    return tomli_w.dumps(to_dict(cfg))
