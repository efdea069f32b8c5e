"""C99 kernels of array models (docs/c-kernels.md, "Array models"): built with ``gcc -std=c99 -Wall
-Wextra -Werror -pedantic`` (and more warnings) into a shared library and called through ctypes, the
free pass, the echo gradient and BPTT match the Numba array kernels at the model's declared size;
the echo matches BPTT (theory §5–§6); float32 compiles cleanly; no static state; the CLI writes them."""

import ctypes
import pathlib
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

import symglep
import test_c_kernels
from c_harness import EXTRA, STRICT, compile_c, relative_error
from symglep.cli import main
from symglep.codegen.c_printer import c_api_prefix
from symglep.network.check import draw_instance
from symglep.network.commands import write_generated

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = ["chain", "hru", "springs", "dense", "damped_hru", "beads", "learned_damping"]
DT = 0.01
STEPS = 300
FLAGS = STRICT + EXTRA + ["-Wconversion", "-O2"]


class ArrayC:
    """The float64 C API of one array model, called with numpy arrays (one sequence per call); node 0 at
    ``t0`` (a damped model's weights e^{γt} depend on it, theory §7)."""

    def __init__(self, library: pathlib.Path, model, t0: float = 0.0):
        self.t0 = t0
        self.lib = ctypes.CDLL(str(library))
        self.api = c_api_prefix(model.name)
        self.fn("work_size").restype = ctypes.c_long
        self.work = np.zeros(self.fn("work_size")())

    def fn(self, name):
        return getattr(self.lib, f"{self.api}_{name}")

    @staticmethod
    def ptr(a):
        assert a is None or (a.dtype == np.float64 and a.flags.c_contiguous)
        return None if a is None else a.ctypes.data_as(ctypes.c_void_p)

    def call(self, name, *args):
        """``P_name`` with numpy arrays (pointers), ints (long or int by position) and floats (double)."""
        conv = [self.ptr(a) if a is None or isinstance(a, np.ndarray) else a for a in args]
        return self.fn(name)(*conv)

    def free(self, th, q0, x0, u, y, h, record=True, start_velocity=False):
        K, nq = u.shape[0] - 1, q0.size
        qT, pT, loss = np.zeros(nq), np.zeros(nq), np.zeros(1)
        tq, tp = (np.zeros((K + 1, nq)), np.zeros((K + 1, nq))) if record else (None, None)
        status = self.call("free", th, q0, x0, ctypes.c_int(start_velocity), u, y, ctypes.c_long(K),
                           ctypes.c_double(h), ctypes.c_double(self.t0), qT, pT, loss, tq, tp, self.work)
        assert status == 0
        return qT, pT, loss[0], tq, tp

    def gradient(self, th, q0, x0, u, y, h, beta, order=2, round_trip=True, learn_u=False, start_velocity=False):
        """``(loss, dth, dq0, dx0, round trip, du)``: dx0 is dC/dp0, or dC/dv0 with a velocity start; du
        dC/du (K+1, N_U) when ``learn_u``, else None."""
        nq = q0.size
        loss, dth, dq0, dx0 = np.zeros(1), np.zeros(th.size), np.zeros(nq), np.zeros(nq)
        trip = np.full(1, np.nan) if round_trip else None
        du = np.full(u.shape, np.nan) if learn_u else None
        status = self.call("gradient", th, q0, x0, ctypes.c_int(start_velocity), u, y, ctypes.c_long(u.shape[0] - 1),
                           ctypes.c_double(h), ctypes.c_double(self.t0), ctypes.c_double(beta), ctypes.c_int(order),
                           loss, dth, dq0, dx0, du, trip, self.work)
        assert status == 0
        return loss[0], dth, dq0, dx0, (trip[0] if round_trip else None), du

    def bptt_gradient(self, th, q0, x0, u, y, h, learn_u=False, start_velocity=False):
        K, nq = u.shape[0] - 1, q0.size
        loss, dth, dq0, dx0 = np.zeros(1), np.zeros(th.size), np.zeros(nq), np.zeros(nq)
        tq, tp = np.zeros((K + 1, nq)), np.zeros((K + 1, nq))
        du = np.full(u.shape, np.nan) if learn_u else None
        status = self.call("bptt_gradient", th, q0, x0, ctypes.c_int(start_velocity), u, y, ctypes.c_long(K),
                           ctypes.c_double(h), ctypes.c_double(self.t0), loss, dth, dq0, dx0, du, tq, tp, self.work)
        assert status == 0
        return loss[0], dth, dq0, dx0, du


