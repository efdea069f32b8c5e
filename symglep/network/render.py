"""Rendering an array model through ``templates/numba/array.py.j2`` (docs/networks.md).

The element pieces (:mod:`symglep.network.elements`) are printed as small
``@njit`` functions returning tuples; the template holds the loops over units,
pairs and edges (run-time n) and the passes of theory §5–§6. Nothing printed
depends on n, so generation time is the same at every size.
"""

from __future__ import annotations

import sympy as sp

from .. import __version__
from ..codegen import backend
from ..codegen.backend import environment
from ..codegen.names import safe_comment
from ..codegen.printer import KERNELS_ONLY, ComplexPrinter, NumbaPrinter, common_subexpressions, require_analytic
from ..codegen.render import complex_step_context
from .elements import Piece, kinetic_pieces, readout_pieces, term_pieces

# The implicit midpoint step of an array model (theory §6) iterates until the update is below
# MIDPOINT_TOL (1 + |q|), then once more: converged to round-off, as the echo needs.
MIDPOINT_MAXIT = 100
MIDPOINT_TOL = 1e-15


def _piece_label(name: str) -> str:
    """What a user calls the model part an element function comes from (``t0_phi``: a potential term)."""
    head = name.split("_")[0]
    if head.startswith("t") and head[1:].isdigit():
        return "a potential term of the Lagrangian"
    if head == "k":
        return "the kinetic term"
    return {"cost": "the running cost", "grad": "the cost"}.get(name.split("_")[-1], name)


def element_function(piece: Piece, complex_step: bool = False, prefix: str = "") -> str:
    """Source of ``@njit def <prefix>name(a0, a1, ...): return (out0, out1, ...)`` with one ``cse``; with
    ``complex_step`` it accepts complex arguments (refused for non-analytic maths, theory §5)."""
    if complex_step:
        require_analytic(_piece_label(piece.name), piece.outputs)
    names = {s.symbol: f"a{k}" for k, s in enumerate(piece.args)}
    replacements, reduced = common_subexpressions([("o", piece.outputs)])
    for w, _ in replacements:
        names[w] = f"t_{w.name}"
    printer = ComplexPrinter(names) if complex_step else NumbaPrinter(names)
    lines = [f"    {names[w]} = {printer.doprint(e)}" for w, e in replacements]
    outs = ", ".join(printer.doprint(e) for e in reduced)
    lines.append(f"    return ({outs},)" if outs else "    return ()")
    args = ", ".join(names[s.symbol] for s in piece.args)
    head = [KERNELS_ONLY + ', error_model="numpy", fastmath=FAST)', f"def {prefix}{piece.name}({args}):",
            f'    """{safe_comment(piece.doc)}"""']
    return "\n".join(head + lines) + "\n"


class _Layout:
    """Where each parameter lives in the flat θ vector: offset variable ``o<k>``; ``D`` the name of
    the module constant that holds the coordinates' dimension."""

    def __init__(self, model, prefix: str = "", offsets: str = ""):
        self.index = {p.name: k for k, p in enumerate(model.parameters)}
        self.D = f"{prefix}D"
        self.offsets = offsets

    def off(self, param) -> str:
        return f"{self.offsets}o{self.index[param.name]}"


def _arg(slot, layout, node=("i", "i"), pair="pi", lam="lam", q="q") -> str:
    """The run-time expression of one element symbol inside a loop over ``node`` (and ``pair``)."""
    role = slot.role
    D = layout.D
    if role == "q":
        return f"{q}[{node[slot.side]} * {D} + {slot.comp}]"
    if role == "lam":
        return f"{lam}[{node[slot.side]} * {D} + {slot.comp}]"
    if role == "z":
        return "zq[i]"
    if role == "mu":
        return "mu[i]"
    if role == "w":
        return "wu[i]"
    if role == "node":
        return f"th[{layout.off(slot.param)} + {node[slot.side]}]"
    if role == "pair":
        return f"th[{layout.off(slot.param)} + {pair}]"
    if role == "scalar":
        return f"th[{layout.off(slot.param)}]"
    if role == "y":
        return "yk[rr]"
    if role == "time":
        return "tk"
    raise ValueError(role)


