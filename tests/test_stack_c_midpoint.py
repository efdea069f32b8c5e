"""C99 kernels of stacks with units stepped by the implicit midpoint rule (theory §9, "Midpoint units";
docs/c-kernels.md): a mixed stack (examples/stack_beads.py: beads on wires by midpoint, oscillators by
leapfrog) and an all-midpoint one (examples/stack_chain_hru.py with ``with_integrator("midpoint")``),
built with gcc (strict warnings) and called through ctypes like tests/test_stack_c.py: the free pass, the
stacked echo and velocity starts match the stacks' Numba kernels; a failed Newton iteration is reported
as ``1 + step``; both precisions compile without a warning (gcc and clang -Weverything)."""

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
from test_stack_c import StackC
from symglep.stack import Stack
from symglep.stack.codegen_c import render_stack_c, write_stack_c
from symglep.stack.runtime import compile_stack
from symglep.stack.training import load_stack

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEADS = ROOT / "examples" / "stack_beads.py"
CHAIN = ROOT / "examples" / "stack_chain_hru.py"
DT = 0.05


@pytest.fixture(scope="module", params=["mixed", "all-midpoint"])
def stack(request):
    return load_stack(str(BEADS)) if request.param == "mixed" else load_stack(str(CHAIN)).with_integrator("midpoint")


@pytest.fixture(scope="module")
def kernels(stack):
    return compile_stack(stack, dt=DT)  # the same cache entry as tests/test_stack_midpoint.py


@pytest.fixture(scope="module")
def folder(stack, tmp_path_factory):
    out = tmp_path_factory.mktemp("stack-c-midpoint")
    for precision in ("float64", "float32"):
        write_stack_c(stack, str(out / precision), precision)
    return out


class MidpointC(StackC):
    """tests/test_stack_c.py's ctypes wrapper, with the status of a call that may fail."""

    def status(self, kind, th, q0, x0, x, y, h, beta=None):
        """The return code of P_free (``beta`` None) or P_gradient (centred) from (q0, p0 = x0)."""
        n, head = self.nq, (*map(self.ptr, (th, q0, x0)), ctypes.c_int(0), *map(self.ptr, (x, y)),
                            ctypes.c_long(x.shape[0] - 1), ctypes.c_double(h), ctypes.c_double(0.0))
        if kind == "free":
            return self.fn("free")(*head, *map(self.ptr, (np.zeros(n), np.zeros(n), np.zeros(1), self.work)))
        return self.fn("gradient")(*head, ctypes.c_double(beta), ctypes.c_int(2),
                                   *map(self.ptr, (np.zeros(1), np.zeros(self.nth), None, None, None, np.zeros(1),
                                                   self.work)))


