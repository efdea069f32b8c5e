"""Array (network) models: index-form derivation, loop kernels at run-time n, and agreement with
the element-by-element (scalar) method (docs/networks.md). Each network compiles once per session."""

import json
import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.check import rel_err
from symglep.cli import main
from symglep.errors import ModelError, SymglepError
from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, j, r
from symglep.network.check import draw_instance
from symglep.network.derive import derive as derive_array
from symglep.network.expand import expand
from symglep.network.runtime import generate_source

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = ["dense", "springs", "hru"]
DT = 0.01


def example(name):
    return symglep.load_model(str(ROOT / "examples" / f"network_{name}.py"))


@pytest.fixture(scope="module", params=NAMES)
def network(request):
    model = example(request.param)
    return model, symglep.compile(model, dt=DT)


def instance(model, kern, n, batch=1, steps=200, seed=0):
    return draw_instance(model, kern, n, batch, steps, DT, np.random.default_rng(seed))


# -- acceptance: echo vs BPTT at n = 64, beta = 1e-4 ---------------------------------------

def test_echo_matches_bptt_at_n64(network):
    """Centred echo (3 passes, O(1) memory) = BPTT of the same leapfrog to <= 1e-6 (theory §5-6)."""
    model, kern = network
    theta, q0, p0, u, y = instance(model, kern, 64, batch=2, steps=1000)
    echo = kern.gradient(theta, q0, p0, u, y, beta=1e-4)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y)
    np.testing.assert_array_equal(echo.loss, bptt.loss)
    for b in range(2):
        assert rel_err(echo.flat[b], bptt.flat[b]) <= 1e-6
        assert rel_err(np.concatenate([echo.dq0[b].ravel(), echo.dp0[b].ravel()]),
                       np.concatenate([bptt.dq0[b].ravel(), bptt.dp0[b].ravel()])) <= 1e-6
    assert set(echo.dtheta) == {p.name for p in model.parameters}


@pytest.mark.parametrize("t0", ["1", np.nan, [0.5]])
def test_a_bad_start_time_is_one_line(network, t0):
    """t0 = "1" was NumPy's own TypeError (ufunc 'isfinite' not supported) in an array model's kernels, where the
    other kinds say "t0 must be a finite number" (new-user probe)."""
    model, kern = network
    theta, q0, p0, u, y = instance(model, kern, 4, steps=10)
    for call in (kern.free, kern.gradient, kern.bptt_gradient):
        with pytest.raises(SymglepError, match="t0 must be a finite number"):
            call(theta, q0, p0, u, y, t0=t0)


def test_one_sided_is_first_order_in_beta(network):
    """One-sided (2 passes) errs by O(beta): 10x smaller beta, about 10x smaller error; centred is better."""
    model, kern = network
    theta, q0, p0, u, y = instance(model, kern, 16, steps=300, seed=1)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y).flat[0]
    errs = [rel_err(kern.gradient(theta, q0, p0, u, y, beta=b, centred=False).flat[0], bptt) for b in (1e-3, 1e-4)]
    assert 5 < errs[0] / errs[1] < 20
    assert rel_err(kern.gradient(theta, q0, p0, u, y, beta=1e-4).flat[0], bptt) < errs[1] / 10


def test_bptt_matches_finite_differences(network):
    """BPTT is the gradient of the discrete loss: central differences on drawn entries agree to 1e-6."""
    model, kern = network
    theta, q0, p0, u, y = instance(model, kern, 12, steps=150, seed=2)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y)
    args, _ = kern.prepare(theta, q0, p0, u, y)
    th = args[0]
    picks = np.random.default_rng(3).choice(th.size, 5, replace=False)
    fd = []
    for idx in picks:
        hi, lo = th.copy(), th.copy()
        hi[idx] += 1e-6
        lo[idx] -= 1e-6
        fd.append((kern.module.free(hi, *args[1:], DT, 0.0, False)[2][0]
                   - kern.module.free(lo, *args[1:], DT, 0.0, False)[2][0]) / 2e-6)
    assert rel_err(bptt.flat[0, picks], np.array(fd)) <= 1e-6


def test_one_compiled_module_serves_every_n(network):
    """n is a run-time size: the batch driver is compiled once and runs at n = 5 and n = 40."""
    model, kern = network
    for n in (5, 40):
        theta, q0, p0, u, y = instance(model, kern, n, batch=3, steps=20)
        out = kern.gradient(theta, q0, p0, u, y)
        assert out.dq0.shape[:2] == (3, n)
    assert len(kern.module._batch.signatures) == 1


def test_array_kernels_check_dt_and_steps(network):
    """New-user probe: the array kernels ran a negative dt and read dt = 0 as the default step."""
    model, kern = network
    theta, q0, p0, u, y = instance(model, kern, 5, steps=20)
    for dt in (-0.01, 0.0):
        with pytest.raises(symglep.SymglepError, match="dt must be a positive number"):
            kern.free(theta, q0, p0, u, y, dt=dt)
    with pytest.raises(symglep.SymglepError, match=r"steps=10 but the inputs u given have K = 20 steps"):
        kern.gradient(theta, q0, p0, u, y, steps=10)
    wide = np.concatenate([u, u[..., :1]], axis=2)  # one input channel too many: B is not to blame alone
    with pytest.raises(symglep.SymglepError, match=rf"parameter B must have shape \(5, {u.shape[2] + 1}\) at n = 5 "
                                                   rf"units \(from q0\), m = {u.shape[2] + 1} input channels \(from u\)"):
        kern.free(theta, q0, p0, wide, y)


