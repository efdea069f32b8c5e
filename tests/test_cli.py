"""The ``symglep`` command line: model loading errors, ``derive`` formats, ``-o`` and the JSON schema.

Most cases run in-process with :class:`click.testing.CliRunner`; a few run a
real subprocess to prove that ``python -m symglep`` and the ``symglep``
console script work. The JSON checks follow ``docs/derive-schema.md``: every
expression string is read back with ``sympy.parse_expr`` using only the names
the report lists, and must equal the in-memory derivation.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import pytest
import sympy as sp
from click.testing import CliRunner

from symglep import __version__
from symglep.cli import main
from symglep.derivation import derive
from symglep.errors import ModelError, ModelFileError, SymglepError
from symglep.loader import load_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith(("network_", "stack_")))  # arrays: test_networks.py; stacks: test_stack.py
EXAMPLE_IDS = [p.stem for p in EXAMPLES]
FORMATS = ["text", "markdown", "latex", "json"]

REQUIRED_KEYS = {
    "model", "time", "coordinates", "velocities", "momenta", "parameters", "inputs", "targets",
    "lagrangian", "cost", "euler_lagrange", "mass_matrix", "forcing", "momentum_map", "hamiltonian",
    "legendre_regular", "separable", "time_reversible", "reversibility_breaking_terms",
    "explicit_time_dependence", "learning_rule", "locality",
}
# Keys to_dict emits beyond the required ones (documented in docs/derive-schema.md).
EXTRA_KEYS = {
    "symglep_version", "accelerations", "constants", "input_rates", "explicit_accelerations",
    "accelerations_note", "velocity_map", "hamiltonian_note", "separability_note", "integrator", "integrator_note",
    "kinetic_energy", "real_where",
    "potential_energy", "notes", "time_reversal_flip", "time_reversal_flip_note", "dissipation",
    "learning_routes", "default_route", "terminal_cost",
    # readable forms, Hamilton's equations and safe names (docs/derive-schema.md, theory §11)
    "momentum_rates", "hamilton_equations", "hamilton_note", "readable", "simplification", "symbol_table",
    "safe_expressions",
}

MODEL_HEADER = """\
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols
import symglep
"""

# A regular model whose momentum depends on the input: d/dt ∂L/∂v needs u_dot.
INPUT_RATE_MODEL = MODEL_HEADER + """\
x = dynamicsymbols("x")
u, y = dynamicsymbols("u y")
m, k = sp.symbols("m k", positive=True)
model = symglep.Model(lagrangian=m * x.diff()**2 / 2 + u * x * x.diff() - k * x**2 / 2,
                      coordinates=[x], parameters=[m, k], inputs=[u], targets=[y],
                      cost=(x - y)**2 / 2, name="input_rate")
"""

# A degenerate (first-order) model: M ≡ 0, so no Hamiltonian, no explicit accelerations.
DEGENERATE_MODEL = MODEL_HEADER + """\
x, y = dynamicsymbols("x y")
u = dynamicsymbols("u")
k = sp.Symbol("k", positive=True)
model = symglep.Model(lagrangian=y * x.diff() - k * x**2 / 2 - y**2 / 2 + x * u,
                      coordinates=[x, y], parameters=[k], inputs=[u], name="degenerate")
"""

HARMONIC = MODEL_HEADER + """\
x = dynamicsymbols("x")
u, y = dynamicsymbols("u y")
k, m = sp.symbols("k m", positive=True)
model = symglep.Model(lagrangian=m * x.diff()**2 / 2 - k * x**2 / 2 + x * u,
                      coordinates=[x], parameters=[k, m], inputs=[u], targets=[y],
                      cost=(x - y)**2 / 2, name="harmonic")
other = symglep.Model(lagrangian=x.diff()**2 / 2 - k * x**2 / 2, coordinates=[x],
                      parameters=[k], name="other_model")
