"""Rendering an array model for the JAX target (``templates/jax/array.py.j2``, docs/jax.md).

The element expressions of the model's terms (:mod:`symglep.network.terms`) are printed as small
``jax.numpy`` functions, element-wise, so one call evaluates a term at every unit, pair or edge at
once; the template sums them into the potential ``V(q, u, θ)``, the masses and the readout costs
of a network bound to its run-time size, edge list and readout units (``bind``), and runs the same
passes as a scalar model's JAX module (``templates/jax/passes.j2``). The force ``∂V/∂q`` and the
learning rule's ``∂V/∂θ``, ``∂V/∂u`` are JAX's derivatives of that printed ``V`` at one state: a
local computation at every step, nothing of the trajectory (theory §5, §12).
"""

from __future__ import annotations

import sympy as sp

from .. import __version__
from ..codegen import backend
from ..codegen.backend import environment
from ..codegen.jax_printer import JaxFunctionPrinter
from ..codegen.names import safe_comment
from ..codegen.printer import common_subexpressions
from ..symbolic import linear_coefficients
from ..codegen.render import NEWTON_MAXIT, NEWTON_TOL, NEWTON_TOL_FLOAT32
from .elements import kinetic_pieces, readout_pieces, value_piece
from .render import damping_context, model_fingerprint


def element_function(name: str, symbols: list, expr, doc: str) -> str:
    """Source of ``def <name>(a0, a1, ...)`` returning ``expr`` in its element symbols, element-wise
    (its arguments may be arrays of any broadcastable shapes), with one ``cse``."""
    names = {s: f"a{k}" for k, s in enumerate(symbols)}
    replacements, (reduced,) = common_subexpressions([("o", [expr])])
    for w, _ in replacements:
        names[w] = f"t_{w.name}"
    printer = JaxFunctionPrinter(names)
    lines = [f"    {names[w]} = {printer.doprint(e)}" for w, e in replacements]
    lines.append(f"    return {printer.doprint(reduced)}")
    head = [f"def {name}({', '.join(names[s] for s in symbols)}):", f'    """{safe_comment(doc)}"""']
    return "\n".join(head + lines) + "\n"


def _argument(slot, kind: str) -> str:
    """The run-time array (in ``bind``'s scope: ``Q`` (n, D), ``P`` the parameters by name, ``E0``, ``E1``
    the edge ends, ``RO`` the readout units, ``u``, ``y``, the time ``t``) that an element symbol runs over."""
    role = slot.role
    param = f"P[{slot.param.name!r}]" if slot.param is not None else None
    if role == "q":
        unit = {"site": ":", "readout": "RO", "edge": f"E{slot.side}"}.get(kind)
        if kind == "dense":
            return f"Q[:, None, {slot.comp}]" if slot.side == 0 else f"Q[None, :, {slot.comp}]"
        return f"Q[{unit}, {slot.comp}]"
    if role == "z":
        return f"({param} @ Q[:, 0])"
    if role == "w":
        return f"({param} @ u)"
    if role == "y":
        return "y"
    if role == "node":
        if kind == "dense":
            return f"{param}[:, None]" if slot.side == 0 else f"{param}[None, :]"
        return f"{param}[E{slot.side}]" if kind == "edge" else param
    if role in ("pair", "scalar"):
        return param
    if role == "time":
        return "t"
    raise ValueError(f"element symbol of role {role!r} in a {kind} term")


def _call(name: str, slots: list, kind: str) -> str:
    return f"{name}({', '.join(_argument(s, kind) for s in slots)})"


def array_context(model, midpoint: bool | None = None) -> dict:
    """The printed element functions and the sums of the template: one entry per potential term
    (``jnp.sum`` of its elements; a separable dense term as ``a(q)ᵀ W b(q)``), the mass and the costs."""
    functions, terms = [], []
    for t, term in enumerate(model.potential_terms):
        doc = f"element of V: term {t} ({term.kind})"
        if term.factors is not None:
            W, a, b = term.factors
            (qa,) = [s.symbol for s in term.slots if s.role == "q" and s.side == 0]
            (qb,) = [s.symbol for s in term.slots if s.role == "q" and s.side == 1]
            x = sp.Symbol("x", real=True)
            for side, (factor, q_side) in zip("ab", ((a, qa), (b, qb))):
                functions.append(element_function(f"t{t}_{side}", [x], factor.xreplace({q_side: x}),
                                                  f"{side}(x) of W_ij a(q_i) b(q_j): term {t}"))
            terms.append(f"jnp.dot(t{t}_a(Q[:, 0]), P[{W.name!r}] @ t{t}_b(Q[:, 0]))")
            continue
        phi = value_piece(t, term)
        functions.append(element_function(phi.name, [s.symbol for s in phi.args], phi.outputs[0], doc))
        terms.append(f"jnp.sum({_call(phi.name, phi.args, term.kind)})")
    mass = kinetic_pieces(model.kinetic, model.dim, midpoint)["mass"]
    functions.append(element_function(mass.name, [s.symbol for s in mass.args], mass.outputs[0], mass.doc))
    costs = {}
    for prefix, readout in (("c", model.readout), ("ct", model.terminal)):
        if readout is None:
            continue
        piece = readout_pieces(readout, prefix)["cost"]
        functions.append(element_function(piece.name, [s.symbol for s in piece.args], piece.outputs[0], piece.doc))
        # one element per readout unit, in the state's dtype even where c is a constant (a zero running cost)
        element = f"jnp.asarray({_call(piece.name, piece.args, 'readout')}, Q.dtype)"
        costs[prefix] = f"jnp.sum(jnp.broadcast_to({element}, RO.shape))"
    ys = [s.symbol for s in model.readout.slots if s.role == "y"]
    return dict(functions=functions, terms=terms, mass=_call(mass.name, mass.args, "site"),
                cost=costs["c"], terminal_cost=costs.get("ct"),
                cost_is_linear=linear_coefficients(model.readout.cost, ys) is not None)


def jax_digest(model, integrator: str = "auto") -> str:
    """The content hash of an array model's JAX module (the cache key)."""
    return backend.content_hash("jax", "array", model_fingerprint(model),
                                {"integrator": model.integrator_for(integrator)})


def array_jax_source(model, integrator: str = "auto") -> str:
    """Source of the JAX module of an :class:`~symglep.network.ArrayModel`: ``integrator`` ``auto`` (leapfrog,
    or the implicit midpoint rule of a position-dependent mass) or ``midpoint`` (theory §6)."""
    integrator = model.integrator_for(integrator)
    params = [(p.name, tuple(getattr(p, "shape", ()))) for p in model.parameters]
    return environment().get_template("jax/array.py.j2").render(
        version=__version__, content_hash=jax_digest(model, integrator), model_comment=safe_comment(model.name),
        integrator=integrator, velocity_is_momentum=False, lane_partials=True, D=model.dim,
        newton_maxit=NEWTON_MAXIT, newton_tol=repr(NEWTON_TOL), newton_tol_float32=repr(NEWTON_TOL_FLOAT32),
        **damping_context(model),
        parameters=repr(tuple(params)),
        n_inputs=model.sizes["m"], n_readout=model.sizes["r"], has_edges=model.edges is not None,
        **array_context(model, integrator == "midpoint"),
    )
