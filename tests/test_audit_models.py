"""Models a new user writes that broke the tool (audit of unseen scalar model files).

Kinks in the potential (``Max``, ``Abs``), ``residuals`` of a singular Lagrangian, training a model whose
exact route is the flipped echo or digital PFVP, and the built-in tasks of a model with a running and a
final-time target. The kernels run as plain Python (``jit=False``): no compiling.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.cli import main
from symglep.discrete import discretise
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
    """It was ``internal error: NonInvertibleMatrixError`` (an LU solve of the mass matrix in the boundary analysis)."""
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


@pytest.mark.parametrize("integrator", ["leapfrog", "midpoint"])
def test_parameters_named_like_the_kernels_internal_symbols(integrator, tmp_path):
    """Parameters called beta, h, lam0, mu0, g0, dq0, qa0 (new-user probe: a parameter named beta became the
    nudge in the adjoint's force VJP, lam0 an adjoint entry, and BPTT was 1.1 to 100x off while check's
    echo passed): every internal symbol of the scheme avoids the model's names, and BPTT = central
    differences, echo = BPTT."""
    x, z = dynamicsymbols("x z")
    u, y = dynamicsymbols("u y")
    names = sp.symbols("beta h lam0 mu0 g0 dq0 qa0", positive=True)
    beta, h, lam0, mu0, g0, dq0, qa0 = names
    lagrangian = ((1 + g0 / 10) * x.diff() ** 2 / 2 + z.diff() ** 2 / 2 - beta * x**2 / 2 - h * z**2 / 2
                  - lam0 * (x - z) ** 2 / 2 - mu0 * x**4 / 8 + dq0 * u * x + qa0 * x * z / 4)
    model = symglep.Model(lagrangian=lagrangian, coordinates=[x, z], parameters=list(names), inputs=[u],
                          targets=[y], cost=(z - y) ** 2 / 2, name="internal_names")
    scheme = discretise(symglep.derive(model, simplify="none"), integrator)
    mine = {s.name for s in names}
    for fn in scheme.functions:
        for arg, symbols in fn.args:
            if arg != "th":
                assert not {str(s) for s in symbols} & mine, (fn.name, arg)
    kern = symglep.compile(model, cache=str(tmp_path), jit=False, integrator=integrator)
    th = np.array([0.8, 1.1, 0.6, 0.5, 0.3, 0.9, 0.4])
    K = 120
    t = np.arange(K + 1) * 0.01
    args = dict(p0=[[0.2, -0.1]], u=np.sin(3 * t)[None, :, None], y=(0.3 * np.cos(2 * t))[None, :, None], dt=0.02)
    q0 = [[0.4, -0.3]]
    bptt = kern.bptt_gradient(th, q0, **args).dtheta_total
    echo = kern.gradient(th, q0, beta=1e-4, order=4, **args).dtheta_total
    eps = 1e-6
    fd = [(kern.free(th + eps * e, q0, **args)[2][0] - kern.free(th - eps * e, q0, **args)[2][0]) / (2 * eps)
          for e in np.eye(len(th))]
    np.testing.assert_allclose(bptt, fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(echo, bptt, rtol=1e-6, atol=1e-10)


def test_functions_without_derivatives_or_printers_are_one_line_errors(tmp_path):
    """Mod and re/im crashed the process inside SymEngine (a segfault, new-user probe); a Bessel function
    derived, then failed in the printer as an internal error. Now: derive refuses a derivative with no closed
    form, generate names the function the target cannot print, and writes nothing."""
    x = dynamicsymbols("x")
    k = sp.Symbol("k", positive=True)
    for bad, name in ((sp.Mod(x, 1) ** 2, "Mod(x, 1)"), (sp.re(x) ** 2, "re(x)")):
        model = symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * x**2 / 2 - bad, coordinates=[x], parameters=[k],
                              name="no_derivative")
        with pytest.raises(symglep.ModelError, match=rf"the derivative of .*{re.escape(name)}.* has no closed form"):
            symglep.derive(model)
    path = tmp_path / "bessel.py"
    path.write_text("import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
                    "x = dynamicsymbols('x'); k = sp.Symbol('k', positive=True)\n"
                    "model = symglep.Model(lagrangian=x.diff()**2/2 - k*sp.besselj(0, x), coordinates=[x], "
                    "parameters=[k], name='bessel')\n")
    for target, label in (("numba", "Numba"), ("c", "C"), ("jax", "JAX")):
        res = CliRunner().invoke(main, ["generate", str(path), "--target", target, "--out", str(tmp_path / "out")])
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert f"the {label} kernels cannot evaluate besselj" in res.output
        assert not (tmp_path / "out").exists()


def test_constants_must_be_finite_and_keep_their_declared_sign():
    """A NaN constant was accepted and the term it multiplied vanished from the generated force (new-user
    probe); a constant declared positive and given -1 was accepted. Scalar and array models refuse both."""
    from symglep.network import ArrayModel, Coordinates, Sum, Targets, i, r

    x = dynamicsymbols("x")
    g = sp.Symbol("g", positive=True)
    for value, message in ((float("nan"), "must be a finite number"), (float("inf"), "must be a finite number"),
                           (-1.0, "contradicts its declaration positive=True")):
        with pytest.raises(symglep.ModelError, match=f"constant g .*{message}"):
            symglep.Model(lagrangian=x.diff() ** 2 / 2 - g * x**2 / 2, coordinates=[x], constants={g: value})
        q = Coordinates("q")
        with pytest.raises(symglep.ModelError, match=f"constant g .*{message}"):
            yy = Targets("y")
            ArrayModel(lagrangian=Sum(q.dot[i] ** 2 / 2, i) - Sum(g * q[i] ** 2 / 2, i), coordinates=q, targets=yy,
                       cost=Sum((q[r] - yy[r]) ** 2 / 2, r), constants={g: value})
    assert symglep.Model(lagrangian=x.diff() ** 2 / 2 - g * x**2 / 2, coordinates=[x], constants={g: 9.81}).constants


def test_a_small_nested_model_derives_without_hanging():
    """Ten nested sines (30 ops, far below the size limit): legendre.tidy's sp.simplify ran for minutes
    (new-user probe); it now gives up after TIDY_SECONDS and keeps the raw form."""
    import time

    x = dynamicsymbols("x")
    k = sp.Symbol("k", positive=True)
    e = x
    for _ in range(10):
        e = sp.sin(e + k)
    model = symglep.Model(lagrangian=x.diff() ** 2 / 2 - e, coordinates=[x], parameters=[k], name="nested")
    started = time.perf_counter()
    d = symglep.derive(model, simplify="none")
    assert time.perf_counter() - started < 60
    assert d.el.mass_matrix == sp.Matrix([[1]]) and d.hamiltonian is not None


def test_unusable_cache_memory_and_time_span_are_one_line_errors(tmp_path, monkeypatch):
    """SYMGLEP_CACHE_DIR naming a file, a run too large for memory, and --dt 1e308 were an internal error,
    an internal MemoryError and a warning with a misleading 'inputs hold a non-finite value' (new-user probe)."""
    from symglep import commands

    # a model of its own: one this process loaded before is served from memory without touching the cache
    path = tmp_path / "cache_probe.py"
    path.write_text("import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
                    "x, u, y = dynamicsymbols('x u y'); k = sp.Symbol('k', positive=True)\n"
                    "model = symglep.Model(lagrangian=x.diff()**2/2 - k*x**2/2 + u*x, coordinates=[x], parameters=[k],"
                    " inputs=[u], targets=[y], cost=(x - y)**2/2, name='cache_probe')\n")
    path = str(path)
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("SYMGLEP_CACHE_DIR", str(afile))
    res = CliRunner().invoke(main, ["check", path, "--steps", "10"])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert f"cannot use the kernel cache folder {afile} (from $SYMGLEP_CACHE_DIR)" in res.output
    res = CliRunner().invoke(main, ["check", path, "--dt", "1e308"])
    assert res.exit_code == 2 and "is not a finite time span" in res.output and res.output.count("\n") == 1

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 745. GiB")

    monkeypatch.setattr(commands, "check", too_big)
    res = CliRunner().invoke(main, ["check", path, "--steps", "99999999999"])
    assert res.exit_code == 2 and res.output.startswith("error: not enough memory for this run"), res.output


def test_a_constant_activation_is_an_expression():
    """activations=[lambda z: 3] gave 'internal error: int has no attribute xreplace' (new-user probe): the
    activation's value is sympified every time it is applied."""
    from symglep import commands

    x, d = dynamicsymbols("x d")
    k = sp.Symbol("k", positive=True)
    a = symglep.Model(lagrangian=x.diff() ** 2 / 2 - k * x**2 / 2 + d * x, coordinates=[x], parameters=[k],
                      inputs=[d], name="a")
    z, e, y = dynamicsymbols("z e y")
    b = symglep.Model(lagrangian=z.diff() ** 2 / 2 - z**2 / 2 + e * z, coordinates=[z], inputs=[e], targets=[y],
                      cost=(z - y) ** 2 / 2, name="b")
    stack = symglep.Stack([a, b], readouts=[[x]], activations=[lambda s: 3], name="constant_glue")
    assert stack.links[0].activation(sp.Symbol("s")) == sp.Integer(3)
    assert "constant_glue" in commands.derive_report(stack, "text")


def test_a_string_lagrangian_and_a_file_without_model_are_named(tmp_path):
    """L = "x**2" was read with a plain symbol x and called 'does not depend on any velocity'; a file with
    systems a and b but no `model` did not say which it holds (new-user probe)."""
    x = dynamicsymbols("x")
    with pytest.raises(symglep.ModelError, match="must be a sympy expression built from the declared symbols, not "
                                                 "a string"):
        symglep.Model(lagrangian="x.diff()**2/2", coordinates=[x])
    path = tmp_path / "two.py"
    path.write_text("from sympy.physics.mechanics import dynamicsymbols\nimport symglep\nx = dynamicsymbols('x')\n"
                    "a = symglep.Model(lagrangian=x.diff()**2/2 - x**2/2, coordinates=[x], name='a')\n"
                    "b = symglep.Model(lagrangian=x.diff()**2/2 - x**4/2, coordinates=[x], name='b')\n")
    res = CliRunner().invoke(main, ["derive", str(path)])
    assert res.exit_code == 2 and f"defines no object named 'model'; it defines a, b: choose one with {path}:NAME" \
        in res.output
