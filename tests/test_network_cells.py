"""The array-model cells of the capability matrix (issue #16): input gradients dC/du, velocity starts
with the PFVP correction of a learned mass, and terminal costs (theory §3, §5, §10; docs/networks.md).

Each cell: the echo against BPTT of the same leapfrog (≤ 1e-6 relative) and BPTT against central
differences of the discrete loss (≤ 1e-5). Small n, short runs: each network compiles once."""

import json
import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symglep
from symglep.check import rel_err
from symglep.cli import main
from symglep.errors import ModelError, SymglepError
from symglep.network import ArrayModel, Coordinates, Parameter, Sum, Targets, i, j, r
from symglep.network.check import draw_instance
from symglep.network.derive import derive as derive_array
from symglep.network.derive import render as render_array

from instances import terminal_cell

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT = 0.01
N = 6


def terminal_model():
    """Duffing units with learned masses, dense couplings, an input drive, a running and a terminal cost
    (tests/instances.py: the same model, so the same compiled kernels, as tests/test_stack_cells.py)."""
    return terminal_cell(size=N)


@pytest.fixture(scope="module", params=["dense", "hru", "terminal"])
def network(request):
    name = request.param
    model = terminal_model() if name == "terminal" else \
        symglep.load_model(str(ROOT / "examples" / f"network_{name}.py"))
    return name, model, symglep.compile(model, dt=DT)


def instance(model, kern, seed=0, steps=150):
    """A drawn instance with non-zero inputs, targets and momenta, and masses away from 1."""
    rng = np.random.default_rng(seed)
    theta, q0, p0, u, y = draw_instance(model, kern, N, 2, steps, DT, rng)
    if "m" in theta:
        theta["m"] = rng.uniform(0.5, 2.0, theta["m"].shape)
    u = rng.uniform(-1, 1, u.shape)
    y = rng.uniform(-1, 1, y.shape)
    p0 = rng.uniform(-0.3, 0.3, q0.shape)
    return theta, q0, p0, u, y, rng


def central(loss, x, idx, eps=1e-6):
    hi, lo = x.copy(), x.copy()
    hi[idx] += eps
    lo[idx] -= eps
    return (loss(hi) - loss(lo)) / (2 * eps)


def theta_fd(kern, theta, loss, rng, count=8):
    """Central differences of ``loss(theta)`` in ``count`` drawn flat entries: (flat indices, values)."""
    names = list(theta)
    sizes = [np.size(theta[k]) for k in names]
    picks = rng.choice(sum(sizes), size=min(count, sum(sizes)), replace=False)
    out = []
    for flat in picks:
        k = int(np.searchsorted(np.cumsum(sizes), flat, side="right"))
        local = int(flat - sum(sizes[:k]))
        arr = np.asarray(theta[names[k]], dtype=float)

        def at(value, name=names[k], shape=arr.shape):
            return loss({**theta, name: value.reshape(shape)})
        out.append(central(at, arr.ravel().copy(), local))
    return picks, np.array(out)


# -- 1. input gradients dC/du (theory §5) ---------------------------------------------------

