"""Which integrator runs a scalar model (theory §6): the explicit Störmer–Verlet step where L = K(v) − V(q, t)
has a closed-form velocity map, else the implicit midpoint rule, and the reason the reports print."""

from __future__ import annotations

from .errors import DerivationError

INTEGRATORS = ("auto", "leapfrog", "midpoint")


def choose_integrator(d, integrator: str = "auto") -> str:
    """The integrator of the :class:`~symglep.derivation.Derivation` ``d``. ``auto``: leapfrog when separable with a closed-form velocity map, else midpoint.

    ``leapfrog`` is also served when only the kinetic part reads time, ``L = K(v, t) − V(q, t)`` (a
    Caldirola–Kanai model, theory §7: the time-weighted leapfrog); ``auto`` keeps the midpoint rule
    there, whose loss ``h Σ c(q̄, t_{k+½})`` such models have always had."""
    if integrator not in INTEGRATORS:
        raise DerivationError(f"unknown integrator {integrator!r}; choose one of {', '.join(INTEGRATORS)}")
    damped = d.model.damping != 0
    leapfrog_ok = d.sym.leapfrog_split() is not None and d.velocity_map is not None and not damped
    if integrator == "leapfrog" and not leapfrog_ok:
        why = d.sym.separability_note if d.sym.leapfrog_split() is None else d.hamiltonian_note
        if damped:
            why = "a Rayleigh dissipation force enters the midpoint step only"
        raise DerivationError(f"the leapfrog integrator needs a separable model with a closed-form "
                              f"velocity map ({why}); use --integrator midpoint")
    if integrator == "auto":
        return "leapfrog" if leapfrog_ok and d.sym.separable else "midpoint"
    return integrator


def auto_integrator_reason(d) -> tuple[str, str]:
    """``(integrator, why)``: what ``auto`` picks for ``d`` (:func:`choose_integrator`) and the reason, for
    the reports."""
    chosen = choose_integrator(d)
    if chosen == "leapfrog":
        return chosen, "explicit Störmer–Verlet (theory §6): L = K(v) − V(q, t) with a closed-form velocity map"
    if d.model.damping != 0:
        why = "a Rayleigh dissipation force enters the midpoint step only (theory §7)"
    elif d.sym.leapfrog_split() is None:
        why = f"L is not separable ({d.sym.separability_note})"
    elif d.velocity_map is None:
        why = f"no closed-form velocity map v(p) for the leapfrog's drift ({d.hamiltonian_note})"
    else:
        why = ("the kinetic part reads the time (a Caldirola–Kanai model): --integrator leapfrog runs the "
               "time-weighted leapfrog (theory §7)")
    return chosen, f"implicit (theory §6): {why}"
