"""Generated C99 kernels of a :class:`~symglep.stack.Stack` (theory §9, docs/echo-family.md).

Rendered from ``templates/c/stack*.j2``: ``<stack>.h`` (API, sizes, argument order),
``<stack>.c`` (the kernels), ``example_main.c`` and a ``Makefile``. The C files hold the lockstep
free pass (the loss) and the stacked echo's centred gradient, one sequence per call,
mirroring ``templates/numba/stack.py.j2`` operation for operation, each unit stepped by its
integrator (``Stack.integrators``: a midpoint unit with its own Newton solve, theory §9); the maths of
every scalar unit (prefix ``u<i>_f_``) and of every glue (prefix ``g<i>_``) is printed by
:func:`symglep.codegen.c_printer.c_function`; an array unit is the array model's C loops
(``templates/c/array_unit.c.j2``, prefix ``u<i>_a_``) behind the same ``u<i>_f_`` interface
(``templates/c/stack_array_unit.c.j2``), and a link out of it the dense glue
(``templates/c/stack_dense_glue.c.j2``). The conventions are those of the single-model C
target (docs/c-kernels.md): no allocation, a caller work buffer, only ``math.h``. BPTT
through the stack stays in the Numba module.
"""

from __future__ import annotations

import os

import sympy as sp

from .. import __version__
from ..codegen import backend
from ..codegen.backend import environment
from ..codegen.c_printer import PRECISIONS, CPrinter, c_api_prefix, c_function
from ..codegen.names import safe_comment
from ..codegen.render import NEWTON_MAXIT
from ..codegen.render_c import NEWTON_TOL_C
from ..errors import SymglepError
from ..fileio import write_atomic
from ..network.render_c import unit_c_source
from .codegen import TERMINAL_FUNCTIONS, glue_functions, layout, stack_fingerprint, unit_scheme

#: the per-unit Scheme functions the C kernels call (the top unit's cost functions only for the top unit:
#: C warns on unused static functions)
UNIT_FUNCTIONS_C = ("force", "velocity", "potential_partials", "kinetic_partials", "momentum", "momentum_vjp")
TOP_FUNCTIONS_C = ("cost", "cost_grad")
#: ... of a unit stepped by the implicit midpoint rule, nudged by its cost at the nodes (theory §9, midpoint
#: units; the C target has no BPTT, so none of codegen.MIDPOINT_UNIT_FUNCTIONS' adjoint functions)
MIDPOINT_UNIT_FUNCTIONS_C = ("midpoint_momenta", "midpoint_jacobian", "lagrangian_partials", "cost_grad", "momentum",
                             "momentum_vjp")

#: the echo's nudge in example_main.c (float32 needs a larger one, docs/c-kernels.md)
EXAMPLE_BETA = {"float64": "1e-4", "float32": "0.05"}


def stack_c_hash(stack, precision: str) -> str:
    """The cache key of a stack's C files (:func:`symglep.codegen.backend.content_hash`)."""
    return backend.content_hash("c", "stack", stack_fingerprint(stack), {"precision": precision})


def work_layout(lay: dict) -> list:
    """``[(name, size)]`` of the work buffer, in order (the template takes offsets from it); with midpoint
    units also their steps' buffers: Newton's guesses, the input integrands of two nodes and the Newton
    solve's ``2 n² + 3 n`` of the largest midpoint unit (``lay["work"]``)."""
    nq, nut, nyt, max_n, max_nu = lay["nq"], lay["nut"], lay["nyt"], lay["max_n"], lay["max_nu"]
    nthu, nglue = lay["nth_units"], lay["nth"] - lay["nth_units"]
    out = [("q", nq), ("p", nq), ("U", nut), ("Un", nut), ("Y", nyt), ("Y0", nyt), ("f", nq), ("ph", nq),
           ("v", nq), ("vl", max_n), ("c", 1), ("qn", nq), ("Qs", 5 * nq), ("Ps", 5 * nq), ("Fs", 5 * nq),
           ("PH", 5 * nq), ("G", 4 * max(nthu, 1)), ("Gc", 4 * max(nthu, 1)), ("dglue", max(nglue, 1)),
           ("dth", lay["max_nt"]), ("du", 4 * max_nu), ("dui", max_nu), ("dcq", max_n), ("dcu", max_nu),
           ("dwb", lay["max_ng"]), ("dr", lay["max_nr"]), ("p0", nq), ("dq0", nq), ("dp0", nq), ("dqv", max_n)]
    if lay["midpoint"]:
        out += [("Ua", nut), ("vg", nq), ("VG", 5 * nq), ("Dn", 4 * nut), ("Dl", 4 * nut), ("um", max_nu),
                ("qa", max_n), ("qb", max_n), ("pb", max_n), ("newton", lay["work"])]
    return out


