"""Declaring a model: a Lagrangian (or Hamiltonian), its variables and its cost.

A :class:`Model` holds the user's expressions rewritten in *plain* symbols
(theory §1): every coordinate ``q(t)`` becomes a symbol ``q``, its time
derivative a symbol ``q_dot``, inputs ``u(t)`` and targets ``y(t)`` become
symbols ``u`` and ``y``. Derivatives are then taken with respect to plain
symbols, which keeps expressions small (DESIGN: "differentiate with plain
symbols, not functions of t").
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sympy as sp
from sympy.core.function import AppliedUndef

from . import capabilities as capabilities_table
from .dissipation import Rayleigh, caldirola_kanai, uniform_rate
from .errors import ModelError
from .legendre import lagrangian_from_hamiltonian
from .simplify import within
from .symbolic import not_real_number


def velocity_name(coordinate: str) -> str:
    """Name of the velocity of ``coordinate`` (``q1`` -> ``q1_dot``)."""
    return f"{coordinate}_dot"


def acceleration_name(coordinate: str) -> str:
    """Name of the acceleration of ``coordinate`` (``q1`` -> ``q1_ddot``)."""
    return f"{coordinate}_ddot"


def momentum_name(coordinate: str) -> str:
    """Name of the momentum conjugate to ``coordinate`` (``q1`` -> ``p_q1``)."""
    return f"p_{coordinate}"


def _name_of(obj) -> str:
    if isinstance(obj, AppliedUndef):
        return obj.func.__name__
    if isinstance(obj, sp.Symbol):
        return obj.name
    raise ModelError(f"expected a symbol or a function of time, got {obj!r}")


def _plain_symbol(obj) -> sp.Symbol:
    """The plain symbol that stands for a coordinate, input or target in the derivation; it stays
    real when the user declared it real (``dynamicsymbols('x', real=True)``), which spares SymPy
    slow assumption queries on e.g. log(cosh(a x + b y)) of many coordinates."""
    return sp.Symbol(_name_of(obj), real=True) if obj.is_real else sp.Symbol(_name_of(obj))


def _as_tuple(value, what: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (sp.Basic, str)):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    raise ModelError(f"{what} must be a list of symbols, got {value!r}")


def _sympify(expr, what: str) -> sp.Expr:
    if isinstance(expr, (sp.MatrixBase, list, tuple, sp.NDimArray)):
        raise ModelError(f"the {what} must be a scalar expression, got a {type(expr).__name__}")
    if isinstance(expr, str):  # sympify would read "x**2" with plain symbols, not the model's coordinates
        raise ModelError(f"the {what} must be a sympy expression built from the declared symbols, not a string "
                         f"({expr[:60]!r})")
    try:
        expr = sp.sympify(expr)
    except (sp.SympifyError, TypeError) as exc:
        raise ModelError(f"the {what} is not a sympy expression: {exc}") from None
    if isinstance(expr, (sp.MatrixBase, sp.NDimArray)) or not isinstance(expr, sp.Expr):
        raise ModelError(f"the {what} must be a scalar expression, got {type(expr).__name__}")
    return expr


def _abs_piecewise(e):
    return sp.Piecewise((e, e >= 0), (-e, True))


def _sign_piecewise(e):
    return sp.Piecewise((1, e > 0), (-1, e < 0), (0, True))


def constant_value(symbol, value) -> sp.Float:
    """A constant's value as a Float: a finite real number that keeps the symbol's declared sign (a NaN
    constant silently removed the terms it multiplies; a sign against ``positive=True`` breaks the
    simplifications that assumed it)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"constant {symbol} must have a numeric value, got {value!r}") from None
    if not math.isfinite(number):
        raise ModelError(f"constant {symbol} must be a finite number, got {value!r}")
    for sign, holds in (("positive", number > 0), ("negative", number < 0), ("nonnegative", number >= 0),
                        ("nonpositive", number <= 0), ("nonzero", number != 0)):
        if getattr(symbol, f"is_{sign}", None) and not holds:
            raise ModelError(f"constant {symbol} = {value!r} contradicts its declaration {sign}=True")
    return sp.Float(number)


