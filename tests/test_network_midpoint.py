"""Array models whose mass reads the unit's position: the implicit midpoint rule (theory §6).

examples/network_beads.py (beads on parabolic wires, ``m_i (1 + κ² x_i²)``) and a model built here
with two-component coordinates whose mass reads both components, uniformly damped
(``R = γ Σ ½ m_i(x_i) |ẋ_i|²``, Caldirola–Kanai, theory §7), with a terminal cost. Checked against an independent
route, the element-by-element scalar model (its own Newton solve and adjoint of the same discrete
Lagrangian): losses and gradients to round-off; then echo vs BPTT, BPTT vs central differences,
velocity starts, the round trip, second order in dt, the reports and the
refusals that remain.
"""

import pathlib

import numpy as np
import pytest
import sympy as sp

import symglep
from symglep.capabilities import NotSupportedError
from symglep.check import rel_err
from symglep.errors import ModelError
from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r
from symglep.network.check import draw_instance
from symglep.network.derive import derive as derive_array
from symglep.network.expand import expand
from symglep.network.runtime import generate_source

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT = 0.02


def beads():
    return symglep.load_model(str(ROOT / "examples" / "network_beads.py"))


def planar():
    """Two-component coordinates with a mass reading both (m_i (1 + a |x_i|² + x_i0 x_i1 / 2): the cross terms
    of d²m/dx dx), springs between neighbours, a learned quartic well, uniform damping γ m_i(x_i) |ẋ_i|²
    (γ times each unit's momentum, Caldirola–Kanai, theory §7) and a terminal cost on the last unit."""
    x, E = Coordinates("x", dim=2), Edges("E", default=lambda n: [(a, a + 1) for a in range(n - 1)])
    m, k = Parameter("m", "n", positive=True, init=(0.8, 1.2)), Parameter("k", "e", positive=True, init=(0.5, 1.5))
    B, u, y = Parameter("B", ("n", "m"), init=(-0.5, 0.5)), Inputs("u"), Targets("y")
    a, w, gamma = sp.symbols("a w gamma", positive=True)
    r2 = x[i, 0] ** 2 + x[i, 1] ** 2
    mass = m[i] * (1 + a * r2 + x[i, 0] * x[i, 1] / 2)
    speed2 = x.dot[i, 0] ** 2 + x.dot[i, 1] ** 2
    return ArrayModel(
        lagrangian=(Sum(mass * speed2 / 2, i) - Sum(w * r2 ** 2 / 4 + r2 / 2, i)
                    - Sum(k[E.e] * ((x[E.src, 0] - x[E.dst, 0]) ** 2 + (x[E.src, 1] - x[E.dst, 1]) ** 2) / 2, E)
                    + Sum(x[i, 0] * (B @ u)[i], i)),
        dissipation=Sum(gamma * mass * speed2 / 2, i),
        cost=Sum((x[r, 0] - y[r]) ** 2 / 2, r), terminal_cost=Sum(2 * (x[r, 1] - y[r]) ** 2, r),
        coordinates=x, parameters=[m, k, B, a, w], inputs=u, targets=y, edges=E,
        constants={gamma: 0.3}, name="planar_beads", size=5, sizes={"m": 1, "r": 1})


MODELS = {"beads": beads, "planar": planar}


@pytest.fixture(scope="module", params=sorted(MODELS))
def system(request):
    model = MODELS[request.param]()
    return model, symglep.compile(model, dt=DT)


def instance(model, kern, n, batch=1, steps=200, seed=0):
    return draw_instance(model, kern, n, batch, steps, DT, np.random.default_rng(seed))


def test_array_midpoint_equals_the_expanded_scalar_model(system):
    """The same discrete Lagrangian written element by element (symglep.Model, its own Newton solve and
    adjoint): the loss and BPTT to round-off, the echo at the same beta to round-off over 2 beta."""
    model, kern = system
    assert kern.module.INTEGRATOR == "midpoint"
    n, K = 3, 40
    skern = symglep.compile(expand(model, n), dt=DT, jit=False)
    assert skern.integrator == "midpoint"
    theta, q0, p0, u, y = instance(model, kern, n, steps=K, seed=4)
    th = kern.prepare(theta, q0, p0, u, y)[0][0]
    bs = skern.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    ba = kern.bptt_gradient(theta, q0, p0, u, y)
    np.testing.assert_allclose(ba.loss, bs.loss, rtol=1e-13)
    assert rel_err(ba.flat[0], bs.dtheta[0]) <= 1e-12
    assert rel_err(np.concatenate([ba.dq0.ravel(), ba.dp0.ravel()]), np.concatenate([bs.dq0[0], bs.dx0[0]])) <= 1e-12
    es = skern.gradient(th, q0, p0=p0, u=u, y=y, beta=1e-1)
    ea = kern.gradient(theta, q0, p0, u, y, beta=1e-1)
    assert rel_err(ea.flat[0], es.dtheta[0]) <= 1e-11
    assert rel_err(np.concatenate([ea.dq0.ravel(), ea.dp0.ravel()]), np.concatenate([es.dq0[0], es.dx0[0]])) <= 1e-11


