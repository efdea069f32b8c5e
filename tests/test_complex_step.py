"""The complex-step echo (theory §5: the echo nudged by β = iε in complex arithmetic, Im G(iε)/ε)
against BPTT of the same discrete integrator, to round-off, on every bundled example with an exact
route: scalar models (leapfrog and midpoint), array models and the stack.

The complex-step kernels are a second kernel module per model (complex arithmetic). Numba-compiled
they are checked here on one model per template (``COMPILED``: the scalar leapfrog, the scalar
midpoint rule, the array model; the flipped echo and the digital PFVP are run-time branches of the
same compiled scalar kernel) and, for stacks of scalar and array units, in tests/test_stack_arrays.py;
on the other examples the same generated source runs as plain Python (``jit=False``, as
tests/test_fuzz.py does), over fewer steps (``STEPS_PLAIN``: the property does not depend on K),
against the compiled BPTT kernels: the property is the same, without a 15-45 s compile per example."""

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
from symglep.codegen.printer import NotAnalyticError
from symglep.errors import SymglepError
from symglep.loader import load_system
from symglep.network.check import draw_instance

from instances import exact_route_kernels, scalar_instance

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
TOL = 1e-12
DT = 0.01
STEPS = 300
STEPS_PLAIN = 60  # steps of an interpreted (jit=False) complex-step run
# compiled complex-step kernels: scalar leapfrog, scalar midpoint rule, array model
COMPILED = {"harmonic_oscillator", "double_pendulum", "network_hru"}


def _complex_kernels(kern, name: str):
    """The kernels whose complex-step module the test runs: ``kern`` itself for a ``COMPILED`` model,
    else the same model's kernels as plain Python (the same generated source, no Numba compile)."""
    if name in COMPILED:
        return kern
    system = getattr(kern, "model", None) or kern.stack
    return symglep.compile(system, dt=kern.dt, jit=False)


def _steps(name: str, compiled: int) -> int:
    """Steps of a run: ``compiled`` for a ``COMPILED`` model, else ``STEPS_PLAIN`` (plain Python)."""
    return compiled if name in COMPILED else STEPS_PLAIN


def _examples(kind: str) -> list:
    marker = {"scalar": "symglep.Model(", "array": "ArrayModel(", "stack": "symglep.Stack("}[kind]
    return [p.stem for p in sorted(EXAMPLES.glob("*.py")) if marker in p.read_text()
            and (kind == "stack" or "\nmodel = " in p.read_text())]  # a stack file defines `stack`


@pytest.mark.parametrize("name", _examples("scalar"))
def test_scalar_examples_meet_bptt_to_round_off(name):
    kern, route = exact_route_kernels(str(EXAMPLES / f"{name}.py"), name, DT)
    th, q0, p0, u, y = scalar_instance(kern, name, 2, _steps(name, STEPS), DT)
    ref = kern.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    cs = _complex_kernels(kern, name).complex_step_gradient(th, q0, p0=p0, u=u, y=y, learn_inputs=True,
                                                            route=route)
    assert cs.route == route
    if name in COMPILED:  # the same compiled arithmetic on the real part: the same loss, bit for bit
        np.testing.assert_array_equal(cs.loss, ref.loss)
    else:  # CPython's complex maths against LLVM's real maths: round-off apart
        np.testing.assert_allclose(cs.loss, ref.loss, rtol=TOL)
    for what in ("dtheta", "dq0", "dx0", "du"):
        err = rel_err(getattr(cs, what), getattr(ref, what))
        assert err <= TOL, f"{name} ({route}): complex step vs BPTT {what} {err:.2e}"


@pytest.mark.parametrize("name", _examples("array"))
def test_array_examples_meet_bptt_to_round_off(name):
    model = symglep.load_model(str(EXAMPLES / f"{name}.py"))
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, u, y = draw_instance(model, kern, 6, 2, _steps(name, STEPS), DT, np.random.default_rng(4))
    ref = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=True)
    cs = _complex_kernels(kern, name).complex_step_gradient(theta, q0, p0, u, y, learn_inputs=True)
    for what in ("flat", "dq0", "dp0", "du"):
        err = rel_err(getattr(cs, what), getattr(ref, what))
        assert err <= TOL, f"{name}: complex step vs BPTT {what} {err:.2e}"


# stacks whose glue has no complex function in the kernels (GELU's erf): refused, in one line, at render
NO_COMPLEX_GLUE = {"stack_hssm"}


