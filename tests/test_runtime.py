"""runtime helpers with process-wide effects, each checked in its own subprocess."""

from __future__ import annotations

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
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
