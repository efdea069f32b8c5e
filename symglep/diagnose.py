"""Locating a numerical failure: which step of which pass first produced NaN or infinity.

The compiled kernels do not test every step (that would slow the inner loop);
:class:`~symglep.runtime.Kernels` checks the outputs of every call instead, and
only when one is not finite does it come here. A pass is a sequence of steps,
and a NaN or an infinity, once produced, stays in the state of every later
step, so "the run of the first ``m`` steps fails" is monotone in ``m``: a
bisection over ``m`` finds the first failing step in ``O(log K)`` re-runs of
the same compiled kernel (forward passes by prefixes, the echo and the BPTT
adjoint, which run backward in time, by suffixes).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import SymglepError


class NumericalError(SymglepError):
    """A kernel failed numerically (Newton did not converge, NaN, overflow).

    ``phase``, ``sequence``, ``step`` and ``state`` (a dict of arrays) describe
    where, when they are known.
    """

    exit_code = 3

    def __init__(self, message: str, phase: str | None = None, sequence: int | None = None,
                 step: int | None = None, state: dict | None = None):
        super().__init__(message)
        self.phase, self.sequence, self.step, self.state = phase, sequence, step, state or {}


def all_finite(*arrays) -> bool:
    """True when every entry of every array (``None`` ignored) is finite."""
    return all(a is None or bool(np.all(np.isfinite(a))) for a in arrays)


#: the phrase of a run whose first step from a finite start is not finite (callers drop their dt advice)
START_NOT_FINITE = ("the first step from a finite start fails: the force is not finite at the start state, "
                    "which no dt cures")


def dt_advice(where: str, advice: str) -> str:
    """``advice`` (a phrase that suggests a smaller dt), or ``""`` where ``where`` (:func:`where_not_finite`)
    says the first step from a finite start failed, which no dt cures."""
    return "" if START_NOT_FINITE in where else advice


def where_not_finite(tq, tp, t0: float, dt: float) -> str:
    """Where recorded trajectories ``(B, K+1, n)`` first leave the finite numbers: step, sequence, time and
    the state's size just before (a phrase to follow "produced a non-finite value"); '' when they stay
    finite (the failure is then in an echo)."""
    bad = ~(np.all(np.isfinite(tq), axis=2) & np.all(np.isfinite(tp), axis=2))
    if not bad.any():
        return ""
    b = int(np.argmax(bad.any(axis=1)))
    k = int(np.argmax(bad[b]))
    before = max(k - 1, 0)
    started_finite = bool(np.all(np.isfinite(tq[b, 0])) and np.all(np.isfinite(tp[b, 0])))
    first = (f"; {START_NOT_FINITE} (a 0/0 such as the direction between two units at the same point, e.g. springs "
             "with rest lengths started at rest at the origin): start elsewhere: the model's initial_positions "
             "(docs/networks.md, docs/robustness.md)" if k == 1 and started_finite else "")
    return (f" first at step {k} of sequence {b} (t = {t0 + k * dt:g}); before it max |q| = "
            f"{np.max(np.abs(tq[b, before])):.3g}, max |p| = {np.max(np.abs(tp[b, before])):.3g}{first}")


def first_failing(fails: Callable[[int], bool], lo: int, hi: int) -> int:
    """Smallest ``m`` in ``[lo, hi]`` with ``fails(m)``, given ``fails`` monotone and ``fails(hi)``."""
    while lo < hi:
        mid = (lo + hi) // 2
        if fails(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def vector_text(x) -> str:
    """A state for a message: its first 8 entries; a ``(lanes, n)`` state (the echoes at ±β run as lanes of
    one pass) row by row, so that n numbers are one lane."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] > 1:
        return "[" + "; ".join(vector_text(row) for row in x[:4]) + ("; ..." if x.shape[0] > 4 else "") + "]"
    x = np.ravel(x)
    shown = ", ".join(f"{v:.6g}" for v in x[:8])
    return f"[{shown}{', ...' if x.size > 8 else ''}]"