def test_echo_matches_bptt(system):
    """Centred echo = BPTT of the same midpoint rule to <= 1e-6: parameters, start, inputs (theory §5-6)."""
    model, kern = system
    theta, q0, p0, u, y = instance(model, kern, 12, batch=2, steps=400, seed=1)
    echo = kern.gradient(theta, q0, p0, u, y, beta=1e-4, learn_inputs=True)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=True)
    np.testing.assert_array_equal(echo.loss, bptt.loss)
    for b in range(2):
        assert rel_err(echo.flat[b], bptt.flat[b]) <= 1e-6
        assert rel_err(np.concatenate([echo.dq0[b].ravel(), echo.dp0[b].ravel()]),
                       np.concatenate([bptt.dq0[b].ravel(), bptt.dp0[b].ravel()])) <= 1e-6
        assert rel_err(echo.du[b], bptt.du[b]) <= 1e-6
    one_sided = [rel_err(kern.gradient(theta, q0, p0, u, y, beta=b, centred=False).flat[0], bptt.flat[0])
                 for b in (1e-3, 1e-4)]
    assert 5 < one_sided[0] / one_sided[1] < 20  # O(beta)


def _fd(f, e=1e-4):
    """Fourth-order central difference of f at 0."""
    return (8 * (f(e) - f(-e)) - (f(2 * e) - f(-2 * e))) / (12 * e)


def test_bptt_matches_finite_differences_from_a_velocity_start(system):
    """BPTT from a velocity start (p0 = m(q0) v0: the chain rule through the mass at q0, and the PFVP term of
    every parameter the mass reads) against central differences of the discrete loss: drawn parameter
    entries, q0 and v0."""
    model, kern = system
    theta, q0, v0, u, y = instance(model, kern, 5, steps=150, seed=2)
    bptt = kern.bptt_gradient(theta, q0, v0=v0, u=u, y=y, learn_inputs=True)
    echo = kern.gradient(theta, q0, v0=v0, u=u, y=y, beta=1e-4, learn_inputs=True)
    assert rel_err(np.concatenate([echo.flat[0], echo.dq0.ravel(), echo.dv0.ravel()]),
                   np.concatenate([bptt.flat[0], bptt.dq0.ravel(), bptt.dv0.ravel()])) <= 1e-6
    args, _ = kern.prepare(theta, q0, v0=v0, u=u, y=y)
    th, E = args[0], args[2]
    unpack = lambda t: {k: a[0] for k, a in kern.unpack(t[None], 5, u.shape[2], E.shape[0]).items()}  # noqa: E731
    picks = np.random.default_rng(3).choice(th.size, 6, replace=False)
    fd_th = [_fd(lambda e: kern.free(unpack(th + e * np.eye(th.size)[j]), q0, v0=v0, u=u, y=y)[2][0]) for j in picks]
    assert rel_err(bptt.flat[0, picks], np.array(fd_th)) <= 1e-7
    eye = np.eye(q0.size).reshape((q0.size,) + q0.shape)
    fd_q = [_fd(lambda e: kern.free(theta, q0 + e * d, v0=v0, u=u, y=y)[2][0]) for d in eye]
    fd_v = [_fd(lambda e: kern.free(theta, q0, v0=v0 + e * d, u=u, y=y)[2][0]) for d in eye]
    assert rel_err(bptt.dq0.ravel(), np.array(fd_q)) <= 1e-7
    assert rel_err(bptt.dv0.ravel(), np.array(fd_v)) <= 1e-7
    fd_u = _fd(lambda e: kern.free(theta, q0, v0=v0, u=u + e * (np.arange(u.shape[1]) == 7)[None, :, None],
                                   y=y)[2][0])
    assert abs(bptt.du[0, 7, 0] - fd_u) <= 1e-7 * np.abs(bptt.du).max()


