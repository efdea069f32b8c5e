"""Boundary residuals: the symbolic analysis, its reports, and the numerical proof (`check --bc`)."""

import json
import math
import pathlib
import re

import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.bc_check import run_bc_check
from symglep.boundary import BOUNDARY_CONDITIONS, end_symbols, residuals
from symglep.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith(("network_", "stack_")))  # arrays: test_networks.py; stacks: test_stack.py
KEYS = ["residual_T", "residual_0", "vanishing_terms", "needs", "forward_only", "memory", "tractable", "verdict"]


def _derive(name):
    return symglep.derive(symglep.load_model(str(ROOT / "examples" / f"{name}.py")))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_json_report_schema(path):
    result = CliRunner().invoke(main, ["residuals", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["bc"]) == set(BOUNDARY_CONDITIONS)
    d = symglep.derive(symglep.load_model(str(path)))
    names = {s.name: sp.Symbol(s.name) for s in d.model.symbol_by_name().values()}
    names.update({s.name: sp.Symbol(s.name) for s in d.model.constants})
    for suffix in ("T", "0"):
        e = end_symbols(d, suffix)
        for group in (e.q, e.v, e.dq_dbeta, e.dv_dbeta, *e.dq_dtheta.values(), *e.dv_dtheta.values()):
            names.update({s.name: s for s in group})
    names["T"] = sp.Symbol("T")
    names["t0"] = sp.Symbol("t0")  # the start time (a time-dependent model's start residual reads it)
    for name, entry in data["bc"].items():
        for key in KEYS:
            assert key in entry, (name, key)
        assert isinstance(entry["forward_only"], bool) and isinstance(entry["tractable"], bool)
        for key in ("residual_T", "residual_0"):
            value = entry[key]
            assert value == "0" or (isinstance(value, dict) and value), (name, key, value)
            if isinstance(value, dict):
                for theta, expr in value.items():
                    parsed = sp.parse_expr(expr, local_dict=names)  # reads back with the documented names
                    assert {s.name for s in parsed.free_symbols} <= set(names), (name, theta, expr)
    bc = data["bc"]
    assert bc["pfvp"]["residual_T"] == "0" and bc["cbvp"]["residual_T"] == "0" == bc["cbvp"]["residual_0"]
    assert bc["civp"]["residual_0"] == "0" and bc["cfvp"]["residual_T"] == "0"
    assert bc["periodic"]["residual_T"] == "0" and bc["periodic"]["residual_0"] == "0"
    assert bc["civp"]["forward_only"] and not bc["civp"]["tractable"]
    assert bc["cbvp"]["tractable"] and not bc["cbvp"]["forward_only"]


def test_pfvp_correction_of_learnable_mass():
    """∂²L/∂m∂v · ∂βq(0) = v(0)·∂βq(0) for the harmonic oscillator; zero for k."""
    res = residuals(_derive("harmonic_oscillator"))["pfvp"]
    by_name = {th.name: e for th, e in res.residual_0.items()}
    assert by_name["k"] == 0
    assert sp.simplify(by_name["m"] - sp.Symbol("dx_dbeta_0") * sp.Symbol("x_dot_0")) == 0
    assert res.extra["pfvp_correction_vanishes"] is False


def test_the_start_residual_of_a_time_dependent_model_is_read_at_the_start_time():
    """New-user probe: the PFVP residual of a damped model was printed at t = 0 (dx_dbeta_0*x_dot_0), which is
    0.117 off the true velocity-start correction of a run started at t0 = 2 (the Python API's t0=); it is read at
    the start time t0 now, exp(gamma t0) m's correction, and equals the old one at t0 = 0."""
    res = residuals(_derive("damped_oscillator"))["pfvp"]
    by_name = {th.name: e for th, e in res.residual_0.items()}
    expr = by_name["m"]
    values = {s: v for s, v in zip(sorted(expr.free_symbols, key=str), (0.3, 0.7, 2.0, -0.4))}
    names = {s.name: v for s, v in values.items()}
    assert set(names) == {"dx_dbeta_0", "gamma", "t0", "x_dot_0"}, names
    want = names["dx_dbeta_0"] * names["x_dot_0"] * math.exp(names["gamma"] * names["t0"])
    assert float(expr.xreplace(values)) == pytest.approx(want, rel=1e-14)
    at_zero = expr.xreplace({s: 0 for s in expr.free_symbols if s.name == "t0"})
    assert sp.simplify(at_zero - sp.Symbol("dx_dbeta_0") * sp.Symbol("x_dot_0")) == 0


def test_pfvp_correction_vanishes_without_theta_in_kinetic_term():
    res = residuals(_derive("oscillator_chain"))["pfvp"]
    assert res.residual_0 == "0" and res.extra["pfvp_correction_vanishes"]


def test_civp_residual_expands_through_the_momentum_map():
    """X(T) for the oscillator with learnable mass, written out by hand."""
    res = residuals(_derive("harmonic_oscillator"))["civp"].residual_T
    s = sp.Symbol
    m = sp.Symbol("m", positive=True)
    for th in ("k", "m"):
        dq_b, dv_b = s("dx_dbeta_T"), s("dx_dot_dbeta_T")
        dq_t, dv_t = s(f"dx_d{th}_T"), s(f"dx_dot_d{th}_T")
        dbeta_p = m * dv_b
        dtheta_p = m * dv_t + (s("x_dot_T") if th == "m" else 0)
        expected = dbeta_p * dq_t - dtheta_p * dq_b
        got = {t.name: e for t, e in res.items()}[th]
        assert sp.expand(got - expected) == 0


def _balanced(text, open_, close):
    depth = 0
    for ch in text:
        depth += ch == open_
        depth -= ch == close
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_text_markdown_latex_reports_hold_every_condition(path):
    runner = CliRunner()
    text = runner.invoke(main, ["residuals", str(path)]).output
    md = runner.invoke(main, ["residuals", str(path), "--format", "markdown"]).output
    tex = runner.invoke(main, ["residuals", str(path), "--format", "latex"]).output
    for name in BOUNDARY_CONDITIONS:
        assert f"[{name}]" in text
        assert re.search(rf"^\| {name} \|", md, re.M)
        assert rf"\textbf{{{name.upper()}}}" in tex
    assert text.count("verdict:") == len(BOUNDARY_CONDITIONS)
    assert md.count("**Verdict:**") == len(BOUNDARY_CONDITIONS)
    assert md.count("`") % 2 == 0
    assert _balanced(tex, "{", "}") and _balanced(tex.replace(r"\left(", "(").replace(r"\right)", ")"), "(", ")")
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") == len(BOUNDARY_CONDITIONS)
    assert tex.count(r"\begin{itemize}") == tex.count(r"\end{itemize}") == 1


def test_a_kilobyte_residual_is_cut_in_text_and_whole_in_json(tmp_path):
    """H = p²/2 + p³/3 + p⁴/4 + k q²/2 (new-user probe): p(v) is Cardano's root, so its CIVP residual runs to ~9000
    characters; the text report prints the first RESIDUAL_SHOWN (term by term: a residual of thousands of terms is not
    printed whole) and says where the rest is, the JSON all. (The p³
    term keeps Cardano's general root: p²/2 + p⁴/4 alone now has the short hyperbolic one, legendre._odd_cubic_root.)"""
    from symglep.residual_report import RESIDUAL_SHOWN

    path = tmp_path / "quartic.py"
    path.write_text(
        "import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
        "q = dynamicsymbols('q'); p = sp.Symbol('p'); k = sp.Symbol('k', positive=True)\n"
        "model = symglep.Model.from_hamiltonian(hamiltonian=p**2/2 + p**3/3 + p**4/4 + k*q**2/2, coordinates=[q], "
        "momenta=[p], parameters=[k], name='quartic')\n")
    runner = CliRunner()
    text = runner.invoke(main, ["residuals", str(path), "--bc", "civp"]).output
    whole = json.loads(runner.invoke(main, ["residuals", str(path), "--bc", "civp", "--format", "json"]).output)
    full = whole["bc"]["civp"]["residual_T"]["k"]
    assert len(full) > 2 * RESIDUAL_SHOWN
    line = next(ln for ln in text.splitlines() if ln.startswith("  k: "))
    assert line.startswith(f"  k: {full[:RESIDUAL_SHOWN]}... (") and line.endswith(" the whole: --format json)")


def test_single_bc_and_bad_option():
    path = str(ROOT / "examples/harmonic_oscillator.py")
    one = CliRunner().invoke(main, ["residuals", path, "--bc", "pfvp", "--format", "json"])
    assert list(json.loads(one.output)["bc"]) == ["pfvp"]
    bad = CliRunner().invoke(main, ["residuals", path, "--bc", "nonsense"])
    assert bad.exit_code == 2


@pytest.fixture(scope="module")
def chain_report():
    model = symglep.load_model(str(ROOT / "examples/oscillator_chain.py"))
    return run_bc_check(model, steps=300, cbvp_steps=30)


def _row(report, prefix):
    return next(r for r in report["estimates"] if r["estimate"].startswith(prefix))


def test_chain_estimators_match_their_true_gradients(chain_report):
    r = chain_report
    assert _row(r, "CIVP bulk + residual")["error"] <= 1e-6
    assert _row(r, "PFVP echo (momentum")["error"] <= 1e-6
    assert _row(r, "PFVP echo (velocity")["error"] <= 1e-6
    assert _row(r, "CBVP")["error"] <= 1e-6
    assert r["passed"]


def test_chain_civp_bulk_only_is_biased(chain_report):
    """Theory §3: without the residual, the CIVP estimate is biased (measured, not assumed)."""
    assert chain_report["civp_bulk_only_error"] > 0.10


def test_symbolic_residual_equals_bulk_minus_true(chain_report):
    assert chain_report["symbolic_residual_error"] <= 1e-6


def test_double_pendulum_all_boundary_conditions():
    model = symglep.load_model(str(ROOT / "examples/double_pendulum.py"))
    r = run_bc_check(model, steps=200, cbvp_steps=20)
    assert r["passed"], json.dumps(r["estimates"], indent=1, default=str)
    assert r["symbolic_residual_error"] <= 1e-6


def test_check_bc_cli_json_and_non_reversible_model():
    path = str(ROOT / "examples/charged_particle.py")
    result = CliRunner().invoke(main, ["check", path, "--bc", "civp", "--steps", "100", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["passed"] and data["symbolic_residual_error"] <= 1e-6
    result = CliRunner().invoke(main, ["check", path, "--bc", "pfvp", "--steps", "50", "--format", "json"])
    rows = json.loads(result.output)["estimates"]
    # No plain echo: PFVP runs as the echo with B -> -B (theory §4), exact.
    assert [r["estimate"] for r in rows] == ["PFVP flipped echo (momentum start)", "PFVP flipped echo (velocity start)"]
    assert all(r["error"] <= 1e-6 for r in rows)


def test_cbvp_steps_above_steps_is_refused_not_clamped():
    """An explicit --cbvp-steps above --steps is refused in one line (it was clamped silently); the default
    is 40, or --steps when fewer."""
    from symglep.command_options import CheckOptions, cbvp_steps

    path = str(ROOT / "examples/harmonic_oscillator.py")
    result = CliRunner().invoke(main, ["check", path, "--bc", "cbvp", "--steps", "30", "--cbvp-steps", "50"])
    assert result.exit_code == 2 and "--cbvp-steps must be between 2 and --steps (30), got 50" in result.output
    assert cbvp_steps(CheckOptions(steps=30)) == 30 and cbvp_steps(CheckOptions()) == 40
    assert cbvp_steps(CheckOptions(steps=30, cbvp_steps=12)) == 12


@pytest.mark.parametrize("name, damped", [("damped_oscillator", True), ("harmonic_oscillator", False)])
def test_the_periodic_row_of_a_damped_model_says_what_periodic_means(name, damped):
    """A Caldirola–Kanai model's p is e^(γt) times the physical momentum, so 'periodic' (p(T) = p(0)) is not a
    periodic motion of the damped system; the row says so (new-user probe: a physicist misread it)."""
    model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
    table = residuals(symglep.derive(model, simplify="none"))
    notes = table["periodic"].vanishing_terms
    assert any("not a periodic motion of the damped system" in n for n in notes) is damped
    # the mixed condition holds p(T) fixed: the same canonical momentum (probe)
    assert any("the p(T) held fixed is e^(gamma T)" in n for n in table["mixed"].vanishing_terms) is damped


def test_check_bc_says_what_periodic_and_mixed_mean_for_a_damped_model():
    """check --bc on a Caldirola–Kanai model: its periodic and mixed rows hold the canonical momentum
    e^(γt) m v, not the velocity (a probe found v(T)/v(0) = e^(-γT) on the 'periodic' orbit); the notes say so."""
    from symglep.bc_check import run_bc_check

    model = symglep.load_model(str(ROOT / "examples" / "damped_oscillator.py"))
    report = run_bc_check(model, bcs=("periodic", "mixed"), steps=100)
    notes = {bc: " ".join(row.get("note") or "" for row in report["estimates"] if row["bc"] == bc)
             for bc in ("periodic", "mixed")}
    assert "not in the velocity (it returns scaled by e^(-gamma T))" in notes["periodic"], notes
    assert "p(T) fixed is e^(gamma T) × the physical momentum fixed" in notes["mixed"], notes


@pytest.mark.parametrize("name, needs", [("charged_particle", "the flipped echo: the system with B -> -B run forward"),
                                         ("gyroscope", "the digital PFVP: the integrator's step inverted"),
                                         ("harmonic_oscillator", "the echo — the same system run forward")])
def test_the_pfvp_row_says_which_echo_it_needs(name, needs):
    """The PFVP "needs:" line named the plain echo for every model, also where the verdict above it was the
    flipped echo or the digital PFVP (new-user probe)."""
    model = symglep.load_model(str(ROOT / "examples" / f"{name}.py"))
    assert needs in residuals(symglep.derive(model, simplify="none"))["pfvp"].needs


def test_damped_notes_write_the_model_s_own_rate(tmp_path):
    """A uniform Rayleigh term γẋ²/2 on a mass m is Caldirola–Kanai with rate γ/m; the notes wrote e^(gamma T)
    whatever the rate (new-user probe)."""
    path = tmp_path / "rayleigh.py"
    path.write_text(
        "import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
        "x = dynamicsymbols('x'); u, y = dynamicsymbols('u y')\n"
        "k, m, gam = sp.symbols('k m gam', positive=True)\n"
        "model = symglep.Model(lagrangian=m*x.diff()**2/2 - k*x**2/2 + x*u, coordinates=[x], parameters=[k, m],\n"
        "    constants={gam: 0.2}, inputs=[u], targets=[y], cost=(x-y)**2/2, dissipation=gam*x.diff()**2/2)\n")
    table = residuals(symglep.derive(symglep.load_model(str(path)), simplify="none"))
    said = " ".join(table["periodic"].vanishing_terms + table["mixed"].vanishing_terms)
    assert "e^((gam/m) t)" in said and "e^(-(gam/m) T)" in said and "e^((gam/m) T)" in said, said
    assert "gamma" not in said, said


@pytest.mark.parametrize("source, own, end", [
    # a parameter named beta: its sensitivity took the name of the nudge's, dx_dbeta_T
    ("L = m*x.diff()**2/2 - k*x**2/2 - beta*x**4/4 + u*x\nparams = [m, k, beta]\ncost = (x - y)**2/2\nterm = 0",
     "beta", "dx_dbeta__T"),
    # a target y_T beside the coordinate y: the state y(T) merged with it, so dc_T/dy = y_T - y_T = 0
    ("L = m*x.diff()**2/2 - k*x**2/2 + u*x\nparams = [k, m]\ncost = 0\nterm = (x - x_T)**2/2",
     "x_T", "x__T"),
    # a parameter x_0 (a rest position) beside the coordinate x: x(0) merged with it
    ("L = (m + c*(x - x_0)**2)*x.diff()**2/2 - k*(x - x_0)**2/2 + u*x\nparams = [m, c, k, x_0]\n"
     "cost = (x - y)**2/2\nterm = 0", "x_0", "x__0"),
])
def test_end_symbols_never_take_a_name_of_the_model(tmp_path, source, own, end):
    """Each residual entry equals its own derivation with the end symbols renamed apart, and the model's
    symbol keeps its name (new-user probe: with the merged names, residuals printed 0 where the truth is not)."""
    path = tmp_path / "named.py"
    path.write_text(
        "import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
        "x = dynamicsymbols('x'); u, y = dynamicsymbols('u y')\n"
        "m, k, c, beta, x_0, x_T = sp.symbols('m k c beta x_0 x_T', positive=True)\n" + source + "\n"
        "model = symglep.Model(lagrangian=L, coordinates=[x], parameters=params, constants={} if cost != 0 else "
        "{x_T: 0.3}, inputs=[u], targets=[y] if cost != 0 else [], cost=cost, terminal_cost=term)\n")
    d = symglep.derive(symglep.load_model(str(path)), simplify="none")
    table = residuals(d)
    names = {s.name for r in table.values() for side in (r.residual_T, r.residual_0) if side != "0"
             for e in side.values() for s in sp.sympify(e).free_symbols}
    assert end in names, names
    # the same residuals built by hand from the end symbols (theory §2): X = ∂βp·∂θq − ∂θp·∂βq with p = ∂L/∂v
    m_ = d.model
    for suffix, key, sign in (("T", "civp", 1), ("0", "cfvp", -1)):
        e = end_symbols(d, suffix)
        at = {m_.q[0]: e.q[0], m_.v[0]: e.v[0]}
        p = sp.diff(m_.lagrangian, m_.v[0])
        for th in m_.parameters:
            dth_p = (sp.diff(p, m_.v[0]) * e.dv_dtheta[th][0] + sp.diff(p, m_.q[0]) * e.dq_dtheta[th][0]
                     + sp.diff(p, th)).xreplace(at)
            db_p = (sp.diff(p, m_.v[0]) * e.dv_dbeta[0] + sp.diff(p, m_.q[0]) * e.dq_dbeta[0]).xreplace(at)
            x = db_p * e.dq_dtheta[th][0] - dth_p * e.dq_dbeta[0]
            if suffix == "T":
                x -= sp.diff(m_.terminal_cost, m_.q[0]).xreplace(at) * e.dq_dtheta[th][0]
            side = table[key].residual_T if suffix == "T" else table[key].residual_0
            assert sp.expand(sign * x - side[th]) == 0, (th, side[th])
            assert sp.expand(x) != 0


def test_the_residuals_command_prints_each_residual_simplified_and_equal_to_the_raw_one(tmp_path):
    """H = a cosh p: its CIVP residual printed 177 operations, 34 when simplified (probe, session 38): the
    command's expressions are each the smallest form found within derive's fast budget, equal to the raw
    residual of symglep.boundary.residuals at random points."""
    import random

    path = tmp_path / "h_cosh.py"
    path.write_text("import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
                    "x, y = dynamicsymbols('x y'); p = sp.Symbol('p'); a, k = sp.symbols('a k', positive=True)\n"
                    "model = symglep.Model.from_hamiltonian(a*sp.cosh(p) + k*x**2/2, [x], [p], parameters=[a, k],"
                    " targets=[y], cost=(x - y)**2/2, name='h_cosh')\n")
    out = CliRunner().invoke(main, ["residuals", str(path), "--bc", "civp", "--format", "json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)["bc"]["civp"]["residual_T"]
    raw = residuals(symglep.derive(symglep.load_model(str(path)), simplify="none"))["civp"].residual_T
    rng = random.Random(2)
    for theta, expr in raw.items():
        printed = sp.sympify(shown[theta.name], locals={s.name: s for s in expr.free_symbols})
        assert sp.count_ops(printed) * 3 < sp.count_ops(expr), (theta, printed)
        for _ in range(3):
            at = {s: rng.uniform(0.5, 1.5) for s in expr.free_symbols}
            assert abs(float(printed.subs(at)) - float(expr.subs(at))) <= 1e-12 * (1 + abs(float(expr.subs(at))))


def test_an_input_in_a_residual_is_named_at_its_end():
    """p = m ẋ + g u x reads the input: the CIVP residual printed ``u`` beside ``x_T`` (probe, session 38); it is
    the input's value at T, ``u_T`` (``u_0`` at the start), and the residual is X(T) written with it."""
    x, u = dynamicsymbols("x u")
    m, g, k = sp.symbols("m g k", positive=True)
    model = symglep.Model(m * x.diff() ** 2 / 2 + g * u * x * x.diff() - k * x**2 / 2, [x], parameters=[m, g, k],
                          inputs=[u])
    d = symglep.derive(model, simplify="none")
    table = residuals(d)
    e = end_symbols(d, "T")
    civp = table["civp"].residual_T
    names = {s.name for expr in civp.values() for s in expr.free_symbols}
    assert "u_T" in names and "u" not in names
    expected = -(e.dq_dbeta[0] * e.u[0] * e.q[0])  # the g-part of −∂θp·∂βq: ∂p/∂g = u x at T
    gpar = next(s for s in model.parameters if s.name == "g")
    gv = civp[gpar]
    assert sp.expand(gv - (m * e.dv_dbeta[0] * e.dq_dtheta[gpar][0] + g * e.u[0] * e.dq_dbeta[0] * e.dq_dtheta[gpar][0]
                           - m * e.dv_dtheta[gpar][0] * e.dq_dbeta[0] - g * e.u[0] * e.dq_dtheta[gpar][0] * e.dq_dbeta[0]
                           + expected)) == 0
