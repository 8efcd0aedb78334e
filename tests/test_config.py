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


# ---------------------------------------------------------------------------------------------
# Validation bounds: the edge value a user may set is accepted, the first value past it is a
# one-line ConfigError that starts with the dotted key.


@pytest.mark.parametrize(
    "override, match",
    [
        ("simulate.filings=0", r"simulate\.filings: must be > 0"),
        ("simulate.noise_df=2", r"simulate\.noise_df: must be 0 \(preset default\) or > 2"),
        ("simulate.noise_df=1", r"simulate\.noise_df: must be 0"),
        ("simulate.companies=1", r"simulate\.companies: must be in 2\.\.5000"),
        ("simulate.noise_scale=-0.01", r"simulate\.noise_scale: must be in \[0, 0\.5\]"),
        ("simulate.effect_scale=0", r"simulate\.effect_scale: must be in \(0, 10\]"),
        ("simulate.start=2021-13-01", r"simulate\.start: must be an ISO date"),
        ('simulate.start="yesterday"', r"simulate\.start: must be an ISO date"),
        ("simulate.seed=-2", r"simulate\.seed: must be >= 0, or -1"),
        ("pairs.seed=-2", r"pairs\.seed: must be >= 0, or -1"),
        ('pairs.window="2_1"', r"pairs\.window: must look like 0_1"),
        ('pairs.window="a_1"', r"pairs\.window: must look like 0_1"),
        ('pairs.window="-1_1"', r"pairs\.window: must look like 0_1"),
        ('pairs.window="0_1_2"', r"pairs\.window: must look like 0_1"),
        ("pairs.max_days_apart=-1", r"pairs\.max_days_apart: must be >= 0"),
        ("pairs.min_gap=-0.001", r"pairs\.min_gap: must be >= 0"),
        ("pairs.max_pairs_per_filing=0", r"pairs\.max_pairs_per_filing: must be >= 1"),
        ("pairs.valid_frac=0", r"pairs\.valid_frac: must be in \(0, 1\)"),
        ("pairs.test_frac=1", r"pairs\.test_frac: must be in \(0, 1\)"),
        ("pairs.holdout_companies=1", r"pairs\.holdout_companies: must be in \[0, 1\)"),
        ("pairs.holdout_companies=-0.1", r"pairs\.holdout_companies: must be in \[0, 1\)"),
        ("pairs.max_tokens=255", r"pairs\.max_tokens: must be >= 256"),
        ("pairs.digest_tokens=63", r"pairs\.digest_tokens: must be 0"),
        ("pairs.max_pairs=-1", r"pairs\.max_pairs: must be >= 0"),
        ("train.max_seq_len=63", r"train\.max_seq_len: must be >= 64"),
        ("train.max_steps=-1", r"train\.max_steps: must be >= 0"),
        ("train.lr=0", r"train\.lr: must be in \(0, 1\)"),
        ("train.lr=1", r"train\.lr: must be in \(0, 1\)"),
        ("train.lr=nan", r"train\.lr: must be a finite number"),
        ("train.weight_decay=-0.1", r"train\.weight_decay: must be >= 0"),
        ("train.warmup_ratio=1", r"train\.warmup_ratio: must be in \[0, 1\)"),
        ("train.warmup_ratio=-0.1", r"train\.warmup_ratio: must be in \[0, 1\)"),
        ("train.batch_size=0", r"train\.batch_size: must be >= 1"),
        ("train.grad_accum=0", r"train\.grad_accum: must be >= 1"),
        ("train.lora_r=0", r"train\.lora_r: must be >= 1"),
        ("train.lora_alpha=0", r"train\.lora_alpha: must be >= 1"),
        ("train.lora_dropout=1", r"train\.lora_dropout: must be in \[0, 1\)"),
        ("train.lora_targets=[]", r"train\.lora_targets: must name at least one module"),
        ("train.checkpointing_threshold=0", r"train\.checkpointing_threshold: must be > 0"),
        ("train.decision_weight=0", r"train\.decision_weight: must be in \(0, 1000\]"),
        ("train.loraplus_ratio=0.5", r"train\.loraplus_ratio: must be 0 \(off\) or >= 1"),
        ("train.save_every=-1", r"train\.save_every: must be >= 0"),
        ("train.max_valid_pairs=-1", r"train\.max_valid_pairs: must be >= 0"),
        ("train.max_train_pairs=-1", r"train\.max_train_pairs: must be >= 0"),
        ("train.min_train_gap=-0.01", r"train\.min_train_gap: must be >= 0"),
        ("train.threads=-1", r"train\.threads: must be in \[0, 1024\]"),
        ("evaluate.max_pairs=-1", r"evaluate\.max_pairs: must be >= 0"),
        ("evaluate.bootstrap=-1", r"evaluate\.bootstrap: must be >= 0"),
        ("evaluate.ece_bins=1", r"evaluate\.ece_bins: must be >= 2"),
        ('evaluate.baselines=["gpt4"]', r"evaluate\.baselines: unknown baseline\(s\) \['gpt4'\]"),
        ("evaluate.rank_k=0", r"evaluate\.rank_k: must be >= 1"),
        ("evaluate.zero_shot_max_pairs=-1", r"evaluate\.zero_shot_max_pairs: must be >= 0"),
        ("evaluate.batch_size=0", r"evaluate\.batch_size: must be >= 1"),
        ('name="a/b"', r"name: must be a plain directory name"),
        ('name="a\\\\b"', r"name: must be a plain directory name"),
        ('name=".hidden"', r"name: must be a plain directory name"),
        ('name=".."', r"name: must be a plain directory name"),
        ('name=""', r"name: must be a plain directory name"),
        ('name="a\\tb"', r"name: must be a plain directory name"),
        ('base=""', r"base: must not be empty"),
        ('store="  "', r"store: must not be empty"),
        ('runs_dir=" "', r"runs_dir: must not be empty"),
        # types
        ("train.merge=1", r"train\.merge: expected true/false, got 1"),
        ('train.merge="yes"', r"train\.merge: expected true/false"),
        ("train.epochs=true", r"train\.epochs: expected an integer, got True"),
        ("train.epochs=2.5", r"train\.epochs: expected an integer, got 2\.5"),
        ("seed=9223372036854775808", r"seed: must fit in 64 bits"),
        ("train.lora_targets=q_proj", r"train\.lora_targets: expected a list, got 'q_proj'"),
        ("evaluate.baselines=[1]", r"evaluate\.baselines\[0\]: expected a string, got 1"),
        ('train.lora_targets=["q_proj", 2]', r"train\.lora_targets\[1\]: expected a string"),
        ("name=13", r"name: expected a string, got 13 \(TOML reads an unquoted 1_3"),
        ("simulate.x=1", r"simulate\.x: unknown key \(known: companies, effect_scale,"),
        ("nosuch=1", r"nosuch: unknown key \(known: base, evaluate, name,"),
    ],
)
def test_each_bound_rejects_the_first_bad_value_naming_the_key(override, match):
    with pytest.raises(ConfigError, match="^" + match) as err:
        load_config(None, [override])
    assert "\n" not in str(err.value)  # the CLI prints it as one line


