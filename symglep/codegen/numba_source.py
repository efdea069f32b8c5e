"""The Numba target's entry point: a scalar model to the source of its kernel module (theory §6).

Derive, discretise, render (:mod:`symglep.codegen.render`); the options returned by
:func:`kernel_options` and the model key the content hash (the kernel cache's key).
"""

from __future__ import annotations

import numpy as np

from ..derivation import derive
from ..discrete import discretise
from ..errors import SymglepError
from ..model import Model
from .render import NEWTON_TOL, content_hash, render_numba


def kernel_options(integrator: str, newton_tol: float | None = None, complex_step: bool = False) -> dict:
    """The options that, with the model, key a kernel file (and Numba's cache beside it)."""
    options = {"integrator": integrator, "slp_vectorize": 1}
    if newton_tol is not None:
        options["newton_tol"] = repr(float(newton_tol))
    if complex_step:
        options["complex_step"] = 1
    return options


def generate_source(model: Model, integrator: str = "auto", target: str = "numba", digest: str | None = None,
                    newton_tol: float | None = None, complex_step: bool = False):
    """Derive, discretise and render; returns ``(source, scheme)``; ``complex_step``: the kernels of the
    complex-step echo (theory §5)."""
    if target != "numba":
        raise SymglepError(f"unknown target {target!r}; available: numba")
    if newton_tol is not None and not (np.isfinite(newton_tol) and newton_tol > 0):
        raise SymglepError(f"newton_tol must be a positive number, got {newton_tol!r}")
    digest = digest or content_hash(model, target, kernel_options(integrator, newton_tol, complex_step))
    scheme = discretise(derive(model, simplify="none"), integrator)
    tol = NEWTON_TOL if newton_tol is None else newton_tol
    return render_numba(scheme, digest, tol, complex_step), scheme
