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
