import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from filingcontrast.errors import UserError
from filingcontrast.model import (
    MANIFEST,
    embedded_path,
    load_base,
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


def test_second_load_in_new_process_is_fast():
    embedded_path()  # make sure the cache exists (first build takes ~17 s)
    # The libraries' own import time (~2 s for torch + transformers here) is paid by any program
    # that uses a model; what the cache must make fast is the load itself (~17 s without it).
    code = (
        "import time, torch, transformers.models.llama.modeling_llama; "
        "from transformers import AutoTokenizer; "
        "from filingcontrast.model import load_base; t=time.time(); "
        "load_base('smollm2-135m-instruct', device='cpu'); print(time.time()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = float(out.stdout.strip().splitlines()[-1])
    assert seconds < 3.0, f"cached load took {seconds:.1f}s"


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