# -- acceptance: n = 8, array model vs the same model written with scalar symbols -----------

@pytest.mark.parametrize("name", NAMES)
def test_array_equals_scalar_model_at_n8(name):
    """Derivation (forces, Hamiltonian, learning rule, numerically) and gradients (BPTT and echo) of the
    array model equal those of its element-by-element expansion (symglep.Model) at n = 8."""
    model = example(name)
    kern = symglep.compile(model, dt=DT)
    n, K = 8, 60
    scalar = expand(model, n)
    skern = symglep.compile(scalar, dt=DT, jit=False)  # interpreted: no second Numba compile in CI
    theta, q0, p0, u, y = instance(model, kern, n, steps=K, seed=4)
    args, _ = kern.prepare(theta, q0, p0, u, y)
    th, off, E, ro = args[:4]
    assert [s.name for s in scalar.parameters] == [s.name for s in skern.model.parameters]
    assert th.size == len(scalar.parameters)

    # derivation: dV/dq, H and dL/dtheta at a random state (scalar: sympy; array: generated loops)
    d = symglep.derive(scalar)
    rng = np.random.default_rng(5)
    q = q0[0] + rng.uniform(-0.1, 0.1, q0.shape[1])
    v = rng.uniform(-0.3, 0.3, q.size)
    uk = u[0, 3]
    values = dict(zip(scalar.q, q)) | dict(zip(scalar.v, v)) | dict(zip(scalar.u, uk))
    values |= dict(zip(scalar.parameters, th)) | dict(scalar.constants)
    forcing = np.array([float(sp.N(f.xreplace(values), 30)) for f in d.el.forcing])
    mass = np.array([float(sp.N(m.xreplace(values))) for m in d.el.mass_matrix.diagonal()])
    force = kern.module.force(th, off, E, ro, q, uk, 3 * DT, y[0, 3], 0.0)
    assert rel_err(-force, forcing) <= 1e-12
    p = mass * v
    H = float(sp.N(d.hamiltonian.xreplace(values | dict(zip(scalar.p, p))), 30))
    H_array = kern.module.energy(th, off, E, q[None, None], p[None, None], uk[None, None], DT, 0.0)[0, 0]
    assert abs(H_array - H) <= 1e-12 * max(1.0, abs(H))
    rule = np.array([float(sp.N(d.learning_rule[s].xreplace(values), 30)) for s in scalar.parameters])
    kinetic = np.zeros(th.size)
    if model.kinetic.slots:  # dK/dm_i = v_i^2 / 2 for the HRU's learnable masses
        m_off = off[[p_.name for p_ in model.parameters].index("m")]
        kinetic[m_off:m_off + n] = v**2 / 2
    assert rel_err(kinetic - kern.module.potential_partials(th, off, E, q, uk, 3 * DT), rule) <= 1e-12

    # gradients: BPTT to round-off; the same echo estimator on both sides, to round-off amplified by 1/(2 beta)
    bs = skern.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    ba = kern.bptt_gradient(theta, q0, p0, u, y)
    assert rel_err(ba.flat[0], bs.dtheta[0]) <= 1e-12
    assert rel_err(np.concatenate([ba.dq0.ravel(), ba.dp0.ravel()]), np.concatenate([bs.dq0[0], bs.dx0[0]])) <= 1e-12
    es = skern.gradient(th, q0, p0=p0, u=u, y=y, beta=1e-1)
    ea = kern.gradient(theta, q0, p0, u, y, beta=1e-1)
    assert rel_err(ea.flat[0], es.dtheta[0]) <= 1e-12
    assert rel_err(np.concatenate([ea.dq0.ravel(), ea.dp0.ravel()]), np.concatenate([es.dq0[0], es.dx0[0]])) <= 1e-12
    np.testing.assert_allclose(ea.loss, es.loss, rtol=1e-13)


# -- generated files, derivation reports, CLI ----------------------------------------------

# the damped examples' committed files too (their kernels are compiled by tests/test_network_damping.py and
# tests/test_network_learned_damping.py)
DAMPED = ["damped_hru", "learned_damping"]


@pytest.mark.parametrize("name", NAMES + DAMPED)
def test_generated_network_files_are_up_to_date(name):
    model = example(name)
    committed = ROOT / "generated" / model.name / "numba" / "kernels.py"
    assert committed.read_text(encoding="utf-8") == generate_source(model), (
        f"{committed} is stale; regenerate with: symglep generate examples/network_{name}.py")


@pytest.mark.parametrize("name", ["chain"] + NAMES + DAMPED)
def test_generated_network_c_files_are_up_to_date(name):
    """generated/<model>/c/ (float64) holds exactly what `symglep generate --target c` writes today."""
    from symglep.network.render_c import generate_network_c

    model = example(name)
    folder = ROOT / "generated" / model.name / "c"
    files = generate_network_c(model)
    hint = f"regenerate with: symglep generate examples/network_{name}.py --target c --out generated"
    assert folder.is_dir() and sorted(p.name for p in folder.iterdir()) == sorted(files), hint
    for fname, text in files.items():
        assert (folder / fname).read_text(encoding="utf-8") == text, f"{folder / fname} is stale; {hint}"


def test_generated_code_does_not_depend_on_n():
    """The default size is not part of the generated code: n only exists at run time."""
    model = example("dense")
    source = generate_source(model)
    model.size = 1024
    assert generate_source(model) == source
    assert "64" not in source.split("import numpy")[1].split("def t0")[0]


