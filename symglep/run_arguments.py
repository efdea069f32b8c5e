"""Checks of the run arguments that every kind's kernels share: the time step, the number of steps, the start
time and the nudge.

The kernels themselves trust their arguments (a negative step runs the system backward, a step count
that disagrees with the series given reads past them), so each call checks these first.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ArgumentError, SymglepError


def _real(value) -> bool:
    """A real number: a Python or NumPy scalar, or a 0-d array, of integer or float type (not a bool)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return False
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return array.ndim == 0 and (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating))


def time_step(dt, default: float | None) -> float:
    """The step of a kernel call: ``dt`` when given, else ``default`` (the kernels' own); a positive finite
    number, or a one-line error (``dt=0`` is refused, not read as "the default")."""
    if dt is None and default is not None:
        return float(default)
    return positive_number(dt, "dt")


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


def start_time(t0) -> float:
    """``t0`` checked: a finite real number (a NaN start time failed later as a Newton failure at step 0)."""
    if not (_real(t0) and math.isfinite(t0)):
        raise SymglepError(f"t0 must be a finite number, got {t0!r}")
    return float(t0)


def nudge(beta) -> float:
    """``beta`` checked: a finite non-zero real number."""
    if not (_real(beta) and math.isfinite(beta) and beta != 0):
        raise SymglepError(f"beta must be a finite non-zero number, got {beta!r}")
    return float(beta)


def whole_number(value, name: str, minimum: int) -> int:
    """An integer argument (``epochs``, ``seed``, ``batch``) of at least ``minimum``, or a one-line error
    (``epochs=1.5`` is not rounded, ``seed=-1`` is not NumPy's own message)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def is_positive_number(value) -> bool:
    """A finite real number > 0: Python's, NumPy's (``np.float32``) or a 0-d array of one (not a bool)."""
    return _real(value) and math.isfinite(value) and value > 0


def positive_number(value, name: str) -> float:
    """A positive finite real argument (``lr``, ``dt``), or a one-line error."""
    if not is_positive_number(value):
        raise ArgumentError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def real_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array, or a one-line error: a string, an object or a complex number is not read
    as a real number (NumPy would raise its own message, or drop an imaginary part with only a warning)."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{name} must hold real numbers: {exc}") from None
    if np.iscomplexobj(array):
        raise ArgumentError(f"{name} must hold real numbers, got complex values (the complex-step estimator "
                           "takes real arguments and nudges them itself)")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        if array.dtype == object:
            try:
                return real_array(array.astype(np.float64), name)
            except (TypeError, ValueError):
                pass
        raise ArgumentError(f"{name} must hold real numbers, got {_kind(value)}")
    return array.astype(np.float64, copy=False)


def _kind(value) -> str:
    """What a bad argument is, in words."""
    array = np.asarray(value)
    if array.ndim == 0:
        return f"{value!r}"
    return f"an array of {array.dtype}"
