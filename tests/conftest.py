"""Shared fixtures: paths, the real SmolLM2 tokenizer and the tiny random Llama."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
EDGAR_8K = SHARED / "data" / "edgar-8k"
ASSETS = Path(__file__).resolve().parent / "assets"


@pytest.fixture(scope="session")
def edgar_8k() -> Path:
    """The real filings in ../shared; tests that need them skip in a fresh clone."""
    if not (EDGAR_8K / "index.jsonl").exists():
        pytest.skip("../shared/data/edgar-8k not present")
    return EDGAR_8K


@pytest.fixture(scope="session")
def cli_allocator() -> str:
    """The allocator a `filingcontrast` model command started as a process runs with: mimalloc
    on Linux, where the wheel is a dependency (runtime.reexec_with_allocator; a missing wheel
    fails the tests that use this), else glibc's."""
    import os
    import sys

    from filingcontrast.runtime import ALLOCATOR_ENV

    wanted = os.environ.get(ALLOCATOR_ENV, "mimalloc") != "system"
    preload = os.environ.get("LD_PRELOAD", "").replace(" ", ":").split(":")
    users_own = [p for p in preload if p and "libmimalloc" not in p]  # left as it is
    linux = sys.platform.startswith("linux")
    return "mimalloc" if linux and wanted and not users_own else "system"


@pytest.fixture(scope="session")
def tokenizer():
    from filingcontrast.model import load_tokenizer

    return load_tokenizer("tiny-llama")


@pytest.fixture
def tiny_model_and_tokenizer():
    from filingcontrast.model import load_base

    return load_base("tiny-llama", device="cpu")
