"""Stacks in JAX (docs/jax.md, "Stacks"): the units' JAX layers chained by the printed glue. Their echo
VJPs against JAX autodiff of the same chain (BPTT), and against the Numba stack kernels (theory sec. 9)."""

import pathlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import symglep  # noqa: E402
import symglep.jax as sj  # noqa: E402
from symglep.errors import SymglepError  # noqa: E402

jax.config.update("jax_enable_x64", True)

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT, K = 0.05, 40


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _problem(stack, seed=0):
    """Parameters as the stack draws them (glue weights uniform in +-0.5), inputs, targets and starts."""
    rng = np.random.default_rng(seed)
    parts = [stack.arrays[i].draw(rng) if stack.arrays[i] is not None else rng.uniform(0.6, 1.4, stack.unit_theta(i))
             for i in range(len(stack.units))]
    n_units = sum(p.size for p in parts)
    theta = np.concatenate(parts + [rng.uniform(-0.5, 0.5, len(stack.parameter_names) - n_units)])
    nq = sum(stack.unit_size(i) for i in range(len(stack.units)))
    return (theta, rng.normal(size=(K + 1, stack.n_inputs)), 0.3 * rng.normal(size=(K + 1, stack.n_targets)),
            0.2 * rng.normal(size=nq), 0.2 * rng.normal(size=nq))


def _grads(stack, args, **options):
    return jax.jit(jax.grad(sj.loss(stack, DT, **options), (0, 1, 3, 4)))(*map(jnp.asarray, args))


@pytest.mark.parametrize("name", ["stack_hru", "stack_chain_hru", "stack_hssm"])
def test_stack_echo_vjp_equals_autodiff(name):
    """dC/d(theta, x, q0, p0) through the chain: centred echo (beta 1e-4) = autodiff to 1e-6, Richardson
    (beta 1e-3) to 1e-9, for array units with dense glue, scalar units with readout expressions, the HSSM."""
    stack = symglep.load_system(str(ROOT / "examples" / f"{name}.py"))
    args = _problem(stack)
    reference = _grads(stack, args, estimator="bptt")
    for options, bound in (({}, 1e-6), ({"beta": 1e-3, "order": 4}, 1e-9)):
        for got, want in zip(_grads(stack, args, **options), reference):
            assert _relative(got, want) <= bound


def test_stack_equals_the_numba_stack_kernels():
    """stack_hru: the loss equals the Numba stack's to 1e-13; the JAX autodiff chain equals the Numba BPTT to
    1e-12; the JAX Richardson echo equals the Numba stacked echo (Richardson, beta 1e-3) to 1e-10."""
    stack = symglep.load_system(str(ROOT / "examples" / "stack_hru.py"))
    theta, x, y, q0, p0 = _problem(stack)
    kernels = symglep.compile(stack, dt=DT)
    batch = (theta, x[None], y[None], q0[None], p0[None])
    loss, dth, dx, _, dq0, dp0 = kernels.gradient(*batch, beta=1e-3, order=4, learn_inputs=True, initial_state=True)
    _, bth, bx, bq0, bp0 = kernels.bptt_gradient(*batch, initial_state=True)
    args = (theta, x, y, q0, p0)
    assert abs(float(sj.loss(stack, DT)(*map(jnp.asarray, args))) - loss[0]) <= 1e-13 * abs(loss[0])
    for got, want in zip(_grads(stack, args, estimator="bptt"), (bth[0], bx[0], bq0[0], bp0[0])):
        assert _relative(got, want) <= 1e-12
    for got, want in zip(_grads(stack, args, beta=1e-3, order=4), (dth[0], dx[0], dq0[0], dp0[0])):
        assert _relative(got, want) <= 1e-10



