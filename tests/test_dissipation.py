"""Dissipation and broken time reversal: the exact routes and the honest reports (theory §4, §7).

* Caldirola–Kanai oscillator and the uniformly damped chain (rewritten automatically):
  echo vs BPTT ≤ 1e-6 (float64, centred β = 1e-4);
* charged particle: the flipped-parameter echo (B → −B) vs BPTT ≤ 1e-6, the plain
  echo refused with a message naming the odd term and the flip;
* gyroscope (fixed Coriolis coefficient): digital PFVP vs BPTT ≤ 1e-6;
* damped chain with per-coordinate rates: no exact route; BPTT is right (finite
  differences), the naive echo runs only behind its flag and is measurably biased;
* BPTT vs central finite differences (≤ 1e-5) on every model a new route runs on.

Instances are drawn like those of ``tests/test_kernels.py`` (K = 1000 steps of 0.01).
Models already compiled by that module are loaded from the shared kernel cache.
"""

from __future__ import annotations

import functools
import json
import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.check import draw_parameters, rel_err, smooth_signal
from symglep.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DT = 0.01
STEPS = 1000
BETA = 1e-4
ECHO_TOL = 1e-6
FD_TOL = 1e-5
FD_EPS = 1e-6
ROUNDTRIP_TOL = 1e-9


@functools.lru_cache(maxsize=None)
def kernels(name: str, integrator: str = "auto") -> symglep.Kernels:
    return symglep.compile(symglep.load_model(str(EXAMPLES / f"{name}.py")), integrator=integrator, dt=DT)


class Instance:
    """A seeded random problem of one sequence, and its loss as a function of θ, q0, p0."""

    def __init__(self, name: str, seed: int = 11, integrator: str = "auto"):
        self.k = k = kernels(name, integrator)
        model = k.model
        rng = np.random.default_rng(seed)
        self.th = k.theta(draw_parameters(model, rng))
        self.q0 = rng.uniform(-0.3, 0.3, (1, model.n))
        self.v0 = rng.uniform(-0.3, 0.3, (1, model.n))
        times = np.arange(STEPS + 1) * DT
        self.u = smooth_signal(rng, times, k.n_u, 0.2)[None]
        self.y = smooth_signal(rng, times, k.n_y, 0.3)[None]
        self.p0 = np.empty((1, model.n))
        k.module.f_momentum(self.q0[0], self.v0[0], 0.0, self.u[0, 0], self.th, self.p0[0])

    def loss(self, th=None, q0=None, p0=None) -> float:
        out = self.k.free(self.th if th is None else th, self.q0 if q0 is None else q0,
                          p0=self.p0 if p0 is None else p0, u=self.u, y=self.y)
        return float(out[2][0])

    def gradient(self, **kw) -> symglep.Result:
        return self.k.gradient(self.th, self.q0, p0=self.p0, u=self.u, y=self.y, beta=BETA, centred=True, **kw)

    def gradient_v(self, **kw) -> symglep.Result:
        return self.k.gradient(self.th, self.q0, v0=self.v0, u=self.u, y=self.y, beta=BETA, centred=True, **kw)

    def bptt(self, velocity: bool = False) -> symglep.Result:
        start = {"v0": self.v0} if velocity else {"p0": self.p0}
        return self.k.bptt_gradient(self.th, self.q0, u=self.u, y=self.y, **start)


def central_differences(fun, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.size)
    for i in range(x.size):
        eps = FD_EPS * max(1.0, abs(x.flat[i]))
        hi, lo = x.copy(), x.copy()
        hi.flat[i] += eps
        lo.flat[i] -= eps
        out[i] = (fun(hi) - fun(lo)) / (2 * eps)
    return out


def state(r: symglep.Result) -> np.ndarray:
    return np.concatenate([r.dq0[0], r.dx0[0]])


def assert_route_matches_bptt(inst: Instance, expected: str, **kw) -> None:
    """θ and (q0, p0) gradients of the route ``expected`` against BPTT, momentum and velocity start."""
    route = expected
    for velocity in (False, True):
        est = inst.gradient_v(**kw) if velocity else inst.gradient(**kw)
        ref = inst.bptt(velocity)
        assert est.route == route
        start = "velocity" if velocity else "momentum"
        err_th = rel_err(est.dtheta[0], ref.dtheta[0])
        err_init = rel_err(state(est), state(ref))
        assert err_th <= ECHO_TOL, f"{route} vs BPTT, θ, {start} start: {err_th:.3e}"
        assert err_init <= ECHO_TOL, f"{route} vs BPTT, initial state, {start} start: {err_init:.3e}"


def assert_bptt_matches_finite_differences(inst: Instance) -> None:
    ref = inst.bptt()
    fd_th = central_differences(lambda t: inst.loss(th=t), inst.th)
    fd_q0 = central_differences(lambda q: inst.loss(q0=q[None]), inst.q0[0])
    fd_p0 = central_differences(lambda p: inst.loss(p0=p[None]), inst.p0[0])
    for what, a, b in (("θ", ref.dtheta[0], fd_th), ("q0", ref.dq0[0], fd_q0), ("p0", ref.dx0[0], fd_p0)):
        err = rel_err(a, b)
        assert err <= FD_TOL, f"{inst.k.model.name}: BPTT vs finite differences, {what}: {err:.3e}"


