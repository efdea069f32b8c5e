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


# The suite's heaviest files by measured time (benchmarks/suite_profile.py, session 24), heaviest first.
# `pytest -n 2 --dist loadfile` hands files to the workers in collection order, so the slow ones go
# first and the run ends on small files: the two workers finish together (longest-first scheduling).
HEAVY_FIRST = ["test_network_c.py", "test_jax_array.py", "test_fuzz.py", "test_c_kernels.py", "test_matrix.py",
               "test_kernels.py", "test_complex_step.py", "test_jax_stack.py", "test_network_midpoint.py",
               "test_stack_arrays.py", "test_stack_cells.py", "test_dissipation.py", "test_jax.py",
               "test_stack_damping.py", "test_stack_c_midpoint.py", "test_networks.py"]


def pytest_collection_modifyitems(items):
    """Run the files of HEAVY_FIRST first, in that order; every other file keeps its place after them."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # a stable sort: tests keep their order