@pytest.mark.parametrize("name", [n for n in _examples("stack") if n not in NO_COMPLEX_GLUE])
def test_stack_meets_bptt_to_round_off(name):
    """Every unit's and glue's gradient and dC/dx; the inner contrasts (a unit's input gradient, which
    nudges the unit below) are complex steps too, so nothing cancels anywhere (theory §9)."""
    stack = load_system(str(EXAMPLES / f"{name}.py"))
    kern = symglep.compile(stack)
    rng = np.random.default_rng(1)
    th = np.abs(rng.uniform(-0.5, 0.5, kern.n_theta))
    t = np.arange(_steps(name, 200) + 1) * 0.05
    x = 0.3 * np.sin(np.outer([1.0, 1.3], t))[..., None] * np.ones(kern.n_x)
    y = 0.3 * np.cos(np.outer([0.7, 1.1], t))[..., None] * np.ones(kern.n_y)
    loss_b, g_b, dx_b = kern.bptt_gradient(th, x, y)
    loss, g, dx, trip = _complex_kernels(kern, name).complex_step_gradient(th, x, y, learn_inputs=True)
    np.testing.assert_allclose(loss, loss_b, rtol=1e-13)
    assert rel_err(g, g_b) <= TOL and rel_err(dx, dx_b) <= TOL, (rel_err(g, g_b), rel_err(dx, dx_b))
    # the centred echo at beta = 1e-4 is O(beta^2) away; the complex step is not
    assert rel_err(kern.gradient(th, x, y, beta=1e-4)[1], g_b) > 100 * rel_err(g, g_b)


@pytest.mark.parametrize("name", sorted(NO_COMPLEX_GLUE))
def test_stack_with_an_erf_glue_refuses_the_complex_step_in_one_line(name):
    """GELU's erf has no complex function in NumPy or Numba: refused before anything compiles."""
    stack = load_system(str(EXAMPLES / f"{name}.py"))
    kern = symglep.compile(stack, jit=False)
    th = np.full(kern.n_theta, 0.1)
    x, y = np.zeros((1, 11, kern.n_x)), np.zeros((1, 11, kern.n_y))
    with pytest.raises(NotAnalyticError, match="glue activation uses erf") as info:
        kern.complex_step_gradient(th, x, y)
    assert "\n" not in str(info.value)


def test_the_step_size_does_not_matter():
    """No subtractive cancellation: from eps = 1e-10 to 1e-150 the midpoint rule's gradient stays at
    BPTT's to round-off (the centred echo's error at such a beta would be ~1/beta)."""
    kern = symglep.compile(symglep.load_model(str(EXAMPLES / "double_pendulum.py")), dt=DT)
    args = (np.ones(kern.n_theta), [[0.3, -0.2]])
    ref = kern.bptt_gradient(*args, p0=[[0.1, 0.0]], steps=200)
    for eps in (1e-10, 1e-20, 1e-100, 1e-150):
        cs = kern.complex_step_gradient(*args, p0=[[0.1, 0.0]], steps=200, eps=eps)
        assert rel_err(cs.dtheta, ref.dtheta) <= TOL, eps


def test_a_chaotic_run_is_refused_by_every_echo_instead_of_returned_wrong():
    """Probe r3 (session 37): on bounded chaotic runs the centred and Richardson echoes came back 10-300 % off BPTT
    and the complex step 1e-3 off, silently: the echoes' mean end missed the start by about their spread (the old
    guard wanted ten times it) and the complex step's round-off drift was let through up to 1e-3. The double
    pendulum started near inverted (K = 1000, midpoint): the centred echo is 99 % off and raises, naming the
    non-linear response; the complex step, 2e-6 off, raises on its 1e-6 drift; from a mild start every estimate
    passes and meets BPTT."""
    from symglep.diagnose import NumericalError

    kern = symglep.compile(symglep.load_model(str(EXAMPLES / "double_pendulum.py")), dt=DT)
    theta, p0 = np.ones(kern.n_theta), np.zeros((1, 2))
    rng = np.random.default_rng(0)
    u, y = rng.normal(0, 0.3, (1, 1001, kern.module.N_U)), rng.normal(0, 0.3, (1, 1001, kern.module.N_Y))
    chaotic = [[2.8, -2.8]]
    bptt = kern.bptt_gradient(theta, chaotic, p0=p0, u=u, y=y).dtheta
    assert rel_err(kern.gradient(theta, chaotic, p0=p0, u=u, y=y, beta=1e-6, retrace=False).dtheta, bptt) > 0.1
    with pytest.raises(NumericalError, match="did not retrace the free run"):
        kern.gradient(theta, chaotic, p0=p0, u=u, y=y, beta=1e-6)
    assert rel_err(kern.complex_step_gradient(theta, chaotic, p0=p0, u=u, y=y, retrace=False).dtheta, bptt) > 1e-6
    with pytest.raises(NumericalError, match="complex-step echo gradient: the echo of sequence 0 did not retrace"):
        kern.complex_step_gradient(theta, chaotic, p0=p0, u=u, y=y)
    mild = [[1.0, -1.0]]
    bptt = kern.bptt_gradient(theta, mild, p0=p0, u=u, y=y).dtheta
    assert rel_err(kern.gradient(theta, mild, p0=p0, u=u, y=y).dtheta, bptt) <= 1e-6
    assert rel_err(kern.complex_step_gradient(theta, mild, p0=p0, u=u, y=y).dtheta, bptt) <= TOL

