"""The Richardson contrast (echo4: echoes at ±β and ±2β in one pass, O(β⁴) bias, theory §5)
against BPTT of the same discrete integrator, on every bundled example with an exact route."""

import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

import symglep
from symglep.check import rel_err
from symglep.cli import main
from symglep.errors import SymglepError
from symglep.network.check import draw_instance

from instances import exact_route_kernels, scalar_instance

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
BETA = 1e-3
TOL = 1e-9
# dC/du: each u_k enters one step, so its contrast is a difference of O(h) quantities and its
# round-off floor is higher (damped_chain: 1.0e-9 at beta = 1e-3, 1.8e-9 at 2.5e-4 -- rising as
# beta falls, so round-off, not bias; the O(beta^4) bias is already below it).
TOL_DU = 1e-8
# Two examples whose round-off floor at beta = 1e-3 lies above 1e-9 (the error RISES as beta falls,
# so it is cancellation, not the O(beta^4) bias): double_pendulum (midpoint, Newton to 1e-13):
# dtheta 2.5e-10 / 3.9e-10 / 1.8e-9 / 1.4e-9 / 5.7e-9 at beta = 4e-3 / 2e-3 / 1e-3 / 5e-4 / 2.5e-4;
# harmonic_oscillator_terminal (a small dC/dp0): dx0 1.4e-10 / 8.3e-10 / 3.3e-9 / 1.3e-8 / 2.3e-8.
# They are measured at beta = 4e-3, where the fourth-order contrast is still far below 1e-9.
BETA_FOR = {"double_pendulum": 4e-3, "harmonic_oscillator_terminal": 4e-3}
DT = 0.01
STEPS = 300


def _scalar_examples():
    names = []
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text()
        if "symglep.Model(" in text and "\nmodel = " in text:
            names.append(path.stem)
    return names


@pytest.mark.parametrize("name", _scalar_examples())
def test_echo4_meets_bptt_to_round_off(name):
    kern, route = exact_route_kernels(str(EXAMPLES / f"{name}.py"), name, DT)
    th, q0, p0, u, y = scalar_instance(kern, name, 1, STEPS, DT)
    ref = kern.bptt_gradient(th, q0, p0=p0, u=u, y=y)
    beta = BETA_FOR.get(name, BETA)
    four = kern.gradient(th, q0, p0=p0, u=u, y=y, beta=beta, order=4, learn_inputs=True, route=route)
    two = kern.gradient(th, q0, p0=p0, u=u, y=y, beta=beta, order=2, learn_inputs=True, route=route)
    for what in ("dtheta", "dq0", "dx0", "du"):
        err4 = rel_err(getattr(four, what), getattr(ref, what))
        assert err4 <= (TOL_DU if what == "du" else TOL), f"{name} ({route}): echo4 vs BPTT {what} {err4:.2e}"
    # where the centred contrast's beta^2 bias stands above round-off, the fourth-order one removes it
    err2 = rel_err(two.dtheta, ref.dtheta)
    assert rel_err(four.dtheta, ref.dtheta) <= max(err2 / 100, 1e-10)


def test_echo4_on_an_array_model():
    model = symglep.load_model(str(EXAMPLES / "network_hru.py"))
    kern = symglep.compile(model, dt=DT)
    theta, q0, p0, u, y = draw_instance(model, kern, 6, 2, STEPS, DT, np.random.default_rng(4))
    ref = kern.bptt_gradient(theta, q0, p0, u, y, learn_inputs=True)
    four = kern.gradient(theta, q0, p0, u, y, beta=BETA, order=4, learn_inputs=True)
    for what in ("flat", "dq0", "dp0", "du"):
        err = rel_err(getattr(four, what), getattr(ref, what))
        assert err <= (TOL_DU if what == "du" else TOL), f"network_hru: echo4 vs BPTT {what} {err:.2e}"


def test_order_is_checked():
    kern = symglep.compile(symglep.load_model(str(EXAMPLES / "harmonic_oscillator.py")))
    with pytest.raises(SymglepError, match="order must be 1"):
        kern.gradient([1.0, 1.0], [[0.1]], p0=[[0.0]], steps=3, order=3)


def test_train_with_echo4_from_the_cli(tmp_path):
    out = tmp_path / "run.json"
    result = CliRunner().invoke(main, ["train", str(EXAMPLES / "harmonic_oscillator.py"), "--epochs", "3",
                                       "--estimator", "echo4", "--beta", "1e-3", "--save", str(out)])
    assert result.exit_code == 0, result.output
    stack = CliRunner().invoke(main, ["train", str(EXAMPLES / "stack_chain_hru.py"), "--epochs", "1",
                                      "--estimator", "echo4"])
    assert stack.exit_code != 0 and "not built yet for stacks" in stack.output
