"""Stacks whose units are array models (issue #16): the stacked echo against BPTT through the same
discrete stack and BPTT against central differences of the discrete loss (theory §9).

One mixed stack covers every join: an array unit over an edge list (network_chain) at the bottom,
read at two of its coordinates by a linear glue into a scalar unit, whose two readouts drive a
2-D spring network (network_springs, vector coordinates, an edge list, no learned mass) through a
tanh glue; the cost sits on the springs. examples/stack_hru.py (array → array, dense glue) is
checked by the matrix test (tests/test_matrix.py) and trained below.
"""

import json
import pathlib
import runpy

import numpy as np
import pytest
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.learners import learner_for
from symglep.stack.codegen import render_stack
from symglep.stack.commands import derive_report
from symglep.stack.runtime import compile_stack
from symglep.tasks import SineTask, sine_task
from symglep.training import train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def example_model(name: str, size: int):
    model = runpy.run_path(str(ROOT / "examples" / f"{name}.py"))["model"]
    model.size = size
    return model


def mixed_stack():
    chain = example_model("network_chain", 5)
    springs = example_model("network_springs", 4)
    s = dynamicsymbols("s0:2")
    f = dynamicsymbols("f")
    kappa, w = sp.symbols("kappa w", positive=True)
    middle = symglep.Model(
        lagrangian=(sum(x.diff() ** 2 for x in s) / 2 - w * sum(x**2 for x in s) / 2
                    - kappa * (s[1] - s[0]) ** 2 / 2 - s[0] ** 4 / 4 + s[0] * f),
        coordinates=list(s), parameters=[kappa, w], inputs=[f], name="middle")
    return symglep.Stack([chain, middle, springs], readouts=[[2, 4], [s[0], s[1] ** 2]],
                         activations=[None, "tanh"], name="mixed_arrays")


@pytest.fixture(scope="module")
def instance():
    stack = mixed_stack()
    kernels = compile_stack(stack, dt=0.02)
    rng = np.random.default_rng(3)
    theta = stack.draw_parameters(rng)
    K = 250
    t = np.arange(K + 1) * 0.02
    x = 0.4 * np.sin(1.3 * t[None, :, None] + rng.uniform(0, 6, (2, 1, kernels.n_x)))
    y = 0.2 * np.cos(0.7 * t[None, :, None] + rng.uniform(0, 6, (2, 1, kernels.n_y)))
    q0 = rng.uniform(-0.3, 0.3, (2, kernels.nq))
    p0 = rng.uniform(-0.3, 0.3, (2, kernels.nq))
    return stack, kernels, theta, np.ascontiguousarray(x), np.ascontiguousarray(y), q0, p0


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def test_layout_of_a_mixed_stack(instance):
    stack, kernels, theta, x, y, *_ = instance
    assert [stack.unit_size(i) for i in range(3)] == [5, 2, 8]  # springs: 4 nodes in R²
    assert kernels.nq == 15 and kernels.n_x == 1 and kernels.n_y == 2
    names = stack.parameter_names
    assert len(names) == theta.size == kernels.n_theta
    assert names[:5] == ["unit0.k[0]", "unit0.k[1]", "unit0.k[2]", "unit0.k[3]", "unit0.B[0,0]"]
    assert "unit1.kappa" in names and "glue0.W0_1" in names and "glue1.b1" in names
    assert any(n.startswith("unit2.l[") for n in names)


# The springs unit is strongly curved on this instance: the centred echo's bias is 1.3e-6 at β = 1e-4 and
# falls as β² (1.2e-7 at 3e-5), the Richardson contrast's as β⁴ (1.0e-9 at 3e-4); complex step: 2e-13.
@pytest.mark.parametrize("order, beta, tol", [(2, 3e-5, 1e-6), (4, 3e-4, 1e-8)])
def test_stacked_echo_equals_bptt(instance, order, beta, tol):
    stack, kernels, theta, x, y, q0, p0 = instance
    loss, g, gx, trip = kernels.gradient(theta, x, y, q0, p0, beta=beta, learn_inputs=True, order=order)
    loss_b, gb, gxb = kernels.bptt_gradient(theta, x, y, q0, p0)
    np.testing.assert_allclose(loss, loss_b, rtol=1e-13)
    assert np.all(trip < 1e-12)
    for b in range(2):
        assert rel(g[b], gb[b]) < tol
        for sl in stack.unit_slices() + stack.glue_slices():  # every unit and glue on its own
            assert rel(g[b][sl], gb[b][sl]) < tol
        assert rel(gx[b], gxb[b]) < tol


