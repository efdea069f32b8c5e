"""Array models with uniform linear damping, run as the Caldirola–Kanai Lagrangian e^{γt} L by a
time-weighted leapfrog (theory §7): the free run against the damped equation of motion integrated
independently (RK4), the echo against BPTT of the same discrete map and BPTT against central
differences, at t0 = 0 and at a later start; the unweighted loss; the refusals."""

import pathlib

import numpy as np
import pytest
import sympy as sp

import symglep
from symglep.check import rel_err
from symglep.errors import ModelError
from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, r
from symglep.network.check import draw_instance

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT = 0.01
GAMMA = 0.3  # examples/network_damped_hru.py


@pytest.fixture(scope="module")
def damped():
    model = symglep.load_system(str(ROOT / "examples" / "network_damped_hru.py"))
    return model, symglep.compile(model, dt=DT)


def _instance(model, kern, n=6, steps=300, seed=3, batch=2):
    return draw_instance(model, kern, n, batch, steps, DT, np.random.default_rng(seed))


def test_rate_is_read_from_the_rayleigh_function(damped):
    model, kern = damped
    assert model.damping_rate == pytest.approx(GAMMA, abs=0)
    assert kern.module.RATE == GAMMA
    assert symglep.load_system(str(ROOT / "examples" / "network_hru.py")).damping_rate == 0.0


def _rk4_damped(kern, args, qinit, vinit, T, steps):
    """m q'' = -dV/dq - gamma m q' with constant inputs u[0], integrated by RK4 (the generated force)."""
    th, off, E, ro = args[:4]
    uk, yk = args[6][0, 0], args[7][0, 0]
    n = qinit.size
    mass = kern.module.masses(th, off, n)
    h = T / steps

    def rhs(state):
        q, v = state[:n], state[n:]
        f = kern.module.force(th, off, E, ro, q, uk, 0.0, yk, 0.0)  # V reads no time: t_k = 0
        return np.concatenate([v, -f / mass - GAMMA * v])

    s = np.concatenate([qinit, vinit])
    for _ in range(steps):
        k1 = rhs(s)
        k2 = rhs(s + 0.5 * h * k1)
        k3 = rhs(s + 0.5 * h * k2)
        k4 = rhs(s + h * k3)
        s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return s[:n], s[n:]


@pytest.mark.parametrize("t0", [0.0, 1.3])
def test_free_run_solves_the_damped_equation(damped, t0):
    """qT and the velocity pT / (e^{γT} m) of the time-weighted leapfrog converge at second order to the
    damped equation m q'' + γ m q' = -dV/dq (RK4, 20000 steps), whatever the start time t0."""
    model, kern = damped
    theta, q0, _, u, y = _instance(model, kern, steps=100, batch=1)
    T, v0 = 1.0, np.full_like(q0, 0.2)
    u = np.repeat(u[:, :1], u.shape[1], axis=1)  # constant inputs: the ODE reads u[0]
    args, _ = kern.prepare(theta, q0, u=u, y=y, v0=v0)
    q_ref, v_ref = _rk4_damped(kern, args, q0[0], v0[0], T, 20000)
    mass = kern.module.masses(args[0], args[1], q0.shape[1])
    errors = []
    for K in (100, 200):
        uu, yy = u[:, :1].repeat(K + 1, axis=1), y[:, :1].repeat(K + 1, axis=1)
        qT, pT, _ = kern.free(theta, q0, u=uu, y=yy, v0=v0, dt=T / K, t0=t0)
        vT = pT[0] / (np.exp(GAMMA * (t0 + T)) * mass)
        errors.append(max(np.abs(qT[0] - q_ref).max(), np.abs(vT - v_ref).max()))
    assert errors[1] < 1e-4 and 3.5 < errors[0] / errors[1] < 4.5, errors


def test_loss_is_the_unweighted_trapezoid_of_the_cost(damped):
    """The damped model's loss is h Σ w_k c(q_k) with no e^{γt} weight (theory §7)."""
    model, kern = damped
    theta, q0, p0, u, y = _instance(model, kern, batch=1)
    qT, pT, loss, tq, _ = kern.free(theta, q0, p0, u, y, record=True, t0=0.5)
    K = u.shape[1] - 1
    ro = np.arange(tq.shape[2] - y.shape[2], tq.shape[2])
    c = 0.5 * ((tq[0][:, ro] - y[0]) ** 2).sum(axis=1)
    w = np.full(K + 1, DT)
    w[[0, K]] *= 0.5
    assert abs(loss[0] - (w * c).sum()) <= 1e-13 * abs(loss[0])


