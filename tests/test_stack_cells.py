"""Stack cells of issue #16: a terminal cost on the top unit, the ``target`` task on every kind, velocity
starts (theory §3, §5, §9, §10).

Two stacks cover the top unit's kinds: a scalar unit driving a scalar top unit with a running and a
terminal cost (tanh glue, two readouts), and a scalar unit with a learned mass driving an array top
unit (learned masses, dense tanh couplings) whose terminal cost is an element sum over its readout
units. On both:

* the loss is the running loss plus ``c_T(q_K, y_K)``, both evaluated from the declarations on the recorded
  trajectory;
* the stacked echo (Richardson, β = 1e-3 and centred, β = 1e-4) against BPTT through the same discrete
  stack, for θ and every unit's start (q0, p0); the complex-step echo to round-off;
* BPTT against central differences of the discrete loss;
* the C kernels of the scalar stack against its Numba kernels (loss and gradient to 1e-12).

The ``target`` task (HEB's setting: reach the teacher's final state by learning the start) runs for an
array model with a terminal cost and for both stacks: the loss falls, echo and BPTT curves agree.

Velocity starts (the learned masses of both units of the second stack): every unit's ``p0 = ∂L/∂v``,
the stacked echo with the chain rule through it against BPTT and central differences in θ and ``v0``;
a DATA.npz of velocity starts trains with a learned start.

The complex-step kernels of these stacks run as plain Python (``interpreted``: the same generated source,
no second Numba compile of a complex module in CI); compiled complex-step stack kernels, scalar and array
units together, are checked in tests/test_stack_arrays.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.errors import ModelError, SymglepError
from symglep.network import ArrayModel
from symglep.stack.runtime import compile_stack
from symglep.tasks import TargetTask
from symglep.training import train

from instances import terminal_cell

DT, K = 0.02, 200


def scalar_top_stack(terminal=True):
    x, u = dynamicsymbols("x u")
    k = sp.Symbol("k", positive=True)
    bottom = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2 - x**4 / 4 + x * u, [x], [k], inputs=[u], name="bottom")
    z, v, y = dynamicsymbols("z v y")
    c = sp.Symbol("c", positive=True)
    top = symglep.Model(z.diff() ** 2 / 2 - c * z**2 / 2 + z * v, [z], [c], inputs=[v], targets=[y],
                        cost=(z - y) ** 2 / 4, terminal_cost=((z - y) ** 2 + sp.cos(z)) if terminal else 0,
                        name="top")
    return symglep.Stack([bottom, top], [[x, x**2]], activations=["tanh"],
                         name="scalar_terminal" if terminal else "scalar_running")


def array_top_stack(terminal=True):
    s = dynamicsymbols("s0:2")
    f = dynamicsymbols("f")
    kappa, mu = sp.symbols("kappa mu", positive=True)
    bottom = symglep.Model(mu * sum(a.diff() ** 2 for a in s) / 2 - sum(a**2 for a in s) / 2
                           - kappa * (s[1] - s[0]) ** 2 / 2 + s[0] * f, list(s), [kappa, mu], inputs=[f],
                           name="pair")
    return symglep.Stack([bottom, terminal_cell(terminal=terminal)], [[s[0], s[1]]],
                         name="array_terminal" if terminal else "array_running")


def instance(kernels, seed=2):
    rng = np.random.default_rng(seed)
    t = np.arange(K + 1) * DT
    x = 0.4 * np.sin(1.3 * t[None, :, None] + rng.uniform(0, 6, (2, 1, kernels.n_x)))
    y = 0.3 * np.cos(0.7 * t[None, :, None] + rng.uniform(0, 6, (2, 1, kernels.n_y)))
    q0, p0 = rng.uniform(-0.3, 0.3, (2, kernels.nq)), rng.uniform(-0.3, 0.3, (2, kernels.nq))
    return np.ascontiguousarray(x), np.ascontiguousarray(y), q0, p0


@pytest.fixture(scope="module", params=["scalar top", "array top"])
def case(request):
    stack = scalar_top_stack() if request.param == "scalar top" else array_top_stack()
    kernels = compile_stack(stack, dt=DT)
    theta = stack.draw_parameters(np.random.default_rng(5))
    return (request.param, stack, kernels, theta, *instance(kernels))


def interpreted(stack):
    """The stack's kernels as plain Python, for the complex step (module docstring)."""
    return compile_stack(stack, dt=DT, jit=False)


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def _top_cost(stack, q, y, which: str) -> np.ndarray:
    """The top unit's ``which`` ("cost" or "terminal_cost") at each row of ``q`` (the stack's coordinates)
    and ``y``, by lambdify of its declaration (not the generated code)."""
    top = stack.units[-1]
    if isinstance(top, ArrayModel):  # terminal_cell's elements, over its last r = 2 units
        a, b = sp.symbols("q y")
        element = (a - b) ** 2 / 4 if which == "cost" else sp.log(sp.cosh(a - b))
        return np.sum(sp.lambdify([a, b], element, "numpy")(q[:, -top.sizes["r"]:], y), axis=1)
    f = sp.lambdify([list(top.q), list(top.y)], getattr(top, which), "numpy")
    return np.array([f(qk[-top.n:], yk) for qk, yk in zip(q, y)], dtype=float)


