"""Array models: networks of n units declared once, whatever n is (docs/networks.md).

The user declares arrays (coordinates ``q``, parameters ``W``, inputs ``u``,
targets ``y``) and writes the Lagrangian as a signed sum of index sums,
``Sum(expr, i)``, ``Sum(expr, i, j)``, ``Sum(expr, E)`` (an edge list) and a cost
``Sum(expr, r)`` over readout units. Each ``expr`` is an ordinary SymPy scalar in
*element symbols* — ``q[i]``, ``q.dot[i]``, ``W[i, j]``, ``(B @ u)[i]`` — so
symglep differentiates small scalar expressions once; n is only a run-time size.

Index meaning: ``i``, ``j``, ``k`` run over the n units, ``r`` over the readout
units (the last ``n_y`` units unless given at run time), an :class:`Edges` object
over its edge list (its ``src``/``dst``/``e`` element indices).
"""

from __future__ import annotations

import sympy as sp

from ..errors import ModelError

i, j, k, r = sp.symbols("i j k r", integer=True, nonnegative=True)
NODE_INDICES = (i, j, k)


class _Element(sp.Symbol):
    """A real scalar element symbol (``W[i, j]``).

    SymPy caches and shares equal symbols and expressions, so an element symbol met in an
    expression may be an equal object made by an earlier model with arrays of the same
    names: its array is looked up by name in the model (:meth:`ArrayModel.element_info`);
    the attributes set here serve only to name undeclared arrays in error messages.
    """

    def __new__(cls, name, array=None, index=()):
        obj = super().__new__(cls, name, real=True)
        obj._array, obj._index = array, index
        return obj

    def __getnewargs_ex__(self):
        return ((self.name,), {})


def _index_name(idx) -> str:
    return idx.name if isinstance(idx, sp.Symbol) else str(idx)


class _Array:
    """A named array of element symbols; ``a[idx]`` returns (and remembers) its element."""

    kind = "array"

    def __init__(self, name: str, shape: tuple):
        if not isinstance(name, str) or not name.isidentifier():
            raise ModelError(f"array name {name!r} must be an identifier")
        self.name, self.shape = name, tuple(shape)
        self._cache = {}

    def element(self, index: tuple, suffix: str = ""):
        key = (index, suffix)
        if key not in self._cache:
            label = ",".join(_index_name(x) for x in index)
            self._cache[key] = _Element(f"{self.name}{suffix}[{label}]" if label else self.name + suffix, self, key)
        return self._cache[key]

    def __getitem__(self, idx):
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) != len(self.shape):
            raise ModelError(f"{self.name} has {len(self.shape)} indices ({self.kind} of shape "
                             f"{self.shape}), got {len(idx)}")
        return self.element(idx)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, {self.shape})"


class Coordinates(_Array):
    """The unit coordinates: ``q[i]`` (``dim = 1``) or the vector ``x[i]`` with components ``x[i, c]``."""

    kind = "coordinates"

    def __init__(self, name: str, dim: int = 1):
        super().__init__(name, ("n",))
        if not isinstance(dim, int) or dim < 1:
            raise ModelError(f"coordinate dimension must be a positive integer, got {dim!r}")
        self.dim = dim
        self.dot = _Velocities(self)

    def __getitem__(self, idx):
        return self._get(idx, "")

    def _get(self, idx, suffix):
        if isinstance(idx, tuple):
            if len(idx) != 2 or self.dim == 1:
                raise ModelError(f"{self.name}[unit, component] needs a vector coordinate (dim > 1)")
            node, c = idx
            if not (isinstance(c, int) and 0 <= c < self.dim):
                raise ModelError(f"component index of {self.name} must be 0..{self.dim - 1}, got {c!r}")
            return self.element((node, c), suffix)
        if self.dim == 1:
            return self.element((idx,), suffix)
        return sp.Matrix([self.element((idx, c), suffix) for c in range(self.dim)])


class _Velocities:
    """``q.dot[i]``: the velocity elements (only the kinetic term may use them)."""

    def __init__(self, q: Coordinates):
        self.q = q

    def __getitem__(self, idx):
        return self.q._get(idx, ".dot")