def test_frac_sum_and_embargo_against_the_window():
    with pytest.raises(
        ConfigError, match=r"^pairs\.test_frac: valid_frac \+ test_frac must be < 1"
    ):
        load_config(None, ["pairs.valid_frac=0.5", "pairs.test_frac=0.5"])
    with pytest.raises(
        ConfigError, match=r"^pairs\.embargo_days: must be >= the window's end \(3\)"
    ):
        load_config(None, ['pairs.window="1_3"', "pairs.embargo_days=2"])
    cfg = load_config(None, ["pairs.valid_frac=0.49", "pairs.test_frac=0.5"])
    assert (cfg.pairs.valid_frac, cfg.pairs.test_frac) == (0.49, 0.5)


@pytest.mark.parametrize(
    "override, key, value",
    [
        ("simulate.filings=1", "simulate.filings", 1),
        ("simulate.noise_df=0", "simulate.noise_df", 0.0),
        ("simulate.noise_df=2.01", "simulate.noise_df", 2.01),
        ("simulate.companies=2", "simulate.companies", 2),
        ("simulate.companies=5000", "simulate.companies", 5000),
        ("simulate.noise_scale=0", "simulate.noise_scale", 0.0),
        ("simulate.noise_scale=0.5", "simulate.noise_scale", 0.5),
        ("simulate.effect_scale=10", "simulate.effect_scale", 10.0),
        ("simulate.seed=-1", "simulate.seed", -1),
        ("simulate.seed=0", "simulate.seed", 0),
        ("simulate.start=2021-02-01", "simulate.start", "2021-02-01"),  # TOML date -> string
        ('pairs.window="0_0"', "pairs.window", "0_0"),
        ('pairs.window="2_5"', "pairs.window", "2_5"),
        ("pairs.max_days_apart=0", "pairs.max_days_apart", 0),
        ("pairs.min_gap=0", "pairs.min_gap", 0.0),
        ("pairs.max_pairs_per_filing=1", "pairs.max_pairs_per_filing", 1),
        ("pairs.embargo_days=1", "pairs.embargo_days", 1),  # == the default window's end
        ("pairs.holdout_companies=0", "pairs.holdout_companies", 0.0),
        ("pairs.holdout_companies=0.99", "pairs.holdout_companies", 0.99),
        ("pairs.max_tokens=256", "pairs.max_tokens", 256),
        ("pairs.digest_tokens=64", "pairs.digest_tokens", 64),
        ("pairs.digest_tokens=0", "pairs.digest_tokens", 0),
        ("pairs.max_pairs=0", "pairs.max_pairs", 0),
        ("train.max_seq_len=64", "train.max_seq_len", 64),
        ("train.warmup_ratio=0", "train.warmup_ratio", 0.0),
        ("train.lora_dropout=0", "train.lora_dropout", 0.0),
        ("train.loraplus_ratio=0", "train.loraplus_ratio", 0.0),
        ("train.loraplus_ratio=1", "train.loraplus_ratio", 1.0),
        ("train.decision_weight=1000", "train.decision_weight", 1000.0),
        ("train.threads=0", "train.threads", 0),
        ("train.threads=1024", "train.threads", 1024),
        ("train.checkpointing_threshold=1", "train.checkpointing_threshold", 1),
        ("evaluate.ece_bins=2", "evaluate.ece_bins", 2),
        ("evaluate.rank_k=1", "evaluate.rank_k", 1),
        ("evaluate.baselines=[]", "evaluate.baselines", []),
        ("seed=9223372036854775807", "seed", 2**63 - 1),
        ('name="run 2"', "name", "run 2"),
    ],
)
def test_each_bound_accepts_its_edge_value(override, key, value):
    cfg = load_config(None, [override])
    got = cfg
    for part in key.split("."):
        got = getattr(got, part)
    assert got == value and type(got) is type(value)