def as_piecewise(expr: sp.Expr) -> sp.Expr:
    """``Abs``, ``sign``, ``Max``, ``Min`` and ``Heaviside`` written as ``Piecewise``.

    The plain symbols carry no realness, so ``sympy.diff`` writes ``d|x|/dx`` with ``re(x)``, ``im(x)``,
    and SymEngine leaves ``d Max(0, x)/dv`` unevaluated even for a ``v`` it does not contain (read as
    a singular mass matrix). A ``Piecewise`` differentiates branch by branch, almost everywhere, as
    BPTT of the same floating-point steps does, and every kernel printer prints it.
    """
    if not expr.has(sp.Abs, sp.sign, sp.Max, sp.Min, sp.Heaviside):
        return expr
    expr = expr.replace(lambda e: isinstance(e, sp.Abs), lambda e: _abs_piecewise(e.args[0]))
    expr = expr.replace(lambda e: isinstance(e, sp.sign), lambda e: _sign_piecewise(e.args[0]))
    return expr.rewrite(sp.Max, sp.Piecewise).rewrite(sp.Min, sp.Piecewise).rewrite(sp.Heaviside, sp.Piecewise)


@dataclass(frozen=True)
class Variable:
    """One declared quantity: the user's object and the plain symbol that replaces it."""

    name: str
    kind: str  # coordinate | parameter | constant | input | target
    user: sp.Basic
    symbol: sp.Symbol


def refuse_repeated_names(pairs) -> None:
    """A :class:`ModelError` for the first name of ``pairs`` (``(name, role)``) given to two things: the
    derivation would merge them (scalar models, array models)."""
    seen: dict[str, str] = {}
    for name, role in pairs:
        if name in seen and seen[name] == role:
            raise ModelError(f"{role} {name!r} is listed twice; list it once")
        if name in seen:
            raise ModelError(f"name {name!r} is used twice: as {seen[name]} and as {role}; rename one")
        seen[name] = role


#: random points at which an explicit t must change ∂/∂t from 0 to count as explicit time, and the seconds
#: allowed to confirm a cancellation symbolically
TIME_PROBES = 3
TIME_CANCEL_S = 2.0
#: functions whose derivative is a distribution: random points miss it, so their t is never dropped
NOT_SMOOTH = (sp.Heaviside, sp.DiracDelta, sp.Piecewise, sp.Max, sp.Min, sp.sign, sp.Abs, sp.floor, sp.ceiling)


def without_cancelling_time(expr: sp.Expr, t: sp.Symbol) -> sp.Expr:
    """``expr`` at t = 0 where its explicit t cancels (∂expr/∂t is 0 at random points and simplifies to 0: a
    rotating frame written in Cartesian components, cos²(Ωt) + sin²(Ωt) = 1; a probe's bead on a hoop was
    reported time-dependent, with no energy check), else ``expr`` itself. Exact: ∂expr/∂t ≡ 0 makes expr(t)
    expr(0) for every t."""
    if t not in expr.free_symbols or expr.has(*NOT_SMOOTH):  # a switch in t (a time window) is kept as written
        return expr
    rate = sp.diff(expr, t)
    rng = random.Random(0)
    for _ in range(TIME_PROBES):
        point = {s: sp.Float(rng.uniform(0.3, 1.7)) for s in rate.free_symbols}
        try:
            value = complex(rate.evalf(subs=point))
        except (TypeError, ValueError):  # not a number there (a pole, an undefined function): keep t
            return expr
        if not abs(value) <= 1e-9:
            return expr
    return expr.subs(t, 0) if within(TIME_CANCEL_S, sp.simplify, rate) == 0 else expr