def terminal_value(stack, qT, yK) -> float:
    """c_T(q_K, y_K) of the top unit."""
    return float(_top_cost(stack, qT[None], yK[None], "terminal_cost")[0])


def running_value(stack, traj, y) -> float:
    """The running loss h Σ_k w_k c(q_k, y_k) (trapezoid, theory §6) of the top unit's recorded coordinates."""
    c = _top_cost(stack, traj, y, "cost")
    return float(DT * (np.sum(c) - (c[0] + c[-1]) / 2))


def test_the_loss_adds_the_terminal_cost(case):
    """The loss is the running loss of the recorded trajectory plus c_T(q_K, y_K), both evaluated from the
    declarations; the stack without a terminal cost says so."""
    name, stack, kernels, theta, x, y, q0, p0 = case
    without = scalar_top_stack(terminal=False) if name == "scalar top" else array_top_stack(terminal=False)
    assert stack.has_terminal_cost and not without.has_terminal_cost
    qT, _, loss, traj, _, _ = kernels.free(theta, x, y, q0, p0, record=True)
    # the terminal cost changes the loss, not the dynamics: the generated source with and without c_T, run as
    # Python (the compiled array kernels reassociate sums, so compiled and interpreted runs differ by round-off)
    qT_r = interpreted(without).free(theta, x, y, q0, p0)[0]
    assert np.array_equal(qT_r, interpreted(stack).free(theta, x, y, q0, p0)[0])
    for b in range(2):
        c_T = terminal_value(stack, qT[b], y[b, -1])
        running = running_value(stack, traj[b], y[b])
        assert abs(c_T) > 1e-3 and abs(loss[b] - running - c_T) <= 1e-13 * abs(loss[b])


@pytest.mark.parametrize("order, beta, tol", [(2, 1e-4, 1e-6), (4, 1e-3, 1e-9)])
def test_stacked_echo_matches_bptt(case, order, beta, tol):
    """θ and every unit's start: the terminal cost's kick at the flip carries its gradient (theory §10)."""
    _, stack, kernels, theta, x, y, q0, p0 = case
    loss, g, _, trip, dq0, dp0 = kernels.gradient(theta, x, y, q0, p0, beta=beta, order=order, initial_state=True)
    loss_b, g_b, _, dq0_b, dp0_b = kernels.bptt_gradient(theta, x, y, q0, p0, initial_state=True)
    assert np.allclose(loss, loss_b, rtol=1e-14, atol=0)
    assert rel(g, g_b) <= tol and rel(dq0, dq0_b) <= tol and rel(dp0, dp0_b) <= tol, (
        rel(g, g_b), rel(dq0, dq0_b), rel(dp0, dp0_b))
    assert np.max(trip) < 1e-12


