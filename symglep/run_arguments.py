"""Checks of the run arguments that every kind's kernels share: the time step and the number of steps.

The kernels themselves trust their arguments (a negative step runs the system backward, a step count
that disagrees with the series given reads past them), so each call checks these first.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import SymglepError


def time_step(dt, default: float | None) -> float:
    """The step of a kernel call: ``dt`` when given, else ``default`` (the kernels' own); a positive finite
    number, or a one-line error (``dt=0`` is refused, not read as "the default")."""
    if dt is None and default is not None:
        return float(default)
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(dt) and dt > 0):
        raise SymglepError(f"dt must be a positive number, got {dt!r}")
    return float(dt)


def step_count(steps, nodes: int | None = None, name: str = "inputs u") -> int | None:
    """``steps`` (K) checked: None, or a positive integer that agrees with a series of ``nodes`` time nodes."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise SymglepError(f"steps must be a positive integer (K >= 1), got {steps!r}")
    if nodes is not None and nodes - 1 != steps:
        raise SymglepError(f"steps={steps} but the {name} given have K = {nodes - 1} steps ({nodes} time nodes); "
                           "give one of them, or make them agree")
    return int(steps)