class Parameter(_Array):
    """A learnable array: ``Parameter("W", ("n", "n"))``, ``Parameter("b", "n")``, edge values ``("e",)``.

    Sizes: ``n`` units, ``m`` inputs, ``e`` edges. ``A @ q`` and ``B @ u`` are matrix–vector
    products whose rows are read as ``(A @ q)[i]``. ``init=(low, high)`` is the range that
    ``symglep check`` draws the values from (default: [0.5, 1.5] if ``positive``, else
    ±1/√n for square matrices and [-0.5, 0.5] otherwise).
    """

    kind = "parameter"

    def __init__(self, name: str, shape=(), positive: bool = False, init=None):
        shape = (shape,) if isinstance(shape, str) else tuple(shape)
        self.positive = bool(positive)
        self.init = None if init is None else (float(init[0]), float(init[1]))  # range drawn by `check`
        for s in shape:
            if s not in ("n", "m", "e"):
                raise ModelError(f"parameter {name}: size {s!r} unknown (use 'n' units, 'm' inputs, 'e' edges)")
        super().__init__(name, shape)

    def __matmul__(self, other):
        if not isinstance(other, (Coordinates, Inputs)) or len(self.shape) != 2:
            raise ModelError(f"{self.name} @ {other!r}: only matrix @ coordinates or matrix @ inputs")
        if isinstance(other, Coordinates) and other.dim != 1:
            raise ModelError(f"{self.name} @ {other.name}: matrix products need scalar coordinates (dim = 1)")
        want = "n" if isinstance(other, Coordinates) else "m"
        if self.shape != ("n", want):
            raise ModelError(f"{self.name} @ {other.name} needs {self.name} of shape ('n', '{want}'), "
                             f"got {self.shape}")
        products = self.__dict__.setdefault("_products", {})
        if other.name not in products or products[other.name].vector is not other:
            products[other.name] = MatVec(self, other)
        return products[other.name]


class MatVec:
    """``(A @ q)[i] = Σ_j A[i, j] q[j]`` as one element symbol of the row ``i``."""

    def __init__(self, matrix: Parameter, vector):
        self.matrix, self.vector = matrix, vector
        self.name = f"({matrix.name}@{vector.name})"
        self._cache = {}

    def __getitem__(self, idx):
        key = ((idx,), "")
        if key not in self._cache:
            self._cache[key] = _Element(f"{self.name}[{_index_name(idx)}]", self, key)
        return self._cache[key]


class Inputs(_Array):
    """Input vector ``u[j]`` (``m`` channels), sampled at the time nodes from arrays at run time."""

    kind = "inputs"

    def __init__(self, name: str):
        super().__init__(name, ("m",))


class Targets(_Array):
    """Target vector ``y[r]``, one per readout unit; enters only the cost."""

    kind = "targets"

    def __init__(self, name: str):
        super().__init__(name, ("r",))


class Edges:
    """An edge list ``E`` (pairs ``(src_e, dst_e)`` given at run time).

    In ``Sum(expr, E)`` the element indices are ``E.src``, ``E.dst`` (units) and
    ``E.e`` (the edge, for edge parameters ``k[E.e]``). ``default(n)`` builds the
    default graph of a network of n units.
    """

    def __init__(self, name: str, default):
        if not callable(default):
            raise ModelError(f"Edges({name!r}): default must be a function n -> list of (src, dst)")
        self.name, self.default = name, default
        self.src, self.dst, self.e = sp.symbols(f"{name}_src {name}_dst {name}_e", integer=True, nonnegative=True)

    def __repr__(self):
        return f"Edges({self.name!r})"


# ---------------------------------------------------------------------------
# Terms: signed index sums.
# ---------------------------------------------------------------------------

