"""Stacks of uniformly damped units (issue #16): every unit runs its Caldirola–Kanai Lagrangian
e^{γt} L by the time-weighted leapfrog (theory §7, §9), K sampled at the middle of each step.

One stack holds the three ways a unit is damped: an array unit with a uniform Rayleigh function whose
rate γ is a learned parameter (examples/network_learned_damping.py, bottom), a scalar unit written in Caldirola–Kanai form with a learned
mass and a learned damping rate (middle), a scalar unit whose uniform Rayleigh function symglep rewrites (top, with the cost). Each
unit's rate differs. Checked, from a start at t0 ≠ 0 (the weights read absolute times): each unit's
free run is its own kernels' (scalar leapfrog, array model), which tests/test_dissipation.py and
tests/test_network_damping.py hold to the damped equation of motion (RK4); the stacked echo against
BPTT through the stack, BPTT against central differences, a velocity start (p0 = e^{γ t0} m v0);
the C kernels equal the Numba ones; JAX's chain of the units' layers equals both.
"""

import pathlib
import json
import runpy

import numpy as np
import pytest
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from c_harness import EXTRA, STRICT, compile_c, relative_error
from symglep.stack.codegen_c import write_stack_c
from symglep.stack.runtime import compile_stack
from test_stack_c import StackC

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT, T0, K = 0.02, 0.4, 200
GAMMA = 0.2
MATCH_BETA = 0.1  # C against Numba at the same β (test_c_kernels_equal_numba)


def damped_stack():
    hru = runpy.run_path(str(ROOT / "examples" / "network_learned_damping.py"))["model"]
    hru.size = 3
    t = dynamicsymbols._t
    s, f = dynamicsymbols("s0:2"), dynamicsymbols("f")
    kappa, w, m, gamma = sp.symbols("kappa w m gamma", positive=True)
    middle = symglep.Model(
        lagrangian=sp.exp(gamma * t) * (m * sum(x.diff() ** 2 for x in s) / 2 - w * sum(x**2 for x in s) / 2
                                        - kappa * (s[1] - s[0]) ** 2 / 2 - s[0] ** 4 / 4 + s[0] * f),
        coordinates=list(s), parameters=[kappa, w, m, gamma], inputs=[f], name="ck_pair")  # γ learned
    z, g, y = dynamicsymbols("z0:2"), dynamicsymbols("g"), dynamicsymbols("y")
    mu, rate = sp.symbols("mu rate", positive=True)
    top = symglep.Model(
        lagrangian=sum(x.diff() ** 2 for x in z) / 2 - sum(x**2 for x in z) / 2 - mu * (z[1] - z[0]) ** 2 / 2
        + z[0] * g,
        coordinates=list(z), parameters=[mu], inputs=[g], targets=[y], cost=(z[1] - y) ** 2 / 2,
        dissipation=rate * sum(x.diff() ** 2 for x in z) / 2, constants={rate: 0.15}, name="rayleigh_pair")
    return symglep.Stack([hru, middle, top], readouts=[[0, 2], [s[0], s[1] ** 2]], activations=[None, "tanh"],
                         name="damped_units")


@pytest.fixture(scope="module")
def instance():
    stack = damped_stack()
    kernels = compile_stack(stack, dt=DT)
    rng = np.random.default_rng(5)
    theta = stack.draw_parameters(rng)
    theta[stack.unit_slices()[1]][3] = GAMMA  # the middle unit's learned damping rate, started at 0.2
    theta[stack.unit_slices()[0]][_bottom_offset(stack, "gamma")] = BOTTOM_GAMMA  # the bottom unit's, at 0.3
    t = T0 + np.arange(K + 1) * DT
    x = np.ascontiguousarray(0.4 * np.sin(1.3 * t[None, :, None] + rng.uniform(0, 6, (2, 1, kernels.n_x))))
    y = np.ascontiguousarray(0.2 * np.cos(0.7 * t[None, :, None] + rng.uniform(0, 6, (2, 1, kernels.n_y))))
    q0 = rng.uniform(-0.3, 0.3, (2, kernels.nq))
    p0 = rng.uniform(-0.3, 0.3, (2, kernels.nq))
    return stack, kernels, theta, x, y, q0, p0


BOTTOM_GAMMA = 0.3