def _kind(*arrays) -> str:
    values = np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays])
    return "overflow (inf)" if np.any(np.isinf(values)) else "NaN"


def forward_failure(phase: str, sequence: int, steps: int, dt: float, t0: float,
                    run: Callable[[int], tuple]) -> NumericalError:
    """The error for a forward pass whose ``steps`` steps give non-finite output.

    ``run(m)`` runs the first ``m`` steps (``m = 0``: none) of the failing
    sequence and returns ``(q, p, *other outputs)``.
    """
    m = first_failing(lambda m: not all_finite(*run(m)), 1, steps)
    before = run(m - 1)
    after = run(m)
    msg = (f"{phase}: {_kind(*after)} first appears at step {m} of sequence {sequence} "
           f"(t = {t0 + m * dt:.6g}); state before it: q = {vector_text(before[0])}, p = {vector_text(before[1])}; "
           f"after it: q = {vector_text(after[0])}, p = {vector_text(after[1])}")
    if all_finite(after[0], after[1]):
        msg += " (the state is finite: the loss or an accumulated sum overflowed)"
    msg += ". Reduce dt, or check the parameters, inputs and initial state."
    return NumericalError(msg, phase, sequence, m,
                          {"q_before": np.asarray(before[0]), "p_before": np.asarray(before[1]),
                           "q_after": np.asarray(after[0]), "p_after": np.asarray(after[1])})


def backward_failure(phase: str, sequence: int, steps: int, dt: float, t0: float,
                     run: Callable[[int], tuple], state_at: Callable[[int], tuple]) -> NumericalError:
    """The error for a pass running from node ``steps`` down to node 0 (the echo, the adjoint).

    ``run(j)`` runs the pass over nodes ``j..K`` only and returns its outputs;
    ``state_at(j)`` is ``(q, p)`` to show at node ``j``: the pass's own state
    (the echo) or the stored trajectory the adjoint runs along.
    """
    # the pass over nodes j..K fails for every j up to some j*: find j* (largest failing start)
    j = steps - first_failing(lambda r: not all_finite(*run(steps - r)), 1, steps)
    q, p = state_at(j)
    q_prev, p_prev = state_at(j + 1)
    lanes = np.ndim(q) == 2 and np.shape(q)[0] > 1
    msg = (f"{phase}: {_kind(*run(j))} first appears at the step from node {j + 1} to node {j} "
           f"of sequence {sequence} (t = {t0 + j * dt:.6g}, running backward in time"
           + ("; one row per nudged echo, in the order of their β" if lanes else "") + "); "
           f"state at node {j + 1}: q = {vector_text(q_prev)}, p = {vector_text(p_prev)}; "
           f"at node {j}: q = {vector_text(q)}, p = {vector_text(p)}. "
           "Reduce dt or beta, or check the parameters, inputs and initial state.")
    return NumericalError(msg, phase, sequence, j,
                          {"q_before": np.asarray(q_prev), "p_before": np.asarray(p_prev),
                           "q_after": np.asarray(q), "p_after": np.asarray(p)})


#: the retrace test itself runs in the kernels (templates/numba/passes.j2, ``retrace``; the JAX layer's
#: ``_retrace_factor``): a miss over 1e-3 of the state's size (1e-6 for the complex step) with a spread ten times
#: smaller or beyond the state's size is a run that did not retrace; a miss over 0.3 of the ±β ends' spread (1
#: for the Richardson contrast) and 1e-8 of the state is a response not linear in β, whose contrast's bias is about
#: (miss / spread)^2. The kernels return the miss (relative to the state's size) where either holds, else 0.
#: On a failure, β is divided by these factors, in turn, to find one that passes.
SMALLER_BETAS = (10.0, 100.0)


