import os
import subprocess
import sys

import pytest

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


def test_model_command_with_unknown_allocator_is_one_line(tmp_path):
    """A model command started as a process restarts itself with the allocator asked for
    (runtime.reexec_with_allocator); a value it does not know is a user error."""
    out = subprocess.run(
        [sys.executable, "-m", "filingcontrast", "train", "--pairs", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "FILINGCONTRAST_ALLOCATOR": "jemalloc"},
    )
    err = out.stderr.strip()
    assert out.returncode == 1 and err.count("\n") == 0
    assert "FILINGCONTRAST_ALLOCATOR='jemalloc': expected one of mimalloc, system" in err


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


def test_flag_and_conflicting_override_is_an_error(tmp_path, capsys):
    # Regression: `train --out runs/a name=b` trained into runs/b.
    rc = main(["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "a"), "name=b"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "name=b: conflicts with a flag" in err and err.count("\n") == 0
    # The same value twice is not a conflict (the missing pairs are the next error).
    rc = main(["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "a"), "name=a"])
    assert rc == 1 and "train.jsonl: training pairs not found" in capsys.readouterr().err


def test_one_key_set_twice_to_different_values_is_an_error(tmp_path, capsys):
    # Regression: `train.lr=1e-3 train.lr=2e-3` silently took the last one.
    argv = ["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "a")]
    rc = main([*argv, "train.lr=1e-3", "train.lr=2e-3"])
    err = capsys.readouterr().err.strip()
    assert (
        rc == 2
        and err == "error: train.lr=2e-3: train.lr is already set to 1e-3 on the command line"
    )
    rc = main([*argv, "train.lr=1e-3", "train.lr=1e-3"])  # the same value twice: no conflict
    assert rc == 1 and "train.jsonl: training pairs not found" in capsys.readouterr().err


def test_a_pairs_file_given_for_the_pairs_directory_is_named(tmp_path, capsys):
    """Regression: `train --pairs DIR/train.jsonl` said "DIR/train.jsonl/train.jsonl: training
    pairs not found", a path that exists nowhere."""
    pairs_file = tmp_path / "train.jsonl"
    pairs_file.write_text("{}\n")
    for argv in (["train", "--pairs", str(pairs_file), "--out", str(tmp_path / "a")],
                 ["pairs", "stats", str(pairs_file)]):  # fmt: skip
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 1 and err == f"error: {pairs_file}: not a directory (pass the pairs " \
            "directory, not a file)", (argv, err)  # fmt: skip
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_a_training_stopped_by_a_signal_exits_as_a_shell_reports_it(
    tmp_path, capsys, monkeypatch, signum, code
):
    """Regression: SIGTERM exited 130, Ctrl-C's code; a script waiting on the run could not tell."""
    import filingcontrast.train as T

    def stopped(*args, **kwargs):
        raise T.Stopped(signum)

    monkeypatch.setattr(T, "train", stopped)
    assert main(["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "a")]) == code
    assert capsys.readouterr().err.strip() == "interrupted"


def test_out_must_name_a_directory(tmp_path, capsys):
    # Regression: `--out ""` trained into runs/<name>, `--out .` failed with "name: ... ''".
    for cmd in (["train", "--pairs", str(tmp_path)], ["pairs"]):
        for out in ("", ".", "/"):
            rc = main([*cmd, "--out", out])
            err = capsys.readouterr().err.strip()
            assert rc == 1 and f"--out {out!r}: must name a directory" in err, (cmd, out)


def test_toml_date_override_for_a_date_string():
    from filingcontrast.config import load_config

    # Regression: a bare TOML date was "expected a string, got datetime.date(...)".
    assert load_config(None, ["simulate.start=2021-01-04"]).simulate.start == "2021-01-04"
    assert load_config(None, ["pairs.method=provided"]).pairs.method == "provided"


def test_unquoted_window_override_says_to_quote():
    from filingcontrast.config import load_config
    from filingcontrast.errors import ConfigError

    # TOML reads 1_3 as 13; the error said only "expected a string, got 13".
    with pytest.raises(ConfigError, match="pairs.window: expected a string, got 13 .*quote"):
        load_config(None, ["pairs.window=1_3"])
    assert load_config(None, ['pairs.window="1_3"']).pairs.window == "1_3"