@pytest.fixture(scope="module")
def c_root(tmp_path_factory):
    """The C files of every example in both precisions, written by the CLI's writer."""
    out = tmp_path_factory.mktemp("network-c")
    for name in NAMES:
        model = symglep.load_model(str(ROOT / "examples" / f"network_{name}.py"))
        for precision in ("float64", "float32"):
            write_generated(model, str(out / precision), "c", "auto", False, precision)
    return out


@pytest.fixture(scope="module", params=NAMES)
def case(request, c_root):
    """(model, Numba kernels, C library, flat kernel arguments of one seeded sequence at the declared size)."""
    model = symglep.load_model(str(ROOT / "examples" / f"network_{request.param}.py"))
    kern = symglep.compile(model, dt=DT)  # the cache entry tests/test_networks.py uses
    src = c_root / "float64" / model.name / "c"
    lib = src / f"lib{model.name}.so"
    compile_c("gcc", src, lib, [f"{model.name}.c"], FLAGS + ["-fPIC", "-shared"])
    theta, q0, p0, u, y = draw_instance(model, kern, model.size, 1, STEPS, DT,
                                        np.random.default_rng(NAMES.index(request.param)))
    if model.damping_parameter is not None:
        # a learned rate drawn near 1 (positive: [0.5, 1.5]) damps dC/dθ to ~1e-3 of the weighted learning
        # integrals, whose round-off, amplified by 1/β alike in C and Numba, is then 2.2e-9 of it at β = 1e-4
        # (3e-12 absolute); at γ = 0.3, 2.6e-10
        theta["gamma"] = np.array(0.3)
    args, _ = kern.prepare(theta, q0, p0, u, y)
    return model, kern, ArrayC(lib, model, t0=0.4 if model.damping_rate else 0.0), args, (theta, q0, u, y)


def _sequence(args):
    """The C arguments of the batch's one sequence: th, q0, p0, u, y."""
    th, _, _, _, q0, p0, u, y = args
    return th, q0[0], p0[0], np.ascontiguousarray(u[0]), np.ascontiguousarray(y[0])


def test_free_pass_matches_numba(case):
    """Final state, loss and the recorded trajectory: C = Numba to <= 1e-12 (relative, max-norm)."""
    model, kern, c, args, _ = case
    qT, pT, loss, tq, tp = kern.module.free(*args, DT, c.t0, True)
    cq, cp, closs, ctq, ctp = c.free(*_sequence(args), DT)
    assert relative_error(closs, loss[0]) <= 1e-12
    assert relative_error(cq, qT[0]) <= 1e-12 and relative_error(cp, pT[0]) <= 1e-12
    assert relative_error(ctq, tq[0]) <= 1e-12 and relative_error(ctp, tp[0]) <= 1e-12
    cq2, cp2, closs2, none, _ = c.free(*_sequence(args), DT, record=False)  # O(1) memory: the same numbers
    assert none is None and closs2 == closs and np.array_equal(cq2, cq) and np.array_equal(cp2, cp)


# centred at β = 1e-4 (the echo-vs-BPTT acceptance of tests/test_networks.py), Richardson at 1e-3,
# one-sided at 1e-4; C vs Numba at the same β: round-off amplified by 1/β (theory §5)
@pytest.mark.parametrize("order, beta", [(2, 1e-4), (4, 1e-3), (1, 1e-4)])
def test_echo_gradient_matches_numba(case, order, beta):
    """dC/dθ, dC/dq0, dC/dp0 and the input gradients dC/du of the C echo = the Numba echo at the same β and
    order to <= 1e-9; the un-nudged echo's round trip is round-off; without it, or without dC/du, the
    gradient is the same."""
    model, kern, c, args, _ = case
    loss, dth, dq0, dp0, du, _ = kern.module.gradient(*args, DT, c.t0, beta, order, True)
    closs, cdth, cdq0, cdp0, trip, cdu = c.gradient(*_sequence(args), DT, beta, order, learn_u=True)
    assert relative_error(closs, loss[0]) <= 1e-12
    assert relative_error(cdth, dth[0]) <= 1e-9, relative_error(cdth, dth[0])
    assert relative_error(np.concatenate([cdq0, cdp0]), np.concatenate([dq0[0], dp0[0]])) <= 1e-9
    assert 0 <= trip <= 1e-12 * max(1.0, np.max(np.abs(args[4])), np.max(np.abs(args[5])))
    assert np.any(du[0] != 0) or model.name not in ("network_hru", "network_damped_hru")  # B u reaches V
    if np.any(du[0] != 0):
        assert relative_error(cdu, du[0]) <= 1e-9, relative_error(cdu, du[0])
    else:
        assert np.all(cdu == 0)
    _, cdth2, _, _, _, none = c.gradient(*_sequence(args), DT, beta, order, round_trip=False)
    assert none is None and np.array_equal(cdth2, cdth)


