from pathlib import Path

import pytest

from filingcontrast.config import (
    RunConfig,
    TrainConfig,
    apply_overrides,
    dump_toml,
    load_config,
)
from filingcontrast.errors import ConfigError

_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    [
        *(_ROOT / "configs").glob("*.toml"),
        *(_ROOT / "src" / "filingcontrast" / "configs").glob("*.toml"),
    ]
)


def test_defaults_validate():
    cfg = RunConfig()
    assert cfg.train.epochs == 3 and cfg.train.lr == 2e-4
    assert cfg.train.lora_r == 16 and cfg.train.lora_alpha == 32


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)


def test_shipped_configs_exist():
    assert CONFIGS, "configs/*.toml should ship at least the demo configs"


def test_dotted_overrides_parse_toml_values():
    cfg = load_config(
        None,
        [
            "train.lr=1e-4",
            'train.lora_targets=["q_proj","v_proj"]',
            "pairs.same_item=true",
            "name=x",
        ],
    )
    assert cfg.train.lr == 1e-4
    assert cfg.train.lora_targets == ["q_proj", "v_proj"]
    assert cfg.pairs.same_item is True
    assert cfg.name == "x"


def test_unknown_key_names_the_key(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"train\.learning_rate: unknown key"):
        load_config(path)


@pytest.mark.parametrize(
    "override, match",
    [
        ('train.epochs="three"', r"train\.epochs: expected an integer"),
        ("train.lr=5", r"train\.lr: must be in \(0, 1\)"),
        ('train.template="alpaca"', r"train\.template: must be one of"),
        ('pairs.window="1-0"', r"pairs\.window"),
        ("pairs.embargo_days=0", r"pairs\.embargo_days"),
        ("seed=-3", r"seed: must be >= 0"),
        ("train=3", r"train: expected a table"),
        (
            "pairs.digest_tokens=20",
            r"pairs\.digest_tokens: must be 0 \(split max_tokens\) or >= 64",
        ),
        ("train.lora_layers=-1", r"train\.lora_layers: must be >= 0"),
    ],
)
def test_bad_values_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["train.lr=3e-4", "simulate.filings=77"])
    path = tmp_path / "config.toml"
    path.write_text(dump_toml(cfg))
    assert load_config(path) == cfg


def test_int_accepted_for_float_but_bool_is_not():
    assert TrainConfig(lr=1e-3).lr == 1e-3
    assert load_config(None, ["train.weight_decay=0"]).train.weight_decay == 0.0
    with pytest.raises(ConfigError):
        load_config(None, ["train.lr=true"])


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides({}, ["train.lr"])


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(path)