not_a_model = "hello"
"""


# -- helpers -------------------------------------------------------------------------------------


def _streams(result) -> tuple[str, str]:
    """``(stdout, stderr)`` of a CliRunner result, whatever the click version.

    Click >= 8.2 always captures stderr separately (``result.stderr``); older
    versions raise ``ValueError`` on ``result.stderr`` unless built with
    ``mix_stderr=False``.
    """
    try:
        return result.stdout, result.stderr
    except ValueError:  # pragma: no cover - click < 8.2 with mixed streams
        return result.output, result.output


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()  # click >= 8.2: stderr is separate already


def invoke(*args, catch_exceptions=True):
    return _runner().invoke(main, [str(a) for a in args], catch_exceptions=catch_exceptions)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def assert_user_error(result, *fragments, json_out=False):
    """Exit code 2, exactly one line on stderr starting with 'error:', no traceback anywhere; nothing on stdout,
    or (``json_out``) the same error as a JSON object."""
    out, err = _streams(result)
    assert result.exit_code == 2, (result.exit_code, out, err, result.exception)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert "Traceback" not in out + err
    if json_out:
        report = json.loads(out)
        assert report["error"] == lines[0][len("error: "):] and report["exit_code"] == 2, (report, lines)
    else:
        assert out == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def run_subprocess(args, cwd=ROOT, timeout=120):
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


# -- entry points --------------------------------------------------------------------------------


def test_version_in_process():
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_derive():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "derive" in result.output
    result = invoke("derive", "--help")
    assert result.exit_code == 0
    for fmt in FORMATS:
        assert fmt in result.output


def test_python_dash_m_version():
    proc = run_subprocess([sys.executable, "-m", "symglep", "--version"])
    assert proc.returncode == 0, proc.stderr
    assert __version__ in proc.stdout


def test_console_script_version():
    script = Path(sys.executable).parent / ("symglep.exe" if os.name == "nt" else "symglep")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    proc = run_subprocess([str(script), "--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"symglep, version {__version__}"


def test_python_dash_m_derive_json():
    proc = run_subprocess([sys.executable, "-m", "symglep", "derive",
                           str(ROOT / "examples" / "harmonic_oscillator.py"), "--format", "json"])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["model"] == "harmonic_oscillator"
    assert REQUIRED_KEYS <= report.keys()


def test_subprocess_error_is_one_line_without_traceback(tmp_path):
    bad = write(tmp_path, "broken.py", "a = 1\nb = (\n")
    proc = run_subprocess([sys.executable, "-m", "symglep", "derive", str(bad)])
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "broken.py" in lines[0] and "line 2" in lines[0]
    assert "Traceback" not in proc.stderr


def test_subprocess_debug_shows_traceback(tmp_path):
    bad = write(tmp_path, "raises.py", "x = 1\nraise RuntimeError('boom from model')\n")
    proc = run_subprocess([sys.executable, "-m", "symglep", "--debug", "derive", str(bad)])
    assert proc.returncode != 0
    assert proc.returncode != 2 or "Traceback" in proc.stderr
    assert "Traceback" in proc.stderr
    assert "boom from model" in proc.stderr


# -- error paths ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.py"
    assert_user_error(invoke("derive", missing), "not found", "nope.py")


def test_missing_file_with_name(tmp_path):
    missing = tmp_path / "nope.py"
    assert_user_error(invoke("derive", f"{missing}:model"), "not found", "nope.py")


def test_directory_instead_of_file(tmp_path):
    assert_user_error(invoke("derive", tmp_path), str(tmp_path))


def test_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "syntax.py", "import sympy\n\nmodel = = 3\n")
    assert_user_error(invoke("derive", path), "syntax", "syntax.py", "line 3")


def test_model_file_raising_names_file_and_line(tmp_path):
    path = write(tmp_path, "raises.py", """\
        import sympy

        def helper():
            raise ValueError("bad value in helper")

        helper()
        """)
    line = assert_user_error(invoke("derive", path), "raises.py", "line 4", "ValueError", "bad value in helper")
    assert "Traceback" not in line


def test_model_file_raising_multiline_message_stays_one_line(tmp_path):
    path = write(tmp_path, "multi.py", "x = 1\nraise ValueError('first line\\nsecond line')\n")
    line = assert_user_error(invoke("derive", path), "multi.py", "line 2", "first line", "second line")
    assert "\n" not in line


def test_model_file_calling_exit(tmp_path):
    path = write(tmp_path, "exits.py", "import sys\nsys.exit(3)\n")
    assert_user_error(invoke("derive", path), "exits.py", "exit")


def test_no_object_named_model(tmp_path):
    path = write(tmp_path, "empty.py", "x = 1\n")
    assert_user_error(invoke("derive", path), "empty.py", "'model'")


def test_name_selects_another_object(tmp_path):
    path = write(tmp_path, "two.py", HARMONIC)
    result = invoke("derive", f"{path}:other", "--format", "json")
    assert result.exit_code == 0, _streams(result)
    report = json.loads(_streams(result)[0])
    assert report["model"] == "other_model"
    assert report["parameters"] == ["k"]
    # The default is still `model`.
    result = invoke("derive", path, "--format", "json")
    assert json.loads(_streams(result)[0])["model"] == "harmonic"


def test_name_that_does_not_exist(tmp_path):
    path = write(tmp_path, "two.py", HARMONIC)
    assert_user_error(invoke("derive", f"{path}:missing"), "two.py", "'missing'")


def test_named_object_of_wrong_type(tmp_path):
    path = write(tmp_path, "two.py", HARMONIC)
    assert_user_error(invoke("derive", f"{path}:not_a_model"), "'not_a_model'", "str", "Model")


def test_wrong_type(tmp_path):
    path = write(tmp_path, "three.py", "model = 3\n")
    assert_user_error(invoke("derive", path), "three.py", "int", "Model")


def test_invalid_model_names_the_undeclared_symbol(tmp_path):
    path = write(tmp_path, "undeclared.py", MODEL_HEADER + """\
