"""An array model as a unit of a :class:`~symglep.stack.Stack` (theory §9, docs/networks.md).

A stack fixes every size at construction, so an array unit is an
:class:`~symglep.network.ArrayModel` at its declared ``size`` (units), ``sizes["m"]`` inputs
and, on the top unit, ``sizes["r"]`` readout units of the cost (the last ``r`` units, as
``symglep.network`` reads them), with its default edge list. Its parameters enter the stack's
packed θ flattened in declaration order (C order), exactly as the array model's own kernels
pack them; their names are ``unit<i>.<name>[j,k]``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..network.check import draw_parameters as draw_array_parameters
from ..network.model import ArrayModel
from ..parameter_values import element_names


class ArrayUnit:
    """The fixed-size view of an array model that a stack steps (module docstring)."""

    def __init__(self, model: ArrayModel, index: int):
        self.model, self.index = model, index
        self.name = model.name
        self.size, self.dim = model.size, model.dim
        self.n = self.size * self.dim
        self.m = model.sizes["m"] if model.u is not None else 0
        self.r = model.sizes["r"]
        if not 1 <= self.r <= self.size:
            raise ModelError(f"unit {index} ({model.name!r}): sizes['r'] = {self.r} readout units, "
                             f"not within 1..{self.size}")
        self.edges = np.ascontiguousarray(model.default_edges(self.size), dtype=np.int64)
        if self.edges.size and (self.edges.min() < 0 or self.edges.max() >= self.size):
            raise ModelError(f"unit {index} ({model.name!r}): its default edge list leaves 0..{self.size - 1}")
        ne = len(self.edges)
        self.layout = [(p.name, model.parameter_shape(p, self.size, self.m, ne)) for p in model.parameters]
        sizes = [int(np.prod(shape)) if shape else 1 for _, shape in self.layout]
        self.offsets = [int(o) for o in np.concatenate([[0], np.cumsum(sizes)[:-1]])] if sizes else []
        self.n_theta = int(sum(sizes))

    @property
    def coordinate_names(self) -> list:
        """``q[i]`` (``q[i,c]`` for vector coordinates) in the flat order of the kernels."""
        base = self.model.q.name
        if self.dim == 1:
            return [f"{base}[{i}]" for i in range(self.size)]
        return [f"{base}[{i},{c}]" for i in range(self.size) for c in range(self.dim)]

    def readout_units(self) -> np.ndarray:
        """The units the cost reads (top unit): the last ``r``."""
        return np.arange(self.size - self.r, self.size, dtype=np.int64)

    def select(self, spec) -> list:
        """Coordinate indices of this unit's readout to the glue: ``"all"`` or the model's
        :class:`~symglep.network.Coordinates` (every coordinate), or a list of flat indices."""
        if isinstance(spec, str) and spec == "all" or spec is self.model.q:
            return list(range(self.n))
        try:
            out = [int(j) for j in spec]
        except (TypeError, ValueError):
            raise ModelError(f"the readout of array unit {self.index} ({self.name!r}) is 'all', its coordinates "
                             f"{self.model.q.name}, or a list of coordinate indices in 0..{self.n - 1}") from None
        if not out or any(j < 0 or j >= self.n for j in out) or len(set(out)) != len(out):
            raise ModelError(f"the readout of array unit {self.index} ({self.name!r}) must list distinct coordinate "
                             f"indices in 0..{self.n - 1}, got {list(spec)}")
        return out

    def parameter_names(self) -> list:
        return [e for name, shape in self.layout for e in element_names(name, shape)]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Parameters as ``symglep check`` draws an array model's (:func:`symglep.network.check.draw_parameters`)."""
        values = draw_array_parameters(self.model, self.size, self.m, len(self.edges), rng)
        parts = [np.asarray(values[name], dtype=np.float64).reshape(-1) for name, _ in self.layout]
        return np.concatenate(parts) if parts else np.zeros(0)

    def fingerprint(self) -> str:
        """The sizes this unit is generated at (with the model's own fingerprint: its code)."""
        return f"size={self.size} m={self.m} r={self.r} edges=" + ",".join(map(str, self.edges.reshape(-1)))


__all__ = ["ArrayUnit"]
