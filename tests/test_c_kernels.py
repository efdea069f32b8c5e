"""The C99 target (docs/c-kernels.md): compiled, sanitised, cross-compiled, and equal to the Numba kernels.

* float64: every bundled example's C kernels, built with ``gcc -std=c99 -Wall -Wextra -Werror
  -pedantic`` (and more warnings) into a shared library and called through ctypes, match
  ``symglep.compile(model)`` to ``1e-12`` relative (``max|a − b| / max|b|``) on trajectories,
  echoes and gradients (centred and one-sided, momentum and velocity starts), and the
  single-step function reproduces the free trajectory;
* float32: the same kernels in single precision stay within the bounds docs/c-kernels.md
  states (gradients against the float64 estimator at the same β = 0.1);
* ``-fsanitize=address,undefined``: each example program is built with the sanitizers, run as
  a subprocess (ASan cannot be loaded into Python by ctypes), and its printed results are
  checked against Numba;
* clang ``-Weverything -Werror`` and a Cortex-M4F cross-compile (``arm-none-eabi-gcc``), whose
  code sizes the test prints. Missing compilers are installed once per session by
  ``scripts/install-toolchains.sh`` (Debian packages; the ``toolchains`` fixture of tests/conftest.py,
  started in the background once the tests are collected); if that fails the tests FAIL, never skip.

Numba kernels come from the shared on-disk cache (tests/conftest.py): test_kernels.py compiles
the same six models.
"""

from __future__ import annotations

import ctypes
import functools
import os
import pathlib
import re
import subprocess
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import symglep
from symglep.codegen.c_printer import numba_powers
from symglep.cli import main
from symglep.codegen.c_printer import c_api_prefix
from symglep.codegen.output import write_generated

from c_harness import (EXTRA, STRICT, CKernels, compile_c, generate, instance, parse_example_output,
                       relative_error)

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py")  # every bundled scalar example
                  if not p.name.startswith(("network_", "stack_")))  # (arrays: test_networks.py; stacks: test_stack.py)
# the C gradient is the echo where it is exact: plain (reversible, no Rayleigh force) or with the time-reversal
# flip of its parameters (the charged particle's field, theory §4); the digital PFVP of the gyroscope is Numba-only
WITH_GRADIENT = ["cart_pole", "charged_particle", "damped_chain", "damped_oscillator", "double_pendulum",
                 "harmonic_oscillator", "harmonic_oscillator_terminal", "heb_nonlinear_oscillator", "oscillator_chain",
                 "oscillator_chain_terminal", "relativistic_particle"]  # *_terminal, heb_*: terminal costs
#                                                                           (theory §10)
DT = 0.01
STEPS = 150
MATCH_TOL = 1e-12        # float64 C against Numba
F32_BETA = 0.1           # the nudge docs/c-kernels.md recommends for float32
F32_GRAD_TOL = 3e-3      # float32 gradient (centred, beta = 0.1) vs the float64 estimator (docs/c-kernels.md)
# The cart-pole's learning integrand dL/dm carries the gravity term g*l*cos(theta): |G| / (2 beta |dC/dtheta|)
# = 1.1e6 on this instance, so float32 round-off (6e-8) alone bounds its contrast at ~7e-2 (docs/c-kernels.md).
F32_GRAD_TOL_BY_MODEL = {"cart_pole": 5e-2}
# The Richardson contrast (4 D(b) - D(2b)) / 3 carries sqrt((4/3)^2 + (1/6)^2) = 1.34 times the centred
# contrast's round-off (D(2b) divides the same rounding by 2b): its float32 bound is 1.4 times as large.
F32_RICHARDSON_FACTOR = 1.4
F32_TRAJ_TOL = 1e-4      # float32 free trajectories and echoes vs float64 (docs/c-kernels.md)
CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
MATH_FUNCTIONS = {"sinf", "cosf", "tanf", "expf", "logf", "powf", "sqrtf", "fabsf", "atanf", "atan2f",
                  "asinf", "acosf", "sinhf", "coshf", "tanhf", "floorf", "ceilf"}
COMPILER_SUPPORT = {"memset", "memcpy", "memmove"}  # GCC requires them even of freestanding code


pytestmark = pytest.mark.usefixtures("toolchains")


