"""Automatic choice of the nudge β of a contrastive estimate (docs/theory.md §5, §6 "Choosing β").

By theory §6 the contrast ``D(β)`` of the echoes differs from the exact gradient of the
discrete loss only by its finite difference in β, plus floating-point round-off:

* bias ``c·β^p`` (relative): ``p = 2`` for the centred contrast, ``p = 1`` for the one-sided
  one (theory §5), ``p = 4`` for a Richardson (±β, ±2β) contrast. A pilot pair ``D(β0)``,
  ``D(2β0)`` measures it (Richardson):
  ``‖D(2β0) − D(β0)‖ ≈ (2^p − 1)·c·β0^p·‖D‖`` — the estimate ``symglep check`` prints as
  "centred echo: beta error estimate". A third contrast at ``β0/2`` checks the law: the
  difference must shrink by ``2^p`` (or be negligible), else the pilot moves: to ``10 β0``
  when round-off explains the differences (a probe at ``β0/1000`` measures it: a long or
  stretched run whose learning integrals are far larger than the gradient, so that their
  rounding swamps the bias at ``β0``), otherwise to ``β0/10`` (a model with a kink, ``Max``
  or ``Abs``, follows the law only below some β).
* round-off ``a/β``: each learning integral ``G(±β)`` carries a rounding error that does not
  shrink with β, and the contrast divides their difference by ``2β`` (float64 cancellation).
  ``a`` is measured from probes at ``β_r ≪ β0``, where the bias is negligible:
  ``a = β_r·‖D(β_r) − D_R‖/‖D_R‖`` with ``D_R = (2^p D(β0) − D(2β0))/(2^p − 1)`` the
  Richardson-corrected pilot (the larger of two probes; never below the resolution ``10ε``).

Choice: the estimated error ``E(β) = c·β^p + a/β`` is least at ``β_opt = (a/(p·c))^{1/(p+1)}``;
below it a smaller β only adds round-off (the floor). β is the largest β with ``E(β) <= τ``
(it lies between ``β_opt`` and ``β_tol = (τ/c)^{1/p}``, where the bias alone reaches ``τ``):
the bias is kept below the tolerance with the round-off counted in, and β is as large as that
allows (less cancellation, more room for measurement noise, docs/noise.md). It is capped at
``MAX_GROWTH·β0`` (the β^p law is measured at β0 and not trusted far above it), and at β0 itself
when the pilot had to move (down: the law failed at the larger β tried first; up: no β above
it was measured). When even
``E(β_opt) > τ`` the tolerance cannot be met in float64 and ``β_opt`` (the least total error)
is used, with a note saying so.

Every kind of system uses it through a ``contrast(β)`` callable returning the groups of
gradients the caller will judge (θ, the initial state, the inputs); the worst group decides.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import SymglepError

AUTO = "auto"
#: relative error (bias + round-off) of the contrast that ``--beta auto`` aims for
BIAS_TOLERANCE = 1e-8
#: first pilot β; divided by 10 (at most ``PILOT_TRIES`` times) while the pilot is not in the β^p regime
PILOT_BETA = 1e-3
PILOT_TRIES = 3
#: a pilot β whose nudged run fails (NaN, no retrace) before any has run is divided by FAILED_PILOT_STEP, at most
#: FAILED_PILOTS times: a model at a small scale (k = m = 1e-6) is overwhelmed by a nudge of 1e-3
FAILED_PILOTS = 3
FAILED_PILOT_STEP = 1e3
#: a pilot estimate above this is outside the asymptotic β^p regime
PILOT_MAX_ERROR = 1e-3
#: the pilot's β^p law is also checked at β0/2: its difference shrinks by 2^p, within this factor ...
REGIME_SLACK = 2.0
#: ... unless both differences are below this (relative): too small to matter, and near round-off
REGIME_FLOOR = 1e-9
#: round-off probes, as fractions of the pilot β
PROBES = (1e-4, 1e-5)
#: a pilot out of the law moves up when its difference is below this multiple of the round-off a/β0 ...
ROUNDOFF_MARGIN = 10.0
#: ... that a probe at this fraction of β0 measures
NOISE_PROBE = 1e-3
#: the chosen β is at most this multiple of the pilot
MAX_GROWTH = 10.0
EPS = float(np.finfo(np.float64).eps)
#: β of the checks that do not choose one (``check --bc``: several estimators and boundary conditions)
FIXED_BETA = 1e-4
FIXED_BETA_NOTE = (f"beta = {FIXED_BETA:g}: --bc compares several estimators at one fixed beta; --beta auto "
                   "chooses beta for the echo-vs-BPTT check only")


@dataclass(frozen=True)
class BetaChoice:
    """What the pilot measured and the β it chose (all errors relative)."""

    beta: float             # the chosen β
    order: int              # p: 2 centred, 1 one-sided, 4 Richardson (±β, ±2β)
    tolerance: float        # τ, the bias aimed for
    pilot_beta: float       # β0
    curvature: float        # c in c·β^p
    roundoff: float         # a in a/β
    beta_tolerance: float   # (τ/c)^{1/p} (inf when c = 0)
    beta_optimal: float     # argmin c·β^p + a/β
    predicted_bias: float   # c·β^p at the chosen β
    predicted_roundoff: float  # a/β at the chosen β
    note: str               # one line: which bound decided

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}


def parse_beta(value, option: str = "--beta"):
    """``"auto"`` or a positive finite float, from the command line or the Python API; one-line error otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == AUTO:
            return AUTO
        try:
            number = float(text)
        except ValueError:
            raise SymglepError(f"{option} must be a positive number or 'auto', got {value!r}") from None
    elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise SymglepError(f"{option} must be a positive number or 'auto', got {value!r}")
    if not (math.isfinite(number) and number > 0):
        raise SymglepError(f"{option} must be a positive number or 'auto', got {value}")
    return number


