"""``symglep check --bc`` of an array model: the boundary-condition estimators at a small size.

The CIVP residual needs the forward sensitivities (an ``n × n_θ`` tangent, theory §3) and
CBVP a Newton solve over the whole trajectory; neither has a loop kernel. The array
model is therefore expanded element by element at a small number of units
(:func:`~symglep.network.expand.expand`, the same Lagrangian with one symbol per
element) and the scalar boundary-condition check runs on it. The index-form residuals of
``symglep residuals`` do not depend on n, so a small n tests them.
"""

from __future__ import annotations

import numpy as np

from ..bc_check import render_text as render_scalar
from ..bc_check import run_bc_check as run_scalar
from ..errors import SymglepError
from .expand import expand, flat_names

DEFAULT_UNITS = 3
MAX_UNITS = 8  # the expansion grows like n² for a dense matrix: keep the scalar model small


def _flat_params(model, params: dict, n: int) -> dict:
    """``{element name: value}`` of the expanded model from ``{name: array}`` at n units."""
    m = model.sizes["m"]
    ne = len(model.default_edges(n))
    out = {}
    for p in model.parameters:
        shape = model.parameter_shape(p, n, m, ne)
        arr = np.asarray(params[p.name], dtype=np.float64)
        if arr.shape != shape:
            raise SymglepError(f"parameter {p.name} must have shape {shape} at n = {n} units, got {arr.shape} "
                               "(--size sets n)")
        out.update(zip(flat_names(p, shape), arr.reshape(-1).tolist()))
    return out


def run_bc_check(model, bcs, n: int | None = None, params: dict | None = None, **options) -> dict:
    """The scalar ``run_bc_check`` of ``model`` expanded at ``n`` units (default 3)."""
    n = DEFAULT_UNITS if n is None else n
    if not 2 <= n <= MAX_UNITS:
        raise SymglepError(f"check --bc expands an array model element by element: --size must be between 2 "
                           f"and {MAX_UNITS}, got {n}")
    scalar = expand(model, n)
    report = run_scalar(scalar, bcs, params=_flat_params(model, params, n) if params is not None else None,
                        **options)
    report["array_model"] = model.name
    report["units"] = n
    return report


def render_text(report: dict) -> str:
    head = (f"array model {report['array_model']} expanded element by element at n = {report['units']} units "
            f"(the CIVP tangent and the CBVP solve have no loop kernels; the residuals do not depend on n)\n")
    return head + render_scalar(report)
