"""Bad model input of every kind gets one clear line, exit 2, and JSON on stdout when ``--format json`` asks.

Each case was found by a new-user probe: an array model took an undeclared factor, ``I`` or ``oo`` in front of a
term and crashed later (``KeyError: 'symbol c has no generated name'``) or wrote C that does not compile; a scalar
model took ``oo`` (SymPy folds ``oo*k`` into ``oo``) and every command after derive crashed; a Hamiltonian took a
velocity; a ``print`` in the model file corrupted the JSON report; usage errors left stdout empty.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symglep
from symglep.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]

ARRAY_HEAD = """
import sympy as sp
from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, r
x = Coordinates("x")
k = Parameter("k", ("n",), positive=True, init=(0.5, 1.5))
B = Parameter("B", ("n", "m"), init=(-0.5, 0.5))
u = Inputs("u")
y = Targets("y")
w = sp.Symbol("w", positive=True)
c = sp.Symbol("c", positive=True)
KIN = Sum(x.dot[i] ** 2 / 2, i)
POT = Sum(k[i] * x[i] ** 2 / 2 + w * x[i] ** 4 / 4, i)
DRV = Sum(x[i] * (B @ u)[i], i)
COST = Sum((x[r] - y[r]) ** 2 / 2, r)
"""


def _array_file(tmp_path, lagrangian: str, constants: str = "{w: 0.5}") -> str:
    path = tmp_path / "arr.py"
    path.write_text(ARRAY_HEAD + f"model = ArrayModel(lagrangian={lagrangian}, cost=COST, coordinates=x, "
                    f"parameters=[k, B], inputs=u, targets=y, constants={constants}, name='arr', size=3, "
                    "sizes={'m': 1, 'r': 1})\n")
    return str(path)


@pytest.mark.parametrize("factor, said", [
    ("c*", "symbol c is not declared (add it to parameters or constants)"),
    ("sp.I*", "the Lagrangian contains a complex, infinite or undefined number (I) in Sum("),
    ("sp.oo*", "the Lagrangian contains a complex, infinite or undefined number (-oo) in Sum("),
])
@pytest.mark.parametrize("command", [["derive"], ["generate", "--target", "c"]])
def test_an_array_model_refuses_a_bad_factor_in_front_of_a_term(tmp_path, factor, said, command):
    path = _array_file(tmp_path, f"KIN - {factor}POT + DRV")
    out = CliRunner().invoke(main, [*command, path, *(["--out", str(tmp_path / "gen")] if len(command) > 1 else [])])
    assert out.exit_code == 2 and said in out.output and out.output.count("\n") == 1, out.output
    assert not (tmp_path / "gen").exists()


def test_a_declared_factor_in_front_of_an_array_term_is_the_same_model(tmp_path):
    """``c*Sum(...)`` with ``c`` a declared constant is ``Sum(c*...)``: the same equations."""
    factored = symglep.load_model(_array_file(tmp_path, "KIN - c*POT + DRV", "{w: 0.5, c: 2.0}"))
    (tmp_path / "arr.py").unlink()
    inside = ARRAY_HEAD.replace("POT = Sum(k[i]", "POT = Sum(c * k[i]").replace("+ w * x[i]", "+ c * w * x[i]")
    (tmp_path / "arr.py").write_text(inside + "model = ArrayModel(lagrangian=KIN - POT + DRV, cost=COST, "
                                     "coordinates=x, parameters=[k, B], inputs=u, targets=y, constants={w: 0.5, c: 2.0}, "
                                     "name='arr', size=3, sizes={'m': 1, 'r': 1})\n")
    plain = symglep.load_model(str(tmp_path / "arr.py"))
    assert [sp.expand(t.sign * t.expr) for t in factored.terms] == [sp.expand(t.sign * t.expr) for t in plain.terms]
    assert all(t.sign.free_symbols == set() for t in factored.terms)


SCALAR = """
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols
import symglep
x = dynamicsymbols('x'); u, y = dynamicsymbols('u y')
k, m = sp.symbols('k m', positive=True)
"""


@pytest.mark.parametrize("lagrangian, said", [
    ("m*x.diff()**2/2 - sp.oo*k*x**2/2 + u*x", "the Lagrangian contains a complex, infinite or undefined number (-oo)"),
    ("m*x.diff()**2/2 - sp.nan*k*x**2/2 + u*x", "the Lagrangian contains a complex, infinite or undefined number (nan)"),
])
def test_a_scalar_model_refuses_infinity_and_nan(tmp_path, lagrangian, said):
    """``oo*k`` folds into ``oo`` (derive then said k 'appears nowhere'); ``nan*...`` folds the whole L into nan
    (the error said 'does not depend on any velocity')."""
    path = tmp_path / "model.py"
    path.write_text(SCALAR + f"model = symglep.Model({lagrangian}, [x], parameters=[k, m], inputs=[u], targets=[y], "
                    "cost=(x - y)**2/2)\n")
    out = CliRunner().invoke(main, ["derive", str(path)])
    assert out.exit_code == 2 and said in out.output and out.output.count("\n") == 1, out.output


def test_a_hamiltonian_with_a_velocity_is_refused(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(SCALAR + "p = sp.Symbol('p')\nmodel = symglep.Model.from_hamiltonian(p**2/(2*m) + k*x**2/2 + "
                    "x.diff(), [x], [p], parameters=[k, m])\n")
    out = CliRunner().invoke(main, ["derive", str(path)])
    assert out.exit_code == 2 and "the Hamiltonian contains the velocity Derivative(x(t), t)" in out.output, out.output


@pytest.mark.parametrize("command", ["derive", "residuals"])
def test_a_print_in_the_model_file_leaves_the_json_report_whole(tmp_path, command):
    path = tmp_path / "model.py"
    source = (ROOT / "examples" / "harmonic_oscillator.py").read_text()
    path.write_text('print("hello from the model file")\n' + source)
    out = CliRunner().invoke(main, [command, str(path), "--format", "json"])
    assert out.exit_code == 0, out.output
    json.loads(out.stdout)
    assert "hello from the model file" in out.stderr


def test_a_binary_file_is_not_a_model_file(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")
    out = CliRunner().invoke(main, ["derive", str(path)])
    assert out.exit_code == 2 and "is not a Python model file" in out.output and "line None" not in out.output


@pytest.mark.parametrize("options, kind, said", [
    (["--steps", "0"], "UsageError", "Invalid value for '--steps'"),
    (["--beta", "abc"], "SymglepError", "--beta must be a positive number or 'auto'"),
    (["--tolerance", "0"], "SymglepError", "--tolerance must be a positive finite number"),
])
def test_check_json_reports_an_option_error_on_stdout(options, kind, said):
    path = str(ROOT / "examples" / "harmonic_oscillator.py")
    out = CliRunner().invoke(main, ["check", path, "--format", "json", *options])
    assert out.exit_code == 2, out.output
    report = json.loads(out.stdout)
    assert report["kind"] == kind and said in report["error"] and report["exit_code"] == 2, report


@pytest.mark.parametrize("source, said", [
    ("stack = 'not a stack'\n", "'stack' in {path} is a str, not a symglep.Model"),
    ("from sympy.physics.mechanics import dynamicsymbols\ny = dynamicsymbols('y')\n",
     "'y' in {path} is a SymPy expression, not a symglep.Model"),
])
def test_a_wrong_object_is_named_by_what_it_is(tmp_path, source, said):
    """'stack' holding a str was "defines no object named 'model'"; a function of time y(t) was "is a y" (the
    class SymPy makes for it) (new-user probe)."""
    path = tmp_path / "wrong.py"
    path.write_text(source)
    spec = str(path) + ("" if source.startswith("stack") else ":y")
    out = CliRunner().invoke(main, ["derive", spec])
    assert out.exit_code == 2 and said.format(path=path) in out.output, out.output


def test_training_a_model_without_parameters_is_refused(tmp_path):
    """It ran and printed '(unchanged)', exit 0, where --freeze of every parameter is refused (new-user probe)."""
    path = tmp_path / "fixed.py"
    path.write_text("import sympy as sp\nfrom sympy.physics.mechanics import dynamicsymbols\nimport symglep\n"
                    "x = dynamicsymbols('x'); u, y = dynamicsymbols('u y')\n"
                    "model = symglep.Model(x.diff()**2/2 - x**2/2 + u*x, [x], inputs=[u], targets=[y], "
                    "cost=(x - y)**2/2, name='fixed')\n")
    out = CliRunner().invoke(main, ["train", str(path), "--epochs", "2", "--quiet"])
    assert out.exit_code == 2 and "'fixed' has no parameters: nothing is left to learn" in out.output, out.output


def test_a_data_file_whose_start_sets_one_unit_says_so(tmp_path):
    """The message read "needs a multiple of 1 for at least 2 units" (new-user probe)."""
    data = tmp_path / "one.npz"
    np.savez(data, inputs=np.zeros((2, 5, 1)), targets=np.zeros((2, 5, 1)), q0=np.zeros((2, 1)), dt=0.1)
    out = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "network_chain.py"), "--task", str(data),
                                    "--epochs", "1", "--quiet"])
    assert out.exit_code == 2 and "has 1 coordinate(s) per sequence, which sets the array model 'network_chain'" \
        "'s number of units; it needs one per unit, at least 2" in out.output, out.output


def test_a_folding_momentum_map_is_named(tmp_path):
    """L = ẋ²/2 + c ẋ³/3: p = ẋ + c ẋ² has closed-form roots, but none inverts it everywhere (it folds at
    ẋ = −1/(2c)); the refusal said "no closed-form branch of the inverse" (new-user probe)."""
    path = tmp_path / "fold.py"
    path.write_text(SCALAR + "c = sp.Symbol('c', positive=True)\n"
                    "model = symglep.Model(x.diff()**2/2 + c*x.diff()**3/3 - k*x**2/2, [x], parameters=[k], "
                    "constants={c: 0.2})\n")
    out = CliRunner().invoke(main, ["derive", str(path)])
    assert out.exit_code == 0 and "the momentum map has 2 roots, none of which inverts it at every sampled value " \
        "of the velocities and parameters (where the map folds" in out.output, out.output


def test_a_velocity_start_outside_the_real_domain_is_named():
    """Probe r2 (session 37): a relativistic kinetic term started at v0 > c was reported as "NaN first appears at
    step 1 ... reduce dt": its momentum p0 = dL/dv is already NaN at the start. It is now named as a start outside
    the model's real domain; below c the run is finite."""
    kern = symglep.compile(symglep.load_model(str(ROOT / "examples" / "relativistic_particle.py")), dt=0.01)
    u = np.zeros((1, 11, 1))
    qT, pT, loss = kern.free([1.0, 1.0], [[0.3]], v0=[[0.5]], u=u, y=u)
    assert np.all(np.isfinite(pT))
    with pytest.raises(symglep.NumericalError, match=r"the start of sequence 0 lies outside the model's real domain: "
                                                     r"the momentum p0 = dL/dv at q0 = \[0.3\], v0 = \[1.2\] is \[nan\]"):
        kern.free([1.0, 1.0], [[0.3]], v0=[[1.2]], u=u, y=u)


