"""Readable forms of a derivation, for the reports (theory §11).

Built beside the raw results, never instead of them: the numeric layer and
the code generator keep reading :class:`symglep.mechanics.EulerLagrange` and
the raw Hamiltonian. Here, within a :class:`symglep.simplify.Budget`:

* the mass-matrix entries, ``det M`` and ``adj M`` (dense ``M`` up to 3 × 3),
  the momenta and the learning rule, each simplified;
* the Hamiltonian in structured form ``H = ½ (p − b)ᵀ M⁻¹ (p − b) + V + W``
  for ``L = ½ vᵀ M v + b·v − V − W`` (``M⁻¹ = adj M / det M``; ``W`` the terms
  with explicit time or inputs, kept apart), or the raw ``H`` simplified,
  whichever is smaller (never larger than the raw one);
* the accelerations as ``a = adj(M) f / det M`` with the simplified pieces;
* Hamilton's equations ``q̇ = ∂H/∂p``, ``ṗ = −∂H/∂q − ∂R/∂v`` of the printed
  ``H`` (``R`` a non-variational Rayleigh function, theory §7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp
from sympy.simplify.fu import TR10i

from .mechanics import EulerLagrange, euler_lagrange
from .model import Model, velocity_name
from .simplify import MAX_OPS, SMALL_MODEL, Budget, pythagoras, smallest, tidy, within
from .symbolic import op_count


@dataclass
class Readable:
    """Simplified and structured forms of one derivation, with op counts before/after."""

    mode: str
    mass_matrix: sp.Matrix
    det_mass: sp.Expr | None            # det M (n ≤ 3), else None
    adjugate: sp.Matrix | None          # adj M (dense n ≤ 3), else None
    momenta: list
    hamiltonian: sp.Expr | None
    hamiltonian_parts: dict | None      # {"kinetic", "potential", "time_and_inputs"} when H is structured
    hamiltonian_form: str
    accelerations: list | None
    momentum_rates: list                # symbols ṗ_i (``p_<q>_dot``)
    hamilton_equations: list | None     # [(q̇_i expr, ṗ_i expr)] from the printed H
    hamilton_note: str
    learning_rule: dict
    op_counts: dict = field(default_factory=dict)  # what -> {"raw": int, "readable": int}
    seconds: float = 0.0
    budget_seconds: float = 0.0
    attempts_dropped: int = 0
    forcing: list | None = None         # f of M·a = f
    euler_lagrange: list | None = None  # the residuals d/dt ∂L/∂v − ∂L/∂q, each shown as M·a − f if smaller
    hamiltonian_implicit: dict | None = None  # b, V, W of H = ½ (p − b)ᵀ M⁻¹ (p − b) + V + W when H is not built


def momentum_rate_symbol(p: sp.Symbol) -> sp.Symbol:
    """``ṗ`` of momentum ``p`` (``p_x`` -> ``p_x_dot``)."""
    return sp.Symbol(velocity_name(p.name))


def _is_diagonal(matrix: sp.Matrix) -> bool:
    return all(matrix[i, j] == 0 for i in range(matrix.rows) for j in range(matrix.cols) if i != j)


def rewritten_lagrangian(lagrangian: sp.Expr, budget: Budget) -> sp.Expr | None:
    """``L`` multiplied out, with ``sin² + cos² = 1`` and the sum-of-products rules (fu's TR10i) applied, or
    None when that changes nothing or runs out of the budget. An equal function whose derivatives are
    often far smaller than the raw ``L``'s: a kinetic energy written in Cartesian components becomes
    ``½ m (ṙ² + r² θ̇²) + m₂ ṙ₁ ṙ₂ cos(θ₁ − θ₂) + …`` before anything is differentiated (theory §11)."""
    if budget.mode == "none" or sp.count_ops(lagrangian) > budget.max_ops:
        return None
    rewritten = within(min(budget.per_expression, budget.remaining()),
                       lambda: TR10i(pythagoras(sp.expand(lagrangian))))
    return None if rewritten is None or rewritten == lagrangian else rewritten


#: seconds the boundary report gives :func:`compact_mechanics` (it has no budget of its own)
COMPACT_S = 2.0


def compact_mechanics(model: Model, el) -> tuple:
    """``(momenta, mass matrix)``, each entry the smaller of its raw form and the one derived from
    :func:`rewritten_lagrangian` (equal functions): what the boundary residuals differentiate (theory §3, §11)."""
    budget = Budget("fast", COMPACT_S, COMPACT_S, MAX_OPS["fast"])
    lagrangian = rewritten_lagrangian(model.lagrangian, budget)
    if lagrangian is None:
        return list(el.momenta), el.mass_matrix
    momenta = [smallest([raw, sp.diff(lagrangian, v)]) for raw, v in zip(el.momenta, model.v)]
    mass = el.mass_matrix.copy()
    for i, p in enumerate(momenta):
        for j, v in enumerate(model.v):
            mass[i, j] = smallest([el.mass_matrix[i, j], sp.diff(p, v)])
    return momenta, mass


def collected_form(expr, symbols):
    """``expr`` multiplied out and collected by ``symbols`` (accelerations and velocities), each coefficient's
    common factors pulled out: ``l1²(m1 + m2) θ̈1 + l1 l2 (m2 + m3) cos(θ1 − θ2) θ̈2 + …``, the terms that
    cancel once multiplied out gone."""
    return sp.collect(sp.expand(expr), symbols, func=sp.factor_terms)


def smaller_pieces(model: Model, el, learning_rule: dict, budget: Budget):
    """``(el, rule, L)``: each piece of the derivation in the smaller of its raw form and the form derived from
    :func:`rewritten_lagrangian` (equal functions, so equal derivatives), the Euler–Lagrange lines and forcing
    also collected (:func:`collected_form`): the starting point of the tidying. Raw when ``none``."""
    if budget.mode == "none":
        return el, learning_rule, model.lagrangian
    lagrangian = rewritten_lagrangian(model.lagrangian, budget)
    other = el if lagrangian is None else within(budget.remaining(), euler_lagrange, model, lagrangian)
    if other is None:
        return el, learning_rule, model.lagrangian
    lagrangian = model.lagrangian if lagrangian is None else lagrangian

    def pick(raw, alt):
        return [smallest([a, b]) for a, b in zip(raw, alt)]

    rates = list(model.a) + list(model.v) + list(model.q)
    collected = within(budget.remaining(), lambda: (
        [collected_form(e, rates) for e in other.residuals], [collected_form(e, rates) for e in other.forcing]))
    residuals, forcing = list(other.residuals), list(other.forcing)
    if collected is not None:
        residuals, forcing = pick(residuals, collected[0]), pick(forcing, collected[1])

    mass = sp.Matrix(el.mass_matrix.rows, el.mass_matrix.cols, pick(el.mass_matrix, other.mass_matrix))
    accelerations = (el.accelerations if el.accelerations is None or other.accelerations is None
                     else pick(el.accelerations, other.accelerations))
    start = EulerLagrange(pick(el.momenta, other.momenta), mass, sp.Matrix(pick(el.forcing, forcing)),
                          pick(el.residuals, residuals), accelerations, el.acceleration_note, el.input_rates)
    rule = {th: smallest([e, sp.diff(lagrangian, th)]) for th, e in learning_rule.items()}
    return start, rule, smallest([model.lagrangian, lagrangian])


def simplified_matrix(matrix: sp.Matrix, budget: Budget) -> sp.Matrix:
    """Entry-wise :func:`tidy` of a symmetric matrix (each off-diagonal pair once)."""
    n = matrix.rows
    upper = {(i, j): tidy(matrix[i, j], budget) for i in range(n) for j in range(i, n)}
    return sp.Matrix(n, n, lambda i, j: upper[(min(i, j), max(i, j))])


#: operations a structured Hamiltonian may exceed the shortest other form by and still be shown
STRUCTURE_MARGIN = 2


def structured_hamiltonian(model: Model, lagrangian: sp.Expr, mass: sp.Matrix, det, adj, budget: Budget):
    """``(H, parts)`` with ``H = ½ wᵀ adj(M) w / det M + V + W``, ``w = p − b``, or ``(None, None)``
    when ``L`` (the model's, in the form given) is not quadratic in ``v`` (or ``M`` is dense above 3 × 3)."""
    v, p = list(model.v), list(model.p)
    if det is None or mass.free_symbols & set(v) or det == 0:
        return None, None
    b, potential, time_terms = offset_and_potentials(model, lagrangian, budget)
    w = [pi - bi for pi, bi in zip(p, b)]
    n = len(v)
    if adj is None:  # diagonal M
        kinetic = sp.Add(*[w[i] ** 2 / (2 * mass[i, i]) for i in range(n)])
    else:
        quadratic = sp.Add(*[adj[i, i] * w[i] ** 2 for i in range(n)],
                           *[2 * adj[i, j] * w[i] * w[j] for i in range(n) for j in range(i + 1, n)])
        kinetic = quadratic / (2 * det)
    parts = {"kinetic": kinetic, "potential": potential, "time_and_inputs": time_terms}
    return kinetic + potential + time_terms, parts


def offset_and_potentials(model: Model, lagrangian: sp.Expr, budget: Budget) -> tuple:
    """``(b, V, W)`` of ``L = ½ vᵀ M v + b·v − V − W`` (theory §11): ``b = ∂L/∂v`` at ``v = 0``, and ``−L`` at
    ``v = 0`` split into the terms without time or inputs (``V``) and those with them (``W``)."""
    v = list(model.v)
    at_rest = {s: 0 for s in v}
    b = [tidy(sp.diff(lagrangian, s).xreplace(at_rest), budget) for s in v]
    rest = -lagrangian.xreplace(at_rest)
    driven = set(model.u) | {model.time}
    terms = sp.Add.make_args(sp.expand(rest)) if sp.count_ops(rest) <= budget.max_ops else (rest,)
    time_terms = sp.Add(*[t for t in terms if t.free_symbols & driven])
    potential = sp.Add(*[t for t in terms if not t.free_symbols & driven])
    potential = smallest([tidy(potential, budget), tidy(sp.factor_terms(rest - time_terms), budget)])
    return b, potential, tidy(time_terms, budget)


def implicit_hamiltonian(model: Model, lagrangian: sp.Expr, mass: sp.Matrix, budget: Budget) -> dict | None:
    """``{"offset": b, "potential": V, "time_and_inputs": W}`` of ``H = ½ (p − b)ᵀ M⁻¹ (p − b) + V + W`` for a
    ``L`` quadratic in ``v`` whose ``M⁻¹`` is not written out (a coupled block above 3 × 3): the report states
    ``H`` in that form with ``M`` as printed (theory §11); ``None`` when ``M`` reads the velocities."""
    if budget.mode == "none" or mass.free_symbols & set(model.v):
        return None
    b, potential, time_terms = offset_and_potentials(model, lagrangian, budget)
    return {"offset": b, "potential": potential, "time_and_inputs": time_terms}


def structured_accelerations(el, mass: sp.Matrix, det, adj, budget: Budget):
    """``a = adj(M) f / det M`` (``f_i / M_ii`` for diagonal ``M``) with simplified pieces, or None."""
    if el.accelerations is None:
        return None
    forcing = [tidy(f, budget) for f in el.forcing]
    n = mass.rows
    if _is_diagonal(mass):
        return [forcing[i] / mass[i, i] for i in range(n)]
    if adj is None or det is None:
        return None
    quotients = [sp.Add(*[adj[i, j] * forcing[j] for j in range(n)]) / det for i in range(n)]
    return [smallest([a, tidy(a, budget)]) for a in quotients]


def hamilton_equations(model: Model, h, budget: Budget) -> list:
    """``[(q̇_i, ṗ_i)]`` with ``q̇_i = ∂H/∂p_i`` and ``ṗ_i = −∂H/∂q_i − ∂R/∂v_i`` at ``v = q̇`` (theory §11)."""
    qdot = [tidy(sp.diff(h, p), budget) for p in model.p]
    velocity = dict(zip(model.v, qdot))
    out = []
    for q, v, rate in zip(model.q, model.v, qdot):
        pdot = -sp.diff(h, q)
        if model.damping != 0:
            pdot -= sp.diff(model.damping, v).xreplace(velocity)
        out.append((rate, tidy(pdot, budget)))
    return out


def euler_lagrange_forms(model: Model, el, mass: sp.Matrix, budget: Budget) -> tuple:
    """``(f, residuals)``: the forcing of ``M·a = f`` tidied, and each Euler–Lagrange residual
    ``d/dt ∂L/∂v − ∂L/∂q`` as the smallest of its raw form, its tidied form and ``Σ_j M_ij a_j − f_i``
    with the shown M and f (theory §1: the residual is M·a − f by construction). Raw when ``none``."""
    if budget.mode == "none":
        return list(el.forcing), list(el.residuals)
    forcing = [tidy(f, budget) for f in el.forcing]  # tidy keeps f unless a form is strictly smaller
    residuals = []
    for i, raw in enumerate(el.residuals):
        split = sp.Add(*[mass[i, j] * a for j, a in enumerate(model.a)]) - forcing[i]
        residuals.append(smallest([raw, split, tidy(raw, budget)]))
    return forcing, residuals


def readable_forms(model: Model, el, hamiltonian, learning_rule: dict, budget: Budget,
                   declared_hamiltonian: bool = False, regular: bool = True) -> Readable:
    """Everything in :class:`Readable`, within ``budget`` (pieces over budget stay raw); ``regular``: the
    derivation's Legendre verdict (a singular M has no ``H`` in any form)."""
    raw_el, raw_rule = el, learning_rule
    el, learning_rule, lagrangian = smaller_pieces(model, el, learning_rule, budget)
    raw_mass = raw_el.mass_matrix
    n = raw_mass.rows
    mass = simplified_matrix(el.mass_matrix, budget)
    det = adj = None
    if n <= SMALL_MODEL and budget.mode != "none":  # within the budget: SymPy's det cancels as it goes (minutes
        diagonal = _is_diagonal(mass)            # on a relativistic H's square roots, new-user probe)
        det = sp.Mul(*mass.diagonal()) if diagonal else within(budget.remaining(), mass.det, "berkowitz")
        det = None if det is None else tidy(det, budget)
        if not diagonal:
            adj = within(budget.remaining(), mass.adjugate, "berkowitz")
            adj = None if adj is None else simplified_matrix(adj, budget)
    momenta = [tidy(p, budget) for p in el.momenta]

    h, parts, form = hamiltonian, None, "raw"
    if hamiltonian is not None and budget.mode != "none":
        candidates = [(hamiltonian, None, "raw"), (tidy(hamiltonian, budget), None, "simplified")]
        if not declared_hamiltonian:
            structured, pieces = structured_hamiltonian(model, lagrangian, mass, det, adj, budget)
            if structured is not None:
                candidates.append((structured, pieces, "structured: ½ (p − b)ᵀ M⁻¹ (p − b) + V + W, "
                                                      "M⁻¹ = adj(M)/det(M)"))
        # the structured form names its parts (kinetic, V, W): kept unless another is shorter by more than
        # STRUCTURE_MARGIN operations (charged_particle: structured 29, simplified over the reals 28)
        h, parts, form = min(candidates, key=lambda c: sp.count_ops(c[0]) - (STRUCTURE_MARGIN if c[1] else 0))

    accelerations = el.accelerations
    if accelerations is not None and budget.mode != "none":
        structured = structured_accelerations(el, mass, det, adj, budget) or [None] * n
        accelerations = [s if s is not None and sp.count_ops(s) <= sp.count_ops(raw)  # a = M⁻¹ f shown as such
                         else smallest([raw, tidy(raw, budget)])
                         for raw, s in zip(el.accelerations, structured)]

    implicit = (implicit_hamiltonian(model, lagrangian, mass, budget)
                if hamiltonian is None and regular and not declared_hamiltonian else None)
    if h is not None:
        equations, note = hamilton_equations(model, h, budget), "q̇ = ∂H/∂p, ṗ = −∂H/∂q of the H shown"
        if model.damping != 0:
            note += ", plus the Rayleigh force −∂R/∂v (theory §7)"
    else:
        equations, note = None, "no Hamiltonian in closed form: Hamilton's equations are not written"
    rule = {th: tidy(e, budget) for th, e in learning_rule.items()}
    forcing, residuals = euler_lagrange_forms(model, el, mass, budget)

    counts = {"mass_matrix": (raw_mass, mass), "momenta": (raw_el.momenta, momenta),
              "learning_rule": (list(raw_rule.values()), list(rule.values()))}
    if hamiltonian is not None:
        counts["hamiltonian"] = ([hamiltonian], [h])
    if raw_el.accelerations is not None:
        counts["accelerations"] = (raw_el.accelerations, accelerations)
    if budget.mode != "none":
        counts["forcing"] = (raw_el.forcing, forcing)
        counts["euler_lagrange"] = (raw_el.residuals, residuals)
    ops = {k: {"raw": op_count(a), "readable": op_count(b)} for k, (a, b) in counts.items()}
    return Readable(budget.mode, mass, det, adj, momenta, h, parts, form, accelerations,
                    [momentum_rate_symbol(p) for p in model.p], equations, note, rule, ops,
                    budget.spent(), budget.total, budget.attempts_dropped, forcing, residuals, implicit)