@pytest.mark.parametrize("t0", [0.0, 0.7])
def test_echo_matches_bptt_and_finite_differences(damped, t0):
    """θ, q0, p0, dC/du and a velocity start: centred echo (β 1e-4) = BPTT to 1e-6, Richardson (β 1e-3) to
    1e-9; BPTT = central differences of the discrete loss (every mass entry and a few others) to 1e-7."""
    model, kern = damped
    theta, q0, p0, u, y = _instance(model, kern)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=True, t0=t0)
    for options, bound in (({"beta": 1e-4}, 1e-6), ({"beta": 1e-3, "order": 4}, 1e-9)):
        echo = kern.gradient(theta, q0, p0, u, y, learn_inputs=True, t0=t0, **options)
        for got, want in ((echo.flat, bptt.flat), (echo.dq0, bptt.dq0), (echo.dp0, bptt.dp0), (echo.du, bptt.du)):
            assert rel_err(got, want) <= bound
    v0 = 0.5 * p0
    echo_v = kern.gradient(theta, q0, u=u, y=y, v0=v0, beta=1e-3, order=4, t0=t0)
    bptt_v = kern.bptt_gradient(theta, q0, u=u, y=y, v0=v0, t0=t0)
    assert rel_err(echo_v.flat, bptt_v.flat) <= 1e-9 and rel_err(echo_v.dv0, bptt_v.dv0) <= 1e-9
    args, (n, m, ne) = kern.prepare(theta, q0, p0, u, y)
    th = args[0]
    mass_at = [k for k, name in enumerate(kern.model.parameters) if name.name == "m"][0]
    picks = list(range(args[1][mass_at], args[1][mass_at] + n)) + [0, 7, th.size - n - 1]
    for idx in picks:
        eps = 1e-6
        hi, lo = th.copy(), th.copy()
        hi[idx] += eps
        lo[idx] -= eps
        fd = (kern.module.free(hi, *args[1:], DT, t0, False)[2] - kern.module.free(lo, *args[1:], DT, t0, False)[2]) \
            / (2 * eps)
        want = bptt.flat[:, idx]
        assert np.abs(fd - want).max() <= 1e-7 * max(np.abs(bptt.flat).max(), 1e-300), idx


def test_echo_retraces_the_damped_run(damped):
    """The un-nudged echo, anti-damped in echo time, returns to the start to round-off (theory §4, §7)."""
    model, kern = damped
    theta, q0, p0, u, y = _instance(model, kern, steps=1000)
    qT, pT, _ = kern.free(theta, q0, p0, u, y, t0=0.2)
    sigma, pi, _ = kern.echo(theta, qT, pT, [0.0], u, y, t0=0.2)
    assert np.abs(sigma[:, 0] - q0).max() < 1e-12 and np.abs(pi[:, 0] + p0).max() < 1e-12
    assert np.abs(pT).max() > 2 * np.abs(p0).max()  # the canonical momentum e^{γt} m v grows: a real test


def test_undriven_energy_decays(damped):
    """Without inputs the physical energy ½ m v² + V falls along the damped run."""
    model, kern = damped
    theta, q0, p0, u, y = _instance(model, kern, steps=500, batch=1)
    args, _ = kern.prepare(theta, q0, p0, np.zeros_like(u), y)
    _, _, _, tq, tp = kern.module.free(*args, DT, 0.0, True)
    e = kern.module.energy(args[0], args[1], args[2], tq, tp, np.zeros_like(u), DT, 0.0)[0]
    assert np.all(np.diff(e) <= 1e-12 * np.abs(e).max()) and e[-1] < 0.9 * e[0]


def _model(rayleigh, extra=None):
    q = Coordinates("q")
    m = Parameter("m", "n", positive=True)
    u, y = Inputs("u"), Targets("y")
    B = Parameter("B", ("n", "m"))
    g = sp.Symbol("g", positive=True)
    params = [m, B] + list(extra or [])
    return ArrayModel(lagrangian=Sum(m[i] * q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2 - q[i] * (B @ u)[i], i),
                      cost=Sum((q[r] - y[r]) ** 2 / 2, r), coordinates=q, parameters=params, inputs=u, targets=y,
                      constants={g: 0.2}, dissipation=rayleigh(q, m, g))


def test_rates_that_are_not_one_number_or_one_parameter_are_refused():
    assert _model(lambda q, m, g: Sum(g * m[i] * q.dot[i] ** 2 / 2, i)).damping_rate == 0.2
    c = Parameter("c", "n", positive=True)
    with pytest.raises(ModelError, match="differs between units: non-uniform damping has no exact echo"):
        _model(lambda q, m, g: Sum(c[i] * m[i] * q.dot[i] ** 2 / 2, i), [c])
    with pytest.raises(ModelError, match="differs between units"):
        _model(lambda q, m, g: Sum(g * q.dot[i] ** 2 / 2, i))  # γ/m_i: not uniform in the units' momenta
    s, z = sp.Symbol("s"), sp.Symbol("z", negative=True)
    assert _model(lambda q, m, g: Sum(s * m[i] * q.dot[i] ** 2 / 2, i), [s]).damping_parameter is s  # learned
    with pytest.raises(ModelError, match=r"neither a number nor one scalar parameter: write it as one parameter"):
        _model(lambda q, m, g: Sum(s**2 * m[i] * q.dot[i] ** 2 / 2, i), [s])
    with pytest.raises(ModelError, match="z is declared negative"):
        _model(lambda q, m, g: Sum(z * m[i] * q.dot[i] ** 2 / 2, i), [z])
    with pytest.raises(ModelError, match="does not depend on the positions"):
        _model(lambda q, m, g: Sum(g * m[i] * q[i] ** 2 * q.dot[i] ** 2 / 2, i))
    with pytest.raises(ModelError, match="quadratic in the velocities"):
        _model(lambda q, m, g: Sum(g * m[i] * q.dot[i] ** 4, i))
    with pytest.raises(ModelError, match="uniform linear damping over the units"):
        _model(lambda q, m, g: g * m[i] * q.dot[i] ** 2)