@functools.lru_cache(maxsize=None)
def _model(name: str):
    return symglep.load_model(str(ROOT / "examples" / f"{name}.py"))


@functools.lru_cache(maxsize=None)
def _numba(name: str):
    return symglep.compile(_model(name), dt=DT)


def _te(name: str, th):
    """The echo's parameters of the example ``name`` (its time-reversal flip applied, theory §4)."""
    return _numba(name).echo_parameters(th)


@pytest.fixture(scope="module")
def c_dir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("c-kernels")


def _library(c_dir: pathlib.Path, name: str, precision: str) -> CKernels:
    folder = generate(_model(name), c_dir / precision, precision)
    lib = folder / f"lib{name}.so"
    if not lib.exists():
        compile_c("gcc", folder, lib, [f"{name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    return CKernels(lib, _model(name), precision)


# ---------------------------------------------------------------------------
# float64: the C kernels are the Numba kernels
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
def test_float64_kernels_match_numba(name, c_dir):
    c, kern = _library(c_dir, name, "float64"), _numba(name)
    mod = kern.module
    th, q0, p0, u, y = instance(_model(name), seed=EXAMPLES.index(name), steps=STEPS, single=False)
    B = lambda a: a[None]  # noqa: E731 - one sequence as a batch of one
    for velocity in (False, True):
        qT, pT, loss, tq, tp, status, _ = mod.free(th, B(q0), B(p0), velocity, B(u), B(y), DT, 0.0, True)
        assert status[0] == -1
        cq, cp, cl, ctq, ctp = c.free(th, q0, p0, velocity, u, y, DT)
        for mine, ref in ((ctq, tq[0]), (ctp, tp[0]), (cq, qT[0]), (cp, pT[0]), (cl, loss[0])):
            assert relative_error(mine, ref) <= MATCH_TOL
        nq, np_, nl = c.free(th, q0, p0, velocity, u, y, DT, record=False)[:3]  # O(1) memory variant
        assert relative_error(nq, qT[0]) <= MATCH_TOL and relative_error(nl, loss[0]) <= MATCH_TOL
    # single steps reproduce the recorded free trajectory (momentum start)
    qT, pT, loss, tq, tp, _, _ = mod.free(th, B(q0), B(p0), False, B(u), B(y), DT, 0.0, True)
    sq, sp_ = c.steps(th, q0, p0, u[:21], y[:21], DT)
    assert relative_error(sq, tq[0, :21]) <= MATCH_TOL and relative_error(sp_, tp[0, :21]) <= MATCH_TOL
    betas = np.array([1e-4, -1e-4])
    sigma, pi, G, _, status, _ = mod.echo(th, _te(name, th), qT, pT, B(u), B(y), DT, 0.0, betas, False)
    cs, cpi, cG = c.echo(th, qT[0], pT[0], u, y, DT, betas)
    for mine, ref in ((cs, sigma[0]), (cpi, pi[0]), (cG, G[0])):
        assert relative_error(mine, ref) <= MATCH_TOL
    if name not in WITH_GRADIENT:
        assert not hasattr(c.lib, f"{c.api}_gradient")  # no exact echo (the gyroscope): no C gradient
        return
    for velocity in (False, True):
        for order in (2, 1, 4):     # centred, one-sided, Richardson (echoes at +-beta, +-2 beta)
            loss, dth, dq0, dx0, du, status, _ = mod.gradient(th, B(q0), B(p0), velocity, B(u), B(y), DT, 0.0,
                                                              1e-4, order, True, _te(name, th), False)
            assert status[0] == -1
            got = c.gradient(th, q0, p0, velocity, u, y, DT, 1e-4, order, learn_u=True)
            for mine, ref in zip(got, (loss[0], dth[0], dq0[0], dx0[0])):
                assert relative_error(mine, ref) <= MATCH_TOL, (velocity, order)
            if u.shape[1]:  # dC/du: the same sums in the same order
                assert np.any(du[0] != 0) and relative_error(got[4], du[0]) <= MATCH_TOL, (velocity, order)


@pytest.mark.parametrize("name", ["oscillator_chain", "damped_chain"])  # cubic springs (leapfrog, midpoint)
def test_integer_powers_round_as_numba_rounds_them(name, c_dir):
    """New-user probe: pow(x, 3) in the float64 C kernels rounds differently from Numba's x*(x*x); the echo's
    1/β made that 4.6e-11 of a 3-mass cubic chain's input gradient. Printed as Numba's products, the free
    trajectories and the echo gradient are the Numba kernels' to the last bit."""
    c, kern = _library(c_dir, name, "float64"), _numba(name)
    text = (c_dir / "float64" / f"{name}.c").read_text() if (c_dir / "float64" / f"{name}.c").exists() else \
        next((c_dir / "float64").rglob(f"{name}.c")).read_text()
    assert numba_powers(text) == text and ", 3)" not in text
    th, q0, p0, u, y = instance(_model(name), seed=3, steps=400, single=False)
    B = lambda a: a[None]  # noqa: E731
    mod = kern.module
    tq = mod.free(th, B(q0), B(p0), False, B(u), B(y), DT, 0.0, True)[3]
    assert np.array_equal(c.free(th, q0, p0, False, u, y, DT)[3], tq[0])
    loss, dth, _, _, du, _, _ = mod.gradient(th, B(q0), B(p0), False, B(u), B(y), DT, 0.0, 1e-4, 2, True, th, False)
    got = c.gradient(th, q0, p0, False, u, y, DT, 1e-4, 2, learn_u=True)
    assert np.array_equal(got[1], dth[0]) and np.array_equal(got[4], du[0])


def test_c_arguments_are_checked(c_dir):
    c = _library(c_dir, "double_pendulum", "float64")
    th, q0, p0, u, y = instance(_model("double_pendulum"), seed=0, steps=5, single=False)
    with pytest.raises(AssertionError, match="-1"):
        c.gradient(th, q0, p0, False, u, y, DT, 0.0, 2)         # beta = 0
    with pytest.raises(AssertionError, match="-1"):
        c.gradient(th, q0, p0, False, u, y, DT, 1e-4, 3)        # no contrast of order 3
    with pytest.raises(AssertionError, match="-1"):
        c.echo(th, q0, p0, u, y, DT, [0.2, 0.1, 0.0, -0.1, -0.2])  # 5 echoes (MAX_ECHOES = 4)
    with pytest.raises(AssertionError, match="-1"):
        c.free(th, q0, p0, False, u[:1], y[:1], DT)              # K = 0
    # new-user probe: h <= 0 and NaN returned 0 with a meaningless loss (the Python API refuses them)
    for h in (-0.01, 0.0, float("nan"), float("inf")):
        for call in (lambda: c.free(th, q0, p0, False, u, y, h), lambda: c.gradient(th, q0, p0, False, u, y, h, 1e-4, 2),
                     lambda: c.echo(th, q0, p0, u, y, h, [1e-4, -1e-4])):
            with pytest.raises(AssertionError, match="-1"):
                call()
    # a trajectory buffer for q without one for p wrote through NULL (ASan: SEGV); now -1, as the array kernels do
    K = u.shape[0] - 1
    out = [np.zeros(c.n) for _ in range(2)] + [np.zeros(1), np.zeros((K + 1, c.n))]
    status = c.fn("free")(*(c.ptr(c.arr(a)) for a in (th, q0, p0)), 0, c.ptr(c.arr(u)), c.ptr(c.arr(y)),
                          ctypes.c_long(K), c.real(DT), c.real(0.0), *(c.ptr(a) for a in out), None, c.ptr(c.work))
    assert status == -1


def test_the_headers_compile_as_cpp(c_dir, tmp_path):
    """New-user probe: C++ (Arduino, mbed) could not include the header (restrict is not C++, no C linkage). The
    scalar, array and stack headers now declare C linkage; a C++ program calls a kernel compiled as C."""
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    folder = generate(_model("harmonic_oscillator"), c_dir / "cpp", "float64")
    main = tmp_path / "use.cpp"
    main.write_text(textwrap.dedent("""\
        #include <cstdio>
        #include "harmonic_oscillator.h"
        int main() {
            static double work[harmonic_oscillator_WORK_SIZE];
            const double th[2] = {1.0, 1.0}, q0[1] = {0.3}, p0[1] = {0.0}, u[11] = {0}, y[11] = {0};
            double qT[1], pT[1], loss[1];
            int s = harmonic_oscillator_free(th, q0, p0, 0, u, y, 10, 0.01, 0.0, qT, pT, loss, nullptr, nullptr, work);
            std::printf("%d %.17g\\n", s, qT[0]);
            return s;
        }
        """))
    obj = tmp_path / "ho.o"
    subprocess.run(["gcc", "-std=c99", "-O2", "-c", str(folder / "harmonic_oscillator.c"), "-o", str(obj)], check=True)
    exe = tmp_path / "use"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{folder}", str(main), str(obj), "-lm",
                    "-o", str(exe)], check=True)
    status, q = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert status == "0" and abs(float(q) - 0.3 * np.cos(0.1)) < 1e-4
    for name in ("network_chain", "stack_chain_hru"):
        header = next((ROOT / "generated" / name / "c").glob("*.h"))
        probe = tmp_path / f"{name}.cpp"
        probe.write_text(f'#include "{header.name}"\nint main() {{ return 0; }}\n')
        subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", f"-I{header.parent}", str(probe)],
                       check=True)