def test_index_form_report():
    d = derive_array(example("dense"))
    rules = {r_["parameter"]: r_ for r_ in d["learning_rule"]}
    assert rules["W"]["element"] == "W[i,j]" and rules["W"]["reads"] == ["q[i]", "q[j]"]
    assert "(local)" in rules["W"]["locality"]
    assert d["time_reversible"] and d["separable"]
    assert any("W[j,i]" in t for t in d["force_terms"])  # the transpose term of a non-symmetric W
    hru = {r_["parameter"]: r_ for r_ in derive_array(example("hru"))["learning_rule"]}
    assert "(A@q)[k]" in hru["A"]["reads"] and "row" in hru["A"]["locality"]
    assert "m_i" in derive_array(example("hru"))["residuals"]["pfvp"]
    assert derive_array(example("hru"))["element_pieces"]["terms"] == ["site", "projection"]  # docs' names


def test_cli_commands_on_a_network(tmp_path):
    runner = CliRunner()
    path = str(ROOT / "examples" / "network_hru.py")
    out = runner.invoke(main, ["derive", path, "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output)["kind"] == "array"
    out = runner.invoke(main, ["residuals", path, "--bc", "pfvp"])
    assert out.exit_code == 0 and "PFVP" in out.output
    out = runner.invoke(main, ["generate", path, "--out", str(tmp_path)])
    assert out.exit_code == 0 and (tmp_path / "network_hru" / "numba" / "kernels.py").exists()
    for args in (["generate", str(ROOT / "examples" / "network_beads.py"), "--integrator", "leapfrog",
                  "--out", str(tmp_path / "c")],
                 ["check", path, "--bc", "civp", "--size", "9"], ["check", path, "--size", "0"],
                 ["check", str(ROOT / "examples" / "harmonic_oscillator.py"), "--size", "4"]):
        out = runner.invoke(main, args)
        assert out.exit_code == 2 and out.output.startswith("error: ") and out.output.count("\n") == 1
    assert not (tmp_path / "c").exists()
    out = runner.invoke(main, ["check", path, "--steps", "200", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["rel_err_echo_vs_bptt"] <= 1e-6


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text.replace("\\{", "").replace("\\}", ""):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("name", NAMES)
def test_latex_reports(name):
    runner = CliRunner()
    path = str(ROOT / "examples" / f"network_{name}.py")
    derive_tex = runner.invoke(main, ["derive", path, "--format", "latex"])
    residuals_tex = runner.invoke(main, ["residuals", path, "--format", "latex"])
    for out in (derive_tex, residuals_tex):
        assert out.exit_code == 0, out.output
        assert _balanced(out.output)
        assert out.output.count("\\begin{align}") == out.output.count("\\end{align}") >= 1
    math = [ln for ln in derive_tex.output.splitlines() if "&=" in ln]
    assert any(ln.startswith("V &= \\sum_") for ln in math)
    assert not any(ch in ln for ln in math for ch in "Σ·−[")  # the text glue became LaTeX
    assert "PFVP" in residuals_tex.output and "CIVP" in residuals_tex.output
    if name == "dense":
        assert "\\frac{\\partial L}{\\partial W_{i j}}" in derive_tex.output
    if name == "springs":
        assert "\\sum_{e \\in E}" in derive_tex.output and "x_{d_e 0}" in derive_tex.output
        # one equation per component of the vector coordinate, not the components' forces summed
        assert any(ln.startswith("\\left(m_{i} \\ddot{x}_{i}\\right)_{1} &= -\\frac{\\partial V}{\\partial x_{i 1}}")
                   for ln in math)
        assert not any("component" in ln for ln in math)


def test_check_with_parameters_file_and_size(tmp_path):
    runner = CliRunner()
    path = str(ROOT / "examples" / "network_dense.py")
    args = ["check", path, "--steps", "100", "--size", "6", "--format", "json"]
    seeded = runner.invoke(main, args)
    assert seeded.exit_code == 0, seeded.output
    report = json.loads(seeded.output)
    assert report["units"] == 6
    model = example("dense")
    kern = symglep.compile(model)
    theta = draw_instance(model, kern, 6, 1, 100, 0.01, np.random.default_rng(0))[0]
    params = tmp_path / "p.json"
    params.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in theta.items()}))
    same = json.loads(runner.invoke(main, args + ["--params", str(params)]).output)
    assert same["loss"] == report["loss"]  # the file holds the seeded draw: the same instance
    theta["W"] = 2 * np.asarray(theta["W"])
    params.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in theta.items()}))
    other = json.loads(runner.invoke(main, args + ["--params", str(params)]).output)
    assert other["loss"] != report["loss"] and other["passed"]
    theta["W"] = np.zeros((5, 5))
    params.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in theta.items()}))
    bad = runner.invoke(main, args + ["--params", str(params)])
    assert bad.exit_code == 2 and "error: parameter W must have shape" in bad.output
    assert "shape" in json.loads(bad.stdout)["error"]  # --format json: the failure as JSON on stdout too
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    one = runner.invoke(main, ["check", path, "--size", "1"])  # a network has two units at least
    assert one.exit_code == 2 and "--size must be at least 2 units" in one.output