def test_stack_layer_segments_chain():
    """Two segments of a stack's layer, the second started from the first's final state of every unit, are
    the run over the whole sequence (the top unit's readout at every node), and the echo's gradient of a
    loss on both segments' readouts equals autodiff's (the final state's cotangents enter the first
    segment's echo). The layer returned the top unit's final state only: a stack could not chain (probe)."""
    stack = symglep.load_system(str(ROOT / "examples" / "stack_chain_hru.py"))
    theta, x, _, q0, p0 = map(jnp.asarray, _problem(stack))
    half = K // 2
    whole = sj.layer(stack, DT, estimator="bptt")
    first, second = (sj.layer(stack, DT, estimator="echo", beta=1e-3, order=4, t0=t0) for t0 in (0.0, half * DT))
    r, _, _ = whole(theta, x, q0, p0)
    ra, qa, pa = first(theta, x[:half + 1], q0, p0)
    rb, _, _ = second(theta, x[half:], qa, pa)
    assert _relative(jnp.concatenate([ra, rb[1:]]), r) <= 1e-13

    def split_loss(th, x, q0, p0):
        ra, qa, pa = first(th, x[:half + 1], q0, p0)
        rb, _, _ = second(th, x[half:], qa, pa)
        return jnp.sum(jnp.sin(ra) ** 2) + jnp.sum(jnp.concatenate([ra[-1:], rb[1:]]) ** 2)

    def whole_loss(th, x, q0, p0):
        r, _, _ = whole(th, x, q0, p0)
        return jnp.sum(jnp.sin(r[:half + 1]) ** 2) + jnp.sum(r[half:] ** 2)

    echo = jax.grad(split_loss, (0, 1, 2, 3))(theta, x, q0, p0)
    reference = jax.grad(whole_loss, (0, 1, 2, 3))(theta, x, q0, p0)
    for a, b in zip(echo, reference):
        assert _relative(a, b) <= 1e-8

def test_stack_layer_and_refusals():
    """A stack's layer returns the top unit's coordinates and final state, vmaps over a batch; array-model
    options are refused."""
    stack = symglep.load_system(str(ROOT / "examples" / "stack_hru.py"))
    theta, x, _, q0, p0 = _problem(stack)
    layer = sj.layer(stack, DT)
    assert layer.parameter_names == stack.parameter_names
    r, qT, pT = layer(*map(jnp.asarray, (theta, x, q0, p0)))
    top = stack.unit_size(1)
    # r of the top unit; the final state of every unit, bottom first as q0 and p0 (segments chain)
    assert r.shape == (K + 1, top) and qT.shape == q0.shape and pT.shape == p0.shape
    assert (layer.n, layer.n_inputs, layer.n_readout) == (q0.size, x.shape[1], top)
    with pytest.raises(SymglepError, match=rf"q0 must have shape \({q0.size},\)"):
        layer(jnp.asarray(theta), jnp.asarray(x), jnp.asarray(q0[-top:]), jnp.asarray(p0))
    assert _relative(r[-1], qT[-top:]) == 0
    xs = jnp.asarray(np.stack([x, -x]))
    batch = jax.vmap(lambda x: jnp.sum(layer(jnp.asarray(theta), x, jnp.asarray(q0), jnp.asarray(p0))[0] ** 2))(xs)
    one = jnp.sum(layer(jnp.asarray(theta), xs[1], jnp.asarray(q0), jnp.asarray(p0))[0] ** 2)
    assert _relative(batch[1], one) <= 1e-12
    with pytest.raises(SymglepError, match="for array models"):
        sj.loss(stack, DT, size=4)
    # the midpoint rule: its array units run expanded into scalar midpoint units (tests/test_stack_midpoint.py)
    assert stack.with_integrator("midpoint").expanded == [0, 1]
    with pytest.raises(SymglepError, match="a stack's layer has no initial_momentum of its own"):
        layer.initial_momentum(theta, q0, q0, x[0])  # was an AttributeError on None (new-user probe)
    # theta({}) names the 304 element parameters in one readable line, not 8 kB of them (new-user probe)
    with pytest.raises(SymglepError) as info:
        layer.theta({"unit0.A": 1.0})
    message = str(info.value)
    assert len(message) < 800 and f"the {len(stack.parameter_names)} parameters" in message
    assert "; unknown: unit0.A; missing: unit0." in message and "more)" in message


