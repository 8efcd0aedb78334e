import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from filingcontrast.errors import UserError
from filingcontrast.model import (
    CACHE_FORMAT,
    EMBEDDED_SPEC,
    GGUF_FILE,
    MANIFEST,
    _write_manifest,
    cache_root,
    embedded_path,
    load_base,
    resolve_device,
    resolve_dtype,
    tiny_llama,
    verify_cache,
)


def test_tiny_llama_is_deterministic_from_seed(tokenizer):
    a, b, c = (
        tiny_llama(tokenizer, seed=1),
        tiny_llama(tokenizer, seed=1),
        tiny_llama(tokenizer, seed=2),
    )
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)
    assert a.config.num_hidden_layers == 2 and a.config.hidden_size == 64
    assert a.config.vocab_size == len(tokenizer)


def test_tiny_llama_does_not_disturb_global_rng(tokenizer):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    tiny_llama(tokenizer, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_load_base_tiny_runs_forward(tiny_model_and_tokenizer):
    model, tok = tiny_model_and_tokenizer
    ids = torch.tensor([tok.encode("Filing A resulted in better performance.")])
    out = model(input_ids=ids)
    assert out.logits.shape == (1, ids.shape[1], len(tok))
    assert next(model.parameters()).dtype == torch.float32


def test_embedded_tokenizer_has_chat_template_and_pad(tokenizer):
    assert tokenizer.chat_template
    assert tokenizer.pad_token_id is not None
    assert tokenizer.encode(" A", add_special_tokens=False) != tokenizer.encode(
        " B", add_special_tokens=False
    )


def test_cache_without_manifest_is_not_trusted(tmp_path):
    target = tmp_path / "models" / "x"
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"partial")
    assert not verify_cache(target)


def test_cache_with_wrong_size_is_not_trusted():
    path = embedded_path()
    assert verify_cache(path)
    manifest = json.loads((path / MANIFEST).read_text())
    some_file = next(iter(manifest["files"]))
    assert manifest["files"][some_file]["size"] == (path / some_file).stat().st_size


def test_second_load_in_new_process_uses_the_cache():
    """A new process loads the cached fp32 weights and never dequantizes the GGUF again (the
    ~17 s the cache exists to save; speed itself is for bench/, not a timed test)."""
    embedded_path()  # make sure the cache exists (first build takes ~17 s)
    code = (
        "import filingcontrast.model as m\n"
        "def refuse(target): raise SystemExit('rebuilt the cache')\n"
        "m._build_embedded_cache = refuse\n"
        "model, tok = m.load_base('smollm2-135m-instruct', device='cpu')\n"
        "print(sum(p.numel() for p in model.parameters()), tok.eos_token)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    n_params, eos = out.stdout.split()
    assert int(n_params) > 100_000_000 and eos == "<|im_end|>"


def test_hub_id_offline_fails_in_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.time()
    with pytest.raises(UserError, match="unreachable") as info:
        load_base("someorg/somemodel", device="cpu")
    assert "\n" not in str(info.value)
    assert time.time() - start < 5


def test_hub_id_offline_uses_the_local_hf_cache(monkeypatch, tmp_path):
    """A hub id downloaded earlier resolves to its cached snapshot when offline."""
    from filingcontrast.model import _resolve_checkpoint

    repo = tmp_path / "models--someorg--cached"
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    assert Path(_resolve_checkpoint("someorg/cached")) == snap


def test_missing_local_dir_and_unknown_spec(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_base(str(tmp_path / "nope"), device="cpu")
    with pytest.raises(UserError, match="unknown model spec"):
        load_base("gpt-nonsense", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        load_base(str(tmp_path / "empty"), device="cpu")


def test_checkpoint_dir_that_does_not_load_is_a_one_line_error(tokenizer, tmp_path):
    """Regression: a directory with a config.json but no tokenizer, an unknown architecture or
    a broken weights file raised ValueError / SafetensorError tracebacks from transformers."""
    from filingcontrast.model import load_base, tiny_llama

    config = tiny_llama(tokenizer).config
    no_tokenizer = tmp_path / "no-tokenizer"
    config.save_pretrained(no_tokenizer)
    with pytest.raises(UserError, match="cannot load its tokenizer") as info:
        load_base(str(no_tokenizer), device="cpu")
    assert "\n" not in str(info.value)
    broken = tmp_path / "broken"
    config.save_pretrained(broken)
    tokenizer.save_pretrained(broken)
    (broken / "model.safetensors").write_text("garbage")
    with pytest.raises(UserError, match=r"base='.*broken': cannot load: "):
        load_base(str(broken), device="cpu")
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(UserError, match="cannot load"):
        load_base(str(broken), device="cpu")


def test_resolve_dtype_fp32_on_cpu_bf16_on_any_cuda_device():
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    assert resolve_dtype("auto", "cuda:1") is torch.bfloat16
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16
    assert resolve_dtype("float32", "cuda") is torch.float32


def test_resolve_device_auto_and_missing_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(UserError, match="no CUDA device"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FILINGCONTRAST_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "filingcontrast"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "filingcontrast"
    monkeypatch.setenv("FILINGCONTRAST_CACHE", str(tmp_path / "fc"))
    assert cache_root() == tmp_path / "fc"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"


def _fake_cache(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"weights-v1" * 10)
    (directory / "tokenizer.json").write_text("{}")
    source = directory.parent / "pkg" / "file.gguf"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(b"gguf")
    _write_manifest(directory, source)


def test_verify_cache_checks_each_file_size_and_with_full_its_hash(tmp_path):
    cache = tmp_path / "c"
    _fake_cache(cache)
    assert verify_cache(cache) and verify_cache(cache, full=True)
    weights = cache / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-1])  # truncated by a killed copy
    assert not verify_cache(cache)
    weights.write_bytes(original[:-1] + b"X")  # same size, other bytes: only the hash sees it
    assert verify_cache(cache)
    assert not verify_cache(cache, full=True)
    weights.write_bytes(original)
    (cache / "tokenizer.json").unlink()
    assert not verify_cache(cache)


def test_verify_cache_rejects_another_format_and_an_empty_manifest(tmp_path):
    cache = tmp_path / "c"
    _fake_cache(cache)
    manifest = json.loads((cache / MANIFEST).read_text())
    (cache / MANIFEST).write_text(json.dumps({**manifest, "format": CACHE_FORMAT - 1}))
    assert not verify_cache(cache)
    (cache / MANIFEST).write_text(json.dumps({**manifest, "files": {}}))
    assert not verify_cache(cache)


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path, tokenizer):
    """The embedded-model build with transformers' GGUF dequantization replaced by a small
    random Llama (honouring the requested dtype, as transformers does); counts the builds."""
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    src = tmp_path / "pkg"
    src.mkdir()
    (src / GGUF_FILE).write_bytes(b"gguf release 1")
    monkeypatch.setattr("filingcontrast.model._gguf_dir", lambda: src)
    state = SimpleNamespace(src=src, builds=0, fail=False)

    def fake_model(path, gguf_file=None, dtype=None, **kwargs):
        assert Path(path) == src and gguf_file == GGUF_FILE
        state.builds += 1
        if state.fail:
            raise RuntimeError("dequantize failed")
        config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
        return LlamaForCausalLM(config).to(dtype or torch.float32)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer)
    return state