def test_newton_failure_is_reported_with_its_step(c_dir):
    """A step far too large for the pendulum: the C kernel returns 1 + the failing step, like Numba."""
    c = _library(c_dir, "double_pendulum", "float64")
    th, q0, p0, u, y = instance(_model("double_pendulum"), seed=0, steps=5, single=False)
    with pytest.raises(AssertionError) as failed:
        c.free(th, q0, 50 * np.ones(2), False, u, y, 3.0)
    status = int(str(failed.value).split("\n")[0])
    mod = _numba("double_pendulum").module
    numba_status = mod.free(th, q0[None], 50 * np.ones((1, 2)), False, u[None], y[None], 3.0, 0.0, False)[5][0]
    assert numba_status >= 0 and status == numba_status + 1


# ---------------------------------------------------------------------------
# float32: within the bounds docs/c-kernels.md states
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
def test_float32_kernels_within_stated_error(name, c_dir):
    c, mod = _library(c_dir, name, "float32"), _numba(name).module
    th, q0, p0, u, y = instance(_model(name), seed=EXAMPLES.index(name), steps=STEPS, single=True)
    B = lambda a: a[None]  # noqa: E731
    qT, pT, loss, tq, tp, _, _ = mod.free(th, B(q0), B(p0), False, B(u), B(y), DT, 0.0, True)
    cq, cp, cl, ctq, ctp = c.free(th, q0, p0, False, u, y, DT)
    assert ctq.dtype == np.float32
    for mine, ref in ((ctq, tq[0]), (ctp, tp[0]), (cl, loss[0])):
        assert relative_error(mine, ref) <= F32_TRAJ_TOL
    betas = np.array([F32_BETA, -F32_BETA])
    sigma, pi, G = mod.echo(th, _te(name, th), qT, pT, B(u), B(y), DT, 0.0, betas, False)[:3]
    for mine, ref in zip(c.echo(th, qT[0], pT[0], u, y, DT, betas), (sigma[0], pi[0], G[0])):
        assert relative_error(mine, ref) <= F32_TRAJ_TOL
    if name not in WITH_GRADIENT:
        return
    for velocity in (False, True):
        for order in (2, 4):      # centred, Richardson (float32 round-off bounds both the same way)
            ref = mod.gradient(th, B(q0), B(p0), velocity, B(u), B(y), DT, 0.0, F32_BETA, order, False,
                               _te(name, th), False)
            got = c.gradient(th, q0, p0, velocity, u, y, DT, F32_BETA, order)
            errors = [relative_error(mine, r[0]) for mine, r in zip(got[1:], ref[1:4])]
            print(f"{name} float32 gradient error (dtheta, dq0, dx0), velocity={velocity}, order {order}: "
                  + ", ".join(f"{e:.1e}" for e in errors))
            factor = F32_RICHARDSON_FACTOR if order == 4 else 1.0
            assert max(errors) <= factor * F32_GRAD_TOL_BY_MODEL.get(name, F32_GRAD_TOL)


