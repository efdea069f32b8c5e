"""Array models whose potential reads the time t (issue #16, theory §4): a driven chain whose springs and
on-site drive change in time. The kernels sample t at the nodes t_k = t0 + k·dt (the midpoint rule at
t_k+½); every target is held against an independent route at a start time t0 ≠ 0:

* the Numba array kernels against the element-by-element scalar Model (network/expand.py): the force at
  one state against SymPy's derivation at that time, BPTT and the echo entry by entry;
* the echo against BPTT (≤ 1e-6) and BPTT against central differences, on both integrators;
* the C kernels against the Numba ones, the JAX loss's echo VJP against autodiff and Numba;
* a stack whose top unit is the driven chain: the stacked echo against BPTT through the stack;
* the reports (derive, check) and the refusals of t where it cannot go (the mass, the cost).

The Numba array modules run as Python (``jit=False``): the compiled array passes are exercised by every
other array test (the time argument is passed everywhere), and this file stays cheap in CI.
"""

import numpy as np
import pytest
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from c_harness import EXTRA, STRICT, compile_c, relative_error
from symglep.errors import ModelError
from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r
from symglep.network.check import draw_instance, render_text, run_check
from symglep.network.derive import derive, render
from symglep.network.expand import expand
from symglep.network.render_c import generate_network_c
from symglep.network.runtime import compile_array_model
from test_network_c import ArrayC

T = dynamicsymbols._t
DT = 0.02
T0 = 0.3  # the start time: every route must read the same t_k = t0 + k dt


def driven_chain(size: int = 4) -> ArrayModel:
    """Springs k_e (1 + sin(t)/2) between neighbours, a drive F_i cos(Ω t) on every unit, an input B u."""
    x, u, y = Coordinates("x"), Inputs("u"), Targets("y")
    E = Edges("E", default=lambda n: [(a, a + 1) for a in range(n - 1)])
    k = Parameter("k", "e", positive=True, init=(0.5, 1.5))
    F = Parameter("F", "n", init=(-0.5, 0.5))
    B = Parameter("B", ("n", "m"), init=(-0.5, 0.5))
    omega = sp.Symbol("Omega", positive=True)
    return ArrayModel(
        lagrangian=(Sum(x.dot[i] ** 2 / 2, i) - Sum(x[i] ** 2 / 2 + x[i] ** 4 / 8, i)
                    - Sum(k[E.e] * (x[E.src] - x[E.dst]) ** 2 / 2 * (1 + sp.sin(T) / 2), E)
                    + Sum(F[i] * x[i] * sp.cos(omega * T), i) + Sum(x[i] * (B @ u)[i], i)),
        cost=Sum((x[r] - y[r]) ** 2 / 2, r),
        coordinates=x, parameters=[k, F, B, omega], inputs=u, targets=y, edges=E,
        name="driven_chain", size=size, sizes={"m": 1, "r": 1})


@pytest.fixture(scope="module")
def model():
    return driven_chain()


def _instance(model, kern, steps, seed):
    theta, q0, p0, u, y = draw_instance(model, kern, model.size, 1, steps, DT, np.random.default_rng(seed))
    theta = dict(theta) if isinstance(theta, dict) else theta
    return theta, q0, p0, u, y


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300))


def test_the_time_slot_and_the_reports(model):
    assert model.explicit_time
    d = derive(model)
    assert "V reads the time t in" in d["explicit_time"] and "sin(t)" in d["explicit_time"]
    assert "replays t in reverse" in d["time_reversal_note"]
    assert "Explicit time dependence" in render(d, "text")