def check_retrace(miss, integrator: str, what: str, rerun=None, beta: float | None = None) -> None:
    """A :class:`NumericalError` for the first sequence whose echoes the kernels flagged (``miss`` > 0: its mean
    end's miss relative to the state's size): the echo did not retrace the free run, or not linearly in β, so the
    contrast is not the gradient (probes: a spherical pendulum near its pole 300x off BPTT, a leapfrog past its
    stability limit 1e52x, chaotic Henon-Heiles runs 10-300 %, all silently before).

    ``rerun(beta)``, when given, measures the misses again at smaller nudges (:data:`SMALLER_BETAS`): where one
    passes, the failure is the nudge's own non-linear effect (β large for the model's scale, or a run that
    amplifies it: chaos, a long run, a run near the stability limit), and the message names that β; where the
    miss falls with β but none passes, the run amplifies any nudge too much; where it does not fall, the run did
    not retrace (stability, another Newton root, round-off growth)."""
    miss = np.asarray(miss)
    bad = np.nonzero(~(miss <= 0.0))[0]
    if not bad.size:
        return
    b = int(bad[0])
    beyond = miss[b] > 1.0  # beyond the state's size
    amplifier = ("a chaotic or long run" if integrator == "midpoint" else
                 "dt past the leapfrog's stability limit (omega dt > 2 for its fastest mode), or a chaotic or long "
                 "run" if beyond else
                 "a chaotic or long run, or dt near the leapfrog's stability limit (omega dt -> 2 for its fastest "
                 "mode)")
    if rerun is not None and beta is not None and np.isfinite(miss[b]):
        tried = []
        for factor in SMALLER_BETAS:
            smaller = float(np.asarray(rerun(beta / factor))[b])
            if smaller <= 0.0:
                raise NumericalError(
                    f"{what}: the echoes of sequence {b} did not retrace the free run linearly in beta at beta = "
                    f"{beta:.1e} (their mean end misses the start by {miss[b]:.1e} relative, the nudge's own "
                    f"non-linear effect), so the contrast carries a large beta bias; at beta = {beta / factor:.1e} "
                    f"they do: use beta <= {beta / factor:.1e} (the model's scale is small, or the run amplifies "
                    f"the nudge: {amplifier}), or BPTT (bptt_gradient; train --estimator bptt)", what, b, None)
            tried.append(smaller)
        if tried[-1] * SMALLER_BETAS[-1] ** 1.5 <= miss[b]:  # falls with beta, faster than linearly
            raise NumericalError(
                f"{what}: the echoes of sequence {b} did not retrace the free run linearly in beta, even at "
                f"beta = {beta / SMALLER_BETAS[-1]:.1e} (their mean end misses the start by {miss[b]:.1e} relative at "
                f"beta = {beta:.1e}, {tried[-1]:.1e} at beta / {SMALLER_BETAS[-1]:g}): the run amplifies the nudge "
                f"({amplifier}), so the echo's contrast is not the gradient; shorten the run or reduce dt, or use "
                "BPTT (bptt_gradient; train --estimator bptt)", what, b, None)
    why = ("a chaotic run amplified the echo's round-off and nudge beyond recovery (shorten the run: a smaller dt "
           "does not help there), or the implicit midpoint step has more than one solution and Newton took "
           "another one (dt too large near a singular point of the model: reduce dt)" if integrator == "midpoint"
           else "the run grew without bound (dt past the leapfrog's stability limit: omega dt > 2 for "
                "its fastest mode, or a model unstable at these parameters, e.g. a stiffness of the wrong sign: "
                "declare the signs of parameters that have one) or round-off grew along it (a chaotic run, or "
                "a damped model's echo, which amplifies it by e^(gamma T), theory §7); reduce dt or shorten the run")
    raise NumericalError(f"{what}: the echo of sequence {b} did not retrace the free run (its mean end "
                         f"misses the start by {miss[b]:.1e} relative), so its contrast is not the gradient: "
                         f"{why}, or use BPTT (bptt_gradient; train --estimator bptt)", what, b, None)
