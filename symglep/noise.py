"""Measurement noise on the echo's observables: bias, variance and the best β (docs/noise.md).

Noise model (theory §5): in hardware the contrast reads the learning integrals ``G(b)``
accumulated along each echo — one number per parameter and per echo. Each read is taken as
``G(b) + σ·ξ`` with ``ξ`` standard normal, independent across parameters, echoes and
repetitions, and ``σ`` in the units of ``G``. (The initial-state gradient reads the echoes' end
states instead; with the momentum start of ``symglep check`` the θ-gradient has no PFVP
correction (theory §3), so it reads the integrals only, and the study is of θ's gradient.)

Two contrasts are studied, both built from the same echoes (Python level, from the kernels'
``G`` at ``±β`` and ``±2β``):

* centred: ``D2(β) = (G(β) − G(−β)) / 2β`` — bias ``O(β²)``, noise variance ``σ²/(2β²)`` per
  parameter;
* Richardson: ``D4(β) = (4 D2(β) − D2(2β)) / 3 = (8[G(β) − G(−β)] − [G(2β) − G(−2β)]) / 12β`` —
  bias ``O(β⁴)``, noise variance ``(64·2 + 2)/144 · σ²/β² = 65σ²/(72β²)`` per parameter.

With ``n`` parameters the expected relative squared error is ``bias(β)² + n·k·σ²/(β²‖g‖²)``
(``k = 1/2`` or ``65/72``): the bias falls and the noise grows as β shrinks, and the best β
balances them. :func:`study` measures all of it on a β grid with seeded repetitions.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .errors import SymglepError

ESTIMATORS = ("centred", "richardson")
#: noise variance per parameter is VARIANCE_FACTOR[est] · σ² / β²
VARIANCE_FACTOR = {"centred": 0.5, "richardson": 65.0 / 72.0}
#: bias order p of each estimator
ORDER = {"centred": 2, "richardson": 4}
REPEATS = 400
GRID = tuple(float(b) for b in np.logspace(-7, -1, 25))


def parse_noise(value) -> float | None:
    """``None`` (no study) or a non-negative finite σ; one-line error otherwise."""
    if value is None:
        return None
    try:
        sigma = float(value)
    except (TypeError, ValueError):
        raise SymglepError(f"--noise must be a non-negative number (the noise std of G), got {value!r}") from None
    if not (math.isfinite(sigma) and sigma >= 0):
        raise SymglepError(f"--noise must be a non-negative number (the noise std of G), got {value}")
    return sigma


def contrasts(g_plus, g_minus, g_plus2, g_minus2, beta) -> dict:
    """``{estimator: gradient}`` from the integrals at ``β, −β, 2β, −2β`` (last axis: parameters)."""
    d1 = (g_plus - g_minus) / (2 * beta)
    d2 = (g_plus2 - g_minus2) / (4 * beta)
    return {"centred": d1, "richardson": (4 * d1 - d2) / 3}


def sample(integrals: np.ndarray, beta: float, sigma: float, repeats: int, rng) -> dict:
    """``{estimator: (repeats, n) noisy gradients}`` from ``integrals``: ``G`` at ``[β, −β, 2β, −2β]``,
    shape ``(4, n)``."""
    noisy = integrals[None, :, :] + sigma * rng.standard_normal((repeats,) + integrals.shape)
    return contrasts(noisy[:, 0], noisy[:, 1], noisy[:, 2], noisy[:, 3], beta)


def study(integrals: Callable[[list], np.ndarray], reference: np.ndarray, sigmas, betas=GRID,
          repeats: int = REPEATS, seed: int = 0) -> dict:
    """Bias, variance and RMS error of each estimator on the β grid, for each σ; the best β per σ.

    ``integrals(bs)`` returns ``G`` at each nudge of ``bs`` (shape ``(len(bs), n)``); ``reference``
    is the exact gradient of the discrete loss (BPTT). Errors are relative to ``‖reference‖``:
    ``bias`` of the noiseless contrast, ``std`` = ``sqrt(Σ_i var_i)`` of the repetitions (measured)
    and ``std_predicted`` from :data:`VARIANCE_FACTOR`, ``rms`` = ``sqrt(mean ‖ĝ − g‖²)``.
    ``best_beta``: the grid β of least measured RMS error; ``best_beta_predicted``: the grid β of least
    ``sqrt(bias² + std_predicted²)`` (no sampling noise in it).
    """
    reference = np.ravel(np.asarray(reference, dtype=np.float64))
    norm = float(np.linalg.norm(reference)) or 1.0
    n = reference.size
    nudges = [s * b for b in betas for s in (1, -1, 2, -2)]
    G = np.asarray(integrals(nudges), dtype=np.float64).reshape(len(betas), 4, n)
    rng = np.random.default_rng(seed)
    out = {"sigmas": [float(s) for s in sigmas], "betas": [float(b) for b in betas], "repeats": repeats,
           "parameters": n, "reference_norm": norm, "integral_scale": float(np.max(np.abs(G))), "curves": {}}
    for sigma in sigmas:
        per = {}
        for est in ESTIMATORS:
            bias, std, pred, rms = [], [], [], []
            for i, beta in enumerate(betas):
                clean = contrasts(*G[i], beta)[est]
                bias.append(float(np.linalg.norm(clean - reference) / norm))
                pred.append(float(math.sqrt(n * VARIANCE_FACTOR[est]) * sigma / beta / norm))
                if sigma > 0:
                    draws = sample(G[i], beta, sigma, repeats, rng)[est]
                    std.append(float(math.sqrt(np.sum(np.var(draws, axis=0, ddof=1))) / norm))
                    rms.append(float(math.sqrt(np.mean(np.sum((draws - reference) ** 2, axis=1))) / norm))
                else:
                    std.append(0.0)
                    rms.append(bias[-1])
            best = int(np.argmin(rms))
            expected = int(np.argmin(np.hypot(bias, pred)))
            per[est] = {"bias": bias, "std": std, "std_predicted": pred, "rms": rms,
                        "best_beta": float(betas[best]), "best_rms": float(rms[best]),
                        "best_beta_predicted": float(betas[expected])}
        out["curves"][repr(float(sigma))] = per
    return out


def render_text(s: dict) -> str:
    """The best β and its error per σ and estimator, and the variance check at that β."""
    lines = [f"noise study: Gaussian noise of std sigma on each learning integral G(+-beta), G(+-2beta) "
             f"({s['repeats']} repetitions, {len(s['betas'])} betas {s['betas'][0]:.0e}..{s['betas'][-1]:.0e}; "
             f"|G| up to {s['integral_scale']:.2e}, |gradient| {s['reference_norm']:.3e})",
             f"{'sigma':>10} {'estimator':>11} {'best beta':>10} {'(predicted)':>11} {'rms error':>10} "
             f"{'bias':>10} {'std':>10} {'std pred.':>10}"]
    for key, per in s["curves"].items():
        for est, c in per.items():
            i = s["betas"].index(c["best_beta"])
            lines.append(f"{float(key):>10.1e} {est:>11} {c['best_beta']:>10.2e} {c['best_beta_predicted']:>11.2e} "
                         f"{c['rms'][i]:>10.2e} "
                         f"{c['bias'][i]:>10.2e} {c['std'][i]:>10.2e} {c['std_predicted'][i]:>10.2e}")
    return "\n".join(lines) + "\n"