def test_check_warns_like_the_scalar_check():
    """The array check warns as the scalar one does (new-user probe: a run-away instance FAILED with no reason):
    a spring constant against its declared sign, the growth of a run-away instance, a round trip above the
    tolerance; and the velocity start's row takes a β of its own."""
    from symglep.network.check import render_text, run_check

    model = example("chain")
    kern = symglep.compile(model)
    theta = draw_instance(model, kern, 8, 1, 300, 0.01, np.random.default_rng(0))[0]
    theta["k"] = -3.0 * np.asarray(theta["k"])  # every spring pushes apart: the chain flies off
    report = run_check(model, steps=300, n=8, params=theta)
    text = render_text(report)
    assert "warning: parameter k has 7 of 7 entries against its declaration positive=True" in text
    from symglep.check import growth_warning  # the quartic on-site term bounds this run: the warning alone

    (grows,) = growth_warning(model, np.zeros((1, 8)), np.zeros((1, 8)), np.full((1, 8), 5e3), np.zeros((1, 8)),
                              True, "their init ranges")
    assert "this instance is unstable" in grows and "; B carry no sign assumption and were drawn in their init" in grows
    calm = run_check(model, steps=300, n=8)
    assert calm["passed"] and calm["warnings"] == []
    assert calm["beta_velocity_start"] > 0 and calm["rel_err_velocity_start"] <= 1e-6


def test_a_negligible_input_gradient_is_judged_against_the_gradients_scale():
    """dC/du at round-off (1e-14 against a θ gradient of 60) is measured against 1e-8 of |dC/dθ| rather than
    its own norm (new-user probe: a 96 % 'error' between two round-off values FAILED the check)."""
    from symglep.network.check import input_error

    bptt_du, echo_du, theta = np.full(10, 9e-15), np.full(10, 8e-15), np.full(4, 30.0)
    assert rel_err(echo_du, bptt_du) > 0.1
    assert input_error(echo_du, bptt_du, theta) == pytest.approx(np.sqrt(10) * 1e-15 / (1e-8 * 60.0))
    assert input_error(2 * bptt_du + 1.0, bptt_du + 1.0, theta) == pytest.approx(rel_err(2 * bptt_du + 1, bptt_du + 1))