def test_input_gradients_echo_bptt_and_finite_differences(network):
    """du = (Gu(+β) − Gu(−β))/2β with Gu = Σ ∂V/∂u_k along the echoes = BPTT's input partials = FD."""
    name, model, kern = network
    theta, q0, p0, u, y, rng = instance(model, kern)
    echo = kern.gradient(theta, q0, p0, u, y, beta=1e-4, learn_inputs=True)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=True)
    assert echo.du.shape == bptt.du.shape == u.shape
    assert np.max(np.abs(bptt.du)) > 1e-4  # the inputs matter
    for b in range(2):
        assert rel_err(echo.du[b].ravel(), bptt.du[b].ravel()) <= 1e-6
    plain = kern.gradient(theta, q0, p0, u, y, beta=1e-4)
    assert plain.du is None and kern.bptt_gradient(theta, q0, p0, u, y).du is None
    np.testing.assert_allclose(plain.flat, echo.flat, rtol=0, atol=1e-12)  # du adds work, changes nothing
    one_sided = kern.gradient(theta, q0, p0, u, y, beta=1e-5, centred=False, learn_inputs=True)
    assert rel_err(one_sided.du[0].ravel(), bptt.du[0].ravel()) <= 1e-3
    K = u.shape[1] - 1
    entries = [(0, 0), (1, 1), (K // 2, 0), (K - 1, 1), (K - 1, 0)]
    fd = [central(lambda uu: kern.free(theta, q0, p0, uu, y)[2][0], u, (0, k, c)) for k, c in entries]
    assert rel_err(np.array([bptt.du[0, k, c] for k, c in entries]), np.array(fd)) <= 1e-5
    assert np.all(bptt.du[:, K] == 0.0)  # u_K only kicks p_K, which no cost reads


# -- 2. velocity starts (theory §3, §5) ------------------------------------------------------

def test_velocity_start_echo_bptt_and_finite_differences(network):
    """p0 = m v0: dC/dv0 = m dC/dp0; with learned masses θ takes (∂p0/∂θ)ᵀ dC/dp0 (the PFVP correction)."""
    name, model, kern = network
    theta, q0, _, u, y, rng = instance(model, kern, seed=1)
    v0 = rng.uniform(-0.5, 0.5, q0.shape)
    echo = kern.gradient(theta, q0, u=u, y=y, v0=v0, beta=1e-4)
    bptt = kern.bptt_gradient(theta, q0, u=u, y=y, v0=v0)
    for b in range(2):
        assert rel_err(echo.flat[b], bptt.flat[b]) <= 1e-6
        assert rel_err(echo.dq0[b], bptt.dq0[b]) <= 1e-6
        assert rel_err(echo.dv0[b], bptt.dv0[b]) <= 1e-6
    assert echo.dv0.shape == q0.shape and kern.gradient(theta, q0, p0=v0, u=u, y=y).dv0 is None
    loss = lambda th: kern.free(th, q0, u=u, y=y, v0=v0)[2][0]  # noqa: E731
    picks, fd = theta_fd(kern, theta, loss, rng)
    assert rel_err(bptt.flat[0, picks], fd) <= 1e-5
    units = [0, 3, N - 1]
    fq = [central(lambda x: kern.free(theta, x, u=u, y=y, v0=v0)[2][0], q0, (0, k)) for k in units]
    fv = [central(lambda x: kern.free(theta, q0, u=u, y=y, v0=x)[2][0], v0, (0, k)) for k in units]
    assert rel_err(bptt.dq0[0, units], np.array(fq)) <= 1e-5
    assert rel_err(bptt.dv0[0, units], np.array(fv)) <= 1e-5


def test_velocity_start_mass_correction_is_needed():
    """Without the correction (the momentum-start gradient at p0 = m v0) the mass gradient is wrong."""
    model = terminal_model()
    kern = symglep.compile(model, dt=DT)
    theta, q0, _, u, y, rng = instance(model, kern, seed=2)
    v0 = rng.uniform(-0.5, 0.5, q0.shape)
    p0 = v0 * theta["m"]
    bptt = kern.bptt_gradient(theta, q0, u=u, y=y, v0=v0)
    momentum = kern.bptt_gradient(theta, q0, p0, u, y)
    assert rel_err(momentum.dtheta["m"][0], bptt.dtheta["m"][0]) > 1e-2
    np.testing.assert_allclose(momentum.dtheta["W"], bptt.dtheta["W"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(bptt.dv0, momentum.dp0 * theta["m"], rtol=1e-14)
    with pytest.raises(SymglepError, match="exactly one of p0"):
        kern.gradient(theta, q0, p0, u, y, v0=v0)
    with pytest.raises(SymglepError, match="exactly one of p0"):
        kern.free(theta, q0, u=u, y=y)


# -- 3. terminal costs (theory §10) ----------------------------------------------------------

def test_terminal_cost_echo_bptt_and_finite_differences():
    """Loss += c_T(q_K); the echo starts from −p_K − β ∂c_T/∂q; BPTT's adjoint from ∂c_T/∂q."""
    model = terminal_model()
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, u, y, rng = instance(model, kern, seed=3)
    echo = kern.gradient(theta, q0, p0, u, y, beta=1e-4, learn_inputs=True)
    bptt = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=True)
    np.testing.assert_array_equal(echo.loss, bptt.loss)
    for b in range(2):
        assert rel_err(echo.flat[b], bptt.flat[b]) <= 1e-6
        assert rel_err(np.concatenate([echo.dq0[b], echo.dp0[b]]), np.concatenate([bptt.dq0[b], bptt.dp0[b]])) <= 1e-6
        assert rel_err(echo.du[b].ravel(), bptt.du[b].ravel()) <= 1e-6
    loss = lambda th: kern.free(th, q0, p0, u, y)[2][0]  # noqa: E731
    picks, fd = theta_fd(kern, theta, loss, rng)
    assert rel_err(bptt.flat[0, picks], fd) <= 1e-5
    units = [0, N - 2, N - 1]  # the last two are read out
    fq = [central(lambda x: kern.free(theta, x, p0, u, y)[2][0], q0, (0, k)) for k in units]
    fp = [central(lambda x: kern.free(theta, q0, x, u, y)[2][0], p0, (0, k)) for k in units]
    assert rel_err(bptt.dq0[0, units], np.array(fq)) <= 1e-5
    assert rel_err(bptt.dp0[0, units], np.array(fp)) <= 1e-5
    # the loss is the trapezoid running loss plus c_T(q_K, y_K) over the readout units
    qT, pT, total, tq, _ = kern.free(theta, q0, p0, u, y, record=True)
    c = (((tq[:, :, -2:] - y) ** 2) / 4).sum(axis=2)
    running = DT * (c.sum(axis=1) - (c[:, 0] + c[:, -1]) / 2)
    np.testing.assert_allclose(total, running + np.log(np.cosh(qT[:, -2:] - y[:, -1])).sum(axis=1), rtol=1e-13)
    sigma, pi, _ = kern.echo(theta, qT, pT, [0.0], u, y)
    np.testing.assert_allclose(sigma[:, 0], q0, atol=1e-10)  # β = 0: no kick, the round trip holds
    np.testing.assert_allclose(pi[:, 0], -p0, atol=1e-10)


def test_terminal_cost_kick_carries_the_whole_gradient_without_running_cost():
    """HEB's setting (theory §10): a zero running cost, all of the gradient from the kick at the flip."""
    q = Coordinates("q")
    W = Parameter("W", ("n", "n"))
    y = Targets("y")
    model = ArrayModel(lagrangian=(Sum(q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2, i)
                                   + Sum(W[i, j] * sp.tanh(q[i]) * sp.tanh(q[j]) / 2, i, j)),
                       cost=Sum(0 * q[r], r), terminal_cost=Sum((q[r] - y[r]) ** 2 / 2, r),
                       coordinates=q, parameters=[W], targets=y, name="network_heb_cell", size=N, sizes={"r": 2})
    kern = symglep.compile(model, dt=DT, jit=False)  # the generated source as Python (compiled: terminal_model)
    rng = np.random.default_rng(4)
    theta = {"W": rng.uniform(-0.5, 0.5, (N, N))}
    q0, p0 = rng.uniform(-0.3, 0.3, (1, N)), rng.uniform(-0.3, 0.3, (1, N))
    y = rng.uniform(-1, 1, (1, 201, 2))
    echo = kern.gradient(theta, q0, p0, y=y, steps=200, beta=1e-4)
    bptt = kern.bptt_gradient(theta, q0, p0, y=y, steps=200)
    assert np.max(np.abs(bptt.flat)) > 1e-3
    assert rel_err(echo.flat[0], bptt.flat[0]) <= 1e-6
    assert rel_err(np.concatenate([echo.dq0[0], echo.dp0[0]]), np.concatenate([bptt.dq0[0], bptt.dp0[0]])) <= 1e-6
    qT, _, loss = kern.free(theta, q0, p0, y=y, steps=200)
    np.testing.assert_allclose(loss, 0.5 * ((qT[:, -2:] - y[:, -1]) ** 2).sum(axis=1), rtol=1e-14)


def test_terminal_cost_in_reports_and_declarations():
    model = terminal_model()
    d = derive_array(model)
    assert "c_T = Σ_r log(cosh(q[r] - y[r]))" in d["terminal_cost"]
    assert "−p_K − β ∂c_T/∂q" in d["residuals"]["pfvp"] and "∂c_T/∂q_i(T)" in d["residuals"]["civp"]
    text = render_array(d, "text")
    assert sum("c_T = Σ_r" in line for line in text.splitlines()) == 1
    json.loads(render_array(d, "json"))
    plain = derive_array(symglep.load_model(str(ROOT / "examples" / "network_dense.py")))
    assert "terminal_cost" not in plain and "c_T" not in json.dumps(plain)
    path = ROOT / "examples" / "network_dense.py"
    for fmt in ("text", "json"):
        out = CliRunner().invoke(main, ["residuals", str(path), "--format", fmt])
        assert out.exit_code == 0 and "c_T" not in out.output
    assert model.capabilities.supports("cost", "terminal") and model.capabilities.supports("start", "velocity")
    q = Coordinates("q")
    W = Parameter("W", ("n", "n"))
    y = Targets("y")
    lag = Sum(q.dot[i] ** 2 / 2, i) - Sum(W[i, j] * q[i] * q[j], i, j)
    with pytest.raises(ModelError, match="terminal cost"):
        ArrayModel(lagrangian=lag, cost=Sum((q[r] - y[r]) ** 2, r), terminal_cost=Sum(W[r, r] * q[r], r),
                   coordinates=q, parameters=[W], targets=y)
    with pytest.raises(ModelError, match="terminal cost"):
        ArrayModel(lagrangian=lag, cost=Sum((q[r] - y[r]) ** 2, r), terminal_cost=(q[0] - y[0]) ** 2,
                   coordinates=q, parameters=[W], targets=y)


def test_check_reports_every_cell_of_an_array_model():
    """``symglep check`` on the network with learned masses, inputs and a terminal cost: the input
    gradient, the velocity start (θ with the masses' PFVP term, dC/dv0) and the terminal loss are
    measured rows, each echo against BPTT within the tolerance; a scale too tight fails each row."""
    from symglep.network.check import render_text, run_check

    model = terminal_model()
    report = run_check(model, steps=150, dt=DT, beta=1e-4, n=N)
    assert report["terminal_cost"] and report["passed"]
    for key in ("rel_err_inputs", "rel_err_velocity_start"):
        assert 0 < report[key] <= 1e-6, (key, report[key])
    text = render_text(report)
    assert "(inputs)" in text and "(v0)" in text and "terminal cost" in text
    assert not report["inputs_gradient_zero"] and "exactly 0" not in text
    # inputs that never reach the cost compare two zeros: the row says so (new-user probe: a bare "ok")
    zero = render_text({**report, "rel_err_inputs": 0.0, "inputs_gradient_zero": True})
    assert "(dC/du; BPTT's dC/du is exactly 0: the inputs never reach the cost; tolerance" in zero
    strict = run_check(model, steps=150, dt=DT, beta=1e-4, n=N, tolerance=1e-16)
    assert not strict["passed"] and text.count(") ok") == 5 and render_text(strict).count(") FAIL") == 4