def test_round_trip(system):
    """The un-nudged echo retraces the free run to round-off: each step is solved to round-off (theory §6).
    (The complex-step echo of examples/network_beads.py equals BPTT to round-off: tests/test_complex_step.py.)"""
    model, kern = system
    theta, q0, p0, u, y = instance(model, kern, 8, batch=2, steps=200, seed=5)
    qT, pT, _ = kern.free(theta, q0, p0, u, y)
    sigma, pi, _ = kern.echo(theta, qT, pT, [0.0], u, y)
    assert np.abs(sigma[:, 0] - q0).max() <= 1e-13
    assert np.abs(pi[:, 0] + p0).max() <= 1e-13


def test_a_step_that_does_not_converge_is_a_one_line_error():
    """A step far too long for the iteration to contract (h^2 |d2V/dq2| / m >> 1): NaN in the kernels, one
    NumericalError naming the cause for the caller (the CLI prints it in one line, exit 3)."""
    from symglep.diagnose import NumericalError

    model = beads()
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, u, y = instance(model, kern, 6, steps=20, seed=10)
    with pytest.raises(NumericalError, match="free phase: a midpoint step did not converge"):
        kern.free(theta, q0, p0, u, y, dt=2.5)


def test_second_order_in_dt():
    """The midpoint trajectory converges at second order: halving dt quarters the error at T = 2
    against a run at dt / 64 (undriven beads)."""
    model = beads()
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, _, _ = instance(model, kern, 6, steps=10, seed=6)
    T = 2.0

    def end(dt):
        K = int(round(T / dt))
        return kern.free(theta, q0, p0, np.zeros((1, K + 1, 1)), np.zeros((1, K + 1, 1)), dt=dt)[0][0]

    ref = end(0.1 / 64)
    errors = [np.abs(end(dt) - ref).max() for dt in (0.1, 0.05, 0.025)]
    assert all(3.5 < errors[j] / errors[j + 1] < 4.5 for j in range(2)), errors


def test_energy_is_conserved_undriven():
    """Undriven, the energy m_i(x_i) ẋ²/2 + V is conserved to O(dt²) by the symplectic midpoint rule, with no drift."""
    model = beads()
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, _, _ = instance(model, kern, 6, steps=10, seed=7)
    K = 2000
    zero = np.zeros((1, K + 1, 1))
    _, _, _, tq, tp = kern.free(theta, q0, p0, zero, zero, record=True)
    th, off, E = kern.prepare(theta, q0, p0, zero, zero)[0][:3]
    H = kern.module.energy(th, off, E, tq, tp, zero, DT, 0.0)[0]
    assert np.abs(H - H[0]).max() <= 1e-3 * abs(H[0])
    assert abs(H[-1] - H[0]) <= 3 * np.abs(H[:200] - H[0]).max()  # bounded oscillation, no secular drift


def test_report_and_capabilities():
    """The derivation says why (the mass reads the position: not separable, the midpoint rule), with the
    velocity-squared terms of the Euler–Lagrange equation; the leapfrog refuses with its reason, a stack
    expands it (up to EXPANDED_MAX coordinates)."""
    model = beads()
    d = derive_array(model)
    assert d["separable"] is False and d["integrator"].startswith("implicit midpoint")
    assert "∂m_i/∂x[i]" in d["euler_lagrange"] and "kappa" in d["residuals"]["pfvp"]
    kappa_rule = [r for r in d["learning_rule"] if r["parameter"] == "kappa"][0]
    assert kappa_rule["dL"].startswith("Σ_i ") and "x.dot[i]²" in kappa_rule["dL"]
    caps = model.capabilities
    assert caps.supports("integrator", "midpoint") and caps.supports("estimator", "echo-complex")
    # JAX: tests/test_jax_array.py (echo VJP = autodiff = Numba); C: tests/test_network_c.py (C = Numba)
    assert caps.supports("target", "jax") and caps.supports("target", "c")
    for area, name, words in (("integrator", "leapfrog", "not separable"),):
        with pytest.raises(NotSupportedError, match=words):
            caps.require(area, name)
    # in a stack it runs expanded element by element (the scalar midpoint unit; tests/test_stack_midpoint.py)
    stack = symglep.Stack([model, beads()], readouts=["all"])
    assert stack.expanded == [0, 1] and stack.integrators == ["midpoint", "midpoint"] and stack.arrays == [None, None]
    big = beads()
    big.size = 20
    with pytest.raises(ModelError, match="mass reads its position, so L is not separable.*at most 16 coordinates"):
        symglep.Stack([big, beads()], readouts=["all"])
    assert symglep.load_model(str(ROOT / "examples" / "network_hru.py")).capabilities.supports("integrator", "midpoint")


