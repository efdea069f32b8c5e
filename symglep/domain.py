"""Where a model's expressions are real: the conditions that logarithms, roots and inverse trigonometric
functions put on their arguments (theory §2: the Legendre transform and its regularity hold there only).

``L = −m √(1 − ẋ²)`` is real for ``1 − ẋ² ≥ 0``; a saturating inductor's ``H`` with
``log((p + a)/(a − p))`` for ``(p + a)/(a − p) > 0``. Conditions that SymPy proves from the declared
assumptions (``√(p² + m²)`` with ``m`` real) are dropped; what remains is stated by ``symglep derive``, so a
reader knows where "regular: yes" and the printed equations apply.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef


def _conditions(expr) -> list:
    """Each ``(argument, relation)`` an elementary function of ``expr`` needs for a real value."""
    found = []
    for f in sp.preorder_traversal(expr):
        if isinstance(f, sp.log):
            found.append(sp.Gt(f.args[0], 0, evaluate=False))
        elif isinstance(f, sp.Pow) and not f.exp.is_integer:  # x**(1/3) of x < 0 is not real in the kernels either
            found.append((sp.Gt if f.exp.is_negative else sp.Ge)(f.base, 0, evaluate=False))
        elif isinstance(f, (sp.asin, sp.acos)):
            found.append(sp.Le(f.args[0] ** 2, 1, evaluate=False))
        elif isinstance(f, sp.atanh):
            found.append(sp.Lt(f.args[0] ** 2, 1, evaluate=False))
        elif isinstance(f, sp.acosh):
            found.append(sp.Ge(f.args[0], 1, evaluate=False))
    return found


#: random points at which an unproven condition is sampled (:func:`random_values`); one that holds at every
#: point is taken to hold everywhere
SAMPLES = 2000


def _holds(condition) -> bool:
    """Whether ``condition`` (``a ⋛ b``) holds wherever the symbols may be: proven by SymPy from their
    assumptions, or true at :data:`SAMPLES` random points (``v + √(1 + v²) > 0``, which SymPy cannot prove)."""
    gap = _as_real(condition.lhs - condition.rhs)
    proven = {sp.StrictGreaterThan: gap.is_positive, sp.GreaterThan: gap.is_nonnegative,
              sp.StrictLessThan: gap.is_negative, sp.LessThan: gap.is_nonpositive}[type(condition)]
    if proven is not None:
        return bool(proven)
    values = random_values(gap, SAMPLES)
    if values is None or np.iscomplexobj(values) or not np.all(np.isfinite(values)):
        return False
    test = {sp.StrictGreaterThan: values > 0, sp.GreaterThan: values >= 0,
            sp.StrictLessThan: values < 0, sp.LessThan: values <= 0}[type(condition)]
    return bool(np.all(test))


def random_values(expr, samples: int):
    """``expr`` evaluated by NumPy at ``samples`` random points (seed 0): a symbol declared positive in (0, 2], one
    declared negative in [−2, 0), the others (states, parameters of no sign) in [−3, 3]; an array of ``samples``
    values (complex or not finite where ``expr`` is), or ``None`` where NumPy cannot evaluate it."""
    symbols = sorted(expr.free_symbols, key=str)
    rng = np.random.default_rng(0)
    columns = [rng.uniform(1e-3, 2.0, samples) if s.is_positive else rng.uniform(-2.0, -1e-3, samples)
               if s.is_negative else rng.uniform(-3.0, 3.0, samples) for s in symbols]
    try:
        with np.errstate(all="ignore"):
            return np.broadcast_to(sp.lambdify(symbols, expr, "numpy")(*columns), (samples,))
    except (TypeError, ValueError, NameError, ZeroDivisionError):
        return None


def _as_real(expr):
    """``expr`` with its coordinates, velocities, momenta and parameters of no declared sign taken as real
    numbers (they are: a state and parameters of a physical system), so that ``p² + m² ≥ 0`` is proven."""
    states = [a for a in expr.atoms(sp.Derivative, AppliedUndef)]
    expr = expr.xreplace({a: sp.Dummy(real=True) for a in sorted(states, key=sp.count_ops, reverse=True)})
    return expr.xreplace({s: sp.Dummy(s.name, real=True) for s in expr.free_symbols if s.is_real is None})


def real_domain(*exprs) -> list:
    """The conditions, in order of appearance and without repeats, under which every expression of ``exprs``
    is real and not proven to hold everywhere (an empty list: real wherever it is finite)."""
    out = []
    for expr in exprs:
        if expr is None:
            continue
        for condition in _conditions(sp.sympify(expr)):
            if condition not in out and not _holds(condition):
                out.append(condition)
    return out


def never_real_zero(factor) -> bool:
    """Whether ``factor`` has an imaginary part that no real state or parameter makes zero (``v − i``, which a
    fully simplified det M can hold): it vanishes nowhere a system runs."""
    if not factor.has(sp.I):
        return False
    return sp.im(_as_real(factor)).is_zero is False