def _bottom_offset(stack, name):
    """Where the bottom (array) unit's parameter ``name`` starts in its slice of θ."""
    a = stack.arrays[0]
    return dict(zip([n for n, _ in a.layout], a.offsets))[name]


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def test_damped_units_are_served_and_the_capability_table_says_so(instance):
    stack = instance[0]
    assert stack.capabilities.supports("dissipation", "uniform damping")
    assert stack.arrays[0].model.damping_parameter.name == "gamma"  # learned: its rate is a parameter
    assert stack.units[2].damping == 0 and "exp" in str(stack.units[2].lagrangian)  # rewritten: e^{γt} L


def test_each_unit_runs_its_own_damped_step(instance):
    """The stack's trajectory of the bottom unit (array) is the array model's own damped kernels on the
    stack's inputs; the middle unit's (scalar) is the scalar model's time-weighted leapfrog on the inputs
    the glue fed it (recorded) — to round-off."""
    stack, kernels, theta, x, y, q0, p0 = instance
    _, _, _, tq, tp, tu = kernels.free(theta, x, y, q0, p0, t0=T0, record=True)
    (s0, s1, _), n0, n1 = stack.unit_slices(), stack.unit_size(0), stack.unit_size(1)
    a = stack.arrays[0]
    values = {name: theta[s0][off:off + int(np.prod(shape))].reshape(shape)
              for (name, shape), off in zip(a.layout, a.offsets)}
    array = symglep.compile(stack.units[0], dt=DT)
    qa, pa, _ = array.free(values, q0[:, :n0], p0=p0[:, :n0], u=x, y=np.zeros((2, K + 1, a.r)), edges=a.edges,
                           t0=T0)
    assert rel(qa, tq[:, -1, :n0]) < 1e-12 and rel(pa, tp[:, -1, :n0]) < 1e-12
    scalar = symglep.compile(stack.units[1], integrator="leapfrog", dt=DT, jit=False)  # its generated source as Python
    u1 = np.ascontiguousarray(tu[:, :, stack.unit_inputs(0):stack.unit_inputs(0) + stack.unit_inputs(1)])
    qT, pT, _ = scalar.free(theta[s1], q0[:, n0:n0 + n1], p0=p0[:, n0:n0 + n1], u=u1, y=np.zeros((2, K + 1, 0)),
                            t0=T0)
    assert rel(qT, tq[:, -1, n0:n0 + n1]) < 1e-13 and rel(pT, tp[:, -1, n0:n0 + n1]) < 1e-13


@pytest.mark.parametrize("order, beta, tol", [(2, 3e-5, 1e-6), (4, 3e-4, 1e-8)])
def test_stacked_echo_equals_bptt(instance, order, beta, tol):
    stack, kernels, theta, x, y, q0, p0 = instance
    loss, g, gx, trip, dq0, dp0 = kernels.gradient(theta, x, y, q0, p0, t0=T0, beta=beta, learn_inputs=True,
                                                   order=order, initial_state=True)
    loss_b, gb, gxb, dq0_b, dp0_b = kernels.bptt_gradient(theta, x, y, q0, p0, t0=T0, initial_state=True)
    np.testing.assert_allclose(loss, loss_b, rtol=1e-13)
    assert np.all(trip < 1e-12)  # the un-nudged echo (anti-damped in echo time) returns to the start
    for b in range(2):
        for sl in stack.unit_slices() + stack.glue_slices():
            assert rel(g[b][sl], gb[b][sl]) < tol
        assert rel(gx[b], gxb[b]) < tol
    assert rel(dq0, dq0_b) < 10 * tol and rel(dp0, dp0_b) < 10 * tol


def test_bptt_equals_central_differences_of_the_discrete_loss(instance):
    stack, kernels, theta, x, y, q0, p0 = instance
    _, gb, _ = kernels.bptt_gradient(theta, x[:1], y[:1], q0[:1], p0[:1], t0=T0)
    step = 1e-6
    fd = np.empty_like(theta)
    for j in range(theta.size):
        d = np.zeros_like(theta)
        d[j] = step
        up = kernels.free(theta + d, x[:1], y[:1], q0[:1], p0[:1], t0=T0)[2][0]
        down = kernels.free(theta - d, x[:1], y[:1], q0[:1], p0[:1], t0=T0)[2][0]
        fd[j] = (up - down) / (2 * step)
    assert rel(gb[0], fd) < 1e-7