def test_bptt_matches_numba_and_the_echo(case):
    """C BPTT = Numba BPTT to <= 1e-12; the C centred echo (β = 1e-4) = C BPTT to <= 1e-6 (theory §5-6)."""
    model, kern, c, args, _ = case
    loss, dth, dq0, dp0, du = kern.module.bptt_gradient(*args, DT, c.t0, True)
    closs, cdth, cdq0, cdp0, cdu = c.bptt_gradient(*_sequence(args), DT, learn_u=True)
    assert relative_error(closs, loss[0]) <= 1e-12
    assert relative_error(cdth, dth[0]) <= 1e-12
    assert relative_error(np.concatenate([cdq0, cdp0]), np.concatenate([dq0[0], dp0[0]])) <= 1e-12
    _, edth, edq0, edp0, _, edu = c.gradient(*_sequence(args), DT, 1e-4, learn_u=True)
    assert np.all(cdth != 0) or model.name != "network_chain"  # every spring and input weight is reached
    assert relative_error(edth, cdth) <= 1e-6, relative_error(edth, cdth)
    assert relative_error(np.concatenate([edq0, edp0]), np.concatenate([cdq0, cdp0])) <= 1e-6
    if np.any(du[0] != 0):
        assert relative_error(cdu, du[0]) <= 1e-12 and relative_error(edu, cdu) <= 1e-6, relative_error(edu, cdu)
    else:
        assert np.all(cdu == 0)


def test_velocity_start_matches_numba(case):
    """A velocity start (theory §3, §5; damped: p0 = e^{γ t0} m v0, §7): P_momentum and the free pass from v0
    give the momentum Numba forms; the C echo's dC/dθ (with a learned mass's PFVP term), dC/dq0 and dC/dv0
    = Numba's at the same β (<= 1e-9), C BPTT's = Numba BPTT's (<= 1e-12), and the echo = BPTT (<= 1e-6)."""
    model, kern, c, args, (theta, q0, u, y) = case
    v0 = np.random.default_rng(7).uniform(-0.3, 0.3, q0.shape)
    th, q, _, uu, yy = _sequence(args)
    x0 = np.ascontiguousarray(v0.reshape(-1))
    p0 = np.zeros_like(x0)
    c.call("momentum", th, q, x0, ctypes.c_double(c.t0), uu, p0)
    np.testing.assert_allclose(p0, kern.prepare(theta, q0, u=u, y=y, v0=v0, t0=c.t0)[0][5][0], rtol=1e-14)
    qT, pT, loss, _, _ = c.free(th, q, x0, uu, yy, DT, start_velocity=True)
    qm, pm, lm, _, _ = c.free(th, q, p0, uu, yy, DT)
    assert np.array_equal(qT, qm) and np.array_equal(pT, pm) and loss == lm
    ref = kern.gradient(theta, q0, v0=v0, u=u, y=y, beta=1e-4, t0=c.t0)
    _, cdth, cdq0, cdv0, _, _ = c.gradient(th, q, x0, uu, yy, DT, 1e-4, start_velocity=True)
    assert relative_error(cdth, ref.flat[0]) <= 1e-9
    assert relative_error(np.concatenate([cdq0, cdv0]), np.concatenate([ref.dq0.reshape(-1), ref.dv0.reshape(-1)])) <= 1e-9
    bref = kern.bptt_gradient(theta, q0, v0=v0, u=u, y=y, t0=c.t0)
    _, bdth, bdq0, bdv0, _ = c.bptt_gradient(th, q, x0, uu, yy, DT, start_velocity=True)
    assert relative_error(bdth, bref.flat[0]) <= 1e-12
    assert relative_error(np.concatenate([bdq0, bdv0]), np.concatenate([bref.dq0.reshape(-1), bref.dv0.reshape(-1)])) <= 1e-12
    assert relative_error(cdth, bdth) <= 1e-6 and relative_error(cdv0, bdv0) <= 1e-6