def array_unit_c_source(stack, u: dict, precision: str) -> str:
    """Array unit ``u``'s loops (``templates/c/array_unit.c.j2``, prefix ``u<i>_a_``) and its ``u<i>_f_*``
    interface (``templates/c/stack_array_unit.c.j2``), as the Numba stack's array units."""
    a = stack.arrays[u["i"]]
    unit = unit_c_source(a.model, precision, prefix=u["P"], vjp=False, with_cost=u["top"])
    uses_edges = unit["uses_edges"]
    if uses_edges and not len(a.edges):
        raise SymglepError(f"unit {u['i']} ({a.name!r}): the default edge list at n = {a.size} is empty; "
                           "C has no empty arrays")
    return environment().get_template("c/stack_array_unit.c.j2").render(
        u=u, X=u["P"], source=unit["source"], n_out=unit["n_out"], uses_u=unit["uses_u"],
        uses_edges=uses_edges, edge_pairs=a.edges.tolist(), mass_learnable=unit["context"]["mass_learnable"],
        F="F" if precision == "float32" else "", exp="expf" if precision == "float32" else "exp").rstrip("\n") + "\n"


def dense_glue_c_source(link, lk: dict, precision: str) -> str:
    """Glue ``u = φ(W q[SEL] + b)`` of a link from an array unit, as loops (``templates/c/stack_dense_glue.c.j2``)."""
    z = sp.Symbol("z", real=True)
    printer = CPrinter({z: "z"}, precision)
    phi = link.activation(z)
    dphi = sp.diff(phi, z)
    return environment().get_template("c/stack_dense_glue.c.j2").render(
        l=lk, phi=printer.doprint(phi), dphi=printer.doprint(dphi), dphi_uses_z=z in dphi.free_symbols,
        F="F" if precision == "float32" else "").rstrip("\n") + "\n"


def render_stack_c(stack, precision: str = "float64", digest: str | None = None) -> dict:
    """The C files of ``stack``: ``{file name: text}`` (deterministic)."""
    stack.capabilities.require("target", "c")
    if precision not in PRECISIONS:
        raise SymglepError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    digest = digest or stack_c_hash(stack, precision)
    lay = layout(stack)
    top = len(stack.echo_models) - 1
    functions = []
    for i, m in enumerate(stack.echo_models):
        if stack.arrays[i] is not None:
            functions.append(array_unit_c_source(stack, lay["units"][i], precision))
            continue
        scheme = unit_scheme(m, stack.integrators[i])
        names = MIDPOINT_UNIT_FUNCTIONS_C if stack.integrators[i] == "midpoint" else UNIT_FUNCTIONS_C
        top_functions = TOP_FUNCTIONS_C + (TERMINAL_FUNCTIONS if lay["terminal"] else ())
        for name in dict.fromkeys(names + (top_functions if i == top else ())):
            functions.append(c_function(scheme.function(name), precision, prefix=f"u{i}_f_"))
    for i, link in enumerate(stack.links):
        if link.select is not None:
            functions.append(dense_glue_c_source(link, lay["links"][i], precision))
            continue
        for fn in glue_functions(link):
            functions.append(c_function(fn, precision, prefix=f"g{i}_"))
    offsets, o = {}, 0
    for name, size in work_layout(lay):
        offsets[name] = o
        o += size
    P = c_api_prefix(stack.name)
    single = precision == "float32"
    context = dict(version=__version__, content_hash=digest, name=safe_comment(stack.name), P=P,
                   guard=f"SYMGLEP_{P.upper()}_H", stem=P, precision=precision,
                   ctype="float" if single else "double", F="F" if single else "",
                   fabs="fabsf" if single else "fabs", huge="HUGE_VALF" if single else "HUGE_VAL",
                   newton_maxit=NEWTON_MAXIT, newton_tol=NEWTON_TOL_C[precision],
                   momentum_reads_inputs=stack.momentum_reads_inputs,
                   unit_names=[safe_comment(u.name) for u in stack.units],
                   parameter_comment=safe_comment(", ".join(stack.parameter_names)),
                   functions=functions, work_size=o, beta=EXAMPLE_BETA[precision], **dict(lay, work=offsets))
    env = environment()
    return {f"{P}.h": env.get_template("c/stack.h.j2").render(**context),
            f"{P}.c": env.get_template("c/stack.c.j2").render(**context),
            "example_main.c": env.get_template("c/stack_main.c.j2").render(**context),
            "Makefile": env.get_template("c/Makefile.j2").render(**context)}


def write_stack_c(stack, out_dir: str, precision: str = "float64") -> list:
    """Writes ``OUT/<stack>/c/*`` atomically; returns the paths."""
    files = render_stack_c(stack, precision)
    folder = os.path.join(out_dir, stack.name, "c")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for fname, text in files.items():
        path = os.path.join(folder, fname)
        write_atomic(path, text)
        paths.append(path)
    return paths
