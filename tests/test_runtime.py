"""runtime helpers with process-wide effects, each checked in its own subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys, torch
from filingcontrast.runtime import lean_allocator

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "lean":
    assert lean_allocator()
big = torch.ones(4 << 20)  # 16 MB: mapped; freeing it makes default glibc raise its threshold
del big
x = torch.ones(2 << 20)  # 8 MB: default glibc now takes it from the heap and keeps it
before = rss_mb()
del x
print(before - rss_mb())
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libmimalloc" in os.environ.get("LD_PRELOAD", ""),
    reason="glibc malloc",
)
def test_lean_allocator_returns_large_blocks_to_the_os():
    def freed_mb(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        return float(out.stdout.split()[-1])

    assert freed_mb("lean") > 6  # the 8 MB block went back to the OS on free
    assert freed_mb("default") < 2  # without it, glibc kept it (why the option exists)


def test_iter_jsonl_non_utf8_is_one_line_error_but_torn_character_is_a_torn_tail(tmp_path):
    from filingcontrast.errors import UserError
    from filingcontrast.runtime import iter_jsonl

    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\n\x8c\xff\n{"a": 2}\n')
    with pytest.raises(UserError, match=r"m\.jsonl: not UTF-8 text \(byte 9\)"):
        list(iter_jsonl(path, torn_tail_ok=True))
    # Killed mid-write inside "é" (2 bytes): the last line is torn, the first one stays.
    path.write_bytes(b'{"a": 1}\n{"name": "caf' + "é".encode()[:1])
    assert [obj for _, obj in iter_jsonl(path, torn_tail_ok=True)] == [{"a": 1}]
    with pytest.raises(UserError, match="not UTF-8"):
        list(iter_jsonl(path))


def test_iter_jsonl_splits_at_newlines_only(tmp_path):
    """Regression: str.splitlines broke lines at U+2028 / U+0085 / \\x1e inside JSON strings,
    so `pairs` wrote files (ensure_ascii=False) that its own reader rejected."""
    import json

    from filingcontrast.runtime import iter_jsonl

    rows = [{"sector": "Energy\u2028Utilities"}, {"t": "a\x85b\x1ec\u2029"}, {"crlf": 1}]
    path = tmp_path / "p.jsonl"
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:2])
    path.write_bytes((text + "\n" + json.dumps(rows[2]) + "\r\n").encode())
    assert [(n, obj) for n, obj in iter_jsonl(path)] == list(enumerate(rows, start=1))
    path.write_bytes(b'{"a": 1}\r{"b": 2}\r')  # old Mac line ends: a raw CR is never in a string
    assert [obj for _, obj in iter_jsonl(path)] == [{"a": 1}, {"b": 2}]


# ---------------------------------------------------------------------------------------------
# The allocator the model commands run with (runtime.allocator_env / reexec_with_allocator).


def test_allocator_env_choices_and_what_it_keeps(monkeypatch):
    import json

    from filingcontrast import runtime
    from filingcontrast.errors import UserError

    monkeypatch.setattr(runtime, "mimalloc_path", lambda: "/opt/libmimalloc.so")
    monkeypatch.setattr(runtime.sys, "platform", "linux")

    def env_for(env, loaded="system"):
        return runtime.allocator_env(env, loaded=loaded)

    with pytest.raises(UserError, match=r"FILINGCONTRAST_ALLOCATOR='tcmalloc': expected one of"):
        env_for({"FILINGCONTRAST_ALLOCATOR": "tcmalloc"})
    assert env_for({"FILINGCONTRAST_ALLOCATOR": "system"}) is None
    assert env_for({}, loaded="mimalloc") is None  # the restarted process itself
    # a library the user preloads (their own malloc, a sanitizer): the process is left as it is
    assert env_for({"LD_PRELOAD": "/lib/libjemalloc.so"}) is None
    env = env_for({"PATH": "/bin"})
    assert env.pop(runtime.RESTARTED_ENV) == json.dumps(
        {"LD_PRELOAD": None, "MIMALLOC_PURGE_DELAY": None}  # what the restart puts back
    )
    assert env == {
        "LD_PRELOAD": "/opt/libmimalloc.so",
        "MIMALLOC_PURGE_DELAY": "-1",
        "PATH": "/bin",
    }
    assert env_for({"MIMALLOC_PURGE_DELAY": "10"})["MIMALLOC_PURGE_DELAY"] == "10"
    # 'system' takes an inherited mimalloc preload out and keeps the rest
    inherited = {"FILINGCONTRAST_ALLOCATOR": "system", "LD_PRELOAD": "/x/libmimalloc.so:/l/a.so"}
    env = env_for(inherited, loaded="mimalloc")
    assert env["LD_PRELOAD"] == "/l/a.so"
    assert json.loads(env[runtime.RESTARTED_ENV])["LD_PRELOAD"] == inherited["LD_PRELOAD"]
    monkeypatch.setattr(runtime, "mimalloc_path", lambda: None)  # wheel missing: run as is
    assert env_for({}) is None
    monkeypatch.setattr(runtime.sys, "platform", "darwin")
    assert env_for({"FILINGCONTRAST_ALLOCATOR": "mimalloc"}) is None


ALLOCATOR_PROBE = """
import torch  # loads the libraries a training process has
from filingcontrast.runtime import active_allocator
x = torch.ones(1 << 22)
print(active_allocator())
"""


def test_mimalloc_preload_takes_effect_in_a_new_process():
    from filingcontrast.runtime import ALLOCATOR_ENV, allocator_env, mimalloc_path

    if not sys.platform.startswith("linux"):
        pytest.skip("mimalloc is a Linux dependency")
    assert mimalloc_path() is not None, "cmeel-mimalloc (a Linux dependency) is not installed"
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", ALLOCATOR_ENV)}
    for env, expected in ((allocator_env(base, loaded="system"), "mimalloc"), (base, "system")):
        out = subprocess.run(
            [sys.executable, "-c", ALLOCATOR_PROBE], capture_output=True, text=True, env=env
        )
        assert out.returncode == 0 and out.stdout.split() == [expected], out.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Files: atomic writes, JSON / JSON lines reading, field types (what every stage relies on).


def test_atomic_write_never_leaves_a_half_written_target(tmp_path):
    from filingcontrast.runtime import atomic_write_text

    path = tmp_path / "sub" / "dir" / "report.md"
    atomic_write_text(path, "old é\u2028\n")  # parent directories are made
    assert path.read_bytes() == "old é\u2028\n".encode()
    # A write that fails part-way (a lone surrogate cannot be encoded) leaves the old file whole
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "x" * 100_000 + "\ud800")
    assert path.read_text() == "old é\u2028\n"
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]  # no temp file left
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"


def test_atomic_write_json_stringifies_paths_and_ends_with_a_newline(tmp_path):
    import json
    from pathlib import Path

    from filingcontrast.runtime import atomic_write_json

    path = tmp_path / "m.json"
    atomic_write_json(path, {"dir": Path("runs/x"), "n": 1})
    text = path.read_text()
    assert text.endswith("}\n") and json.loads(text) == {"dir": "runs/x", "n": 1}


def test_read_json_errors_are_one_line_and_name_the_file(tmp_path):
    from filingcontrast.errors import UserError
    from filingcontrast.runtime import read_json

    path = tmp_path / "s.json"
    assert read_json(path, missing_ok=True) is None
    with pytest.raises(UserError, match=r"s\.json: not found$"):
        read_json(path)
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')  # a BOM, as some editors save it
    assert read_json(path) == {"a": 1}
    path.write_text('{"a": ')
    with pytest.raises(UserError, match=r"s\.json: not valid JSON: ") as err:
        read_json(path, missing_ok=True)
    assert "\n" not in str(err.value)
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match=r"s\.json: expected a JSON object$"):
        read_json(path)


def test_check_field_types_names_the_first_wrong_field(tmp_path):
    from filingcontrast.errors import UserError
    from filingcontrast.runtime import check_field_types

    path = tmp_path / "summary.json"
    types = {"missing": (int,), "n": (int,), "gap": (float, int), "note": (str, type(None))}
    check_field_types(path, {"n": 3, "gap": 2, "note": None}, types)
    check_field_types(path, {}, types)  # absent fields are left to their readers' defaults
    with pytest.raises(UserError, match=r"summary\.json: field n: expected int, got True$"):
        check_field_types(path, {"n": True}, types)  # bool is an int subclass, still wrong
    with pytest.raises(UserError, match=r"field n: expected int, got '3'$"):
        check_field_types(path, {"n": "3"}, types)
    with pytest.raises(UserError, match=r"field note: expected str or null, got 5$"):
        check_field_types(path, {"n": 1, "note": 5}, types)
    check_field_types(path, {"flag": True}, {"flag": (bool,)})


def test_read_utf8_drops_a_bom_and_names_the_bad_byte(tmp_path):
    from filingcontrast.errors import UserError
    from filingcontrast.runtime import read_utf8

    path = tmp_path / "prices.csv"
    path.write_bytes(b"\xef\xbb\xbfdate,close\n")
    assert read_utf8(path, "save it as UTF-8") == "date,close\n"
    path.write_bytes(b"ab\xe9cd")
    with pytest.raises(
        UserError, match=r"prices\.csv: not UTF-8 text \(byte 2\); save it as UTF-8$"
    ):
        read_utf8(path, "save it as UTF-8")


def test_iter_jsonl_line_numbers_count_every_line(tmp_path):
    from filingcontrast.errors import UserError
    from filingcontrast.runtime import iter_jsonl

    path = tmp_path / "p.jsonl"
    # BOM, CRLF line ends, an empty and a whitespace-only line: numbers are the editor's lines
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \t\r\n{"a": 2}\r\n')
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    path.write_bytes(b'{"a": 1}\r\n{"a": 2}\r\n{"a": \r\n{"a": 4}\r\n')
    with pytest.raises(UserError, match=r"p\.jsonl:3: invalid JSON \(") as err:
        list(iter_jsonl(path))
    assert "\n" not in str(err.value)
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"p\.jsonl:2: expected a JSON object per line$"):
        list(iter_jsonl(path))


def test_iter_jsonl_torn_tail_skips_only_the_last_line(tmp_path):
    from filingcontrast.errors import UserError
    from filingcontrast.runtime import iter_jsonl

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"ste')  # writer killed mid-line
    assert list(iter_jsonl(path, torn_tail_ok=True)) == [(1, {"step": 1}), (2, {"step": 2})]
    with pytest.raises(UserError, match=r"metrics\.jsonl:3: invalid JSON"):
        list(iter_jsonl(path))
    # a broken line that is not the last is damage, not a torn tail: never silently truncated
    path.write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
    with pytest.raises(UserError, match=r"metrics\.jsonl:2: invalid JSON"):
        list(iter_jsonl(path, torn_tail_ok=True))
    # a BOM survives a torn multi-byte character at the end
    path.write_bytes(b'\xef\xbb\xbf{"step": 1}\n{"n": "\xc3')
    assert list(iter_jsonl(path, torn_tail_ok=True)) == [(1, {"step": 1})]


def test_hash_file_hashes_every_chunk(tmp_path):
    import hashlib

    from filingcontrast.runtime import hash_file

    path = tmp_path / "big.bin"
    data = os.urandom((4 << 20) + 123)  # more than one 4 MiB chunk
    path.write_bytes(data)
    h = hashlib.sha256()
    hash_file(h, path)
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def test_run_dir_writes_config_and_appends_log_and_metrics(tmp_path):
    from filingcontrast.config import load_config
    from filingcontrast.runtime import RunDir, iter_jsonl

    cfg = load_config(None, ["name=r1", f"runs_dir={str(tmp_path)!r}", "train.lr=3e-4"])
    run = RunDir.create(cfg)
    assert run.path == tmp_path / "r1"
    assert load_config(run.path / "config.toml") == cfg
    run.log("first")
    run.log("second")
    lines = (run.path / "log.txt").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == ["first", "second"]
    run.append_metrics({"step": 1})
    run.append_metrics({"step": 2})
    assert list(iter_jsonl(run.path / "metrics.jsonl")) == [(1, {"step": 1}), (2, {"step": 2})]


# ---------------------------------------------------------------------------------------------
# Seeds and threads.


def test_seed_everything_takes_any_64_bit_seed_reproducibly():
    import random

    import numpy as np

    from filingcontrast.runtime import seed_everything

    draws = []
    for _ in range(2):
        seed_everything(2**63 - 1)  # the largest seed the config accepts
        draws.append((random.random(), float(np.random.rand())))
    assert draws[0] == draws[1]


def test_set_threads_shares_the_usable_cpus_between_processes(monkeypatch):
    import types

    from filingcontrast import runtime

    calls = []
    fake_torch = types.SimpleNamespace(set_num_threads=calls.append)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert runtime.set_threads(0) == 8
    assert runtime.set_threads(0, processes=2) == 4
    assert runtime.set_threads(0, processes=16) == 1  # never 0 threads
    assert runtime.set_threads(0, processes=0) == 8
    assert runtime.set_threads(3, processes=2) == 3  # an explicit count is taken as is
    assert calls == [8, 4, 1, 8, 3]


# ---------------------------------------------------------------------------------------------
# The restart with the allocator: what the restarted process puts back, and who restarts.


def test_restarted_process_puts_the_users_variables_back(monkeypatch):
    import json

    from filingcontrast import runtime

    monkeypatch.setattr(runtime.os, "execve", lambda *a: pytest.fail("restarted twice"))
    monkeypatch.setenv("LD_PRELOAD", "/opt/libmimalloc.so")
    monkeypatch.setenv("MIMALLOC_PURGE_DELAY", "-1")
    monkeypatch.setenv(
        runtime.RESTARTED_ENV, json.dumps({"LD_PRELOAD": None, "MIMALLOC_PURGE_DELAY": "25"})
    )
    runtime.reexec_with_allocator()
    assert "LD_PRELOAD" not in os.environ
    assert os.environ["MIMALLOC_PURGE_DELAY"] == "25"
    assert runtime.RESTARTED_ENV not in os.environ  # what it starts may restart in its turn


def test_only_our_own_entry_points_restart(monkeypatch, tmp_path, capsys):
    from filingcontrast import runtime

    calls = []
    monkeypatch.delenv(runtime.RESTARTED_ENV, raising=False)
    monkeypatch.setattr(runtime, "allocator_env", lambda: {"LD_PRELOAD": "/m/libmimalloc.so"})
    monkeypatch.setattr(runtime.os, "execve", lambda *a: calls.append(a))
    script = tmp_path / "my_script.py"
    script.write_text("")
    monkeypatch.setattr(runtime.sys, "argv", [str(script)])
    runtime.reexec_with_allocator()
    assert calls == []  # a user's script calling cli.main() is never replayed
    for entry in (tmp_path / "bin" / "filingcontrast", tmp_path / "filingcontrast" / "__main__.py"):
        entry.parent.mkdir()
        entry.write_text("")
        monkeypatch.setattr(runtime.sys, "argv", [str(entry)])
        runtime.reexec_with_allocator()
    expected = (
        sys.executable,
        [sys.executable, *sys.orig_argv[1:]],
        {"LD_PRELOAD": "/m/libmimalloc.so"},
    )
    assert calls == [expected, expected]

    def fail(*a):
        raise OSError(8, "Exec format error")

    monkeypatch.setattr(runtime.os, "execve", fail)
    runtime.reexec_with_allocator()  # goes on in the same process
    assert "cannot restart with the allocator" in capsys.readouterr().err


def test_allocator_env_reads_space_separated_preloads(monkeypatch):
    from filingcontrast import runtime

    monkeypatch.setattr(runtime, "mimalloc_path", lambda: "/opt/libmimalloc.so")
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    env = {"FILINGCONTRAST_ALLOCATOR": "system", "LD_PRELOAD": "/x/libmimalloc.so /l/a.so"}
    assert runtime.allocator_env(env, loaded="mimalloc")["LD_PRELOAD"] == "/l/a.so"
    # only a mimalloc preload inherited from the parent: it is taken out altogether
    env = {"FILINGCONTRAST_ALLOCATOR": "system", "LD_PRELOAD": "/x/libmimalloc.so"}
    assert "LD_PRELOAD" not in runtime.allocator_env(env, loaded="mimalloc")
    # loaded although no longer listed (the variable was cleared): still restarted without it
    env = runtime.allocator_env({"FILINGCONTRAST_ALLOCATOR": "system"}, loaded="mimalloc")
    assert env is not None and "LD_PRELOAD" not in env
    # the user's own preload next to ours: mimalloc (the default) leaves the process alone
    assert (
        runtime.allocator_env({"LD_PRELOAD": "/l/a.so /x/libmimalloc.so"}, loaded="system") is None
    )
