"""Compile only what runs, and batches on threads (symglep.kernel_module, docs/kernels.md)."""

import pathlib

import numpy as np
import pytest
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep import kernel_module
from symglep.errors import SymglepError
from symglep.kernel_module import _slices

ROOT = pathlib.Path(__file__).resolve().parents[1]
OSCILLATOR = str(ROOT / "examples" / "harmonic_oscillator.py")


@pytest.fixture
def threads():
    """Set the kernel threads for one test, then restore the environment's."""
    yield kernel_module.set_threads
    kernel_module.set_threads(None)


def duffing(name):
    """A one-coordinate model no other test compiles (its own cache entry, so nothing is compiled yet)."""
    x = dynamicsymbols("x")
    u, y = dynamicsymbols("u y")
    k, m, g = sp.symbols("k m g", positive=True)
    return symglep.Model(lagrangian=m * x.diff() ** 2 / 2 - k * x**2 / 2 - g * x**4 / 4 + x * u,
                         coordinates=[x], parameters=[k, m, g], inputs=[u], targets=[y],
                         cost=(x - y) ** 2 / 2, name=name)


def test_compile_compiles_nothing_and_a_call_compiles_only_its_kernel(tmp_path):
    kern = symglep.compile(duffing("duffing_lazy_compile"), cache=str(tmp_path))
    names = ("free", "echo", "gradient", "bptt_gradient", "nudged", "tangent", "pfvp_backward")
    assert all(not getattr(kern.module, n).signatures for n in names)
    kern.gradient([1.0, 1.2, 0.3], [[0.2]], p0=[[0.1]], u=np.zeros((1, 41, 1)), y=np.full((1, 41, 1), 0.1))
    compiled = {n for n in names if getattr(kern.module, n).signatures}
    assert compiled == {"gradient"}


def test_slices_cover_the_batch_in_order():
    for batch in range(1, 12):
        for count in range(1, 6):
            parts = _slices(batch, min(count, batch))
            assert [i for s in parts for i in range(batch)[s]] == list(range(batch))
            assert len(parts) == min(count, batch)
            sizes = [s.stop - s.start for s in parts]
            assert max(sizes) - min(sizes) <= 1


def _scalar_outputs(kern, rng):
    B, K = 7, 60
    q0 = rng.uniform(-0.5, 0.5, (B, 1))
    p0 = rng.uniform(-0.5, 0.5, (B, 1))
    u = rng.uniform(-1, 1, (B, K + 1, 1))
    y = rng.uniform(-1, 1, (B, K + 1, 1))
    theta = [1.3, 0.8]
    g = kern.gradient(theta, q0, p0=p0, u=u, y=y, learn_inputs=True)
    b = kern.bptt_gradient(theta, q0, p0=p0, u=u, y=y)
    free = kern.free(theta, q0, p0=p0, u=u, y=y, record=True)
    return [g.loss, g.dtheta, g.dq0, g.dx0, g.du, b.dtheta, b.dq0, *free]


def test_scalar_results_do_not_depend_on_the_number_of_threads(threads):
    kern = symglep.compile(symglep.load_model(OSCILLATOR))
    threads(1)
    one = _scalar_outputs(kern, np.random.default_rng(3))
    threads(3)
    args = (np.ones(2), np.zeros((7, 1)), np.zeros((7, 1)), False, np.zeros((7, 3, 1)), np.zeros((7, 3, 1)),
            0.01, 0.0, 1e-4, 2, False, np.ones(2), False)
    assert len(kern.module.gradient._parts(args)) == 3       # really cut into three slices
    three = _scalar_outputs(kern, np.random.default_rng(3))
    for a, b in zip(one, three):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_network_and_stack_results_do_not_depend_on_the_number_of_threads(threads):
    from symglep.network.check import draw_instance

    model = symglep.load_model(str(ROOT / "examples" / "network_chain.py"))
    kern = symglep.compile(model)
    rng = np.random.default_rng(0)
    theta, q0, p0, u, y = draw_instance(model, kern, 6, 5, 40, 0.01, rng)
    stack = symglep.load_system(str(ROOT / "examples" / "stack_chain_hru.py"))
    skern = symglep.compile(stack)
    x = rng.uniform(-1, 1, (5, 31, skern.n_x))
    ys = rng.uniform(-1, 1, (5, 31, skern.n_y))
    th = rng.uniform(0.2, 0.6, skern.n_theta)
    runs = []
    for count in (1, 2):
        threads(count)
        g = kern.gradient(theta, q0, p0, u, y, learn_inputs=True)
        s = skern.gradient(th, x, ys, learn_inputs=True)
        runs.append([g.loss, g.flat, g.dq0, g.dp0, g.du, *s])
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_threads_setting_is_checked():
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises(SymglepError, match="positive integer"):
            kernel_module.set_threads(bad)


