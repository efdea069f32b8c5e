"""C99 kernels of a stack (theory §9, docs/echo-family.md): built with ``gcc -std=c99 -Wall -Wextra
-Werror -pedantic`` (and more warnings) into a shared library and called through ctypes, the free
pass and the stacked echo match the stack's Numba kernels; float32 compiles cleanly; golden files.
Units are scalar models (stack_chain_hru) or array models (stack_hru), in any order."""

import ctypes
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from c_harness import EXTRA, STRICT, compile_c, relative_error
from instances import stack_instance
from test_c_kernels import COMPILER_SUPPORT, CORTEX_M4, MATH_FUNCTIONS
from symglep.codegen.c_printer import c_api_prefix
from symglep.stack.model import Stack
from symglep.stack.runtime import compile_stack
from symglep.stack.training import load_stack
from symglep.stack.codegen_c import render_stack_c, write_stack_c

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "stack_chain_hru.py"
DT = 0.05
# a stack of scalar units (chain, HRU, chain) and a stack of two array units (HRU layers of 8 units, dense glue)
STACKS = ["stack_chain_hru", "stack_hru"]


@pytest.fixture(scope="module", params=STACKS)
def stack(request):
    return load_stack(str(ROOT / "examples" / f"{request.param}.py"))


@pytest.fixture(scope="module")
def kernels(stack):
    return compile_stack(stack, dt=DT)  # the same cache entry as tests/test_stack.py


@pytest.fixture(scope="module")
def folder(stack, tmp_path_factory):
    out = tmp_path_factory.mktemp("stack-c")
    for precision in ("float64", "float32"):
        write_stack_c(stack, str(out / precision), precision)
    return out


class StackC:
    """The float64 C API of one stack, called with numpy arrays."""

    def __init__(self, library: pathlib.Path, stack):
        self.lib = ctypes.CDLL(str(library))
        self.api = c_api_prefix(stack.name)
        self.fn("work_size").restype = ctypes.c_long
        self.work = np.zeros(self.fn("work_size")())
        self.nq, self.nth = stack.n, len(stack.parameter_names)

    def fn(self, name):
        return getattr(self.lib, f"{self.api}_{name}")

    @staticmethod
    def ptr(a):
        assert a is None or (a.dtype == np.float64 and a.flags.c_contiguous)
        return None if a is None else a.ctypes.data_as(ctypes.c_void_p)

    def free(self, th, q0, x0, x, y, h, t0=0.0, start_velocity=False):
        qT, pT, loss = np.zeros(self.nq), np.zeros(self.nq), np.zeros(1)
        status = self.fn("free")(*map(self.ptr, (th, q0, x0)), ctypes.c_int(start_velocity), *map(self.ptr, (x, y)),
                                 ctypes.c_long(x.shape[0] - 1), ctypes.c_double(h), ctypes.c_double(t0),
                                 *map(self.ptr, (qT, pT, loss, self.work)))
        assert status == 0
        return qT, pT, loss[0]

    def gradient(self, th, q0, x0, x, y, h, beta, learn_x=True, order=2, t0=0.0, start_velocity=False,
                 initial_state=False, unguarded=False):
        """``(loss, dth, dx, round trip)``, and with ``initial_state`` also ``dq0, dx0`` (dC/dp0, or dC/dv0
        with a velocity start); ``unguarded``: status -2 (the echoes did not retrace linearly in β) is taken too."""
        loss, dth, trip = np.zeros(1), np.zeros(self.nth), np.zeros(1)
        dq0, dx0 = (np.zeros(self.nq), np.zeros(self.nq)) if initial_state else (None, None)
        dx = np.zeros(x.shape) if learn_x else None
        status = self.fn("gradient")(*map(self.ptr, (th, q0, x0)), ctypes.c_int(start_velocity), *map(self.ptr, (x, y)),
                                     ctypes.c_long(x.shape[0] - 1), ctypes.c_double(h), ctypes.c_double(t0),
                                     ctypes.c_double(beta), ctypes.c_int(order),
                                     *map(self.ptr, (loss, dth, dq0, dx0, dx, trip, self.work)))
        assert status == 0 or (unguarded and status == -2), status
        out = (loss[0], dth, dx, trip[0])
        return out + (dq0, dx0) if initial_state else out