x = dynamicsymbols("x")
k, zeta = sp.symbols("k zeta")
model = symglep.Model(lagrangian=x.diff()**2 / 2 - k * x**2 / 2 - zeta * x,
                      coordinates=[x], parameters=[k])
""")
    assert_user_error(invoke("derive", path), "undeclared.py", "zeta")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reports_errors_the_same_way(tmp_path, fmt):
    """The one-line error on stderr in every format; a reader of --format json also gets it as JSON on stdout
    (derive and residuals printed nothing there, where check printed an error object), but never in a file."""
    path = write(tmp_path, "three.py", "model = 3\n")
    for command in ("derive", "residuals"):
        assert_user_error(invoke(command, path, "--format", fmt), "three.py", json_out=fmt == "json")
        assert_user_error(invoke(command, path, "--format", fmt, "-o", tmp_path / "out"), "three.py")
        assert not (tmp_path / "out").exists()


def test_unknown_format_is_a_usage_error():
    result = invoke("derive", EXAMPLES[0], "--format", "html")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# -- --debug -------------------------------------------------------------------------------------


def test_debug_propagates_load_errors(tmp_path):
    path = write(tmp_path, "three.py", "model = 3\n")
    result = invoke("--debug", "derive", path)
    assert result.exit_code != 0
    assert isinstance(result.exception, ModelFileError)
    with pytest.raises(ModelFileError, match="three.py"):
        invoke("--debug", "derive", path, catch_exceptions=False)


def test_debug_propagates_model_errors(tmp_path):
    path = write(tmp_path, "undeclared.py", MODEL_HEADER + """\
