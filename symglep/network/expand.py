"""The scalar :class:`~symglep.Model` of an array model at one size (element by element).

Used to check the array method against the scalar one (tests/test_networks.py):
the same Lagrangian written with one symbol per coordinate and per parameter
element. Its parameters come in the array kernels' flat order (declaration order,
each array row-major), so the two gradient vectors compare entry by entry.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

from ..model import Model
from .arrays import Coordinates, Edges, Element, Inputs, MatVec, Parameter, Targets, r
from .terms import TIME


def flat_names(p, shape) -> list:
    if not shape:
        return [p.name]
    return [p.name + "_" + "_".join(map(str, idx)) for idx in np.ndindex(*shape)]


def expand(model, n: int, m: int | None = None, n_y: int | None = None, edges=None, readout=None,
           costs: bool = True, name: str | None = None) -> Model:
    """The element-by-element Model of ``model`` with ``n`` units (small n only); without ``costs``, no cost,
    terminal cost or targets (a stack's unit below the top); ``name`` the Model's (default
    ``<model>_scalar_<n>``)."""
    m = model.sizes["m"] if m is None else m
    n_y = model.sizes["r"] if n_y is None else n_y
    E = model.default_edges(n) if edges is None else np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    ro = list(range(n - n_y, n)) if readout is None else list(readout)
    D = model.dim
    # real, like the array model's elements (and SymPy evaluates log cosh of real sums quickly)
    qs = [[dynamicsymbols(f"{model.q.name}_{a}" + (f"_{c}" if D > 1 else ""), real=True) for c in range(D)]
          for a in range(n)]
    us = [dynamicsymbols(f"{model.u.name}_{j}", real=True) for j in range(m)] if model.u is not None else []
    ys = [dynamicsymbols(f"{model.y.name}_{j}", real=True) for j in range(n_y)]
    scal = {}
    flat = []
    for p in model.parameters:
        if isinstance(p, Parameter):
            shape = model.parameter_shape(p, n, m, len(E))
            syms = [sp.Symbol(name, real=True, positive=p.positive or None) for name in flat_names(p, shape)]
            scal[p.name] = np.array(syms, dtype=object).reshape(shape)
            flat += syms
        else:
            flat.append(p)

    def concrete(sym, assign):
        array, (index, suffix) = model.element_info(sym)
        if isinstance(array, MatVec):
            row = assign[index[0]]
            mat = scal[array.matrix.name]
            vec = [q[0] for q in qs] if isinstance(array.vector, Coordinates) else us
            return sp.Add(*[mat[row, j] * vec[j] for j in range(len(vec))])
        if isinstance(array, Coordinates):
            x = qs[assign[index[0]]][index[1] if len(index) == 2 else 0]
            return x.diff() if suffix else x
        if isinstance(array, Targets):
            return ys[assign[index[0]]]
        if isinstance(array, Inputs):
            return us[assign[index[0]]]
        return scal[array.name][tuple(assign[x] for x in index)]

    def instance(expr, assign):
        """One element's term at the units ``assign``; the time symbol a user wrote (``t``, with or without
        assumptions) becomes the scalar model's ``dynamicsymbols._t``."""
        return expr.xreplace({s: concrete(s, assign) if isinstance(s, Element) else dynamicsymbols._t
                              for s in expr.free_symbols if isinstance(s, Element) or s.name == TIME.name})

    parts = []
    for term in model.terms:
        over = term.over
        expr = term.sign * term.expr
        if len(over) == 1 and isinstance(over[0], Edges):
            e = over[0]
            for k, (a, b) in enumerate(E):
                parts.append(instance(expr, {e.src: int(a), e.dst: int(b), e.e: k}))
        elif len(over) == 1:
            for a in range(n):
                parts.append(instance(expr, {over[0]: a}))
        else:
            for a in range(n):
                for b in range(n):
                    parts.append(instance(expr, {over[0]: a, over[1]: b}))
    def readout_sum(user):
        costs = []
        for pos, unit in enumerate(ro):
            expr = user.sign * user.expr
            subs = {}
            for s in expr.free_symbols:
                if isinstance(s, Element):
                    subs[s] = concrete(s, {r: unit}) if isinstance(model.element_info(s)[0], Coordinates) else ys[pos]
            costs.append(expr.xreplace(subs))
        return sp.Add(*costs)

    lagrangian, cost = sp.Add(*parts), readout_sum(model.cost) if costs else 0
    terminal = 0 if model.terminal_cost is None or not costs else readout_sum(model.terminal_cost)  # theory §10
    dissipation = None  # uniform damping: the scalar model rewrites it into e^{γt} L itself (theory §7)
    if model.dissipation is not None:
        R = model.dissipation
        dissipation = sp.Add(*[instance(R.sign * R.expr, {R.over[0]: a}) for a in range(n)])
    draw = model.initial_positions  # f(n, rng) -> (n, dim); the scalar model's start, flattened unit by unit as qs
    start = None if draw is None else (lambda rng: np.asarray(draw(n, rng), dtype=np.float64).reshape(-1))
    return Model(lagrangian=lagrangian, coordinates=[x for q in qs for x in q], parameters=flat,
                 inputs=us, targets=ys if costs else [], cost=cost, constants=dict(model.constants),
                 name=name or f"{model.name}_scalar_{n}", terminal_cost=terminal, dissipation=dissipation,
                 initial_positions=start)