def test_embedded_cache_is_built_once_in_fp32_then_reused(fake_gguf, tmp_path):
    from safetensors import safe_open

    target = embedded_path(tmp_path / "cache")
    assert target == tmp_path / "cache" / "models" / EMBEDDED_SPEC
    assert fake_gguf.builds == 1
    assert verify_cache(target, full=True)
    with safe_open(target / "model.safetensors", "pt") as fh:
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()} == {"F32"}
    assert embedded_path(tmp_path / "cache") == target
    assert fake_gguf.builds == 1
    assert [p.name for p in target.parent.iterdir()] == [EMBEDDED_SPEC]  # no temp dir left


def test_partial_or_old_format_cache_is_rebuilt(fake_gguf, tmp_path):
    target = tmp_path / "models" / EMBEDDED_SPEC
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"partial")  # a killed first build
    assert embedded_path(tmp_path) == target
    assert fake_gguf.builds == 1
    assert verify_cache(target, full=True)
    assert (target / "model.safetensors").stat().st_size > 1000
    manifest = json.loads((target / MANIFEST).read_text())
    (target / MANIFEST).write_text(json.dumps({**manifest, "format": CACHE_FORMAT - 1}))
    embedded_path(tmp_path)
    assert fake_gguf.builds == 2
    assert json.loads((target / MANIFEST).read_text())["format"] == CACHE_FORMAT
    assert [p.name for p in target.parent.iterdir()] == [EMBEDDED_SPEC]


def test_failed_build_leaves_neither_cache_nor_temp_dir(fake_gguf, tmp_path):
    fake_gguf.fail = True
    with pytest.raises(RuntimeError, match="dequantize failed"):
        embedded_path(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


def test_changed_gguf_file_rebuilds_the_cache(fake_gguf, tmp_path):
    embedded_path(tmp_path)
    (fake_gguf.src / GGUF_FILE).write_bytes(b"gguf release 2, other weights")
    embedded_path(tmp_path)
    assert fake_gguf.builds == 2


def test_load_base_tiny_honours_dtype_and_returns_eval_mode():
    model, _ = load_base("tiny-llama", device="cpu", dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not model.training


def test_local_checkpoint_gets_a_pad_token_and_keeps_progress_bar_setting(tokenizer, tmp_path):
    import copy

    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    ckpt = tmp_path / "ckpt"
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(ckpt)
    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    no_pad.save_pretrained(ckpt)
    assert AutoTokenizer.from_pretrained(ckpt).pad_token_id is None
    was_on = hf_logging.is_progress_bar_enabled()
    try:
        hf_logging.enable_progress_bar()
        model, tok = load_base(str(ckpt), device="cpu")
        assert tok.pad_token_id == tok.eos_token_id is not None
        assert not model.training
        assert next(model.parameters()).dtype == torch.float32
        assert hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        load_base(str(ckpt), device="cpu")
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()


def test_a_file_or_a_deep_path_is_not_a_base_model(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(UserError, match="a file, not a base model directory"):
        load_base(str(weights), device="cpu")
    with pytest.raises(UserError, match="unknown model spec"):
        load_base("org/name/extra", device="cpu")


def test_offline_setting_never_touches_the_network(monkeypatch):
    import socket

    from filingcontrast.model import _hub_reachable

    def no_network(*args, **kwargs):
        raise AssertionError("tried to connect while HF_HUB_OFFLINE is set")

    monkeypatch.setattr(socket, "create_connection", no_network)
    for value in ("1", "true", "True"):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert _hub_reachable() is False


def test_load_base_tiny_follows_seed():
    first = next(load_base("tiny-llama", device="cpu", seed=1)[0].parameters())
    again = next(load_base("tiny-llama", device="cpu", seed=1)[0].parameters())
    other = next(load_base("tiny-llama", device="cpu", seed=2)[0].parameters())
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_tokenizer_uses_the_given_cache_dir(fake_gguf, tmp_path):
    from filingcontrast.model import load_tokenizer

    load_tokenizer("tiny-llama", cache_dir=tmp_path / "mine")
    assert fake_gguf.builds == 1
    assert verify_cache(tmp_path / "mine" / "models" / EMBEDDED_SPEC, full=True)
