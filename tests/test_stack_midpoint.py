"""Stacks with units stepped by the implicit midpoint rule (theory §9, "Midpoint units"): the stacked
echo against BPTT through the stack and against central differences of the discrete loss, for a mixed
stack (examples/stack_beads.py: beads on wires by midpoint, oscillators by leapfrog) and for an
all-midpoint stack (examples/stack_chain_hru.py asked for ``integrator="midpoint"``); the contrasts'
orders; velocity starts; a terminal cost on a midpoint top unit; the commands."""

import json
import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.cli import main
from symglep.stack import Stack
from symglep.stack.codegen import render_stack
from symglep.stack.runtime import compile_stack
from symglep.stack.training import load_stack

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEADS = ROOT / "examples" / "stack_beads.py"
CHAIN = ROOT / "examples" / "stack_chain_hru.py"
DT = 0.05


def _relative(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def _problem(stack, seed=0, K=240, B=2):
    """A smooth drive, random targets and random starts (B sequences of K steps)."""
    rng = np.random.default_rng(seed)
    theta = stack.draw_parameters(rng)
    t = np.arange(K + 1) * DT
    x = np.stack([0.7 * np.sin((0.8 + 0.3 * b) * t + b) for b in range(B)])[:, :, None]
    x = np.repeat(x, stack.n_inputs, axis=2)
    y = 0.4 * np.stack([np.cos((0.5 + 0.2 * b) * t) for b in range(B)])[:, :, None]
    q0 = 0.3 * rng.normal(size=(B, stack.n))
    p0 = 0.3 * rng.normal(size=(B, stack.n))
    return theta, x, y, q0, p0


@pytest.fixture(scope="module", params=["mixed", "all-midpoint"])
def case(request):
    stack = load_stack(str(BEADS)) if request.param == "mixed" else load_stack(str(CHAIN)).with_integrator("midpoint")
    return stack, compile_stack(stack, dt=DT), _problem(stack)


def test_units_take_the_integrator_their_lagrangian_allows():
    beads = load_stack(str(BEADS))
    assert beads.integrators == ["midpoint", "leapfrog"]
    assert load_stack(str(CHAIN)).integrators == ["leapfrog"] * 3
    assert load_stack(str(CHAIN)).with_integrator("midpoint").integrators == ["midpoint"] * 3
    with pytest.raises(symglep.ModelError, match="unit 0 .* the leapfrog needs L = K"):
        beads.with_integrator("leapfrog")


def test_stacked_echo_matches_bptt_through_the_stack(case):
    """θ, the inputs and every unit's start: echo (β = 1e-4, centred) vs BPTT <= 1e-6 (measured
    2e-8 .. 5e-9); the un-nudged echoes retrace the free run to round-off (measured 1e-14)."""
    stack, kernels, (theta, x, y, q0, p0) = case
    loss, g, dx, trip, dq0, dp0 = kernels.gradient(theta, x, y, q0, p0, beta=1e-4, learn_inputs=True,
                                                   initial_state=True)
    loss_b, g_b, dx_b, dq0_b, dp0_b = kernels.bptt_gradient(theta, x, y, q0, p0, initial_state=True)
    np.testing.assert_allclose(loss, loss_b, rtol=1e-13)
    assert np.all(trip < 1e-12), trip
    for name, a, b in (("theta", g, g_b), ("inputs", dx, dx_b), ("q0", dq0, dq0_b), ("p0", dp0, dp0_b)):
        assert _relative(a, b) <= 1e-6, (name, _relative(a, b))
    for i in stack.midpoint_units:  # the midpoint units' own parameters, not only the whole vector
        sl = stack.unit_slices()[i]
        assert _relative(g[:, sl], g_b[:, sl]) <= 1e-6


def test_bptt_through_the_stack_matches_central_differences(case):
    """The reference is the gradient of the discrete loss (node costs, theory §9): 4th-order central
    differences in θ, q0, p0 and the inputs at a few nodes, <= 1e-7 relative."""
    stack, kernels, (theta, x, y, q0, p0) = case
    theta, x, y, q0, p0 = theta, x[:1], y[:1], q0[:1], p0[:1]
    _, g_b, dx_b, dq0_b, dp0_b = kernels.bptt_gradient(theta, x, y, q0, p0, initial_state=True)

    def fd(f, v, eps):
        out = np.empty(v.size)
        for j in range(v.size):
            e = np.zeros(v.size)
            e[j] = eps
            e = e.reshape(v.shape)
            out[j] = (8 * (f(v + e) - f(v - e)) - (f(v + 2 * e) - f(v - 2 * e))) / (12 * eps)
        return out

    def loss(th=theta, xx=x, qq=q0, pp=p0):
        return kernels.free(th, xx, y, qq, pp)[2][0]

    assert _relative(fd(lambda t: loss(th=t), theta, 1e-4), g_b[0]) <= 1e-7
    assert _relative(fd(lambda q: loss(qq=q), q0, 1e-4), dq0_b) <= 1e-7
    assert _relative(fd(lambda p: loss(pp=p), p0, 1e-4), dp0_b) <= 1e-7
    for k in (0, 7, x.shape[1] // 2, x.shape[1] - 1):  # an end node, inner nodes, the last node
        def at(v, k=k):
            xx = x.copy()
            xx[0, k, :] = v
            return loss(xx=xx)
        np.testing.assert_allclose(fd(at, x[0, k].copy(), 1e-4), dx_b[0, k], rtol=1e-6, atol=1e-9 * np.abs(dx_b).max())


def test_contrasts_have_their_orders(case):
    """Centred: error ~ β² (ratio ~100 per decade); Richardson (order 4): ~ β⁴; one-sided: ~ β."""
    stack, kernels, (theta, x, y, q0, p0) = case
    ref = kernels.bptt_gradient(theta, x, y, q0, p0)[1]
    # the bias law at large beta on purpose: unguarded (the retrace guard refuses a response this non-linear)
    centred = [_relative(kernels.gradient(theta, x, y, q0, p0, beta=b, retrace=False)[1], ref) for b in (1e-1, 1e-2)]
    assert 50 < centred[0] / centred[1] < 200, centred
    rich = [_relative(kernels.gradient(theta, x, y, q0, p0, beta=b, order=4, retrace=False)[1], ref) for b in (1e-1, 5e-2)]
    assert 10 < rich[0] / rich[1] < 24 and rich[0] < centred[0], (rich, centred)  # 2^4 = 16 per halving
    one = [_relative(kernels.gradient(theta, x, y, q0, p0, beta=b, order=1, retrace=False)[1], ref) for b in (1e-3, 1e-4)]
    assert 5 < one[0] / one[1] < 20, one


def test_velocity_start_reads_the_position_dependent_mass():
    """p0 = m(q0) v0 (1 + κ² q0²) for the beads: dC/dq0 gains (∂p0/∂q0)ᵀ dC/dp0, θ its PFVP term; echo vs
    BPTT <= 1e-6, BPTT vs central differences in v0, q0 and the mass parameters <= 1e-7."""
    stack = load_stack(str(BEADS))
    kernels = compile_stack(stack, dt=DT)
    theta, x, y, q0, _ = _problem(stack, seed=4, K=160, B=1)
    v0 = np.array([[0.4, -0.3, 0.2, 0.1]])
    loss, g, dx, trip, dq0, dv0 = kernels.gradient(theta, x, y, q0, v0=v0, beta=1e-4, initial_state=True)
    _, g_b, _, dq0_b, dv0_b = kernels.bptt_gradient(theta, x, y, q0, v0=v0, initial_state=True)
    for a, b in ((g, g_b), (dq0, dq0_b), (dv0, dv0_b)):
        assert _relative(a, b) <= 1e-6
    eps = 1e-5

    def cd(f, v):
        out = np.empty(v.size)
        for j in range(v.size):
            e = np.zeros(v.size)
            e[j] = eps
            e = e.reshape(v.shape)
            out[j] = (f(v + e) - f(v - e)) / (2 * eps)
        return out

    free = kernels.free
    assert _relative(cd(lambda v: free(theta, x, y, q0, v0=v)[2][0], v0), dv0_b) <= 1e-7
    assert _relative(cd(lambda q: free(theta, x, y, q, v0=v0)[2][0], q0), dq0_b) <= 1e-7
    assert _relative(cd(lambda t: free(t, x, y, q0, v0=v0)[2][0], theta), g_b[0]) <= 1e-7


def _midpoint_top_with_terminal_cost():
    """A bead driving a top bead on a wire with a running and a terminal cost (both midpoint)."""
    x0, u = dynamicsymbols("x0 u")
    m, kappa = sp.symbols("m kappa", positive=True)
    low = symglep.Model(m * (1 + kappa**2 * x0**2) * x0.diff() ** 2 / 2 - x0**2 / 2 + x0 * u, [x0], [m, kappa],
                        inputs=[u], name="low_bead")
    z, v, y = dynamicsymbols("z v y")
    mu = sp.Symbol("mu", positive=True)
    top = symglep.Model(mu * (1 + z**2) * z.diff() ** 2 / 2 - z**2 / 2 - z**4 / 8 + z * v, [z], [mu], inputs=[v],
                        targets=[y], cost=(z - y) ** 2 / 2, terminal_cost=(z - y) ** 2,
                        name="top_bead")
    return Stack([low, top], readouts=[[x0]], activations=["tanh"], name="bead_pair")


def test_terminal_cost_on_a_midpoint_top_unit():
    """c_T(q_K) kicks the top unit's nudged echoes (theory §10): echo vs BPTT <= 1e-6, BPTT vs central
    differences <= 1e-7; the loss includes c_T."""
    stack = _midpoint_top_with_terminal_cost()
    assert stack.integrators == ["midpoint", "midpoint"]
    kernels = compile_stack(stack, dt=DT)
    theta, x, y, q0, p0 = _problem(stack, seed=2, K=200, B=1)
    _, g, dx, trip = kernels.gradient(theta, x, y, q0, p0, beta=1e-4, learn_inputs=True)
    _, g_b, dx_b = kernels.bptt_gradient(theta, x, y, q0, p0)
    assert _relative(g, g_b) <= 1e-6 and _relative(dx, dx_b) <= 1e-6
    eps = 1e-5
    fd = np.empty(theta.size)
    for j in range(theta.size):
        e = np.zeros(theta.size)
        e[j] = eps
        fd[j] = (kernels.free(theta + e, x, y, q0, p0)[2][0] - kernels.free(theta - e, x, y, q0, p0)[2][0]) / (2 * eps)
    assert _relative(fd, g_b[0]) <= 1e-7
    _, _, loss, traj, _, _ = (a[0] for a in kernels.free(theta, x, y, q0, p0, record=True))
    z, yy = traj[:, -1], y[0, :, 0]  # the top unit's coordinate and the targets at the nodes
    running = DT * (np.sum((z - yy) ** 2 / 2) - ((z[0] - yy[0]) ** 2 + (z[-1] - yy[-1]) ** 2) / 4)
    np.testing.assert_allclose(loss, running + (z[-1] - yy[-1]) ** 2, rtol=1e-12)  # trapezoid sum + c_T(q_K)


def test_complex_step_echo_matches_bptt():
    """The complex-step stacked echo (β = i·1e-20, theory §5) through a stack of midpoint units only (stack_chain_hru
    on the midpoint rule): θ and dC/dx <= 1e-12 of BPTT. The complex-step kernels run as plain Python (the same
    generated source; tests/test_complex_step.py runs the mixed stack_beads the same way, and the compiled
    complex-step midpoint passes with the double pendulum), against the compiled BPTT."""
    stack = load_stack(str(CHAIN)).with_integrator("midpoint")
    theta, x, y, q0, p0 = _problem(stack, seed=5, K=60, B=1)
    _, g, dx, _ = compile_stack(stack, dt=DT, jit=False).complex_step_gradient(theta, x, y, q0, p0, learn_inputs=True)
    _, g_b, dx_b = compile_stack(stack, dt=DT).bptt_gradient(theta, x, y, q0, p0)
    assert _relative(g, g_b) <= 1e-12 and _relative(dx, dx_b) <= 1e-12, (_relative(g, g_b), _relative(dx, dx_b))


def test_generated_kernels_are_up_to_date():
    stack = load_stack(str(BEADS))
    committed = ROOT / "generated" / stack.name / "numba" / "kernels.py"
    assert committed.read_text(encoding="utf-8") == render_stack(stack), (
        "regenerate: symglep generate examples/stack_beads.py --out generated --force")


def test_the_commands_run_a_stack_with_midpoint_units(tmp_path):
    """check (passes), check --integrator midpoint on a leapfrog stack, generate, train: exit 0."""
    runner = CliRunner()
    result = runner.invoke(main, ["check", str(BEADS), "--steps", "300", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] and report["integrator"] == "mixed (midpoint, leapfrog)"
    result = runner.invoke(main, ["check", str(CHAIN), "--integrator", "midpoint"])
    assert result.exit_code == 0, result.output
    assert "midpoint units, stacked echo" in result.output
    result = runner.invoke(main, ["generate", str(CHAIN), "--integrator", "midpoint", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "midpoint" in (tmp_path / "stack_chain_hru" / "numba" / "kernels.py").read_text()
    save = tmp_path / "beads.json"
    result = runner.invoke(main, ["train", str(BEADS), "--task", "sine", "--epochs", "30", "--quiet",
                                  "--save", str(save)])
    assert result.exit_code == 0, result.output
    history = json.loads(save.read_text())["loss_history"]
    assert history[-1] < history[0]


def test_a_momentum_that_reads_the_inputs_refuses_velocity_starts():
    x0, u = dynamicsymbols("x0 u")
    low = symglep.Model((1 + u**2) * x0.diff() ** 2 / 2 - x0**2 / 2, [x0], inputs=[u], name="driven_mass")
    z, v, y = dynamicsymbols("z v y")
    top = symglep.Model(z.diff() ** 2 / 2 - z**2 / 2 + z * v, [z], inputs=[v], targets=[y], cost=(z - y) ** 2 / 2,
                        name="top")
    stack = Stack([low, top], readouts=[[x0]], name="driven_mass_stack")
    assert stack.integrators == ["midpoint", "leapfrog"]
    assert stack.momentum_reads_inputs == [0]
    kernels = compile_stack(stack, dt=DT)  # its kernels compile on their first call: none runs here
    theta, x, y, q0, p0 = _problem(stack, seed=1, K=60, B=1)
    with pytest.raises(symglep.SymglepError, match="momentum dL/dv that reads their inputs"):
        kernels.gradient(theta, x, y, q0, v0=p0, beta=1e-4)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "latex"])
def test_derive_and_residuals_report_a_midpoint_unit(fmt):
    """derive names each unit's integrator and a midpoint unit's input integrand −∂L/∂u (at the midpoints:
    its Lagrangian has no separate potential); residuals runs per unit."""
    from symglep.stack.commands import derive_report, residuals_report

    stack = load_stack(str(BEADS))
    text = derive_report(stack, fmt)
    if fmt == "json":
        units = json.loads(text)["learning_rule"]["units"]
        assert [u["integrator"] for u in units] == ["midpoint", "leapfrog"]
        assert units[0]["input_integrand"] == {"drive": "-x0"}
        assert units[0]["input_integrand_at"].startswith("each step's midpoint")
    elif fmt == "text":
        assert "unit 0 (beads, bottom, midpoint)" in text and "−∂L/∂u (at the midpoints): drive -> -x0" in text
    assert residuals_report(stack, "all", fmt if fmt != "markdown" else "text")


def test_a_failed_newton_iteration_is_named():
    """A tiny mass on a steep wire at a long step: the midpoint unit's Newton iteration does not converge,
    and every kernel says so in one line."""
    stack = load_stack(str(BEADS))
    kernels = compile_stack(stack, dt=DT)
    theta = stack.draw_parameters(np.random.default_rng(3))
    theta[stack.parameter_names.index("unit0.m")] = 1e-3
    theta[stack.parameter_names.index("unit0.kappa")] = 30.0
    x, y = np.ones((1, 21, 1)), np.zeros((1, 21, 1))
    q0, p0 = np.full((1, stack.n), 2.0), np.full((1, stack.n), 3.0)
    for run in (kernels.gradient, kernels.bptt_gradient):
        with pytest.raises(symglep.SymglepError, match=r"Newton iteration of a midpoint unit \(0\) did not converge"):
            run(theta, x, y, q0, p0, dt=0.5)


def _array_bead_stack():
    """examples/network_beads.py at 3 units (its mass m_i (1 + κ² x_i²) reads the position) under an HRU-like
    array top unit of 3, tanh glue: the bottom unit runs expanded element by element (Stack.expanded)."""
    from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, k, r

    beads = symglep.load_model(str(ROOT / "examples" / "network_beads.py"))
    beads.size = 3
    q, u, y = Coordinates("q"), Inputs("u"), Targets("y")
    A, B, m = Parameter("A", ("n", "n")), Parameter("B", ("n", "m")), Parameter("m", "n", positive=True)
    top = ArrayModel(lagrangian=Sum(m[i] * q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2, i)
                     - Sum(sp.log(sp.cosh((A @ q)[k] + (B @ u)[k])), k), cost=Sum((q[r] - y[r]) ** 2 / 2, r),
                     coordinates=q, parameters=[A, B, m], inputs=u, targets=y, name="hru_top", size=3,
                     sizes={"m": 3, "r": 1})
    return Stack([beads, top], readouts=["all"], activations=["tanh"], name="array_beads_stack")


def test_an_array_unit_whose_mass_reads_its_position_runs_expanded():
    """The array unit becomes its element-by-element scalar model (the scalar midpoint unit, a dense Newton
    solve): its parameters keep the array kernels' flat order; its free run inside the stack equals the array
    model's own midpoint kernels on the inputs the stack gave it; the stacked echo equals BPTT through the
    stack, and BPTT equals central differences (every θ)."""
    stack = _array_bead_stack()
    assert stack.expanded == [0] and stack.integrators == ["midpoint", "leapfrog"]
    beads = symglep.load_model(str(ROOT / "examples" / "network_beads.py"))
    n0 = stack.unit_size(0)
    assert stack.unit_parameter_names(0)[:n0] == [f"m_{a}" for a in range(n0)]  # the array's flat order
    kernels = compile_stack(stack, dt=DT)
    theta, x, y, q0, p0 = _problem(stack, K=120)
    _, _, _, tq, tp, tu = kernels.free(theta, x, y, q0, p0, record=True)
    array = symglep.compile(beads, dt=DT, jit=False)  # the array model's own midpoint kernels (its source as Python)
    values = array.unpack(theta[None, stack.unit_slices()[0]], n0, 1, n0 - 1)
    qa, pa, _ = array.free({k: v[0] for k, v in values.items()}, q0[:, :n0], p0=p0[:, :n0], u=x,
                           y=np.zeros(x.shape[:2] + (1,)))
    assert _relative(qa, tq[:, -1, :n0]) < 1e-10 and _relative(pa, tp[:, -1, :n0]) < 1e-10
    loss, g, gx, _ = kernels.gradient(theta, x, y, q0, p0, beta=1e-3, order=4, learn_inputs=True)
    _, gb, gxb = kernels.bptt_gradient(theta, x, y, q0, p0)
    assert _relative(g, gb) < 1e-8 and _relative(gx, gxb) < 1e-8
    fd = np.empty(theta.size)
    for j in range(theta.size):
        d = np.zeros_like(theta)
        d[j] = 1e-6
        fd[j] = (kernels.free(theta + d, x[:1], y[:1], q0[:1], p0[:1])[2][0]
                 - kernels.free(theta - d, x[:1], y[:1], q0[:1], p0[:1])[2][0]) / 2e-6
    assert _relative(gb[0], fd) < 1e-6
