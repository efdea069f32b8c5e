"""The declaration language of array models: indices, element symbols, arrays and index sums.

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


class Element(sp.Symbol):
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
            self._cache[key] = Element(f"{self.name}{suffix}[{label}]" if label else self.name + suffix, self, key)
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
        if not shape:
            raise ModelError(f"parameter {name}: an array model's scalar parameter is a sympy Symbol, "
                             f"sp.Symbol({name!r}{', positive=True' if positive else ''}), not Parameter({name!r}, ()); "
                             "check draws it in [0.5, 1.5] when positive, else [-0.5, 0.5] (start it elsewhere with "
                             "check --params or train --resume)")
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
            self._cache[key] = Element(f"{self.name}[{_index_name(idx)}]", self, key)
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
