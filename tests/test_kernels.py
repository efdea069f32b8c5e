"""Compiled kernels: the echo estimator against BPTT and finite differences (theory §4–§6).

Every gradient symglep generates is checked against two references on seeded
random instances (parameters in [0.5, 1.5], small initial states, smooth inputs
and targets, ``K = 1000`` steps of ``dt = 0.01``):

* BPTT — the discrete adjoint of the same integrator. The echo estimate must
  equal it up to the finite difference in β only (theory §6): relative error
  ``‖a − b‖ / ‖b‖ ≤ 1e-6`` at β = 1e-4 (centred), for the parameters, the
  initial state and the inputs;
* central finite differences of the discrete loss ``free`` returns, which
  BPTT must match to ``1e-5``.

Compiling one model's kernels takes a minute or more, so each model is compiled
once (``_kernels`` memoises, Numba keeps the compiled dispatchers, and
``tests/conftest.py`` points the on-disk cache at one folder for the whole run)
and all its measurements are made once per module (``scope="module"``
fixtures). Six models are compiled in all: the five reversible examples and
the charged particle.
"""

from __future__ import annotations

import functools
import pathlib
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

import symglep
from symglep.check import draw_parameters, rel_err, smooth_signal

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
DT = 0.01
STEPS = 1000
BETA = 1e-4
ECHO_TOL = 1e-6        # echo vs BPTT (theory §6)
FD_TOL = 1e-5          # BPTT vs central finite differences of the discrete loss
ROUNDTRIP_TOL = 1e-9   # free → flip → free (β = 0) back to (q0, −p0)
FD_EPS = 1e-6          # relative step of the finite differences
REVERSIBLE = ["harmonic_oscillator", "oscillator_chain", "double_pendulum", "relativistic_particle",
              "damped_oscillator"]


# ---------------------------------------------------------------------------
# Shared set-up: one compile per model, one instance per model.
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _kernels(name: str) -> symglep.Kernels:
    model = symglep.load_model(str(EXAMPLES / f"{name}.py"))
    return symglep.compile(model, dt=DT)


@dataclass
class Instance:
    """One seeded random problem: batch of ``B`` sequences of ``K`` steps."""

    k: symglep.Kernels
    th: np.ndarray
    q0: np.ndarray     # (B, n)
    v0: np.ndarray     # (B, n)
    p0: np.ndarray     # (B, n), p0 = ∂L/∂v(q0, v0, 0)
    u: np.ndarray      # (B, K+1, n_u)
    y: np.ndarray      # (B, K+1, n_y)

    def loss(self, th=None, q0=None, p0=None, v0=None, u=None) -> float:
        """Discrete loss of sequence 0 (momentum start unless ``v0`` is given)."""
        start = {"v0": v0} if v0 is not None else {"p0": self.p0 if p0 is None else p0}
        out = self.k.free(self.th if th is None else th, self.q0 if q0 is None else q0,
                          u=self.u if u is None else u, y=self.y, **start)
        return float(out[2][0])


def make_instance(name: str, batch: int = 1, steps: int = STEPS, seed: int | None = None,
                  amplitude: float = 0.3) -> Instance:
    k = _kernels(name)
    model = k.model
    rng = np.random.default_rng(zlib.crc32(name.encode()) if seed is None else seed)
    th = k.theta(draw_parameters(model, rng))
    n = model.n
    q0 = rng.uniform(-amplitude, amplitude, (batch, n))
    v0 = rng.uniform(-amplitude, amplitude, (batch, n))
    times = np.arange(steps + 1) * DT
    u = np.stack([smooth_signal(rng, times, k.n_u, 0.2) for _ in range(batch)])
    y = np.stack([smooth_signal(rng, times, k.n_y, 0.3) for _ in range(batch)])
    p0 = np.empty((batch, n))
    for b in range(batch):
        k.module.f_momentum(q0[b], v0[b], 0.0, u[b, 0], th, p0[b])
    return Instance(k, th, q0, v0, p0, u, y)