class Sum:
    """``Sum(expr, i)``, ``Sum(expr, i, j)``, ``Sum(expr, E)``, ``Sum(expr, r)`` (cost): an index sum.

    Combine with ``+``, ``-`` and a numeric factor into the Lagrangian.
    """

    def __init__(self, expr, *over):
        if isinstance(expr, (sp.MatrixBase, list, tuple)):
            raise ModelError("the summand must be a scalar expression (use .norm() or .dot() on vectors)")
        try:
            self.expr = sp.sympify(expr)
        except (sp.SympifyError, TypeError) as exc:
            raise ModelError(f"the summand is not a sympy expression: {exc}") from None
        if not over:
            raise ModelError("Sum needs the index it runs over: Sum(expr, i), Sum(expr, i, j) or Sum(expr, E)")
        self.over = over
        self.sign = sp.Integer(1)

    def _signed(self, factor):
        out = Sum.__new__(Sum)
        out.expr, out.over, out.sign = self.expr, self.over, self.sign * sp.sympify(factor)
        return out

    def __neg__(self):
        return Terms([self._signed(-1)])

    def __pos__(self):
        return Terms([self])

    def __add__(self, other):
        return Terms([self]) + other

    def __sub__(self, other):
        return Terms([self]) - other

    def __mul__(self, factor):
        return Terms([self._signed(factor)])

    __rmul__ = __mul__

    def __repr__(self):
        return f"Sum({self.expr}, {', '.join(map(str, self.over))})"


class Terms:
    """A signed list of :class:`Sum` (the Lagrangian)."""

    def __init__(self, terms):
        self.terms = list(terms)

    def __add__(self, other):
        if isinstance(other, Sum):
            other = Terms([other])
        if not isinstance(other, Terms):
            raise ModelError(f"cannot add {other!r} to a sum of terms: write every term as Sum(...)")
        return Terms(self.terms + other.terms)

    def __sub__(self, other):
        if isinstance(other, Sum):
            other = Terms([other])
        if not isinstance(other, Terms):
            raise ModelError(f"cannot subtract {other!r} from a sum of terms: write every term as Sum(...)")
        return Terms(self.terms + [t._signed(-1) for t in other.terms])

    def __neg__(self):
        return Terms([t._signed(-1) for t in self.terms])

    def __mul__(self, factor):
        return Terms([t._signed(factor) for t in self.terms])

    __rmul__ = __mul__


# ---------------------------------------------------------------------------
# The model.
# ---------------------------------------------------------------------------

class ArrayModel:
    """A network Lagrangian ``L = Σ (index sums)``, a readout cost, and a default size.

    Parameters
    ----------
    lagrangian: ``Sum(...) ± Sum(...) ...``; exactly one kinetic site term ``Sum(m/2 * q.dot[i]**2, i)``.
    cost: ``Sum(c(q[r], y[r]), r)`` over the readout units.
    coordinates, parameters, inputs, targets: the declared arrays; scalar parameters are plain
        sympy Symbols; ``constants`` maps fixed scalar symbols to numbers.
    size: the default number of units; ``sizes`` the default number of inputs ``m`` and readout
        units ``r`` (e.g. ``{"m": 2, "r": 1}``).
    initial_positions: optional ``f(n, rng) -> (n, dim)`` drawing a sensible start (``symglep check``);
        the default draws uniformly in [-0.3, 0.3].
    """

    def __init__(self, lagrangian, cost, coordinates, parameters=(), inputs=None, targets=None,
                 constants=None, edges=None, name="network", size=16, sizes=None, initial_positions=None):
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
            if not isinstance(p, (Parameter, sp.Symbol)) or isinstance(p, _Element):
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
        self._elements = {}  # element name -> (array, (index, suffix)), from this model's own arrays
        arrays = [self.q] + [p for p in self.parameters if isinstance(p, Parameter)]
        arrays += [a for a in (inputs, targets) if a is not None]
        for a in arrays:
            for key, el in a._cache.items():
                self._elements[el.name] = (a, key)
            for mv in getattr(a, "_products", {}).values():
                for key, el in mv._cache.items():
                    self._elements[el.name] = (mv, key)
        from .terms import classify  # the term kinds and their checks

        self.kinetic, self.potential_terms, self.readout = classify(self)

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
        import numpy as np

        if self.edges is None:
            return np.zeros((0, 2), dtype=np.int64)
        pairs = np.asarray(self.edges.default(n), dtype=np.int64).reshape(-1, 2)
        return pairs

    def __repr__(self):
        return f"ArrayModel({self.name!r}, size={self.size}, parameters={[p.name for p in self.parameters]})"