# ---------------------------------------------------------------------------
# Sanitizers: the example programs under ASan + UBSan
# ---------------------------------------------------------------------------

def _example_data(model):
    """The data example_main.c builds (exact in binary, see the template)."""
    K = 200
    k = np.arange(K + 1)
    th = 1 + 0.125 * np.arange(len(model.parameters))
    q0, p0 = 0.125 * (np.arange(model.n) + 1), 0.0625 * np.arange(model.n)
    u = np.repeat((0.0625 * (k % 5) - 0.125)[:, None], len(model.u), axis=1)
    y = np.repeat((0.25 - 0.03125 * (k % 7))[:, None], len(model.y), axis=1)
    return th, q0, p0, u, y


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_program_under_sanitizers(name, c_dir):
    model, mod = _model(name), _numba(name).module
    th, q0, p0, u, y = _example_data(model)
    B = lambda a: a[None]  # noqa: E731
    qT, pT, loss, tq, tp, _, _ = mod.free(th, B(q0), B(p0), False, B(u), B(y), DT, 0.0, True)
    for precision, tol, beta in (("float64", MATCH_TOL, 1e-4),
                                 ("float32", F32_GRAD_TOL_BY_MODEL.get(name, F32_GRAD_TOL), F32_BETA)):
        folder = generate(model, c_dir / f"asan-{precision}", precision)
        exe = folder / "example-asan"
        compile_c("gcc", folder, exe, ["example_main.c", f"{name}.c"],
                  STRICT + ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            "-fno-omit-frame-pointer"])
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0 and not run.stderr, run.stderr[-2000:]
        out = parse_example_output(run.stdout)
        assert out["free_status"][0] == 0 and out["step_status"][0] == 0
        # float64: to the bit budget of MATCH_TOL; float32: states relative to the trajectory's size
        traj_tol = MATCH_TOL if precision == "float64" else F32_TRAJ_TOL
        sq = None if precision == "float64" else np.max(np.abs(tq))
        sp_ = None if precision == "float64" else np.max(np.abs(tp))
        assert relative_error(out["loss"], loss[0]) <= traj_tol
        assert relative_error(out["qT"], qT[0], sq) <= traj_tol and relative_error(out["pT"], pT[0], sp_) <= traj_tol
        assert relative_error(out["step_q"], tq[0, 10], sq) <= traj_tol
        assert relative_error(out["step_p"], tp[0, 10], sp_) <= traj_tol
        if name in WITH_GRADIENT:
            ref = mod.gradient(th, B(q0), B(p0), False, B(u), B(y), DT, 0.0, beta, 2, False, _te(name, th), False)
            assert out["gradient_status"][0] == 0
            for key, r in zip(("dtheta", "dq0", "dp0"), ref[1:4]):
                assert relative_error(out[key], r[0]) <= tol, (precision, key)
        else:
            assert "dtheta" not in out


