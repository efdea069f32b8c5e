"""Time reversal, separability and explicit time dependence (theory §4, §6).

* Time reversal: ``L(q, −v, t) ≡ L(q, v, t)``. The odd-in-velocity part
  ``(L(v) − L(−v))/2`` of each term of ``L`` is what breaks it.
* Separability: ``L = K(v) − V(q, t)`` (equivalently ``H = T(p) + V(q, t)``),
  i.e. ``∂p/∂q ≡ 0``, ``∂p/∂t ≡ 0`` and ``∂p/∂u ≡ 0``; the Störmer–Verlet
  (leapfrog) integrator applies. A kinetic part that depends on time,
  ``L = K(v, t) − V(q, t)`` (``∂p/∂t ≢ 0``: a Caldirola–Kanai model), is not
  separable in that sense, but its split (``timed_split``) still gives the
  time-weighted leapfrog of theory §7.
* Explicit time dependence (time, inputs, targets): allowed; the echo replays
  it reversed in time.
* Generalised time reversal: a set ``P`` of learnable parameters whose sign
  flip gives ``L(q, −v, t; θ) ≡ L(q, v, t; Pθ)``; the echo then runs the flipped
  system (theory §4). Constants are fixed knobs and are never flipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import sympy as sp

from .model import Model
from .symbolic import is_zero, surrogate

ECHO_TREATMENT = "replayed reversed in the echo: the echo at time τ reads it at t = T − τ"

#: The flip search tries every subset of at most this many candidate parameters (2^12 = 4096 tests).
MAX_FLIP_CANDIDATES = 12
#: parameters outside the odd terms a flip may add to those in them (the search stays small)
MAX_EXTRA_FLIPS = 2


@dataclass
class Symmetries:
    time_reversible: bool
    breaking_terms: list          # odd-in-velocity parts of the terms of L
    separable: bool
    kinetic: sp.Expr | None       # K(v) when separable
    potential: sp.Expr | None     # V(q, t) when separable (L = K − V)
    separability_note: str
    explicit_time: list           # dicts: symbol, kind, appears_in, echo
    flip: list | None = None      # parameters whose sign flip restores time reversal ([] if not needed)
    flip_note: str = ""
    timed_split: tuple | None = None  # (K(v, t), V(q, t)) when L = K(v, t) − V(q, t) but K depends on t

    def leapfrog_split(self) -> tuple | None:
        """``(K, V)`` with ``L = K − V`` and ``K`` free of ``q`` and the inputs — what the leapfrog needs,
        ``K`` sampled at the middle of each step (theory §6, §7) — or ``None``."""
        return (self.kinetic, self.potential) if self.separable else self.timed_split


def odd_part(expr, velocities) -> sp.Expr:
    """``(e(v) − e(−v))/2``."""
    flipped = expr.xreplace({v: -v for v in velocities})
    return (expr - flipped) / 2


#: Characters of the odd terms that a one-line message shows (``derive --format json`` has them whole).
TERMS_SHOWN = 200


def odd_terms_text(terms, render=str) -> str:
    """The odd terms, comma-separated, cut to :data:`TERMS_SHOWN` characters for one-line messages."""
    text = ", ".join(render(t) for t in terms)
    if len(text) <= TERMS_SHOWN:
        return text
    return f"{text[:TERMS_SHOWN]}... ({len(text) - TERMS_SHOWN} more characters: symglep derive --format json)"


def time_reversal(model: Model) -> tuple[bool, list]:
    """Whether ``L`` is even in the velocities, and the odd parts of its terms that break it.

    A model declared by its Hamiltonian is judged on ``H`` first: ``H(q, −p) ≡ H(q, p)`` makes the
    inverse Legendre transform ``L`` even in ``v`` (theory §4), which a closed form of ``L`` (e.g.
    Cardano's roots of a quartic ``H``) may hide from a check at sampled points, on the wrong branch
    at ``−v``."""
    fixed = model.constants
    declared = model.hamiltonian
    if declared is not None and is_zero(odd_part(declared, model.p), fixed=fixed):
        return True, []
    if is_zero(odd_part(model.lagrangian, model.v), fixed=fixed):  # odd terms may cancel between terms
        return True, []
    breaking = []
    for term in sp.Add.make_args(model.lagrangian):
        if not (term.free_symbols & set(model.v)):
            continue
        odd = odd_part(term, model.v)
        if not is_zero(odd, fixed=fixed):
            odd = sp.expand(odd) if sp.count_ops(odd) < 100 else odd
            breaking.append(odd)
    return not breaking, breaking


def _momenta_read(model: Model, momenta: list, symbols: list):
    """``(i, s)``: the first momentum ``p_i`` that depends on one of ``symbols``, or ``None``."""
    for i, p in enumerate(momenta):
        for s in symbols:
            # a switch's stand-in (symbolic.surrogate) reads its argument everywhere: a mass 1 + H(x - a) reads x
            if s in p.free_symbols and not is_zero(sp.diff(surrogate(p), s), fixed=model.constants):
                return i, s
    return None


def separability(model: Model, momenta: list) -> tuple[bool, sp.Expr | None, sp.Expr | None, str]:
    """Whether ``L = K(v) − V(q, t)``; returns ``(separable, K, V, note)``."""
    found = _momenta_read(model, momenta, [*model.q, model.time, *model.u])
    if found is not None:
        i, s = found
        what = "time" if s == model.time else str(s)
        return False, None, None, (f"the momentum {model.p[i]} depends on {what}: "
                                   "kinetic and potential parts do not separate")
    at_rest = model.lagrangian.xreplace({v: 0 for v in model.v})
    kinetic = model.lagrangian - at_rest
    if kinetic.free_symbols & {*model.q, model.time, *model.u}:
        # a factored L (m R² (v² + w² sin² q)/2) leaves terms in q that cancel only when expanded: K(v) is
        # then the expanded L's terms that hold a velocity (none holds q: the momenta do not read it)
        terms = sp.Add.make_args(sp.expand(model.lagrangian))
        expanded = sp.Add(*[e for e in terms if e.free_symbols & set(model.v)])
        if not expanded.free_symbols & {*model.q, model.time, *model.u}:
            return True, expanded, -at_rest, "L = K(v) - V(q, t)"
        kinetic = _kinetic_at_one_point(model, kinetic)
        if kinetic is None:
            return False, None, None, ("L - L(v = 0) still reads the coordinates after expanding: K(v) could "
                                       "not be isolated")
    return True, kinetic, -at_rest, "L = K(v) - V(q, t)"


def _kinetic_at_one_point(model: Model, kinetic: sp.Expr) -> sp.Expr | None:
    """``K(v) = L − L(v = 0)`` read at one regular point of the coordinates, time and inputs, when the momenta
    read none of them, so that the difference holds them only in forms that cancel (``cos²q + sin²q``, a
    pendulum written from its bob's Cartesian position, where expanding does not help); verified to equal
    ``kinetic`` at sampled points. ``None`` when no point gives such a form."""
    moved = [*model.q, model.time, *model.u]
    for value in (sp.Integer(0), sp.Rational(1, 3), sp.Rational(-2, 7)):
        candidate = kinetic.xreplace({s: value for s in moved})
        if candidate.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            continue
        candidate = sp.factor_terms(sp.expand(candidate))
        if is_zero(kinetic - candidate, fixed=model.constants):
            return candidate
    return None


def timed_split(model: Model, momenta: list) -> tuple | None:
    """For a model that is not separable: ``(K(v, t), V(q, t))`` when its momenta read neither coordinates
    nor inputs, only time (theory §7: the time-weighted leapfrog samples ``K`` at the middle of each
    step), else ``None``."""
    if _momenta_read(model, momenta, [*model.q, *model.u]) is not None:
        return None
    # the terms of the expanded L that hold a velocity: K(v, t) with no coordinate left in it (the plain
    # difference L - L(v = 0) keeps terms in q that cancel only symbolically, and its θ-partials would too)
    terms = sp.Add.make_args(sp.expand(model.lagrangian))
    kinetic = sp.Add(*[e for e in terms if e.free_symbols & set(model.v)])
    potential = -sp.Add(*[e for e in terms if not e.free_symbols & set(model.v)])
    if kinetic.free_symbols & {*model.q, *model.u}:
        return None
    return kinetic, potential


def explicit_time(model: Model) -> list[dict]:
    """Every explicit time-dependence of ``L`` and the cost, with how the echo treats it."""
    found = []
    groups = [(model.time, "explicit time")] + [(u, "input") for u in model.u] + [(y, "target") for y in model.y]
    for sym, kind in groups:
        where = [w for w, e in (("lagrangian", model.lagrangian), ("cost", model.cost)) if sym in e.free_symbols]
        if where:
            found.append({"symbol": sym.name, "kind": kind, "appears_in": where, "echo": ECHO_TREATMENT})
    return found


def reversing_flip(model: Model, breaking: list) -> tuple[list | None, str]:
    """The smallest set ``P`` of parameters with ``L(q, −v, t; θ) ≡ L(q, v, t; Pθ)`` (theory §4).

    Candidates are the learnable parameters that appear in the odd terms, and up to
    :data:`MAX_EXTRA_FLIPS` more of the other parameters of ``L`` (an even term ``g1·g2·x·y`` must keep its
    sign when the odd term's ``g1`` flips); every subset holding an odd term's parameter is tried, smallest
    first (limited to :data:`MAX_FLIP_CANDIDATES` candidates).
    Constants are fixed knobs: they are never flipped. Returns ``([], note)`` when ``L`` is already
    even in ``v`` and ``(None, why)`` when no flip exists.
    """
    if not breaking:
        return [], "not needed: L is even in the velocities"
    odd_symbols = set().union(*(b.free_symbols for b in breaking))
    candidates = [s for s in model.parameters if s in odd_symbols]
    if not candidates:
        fixed = sorted((s.name for s in odd_symbols & set(model.constants)), key=str)
        what = (f"their coefficient(s) {', '.join(fixed)} are fixed constants; declared as parameters, a flip "
                f"of their signs may restore it (derive then says which), and train --freeze {','.join(fixed)} keeps "
                "them fixed" if fixed
                else "they have no parameter: reversing an input that multiplies them (u -> -u) would restore "
                     "it, which the echo does not do" if odd_symbols & set(model.u)
                else "they read only coordinates, velocities and numbers, e.g. z·ẋ of a first-order Lagrangian: "
                     "no sign flip reaches them")
        return None, f"no parameter flip restores time reversal: the odd term(s) hold no learnable parameter ({what})"
    if len(candidates) > MAX_FLIP_CANDIDATES:
        return None, (f"{len(candidates)} parameters appear in the odd terms; the exhaustive flip search "
                      f"stops at {MAX_FLIP_CANDIDATES}")
    mirrored = model.lagrangian.xreplace({v: -v for v in model.v})
    fixed = model.constants
    # a flip may also have to reach parameters of even terms that multiply a flipped one (g1·g2·x·y with g1 odd)
    others = [s for s in model.parameters if s not in odd_symbols and s in model.lagrangian.free_symbols]
    pool = candidates + others[:max(0, MAX_FLIP_CANDIDATES - len(candidates))]
    for size in range(1, min(len(pool), len(candidates) + MAX_EXTRA_FLIPS) + 1):
        for subset in combinations(pool, size):
            if not set(subset) & set(candidates):
                continue
            flipped = model.lagrangian.xreplace({s: -s for s in subset})
            if is_zero(mirrored - flipped, fixed=fixed):
                names = ", ".join(f"{s} -> -{s}" for s in subset)
                return list(subset), f"L(q, -v; theta) = L(q, v; theta flipped) with {names}"
            if _moves_nothing(mirrored - flipped, model):
                names = ", ".join(f"{s} -> -{s}" for s in subset)
                return list(subset), (f"L(q, -v; theta) = L(q, v; theta flipped) with {names}, up to terms in t, the "
                                      "inputs and the parameters alone (no coordinate, no velocity: they move nothing)")
    extra = f" (with up to {MAX_EXTRA_FLIPS} more of {', '.join(map(str, others))})" if others else ""
    return None, (f"no sign flip of the parameters {', '.join(map(str, candidates))}{extra} makes "
                  "L(q, -v) equal to L(q, v)")


def _moves_nothing(difference, model: Model) -> bool:
    """Whether a difference of two Lagrangians reads no coordinate and no velocity (a function of t, the inputs
    and the parameters, e.g. m g a cos Ωt of a driven pivot): the equations of motion are the same, and its
    learning integrand is the same in every nudged run, so the echo's contrasts cancel it."""
    return all(is_zero(sp.diff(difference, s), fixed=model.constants) for s in (*model.q, *model.v))


def total_derivative(model: Model, breaking: list) -> tuple | None:
    """``(A·v, F)`` when the odd part of ``L`` is ``A(q, t)·v`` with a closed ``A`` (``∂A_i/∂q_j =
    ∂A_j/∂q_i``): then ``A·v = dF/dt − ∂F/∂t`` with ``∂F/∂q = A``, and ``L − dF/dt`` has the same
    equations of motion and is even in ``v`` (theory §4). ``F`` is ``None`` when SymPy finds no closed
    form; the whole result is ``None`` for any other odd part (a magnetic field: ``A`` is not closed)."""
    odd = sp.Add(*breaking)
    coefficients = [sp.diff(odd, v) for v in model.v]
    moving = set(model.v) | set(model.u) | set(model.y)
    if any(c.free_symbols & moving for c in coefficients):
        return None
    linear = sum(c * v for c, v in zip(coefficients, model.v))
    options = dict(fixed=model.constants)
    if not is_zero(odd - linear, **options):
        return None
    q = list(model.q)
    for i in range(len(q)):
        for j in range(i + 1, len(q)):
            if not is_zero(sp.diff(coefficients[i], q[j]) - sp.diff(coefficients[j], q[i]), **options):
                return None
    potential = sp.S.Zero
    for c, x in zip(coefficients, q):
        potential += sp.integrate(sp.expand(c - sp.diff(potential, x)), x)
    if potential.has(sp.Integral):
        potential = None
    return linear, potential


def gauge_note(model: Model, breaking: list) -> str | None:
    """The derive note for :func:`total_derivative`, or ``None``."""
    found = total_derivative(model, breaking)
    if found is None:
        return None
    linear, potential = found
    what = f"F = {potential}" if potential is not None else "some F(q, t) with dF/dq = A"
    return (f"the odd term(s) {odd_terms_text([linear])} are a total time derivative plus an even term: "
            f"A·v = dF/dt − ∂F/∂t with {what}. L − dF/dt has the same equations of motion and is even in v: "
            "declared that way, the model takes the plain echo (theory §4); its canonical momentum is then "
            "p − ∂F/∂q, so a start given by momentum is another start (give the start by velocity to keep the "
            "same problem)")


def symmetries(model: Model, momenta: list) -> Symmetries:
    reversible, breaking = time_reversal(model)
    separable, kinetic, potential, note = separability(model, momenta)
    flip, flip_note = reversing_flip(model, breaking)
    timed = None if separable else timed_split(model, momenta)
    if timed is not None:
        note += "; L = K(v, t) - V(q, t): the time-weighted leapfrog applies (theory §7)"
    return Symmetries(reversible, breaking, separable, kinetic, potential, note, explicit_time(model),
                      flip, flip_note, timed)