def fixed_or(beta) -> float:
    """``beta``, or :data:`FIXED_BETA` when it is ``"auto"`` (for the checks that do not choose β)."""
    return FIXED_BETA if beta == AUTO else beta


def _worst(groups_a: Sequence[np.ndarray], groups_b: Sequence[np.ndarray]) -> float:
    """``max_g ‖a_g − b_g‖ / ‖b_g‖`` over the groups (absolute for an all-zero group)."""
    worst = 0.0
    for a, b in zip(groups_a, groups_b):
        a, b = np.ravel(a), np.ravel(b)
        scale = np.linalg.norm(b)
        worst = max(worst, float(np.linalg.norm(a - b) / (scale if scale > 0 else 1.0)))
    return worst


def _follows_the_power_law(contrast, beta0: float, one: list, estimate: float, order: int) -> bool:
    """Whether the pilot is in the ``c·β^p`` regime: the difference ``D(β0) − D(β0/2)`` is ``2^p`` times
    smaller than ``D(2β0) − D(β0)`` (within :data:`REGIME_SLACK`), or both are below :data:`REGIME_FLOOR`.
    A model that is not smooth (a ``Max`` wall, an ``Abs``) can pass the size test at β0 while the nudged
    runs cross its kink differently: the law then fails there and holds at a smaller β."""
    half = [np.asarray(g, dtype=np.float64) for g in contrast(beta0 / 2)]
    finer = _worst(one, half) / (2.0 ** order - 1.0)
    if min(estimate, finer) <= REGIME_FLOOR:
        return True
    ratio = estimate / finer
    return 2.0 ** order / REGIME_SLACK <= ratio <= 2.0 ** order * REGIME_SLACK


def _roundoff_dominated(contrast, beta0: float, one: list, estimate: float) -> bool:
    """Whether the pilot's difference is no more than round-off: a probe at ``β0·NOISE_PROBE`` measures the
    round-off ``a`` (``a/β`` relative at ``β``), and the difference is below ``ROUNDOFF_MARGIN·a/β0``."""
    probe = beta0 * NOISE_PROBE
    roundoff = probe * _worst(contrast(probe), one)
    return estimate < ROUNDOFF_MARGIN * roundoff / beta0


def _pilot(contrast, order: int, pilot_beta: float) -> tuple:
    """``(β0, D(β0), D(2β0), estimate, moved)``: the pilot in the ``c·β^p`` regime (module docstring), found
    within ``PILOT_TRIES`` tries; ``moved`` is ``"up"``, ``"down"`` or ``""``. Up: round-off swamps the
    differences at β0; down: the law fails for another reason (a kink), or the bias is too large. A try that
    would reverse the direction, or that fails after a move up, ends the search at the best try so far."""
    k = 2.0 ** order - 1.0
    beta0, moved, tried, failed = pilot_beta, "", [], 0
    for _ in range(PILOT_TRIES + FAILED_PILOTS):
        if len(tried) >= PILOT_TRIES:
            break
        try:
            one = [np.asarray(g, dtype=np.float64) for g in contrast(beta0)]
            two = [np.asarray(g, dtype=np.float64) for g in contrast(2 * beta0)]
        except SymglepError:
            if moved == "up":
                return (*tried[-1], moved)  # a larger nudge broke the run: keep the last β that ran
            failed += 1
            if tried or failed > FAILED_PILOTS:
                raise
            beta0 /= FAILED_PILOT_STEP  # a nudge too strong for this model's scale (a mass of 1e-6): try smaller
            continue
        estimate = _worst(two, one) / k
        tried.append((beta0, one, two, estimate))
        if estimate <= PILOT_MAX_ERROR and _follows_the_power_law(contrast, beta0, one, estimate, order):
            break
        if moved == "up" and estimate > PILOT_MAX_ERROR:
            return (*tried[-2], moved)
        if moved != "down" and estimate <= PILOT_MAX_ERROR and _roundoff_dominated(contrast, beta0, one, estimate):
            moved, beta0 = "up", beta0 * 10
        elif moved == "up":
            break
        else:
            moved, beta0 = "down", beta0 / 10
    return (*tried[-1], moved)


