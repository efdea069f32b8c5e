"""Shared test set-up: one kernel cache for the whole run (Numba compilation dominates test time)."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

os.environ.setdefault("SYMGLEP_CACHE_DIR", str(ROOT / ".pytest_cache" / "symglep-kernels"))


@pytest.fixture(scope="session")
def examples_dir() -> pathlib.Path:
    return EXAMPLES
