"""Readable derivations (theory §11): simplified = raw, Hamilton's equations, op counts, safe JSON, rendering.

Every identity is checked numerically at seeded random points with 30 significant
digits; parameters and constants are drawn positive (constants at their values).
"""

from __future__ import annotations

import functools
import io
import json
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.calculus.euler import euler_equations
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep import report
from symglep.cli import main
from symglep.residual_report import residual_report
from symglep.simplify import Budget, tidy
from symglep.symbolic import evaluate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py") if not p.name.startswith(("network_", "stack_")))
# op counts of H, M and the accelerations before readable forms existed (symglep 7a85cb1)
TODAY = {"cart_pole": (210, 20, 175), "charged_particle": (54, 0, 24), "damped_chain": (64, 6, 59),
         "damped_chain_nonuniform": (56, 0, 32), "damped_oscillator": (16, 3, 15), "double_pendulum": (182, 15, 124),
         "gyroscope": (45, 0, 22), "harmonic_oscillator": (9, 0, 3), "harmonic_oscillator_terminal": (9, 0, 3),
         "heb_nonlinear_oscillator": (30, 0, 20), "oscillator_chain": (78, 0, 36),
         "oscillator_chain_terminal": (78, 0, 36), "relativistic_particle": (23, 13, 16)}
RTOL = 1e-10


@functools.lru_cache(maxsize=None)
def derived(name: str, simplify: str = "fast"):
    return symglep.derive(symglep.load_model(str(ROOT / "examples" / f"{name}.py")), simplify=simplify)


def point(d, seed: int, extra=()) -> dict:
    """Random values for every symbol of the model (parameters positive, constants at their values)."""
    m = d.model
    rng = random.Random(seed)
    values = {}
    for s in (m.time, *m.q, *m.v, *m.a, *m.p, *m.u, *m.y, *d.el.input_rates, *extra):
        values[s] = sp.Float(rng.uniform(-0.45, 0.45), 30)
    for s in m.parameters:
        values[s] = sp.Float(rng.uniform(0.5, 2.0), 30)
    values.update({s: sp.Float(v, 30) for s, v in m.constants.items()})
    return values


def close(a, b, values, what, rtol=RTOL):
    x, y = evaluate(a, values), evaluate(b, values)
    assert abs(x - y) <= rtol * max(1.0, abs(x), abs(y)), (what, x, y)


def test_every_example_has_an_op_count_baseline():
    assert set(EXAMPLES) == set(TODAY)


@pytest.mark.parametrize("name", EXAMPLES)
def test_simplified_equals_raw(name):
    d = derived(name)
    r, el, n = d.readable, d.el, d.model.n
    pairs = [(f"M{i}{j}", r.mass_matrix[i, j], el.mass_matrix[i, j]) for i in range(n) for j in range(n)]
    pairs += [(f"p{i}", a, b) for i, (a, b) in enumerate(zip(r.momenta, el.momenta))]
    pairs += [(f"dL/d{th}", r.learning_rule[th], e) for th, e in d.learning_rule.items()]
    if r.det_mass is not None:
        pairs.append(("det M", r.det_mass, el.mass_matrix.det(method="berkowitz")))
    if r.adjugate is not None:
        adj = el.mass_matrix.adjugate(method="berkowitz")
        pairs += [(f"adj{i}{j}", r.adjugate[i, j], adj[i, j]) for i in range(n) for j in range(n)]
    if d.hamiltonian is not None:
        pairs.append(("H", r.hamiltonian, d.hamiltonian))
    if r.hamiltonian_parts is not None:
        pairs.append(("H parts", sp.Add(*r.hamiltonian_parts.values()), d.hamiltonian))
    if el.accelerations is not None:
        pairs += [(f"a{i}", a, b) for i, (a, b) in enumerate(zip(r.accelerations, el.accelerations))]
    pairs += [(f"f{i}", a, b) for i, (a, b) in enumerate(zip(r.forcing, el.forcing))]
    pairs += [(f"EL{i}", a, b) for i, (a, b) in enumerate(zip(r.euler_lagrange, el.residuals))]
    for seed in range(3):
        values = point(d, seed)
        for what, a, b in pairs:
            close(a, b, values, (name, what), rtol=1e-12)


def test_driven_pendulum_equation_of_motion_is_printed_simplified():
    """Kapitza's pendulum (pivot driven at a cos Ωt): the printed Euler–Lagrange line and f are the textbook
    ones (cos² + sin² folded, new-user probe), and they equal sympy's euler_equations of the L."""
    th = dynamicsymbols("theta")
    t = dynamicsymbols._t
    m, l, a, om, g = sp.symbols("m l a Omega g", positive=True)
    x, y = l * sp.sin(th), -l * sp.cos(th) + a * sp.cos(om * t)
    lag = m * (x.diff(t) ** 2 + y.diff(t) ** 2) / 2 - m * g * y
    d = symglep.derive(symglep.Model(lagrangian=lag, coordinates=[th], parameters=[m, l], name="kapitza",
                                     constants={a: 0.1, om: 20.0, g: 9.81}), simplify="full")  # no time limit hit
    assert sp.count_ops(d.readable.euler_lagrange[0]) <= 16 and sp.count_ops(d.readable.forcing[0]) <= 14
    text = report.render_text(d)
    assert f"0 = {report.readable_str(d.readable.euler_lagrange[0])}" in text
    ref = euler_equations(lag, [th], t)[0].lhs  # ∂L/∂q − d/dt ∂L/∂v = −(M a − f)
    plain = {th.diff(t, 2): d.model.a[0], th.diff(t): d.model.v[0], th: d.model.q[0]}
    ref = ref.subs(plain).subs({t: d.model.time}).xreplace(d.model.constants)
    values = point(d, 0)
    close(ref + d.readable.euler_lagrange[0].xreplace(d.model.constants), 0, values, "EL vs euler_equations")