@pytest.fixture(scope="module")
def c_stack(stack, folder):
    src = folder / "float64" / stack.name / "c"
    lib = src / f"lib{stack.name}.so"
    compile_c("gcc", src, lib, [f"{stack.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    return StackC(lib, stack)


@pytest.fixture(scope="module")
def problem(stack, kernels):
    """The sine task of tests/test_stack.py (two sequences of 300 steps), from a random start state."""
    return stack_instance(stack, kernels)


def test_c_free_pass_matches_numba(kernels, c_stack, problem):
    theta, x, y, q0, p0 = problem
    qT, pT, loss = kernels.free(theta, x, y, q0=q0, p0=p0)
    for b in range(x.shape[0]):
        cq, cp, closs = c_stack.free(theta, q0[b], p0[b], x[b], y[b], DT)
        assert relative_error(closs, loss[b]) <= 1e-12
        assert relative_error(cq, qT[b]) <= 1e-12 and relative_error(cp, pT[b]) <= 1e-12


# BPTT bound: the estimator's bias on this instance (dt = 0.05, a strongly curved contrast): centred
# 1.6e-5 at beta = 1e-3, Richardson 1.1e-9 (2.6e-9 in this max-norm); tests/test_richardson.py
# holds the Richardson contrast to 1e-9 at dt = 0.01 and fits its beta^4 law on this instance.
# One-sided (order 1): its O(beta) bias, measured 4.1e-4 at beta = 1e-5 on this instance (its beta law is
# tested in tests/test_stack_cells.py); here the point is C = Numba. stack_hru (C vs BPTT): centred 3.1e-8,
# Richardson 4.2e-11, one-sided 3.9e-5.
# C = Numba: a stack of scalar units runs the same operations in the same order as its Numba kernels, bit for
# bit at any beta. Array units' Numba loops may reassociate sums (fastmath "reassoc", docs/c-kernels.md);
# the echo's 1/beta amplifies that last-bit round-off (stack_hru, centred: 1.4e-11 at beta = 1e-4, 1.5e-12 at
# 1e-3, 8e-14 at 1e-2; one-sided 1.7e-10 at 1e-5, 3.7e-13 at 1e-2), so they are matched at beta = 1e-2.
MATCH_BETA = {"stack_chain_hru": None, "stack_hru": 1e-2}


@pytest.mark.parametrize("order, beta, bptt_tol", [(2, 1e-4, 1e-6), (4, 1e-3, 5e-9), (1, 1e-5, 1e-3)])
def test_c_stacked_echo_matches_numba(stack, kernels, c_stack, problem, order, beta, bptt_tol):
    """dC/dtheta of every unit and glue parameter, dC/dx, every unit's start gradient and the round trip:
    C vs Numba <= 1e-12, for the centred contrast, the Richardson one (echoes at ±β and ±2β) and the
    one-sided one (theory §5); the C echo vs BPTT through the stack within the estimator's bias."""
    theta, x, y, q0, p0 = problem
    match = MATCH_BETA[stack.name] or beta
    loss, g, dx, trip, dq0, dp0 = kernels.gradient(theta, x, y, q0=q0, p0=p0, beta=match, learn_inputs=True,
                                                   order=order, initial_state=True,
                                                   retrace=False)  # β = 1e-2 is not linear enough to pass the guard
    _, g_b, _ = kernels.bptt_gradient(theta, x, y, q0=q0, p0=p0)
    for b in range(x.shape[0]):
        closs, cg, cdx, ctrip, cdq0, cdp0 = c_stack.gradient(theta, q0[b], p0[b], x[b], y[b], DT, match, order=order,
                                                             initial_state=True, unguarded=True)
        assert relative_error(closs, loss[b]) <= 1e-12
        assert relative_error(cg, g[b]) <= 1e-12, relative_error(cg, g[b])
        assert relative_error(cdx, dx[b]) <= 1e-12
        assert relative_error(np.concatenate([cdq0, cdp0]), np.concatenate([dq0[b], dp0[b]])) <= 1e-12
        assert ctrip < 1e-10
        _, cg, _, _ = c_stack.gradient(theta, q0[b], p0[b], x[b], y[b], DT, beta, order=order)
        assert relative_error(cg, g_b[b]) <= bptt_tol, relative_error(cg, g_b[b])  # BPTT through the stack
        _, cg2, none, _ = c_stack.gradient(theta, q0[b], p0[b], x[b], y[b], DT, beta, learn_x=False, order=order)
        assert none is None and np.array_equal(cg2, cg)


def test_c_rejects_bad_arguments(c_stack, problem):
    theta, x, y, q0, p0 = problem
    c = c_stack
    one = x[0, :1]
    momentum = ctypes.c_int(0)
    assert c.fn("free")(*map(c.ptr, (theta, q0[0], p0[0])), momentum, *map(c.ptr, (one, y[0, :1])), ctypes.c_long(0),
                        ctypes.c_double(DT), ctypes.c_double(0.0),
                        *map(c.ptr, (np.zeros(c.nq), np.zeros(c.nq), np.zeros(1), c.work))) == -1
    for beta, order in ((0.0, 2), (1e-3, 3)):   # no nudge; no contrast of order 3
        assert c.fn("gradient")(*map(c.ptr, (theta, q0[0], p0[0])), momentum, *map(c.ptr, (x[0], y[0])),
                                ctypes.c_long(x.shape[1] - 1), ctypes.c_double(DT), ctypes.c_double(0.0),
                                ctypes.c_double(beta), ctypes.c_int(order),
                                *map(c.ptr, (np.zeros(1), np.zeros(c.nth), None, None, None, np.zeros(1),
                                             c.work))) == -1


def test_c_velocity_start_matches_numba(stack, kernels, c_stack, problem):
    """A velocity start (theory §3, §5, §9): P_momenta and the free pass from v0 give Numba's momenta and
    final state; the stacked echo's dC/dtheta (with each unit's PFVP term), dC/dq0 and dC/dv0 = Numba's
    (<= 1e-12)."""
    theta, x, y, q0, _ = problem
    v0 = np.random.default_rng(2).uniform(-0.3, 0.3, q0.shape)
    match = MATCH_BETA[stack.name] or 1e-4
    p0 = kernels.module.momenta(theta, q0, v0, x, 0.0)
    qT, pT, loss = kernels.free(theta, x, y, q0=q0, v0=v0)
    _, g, _, _, dq0, dv0 = kernels.gradient(theta, x, y, q0=q0, v0=v0, beta=match, initial_state=True, retrace=False)
    for b in range(x.shape[0]):
        cp = np.zeros(c_stack.nq)
        c_stack.fn("momenta")(*map(c_stack.ptr, (theta, q0[b], v0[b], x[b, 0])), ctypes.c_double(0.0),
                              *map(c_stack.ptr, (cp, c_stack.work)))
        assert relative_error(cp, p0[b]) <= 1e-14
        cq, cpT, closs = c_stack.free(theta, q0[b], v0[b], x[b], y[b], DT, start_velocity=True)
        assert relative_error(closs, loss[b]) <= 1e-12 and relative_error(cq, qT[b]) <= 1e-12
        _, cg, _, _, cdq0, cdv0 = c_stack.gradient(theta, q0[b], v0[b], x[b], y[b], DT, match, learn_x=False,
                                                   start_velocity=True, initial_state=True, unguarded=True)
        assert relative_error(cg, g[b]) <= 1e-12
        assert relative_error(np.concatenate([cdq0, cdv0]), np.concatenate([dq0[b], dv0[b]])) <= 1e-12


def test_float32_compiles_cleanly_and_example_runs(stack, kernels, folder, tmp_path):
    """float32: no warning with -Wdouble-promotion (no silent double); both example programs run, and
    the float64 one prints the Numba stacked echo's numbers for its problem."""
    for precision in ("float64", "float32"):
        src = folder / precision / stack.name / "c"
        exe = tmp_path / f"example_{precision}"
        compile_c("gcc", src, exe, ["example_main.c", f"{stack.name}.c"], STRICT + EXTRA + ["-O2"])
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
        values = {line.split()[0]: np.array([float(v) for v in line.split()[1:]]) for line in out.splitlines()}
        K, h = 200, 0.05
        th = np.full(len(stack.parameter_names), 0.5)
        k = np.arange(K + 1)
        x = np.repeat(np.sin(0.05 * k)[None, :, None], kernels.n_x, axis=2)
        y = np.repeat((0.5 * np.sin(0.05 * k - 0.5))[None, :, None], kernels.n_y, axis=2)
        q0 = 0.1 * np.sin(np.arange(1, kernels.nq + 1))[None]  # the example's start: 0.1 sin(i + 1), at rest
        loss, g, _, _ = kernels.gradient(th, x, y, q0, np.zeros_like(q0), dt=h, beta=1e-4)
        tol = 1e-10 if precision == "float64" else 1e-2  # float32: round-off and beta = 0.05 (measured 2.9e-3)
        assert relative_error(values["loss"], loss) <= (1e-12 if precision == "float64" else 1e-5)
        assert relative_error(values["dth"], g[0]) <= tol, relative_error(values["dth"], g[0])
        assert values["round_trip"][0] < (1e-12 if precision == "float64" else 1e-5)


def test_generated_stack_c_files_are_up_to_date(stack):
    for fname, text in render_stack_c(stack, "float64").items():
        committed = ROOT / "generated" / stack.name / "c" / fname
        assert committed.read_text() == text, (
            f"regenerate: symglep generate examples/{stack.name}.py --target c --out generated --force")


def test_cli_writes_the_c_files(tmp_path):
    done = subprocess.run([sys.executable, "-m", "symglep.stack", "generate", str(EXAMPLE), "--target", "c",
                           "--precision", "float32", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "stack_chain_hru" / "c"
    assert sorted(p.name for p in folder.iterdir()) == ["Makefile", "example_main.c", "stack_chain_hru.c",
                                                        "stack_chain_hru.h"]
    assert "typedef float stack_chain_hru_real;" in (folder / "stack_chain_hru.h").read_text()
    # new-user probe: a stack's C folder had no Makefile; it builds the example and the library as a model's does
    make = subprocess.run(["make", "-s", "-C", str(folder)], capture_output=True, text=True)
    assert make.returncode == 0, make.stderr
    assert (folder / "libstack_chain_hru.a").is_file()
    out = subprocess.run([str(folder / "example")], capture_output=True, text=True, check=True).stdout
    assert out.startswith("loss ") and "\ndth " in out


def test_integer_powers_are_printed_in_numbas_order():
    """x**n as Numba evaluates it (binary powering), so float64 C and Numba agree bit for bit."""
    from symglep.codegen.c_printer import numba_powers

    assert numba_powers("a = pow(s_x, 3);") == "a = (s_x*(s_x*s_x));"
    assert numba_powers("b = pow(u + v, 5);") == "b = ((u + v)*(((u + v)*(u + v))*((u + v)*(u + v))));"
    assert numba_powers("c = 2*pow(tanh(pow(y, 4)), -3) + pow(x, 2) + pow(x, 1.5) + expow(z, 3);") == (
        "c = 2*(1.0/((tanh(((y*y)*(y*y))))*((tanh(((y*y)*(y*y))))*(tanh(((y*y)*(y*y))))))) + pow(x, 2) "
        "+ pow(x, 1.5) + expow(z, 3);")


def test_clang_and_cortex_m4(stack, folder, toolchains, tmp_path):
    """clang -Weverything on both precisions; float32 for a Cortex-M4F: no double arithmetic
    (no __aeabi_d*), nothing called but math.h (and memset/memmove), no static state."""
    for precision in ("float64", "float32"):
        src = folder / precision / stack.name / "c"
        compile_c("clang", src, tmp_path / f"{precision}.o", [f"{stack.name}.c"],
                  ["-std=c99", "-Weverything", "-Werror", "-pedantic", "-O2", "-c"])
    obj = tmp_path / "m4.o"
    compile_c("arm-none-eabi-gcc", folder / "float32" / stack.name / "c", obj, [f"{stack.name}.c"],
              CORTEX_M4 + STRICT + ["-Wdouble-promotion", "-O2", "-c"])
    calls = set(subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True,
                               check=True).stdout.split()) - {"U"}
    size = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in size.splitlines()[1].split()[:3])
    assert calls <= MATH_FUNCTIONS | COMPILER_SUPPORT, calls
    assert data == 0 and bss == 0 and text > 0


def test_mixed_stacks_compile_cleanly(tmp_path):
    """A scalar unit under an array unit (scalar glue into the array unit's inputs) and an array unit under a
    scalar one (the dense glue out of it), each with the array unit's edge list: strict gcc and clang
    -Weverything compile both precisions without a warning (the numbers: stack_hru above)."""
    network = symglep.load_system(str(ROOT / "examples" / "network_chain.py"))
    x, u = dynamicsymbols("x u")
    k = sp.Symbol("k", positive=True)
    below = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2 + x * u, [x], [k], inputs=[u], name="below")
    above = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2 + x * u, [x], [k], inputs=[u], cost=(x - 0) ** 2 / 2,
                          name="above")
    for stack in (Stack([below, network], readouts=[[x]], name="scalar_then_array"),
                  Stack([network, above], readouts=[[0, 3]], name="array_then_scalar")):
        for precision in ("float64", "float32"):
            paths = write_stack_c(stack, str(tmp_path / precision), precision)
            src = pathlib.Path(paths[0]).parent
            compile_c("gcc", src, tmp_path / f"{stack.name}_{precision}.o", [f"{stack.name}.c"],
                      STRICT + EXTRA + ["-Wconversion", "-Wdouble-promotion", "-O2", "-c"])
            compile_c("clang", src, tmp_path / f"{stack.name}_{precision}_clang.o", [f"{stack.name}.c"],
                      ["-std=c99", "-Weverything", "-Werror", "-pedantic", "-O2", "-c"])