def test_velocity_start_weights_the_momentum_and_its_gradient(instance):
    """p0 = e^{γ t0} m v0 per unit, and dC/dv0 with the learned mass's PFVP term (theory §5, §7): the
    echo against BPTT, and dC/dv0 against central differences."""
    stack, kernels, theta, x, y, q0, _ = instance
    v0 = np.full((1, kernels.nq), 0.2)
    p0 = kernels.module.momenta(theta, q0[:1], v0, x[:1], T0)
    n0, n1 = stack.unit_size(0), stack.unit_size(1)
    m, gamma = theta[stack.unit_slices()[1]][2:4]
    np.testing.assert_allclose(p0[0, n0:n0 + n1], np.exp(gamma * T0) * m * v0[0, n0:n0 + n1], rtol=1e-14)
    start = _bottom_offset(stack, "m")
    masses = theta[stack.unit_slices()[0]][start:start + n0]
    np.testing.assert_allclose(p0[0, :n0], np.exp(BOTTOM_GAMMA * T0) * masses * v0[0, :n0], rtol=1e-14)
    out = kernels.gradient(theta, x[:1], y[:1], q0[:1], v0=v0, t0=T0, beta=3e-4, order=4, initial_state=True)
    ref = kernels.bptt_gradient(theta, x[:1], y[:1], q0[:1], v0=v0, t0=T0, initial_state=True)
    assert rel(out[1], ref[1]) < 1e-8 and rel(out[5], ref[4]) < 1e-7
    step, fd = 1e-6, np.empty(kernels.nq)
    for j in range(kernels.nq):
        d = np.zeros_like(v0)
        d[0, j] = step
        up = kernels.free(theta, x[:1], y[:1], q0[:1], v0=v0 + d, t0=T0)[2][0]
        down = kernels.free(theta, x[:1], y[:1], q0[:1], v0=v0 - d, t0=T0)[2][0]
        fd[j] = (up - down) / (2 * step)
    assert rel(ref[4][0], fd) < 1e-7


