"""Rayleigh dissipation and its Caldirola–Kanai rewriting (theory §7).

A Rayleigh dissipation function ``R(q, v)`` adds the force ``−∂R/∂v`` to the
Euler–Lagrange equations::

    d/dt ∂L/∂v − ∂L/∂q + ∂R/∂v = 0

It does not come from an action, so the identity of theory §2 does not hold
for it. One case is exactly variational: **uniform linear damping**, where the
damping force is ``γ`` times the canonical momentum, ``∂R/∂v = γ ∂L/∂v`` with
one constant rate ``γ``. Then the Caldirola–Kanai Lagrangian ``e^{γt} L`` has
the same free trajectories, since ``d/dt (e^{γt} p) − e^{γt} ∂L/∂q =
e^{γt} (ṗ + γ p − ∂L/∂q)``; symglep rewrites such a model into that form.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .symbolic import is_zero

def rewrite_note(rate="gamma") -> str:
    """Shown with every rewritten model (theory §7), naming its rate."""
    g = str(rate)
    g = g if g.isidentifier() or g.replace(".", "", 1).isdigit() else f"({g})"
    return (f"uniform linear damping rewritten into the Caldirola-Kanai Lagrangian exp({g}*t)*L: same free "
            f"trajectories and the same loss (integral of c dt), but the nudge now acts with weight exp(-{g}*t) "
            f"relative to the physical forces and the learning integrand carries the weight exp({g}*t); "
            f"nudging the damped system with a plain (unweighted) force instead would differentiate the loss "
            f"integral of exp({g}*t)*c dt (theory §7)")


def non_variational_note(why: str) -> str:
    """What a model whose Rayleigh force stays in the dynamics is told (theory §7)."""
    return (f"the Rayleigh dissipation is kept as a non-variational force ({why}): no exact echo or PFVP "
            "rule applies; BPTT is the reference, the naive echo (naive_echo=True, --naive-echo) is biased "
            "(theory §7)")


@dataclass(frozen=True)
class Rayleigh:
    """What symglep made of a declared dissipation function."""

    function: sp.Expr            # R(q, v), plain symbols
    rate: sp.Expr | None         # γ when ∂R/∂v = γ ∂L/∂v (uniform linear damping), else None
    why: str                     # why it is (not) uniform

    @property
    def rewritable(self) -> bool:
        return self.rate is not None


def uniform_rate(lagrangian, rayleigh, velocities, time, varying, constants) -> Rayleigh:
    """``γ`` with ``∂R/∂v_i = γ ∂L/∂v_i`` for every ``i`` (γ free of the state, time and inputs), if any.

    ``varying`` holds the symbols γ may not contain (coordinates, velocities, time, inputs).
    """
    momenta = [sp.diff(lagrangian, v) for v in velocities]
    forces = [sp.diff(rayleigh, v) for v in velocities]
    rate, first = None, None
    for v, p, f in zip(velocities, momenta, forces):
        if not is_zero(p, fixed=constants):
            rate, first = sp.cancel(sp.together(f / p)), v
            break
    if rate is None:
        return Rayleigh(rayleigh, None, "the Lagrangian has no momentum to compare the damping with")
    moving = sorted(rate.free_symbols & set(varying), key=str)
    if moving:
        return Rayleigh(rayleigh, None, f"dR/dv is not one rate times the momentum dL/dv: their ratio {rate} "
                                        f"depends on {', '.join(map(str, moving))}")
    for v, p, f in zip(velocities, momenta, forces):
        if not is_zero(f - rate * p, fixed=constants):
            if rate == 0:
                why = (f"R acts on {v} but not on {first}: damping that acts on some coordinates only "
                       "is not uniform")
            else:
                why = (f"dR/d{v} is not {rate} times the momentum dL/d{v} (the rate read at {first}): the damping "
                       "differs between coordinates (or is not linear in the velocities)")
            return Rayleigh(rayleigh, None, why)
    return Rayleigh(rayleigh, rate, f"dR/dv = {rate} * dL/dv for every coordinate (uniform linear damping)")


def caldirola_kanai(lagrangian, rate, time) -> sp.Expr:
    """``e^{γt} L`` (theory §7)."""
    return sp.exp(rate * time) * lagrangian


#: op count of L above which :func:`caldirola_kanai_rate` does not look for a factor e^{γt} written into L
RATE_SEARCH_OPS = 400


def growth_text(rate, time: str) -> str:
    """``e^(γ t)`` written with the model's own rate ``γ`` (``e^(gam/m t)`` reads wrong: ``e^((gam/m) t)``), the
    factor between a Caldirola–Kanai model's canonical momentum and the physical one (theory §7); ``time``: e.g.
    ``"t"``, ``"T"``, ``"-T"`` (``e^(-gamma T)``)."""
    rate = sp.sympify(rate)
    text = sp.sstr(rate) if rate.is_Atom else f"({sp.sstr(rate)})"
    sign, time = ("-", time[1:]) if time.startswith("-") else ("", time)
    return f"e^({sign}{text} {time})"


def caldirola_kanai_rate(model):
    """The symbolic rate γ of a Caldirola–Kanai model (``None`` without one): its Rayleigh function's uniform
    rate, or that of a factor e^{γt} written into L itself (∂L/∂t = γ L with γ free of the state, inputs and t,
    as examples/damped_oscillator.py, or a factor e^{γt} of an L that also reads t elsewhere). Its canonical
    momentum is e^{γt} times the physical one."""
    rayleigh = model.rayleigh
    if rayleigh is not None and rayleigh.rewritable:
        return sp.sympify(rayleigh.rate)
    if model.time in model.lagrangian.free_symbols and sp.count_ops(model.lagrangian) <= RATE_SEARCH_OPS:
        allowed = set(model.parameters) | set(model.constants)
        rate = sp.cancel(sp.diff(model.lagrangian, model.time) / model.lagrangian)
        if rate != 0 and rate.free_symbols <= allowed:
            return rate
        # e^{γt} in front of a Lagrangian that reads the time otherwise too (a drive cos(ωt), new-user probe)
        slopes = [sp.diff(f.args[0], model.time) for f in sp.Mul.make_args(sp.factor_terms(model.lagrangian))
                  if isinstance(f, sp.exp)]
        rate = sp.Add(*[s for s in slopes if s.free_symbols <= allowed])
        if rate != 0:
            return rate
    return None


def damping_rate_at(model, theta) -> float:
    """The uniform damping rate γ of a Caldirola–Kanai model (:func:`caldirola_kanai_rate`)
    at the parameters ``theta``; 0 without one."""
    rate = caldirola_kanai_rate(model)
    if rate is None:
        return 0.0
    values = {**model.constants, **dict(zip(model.parameters, map(float, np.ravel(theta))))}
    value = complex(rate.xreplace(values))
    return value.real if value.imag == 0 and value.real > 0 else 0.0


#: e^{γT} above which ``check`` says that the anti-damped echo amplifies round-off (theory §7)
ANTI_DAMPING_AMPLIFICATION = 1e6


def anti_damping_warning(gamma: float, T: float) -> list:
    """A warning when uniform damping at rate ``gamma`` over a run of length ``T`` makes the echo (anti-damped:
    it replays e^{γt} in reverse, theory §7) amplify round-off by ``e^{γT}`` ≥ :data:`ANTI_DAMPING_AMPLIFICATION`."""
    if not gamma > 0 or gamma * T < math.log(ANTI_DAMPING_AMPLIFICATION):
        return []
    return [f"damping rate gamma = {gamma:.3g} over T = {T:g}: the echo runs anti-damped and amplifies round-off "
            f"by e^(gamma T) = {math.exp(min(gamma * T, 700.0)):.1e} (theory §7), so the echo gradient carries that "
            "much more error than an undamped run's; a shorter run or a smaller gamma T keeps it small "
            "(BPTT is the reference)"]


class AntiDampingWarning(RuntimeWarning):
    """An echo gradient of a damped model whose anti-damped echo amplifies round-off by e^{γT} ≥
    :data:`ANTI_DAMPING_AMPLIFICATION` (theory §7): the Python API warns; ``check`` and ``train`` report it
    themselves."""


def warn_anti_damping(gamma: float, T: float) -> None:
    """Warn (:class:`AntiDampingWarning`) when an echo gradient of rate ``gamma`` over ``T`` amplifies round-off."""
    for text in anti_damping_warning(gamma, T):
        warnings.warn(text, AntiDampingWarning, stacklevel=3)


def reports_anti_damping(function):
    """Decorate a function that reports the anti-damped echo itself (``check``, ``train``): the
    :class:`AntiDampingWarning` of the kernel calls inside it is not shown again."""
    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AntiDampingWarning)
            return function(*args, **kwargs)
    return quiet
