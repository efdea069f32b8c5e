"""Rendering a scalar model's :class:`~symglep.discrete.Scheme` through ``templates/numba/scalar.py.j2``.

The Jinja environment and the content hash are the backend's (:mod:`symglep.codegen.backend`).
Output is deterministic: the same model, options and templates give the same bytes; the header
carries the symglep version and the content hash that keys the kernel cache.
"""

from __future__ import annotations

from .. import __version__
from ..discrete import Scheme
from ..model import Model
from ..symbolic import canonical_srepr
from . import backend
from .backend import environment
from .names import safe_comment
from .printer import python_function

TARGETS = ("numba",)
NEWTON_MAXIT = 50
NEWTON_TOL = 1e-13
#: the Newton tolerance of a float32 run (the C and JAX targets): float32 round-off is ~1e-7
NEWTON_TOL_FLOAT32 = 1e-5


def model_fingerprint(model: Model) -> str:
    """A canonical text of everything in the model that affects generated code."""
    parts = [
        "name=" + model.name,
        "L=" + canonical_srepr(model.lagrangian),
        "c=" + canonical_srepr(model.cost),
        "H=" + (canonical_srepr(model.hamiltonian) if model.hamiltonian is not None else "None"),
        "q=" + ",".join(canonical_srepr(s) for s in model.q),
        "theta=" + ",".join(canonical_srepr(s) for s in model.parameters),
        "u=" + ",".join(canonical_srepr(s) for s in model.u),
        "y=" + ",".join(canonical_srepr(s) for s in model.y),
        "const=" + ",".join(f"{canonical_srepr(k)}:{float(v)!r}" for k, v in model.constants.items()),
        "t=" + canonical_srepr(model.time),
    ]
    if model.damping != 0:
        parts.append("R=" + canonical_srepr(model.damping))
    if getattr(model, "terminal_cost", 0) != 0:
        parts.append("cT=" + canonical_srepr(model.terminal_cost))
    return "\n".join(parts)


def content_hash(model: Model, target: str, options: dict) -> str:
    """The cache key of a scalar model's kernels (:func:`symglep.codegen.backend.content_hash`)."""
    return backend.content_hash(target, "scalar", model_fingerprint(model), options)


def complex_step_context(complex_step: bool) -> dict:
    """Template variables of the complex-step variant (theory §5), shared by the Numba templates:
    ``complex_step`` and ``W``, the dtype argument appended to the work arrays' ``np.empty``/``np.zeros``
    (empty for the real kernels, whose source stays as it was)."""
    return {"complex_step": complex_step, "W": ", np.complex128" if complex_step else ""}


def render_numba(scheme: Scheme, digest: str, newton_tol: float = NEWTON_TOL, complex_step: bool = False) -> str:
    """Source of the Numba kernel module of ``scheme`` (``newton_tol``: midpoint Newton stopping step);
    ``complex_step``: the complex-safe variant whose ``gradient`` takes an imaginary β (theory §5)."""
    template = environment().get_template("numba/scalar.py.j2")
    return template.render(
        version=__version__,
        content_hash=digest,
        model_comment=safe_comment(scheme.name),
        integrator=scheme.integrator,
        n=scheme.n, n_theta=scheme.n_theta, n_u=scheme.n_u, n_y=scheme.n_y,
        newton_maxit=NEWTON_MAXIT, newton_tol=repr(float(newton_tol)),
        functions=[python_function(f, complex_step=complex_step) for f in scheme.functions],
        **complex_step_context(complex_step),
        has_energy=scheme.has_energy,
        time_reversible="True" if scheme.time_reversible else "False",
        echo_flip=repr(tuple(scheme.echo_flip)),
        damped="True" if scheme.damped else "False",
        default_route=repr(scheme.default_route),
        velocity_is_momentum=scheme.velocity_is_momentum,
    )
