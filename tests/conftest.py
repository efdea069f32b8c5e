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
# With `--dist loadfile --no-loadscope-reorder` (the README's test command) xdist hands whole files to
# the workers in this order (its default reorders them by number of tests, which left the few-test,
# slow files such as test_fuzz.py to the end): the run ends on small files and both workers finish
# together. Neighbours in the list run at the same time, so they are chosen not to need the same
# kernels first (a kernel one worker compiles, the other waits for: symglep.kernel_module).
HEAVY_FIRST = ["test_network_c.py", "test_fuzz.py", "test_jax_array.py", "test_c_kernels.py", "test_matrix.py",
               "test_kernels.py", "test_complex_step.py", "test_jax_stack.py", "test_network_midpoint.py",
               "test_stack_arrays.py", "test_stack_cells.py", "test_dissipation.py", "test_jax.py",
               "test_stack_damping.py", "test_stack_c_midpoint.py", "test_networks.py", "test_stack_midpoint.py",
               "test_cli.py", "test_boundary.py", "test_property_action.py", "test_classification.py",
               "test_hardening.py", "test_readable.py", "test_derivation.py", "test_codegen.py", "test_stack_c.py"]


def pytest_collection_modifyitems(items):
    """Run the files of HEAVY_FIRST first, in that order; every other file keeps its place after them."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # a stable sort: tests keep their order
