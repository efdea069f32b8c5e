"""The Richardson contrast (echo4: echoes at ±β and ±2β in one pass, O(β⁴) bias, theory §5)
against BPTT of the same discrete integrator, on every bundled example with an exact route."""

import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

import symglep
from symglep.check import rel_err
from symglep.cli import main
from symglep.errors import SymglepError
from symglep.network.check import draw_instance

from instances import exact_route_kernels, scalar_instance, stack_instance

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
BETA = 1e-3
TOL = 1e-9
# dC/du (learn_inputs): each u_k enters one or two steps, so its contrast is a difference of O(h)
# terms evaluated at rounded states, not a compensated sum; its floor on the damped example
# damped_chain is 1.0e-9 at beta = 1e-3 (8.9e-10 at 5e-4, 2.7e-10 at 2e-3: round-off, not bias).
# The parameter and initial-state gradients meet TOL on every example, compensation (theory §5) included.
TOL_DU = 1e-8
DT = 0.01
STEPS = 300


def _scalar_examples():
    names = []
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text()
        if "symglep.Model(" in text and "\nmodel = " in text:
            names.append(path.stem)
    return names


@pytest.mark.parametrize("name", _scalar_examples())
def test_echo4_meets_bptt_to_round_off(name):
    kern, route = exact_route_kernels(str(EXAMPLES / f"{name}.py"), name, DT)
    th, q0, p0, u, y = scalar_instance(kern, name, 1, STEPS, DT)
    ref = kern.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    beta = BETA
    four = kern.gradient(th, q0, p0=p0, u=u, y=y, beta=beta, order=4, learn_inputs=True, route=route)
    two = kern.gradient(th, q0, p0=p0, u=u, y=y, beta=beta, order=2, learn_inputs=True, route=route)
    for what in ("dtheta", "dq0", "dx0", "du"):
        err4 = rel_err(getattr(four, what), getattr(ref, what))
        assert err4 <= (TOL_DU if what == "du" else TOL), f"{name} ({route}): echo4 vs BPTT {what} {err4:.2e}"
    # where the centred contrast's beta^2 bias stands above round-off, the fourth-order one removes it
    err2 = rel_err(two.dtheta, ref.dtheta)
    assert rel_err(four.dtheta, ref.dtheta) <= max(err2 / 100, 1e-10)


@pytest.mark.parametrize("name", ["network_chain", "network_dense", "network_hru", "network_springs"])
def test_echo4_on_the_array_models(name):
    model = symglep.load_model(str(EXAMPLES / f"{name}.py"))
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, u, y = draw_instance(model, kern, 6, 2, STEPS, DT, np.random.default_rng(4))
    ref = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=True)
    four = kern.gradient(theta, q0, p0, u, y, beta=BETA, order=4, learn_inputs=True)
    for what in ("flat", "dq0", "dp0", "du"):
        err = rel_err(getattr(four, what), getattr(ref, what))
        assert err <= TOL, f"{name}: echo4 vs BPTT {what} {err:.2e}"


@pytest.fixture(scope="module")
def stack_case():
    """stack_chain_hru on the sine task (two sequences of 300 steps) from a random start state."""
    from symglep.stack.runtime import compile_stack
    from symglep.stack.training import load_stack

    def case(dt):
        stack = load_stack(str(EXAMPLES / "stack_chain_hru.py"))
        kern = compile_stack(stack, dt=dt)
        return kern, stack_instance(stack, kern, STEPS)
    return case


def test_echo4_on_a_stack(stack_case):
    """The stacked echo's Richardson contrast (every unit's echoes at ±β, ±2β, theory §5, §9) meets BPTT
    through the stack to round-off at β = 1e-3. dC/dx (the bottom unit's inputs) is ~1e-8 on this
    instance, a million times smaller than dC/dθ, so it is held to TOL within the whole gradient."""
    kern, (theta, x, y, q0, p0) = stack_case(DT)
    _, ref, ref_x = kern.bptt_gradient(theta, x, y, q0=q0, p0=p0)
    _, four, four_x, trip = kern.gradient(theta, x, y, q0=q0, p0=p0, beta=BETA, order=4, learn_inputs=True)
    _, two, _, _ = kern.gradient(theta, x, y, q0=q0, p0=p0, beta=BETA, order=2)
    assert rel_err(four, ref) <= TOL, f"stack: echo4 vs BPTT {rel_err(four, ref):.2e}"
    whole = rel_err(np.concatenate([four.ravel(), four_x.ravel()]), np.concatenate([ref.ravel(), ref_x.ravel()]))
    assert whole <= TOL, f"stack: echo4 vs BPTT (dC/dθ, dC/dx) {whole:.2e}"
    assert rel_err(four, ref) <= rel_err(two, ref) / 100
    assert np.max(trip) < 1e-10


