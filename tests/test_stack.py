"""Stacks of units (RHEL's deep models, theory §9): the stacked echo against BPTT through the
stack and against finite differences, per layer; training; golden file; bad input."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.stack.codegen import render_stack
from symglep.stack import Stack
from symglep.stack.runtime import compile_stack
from symglep.stack.training import load_stack, sine_data, train_stack

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "stack_chain_hru.py"


@pytest.fixture(scope="module")
def stack():
    return load_stack(str(EXAMPLE))


@pytest.fixture(scope="module")
def kernels(stack):
    return compile_stack(stack, dt=0.05)


@pytest.fixture(scope="module")
def problem(stack, kernels):
    """Two sine sequences of 300 steps at the student's start parameters."""
    x, y, theta, _ = sine_data(stack, kernels, seed=1, sequences=2, steps=300)
    return x, y, theta


def _layers(stack):
    names = [f"unit {i} ({u.name})" for i, u in enumerate(stack.units)] + [f"glue {i}" for i in range(len(stack.links))]
    return list(zip(names, stack.unit_slices() + stack.glue_slices()))


def test_stacked_echo_matches_bptt_per_layer(stack, kernels, problem):
    """Every unit's parameters and every glue's weights: echo vs BPTT through the stack <= 1e-6."""
    x, y, theta = problem
    loss, g, dx, trip = kernels.gradient(theta, x, y, beta=1e-4, learn_inputs=True)
    loss_b, g_b, dx_b = kernels.bptt_gradient(theta, x, y, learn_inputs=True)  # the keywords of gradient (probe)
    np.testing.assert_allclose(loss, loss_b, rtol=1e-13)
    assert np.all(trip < 1e-10), trip  # the un-nudged echoes retrace the free run
    G, GB = g.sum(axis=0), g_b.sum(axis=0)
    for name, sl in _layers(stack):
        scale = np.linalg.norm(GB[sl])
        assert scale > 1e-6, f"{name}: vanishing reference gradient"
        err = np.linalg.norm(G[sl] - GB[sl]) / scale
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
    err_x = np.abs(dx - dx_b).max() / np.abs(dx_b).max()
    assert err_x <= 1e-6, f"input gradient: relative error {err_x:.2e}"


def test_bptt_through_the_stack_matches_finite_differences(kernels, problem):
    """The reference is the gradient of the discrete loss: central differences in every parameter."""
    x, y, theta = problem
    _, g_b, _ = kernels.bptt_gradient(theta, x, y)
    GB = g_b.sum(axis=0)
    eps = 1e-6
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        fd[i] = (kernels.free(theta + e, x, y)[2].sum() - kernels.free(theta - e, x, y)[2].sum()) / (2 * eps)
    assert np.abs(fd - GB).max() <= 1e-7 * np.abs(GB).max()


def test_beta_convergence_is_second_order(kernels, problem):
    """The centred contrast's error falls as beta^2 (theory §5), down to round-off."""
    x, y, theta = problem
    GB = kernels.bptt_gradient(theta, x, y)[1].sum(axis=0)
    errs = [np.abs(kernels.gradient(theta, x, y, beta=b)[1].sum(axis=0) - GB).max() for b in (1e-2, 1e-3)]
    assert errs[1] < errs[0] / 50, errs


def test_stack_kernels_check_dt_and_report_a_diverged_free_pass(kernels, problem):
    """New-user probe: free(dt=nan) and free(dt=50) returned NaN losses without a word."""
    x, y, theta = problem
    with pytest.raises(symglep.SymglepError, match="dt must be a positive number"):
        kernels.free(theta, x, y, dt=np.nan)
    with pytest.raises(symglep.SymglepError, match="the free pass of the stack produced a non-finite value"):
        kernels.free(theta, x, y, dt=50.0)
    with pytest.raises(symglep.SymglepError, match="t0 must be a finite number"):
        kernels.free(theta, x, y, t0=np.nan)
    with pytest.raises(symglep.SymglepError, match="beta must be a finite non-zero number, got '1e-4'"):
        kernels.gradient(theta, x, y, beta="1e-4")
    # a wrong x or q0 is named as such (x with a third sequence blamed the targets; q0 and p0 were named together)
    with pytest.raises(symglep.SymglepError, match=r"the inputs x hold 3 sequence\(s\) of \d+ time nodes, the "
                                                   r"targets y 2 of \d+: they must agree"):
        kernels.free(theta, np.concatenate([x, x[:1]]), y)
    nq = kernels.nq
    with pytest.raises(symglep.SymglepError, match=rf"p0 must have shape \(2, {nq}\) .*, got \(2, {nq + 1}\)"):
        kernels.free(theta, x, y, q0=np.zeros((2, nq)), p0=np.zeros((2, nq + 1)))
    # steps=, as every kind takes it: checked against the inputs (it was an unexpected keyword)
    K = x.shape[1] - 1
    assert np.array_equal(kernels.free(theta, x, y, steps=K)[2], kernels.free(theta, x, y)[2])
    with pytest.raises(symglep.SymglepError, match=rf"steps={K + 1} but the inputs x given have K = {K} steps"):
        kernels.bptt_gradient(theta, x, y, steps=K + 1)
    # parameters by name, as every kind takes them (a dict was a TypeError)
    by_name = dict(zip(kernels.stack.parameter_names, np.ravel(theta)))
    assert np.array_equal(kernels.free(by_name, x, y)[2], kernels.free(theta, x, y)[2])


