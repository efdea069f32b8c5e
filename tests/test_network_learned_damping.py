"""An array model whose uniform damping rate γ is a learned parameter (examples/network_learned_damping.py):
the model runs as e^{γt} L (theory §7), so γ's learning integrand is ∂(e^{γt} L)/∂γ = t e^{γt} (K − V)
and BPTT differentiates the weights e^{γt} of every kick and drift. Checked, from t0 = 0 and from a later
start (the integrand reads absolute times), with a momentum and with a velocity start (p0 = e^{γ t0} m v0
depends on γ): the echo against BPTT and BPTT against central differences of the discrete loss, for the
leapfrog and the implicit midpoint rule; the JAX module's echo VJP and autodiff against the Numba
kernels; the report's learning rule and boundary residual. The C kernels are held to the Numba ones by
tests/test_network_c.py, stacks with such a unit by tests/test_stack_damping.py."""

import json
import pathlib

import numpy as np
import pytest

import symglep
from symglep.check import rel_err
from symglep.commands import derive_report
from symglep.network.check import draw_instance

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "network_learned_damping.py"
DT = 0.01
GAMMA = 0.4


@pytest.fixture(scope="module")
def model():
    return symglep.load_system(str(EXAMPLE))


@pytest.fixture(scope="module")
def leapfrog(model):
    return symglep.compile(model, dt=DT)


def _instance(model, kern, steps, seed=3):
    theta, q0, p0, u, y = draw_instance(model, kern, model.size, 2, steps, DT, np.random.default_rng(seed))
    theta["gamma"] = np.array(GAMMA)
    return theta, q0, p0, u, y


#: (parameter, entry) pairs checked against central differences: γ first, then a spring, a mass, an input weight
PICKS = [("gamma", ()), ("k", (2,)), ("m", (5,)), ("B", (7, 0))]


def _central_differences(kern, theta, start, u, y, t0, eps=1e-6):
    """Central differences of the summed discrete loss in the entries PICKS (through the public free pass, so
    that a velocity start's p0 = e^{γ t0} m v0 moves with γ)."""
    out = []
    for name, entry in PICKS:
        loss = []
        for sign in (1, -1):
            values = {k: np.array(v, dtype=float) for k, v in theta.items()}
            values[name][entry] += sign * eps
            loss.append(kern.free(values, u=u, y=y, t0=t0, **start)[2].sum())
        out.append((loss[0] - loss[1]) / (2 * eps))
    return np.array(out)


def _check(kern, theta, q0, p0, u, y, t0, bound_echo):
    """Echo (Richardson, β = 1e-3) against BPTT for every entry; BPTT against central differences at γ and a
    few other entries; with a momentum start and with a velocity start."""
    for start in ({"q0": q0, "p0": p0}, {"q0": q0, "v0": 0.5 * p0}):
        echo = kern.gradient(theta, u=u, y=y, beta=1e-3, order=4, t0=t0, **start)
        bptt = kern.bptt_gradient(theta, u=u, y=y, t0=t0, **start)
        assert rel_err(echo.flat, bptt.flat) <= bound_echo, rel_err(echo.flat, bptt.flat)
        fd = _central_differences(kern, theta, start, u, y, t0)
        want = np.array([bptt.dtheta[name][(slice(None),) + entry].sum() for name, entry in PICKS])
        assert np.abs(fd - want).max() <= 1e-7 * np.abs(want).max(), (fd, want)
        assert abs(want[0]) > 1e-3 * np.abs(bptt.flat).max()  # γ's gradient is not negligible: a real test


def test_the_rate_is_a_parameter_and_the_report_says_how_it_learns(model):
    assert model.damping_parameter is not None and model.damping_parameter.name == "gamma"
    report = json.loads(derive_report(model, "json"))
    rule = [r for r in report["learning_rule"] if r["parameter"] == "gamma"][0]
    assert rule["dL"] == "t·exp(gamma·t)·(Σ_i ½ m_i |x.dot[i]|² − V)" and "global" in rule["locality"]
    assert "the learned rate gamma: R_γ = t0·exp(γ·t0)" in report["residuals"]["pfvp"]
    assert "γ = gamma, a learned parameter" in report["dissipation"]


def test_every_learning_rule_carries_the_caldirola_kanai_weight(model):
    """The report's ∂L/∂k, ∂L/∂m, ∂L/∂B dropped the factor exp(γt) that the rewritten L (e^{γt} L, theory §7)
    gives them (probe, session 38), while ∂L/∂γ and the residuals carried it. Independently: the same model
    expanded to 3 units and derived as a scalar model has rules equal to exp(γt) times a t-free expression."""
    import sympy as sp
    from symglep.network.expand import expand

    report = json.loads(derive_report(model, "json"))
    for rule in report["learning_rule"]:
        if rule["parameter"] != "gamma":
            assert rule["dL"].startswith("exp(gamma·t)·"), rule
            assert "t" in rule["reads"]
    scalar = expand(model, 3)
    derivation = symglep.derive(scalar)
    gamma = next(s for s in scalar.parameters if s.name == "gamma")
    t = scalar.time
    for parameter, rule in derivation.learning_rule.items():
        if parameter is not gamma:
            assert sp.simplify(rule * sp.exp(-gamma * t)).diff(t) == 0, (parameter, rule)
            assert rule != 0


@pytest.mark.parametrize("t0", [0.0, 1.3])
def test_leapfrog_echo_bptt_and_finite_differences(model, leapfrog, t0):
    theta, q0, p0, u, y = _instance(model, leapfrog, 300)
    _check(leapfrog, theta, q0, p0, u, y, t0, 1e-9)
    assert leapfrog.module.RATE_PARAM == 3


def test_midpoint_echo_bptt_and_finite_differences(model):
    """The implicit midpoint rule (its module's source run as Python: its compiled twin is the same text,
    tests/test_network_midpoint.py), from t0 = 0.7."""
    kern = symglep.compile(model, dt=DT, integrator="midpoint", jit=False)
    theta, q0, p0, u, y = _instance(model, kern, 60)
    _check(kern, theta, q0, p0, u, y, 0.7, 1e-8)


def test_jax_echo_vjp_and_autodiff_equal_numba(model, leapfrog):
    """The JAX module reads γ from θ in its weights e^{γt}: its echo VJP (Richardson) = its autodiff = the
    Numba gradients, from t0 = 0.6."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import symglep.jax as sj

    jax.config.update("jax_enable_x64", True)
    theta, q0, p0, u, y = _instance(model, leapfrog, 60)
    layer = sj.layer(model, DT, size=model.size)
    args = (layer.theta(theta), jnp.asarray(u[0]), jnp.asarray(y[0]), jnp.asarray(q0[0]), jnp.asarray(p0[0]))
    echo = jax.jit(jax.grad(sj.loss(model, DT, size=model.size, t0=0.6, beta=1e-3, order=4), (0, 1, 3, 4)))(*args)
    auto = jax.jit(jax.grad(sj.loss(model, DT, size=model.size, t0=0.6, estimator="bptt"), (0, 1, 3, 4)))(*args)
    numba = leapfrog.bptt_gradient(theta, q0[:1], p0[:1], u[:1], y[:1], learn_inputs=True, t0=0.6)
    for got, want in zip(auto, (numba.flat[0], numba.du[0], numba.dq0.reshape(-1), numba.dp0.reshape(-1))):
        assert rel_err(np.asarray(got), want) <= 1e-11
    for got, want in zip(echo, auto):
        assert rel_err(np.asarray(got), np.asarray(want)) <= 1e-8
    assert abs(float(auto[0][-1])) > 0  # γ, the last entry of θ
