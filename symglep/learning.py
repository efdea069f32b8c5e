"""The learning rule ``∂L/∂θ`` and its locality (theory §2, §5).

The bulk term of the estimator contrasts ``−∂L/∂θ = ∂V/∂θ`` along nudged
trajectories; which state variables it reads says how local the rule is.
"""

from __future__ import annotations

import sympy as sp

from .fastdiff import Differentiator
from .model import Model
from .symbolic import is_zero

#: a quotient up to this many operations has each symbol it shows tested: do its terms cancel it out?
CANCELLATION_OPS = 400


def learning_rule(model: Model) -> dict:
    """``{θ: ∂L/∂θ}`` for every learnable parameter."""
    grads = Differentiator(model.lagrangian).grad(model.parameters)
    return dict(zip(model.parameters, grads))


def locality(model: Model, rule: dict) -> dict:
    """For each parameter, the coordinates, velocities, inputs and time its rule reads."""
    out = {}
    for theta, expr in rule.items():
        free = read_symbols(model, expr)
        out[theta] = {
            "coordinates": [s.name for s in model.q if s in free],
            "velocities": [s.name for s in model.v if s in free],
            "inputs": [s.name for s in model.u if s in free],
            "parameters": [s.name for s in model.parameters if s in free],
            "time": model.time in free,
        }
    return out


def describe_locality(entry: dict) -> str:
    """One line such as ``reads q1, q2`` for a :func:`locality` entry."""
    reads = entry["coordinates"] + entry["velocities"] + entry["inputs"]
    if entry["time"]:
        reads.append("t")
    return "reads " + ", ".join(reads) if reads else "reads no state (constant)"


def read_symbols(model: Model, expr) -> set:
    """The symbols ``expr`` depends on. A quotient (e.g. the Lagrangian ``from_hamiltonian`` builds, one
    uncancelled fraction) can show symbols whose terms cancel: each is kept only if the derivative by it is
    not identically zero (sampled, :func:`~symglep.symbolic.is_zero`)."""
    free = expr.free_symbols
    quotient = any(p.exp.is_negative for p in expr.atoms(sp.Pow))
    if not quotient or sp.count_ops(expr) > CANCELLATION_OPS:
        return free
    return {s for s in free if not is_zero(sp.diff(expr, s), fixed=model.constants)}