def test_stage_seed_minus_one_means_the_runs_seed_and_zero_is_a_seed():
    cfg = load_config(None, ["seed=7", "simulate.seed=0", "pairs.seed=-1"])
    assert cfg.stage_seed(cfg.simulate.seed) == 0
    assert cfg.stage_seed(cfg.pairs.seed) == 7
    assert cfg.stage_seed(3) == 3


def test_override_splits_at_the_first_equals_and_strips_spaces():
    cfg = load_config(None, ["train.system_prompt=a=b", " train.epochs = 2 ", "name= x "])
    assert cfg.train.system_prompt == "a=b"
    assert cfg.train.epochs == 2
    assert cfg.name == "x"
    # ints given for floats are stored as floats (config.toml then reads `0.0`, not `0`)
    cfg = load_config(None, ["train.weight_decay=0"])
    assert isinstance(cfg.train.weight_decay, float)
    assert "weight_decay = 0.0\n" in dump_toml(cfg)


def test_errors_from_overrides_do_not_name_the_file(tmp_path):
    """An error in what an override set (or inside it, or a key the override created above it)
    is the command line's, not the file's."""
    good = tmp_path / "good.toml"
    good.write_text("[train]\nepochs = 2\n")
    cases = [
        ("train.lora_targets=[1]", r"^train\.lora_targets\[0\]: expected a string, got 1 "),
        ("train={lr=5}", r"^train\.lr: must be in \(0, 1\)"),
        ("simulate.x.y=1", r"^simulate\.x: unknown key"),
        ("train.lora_targets.x=1", r"^train\.lora_targets: expected a list"),
    ]
    for override, match in cases:
        with pytest.raises(ConfigError, match=match):
            load_config(good, [override])
    # ... while a bad key in the file names the file, even with unrelated overrides
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nlora_targets = ["q", 1]\n')
    with pytest.raises(
        ConfigError, match=r"bad\.toml: train\.lora_targets\[1\]: expected a string"
    ):
        load_config(bad, ["train.epochs=2"])


def test_loading_does_not_mutate_or_lose_the_file_values(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('name = "f"\n[train]\nepochs = 5\nlr = 1e-3\n')
    cfg = load_config(path, ["train.lr=3e-4"])
    assert (cfg.name, cfg.train.epochs, cfg.train.lr) == ("f", 5, 3e-4)
    assert load_config(path).train.lr == 1e-3


def test_window_with_a_non_ascii_digit_is_a_config_error():
    """Regression: str.isdigit accepts '²', which int() then rejected with a traceback."""
    with pytest.raises(ConfigError, match=r"^pairs\.window: must look like 0_1"):
        load_config(None, ['pairs.window="²_3"'])


def test_window_is_stored_under_its_event_name():
    """ "00_01" is the window 0_1; kept as given it matched no stored event."""
    assert load_config(None, ['pairs.window="00_01"']).pairs.window == "0_1"
