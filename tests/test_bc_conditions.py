"""CFVP, periodic and mixed q(0)/p(T) conditions: the shooting solves, their estimators against their true
gradients, the symbolic mixed residual, and `check --bc` with all six conditions (theory §3)."""

import json
import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symglep
from symglep.bc_check import BCS, Instance
from symglep.boundary import end_symbols, residuals, symplectic_term, terminal_gradient
from symglep.cli import main
from symglep.runtime import compile_model
from symglep.shooting import Shooting, measure

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS, BETA = 200, 1e-4


def _load(name):
    return symglep.load_model(str(ROOT / "examples" / f"{name}.py"))


@pytest.fixture(scope="module", params=["harmonic_oscillator", "double_pendulum"])
def problem(request):
    """One seeded instance per model: harmonic_oscillator (leapfrog), double_pendulum (midpoint)."""
    model = _load(request.param)
    kernels = compile_model(model, dt=0.01)
    return kernels, Instance(model, kernels, STEPS, 0.01, 0, None)


def _measure(problem, kind):
    kernels, inst = problem
    return measure(kernels, kind, inst.theta, inst.q0[0], inst.p0[0], inst.u, inst.y, inst.dt, BETA)


def test_integrators_of_the_two_models(problem):
    assert problem[0].integrator == {"harmonic_oscillator": "leapfrog", "double_pendulum": "midpoint"}[
        problem[0].model.name]


@pytest.mark.parametrize("kind", ["cfvp", "periodic", "mixed"])
def test_estimator_matches_its_true_gradient(problem, kind):
    m = _measure(problem, kind)
    assert not m["zero_gradient"] and np.linalg.norm(m["true"]) > 1e-3
    assert m["error"] <= 1e-6, m
    # the true gradient (central differences of the solve) against BPTT + the implicit-function theorem
    assert m["reference_error"] <= 1e-8, m


def test_cfvp_needs_its_residual(problem):
    """Without X(0) the CFVP estimate is biased; with it, exact (theory §3)."""
    m = _measure(problem, "cfvp")
    assert m["bulk_error"] > 0.1
    assert np.linalg.norm(m["residual"]) > 0.1 * np.linalg.norm(m["true"])


@pytest.mark.parametrize("kind", ["cfvp", "periodic", "mixed"])
def test_solutions_satisfy_their_boundary_conditions(problem, kind):
    """The free solution, checked on a plain free run from its start."""
    kernels, inst = problem
    s = Shooting(kernels, kind, inst.theta, inst.q0[0], inst.p0[0], inst.u, inst.y, inst.dt)
    x = s.solve_free()
    z0 = s.start(x)[0]
    n = kernels.n
    qT, pT, _ = kernels.free(inst.theta, z0[None, :n], p0=z0[None, n:], u=inst.u, y=inst.y, dt=inst.dt)
    zK = np.concatenate([qT[0], pT[0]])
    free_end = np.concatenate(kernels.free(inst.theta, inst.q0, p0=inst.p0, u=inst.u, y=inst.y, dt=inst.dt)[:2],
                              axis=1)[0]
    if kind == "periodic":
        assert np.max(np.abs(zK - z0)) <= 1e-12 and np.max(np.abs(z0 - s.z0)) > 1e-3  # a new start
    elif kind == "cfvp":
        assert np.max(np.abs(zK - free_end)) <= 1e-12
    else:
        assert np.max(np.abs(z0[:n] - inst.q0[0])) == 0 and np.max(np.abs(zK[n:] - free_end[n:])) <= 1e-12


def test_mixed_error_is_the_difference_in_beta_only(problem):
    """The mixed estimate is exact up to the difference quotient in β: the ±β contrast's error falls as
    β², the ±β, ±2β contrast's as β⁴ (fitted slopes)."""
    kernels, inst = problem
    betas = (6e-3, 3e-3)
    runs = [measure(kernels, "mixed", inst.theta, inst.q0[0], inst.p0[0], inst.u, inst.y, inst.dt, b)
            for b in betas]
    slope = lambda key: np.log(runs[0][key] / runs[1][key]) / np.log(betas[0] / betas[1])  # noqa: E731
    assert all(r["beta"] in betas for r in runs)
    assert 1.8 < slope("centred_error") < 2.2, runs
    assert 3.6 < slope("error") < 4.4, runs


