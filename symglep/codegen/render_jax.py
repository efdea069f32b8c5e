"""The JAX target: a scalar model's :class:`~symglep.discrete.Scheme` to a ``jax.numpy`` module
(``templates/jax/scalar.py.j2``, docs/jax.md).

The module holds the model's maths (printed by :mod:`symglep.codegen.jax_printer`), the free and
echo passes of the scheme's integrator written with ``lax.scan``, and two differentiable functions
whose backward pass is the echo (``jax.custom_vjp``): the model's loss, and a layer returning the
readout ``r = ∂c/∂y`` of a cost linear in its targets (theory §12). Output is deterministic and
carries the content hash, like every generated module.
"""

from __future__ import annotations

import sympy as sp

from .. import __version__
from ..derivation import derive
from ..discrete import NumericFunction, Scheme, discretise, fresh_vector
from ..model import Model
from ..symbolic import linear_coefficients
from .backend import environment
from .jax_printer import jax_function
from .names import safe_comment
from .render import NEWTON_MAXIT, NEWTON_TOL, NEWTON_TOL_FLOAT32, content_hash

#: the scheme's functions each integrator's passes call
USED = {
    "leapfrog": ("momentum", "cost", "cost_grad", "terminal_cost", "terminal_cost_grad", "force", "velocity",
                 "potential_partials", "kinetic_partials"),
    "midpoint": ("momentum", "cost", "cost_grad", "terminal_cost", "terminal_cost_grad", "midpoint_momenta",
                 "midpoint_jacobian", "midpoint_jacobian_prev", "lagrangian_partials"),
}


def _readout(name: str, model: Model, exprs: list, what: str) -> list:
    """``readout_<name>(q, t, u) -> r`` and ``readout_<name>_vjp(q, t, u, a) -> (aᵀ∂r/∂q, aᵀ∂r/∂u)``."""
    q, u, t = list(model.q), list(model.u), model.time
    a = fresh_vector("a", len(exprs), set(model.symbol_by_name()) | {str(c) for c in model.constants})  # not a0 of the model
    pair = sum((aj * r for aj, r in zip(a, exprs)), sp.S.Zero)
    args = [("q", q), ("t", [t]), ("u", u)]
    return [NumericFunction(f"readout_{name}", args, [("r", exprs)], f"the readout {what} (theory sec. 12)", ("t",)),
            NumericFunction(f"readout_{name}_vjp", args + [("a", a)],
                            [("dq", [sp.diff(pair, s) for s in q]), ("du", [sp.diff(pair, s) for s in u])],
                            f"a . dr/d(q, u) of the readout {what}: a layer's node kick (theory sec. 12)", ("t",))]


def target_functions(model: Model) -> tuple[list, list]:
    """The functions only the JAX module needs: ``∂c/∂y`` and ``∂c_T/∂y`` (the loss's target
    cotangents) and the readouts a layer can return (theory §12): the coordinates, and ``r = ∂c/∂y``
    when the cost is linear in the targets. Returns ``(functions, readout names)``."""
    sub = dict(model.constants)
    q, u, y, t = list(model.q), list(model.u), list(model.y), model.time
    cost, terminal = sp.sympify(model.cost).xreplace(sub), sp.sympify(model.terminal_cost).xreplace(sub)
    cost_args = [("q", q), ("t", [t]), ("u", u), ("y", y)]
    fns = [NumericFunction("cost_grad_y", cost_args, [("dy", [sp.diff(cost, s) for s in y])],
                           "dc/dy: the loss's target cotangents", ("t",)),
           NumericFunction("terminal_cost_grad_y", [("q", q), ("y", y)], [("dy", [sp.diff(terminal, s) for s in y])],
                           "dc_T/dy at the final node (theory sec. 10)", ())]
    fns += _readout("coordinates", model, q, "r = q")
    readouts = ["coordinates"]
    linear = linear_coefficients(cost, y)
    if linear is not None:
        fns += _readout("cost", model, linear, "r = dc/dy of the cost c = y . r(q, u)")
        readouts.append("cost")
    return fns, readouts


def render_jax(model: Model, scheme: Scheme, digest: str) -> str:
    """Source of the JAX module of ``model`` discretised as ``scheme``."""
    extra, readouts = target_functions(model)
    used = [scheme.function(name) for name in USED[scheme.integrator]] + extra
    return environment().get_template("jax/scalar.py.j2").render(
        version=__version__, content_hash=digest, model_comment=safe_comment(scheme.name),
        integrator=scheme.integrator, n=scheme.n, n_theta=scheme.n_theta, n_u=scheme.n_u, n_y=scheme.n_y,
        default_route=repr(scheme.default_route), echo_flip=repr(tuple(scheme.echo_flip)),
        readouts=readouts, velocity_is_momentum=scheme.velocity_is_momentum, lane_partials=False,
        newton_maxit=NEWTON_MAXIT, newton_tol=repr(float(NEWTON_TOL)), newton_tol_float32=repr(NEWTON_TOL_FLOAT32),
        functions=[jax_function(f) for f in used],
    )


def jax_digest(model: Model, integrator: str = "auto") -> str:
    """The content hash of ``model``'s JAX module (the cache key, :func:`symglep.codegen.backend.content_hash`)."""
    return content_hash(model, "jax", {"integrator": integrator})


def jax_source(model: Model, integrator: str = "auto") -> str:
    """Derive, discretise and render ``model`` for the JAX target."""
    scheme = discretise(derive(model, simplify="none"), integrator)
    return render_jax(model, scheme, jax_digest(model, integrator))