def test_stack_trains_on_the_sine_task(stack):
    res = train_stack(stack, epochs=60, lr=0.05, steps=200, sequences=4)
    assert res.losses[-1] < 0.7 * res.losses[0], res.losses[::10]
    assert len(res.theta) == len(stack.parameter_names)


def test_generated_stack_kernels_are_up_to_date(stack):
    committed = ROOT / "generated" / stack.name / "numba" / "kernels.py"
    assert committed.read_text(encoding="utf-8") == render_stack(stack), (
        "regenerate: python -m symglep.stack generate examples/stack_chain_hru.py --out generated")


def _units():
    x, u = dynamicsymbols("x u")
    k = sp.Symbol("k", positive=True)
    a = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2 + x * u, [x], [k], inputs=[u], name="a")
    z, v, y = dynamicsymbols("z v y")
    b = symglep.Model(z.diff() ** 2 / 2 - z**2 / 2 + z * v, [z], inputs=[v], targets=[y], cost=(z - y) ** 2 / 2,
                      name="b")
    return a, b, x, z


def _with_terminal_cost(unit):
    z, v, y = dynamicsymbols("z v y")
    return symglep.Model(z.diff() ** 2 / 2 - z**2 / 2 + z * v, [z], inputs=[v], targets=[y], cost=(z - y) ** 2 / 2,
                         terminal_cost=z**2 / 2, name="b_terminal")


def _glue_named(unit):
    """Unit ``b`` of :func:`_units` with a parameter named like the first glue bias (the stack's names would
    shadow it; new-user probe)."""
    z, v, y = dynamicsymbols("z v y")
    clash = sp.Symbol("glue0_b0")
    return symglep.Model(z.diff() ** 2 / 2 - clash * z**2 / 2 + z * v, [z], [clash], inputs=[v], targets=[y],
                         cost=(z - y) ** 2 / 2, name="b")


def _magnetic():
    """A unit odd in the velocities (a magnetic term, flip B -> -B, theory §4)."""
    z, w, v, y = dynamicsymbols("z w v y")
    B = sp.Symbol("B")
    return symglep.Model((z.diff() ** 2 + w.diff() ** 2) / 2 - (z**2 + w**2) / 2 + B * (z * w.diff() - w * z.diff()) / 2
                         + z * v, [z, w], [B], inputs=[v], targets=[y], cost=(z - y) ** 2 / 2, name="magnetic")


def _non_separable():
    x, u = dynamicsymbols("x u")
    return symglep.Model(x.diff() ** 2 * (1 + x**2) / 2 - x**2 / 2 + x * u, [x], inputs=[u], name="nonsep")


@pytest.mark.parametrize("make, message", [
    (lambda a, b, x, z: Stack([a], []), "at least two units"),
    (lambda a, b, x, z: Stack([a, b], [[z]]), "not coordinates of that unit"),
    (lambda a, b, x, z: Stack([a, b], [[x.diff()]]), "velocity"),
    (lambda a, b, x, z: Stack([a, b], [[x], [x]]), "needs 1 readouts"),
    (lambda a, b, x, z: Stack([b, a], [[z]]), "must declare no cost"),
    (lambda a, b, x, z: Stack([a, b], [[x]], activations=["relu"]), "unknown activation"),
    (lambda a, b, x, z: Stack([_non_separable(), b], [[x]], integrator="leapfrog"), "the leapfrog needs L = K"),
    (lambda a, b, x, z: Stack([a, b], [[x]], integrator="verlet"), "unknown integrator"),
    (lambda a, b, x, z: Stack([a, b], [[x]], name="two words"), "must be an identifier"),
    (lambda a, b, x, z: Stack([_with_terminal_cost(b), b], [[z]]), "must declare no cost"),
    (lambda a, b, x, z: Stack([a, _glue_named(b)], [[x]]), r"unit 1 \('b'\) names glue0_b0, a name the stack gives"),
    # the odd term and the unit's own flip are named (new-user probe: only 'is not time-reversible')
    (lambda a, b, x, z: Stack([a, _magnetic()], [[x]]), r"unit 1 \('magnetic'\) is not time-reversible \(odd in the "
     r"velocities: .*B.*\): the stacked echo needs the plain echo of every unit .*; its flip B -> -B serves it alone"),
])
def test_bad_stacks_are_refused(make, message):
    with pytest.raises(symglep.ModelError, match=message):
        make(*_units())