def pick(curvature: float, roundoff: float, order: int, tolerance: float, pilot_beta: float,
         cap: float | None = None, moved: str = "down") -> tuple:
    """``(β, β_tol, β_opt, note)`` from the model ``E(β) = c·β^p + a/β`` (module docstring).

    β is the largest β with ``E(β) <= τ`` (between ``β_opt`` and ``β_tol``), capped at ``cap``
    (default ``MAX_GROWTH·β0``); when even ``E(β_opt) > τ``, β is ``β_opt``. ``moved``: which way the
    pilot moved when ``cap`` is the pilot β (for the note).
    """
    c, a, p = curvature, roundoff, order
    cap = MAX_GROWTH * pilot_beta if cap is None else cap
    capped = (f"capped at {MAX_GROWTH:g}x the pilot beta" if cap > pilot_beta else
              "capped at the pilot beta (no larger beta was measured)" if moved == "up" else
              "capped at the pilot beta (the law failed at the larger pilot beta tried first)")
    if c <= 0:
        return cap, math.inf, 0.0, f"no bias measured at the pilot; {capped}"
    beta_tol = (tolerance / c) ** (1.0 / p)
    beta_opt = (a / (p * c)) ** (1.0 / (p + 1))
    total = lambda b: c * b ** p + a / b  # noqa: E731
    if total(beta_opt) > tolerance:
        note = "the tolerance is not reachable in float64: beta minimises bias + round-off instead"
        return min(beta_opt, cap), beta_tol, beta_opt, note
    lo, hi = beta_opt, beta_tol  # E(lo) <= tau < E(hi): bisect in log beta for the largest root
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if total(mid) <= tolerance else (lo, mid)
    if lo > cap:
        return cap, beta_tol, beta_opt, f"bias far below the tolerance; {capped}"
    return lo, beta_tol, beta_opt, "bias + round-off at the tolerance"


def choose_beta(contrast: Callable[[float], Sequence[np.ndarray]], order: int = 2,
                tolerance: float = BIAS_TOLERANCE, pilot_beta: float = PILOT_BETA) -> BetaChoice:
    """β for the contrast ``contrast(β) -> [gradient groups]`` (module docstring; theory §5–§6).

    Costs ``3 + len(PROBES)`` contrasts (more when the pilot is out of the β^p regime).
    """
    if order not in (1, 2, 4):
        raise SymglepError(f"automatic beta knows contrasts of bias order 1 (one-sided), 2 (centred) and 4 "
                           f"(Richardson), not order {order}")
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise SymglepError(f"the bias tolerance must be a positive number, got {tolerance}")
    k = 2.0 ** order - 1.0
    beta0, one, two, estimate, moved = _pilot(contrast, order, pilot_beta)
    curvature = estimate / beta0 ** order
    corrected = [((k + 1) * a - b) / k for a, b in zip(one, two)]
    roundoff = 10 * EPS * beta0 * PROBES[-1]
    for fraction in PROBES:
        probe = beta0 * fraction
        roundoff = max(roundoff, probe * _worst(contrast(probe), corrected))
    # the cap: MAX_GROWTH x the pilot, but never up to a beta the pilot tried and left (out of the law there),
    # nor above a pilot that moved up (no larger beta measured)
    cap = beta0 if moved else MAX_GROWTH * beta0
    beta, beta_tol, beta_opt, note = pick(curvature, roundoff, order, tolerance, beta0, cap, moved)
    return BetaChoice(beta=float(beta), order=order, tolerance=tolerance, pilot_beta=beta0,
                      curvature=float(curvature), roundoff=float(roundoff), beta_tolerance=float(beta_tol),
                      beta_optimal=float(beta_opt), predicted_bias=float(curvature * beta ** order),
                      predicted_roundoff=float(roundoff / beta), note=note)


def describe(choice) -> str:
    """One line for reports: the chosen β and why (a :class:`BetaChoice` or its JSON)."""
    c = choice.to_json() if isinstance(choice, BetaChoice) else choice
    return (f"beta = {c['beta']:.3g} chosen automatically (pilot beta {c['pilot_beta']:g}: bias "
            f"{c['curvature']:.2e}*beta^{c['order']}, round-off {c['roundoff']:.1e}/beta; predicted bias "
            f"{c['predicted_bias']:.1e}, round-off {c['predicted_roundoff']:.1e}, tolerance "
            f"{c['tolerance']:.0e}: {c['note']})")