def test_complex_step_stacked_echo_equals_bptt_to_round_off(instance):
    stack, kernels, theta, x, y, q0, p0 = instance
    _, g, gx, _ = kernels.complex_step_gradient(theta, x, y, q0, p0, learn_inputs=True)
    _, gb, gxb = kernels.bptt_gradient(theta, x, y, q0, p0)
    assert rel(g, gb) < 1e-12 and rel(gx, gxb) < 1e-12


def test_bptt_equals_central_differences_of_the_discrete_loss(instance):
    stack, kernels, theta, x, y, q0, p0 = instance
    _, gb, _ = kernels.bptt_gradient(theta, x[:1], y[:1], q0[:1], p0[:1])
    step = 1e-6
    fd = np.empty_like(theta)
    for j in range(theta.size):
        d = np.zeros_like(theta)
        d[j] = step
        up = kernels.free(theta + d, x[:1], y[:1], q0[:1], p0[:1])[2][0]
        down = kernels.free(theta - d, x[:1], y[:1], q0[:1], p0[:1])[2][0]
        fd[j] = (up - down) / (2 * step)
    assert rel(gb[0], fd) < 1e-7


def test_unit_functions_match_the_array_models_own_kernels(instance):
    """The stack's array-unit adapter computes the force and the learning integrand of the unit's own
    network kernels (same loops, other prefix): compared at one state of the top unit."""
    stack, kernels, theta, *_ = instance
    springs = stack.units[2]
    own = symglep.compile(springs)
    array = stack.arrays[2]
    rng = np.random.default_rng(0)
    q = rng.uniform(-0.5, 0.5, array.n)
    uk = rng.uniform(-1, 1, array.m)
    yk = rng.uniform(-1, 1, array.r)
    th = theta[stack.unit_slices()[2]]
    off = np.asarray(array.offsets, dtype=np.int64)
    ro = array.readout_units()
    f = np.empty(array.n)
    getattr(kernels.module, "u2_f_force")(q, 0.0, uk, yk, th, 0.3, f)
    np.testing.assert_allclose(f, own.module.force(th, off, array.edges, ro, q, uk, 0.0, yk, 0.3), rtol=1e-13, atol=1e-15)
    dth, du = np.empty(array.n_theta), np.empty(array.m)
    getattr(kernels.module, "u2_f_potential_partials")(q, 0.0, uk, th, dth, du)
    np.testing.assert_allclose(dth, own.module.potential_partials(th, off, array.edges, q, uk, 0.0), rtol=1e-13,
                               atol=1e-15)


def test_stack_of_array_layers_trains_by_the_echo():
    """examples/stack_hru.py (two HRU layers of array models, dense tanh glue) on the sine task:
    the loss falls, and the stacked echo's first gradient is BPTT's."""
    stack = symglep.load_system(str(ROOT / "examples" / "stack_hru.py"))
    kernels = symglep.compile(stack)
    data, start = sine_task(stack, kernels, seed=1, config=SineTask(sequences=4, steps=200, dt=0.05))
    learner = learner_for(stack, kernels)
    q0, p0 = learner.rest(4)
    g_echo = learner.gradients("echo4", 1e-3, start, data.u, data.y, q0, p0, False, 0.05)[1]
    g_bptt = learner.gradients("bptt", None, start, data.u, data.y, q0, p0, False, 0.05)[1]
    assert rel(g_echo, g_bptt) < 1e-8
    result = train(stack, SineTask(sequences=4, steps=200, dt=0.05), epochs=25, lr=0.05, seed=1, beta=1e-4,
                   estimator="echo", dt=0.05)
    assert result.final_loss < 0.2 * result.loss_history[0]


def test_a_stacked_echo_that_does_not_retrace_its_free_run_is_refused():
    """New-user probe: examples/stack_hru.py at dt = 0.5 (past a unit's stability limit) returned a stacked echo
    7x off BPTT, silently, while the un-nudged echo's round trip was 4e-9. The nudged echoes' mean end is now
    measured as the scalar and array kernels measure it (passes.retrace), for every order; at dt = 0.05 the echo
    is BPTT's and passes."""
    from symglep.diagnose import NumericalError

    stack = symglep.load_system(str(ROOT / "examples" / "stack_hru.py"))
    kernels = symglep.compile(stack, dt=0.05)
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.5, 1.5, kernels.n_theta)
    x, y = rng.normal(0, 0.5, (1, 201, kernels.n_x)), rng.normal(0, 0.5, (1, 201, kernels.n_y))
    for dt, retraces in ((0.05, True), (0.5, False)):
        bptt = kernels.bptt_gradient(theta, x, y, dt=dt)[1]
        for order in (1, 2):
            unguarded = kernels.gradient(theta, x, y, dt=dt, order=order, beta=1e-6, retrace=False)[1]
            if retraces:
                assert rel(kernels.gradient(theta, x, y, dt=dt, order=order, beta=1e-6)[1], bptt) < 1e-5
            else:
                assert rel(unguarded, bptt) > 1.0
                with pytest.raises(NumericalError, match="stacked echo: the echo of sequence 0 did not retrace"):
                    kernels.gradient(theta, x, y, dt=dt, order=order, beta=1e-6)