def central_differences(fun, x: np.ndarray) -> np.ndarray:
    """``∂fun/∂x`` entry by entry, step ``FD_EPS · max(1, |x_i|)``."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.size)
    for i in range(x.size):
        eps = FD_EPS * max(1.0, abs(x.flat[i]))
        hi, lo = x.copy(), x.copy()
        hi.flat[i] += eps
        lo.flat[i] -= eps
        out[i] = (fun(hi) - fun(lo)) / (2 * eps)
    return out.reshape(x.shape)


@dataclass
class Measured:
    inst: Instance
    echo: symglep.Result          # centred, β = 1e-4, momentum start, learn_inputs
    bptt: symglep.Result
    echo_v: symglep.Result        # the same with a velocity start
    bptt_v: symglep.Result
    fd: dict                      # finite differences, momentum start
    fd_v: dict                    # finite differences, velocity start (v0 held fixed)
    fd_du: tuple                  # (⟨BPTT du, δu⟩, directional finite difference along δu)


def measure(inst: Instance) -> Measured:
    k, th, q0, p0, v0, u, y = inst.k, inst.th, inst.q0, inst.p0, inst.v0, inst.u, inst.y
    echo = k.gradient(th, q0, p0=p0, u=u, y=y, beta=BETA, centred=True, learn_inputs=True)
    bptt = k.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    echo_v = k.gradient(th, q0, v0=v0, u=u, y=y, beta=BETA, centred=True, learn_inputs=True)
    bptt_v = k.bptt_gradient(th, q0, v0=v0, u=u, y=y)
    fd = {
        "theta": central_differences(lambda t: inst.loss(th=t), th),
        "q0": central_differences(lambda q: inst.loss(q0=q[None]), q0[0]),
        "p0": central_differences(lambda p: inst.loss(p0=p[None]), p0[0]),
    }
    fd_v = {
        "theta": central_differences(lambda t: inst.loss(th=t, v0=v0), th),
        "q0": central_differences(lambda q: inst.loss(q0=q[None], v0=v0), q0[0]),
        "v0": central_differences(lambda v: inst.loss(v0=v[None]), v0[0]),
    }
    direction = smooth_signal(np.random.default_rng(7), np.arange(u.shape[1]) * DT, k.n_u, 1.0)[None]
    eps = FD_EPS
    fd_dir = (inst.loss(u=u + eps * direction) - inst.loss(u=u - eps * direction)) / (2 * eps)
    return Measured(inst, echo, bptt, echo_v, bptt_v, fd, fd_v, (float(np.sum(bptt.du * direction)), fd_dir))


@pytest.fixture(scope="module", params=REVERSIBLE)
def measured(request) -> Measured:
    return measure(make_instance(request.param))


# ---------------------------------------------------------------------------
# 1. Echo vs BPTT vs finite differences on every reversible example.
# ---------------------------------------------------------------------------

def test_echo_matches_bptt_parameters(measured):
    err = rel_err(measured.echo.dtheta, measured.bptt.dtheta)
    assert err <= ECHO_TOL, f"echo vs BPTT, parameters: {err:.3e}"


def test_echo_matches_bptt_initial_state(measured):
    e, b = measured.echo, measured.bptt
    err_q, err_p = rel_err(e.dq0, b.dq0), rel_err(e.dx0, b.dx0)
    assert err_q <= ECHO_TOL, f"echo vs BPTT, dC/dq0: {err_q:.3e}"
    assert err_p <= ECHO_TOL, f"echo vs BPTT, dC/dp0: {err_p:.3e}"


def test_echo_matches_bptt_inputs(measured):
    e, b = measured.echo, measured.bptt
    K = measured.inst.u.shape[1] - 1
    assert e.du is not None and e.du.shape == b.du.shape == (1, K + 1, measured.inst.k.n_u)
    err = rel_err(e.du, b.du)
    assert err <= ECHO_TOL, f"echo vs BPTT, dC/du: {err:.3e}"


def test_losses_agree(measured):
    """free, gradient and bptt_gradient report the same discrete loss."""
    loss = measured.inst.loss()
    for r in (measured.echo, measured.bptt, measured.echo_v, measured.bptt_v):
        assert r.loss.shape == (1,)
        assert abs(r.loss[0] - loss) <= 1e-12 * abs(loss)


def test_bptt_matches_finite_differences(measured):
    b, fd = measured.bptt, measured.fd
    for name, got in (("theta", b.dtheta[0]), ("q0", b.dq0[0]), ("p0", b.dx0[0])):
        err = rel_err(got, fd[name])
        assert err <= FD_TOL, f"BPTT vs finite differences, {name}: {err:.3e}"


def test_bptt_input_gradient_matches_directional_difference(measured):
    exact, fd = measured.fd_du
    assert abs(exact - fd) <= FD_TOL * abs(fd), f"⟨dC/du, δu⟩ = {exact!r}, finite difference {fd!r}"


def test_roundtrip(measured):
    """free, flip the momentum, run the un-nudged echo: back at (q0, −p0) (theory §6)."""
    inst = measured.inst
    k = inst.k
    qT, pT, _ = k.free(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y)
    sigma, pi, G, _ = k.echo(inst.th, qT, pT, [0.0], u=inst.u, y=inst.y)
    assert sigma.shape == pi.shape == (1, 1, k.n) and G.shape == (1, 1, k.n_theta)
    scale = max(1.0, float(np.max(np.abs(np.concatenate([inst.q0, inst.p0], axis=1)))))
    err = max(np.max(np.abs(sigma[:, 0] - inst.q0)), np.max(np.abs(pi[:, 0] + inst.p0))) / scale
    assert err <= ROUNDTRIP_TOL, f"round-trip error {err:.3e}"


def test_velocity_start_echo_matches_bptt(measured):
    e, b = measured.echo_v, measured.bptt_v
    for name, got, ref in (("theta", e.dtheta, b.dtheta), ("q0", e.dq0, b.dq0), ("v0", e.dx0, b.dx0),
                           ("u", e.du, b.du)):
        err = rel_err(got, ref)
        assert err <= ECHO_TOL, f"velocity start, echo vs BPTT, {name}: {err:.3e}"


def test_velocity_start_bptt_matches_finite_differences(measured):
    b, fd = measured.bptt_v, measured.fd_v
    for name, got in (("theta", b.dtheta[0]), ("q0", b.dq0[0]), ("v0", b.dx0[0])):
        err = rel_err(got, fd[name])
        assert err <= FD_TOL, f"velocity start, BPTT vs finite differences, {name}: {err:.3e}"


def test_velocity_start_is_the_momentum_start(measured):
    """Starting from v0 runs the same trajectory as starting from p0 = ∂L/∂v(q0, v0)."""
    assert abs(measured.bptt_v.loss[0] - measured.bptt.loss[0]) <= 1e-13 * abs(measured.bptt.loss[0])


@pytest.mark.parametrize("name", REVERSIBLE)
def test_batch_sequences_are_independent(name):
    """A batch of 3 gives, per sequence, what each sequence gives alone."""
    inst = make_instance(name, batch=3, seed=zlib.crc32(name.encode()) + 1)
    k = inst.k
    args = dict(u=inst.u, y=inst.y)
    together = {
        "echo": k.gradient(inst.th, inst.q0, p0=inst.p0, beta=BETA, learn_inputs=True, **args),
        "bptt": k.bptt_gradient(inst.th, inst.q0, p0=inst.p0, **args),
        "echo_v": k.gradient(inst.th, inst.q0, v0=inst.v0, beta=BETA, learn_inputs=True, **args),
    }
    free_together = k.free(inst.th, inst.q0, p0=inst.p0, **args)
    for b in range(3):
        one = dict(u=inst.u[b:b + 1], y=inst.y[b:b + 1])
        alone = {
            "echo": k.gradient(inst.th, inst.q0[b], p0=inst.p0[b], beta=BETA, learn_inputs=True, **one),
            "bptt": k.bptt_gradient(inst.th, inst.q0[b], p0=inst.p0[b], **one),
            "echo_v": k.gradient(inst.th, inst.q0[b], v0=inst.v0[b], beta=BETA, learn_inputs=True, **one),
        }
        for key in together:
            for field in ("loss", "dtheta", "dq0", "dx0", "du"):
                got = getattr(together[key], field)[b]
                ref = getattr(alone[key], field)[0]
                np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-300, err_msg=f"{key}.{field}[{b}]")
        free_alone = k.free(inst.th, inst.q0[b], p0=inst.p0[b], **one)
        for got, ref in zip(free_together, free_alone):
            np.testing.assert_allclose(got[b], ref[0], rtol=1e-13, atol=1e-300)
    # The batch loss is the sum of the sequences' losses, so its gradient is the sum.
    r = together["bptt"]
    np.testing.assert_allclose(r.dtheta_total, r.dtheta.sum(axis=0))
    # The sequences really differ (so the comparison above means something).
    assert np.ptp(r.loss) > 1e-3 * np.max(np.abs(r.loss))


# ---------------------------------------------------------------------------
# 2. Bias of the estimator: O(β²) centred, O(β) one-sided, O(β⁴) Richardson (±β, ±2β).
# ---------------------------------------------------------------------------

SWEEP_BETAS = np.array([3e-2, 1e-2, 3e-3])


@pytest.fixture(scope="module")
def beta_sweep():
    # oscillator_chain: nonlinear (Duffing). The harmonic oscillator would not do here: its
    # nudged states are affine in β and its learning integrands quadratic, so the centred
    # difference is exact and only round-off is left.
    inst = make_instance("oscillator_chain", steps=300, seed=1)
    k = inst.k
    ref = k.bptt_gradient(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y)
    errors = {}
    for order in (2, 1, 4):
        rows = []
        for beta in SWEEP_BETAS:
            e = k.gradient(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y, beta=beta, order=order)
            rows.append([rel_err(e.dtheta, ref.dtheta), rel_err(e.dq0, ref.dq0), rel_err(e.dx0, ref.dx0)])
        errors[order] = np.array(rows)
    return errors


def _slope(errors: np.ndarray) -> float:
    return float(np.polyfit(np.log(SWEEP_BETAS), np.log(errors), 1)[0])


@pytest.mark.parametrize("order, tol", [(2, 0.3), (1, 0.3), (4, 0.2)], ids=["centred", "one-sided", "richardson"])
@pytest.mark.parametrize("column, what", [(0, "theta"), (1, "q0"), (2, "p0")])
def test_bias_order_in_beta(beta_sweep, order, tol, column, what):
    errors = beta_sweep[order][:, column]
    assert np.all(np.diff(errors) < 0), f"error does not fall with β ({what}): {errors}"
    slope = _slope(errors)
    assert abs(slope - order) <= tol, f"{what}: slope {slope:.3f} of log error vs log β, expected {order}"


# ---------------------------------------------------------------------------
# 3. A model without time-reversal symmetry.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def charged():
    return make_instance("charged_particle")


def test_not_reversible_refuses_echo(charged):
    k = charged.k
    with pytest.raises(symglep.NotReversibleError) as info:
        k.gradient(charged.th, charged.q0, p0=charged.p0, u=charged.u, y=charged.y, route="echo")
    msg = str(info.value)
    assert isinstance(info.value, symglep.SymglepError)
    assert "charged_particle" in msg and "time-reversible" in msg
    # The magnetic term e B (x ẏ − y ẋ)/2 is named, and only it.
    assert "B" in msg and "x_dot" in msg and "y_dot" in msg
    assert "bptt_gradient" in msg


@pytest.mark.parametrize("start", ["p0", "v0"])
def test_not_reversible_bptt_matches_finite_differences(charged, start):
    inst = charged
    k = inst.k
    x0 = inst.p0 if start == "p0" else inst.v0
    bptt = k.bptt_gradient(inst.th, inst.q0, u=inst.u, y=inst.y, **{start: x0})

    def loss(th=inst.th, q0=inst.q0, x0=x0):
        return float(k.free(th, q0, u=inst.u, y=inst.y, **{start: x0})[2][0])

    assert abs(bptt.loss[0] - loss()) <= 1e-12 * abs(loss())
    fd = {
        "theta": central_differences(lambda t: loss(th=t), inst.th),
        "q0": central_differences(lambda q: loss(q0=q[None]), inst.q0[0]),
        start: central_differences(lambda x: loss(x0=x[None]), x0[0]),
    }
    for name, got in (("theta", bptt.dtheta[0]), ("q0", bptt.dq0[0]), (start, bptt.dx0[0])):
        err = rel_err(got, fd[name])
        assert err <= FD_TOL, f"charged particle, BPTT vs finite differences, {name}: {err:.3e}"


# ---------------------------------------------------------------------------
# 4. Which discrete loss is differentiated (theory §6).
# ---------------------------------------------------------------------------

def test_leapfrog_loss_is_trapezoid_sum():
    inst = make_instance("harmonic_oscillator", steps=500, seed=11)
    k = inst.k
    assert k.integrator == "leapfrog"
    qT, pT, loss, tq, tp = k.free(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y, record=True)
    assert tq.shape == tp.shape == (1, 501, 1)
    np.testing.assert_array_equal(tq[0, 0], inst.q0[0])
    np.testing.assert_array_equal(tp[0, 0], inst.p0[0])
    np.testing.assert_array_equal(tq[0, -1], qT[0])
    np.testing.assert_array_equal(tp[0, -1], pT[0])
    c = (tq[0, :, 0] - inst.y[0, :, 0]) ** 2 / 2
    weights = np.ones(c.size)
    weights[[0, -1]] = 0.5
    expected = DT * np.sum(weights * c)
    assert abs(loss[0] - expected) <= 1e-12 * abs(expected), (loss[0], expected)
    # Not the plain Riemann sum: the end weights matter at this precision.
    assert abs(loss[0] - DT * np.sum(c)) > 1e-9 * abs(expected)


def test_midpoint_loss_is_midpoint_sum():
    inst = make_instance("damped_oscillator", steps=500, seed=12)
    k = inst.k
    assert k.integrator == "midpoint"
    qT, pT, loss, tq, tp = k.free(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y, record=True)
    np.testing.assert_array_equal(tq[0, 0], inst.q0[0])
    np.testing.assert_array_equal(tq[0, -1], qT[0])
    x, y = tq[0, :, 0], inst.y[0, :, 0]
    expected = DT * np.sum(((x[:-1] + x[1:]) / 2 - (y[:-1] + y[1:]) / 2) ** 2 / 2)
    assert abs(loss[0] - expected) <= 1e-12 * abs(expected), (loss[0], expected)
    trapezoid = DT * (np.sum((x - y) ** 2 / 2) - ((x[0] - y[0]) ** 2 + (x[-1] - y[-1]) ** 2) / 4)
    assert abs(loss[0] - trapezoid) > 1e-9 * abs(expected)


# ---------------------------------------------------------------------------
# 5. Energy of the undriven harmonic oscillator: bounded oscillation.
# ---------------------------------------------------------------------------

def test_energy_bounded_for_undriven_oscillator():
    k = _kernels("harmonic_oscillator")
    th = k.theta({"k": 1.3, "m": 0.7})
    q0, p0 = np.array([[0.3]]), np.array([[-0.2]])
    steps = 20000  # 200 time units, ~45 periods
    out = k.free(th, q0, p0=p0, steps=steps, record=True)
    e = k.energy(th, out[3], out[4])
    assert e.shape == (1, steps + 1)
    e = e[0]
    h0 = 0.5 * 1.3 * 0.3**2 + 0.5 * 0.2**2 / 0.7
    assert abs(e[0] - h0) <= 1e-14
    dev = np.abs(e - e[0]) / e[0]
    assert dev.max() <= 1e-3, f"relative energy error {dev.max():.3e}"
    # Bounded, not drifting: the last quarter strays no further than the first.
    quarter = steps // 4
    assert dev[-quarter:].max() <= 1.5 * dev[:quarter].max() + 1e-12


# ---------------------------------------------------------------------------
# 6. Errors users can cause.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ho():
    k = _kernels("harmonic_oscillator")
    K = 10
    return k, {"k": 1.0, "m": 1.0}, np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, K + 1, 1)), np.zeros((2, K + 1, 1))


METHODS = ["free", "gradient", "bptt_gradient"]


def _call(k, method, th, q0, **kw):
    return getattr(k, method)(th, q0, **kw)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case, fragments", [
    ("q0 columns", ["q0", "(B, 1)", "(2, 3)"]),
    ("q0 3-d", ["q0", "(B, 1)"]),
    ("p0 columns", ["p0", "(B, 1)"]),
    ("p0 batch", ["p0", "3 sequences", "expected 2"]),
    ("v0 batch", ["v0", "3 sequences", "expected 2"]),
    ("u width", ["inputs u", "(2, K+1, 1)", "(2, 11, 2)"]),
    ("u batch", ["inputs u", "(2, K+1, 1)"]),
    ("u 2-d", ["inputs u", "(2, K+1, 1)"]),
    ("u one node", ["inputs u", "at least 2 time nodes"]),
    ("y width", ["targets y", "(2, K+1, 1)"]),
    ("y length", ["11 time nodes", "targets 12"]),
    ("u missing", ["inputs u missing", "steps"]),
    ("both p0 v0", ["exactly one of p0", "v0"]),
    ("neither p0 v0", ["exactly one of p0", "v0"]),
    ("missing parameter", ["missing parameter value(s): m"]),
    ("unknown parameter", ["unknown parameter(s): c"]),
    ("vector length", ["expected 2 parameter values", "k, m", "got 3"]),
    ("non-finite parameter", ["finite"]),
])
def test_bad_arguments(ho, method, case, fragments):
    k, th, q0, p0, u, y = ho
    kw = dict(p0=p0, u=u, y=y)
    if case == "q0 columns":
        q0 = np.zeros((2, 3))
    elif case == "q0 3-d":
        q0 = np.zeros((2, 1, 1))
    elif case == "p0 columns":
        kw["p0"] = np.zeros((2, 2))
    elif case == "p0 batch":
        kw["p0"] = np.zeros((3, 1))
    elif case == "v0 batch":
        del kw["p0"]
        kw["v0"] = np.zeros((3, 1))
    elif case == "u width":
        kw["u"] = np.zeros((2, 11, 2))
    elif case == "u batch":
        kw["u"] = np.zeros((3, 11, 1))
    elif case == "u 2-d":
        kw["u"] = np.zeros((11, 1))
    elif case == "u one node":
        kw["u"] = np.zeros((2, 1, 1))
        kw["y"] = np.zeros((2, 1, 1))
    elif case == "y width":
        kw["y"] = np.zeros((2, 11, 3))
    elif case == "y length":
        kw["y"] = np.zeros((2, 12, 1))
    elif case == "u missing":
        kw["u"] = None
    elif case == "both p0 v0":
        kw["v0"] = np.zeros((2, 1))
    elif case == "neither p0 v0":
        del kw["p0"]
    elif case == "missing parameter":
        th = {"k": 1.0}
    elif case == "unknown parameter":
        th = {"k": 1.0, "m": 1.0, "c": 2.0}
    elif case == "vector length":
        th = [1.0, 2.0, 3.0]
    elif case == "non-finite parameter":
        th = {"k": np.nan, "m": 1.0}
    with pytest.raises(symglep.SymglepError) as info:
        _call(k, method, th, q0, **kw)
    msg = str(info.value)
    assert not isinstance(info.value, symglep.NumericalError)
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"


def test_parameters_by_symbol_or_name_or_vector(ho):
    k = ho[0]
    sym = {s: v for s, v in zip(k.model.parameters, (1.5, 0.5))}
    np.testing.assert_array_equal(k.theta(sym), [1.5, 0.5])
    np.testing.assert_array_equal(k.theta({"m": 0.5, "k": 1.5}), [1.5, 0.5])
    np.testing.assert_array_equal(k.theta([1.5, 0.5]), [1.5, 0.5])


@pytest.mark.parametrize("beta", [0.0, np.inf, np.nan])
def test_gradient_rejects_bad_beta(ho, beta):
    k, th, q0, p0, u, y = ho
    with pytest.raises(symglep.SymglepError, match="beta"):
        k.gradient(th, q0, p0=p0, u=u, y=y, beta=beta)


def test_echo_checks_shapes(ho):
    k, th, q0, p0, u, y = ho
    with pytest.raises(symglep.SymglepError, match=r"pT has 3 sequences, expected 2"):
        k.echo(th, q0, np.zeros((3, 1)), [0.0], u=u, y=y)
    with pytest.raises(symglep.SymglepError, match=r"qT must have shape \(B, 1\)"):
        k.echo(th, np.zeros((2, 2)), p0, [0.0], u=u, y=y)
    with pytest.raises(symglep.SymglepError, match="targets y"):
        k.echo(th, q0, p0, [0.0], u=u, y=np.zeros((2, 11, 4)))


def test_echo_rejects_targets_of_another_length(ho):
    """``free``/``gradient`` refuse targets with more or fewer nodes than the inputs; so must ``echo``.

    The kernel reads ``y[k]`` for every input node ``k`` without bounds checks, so shorter targets
    are read out of bounds (NaN or garbage, silently). Longer ones are used here: they show the
    missing check without reading past the end of the array.
    """
    k, th, q0, p0, u, y = ho
    with pytest.raises(symglep.SymglepError, match="time nodes"):
        k.echo(th, q0, p0, [0.0], u=u, y=np.zeros((2, 12, 1)))


def test_energy_drift_is_relative_to_the_energy_scale():
    """|H_k − H_0| over |H_0|, or over the kinetic part H − H(p = 0) when that is larger: a potential offset
    that puts H_0 near zero does not inflate the drift (a run with kinetic energy ~1 drifting by 1e-6)."""
    from symglep.check import energy_drift

    t = np.linspace(0.0, 10.0, 101)
    kinetic = np.cos(t) ** 2
    offset = -0.5  # V = sin^2 - 0.5: H_0 = 0.5 - 0.5 + 1e-9 ~ 0
    H = kinetic + np.sin(t) ** 2 + offset + 1e-9 + 1e-6 * np.sin(3 * t)
    at_rest = H - kinetic
    assert energy_drift(H, at_rest) == pytest.approx(np.max(np.abs(H - H[0])) / 1.0, rel=1e-3)
    assert energy_drift(100 + H, 100 + at_rest) == pytest.approx(np.max(np.abs(H - H[0])) / (100.5 + 1e-9), rel=1e-6)