def test_stack_echo4_bias_falls_as_beta_to_the_fourth(stack_case):
    """At dt = 0.05 the stack's contrast is curved enough in β that the Richardson bias stands above
    round-off from β = 4e-3 down to 5e-4: the fitted slope of log error against log β is 4."""
    kern, (theta, x, y, q0, p0) = stack_case(0.05)
    _, ref, _ = kern.bptt_gradient(theta, x, y, q0=q0, p0=p0)
    betas = np.array([4e-3, 2e-3, 1e-3, 5e-4])
    errors = [rel_err(kern.gradient(theta, x, y, q0=q0, p0=p0, beta=b, order=4)[1], ref) for b in betas]
    assert np.all(np.diff(errors) < 0), errors
    slope = float(np.polyfit(np.log(betas), np.log(errors), 1)[0])
    assert 3.8 <= slope <= 4.2, f"slope {slope:.3f} of log error vs log beta, errors {errors}"


def test_order_is_checked():
    kern = symglep.compile(symglep.load_model(str(EXAMPLES / "harmonic_oscillator.py")))
    with pytest.raises(SymglepError, match="order must be 1"):
        kern.gradient([1.0, 1.0], [[0.1]], p0=[[0.0]], steps=3, order=3)


def test_train_with_echo4_from_the_cli(tmp_path):
    out = tmp_path / "run.json"
    result = CliRunner().invoke(main, ["train", str(EXAMPLES / "harmonic_oscillator.py"), "--epochs", "3",
                                       "--estimator", "echo4", "--beta", "1e-3", "--save", str(out)])
    assert result.exit_code == 0, result.output
    stack = CliRunner().invoke(main, ["train", str(EXAMPLES / "stack_chain_hru.py"), "--epochs", "1",
                                      "--estimator", "echo4", "--save", str(tmp_path / "stack.json")])
    assert stack.exit_code == 0, stack.output


def test_check_takes_richardson_differences_where_the_plain_step_bends():
    """``check``'s finite differences: the plain central step where it meets BPTT; where it misses by more
    than FD_TOLERANCE (a loss that bends sharply, e.g. a run passing close to a singular point), Richardson's
    (4 D(ε/2) − D(ε))/3, whose O(ε²) truncation is gone: the reference is exact, the plain rule is not."""
    from symglep.check import FD_TOLERANCE, finite_differences

    w = np.array([1e4, 3.0])  # d/dθ of Σ sin(w θ): the first entry's ε² w³ term is 1.7e-5 of it
    theta = np.array([0.3, 0.2])
    exact = w * np.cos(w * theta)
    fd, rule = finite_differences(lambda t: float(np.sum(np.sin(w * t))), theta, exact)
    assert rule.startswith("Richardson differences") and float(rule.split("plain ")[1]) > FD_TOLERANCE
    assert rel_err(fd, exact) < 1e-8
    gentle, rule = finite_differences(lambda t: float(np.sum(np.sin(t))), theta, np.cos(theta))
    assert rule == "" and rel_err(gentle, np.cos(theta)) < 1e-9
    wrong = exact * (1 + 1e-3)  # a wrong reference stays wrong: Richardson removes truncation, not errors
    fd, rule = finite_differences(lambda t: float(np.sum(np.sin(w * t))), theta, wrong)
    assert rel_err(fd, wrong) > 1e-4
    # the array and stack checks use it too (probe r1, session 37: a trained network's entry and a classifier's
    # inputs failed at the plain step with BPTT right): on chosen entries, at another step
    fd, rule = finite_differences(lambda t: float(np.sum(np.sin(w * t))), theta, exact[[0]], step=1e-5, entries=[0])
    assert fd.shape == (1,) and rule.startswith("Richardson differences at steps 1e-05, 5e-06")
    assert rel_err(fd, exact[[0]]) < 1e-6


def test_a_failed_check_names_the_drawn_parameters_and_an_undeclared_sign_drawn_negative():
    """check of a model whose mass has no declared sign overflowed naming neither the drawn θ nor why (a
    probe: m drawn -0.46 in [-1, 1]); the note added to its NumericalError says both."""
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols
    from symglep.check import drawn_note

    x = dynamicsymbols("x")
    k, m = sp.Symbol("k", positive=True), sp.Symbol("m")
    model = symglep.Model(lagrangian=m * x.diff() ** 2 / 2 - k * x**2 / 2, coordinates=[x], parameters=[k, m],
                          name="unsigned_mass")
    note = drawn_note(model, np.array([0.274, -0.46]))
    assert note.startswith(" (at the drawn parameters k = 0.274, m = -0.46; m, of no declared sign, drawn negative")
    assert "of no declared sign" not in drawn_note(model, np.array([0.274, 0.46]))