# ---------------------------------------------------------------------------
# Other compilers: clang, and a Cortex-M4F cross-compile
# ---------------------------------------------------------------------------

def test_clang_compiles_every_example_without_warnings(c_dir):
    for name in EXAMPLES:
        for precision in ("float64", "float32"):
            folder = generate(_model(name), c_dir / f"clang-{precision}", precision)
            for source in (f"{name}.c", "example_main.c"):
                compile_c("clang", folder, folder / (source + ".o"), [source],
                          ["-std=c99", "-Weverything", "-Werror", "-pedantic", "-O2", "-c"])


def test_cortex_m4_cross_compile_and_code_size(c_dir):
    """float32 kernels for a Cortex-M4F: warning-free, no double arithmetic, only math.h calls; sizes printed."""
    rows = []
    for name in EXAMPLES:
        folder = generate(_model(name), c_dir / "cortex-m4", "float32")
        obj = folder / f"{name}.o"
        compile_c("arm-none-eabi-gcc", folder, obj, [f"{name}.c"],
                  CORTEX_M4 + STRICT + ["-Wdouble-promotion", "-O2", "-c"])
        size = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True)
        text, data, bss = map(int, size.stdout.splitlines()[1].split()[:3])
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True,
                                   check=True).stdout.split()
        calls = {s for s in undefined if s != "U"}
        assert calls <= MATH_FUNCTIONS | COMPILER_SUPPORT, calls   # no libc beyond math.h, no __aeabi_d* (double)
        assert data == 0 and bss == 0 and text > 0                   # no static state: reentrant
        rows.append(f"{name:24s} text {text:6d} B  calls {', '.join(sorted(calls)) or '-'}")
    print("\nCortex-M4F (arm-none-eabi-gcc -O2, float32) code size of <model>.o:\n" + "\n".join(rows))