@pytest.mark.parametrize("integrator", ["leapfrog", "midpoint"])
def test_array_kernels_equal_the_expanded_scalar_model(model, integrator):
    """Force and learning rule at one state and time against SymPy's derivation of the expanded model;
    BPTT to round-off and the same echo estimator to round-off / β, both from t0 = 0.3, on the same
    integrator (the midpoint rule samples t at t_k+½ on both sides)."""
    n, K = model.size, 40
    kern = compile_array_model(model, DT, jit=False, integrator=integrator)
    scalar = expand(model, n)
    skern = symglep.compile(scalar, dt=DT, jit=False, integrator=integrator)
    theta, q0, p0, u, y = _instance(model, kern, K, 4)
    args, _ = kern.prepare(theta, q0, p0, u, y)
    th, off, E, ro = args[:4]
    d = symglep.derive(scalar)
    rng = np.random.default_rng(5)
    q = q0[0] + rng.uniform(-0.1, 0.1, q0.shape[1])
    tk = T0 + 3 * DT
    values = dict(zip(scalar.q, q)) | dict(zip(scalar.v, np.zeros(n))) | dict(zip(scalar.u, u[0, 3]))
    values |= dict(zip(scalar.parameters, th)) | {T: tk}
    forcing = np.array([float(sp.N(f.xreplace(values), 30)) for f in d.el.forcing])
    assert rel_err(-kern.module.force(th, off, E, ro, q, u[0, 3], tk, y[0, 3], 0.0), forcing) <= 1e-12
    rule = np.array([float(sp.N(d.learning_rule[s].xreplace(values), 30)) for s in scalar.parameters])
    assert rel_err(-kern.module.potential_partials(th, off, E, q, u[0, 3], tk), rule) <= 1e-12
    # the time changes the force: the same state one step later pulls differently
    assert rel_err(kern.module.force(th, off, E, ro, q, u[0, 3], tk + 0.5, y[0, 3], 0.0),
                   -forcing) > 1e-3

    ba = kern.bptt_gradient(theta, q0, p0, u, y, t0=T0, learn_inputs=True)
    bs = skern.bptt_gradient(th, q0, p0=p0, u=u, y=y, t0=T0)
    assert rel_err(ba.flat[0], bs.dtheta[0]) <= 1e-12
    assert rel_err(np.concatenate([ba.dq0.ravel(), ba.dp0.ravel()]), np.concatenate([bs.dq0[0], bs.dx0[0]])) <= 1e-12
    ea = kern.gradient(theta, q0, p0, u, y, beta=1e-1, t0=T0)
    es = skern.gradient(th, q0, p0=p0, u=u, y=y, beta=1e-1, t0=T0)
    assert rel_err(ea.flat[0], es.dtheta[0]) <= 1e-12
    np.testing.assert_allclose(ea.loss, es.loss, rtol=1e-13)
    # started elsewhere in time, the run differs: t0 reaches the kernels
    assert rel_err(kern.bptt_gradient(theta, q0, p0, u, y).flat[0], ba.flat[0]) > 1e-3


@pytest.mark.parametrize("integrator", ["leapfrog", "midpoint"])
def test_echo_equals_bptt_and_bptt_equals_finite_differences(model, integrator):
    """The centred echo (β = 1e-4) = BPTT to 1e-6 in θ (Ω included), q0, p0 and the inputs; BPTT = central
    differences of the discrete loss in Ω, whose only way into the run is the time."""
    kern = compile_array_model(model, DT, jit=False, integrator=integrator)
    theta, q0, p0, u, y = _instance(model, kern, 60, 6)
    echo = kern.gradient(theta, q0, p0, u, y, beta=1e-4, t0=T0, learn_inputs=True)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y, t0=T0, learn_inputs=True)
    assert rel_err(echo.flat[0], bptt.flat[0]) <= 1e-6
    assert rel_err(np.concatenate([echo.dq0.ravel(), echo.dp0.ravel()]),
                   np.concatenate([bptt.dq0.ravel(), bptt.dp0.ravel()])) <= 1e-6
    assert rel_err(echo.du, bptt.du) <= 1e-6
    args, _ = kern.prepare(theta, q0, p0, u, y)
    th = args[0]
    omega = th.size - 1  # the last declared parameter, a scalar
    eps = 1e-6
    loss = []
    for sign in (1, -1):
        shifted = th.copy()
        shifted[omega] += sign * eps
        loss.append(kern.module.free(shifted, *args[1:], DT, T0, False)[2][0])
    fd = (loss[0] - loss[1]) / (2 * eps)
    assert abs(bptt.flat[0, omega] - fd) <= 1e-6 * max(1.0, abs(fd))
    assert abs(fd) > 1e-4  # Ω matters


