"""The element pieces of an array model: every derivative the kernels and reports need, once.

Each piece is a list of scalar expressions in a term's element symbols
(``q_i``, ``q_j``, ``W_ij``, ``λ_i``, ...). Their number depends on the kinds of
terms, never on n (docs/networks.md, "Derivation").
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..symbolic import tanh_quotients
from .terms import Slot, Term


@dataclass
class Piece:
    """One generated element function ``name(args) -> tuple(outputs)``."""

    name: str
    args: list          # Slots, in call order
    outputs: list       # sympy expressions
    doc: str


def _param_slots(slots):
    return [s for s in slots if s.role in ("node", "pair", "scalar")]


def _value_slots(term: Term):
    """Argument order of a term's functions: coordinates, products, parameters, time."""
    order = {"q": 0, "z": 1, "w": 2, "node": 3, "pair": 4, "scalar": 5, "time": 6}
    return sorted(term.slots, key=lambda s: (order[s.role], s.side, s.comp, s.symbol.name))


def value_piece(t: int, term: Term) -> Piece:
    """The element φ of term number ``t`` (not a separable one) in its argument order: what a target
    that differentiates V itself needs (the JAX target), without the derivative pieces."""
    return Piece(f"t{t}_phi", _value_slots(term), [term.phi], "element of V")


def term_pieces(t: int, term: Term) -> dict:
    """The pieces of term number ``t``: phi, grad, dth, adj (generic), or the factor pieces (separable)."""
    def D(expr, x):
        return tanh_quotients(sp.diff(expr, x))

    if term.factors is not None:
        _, a, b = term.factors
        (qa,) = [s.symbol for s in term.slots if s.role == "q" and s.side == 0]
        (qb,) = [s.symbol for s in term.slots if s.role == "q" and s.side == 1]
        x = sp.Symbol("x", real=True)
        ax, bx = a.xreplace({qa: x}), b.xreplace({qb: x})
        arg = [Slot(x, "x")]
        a0, a1, b0, b1 = ax, D(ax, x), bx, D(bx, x)
        return {
            "ab": Piece(f"t{t}_ab", arg, [a0, a1, b0, b1], "a, a', b, b' of W_ij a(q_i) b(q_j) at x"),
            "ab2": Piece(f"t{t}_ab2", arg, [a0, a1, D(a1, x), b0, b1, D(b1, x)],
                         "a, a', a'', b, b', b'' of W_ij a(q_i) b(q_j) at x"),
        }
    args = _value_slots(term)
    qs = [s for s in args if s.role == "q"]
    zs = [s for s in args if s.role == "z"]
    ws = [s for s in args if s.role == "w"]
    ps = _param_slots(args)
    phi = term.phi
    s, lam_slots = term.adjoint_scalar()
    grad = [D(phi, x.symbol) for x in qs + zs]
    dth = [D(phi, x.symbol) for x in ws + ps]
    adj = [D(s, x.symbol) for x in qs + zs]
    if zs:
        adj.append(D(phi, zs[0].symbol))
    adj += [D(s, x.symbol) for x in ws + ps]
    return {
        "phi": value_piece(t, term),
        "grad": Piece(f"t{t}_grad", args, grad, "dphi/d(coordinates, product A q)"),
        "gd": Piece(f"t{t}_gd", args, grad + dth, "dphi/d(coordinates, A q), then dphi/d(B u, parameters)"),
        "adj": Piece(f"t{t}_adj", args + lam_slots, adj,
                     "derivatives of s = lam . dphi/dq (+ mu dphi/dz): the adjoint of the force"),
    }


def mass_slots(kinetic, dim: int, positions: bool | None = None) -> list:
    """The arguments of the mass element: every coordinate component of the unit (when ``positions``, by
    default when the mass reads its position; a component it does not read gets a symbol of its own),
    then the parameters."""
    params = sorted(kinetic.parameter_slots, key=lambda s: (s.role, s.symbol.name))
    if not (kinetic.reads_q if positions is None else positions):
        return params
    read = {s.comp: s for s in kinetic.slots if s.role == "q"}
    return [read.get(c) or Slot(sp.Symbol(f"q_c{c}", real=True), "q", 0, c) for c in range(dim)] + params


def kinetic_pieces(kinetic, dim: int, positions: bool | None = None) -> dict:
    """The mass element μ and its parameter partials; for the implicit midpoint rule (``positions``; by
    default when μ reads the unit's position, theory §6) also its position derivatives up to second order
    and their parameter partials (the Newton residual, the learning rule and the adjoint of the step)."""
    args = mass_slots(kinetic, dim, positions)
    qs = [s.symbol for s in args if s.role == "q"]
    ps = [s.symbol for s in args if s.role != "q"]
    mu = kinetic.mass
    pieces = {
        "mass": Piece("k_mass", args, [mu], "mass of a unit"),
        "mass_dth": Piece("k_mass_dth", args, [sp.diff(mu, x) for x in ps], "d mass / d parameters"),
    }
    if qs:
        dq = [sp.diff(mu, x) for x in qs]
        pieces["mass_q"] = Piece("k_mass_q", args, [mu] + dq + [sp.diff(d, x) for d in dq for x in qs],
                                 "mass, d mass / dq_c, d2 mass / dq_c dq_d of a unit")
        pieces["mass_q_dth"] = Piece("k_mass_q_dth", args, [sp.diff(d, x) for x in ps for d in dq],
                                     "d2 mass / dq_c d parameter (parameter-major)")
    return pieces


def readout_pieces(readout, prefix: str = "c") -> dict:
    """The cost element and its coordinate gradient (``prefix`` ``ct``: the terminal cost, theory §10)."""
    qs = sorted([s for s in readout.slots if s.role == "q"], key=lambda s: s.comp)
    ys = [s for s in readout.slots if s.role == "y"]
    args = qs + ys
    what = "terminal cost" if prefix == "ct" else "cost"
    return {
        "cost": Piece(f"{prefix}_cost", args, [readout.cost], f"{what} element c(q_r, y_r)"),
        "cost_grad": Piece(f"{prefix}_grad", args, [sp.diff(readout.cost, s.symbol) for s in qs], f"d({what})/dq_r"),
    }