# ---------------------------------------------------------------------------
# The command line and the sanitiser
# ---------------------------------------------------------------------------

def test_generate_c_cli(tmp_path):
    runner = CliRunner()
    model = str(ROOT / "examples/harmonic_oscillator.py")
    result = runner.invoke(main, ["generate", model, "--target", "c", "--precision", "float32",
                                  "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "harmonic_oscillator" / "c"
    names = ["Makefile", "example_main.c", "harmonic_oscillator.c", "harmonic_oscillator.h"]
    assert sorted(p.name for p in folder.iterdir()) == names
    assert sorted(result.output.split()) == sorted(str(folder / n) for n in names)
    assert "typedef float harmonic_oscillator_real;" in (folder / "harmonic_oscillator.h").read_text()
    (folder / "Makefile").write_text("all:\n\techo mine\n")
    result = runner.invoke(main, ["generate", model, "--target", "c", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "was not generated by symglep" in result.output
    assert (folder / "Makefile").read_text() == "all:\n\techo mine\n"
    assert "typedef float" in (folder / "harmonic_oscillator.h").read_text()  # nothing half-written
    result = runner.invoke(main, ["generate", model, "--target", "c", "--out", str(tmp_path), "--force"])
    assert result.exit_code == 0 and "typedef double" in (folder / "harmonic_oscillator.h").read_text()
    make = subprocess.run(["make", "-s", "-C", str(folder)], capture_output=True, text=True)
    assert make.returncode == 0, make.stderr
    run = subprocess.run([str(folder / "example")], capture_output=True, text=True)
    assert run.returncode == 0 and "gradient_status 0" in run.stdout
    result = runner.invoke(main, ["generate", model, "--target", "numba", "--precision", "float32",
                                  "--out", str(tmp_path)])
    assert result.exit_code == 2 and "float32 is for --target c" in result.output


def test_hostile_names_give_inert_c_with_the_same_numbers(tmp_path):
    """Model and symbol names that are C keywords, comment ends or shell code stay inert."""
    from test_codegen import _evil_model

    evil_model = _evil_model()
    folder = generate(evil_model, tmp_path, "float64")
    header = next(folder.glob("*.h"))
    source = header.with_suffix(".c")
    api = c_api_prefix(evil_model.name)
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", api) and header.stem.replace("_", "").isalnum()
    for path, quotes in ((header, 0), (source, 2)):
        code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)   # the names appear in comments only
        code = code.replace('extern "C" {', "extern C {")                # a header's C++ linkage block
        assert code.count('"') == quotes                                  # no string but the #include
        includes = [line for line in code.splitlines() if line.startswith("#include")]
        assert includes == ([] if quotes == 0 else ["#include <math.h>", "#include <stddef.h>", f'#include "{header.name}"'])
    lib = folder / "libevil.so"
    compile_c("gcc", folder, lib, [source.name], STRICT + EXTRA + ["-O2", "-fPIC", "-shared"])
    evil = CKernels(lib, evil_model, "float64")
    plain = _library(tmp_path, "harmonic_oscillator", "float64")
    th, q0, p0, u, y = instance(_model("harmonic_oscillator"), seed=7, steps=50, single=False)
    for a, b in zip(evil.gradient(th, q0, p0, False, u, y, DT, 1e-4, 2),
                    plain.gradient(th, q0, p0, False, u, y, DT, 1e-4, 2)):
        np.testing.assert_array_equal(a, b)


def test_model_without_inputs_or_targets_and_a_digit_name(tmp_path):
    """Zero-sized inputs, targets and outputs, a name starting with a digit: clean C, both integrators."""
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols

    x = dynamicsymbols("x")
    k = sp.Symbol("k", positive=True)
    model = symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * x**4 / 4, coordinates=[x], parameters=[k],
                          cost=x**2 / 2, name="3 no-input")
    assert c_api_prefix(model.name) == "m_3_x20_no_x2d_input"
    losses = {}
    for integrator in ("leapfrog", "midpoint"):
        folder = pathlib.Path(write_generated(model, str(tmp_path / integrator), "c", integrator)[0]).parent
        exe = folder / "example"
        compile_c("gcc", folder, exe, ["example_main.c", f"{folder.parent.name}.c"],
                  STRICT + EXTRA + ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and not run.stderr, run.stderr[-2000:]
        out = parse_example_output(run.stdout)
        assert out["free_status"][0] == 0 and out["gradient_status"][0] == 0
        losses[integrator] = out["loss"][0]
    # two second-order integrators of the same system, 200 steps of 0.01: losses agree to O(h^2)
    assert abs(losses["leapfrog"] - losses["midpoint"]) <= 1e-3 * abs(losses["leapfrog"])


def test_input_gradients_of_a_cost_that_reads_the_inputs(tmp_path):
    """dC/du when the cost reads the inputs too (its direct term h w_k dc/du_k along the free run, theory §5):
    C = the Numba module's generated source (run as Python: its compiled form is checked on the examples) to
    1e-12 for the leapfrog and the midpoint rule, centred, one-sided (which runs the free system once more for
    that term) and Richardson, momentum and velocity starts; the centred C estimate = BPTT's dC/du (<= 1e-6)."""
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols

    x, u, y = dynamicsymbols("x u y")
    k, m = sp.symbols("k m", positive=True)
    for integrator, kinetic in (("leapfrog", m * x.diff() ** 2 / 2), ("midpoint", (1 + x**2) * x.diff() ** 2 / 2)):
        model = symglep.Model(lagrangian=kinetic - k * x**2 / 2 - x**4 / 4 + x * u, coordinates=[x], parameters=[k, m],
                              inputs=[u], targets=[y], cost=(x - y) ** 2 / 2 + u * x**2 / 2,
                              name=f"cost_reads_u_{integrator}")
        folder = pathlib.Path(write_generated(model, str(tmp_path / integrator), "c", integrator)[0]).parent
        assert "#define COST_READS_U 1" in (folder / f"{folder.parent.name}.c").read_text()
        lib = folder / "lib.so"
        compile_c("gcc", folder, lib, [f"{folder.parent.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC",
                                                                                      "-shared"])
        c = CKernels(lib, model, "float64")
        kern = symglep.compile(model, integrator=integrator, dt=DT, jit=False)  # the generated source as Python
        mod = kern.module
        th, q0, p0, uu, yy = instance(model, seed=5, steps=STEPS, single=False)
        B = lambda a: a[None]  # noqa: E731
        for velocity in (False, True):
            for order in (2, 1, 4):
                du = mod.gradient(th, B(q0), B(p0), velocity, B(uu), B(yy), DT, 0.0, 1e-4, order, True, th, False)[4]
                got = c.gradient(th, q0, p0, velocity, uu, yy, DT, 1e-4, order, learn_u=True)[4]
                assert relative_error(got, du[0]) <= MATCH_TOL, (integrator, velocity, order)
            ref = kern.bptt_gradient(th, B(q0), **({"v0": B(p0)} if velocity else {"p0": B(p0)}), u=B(uu), y=B(yy))
            got = c.gradient(th, q0, p0, velocity, uu, yy, DT, 1e-4, 2, learn_u=True)[4]
            assert relative_error(got, ref.du[0]) <= 1e-6, (integrator, velocity)


def test_the_example_program_starts_at_the_models_initial_positions():
    """The example program started every model at q0 = 0.125 (i + 1): a Kepler orbit in polar coordinates fell
    through r = 0 and printed nonsense with status 0 (new-user probe). A model that declares its
    initial_positions starts there (the draw of seed 0, as check's), others as before."""
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols

    from symglep.check import start_positions
    from symglep.codegen.render_c import generate_c

    r, phi = dynamicsymbols("r phi")
    k, m = sp.symbols("k m", positive=True)
    kepler = symglep.Model(lagrangian=m * (r.diff() ** 2 + r**2 * phi.diff() ** 2) / 2 + k / r, coordinates=[r, phi],
                           parameters=[k, m], initial_positions=lambda rng: [rng.uniform(1, 1.5), 0.0], name="kepler")
    start = start_positions(kepler, np.random.default_rng(0))[0]
    example = generate_c(kepler)["example_main.c"]
    assert f"q0[0] = {float(start[0])!r};" in example and "q0[1] = 0.0;" in example
    plain = generate_c(symglep.load_model(str(ROOT / "examples" / "harmonic_oscillator.py")))["example_main.c"]
    assert "initial_positions" not in plain


def test_fractional_and_negative_powers_round_as_numba_does(tmp_path):
    """x**(1/3), x**(-1/2) and x**(-2) as the float64 C printer writes them equal Numba's values bit for bit
    (new-user probe: a Cardano velocity map's C gradient was 2.6e-12 off Numba's, because C printed cbrt(x),
    pow(x, -1.0/2.0) and pow(x, -2), which round apart from Numba's pow(x, 1/3), 1/sqrt(x) and 1/(x*x) in
    about half the cases; the echo's 1/beta amplifies a last bit to ~1e-12 of the gradient)."""
    import ctypes

    import numba
    import sympy as sp

    from symglep.codegen.c_printer import CPrinter
    from symglep.codegen.printer import NumbaPrinter

    x = sp.Symbol("x")
    exprs = [x ** sp.Rational(1, 3), 1 / sp.sqrt(x), x**-2, (x + 1) ** sp.Rational(-1, 3), x ** sp.Rational(3, 2)]
    c_text = [numba_powers(CPrinter({x: "x"}).doprint(e)) for e in exprs]
    assert "cbrt" not in " ".join(c_text) and "-1.0/2.0" not in " ".join(c_text)
    body = "".join(f"    out[{i}] = {t};\n" for i, t in enumerate(c_text))
    (tmp_path / "p.c").write_text(f"#include <math.h>\nvoid f(double x, double *out) {{\n{body}}}\n")
    compile_c("gcc", tmp_path, tmp_path / "libp.so", ["p.c"], ["-std=c99", "-O2", "-shared", "-fPIC"])
    lib = ctypes.CDLL(str(tmp_path / "libp.so"))
    lib.f.argtypes = [ctypes.c_double, ctypes.POINTER(ctypes.c_double)]
    printer = NumbaPrinter({x: "x"})
    source = "def g(x, out):\n" + "".join(f"    out[{i}] = {printer.doprint(e)}\n" for i, e in enumerate(exprs))
    space = {"math": __import__("math")}
    exec(source, space)
    g = numba.njit(space["g"])
    rng = np.random.default_rng(0)
    c_out, n_out = np.empty(len(exprs)), np.empty(len(exprs))
    for value in rng.uniform(0.05, 20.0, 3000):
        lib.f(value, c_out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        g(value, n_out)
        assert np.array_equal(c_out, n_out), (value, c_out - n_out)


def test_a_c_gradient_whose_echoes_do_not_retrace_returns_minus_2(c_dir):
    """Probe r2 (session 37): the C gradient returned status 0 and a contrast 1e-3 off BPTT where the Numba kernels
    raise (the echoes did not retrace the free run, or not linearly in β). The C kernels now run the same test and
    return -2 with their outputs written, which are the Numba kernels' unguarded contrast; below the stability
    limit the status is 0."""
    c, kern = _library(c_dir, "harmonic_oscillator", "float64"), _numba("harmonic_oscillator")
    rng = np.random.default_rng(2)
    u, y = rng.normal(0, 0.3, (51, 1)), rng.normal(0, 0.3, (51, 1))
    th, q0, p0 = np.array([0.9, 1.3]), np.array([0.2]), np.array([-0.1])  # omega = 0.83
    assert c.gradient(th, q0, p0, False, u, y, 0.05, 1e-4, 2)[1].shape == (2,)
    for order in (1, 2, 4):
        with pytest.raises(AssertionError, match="-2"):
            c.gradient(th, q0, p0, False, u, y, 3.0, 1e-4, order)  # omega dt = 2.5
        with pytest.raises(symglep.NumericalError, match="did not retrace the free run"):
            kern.gradient(th, q0[None], p0=p0[None], u=u[None], y=y[None], dt=3.0, beta=1e-4, order=order)
