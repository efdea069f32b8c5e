"""A stack in JAX: its units' JAX layers chained by its glue (docs/jax.md, "Stacks"; theory §9, §12).

``symglep.jax.loss(stack, dt)`` returns ``loss(theta, x, y, q0, p0)``: unit 0 runs on the inputs
``x``, each unit's coordinates at every node pass through the glue ``u_{i+1} = φ(W_i r_i(q_i) + b_i)``
to drive the unit above, and the top unit's own loss (running and terminal cost) closes the chain.
Every unit is a :func:`symglep.jax.layer` (the top one a :func:`symglep.jax.loss`), so its
backward pass is its echo driven by the cotangents JAX pulls back through the glue: the stacked
echo of theory §9 with the chain rule between the units done by JAX, memory O(1) in K in every
unit. ``theta`` is packed as :attr:`symglep.Stack.parameter_names`; ``q0`` and ``p0`` hold every
unit's start, bottom first (as :class:`symglep.stack.runtime.StackKernels`).

The glue is printed by the JAX printer from the stack's symbolic link (readout expressions of a
scalar unit, the picked coordinates of an array unit, and the activation).
"""

from __future__ import annotations

import functools
import math

import sympy as sp

from .codegen.jax_printer import jax_function
from .discrete import NumericFunction
from .extras import require

jax = require("jax", "jax", "the JAX target")
jnp = require("jax.numpy", "jax", "the JAX target")
require("jax.scipy.special", "jax", "the JAX target")  # printed special functions (erf, gammaln, ...)


def _printed(fn: NumericFunction):
    """The Python function of one printed :class:`NumericFunction` (``jax_function``'s source), in the names a
    generated JAX module imports (templates/jax/scalar.py.j2): a ``Max`` prints with ``functools.reduce``."""
    namespace = {"jax": jax, "jnp": jnp, "functools": functools, "math": math, "lax": jax.lax}

    def _vec(ref, entries):
        if not entries:
            return jnp.zeros((0,), ref.dtype)
        return jnp.stack([jnp.asarray(e, ref.dtype) for e in entries])

    namespace["_vec"] = _vec
    exec(compile(jax_function(fn), f"<symglep glue {fn.name}>", "exec"), namespace)  # noqa: S102
    return namespace[f"f_{fn.name}"]


def glue_function(stack, i: int):
    """``glue(q, W, b) -> u``: link ``i``'s input to unit ``i+1`` at one node from unit ``i``'s coordinates
    ``q`` (all of them), ``W`` (n_out, n_r) and ``b`` (n_out,) (theory §9)."""
    link = stack.links[i]
    z = [sp.Symbol(f"z{m}", real=True) for m in range(len(link.bias))]
    readout = _printed(NumericFunction(f"readout{i}", [("q", list(link.q))], [("r", list(link.readout))],
                                       f"the readout of unit {i}", ()))
    activation = _printed(NumericFunction(f"activation{i}", [("z", z)], [("u", [link.activation(s) for s in z])],
                                          f"the activation of link {i}", ()))
    select = None if link.select is None else jnp.asarray(link.select)

    def glue(q, W, b):
        r = readout(q if select is None else q[select])
        return activation(W @ r + b)

    return glue


def _sizes(stack):
    """Per unit (n_theta, n coordinates), and per link (n_out, n_r)."""
    units = [(stack.unit_theta(i), stack.unit_size(i)) for i in range(len(stack.units))]
    links = [(len(lk.bias), len(lk.readout)) for lk in stack.links]
    return units, links


def chain(stack, make_layer, make_top, every_state: bool = False):
    """``f(theta, x, y, q0, p0)`` of ``stack`` (module docstring): the units below the top as
    ``make_layer(unit, size)`` (a layer reading all coordinates) chained by the glue, closed by
    ``make_top(unit, size)`` (the top unit's loss, or its layer) called as ``top(theta_top, u, y, q0, p0)``.
    ``every_state`` (the top is a layer returning ``(r, qT, pT)``): return ``(r, qT, pT)`` with every unit's
    final state, bottom first as ``q0`` and ``p0``, so that a later segment starts where this one ended."""
    units, links = _sizes(stack)
    top = len(stack.units) - 1
    size = [stack.arrays[i].size if stack.arrays[i] is not None else None for i in range(top + 1)]
    layers = [make_layer(stack.units[i], size[i]) for i in range(top)]
    closing = make_top(stack.units[top], size[top])
    glues = [jax.vmap(glue_function(stack, i), (0, None, None)) for i in range(top)]

    def split(theta, q0, p0):
        thetas, starts, at, aq = [], [], 0, 0
        for n_theta, n in units:
            thetas.append(theta[at:at + n_theta])
            starts.append((q0[aq:aq + n], p0[aq:aq + n]))
            at, aq = at + n_theta, aq + n
        weights = []
        for n_out, n_r in links:
            W = theta[at:at + n_out * n_r].reshape(n_out, n_r)
            weights.append((W, theta[at + n_out * n_r:at + n_out * n_r + n_out]))
            at += n_out * n_r + n_out
        return thetas, starts, weights

    def run(theta, x, y, q0, p0):
        thetas, starts, weights = split(theta, q0, p0)
        u = x
        finals = []
        for i in range(top):
            r, qT, pT = layers[i](thetas[i], u, *starts[i])
            finals.append((qT, pT))
            u = glues[i](r, *weights[i])
        out = closing(thetas[top], u, y, *starts[top])
        if not every_state:
            return out
        r, qT, pT = out
        finals.append((qT, pT))
        return r, jnp.concatenate([f[0] for f in finals]), jnp.concatenate([f[1] for f in finals])

    return run