def _target(slot, layout, node=("i", "i"), pair="pi") -> str | None:
    """Where ∂/∂(this parameter element) accumulates in G (``None`` for coordinates and products)."""
    if slot.role == "node":
        return f"{layout.off(slot.param)} + {node[slot.side]}"
    if slot.role == "pair":
        return f"{layout.off(slot.param)} + {pair}"
    if slot.role == "scalar":
        return f"{layout.off(slot.param)}"
    return None


def _term_context(t, term, layout, prefix: str = "") -> dict:
    pieces = term_pieces(t, term)
    ctx = {"kind": term.kind, "name": f"{prefix}t{t}", "pieces": pieces, "has_z": False, "has_w": False}
    if term.factors is not None:
        ctx["kind"] = "separable"
        ctx["W"] = layout.off(term.factors[0])
        return ctx
    node = ("i", "i") if term.kind == "site" else ("a", "b")
    grad = pieces["grad"]
    ctx["args"] = ", ".join(_arg(s, layout, node) for s in grad.args)
    ctx["adj_args"] = ", ".join(_arg(s, layout, node) for s in pieces["adj"].args)
    qs = [s for s in grad.args if s.role == "q"]
    ctx["grad_q"] = [(k, f"{node[s.side]} * {layout.D} + {s.comp}") for k, s in enumerate(qs)]
    ctx["has_z"] = term.matrix_q is not None
    ctx["has_w"] = term.matrix_u is not None
    ctx["A"] = layout.off(term.matrix_q) if ctx["has_z"] else None
    ctx["B"] = layout.off(term.matrix_u) if ctx["has_w"] else None
    nz = 1 if ctx["has_z"] else 0
    ctx["grad_z"] = len(qs) if nz else None
    dth_slots = [s for s in pieces["gd"].args if s.role in ("w", "node", "pair", "scalar")]
    ngrad = len(qs) + nz  # gd outputs: the gradient, then dphi/dw and the parameter partials
    ctx["gd_w"] = ngrad if ctx["has_w"] else None
    ctx["dth_p"] = [(k, _target(s, layout, node)) for k, s in enumerate(dth_slots) if s.role != "w"]
    ctx["gd_p"] = [(ngrad + k, tgt) for k, tgt in ctx["dth_p"]]
    # adj outputs: s_q..., [s_z, phi_z], [s_w], s_params...
    ctx["adj_q"] = ctx["grad_q"]
    base = len(qs)
    ctx["adj_z"] = (base, base + 1) if nz else None
    base += 2 * nz
    ctx["adj_w"] = base if ctx["has_w"] else None
    ctx["adj_p"] = [(base + k, tgt) for k, tgt in ctx["dth_p"]]
    return ctx


def model_fingerprint(model) -> str:
    """A canonical text of everything in the array model that shapes generated code."""
    parts = [f"name={model.name}", f"dim={model.dim}",
             "params=" + ";".join(f"{p.name}:{getattr(p, 'shape', ())}" for p in model.parameters)]
    for term in model.potential_terms:
        parts.append(f"{term.kind}:{sp.srepr(term.phi)}")
    parts.append("K=" + sp.srepr(model.kinetic.mass))
    parts.append("c=" + sp.srepr(model.readout.cost))
    if model.terminal is not None:
        parts.append("cT=" + sp.srepr(model.terminal.cost))
    if model.damping_rate:
        parts.append(f"gamma={model.damping_rate!r}")
    return "\n".join(parts)


def damping_context(model) -> dict:
    """The template variables of uniform damping, the same for every target (theory §7): ``damped``, the
    rate γ as a literal (``0.0`` undamped or learned) and, for a learned rate, ``rate_param``: its index
    among the parameters (None when γ is a number)."""
    p = model.damping_parameter
    return {"damped": bool(model.damping_rate), "rate": "0.0" if p is not None else repr(float(model.damping_rate)),
            "rate_param": None if p is None else model.parameters.index(p)}


def content_hash(model, options: dict) -> str:
    """The cache key of an array model's kernels (:func:`symglep.codegen.backend.content_hash`)."""
    return backend.content_hash("numba", "array", model_fingerprint(model), options)