@pytest.fixture(scope="module")
def c_stack(stack, folder):
    src = folder / "float64" / stack.name / "c"
    lib = src / f"lib{stack.name}.so"
    compile_c("gcc", src, lib, [f"{stack.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    return MidpointC(lib, stack)


@pytest.fixture(scope="module")
def problem(stack, kernels):
    """The sine task of tests/test_stack.py (two sequences of 300 steps), from a random start state."""
    return stack_instance(stack, kernels)


def test_units_keep_their_integrators(stack, folder):
    """The C files say which units run the midpoint rule, and only those get a Newton solve."""
    header = (folder / "float64" / stack.name / "c" / f"{stack.name}.h").read_text()
    source = (folder / "float64" / stack.name / "c" / f"{stack.name}.c").read_text()
    for i, integrator in enumerate(stack.integrators):
        name = "implicit midpoint" if integrator == "midpoint" else "Stormer-Verlet"
        assert f"{stack.units[i].name} ({name})" in header
        assert (f"static int step_{i}(" in source) == (integrator == "midpoint")


def test_c_free_pass_matches_numba(kernels, c_stack, problem):
    """Loss and final state: C = Numba to <= 1e-12 (measured 0: the same operations in the same order,
    the Newton solves included, and integer powers printed as Numba's products)."""
    theta, x, y, q0, p0 = problem
    qT, pT, loss = kernels.free(theta, x, y, q0=q0, p0=p0)
    for b in range(x.shape[0]):
        cq, cp, closs = c_stack.free(theta, q0[b], p0[b], x[b], y[b], DT)
        assert relative_error(closs, loss[b]) <= 1e-12
        assert relative_error(cq, qT[b]) <= 1e-12 and relative_error(cp, pT[b]) <= 1e-12


@pytest.mark.parametrize("order, beta, bptt_tol", [(2, 1e-4, 1e-6), (4, 1e-3, 1e-8), (1, 1e-5, 1e-3)])
def test_c_stacked_echo_matches_numba(kernels, c_stack, problem, order, beta, bptt_tol):
    """dC/dtheta, dC/dx, every unit's start gradient and the round trip at the same beta: C vs Numba
    <= 1e-10 (measured 0, both stacks, every contrast order: the un-nudged echo one node ahead and the
    nudged ones unit by unit, top first, as in Numba), for the centred, Richardson and one-sided
    contrasts (theory §5). The C echo vs BPTT through the stack, the estimator's bias: mixed 4.0e-8,
    3.1e-11, 2.7e-5; all-midpoint 3.1e-7, 2.5e-9, 4.0e-4 (centred, Richardson, one-sided)."""
    theta, x, y, q0, p0 = problem
    loss, g, dx, trip, dq0, dp0 = kernels.gradient(theta, x, y, q0=q0, p0=p0, beta=beta, learn_inputs=True,
                                                   order=order, initial_state=True)
    _, g_b, _ = kernels.bptt_gradient(theta, x, y, q0=q0, p0=p0)
    for b in range(x.shape[0]):
        closs, cg, cdx, ctrip, cdq0, cdp0 = c_stack.gradient(theta, q0[b], p0[b], x[b], y[b], DT, beta, order=order,
                                                             initial_state=True)
        assert relative_error(closs, loss[b]) <= 1e-12
        assert relative_error(cg, g[b]) <= 1e-10, relative_error(cg, g[b])
        assert relative_error(cdx, dx[b]) <= 1e-10
        assert relative_error(np.concatenate([cdq0, cdp0]), np.concatenate([dq0[b], dp0[b]])) <= 1e-10
        assert ctrip < 1e-10 and abs(ctrip - trip[b]) <= 1e-14
        assert relative_error(cg, g_b[b]) <= bptt_tol, relative_error(cg, g_b[b])  # BPTT through the stack


def test_c_velocity_start_matches_numba(stack, kernels, c_stack, problem):
    """A velocity start (theory §9: a midpoint unit's p0 = dL/dv(q0, v0) reads q0, so dC/dq0 gains its
    term): P_momenta, the free pass from v0 and the stacked echo's dC/dtheta, dC/dq0, dC/dv0 = Numba's
    (<= 1e-12; measured 0 on both stacks)."""
    theta, x, y, q0, _ = problem
    v0 = np.random.default_rng(2).uniform(-0.3, 0.3, q0.shape)
    p0 = kernels.module.momenta(theta, q0, v0, x, 0.0)
    qT, _, loss = kernels.free(theta, x, y, q0=q0, v0=v0)
    _, g, _, _, dq0, dv0 = kernels.gradient(theta, x, y, q0=q0, v0=v0, beta=1e-4, initial_state=True)
    for b in range(x.shape[0]):
        cp = np.zeros(c_stack.nq)
        c_stack.fn("momenta")(*map(c_stack.ptr, (theta, q0[b], v0[b], x[b, 0])), ctypes.c_double(0.0),
                              *map(c_stack.ptr, (cp, c_stack.work)))
        assert relative_error(cp, p0[b]) <= 1e-14
        cq, _, closs = c_stack.free(theta, q0[b], v0[b], x[b], y[b], DT, start_velocity=True)
        assert relative_error(closs, loss[b]) <= 1e-12 and relative_error(cq, qT[b]) <= 1e-12
        _, cg, _, _, cdq0, cdv0 = c_stack.gradient(theta, q0[b], v0[b], x[b], y[b], DT, 1e-4, learn_x=False,
                                                   start_velocity=True, initial_state=True)
        assert relative_error(cg, g[b]) <= 1e-12
        assert relative_error(np.concatenate([cdq0, cdv0]), np.concatenate([dq0[b], dv0[b]])) <= 1e-12


def test_newton_failure_returns_the_step(stack, kernels, c_stack, problem):
    """A midpoint unit's failed Newton iteration is the status 1 + step (the echo's steps counted on from
    K), as the C scalar and array kernels report it; Numba returns NaN there. A NaN input at node k stops
    the bottom unit's step k-1 -> k (status k); in the all-midpoint stack a NaN target at node k leaves the
    free pass running (the top unit's free step does not read it) and stops the nudged echo's step from k
    to k-1 (status K + (K - k) + 1)."""
    theta, x, y, q0, p0 = problem
    K, k = x.shape[1] - 1, 37
    bad_x = x[:1].copy()
    bad_x[0, k] = np.nan
    module = kernels.module  # the raw kernels: the wrapper refuses non-finite data
    assert np.isnan(module.free(theta, q0[:1], p0[:1], bad_x, y[:1], DT, 0.0, False)[2][0])
    assert c_stack.status("free", theta, q0[0], p0[0], bad_x[0], y[0], DT) == k
    assert c_stack.status("gradient", theta, q0[0], p0[0], bad_x[0], y[0], DT, beta=1e-4) == k
    if stack.integrators[-1] == "midpoint":
        bad_y = y[:1].copy()
        bad_y[0, k] = np.nan
        trip = module.gradient(theta, q0[:1], p0[:1], x[:1], bad_y, DT, 0.0, 1e-4, 2, False)[3]
        assert np.isnan(trip[0])
        assert c_stack.status("free", theta, q0[0], p0[0], x[0], bad_y[0], DT) == 0
        assert c_stack.status("gradient", theta, q0[0], p0[0], x[0], bad_y[0], DT, beta=1e-4) == K + (K - k) + 1


def test_float32_compiles_cleanly_and_example_runs(stack, kernels, folder, tmp_path):
    """Both precisions build with strict gcc (-Wdouble-promotion: no silent double) and both example
    programs run. Against Numba's stacked echo at the example's beta (1e-4; float32: 0.05, whose bias
    against beta = 1e-4 is 1.7e-2 for the beads): float64 bit for bit; float32, its round-off and
    Newton's float32 tolerance (1e-5), loss 1.9e-6, dC/dtheta 5.8e-5 (mixed) and 3.4e-5 (all-midpoint),
    round trip 4.8e-6."""
    for precision, beta in (("float64", 1e-4), ("float32", 0.05)):
        src = folder / precision / stack.name / "c"
        exe = tmp_path / f"example_{precision}"
        compile_c("gcc", src, exe, ["example_main.c", f"{stack.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2"])
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
        values = {line.split()[0]: np.array([float(v) for v in line.split()[1:]]) for line in out.splitlines()}
        K, h = 200, 0.05
        th = np.full(len(stack.parameter_names), 0.5)
        k = np.arange(K + 1)
        x = np.repeat(np.sin(0.05 * k)[None, :, None], kernels.n_x, axis=2)
        y = np.repeat((0.5 * np.sin(0.05 * k - 0.5))[None, :, None], kernels.n_y, axis=2)
        q0 = 0.1 * np.sin(np.arange(1, kernels.nq + 1))[None]  # the example's start: 0.1 sin(i + 1), at rest
        loss, g, _, _ = kernels.gradient(th, x, y, q0, np.zeros_like(q0), dt=h, beta=beta,
                                         retrace=False)  # float32's beta 0.05, not linear enough for the guard
        single = precision == "float32"
        assert relative_error(values["loss"], loss) <= (1e-5 if single else 1e-12)
        assert relative_error(values["dth"], g[0]) <= (1e-3 if single else 1e-10), relative_error(values["dth"], g[0])
        assert values["round_trip"][0] < (1e-4 if single else 1e-12)


def test_clang_and_cortex_m4(stack, folder, toolchains, tmp_path):
    """clang -Weverything on both precisions: no warning (no unused function, parameter or macro of the
    units' two integrators); float32 for a Cortex-M4F: the Newton solves bring no double arithmetic,
    nothing called but math.h (and memset/memmove), no static state (mixed: 5.9 kB of text)."""
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


def test_midpoint_and_array_units_compile_cleanly(toolchains, tmp_path):
    """A midpoint unit (a mass that reads the position) under an array unit and over one: strict gcc and clang
    -Weverything compile both precisions without a warning. (Measured against Numba, 300 steps: loss and
    final state 0; the echo's gradients up to 1.1e-10 at beta = 1e-4 and 9e-14 at 1e-2, the round-off of
    the array unit's fastmath loops that 1/beta amplifies, as for stack_hru in tests/test_stack_c.py.)"""
    network = symglep.load_system(str(ROOT / "examples" / "network_chain.py"))
    x, u = dynamicsymbols("x u")
    k, m = sp.symbols("k m", positive=True)
    lagrangian = m * (1 + x**2) * x.diff() ** 2 / 2 - k * x**2 / 2 + x * u
    below = symglep.Model(lagrangian, [x], [k, m], inputs=[u], name="below")
    above = symglep.Model(lagrangian, [x], [k, m], inputs=[u], cost=x**2 / 2, name="above")
    for stack in (Stack([below, network], readouts=[[x]], name="midpoint_then_array"),
                  Stack([network, above], readouts=[[0, 3]], name="array_then_midpoint")):
        assert "midpoint" in stack.integrators
        for precision in ("float64", "float32"):
            src = pathlib.Path(write_stack_c(stack, str(tmp_path / precision), precision)[0]).parent
            compile_c("gcc", src, tmp_path / f"{stack.name}_{precision}.o", [f"{stack.name}.c"],
                      STRICT + EXTRA + ["-Wconversion", "-O2", "-c"])
            compile_c("clang", src, tmp_path / f"{stack.name}_{precision}_clang.o", [f"{stack.name}.c"],
                      ["-std=c99", "-Weverything", "-Werror", "-pedantic", "-O2", "-c"])


def test_velocity_start_refused_where_the_momentum_reads_the_inputs(tmp_path):
    """A midpoint unit whose mass reads its input: p0 = dL/dv(q0, v0, u0), and dC/du0 through the glue is not
    carried, so P_gradient refuses a velocity start (-1), as the Numba stack does; from momenta it runs."""
    x, u, z, g = dynamicsymbols("x u z g")
    k, m = sp.symbols("k m", positive=True)
    below = symglep.Model(m * (1 + x**2) * (1 + u**2) * x.diff() ** 2 / 2 - k * x**2 / 2, [x], [k, m], inputs=[u],
                          name="below")
    above = symglep.Model(z.diff() ** 2 / 2 - k * z**2 / 2 + z * g, [z], [k], inputs=[g], cost=z**2 / 2, name="above")
    stack = Stack([below, above], readouts=[[x]], name="input_mass")
    assert stack.integrators == ["midpoint", "leapfrog"] and stack.momentum_reads_inputs == [0]
    src = pathlib.Path(write_stack_c(stack, str(tmp_path), "float64")[0]).parent
    lib = src / "libinput_mass.so"
    compile_c("gcc", src, lib, ["input_mass.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    c = MidpointC(lib, stack)
    K = 20
    th, q0, x0 = np.full(c.nth, 0.5), np.full(c.nq, 0.1), np.full(c.nq, 0.2)
    xs, ys = 0.3 * np.sin(0.2 * np.arange(K + 1))[:, None], np.zeros((K + 1, 0))
    for velocity, status in ((1, -1), (0, 0)):
        assert c.fn("gradient")(*map(c.ptr, (th, q0, x0)), ctypes.c_int(velocity), *map(c.ptr, (xs, ys)),
                                ctypes.c_long(K), ctypes.c_double(DT), ctypes.c_double(0.0), ctypes.c_double(1e-4),
                                ctypes.c_int(2), *map(c.ptr, (np.zeros(1), np.zeros(c.nth), None, None, None,
                                                              np.zeros(1), c.work))) == status


def test_generated_stack_beads_c_files_are_up_to_date():
    for fname, text in render_stack_c(load_stack(str(BEADS)), "float64").items():
        committed = ROOT / "generated" / "stack_beads" / "c" / fname
        assert committed.read_text() == text, (
            "regenerate: symglep generate examples/stack_beads.py --target c --out generated --force")


def test_cli_writes_the_c_files(tmp_path):
    done = subprocess.run([sys.executable, "-m", "symglep", "generate", str(BEADS), "--target", "c",
                           "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "stack_beads" / "c"
    assert sorted(p.name for p in folder.iterdir()) == ["Makefile", "example_main.c", "stack_beads.c", "stack_beads.h"]
    assert "beads (implicit midpoint) -> output (Stormer-Verlet)" in (folder / "stack_beads.h").read_text()
