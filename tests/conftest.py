"""Shared test set-up: one kernel cache for the whole run (Numba compilation dominates test time)."""

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

os.environ.setdefault("SYMGLEP_CACHE_DIR", str(ROOT / ".pytest_cache" / "symglep-kernels"))


@pytest.fixture(scope="session")
def examples_dir() -> pathlib.Path:
    return EXAMPLES


# C toolchains (tests/test_c_kernels.py and the other C files): scripts/install-toolchains.sh installs the
# missing ones (Debian packages, about 30 s), one run at a time (it holds a lock). The test run starts it in
# the background as soon as the tests are collected: the compile-bound tests run meanwhile, and the first C
# test finds the compilers installed instead of idling its worker.
TOOLCHAINS = ("gcc", "make", "clang", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm")
INSTALL_TOOLCHAINS = ["bash", str(ROOT / "scripts" / "install-toolchains.sh")]


def _missing_toolchains() -> list:
    return [cc for cc in TOOLCHAINS if shutil.which(cc) is None]


def pytest_collection_finish(session):
    """When the selected tests include a C test and compilers are missing, start installing them in the
    background (each xdist worker starts one; the script's lock runs them one after the other and the second
    finds nothing to do). Where the script cannot install, the ``toolchains`` fixture reports why."""
    if any("toolchains" in getattr(item, "fixturenames", ()) for item in session.items) and _missing_toolchains():
        subprocess.Popen(INSTALL_TOOLCHAINS, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.fixture(scope="session")
def toolchains():
    """gcc, make, clang and arm-none-eabi-gcc (with newlib): the script, run again, waits for a background
    install still running and installs what is missing; FAILS (never skips) when they cannot be installed."""
    done = subprocess.run(INSTALL_TOOLCHAINS, capture_output=True, text=True)
    if done.returncode != 0 or _missing_toolchains():
        pytest.fail(f"C toolchains {_missing_toolchains()} missing and scripts/install-toolchains.sh could not "
                    f"install them: {done.stderr.strip()[-500:]}")
    return True


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
