"""Terminal costs and learned initial states: HEB's members of the echo family (theory §10, docs/echo-family.md).

* echo vs BPTT ≤ 1e-6 (float64, centred β = 1e-4) for the parameters AND the initial state
  (q0, p0) on the harmonic oscillator and the oscillator chain with a final-time cost;
* BPTT vs central finite differences of the discrete loss (which includes c_T(q_K));
* the digital PFVP route starts from the kicked, unflipped final state and agrees too;
* the HEB run (``--task target --learn-initial-state --freeze-parameters``): loss down ≥ 100×,
  echo and BPTT loss curves equal to 1e-5 relative at every epoch, save/resume exact;
* a terminal cost with a velocity, a parameter or an input is a one-line error (exit 2 on the CLI).

The three example models are compiled once (shared kernel cache, tests/conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.cli import main
from symglep.errors import ModelError, SymglepError
from symglep.training import train

from conftest import EXAMPLES

HARMONIC = str(EXAMPLES / "harmonic_oscillator_terminal.py")
CHAIN = str(EXAMPLES / "oscillator_chain_terminal.py")
HEB = str(EXAMPLES / "heb_nonlinear_oscillator.py")
K, DT, BETA = 300, 0.01, 1e-4


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module", params=[HARMONIC, CHAIN], ids=["harmonic", "chain"])
def case(request):
    """Kernels and one seeded instance: parameters, start, a drive and targets that vary in time."""
    kern = symglep.compile(symglep.load_model(request.param))
    rng = np.random.default_rng(3)
    t = np.arange(K + 1) * DT
    inst = dict(
        th=rng.uniform(0.5, 1.5, kern.n_theta),
        q0=rng.uniform(-0.4, 0.4, (1, kern.n)),
        p0=rng.uniform(-0.4, 0.4, (1, kern.n)),
        u=np.ascontiguousarray(np.broadcast_to(0.3 * np.sin(1.3 * t)[None, :, None], (1, K + 1, kern.n_u))),
        y=np.ascontiguousarray(0.5 * np.cos(0.7 * t)[None, :, None] + 0.2 * np.arange(kern.n_y)[None, None, :]),
    )
    return kern, inst


def _loss(kern, inst, th=None, q0=None, p0=None):
    th = inst["th"] if th is None else th
    q0 = inst["q0"] if q0 is None else q0
    p0 = inst["p0"] if p0 is None else p0
    return kern.free(th, q0, p0=p0, u=inst["u"], y=inst["y"], dt=DT)[2][0]


def test_loss_adds_the_terminal_cost(case):
    kern, inst = case
    qT, pT, loss, tq, _ = kern.free(inst["th"], inst["q0"], p0=inst["p0"], u=inst["u"], y=inst["y"], dt=DT,
                                    record=True)
    running = np.empty(1)
    h, total = DT, 0.0
    for k in range(K + 1):  # trapezoid running loss (leapfrog, theory §6)
        kern.module.f_cost(tq[0, k], k * h, inst["u"][0, k], inst["y"][0, k], running)
        total += h * (0.5 if k in (0, K) else 1.0) * running[0]
    c_T, kick = np.empty(1), np.empty(kern.n)
    kern.module.f_terminal_cost(qT[0], inst["y"][0, K], c_T)
    kern.module.f_terminal_cost_grad(qT[0], inst["y"][0, K], kick)
    assert c_T[0] > 1e-3 and np.max(np.abs(kick)) > 1e-2  # a real terminal cost and kick on this instance
    assert loss[0] == pytest.approx(total + c_T[0], rel=1e-13)


@pytest.mark.parametrize("route", ["echo", "digital_pfvp"])
def test_echo_matches_bptt_for_parameters_and_initial_state(case, route):
    kern, inst = case
    kw = dict(u=inst["u"], y=inst["y"], dt=DT)
    echo = kern.gradient(inst["th"], inst["q0"], p0=inst["p0"], beta=BETA, route=route, **kw)
    bptt = kern.bptt_gradient(inst["th"], inst["q0"], p0=inst["p0"], **kw)
    assert echo.loss[0] == bptt.loss[0]
    assert rel(echo.dtheta, bptt.dtheta) <= 1e-6
    assert rel(echo.dq0, bptt.dq0) <= 1e-6
    assert rel(echo.dx0, bptt.dx0) <= 1e-6


def test_bptt_matches_central_differences(case):
    kern, inst = case
    bptt = kern.bptt_gradient(inst["th"], inst["q0"], p0=inst["p0"], u=inst["u"], y=inst["y"], dt=DT)
    eps = 1e-6

    def fd(name, x):
        out = np.empty(x.size)
        for i in range(x.size):
            e = np.zeros_like(x)
            e.flat[i] = eps
            out[i] = (_loss(kern, inst, **{name: x + e}) - _loss(kern, inst, **{name: x - e})) / (2 * eps)
        return out

    assert rel(bptt.dtheta[0], fd("th", inst["th"])) <= 1e-7
    assert rel(bptt.dq0[0], fd("q0", inst["q0"])) <= 1e-7
    assert rel(bptt.dx0[0], fd("p0", inst["p0"])) <= 1e-7


# -- HEB: learning the initial state ---------------------------------------------------------------
@pytest.fixture(scope="module")
def heb_runs():
    model = symglep.load_model(HEB)
    return {est: train(model, "target", epochs=100, estimator=est, learn_initial_state=True,
                       freeze_parameters=True) for est in ("echo", "bptt")}


def test_heb_run_reaches_the_target(heb_runs):
    run = heb_runs["echo"]
    assert run.loss_history[0] / run.final_loss >= 100
    start = symglep.load_model(HEB)
    assert run.settings["learn_initial_state"] and run.settings["freeze_parameters"]
    assert set(run.initial_state) == {"q0", "p0"} and len(run.initial_state["q0"]) == start.n


def test_heb_echo_and_bptt_loss_curves_agree(heb_runs):
    echo, bptt = (np.array(heb_runs[e].loss_history) for e in ("echo", "bptt"))
    assert echo.shape == bptt.shape == (100,)
    assert float(np.max(np.abs(echo - bptt) / np.abs(bptt))) <= 1e-5
    assert heb_runs["echo"].parameters == heb_runs["bptt"].parameters  # frozen: the drawn start values


def test_heb_save_and_resume_continue_exactly(heb_runs, tmp_path):
    model = symglep.load_model(HEB)
    path = tmp_path / "heb.json"
    kw = dict(learn_initial_state=True, freeze_parameters=True)
    train(model, "target", epochs=40, save=str(path), **kw)
    saved = json.loads(path.read_text())
    assert set(saved["initial_state"]) == {"q0", "p0"}
    resumed = train(model, "target", epochs=60, resume=str(path), **kw)
    assert resumed.loss_history == heb_runs["echo"].loss_history
    assert resumed.initial_state == heb_runs["echo"].initial_state


def test_heb_cli(tmp_path):
    out = tmp_path / "heb.json"
    res = CliRunner().invoke(main, ["train", HEB, "--task", "target", "--learn-initial-state",
                                    "--freeze-parameters", "--epochs", "100", "--quiet", "--save", str(out)])
    assert res.exit_code == 0, res.output
    assert "(fixed)" in res.output and "q0 = [" in res.output and "p0 = [" in res.output
    ratio = float(res.output.split("(x")[1].split(" lower")[0])
    assert ratio >= 100
    assert "initial_state" in json.loads(out.read_text())


def test_learning_parameters_and_start_together_lowers_the_loss():
    run = train(symglep.load_model(HEB), "target", epochs=30, learn_initial_state=True)
    assert run.final_loss < run.loss_history[0] / 10
    assert run.parameters != train(symglep.load_model(HEB), "target", epochs=0).parameters


# -- bad input ----------------------------------------------------------------------------------------
def _declare(terminal):
    x = dynamicsymbols("x")
    u, y = dynamicsymbols("u y")
    k = sp.Symbol("k", positive=True)
    return symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * x**2 / 2 + x * u, coordinates=[x], parameters=[k],
                         inputs=[u], targets=[y], terminal_cost=terminal(x, u, y, k))


@pytest.mark.parametrize("terminal, fragment", [
    (lambda x, u, y, k: x.diff() ** 2, "the terminal cost depends on the velocity x_dot"),
    (lambda x, u, y, k: k * (x - y) ** 2, "the terminal cost depends on the parameter k"),
    (lambda x, u, y, k: (x - u) ** 2, "the terminal cost depends on the input u"),
    (lambda x, u, y, k: sp.Symbol("s") * x, "symbol s in the terminal cost is not declared"),
])
def test_bad_terminal_cost_is_a_one_line_model_error(terminal, fragment):
    with pytest.raises(ModelError, match=fragment) as err:
        _declare(terminal)
    assert "\n" not in str(err.value)


def test_bad_terminal_cost_on_the_cli_exits_2(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(
        "import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
        "x = dynamicsymbols('x')\nk = sp.Symbol('k', positive=True)\n"
        "model = symglep.Model(lagrangian=x.diff()**2/2 - k*x**2/2, coordinates=[x], parameters=[k],\n"
        "                      terminal_cost=x.diff()**2)\n")
    for command in (["derive", str(path)], ["train", str(path), "--task", "target", "--quiet"]):
        res = CliRunner().invoke(main, command)
        assert res.exit_code == 2, res.output
        assert "terminal cost depends on the velocity x_dot" in res.output
        assert res.output.count("\n") == 1 and "Traceback" not in res.output


@pytest.mark.parametrize("args, fragment", [
    (["--freeze-parameters"], "nothing to learn"),
    (["--learn-initial-state", "--scheduler", "tcp://127.0.0.1:1"], "runs on this machine only"),
])
def test_bad_training_options(args, fragment):
    res = CliRunner().invoke(main, ["train", HEB, "--task", "target", "--quiet", "--epochs", "1", *args])
    assert res.exit_code == 2 and fragment in res.output, res.output
    assert res.output.count("\n") == 1


def test_target_task_needs_a_terminal_cost():
    with pytest.raises(SymglepError, match="needs a terminal cost"):
        train(symglep.load_model(str(EXAMPLES / "harmonic_oscillator.py")), "target", epochs=1)


def test_a_running_cost_that_reads_a_parameter_says_how_to_write_it():
    """New-user probe: a pendulum's cost on the bob's position x = l sin(theta) reads the learned length l; the
    refusal now says to write the cost in the coordinates or make l a constant."""
    th, y = dynamicsymbols("theta y")
    length = sp.Symbol("l", positive=True)
    with pytest.raises(ModelError, match=r"the cost depends on the parameter l; .* write the cost in the coordinates "
                                         r"\(an angle rather than a position that reads l\), or make l a constant"):
        symglep.Model(lagrangian=length**2 * th.diff() ** 2 / 2 + length * sp.cos(th), coordinates=[th],
                      parameters=[length], targets=[y], cost=(length * sp.sin(th) - y) ** 2 / 2)