def _against_numba(stack, args, integrator="auto", bptt_bound=1e-11, echo_dx=True):
    """The chain's loss = the Numba stack's to 1e-13, its autodiff = the Numba BPTT to ``bptt_bound``, its
    Richardson echo (beta 1e-3) = the Numba BPTT and stacked echo to 1e-8 (the chain nudges each layer
    relative to its cotangents' kick, the Numba stack by beta itself: their O(beta^4) biases differ).
    ``echo_dx=False``: dC/dx is held against BPTT only (the Numba stacked echo's dx on stack_chain_hru is
    round-off of its input contrast, ~1/beta, docs/jax.md)."""
    theta, x, y, q0, p0 = args
    kernels = symglep.compile(stack, dt=DT, integrator=integrator)
    batch = (theta, x[None], y[None], q0[None], p0[None])
    loss, dth, dx, _, dq0, dp0 = kernels.gradient(*batch, beta=1e-3, order=4, learn_inputs=True, initial_state=True)
    _, bth, bx, bq0, bp0 = kernels.bptt_gradient(*batch, initial_state=True)
    assert abs(float(sj.loss(stack, DT, integrator=integrator)(*map(jnp.asarray, args))) - loss[0]) <= 1e-13 * abs(loss[0])
    for got, want in zip(_grads(stack, args, integrator=integrator, estimator="bptt"), (bth[0], bx[0], bq0[0], bp0[0])):
        assert _relative(got, want) <= bptt_bound
    for name, got, want, ref in zip(("theta", "x", "q0", "p0"), _grads(stack, args, integrator=integrator, beta=1e-3, order=4),
                                    (dth[0], dx[0], dq0[0], dp0[0]), (bth[0], bx[0], bq0[0], bp0[0])):
        assert _relative(got, ref) <= 1e-8, name
        assert _relative(got, want) <= 1e-8 or (name == "x" and not echo_dx), name


def test_midpoint_units_in_the_chain_equal_the_numba_stack():
    """examples/stack_beads.py (a midpoint unit under a leapfrog top) against the Numba stack (measured
    2.9e-9 on dx for the echoes)."""
    stack = symglep.load_system(str(ROOT / "examples" / "stack_beads.py"))
    _against_numba(stack, _problem(stack))


def test_a_midpoint_top_unit_has_its_cost_at_the_nodes():
    """examples/stack_chain_hru.py with every unit on the midpoint rule: the top unit's loss samples its cost
    at the nodes as the Numba stack does (theory §9, "Midpoint units"; its layer's echo is kicked by the
    cost's cotangents), and equals the Numba stack's loss, BPTT and echo; its layer returns the top unit's
    coordinates at every node. (Measured: the chain's echo vs the Numba BPTT 9.5e-10 on dx, whose norm
    is 3e-8: the drive barely reaches the loss through three units.)"""
    chain = symglep.load_system(str(ROOT / "examples" / "stack_chain_hru.py"))
    args = _problem(chain)
    _against_numba(chain, args, integrator="midpoint", echo_dx=False)
    r, _, _ = sj.layer(chain, DT, integrator="midpoint")(*map(jnp.asarray, (args[0], args[1], *args[3:])))
    assert r.shape == (K + 1, chain.unit_size(2))


def test_a_relu_glue_prints_into_the_jax_chain():
    """A glue activation lambda z: sp.Max(z, 0) printed functools.reduce into a namespace without functools:
    NameError in sj.loss(stack) (new-user probe; Numba, C, check and train served the stack)."""
    import sympy as sp
    from sympy.physics.mechanics import dynamicsymbols

    from symglep.jax_stack import glue_function

    x, u, z, v, y = dynamicsymbols("x u z v y")
    a = symglep.Model(x.diff() ** 2 / 2 - x**2 / 2 + x * u, [x], inputs=[u], name="a")
    b = symglep.Model(z.diff() ** 2 / 2 - z**2 / 2 + z * v, [z], inputs=[v], targets=[y], cost=(z - y) ** 2 / 2,
                      name="b")
    stack = symglep.Stack([a, b], [[x]], activations=[lambda s: sp.Max(s, 0)])
    glue = glue_function(stack, 0)
    for q, expected in ((0.7, 1.4), (-0.7, 0.0)):
        assert float(glue(jnp.array([q]), jnp.array([[2.0]]), jnp.array([0.0]))[0]) == expected
