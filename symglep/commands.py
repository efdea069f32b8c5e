"""Every ``symglep`` command on every kind of system (the click CLI is a thin layer over this).

The system's :class:`~symglep.capabilities.Capabilities` is asked first, so a refusal
comes in one line with its reason; then the command runs in the module of the
system's kind: :mod:`symglep.scalar_commands`, :mod:`symglep.network.commands`,
:mod:`symglep.stack.commands`. Each of them offers the same functions:
``derive_report``, ``residuals_report``, ``write_generated``, ``check``, ``train``.
"""

from __future__ import annotations

from types import ModuleType

from . import scalar_commands
from .bc_check import parse_bcs
from .boundary import condition_names
from .command_options import CheckOptions, TrainOptions
from .errors import SymglepError
from .network import commands as array_commands
from .stack import commands as stack_commands
from .systems import declares, kind_of, loss_model

COMMANDS = {"scalar": scalar_commands, "array": array_commands, "stack": stack_commands}


def commands_of(system) -> ModuleType:
    """The module that runs the commands for ``system``'s kind."""
    return COMMANDS[kind_of(system)]


def derive_report(system, fmt: str, simplify: str = "fast") -> str:
    """``symglep derive`` (theory §1–§5; stacks: per unit, the glue and the stacked rule, theory §9);
    ``simplify`` is the time budget of the readable forms (theory §11)."""
    system.capabilities.require("command", "derive")
    return commands_of(system).derive_report(system, fmt, simplify)


def residuals_report(system, bc: str, fmt: str) -> str:
    """``symglep residuals`` (theory §2–§3); ``bc``: ``all``, one condition or a comma-separated list."""
    system.capabilities.require("command", "residuals")
    return commands_of(system).residuals_report(system, condition_names(bc), fmt)


def write_generated(system, out_dir: str, target: str = "numba", integrator: str = "auto", force: bool = False,
                    precision: str = "float64") -> list:
    """``symglep generate``: writes ``OUT/<name>/<target>/…`` and returns the paths."""
    caps = system.capabilities
    caps.require("command", "generate")
    caps.require("target", target)
    if integrator != "auto":
        caps.require("integrator", integrator)
    return commands_of(system).write_generated(system, out_dir, target, integrator, force, precision)


def generate_notes(system, target: str = "numba", integrator: str = "auto") -> list:
    """Lines ``symglep generate`` prints after the paths: what ``target``'s files leave out for ``system`` and
    why (a scalar model that is not time-reversible has no C gradient; arrays and stacks always do)."""
    return scalar_commands.generate_notes(system, target, integrator) if kind_of(system) == "scalar" else []


def check(system, opts: CheckOptions) -> tuple:
    """``symglep check``: ``(report, text)``; ``report["passed"]`` decides the exit code."""
    caps = system.capabilities
    caps.require("command", "check --bc" if opts.bc is not None else "check")
    if opts.bc is not None:
        parse_bcs(opts.bc)  # an unknown name: one-line error before any work
    if opts.integrator != "auto":
        caps.require("integrator", opts.integrator)
    for flag, given in (("--params", opts.params_file is not None), ("--size", opts.size is not None),
                        ("--naive-echo", opts.naive_echo)):
        if given:
            caps.require("check option", flag)
    if opts.route != "auto":
        caps.require("route", opts.route)  # the route that runs is accepted by name (array models, stacks: echo)
    if opts.bc is None and not any(declares(loss_model(system), cost) for cost in ("cost", "terminal_cost")):
        raise SymglepError(f"{system.name!r} declares no cost (nor terminal cost{' on its top unit' if kind_of(system) == 'stack' else ''}): "
                           "its loss is 0 for every θ, so the check would compare zero gradients; declare cost= "
                           "(and targets=) to check what is learned")
    return commands_of(system).check(system, opts)




def train(system, opts: TrainOptions) -> tuple:
    """``symglep train``: ``(lines to print, {label: loss history}, plot title)``."""
    caps = system.capabilities
    caps.require("command", "train")
    caps.require("estimator", opts.estimator)
    if opts.integrator != "auto":
        caps.require("integrator", opts.integrator)
    for cell in opts.options_given():
        caps.require("train option", cell)
    return commands_of(system).train(system, opts)