def test_c_kernels_equal_numba(instance, tmp_path):
    """The C99 stack (strict gcc, float32 too) runs the same damped steps: free pass and stacked echo
    equal Numba's, from a momentum and from a velocity start (the array unit's Numba loops may reassociate
    sums, which the echo's 1/β amplifies: it is matched at β = 0.1. dC/dx, small on this instance next to the
    terms it is the contrast of, keeps the most of that round-off: 5e-12 at β = 0.1, 3.3e-11 at 1e-2, 5e-10 at
    1e-3 — the 1/β law of round-off, not a difference of the computation; dC/dθ 7e-15, 7e-14, 2e-12)."""
    stack, kernels, theta, x, y, q0, p0 = instance
    for precision in ("float64", "float32"):
        write_stack_c(stack, str(tmp_path / precision), precision)
    src = tmp_path / "float32" / stack.name / "c"
    compile_c("gcc", src, tmp_path / "f32.o", [f"{stack.name}.c"],
              STRICT + EXTRA + ["-Wconversion", "-Wdouble-promotion", "-O2", "-c"])
    src = tmp_path / "float64" / stack.name / "c"
    lib = src / f"lib{stack.name}.so"
    compile_c("gcc", src, lib, [f"{stack.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    c = StackC(lib, stack)
    qT, pT, loss = kernels.free(theta, x, y, q0, p0, t0=T0)
    _, g, dx, _ = kernels.gradient(theta, x, y, q0, p0, t0=T0, beta=MATCH_BETA, learn_inputs=True, retrace=False)
    for b in range(2):
        cq, cp, closs = c.free(theta, q0[b], p0[b], x[b], y[b], DT, t0=T0)
        assert relative_error(closs, loss[b]) <= 1e-12
        assert relative_error(cq, qT[b]) <= 1e-12 and relative_error(cp, pT[b]) <= 1e-12
        closs, cg, cdx, ctrip = c.gradient(theta, q0[b], p0[b], x[b], y[b], DT, MATCH_BETA, t0=T0, unguarded=True)
        assert relative_error(cg, g[b]) <= 1e-12 and relative_error(cdx, dx[b]) <= 1e-11 and ctrip < 1e-10
    v0 = np.full((2, kernels.nq), 0.2)  # a velocity start: p0 = e^{γ t0} m v0 per unit, and its chain rule
    _, g, _, _, dq0, dv0 = kernels.gradient(theta, x, y, q0, v0=v0, t0=T0, beta=MATCH_BETA, initial_state=True,
                                            retrace=False)
    for b in range(2):
        _, cg, _, _, cdq0, cdv0 = c.gradient(theta, q0[b], v0[b], x[b], y[b], DT, MATCH_BETA, learn_x=False, t0=T0,
                                             start_velocity=True, initial_state=True, unguarded=True)
        assert relative_error(cg, g[b]) <= 1e-12
        assert relative_error(np.concatenate([cdq0, cdv0]), np.concatenate([dq0[b], dv0[b]])) <= 1e-12


def test_jax_chain_equals_the_numba_stack(instance):
    """symglep.jax.loss of the stack (each unit's JAX layer by the time-weighted leapfrog): the loss equals
    the Numba stack's, its autodiff the Numba BPTT and its Richardson echo VJP the Numba stacked echo."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import symglep.jax as sj

    jax.config.update("jax_enable_x64", True)
    stack, kernels, theta, x, y, q0, p0 = instance
    loss, dth, dx, _, dq0, dp0 = kernels.gradient(theta, x[:1], y[:1], q0[:1], p0[:1], t0=T0, beta=1e-3, order=4,
                                                  learn_inputs=True, initial_state=True)
    _, bth, bx, bq0, bp0 = kernels.bptt_gradient(theta, x[:1], y[:1], q0[:1], p0[:1], t0=T0, initial_state=True)
    args = tuple(map(jnp.asarray, (theta, x[0], y[0], q0[0], p0[0])))
    assert abs(float(sj.loss(stack, DT, t0=T0)(*args)) - loss[0]) <= 1e-12 * abs(loss[0])
    for options, want, bound in (({"estimator": "bptt"}, (bth, bx, bq0, bp0), 1e-11),
                                 ({"beta": 1e-3, "order": 4}, (dth, dx, dq0, dp0), 1e-9)):
        got = jax.jit(jax.grad(sj.loss(stack, DT, t0=T0, **options), (0, 1, 3, 4)))(*args)
        for a, b in zip(got, want):
            assert rel(a, b[0]) <= bound


def test_derive_reports_the_damped_units():
    """derive of a stack with a Caldirola–Kanai or a rewritten Rayleigh unit was an internal error: the report read
    the unit's plain V, which a time-weighted unit does not have (new-user probe). Its input integrand is
    −∂L/∂u = e^{γt} ∂V/∂u (theory §7)."""
    from symglep.commands import derive_report

    report = json.loads(derive_report(damped_stack(), "json"))
    units = report["learning_rule"]["units"]
    assert units[1]["input_integrand"] == {"f": "-s0*exp(t*gamma)"}
    assert units[2]["input_integrand"] == {"g": "-z0*exp(t*rate)"}
    text = derive_report(damped_stack(), "text")
    assert "unit 2 (rayleigh_pair, top, leapfrog)" in text
    # the unit's own report says what `auto` picks for it alone (the midpoint rule): the stack's line says which
    # integrator the stack runs (new-user probe: only the unit's "integrator (auto): midpoint" was shown)
    unit1 = text.split("=== unit 1: ")[1].split("=== unit 2")[0]
    assert unit1.splitlines()[1].startswith("in this stack: stepped by the leapfrog (weighted in time, theory §7)")
    assert "integrator (auto): midpoint" in unit1


def test_the_stack_check_names_each_damped_unit_and_its_rate():
    """A damped unit's echo runs anti-damped: the stack check read its amplified round-off as β bias and advised
    a smaller β, which made it worse (new-user probe, e^(γT) = 4e10). It now reads each unit's rate at θ (a
    learned one from θ) and says what the growth is."""

    stack = damped_stack()
    theta = stack.draw_parameters(np.random.default_rng(0))
    theta[stack.unit_slices()[1]][3] = 0.25
    theta[stack.unit_slices()[0]][_bottom_offset(stack, "gamma")] = 0.7
    assert [(i, round(g, 12)) for i, g in stack.damping_rates(theta)] == [(0, 0.7), (1, 0.25), (2, 0.15)]