def test_symbolic_mixed_residual_vanishes_only_with_the_kicked_momentum():
    """X(T) = 0 needs ∂βp(T) = ∂c_T/∂q (the boundary momentum p − β∂c_T/∂q held fixed, theory §10)."""
    d = symglep.derive(_load("harmonic_oscillator_terminal"), simplify="none")
    assert residuals(d)["mixed"].residual_T == "0" and residuals(d)["mixed"].residual_0 == "0"
    e = end_symbols(d, "T")
    grad = terminal_gradient(d, e)
    k = d.model.parameters[0]
    x = lambda kick: symplectic_term(d, e, k, momenta=([0] * d.model.n, kick))  # noqa: E731
    terminal = sum(g * dq for g, dq in zip(grad, e.dq_dtheta[k]))
    assert sp.simplify(x(grad) - terminal) == 0
    assert sp.simplify(x([-g for g in grad]) - terminal) != 0  # the kick with the wrong sign


def test_check_bc_all_lists_six_conditions():
    path = str(ROOT / "examples" / "harmonic_oscillator.py")
    out = CliRunner().invoke(main, ["check", path, "--bc", "all", "--steps", str(STEPS), "--format", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["conditions"] == list(BCS) and len(BCS) == 6
    assert {r["bc"] for r in report["estimates"]} == set(BCS)
    assert report["passed"]
    for row in report["estimates"]:
        assert row["passed"] is not False
        assert row["passed"] is True or row["biased"] or row.get("note"), row
    text = CliRunner().invoke(main, ["check", path, "--bc", "all", "--steps", str(STEPS)]).output
    for title in ("CIVP", "CFVP", "CBVP", "periodic", "PFVP", "mixed q(0), p(T)", "mixed q(0), q(T)"):
        assert title in text


@pytest.mark.parametrize("command", ["check", "residuals"])
def test_unknown_condition_is_a_one_line_error(command):
    path = str(ROOT / "examples" / "harmonic_oscillator.py")
    out = CliRunner().invoke(main, [command, path, "--bc", "sideways"])
    assert out.exit_code == 2
    assert out.output.startswith("error: ") and out.output.count("\n") == 1 and "'sideways'" in out.output


def test_residuals_take_a_list_of_conditions_as_check_does():
    """`residuals --bc civp,pfvp` was refused while `check --bc` took the list (new-user probe)."""
    path = str(ROOT / "examples" / "harmonic_oscillator.py")
    out = CliRunner().invoke(main, ["residuals", path, "--bc", "civp,pfvp", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert list(json.loads(out.output)["bc"]) == ["civp", "pfvp"]


def test_condition_that_cannot_apply_says_why():
    """The cart's momentum grows by ∫u dt whatever the start: no periodic orbit, one line, no failure."""
    out = CliRunner().invoke(main, ["check", str(ROOT / "examples" / "cart_pole.py"), "--bc", "periodic",
                                    "--steps", "100", "--format", "json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)["estimates"]
    assert row["error"] is None and row["note"].startswith("does not apply: no periodic orbit")


def test_civp_and_pfvp_rows_take_the_fourth_order_contrast():
    """At β = 1e-2 the centred contrast would err by ~4e-4 on the harmonic oscillator (bias 4.2·β²); the CIVP
    and PFVP rows take ±β, ±2β like the shooting rows (error O(β⁴)): both within 1e-6 of BPTT. Before, a
    curved model (a spherical pendulum) failed its PFVP and CIVP rows at β = 1e-4 where check passed."""
    from symglep.bc_check import run_bc_check

    report = run_bc_check(_load("harmonic_oscillator"), ["civp", "pfvp"], steps=STEPS, beta=1e-2)
    rows = {r["estimate"]: r for r in report["estimates"]}
    for name in ("CIVP bulk + residual", "PFVP echo (momentum start)", "PFVP echo (velocity start)"):
        assert rows[name]["error"] <= 1e-6, (name, rows[name]["error"])


def test_a_cbvp_row_comparing_zeros_says_so():
    """HEB's setting: only a terminal cost, and the CBVP holds q(T); the gradient is zero on both sides and the
    row said a bare "ok" (new-user probe). It now names why it compares zeros."""
    path = str(ROOT / "examples" / "harmonic_oscillator_terminal.py")
    out = CliRunner().invoke(main, ["check", path, "--bc", "cbvp", "--steps", str(STEPS), "--format", "json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)["estimates"]
    assert row["note"].startswith("dC/dθ = 0 with q(0) and q(T) held") and row["passed"]
    out = CliRunner().invoke(main, ["check", str(ROOT / "examples" / "harmonic_oscillator.py"), "--bc", "cbvp",
                                    "--steps", str(STEPS), "--format", "json"])
    (row,) = json.loads(out.output)["estimates"]
    assert "note" not in row


def test_cfvp_leaves_a_held_terminal_cost_out():
    """With q(T) held, c_T is a constant of the CFVP: the nudged runs took its kick anyway, so the bulk term and
    X(0) each carried a c_T part ~1e3 times the gradient that cancelled between them, and the estimate lost
    three digits (new-user probe: 1.06e-5, FAIL, with a strong terminal cost). The kick and the constant are now
    left out: the estimate is as good as without the terminal cost."""
    from sympy.physics.mechanics import dynamicsymbols

    x, y = dynamicsymbols("x y")
    m, k = sp.symbols("m k", positive=True)
    errors, bulks = [], []
    for weight in (0, 3000):
        model = symglep.Model(m * x.diff() ** 2 / 2 - k * x**2 / 2 - x**4 / 4, [x], parameters=[m, k], targets=[y],
                              cost=(x - y) ** 2 / 2, terminal_cost=weight * (x - y) ** 2, name=f"held_{weight}")
        kernels = compile_model(model, dt=0.01)
        inst = Instance(model, kernels, STEPS, 0.01, 0, None)
        r = measure(kernels, "cfvp", inst.theta, inst.q0[0], inst.p0[0], inst.u, inst.y, inst.dt, BETA)
        errors.append(r["error"])
        bulks.append(r["bulk"])
        assert r["error"] <= 1e-7, (weight, r["error"])
    # the held c_T changes nothing: the same runs, the same bulk term (it was ~1e3 times larger with it)
    assert np.linalg.norm(bulks[1] - bulks[0]) <= 1e-10 * np.linalg.norm(bulks[0]) and abs(errors[1] - errors[0]) <= 1e-9


def test_the_two_point_check_of_a_time_weighted_leapfrog_samples_its_kinetic_part_mid_step():
    """An RLC circuit with a learned inductance, L q̇²/2 under the Caldirola–Kanai weight e^{γt}, run by the
    time-weighted leapfrog (new-user probe): the CBVP row failed at 2.4e-4 because the two-point solve read the
    kinetic momentum at t_k while the kernels and the learning integral read it at t_{k+1/2}; now ~3e-10."""
    from sympy.physics.mechanics import dynamicsymbols

    from symglep.bc_check import run_bc_check

    q, u, y = dynamicsymbols("qq u y")
    Lind, Cap, R = sp.symbols("Lind Cap R", positive=True)
    model = symglep.Model(Lind * q.diff() ** 2 / 2 - q**2 / (2 * Cap) + q * u, [q], parameters=[Lind, Cap],
                          inputs=[u], targets=[y], cost=(q - y) ** 2 / 2, dissipation=R * q.diff() ** 2 / 2,
                          constants={R: 0.54}, name="rlc_learned_inductance")
    report = run_bc_check(model, ["cbvp"], integrator="leapfrog")
    (row,) = [r for r in report["estimates"] if r["bc"] == "cbvp"]
    assert row["passed"] and row["error"] <= 1e-8, row
