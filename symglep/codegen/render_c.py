"""Rendering a :class:`~symglep.discrete.Scheme` into C99 files (``templates/c/``).

Four files per model: ``<stem>.h`` (API, sizes, argument order), ``<stem>.c`` (the
kernels), ``example_main.c`` (a tiny host program) and a ``Makefile``. The maths is
printed by :mod:`symglep.codegen.c_printer`; the templates lay out the loops, which
mirror the Numba template's operation for operation (docs/c-kernels.md).

The content hash of the C target covers ``templates/c/`` and the C generator modules
(:mod:`symglep.codegen.backend`), so the Numba target's hash (and the committed Numba
kernels) does not depend on the C printer.
"""

from __future__ import annotations

import numpy as np

from .. import __version__
from ..check import start_positions
from ..derivation import derive
from ..discrete import Scheme, discretise
from ..errors import SymglepError
from ..model import Model
from . import backend
from .backend import environment
from .c_printer import PRECISIONS, c_api_prefix, c_function, literal
from .names import encode, safe_comment
from .render import NEWTON_MAXIT, NEWTON_TOL, model_fingerprint

#: the Scheme functions the C kernels call (only these are printed: C warns on unused statics)
C_FUNCTIONS = {
    "leapfrog": ("momentum", "momentum_vjp", "cost", "cost_grad", "terminal_cost", "terminal_cost_grad", "force", "velocity",
                 "potential_partials", "kinetic_partials"),
    "midpoint": ("momentum", "momentum_vjp", "cost", "cost_grad", "terminal_cost", "terminal_cost_grad", "midpoint_momenta",
                 "midpoint_jacobian", "lagrangian_partials"),
}

#: Newton stops when a step is below tol * (1 + |q|); float32 round-off is ~1e-7
NEWTON_TOL_C = {"float64": repr(NEWTON_TOL), "float32": "1e-5F"}

#: the echo's nudge in example_main.c (float32 needs a larger one, docs/c-kernels.md)
EXAMPLE_BETA = {"float64": "1e-4", "float32": "0.1"}
EXAMPLE_STEPS = 200
EXAMPLE_DT = "0.01"

FILES = ("{stem}.h", "{stem}.c", "example_main.c", "Makefile")


def file_stem(model_name: str) -> str:
    """The stem of the header and source files (the output folder's name, see codegen.output)."""
    return encode(model_name)[:80] or "model"


def c_content_hash(model: Model, integrator: str, precision: str) -> str:
    """The cache key of a scalar model's C files (:func:`symglep.codegen.backend.content_hash`)."""
    return backend.content_hash("c", "scalar", model_fingerprint(model),
                                {"integrator": integrator, "precision": precision})


def has_gradient(scheme: Scheme) -> bool:
    """Whether the C files of ``scheme`` carry ``_gradient``: its echo retraces the free run, plainly (L even
    in the velocities) or with the parameters ``scheme.echo_flip`` negated (the flipped echo), and no Rayleigh
    force breaks time reversal (theory §4, §7)."""
    return scheme.default_route in ("echo", "flipped_echo") and not scheme.damped


def missing_gradient_note(scheme: Scheme, exact_routes: list) -> str | None:
    """Why the C files of ``scheme`` have no ``_gradient`` (their gradient is the plain echo, exact only for a
    time-reversible model without a Rayleigh force, theory §4, §7), and where the model's ``exact_routes``
    (labels) run; ``None`` when they have one."""
    if has_gradient(scheme):
        return None
    why = ("a Rayleigh force breaks time reversal" if scheme.damped else
           f"L is not even in the velocities ({', '.join(map(str, scheme.breaking_terms))[:200]}) and no sign flip "
           "of its parameters makes it so")
    return (f"no {c_api_prefix(scheme.name)}_gradient in the C files: {why}, so the plain echo is not the "
            f"gradient; its exact routes ({', '.join(exact_routes)}) run in the Numba kernels (--target numba)")


