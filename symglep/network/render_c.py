"""Rendering an array model into C99 files (``templates/c/array*.j2``, docs/c-kernels.md, "Array models").

The C kernels mirror the Numba array kernels (``templates/numba/array.py.j2``) operation for operation:
the element pieces (:mod:`symglep.network.elements`) are printed as small ``static void``
functions writing their outputs through a pointer, the per-unit loops take the loop structure
of :func:`symglep.network.render.unit_context`, and the passes are the Numba module's free pass,
centred (or one-sided, or Richardson) echo gradient and BPTT (theory §5–§6). Unlike the Numba
kernels, every size is fixed at generation: the model's declared size ``n`` (``size=``), its
``sizes`` (inputs, readout units), its default edge list at that size and the readout on the
last units, so the work buffer is a compile-time constant (as for every C model).

The content hash is the C target's (:mod:`symglep.codegen.backend`): ``templates/c/`` and the C
generator modules; the Numba array hash does not depend on them.
"""

from __future__ import annotations

import sympy as sp

from .. import __version__
from ..codegen import backend
from ..codegen.backend import environment
from ..codegen.c_printer import PRECISIONS, CPrinter, c_api_prefix
from ..codegen.names import safe_comment
from ..codegen.printer import common_subexpressions
from ..errors import SymglepError
from .elements import Piece
from .render import MIDPOINT_MAXIT, MIDPOINT_TOL, damping_context, model_fingerprint, unit_context, work_rows

#: the most trajectories one pass steps together: the echoes at ±β, ±2β and the un-nudged one
MAX_TRAJECTORIES = 5
#: the most nudged echoes of one gradient (Richardson: ±β and ±2β, theory §5)
MAX_ECHOES = 4

#: example_main.c's problem (float32 needs a larger nudge, docs/c-kernels.md)
EXAMPLE_BETA = {"float64": "1e-4", "float32": "0.1"}
EXAMPLE_STEPS = 200
EXAMPLE_DT = "0.01"


class ElementPrinter(CPrinter):
    """The C printer of the element pieces: integer powers as Numba evaluates them.

    Numba computes ``x**n`` for an integer ``n`` by binary powering (``x**4 = (x*x)*(x*x)``), while
    ``pow(x, 4)`` rounds differently; the echo's ``1/β`` amplifies that last bit, so products in
    Numba's order keep the float64 C kernels on the Numba ones. A base holding a function call
    is left to ``pow`` (repeating a libm call costs more than the bit it saves).
    """

    def _print_Element(self, expr):
        """An array element symbol (``symglep.network.arrays.Element``, a Symbol): its argument name
        (sympy's C printer would take it for its own indexed ``Element``)."""
        return self._print_Symbol(expr)

    def _print_Pow(self, expr):
        exp = expr.exp
        if exp.is_Integer and 2 <= abs(int(exp)) <= 16 and not expr.base.atoms(sp.Function):
            base = self.parenthesize(expr.base, 100)
            power, result, n = base, None, abs(int(exp))
            while True:
                if n & 1:
                    result = power if result is None else f"{result}*{power}"
                n >>= 1
                if n == 0:
                    break
                power = f"({power}*{power})"
            one = "1.0F" if self._single else "1.0"
            return f"({result})" if exp > 0 else f"({one}/({result}))"
        return super()._print_Pow(expr)


def element_c_function(piece: Piece, precision: str, prefix: str = "") -> str:
    """Source of ``static void <prefix><name>(real a0, ..., real *restrict o)``, the outputs of ``piece``
    in ``o[0..]``, with one ``cse`` over all of them (as the Numba element functions)."""
    names = {s.symbol: f"a{k}" for k, s in enumerate(piece.args)}
    replacements, reduced = common_subexpressions([("o", piece.outputs)])
    used = set()
    for e in [r for _, r in replacements] + list(reduced):
        used |= e.free_symbols
    for w, _ in replacements:
        names[w] = f"t_{w.name}"
    printer = ElementPrinter(names, precision)
    params = [f"real {names[s.symbol]}" for s in piece.args] + ["real *restrict o"]
    lines = [f"    const real {names[w]} = {printer.doprint(e)};" for w, e in replacements]
    lines += [f"    (void){names[s.symbol]};" for s in piece.args if s.symbol not in used]  # after the declarations
    lines += [f"    o[{k}] = {printer.doprint(e)};" for k, e in enumerate(reduced)]
    if not reduced:
        lines.append("    (void)o;")
    head = [f"/* {safe_comment(piece.doc)} */", f"static void {prefix}{piece.name}({', '.join(params)})", "{"]
    return "\n".join(head + lines + ["}"]) + "\n"