def _model_with(term, name):
    x = dynamicsymbols("x")
    k = sp.Symbol("k", positive=True)
    return symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * term(x), coordinates=[x], parameters=[k],
                         cost=x**2 / 2, name=name)


# the refusal comes before anything compiles; the real echo of one of the two Piecewise models runs
# Numba-compiled, of the other as plain Python
@pytest.mark.parametrize("term, jit", [(lambda x: sp.Piecewise((x**4, x > 0), (x**2, True)), True),
                                       (lambda x: x**2 * sp.Piecewise((1, x > 0), (2, True)), False)])
def test_non_analytic_maths_is_refused_in_one_line(term, jit, tmp_path):
    kern = symglep.compile(_model_with(term, "kinked"), cache=str(tmp_path), jit=jit)
    with pytest.raises(NotAnalyticError, match="not analytic") as info:
        kern.complex_step_gradient([1.0], [[0.1]], p0=[[0.0]], steps=5)
    assert "\n" not in str(info.value)
    kern.gradient([1.0], [[0.1]], p0=[[0.0]], steps=5)  # the real echo still runs


def test_bad_eps_is_refused():
    kern = symglep.compile(symglep.load_model(str(EXAMPLES / "harmonic_oscillator.py")))
    with pytest.raises(SymglepError, match="complex step eps"):
        kern.complex_step_gradient([1.0, 1.0], [[0.1]], p0=[[0.0]], steps=3, eps=1e-3)


def test_train_with_the_complex_step_from_the_cli(tmp_path):
    """Training by the complex step follows BPTT's loss curve (the same gradient to round-off)."""
    runs = {}
    for est in ("echo-complex", "bptt"):
        out = tmp_path / f"{est}.json"
        result = CliRunner().invoke(main, ["train", str(EXAMPLES / "harmonic_oscillator.py"), "--epochs", "5",
                                           "--estimator", est, "--save", str(out)])
        assert result.exit_code == 0, result.output
        runs[est] = json.loads(out.read_text())["loss_history"]
    curves = runs
    assert np.allclose(curves["echo-complex"], curves["bptt"], rtol=1e-10, atol=0)
    bad = CliRunner().invoke(main, ["train", str(tmp_path / "missing.py"), "--estimator", "echo-complex"])
    assert bad.exit_code != 0


def test_an_array_models_non_analytic_term_is_named_as_the_user_wrote_it():
    """New-user probe: the refusal named the generated function 't0_phi'; it now names a potential term of the
    Lagrangian and shows the offending expression in element form."""
    from symglep.network import ArrayModel, Coordinates, Parameter, Sum, Targets, i, r
    from symglep.network.render import render_network

    x, y = Coordinates("x"), Targets("y")
    k = Parameter("k", "n", positive=True)
    model = ArrayModel(lagrangian=Sum(x.dot[i] ** 2 / 2, i) - Sum(k[i] * sp.Max(0, x[i] - 0.2) ** 2 / 2, i),
                       coordinates=x, parameters=[k], targets=y, cost=Sum((x[r] - y[r]) ** 2 / 2, r), name="wall",
                       size=3, sizes={"r": 1})
    with pytest.raises(NotAnalyticError) as info:
        render_network(model, "0" * 64, complex_step=True)
    message = str(info.value)
    assert "a potential term of the Lagrangian uses Piecewise (Piecewise((0, x[i] - 0.2 <= 0)" in message
    assert "t0_phi" not in message
