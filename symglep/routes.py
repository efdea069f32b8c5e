"""Which learning rules are exact for a model, which are forward-only, and why (theory §4, §7).

Five routes compute (or approximate) the gradient of the discrete loss:

* ``echo`` — run the same system forward from the flipped final state (theory §4, §5).
  Exact when ``L`` is even in ``v`` and the model is variational; forward-only.
* ``flipped_echo`` — the echo on the system with some parameters' signs reversed
  (generalised time reversal, theory §4). Exact when such a flip exists; forward-only.
* ``digital_pfvp`` — the nudged PFVP system integrated backward in time from the free
  final state by inverting the discrete step (theory §4). Exact for every variational
  model, but only on a computer: it is not forward-only in hardware.
* ``bptt`` — the discrete adjoint; exact, stores the trajectory.
* ``naive_echo`` — the plain echo run where it is not justified (odd terms, Rayleigh
  damping); biased, available only behind an explicit flag.
"""

from __future__ import annotations

from .model import Model
from .symmetry import Symmetries, odd_terms_text

ROUTES = ("echo", "flipped_echo", "digital_pfvp", "bptt", "naive_echo")
EXACT_ROUTES = ("echo", "flipped_echo", "digital_pfvp")

#: The label every report and output attaches to digital PFVP.
DIGITAL_LABEL = "digital (exact on a computer, not forward-only in hardware)"

LABELS = {
    "echo": "echo (exact, forward-only)",
    "flipped_echo": "flipped-parameter echo (exact, forward-only)",
    "digital_pfvp": "digital PFVP (exact on a computer, not forward-only in hardware)",
    "bptt": "BPTT (exact, stores the trajectory)",
    "naive_echo": "naive echo (the plain echo run without a symmetry that justifies it)",
}


def short_label(route: str) -> str:
    """A route's name without its parenthesis: ``flipped-parameter echo``, ``digital PFVP``, ``BPTT``."""
    return LABELS[route].split(" (")[0]


def _flip_text(flip) -> str:
    return ", ".join(f"{s} -> -{s}" for s in flip)


SINGULAR = ("the mass matrix is singular (det M ≡ 0): no integrator steps the model, so no route "
            "computes a gradient (a degenerate, constrained model)")


def learning_routes(model: Model, sym: Symmetries, regular: bool = True) -> list[dict]:
    """One entry per route: ``route``, ``available``, ``exact``, ``forward_only``, ``why`` (docs/derive-schema.md);
    none is available for a model whose Legendre transform is singular (``regular`` false)."""
    if not regular:
        return [{"route": route, "label": LABELS[route], "available": False, "exact": False,
                 "forward_only": route in ("echo", "flipped_echo", "naive_echo"), "why": SINGULAR}
                for route in ROUTES]
    variational = model.damping == 0
    reversible = sym.time_reversible
    odd = odd_terms_text(sym.breaking_terms)
    flip = sym.flip or []
    rewritten = model.rayleigh is not None and model.rayleigh.rewritable
    out = []

    def add(route, available, exact, forward_only, why):
        out.append({"route": route, "label": LABELS[route], "available": available, "exact": exact,
                    "forward_only": forward_only, "why": why})

    not_variational = ("the Rayleigh dissipation is not variational (∂R/∂v is not one rate times the momentum "
                       "∂L/∂v: see the dissipation line): theory §2 does not apply (theory §7)")
    if not variational:
        add("echo", False, False, True, not_variational)
    elif reversible:
        why = "L is even in the velocities: the same system run forward from (q(T), -p(T)) retraces PFVP"
        if rewritten:
            why += "; uniform damping rewritten (Caldirola-Kanai), the echo replays exp(gamma*t) reversed"
        elif sym.explicit_time:
            why += "; explicit time dependence is replayed reversed"
        add("echo", True, True, True, why)
    else:
        add("echo", False, False, True, f"the term(s) {odd} are odd in the velocities: the plain echo does not "
                                        "retrace the nudged PFVP trajectory")

    if not variational:
        add("flipped_echo", False, False, True, not_variational)
    elif reversible:
        add("flipped_echo", False, True, True, "the plain echo is exact")
    elif flip:
        add("flipped_echo", True, True, True,
            f"{sym.flip_note}: the echo is the same system with {_flip_text(flip)} (theory §4)")
    else:
        add("flipped_echo", False, False, True, sym.flip_note)

    if variational:
        add("digital_pfvp", True, True, False,
            "the nudged PFVP system integrated backward in time by inverting the discrete step: "
            f"{DIGITAL_LABEL}")
    else:
        add("digital_pfvp", False, False, False,
            "Rayleigh dissipation: the nudged system integrated backward has its damping with the sign "
            "opposite to the adjoint's, so its contrast is not the gradient (theory §7)")

    add("bptt", True, True, False, "discrete adjoint of the same integrator: exact, O(K) memory")

    if variational and reversible:
        add("naive_echo", False, True, True, "the plain echo is exact for this model: the naive echo would be the "
                                             "same run (use the echo)")
    else:
        why = not_variational if not variational else f"the term(s) {odd} are odd in the velocities"
        add("naive_echo", True, False, True,
            f"biased: {why}; available only behind naive_echo=True (--naive-echo) to measure its bias")
    return out


def default_route(routes: list[dict]) -> str | None:
    """The first exact route in the order echo, flipped echo, digital PFVP; None when none applies."""
    for entry in routes:
        if entry["route"] in EXACT_ROUTES and entry["available"] and entry["exact"]:
            return entry["route"]
    return None