x = dynamicsymbols("x")
zeta = sp.Symbol("zeta")
model = symglep.Model(lagrangian=x.diff()**2 / 2 - zeta * x, coordinates=[x])
""")
    with pytest.raises(ModelError, match="zeta"):
        invoke("--debug", "derive", path, catch_exceptions=False)


def test_debug_keeps_the_user_exception_as_cause(tmp_path):
    path = write(tmp_path, "raises.py", "raise KeyError('deep')\n")
    with pytest.raises(ModelFileError) as info:
        invoke("--debug", "derive", path, catch_exceptions=False)
    assert isinstance(info.value.__cause__, KeyError)


def test_missing_file_debug(tmp_path):
    with pytest.raises(SymglepError, match="not found"):
        invoke("--debug", "derive", tmp_path / "nope.py", catch_exceptions=False)


def test_internal_error_is_one_line_exit_1(monkeypatch):
    import symglep.scalar_commands

    def explode(model, **options):
        raise RuntimeError("unexpected\nfailure")

    monkeypatch.setattr(symglep.scalar_commands, "derive", explode)
    result = invoke("derive", ROOT / "examples" / "harmonic_oscillator.py")
    out, err = _streams(result)
    assert result.exit_code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("internal error:"), err
    assert "RuntimeError" in lines[0] and "--debug" in lines[0]
    assert "Traceback" not in out + err
    with pytest.raises(RuntimeError, match="unexpected"):
        invoke("--debug", "derive", ROOT / "examples" / "harmonic_oscillator.py", catch_exceptions=False)


# -- -o FILE -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file_is_written(tmp_path, fmt):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / f"report.{fmt}"
    example = ROOT / "examples" / "harmonic_oscillator.py"
    result = invoke("derive", example, "--format", fmt, "-o", target)
    out, err = _streams(result)
    assert result.exit_code == 0, err
    assert out == ""
    assert sorted(os.listdir(out_dir)) == [target.name]  # no temporary files left behind
    stdout_result = invoke("derive", example, "--format", fmt)
    assert target.read_text(encoding="utf-8") == _streams(stdout_result)[0]
    if fmt == "json":
        assert json.loads(target.read_text(encoding="utf-8"))["model"] == "harmonic_oscillator"


def test_output_file_is_replaced(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old content")
    result = invoke("derive", ROOT / "examples" / "harmonic_oscillator.py", "--format", "json",
                    "--output", target)
    assert result.exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8"))["model"] == "harmonic_oscillator"
    assert sorted(os.listdir(tmp_path)) == ["report.json"]


def test_output_file_in_new_folder(tmp_path):
    target = tmp_path / "a" / "b" / "report.md"
    result = invoke("derive", ROOT / "examples" / "harmonic_oscillator.py", "--format", "markdown", "-o", target)
    assert result.exit_code == 0, _streams(result)
    assert target.read_text(encoding="utf-8").startswith("# Derivation of")


@pytest.mark.parametrize("content", ["model = 3\n", "a = (\n", "raise RuntimeError('x')\n"])
def test_no_output_file_on_error(tmp_path, content):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    path = write(model_dir, "bad.py", content)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "report.json"
    assert_user_error(invoke("derive", path, "--format", "json", "-o", target))
    assert not target.exists()
    assert os.listdir(out_dir) == []


def test_no_output_file_when_file_missing(tmp_path):
    target = tmp_path / "report.txt"
    assert_user_error(invoke("derive", tmp_path / "missing.py", "-o", target))
    assert not target.exists()
    assert os.listdir(tmp_path) == []


# -- formats on every example --------------------------------------------------------------------


@lru_cache(maxsize=None)
def cli_report(path: str, fmt: str) -> str:
    result = invoke("derive", path, "--format", fmt)
    out, err = _streams(result)
    assert result.exit_code == 0, (path, fmt, err, result.exception)
    assert err == ""
    return out


@lru_cache(maxsize=None)
def in_memory(path: str):
    return derive(load_model(path))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("example", EXAMPLES, ids=EXAMPLE_IDS)
def test_every_format_on_every_example(example, fmt):
    text = cli_report(str(example), fmt)
    assert text.strip()
    assert text.endswith("\n")


def _brace_balance_ok(text: str) -> bool:
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def test_brace_checker_itself():
    assert _brace_balance_ok(r"\frac{a}{b} \{ x \}")
    assert not _brace_balance_ok(r"\frac{a}{b")
    assert not _brace_balance_ok(r"}{")


@pytest.mark.parametrize("example", EXAMPLES, ids=EXAMPLE_IDS)
def test_latex_is_balanced(example):
    text = cli_report(str(example), "latex")
    assert _brace_balance_ok(text)
    assert text.count(r"\left") == text.count(r"\right")
    assert text.count(r"\begin{") == text.count(r"\end{")
    assert text.lstrip().startswith(r"\begin{align}")
    assert text.rstrip().endswith(r"\end{align}")
    # one line per equation: L, c (and c_T, and R when its force is kept), one EL residual and one momentum per coordinate, ∂L/∂θ per parameter,
    # the mass matrix, H and Hamilton's two equations per coordinate when H exists
    d = in_memory(str(example))
    rows = [line for line in text.splitlines() if "&=" in line]
    kept_force = d.model.rayleigh is not None and not d.model.rayleigh.rewritable  # R, whose force is in the equations
    expected = (3 + (d.model.terminal_cost != 0) + kept_force + 2 * d.model.n + len(d.model.parameters)
                + (d.hamiltonian is not None) * (1 + 2 * d.model.n))
    assert len(rows) == expected


@pytest.mark.parametrize("example", EXAMPLES, ids=EXAMPLE_IDS)
def test_markdown_has_headings(example):
    text = cli_report(str(example), "markdown")
    lines = text.splitlines()
    model_name = in_memory(str(example)).model.name
    assert lines[0] == f"# Derivation of `{model_name}`"
    for heading in ["## Euler–Lagrange equations", "## Mass matrix", "## Legendre transform",
                    "## Verdicts", "## Learning rule"]:
        assert heading in lines, heading
    assert text.count("$$") % 2 == 0
    assert _brace_balance_ok(text)


@pytest.mark.parametrize("example", EXAMPLES, ids=EXAMPLE_IDS)
def test_text_report(example):
    text = cli_report(str(example), "text")
    d = in_memory(str(example))
    assert text.startswith(f"model {d.model.name}:")
    assert "Euler–Lagrange" in text
    assert "learning rule" in text
    for theta in d.model.parameters:
        assert f"∂L/∂{theta.name} =" in text


# -- JSON ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extra_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "input_rate": write(folder, "input_rate.py", INPUT_RATE_MODEL),
        "degenerate": write(folder, "degenerate.py", DEGENERATE_MODEL),
    }


ALL_MODELS = EXAMPLE_IDS + ["input_rate", "degenerate"]


@pytest.fixture(params=ALL_MODELS)
def model_path(request, extra_models):
    if request.param in extra_models:
        return str(extra_models[request.param])
    return str(ROOT / "examples" / f"{request.param}.py")


def json_report(path: str) -> dict:
    return json.loads(cli_report(path, "json"))


def listed_names(report: dict) -> list[str]:
    names = [report["time"]]
    for key in ("coordinates", "velocities", "accelerations", "momenta", "parameters", "inputs",
                "input_rates", "targets"):
        names += report[key]
    names += list(report["constants"])
    return names


def parse(text: str, report: dict) -> sp.Expr:
    """Read ``text`` back with only the listed names; fail on any other free symbol."""
    assert isinstance(text, str), text
    names = listed_names(report)
    local = {name: sp.Symbol(name) for name in names}
    expr = sp.parse_expr(text, local_dict=local)
    stray = {s.name for s in expr.free_symbols} - set(names)
    assert not stray, f"{text!r} uses unlisted names {sorted(stray)}"
    return expr


def report_expressions(report: dict) -> dict:
    """Every expression string in the report, by a label."""
    out = {"lagrangian": report["lagrangian"], "cost": report["cost"]}
    out.update({f"euler_lagrange[{i}]": s for i, s in enumerate(report["euler_lagrange"])})
    out.update({f"mass_matrix[{i}][{j}]": s for i, row in enumerate(report["mass_matrix"])
                for j, s in enumerate(row)})
    out.update({f"forcing[{i}]": s for i, s in enumerate(report["forcing"])})
    out.update({f"momentum_map[{k}]": s for k, s in report["momentum_map"].items()})
    if report["hamiltonian"] is not None:
        out["hamiltonian"] = report["hamiltonian"]
    out.update({f"learning_rule[{k}]": s for k, s in report["learning_rule"].items()})
    out.update({f"reversibility_breaking_terms[{i}]": s
                for i, s in enumerate(report["reversibility_breaking_terms"])})
    for key in ("kinetic_energy", "potential_energy"):
        if report[key] is not None:
            out[key] = report[key]
    for key in ("velocity_map", "explicit_accelerations"):
        if report[key] is not None:
            out.update({f"{key}[{k}]": s for k, s in report[key].items()})
    return out


def memory_expressions(d) -> dict:
    """The same labels from the in-memory :class:`~symglep.derivation.Derivation`."""
    m, el = d.model, d.el
    out = {"lagrangian": m.lagrangian, "cost": m.cost}
    out.update({f"euler_lagrange[{i}]": e for i, e in enumerate(el.residuals)})
    out.update({f"mass_matrix[{i}][{j}]": el.mass_matrix[i, j] for i in range(m.n) for j in range(m.n)})
    out.update({f"forcing[{i}]": e for i, e in enumerate(el.forcing)})
    out.update({f"momentum_map[{p.name}]": e for p, e in zip(m.p, el.momenta)})
    if d.hamiltonian is not None:
        out["hamiltonian"] = d.hamiltonian
    out.update({f"learning_rule[{th.name}]": e for th, e in d.learning_rule.items()})
    out.update({f"reversibility_breaking_terms[{i}]": e for i, e in enumerate(d.sym.breaking_terms)})
    if d.sym.kinetic is not None:
        out["kinetic_energy"] = d.sym.kinetic
    if d.sym.potential is not None:
        out["potential_energy"] = d.sym.potential
    if d.velocity_map:
        out.update({f"velocity_map[{v.name}]": e for v, e in zip(m.v, d.velocity_map)})
    if el.accelerations:
        out.update({f"explicit_accelerations[{a.name}]": e for a, e in zip(m.a, el.accelerations)})
    return out


def by_name(expr) -> sp.Expr:
    """``expr`` with every symbol replaced by an assumption-free symbol of the same name."""
    expr = sp.sympify(expr)
    return expr.xreplace({s: sp.Symbol(s.name) for s in expr.free_symbols})


def random_points(names, count=3, seed=0):
    rng = random.Random(seed)
    # Values in (0.15, 0.6): inside sqrt(1 - v**2), away from poles, positive for parameters.
    return [{sp.Symbol(n): sp.Float(rng.uniform(0.15, 0.6)) for n in names} for _ in range(count)]


def assert_numerically_equal(a, b, names, label=""):
    a, b = sp.sympify(a), sp.sympify(b)
    for point in random_points(names):
        va = complex(a.xreplace(point).evalf(30))
        vb = complex(b.xreplace(point).evalf(30))
        assert abs(va - vb) <= 1e-9 * (1 + abs(va) + abs(vb)), f"{label}: {a} != {b} at {point}"


def test_json_required_and_documented_keys(model_path):
    report = json_report(model_path)
    missing = REQUIRED_KEYS - report.keys()
    assert not missing, missing
    assert report.keys() == REQUIRED_KEYS | EXTRA_KEYS


def test_json_is_valid_strict_json(model_path):
    text = cli_report(model_path, "json")
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


def test_json_types_and_names(model_path):
    report = json_report(model_path)
    d = in_memory(model_path)
    m = d.model
    n = len(report["coordinates"])
    assert report["model"] == m.name
    assert report["time"] == m.time.name
    assert report["coordinates"] == [q.name for q in m.q]
    assert report["velocities"] == [f"{q}_dot" for q in report["coordinates"]]
    assert report["accelerations"] == [f"{q}_ddot" for q in report["coordinates"]]
    assert report["momenta"] == [f"p_{q}" for q in report["coordinates"]]
    assert report["parameters"] == [s.name for s in m.parameters]
    assert report["inputs"] == [s.name for s in m.u]
    assert report["targets"] == [s.name for s in m.y]
    assert report["input_rates"] == [s.name for s in d.el.input_rates]
    assert set(report["input_rates"]) <= {f"{u}_dot" for u in report["inputs"]}
    assert all(isinstance(v, float) for v in report["constants"].values())
    names = listed_names(report)
    assert len(names) == len(set(names)), "listed names must be distinct"
    assert len(report["euler_lagrange"]) == n
    assert len(report["forcing"]) == n
    assert len(report["mass_matrix"]) == n and all(len(row) == n for row in report["mass_matrix"])
    assert list(report["momentum_map"]) == report["momenta"]
    if report["velocity_map"] is not None:
        assert list(report["velocity_map"]) == report["velocities"]
    if report["explicit_accelerations"] is not None:
        assert list(report["explicit_accelerations"]) == report["accelerations"]
    assert isinstance(report["accelerations_note"], str)
    assert isinstance(report["hamiltonian_note"], str)
    assert isinstance(report["separability_note"], str)
    for key in ("legendre_regular", "separable", "time_reversible"):
        assert isinstance(report[key], bool), key
    assert list(report["learning_rule"]) == report["parameters"]
    assert list(report["locality"]) == report["parameters"]
    for entry in report["locality"].values():
        assert set(entry) == {"coordinates", "velocities", "inputs", "parameters", "time"}
        assert set(entry["coordinates"]) <= set(report["coordinates"])
        assert set(entry["velocities"]) <= set(report["velocities"])
        assert set(entry["inputs"]) <= set(report["inputs"])
        assert set(entry["parameters"]) <= set(report["parameters"])
        assert isinstance(entry["time"], bool)
    for entry in report["explicit_time_dependence"]:
        assert set(entry) == {"symbol", "kind", "appears_in", "echo"}
        assert entry["kind"] in {"explicit time", "input", "target"}
        assert entry["symbol"] in names
        assert set(entry["appears_in"]) <= {"lagrangian", "cost"}
    assert report["time_reversible"] == (not report["reversibility_breaking_terms"])
    if not report["legendre_regular"]:
        assert report["hamiltonian"] is None
    assert (report["kinetic_energy"] is None) == (not report["separable"])
    assert (report["potential_energy"] is None) == (not report["separable"])
    assert all(isinstance(note, str) for note in report["notes"])
    assert report["symglep_version"] == __version__


def test_json_expressions_parse_with_listed_names_only(model_path):
    report = json_report(model_path)
    expressions = report_expressions(report)
    assert expressions
    for label, text in expressions.items():
        try:
            parse(text, report)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{label}: parse_expr failed on {text!r}: {exc}")


def test_json_expressions_equal_the_in_memory_derivation(model_path):
    report = json_report(model_path)
    names = listed_names(report)
    parsed = {label: parse(text, report) for label, text in report_expressions(report).items()}
    memory = memory_expressions(in_memory(model_path))
    assert parsed.keys() == memory.keys()
    for label, expr in memory.items():
        reference = by_name(expr)
        assert {s.name for s in reference.free_symbols} <= set(names), label
        assert_numerically_equal(parsed[label], reference, names, label)


def test_json_euler_lagrange_sign_convention(model_path):
    """residual = d/dt ∂L/∂v − ∂L/∂q (+ ∂R/∂v for a Rayleigh function kept as a force) = M·a − f,
    computed independently from the parsed Lagrangian."""
    report = json_report(model_path)
    names = listed_names(report)
    sym = lambda n: sp.Symbol(n)  # noqa: E731
    L = parse(report["lagrangian"], report)
    q = [sym(n) for n in report["coordinates"]]
    v = [sym(n) for n in report["velocities"]]
    a = [sym(n) for n in report["accelerations"]]
    t = sym(report["time"])
    u = [sym(n) for n in report["inputs"]]
    u_dot = [sym(f"{n}_dot") for n in report["inputs"]]

    def d_dt(e):
        return (sum((sp.diff(e, qi) * vi + sp.diff(e, vi) * ai for qi, vi, ai in zip(q, v, a)), sp.S.Zero)
                + sp.diff(e, t) + sum((sp.diff(e, ui) * ri for ui, ri in zip(u, u_dot)), sp.S.Zero))

    M = [[parse(s, report) for s in row] for row in report["mass_matrix"]]
    f = [parse(s, report) for s in report["forcing"]]
    dissipation = report["dissipation"]
    R = parse(dissipation["function"], report) if dissipation and not dissipation["rewritten"] else sp.S.Zero
    for i, text in enumerate(report["euler_lagrange"]):
        residual = parse(text, report)
        expected = d_dt(sp.diff(L, v[i])) - sp.diff(L, q[i]) + sp.diff(R, v[i])
        assert {s.name for s in expected.free_symbols} <= set(names)
        assert_numerically_equal(residual, expected, names, f"euler_lagrange[{i}]")
        m_a_minus_f = sum((M[i][j] * a[j] for j in range(len(a))), sp.S.Zero) - f[i]
        assert_numerically_equal(residual, m_a_minus_f, names, f"M·a − f [{i}]")
        for j in range(len(v)):
            assert_numerically_equal(M[i][j], sp.diff(L, v[i], v[j]), names, f"mass_matrix[{i}][{j}]")


def test_json_legendre_and_learning_rule(model_path):
    report = json_report(model_path)
    names = listed_names(report)
    L = parse(report["lagrangian"], report)
    v = [sp.Symbol(n) for n in report["velocities"]]
    p = [sp.Symbol(n) for n in report["momenta"]]
    a = [sp.Symbol(n) for n in report["accelerations"]]
    momenta = [parse(report["momentum_map"][pn], report) for pn in report["momenta"]]
    for pi, vi, expr in zip(p, v, momenta):
        assert_numerically_equal(expr, sp.diff(L, vi), names, f"momentum_map[{pi}]")
    for theta, text in report["learning_rule"].items():
        assert_numerically_equal(parse(text, report), sp.diff(L, sp.Symbol(theta)), names, f"learning_rule[{theta}]")
    if report["velocity_map"] is not None:
        vmap = {vi: parse(report["velocity_map"][vi.name], report) for vi in v}
        for pi, expr in zip(p, momenta):  # p(q, v(q, p)) == p
            assert_numerically_equal(expr.xreplace(vmap), pi, names, f"velocity_map inverts {pi}")
        if report["hamiltonian"] is not None:
            H = parse(report["hamiltonian"], report)
            legendre = sum((pi * vmap[vi] for pi, vi in zip(p, v)), sp.S.Zero) - L.xreplace(vmap)
            assert_numerically_equal(H, legendre, names, "hamiltonian = p·v − L")
    if report["explicit_accelerations"] is not None:
        acc = {ai: parse(report["explicit_accelerations"][ai.name], report) for ai in a}
        for i, text in enumerate(report["euler_lagrange"]):
            assert_numerically_equal(parse(text, report).xreplace(acc), 0, names, f"EL[{i}] at a = M⁻¹f")
    if report["separable"]:
        K = parse(report["kinetic_energy"], report)
        V = parse(report["potential_energy"], report)
        assert_numerically_equal(K - V, L, names, "L = K − V")
        assert not (K.free_symbols - set(v) - {sp.Symbol(n) for n in report["parameters"]}
                    - {sp.Symbol(n) for n in report["constants"]})
    flip = {vi: -vi for vi in v}
    for i, text in enumerate(report["reversibility_breaking_terms"]):
        term = parse(text, report)
        assert_numerically_equal(term.xreplace(flip), -term, names, f"breaking term {i} is odd in v")


def test_json_verdicts_of_the_examples():
    verdicts = {name: json_report(str(ROOT / "examples" / f"{name}.py")) for name in EXAMPLE_IDS}
    ho = verdicts["harmonic_oscillator"]
    assert ho["euler_lagrange"] and parse(ho["euler_lagrange"][0], ho) == sp.sympify("m*x_ddot + k*x - u")
    assert ho["legendre_regular"] and ho["separable"] and ho["time_reversible"]
    assert ho["reversibility_breaking_terms"] == []
    assert ho["explicit_time_dependence"][0]["symbol"] == "u"
    cp = verdicts["charged_particle"]
    assert cp["time_reversible"] is False and cp["reversibility_breaking_terms"]
    do = verdicts["damped_oscillator"]
    assert do["separable"] is False
    assert any(e["kind"] == "explicit time" for e in do["explicit_time_dependence"])
    for name in ("double_pendulum", "relativistic_particle", "oscillator_chain"):
        assert verdicts[name]["legendre_regular"] is True
        assert verdicts[name]["hamiltonian"] is not None


def test_json_degenerate_model_has_null_hamiltonian(extra_models):
    report = json_report(str(extra_models["degenerate"]))
    assert report["legendre_regular"] is False
    assert report["hamiltonian"] is None
    assert report["velocity_map"] is None
    assert report["explicit_accelerations"] is None
    assert report["notes"]


def test_json_input_rate_model_lists_u_dot(extra_models):
    report = json_report(str(extra_models["input_rate"]))
    assert report["input_rates"] == ["u_dot"]
    assert any("u_dot" in s for s in report["euler_lagrange"])


def test_schema_doc_lists_every_key():
    doc = (ROOT / "docs" / "derive-schema.md").read_text(encoding="utf-8")
    report = json_report(str(ROOT / "examples" / "harmonic_oscillator.py"))
    keys = set(report) | set(report["locality"]["k"]) | set(report["explicit_time_dependence"][0])
    undocumented = sorted(key for key in keys if f"| `{key}` |" not in doc)
    assert not undocumented, f"docs/derive-schema.md does not document {undocumented}"


def test_a_closed_pipe_ends_quietly():
    """`symglep train ... | head`: the reader goes away; no traceback, exit 141 (128 + SIGPIPE) as a shell reports."""
    proc = subprocess.Popen([sys.executable, "-m", "symglep", "train", str(ROOT / "examples" / "harmonic_oscillator.py"),
                             "--epochs", "2", "--beta", "1e-3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdout.close()  # before the first line is written
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err and "internal error" not in err, err


# -- user mistakes found by a new-user probe: one line, exit 2, before any long work -------------------
OSCILLATOR_FILE = str(ROOT / "examples" / "harmonic_oscillator.py")


@pytest.mark.parametrize("args, message", [
    (["train", OSCILLATOR_FILE, "--seed", "-1"], "Invalid value for '--seed'"),
    (["check", OSCILLATOR_FILE, "--seed", "-3"], "Invalid value for '--seed'"),
    (["train", OSCILLATOR_FILE, "--scheduler", "garbage"], "--scheduler must be an address like tcp://host:8786"),
    (["train", OSCILLATOR_FILE, "--scheduler", ""], "--scheduler must be an address like tcp://host:8786"),
    (["train", OSCILLATOR_FILE, "--estimator", "bptt", "--beta", "1e-3"], "uses no nudge: drop --beta"),
    (["train", OSCILLATOR_FILE, "--estimator", "echo-complex", "--beta", "1e-3"], "drop --beta"),
    (["train", OSCILLATOR_FILE, "--plot", "{file}/x.png"], "cannot write --plot {file}/x.png: {file} is a file"),
    (["train", OSCILLATOR_FILE, "--save", "{file}/x.json"], "cannot write --save {file}/x.json"),
    (["derive", OSCILLATOR_FILE, "-o", "{file}/x.txt"], "cannot write {file}/x.txt"),
    (["generate", OSCILLATOR_FILE, "--out", "{file}/sub"], "cannot write {file}/sub"),
    (["check", OSCILLATOR_FILE, "--tolerance", "nan"], "--tolerance must be a positive finite number, got nan"),
    (["check", OSCILLATOR_FILE, "--tolerance", "-1"], "--tolerance must be a positive finite number, got -1.0"),
])
def test_user_mistakes_are_one_line_errors_before_any_work(tmp_path, args, message):
    """No 'internal error', no traceback, no training whose result cannot be written (exit 2)."""
    afile = tmp_path / "afile"
    afile.write_text("a file, not a folder")
    args = [a.replace("{file}", str(afile)) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message.replace("{file}", str(afile)) in result.output
    assert "internal error" not in result.output and "Traceback" not in result.output


def test_check_bc_judges_with_the_given_tolerance():
    """--tolerance applies to --bc too (it was ignored, and the JSON recorded 1e-6)."""
    out = CliRunner().invoke(main, ["check", OSCILLATOR_FILE, "--bc", "pfvp", "--steps", "200", "--tolerance",
                                    "1e-14", "--format", "json"])
    report = json.loads(out.output)
    assert report["tolerance"] == 1e-14 and out.exit_code == 1 and not report["passed"]


@pytest.mark.parametrize("name, note", [("gyroscope", True), ("charged_particle", False), ("harmonic_oscillator", False)])
def test_generate_c_says_when_the_files_have_no_gradient(tmp_path, name, note):
    """A model whose echo is not exact gets C files without `_gradient`: `generate` wrote only the paths (new-user
    probe); it now says so in one note line, naming the breaking term and where the exact routes run. A reversible
    model's C files have the gradient and no note, and so do a model whose echo is exact with its parameters'
    time-reversal flip (the charged particle's field B -> -B, theory §4; a second probe missed it in C)."""
    res = CliRunner().invoke(main, ["generate", str(ROOT / "examples" / f"{name}.py"), "--target", "c",
                                    "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    header = (tmp_path / name / "c" / f"{name}.h").read_text()
    assert (f"int {name}_gradient(" in header) is not note
    notes = [line for line in res.output.splitlines() if line.startswith("note:")]
    assert notes == ([f"note: no {name}_gradient in the C files: L is not even in the velocities "
                      "(Omega*x*y_dot - Omega*x_dot*y) and no sign flip of its parameters makes it so, so the plain "
                      "echo is not the gradient; its exact routes (digital PFVP, BPTT) run in the Numba kernels "
                      "(--target numba)"] if note else [])


def test_check_of_a_system_without_a_cost_is_refused(tmp_path):
    """A model (or a stack whose top unit) declares no cost: check compared zero gradients and said "passed"
    (new-user probe: a stack without a top cost). It is refused with the reason."""
    path = write(tmp_path, "nocost.py", """
        import sympy as sp
        from sympy.physics.mechanics import dynamicsymbols
        import symglep
        x = dynamicsymbols("x")
        k = sp.Symbol("k", positive=True)
        model = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2, [x], parameters=[k], name="nocost")
        """)
    assert_user_error(invoke("check", path, "--steps", "50"), "'nocost' declares no cost", "loss is 0 for every θ")
