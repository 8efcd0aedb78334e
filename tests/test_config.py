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
        # regressions: inf trained to a NaN adapter, 1e300 / huge ints / threads crashed in torch
        ("train.decision_weight=inf", r"train\.decision_weight: must be a finite number"),
        ("train.decision_weight=1e300", r"train\.decision_weight: must be in \(0, 1000\]"),
        ("train.lr=" + "1" * 400, r"train\.lr: must be a finite number"),
        ("seed=99999999999999999999", r"seed: must fit in 64 bits"),
        ("train.threads=100000", r"train\.threads: must be in \[0, 1024\]"),
        ("=3", r"=3: override must look like key\.sub=value"),
        ("train.=3", r"override must look like key\.sub=value"),
        ("train..lr=3", r"override must look like key\.sub=value"),
        ("train.lora_targets=[q_proj]", r"quote strings in a TOML list"),
        # regression: a newline or surrounding spaces made run directories like runs/"a\nb"
        ('name="a\\nb"', r"name: must be a plain directory name"),
        ('name=" a"', r"name: must be a plain directory name"),
        ('name="..\\\\x"', r"name: must be a plain directory name"),
        # regressions: 1e300 stored inf prices; 200,000 companies ran for minutes
        ("simulate.effect_scale=1e300", r"simulate\.effect_scale: must be in \(0, 10\]"),
        ("simulate.noise_scale=1e300", r"simulate\.noise_scale: must be in \[0, 0\.5\]"),
        ("simulate.companies=200000", r"simulate\.companies: must be in 2\.\.5000"),
        ('runs_dir="r\\u0000x"', r"runs_dir: must not contain a NUL character"),
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


def test_config_file_problems_name_the_file_and_overrides_do_not(tmp_path):
    """Regressions: a non-UTF-8 file or a directory gave a traceback / an exit-1 OSError; a
    file's `train = 5` under a `train.x=` override gave "train.threads: train is not a table"
    without the file; an override's bad value was reported as being in the file."""
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[train]\n")
    with pytest.raises(ConfigError, match=r"bin\.toml: invalid TOML: not UTF-8"):
        load_config(binary)
    with pytest.raises(ConfigError, match=r": cannot read config"):
        load_config(tmp_path)
    scalar = tmp_path / "scalar.toml"
    scalar.write_text("train = 5\n")
    with pytest.raises(ConfigError, match=r"^.*scalar\.toml: train: expected a table, got 5$"):
        load_config(scalar, ["train.threads=1"])
    good = tmp_path / "good.toml"
    good.write_text("[train]\nepochs = 0\n")
    with pytest.raises(ConfigError, match=r"good\.toml: train\.epochs: must be >= 1"):
        load_config(good)
    assert load_config(good, ["train.epochs=2"]).train.epochs == 2  # the override fixes it
    with pytest.raises(ConfigError, match=r"^train\.lr: must be in \(0, 1\)"):
        load_config(good, ["train.epochs=2", "train.lr=5"])
