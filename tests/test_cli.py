import subprocess
import sys

from filingcontrast import __version__
from filingcontrast.cli import build_parser, main

COMMANDS = [
    "simulate",
    "ingest",
    "events",
    "corpus",
    "parse",
    "pairs",
    "train",
    "compare",
    "rank",
    "evaluate",
    "report",
    "demo",
]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "filingcontrast", *args], capture_output=True, text=True
    )


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and __version__ in out.stdout


def test_every_stage_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)
    for name in COMMANDS:
        assert sub.choices[name].format_help()


def test_typo_config_key_exits_2_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[train]\nepochz = 3\n")
    rc = main(["train", "--pairs", str(tmp_path), "--config", str(cfg)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "train.epochz" in err


def test_bad_override_exits_2(capsys):
    rc = main(["simulate", "train.lr=7"])
    assert rc == 2 and "train.lr" in capsys.readouterr().err


def test_unwritable_store_path_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    rc = main(["simulate", "--filings", "5", "--store", str(blocker / "x.duckdb")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0 and "file.txt" in err


def test_cli_paths_survive_toml_quoting():
    """Paths become dotted TOML overrides: backslashes and quotes must not be mangled."""
    from filingcontrast.cli import _toml_str
    from filingcontrast.config import load_config

    path = 'C:\\data\\x "y".duckdb'
    assert load_config(None, ["store=" + _toml_str(path)]).store == path