def test_bad_arguments_are_refused(case):
    model, kern, c, args, _ = case
    th, q0, p0, u, y = _sequence(args)
    nq = q0.size
    out = [np.zeros(1), np.zeros(th.size), np.zeros(nq), np.zeros(nq), None]
    K, h, t0, mom = ctypes.c_long(u.shape[0] - 1), ctypes.c_double(DT), ctypes.c_double(c.t0), ctypes.c_int(0)
    for beta, order in ((0.0, 2), (1e-4, 3)):  # no nudge; no contrast of order 3
        assert c.call("gradient", th, q0, p0, mom, u, y, K, h, t0, ctypes.c_double(beta), ctypes.c_int(order),
                      *out, None, c.work) == -1
    assert c.call("gradient", th, q0, p0, mom, u, y, ctypes.c_long(0), h, t0, ctypes.c_double(1e-4),
                  ctypes.c_int(2), *out, None, c.work) == -1
    assert c.call("bptt_gradient", th, q0, p0, mom, u, y, K, h, t0, *out, None, None, c.work) == -1
    assert c.call("free", th, q0, p0, mom, u, y, K, h, t0, np.zeros(nq), np.zeros(nq), np.zeros(1),
                  np.zeros((u.shape[0], nq)), None, c.work) == -1


@pytest.mark.parametrize("name", NAMES)
def test_strict_builds_no_static_state_and_example_runs(name, c_root, tmp_path):
    """Both precisions compile without a warning (-Wdouble-promotion: no silent double in float32);
    the object's .data and .bss are empty (reentrant); each example program runs, its echo agreeing
    with BPTT (float64 to 1e-6; float32 at β = 0.1 to 1e-2, its bias and round-off) and retracing the free run."""
    model = symglep.load_model(str(ROOT / "examples" / f"network_{name}.py"))
    for precision in ("float64", "float32"):
        src = c_root / precision / model.name / "c"
        obj = tmp_path / f"{precision}.o"
        compile_c("gcc", src, obj, [f"{model.name}.c"], FLAGS + ["-c"])
        size = subprocess.run(["size", str(obj)], capture_output=True, text=True, check=True).stdout
        text, data, bss = (int(v) for v in size.splitlines()[1].split()[:3])
        assert text > 0 and data == 0 and bss == 0, size
        exe = tmp_path / f"example_{precision}"
        compile_c("gcc", src, exe, ["example_main.c", f"{model.name}.c"], FLAGS)
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
        values = {line.split()[0]: np.array([float(v) for v in line.split()[1:]]) for line in out.splitlines()}
        assert np.all(np.isfinite(values["dth"])) and np.any(values["dth"] != 0)
        single = precision == "float32"
        assert values["echo_vs_bptt"][0] <= (1e-2 if single else 1e-6), values["echo_vs_bptt"]
        assert values["round_trip"][0] <= (1e-4 if single else 1e-12)