def test_an_array_units_coordinates_read_out_every_coordinate():
    chain = example_model("network_chain", 5)
    springs = example_model("network_springs", 4)
    stack = symglep.Stack([chain, springs], readouts=[chain.q])
    assert stack.links[0].select == list(range(5)) and len(stack.links[0].W) == springs.sizes["m"]


def test_array_unit_declaration_errors_are_clear():
    chain = example_model("network_chain", 5)
    springs = example_model("network_springs", 4)
    with pytest.raises(symglep.ModelError, match=r"distinct coordinate indices in 0\.\.4"):
        symglep.Stack([chain, springs], readouts=[[0, 7]])
    with pytest.raises(symglep.ModelError, match="'all', its coordinates"):
        symglep.Stack([chain, springs], readouts=[["q"]])
    terminal = runpy.run_path(str(ROOT / "examples" / "network_chain.py"))
    model = terminal["model"]
    model.terminal_cost = model.cost
    with pytest.raises(symglep.ModelError, match="declares a terminal cost"):
        symglep.Stack([model, springs], readouts=["all"])  # below the top: only the top unit's cost is used
    damped = example_model("network_damped_hru", 4)  # served: the time-weighted leapfrog (tests/test_stack_damping.py)
    assert symglep.Stack([chain, damped], readouts=["all"]).arrays[1].model.damping_rate == 0.3


def test_generated_stack_of_arrays_is_up_to_date():
    stack = symglep.load_system(str(ROOT / "examples" / "stack_hru.py"))
    committed = ROOT / "generated" / stack.name / "numba" / "kernels.py"
    assert committed.read_text(encoding="utf-8") == render_stack(stack), (
        "regenerate: symglep generate examples/stack_hru.py --out generated")


def test_derive_reports_array_units_and_dense_glue_in_index_form():
    stack = symglep.load_system(str(ROOT / "examples" / "stack_hru.py"))
    data = json.loads(derive_report(stack, "json"))
    assert [u["kind"] for u in data["units"]] == ["array", "array"]
    assert data["parameter_names"] == stack.parameter_names
    glue, = data["glue"]
    assert glue["form"] == "dense" and glue["readout"] == [f"q[{j}]" for j in range(8)]
    assert glue["inputs"] == "u[m] = tanh(z_m) (m = 0..7)"
    rule, = data["learning_rule"]["glue"]
    assert rule["per_node"]["glue0_b<m>"] == "g_m (1 - tanh(z_m)**2)"
    layer = data["learning_rule"]["units"][1]
    assert layer["nudge"] == "cost" and layer["integrand"]["A[k,j]"].endswith("·q[j]")
    text = derive_report(stack, "text")
    assert "unit 0 (hru_layer0, array model at n = 8, bottom, leapfrog)" in text
    assert "\\begin{align}" in derive_report(stack, "latex")


