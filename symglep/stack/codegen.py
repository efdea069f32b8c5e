"""Generated Numba kernels of a :class:`~symglep.stack.Stack` (theory §9).

One kernel module per stack, rendered from ``templates/numba/stack.py.j2``.
It holds, for every unit ``i``, the Störmer–Verlet functions ``u<i>_f_*`` of
the unit's *echo model* (the unit with its cost replaced by the linear readout
cost of theory §9): a scalar unit's printed by
:func:`symglep.codegen.printer.python_function`; an array unit's written over
the loops of ``templates/numba/array_unit.py.j2`` (``templates/numba/stack_array_unit.py.j2``,
same signatures). For every link ``i`` (unit ``i`` → unit ``i+1``) it holds the
glue ``u = φ(W r(q) + b)`` and its vector–Jacobian product: differentiated by
SymPy when unit ``i`` is scalar, as loops over ``W`` when it is an array unit
(``templates/numba/stack_dense_glue.py.j2``). The template steps all units in
lockstep (forward, echo) and holds the stack's BPTT reference.
"""

from __future__ import annotations

import sympy as sp

from .. import __version__
from ..codegen import backend
from ..codegen.backend import environment
from ..codegen.names import safe_comment
from ..codegen.printer import ComplexPrinter, NumbaPrinter, python_function, require_analytic
from ..codegen.render import NEWTON_MAXIT, NEWTON_TOL, complex_step_context, model_fingerprint
from ..derivation import derive
from ..discrete import NumericFunction, discretise, fresh_vector
from ..network.render import model_fingerprint as array_fingerprint
from ..network.render import damping_context, unit_source, work_rows
from .sharing import share_identical_definitions

#: The per-unit functions the stack template calls (names in symglep.discrete).
UNIT_FUNCTIONS = ("force", "velocity", "potential_partials", "kinetic_partials", "cost", "cost_grad",
                  "force_vjp", "velocity_vjp", "momentum", "momentum_vjp")

#: ... of a unit stepped by the implicit midpoint rule, its cost at the nodes (theory §9, midpoint units)
MIDPOINT_UNIT_FUNCTIONS = ("midpoint_momenta", "midpoint_jacobian", "lagrangian_partials", "midpoint_vjp_next",
                           "midpoint_vjp_implicit", "cost", "cost_grad", "momentum", "momentum_vjp")

#: the top unit's terminal cost and its gradient, where it declares one (theory §10)
TERMINAL_FUNCTIONS = ("terminal_cost", "terminal_cost_grad")


def glue_functions(link) -> list:
    """``forward`` (u = φ(W r(q) + b)) and ``vjp`` (λ·u differentiated in (W, b) and in r) of one link."""
    q = list(link.q)
    wb = list(link.weights) + list(link.bias)
    taken = {str(s) for s in q + wb}  # internal names the unit's coordinates do not use (r0, lam0 may be theirs)
    R = [sp.Symbol(r.name, real=True) for r in fresh_vector("r", len(link.readout), taken)]
    W, bias, back = link.real_weights()  # real while differentiated: |z| has the derivative sign(z), not re/im
    pre = [sum((W[m][j] * R[j] for j in range(len(R))), sp.S.Zero) + bias[m] for m in range(len(bias))]
    out = [link.activation(e) for e in pre]
    at_q = {**dict(zip(R, link.readout)), **back}
    lam = fresh_vector("lam", len(out), taken | {str(r) for r in R})
    pair = sum((lm * om for lm, om in zip(lam, out)), sp.S.Zero)
    forward = NumericFunction("forward", [("q", q), ("wb", wb)], [("u", [o.xreplace(at_q) for o in out])],
                              "glue u = phi(W r(q) + b) (theory sec. 9)")
    vjp = NumericFunction("vjp", [("q", q), ("wb", wb), ("lam", lam)],
                          [("dwb", [sp.diff(pair, real).xreplace(at_q) for real in back]),
                           ("dr", [sp.diff(pair, r).xreplace(at_q) for r in R])],
                          "lam . du/d(W, b) and lam . du/dr of the glue (theory sec. 9)")
    return [forward, vjp]


def unit_scheme(model, integrator: str = "leapfrog"):
    """The :class:`~symglep.discrete.Scheme` of one unit's echo model for its integrator (``Stack.integrators``)."""
    return discretise(derive(model, simplify="none"), integrator)


def _array_unit(stack, i: int) -> dict:
    """What ``templates/numba/stack_array_unit.py.j2`` reads of array unit ``i``."""
    a, top = stack.arrays[i], i == len(stack.units) - 1
    return dict(P=f"u{i}_a_", model=safe_comment(a.name), size=a.size, D=a.dim, NW=work_rows(a.model),
                offsets=a.offsets, param_names=[name for name, _ in a.layout], edges=list(a.edges.reshape(-1)),
                ne=len(a.edges), ro=list(a.readout_units()), sel=[] if top else stack.links[i].select,
                **damping_context(a.model))