def test_check_bc_expands_the_array_model():
    out = CliRunner().invoke(main, ["check", str(ROOT / "examples" / "network_dense.py"), "--bc", "all",
                                    "--size", "2", "--steps", "200", "--format", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["array_model"] == "network_dense" and report["units"] == 2 and report["passed"]
    rows = {r_["estimate"]: r_ for r_ in report["estimates"]}
    assert rows["CIVP bulk only"]["error"] > 0.01  # dropping the residual biases CIVP
    for name in ("CIVP bulk + residual", "PFVP echo (momentum start)", "CBVP bulk (K = 40)"):
        assert rows[name]["error"] <= 1e-6
    assert report["symbolic_residual_error"] <= 1e-6


# -- bad declarations: one-line errors ----------------------------------------------------

def _declare(lagrangian, cost=None, params=None):
    q, u, y = Coordinates("q"), Inputs("u"), Targets("y")
    W = Parameter("W", ("n", "n"))
    L = lagrangian(q, W, u)
    return ArrayModel(L, cost or Sum((q[r] - y[r]) ** 2 / 2, r), q, params if params is not None else [W], u, y)


@pytest.mark.parametrize("lagrangian, message", [
    (lambda q, W, u: Sum(q.dot[i] ** 2 / 2, i) - Sum(q.dot[i] * q[i], i), "kinetic term must be .* got q.dot"),
    (lambda q, W, u: Sum((1 + (W @ q)[i] ** 2) * q.dot[i] ** 2 / 2, i), "not a product"),
    (lambda q, W, u: Sum(q.dot[i] ** 2 / 2, i) + Sum(W[i, j] * q[i] * q[j], i), "cannot be read at index"),
    (lambda q, W, u: Sum(q.dot[i] ** 4, i), "kinetic term must be"),
    (lambda q, W, u: Sum(q.dot[i] ** 2 / 2, i) + Sum(W[j, i] * sp.tanh(q[i]) * q[j], i, j),
     r"a dense pair reads W\[i, j\] .* rename them, Sum\(W\[j, i\] f\(q\[i\]\) g\(q\[j\]\), i, j\) = "
     r"Sum\(W\[i, j\] f\(q\[j\]\) g\(q\[i\]\), i, j\)"),
    (lambda q, W, u: Sum(q[i] ** 2, i), "no kinetic term"),
    (lambda q, W, u: Sum(q.dot[i] ** 2 / 2, i) + Sum(q[i] * u[i], i), "inputs enter through a product"),
    (lambda q, W, u: Sum((2 + sp.sin(dynamicsymbols._t)) * q.dot[i] ** 2 / 2, i),
     r"the kinetic term may not read the time t: a mass that changes in time is not served"),
])
def test_bad_declarations_are_refused(lagrangian, message):
    with pytest.raises(ModelError, match=message):
        _declare(lagrangian)


def test_undeclared_parameter_and_wrong_shapes():
    with pytest.raises(ModelError, match="not listed in parameters"):
        _declare(lambda q, W, u: Sum(q.dot[i] ** 2 / 2, i) + Sum(W[i, j] * q[i] * q[j], i, j), params=[])
    model = example("dense")
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, u, y = instance(model, kern, 6, steps=5)
    theta["W"] = theta["W"][:5]
    with pytest.raises(SymglepError, match="W must have shape"):
        kern.gradient(theta, q0, p0, u, y)



def test_equal_symbols_shared_by_sympy_caches_resolve_to_this_models_arrays():
    """SymPy's caches may hand back an equal element symbol made by an earlier load of the same model
    (its own symbol cache evicted, the expression cache not): elements resolve by name in the model."""
    first = example("dense")
    sp.Symbol._Symbol__xnew_cached_.cache_clear()  # evict the symbol cache only (as its LRU bound does)
    second = example("dense")
    assert generate_source(second) == generate_source(first)
    assert derive_array(second)["learning_rule"] == derive_array(first)["learning_rule"]


def test_targets_alone_fix_the_number_of_steps():
    """Without u (a model with no inputs, or inputs left at zero) the targets fix K (new-user probe: 'inputs u
    missing: pass it, or pass steps=K' on a model that has no inputs)."""
    model = example("chain")
    kern = symglep.compile(model)
    theta, q0, p0, u, y = draw_instance(model, kern, 6, 1, 30, 0.01, np.random.default_rng(2))
    implicit = kern.free(theta, q0, p0, y=y)
    explicit = kern.free(theta, q0, p0, np.zeros_like(u), y)
    assert np.array_equal(implicit[2], explicit[2]) and np.array_equal(implicit[0], explicit[0])


def test_a_blow_up_is_located_in_the_free_run():
    """An array model's NaN or overflow names the step, the sequence, the time and the state's size before it,
    as a scalar model's does (new-user probe: 'a non-finite value appeared' alone)."""
    from symglep.diagnose import NumericalError

    model = example("chain")
    kern = symglep.compile(model)
    theta, q0, p0, u, y = draw_instance(model, kern, 6, 1, 400, 0.01, np.random.default_rng(1))
    theta["k"] = 50.0 * np.asarray(theta["k"])  # stiff springs: dt = 0.5 is far past the leapfrog's limit
    with pytest.raises(NumericalError, match=r"free phase: a non-finite value appeared first at step \d+ of "
                                             r"sequence 0 \(t = [\d.]+\); before it max \|q\| = ") as info:
        kern.free(theta, q0, p0, u, y, dt=0.5)
    step = int(str(info.value).split("first at step ")[1].split()[0])
    qT, pT, _ = kern.free(theta, q0, p0, u[:, :step], y[:, :step], dt=0.5)  # the step before it is finite
    assert np.all(np.isfinite(qT)) and np.all(np.isfinite(pT))
    with pytest.raises(NumericalError, match=f"BPTT: a non-finite value appeared first at step {step} "):
        kern.bptt_gradient(theta, q0, p0, u, y, dt=0.5)


def test_more_readout_units_than_units_is_refused(tmp_path):
    """sizes r = 3 on a network of 2 units: the default readout (the last 3) would wrap to unit -1 and read a
    unit twice (new-user probe: check passed with that loss); it is refused in one line, before compiling."""
    from symglep.network.model import readout_units

    with pytest.raises(SymglepError, match="3 readout units .* but the network has 2 units"):
        readout_units(2, 3)
    assert list(readout_units(3, 3)) == [0, 1, 2]
    path = tmp_path / "three_readouts.py"
    path.write_text(
        "from symglep.network import ArrayModel, Coordinates, Edges, Parameter, Sum, Targets, i, r\n"
        "x, y = Coordinates('x'), Targets('y')\n"
        "E = Edges('E', default=lambda n: [(a, a + 1) for a in range(n - 1)])\n"
        "k = Parameter('k', 'e', positive=True)\n"
        "model = ArrayModel(lagrangian=Sum(x.dot[i] ** 2 / 2, i) - Sum(x[i] ** 2 / 2, i) - Sum(k[E.e] * (x[E.src] - x[E.dst]) ** 2 / 2, E),\n"
        "    cost=Sum((x[r] - y[r]) ** 2 / 2, r), coordinates=x, parameters=[k], targets=y, edges=E,\n"
        "    name='three_readouts', size=4, sizes={'r': 3})\n")
    res = CliRunner().invoke(main, ["check", str(path), "--size", "2", "--steps", "20"])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "3 readout units (sizes['r'], or the width of the targets y given) but the network has 2 units" in res.output


def test_the_expanded_model_starts_where_the_array_model_does():
    """check --bc runs on the expanded scalar model: it starts at the array model's initial_positions (the 2-D
    lattice of network_springs), flattened unit by unit, not in the scalar default box (new-user probe)."""
    from symglep.check import start_positions
    from symglep.network.expand import expand

    model = symglep.load_system(str(ROOT / "examples" / "network_springs.py"))
    scalar = expand(model, 4)
    got = start_positions(scalar, np.random.default_rng(3))
    want = np.asarray(model.initial_positions(4, np.random.default_rng(3)), dtype=float).reshape(-1)
    assert np.array_equal(got.reshape(-1), want)
    assert expand(symglep.load_system(str(ROOT / "examples" / "network_chain.py")), 4).initial_positions is None


def test_a_kink_in_an_array_model_is_differentiated_branch_by_branch():
    """Max(0, q - 0.1) in a site term (new-user probe): its second derivative was DiracDelta, which no array
    printer prints (generate failed); the element forms are now Piecewise, as a scalar model's, and the
    echo equals BPTT across the kink (kernels run as Python)."""
    from symglep.network.runtime import compile_array_model

    q, u, y = Coordinates("q"), Inputs("u"), Targets("y")
    b = Parameter("b", "n")
    w = sp.Symbol("w", positive=True)
    model = ArrayModel(lagrangian=Sum(q.dot[i] ** 2 / 2, i) - Sum(w * sp.Max(0, q[i] - 0.1) ** 2 + q[i] ** 2 / 2
                                                               + b[i] * q[i], i),
                       cost=Sum((q[r] - y[r]) ** 2 / 2, r), coordinates=q, parameters=[b], inputs=u, targets=y,
                       constants={w: 3.0}, name="array_kink", size=3, sizes={"m": 1, "r": 1})
    assert not any(t.phi.has(sp.Max) for t in model.potential_terms)
    kern = compile_array_model(model, 0.02, jit=False)
    K = 150
    theta = {"b": np.array([0.2, -0.3, 0.1])}
    q0, p0 = np.array([[0.0, 0.3, -0.2]]), np.array([[0.8, 0.0, 0.5]])  # units 0 and 1 cross q = 0.1
    u, yy = np.zeros((1, K + 1, 1)), np.full((1, K + 1, 1), 0.05)
    bptt = kern.bptt_gradient(theta, q0, p0, u, yy).flat[0]
    echo = kern.gradient(theta, q0, p0, u, yy, beta=1e-6).flat[0]
    assert np.max(np.abs(echo - bptt)) <= 1e-6 * np.max(np.abs(bptt))


@pytest.mark.parametrize("name, command", [("network_dense", "derive"), ("network_dense", "residuals"),
                                           ("stack_hru", "derive")])
def test_latex_reports_are_ascii_for_pdflatex(name, command):
    """The LaTeX of array models and stacks held Σ, ∂, β, ≠, ² in \\intertext: pdfLaTeX stopped at the first
    (new-user probe). Prose is now LaTeX (\\Sigma, \\partial, ...) and the output plain ASCII."""
    from symglep.report import latex_text

    out = CliRunner().invoke(main, [command, str(ROOT / "examples" / f"{name}.py"), "--format", "latex"])
    assert out.exit_code == 0, out.output
    assert out.output.isascii(), sorted({c for c in out.output if not c.isascii()})
    assert latex_text("∂L/∂θ = Σ ẋ² ≠ 0 (§7)") == r"$\partial$L/$\partial$$\theta$ = $\Sigma$ \.{x}$^{2}$ $\neq$ 0 (\S{}7)"


def test_the_pfvp_residual_names_a_scalar_in_the_mass():
    """m_i = m[i]·l² with l learned: the PFVP residual named only m and printed ∂²L/∂m_i∂v_i = v_i, without
    the l² (new-user probe; the kernels were right). Both are mass parameters, through ∂m_i/∂θ."""
    from symglep.network.derive import residuals

    q, y = Coordinates("q"), Targets("y")
    m, l = Parameter("m", "n", positive=True), sp.Symbol("l", positive=True)
    model = ArrayModel(lagrangian=Sum(m[i] * l**2 * q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2, i),
                       cost=Sum((q[r] - y[r]) ** 2 / 2, r), coordinates=q, parameters=[m, l], targets=y,
                       name="pendula", size=3)
    text = residuals(model, True)["pfvp"]
    assert "Σ_i ∂m_i/∂θ q.dot[i](0) · ∂βq_i(0)" in text and "(mass parameters: l, m)" in text
    assert "∂²L/∂m_i∂v_i" not in text


def test_the_finite_differences_test_entries_whose_gradient_is_not_zero():
    """New-user probe: a readout on isolated units left most of θ with an exact zero gradient, the six entries drawn
    uniformly were all such zeros, and the check printed "BPTT vs finite diff. 0.000e+00 ok". The entries are now
    drawn among the live ones, the zeros only filling up when too few are live."""
    from symglep.network.check import FD_ENTRIES, _fd_entries

    gradient = np.zeros(40)
    gradient[[3, 17, 29]] = [0.5, -2.0, 1e-5]
    picks = _fd_entries(gradient, np.random.default_rng(0))
    assert len(picks) == FD_ENTRIES == 6 and {3, 17, 29} <= set(picks.tolist()) and len(set(picks.tolist())) == 6
    gradient = np.arange(1.0, 41.0)
    gradient[::2] = 0.0
    picks = _fd_entries(gradient, np.random.default_rng(1))
    assert len(picks) == 6 and np.all(gradient[picks] != 0)
    # at n = 10⁵ most entries were 1e-21 … 1e-78, below the differences' round-off, and the check failed on them:
    # entries under FD_RELEVANT of the largest are drawn only when too few others are
    gradient = np.geomspace(1e-78, 1e-21, 1000)
    gradient[[10, 500, 900, 901, 902, 903, 904]] = [0.3, -1.0, 2e-4, 5e-3, 0.1, -0.7, 1e-2]
    for seed in range(5):
        picks = _fd_entries(gradient, np.random.default_rng(seed))
        assert len(picks) == 6 and np.all(np.abs(gradient[picks]) >= 2e-4), picks


@pytest.mark.parametrize("clash", ["parameter", "target", "input", "constant"])
def test_a_name_given_to_two_things_is_refused(clash):
    """New-user probe: Parameter("x") beside Coordinates("x") shared the elements x[i], the model silently became
    another one (no force at all) and `symglep check` passed on it; Targets("x") made the cost zero. A scalar Model
    refuses such a clash; an array model now does too, naming both roles."""
    x = Coordinates("x")
    c = Parameter("c", "n", positive=True)
    args = dict(lagrangian=Sum(x.dot[i] ** 2 / 2, i) - Sum(c[i] * x[i] ** 2 / 2, i), cost=Sum((x[r] - 0) ** 2 / 2, r),
                coordinates=x, parameters=[c], name="clash", size=3)
    if clash == "parameter":
        args["parameters"] = [c, Parameter("x", "n")]
    elif clash == "target":
        args["targets"] = Targets("x")
    elif clash == "input":
        args.update(inputs=Inputs("c"), sizes={"m": 1, "r": 1})
    else:
        args["constants"] = {sp.Symbol("x"): 1.0}
    role = {"parameter": "parameter", "target": "target", "input": "input", "constant": "constant"}[clash]
    first = "parameter" if clash == "input" else "coordinate"
    with pytest.raises(ModelError, match=rf"is used twice: as {first} and as {role}; rename one"):
        ArrayModel(**args)


def test_a_dense_pair_term_that_reads_one_side_is_derived():
    """New-user probe: Sum(W[i, j] q[j]²/2, i, j) (the pair's element reads only its second unit) made `derive` and
    `residuals` an internal error (IndexError) while check and generate ran. Its force on unit i is
    Σ_j W[j,i] q_i, checked here against the expanded model's ∂V/∂q_i."""
    from symglep.commands import derive_report, residuals_report
    from symglep.network.derive import force_contributions

    q, W, y = Coordinates("q"), Parameter("W", ("n", "n")), Targets("y")
    model = ArrayModel(lagrangian=Sum(q.dot[i] ** 2 / 2, i) - Sum(W[i, j] * q[j] ** 2 / 2, i, j),
                       cost=Sum((q[r] - y[r]) ** 2 / 2, r), coordinates=q, parameters=[W], targets=y,
                       name="pair_one_side", size=3, sizes={"r": 1})
    assert force_contributions(model) == ["Σ_j W[j,i]*q[i]"]
    small = expand(model, 3)
    Ws = np.arange(9.0).reshape(3, 3) / 7
    values = {s: Ws[a, b] for a in range(3) for b in range(3) for s in small.parameters if s.name == f"W_{a}_{b}"}
    assert len(values) == 9
    x = [0.3, -0.2, 0.5]
    V = -small.lagrangian.xreplace({v: 0 for v in small.v})
    for unit in range(3):
        got = float(sp.diff(V, small.q[unit]).xreplace(values).xreplace(dict(zip(small.q, x))))
        assert got == pytest.approx(sum(Ws[a, unit] for a in range(3)) * x[unit], rel=1e-12)
    assert "Σ_j W[j,i]*q[i]" in derive_report(model, "text")
    assert "CIVP" in residuals_report(model, "all", "text")


def test_a_scalar_parameter_is_a_symbol_and_a_zero_terminal_cost_is_none():
    """New-user probe: Parameter("gamma", ()) was accepted and then a raw TypeError where it was used;
    ArrayModel(terminal_cost=0) was refused where Model(cost=0) is not."""
    with pytest.raises(ModelError, match=r"scalar parameter is a sympy Symbol, sp.Symbol\('gamma', positive=True\)"):
        Parameter("gamma", (), positive=True)
    q, y = Coordinates("q"), Targets("y")
    model = ArrayModel(lagrangian=Sum(q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2, i), cost=Sum((q[r] - y[r]) ** 2 / 2, r),
                       coordinates=q, targets=y, terminal_cost=0, size=3, name="no_terminal")
    assert model.terminal_cost is None


def test_an_array_echo_that_does_not_retrace_its_free_run_is_refused():
    """New-user probe (scalar models): a leapfrog past its stability limit returned echo gradients 1e52x off BPTT,
    silently. The array kernels now measure, as the scalar ones do, how far the echoes' mean end misses the start:
    springs at dt = 2.2 (BPTT finite, the unguarded echo 1e134 off) raise; at dt = 0.05 the echo is BPTT's."""
    from symglep.diagnose import NumericalError

    model = symglep.load_system(str(ROOT / "examples" / "network_springs.py"))
    kern = symglep.compile(model, dt=0.01)
    rng = np.random.default_rng(0)
    for dt, retraces in ((0.05, True), (2.2, False)):
        theta, q0, p0, u, y = draw_instance(model, kern, 8, 1, 50, dt, rng)
        bptt = kern.bptt_gradient(theta, q0, p0, u, y, dt=dt).flat[0]
        unguarded = kern.gradient(theta, q0, p0, u, y, dt=dt, retrace=False).flat[0]
        if retraces:
            assert rel_err(kern.gradient(theta, q0, p0, u, y, dt=dt).flat[0], bptt) <= 1e-6
        else:
            assert np.max(np.abs(unguarded - bptt)) > 1e3 * np.max(np.abs(bptt))  # (a norm would overflow)
            for order in (1, 2):  # the one-sided echo too (a later probe: chain n = 16, silently off)
                with pytest.raises(NumericalError, match="did not retrace the free run.*stability limit"):
                    kern.gradient(theta, q0, p0, u, y, dt=dt, order=order)


def test_an_element_of_a_parameter_with_a_digit_in_its_name_typesets():
    """New-user probe: a parameter named W1 was written W_{1}_{i j} in the LaTeX derivation, a double subscript
    TeX rejects; its base is grouped now. Typeset with matplotlib's mathtext where it is installed."""
    from symglep.network.derive import element_latex

    assert element_latex("W1[i,j]") == "{W_{1}}_{i j}" and element_latex("W[i,j]") == "W_{i j}"
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    for name in ("W1[i,j]", "b2[i]", "q.dot[i]"):
        parser.parse(f"${element_latex(name)}$")


def test_a_site_term_over_another_index_is_shown_at_unit_i():
    """Sum(q[k] tanh((A@q)[k] + b[k]), k): the direct part of ∂V/∂q[i] was printed as tanh((A@q)[k] + b[k]) in
    unit i's equation (new-user probe); it is tanh((A@q)[i] + b[i]), checked against the expanded model."""
    from sympy import Symbol

    from symglep.network.derive import force_contributions

    kk = Symbol("k", integer=True, nonnegative=True)
    q, A, b = Coordinates("q"), Parameter("A", ("n", "n")), Parameter("b", "n")
    y = Targets("y")
    model = ArrayModel(lagrangian=Sum(q.dot[i] ** 2 / 2, i) - Sum(q[kk] * sp.tanh((A @ q)[kk] + b[kk]), kk),
                       cost=Sum((q[r] - y[r]) ** 2 / 2, r), coordinates=q, parameters=[A, b], targets=y,
                       name="projection", size=3, sizes={"r": 1})
    forces = force_contributions(model)
    assert forces[0] == "tanh((A@q)[i] + b[i])", forces
    assert forces[1].startswith("Σ_k A[k,i] · ("), forces
    # the expanded model: ∂V/∂q_u = tanh(z_u + b_u) + Σ_k A[k,u] q_k (1 − tanh²(z_k + b_k)), z = A q
    small = expand(model, 3)
    rng = np.random.default_rng(0)
    As, bs, x = rng.normal(size=(3, 3)) / 2, rng.normal(size=3), rng.normal(size=3) / 2
    values = {s: (As[int(s.name[2]), int(s.name[4])] if s.name.startswith("A_") else bs[int(s.name[2])])
              for s in small.parameters}
    V = -small.lagrangian.xreplace({v: 0 for v in small.v})
    z = As @ x + bs
    for unit in range(3):
        got = float(sp.diff(V, small.q[unit]).xreplace(values).xreplace(dict(zip(small.q, x))))
        want = np.tanh(z[unit]) + sum(As[a, unit] * x[a] * (1 - np.tanh(z[a]) ** 2) for a in range(3))
        assert got == pytest.approx(want, rel=1e-12)


def test_the_learning_rule_of_a_node_parameter_read_across_a_term_sums_over_its_partners():
    """Probe r1 (session 37): a node parameter h read at both ends of an edge printed ∂L/∂h[E_src] as the sum of its
    partials at the source and at the destination, and c[j] read at a pair's partner index printed without the sum
    over the pair's other unit. Each contribution now sums over the edges (or partners) that meet unit i, with the
    element renamed to unit i; each sum's summand is the partial at that end (checked here against sympy)."""
    from symglep.network import Edges
    from symglep.network.derive import learning_rules

    x, u, y = Coordinates("x"), Inputs("u"), Targets("y")
    E = Edges("E", default=lambda n: [(a, a + 1) for a in range(n - 1)])
    k = Parameter("k", "e", positive=True)
    h, c = Parameter("h", "n", positive=True), Parameter("c", "n")
    W, B = Parameter("W", ("n", "n")), Parameter("B", ("n", "m"))
    model = ArrayModel(
        lagrangian=(Sum(x.dot[i] ** 2 / 2, i) - Sum(x[i] ** 2 / 2, i)
                    - Sum(k[E.e] * h[E.src] * h[E.dst] ** 2 * (x[E.src] - x[E.dst]) ** 2 / 2, E)
                    + Sum(W[i, j] * c[j] * sp.exp(-(x[i] - x[j]) ** 2) / 2, i, j) + Sum(x[i] * (B @ u)[i], i)),
        cost=Sum((x[r] - y[r]) ** 2 / 2, r), coordinates=x, parameters=[k, h, c, W, B], inputs=u, targets=y,
        edges=E, name="node_rules", size=4, sizes={"m": 1, "r": 1})
    rules = {rule["parameter"]: rule for rule in learning_rules(model)}
    assert rules["h"]["element"] == "h[i]" and rules["c"]["element"] == "c[i]"
    src, dst = rules["h"]["dL"].split("  +  ")[::-1] if "dst_e" in rules["h"]["dL"].split("  +  ")[0] else \
        rules["h"]["dL"].split("  +  ")
    assert src.startswith("Σ_(e: src_e = i) ") and dst.startswith("Σ_(e: dst_e = i) ")
    hs, hd, kk, xs, xd = sp.symbols("h_s h_d k x_s x_d")
    V = kk * hs * hd ** 2 * (xs - xd) ** 2 / 2
    names = {"h[E_src]": hs, "h[E_dst]": hd, "k[E_e]": kk, "x[E_src]": xs, "x[E_dst]": xd}

    def parsed(text):
        for name, sym in names.items():
            text = text.replace(name, sym.name)
        return sp.sympify(text)

    assert sp.simplify(parsed(src.split(") ", 1)[1]) + sp.diff(V, hs)) == 0
    assert sp.simplify(parsed(dst.split(") ", 1)[1]) + sp.diff(V, hd)) == 0
    assert rules["c"]["dL"].startswith("Σ_j ")
    ci = parsed(rules["c"]["dL"][len("Σ_j "):].replace("W[j,i]", "w_ji").replace("x[i]", "x_i").replace("x[j]", "x_j"))
    w_ji, x_i, x_j = sp.symbols("w_ji x_i x_j")
    # ∂L/∂c_i of Σ_ab W_ab c_b e^{-(x_a - x_b)^2}/2: the terms with b = i, summed over a (renamed j)
    assert sp.simplify(ci - w_ji * sp.exp(-(x_j - x_i) ** 2) / 2) == 0