def _signatures(module) -> dict:
    """Every Numba function of a generated module -> how many signatures it has compiled."""
    return {name: len(f.signatures) for name, f in vars(module).items() if hasattr(f, "signatures")}


def test_each_function_compiles_one_signature(tmp_path):
    """Compile once per function: read-only inputs (np.broadcast_to), literal flags at private call
    sites and strided views into the contrast would each compile a second specialisation of a
    kernel and of everything it calls (a cold `check` then pays twice)."""
    from symglep.network.check import draw_instance

    kern = symglep.compile(duffing("duffing_one_signature"), cache=str(tmp_path))
    u = np.broadcast_to(np.zeros((1, 41, 1)), (1, 41, 1))          # read-only, like a task's targets
    y, q0 = np.full((1, 41, 1), 0.1), np.broadcast_to([[0.2]], (1, 1))
    for learn in (True, False):
        kern.gradient([1.0, 1.2, 0.3], q0, p0=[[0.1]], u=u, y=y, learn_inputs=learn)
    kern.bptt_gradient([1.0, 1.2, 0.3], [[0.2]], p0=[[0.1]], u=u, y=y)
    kern.free([1.0, 1.2, 0.3], q0, p0=[[0.1]], u=u, y=y)
    model = symglep.load_model(str(ROOT / "examples" / "network_chain.py"))
    net = symglep.compile(model)
    theta, nq0, np0, nu, ny = draw_instance(model, net, 6, 2, 20, 0.01, np.random.default_rng(0))
    net.gradient(theta, nq0, np0, nu, ny, learn_inputs=True)
    net.bptt_gradient(theta, nq0, np0, nu, ny, learn_inputs=True)
    stack = symglep.compile(symglep.load_system(str(ROOT / "examples" / "stack_chain_hru.py")))
    rng = np.random.default_rng(1)
    x, ys = rng.uniform(-1, 1, (2, 21, stack.n_x)), rng.uniform(-1, 1, (2, 21, stack.n_y))
    th = rng.uniform(0.2, 0.6, stack.n_theta)
    stack.free(th, x, ys)
    stack.gradient(th, x, ys, learn_inputs=True)
    stack.bptt_gradient(th, x, ys)
    for module in (kern.module.module, net.module.module, stack.module.module):
        counts = _signatures(module)
        assert counts and max(counts.values()) == 1, {k: v for k, v in counts.items() if v > 1}


def test_a_function_the_kernels_call_has_a_python_entry_of_its_own(tmp_path):
    """A model function is compiled for the kernels without a CPython entry (calling that copy from Python
    would crash); asked from Python, the module gives a twin with one: the same numbers as the source run
    as Python, compiled on that first call only, and cached on disk under its own name."""
    kern = symglep.compile(duffing("duffing_python_entry"), cache=str(tmp_path))
    kernels_copy = kern.module.module.f_force
    assert kernels_copy.targetoptions["no_cpython_wrapper"]
    entry = kern.module.f_force
    assert entry is kern.module.f_force and entry is not kernels_copy
    args = (np.array([0.3]), 0.1, np.array([0.2]), np.array([0.4]), np.array([1.0, 1.2, 0.3]), 0.5)
    got, want = np.empty(1), np.empty(1)
    entry(*args, got)
    symglep.compile(duffing("duffing_python_entry"), cache=str(tmp_path), jit=False).module.f_force(*args, want)
    assert got[0] == pytest.approx(want[0], rel=1e-15, abs=0) and got[0] != 0
    assert entry.signatures and not kernels_copy.signatures
    assert list(tmp_path.glob("*/__pycache__/*f_force__python*.nbi"))