class Model:
    """A physical learning system: ``L(q, v, t; θ)``, inputs, targets and a cost (theory §1).

    Parameters
    ----------
    lagrangian:
        Scalar sympy expression in the coordinates (``dynamicsymbols``), their
        first time derivatives, parameters, constants, inputs and time.
    coordinates:
        ``sympy.physics.mechanics.dynamicsymbols`` (functions of time).
    parameters:
        Learnable symbols ``θ``.
    constants:
        Mapping of fixed symbols to numbers (e.g. ``{g: 9.81}``); not learned.
    inputs, targets:
        Functions of time (``dynamicsymbols``) sampled from arrays at run time.
        Inputs may enter the Lagrangian and the cost, targets only the cost.
    cost:
        Cost density ``c(q, t)``; it must not depend on velocities or parameters.
    terminal_cost:
        Cost ``c_T(q(T))`` of the final state (theory §10): coordinates, targets (read at the
        final node, e.g. a final-time target ``y_T``) and constants only. The loss is the
        running loss plus ``c_T(q_K)``; the echo starts from the kicked, flipped momentum.
    dissipation:
        Optional Rayleigh dissipation function ``R(q, v)`` (theory §7): the force
        ``−∂R/∂v`` joins the equations of motion. Uniform linear damping
        (``∂R/∂v = γ ∂L/∂v``) is rewritten into the Caldirola–Kanai Lagrangian
        ``e^{γt} L``; any other ``R`` stays as a non-variational force.
    rewrite_dissipation:
        ``False`` keeps even uniform damping as a Rayleigh force (no exact echo then);
        useful to measure what the rewriting buys.
    name:
        Model name (used for generated files and reports).
    initial_positions:
        Optional ``f(rng) -> n`` start coordinates, drawn by ``symglep check`` (``rng`` a NumPy
        ``Generator``); by default each coordinate is drawn uniformly in [-0.3, 0.3]. Give one when
        that box holds a singular set of the model (a polar radius at 0) or an unstable equilibrium.
    """

    capabilities = capabilities_table.SCALAR  # what this kind serves, and why not (docs/architecture.md)

    def __init__(
        self,
        lagrangian,
        coordinates,
        parameters=(),
        inputs=(),
        targets=(),
        cost=0,
        name: str = "model",
        constants: Mapping | None = None,
        *,
        dissipation=None,
        rewrite_dissipation: bool = True,
        terminal_cost=0,
        initial_positions=None,
        _hamiltonian=None,
    ):
        if not isinstance(name, str) or not name.strip():
            raise ModelError(f"the model name must be a non-empty string, got {name!r}")
        self.name = name
        lagrangian = _sympify(lagrangian, "Lagrangian")
        cost = _sympify(cost, "cost")
        terminal_cost = _sympify(terminal_cost, "terminal cost")
        coordinates = _as_tuple(coordinates, "coordinates")
        if not coordinates:
            raise ModelError("a model needs at least one coordinate")
        constants = dict(constants or {})

        self.time = self._time_symbol(coordinates)
        t = self.time
        variables: list[Variable] = []
        for c in coordinates:
            if not (isinstance(c, AppliedUndef) and c.args == (t,)):
                raise ModelError(
                    f"coordinate {c!r} must be a function of time, e.g. dynamicsymbols('{c}')"
                )
            variables.append(Variable(_name_of(c), "coordinate", c, _plain_symbol(c)))
        for kind, group in (
            ("parameter", _as_tuple(parameters, "parameters")),
            ("constant", tuple(constants)),
            ("input", _as_tuple(inputs, "inputs")),
            ("target", _as_tuple(targets, "targets")),
        ):
            for obj in group:
                if isinstance(obj, str):
                    raise ModelError(f"{kind} {obj!r} is a string; declare it as a sympy symbol")
                if kind in ("parameter", "constant") and not isinstance(obj, sp.Symbol):
                    raise ModelError(f"{kind} {obj!r} must be a sympy Symbol")
                if kind in ("input", "target") and not (
                    isinstance(obj, sp.Symbol) or (isinstance(obj, AppliedUndef) and obj.args == (t,))
                ):
                    raise ModelError(f"{kind} {obj!r} must be a function of time, e.g. dynamicsymbols('u')")
                symbol = obj if kind in ("parameter", "constant") else _plain_symbol(obj)
                variables.append(Variable(_name_of(obj), kind, obj, symbol))

        self._check_names(variables)
        self.variables = tuple(variables)
        by_kind = lambda k: tuple(v for v in variables if v.kind == k)  # noqa: E731
        coords = by_kind("coordinate")
        self.coordinate_names = tuple(v.name for v in coords)
        self.q = tuple(v.symbol for v in coords)
        self.v = tuple(sp.Symbol(velocity_name(n)) for n in self.coordinate_names)
        self.a = tuple(sp.Symbol(acceleration_name(n)) for n in self.coordinate_names)
        self.p = tuple(sp.Symbol(momentum_name(n)) for n in self.coordinate_names)
        self.parameters = tuple(v.symbol for v in by_kind("parameter"))
        self.constants = {v.symbol: constant_value(v.symbol, constants[v.user]) for v in by_kind("constant")}
        self.u = tuple(v.symbol for v in by_kind("input"))
        self.y = tuple(v.symbol for v in by_kind("target"))

        self._to_plain = {}
        for v in coords:
            self._to_plain[sp.Derivative(v.user, t)] = self.v[self.q.index(v.symbol)]
        for v in variables:
            if v.kind != "parameter" and v.kind != "constant" and v.user != v.symbol:
                self._to_plain[v.user] = v.symbol
        self.lagrangian = without_cancelling_time(self._plain(lagrangian, "Lagrangian"), t)
        self.cost = without_cancelling_time(self._plain(cost, "cost"), t)
        self.terminal_cost = self._plain(terminal_cost, "terminal cost")
        self._validate()
        self._dissipation(dissipation, rewrite_dissipation)
        self.hamiltonian = _hamiltonian  # set by from_hamiltonian, in (q, p) symbols
        if initial_positions is not None and not callable(initial_positions):
            raise ModelError(f"initial_positions must be a function f(rng) -> {self.n} start coordinates, got "
                             f"{initial_positions!r}")
        self.initial_positions = initial_positions

    # -- construction helpers -------------------------------------------------
    @staticmethod
    def _time_symbol(coordinates) -> sp.Symbol:
        times = {c.args[0] for c in coordinates if isinstance(c, AppliedUndef) and len(c.args) == 1}
        if len(times) > 1:
            raise ModelError(f"coordinates depend on different time symbols: {sorted(map(str, times))}")
        if not times:
            raise ModelError(
                f"coordinate {coordinates[0]!r} must be a function of time, "
                f"e.g. dynamicsymbols('{coordinates[0]}')"
            )
        (t,) = times
        if not isinstance(t, sp.Symbol):
            raise ModelError(f"coordinates must be functions of a time symbol, not of {t}")
        return t

    def _check_names(self, variables: list[Variable]) -> None:
        pairs = [(self.time.name, "time")]
        for var in variables:
            names = [(var.name, var.kind)]
            if var.kind == "coordinate":
                names += [
                    (velocity_name(var.name), f"velocity of coordinate {var.name}"),
                    (acceleration_name(var.name), f"acceleration of coordinate {var.name}"),
                    (momentum_name(var.name), f"momentum of coordinate {var.name}"),
                ]
            if var.kind == "input":
                names.append((velocity_name(var.name), f"rate of input {var.name}"))
            pairs += names
        refuse_repeated_names(pairs)

    def _plain(self, expr: sp.Expr, what: str) -> sp.Expr:
        """Rewrite ``expr`` in plain symbols; refuse higher derivatives and unknown functions."""
        for d in expr.atoms(sp.Derivative):
            if d not in self._to_plain:
                raise ModelError(
                    f"the {what} contains {d}: only first time derivatives of coordinates are allowed"
                )
        plain = expr.xreplace(self._to_plain)
        for f in plain.atoms(AppliedUndef):
            raise ModelError(f"the {what} uses {f}, which is not declared (coordinates, inputs or targets)")
        return as_piecewise(plain)

    def _time_hint(self, sym) -> str:
        """A note when an undeclared symbol is named like the time but is not it (a Symbol('t') with
        assumptions is another symbol to SymPy), or like a declared symbol with other assumptions
        (``Symbol('m', positive=True)`` in L, ``Symbol('m')`` in ``parameters``)."""
        if sym.name != self.time.name:
            twins = [s for s in (*self.parameters, *self.constants, *self.q, *self.u, *self.y)
                     if getattr(s, "name", None) == sym.name and s != sym]
            if not twins:
                return ""
            def said(s):  # the strongest assumption given, as it was written
                flag = next((k for k in ("positive", "negative", "nonnegative", "nonpositive", "integer", "real")
                             if s.assumptions0.get(k)), None)
                return f"Symbol('{s.name}'{f', {flag}=True' if flag else ''})"
            return (f"; a symbol named {sym.name} is declared, but with other assumptions: {said(sym)} here, "
                    f"{said(twins[0])} declared, which SymPy takes for two symbols: create it once and use it in "
                    "both places")
        declared = ", ".join(f"{k}=True" for k in ("real", "positive", "nonnegative", "integer")
                             if sym.assumptions0.get(k))
        return (f"; the time of a model is dynamicsymbols._t (Symbol('{sym.name}') without assumptions): "
                f"Symbol('{sym.name}'{', ' + declared if declared else ''}) is another symbol to SymPy")

    def _validate(self) -> None:
        t = self.time
        state = set(self.q) | set(self.v)
        known = state | set(self.parameters) | set(self.constants) | set(self.u) | {t}
        for sym in sorted(self.lagrangian.free_symbols, key=str):
            if sym in set(self.y):
                raise ModelError(f"target {sym} appears in the Lagrangian; targets enter only the cost")
            if sym not in known:
                raise ModelError(f"symbol {sym} in the Lagrangian is not declared "
                                 "(add it to parameters, constants, inputs or coordinates)" + self._time_hint(sym))
        cost_known = set(self.q) | set(self.constants) | set(self.u) | set(self.y) | {t}
        for sym in sorted(self.cost.free_symbols, key=str):
            if sym in set(self.v):
                raise ModelError(f"the cost depends on the velocity {sym}; the cost may depend "
                                 "only on coordinates, inputs, targets and time (theory §1)")
            if sym in set(self.parameters):
                raise ModelError(f"the cost depends on the parameter {sym}; learnable parameters may appear only "
                                 "in the Lagrangian (the echo's learning integrand is dL/dtheta, theory §5): write "
                                 f"the cost in the coordinates (an angle rather than a position that reads {sym}), "
                                 f"or make {sym} a constant")
            if sym not in cost_known:
                raise ModelError(f"symbol {sym} in the cost is not declared "
                                 "(add it to constants, inputs, targets or coordinates)" + self._time_hint(sym))
        terminal_known = set(self.q) | set(self.constants) | set(self.y)
        for sym in sorted(self.terminal_cost.free_symbols, key=str):
            if sym in set(self.v):
                raise ModelError(f"the terminal cost depends on the velocity {sym}; it may depend only on "
                                 "the final coordinates, targets and constants (theory §10)")
            if sym in set(self.parameters):
                raise ModelError(f"the terminal cost depends on the parameter {sym}; learnable parameters may appear "
                                 "only in the Lagrangian (the echo's learning integrand is dL/dtheta, theory §5)")
            if sym in set(self.u) or sym == t:
                raise ModelError(f"the terminal cost depends on {'time' if sym == t else 'the input ' + str(sym)}; "
                                 "it may depend only on the final coordinates, targets and constants (theory §10)")
            if sym not in terminal_known:
                raise ModelError(f"symbol {sym} in the terminal cost is not declared "
                                 "(add it to constants, targets or coordinates)" + self._time_hint(sym))
        for expr, what in ((self.lagrangian, "Lagrangian"), (self.cost, "cost"),
                           (self.terminal_cost, "terminal cost")):
            number = not_real_number(expr)
            if number is not None:
                raise ModelError(f"the {what} contains a complex, infinite or undefined number ({number})")
        if not (self.lagrangian.free_symbols & set(self.v)):
            raise ModelError("the Lagrangian does not depend on any velocity: it has no dynamics")

    def _dissipation(self, dissipation, rewrite: bool) -> None:
        """Set ``rayleigh`` (the declared R or None), ``damping`` (the R left in the dynamics, 0 if none)
        and ``user_lagrangian``; rewrite uniform linear damping into Caldirola–Kanai form (theory §7)."""
        self.user_lagrangian = self.lagrangian
        self.rayleigh = None
        self.damping = sp.S.Zero
        if dissipation is None:
            return
        r = self._plain(_sympify(dissipation, "dissipation function"), "dissipation function")
        allowed = set(self.q) | set(self.v) | set(self.parameters) | set(self.constants)
        for sym in sorted(r.free_symbols, key=str):
            if sym not in allowed:
                raise ModelError(f"symbol {sym} in the dissipation function is not allowed: R may depend "
                                 "only on coordinates, velocities, parameters and constants")
        if not (r.free_symbols & set(self.v)):
            raise ModelError("the dissipation function does not depend on any velocity: it dissipates nothing")
        varying = set(self.q) | set(self.v) | set(self.u) | {self.time}
        self.rayleigh = uniform_rate(self.lagrangian, r, self.v, self.time, varying, self.constants)
        if not rewrite and self.rayleigh.rewritable:
            self.rayleigh = Rayleigh(r, None, f"uniform ({self.rayleigh.why}), but kept as a force: "
                                              "rewrite_dissipation=False")
        if self.rayleigh.rewritable:
            self.lagrangian = caldirola_kanai(self.lagrangian, self.rayleigh.rate, self.time)
        else:
            self.damping = r

    # -- alternative constructor ---------------------------------------------
    @classmethod
    def from_hamiltonian(cls, hamiltonian, coordinates, momenta, parameters=(), inputs=(),
                         targets=(), cost=0, name: str = "model", constants: Mapping | None = None,
                         dissipation=None, terminal_cost=0, initial_positions=None):
        """Build a model from ``H(q, p, t)`` by the inverse Legendre transform (theory §4).

        ``L = p·v − H`` with ``p`` solved from ``v = ∂H/∂p``.
        """
        hamiltonian = _sympify(hamiltonian, "Hamiltonian")
        coordinates = _as_tuple(coordinates, "coordinates")
        momenta = _as_tuple(momenta, "momenta")
        if len(momenta) != len(coordinates):
            raise ModelError(f"{len(coordinates)} coordinates but {len(momenta)} momenta")
        t = cls._time_symbol(coordinates)
        for p in momenta:
            if not (isinstance(p, sp.Symbol) or (isinstance(p, AppliedUndef) and p.args == (t,))):
                raise ModelError(f"momentum {p!r} must be a symbol or a function of time")
        velocities = [sp.Derivative(c, t) for c in coordinates]
        for d in hamiltonian.atoms(sp.Derivative):
            raise ModelError(f"the Hamiltonian contains the velocity {d}: H is a function of the coordinates, the "
                             "momenta and time; a velocity-dependent term is written through p (theory §4)")
        symbols = [s for s in _as_tuple(parameters, "parameters") if isinstance(s, sp.Symbol)]
        lagrangian, _ = lagrangian_from_hamiltonian(hamiltonian, list(momenta), velocities, symbols)
        model = cls(lagrangian, coordinates, parameters, inputs, targets, cost, name, constants,
                    dissipation=dissipation, terminal_cost=terminal_cost, initial_positions=initial_positions)
        if model.rayleigh is not None and model.rayleigh.rewritable:
            return model  # the declared H is not that of exp(γt)·L: derive builds the rewritten one
        h = hamiltonian.xreplace(dict(zip(momenta, model.p)))
        model.hamiltonian = model._plain(h, "Hamiltonian")
        return model

    # -- conveniences ---------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of coordinates."""
        return len(self.q)

    def symbol_by_name(self) -> dict[str, sp.Symbol]:
        """Every plain name of the model (including velocities and momenta) to its symbol."""
        names = {s.name: s for s in (*self.q, *self.v, *self.a, *self.p, *self.parameters,
                                     *self.constants, *self.u, *self.y, self.time)}
        return names

    def __repr__(self) -> str:
        return (f"Model({self.name!r}, coordinates={list(self.coordinate_names)}, "
                f"parameters={[s.name for s in self.parameters]})")

    def _repr_latex_(self) -> str:
        return f"$L = {sp.latex(self.lagrangian, symbol_names=latex_symbol_names(self))}$"


def latex_symbol_names(model: Model) -> dict:
    """LaTeX names: ``q1_dot`` -> ``\\dot{q}_{1}``, ``p_q1`` -> ``p_{q_{1}}``."""
    names = {}
    for q, v, a, p in zip(model.q, model.v, model.a, model.p):
        base = sp.latex(q)
        names[v] = rf"\dot{{{base}}}"
        names[a] = rf"\ddot{{{base}}}"
        names[p] = rf"p_{{{base}}}"
    return names