def layout(stack) -> dict:
    """Sizes and offsets into the packed state, parameter, input and target vectors."""
    units, links = [], []
    qo = to = uo = yo = 0
    top = len(stack.units) - 1
    for i in range(len(stack.units)):
        n, nt, nu = stack.unit_size(i), stack.unit_theta(i), stack.unit_inputs(i)
        ny = stack.n_targets if i == top else len(stack.links[i].readout)
        units.append(dict(i=i, n=n, nt=nt, nu=nu, ny=ny, qo=qo, to=to, uo=uo, yo=yo, top=i == top,
                          terminal=i == top and stack.has_terminal_cost,
                          array=stack.arrays[i] is not None, midpoint=stack.integrators[i] == "midpoint",
                          **(_array_unit(stack, i) if stack.arrays[i] is not None else {})))
        qo, to, uo, yo = qo + n, to + nt, uo + nu, yo + ny
    go = to
    for i, link in enumerate(stack.links):
        ng = len(link.weights) + len(link.bias)
        links.append(dict(i=i, nr=len(link.readout), nu=len(link.bias), ng=ng, go=go,
                          lo=units[i], up=units[i + 1], dense=link.select is not None, sel=link.select))
        go += ng
    return dict(units=units, links=links, nq=qo, nth_units=to, nth=go, nut=uo, nyt=yo,
                nx=units[0]["nu"], ny=units[-1]["ny"], terminal=units[-1]["terminal"],
                max_n=max(u["n"] for u in units), max_nt=max(max(u["nt"] for u in units), 1),
                max_nu=max(max(u["nu"] for u in units), 1), max_nr=max([lk["nr"] for lk in links] or [1]),
                max_ng=max([lk["ng"] for lk in links] or [1]),
                midpoint=any(u["midpoint"] for u in units),
                work=max([2 * u["n"] * u["n"] + 3 * u["n"] for u in units if u["midpoint"]] or [1]))


def stack_fingerprint(stack) -> str:
    """Canonical text of everything in the stack that shapes its generated code."""
    parts = [f"stack={stack.name}", "integrators=" + ",".join(stack.integrators)]
    for i, m in enumerate(stack.echo_models):
        a = stack.arrays[i]
        parts.append(f"unit{i}:\n" + (model_fingerprint(m) if a is None else
                                      array_fingerprint(a.model) + "\n" + a.fingerprint()))
    for i, link in enumerate(stack.links):
        parts.append(f"link{i}: r=" + ",".join(sp.srepr(e) for e in link.readout)
                     + f" select={link.select} phi=" + sp.srepr(link.activation(sp.Symbol("s"))))
    return "\n".join(parts)


def stack_hash(stack, complex_step: bool = False) -> str:
    """The cache key of a stack's kernels (and ``complex_step``: the complex-safe variant;
    :func:`symglep.codegen.backend.content_hash`)."""
    return backend.content_hash("numba", "stack", stack_fingerprint(stack), {"complex_step": complex_step})


def dense_glue_source(link, lk: dict, complex_step: bool = False) -> str:
    """Glue ``u = φ(W q[SEL] + b)`` of a link from an array unit, as loops (``templates/numba/stack_dense_glue.py.j2``)."""
    z = sp.Symbol("z", real=True)
    printer = (ComplexPrinter if complex_step else NumbaPrinter)({z: "z"})
    phi = link.activation(z)
    dphi = sp.diff(phi, z)
    if complex_step:  # as python_function does for the glue of a scalar unit: refuse, in one line, before compiling
        require_analytic("the glue activation", [phi, dphi])
    ctx = dict(lk, phi=printer.doprint(phi), dphi=printer.doprint(dphi))
    return environment().get_template("numba/stack_dense_glue.py.j2").render(l=ctx).rstrip("\n") + "\n"


def array_unit_source(stack, u: dict, complex_step: bool = False) -> str:
    """Array unit ``u``'s loops and its ``u<i>_f_*`` interface (``templates/numba/stack_array_unit.py.j2``)."""
    source = unit_source(stack.arrays[u["i"]].model, u["P"], complex_step)
    return environment().get_template("numba/stack_array_unit.py.j2").render(
        u=u, P=u["P"], source=source, **complex_step_context(complex_step)).rstrip("\n") + "\n"


def render_stack(stack, digest: str | None = None, complex_step: bool = False) -> str:
    """Source of the stack's Numba kernel module (deterministic for a given stack); ``complex_step``:
    the complex-safe variant whose ``gradient`` takes an imaginary β (theory §5)."""
    digest = digest or stack_hash(stack, complex_step)
    shape = layout(stack)
    units = {}
    for i, m in enumerate(stack.echo_models):
        if stack.arrays[i] is not None:
            units[i] = [array_unit_source(stack, shape["units"][i], complex_step)]
            continue
        scheme = unit_scheme(m, stack.integrators[i])
        names = MIDPOINT_UNIT_FUNCTIONS if stack.integrators[i] == "midpoint" else UNIT_FUNCTIONS
        units[i] = [python_function(scheme.function(name), prefix=f"u{i}_f_", complex_step=complex_step)
                    for name in names + (TERMINAL_FUNCTIONS if shape["units"][i]["terminal"] else ())]
    functions = [f for i, fragments in share_identical_definitions(units).items() for f in fragments]
    for i, link in enumerate(stack.links):
        if link.select is not None:
            functions.append(dense_glue_source(link, shape["links"][i], complex_step))
            continue
        for fn in glue_functions(link):
            if complex_step:  # name the glue in the refusal, not its internal function (forward, vjp)
                require_analytic(f"glue {i}'s activation", [e for _, exprs in fn.outputs for e in exprs])
            functions.append(python_function(fn, prefix=f"g{i}_", complex_step=complex_step))
    template = environment().get_template("numba/stack.py.j2")
    return template.render(version=__version__, content_hash=digest, name=safe_comment(stack.name),
                           newton_maxit=NEWTON_MAXIT, newton_tol=repr(NEWTON_TOL),
                           unit_names=[safe_comment(m.name) for m in stack.units],
                           functions=functions, **complex_step_context(complex_step), **shape)
