"""Array models: networks of n units declared once, whatever n is (docs/networks.md).

:class:`ArrayModel` holds a Lagrangian and a cost written in the declaration language of
:mod:`symglep.network.arrays`, split into term kinds by :mod:`symglep.network.terms`.
"""

from __future__ import annotations

import sympy as sp

import numpy as np

from .. import capabilities as capabilities_table
from ..errors import ModelError, SymglepError
from ..model import constant_value, refuse_repeated_names
from ..symbolic import not_real_number
from .arrays import Coordinates, Element, Parameter, Sum, Terms
from .terms import classify, damping_rate, terminal_readout


def _checked_term(term: Sum, what: str) -> Sum:
    """``term`` refused when it holds a complex, infinite or undefined number; a symbolic factor in front of it
    (``c*Sum(...)``) moved into the summand, where every symbol is checked against the declarations."""
    for part in (term.sign, term.expr):
        number = not_real_number(part)
        if number is not None:
            raise ModelError(f"the {what} contains a complex, infinite or undefined number ({number}) in {term!r}")
    if term.sign.free_symbols:
        return Sum(term.sign * term.expr, *term.over)
    return term


class ArrayModel:
    """A network Lagrangian ``L = Σ (index sums)``, a readout cost, and a default size.

    Parameters
    ----------
    lagrangian: ``Sum(...) ± Sum(...) ...``; exactly one kinetic site term ``Sum(m/2 * q.dot[i]**2, i)``.
    cost: ``Sum(c(q[r], y[r]), r)`` over the readout units.
    terminal_cost: optional ``Sum(c_T(q[r], y[r]), r)`` read once at the final node K, with the
        final targets ``y_K`` (theory §10): the loss adds ``c_T(q_K)``, the echo starts kicked.
    coordinates, parameters, inputs, targets: the declared arrays; scalar parameters are plain
        sympy Symbols; ``constants`` maps fixed scalar symbols to numbers.
    size: the default number of units; ``sizes`` the default number of inputs ``m`` and readout
        units ``r`` (e.g. ``{"m": 2, "r": 1}``).
    initial_positions: optional ``f(n, rng) -> (n, dim)`` drawing a sensible start (``symglep check``);
        the default draws uniformly in [-0.3, 0.3].
    dissipation: optional uniform linear damping ``Sum(gamma/2 * m[i] * q.dot[i]**2, i)`` (a rate gamma
        fixed by ``constants``, or a scalar parameter: a learned rate): the model runs as the
        Caldirola–Kanai Lagrangian ``e^{γt} L``, whose echo is exact (theory §7); ``damping_rate`` holds γ
        (0.0 without one; the parameter's symbol when learned).
    """

    capabilities = capabilities_table.ARRAY  # what this kind serves, and why not (docs/architecture.md)

    def __init__(self, lagrangian, cost, coordinates, parameters=(), inputs=None, targets=None,
                 constants=None, edges=None, name="network", size=16, sizes=None, initial_positions=None,
                 terminal_cost=None, dissipation=None):
        if not isinstance(name, str) or not name.strip():
            raise ModelError(f"the model name must be a non-empty string, got {name!r}")
        self.name = name
        if isinstance(lagrangian, Sum):
            lagrangian = Terms([lagrangian])
        if not isinstance(lagrangian, Terms):
            raise ModelError("the Lagrangian of an array model is a sum of Sum(...) terms")
        if not isinstance(cost, Sum):
            raise ModelError("the cost of an array model is Sum(c(q[r], y[r]), r)")
        if not isinstance(coordinates, Coordinates):
            raise ModelError("coordinates must be a symglep.network.Coordinates")
        self.q = coordinates
        self.dim = coordinates.dim
        self.parameters = tuple(parameters)
        for p in self.parameters:
            if not isinstance(p, (Parameter, sp.Symbol)) or isinstance(p, Element):
                raise ModelError(f"parameter {p!r} must be a symglep.network.Parameter or a sympy Symbol")
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ModelError(f"parameter names repeat: {names}")
        self.u = inputs
        self.y = targets
        self.edges = edges
        self.constants = {s: constant_value(s, v) for s, v in (constants or {}).items()}
        # a parameter named like the coordinates shared their elements x[i]: the model silently became another one
        named = [("coordinate", coordinates), *[("parameter", p) for p in self.parameters], ("input", inputs),
                 ("target", targets), ("edge list", edges), *[("constant", s) for s in self.constants]]
        refuse_repeated_names((thing.name, role) for role, thing in named if thing is not None)
        if not isinstance(size, int) or size < 2:
            raise ModelError(f"size must be an integer >= 2, got {size!r}")
        self.size = size
        self.initial_positions = initial_positions
        self.sizes = {"m": 1 if inputs is not None else 0, "r": 1}
        self.sizes.update(_checked_sizes(sizes, size, inputs is not None))
        self.terms = [_checked_term(t, "Lagrangian") for t in lagrangian.terms]
        self.cost = _checked_term(cost, "cost")
        # no terminal cost: None, or 0 as a scalar model's cost may be written
        self.terminal_cost = None if (isinstance(terminal_cost, (int, float, sp.Expr)) and not isinstance(
            terminal_cost, bool) and sp.sympify(terminal_cost) == 0) else terminal_cost
        self._elements = {}  # element name -> (array, (index, suffix)), from this model's own arrays
        arrays = [self.q] + [p for p in self.parameters if isinstance(p, Parameter)]
        arrays += [a for a in (inputs, targets) if a is not None]
        for a in arrays:
            for key, el in a._cache.items():
                self._elements[el.name] = (a, key)
            for mv in getattr(a, "_products", {}).values():
                for key, el in mv._cache.items():
                    self._elements[el.name] = (mv, key)
        self.kinetic, self.potential_terms, self.readout = classify(self)
        if self.kinetic.reads_q:
            self.capabilities = capabilities_table.ARRAY_MIDPOINT
        self.terminal = terminal_readout(self)
        self.dissipation = dissipation
        self.damping_rate = damping_rate(self, self.kinetic, dissipation)

    @property
    def integrator(self) -> str:
        """The default integrator: ``midpoint`` when the mass reads the unit's position (L is then not
        separable), else ``leapfrog`` (theory §6)."""
        return "midpoint" if self.kinetic.reads_q else "leapfrog"

    def rate_at(self, values: dict) -> float:
        """The damping rate γ at the parameters ``values`` (``{name: value}``): the learned rate's value or the
        constant one (theory §7); 0 for an undamped model."""
        if self.damping_rate is None:
            return 0.0
        if self.damping_parameter is not None:
            return float(np.ravel(values[self.damping_parameter.name])[0])
        return float(sp.sympify(self.damping_rate).xreplace(self.constants))

    @property
    def damping_parameter(self):
        """The scalar parameter that is the damping rate γ (learned, theory §7), or None."""
        return self.damping_rate if isinstance(self.damping_rate, sp.Symbol) else None

    @property
    def explicit_time(self) -> bool:
        """Whether a potential term reads the time t (the kernels sample it at each node, the midpoint rule at
        t_k+1/2; the energy is then not conserved)."""
        return any(s.role == "time" for term in self.potential_terms for s in term.slots)

    def integrator_for(self, integrator: str = "auto") -> str:
        """The integrator a run uses: the default for ``auto``, else the one asked for when the model's
        capability table serves it (a one-line refusal with the reason otherwise)."""
        if integrator == "auto":
            return self.integrator
        self.capabilities.require("integrator", integrator)
        return integrator

    def element_info(self, sym) -> tuple:
        """``(array, (index, suffix))`` of an element symbol, by name among this model's arrays."""
        return self._elements.get(sym.name) or (sym._array, sym._index)

    @property
    def n(self) -> int:
        """Default number of coordinates (units × dim)."""
        return self.size * self.dim

    def parameter_shape(self, p, n: int, m: int, ne: int) -> tuple:
        """Run-time shape of parameter ``p``."""
        if isinstance(p, sp.Symbol):
            return ()
        return tuple({"n": n, "m": m, "e": ne}[s] for s in p.shape)

    def default_edges(self, n: int):
        """The default edge list at ``n`` units, ``(n_e, 2)`` int64, checked (:func:`edge_array`)."""
        if self.edges is None:
            return np.zeros((0, 2), dtype=np.int64)
        what = f"the default edge list of {self.name!r} ({self.edges.name}) at n = {n}"
        try:
            pairs = self.edges.default(n)
        except Exception as exc:  # the user's function: its failure is a model error, not ours
            raise ModelError(f"{what}: the function raised {type(exc).__name__}: {exc}") from None
        return edge_array(pairs, n, what, ModelError)

    def edge_list(self, n: int, edges=None) -> np.ndarray:
        """The edges at ``n`` units: the model's default graph, or ``edges`` given at run time, checked
        (:func:`edge_array`; a run-time list's fault is the caller's, a :class:`SymglepError`)."""
        if edges is None:
            return self.default_edges(n)
        given = edge_array(edges, n, f"the edge list given at n = {n}", SymglepError)
        if self.edges is None and len(given):
            raise SymglepError(f"model {self.name!r} has no edge terms (no Edges in its Lagrangian), so the "
                               f"{len(given)} edge(s) given would act on nothing; drop edges=, or write the "
                               "coupling as a Sum over an Edges set")
        return given

    def __repr__(self):
        return f"ArrayModel({self.name!r}, size={self.size}, parameters={[p.name for p in self.parameters]})"


