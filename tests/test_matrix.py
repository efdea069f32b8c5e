"""Every command on every kind of system (issue #16's matrix): a scalar model, an array model, a
stack of scalar units and a stack of array units run each command through the one CLI; every cell a
system refuses is refused in one line with the reason its capabilities give (docs/architecture.md)."""

import json
import pathlib

import pytest
import sympy as sp
from click.testing import CliRunner
from sympy.physics.mechanics import dynamicsymbols

import symglep
from symglep.capabilities import AREAS, Capabilities, NotSupportedError
from symglep.cli import main
from symglep.network.model import ArrayModel
from symglep.stack.model import Stack
from symglep.systems import kind_of

ROOT = pathlib.Path(__file__).resolve().parents[1]
SYSTEMS = {
    "scalar": ROOT / "examples" / "harmonic_oscillator.py",
    "array": ROOT / "examples" / "network_chain.py",
    "stack": ROOT / "examples" / "stack_chain_hru.py",
    "stack of arrays": ROOT / "examples" / "stack_hru.py",
}
# the two HRU layers (304 parameters) overshoot at Adam's default lr 0.05 on the first step (the example's
# docstring runs lr 0.01)
TRAIN_ARGS = {"stack of arrays": ["--lr", "0.01"]}
KINDS = {"scalar": "scalar", "array": "array", "stack": "stack", "stack of arrays": "stack"}
# short runs: the matrix asserts that each command runs and passes its own check, not figures
# (--route echo, the route that runs, is accepted on every kind: new-user probe)
CHECK_ARGS = {"scalar": ["--steps", "200", "--route", "echo"], "array": ["--steps", "200", "--size", "6", "--route", "echo"],
              "stack": ["--steps", "200", "--dt", "0.05", "--route", "echo"], "stack of arrays": ["--steps", "200", "--dt", "0.05"]}


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.parametrize("kind", SYSTEMS)
def test_load_system_returns_each_kind(kind):
    assert kind_of(symglep.load_system(str(SYSTEMS[kind]))) == KINDS[kind]


@pytest.mark.parametrize("kind", SYSTEMS)
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "json"])
def test_derive_and_residuals_run_on_every_kind(kind, fmt):
    for command in ("derive", "residuals"):
        code, out = run(command, SYSTEMS[kind], "--format", fmt)
        assert code == 0, out
        assert out.strip()
        if fmt == "json":
            json.loads(out)