def test_initial_state_gradients_of_every_unit(instance):
    """Each unit's start gradient from its echoes' end points (theory §5, §9) equals BPTT's adjoint at
    node 0, which equals central differences of the discrete loss in q0 and p0."""
    stack, kernels, theta, x, y, q0, p0 = instance
    # the start gradient is more curved in beta than dC/dtheta here: Richardson 1.6e-8 at 3e-4, 4.4e-10 at 1e-4
    out = kernels.gradient(theta, x, y, q0, p0, beta=1e-4, order=4, initial_state=True)
    bptt = kernels.bptt_gradient(theta, x, y, q0, p0, initial_state=True)
    _, _, _, dq0_b, dp0_b = bptt
    assert rel(out[4], dq0_b) < 1e-8 and rel(out[5], dp0_b) < 1e-8
    # by name, the start gradients are the same fields of both results (by position they are not: the echo
    # has its round trip at 3; a probe compared out[4] with BPTT's [4])
    assert out.dq0 is out[4] and bptt.dq0 is bptt[3] and rel(out.dp0, bptt.dp0) < 1e-8
    cs = kernels.complex_step_gradient(theta, x, y, q0, p0, initial_state=True)
    assert rel(cs[4], dq0_b) < 1e-12 and rel(cs[5], dp0_b) < 1e-12 and rel(cs.dq0, bptt.dq0) < 1e-12
    # the springs' start is strongly curved (random node positions within ±0.3, rest length ~1): the central
    # differences' h² error is 3e-6 at h = 1e-6 and 3e-8 at 1e-7 (round-off there ~1e-9)
    step = 1e-7
    for which, grad in ((0, dq0_b[0]), (1, dp0_b[0])):
        fd = np.empty(kernels.nq)
        for j in range(kernels.nq):
            start = [q0[:1].copy(), p0[:1].copy()]
            start[which][0, j] += step
            up = kernels.free(theta, x[:1], y[:1], *start)[2][0]
            start[which][0, j] -= 2 * step
            down = kernels.free(theta, x[:1], y[:1], *start)[2][0]
            fd[j] = (up - down) / (2 * step)
        assert rel(grad, fd) < 2e-7


def test_stack_learns_its_initial_state():
    """--learn-initial-state and --freeze-parameters on a stack (HEB's setting, theory §9): with θ frozen
    only the shared start moves, and the loss falls."""
    stack = symglep.load_system(str(ROOT / "examples" / "stack_chain_hru.py"))
    task = SineTask(sequences=4, steps=200, dt=0.05)
    result = train(stack, task, epochs=30, lr=0.05, seed=0, beta=1e-4, estimator="echo", dt=0.05,
                   learn_initial_state=True, freeze_parameters=True)
    start = train(stack, task, epochs=0, seed=0, dt=0.05).theta
    np.testing.assert_array_equal(result.theta, start)
    assert result.final_loss < 0.5 * result.loss_history[0]
    assert np.any(np.asarray(result.initial_state["q0"]) != 0)


def test_a_parameter_file_may_give_an_array_units_parameter_whole(tmp_path):
    """New-user probe: `--freeze unit1.A` and the docs name an array unit's parameter whole, but a --params or
    --resume file {"unit0.B": [[...]]} was "unknown parameter(s): unit0.B": only element names were read. Both
    spellings now give the same θ; a whole array of the wrong shape is still refused."""
    import json

    stack = mixed_stack()
    theta = stack.draw_parameters(np.random.default_rng(5))
    flat = dict(zip(stack.parameter_names, theta.tolist()))
    grouped = {k: v for k, v in flat.items() if not k.startswith(("unit0.k[", "unit0.B["))}
    grouped["unit0.k"] = [flat[f"unit0.k[{i}]"] for i in range(4)]
    grouped["unit0.B"] = [[flat[f"unit0.B[{i},0]"]] for i in range(5)]
    for values in (flat, grouped):
        path = tmp_path / "params.json"
        path.write_text(json.dumps(values))
        assert np.array_equal(stack.read_parameters(str(path)), theta)
    grouped["unit0.B"] = [[1.0, 2.0]] * 5
    path.write_text(json.dumps(grouped))
    with pytest.raises(symglep.SymglepError, match="unknown parameter"):
        stack.read_parameters(str(path))


def test_a_strided_theta_and_an_unasked_dx(instance):
    """A strided view of θ (float64, the right length) made the array units' kernels a Numba TypingError
    ("reshape() supports contiguous array only"), and gradient without learn_inputs returned dx as a (B, 1, 1)
    array of zeros that broadcasts against x (new-user probe): θ is made contiguous, and dx is None unless asked."""
    stack, kernels, theta, x, y, q0, p0 = instance
    strided = np.repeat(np.asarray(theta, dtype=float), 2)[::2]
    assert not strided.flags.c_contiguous
    loss, g, dx, trip = kernels.gradient(strided, x, y, q0, p0, beta=1e-4)
    loss_c, g_c, dx_c, _ = kernels.gradient(np.ascontiguousarray(strided), x, y, q0, p0, beta=1e-4,
                                             learn_inputs=True)
    assert np.array_equal(loss, loss_c) and np.array_equal(g, g_c)
    assert dx is None and dx_c.shape == x.shape
    assert np.array_equal(kernels.bptt_gradient(strided, x, y, q0, p0)[1],
                          kernels.bptt_gradient(np.ascontiguousarray(strided), x, y, q0, p0)[1])
