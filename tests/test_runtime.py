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