@pytest.mark.parametrize("kind", SYSTEMS)
@pytest.mark.parametrize("target", ["numba", "c"])
def test_generate_runs_or_refuses_with_its_reason(kind, target, tmp_path):
    system = symglep.load_system(str(SYSTEMS[kind]))
    code, out = run("generate", SYSTEMS[kind], "--target", target, "--out", tmp_path)
    why = system.capabilities.reason("target", target)
    if why is None:
        assert code == 0, out
        paths = [pathlib.Path(line) for line in out.split()]
        assert paths and all(p.is_file() and p.stat().st_size > 0 for p in paths)
    else:
        assert code == 2 and why in out and out.count("\n") == 1, out
        assert not any(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("kind", SYSTEMS)
def test_check_runs_and_passes_on_every_kind(kind):
    code, out = run("check", SYSTEMS[kind], *CHECK_ARGS[kind], "--format", "json")
    assert code == 0, out
    assert json.loads(out)["passed"]


@pytest.mark.parametrize("kind", SYSTEMS)
def test_train_runs_or_refuses_with_its_reason(kind, tmp_path):
    system = symglep.load_system(str(SYSTEMS[kind]))
    save = tmp_path / "run.json"
    code, out = run("train", SYSTEMS[kind], "--epochs", "3", "--quiet", "--save", save, *TRAIN_ARGS.get(kind, []))
    why = system.capabilities.reason("command", "train")
    if why is None:
        assert code == 0, out
        history = json.loads(save.read_text())["loss_history"]
        assert len(history) >= 3 and history[-1] < history[0]
    else:
        assert code == 2 and why in out and out.count("\n") == 1, out
        assert not save.exists()


def _flag_args(kind, area, name):
    """The command line that asks for one capability cell, or None where no flag reaches it."""
    path = SYSTEMS[kind]
    if area == "check option":
        value = {"--params": ["--params", "none.json"], "--size": ["--size", "4"], "--route": ["--route", "echo"],
                 "--naive-echo": ["--naive-echo"]}[name]
        return ["check", path, *value]
    if area == "train option":
        task = {"--task sine": ["--task", "sine"], "--task target": ["--task", "target"],
                "--task DATA.npz": ["--task", "data.npz"], "--task uea:NAME": ["--task", "uea:BasicMotions"]}
        value = task.get(name) or {"--batch": ["--batch", "2"], "--resume": ["--resume", "r.json"],
                                   "--scheduler": ["--scheduler", "tcp://127.0.0.1:1"],
                                   "--learn-initial-state": ["--learn-initial-state"],
                                   "--freeze-parameters": ["--freeze-parameters"], "--freeze": ["--freeze", "B"],
                                   "--size": ["--size", "4"]}[name]
        return ["train", path, "--epochs", "1", *value]
    if area == "integrator":
        return ["generate", path, "--integrator", name, "--out", "unused"]
    if area == "estimator":
        return ["train", path, "--epochs", "1", "--estimator", name]
    if area == "command":
        return {"check --bc": ["check", path, "--bc", "civp"], "train": ["train", path, "--epochs", "1"]}.get(name)
    if area == "target":
        return ["generate", path, "--target", name, "--out", "unused"]
    return None


REFUSED = [(kind, area, name, why) for kind, path in SYSTEMS.items()
           for area, name, why in symglep.load_system(str(path)).capabilities.table() if why is not None]


@pytest.mark.parametrize("kind, area, name, why", REFUSED, ids=[f"{k}-{a}-{n}" for k, a, n, _ in REFUSED])
def test_each_refusal_is_one_line_with_its_reason(kind, area, name, why, tmp_path, monkeypatch):
    """Every refused cell that a flag reaches: exit 2, one line, the capability's reason."""
    args = _flag_args(kind, area, name)
    if args is None:  # routes, starts and costs are asked for from Python: the capability object itself
        system = symglep.load_system(str(SYSTEMS[kind]))
        with pytest.raises(NotSupportedError, match="is not supported"):
            system.capabilities.require(area, name)
        return
    monkeypatch.chdir(tmp_path)
    code, out = run(*args)
    assert code == 2, out
    assert out.count("\n") == 1 and why in out and "Traceback" not in out, out


def test_capability_tables_name_only_known_cells():
    for cls in (symglep.Model, ArrayModel, Stack):
        for area, name, _ in cls.capabilities.table():
            assert name in AREAS[area]
    with pytest.raises(ValueError, match="unknown capability"):
        Capabilities("scalar", {("target", "fortran"): "no"})


def test_stack_units_are_scalar_or_array_models():
    """A stack takes scalar and array units in any order; anything else is refused at declaration; the C
    target serves stacks with array units as it serves array models (tests/test_stack_c.py)."""
    network = symglep.load_system(str(SYSTEMS["array"]))
    x, u = dynamicsymbols("x u")
    k = sp.Symbol("k", positive=True)
    unit = symglep.Model(x.diff() ** 2 / 2 - k * x**2 / 2 + x * u, [x], [k], inputs=[u], name="unit")
    stack = Stack([unit, network], readouts=[[x]])
    assert stack.n == 1 + network.size and stack.n_targets == network.sizes["r"]
    assert stack.capabilities.reason("target", "c") is None
    assert ArrayModel.capabilities.reason("target", "c") is None
    with pytest.raises(symglep.ModelError, match="stack units must be symglep.Model or symglep.network.ArrayModel"):
        Stack([unit, "network"], readouts=[[x]])


def test_architecture_page_shows_the_current_capability_table():
    """docs/architecture.md carries the table docs/capabilities_table.py prints from the code."""
    import runpy

    table = runpy.run_path(str(ROOT / "docs" / "capabilities_table.py"))["table"]()
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    begin, end = "<!-- capabilities:begin -->\n", "<!-- capabilities:end -->"
    shown = page[page.index(begin) + len(begin):page.index(end)]
    assert shown == table, "regenerate the table: python docs/capabilities_table.py"