def test_complex_step_echo_matches_bptt(case):
    _, stack, kernels, theta, x, y, q0, p0 = case
    _, g, _, _, dq0, dp0 = interpreted(stack).complex_step_gradient(theta, x, y, q0, p0, initial_state=True)
    _, g_b, _, dq0_b, dp0_b = kernels.bptt_gradient(theta, x, y, q0, p0, initial_state=True)
    assert rel(g, g_b) <= 1e-12 and rel(dq0, dq0_b) <= 1e-12 and rel(dp0, dp0_b) <= 1e-12


def test_bptt_matches_central_differences(case):
    _, stack, kernels, theta, x, y, q0, p0 = case
    one = (x[:1], y[:1], q0[:1], p0[:1])
    _, g_b, _, dq0_b, _ = kernels.bptt_gradient(theta, *one, initial_state=True)

    def loss(th=theta, q=q0[:1]):
        return kernels.free(th, one[0], one[1], q, one[3])[2][0]

    h = 1e-6
    fd = np.array([(loss(th=theta + h * e) - loss(th=theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    assert rel(g_b[0], fd) <= 1e-7
    top = slice(kernels.nq - stack.unit_size(len(stack.units) - 1), kernels.nq)
    fd_q = np.array([(loss(q=q0[:1] + h * e) - loss(q=q0[:1] - h * e)) / (2 * h)
                     for e in np.eye(kernels.nq)[top]])
    assert rel(dq0_b[0, top], fd_q) <= 1e-7


def test_c_kernels_of_a_stack_with_a_terminal_cost(tmp_path):
    """The C stack kernels add c_T to the loss and kick the top unit's echoes (theory §10): loss and
    gradient equal the Numba kernels' to 1e-12."""
    from c_harness import EXTRA, STRICT, compile_c, relative_error
    from test_stack_c import StackC

    from symglep.stack.codegen_c import write_stack_c

    stack = scalar_top_stack()
    kernels = compile_stack(stack, dt=DT)
    theta = stack.draw_parameters(np.random.default_rng(5))
    x, y, q0, p0 = instance(kernels)
    write_stack_c(stack, str(tmp_path), "float64")
    src = tmp_path / stack.name / "c"
    assert "terminal_cost" in (src / f"{stack.name}.c").read_text()
    lib = src / f"lib{stack.name}.so"
    compile_c("gcc", src, lib, [f"{stack.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    c = StackC(lib, stack)
    loss, g, dx, _ = kernels.gradient(theta, x, y, q0, p0, beta=1e-4, learn_inputs=True)
    for b in range(2):
        closs, cg, cdx, _ = c.gradient(theta, q0[b], p0[b], x[b], y[b], DT, 1e-4)
        assert relative_error(closs, loss[b]) <= 1e-12
        assert relative_error(cg, g[b]) <= 1e-12 and relative_error(cdx, dx[b]) <= 1e-12


@pytest.mark.parametrize("make, fall", [(terminal_cell, 10), (array_top_stack, 10), (scalar_top_stack, 2)],
                         ids=["array model", "stack, array top", "stack, scalar top"])
def test_target_task_trains_every_kind(make, fall):
    """HEB's task (the start learned, θ frozen) on an array model and on stacks: the loss falls and the
    echo's loss curve is BPTT's (the scalar stack keeps a running cost its constant targets cannot zero)."""
    runs = {est: train(make(), "target", epochs=60, learn_initial_state=True, freeze_parameters=True,
                       estimator=est) for est in ("echo", "bptt")}
    echo, bptt = (np.array(runs[e].loss_history) for e in ("echo", "bptt"))
    assert echo[0] / echo[-1] >= fall
    assert float(np.max(np.abs(echo - bptt) / bptt)) <= 1e-6
    assert runs["echo"].settings["task"] == "target"


def test_target_task_needs_a_terminal_cost_on_every_kind():
    for system in (terminal_cell(terminal=False), array_top_stack(terminal=False)):
        with pytest.raises(SymglepError, match="needs a terminal cost"):
            train(system, TargetTask(steps=10), epochs=1)


def test_only_the_top_unit_may_declare_a_terminal_cost():
    x, u = dynamicsymbols("x u")
    bottom = symglep.Model(x.diff() ** 2 / 2 - x**2 / 2 + x * u, [x], inputs=[u], terminal_cost=x**2, name="b")
    with pytest.raises(ModelError, match="declares a terminal cost"):
        symglep.Stack([bottom, scalar_top_stack().units[-1]], [[x]])
    with pytest.raises(ModelError, match="declares a terminal cost"):
        symglep.Stack([terminal_cell(), scalar_top_stack().units[-1]], ["all"])


@pytest.fixture(scope="module")
def moving():
    """The array-top stack (learned masses in both units) from velocity starts."""
    stack = array_top_stack()
    kernels = compile_stack(stack, dt=DT)
    theta = stack.draw_parameters(np.random.default_rng(5))
    x, y, q0, _ = instance(kernels)
    v0 = np.random.default_rng(9).uniform(-0.5, 0.5, q0.shape)
    return stack, kernels, theta, x, y, q0, v0


def test_velocity_start_sets_every_units_momentum(moving):
    stack, kernels, theta, x, y, q0, v0 = moving
    p0 = kernels.module.momenta(theta, q0, v0, x, 0.0)
    mu = theta[stack.parameter_names.index("unit0.mu")]
    masses = theta[[stack.parameter_names.index(f"unit1.m[{i}]") for i in range(4)]]
    assert np.allclose(p0, np.concatenate([mu * v0[:, :2], masses * v0[:, 2:]], axis=1), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(kernels.free(theta, x, y, q0, v0=v0)[2], kernels.free(theta, x, y, q0, p0)[2])


def test_velocity_start_gradients(moving):
    """Echo (Richardson) and complex step against BPTT, BPTT against central differences, for θ (the
    masses' PFVP term included), q0 and v0; without the chain rule the gradient is off by percents."""
    stack, kernels, theta, x, y, q0, v0 = moving
    _, g, _, _, dq0, dv0 = kernels.gradient(theta, x, y, q0, v0=v0, beta=1e-3, order=4, initial_state=True)
    _, g_c, _, _, dq0_c, dv0_c = interpreted(stack).complex_step_gradient(theta, x, y, q0, v0=v0,
                                                                           initial_state=True)
    _, g_b, _, dq0_b, dv0_b = kernels.bptt_gradient(theta, x, y, q0, v0=v0, initial_state=True)
    assert max(rel(g, g_b), rel(dq0, dq0_b), rel(dv0, dv0_b)) <= 1e-9
    assert max(rel(g_c, g_b), rel(dq0_c, dq0_b), rel(dv0_c, dv0_b)) <= 1e-12

    def loss(th=theta, v=v0[:1]):
        return kernels.free(th, x[:1], y[:1], q0[:1], v0=v)[2][0]

    h = 1e-6
    fd = np.array([(loss(th=theta + h * e) - loss(th=theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    fd_v = np.array([(loss(v=v0[:1] + h * e) - loss(v=v0[:1] - h * e)) / (2 * h) for e in np.eye(kernels.nq)])
    assert rel(g_b[0], fd) <= 1e-7 and rel(dv0_b[0], fd_v) <= 1e-7
    p0 = kernels.module.momenta(theta, q0, v0, x, 0.0)
    assert rel(kernels.bptt_gradient(theta, x, y, q0, p0)[1], g_b) > 1e-2  # the masses' PFVP term matters


def test_velocity_start_refusals(moving):
    stack, kernels, theta, x, y, q0, v0 = moving
    with pytest.raises(SymglepError, match="p0 or the velocities v0, not both"):
        kernels.free(theta, x, y, q0, v0, v0=v0)
    with pytest.raises(SymglepError, match="v0 must have shape"):
        kernels.gradient(theta, x, y, q0, v0=v0[:, :3])


def test_a_stack_learns_a_velocity_start_from_data(moving, tmp_path):
    """DATA.npz with v0: the learned start is (q0, v0); echo and BPTT loss curves agree."""
    stack, kernels, theta, x, y, q0, v0 = moving
    path = tmp_path / "moving.npz"
    np.savez(path, inputs=x, targets=y, q0=q0, v0=v0, dt=DT)
    runs = {est: train(array_top_stack(), str(path), epochs=15, learn_initial_state=True, estimator=est)
            for est in ("echo", "bptt")}
    echo, bptt = (np.array(runs[e].loss_history) for e in ("echo", "bptt"))
    assert echo[-1] < 0.9 * echo[0] and float(np.max(np.abs(echo - bptt) / bptt)) <= 1e-6
    assert set(runs["echo"].initial_state) == {"q0", "v0"}


def test_one_sided_stacked_echo_has_a_first_order_bias(case):
    """``echo-one-sided``: each unit's +β echo against an un-nudged copy (theory §5). Its error against
    BPTT halves with β (an O(β) bias, measured 6.2e-5 at β = 1e-4 on the array-top stack), and the
    first-order Richardson combination 2 D(β/2) − D(β) cancels it."""
    _, stack, kernels, theta, x, y, q0, p0 = case
    _, g_b, _, dq0_b, dp0_b = kernels.bptt_gradient(theta, x, y, q0, p0, initial_state=True)
    d = {beta: kernels.gradient(theta, x, y, q0, p0, beta=beta, order=1, initial_state=True)
         for beta in (1e-4, 5e-5)}
    for k, ref in ((1, g_b), (4, dq0_b), (5, dp0_b)):
        big, small = rel(d[1e-4][k], ref), rel(d[5e-5][k], ref)
        assert 1.9 <= big / small <= 2.1, (k, big, small)
        assert rel(2 * d[5e-5][k] - d[1e-4][k], ref) <= 1e-2 * small


def test_the_check_text_says_the_loss_holds_the_terminal_cost():
    """New-user probe: a stack's check printed its loss without saying it includes the top unit's c_T (the array
    check says so)."""
    from symglep.stack.commands import render_check_text
    report = {"stack": "s", "units": ["a", "b"], "integrator": "leapfrog", "steps": 10, "dt": 0.1, "beta": 1e-4,
              "seed": 0, "beta_auto": None, "loss": 0.5, "roundtrip_error": 0.0, "centred_error_estimate": 0.0,
              "parameters": {}, "gradients": {"echo": {}, "bptt": {}, "finite_differences": {}}, "groups": [],
              "tolerance_echo_vs_bptt": 1e-6, "tolerance_bptt_vs_fd": 1e-5, "warnings": [], "passed": True}
    for terminal in (True, False):
        text = render_check_text({**report, "terminal_cost": terminal})
        assert ("(the top unit's running + terminal cost c_T(q_K), theory §10)" in text) is terminal


def test_the_check_text_says_a_gradient_that_is_zero_everywhere_tests_nothing():
    """New-user probe: a dead ReLU glue left a group's gradient zero in the echo, BPTT and finite differences,
    and the check printed "0.000e+00 ok" for it; now it says "zero" and that the row tests nothing."""
    from symglep.stack.commands import render_check_text
    live = {"group": "glue 0", "echo_vs_bptt": 1e-9, "bptt_vs_fd": 1e-8, "norm": 0.3}
    dead = {"group": "glue 1", "echo_vs_bptt": 0.0, "bptt_vs_fd": 0.0, "norm": 0.0}
    report = {"stack": "s", "units": ["a", "b"], "integrator": "leapfrog", "steps": 10, "dt": 0.1, "beta": 1e-4,
              "seed": 0, "beta_auto": None, "loss": 0.5, "roundtrip_error": 0.0, "centred_error_estimate": 0.0,
              "parameters": {}, "gradients": {"echo": {}, "bptt": {}, "finite_differences": {}},
              "groups": [live, dead], "tolerance_echo_vs_bptt": 1e-6, "tolerance_bptt_vs_fd": 1e-5,
              "warnings": [], "passed": True, "terminal_cost": False}
    rows = {line.split()[0] + " " + line.split()[1]: line for line in render_check_text(report).splitlines()
            if line.startswith("glue ")}
    assert rows["glue 0"].split()[3] == "ok" and rows["glue 0"].split()[5] == "ok"
    assert rows["glue 1"].split()[3] == "zero" and rows["glue 1"].split()[5] == "zero"
    assert "note: glue 1: the gradient is exactly zero in the echo, BPTT and finite differences" \
        in render_check_text(report)
    assert "note: glue 0" not in render_check_text(report)
