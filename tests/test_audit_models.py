"""Models a new user writes that broke the tool (audit of unseen scalar model files).

Kinks in the potential (``Max``, ``Abs``), ``residuals`` of a singular Lagrangian, training a model whose
exact route is the flipped echo or digital PFVP, and the built-in tasks of a model with a running and a
final-time target. The kernels run as plain Python (``jit=False``): no compiling.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.cli import main
from symglep.learners import learner_for
from symglep.runtime import NoExactRouteError
from symglep.tasks import TargetTask, readout_map, sine_task, target_task

from conftest import EXAMPLES


def _wall_model():
    x = dynamicsymbols("x")
    u, y = dynamicsymbols("u y")
    k, kw = sp.symbols("k kw", positive=True)
    lagrangian = (x.diff() ** 2 / 2 - k * x**2 / 2 - kw * sp.Max(0, x - sp.Rational(1, 10)) ** 2 / 2
                  - sp.Abs(x) ** 3 / 3 + u * x)
    return symglep.Model(lagrangian=lagrangian, coordinates=[x], parameters=[k, kw], inputs=[u], targets=[y],
                         cost=(x - y) ** 2 / 2, name="audit_wall")


def test_kinks_are_differentiated_almost_everywhere(tmp_path):
    """SymEngine left d Max(0, x)/dv unevaluated (read as det M ≡ 0: "no integrator applies") and SymPy
    wrote d|x|/dx with re(x), im(x) (no kernel printer prints them): both are now Piecewise."""
    model = _wall_model()
    d = symglep.derive(model, simplify="none")
    assert d.legendre_regular
    assert d.el.mass_matrix == sp.Matrix([[1]])
    for expr in (*d.el.forcing, *d.learning_rule.values()):
        assert not expr.has(sp.Derivative, sp.re, sp.im, sp.DiracDelta)
    kern = symglep.compile(model, cache=str(tmp_path), jit=False)
    K = 150
    t = np.arange(K + 1) * 0.01
    u = 0.8 * np.sin(3 * t)[None, :, None]
    y = 0.2 * np.cos(2 * t)[None, :, None]
    args = dict(p0=[[0.9]], u=u, y=y)  # runs past the wall at x = 0.1 and through x = 0
    echo = kern.gradient([1.0, 2.0], [[0.05]], beta=1e-5, **args)
    bptt = kern.bptt_gradient([1.0, 2.0], [[0.05]], **args)
    assert abs(bptt.dtheta_total[1]) > 1e-3  # the wall was hit
    np.testing.assert_allclose(echo.dtheta_total, bptt.dtheta_total, rtol=1e-6)


def _singular_model_file(tmp_path):
    path = tmp_path / "singular.py"
    path.write_text(
        "import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
        "x, z = dynamicsymbols('x z'); u, y = dynamicsymbols('u y'); k = sp.Symbol('k')\n"
        "model = symglep.Model(lagrangian=(x.diff() + z.diff())**2/2 - k*(x**2 + z**2)/2 + u*x,\n"
        "    coordinates=[x, z], parameters=[k], inputs=[u], targets=[y], cost=(x - y)**2/2, name='singular')\n")
    return str(path)


def test_residuals_of_a_singular_lagrangian_is_one_line(tmp_path):
    """It was ``internal error: NonInvertibleMatrixError`` (boundary.fixed_momentum's LU solve)."""
    res = CliRunner().invoke(main, ["residuals", _singular_model_file(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "singular" in res.output and res.output.count("\n") == 1 and "Traceback" not in res.output


@pytest.mark.parametrize("example, route", [("charged_particle", "flipped_echo"), ("gyroscope", "digital_pfvp")])
def test_training_takes_the_exact_route_of_a_model_without_time_reversal(example, route, tmp_path):
    """``symglep train`` refused the default echo estimator on these models (it asked the kernels for the
    plain echo), although their exact route is what the gradient calls take by default."""
    model = symglep.load_model(str(EXAMPLES / f"{example}.py"))
    kern = symglep.compile(model, cache=str(tmp_path), jit=False)
    learner = learner_for(model, kern)
    learner.require_estimator("echo")  # no longer refused
    rng = np.random.default_rng(0)
    theta = [0.7, 0.9]
    q0, p0 = rng.uniform(-0.3, 0.3, (2, 2)), rng.uniform(-0.3, 0.3, (2, 2))
    u = rng.uniform(-0.5, 0.5, (2, 61, 1))
    y = rng.uniform(-0.3, 0.3, (2, 61, 1))
    echo = learner.gradients("echo", 1e-5, np.array(theta), u, y, q0, p0, False, 0.01)
    bptt = learner.gradients("bptt", None, np.array(theta), u, y, q0, p0, False, 0.01)
    assert kern.gradient(theta, q0, p0=p0, u=u, y=y, beta=1e-5).route == route
    np.testing.assert_allclose(echo[1], bptt[1], rtol=1e-6, atol=1e-12)


def test_training_a_model_with_no_exact_route_names_the_cli_option(tmp_path):
    model = symglep.load_model(str(EXAMPLES / "damped_chain_nonuniform.py"))
    learner = learner_for(model, symglep.compile(model, cache=str(tmp_path), jit=False))
    with pytest.raises(NoExactRouteError, match="--estimator bptt"):
        learner.require_estimator("echo")
    learner.require_estimator("bptt")


def test_built_in_tasks_read_a_running_and_a_final_time_target(tmp_path):
    """examples/oscillator_chain_terminal.py (targets y in the running cost, y_T in the terminal cost)
    could be trained on neither built-in task: each solved every target from one cost only."""
    model = symglep.load_model(str(EXAMPLES / "oscillator_chain_terminal.py"))
    q = np.array([[0.1, 0.2, 0.3, 0.4]])
    both = readout_map(model)(q, np.zeros((1, 1)), np.zeros(1))
    np.testing.assert_allclose(both, [[0.4, 0.4]])  # y = x3 from c, y_T = x3 from c_T
    np.testing.assert_allclose(readout_map(model, model.terminal_cost)(q, np.zeros((1, 1)), np.zeros(1)),
                               [[0.4, 0.4]])
    kern = symglep.compile(model, cache=str(tmp_path), jit=False)
    data, _ = sine_task(model, kern, seed=0)
    assert data.y.shape[2] == 2 and np.all(np.isfinite(data.y))
    data, _ = target_task(model, kern, seed=0, config=TargetTask(steps=40))
    assert np.ptp(data.y[0, :, 1]) == 0           # y_T: the teacher's final x3, constant
    assert np.ptp(data.y[0, :, 0]) > 0            # y: follows the teacher's run
    assert data.y[0, -1, 0] == data.y[0, -1, 1]   # both read x3 at the end
