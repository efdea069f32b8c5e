"""The term kinds of an array model and their element calculus (docs/networks.md, theory §6).

Every term of ``V = −(L − K)`` is a sum over units, pairs or edges of one scalar
*element* expression φ. symglep differentiates φ once, in its element symbols:

* :class:`Site` — ``Σ_i φ(q_i, (A q)_i, (B u)_i, θ_i)``: on-site potentials, the input
  drive ``q_i (B u)_i`` and projection terms ``f((A q)_k + (B u)_k + b_k)``;
* :class:`Pair` — ``Σ_ij φ(q_i, q_j, W_ij, θ_i, θ_j)`` (dense), with the separable
  special case ``W_ij a(q_i) b(q_j)`` that the kernels run as matrix–vector products;
* :class:`Pair` over an edge list — ``Σ_e φ(x_src, x_dst, k_e, ...)``;
* :class:`Kinetic` — ``½ Σ_i m_i |v_i|²``; :class:`Readout` — the cost ``Σ_r c(q_r, y_r)``.

For the BPTT adjoint the kernels need λ·(∂F/∂q) and λ·(∂F/∂θ) with ``F = ∂V/∂q``.
For an element φ these follow from ``s = Σ λ·∂φ/∂(its coordinates)``, itself an
element expression: its derivatives in the element symbols, placed by the same
index rules as φ's, give both products (n never enters the symbolic work).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..errors import ModelError
from ..model import as_piecewise
from .arrays import NODE_INDICES, Coordinates, Edges, Inputs, MatVec, Parameter, Sum, Targets, Element, r


def _lam(name: str):
    return sp.Symbol(name, real=True)


@dataclass
class Slot:
    """One element symbol of a term and where its value lives at run time.

    role: ``q`` (coordinate component ``c`` of side ``side``), ``lam`` (adjoint of that
    component), ``z`` (``(A q)_row``), ``mu`` (``(A λ)_row``), ``w`` (``(B u)_row``),
    ``y`` (target of the readout unit), ``node`` (vector parameter at side), ``pair``
    (matrix entry ``W[i, j]`` or edge parameter), ``scalar`` (scalar parameter), ``time`` (the
    explicit time t, sampled at the node or midpoint the kernel evaluates).
    """

    symbol: sp.Symbol
    role: str
    side: int = 0
    comp: int = 0
    param: object = None


@dataclass
class Term:
    """One term of V: its kind, its element expression φ (V-sign) and its slots."""

    kind: str                 # site | pair | dense | edge
    phi: sp.Expr
    slots: list
    user: object              # the user's Sum
    matrix_q: Parameter | None = None   # A of (A q)_row (site terms)
    matrix_u: Parameter | None = None   # B of (B u)_row (site terms)
    factors: tuple | None = None        # dense separable: (W, a(q_i), b(q_j)) with φ = W_ij a b
    extra: dict = field(default_factory=dict)

    def q_slots(self) -> list:
        return [s for s in self.slots if s.role == "q"]

    def adjoint_scalar(self) -> tuple:
        """``s = Σ λ_c ∂φ/∂q_c (+ μ ∂φ/∂z)`` and the λ/μ slots it adds."""
        added, s = [], sp.Integer(0)
        for sl in self.q_slots():
            lam = _lam(f"lam{sl.side}_{sl.comp}")
            added.append(Slot(lam, "lam", sl.side, sl.comp))
            s += lam * sp.diff(self.phi, sl.symbol)
        for sl in [x for x in self.slots if x.role == "z"]:
            mu = _lam("mu")
            added.append(Slot(mu, "mu"))
            s += mu * sp.diff(self.phi, sl.symbol)
        return s, added


@dataclass
class Kinetic:
    """``K = ½ Σ_i μ(q_i, θ_i) |v_i|²``: the mass element μ, its slots (the unit's own coordinate
    components when the mass depends on position, and its parameters) and its unit index."""

    mass: sp.Expr
    slots: list
    index: sp.Symbol = None

    @property
    def reads_q(self) -> bool:
        """Whether the mass depends on the unit's position: ``L`` is then not separable and the
        model runs the implicit midpoint rule (theory §6)."""
        return any(s.role == "q" for s in self.slots)

    @property
    def parameter_slots(self) -> list:
        return [s for s in self.slots if s.role != "q"]


@dataclass
class Readout:
    """The cost ``Σ_r c(q_r, y_r)`` over readout units."""

    cost: sp.Expr
    slots: list


#: The time symbol a user writes (``dynamicsymbols._t``, or ``sp.Symbol("t")``).
TIME = sp.Symbol("t")


def _scalar_slot(model, sym):
    if sym in model.constants:
        return None
    if any(p is sym or (isinstance(p, sp.Symbol) and p == sym) for p in model.parameters):
        return Slot(sym, "scalar", param=sym)
    if sym.name == TIME.name:
        return Slot(sym, "time")
    raise ModelError(f"symbol {sym} is not declared (add it to parameters or constants)")


def _declared(model, array):
    if isinstance(array, Parameter) and array not in model.parameters:
        raise ModelError(f"parameter {array.name} is used but not listed in parameters")


def _slots_for(model, expr, sides: dict, edge: Edges | None, what: str, allow_velocity=False):
    """Classify every free symbol of ``expr``; ``sides`` maps an index symbol to its side (0 or 1)."""
    slots, matq, matu = [], None, None
    for sym in sorted(expr.free_symbols, key=lambda s: s.name):
        if not isinstance(sym, Element):
            slot = _scalar_slot(model, sym)
            if slot is not None:
                slots.append(slot)
            continue
        array, (index, suffix) = model.element_info(sym)
        if isinstance(array, MatVec):
            if index[0] not in sides or sides[index[0]] != 0 or len(sides) != 1:
                raise ModelError(f"{sym} in {what}: a matrix product is read at the row of a site sum")
            _declared(model, array.matrix)
            if isinstance(array.vector, Coordinates):
                if matq is not None and matq is not array.matrix:
                    raise ModelError(f"{what}: at most one product A @ q per term")
                matq = array.matrix
                slots.append(Slot(sym, "z", param=array.matrix))
            else:
                if matu is not None and matu is not array.matrix:
                    raise ModelError(f"{what}: at most one product B @ u per term")
                matu = array.matrix
                slots.append(Slot(sym, "w", param=array.matrix))
            continue
        if isinstance(array, Coordinates):
            if array is not model.q:
                raise ModelError(f"{sym}: {array.name} is not the model's coordinates")
            if suffix and not allow_velocity:
                raise ModelError(f"{sym} in {what}: velocities may appear only in the kinetic term "
                                 "Sum(m/2 * q.dot[i]**2, i) (array models run the plain echo, exact for L even in the "
                                 "velocities, theory §4: a gyroscopic or velocity coupling is odd in them); write such "
                                 "a system as a scalar model, which finds the flipped echo or the digital PFVP")
            node = index[0]
            if node not in sides:
                raise ModelError(f"{sym} in {what}: index {node} is not summed over here")
            comp = index[1] if len(index) == 2 else 0
            slots.append(Slot(sym, "v" if suffix else "q", sides[node], comp))
            continue
        if isinstance(array, Targets):
            raise ModelError(f"target {sym} appears in {what}; targets enter only the cost")
        if isinstance(array, Inputs):
            raise ModelError(f"input {sym} in {what}: inputs enter through a product (B @ u)[i]")
        _declared(model, array)
        if array.shape == ("n",) and index[0] in sides:
            slots.append(Slot(sym, "node", sides[index[0]], param=array))
        elif array.shape == ("n", "n") and len(sides) == 2 and edge is None and \
                tuple(sides.get(x, -1) for x in index) == (0, 1):
            slots.append(Slot(sym, "pair", param=array))
        elif array.shape == ("e",) and edge is not None and index == (edge.e,):
            slots.append(Slot(sym, "pair", param=array))
        elif array.shape == ("n", "n") and len(sides) == 2 and tuple(sides.get(x, -1) for x in index) == (1, 0):
            first, second = sorted(sides, key=sides.get)
            w = array.name
            raise ModelError(f"{sym} in {what}: a dense pair reads {w}[{first}, {second}] in the order of the Sum's "
                             f"indices; for the transpose rename them, Sum({w}[{second}, {first}] f(q[{first}]) "
                             f"g(q[{second}]), {first}, {second}) = Sum({w}[{first}, {second}] f(q[{second}]) "
                             f"g(q[{first}]), {first}, {second})")
        else:
            raise ModelError(f"{sym} in {what}: {array.name} of shape {array.shape} cannot be read at "
                             f"index {index} here")
    return slots, matq, matu


def _separable_pair(phi, slots):
    """``φ = W_ij · a(q_i) · b(q_j)`` with one matrix entry and scalar coordinates, else ``None``."""
    pairs = [s for s in slots if s.role == "pair"]
    qs = {s.side: s.symbol for s in slots if s.role == "q"}
    if len(pairs) != 1 or any(s.role in ("node", "scalar") for s in slots) or set(qs) != {0, 1}:
        return None
    w = pairs[0].symbol
    a_part, b_part, rest = sp.Integer(1), sp.Integer(1), sp.Integer(1)
    for f in sp.Mul.make_args(sp.expand_power_base(sp.factor_terms(phi))):
        fs = f.free_symbols
        if fs == {w} and f == w:
            rest *= f
        elif not fs:
            rest *= f
        elif fs == {qs[0]}:
            a_part *= f
        elif fs == {qs[1]}:
            b_part *= f
        else:
            return None
    if sp.simplify(rest / w).free_symbols:
        return None
    return pairs[0].param, sp.simplify(rest / w) * a_part, b_part


def _term(model, user) -> Term | Kinetic:
    expr = as_piecewise(user.expr.xreplace(model.constants))  # kinks differentiate branch by branch
    over = user.over
    if len(over) == 1 and isinstance(over[0], Edges):
        e = over[0]
        if model.edges is not e:
            raise ModelError(f"edge list {e.name} is not the model's edges= argument")
        slots, _, _ = _slots_for(model, expr, {e.src: 0, e.dst: 1}, e, f"Sum(..., {e.name})")
        return Term("edge", -user.sign * expr, slots, user)
    if len(over) == 1 and over[0] in NODE_INDICES:
        what = f"Sum(..., {over[0]})"
        slots, matq, matu = _slots_for(model, expr, {over[0]: 0}, None, what, allow_velocity=True)
        vs = [s for s in slots if s.role == "v"]
        if vs:
            return _kinetic(model, user, expr, slots, vs)
        return Term("site", -user.sign * expr, slots, user, matrix_q=matq, matrix_u=matu)
    if len(over) == 2 and all(x in NODE_INDICES for x in over) and over[0] != over[1]:
        if model.dim != 1:
            raise ModelError("dense pair sums need scalar coordinates; use an edge list for vector coordinates")
        slots, _, _ = _slots_for(model, expr, {over[0]: 0, over[1]: 1}, None, f"Sum(..., {over[0]}, {over[1]})")
        phi = -user.sign * expr
        term = Term("dense", phi, slots, user)
        term.factors = _separable_pair(phi, slots)
        return term
    raise ModelError(f"cannot sum over {over}: use i (units), (i, j) (all pairs), an Edges list, "
                     "or r in the cost")


def _kinetic(model, user, expr, slots, vs) -> Kinetic:
    if any(s.role == "time" for s in slots):
        raise ModelError("the kinetic term may not read the time t: a mass that changes in time is not served "
                         "(explicit time enters the potential terms; uniform damping's e^{gamma t} comes from a "
                         "Rayleigh function, theory §7)")
    if any(s.role in ("z", "w") for s in slots):
        raise ModelError("the kinetic term may read the velocities, the unit's own position and parameters, "
                         "not a product (A @ q)[i] or an input (the mass matrix stays diagonal per unit)")
    mass = _half_square_coefficient(user.sign * expr, vs)
    if mass is None or len(vs) != model.dim:
        raise ModelError("the kinetic term must be ½ m_i |q.dot[i]|² (diagonal, quadratic; "
                         f"got {user.expr})")
    return Kinetic(mass, [s for s in slots if s.role != "v"], user.over[0])


def _half_square_coefficient(expr, vs):
    """``ρ`` with ``expr = ρ/2 Σ_c v_c²`` over the velocity slots ``vs``, or ``None`` when it is not that form
    (the kinetic term's mass, the Rayleigh function's ``ρ``)."""
    total = sp.expand(expr)
    rho = sp.simplify(2 * total.coeff(vs[0].symbol, 2))
    return rho if sp.simplify(total - rho * sum(s.symbol ** 2 for s in vs) / 2) == 0 else None


def _reindexed(model, expr, old, new):
    """``expr`` with every element read at unit index ``old`` read at ``new`` instead."""
    swap = {}
    for sym in expr.free_symbols:
        if isinstance(sym, Element):
            array, (index, suffix) = model.element_info(sym)
            if index and index[0] == old and hasattr(array, "element"):
                swap[sym] = array.element((new,) + tuple(index[1:]), suffix)
    return expr.xreplace(swap)


def damping_rate(model, kinetic: Kinetic, rayleigh):
    """The rate γ of a Rayleigh function ``Sum(ρ/2 |q.dot[i]|², i)`` with ``∂R/∂v_i = γ ∂L/∂v_i`` for
    every unit, ``ρ = γ m_i`` (uniform linear damping, theory §7): a number (0.0 without one), or one
    scalar parameter of the model, the learned rate (its learning integrand ``t e^{γt} (K − V)``, theory §7).
    Anything else is refused with its reason: damping that differs between units (or depends on the
    state) has no exact echo."""
    if rayleigh is None:
        return 0.0
    if not isinstance(rayleigh, Sum) or len(rayleigh.over) != 1 or rayleigh.over[0] not in NODE_INDICES:
        raise ModelError("the Rayleigh function of an array model is Sum(gamma/2 * m[i] * q.dot[i]**2, i): "
                         "uniform linear damping over the units")
    index = rayleigh.over[0]
    expr = rayleigh.sign * rayleigh.expr.xreplace(model.constants)
    slots, _, _ = _slots_for(model, expr, {index: 0}, None, "the Rayleigh function", allow_velocity=True)
    vs = [s for s in slots if s.role == "v"]
    reads_q = any(s.role == "q" for s in slots) and not kinetic.reads_q  # rho = gamma m_i(q_i) may read q_i
    if reads_q or any(s.role in ("z", "w", "time") for s in slots) or len(vs) != model.dim:
        raise ModelError("the Rayleigh function must be Sum(rho/2 * |q.dot[i]|^2, i), linear damping that "
                         "does not depend on the positions, inputs or time (theory §7)")
    rho = _half_square_coefficient(expr, vs)
    if rho is None:
        raise ModelError(f"the Rayleigh function must be quadratic in the velocities, rho/2 |q.dot[i]|^2 "
                         f"(got {rayleigh.expr})")
    rate = sp.simplify(_reindexed(model, rho, index, kinetic.index) / kinetic.mass)
    if any(isinstance(x, Element) for x in rate.free_symbols):
        raise ModelError(f"the damping rate dR/dv / dL/dv = {rate} differs between units: non-uniform damping "
                         "has no exact echo (theory §7); array models take uniform damping, rho_i = gamma m_i")
    scalars = [p for p in model.parameters if isinstance(p, sp.Symbol)]
    if rate in scalars:
        if rate.is_negative:
            raise ModelError(f"the damping rate {rate} is declared negative: a Rayleigh function dissipates, "
                             "gamma >= 0 (theory §7)")
        return rate
    if rate.free_symbols:
        learned = sorted(str(x) for x in rate.free_symbols if x in scalars)
        raise ModelError(f"the damping rate {rate} is neither a number nor one scalar parameter: "
                         + (f"write it as one parameter (gamma in place of {rate})" if learned else
                            f"declare {', '.join(sorted(map(str, rate.free_symbols)))} in constants, or "
                            "list one scalar rate in parameters to learn it"))
    if not rate.is_real or rate.is_negative:
        raise ModelError(f"the damping rate must be a real number >= 0, got {rate}")
    return float(rate)


def _readout(model, cost, what: str) -> Readout:
    """The readout cost ``Sum(c(q[r], y[r]), r)`` (``what``: cost or terminal cost), checked."""
    if not isinstance(cost, Sum):
        raise ModelError(f"the {what} of an array model is Sum(c(q[r], y[r]), r)")
    if len(cost.over) != 1 or cost.over[0] != r:
        raise ModelError(f"the {what} must be Sum(c(q[r], y[r]), r) over the readout units r")
    expr = as_piecewise(cost.sign * cost.expr.xreplace(model.constants))
    slots = []
    for sym in sorted(expr.free_symbols, key=lambda s: s.name):
        if not isinstance(sym, Element) and sym.name == TIME.name:
            why = ("it is read once, at the final node K, with the targets y_K" if what == "terminal cost" else
                   "a target that changes in time is y[r], sampled at run time")
            raise ModelError(f"the {what} reads only q[r] and y[r], not the time t: {why}")
        if not isinstance(sym, Element):
            raise ModelError(f"symbol {sym} in the {what} is not a constant: learnable parameters may appear only in "
                             f"the Lagrangian (the echo's learning integrand is dL/dtheta, theory §5); put {sym} in "
                             "constants, or move the gain into the readout units' dynamics")
        array, (index, suffix) = model.element_info(sym)
        if isinstance(array, Coordinates) and not suffix and index[0] == r:
            slots.append(Slot(sym, "q", 0, index[1] if len(index) == 2 else 0))
        elif isinstance(array, Targets) and index == (r,):
            slots.append(Slot(sym, "y"))
        else:
            raise ModelError(f"{sym} in the {what}: it reads only q[r] and y[r] (no velocities, "
                             "parameters or inputs)")
    return Readout(expr, slots)


def terminal_readout(model):
    """The terminal cost ``c_T(q_K, y_K)`` over the readout units (theory §10), or ``None``."""
    return None if model.terminal_cost is None else _readout(model, model.terminal_cost, "terminal cost")


def classify(model):
    """``(kinetic, potential terms, readout)`` of an :class:`ArrayModel`, checked."""
    kinetic, terms = None, []
    for user in model.terms:
        t = _term(model, user)
        if isinstance(t, Kinetic):
            if kinetic is not None:
                raise ModelError("only one kinetic term Sum(m/2 * q.dot[i]**2, i) is allowed")
            kinetic = t
        else:
            terms.append(t)
    if kinetic is None:
        raise ModelError("the Lagrangian has no kinetic term Sum(m/2 * q.dot[i]**2, i): it has no dynamics")
    readout = _readout(model, model.cost, "cost")
    for term in terms:
        if term.matrix_u is not None and model.u is None:
            raise ModelError("a term reads (B @ u) but the model declares no inputs")
    return kinetic, terms, readout