def c_content_hash(model, precision: str, integrator: str = "auto") -> str:
    """The cache key of an array model's C files: its fingerprint with the generation sizes and edge list
    (:func:`symglep.codegen.backend.content_hash`); the integrator keys it when it is not the model's own."""
    fingerprint = (model_fingerprint(model) + f"\nsize={model.size};sizes={sorted(model.sizes.items())}\n"
                   + repr(model.default_edges(model.size).tolist()))
    options = {"precision": precision}
    chosen = model.integrator_for(integrator)
    if chosen != model.integrator:
        options["integrator"] = chosen
    return backend.content_hash("c", "array", fingerprint, options)


def work_layout(sizes: dict) -> list:
    """``[(name, elements)]`` of the work buffer, in order (the templates take offsets from it); the
    implicit midpoint rule of a position-dependent mass (``sizes["midpoint"]``) adds its step and adjoint
    vectors."""
    n, nq, nt, nw = sizes["n"], sizes["nq"], sizes["nt"], sizes["nw"]
    m = max(sizes["m"], 1)
    layout = [("mass", n), ("hinv", n), ("coef", n), ("wk", nw * n), ("ph", nq),
              ("Q", MAX_TRAJECTORIES * nq), ("P", MAX_TRAJECTORIES * nq), ("F", MAX_TRAJECTORIES * nq),
              ("q", nq), ("p", nq), ("lph", nq), ("G", (MAX_ECHOES + 1) * max(nt, 1)), ("lb", MAX_TRAJECTORIES),
              ("p0", nq), ("dus", MAX_ECHOES * m)]
    if sizes.get("midpoint"):
        layout += [("mu", n), ("dmu", nq), ("d2mu", nq * sizes["D"]), ("qm", nq), ("v", nq), ("fm", nq),
                   ("qa", nq), ("qb", nq), ("vg", MAX_TRAJECTORIES * nq), ("um", m), ("ym", sizes["ny"]),
                   ("dstep", MAX_ECHOES * m), ("dcur", MAX_ECHOES * m), ("dnode", MAX_ECHOES * m), ("gum", m),
                   ("a", nq), ("w", nq), ("aw", nq), ("g1", nq), ("r", nq), ("cq", nq), ("cv", nq), ("fq", nq),
                   ("coefq", nq), ("scratch", max(nt, 1))]
    return layout


def _used_pieces(context: dict, vjp: bool = True, with_cost: bool = True, potential: bool = False) -> list:
    """The pieces the C kernels call (C warns on unused static functions): every term's force and
    learning pieces, their adjoint when ``vjp``, phi when ``potential`` (V itself: the learning integrand
    of a learned damping rate; C has no energy), the mass, its partials when learned, the costs when
    ``with_cost``."""
    wanted = []
    for t in context["terms"]:
        keys = ("ab",) + (("ab2",) if vjp else ()) if t["kind"] == "separable" else \
            ("grad", "gd") + (("adj",) if vjp else ()) + (("phi",) if potential else ())
        wanted += [t["pieces"][k].name for k in keys]
    if context["mass_at_positions"]:  # the implicit midpoint rule (theory §6)
        wanted += ["k_mass_q"] + (["k_mass_dth", "k_mass_q_dth"] if context["mass_learnable"] else [])
    else:
        wanted += ["k_mass"] + (["k_mass_dth"] if context["mass_learnable"] else [])
    if with_cost:
        wanted += ["c_cost", "c_grad"] + (["ct_cost", "ct_grad"] if context["terminal"] else [])
    return [p for p in context["pieces"] if p.name in wanted]


