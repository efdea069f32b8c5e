"""Array models: networks of n units declared once, whatever n is (docs/networks.md).

:class:`ArrayModel` holds a Lagrangian and a cost written in the declaration language of
:mod:`symglep.network.arrays`, split into term kinds by :mod:`symglep.network.terms`.
"""

from __future__ import annotations

import sympy as sp

import numpy as np

from .. import capabilities as capabilities_table
from ..errors import ModelError
from .arrays import Coordinates, Element, Parameter, Sum, Terms
from .terms import classify, terminal_readout


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
    """

    capabilities = capabilities_table.ARRAY  # what this kind serves, and why not (docs/architecture.md)

    def __init__(self, lagrangian, cost, coordinates, parameters=(), inputs=None, targets=None,
                 constants=None, edges=None, name="network", size=16, sizes=None, initial_positions=None,
                 terminal_cost=None):
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
        self.constants = {s: sp.Float(float(v)) for s, v in (constants or {}).items()}
        if not isinstance(size, int) or size < 2:
            raise ModelError(f"size must be an integer >= 2, got {size!r}")
        self.size = size
        self.initial_positions = initial_positions
        self.sizes = {"m": 1 if inputs is not None else 0, "r": 1}
        self.sizes.update(sizes or {})
        self.terms = [t for t in lagrangian.terms]
        self.cost = cost
        self.terminal_cost = terminal_cost
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
        self.terminal = terminal_readout(self)

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
        if self.edges is None:
            return np.zeros((0, 2), dtype=np.int64)
        pairs = np.asarray(self.edges.default(n), dtype=np.int64).reshape(-1, 2)
        return pairs

    def __repr__(self):
        return f"ArrayModel({self.name!r}, size={self.size}, parameters={[p.name for p in self.parameters]})"