def unit_context(model, prefix: str = "", offsets: str = "", midpoint: bool | None = None) -> dict:
    """The loop structure of an array model's unit functions, for every target's template: the element
    pieces (``pieces``), one context per potential term (its kind, argument and index texts, where
    each output goes) and the argument texts of the mass and cost loops. The index texts
    (``q[i * D + 0]``, ``th[o2 + pi]``) are valid Python and C alike; ``prefix`` names the pieces
    and ``D``, ``offsets`` the parameter offsets (C: module-level macros, one set per unit of a stack);
    ``midpoint``: the mass functions of the implicit midpoint rule (by default when the mass reads the
    position, theory §6)."""
    midpoint = model.kinetic.reads_q if midpoint is None else midpoint
    layout = _Layout(model, prefix, offsets)
    terms = [_term_context(t, term, layout, prefix) for t, term in enumerate(model.potential_terms)]
    kin = kinetic_pieces(model.kinetic, model.dim, midpoint)
    ro = readout_pieces(model.readout)
    tro = readout_pieces(model.terminal, "ct") if model.terminal is not None else {}
    pieces = [p for ctx in terms for p in ctx["pieces"].values()] + [*kin.values(), *ro.values(), *tro.values()]
    mass_targets = [_target(s, layout) for s in kin["mass"].args if s.role != "q"]
    return dict(
        P=prefix, params=[{"k": k, "name": p.name} for k, p in enumerate(model.parameters)],
        pieces=pieces, terms=terms,
        mass_args=", ".join(_arg(s, layout) for s in kin["mass"].args),
        mass_targets=mass_targets, mass_learnable=bool(mass_targets),
        mass_at_positions=midpoint, dim=model.dim,
        cost_args=", ".join(_arg(s, layout, node=("u_r", "u_r")) for s in ro["cost"].args),
        cost_q=[f"u_r * {layout.D} + {s.comp}" for s in ro["cost_grad"].args if s.role == "q"],
        terminal=bool(tro),
        tcost_args=", ".join(_arg(s, layout, node=("u_r", "u_r")) for s in tro["cost"].args) if tro else "",
        tcost_q=[f"u_r * {layout.D} + {s.comp}" for s in tro["cost_grad"].args if s.role == "q"] if tro else [],
    )


def unit_source(model, prefix: str = "", complex_step: bool = False, midpoint: bool | None = None) -> str:
    """The element functions and the unit-level loops (V, ∇V with the parameter partials, the force's
    adjoint, masses, costs) of an array model, every name prefixed by ``prefix``
    (``templates/numba/array_unit.py.j2``); the module that holds them defines ``<prefix>D``,
    ``<prefix>NW`` and ``FAST``. The network module uses ``prefix=""``; a stack one per array unit."""
    context = unit_context(model, prefix, midpoint=midpoint)
    functions = [element_function(p, complex_step, prefix) for p in context.pop("pieces")]
    template = environment().get_template("numba/array_unit.py.j2")
    return template.render(functions=functions, **context).rstrip("\n") + "\n\n"


def work_rows(model) -> int:
    """Rows of the ``(NW, n)`` work buffer of the unit functions: 12 per potential term."""
    return max(1, 12 * len(model.potential_terms))


def render_network(model, digest: str, complex_step: bool = False, integrator: str = "auto") -> str:
    """Source of the Numba kernel module of an :class:`~symglep.network.ArrayModel`; ``complex_step``:
    the complex-safe variant whose ``gradient`` takes an imaginary β (theory §5); ``integrator``: the
    model's default (``auto``) or one its capability table serves (theory §6)."""
    midpoint = model.integrator_for(integrator) == "midpoint"
    template = environment().get_template("numba/array.py.j2")
    return template.render(
        version=__version__, content_hash=digest, model_comment=safe_comment(model.name),
        D=model.dim, n_params=len(model.parameters), unit_source=unit_source(model, "", complex_step, midpoint),
        terminal=model.terminal is not None, mass_learnable=bool(model.kinetic.parameter_slots),
        midpoint=midpoint, midpoint_maxit=MIDPOINT_MAXIT, midpoint_tol=repr(MIDPOINT_TOL),
        n_work=work_rows(model), **damping_context(model), **complex_step_context(complex_step),
    )