@pytest.mark.parametrize("integrator", ["leapfrog", "midpoint"])
def test_c_kernels_equal_numba(model, integrator, tmp_path):
    """C = Numba from t0 = 0.3: the free pass and BPTT to 1e-12, the echo at the same β to 1e-9."""
    for fname, text in generate_network_c(model, "float64", integrator).items():
        (tmp_path / fname).write_text(text)
    lib = tmp_path / "libdriven.so"
    compile_c("gcc", tmp_path, lib, [f"{model.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    # a term that reads t leaves element arguments unused: their (void) casts follow the declarations (a probe:
    # clang -Weverything, -Wdeclaration-after-statement, failed on a model whose potential reads t)
    compile_c("clang", tmp_path, tmp_path / "driven.o", [f"{model.name}.c"],
              ["-std=c99", "-Weverything", "-Werror", "-pedantic", "-O2", "-c"])
    kern = compile_array_model(model, DT, jit=False, integrator=integrator)
    theta, q0, p0, u, y = _instance(model, kern, 50, 8)
    args, _ = kern.prepare(theta, q0, p0, u, y)
    c = ArrayC(lib, model, t0=T0)
    seq = (args[0], args[4][0], args[5][0], np.ascontiguousarray(args[6][0]), np.ascontiguousarray(args[7][0]))
    qT, _, loss, tq, _ = kern.module.free(*args, DT, T0, True)
    cq, _, closs, ctq, _ = c.free(*seq, DT)
    assert relative_error(closs, loss[0]) <= 1e-12 and relative_error(ctq, tq[0]) <= 1e-12
    ref = kern.module.bptt_gradient(*args, DT, T0, True)
    got = c.bptt_gradient(*seq, DT, learn_u=True)
    for a, b in zip(got[1:], (ref[1][0], ref[2][0], ref[3][0], ref[4][0])):
        assert relative_error(a, b) <= 1e-12
    ref = kern.module.gradient(*args, DT, T0, 1e-3, 2, True)
    got = c.gradient(*seq, DT, 1e-3, learn_u=True)
    for a, b in zip((got[1], got[2], got[3], got[5]), (ref[1][0], ref[2][0], ref[3][0], ref[4][0])):
        assert relative_error(a, b) <= 1e-9


def test_jax_loss_echo_vjp_equals_autodiff_and_numba(model):
    """From t0 = 0.3: the JAX loss's Richardson echo VJP = jax.grad of the same leapfrog (1e-9) = the Numba
    echo (1e-10); the loss = Numba's (1e-12)."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    import symglep.jax as sj

    jax.config.update("jax_enable_x64", True)
    n, steps = 5, 40
    probe = sj.layer(model, DT, size=n)
    rng = np.random.default_rng(2)
    values = {name: rng.uniform(0.6, 1.4, shape) if name in ("k", "Omega") else rng.uniform(-0.3, 0.3, shape)
              for name, shape in probe.module.parameter_shapes}
    u, y = rng.normal(size=(steps + 1, 1)), 0.5 * rng.normal(size=(steps + 1, 1))
    q0, p0 = rng.uniform(-0.3, 0.3, n), 0.3 * rng.normal(size=n)
    args = (probe.theta(values), jnp.asarray(u), jnp.asarray(y), jnp.asarray(q0), jnp.asarray(p0))

    def grad(**options):
        return jax.jit(jax.grad(sj.loss(model, DT, size=n, t0=T0, **options), (0, 1, 3, 4)))(*args)

    reference, richardson = grad(estimator="bptt"), grad(beta=1e-3, order=4)
    for got, want in zip(richardson, reference):
        assert rel_err(got, want) <= 1e-9
    numba = compile_array_model(model, DT, jit=False).gradient(values, q0[None], p0[None], u[None], y[None],
                                                               beta=1e-3, order=4, learn_inputs=True, t0=T0)
    for got, want in zip(richardson, (numba.flat[0], numba.du[0], numba.dq0.reshape(-1), numba.dp0.reshape(-1))):
        assert rel_err(got, want) <= 1e-10
    assert abs(float(sj.loss(model, DT, size=n, t0=T0)(*args)) - numba.loss[0]) <= 1e-12 * abs(numba.loss[0])


@pytest.fixture(scope="module")
def driven_stack():
    """A scalar unit (itself driven by cos t) drives the driven chain through its input; a seeded instance
    of 60 steps from t0 = 0.3, run as Python (``jit=False``)."""
    from symglep.stack.runtime import compile_stack

    s, f = dynamicsymbols("s"), dynamicsymbols("f")
    w = sp.Symbol("w", positive=True)
    bottom = symglep.Model(lagrangian=s.diff() ** 2 / 2 - w * s ** 2 / 2 + s * f * sp.cos(T),
                           coordinates=[s], parameters=[w], inputs=[f], name="bottom")
    stack = symglep.Stack([bottom, driven_chain(4)], readouts=[[s]], activations=[None], name="driven_stack")
    kernels = compile_stack(stack, dt=DT, jit=False)
    rng = np.random.default_rng(3)
    theta = stack.draw_parameters(rng)
    t = T0 + np.arange(61) * DT
    x = np.ascontiguousarray(0.4 * np.sin(1.3 * t[None, :, None] + rng.uniform(0, 6, (1, 1, kernels.n_x))))
    y = np.ascontiguousarray(0.2 * np.cos(0.7 * t[None, :, None] + rng.uniform(0, 6, (1, 1, kernels.n_y))))
    q0, p0 = rng.uniform(-0.3, 0.3, (1, kernels.nq)), rng.uniform(-0.3, 0.3, (1, kernels.nq))
    return stack, kernels, theta, x, y, q0, p0


def test_a_stack_with_a_driven_array_unit(driven_stack):
    """The stacked echo = BPTT through the stack (1e-6 centred), every unit and glue on its own, from
    t0 = 0.3; the start time changes the gradient."""
    stack, kernels, theta, x, y, q0, p0 = driven_stack
    loss, g, gx, _ = kernels.gradient(theta, x, y, q0, p0, beta=1e-4, learn_inputs=True, t0=T0)
    loss_b, gb, gxb = kernels.bptt_gradient(theta, x, y, q0, p0, t0=T0)
    np.testing.assert_allclose(loss, loss_b, rtol=1e-13)
    for sl in stack.unit_slices() + stack.glue_slices():
        assert rel_err(g[0][sl], gb[0][sl]) <= 1e-6
    assert rel_err(gx[0], gxb[0]) <= 1e-6
    assert rel_err(kernels.bptt_gradient(theta, x, y, q0, p0)[1][0], gb[0]) > 1e-3


def test_the_stacks_c_kernels_equal_numba(driven_stack, tmp_path):
    """The stack's C kernels (its array unit reads t) = its Numba kernels from t0 = 0.3: the free pass to
    1e-12, the stacked echo at β = 1e-2 to 1e-10 (array units' Numba sums are reassociated, the echo's 1/β
    amplifies the last bit: tests/test_stack_c.py)."""
    from symglep.stack.codegen_c import write_stack_c
    from test_stack_c import StackC

    stack, kernels, theta, x, y, q0, p0 = driven_stack
    write_stack_c(stack, str(tmp_path), "float64")
    src = tmp_path / stack.name / "c"
    lib = src / f"lib{stack.name}.so"
    compile_c("gcc", src, lib, [f"{stack.name}.c"], STRICT + EXTRA + ["-Wconversion", "-O2", "-fPIC", "-shared"])
    c = StackC(lib, stack)
    qT, pT, loss = kernels.free(theta, x, y, q0=q0, p0=p0, t0=T0)
    cq, cp, closs = c.free(theta, q0[0], p0[0], x[0], y[0], DT, t0=T0)
    assert relative_error(closs, loss[0]) <= 1e-12 and relative_error(cq, qT[0]) <= 1e-12
    loss, g, dx, _ = kernels.gradient(theta, x, y, q0=q0, p0=p0, beta=1e-2, learn_inputs=True, t0=T0)
    closs, cg, cdx, _ = c.gradient(theta, q0[0], p0[0], x[0], y[0], DT, 1e-2, t0=T0)
    assert relative_error(cg, g[0]) <= 1e-10 and relative_error(cdx, dx[0]) <= 1e-10


def test_check_reports_no_energy_drift(model, monkeypatch):
    """check passes on the driven chain and reports no energy drift (H(t) is not conserved). Its module runs
    as Python here, like the rest of this file."""
    import functools

    import symglep.network.check as network_check

    monkeypatch.setattr(network_check, "compile_network", functools.partial(compile_array_model, jit=False))
    kern_check = run_check(model, steps=200, dt=DT, n=4)
    assert kern_check["passed"] and kern_check["energy_drift"] is None
    assert "n/a  (explicit time t: the energy is not conserved)" in render_text(kern_check)


@pytest.mark.parametrize("where, message", [
    ("mass", "the kinetic term may not read the time t: a mass that changes in time is not served"),
    ("cost", "the cost reads only q\\[r\\] and y\\[r\\], not the time t"),
    ("damping", "linear damping that does not depend on the positions, inputs or time"),
])
def test_time_where_it_cannot_go_is_refused(where, message):
    x, y = Coordinates("x"), Targets("y")
    kinetic = (2 + sp.sin(T) if where == "mass" else 1) * x.dot[i] ** 2 / 2
    cost = (x[r] - y[r]) ** 2 * (1 + sp.cos(T) ** 2 if where == "cost" else 1)
    dissipation = Sum(sp.exp(-T) * x.dot[i] ** 2 / 2, i) if where == "damping" else None
    with pytest.raises(ModelError, match=message):
        ArrayModel(lagrangian=Sum(kinetic, i) - Sum(x[i] ** 2 / 2, i), cost=Sum(cost, r), coordinates=x,
                   targets=y, dissipation=dissipation, name="refused", size=3)


def test_the_array_learner_keeps_the_clock(model):
    """The trainer's array learner passes the start time to every kernel (new-user probe: it dropped t0, so a
    Dataset with t0 ≠ 0 and the classifier's 256-node chunks ran a model that reads t on a restarted clock):
    its losses, readouts and gradients from t0 = 0.3 equal the kernels' own from 0.3, and a run cut in two
    chunks, the second started at its own time, ends where the whole run ends."""
    from symglep.learners import learner_for

    kern = compile_array_model(model, DT, jit=False)
    learner = learner_for(model, kern)
    theta, q0, p0, u, y = _instance(model, kern, 40, 9)
    flat = learner.flat(theta)
    own = kern.free(theta, q0, p0, u, y, t0=T0)[2]
    assert np.array_equal(learner.losses(flat, u, y, q0, p0, DT, t0=T0), own)
    assert not np.allclose(learner.losses(flat, u, y, q0, p0, DT), own)
    loss, grad = learner.gradients("bptt", None, flat, u, y, q0, p0, False, DT, t0=T0)
    assert np.array_equal(grad, kern.bptt_gradient(theta, q0, p0, u, y, t0=T0).flat)
    _, _, qa, pa = learner.readout_states(flat, u[:, :21], q0, p0, DT, t0=T0)
    _, _, qb, pb = learner.readout_states(flat, u[:, 20:], qa, pa, DT, t0=T0 + 20 * DT)
    _, _, qT, pT = learner.readout_states(flat, u, q0, p0, DT, t0=T0)
    np.testing.assert_allclose(np.concatenate([qb, pb]), np.concatenate([qT, pT]), rtol=0, atol=1e-13)