def test_cli_generate_target_c(tmp_path):
    """`symglep generate ARRAY_MODEL --target c` exits 0 and writes the four files; float32 types them float;
    a foreign file is not overwritten without --force."""
    model = str(ROOT / "examples" / "network_hru.py")
    result = CliRunner().invoke(main, ["generate", model, "--target", "c", "--precision", "float32",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "network_hru" / "c"
    assert sorted(p.name for p in folder.iterdir()) == ["Makefile", "example_main.c", "network_hru.c",
                                                         "network_hru.h"]
    assert sorted(result.output.split()) == sorted(str(p) for p in folder.iterdir())
    header = (folder / "network_hru.h").read_text()
    assert "typedef float network_hru_real;" in header and "#define network_hru_N_UNITS 64" in header
    (folder / "network_hru.c").write_text("int mine;\n")
    result = CliRunner().invoke(main, ["generate", model, "--target", "c", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "was not generated by symglep" in result.output
    assert (folder / "network_hru.c").read_text() == "int mine;\n"


@pytest.mark.usefixtures("toolchains")
def test_clang_cortex_m4_and_make(c_root, tmp_path):
    """clang -Weverything on both precisions; float32 for a Cortex-M4F: no double arithmetic (no
    __aeabi_d*), nothing called but math.h (and memset/memcpy/memmove), no static state; `make`
    builds the example and the library from the generated Makefile."""
    for name in NAMES:
        stem = f"network_{name}"
        for precision in ("float64", "float32"):
            compile_c("clang", c_root / precision / stem / "c", tmp_path / f"{precision}.o", [f"{stem}.c"],
                      ["-std=c99", "-Weverything", "-Werror", "-pedantic", "-O2", "-c"])
        obj = tmp_path / f"{stem}_m4.o"
        compile_c("arm-none-eabi-gcc", c_root / "float32" / stem / "c", obj, [f"{stem}.c"],
                  test_c_kernels.CORTEX_M4 + STRICT + ["-Wdouble-promotion", "-O2", "-c"])
        calls = set(subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True,
                                   check=True).stdout.split()) - {"U"}
        size = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True).stdout
        text, data, bss = (int(v) for v in size.splitlines()[1].split()[:3])
        assert calls <= test_c_kernels.MATH_FUNCTIONS | test_c_kernels.COMPILER_SUPPORT, calls
        assert data == 0 and bss == 0 and text > 0
    folder = c_root / "float64" / "network_chain" / "c"
    subprocess.run(["make", "-C", str(folder)], capture_output=True, text=True, check=True)
    out = subprocess.run([str(folder / "example")], capture_output=True, text=True, check=True).stdout
    assert out.startswith("loss ") and (folder / "libnetwork_chain.a").is_file()


def test_hostile_names_give_inert_c_with_the_same_numbers(c_root, tmp_path):
    """A model named with a comment end, a directive and a leading digit, arrays named like a C keyword,
    the kernels' macros (N, o0) and non-ASCII: the C is strict-clean, every name sanitised, and it
    computes network_chain's numbers bit for bit."""
    import sympy as sp

    from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r

    x, E, u, y = Coordinates("real"), Edges("N", default=lambda n: [(a, a + 1) for a in range(n - 1)]), \
        Inputs("for"), Targets("o0")
    k, B = Parameter("θ", "e", positive=True), Parameter("D", ("n", "m"))
    w, a = sp.symbols("w a", positive=True)
    evil = ArrayModel(
        lagrangian=(Sum(x.dot[i] ** 2 / 2, i) - Sum(w * x[i] ** 2 / 2 + a * x[i] ** 4 / 4, i)
                    - Sum(k[E.e] * (x[E.src] - x[E.dst]) ** 2 / 2, E) + Sum(x[i] * (B @ u)[i], i)),
        cost=Sum((x[r] - y[r]) ** 2 / 2, r), coordinates=x, parameters=[k, B], inputs=u, targets=y, edges=E,
        constants={w: 1.0, a: 0.5}, name="9 lives */ #include", size=16, sizes={"m": 1, "r": 1})
    paths = write_generated(evil, str(tmp_path), "c", "auto", False, "float64")
    folder = pathlib.Path(paths[0]).parent
    stem = c_api_prefix(evil.name)
    assert stem.startswith("m_9") and all(ch.isalnum() or ch == "_" for ch in stem)
    text = "".join(pathlib.Path(p).read_text() for p in paths)
    assert "lives */" not in text and "θ" not in text and "#include\n" not in text.replace('#include "', "")
    compile_c("gcc", folder, folder / "libevil.so", [f"{stem}.c"], FLAGS + ["-fPIC", "-shared"])
    chain = symglep.load_model(str(ROOT / "examples" / "network_chain.py"))
    src = c_root / "float64" / chain.name / "c"
    compile_c("gcc", src, tmp_path / "libchain.so", [f"{chain.name}.c"], FLAGS + ["-fPIC", "-shared"])
    c_evil, c_chain = ArrayC(folder / "libevil.so", evil), ArrayC(tmp_path / "libchain.so", chain)
    rng = np.random.default_rng(7)
    th, q0, p0 = rng.uniform(0.5, 1.5, 15 + 16), rng.uniform(-0.3, 0.3, 16), rng.uniform(-0.3, 0.3, 16)
    uu, yy = rng.uniform(-0.5, 0.5, (51, 1)), rng.uniform(-0.3, 0.3, (51, 1))
    for mine, ref in zip(c_evil.gradient(th, q0, p0, uu, yy, DT, 1e-4), c_chain.gradient(th, q0, p0, uu, yy, DT, 1e-4)):
        assert np.array_equal(mine, ref)


@pytest.mark.parametrize("name, t0", [("chain", 0.0), ("learned_damping", 0.4)])
def test_a_separable_model_on_the_midpoint_rule_matches_numba(tmp_path, name, t0):
    """`--integrator midpoint` on a separable array model (network_chain, 16 units; network_learned_damping,
    whose rate γ is learned, from t0 = 0.4: the weights e^{γt} and their γ-derivatives t e^{γt} differ from
    t0 = 0): the C midpoint passes = the Numba module's (free pass and BPTT <= 1e-12, with a velocity start;
    the echo at the same β = 1e-3 <= 1e-9). The Numba module's source runs as Python (``jit=False``): its array midpoint passes are
    compiled by tests/test_network_midpoint.py, and C against their source is the point here. Compiled,
    the echo's C-Numba difference is the round-off of Numba's reassociated sums (fastmath) through each
    step's solve, amplified by 1/β: dC/du 2.4e-11, 1.3e-10, 2.4e-9 at β = 1e-2, 1e-3, 1e-4."""
    from symglep.network.render_c import generate_network_c

    model = symglep.load_model(str(ROOT / "examples" / f"network_{name}.py"))
    for fname, text in generate_network_c(model, "float64", "midpoint").items():
        (tmp_path / fname).write_text(text)
    lib = tmp_path / "libchain.so"
    compile_c("gcc", tmp_path, lib, [f"{model.name}.c"], FLAGS + ["-fPIC", "-shared"])
    kern = symglep.compile(model, dt=DT, integrator="midpoint", jit=False)
    theta, q0, p0, u, y = draw_instance(model, kern, model.size, 1, STEPS, DT, np.random.default_rng(11))
    args, _ = kern.prepare(theta, q0, p0, u, y)
    c = ArrayC(lib, model, t0)
    qT, pT, loss, tq, tp = kern.module.free(*args, DT, t0, True)
    cq, cp, closs, ctq, _ = c.free(*_sequence(args), DT)
    assert relative_error(closs, loss[0]) <= 1e-12 and relative_error(ctq, tq[0]) <= 1e-12
    ref = kern.module.bptt_gradient(*args, DT, t0, True)
    got = c.bptt_gradient(*_sequence(args), DT, learn_u=True)
    for a, b in zip(got[1:], (ref[1][0], ref[2][0], ref[3][0], ref[4][0])):
        assert relative_error(a, b) <= 1e-12
    ref = kern.module.gradient(*args, DT, t0, 1e-3, 2, True)
    got = c.gradient(*_sequence(args), DT, 1e-3, learn_u=True)
    for a, b in zip((got[1], got[2], got[3], got[5]), (ref[1][0], ref[2][0], ref[3][0], ref[4][0])):
        assert relative_error(a, b) <= 1e-9
    v0 = np.random.default_rng(12).uniform(-0.3, 0.3, q0.shape)
    th, q, _, uu, yy = _sequence(args)
    bref = kern.bptt_gradient(theta, q0, v0=v0, u=u, y=y, t0=t0)
    _, bdth, bdq0, bdv0, _ = c.bptt_gradient(th, q, np.ascontiguousarray(v0[0]), uu, yy, DT, start_velocity=True)
    assert relative_error(np.concatenate([bdth, bdq0, bdv0]),
                          np.concatenate([bref.flat[0], bref.dq0[0], bref.dv0[0]])) <= 1e-12


def test_a_model_whose_running_cost_is_zero_builds_strictly(tmp_path):
    """HEB's setting: no running cost, a terminal cost only. The readout loops of the zero cost left q, yk, scale,
    f and u_r unused, eight warnings that -Werror turns into a failed build (new-user probe)."""
    from instances import terminal_cell

    model = terminal_cell(running=False)
    write_generated(model, str(tmp_path), "c", "auto", False, "float64")
    src = tmp_path / model.name / "c"
    compile_c("gcc", src, tmp_path / "zero.o", [f"{model.name}.c"], FLAGS + ["-c"])