def render_c(scheme: Scheme, digest: str, precision: str = "float64", example_q0=None) -> dict:
    """The four C files of ``scheme``: ``{file name: text}``; ``example_q0``: the example program's start
    (the model's ``initial_positions``), else its fixed one."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    stem = file_stem(scheme.name)
    api = c_api_prefix(scheme.name)
    single = precision == "float32"
    # the C gradient is the echo, plain or flipped, where it is exact; the digital PFVP (theory §4) is Python-only
    echo_exact = has_gradient(scheme)
    flip = list(scheme.echo_flip) if echo_exact else []
    wanted = [f for f in C_FUNCTIONS[scheme.integrator] if echo_exact or f != "momentum_vjp"]
    wanted += ["energy"] if scheme.has_energy else []
    if scheme.integrator == "leapfrog":
        loss = "the trapezoid sum h * sum' c(q_k, t_k), half weight at k = 0 and k = K"
        step_note = ""
    else:
        loss = "h * sum c(qbar_k, t_k+1/2), inputs and targets the mean of the two nodes"
        step_note = ("Newton starts from q (the free and echo kernels start from the last step's "
                     "velocity: the results agree to round-off).")
    if scheme.has_terminal_cost:
        loss += ", plus the terminal cost c_T(q_K, y_K) (theory sec. 10)"
    context = dict(
        version=__version__, content_hash=digest, model_comment=safe_comment(scheme.name),
        integrator=scheme.integrator, precision=precision, ctype="float" if single else "double",
        P=api, stem=stem, guard=f"SYMGLEP_{api.upper()}_H",
        n=scheme.n, n_theta=scheme.n_theta, n_u=scheme.n_u, n_y=scheme.n_y,
        parameter_comment=safe_comment(", ".join(scheme.parameter_names)) or "(none)",
        coordinate_comment=safe_comment(", ".join(scheme.coordinate_names)),
        input_comment=safe_comment(", ".join(scheme.input_names)) or "(none)",
        target_comment=safe_comment(", ".join(scheme.target_names)) or "(none)",
        breaking_comment=(safe_comment(", ".join(scheme.breaking_terms)) if scheme.breaking_terms else
                          "a non-variational Rayleigh dissipation force (theory sec. 7)" if scheme.damped else
                          "(see symglep derive)"),
        time_reversible=scheme.time_reversible and not scheme.damped, has_gradient=echo_exact,
        echo_flip=flip, echo_th="the" if flip else "th",
        flip_comment=safe_comment(", ".join(scheme.parameter_names[i] for i in flip)) or "(none)",
        has_energy=scheme.has_energy,
        cost_reads_u=any(e != 0 for e in dict(scheme.function("cost_grad").outputs)["du"]),
        loss_comment=loss, step_note=step_note,
        newton_maxit=NEWTON_MAXIT, newton_tol=NEWTON_TOL_C[precision],
        functions=[c_function(scheme.function(name), precision) for name in wanted],
        F="F" if single else "", fabs="fabsf" if single else "fabs", huge="HUGE_VALF" if single else "HUGE_VAL",
        example_steps=EXAMPLE_STEPS, dt=EXAMPLE_DT, beta=EXAMPLE_BETA[precision],
        lit=lambda text: literal(text, precision),
        example_q0=None if example_q0 is None else [repr(float(v)) for v in example_q0],
    )
    env = environment()
    names = {"{stem}.h": "c/scalar.h.j2", "{stem}.c": "c/scalar.c.j2",
             "example_main.c": "c/scalar_main.c.j2", "Makefile": "c/Makefile.j2"}
    return {pattern.format(stem=stem): env.get_template(tpl).render(**context) for pattern, tpl in names.items()}


def generate_c(model: Model, integrator: str = "auto", precision: str = "float64") -> dict:
    """Derive, discretise and render ``model`` for the C target: ``{file name: text}``."""
    if precision not in PRECISIONS:
        raise SymglepError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    scheme = discretise(derive(model, simplify="none"), integrator)
    start = None if model.initial_positions is None else start_positions(model, np.random.default_rng(0))[0]
    return render_c(scheme, c_content_hash(model, integrator, precision), precision, start)