# ---------------------------------------------------------------------------
# Caldirola–Kanai: the explicit oscillator and the automatic rewriting.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ck_oscillator():
    return Instance("damped_oscillator")


@pytest.fixture(scope="module")
def damped_chain():
    return Instance("damped_chain")


def test_caldirola_kanai_oscillator_echo_matches_bptt(ck_oscillator):
    assert_route_matches_bptt(ck_oscillator, "echo")


def test_caldirola_kanai_oscillator_bptt_matches_finite_differences(ck_oscillator):
    assert_bptt_matches_finite_differences(ck_oscillator)


def test_damped_chain_is_rewritten_into_caldirola_kanai_form():
    model = symglep.load_model(str(EXAMPLES / "damped_chain.py"))
    assert model.rayleigh.rewritable and model.damping == 0
    gamma = sp.Symbol("gamma", positive=True)
    assert model.rayleigh.rate == gamma
    # The rewritten Euler–Lagrange residuals are exp(γt) times those of the damped equations
    # ẍ_i + γ ẋ_i + ∂V/∂x_i = 0, with V read from the declared Lagrangian.
    d = symglep.derive(model)
    t = model.time
    declared = model.user_lagrangian
    for i, (q, v, a) in enumerate(zip(model.q, model.v, model.a)):
        damped = a + gamma * v - sp.diff(declared, q)
        assert sp.simplify(d.el.residuals[i] * sp.exp(-gamma * t) - damped) == 0
    assert any("Caldirola-Kanai" in note and "exp(-gamma*t)" in note for note in d.notes)
    assert d.default_route == "echo"


def test_damped_chain_echo_matches_bptt(damped_chain):
    assert_route_matches_bptt(damped_chain, "echo")


def test_damped_chain_bptt_matches_finite_differences(damped_chain):
    assert_bptt_matches_finite_differences(damped_chain)


def test_damped_chain_echo_is_anti_damped_and_returns(damped_chain):
    """β = 0: the echo (anti-damped in echo time) lands back on (q0, −p0) though the free run decays."""
    inst = damped_chain
    qT, pT, _ = inst.k.free(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y)
    sigma, pi, _, _ = inst.k.echo(inst.th, qT, pT, [0.0], u=inst.u, y=inst.y)
    assert np.max(np.abs(sigma[0, 0] - inst.q0[0])) <= ROUNDTRIP_TOL
    assert np.max(np.abs(pi[0, 0] + inst.p0[0])) <= ROUNDTRIP_TOL


# ---------------------------------------------------------------------------
# Generalised time reversal: the charged particle with B flipped.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def charged():
    return Instance("charged_particle")


def test_charged_particle_flip_is_found():
    d = symglep.derive(symglep.load_model(str(EXAMPLES / "charged_particle.py")))
    assert [s.name for s in d.sym.flip] == ["B"]
    assert d.default_route == "flipped_echo"
    assert charged_route(d, "echo")["available"] is False
    assert charged_route(d, "flipped_echo")["exact"] is True


def charged_route(d, name):
    return next(r for r in d.routes if r["route"] == name)


def test_charged_particle_flipped_echo_matches_bptt(charged):
    assert_route_matches_bptt(charged, "flipped_echo")
    assert_route_matches_bptt(charged, "flipped_echo", route="flipped_echo")


def test_charged_particle_bptt_matches_finite_differences(charged):
    assert_bptt_matches_finite_differences(charged)


def test_charged_particle_plain_echo_is_refused_naming_term_and_flip(charged):
    with pytest.raises(symglep.NotReversibleError) as info:
        charged.gradient(route="echo")
    msg = str(info.value)
    assert "B*e*x*y_dot/2 - B*e*x_dot*y/2" in msg
    assert "B -> -B" in msg and "flipped_echo" in msg
    assert "\n" not in msg


def test_charged_particle_flipped_echo_round_trip_and_naive_bias(charged):
    """β = 0: the flipped echo returns to (q0, −p0) to round-off; the plain one does not, and its
    gradient is far off."""
    inst = charged
    qT, pT, _ = inst.k.free(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y)
    sigma, pi, _, _ = inst.k.echo(inst.th, qT, pT, [0.0], u=inst.u, y=inst.y)
    assert np.max(np.abs(np.r_[sigma[0, 0] - inst.q0[0], pi[0, 0] + inst.p0[0]])) <= ROUNDTRIP_TOL
    sigma, pi, _, _ = inst.k.echo(inst.th, qT, pT, [0.0], u=inst.u, y=inst.y, naive_echo=True)
    assert np.max(np.abs(np.r_[sigma[0, 0] - inst.q0[0], pi[0, 0] + inst.p0[0]])) > 1e-2
    naive = inst.gradient(naive_echo=True)
    assert naive.route == "naive_echo"
    assert rel_err(naive.dtheta[0], inst.bptt().dtheta[0]) > 0.1