def unit_c_source(model, precision: str, prefix: str = "", vjp: bool = True, with_cost: bool = True,
                  midpoint: bool | None = None) -> dict:
    """The element functions and unit loops of an array model in C (``templates/c/array_unit.c.j2``):
    ``force``, ``force_learn`` (with the input gradients), ``force_vjp`` when ``vjp``, ``masses``,
    ``mass_dtheta``, the costs when ``with_cost``, every name (and the size macros ``N``, ``M``, ``NQ``,
    ``NY``, ``NG``, ``NE``, ``edges`` and the offsets ``o<k>`` they read) prefixed by ``prefix``.
    Returns ``{"source", "n_out", "uses_u", "uses_edges", "context"}``; the file that holds the source
    defines the macros (the edge table when ``uses_edges``)."""
    context = unit_context(model, prefix, offsets=prefix, midpoint=midpoint)
    potential = model.damping_parameter is not None
    pieces = _used_pieces(context, vjp, with_cost, potential)
    uses_u = any(t["has_w"] for t in context["terms"])
    uses_wk = any(t["has_z"] or t["has_w"] or t["kind"] == "separable" for t in context["terms"])
    n_out = max([len(p.outputs) for p in pieces] + [1])
    single = precision == "float32"
    source = environment().get_template("c/array_unit.c.j2").render(
        context, X=prefix, functions=[element_c_function(p, precision, prefix) for p in pieces], call=_call,
        uses_u=uses_u, uses_t=model.explicit_time, uses_wk=uses_wk, potential=potential, n_rows=work_rows(model), vjp=vjp, with_cost=with_cost,
        terminal=context["terminal"] and with_cost, F="F" if single else "")
    return dict(source=source.rstrip("\n") + "\n", n_out=n_out, uses_u=uses_u, context=context,
                uses_edges=any(t["kind"] == "edge" for t in context["terms"]))


def _call(name: str, args: str) -> str:
    """``name(args, g)``: an element call writing its outputs into the local ``g``."""
    return f"{name}({args}, g)" if args else f"{name}(g)"


def render_network_c(model, digest: str, precision: str = "float64", integrator: str = "auto") -> dict:
    """The four C files of the array model ``model`` at its declared size: ``{file name: text}``."""
    if precision not in PRECISIONS:
        raise SymglepError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    midpoint = model.integrator_for(integrator) == "midpoint"
    unit = unit_c_source(model, precision, midpoint=midpoint)
    context = unit["context"]
    n, D, m, ny = model.size, model.dim, model.sizes["m"], model.sizes["r"]
    edges = model.default_edges(n).tolist()
    shapes = [model.parameter_shape(p, n, m, len(edges)) for p in model.parameters]
    offsets, pos = [], 0
    for shape in shapes:
        offsets.append(pos)
        pos += int(sp.prod(shape)) if shape else 1
    sizes = {"n": n, "nq": n * D, "nt": pos, "nw": work_rows(model), "m": m, "ny": ny, "D": D, "midpoint": midpoint}
    work, o = {}, 0
    for name, size in work_layout(sizes):
        work[name] = o
        o += size
    api = c_api_prefix(model.name)
    single = precision == "float32"
    uses_edges = unit["uses_edges"]
    if uses_edges and not edges:
        raise SymglepError(f"{model.name}: the default edge list at n = {n} is empty; C has no empty arrays")
    parameter_comment = "; ".join(f"{p.name} {'x'.join(map(str, s)) or 'scalar'} at {off}"
                                  for p, s, off in zip(model.parameters, shapes, offsets))
    ctx = dict(
        context, version=__version__, content_hash=digest, model_comment=safe_comment(model.name),
        precision=precision, ctype="float" if single else "double", P=api, stem=api,
        guard=f"SYMGLEP_{api.upper()}_H", n_units=n, D=D, n_q=n * D, n_theta=pos, n_u=m, n_y=ny,
        n_edges=len(edges), edges=edges, uses_edges=uses_edges, offsets=offsets,
        parameter_comment=safe_comment(parameter_comment, limit=2000),
        n_out=unit["n_out"], n_rows=sizes["nw"], unit_source=unit["source"],
        work=work, work_size=o, max_echoes=MAX_ECHOES, max_trajectories=MAX_TRAJECTORIES,
        F="F" if single else "", fabs="fabsf" if single else "fabs", exp="expf" if single else "exp",
        **damping_context(model),
        midpoint=midpoint, midpoint_maxit=MIDPOINT_MAXIT,
        midpoint_tol_c=("1e-6F" if single else repr(MIDPOINT_TOL)),
        example_steps=EXAMPLE_STEPS, dt=EXAMPLE_DT, beta=EXAMPLE_BETA[precision],
        parameter_names=[safe_comment(p.name) for p in model.parameters],
    )
    env = environment()
    names = {f"{api}.h": "c/array.h.j2", f"{api}.c": "c/array.c.j2",
             "example_main.c": "c/array_main.c.j2", "Makefile": "c/Makefile.j2"}
    return {fname: env.get_template(tpl).render(**ctx) for fname, tpl in names.items()}


def generate_network_c(model, precision: str = "float64", integrator: str = "auto") -> dict:
    """The C files of an array model: ``{file name: text}`` (deterministic); ``integrator`` as
    :func:`symglep.network.runtime.generate_source`."""
    if precision not in PRECISIONS:
        raise SymglepError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return render_network_c(model, c_content_hash(model, precision, integrator), precision, integrator)