@pytest.mark.parametrize("name", EXAMPLES)
def test_hamilton_equations_of_the_printed_h_reproduce_euler_lagrange(name):
    """q̇ = ∂H/∂p, ṗ = −∂H/∂q (− ∂R/∂v) of the H printed in JSON give the Euler–Lagrange accelerations."""
    d = derived(name)
    m, el = d.model, d.el
    data = report.to_dict(d)
    local = {e["safe"]: sp.Symbol(e["safe"], **e["assumptions"]) for e in data["symbol_table"]}
    back = {local[e["safe"]]: sp.Symbol(e["name"], **e["assumptions"]) for e in data["symbol_table"]}
    h = sp.parse_expr(data["safe_expressions"]["readable"]["hamiltonian"], local_dict=local).xreplace(back)
    printed = data["safe_expressions"]["hamilton_equations"]
    rates = d.readable.momentum_rates
    qdot = [sp.diff(h, p) for p in m.p]
    velocity = dict(zip(m.v, qdot))
    pdot = [-sp.diff(h, q) - (sp.diff(m.damping, v).xreplace(velocity) if m.damping != 0 else 0)
            for q, v in zip(m.q, m.v)]
    to_p = dict(zip(m.p, el.momenta))
    for seed in range(3):
        values = point(d, seed)
        values.update({p: sp.Float(evaluate(e, values).real, 30) for p, e in zip(m.p, el.momenta)})
        # the printed Hamilton's equations are those of the printed H
        for v, pr, a, b in zip(m.v, rates, qdot, pdot):
            close(sp.parse_expr(printed["velocities"][v.name], local_dict=local).xreplace(back), a, values, "q̇")
            close(sp.parse_expr(printed["momentum_rates"][pr.name], local_dict=local).xreplace(back), b, values, "ṗ")
        # q̇ = v at p = p(q, v)
        for v, a in zip(m.v, qdot):
            close(a, v, values, (name, "dH/dp = v"))
        # ṗ = (∂p/∂v) a + (∂p/∂q) v + ∂p/∂t + (∂p/∂u) u̇  =>  M a = ṗ − (∂p/∂q) v − ∂p/∂t − (∂p/∂u) u̇
        rhs = []
        for i, p in enumerate(el.momenta):
            drift = sp.diff(p, m.time) + sum((sp.diff(p, q) * v for q, v in zip(m.q, m.v)), sp.S.Zero)
            drift += sum((sp.diff(p, u) * sp.Symbol(f"{u.name}_dot") for u in m.u), sp.S.Zero)
            rhs.append(evaluate(pdot[i].xreplace(to_p), values) - evaluate(drift, values))
        mass = sp.Matrix(m.n, m.n, lambda i, j: sp.Float(evaluate(el.mass_matrix[i, j], values).real, 30))
        accel = mass.LUsolve(sp.Matrix([sp.Float(x.real, 30) for x in rhs]))
        if el.accelerations is not None:
            for a_h, a_el in zip(accel, el.accelerations):
                close(a_h, a_el, values, (name, "a"))
        else:  # M a = f numerically
            f = sp.Matrix([sp.Float(evaluate(e, values).real, 30) for e in el.forcing])
            for a_h, a_el in zip(accel, mass.LUsolve(f)):
                close(a_h, a_el, values, (name, "a"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_readable_forms_are_no_larger_than_today(name):
    ops = derived(name).readable.op_counts
    h, mass, acc = TODAY[name]
    assert ops["hamiltonian"]["readable"] <= h
    assert ops["mass_matrix"]["readable"] <= mass
    assert ops["accelerations"]["readable"] <= acc


def test_cart_pole_mass_matrix_prints_textbook_entries():
    d = derived("cart_pole")
    data = report.to_dict(d)
    assert data["readable"]["mass_matrix"] == [["M + m", "l*m*cos(theta)"], ["l*m*cos(theta)", "l**2*m"]]
    text = report.render(d, "text")
    assert "  [M + m, l*m*cos(theta)]\n  [l*m*cos(theta), l**2*m]\n" in text


@pytest.mark.parametrize("name, today", [("cart_pole", 214), ("double_pendulum", 182)])
def test_hamiltonian_is_at_most_35_percent_of_today(name, today):
    d = derived(name)
    assert d.readable.hamiltonian_form.startswith("structured")
    assert sp.count_ops(d.readable.hamiltonian) <= 0.35 * today


def test_simplify_none_keeps_the_raw_forms():
    d = derived("double_pendulum", "none")
    assert d.readable.hamiltonian == d.hamiltonian
    assert d.readable.mass_matrix == d.el.mass_matrix
    assert d.readable.accelerations == d.el.accelerations
    assert d.readable.hamilton_equations is not None
    fast = derived("double_pendulum")
    assert fast.hamiltonian == d.hamiltonian and fast.el.accelerations == d.el.accelerations  # raw fields untouched


def test_bad_simplify_mode():
    with pytest.raises(symglep.SymglepError, match="simplify must be one of") as caught:
        symglep.derive(symglep.load_model(str(ROOT / "examples/harmonic_oscillator.py")), simplify="quick")
    assert isinstance(caught.value, ValueError)  # as Python's own argument checks raise
    result = CliRunner().invoke(main, ["derive", str(ROOT / "examples/harmonic_oscillator.py"), "--simplify", "x"])
    assert result.exit_code == 2
    assert "Invalid value for '--simplify'" in result.output and "Traceback" not in result.output


def test_budget_interrupts_a_slow_attempt():
    x, y, z = sp.symbols("x y z")
    big = sp.expand((sp.sin(x) + sp.cos(y) + sp.sin(z) * sp.cos(x) + x * y) ** 7)
    budget = Budget("full", per_expression=0.2, total=0.5, max_ops=10**6)
    started = time.perf_counter()
    out = tidy(big, budget)
    assert time.perf_counter() - started < 3.0
    assert budget.attempts_dropped >= 1
    values = {x: sp.Float("0.3", 30), y: sp.Float("-0.2", 30), z: sp.Float("0.1", 30)}
    close(out, big, values, "tidy", rtol=1e-20)


def test_budget_of_a_large_model_is_half_its_derivation():
    assert Budget.for_model("fast", 8, 0.6).total == pytest.approx(0.3)
    assert Budget.for_model("none", 2, 1.0).total == 0


# ---------------------------------------------------------------------------
# JSON with hostile symbol names
# ---------------------------------------------------------------------------

def hostile_model():
    t = sp.Symbol("t")
    lam, theta = sp.Function("lambda")(t), sp.Function("θ₁")(t)
    ret, ab, xy, imp = (sp.Symbol(s, positive=True) for s in ("return", "a b", "x+y", "__import__"))
    u = sp.Function("if")(t)
    lagrangian = (ab * lam.diff(t) ** 2 / 2 + xy * theta.diff(t) ** 2 / 2 + ret * lam.diff(t) * theta.diff(t)
                  * sp.cos(lam - theta) / 4 - imp * (1 - sp.cos(lam)) - theta ** 2 / 2 + u * theta)
    return symglep.Model(lagrangian, [lam, theta], parameters=[ret, ab, xy], constants={imp: 2.5},
                         inputs=[u], name="hostile")


def _pairs(safe, memory):
    """(string, in-memory expression) for every expression of the report (same nesting in both)."""
    if isinstance(safe, str):
        yield safe, memory
    elif isinstance(safe, dict):
        assert isinstance(memory, dict) and len(safe) == len(memory)
        for (_, a), (_, b) in zip(safe.items(), memory.items()):
            yield from _pairs(a, b)
    elif isinstance(safe, list):
        for a, b in zip(safe, memory):
            yield from _pairs(a, b)
    else:
        assert safe is None and memory is None


def test_hostile_names_parse_back_and_evaluate_equal():
    d = symglep.derive(hostile_model())
    data = json.loads(report.render(d, "json"))
    table = data["symbol_table"]
    names = {e["name"] for e in table}
    assert {"lambda", "θ₁", "return", "a b", "x+y", "__import__", "lambda_dot", "p_θ₁"} <= names
    for e in table:
        assert e["safe"].isascii() and e["safe"].isidentifier()
    assert len({e["safe"] for e in table}) == len(table)
    local = {e["safe"]: sp.Symbol(e["safe"], **e["assumptions"]) for e in table}
    to_model = {local[e["safe"]]: sp.Symbol(e["name"], **e["assumptions"]) for e in table}
    memory = report.expressions(d, lambda e: e, lambda s: s.name, lambda e: e)
    pairs = list(_pairs(data["safe_expressions"], memory))
    assert len(pairs) > 30
    checked = 0
    for seed in range(2):
        values = point(d, seed, extra=d.readable.momentum_rates)
        for text, expr in pairs:
            parsed = sp.parse_expr(text, local_dict=local).xreplace(to_model)
            assert parsed.free_symbols <= set(values), (text, parsed.free_symbols - set(values))
            close(parsed, expr, values, text, rtol=1e-20)
            checked += 1
    assert checked == 2 * len(pairs)
    # the human strings keep the model's names
    assert "a b" in data["lagrangian"]


# ---------------------------------------------------------------------------
# rendering: matplotlib mathtext must typeset every display equation
# ---------------------------------------------------------------------------

def _mathtext(expr: str) -> None:
    from matplotlib import mathtext

    mathtext.math_to_image(f"${expr}$", io.BytesIO(), format="png", dpi=50)


@pytest.mark.parametrize("name", ["cart_pole", "double_pendulum", "charged_particle", "relativistic_particle",
                                  "damped_chain_nonuniform"])
def test_latex_report_renders_with_mathtext(name):
    d = derived(name)
    text = d._repr_latex_()
    rows = [line for line in text.splitlines() if "&=" in line]
    assert len(rows) >= 2 + 2 * d.model.n + 1 + 2 * d.model.n + 1
    for row in rows:
        row = row.replace("&=", "=").rstrip().removesuffix(r"\\").strip()
        if r"\begin{matrix}" in row:  # the mass matrix: mathtext has no matrix, so each entry on its own
            assert row.startswith(r"\mathbf{M} = \left[\begin{matrix}")
            body = row.split(r"\begin{matrix}")[1].split(r"\end{matrix}")[0]
            entries = [e for line in body.split(r"\\") for e in line.split("&")]
            assert len(entries) == d.model.n ** 2
            for entry in entries:
                _mathtext(entry.strip())
        else:
            _mathtext(row)
    verdicts = [line for line in text.splitlines() if line.startswith(r"\intertext{")]
    assert any(v.startswith(r"\intertext{Legendre regular") for v in verdicts)
    assert any(v.startswith(r"\intertext{time-reversible (L even in v): ") for v in verdicts)
    if shutil.which("pdflatex"):  # the whole block typesets (amsmath)
        _pdflatex(text)
    markdown = d._repr_markdown_()
    assert markdown.startswith(f"# Derivation of `{d.model.name}`") and "## Hamilton's equations" in markdown
    for line in markdown.splitlines():
        if line.startswith("$$") and r"\begin{matrix}" not in line:
            _mathtext(line.strip("$"))


def _pdflatex(block: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "d.tex"
        doc.write_text("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n" + block
                       + "\\end{document}\n")
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp,
                              capture_output=True, text=True, errors="replace", timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]


def test_mathtext_check_rejects_bad_latex():
    with pytest.raises(ValueError):
        _mathtext(r"\frac{a}{")


def test_residual_report_rich_display():
    rep = residual_report(derived("harmonic_oscillator"))
    assert rep._repr_latex_() == rep.render("latex") and r"\begin{align*}" in rep._repr_latex_()
    assert rep._repr_markdown_().startswith("#")


def test_array_model_reports_hamilton_equations():
    from symglep.network.commands import derive_report

    model = symglep.load_model(str(ROOT / "examples/network_springs.py"))
    data = json.loads(derive_report(model, "json"))
    assert len(data["hamilton_equations"]) == 2 and "p[i] / m_i" in data["hamilton_equations"][0]
    for fmt in ("text", "markdown", "latex"):
        assert "Hamilton" in derive_report(model, fmt)


def test_the_budget_leaves_a_timer_of_the_program_alone():
    """A program's own SIGALRM timer is neither cancelled nor replaced by the simplification deadline."""
    import signal

    from symglep.simplify import deadline

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with deadline(0.05):
            pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0   # still armed
        time.sleep(0.5)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


SWALLOWED_ALARM = """
import sys, time
from symglep.simplify import _OverTime, deadline

start = time.perf_counter()
lost = []
try:
    with deadline(0.1):
        try:
            while True:
                pass
        except _OverTime:
            lost.append(1)   # the first alarm lands where Python ignores exceptions (a gc callback)
        while time.perf_counter() - start < 30:
            pass             # an attempt that would otherwise run on with no limit
except _OverTime:
    print(len(lost), round(time.perf_counter() - start, 2))
"""


def test_a_lost_alarm_is_followed_by_another(tmp_path):
    """An _OverTime raised where it is ignored (seen in CI inside hypothesis's gc callback) does not leave
    the attempt unbounded: the alarm repeats until the attempt stops. Run in a subprocess so that a
    regression fails on its timeout instead of hanging the suite."""
    import subprocess
    import sys

    script = tmp_path / "lost_alarm.py"
    script.write_text(SWALLOWED_ALARM)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    lost, seconds = done.stdout.split()
    assert lost == "1" and float(seconds) < 2.0, done.stdout + done.stderr


def test_the_alarm_waits_outside_finalisers_and_gc_callbacks():
    """The deadline's alarm does not raise inside a ``__del__`` or a garbage-collector callback, where Python
    would drop the exception with an "Exception ignored" report (seen in CI inside JAX's gc callback); it
    raises anywhere else, and its repeat reaches the attempt once the finaliser has returned."""
    import gc
    import signal
    import sys
    import weakref

    from symglep.simplify import _alarm, _OverTime

    seen = {}

    class Finalised:
        def __del__(self):
            seen["__del__"] = _alarm(signal.SIGALRM, sys._getframe())

    def callback(phase, info):  # noqa: ARG001 - gc callback signature
        if phase == "start" and "gc" not in seen:
            seen["gc"] = _alarm(signal.SIGALRM, sys._getframe())

    Finalised()  # dropped at once: __del__ runs here
    watched = type("Watched", (), {})()
    weakref.finalize(watched, lambda: seen.setdefault("finalize", _alarm(signal.SIGALRM, sys._getframe())))
    del watched  # its finaliser (like sympy.lambdify's line-cache cleanup) runs here
    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert seen == {"__del__": None, "finalize": None, "gc": None}
    # the weak containers' removal callbacks (SymPy's caches; seen raising in a session-38 test run)
    from symglep.simplify import _WEAK_CONTAINER_CALLBACKS
    for container in (weakref.WeakSet(), weakref.WeakKeyDictionary(), weakref.WeakValueDictionary()):
        assert container._remove.__code__ in _WEAK_CONTAINER_CALLBACKS
    with pytest.raises(_OverTime):
        _alarm(signal.SIGALRM, sys._getframe())


def test_elastic_double_pendulum_prints_textbook_equations():
    """A 4-coordinate model written in Cartesian components (new-user probe: its Euler–Lagrange lines were
    printed raw, 1024 ops): the report derives each piece from L multiplied out with sin² + cos² = 1 and
    cos a cos b + sin a sin b = cos(a − b), so M reads m2 cos(a1 − a2), and every printed Euler–Lagrange line
    equals sympy's euler_equations of the L the user wrote."""
    t = dynamicsymbols._t
    r1, r2, a1, a2 = dynamicsymbols("r1 r2 a1 a2")
    m1, m2, k1, k2, l1, l2, g = sp.symbols("m1 m2 k1 k2 l1 l2 g", positive=True)
    x1, y1 = r1 * sp.sin(a1), -r1 * sp.cos(a1)
    x2, y2 = x1 + r2 * sp.sin(a2), y1 - r2 * sp.cos(a2)
    kinetic = (m1 * (x1.diff(t) ** 2 + y1.diff(t) ** 2) + m2 * (x2.diff(t) ** 2 + y2.diff(t) ** 2)) / 2
    lag = kinetic - m1 * g * y1 - m2 * g * y2 - k1 * (r1 - l1) ** 2 / 2 - k2 * (r2 - l2) ** 2 / 2
    model = symglep.Model(lagrangian=lag, coordinates=[r1, r2, a1, a2], parameters=[m1, m2, k1, k2, l1, l2],
                          constants={g: 9.81}, name="elastic_double")
    d = symglep.derive(model)
    r = d.readable
    q = {s.name: s for s in d.model.q}
    assert r.mass_matrix[0, 1] == m2 * sp.cos(q["a1"] - q["a2"]) and r.mass_matrix[0, 2] == 0
    assert r.op_counts["euler_lagrange"]["readable"] <= 0.25 * r.op_counts["euler_lagrange"]["raw"]
    assert r.op_counts["mass_matrix"]["readable"] <= 45
    # collected by accelerations and velocities (readable.collected_form): the radial-angular Coriolis terms of
    # both masses are one product, and the forcing is smaller than multiplied out (119 ops before)
    from symglep.readable import collected_form
    a1_dot, r1_dot = (s for s in d.model.v if s.name in ("a1_dot", "r1_dot"))
    sample = sp.expand(2 * a1_dot * r1_dot * (sp.Symbol("m1") + sp.Symbol("m2")) * q["r1"] + q["r1"] * sp.cos(q["a1"]))
    assert sp.count_ops(collected_form(sample, list(d.model.v))) < sp.count_ops(sample)
    assert r.op_counts["forcing"]["readable"] <= 112
    plain = {}
    for s, s_plain in zip((r1, r2, a1, a2), d.model.q):
        i = d.model.q.index(s_plain)
        plain.update({s.diff(t, 2): d.model.a[i], s.diff(t): d.model.v[i], s: s_plain})
    reference = [e.lhs.subs(plain).subs({t: d.model.time}) for e in euler_equations(lag, [r1, r2, a1, a2], t)]
    for seed in range(2):
        values = point(d, seed)
        for i, (ref, shown) in enumerate(zip(reference, r.euler_lagrange)):
            close(ref + shown.xreplace(d.model.constants), 0, values, f"EL{i} vs euler_equations")
        for i, (shown, raw) in enumerate(zip(r.momenta, d.el.momenta)):
            close(shown, raw, values, f"p{i}")
    # no closed-form H above a coupled 3 x 3 block: the report states H = ½ (p − b)ᵀ M⁻¹ (p − b) + V + W with the
    # M it prints; evaluated with M inverted numerically, that H is p·v − L at random states
    assert d.hamiltonian is None and r.hamiltonian_implicit is not None
    text = report.render_text(d)
    assert "Hamiltonian: H = ½ (p − b)ᵀ M⁻¹ (p − b) + V + W with the M above" in text and "  b = [0, 0, 0, 0]" in text
    parts = r.hamiltonian_implicit
    lagrangian = d.model.lagrangian.xreplace(d.model.constants)
    for seed in range(3):
        values = point(d, seed)
        real = lambda e: evaluate(sp.sympify(e).xreplace(d.model.constants), values).real  # noqa: E731
        mass = np.array([[real(r.mass_matrix[i, j]) for j in range(4)] for i in range(4)])
        p = np.array([real(e) for e in d.el.momenta])
        v = np.array([float(values[s]) for s in d.model.v])
        b = np.array([real(e) for e in parts["offset"]])
        h = 0.5 * (p - b) @ np.linalg.solve(mass, p - b) + real(parts["potential"] + parts["time_and_inputs"])
        reference = p @ v - real(lagrangian)
        assert abs(h - reference) <= 1e-11 * max(1.0, abs(reference)), (h, reference)


def test_the_budget_floor_covers_models_of_up_to_six_coordinates():
    from symglep.simplify import FAST_FLOOR_S
    assert Budget.for_model("fast", 6, 0.1).total == FAST_FLOOR_S
    assert Budget.for_model("fast", 7, 0.1).total == pytest.approx(0.05)


def test_array_element_forms_are_simplified_within_a_deadline(monkeypatch):
    """New-user probe: an array model with log(cosh(g z))/g spent 74 s in sympy.simplify of its element forms,
    with --simplify none too. Each element form now gets ELEMENT_SIMPLIFY_S seconds, then prints as it is."""
    from symglep.network import derive as network_derive

    def slow(expr, *args, **kwargs):
        time.sleep(30)
        return expr

    x = sp.Symbol("x")
    expr = sp.log(sp.cosh(2 * x)) / 2
    monkeypatch.setattr(network_derive.sp, "simplify", slow)
    started = time.perf_counter()
    assert network_derive._small_simplified(expr) == expr
    assert time.perf_counter() - started < network_derive.ELEMENT_SIMPLIFY_S + 2.0


def test_a_rotating_frame_prints_its_coriolis_and_centrifugal_terms_collected():
    """New-user probe: '-W*m*y_dot - W*m*(W*x + y_dot) + k*x + ...' for m ẍ − 2 W m ẏ + (k − m W²) x: the
    Euler–Lagrange lines are now also collected by accelerations, velocities and coordinates."""
    t = dynamicsymbols._t
    x, y, u = dynamicsymbols("x y u")
    m, k, w = sp.symbols("m k W", positive=True)
    lag = m * ((x.diff(t) - w * y) ** 2 + (y.diff(t) + w * x) ** 2) / 2 - k * (x**2 + y**2) / 2 + u * x
    d = symglep.derive(symglep.Model(lagrangian=lag, coordinates=[x, y], parameters=[m, k, w], inputs=[u]))
    first = str(d.readable.euler_lagrange[0])
    assert "-2*W*m*y_dot" in first and "x*(-W**2*m + k)" in first, first
    values = point(d, 0)
    close(d.readable.euler_lagrange[0], d.el.residuals[0], values, "EL0")


def test_the_determinant_of_a_diagonal_mass_is_the_product_of_its_entries(monkeypatch):
    """A relativistic H of two coordinates (√(m² + p₁²) + √(m² + p₂²) + ...) has a diagonal M of square-root
    entries, and SymPy's Berkowitz det, called outside the time budget, cancelled for 5 minutes (new-user probe):
    a diagonal M's det is the product of its entries, and a full det runs within the budget."""
    q1, q2 = dynamicsymbols("q1 q2")
    p1, p2 = sp.symbols("p1 p2")
    m, k, c = sp.symbols("m k c", positive=True)
    model = symglep.Model.from_hamiltonian(sp.sqrt(m**2 + p1**2) + sp.sqrt(m**2 + p2**2) + k * (q1**2 + q2**2) / 2
                                           + c * sp.cos(q1 - q2), [q1, q2], [p1, p2], parameters=[m, k, c])

    def refused(self, *args, **kwargs):
        raise AssertionError("det of a diagonal matrix")

    monkeypatch.setattr(sp.MatrixBase, "det", refused)
    d = symglep.derive(model)
    mass = d.readable.mass_matrix
    assert mass[0, 1] == 0 and mass[1, 0] == 0
    assert sp.simplify(d.readable.det_mass - mass[0, 0] * mass[1, 1]) == 0


def test_a_cosh_kinetic_energy_reads_with_asinh_and_its_forms_agree_with_euler_equations():
    """``H = m cosh(p/m)``-type kinetic energies invert to ``log(v + √(v² + 1))``, which left L, M and p
    unreadable (M 128 ops for ``m/√(1 + v²)``; probe, session 37): the momentum is written ``asinh``, and the
    accelerations still solve sympy's own Euler–Lagrange equations of the H-built L at random points."""
    q, q2 = dynamicsymbols("q q2")
    p, p2 = sp.symbols("p p2")
    m, k, a = sp.symbols("m k a", positive=True)
    model = symglep.Model.from_hamiltonian(m * sp.cosh(p / m) + a * sp.cosh(p2) + k * (q**2 + q2**2) / 2,
                                           [q, q2], [p, p2], parameters=[m, k, a])
    d = symglep.derive(model)
    (x, x2), (v, v2) = model.q, model.v
    expected = (m * v * sp.asinh(v) - m * sp.sqrt(1 + v**2) + v2 * sp.asinh(v2 / a) - sp.sqrt(a**2 + v2**2)
                - k * (x**2 + x2**2) / 2)
    assert not model.lagrangian.has(sp.log)
    assert sp.simplify(model.lagrangian - expected) == 0
    mass = d.readable.mass_matrix
    assert sp.count_ops(mass[0, 0]) <= 6 and sp.simplify(mass[0, 0] - m / sp.sqrt(1 + v**2)) == 0
    assert sp.simplify(mass[1, 1] - 1 / sp.sqrt(a**2 + v2**2)) == 0
    # the accelerations solve sympy's Euler-Lagrange equations of L (an independent route), at random points
    t = sp.Symbol("t")
    f, f2 = sp.Function("f")(t), sp.Function("f2")(t)
    timed = {x: f, x2: f2, v: f.diff(t), v2: f2.diff(t)}
    reference = euler_equations(model.lagrangian.subs(timed), [f, f2], t)
    rng = random.Random(3)
    for _ in range(3):
        constants = {m: rng.uniform(0.5, 2), k: rng.uniform(0.5, 2), a: rng.uniform(0.5, 2)}
        state = {x: rng.uniform(-1, 1), x2: rng.uniform(-1, 1), v: rng.uniform(-2, 2), v2: rng.uniform(-2, 2)}
        accelerations = [float(d.el.accelerations[i].subs(constants).subs(state)) for i in range(2)]
        at = {f.diff(t, 2): accelerations[0], f2.diff(t, 2): accelerations[1], f.diff(t): state[v],
              f2.diff(t): state[v2], f: state[x], f2: state[x2]}
        for eq in reference:
            assert abs(float(eq.lhs.subs(constants).subs(at))) < 1e-12


def test_the_report_writes_its_own_letters_apart_from_the_model_symbols_of_the_same_name():
    """A pendulum of length L with a coupling c and a cart mass M printed "∂L/∂L", "cost c = …" beside a
    parameter c, and "mass matrix M: [M]" (probe, session 38): where the model declares L, H, M or c, the
    report's own Lagrangian, Hamiltonian and mass matrix read ℒ, ℋ, 𝐌 and the cost line drops its letter;
    the model's symbols and a model without such names print as before."""
    th, u = dynamicsymbols("theta u")
    m, L, c, M, H = sp.symbols("m L c M H", positive=True)
    clash = symglep.Model(M * L**2 * th.diff() ** 2 / 2 - m * L * sp.cos(th) - H * th**4 + c * th * u, [th],
                          parameters=[m, L, c, M, H], inputs=[u], cost=sp.sin(th) ** 2 / 2, name="clash")
    text = report.render_text(symglep.derive(clash))
    lines = text.splitlines()
    assert lines[2].startswith("ℒ = ") and "L**2" in lines[2] and lines[3].startswith("cost = sin(theta)")
    assert "  ∂ℒ/∂L = " in text and "  ∂ℒ/∂c = theta*u" in text and "∂L/∂" not in text
    assert "mass matrix 𝐌:" in text and "Hamiltonian: ℋ = " in text and "ℒ and ℋ real where" in text
    latex = report.render_latex(symglep.derive(clash))
    assert r"\mathcal{L} &= " in latex and r"\mathrm{cost} &= " in latex and r"\frac{\partial \mathcal{L}}" in latex
    plain = report.render_text(symglep.derive(symglep.load_model(str(ROOT / "examples" / "harmonic_oscillator.py"))))
    assert "\nL = " in plain and "\ncost c = " in plain and "ℒ" not in plain and "𝐌" not in plain


def test_a_flip_refusal_without_inputs_does_not_speak_of_inputs():
    """L = z ẋ − k x²/2 − z²/2 (no inputs) was told "reversing an input that multiplies them (u -> -u) would
    restore it" (probe, session 38)."""
    x, z = dynamicsymbols("x z")
    k = sp.Symbol("k", positive=True)
    d = symglep.derive(symglep.Model(z * x.diff() - k * x**2 / 2 - z**2 / 2, [x, z], parameters=[k]))
    assert d.sym.flip is None and "input" not in d.sym.flip_note and "no sign flip reaches them" in d.sym.flip_note


def test_a_log_cosh_kinetic_energy_reads_with_atanh_and_the_relativistic_h_as_a_physicist_writes_it():
    """H = a log cosh p inverted to log √((v + a)/(a − v)) (M printed at 150 ops), and the relativistic example's
    H read m²/√(m² + p²) + p²/√(m² + p²) + … and M m (1 + v²/(1 − v²))/√(1 − v²) (probe, session 38): the
    momentum is atanh(v/a), and readable forms take the symbols as real and group shared denominators."""
    x = dynamicsymbols("x")
    p = sp.Symbol("p")
    a, k = sp.symbols("a k", positive=True)
    model = symglep.Model.from_hamiltonian(a * sp.log(sp.cosh(p)) + k * x**2 / 2, [x], [p], parameters=[a, k])
    d = symglep.derive(model)
    v = model.v[0]
    assert model.lagrangian.has(sp.atanh) and not model.lagrangian.has(sp.log(sp.sqrt((v + a) / (a - v))))
    assert sp.simplify(d.readable.mass_matrix[0, 0] - a / (a**2 - v**2)) == 0
    assert sp.count_ops(d.readable.mass_matrix[0, 0]) <= 6
    rel = symglep.derive(symglep.load_model(str(ROOT / "examples" / "relativistic_particle.py")))
    m, kk = (next(s for s in rel.model.parameters if s.name == n) for n in ("m", "k"))
    (xr,), (vr,), (pr,), (u,) = rel.model.q, rel.model.v, rel.model.p, rel.model.u
    assert rel.readable.hamiltonian == kk * xr**2 / 2 - u * xr + sp.sqrt(m**2 + pr**2)
    assert rel.readable.mass_matrix[0, 0] == m / (1 - vr**2) ** sp.Rational(3, 2)


def test_readable_forms_over_the_reals_keep_factored_signs_and_never_print_abs_or_derivative():
    """Regressions of taking the symbols real in tidy (probe p4, session 38): mapping the names back rebuilt
    −(a x (x² + z²) + k z + w x) as −a x (x² + z²) − k z − w x (longer: heb_nonlinear_oscillator's accelerations
    20 → 20 instead of 16), and √(r²) became |r|, whose derivative printed sign(r)·Derivative(r, r) in Hamilton's
    equations. Both forms must stay equal to the raw ones."""
    heb = symglep.derive(symglep.load_model(str(ROOT / "examples" / "heb_nonlinear_oscillator.py")))
    assert heb.readable.op_counts["accelerations"]["readable"] < heb.readable.op_counts["accelerations"]["raw"]
    r, th, u = dynamicsymbols("r theta u")
    m, k = sp.symbols("m k", positive=True)
    polar = symglep.Model(m * (r.diff() ** 2 + r**2 * th.diff() ** 2) / 2 - k * sp.sqrt(r**2) + r * u, [r, th],
                          parameters=[m, k], inputs=[u])
    d = symglep.derive(polar)
    shown = report.render_text(d)
    assert "Derivative" not in shown and "Abs" not in shown and "sign(" not in shown
    rates = d.readable.hamilton_equations
    raw = [-sp.diff(d.hamiltonian, q) for q in polar.q]
    rng = random.Random(5)
    for _ in range(3):
        at = {s: rng.uniform(0.5, 1.5) for e in raw for s in e.free_symbols}
        for (_, rate), want in zip(rates, raw):
            assert abs(float(rate.subs(at)) - float(want.subs(at))) < 1e-12 * (1 + abs(float(want.subs(at))))


def test_a_relativistic_particle_in_space_built_from_h_reads_its_textbook_lagrangian():
    """H = √(m² + |p|²) + k|q|²/2 in three dimensions: the isotropic inverse built L as a raw quotient whose 3 × 3
    mass matrix kept SymPy's det busy for minutes (probe p4); L is grouped over its root: −m √(1 − |v|²) − k|q|²/2."""
    x, y, z = dynamicsymbols("x y z")
    px, py, pz = sp.symbols("p_x p_y p_z")
    m, k = sp.symbols("m k", positive=True)
    model = symglep.Model.from_hamiltonian(sp.sqrt(m**2 + px**2 + py**2 + pz**2) + k * (x**2 + y**2 + z**2) / 2,
                                           [x, y, z], [px, py, pz], parameters=[m, k])
    (qx, qy, qz), (vx, vy, vz) = model.q, model.v
    expected = -m * sp.sqrt(1 - vx**2 - vy**2 - vz**2) - k * (qx**2 + qy**2 + qz**2) / 2
    assert sp.expand(model.lagrangian - expected) == 0
    d = symglep.derive(model)
    # M = m γ (1 + γ² v vᵀ), det M = m³ γ⁵ (γ = 1/√(1 − |v|²)), at a random speed below 1
    at = {m: 1.3, vx: 0.2, vy: -0.35, vz: 0.4}
    gamma = 1 / (1 - 0.2**2 - 0.35**2 - 0.4**2) ** 0.5
    assert abs(float(d.readable.det_mass.subs(at)) - 1.3**3 * gamma**5) < 1e-12 * 1.3**3 * gamma**5


def test_the_force_of_a_log_cosh_potential_reads_tanh():
    """The force of V = log cosh(a x + b) printed a·sinh(a x + b)/cosh(a x + b) (probe, session 38): the readable
    accelerations write tanh, equal to the raw ones at random points."""
    x = dynamicsymbols("x")
    a, b, k = sp.symbols("a b k", positive=True)
    model = symglep.Model(x.diff() ** 2 / 2 - sp.log(sp.cosh(a * x + b)) - k * x**2 / 2, [x], parameters=[a, b, k])
    d = symglep.derive(model)
    shown = d.readable.accelerations[0]
    assert shown.has(sp.tanh) and not shown.has(sp.sinh)
    rng = random.Random(6)
    for _ in range(3):
        at = {s: rng.uniform(0.5, 1.5) for s in d.el.accelerations[0].free_symbols}
        assert abs(float(shown.subs(at)) - float(d.el.accelerations[0].subs(at))) < 1e-12