def test_cli_refuses_a_file_without_a_stack(tmp_path):
    bad = tmp_path / "nostack.py"
    bad.write_text("x = 1\n")
    run = subprocess.run([sys.executable, "-m", "symglep.stack", "train", str(bad)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "defines no object named 'model'" in run.stderr


def test_symglep_train_runs_a_stack_file(tmp_path):
    """``symglep train STACK_FILE --task sine`` trains the stack (loader hook) and saves JSON."""
    import json

    from click.testing import CliRunner

    from symglep.cli import main

    save = tmp_path / "stack.json"
    result = CliRunner().invoke(main, ["train", str(EXAMPLE), "--task", "sine", "--epochs", "40", "--quiet",
                                       "--save", str(save)])
    assert result.exit_code == 0, result.output
    saved = json.loads(save.read_text())
    history = saved["loss_history"]
    assert history[-1] < 0.8 * history[0]
    assert len(saved["parameters"]) == 18


@pytest.mark.parametrize("args, message", [
    (["train", "--task", "target"], "the target task needs a terminal cost"),
    (["train", "--task", "data.npz"], "task 'data.npz': no such data file; a task is 'sine'"),
    (["check", "--bc", "civp"], "stack systems: command check --bc is not supported"),
    (["check", "--route", "flipped_echo"], "the stacked echo needs the plain echo of every unit"),
])
def test_stack_files_elsewhere_in_the_cli_fail_in_one_line(args, message):
    from click.testing import CliRunner

    from symglep.cli import main

    result = CliRunner().invoke(main, [args[0], str(EXAMPLE)] + args[1:])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def small_stack():
    """Two units exercising what the example does not: learned masses (the drift's learning term),
    two inputs per unit, nonlinear readouts, a sigmoid glue and a cost that reads the top unit's inputs."""
    x0, x1, d0, d1 = dynamicsymbols("x0 x1 d0 d1")
    m, k = sp.symbols("m k", positive=True)
    g = sp.Symbol("g")
    low = symglep.Model(m * x0.diff() ** 2 / 2 + x1.diff() ** 2 / (2 * m) - x0**2 / 2 - x1**2 / 2
                        - k * (x0 - x1) ** 2 / 2 - x0**4 / 8 + g * x0 * d0 + x1 * d1,
                        [x0, x1], [m, k, g], inputs=[d0, d1], name="low")
    z, v0, v1, y = dynamicsymbols("z v0 v1 y")
    mu = sp.Symbol("mu", positive=True)
    top = symglep.Model(mu * z.diff() ** 2 / 2 - z**2 / 2 - sp.log(sp.cosh(z + v0)) + z * v1, [z], [mu],
                        inputs=[v0, v1], targets=[y], cost=(z - y) ** 2 / 2 + v1**2 / 10, name="top")
    stack = Stack([low, top], readouts=[[x0 * x1, sp.sin(x1), x0]], activations=["sigmoid"], name="small_stack")
    return stack, compile_stack(stack, dt=0.04)


def test_small_stack_echo_matches_bptt_and_finite_differences(small_stack):
    stack, kernels = small_stack
    rng = np.random.default_rng(3)
    theta = stack.draw_parameters(rng)
    K, B = 250, 2
    t = np.arange(K + 1) * 0.04
    x = np.stack([0.6 * np.sin(0.9 * t + 0.3), 0.4 * np.cos(1.3 * t)], axis=-1)[None].repeat(B, axis=0)
    x[1] *= -1.5
    y = 0.2 * np.sin(0.7 * t)[None, :, None].repeat(B, axis=0)
    q0 = rng.normal(0, 0.3, (B, kernels.nq))
    p0 = rng.normal(0, 0.3, (B, kernels.nq))
    loss, g, dx, trip = kernels.gradient(theta, x, y, q0=q0, p0=p0, beta=1e-4, learn_inputs=True)
    loss_b, g_b, dx_b = kernels.bptt_gradient(theta, x, y, q0=q0, p0=p0)
    assert np.all(trip < 1e-10)
    GB = g_b.sum(axis=0)
    for name, sl in _layers(stack):
        err = np.linalg.norm(g.sum(axis=0)[sl] - GB[sl]) / np.linalg.norm(GB[sl])
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
    assert np.abs(dx - dx_b).max() <= 1e-6 * np.abs(dx_b).max()
    eps = 1e-6
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        fd = (kernels.free(theta + e, x, y, q0=q0, p0=p0)[2].sum()
              - kernels.free(theta - e, x, y, q0=q0, p0=p0)[2].sum()) / (2 * eps)
        assert abs(fd - GB[i]) <= 1e-7 * np.abs(GB).max(), stack.parameter_names[i]


def test_the_glue_functions_internal_names_avoid_the_units_coordinates():
    """The glue's VJP named its multipliers lam0, lam1, ... and its readouts r0, r1, ...: a unit whose coordinate
    is lam0 would print 's_lam0 = q[0]; s_lam0 = lam[0]' (the JAX readout's a0 did, new-user probe)."""
    from symglep.stack.codegen import glue_functions

    lam0, u, z, v, y = dynamicsymbols("lam0 u z v y")
    a = symglep.Model(lam0.diff() ** 2 / 2 - lam0**2 / 2 + lam0 * u, [lam0], inputs=[u], name="a")
    b = symglep.Model(z.diff() ** 2 / 2 - z**2 / 2 + z * v, [z], inputs=[v], targets=[y], cost=(z - y) ** 2 / 2,
                      name="b")
    stack = Stack([a, b], [[sp.sin(lam0)]], activations=["tanh"])
    forward, vjp = glue_functions(stack.links[0])
    names = {name: {str(s) for s in symbols} for name, symbols in vjp.args}
    assert names["q"] == {"lam0"} and not names["q"] & names["lam"]


def test_the_complex_step_refusal_of_a_relu_glue_names_the_glue():
    """--estimator echo-complex on a stack with a ReLU glue said '... but forward uses Max', an internal
    function's name (new-user probe); it names glue 0's activation."""
    from symglep.codegen.printer import NotAnalyticError
    from symglep.stack.codegen import render_stack

    a, b, x, z = _units()
    stack = Stack([a, b], [[x]], activations=[lambda s: sp.Max(s, 0)])
    with pytest.raises(NotAnalyticError, match="but glue 0's activation uses Max"):
        render_stack(stack, complex_step=True)


def test_a_kinked_glue_activation_differentiates_as_a_real_function():
    """Abs as the glue's activation (a kink the docs list): the glue symbols had no real assumption, so SymPy
    differentiated |W x + b| through re/im parts; check and generate stopped on 're' (new-user probe). The
    derivative is now sign(W x + b), in the kernels' functions and in derive's text."""
    from symglep.stack.codegen import glue_functions
    from symglep.stack.commands import derive_report

    x0, g, b, f, y = dynamicsymbols("x0 g b f y")
    k, w = sp.symbols("k w", positive=True)
    bottom = symglep.Model(x0.diff() ** 2 / 2 - k * x0**2 / 2 + x0 * g, [x0], parameters=[k], inputs=[g], name="bot")
    top = symglep.Model(b.diff() ** 2 / 2 - w * b**2 / 2 + b * f, [b], parameters=[w], inputs=[f], targets=[y],
                        cost=(b - y) ** 2 / 2, name="top")
    stack = Stack([bottom, top], readouts=[[x0]], activations=[sp.Abs], name="abs_glue")
    exprs = [e for fn in glue_functions(stack.links[0]) for _, out in fn.outputs for e in out]
    assert not any(e.has(sp.re, sp.im) for e in exprs) and any(e.has(sp.sign) for e in exprs)
    assert "dC/dglue0_b0 = Σ_k dC_df*sign(glue0_b0 + glue0_W0_0*x0)" in derive_report(stack, "text")


def test_the_stacked_rule_names_the_top_units_terminal_cost():
    """The stacked learning rule's loss line left out the top unit's terminal cost, which the stack's loss and
    its check include (new-user probe)."""
    from symglep.stack.commands import derive_report

    x0, g, b, f, y = dynamicsymbols("x0 g b f y")
    k, w = sp.symbols("k w", positive=True)
    bottom = symglep.Model(x0.diff() ** 2 / 2 - k * x0**2 / 2 + x0 * g, [x0], parameters=[k], inputs=[g], name="bot")
    for terminal in (0, (b - y) ** 2):
        top = symglep.Model(b.diff() ** 2 / 2 - w * b**2 / 2 + b * f, [b], parameters=[w], inputs=[f], targets=[y],
                            cost=(b - y) ** 2 / 2, terminal_cost=terminal, name="top")
        text = derive_report(Stack([bottom, top], readouts=[[x0]], name="with_end"), "text")
        assert ("+ c_T(q_top,K, y_K): the top unit's trapezoid sum and its terminal cost" in text) is (terminal != 0)