def test_flipped_learning_integrand_sign_form(charged):
    """theory §4: the echo's own integrand at Pθ, with the flipped parameters' sign reversed, is the
    kernels' integrand (original θ at the swapped pair)."""
    k = charged.k
    mod = k.module
    th = charged.th
    th_flip = k.echo_parameters(th)
    signs = np.where(th_flip == th, 1.0, -1.0)
    assert list(mod.ECHO_FLIP) == [0] and signs[0] == -1.0
    rng = np.random.default_rng(5)
    qa, qb = rng.normal(size=2), rng.normal(size=2)
    um = np.array([0.1])
    d_orig, du1 = np.empty(k.n_theta), np.empty(1)
    d_own, du2 = np.empty(k.n_theta), np.empty(1)
    mod.f_lagrangian_partials(qb, qa, 0.3, um, th, DT, d_orig, du1)
    mod.f_lagrangian_partials(qa, qb, 0.3, um, th_flip, DT, d_own, du2)
    assert np.allclose(d_orig, signs * d_own, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------------
# Digital PFVP: the gyroscope with a fixed Coriolis coefficient, and a leapfrog model.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gyro():
    return Instance("gyroscope")


def test_gyroscope_has_no_flip_and_defaults_to_digital_pfvp():
    d = symglep.derive(symglep.load_model(str(EXAMPLES / "gyroscope.py")))
    assert d.sym.flip is None and "Omega" in d.sym.flip_note
    assert d.default_route == "digital_pfvp"
    entry = charged_route(d, "digital_pfvp")
    assert entry["exact"] and not entry["forward_only"]
    assert "not forward-only in hardware" in entry["label"]


def test_gyroscope_digital_pfvp_matches_bptt(gyro):
    assert_route_matches_bptt(gyro, "digital_pfvp")
    assert "not forward-only in hardware" in gyro.gradient().label


def test_gyroscope_bptt_matches_finite_differences(gyro):
    assert_bptt_matches_finite_differences(gyro)


def test_gyroscope_echo_routes_are_refused(gyro):
    for route in ("echo", "flipped_echo"):
        with pytest.raises(symglep.NotReversibleError, match="Omega") as info:
            gyro.gradient(route=route)
        assert "digital_pfvp" in str(info.value)


def test_gyroscope_backward_run_returns_to_the_start(gyro):
    inst = gyro
    qT, pT, _ = inst.k.free(inst.th, inst.q0, p0=inst.p0, u=inst.u, y=inst.y)
    q0, p0, _, _ = inst.k.pfvp_backward(inst.th, qT, pT, [0.0], u=inst.u, y=inst.y)
    assert np.max(np.abs(np.r_[q0[0, 0] - inst.q0[0], p0[0, 0] - inst.p0[0]])) <= ROUNDTRIP_TOL


def test_digital_pfvp_on_a_leapfrog_model_matches_bptt():
    """The inverted Störmer–Verlet step (the same step with −h) on the Duffing chain."""
    inst = Instance("oscillator_chain")
    assert inst.k.integrator == "leapfrog"
    assert_route_matches_bptt(inst, "digital_pfvp", route="digital_pfvp")


def test_digital_pfvp_on_the_caldirola_kanai_oscillator_matches_bptt(ck_oscillator):
    assert_route_matches_bptt(ck_oscillator, "digital_pfvp", route="digital_pfvp")


# ---------------------------------------------------------------------------
# The time-weighted leapfrog (theory §7) on a scalar model: L = K(v, t) − V(q, t).
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ck_leapfrog():
    return Instance("damped_oscillator", integrator="leapfrog")


def test_caldirola_kanai_oscillator_takes_the_time_weighted_leapfrog(ck_leapfrog):
    """Not separable (its momentum reads t), but split as K(v, t) − V(q, t): the leapfrog is served on
    request, samples K at the middle of each step, and ``auto`` keeps the midpoint rule."""
    d = symglep.derive(ck_leapfrog.k.model, simplify="none")
    assert not d.separable and "time-weighted leapfrog" in d.sym.separability_note
    K, V = d.sym.leapfrog_split()
    assert sp.simplify(K - V - d.model.lagrangian) == 0 and not (sp.simplify(K).free_symbols & set(d.model.q))
    assert ck_leapfrog.k.integrator == "leapfrog" and kernels("damped_oscillator").integrator == "midpoint"


@pytest.mark.parametrize("route", ["echo", "digital_pfvp"])
def test_time_weighted_leapfrog_routes_match_bptt(ck_leapfrog, route):
    assert_route_matches_bptt(ck_leapfrog, route, route=route)


def test_time_weighted_leapfrog_bptt_matches_finite_differences(ck_leapfrog):
    assert_bptt_matches_finite_differences(ck_leapfrog)


@pytest.mark.parametrize("t0", [0.0, 0.7])
def test_time_weighted_leapfrog_solves_the_damped_equation(ck_leapfrog, t0):
    """x'' + γ x' + (k/m) x = u/m (constant u, examples/damped_oscillator.py): the final state of the
    time-weighted leapfrog converges at second order to RK4's, from any start time (the weights are
    e^{γt} at absolute times, so x(t) does not depend on t0 but p = e^{γt} m v does)."""
    k = ck_leapfrog.k
    th = ck_leapfrog.th
    kk, m = (th[k.model.parameters.index(s)] for s in sp.symbols("k m", positive=True))
    gamma, uc, T = 0.1, 0.3, 2.0
    x0, v0 = 0.2, -0.4

    def rhs(s):
        return np.array([s[1], -gamma * s[1] - kk / m * s[0] + uc / m])

    s = np.array([x0, v0])
    h = T / 20000
    for _ in range(20000):
        k1 = rhs(s)
        k2 = rhs(s + 0.5 * h * k1)
        k3 = rhs(s + 0.5 * h * k2)
        k4 = rhs(s + h * k3)
        s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    errors = []
    for K in (100, 200):
        u, y = np.full((1, K + 1, 1), uc), np.zeros((1, K + 1, 1))
        qT, pT, _ = k.free(th, np.array([[x0]]), v0=np.array([[v0]]), u=u, y=y, dt=T / K, t0=t0)
        vT = pT[0, 0] / (np.exp(gamma * (t0 + T)) * m)
        errors.append(max(abs(qT[0, 0] - s[0]), abs(vT - s[1])))
    assert errors[1] < 1e-4 and 3.5 < errors[0] / errors[1] < 4.5, errors


@pytest.mark.parametrize("integrator", ["midpoint", "leapfrog"])
def test_a_learned_damping_rate(integrator):
    """γ among the parameters (R = γ m ẋ²/2, rewritten into e^{γt} L): the learning integrand −∂γ L_d carries
    t e^{γt} (K − V), and the echo stays exact, on both integrators: echo vs BPTT and BPTT vs central
    differences, γ's entry included."""
    x, u, y = dynamicsymbols("x u y")
    k, m, g = sp.symbols("k m gamma", positive=True)
    model = symglep.Model(lagrangian=m * x.diff() ** 2 / 2 - k * x**2 / 2 + x * u, coordinates=[x],
                          parameters=[k, m, g], inputs=[u], targets=[y], cost=(x - y) ** 2 / 2,
                          dissipation=g * m * x.diff() ** 2 / 2, name="learned_rate")
    assert model.damping == 0 and g in model.lagrangian.free_symbols  # rewritten, with γ a parameter
    kern = symglep.compile(model, integrator=integrator, dt=DT, jit=False)  # source as Python; compiled: ck fixtures
    th = np.array([1.2, 0.9, 0.3])
    t = np.arange(STEPS + 1) * DT
    u_, y_ = (0.3 * np.sin(2 * t))[None, :, None], (0.2 * np.cos(t))[None, :, None]
    q0, v0 = np.array([[0.2]]), np.array([[0.1]])
    est = kern.gradient(th, q0, v0=v0, u=u_, y=y_, beta=BETA, centred=True)
    ref = kern.bptt_gradient(th, q0, v0=v0, u=u_, y=y_)
    assert est.route == "echo" and rel_err(est.dtheta[0], ref.dtheta[0]) <= ECHO_TOL
    fd = central_differences(lambda a: float(kern.free(a, q0, v0=v0, u=u_, y=y_)[2][0]), th)
    assert abs(ref.dtheta[0][2]) > 1e-3 and rel_err(ref.dtheta[0], fd) <= FD_TOL


# ---------------------------------------------------------------------------
# Non-variational dissipation: no exact route, BPTT, the naive echo behind a flag.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nonuniform():
    return Instance("damped_chain_nonuniform")


def test_nonuniform_damping_reports_no_exact_route():
    d = symglep.derive(symglep.load_model(str(EXAMPLES / "damped_chain_nonuniform.py")))
    assert d.default_route is None
    exact = [r["route"] for r in d.routes if r["available"] and r["exact"]]
    assert exact == ["bptt"]
    assert any("non-variational" in note and "differs between coordinates" in note for note in d.notes)


def test_nonuniform_damping_residuals_do_not_call_the_echo_exact():
    """The residual table of a non-variational model is that of its conservative part: its PFVP verdict
    says no echo is exact (theory §7), as the header note does, instead of 'the practical one'."""
    out = CliRunner().invoke(main, ["residuals", str(EXAMPLES / "damped_chain_nonuniform.py")])
    assert out.exit_code == 0, out.output
    verdict = out.output.split("== PFVP")[1].split("verdict: ")[1].splitlines()[0]
    assert verdict.startswith("not exact for this model") and "BPTT is the reference" in verdict
    assert "the practical one" not in out.output


def test_a_learned_rayleigh_coefficient_says_where_its_gradient_comes_from():
    """A learned coefficient of a non-variational Rayleigh force has ∂L/∂c = 0: derive says it acts through
    the force, which no ∂L/∂θ sees, and that BPTT gives its gradient."""
    x1, x2 = dynamicsymbols("x1 x2")
    k, c = sp.symbols("k c", positive=True)
    model = symglep.Model((x1.diff() ** 2 + x2.diff() ** 2) / 2 - k * (x1 - x2) ** 2 / 2 - (x1**2 + x2**2) / 2,
                          [x1, x2], [k, c], dissipation=c * x1.diff() ** 4 / 4)
    text = symglep.report.render_text(symglep.derive(model))
    line = next(x for x in text.splitlines() if x.lstrip().startswith("∂L/∂c"))
    assert "also acts through the Rayleigh force, which no ∂L/∂θ sees: its gradient comes from BPTT" in line
    assert "Rayleigh" not in next(x for x in text.splitlines() if x.lstrip().startswith("∂L/∂k"))


def test_nonuniform_damping_bptt_matches_finite_differences(nonuniform):
    assert_bptt_matches_finite_differences(nonuniform)


def test_nonuniform_damping_refuses_every_contrastive_route(nonuniform):
    for route in ("auto", "echo", "digital_pfvp"):
        with pytest.raises(symglep.NoExactRouteError, match="BPTT"):
            nonuniform.gradient(route=route)
    with pytest.raises(symglep.SymglepError, match="naive_echo=True"):
        nonuniform.gradient(route="naive_echo")


def test_nonuniform_damping_naive_echo_is_biased(nonuniform):
    naive = nonuniform.gradient(naive_echo=True)
    assert naive.route == "naive_echo"
    bias = rel_err(naive.dtheta[0], nonuniform.bptt().dtheta[0])
    assert bias > 1e-2, f"the naive echo's bias ({bias:.2e}) should be visible on this chain"


def test_check_cli_on_nonuniform_damping(nonuniform):
    path = str(EXAMPLES / "damped_chain_nonuniform.py")
    refused = CliRunner().invoke(main, ["check", path, "--steps", "200"])
    assert refused.exit_code == 2 and "no exact echo or PFVP rule" in refused.output
    # the command line's way on, not the Python name bptt_gradient (new-user probe)
    assert refused.output.rstrip().endswith("check --naive-echo measures BPTT against finite differences and that "
                                            "echo's bias; train with --estimator bptt")
    naive = CliRunner().invoke(main, ["check", path, "--steps", "200", "--naive-echo"])
    assert naive.exit_code == 0, naive.output
    assert "naive echo" in naive.output and "not a pass criterion" in naive.output
    # its warning names the model, not drift, and the verdict says what it judged
    assert "warning: the naive echo does not retrace the free run" in naive.output
    # the two reasons, each with an example (probe r2, session 37: a pure-gauge model read "not time-reversible")
    assert "not time-reversible in its canonical variables" in naive.output and "or not variational (damping)" in naive.output
    assert "floating-point drift" not in naive.output
    # its one-sided line (6e+03 here) is the round-trip gap over beta, not a beta error: the line says so
    assert "does not retrace the free run: its one-sided estimate carries that gap / beta" in naive.output
    assert naive.output.rstrip().endswith("passed (BPTT vs finite differences only: the route is not exact here, "
                                          "its bias is reported above)")



def test_check_json_reports_a_refusal_as_json(nonuniform):
    """`check --format json` printed nothing on stdout when the check stopped (a refusal, a numerical
    failure): a reader of the JSON got an empty document. Now it gets {"passed": false, "error": ...}."""
    path = str(EXAMPLES / "damped_chain_nonuniform.py")
    refused = CliRunner().invoke(main, ["check", path, "--steps", "200", "--format", "json"])
    assert refused.exit_code == 2
    report = json.loads(refused.stdout)
    assert report["passed"] is False and report["kind"] == "NoExactRouteError" and report["exit_code"] == 2
    assert "no exact echo or PFVP rule" in report["error"]

def test_check_cli_labels_digital_pfvp(gyro):
    result = CliRunner().invoke(main, ["check", str(EXAMPLES / "gyroscope.py"), "--steps", "200"])
    assert result.exit_code == 0, result.output
    assert "exact on a computer, not forward-only in hardware" in result.output


# ---------------------------------------------------------------------------
# Symbolic: the flip search and the uniform-damping test.
# ---------------------------------------------------------------------------

x, y = dynamicsymbols("x y")


def model(lagrangian, parameters, constants=None, dissipation=None):
    return symglep.Model(lagrangian, [x, y], parameters, constants=constants or {}, dissipation=dissipation)


def test_flip_needs_two_parameters():
    b1, b2, k = sp.symbols("b1 b2 k")
    lag = (x.diff() ** 2 + y.diff() ** 2) / 2 + b1 * x * y.diff() + b2 * y * x.diff() + b1 * b2 * x * y \
        - k * x**2 / 2
    d = symglep.derive(model(lag, [k, b1, b2]))
    assert [s.name for s in d.sym.flip] == ["b1", "b2"]


def test_no_flip_when_the_even_part_is_odd_in_the_parameter():
    b, k = sp.symbols("b k")
    lag = (x.diff() ** 2 + y.diff() ** 2) / 2 + b * x * y.diff() + b * x**3 - k * x**2 / 2
    d = symglep.derive(model(lag, [b, k]))
    assert d.sym.flip is None and d.default_route == "digital_pfvp"


def test_constants_are_never_flipped():
    b, k = sp.symbols("b k")
    lag = (x.diff() ** 2 + y.diff() ** 2) / 2 + b * (x * y.diff() - y * x.diff()) - k * x**2 / 2
    assert [s.name for s in symglep.derive(model(lag, [b, k])).sym.flip] == ["b"]
    fixed = symglep.derive(model(lag, [k], constants={b: 0.5}))
    assert fixed.sym.flip is None and "fixed constants" in fixed.sym.flip_note
    # what to do about it (probe r2, session 37): declare it a parameter, and freeze it while training
    assert "declared as parameters, a flip of their signs may restore it" in fixed.sym.flip_note
    assert "train --freeze b keeps them fixed" in fixed.sym.flip_note


def test_uniform_damping_with_masses_is_rewritten():
    m1, m2, c, k = sp.symbols("m1 m2 c k", positive=True)
    kin = m1 * x.diff() ** 2 / 2 + m2 * y.diff() ** 2 / 2
    mdl = model(kin - k * (x - y) ** 2 / 2, [k], constants={m1: 1.0, m2: 2.0, c: 0.3}, dissipation=c * kin)
    assert mdl.rayleigh.rate == c
    assert mdl.lagrangian.has(sp.exp(c * mdl.time))


def test_uniform_damping_can_be_kept_as_a_force():
    c, k = sp.symbols("c k", positive=True)
    kin = (x.diff() ** 2 + y.diff() ** 2) / 2
    mdl = symglep.Model(kin - k * x**2 / 2, [x, y], [k], constants={c: 0.3}, dissipation=c * kin,
                        rewrite_dissipation=False)
    assert not mdl.rayleigh.rewritable and mdl.damping == mdl.rayleigh.function
    assert "rewrite_dissipation=False" in mdl.rayleigh.why
    assert symglep.derive(mdl).default_route is None


def test_nonuniform_damping_is_kept_as_a_force():
    c1, c2, k = sp.symbols("c1 c2 k", positive=True)
    kin = (x.diff() ** 2 + y.diff() ** 2) / 2
    r = c1 * x.diff() ** 2 / 2 + c2 * y.diff() ** 2 / 2
    mdl = model(kin - k * x**2 / 2, [k], constants={c1: 0.1, c2: 0.2}, dissipation=r)
    assert not mdl.rayleigh.rewritable and mdl.damping == mdl.rayleigh.function
    d = symglep.derive(mdl)
    xd = mdl.v[0]
    assert sp.expand(d.el.forcing[0] - (-mdl.q[0] * k - c1 * xd)) == 0


@pytest.mark.parametrize("bad, fragment", [
    (sp.Symbol("c") * x**2, "not allowed"),          # undeclared symbol
    (x**2, "does not depend on any velocity"),
    (dynamicsymbols._t * x.diff() ** 2, "not allowed"),
])
def test_bad_dissipation_functions(bad, fragment):
    k = sp.Symbol("k")
    with pytest.raises(symglep.ModelError, match=fragment):
        model((x.diff() ** 2 + y.diff() ** 2) / 2 - k * x**2, [k], dissipation=bad)


@pytest.mark.parametrize("name, default", [
    ("harmonic_oscillator", "echo"), ("damped_oscillator", "echo"), ("damped_chain", "echo"),
    ("charged_particle", "flipped_echo"), ("gyroscope", "digital_pfvp"), ("damped_chain_nonuniform", None),
])
def test_derive_reports_routes(name, default):
    runner = CliRunner()
    import json

    result = runner.invoke(main, ["derive", str(EXAMPLES / f"{name}.py"), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["default_route"] == default
    routes = {r["route"]: r for r in report["learning_routes"]}
    assert set(routes) == {"echo", "flipped_echo", "digital_pfvp", "bptt", "naive_echo"}
    assert routes["bptt"]["exact"] and not routes["bptt"]["forward_only"]
    assert not routes["digital_pfvp"]["forward_only"]
    assert routes["echo"]["forward_only"] and routes["flipped_echo"]["forward_only"]
    text = runner.invoke(main, ["derive", str(EXAMPLES / f"{name}.py")]).output
    assert "learning routes" in text and "digital_pfvp [not forward-only]: " in text


def test_naive_echo_is_refused_where_it_would_be_the_echo():
    """A model even in v and undamped (the harmonic oscillator, or Caldirola-Kanai damping rewritten): the naive
    echo would be the exact echo, so it is refused in one line, as on array models and stacks; derive says so."""
    import json

    runner = CliRunner()
    for name in ("harmonic_oscillator", "damped_oscillator"):
        path = str(EXAMPLES / f"{name}.py")
        res = runner.invoke(main, ["check", path, "--steps", "50", "--naive-echo"])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert "the plain echo is exact" in res.output and "--naive-echo" in res.output
        routes = {r["route"]: r for r in json.loads(runner.invoke(main, ["derive", path, "--format", "json"]).output)[
            "learning_routes"]}
        assert not routes["naive_echo"]["available"] and "same run" in routes["naive_echo"]["why"]


def test_damping_on_one_coordinate_only_is_named_as_such():
    """A pendulum on a cart damped at the pivot only (R = b θ̇²/2): the rate read at x is 0, and the verdict
    says R acts on θ and not on x, not 'dR/dθ̇ is not 0 times the momentum' (new-user probe); a rate that
    differs between two damped coordinates names where it was read."""
    from symglep.dissipation import uniform_rate

    x, th = sp.symbols("x th")
    xd, thd = sp.symbols("x_dot th_dot")
    L = 2 * xd**2 / 2 + xd * thd * sp.cos(th) + thd**2 / 2 + sp.cos(th)
    verdict = uniform_rate(L, thd**2 / 2, [xd, thd], sp.Symbol("t"), [x, th, xd, thd], {})
    assert not verdict.rewritable
    assert verdict.why == "R acts on th_dot but not on x_dot: damping that acts on some coordinates only is not uniform"
    verdict = uniform_rate(xd**2 / 2 + thd**2 / 2, xd**2 / 2 + 3 * thd**2 / 2, [xd, thd], sp.Symbol("t"),
                           [x, th, xd, thd], {})
    assert verdict.why.startswith("dR/dth_dot is not 1 times the momentum dL/dth_dot (the rate read at x_dot)")


def test_a_long_damped_run_is_named_anti_damped_not_unstable():
    """Uniform damping with a learned rate, γ = 1.2 over T = 20 (new-user probe): the canonical momentum
    e^{γt} m v grows 2.6e10-fold while the motion decays, so check's growth warning judges e^{−γT} p_T
    and says nothing; the anti-damping warning names e^{γT}, the factor the echo amplifies round-off by."""
    from symglep.check import anti_damping_warning, damping_rate_at, growth_warning

    x = dynamicsymbols("x")
    m, k, g = sp.symbols("m k gamma", positive=True)
    model = symglep.Model(lagrangian=m * x.diff() ** 2 / 2 - k * x**2 / 2, coordinates=[x], parameters=[m, k, g],
                          dissipation=g * m * x.diff() ** 2 / 2, name="damped_learned")
    assert damping_rate_at(model, [1.0, 1.0, 1.2]) == pytest.approx(1.2, abs=0)
    # a factor e^{γt} written into L itself (examples/damped_oscillator.py, γ = 0.1) is read too; a drive is not
    assert damping_rate_at(symglep.load_model(str(EXAMPLES / "damped_oscillator.py")), [1.0, 1.0]) == pytest.approx(0.1)
    t = dynamicsymbols._t
    driven = symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * x**2 / 2 * (1 + sp.cos(t) / 2), coordinates=[x],
                           parameters=[k], name="driven")
    assert damping_rate_at(driven, [1.0]) == 0.0
    q0, p0 = np.array([[1.0]]), np.array([[0.0]])
    qT, pT = np.array([[1e-5]]), np.array([[3e4 * np.exp(1.2 * 20)]])  # physical m v ~ 3e4: a real blow-up
    assert growth_warning(model, q0, p0, qT, pT / 3e4, True, gamma=1.2, T=20.0) == []
    assert "unstable" in growth_warning(model, q0, p0, qT, pT, True, gamma=1.2, T=20.0)[0]
    warning = anti_damping_warning(1.2, 20.0)[0]
    assert "anti-damped" in warning and "2.6e+10" in warning
    assert anti_damping_warning(0.1, 20.0) == [] and anti_damping_warning(0.0, 1e3) == []


def test_the_rewrite_note_names_the_models_rate():
    """The note said exp(gamma*t) whatever the rate was called (new-user probe: a rate g)."""
    from symglep.dissipation import rewrite_note

    x = dynamicsymbols("x")
    g, m = sp.symbols("g m", positive=True)
    model = symglep.Model(m * x.diff() ** 2 / 2 - x**2 / 2, [x], [m, g], dissipation=g * m * x.diff() ** 2 / 2)
    notes = " ".join(symglep.derive(model, simplify="none").notes)
    assert "exp(g*t)*L" in notes and "exp(-g*t)" in notes and "gamma" not in notes
    assert "exp((2*g)*t)" in rewrite_note(2 * g)


def test_a_dashpot_between_two_masses_is_refused_with_its_reason():
    """R = c (ẋ1 − ẋ2)²/2 is linear damping but not one rate times the momentum; the message said only that
    'the damping rate ... depends on x1_dot, x2_dot' (new-user probe)."""
    x1, x2 = dynamicsymbols("x1 x2")
    c, m = sp.symbols("c m", positive=True)
    model = symglep.Model(m * (x1.diff() ** 2 + x2.diff() ** 2) / 2 - (x1**2 + x2**2) / 2, [x1, x2], [m],
                          constants={c: 0.2}, dissipation=c * (x1.diff() - x2.diff()) ** 2 / 2)
    assert not model.rayleigh.rewritable
    assert model.rayleigh.why.startswith("dR/dv is not one rate times the momentum dL/dv: their ratio")


def test_a_kept_rayleigh_force_is_named_in_the_equations_and_the_verdict(nonuniform):
    """derive of a model whose Rayleigh force stays a force: the Euler–Lagrange header, Hamilton's ṗ and the
    time-reversal verdict named L alone ("time-reversible: yes" for damped dynamics; new-user probe)."""
    text = symglep.report.render_text(symglep.derive(symglep.load_model(str(EXAMPLES / "damped_chain_nonuniform.py"))))
    assert "Euler–Lagrange (d/dt ∂L/∂v − ∂L/∂q + ∂R/∂v = 0, R the Rayleigh function):" in text
    assert "p_x0_dot = −∂H/∂x0 − ∂R/∂x0_dot = " in text
    assert "time-reversible (L even in v): yes, but the Rayleigh force is odd in v" in text


def test_train_names_an_anti_damped_echo_as_the_cause(tmp_path):
    """New-user probes: trained at γ = 1.2 over T = 20, the echo amplifies round-off by e^{γT} = 2.6e10 and its
    gradient was 3.6e-2 off BPTT, but train said nothing (the pilot's own prediction was high too), and where it
    warned it blamed "parameters outside their declared signs, a growing free run". It now names the damped part,
    γ, T and e^{γT} (as check does) and points at BPTT; an undamped-enough run and a BPTT run say nothing."""
    from symglep.learners import learner_for
    from symglep.tasks import SineTask
    from symglep.training import anti_damping, train

    t = dynamicsymbols._t
    x, u, y = dynamicsymbols("x u y")
    k, g = sp.symbols("k gamma", positive=True)
    L = sp.exp(g * t) * (x.diff(t) ** 2 / 2 - k * x**2 / 2 + u * x)

    def run(rate, estimator="echo"):
        model = symglep.Model(L, [x], [k], inputs=[u], targets=[y], cost=(x - y) ** 2 / 2, constants={g: rate},
                              name=f"damped_{str(rate).replace('.', '_')}")
        return train(model, SineTask(sequences=4, steps=400), epochs=1, seed=0, estimator=estimator,
                     cache=str(tmp_path))

    fast = run(1.2)
    said = [w for w in fast.warnings if "anti-damped" in w]
    assert len(said) == 1 and "gamma = 1.2 over T = 20" in said[0] and "e^(gamma T) = 2.6e+10" in said[0], fast.warnings
    assert "--estimator bptt" in said[0] and "declared signs" not in said[0]
    assert not any("anti-damped" in w for w in run(1.2, "bptt").warnings)
    assert not any("anti-damped" in w for w in run(0.3).warnings)  # e^{6} = 403: below the 1e6 of check's warning
    # the learners read a rate where it lives: a learned array parameter, a stack unit's
    net = symglep.load_system(str(EXAMPLES / "network_learned_damping.py"))
    learner = learner_for(net, symglep.compile(net, cache=str(tmp_path), jit=False), size=4)
    theta = learner.flat(learner.draw(np.random.default_rng(0)))
    theta[learner.names.index("gamma")] = 0.9
    assert learner.damping_rates(theta) == [("the model", 0.9)]
    assert "e^(gamma T) = 6.6e+07" in anti_damping(learner, [theta], 20.0)
    assert anti_damping(learner, [theta], 10.0) is None  # e^9 = 8.1e3


def test_the_rate_of_e_gamma_t_is_found_beside_a_drive():
    """L = e^{γt}(ẋ²/2 − kx²/2 + A x cos(ωt)) with γ learnable: ∂L/∂t / L reads t through the drive, so the rate
    was not found; check then called the decaying run 'unstable' (its canonical momentum grows as e^{γT}) and gave
    no anti-damping warning (new-user probe). The factor e^{γt} is read off L's product form."""
    from symglep.dissipation import caldirola_kanai_rate, damping_rate_at

    x = dynamicsymbols("x")
    t = dynamicsymbols._t
    k, gam, A = sp.symbols("k gamma A", positive=True)
    w = sp.Symbol("omega", positive=True)
    drive = sp.exp(gam * t) * (x.diff() ** 2 / 2 - k * x ** 2 / 2 + A * x * sp.cos(w * t))
    model = symglep.Model(drive, [x], parameters=[k, gam, A], constants={w: 2.0})
    assert caldirola_kanai_rate(model) == gam and damping_rate_at(model, [1.0, 1.45, 0.3]) == 1.45
    # no factor e^{γt}: no rate (a time-dependent mass is not Caldirola–Kanai)
    assert caldirola_kanai_rate(symglep.Model((1 + A * sp.cos(w * t)) * x.diff() ** 2 / 2 - k * x ** 2 / 2, [x],
                                              parameters=[k, A], constants={w: 2.0})) is None
    # e^{γt²} is not a uniform rate
    assert caldirola_kanai_rate(symglep.Model(sp.exp(gam * t ** 2) * (x.diff() ** 2 / 2 - k * x ** 2 / 2
                                                                      + A * x * sp.cos(w * t)), [x],
                                              parameters=[k, gam, A], constants={w: 2.0})) is None