def _checked_sizes(sizes, size: int, has_inputs: bool) -> dict:
    """``sizes`` of an :class:`ArrayModel`: only ``m`` (inputs) and ``r`` (readout units), integers,
    ``1 <= r <= size`` and ``m >= 1`` for a model with inputs."""
    if sizes is None:
        return {}
    if not isinstance(sizes, dict):
        raise ModelError(f"sizes must be a dict like {{'m': 2, 'r': 1}}, got {sizes!r}")
    unknown = sorted(map(str, set(sizes) - {"m", "r"}))
    if unknown:
        raise ModelError(f"sizes: unknown key(s) {', '.join(map(repr, unknown))}; the keys are 'm' (inputs) and "
                         "'r' (readout units)")
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ModelError(f"sizes[{key!r}] must be an integer, got {value!r}")
    if "r" in sizes and not 1 <= sizes["r"] <= size:
        raise ModelError(f"sizes['r'] = {sizes['r']} readout units, not within 1..{size} (the model's size)")
    if "m" in sizes and sizes["m"] < (1 if has_inputs else 0):
        raise ModelError(f"sizes['m'] = {sizes['m']}: a model with inputs needs m >= 1 inputs")
    return {key: int(value) for key, value in sizes.items()}


def readout_units(n: int, n_y: int, readout=None, what: str = "readout") -> np.ndarray:
    """The ``n_y`` readout units of a network of ``n`` units, int64: the last ``n_y``, or ``readout``
    given at run time, checked (that many integers in ``0..n-1``; no truncation of non-integers)."""
    if readout is None:
        if not 0 <= n_y <= n:
            raise SymglepError(f"{n_y} {what} units (sizes['r'], or the width of the targets y given) but the network "
                               f"has {n} units: the default {what} "
                               f"is the last {n_y} units, so use at least {n_y} units, or give {what}= with {n_y} "
                               f"units in 0..{n - 1}")
        return np.arange(n - n_y, n, dtype=np.int64)
    arr = np.asarray(readout)
    integers = arr.dtype != bool and (np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))))
    if arr.shape != (n_y,) or not integers or (arr.size and (arr.min() < 0 or arr.max() >= n)):
        raise SymglepError(f"{what} must list {n_y} units in 0..{n - 1}, got {readout!r}")
    return arr.astype(np.int64)


def edge_array(pairs, n: int, what: str, error=ModelError) -> np.ndarray:
    """``pairs`` as an ``(n_e, 2)`` int64 array of units in ``0..n-1``, or ``error`` naming ``what``:
    no silent reshaping of triples, truncation of non-integers or indices outside the network."""
    try:
        arr = np.asarray(pairs)
    except (TypeError, ValueError) as exc:
        raise error(f"{what}: not a list of (src, dst) pairs ({exc})") from None
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise error(f"{what}: a list of (src, dst) pairs is needed, got an array of shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or
                                 (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))):
        raise error(f"{what}: unit indices must be integers, got {arr.dtype} values")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        e = int(np.argwhere(bad)[0][0])
        raise error(f"{what}: edge {e} = ({arr[e, 0]}, {arr[e, 1]}) refers to a unit outside 0..{n - 1}")
    return np.ascontiguousarray(arr)
