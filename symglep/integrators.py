"""Which integrator runs a scalar model (theory §6): the explicit Störmer–Verlet step where L = K(v) − V(q, t)
has a closed-form velocity map, else the implicit midpoint rule, and the reason the reports print."""

from __future__ import annotations

from .dissipation import caldirola_kanai_rate
from .errors import DerivationError

INTEGRATORS = ("auto", "leapfrog", "midpoint")


def _leapfrog_obstacle(d):
    """Why the leapfrog cannot step the :class:`~symglep.derivation.Derivation` ``d``, as ``(kind, note)``
    (``damped``, ``not separable``, ``no velocity map``), or ``None`` when it can."""
    if d.model.damping != 0:
        return "damped", "a Rayleigh dissipation force enters the midpoint step only"
    if d.sym.leapfrog_split() is None:
        return "not separable", d.sym.separability_note
    if d.velocity_map is None:
        return "no velocity map", d.hamiltonian_note
    return None


def choose_integrator(d, integrator: str = "auto") -> str:
    """The integrator of the :class:`~symglep.derivation.Derivation` ``d``. ``auto``: leapfrog when separable
    with a closed-form velocity map, else midpoint.

    ``leapfrog`` is also served when only the kinetic part reads time, ``L = K(v, t) − V(q, t)`` (a
    Caldirola–Kanai model, theory §7: the time-weighted leapfrog); ``auto`` keeps the midpoint rule
    there, whose loss ``h Σ c(q̄, t_{k+½})`` such models have always had."""
    if integrator not in INTEGRATORS:
        raise DerivationError(f"unknown integrator {integrator!r}; choose one of {', '.join(INTEGRATORS)}")
    obstacle = _leapfrog_obstacle(d)
    if integrator == "leapfrog" and obstacle:
        raise DerivationError(f"the leapfrog integrator needs a separable model with a closed-form "
                              f"velocity map ({obstacle[1]}); use --integrator midpoint")
    if integrator == "auto":
        return "leapfrog" if obstacle is None and d.sym.separable else "midpoint"
    return integrator


def auto_integrator_reason(d) -> tuple[str, str]:
    """``(integrator, why)``: what ``auto`` picks for ``d`` (:func:`choose_integrator`) and the reason, for
    the reports."""
    chosen = choose_integrator(d)
    if chosen == "leapfrog":
        return chosen, "explicit Störmer–Verlet (theory §6): L = K(v) − V(q, t) with a closed-form velocity map"
    kind, note = _leapfrog_obstacle(d) or (None, None)
    why = {"damped": f"{note} (theory §7)", "not separable": f"L is not separable ({note})",
           "no velocity map": f"no closed-form velocity map v(p) for the leapfrog's drift ({note})"}.get(
        kind, "the kinetic part reads the time (" + ("a Caldirola–Kanai model" if caldirola_kanai_rate(d.model)
                                                        is not None else "a time-dependent mass")
        + "): --integrator leapfrog runs the time-weighted leapfrog (theory §7)")
    return chosen, f"implicit (theory §6): {why}"