def test_a_position_dependent_rayleigh_rate_must_be_uniform():
    """Damping rho_i(x_i) = gamma m_i(x_i) is uniform (served); another rho that reads x_i is refused."""
    x, u, y = Coordinates("x"), Inputs("u"), Targets("y")
    m = Parameter("m", "n", positive=True)
    mass = m[i] * (1 + x[i] ** 2)
    kw = dict(cost=Sum((x[r] - y[r]) ** 2 / 2, r), coordinates=x, parameters=[m], inputs=u, targets=y)
    lagrangian = Sum(mass * x.dot[i] ** 2 / 2, i) - Sum(x[i] ** 2 / 2, i)
    assert ArrayModel(lagrangian, dissipation=Sum(mass * x.dot[i] ** 2 / 5, i), **kw).damping_rate == pytest.approx(0.4)
    with pytest.raises(ModelError, match="differs between units"):
        ArrayModel(lagrangian, dissipation=Sum(m[i] * (1 + 2 * x[i] ** 2) * x.dot[i] ** 2 / 2, i), **kw)


def test_generated_files_are_up_to_date():
    """generated/network_beads/{numba,c} hold what `symglep generate` writes today (jax: test_jax_array.py)."""
    from symglep.network.render_c import generate_network_c

    model = beads()
    hint = "regenerate with: symglep generate examples/network_beads.py --target {} --out generated"
    committed = ROOT / "generated" / model.name / "numba" / "kernels.py"
    assert committed.read_text(encoding="utf-8") == generate_source(model), hint.format("numba")
    folder = ROOT / "generated" / model.name / "c"
    files = generate_network_c(model)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files), hint.format("c")
    for name, text in files.items():
        assert (folder / name).read_text(encoding="utf-8") == text, hint.format("c")


def test_a_separable_array_model_takes_the_midpoint_rule_on_request(tmp_path):
    """integrator="midpoint" on the HRU network (a projection through A q, learned masses): the same discrete
    Lagrangian as the expanded scalar model run with its midpoint rule (BPTT to round-off), the echo = BPTT,
    and the command line's check, generate (numba, c, jax) and refusals follow the option."""
    from click.testing import CliRunner

    from symglep.cli import main

    model = symglep.load_model(str(ROOT / "examples" / "network_hru.py"))
    kern = symglep.compile(model, dt=DT, integrator="midpoint")
    assert kern.module.INTEGRATOR == "midpoint"
    n = 3
    skern = symglep.compile(expand(model, n), dt=DT, jit=False, integrator="midpoint")
    theta, q0, p0, u, y = instance(model, kern, n, steps=30, seed=8)
    th = kern.prepare(theta, q0, p0, u, y)[0][0]
    bs = skern.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    ba = kern.bptt_gradient(theta, q0, p0, u, y)
    np.testing.assert_allclose(ba.loss, bs.loss, rtol=1e-13)
    assert rel_err(ba.flat[0], bs.dtheta[0]) <= 1e-12
    theta, q0, p0, u, y = instance(model, kern, 10, steps=300, seed=9)
    echo, bptt = kern.gradient(theta, q0, p0, u, y, beta=1e-4), kern.bptt_gradient(theta, q0, p0, u, y)
    assert rel_err(echo.flat[0], bptt.flat[0]) <= 1e-6
    assert rel_err(bptt.flat[0], symglep.compile(model, dt=DT).bptt_gradient(theta, q0, p0, u, y).flat[0]) > 1e-6

    path = str(ROOT / "examples" / "network_hru.py")
    result = CliRunner().invoke(main, ["check", path, "--integrator", "midpoint", "--size", "6", "--steps", "200"])
    assert result.exit_code == 0 and ": midpoint, K = 200" in result.output, result.output
    for target, name in (("numba", "kernels.py"), ("jax", "kernels.py"), ("c", "network_hru.h")):
        result = CliRunner().invoke(main, ["generate", path, "--integrator", "midpoint", "--target", target,
                                           "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "midpoint" in (tmp_path / "network_hru" / target / name).read_text().split("\n", 5)[3]
    result = CliRunner().invoke(main, ["generate", str(ROOT / "examples" / "network_beads.py"), "--integrator",
                                       "leapfrog", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not separable" in result.output