def test_a_symbol_declared_with_other_assumptions_is_named_as_such(tmp_path):
    """Symbol('m', positive=True) in L and Symbol('m') in parameters were told "symbol m in the Lagrangian is not
    declared" (probe, session 38): the message says both are named m with other assumptions."""
    path = tmp_path / "twins.py"
    path.write_text(SCALAR + "model = symglep.Model(m*x.diff()**2/2 - x**2/2, [x], parameters=[sp.Symbol('m')])\n")
    out = CliRunner().invoke(main, ["derive", str(path)])
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert ("a symbol named m is declared, but with other assumptions: Symbol('m', positive=True) here, "
            "Symbol('m') declared") in out.output


def test_a_parameter_named_like_a_function_gets_a_safe_name_that_parses_back(tmp_path):
    """A parameter named exp beside exp(-x²) kept the safe name exp, and `2*x*exp*exp(-x**2)` did not parse back
    with the reader of docs/derive-schema.md (probe, session 38)."""
    path = tmp_path / "named_exp.py"
    path.write_text(SCALAR + "e = sp.Symbol('exp', positive=True)\n"
                    "model = symglep.Model(x.diff()**2/2 - e*sp.exp(-x**2) - k*x**2/2, [x], parameters=[e, k])\n")
    out = CliRunner().invoke(main, ["derive", str(path), "--format", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    table = {row["name"]: row for row in report["symbol_table"]}
    assert table["exp"]["safe"] != "exp" and table["k"]["safe"] == "k"
    local = {row["safe"]: sp.Symbol(row["safe"], **row["assumptions"]) for row in report["symbol_table"]}
    lagrangian = sp.parse_expr(report["safe_expressions"]["lagrangian"], local_dict=local)
    x, v, e, k = (local[table[n]["safe"]] for n in ("x", "x_dot", "exp", "k"))
    assert sp.simplify(lagrangian - (v**2 / 2 - e * sp.exp(-x**2) - k * x**2 / 2)) == 0


def test_freeze_reads_a_name_with_a_comma_inside_braces():
    """--freeze 'k_{1,2}' was split at its comma and refused while the list of parameters named it (probe)."""
    from symglep.command_options import name_list
    assert name_list("k_{1,2}, B[0,1], A") == ["k_{1,2}", "B[0,1]", "A"]


def test_a_first_step_that_is_not_finite_from_a_finite_start_is_not_blamed_on_dt():
    """Springs with rest lengths started at rest at the origin (the sine task's start) give a 0/0 force at the
    first step; the message said "reduce dt" and "a smaller --dt" (probe, session 38), which cannot help."""
    from symglep.diagnose import START_NOT_FINITE, NumericalError, where_not_finite
    from symglep.network.runtime import _finite

    tq, tp = np.zeros((1, 4, 2)), np.zeros((1, 4, 2))
    tq[0, 1:] = np.nan
    phrase = where_not_finite(tq, tp, 0.0, 0.1)
    assert START_NOT_FINITE in phrase and "initial_positions" in phrase
    with pytest.raises(NumericalError) as caught:
        _finite([tq], "free phase", where=lambda: phrase)
    assert "reduce dt" not in str(caught.value)
    later = tq.copy()
    later[0, 1] = 0.5  # finite for a step: a run that diverges later keeps its dt advice
    assert START_NOT_FINITE not in where_not_finite(later, tp, 0.0, 0.1)
    with pytest.raises(NumericalError, match="reduce dt"):
        _finite([later], "free phase", where=lambda: where_not_finite(later, tp, 0.0, 0.1))


def test_a_hamiltonian_linear_in_the_momenta_is_named_a_first_order_system(tmp_path):
    """H = a p sin q + q²/2 was refused as "the momentum map is singular; declare the Lagrangian instead", whose
    Lagrangian would be refused too (probe, session 38): the message names the first-order system."""
    path = tmp_path / "linear_h.py"
    path.write_text(SCALAR + "p = sp.Symbol('p'); a = sp.Symbol('a', positive=True)\n"
                    "model = symglep.Model.from_hamiltonian(a*p*sp.sin(x) + x**2/2, [x], [p], parameters=[a])\n")
    out = CliRunner().invoke(main, ["derive", str(path)])
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert "linear in the momenta" in out.output and "first-order system" in out.output
    assert "declare the Lagrangian instead" not in out.output


def test_a_stack_whose_first_step_is_not_finite_drops_the_dt_advice_too():
    """The array kernels drop "reduce dt" when the force is not finite at the start state; the stack's message
    still ended "(… reduce dt, or check them)" after it (noted in session 38). A later divergence keeps it."""
    from types import SimpleNamespace

    from symglep.diagnose import START_NOT_FINITE
    from symglep.stack.runtime import StackKernels

    fake = SimpleNamespace(stack=SimpleNamespace(midpoint_units=[]))
    fake._where = lambda *args: f" first at step 1 of sequence 0; {START_NOT_FINITE} (a 0/0 …)"
    assert "reduce dt" not in str(StackKernels._diverged(fake, "the free pass of the stack", (None,) * 7))
    fake._where = lambda *args: " first at step 40 of sequence 0"
    assert "reduce dt" in str(StackKernels._diverged(fake, "the free pass of the stack", (None,) * 7))
