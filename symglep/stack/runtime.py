"""Compiling a stack's generated module and calling its kernels (theory §9).

The module lives in the kernel cache like a model's (``symglep.runtime``):
``<cache>/stack_<name>-<hash>/kernels.py``, keyed by the stack, the templates
and the generators.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import cache as kernel_cache
from ..diagnose import NumericalError, check_retrace, dt_advice, where_not_finite
from ..errors import SymglepError
from ..estimators import complex_nudge, contrast_order
from ..parameter_values import values_by_name
from ..run_arguments import nudge, real_array, start_time, step_count, time_step
from .codegen import render_stack, stack_hash
from .model import Stack


class StackEcho(NamedTuple):
    """:meth:`StackKernels.gradient` and ``complex_step_gradient`` (``dx``: None unless ``learn_inputs``)."""

    loss: np.ndarray
    dtheta: np.ndarray
    dx: np.ndarray | None
    round_trip: np.ndarray


class StackEchoWithStart(NamedTuple):
    """The same with ``initial_state=True``: ``dp0`` is the gradient of the start given (``dv0`` for a velocity
    start). Read it by name: its position differs from :class:`StackBPTTWithStart` (no round trip there)."""

    loss: np.ndarray
    dtheta: np.ndarray
    dx: np.ndarray | None
    round_trip: np.ndarray
    dq0: np.ndarray
    dp0: np.ndarray


class StackBPTT(NamedTuple):
    """:meth:`StackKernels.bptt_gradient`."""

    loss: np.ndarray
    dtheta: np.ndarray
    dx: np.ndarray


class StackBPTTWithStart(NamedTuple):
    """The same with ``initial_state=True`` (``dq0``, ``dp0`` by name as in :class:`StackEchoWithStart`)."""

    loss: np.ndarray
    dtheta: np.ndarray
    dx: np.ndarray
    dq0: np.ndarray
    dp0: np.ndarray


def compile_stack(stack: Stack, dt: float = 0.05, cache: str | None = None, jit: bool = True,
                  warm: bool = False, integrator: str = "auto") -> "StackKernels":
    """Generate (or find in the kernel cache) and import the stack's Numba module (:func:`symglep.cache.load`);
    each kernel compiles on its first call, or all of them now with ``warm``. ``integrator`` other than
    ``auto`` steps every unit by it (:meth:`Stack.with_integrator`, theory §9)."""
    if integrator != "auto":
        stack.capabilities.require("integrator", integrator)
        stack = stack.with_integrator(integrator)
    time_step(dt, None)
    digest = stack_hash(stack)
    module, _ = kernel_cache.load(f"stack_{stack.name}", digest, lambda: render_stack(stack, digest), cache=cache,
                                  jit=jit, warm=(lambda mod: StackKernels(stack, mod, dt).warm_up()) if warm else None)
    return StackKernels(stack, module, dt, (cache, jit))


class StackKernels:
    """Compiled kernels of one stack. ``theta`` packed (:attr:`Stack.parameter_names`);
    ``x (B, K+1, n_x)`` the bottom unit's inputs, ``y (B, K+1, n_y)`` the top unit's targets;
    every unit starts at rest unless ``q0`` and ``p0`` (momenta) or ``v0`` (velocities), all
    ``(B, NQ)``, are given. With ``v0`` each unit starts from ``p0 = ∂L/∂v(q0, v0)``, the gradients
    carry the chain rule through it (a learned mass's PFVP term, theory §3, §5) and ``dv0`` takes
    the place of ``dp0``."""

    def __init__(self, stack: Stack, module, dt: float, options: tuple = (None, True)):
        self.stack, self.module, self.dt = stack, module, time_step(dt, None)
        self.n_theta, self.nq, self.n_x, self.n_y = module.NTH, module.NQ, module.NX, module.NY
        self.options = options  # (cache, jit) it was compiled with
        #: the units' integrators: one name, or "mixed (leapfrog, midpoint, ...)" unit by unit
        self.integrator = stack.integrator_summary
        self._complex = None    # the complex-step module, loaded on first use

    def warm_up(self) -> None:
        th = np.full(self.n_theta, 0.5)
        x = np.zeros((1, 3, self.n_x))
        y = np.zeros((1, 3, self.n_y))
        q0 = np.zeros((1, self.nq))
        for record in (False, True):
            self.module.free(th, q0, q0, x, y, 0.01, 0.0, record)
        for learn in (False, True):
            self.module.gradient(th, q0, q0, x, y, 0.01, 0.0, 1e-4, 2, learn)
        self.module.bptt_gradient(th, q0, q0, x, y, 0.01, 0.0)

    def _args(self, theta, x, y, q0, p0, v0=None, t0=0.0, steps=None):
        if isinstance(theta, dict):  # by name, as every kind takes them
            names = self.stack.parameter_names
            given = values_by_name(theta, names)
            theta = [given[name] for name in names]
        th = np.ascontiguousarray(real_array(theta, "the parameter values").reshape(-1))  # kernels reshape views
        if th.shape != (self.n_theta,):
            raise SymglepError(f"the stack has {self.n_theta} parameters, got {th.size}")
        x = np.ascontiguousarray(real_array(x, "inputs x"))
        y = np.ascontiguousarray(real_array(y, "targets y"))
        if x.ndim != 3 or x.shape[2] != self.n_x:
            raise SymglepError(f"inputs must have shape (B, K+1, {self.n_x}), got {x.shape}")
        if y.ndim != 3 or y.shape[2] != self.n_y:
            raise SymglepError(f"targets must have shape (B, K+1, {self.n_y}), got {y.shape}")
        if y.shape[:2] != x.shape[:2]:
            raise SymglepError(f"the inputs x hold {x.shape[0]} sequence(s) of {x.shape[1]} time nodes, the targets "
                               f"y {y.shape[0]} of {y.shape[1]}: they must agree")
        if x.shape[1] < 2:
            raise SymglepError("the sequences need at least 2 time nodes (K >= 1)")
        if x.shape[0] == 0:
            raise SymglepError("the inputs x hold no sequence (B = 0): give at least one")
        step_count(steps, x.shape[1], "inputs x")  # the inputs fix K; steps=, as the other kinds take it, must agree
        for name, a in (("theta", th), ("inputs", x), ("targets", y)):
            if not np.all(np.isfinite(a)):
                raise SymglepError(f"{name} hold a non-finite value")
        B = x.shape[0]
        if p0 is not None and v0 is not None:
            raise SymglepError("give the initial momenta p0 or the velocities v0, not both")
        start = p0 if v0 is None else v0
        zero = np.zeros((B, self.nq))
        q0 = zero if q0 is None else np.ascontiguousarray(real_array(q0, "q0"))
        start = zero.copy() if start is None else np.ascontiguousarray(real_array(start, "p0" if v0 is None else "v0"))
        for name, a in (("q0", q0), ("v0" if v0 is not None else "p0", start)):
            if a.shape != (B, self.nq):
                raise SymglepError(f"{name} must have shape ({B}, {self.nq}) (one row per sequence of x, every unit's "
                                   f"coordinates), got {a.shape}")
        for name, a in (("q0", q0), ("the start", start)):
            if not np.all(np.isfinite(a)):
                raise SymglepError(f"{name} holds a non-finite value")
        if v0 is None:
            return th, x, y, q0, start
        if self.stack.momentum_reads_inputs:
            raise SymglepError(f"units {', '.join(map(str, self.stack.momentum_reads_inputs))} of this stack have a "
                               "momentum dL/dv that reads their inputs: a velocity start's gradient would need "
                               "dC/du0 through the glue, which the stack does not carry; start from momenta (p0)")
        return th, x, y, q0, self.module.momenta(th, q0, start, x, start_time(t0))

    def _through_velocity(self, th, x, q0, v0, t0, dth, dq0, dp0) -> tuple:
        """``(dθ, dq0, dv0)`` of a velocity start from the kernels' ``(dθ, dq0, dp0)`` (theory §3, §5)."""
        if v0 is None:
            return dth, dq0, dp0
        extra, dq, dv0 = self.module.velocity_start(th, q0, np.ascontiguousarray(v0, dtype=np.float64), x,
                                                    start_time(t0), np.ascontiguousarray(dp0))
        return dth + extra, dq0 + dq, dv0

    def free(self, theta, x, y=None, q0=None, p0=None, dt=None, t0=0.0, record=False, v0=None, steps=None):
        """Free pass: ``(qT, pT, loss[, traj_q, traj_p, traj_u])`` (trajectories with ``record``)."""
        if y is None:
            y = np.zeros(np.shape(x)[:2] + (self.n_y,))
        th, x, y, q0, p0 = self._args(theta, x, y, q0, p0, v0, t0, steps)
        out = self.module.free(th, q0, p0, x, y, time_step(dt, self.dt), start_time(t0), bool(record))
        if not all(np.all(np.isfinite(a)) for a in out[:3]):
            raise self._diverged("the free pass of the stack", (th, q0, p0, x, y, dt, t0))
        return out if record else out[:3]

    def gradient(self, theta, x, y, q0=None, p0=None, dt=None, t0=0.0, beta=1e-4, learn_inputs=False,
                 order: int = 2, initial_state: bool = False, v0=None, steps=None, retrace: bool = True):
        """Stacked echo (theory §9): :class:`StackEcho` ``(loss (B,), dtheta (B, n_θ), dx, round_trip (B,))``
        (``dx`` None unless ``learn_inputs``), and with ``initial_state`` also ``dq0, dp0 (B, NQ)``
        (:class:`StackEchoWithStart`; ``dv0`` with a velocity start), every unit's start
        gradient from its echoes' end points (theory §5); memory O(1) in K.

        ``order`` 2: every unit's echoes at ±β (centred contrast, error O(β²)); 4: at ±β and ±2β
        combined by Richardson (O(β⁴), theory §5); 1: at β and 0 (one-sided, O(β): what a physical
        system that runs one nudged echo per unit measures).

        ``retrace``: raise a :class:`NumericalError` when the nudged echoes did not come back to the start
        (:func:`symglep.diagnose.check_retrace`; ``symglep check`` measures the round trip itself)."""
        th, x, y, q0, p0 = self._args(theta, x, y, q0, p0, v0, t0, steps)
        beta = nudge(beta)
        order = contrast_order(True, order)
        out = self.module.gradient(th, q0, p0, x, y, time_step(dt, self.dt), start_time(t0), float(beta), order,
                                   bool(learn_inputs))
        if not all(np.all(np.isfinite(a)) for a in out[:2]):
            raise self._diverged("the stacked echo", (th, q0, p0, x, y, dt, t0))
        loss, dth, dx, trip, dq0, dp0, miss = out
        if retrace:
            rerun = lambda b: self.module.gradient(th, q0, p0, x, y, time_step(dt, self.dt), start_time(t0),  # noqa: E731
                                                   b, order, False)[6]
            check_retrace(miss, "midpoint" if self.stack.midpoint_units else "leapfrog", "stacked echo", rerun,
                          float(beta))
        dth, dq0, dp0 = self._through_velocity(th, x, q0, v0, t0, dth, dq0, dp0)
        dx = dx if learn_inputs else None  # not a (B, 1, 1) placeholder that broadcasts against x (probe)
        if initial_state:
            return StackEchoWithStart(loss, dth, dx, trip, dq0, dp0)
        return StackEcho(loss, dth, dx, trip)

    def _diverged(self, what: str, args=None) -> NumericalError:
        """One line for a non-finite result: a run that diverged, a start or parameters outside the model's
        domain (a distance between units at zero) or, with midpoint units, a Newton iteration that did not
        converge; ``args`` ``(th, q0, p0, x, y, dt, t0)``: where the free run first fails."""
        newton = (f", or the Newton iteration of a midpoint unit ({', '.join(map(str, self.stack.midpoint_units))}) "
                  "did not converge" if self.stack.midpoint_units else "")
        where = self._where(*args) if args is not None else ""
        advice = dt_advice(where, f" (the free run or an echo diverged{newton}, or the start or parameters leave the "
                                  "model's domain: reduce dt, or check them)")
        return NumericalError(f"{what} produced a non-finite value{where}{advice}", what)

    def _where(self, th, q0, p0, x, y, dt, t0) -> str:
        """Where the free run first leaves the finite numbers (step, sequence, time, and the state's size
        just before); '' when it stays finite (the failure is then in an echo)."""
        dt = time_step(dt, self.dt)
        tq, tp = self.module.free(th, q0, p0, x, y, dt, start_time(t0), True)[3:5]
        return where_not_finite(tq, tp, start_time(t0), dt)

    def complex_step_gradient(self, theta, x, y, q0=None, p0=None, dt=None, t0=0.0, eps: float = 1e-20,
                              learn_inputs=False, initial_state: bool = False, v0=None, steps=None,
                              retrace: bool = True):
        """The stacked echo nudged by ±iε in complex arithmetic (theory §5, §9; digital only): every
        contrast is ``Im X(iε) / ε``, exact to round-off. Returns what :meth:`gradient` returns."""
        th, x, y, q0, p0 = self._args(theta, x, y, q0, p0, v0, t0, steps)
        nudge = complex_nudge(eps)
        if self._complex is None:
            cache, jit = self.options
            digest = stack_hash(self.stack, complex_step=True)
            self._complex, _ = kernel_cache.load(f"stack_{self.stack.name}_complex", digest,
                                                 lambda: render_stack(self.stack, digest, complex_step=True),
                                                 cache=cache, jit=jit)
        loss, dth, dx, trip, dq0, dp0, miss = self._complex.gradient(th, q0, p0, x, y, time_step(dt, self.dt),
                                                                     start_time(t0), nudge, 2, bool(learn_inputs))
        dth, dx = np.ascontiguousarray(dth.real), np.ascontiguousarray(dx.real)
        if not (np.all(np.isfinite(loss)) and np.all(np.isfinite(dth))):
            raise self._diverged("the complex-step stacked echo")
        if retrace:
            check_retrace(miss, "midpoint" if self.stack.midpoint_units else "leapfrog", "complex-step stacked echo")
        dth, dq0, dp0 = self._through_velocity(th, x, q0, v0, t0, dth, np.ascontiguousarray(dq0.real),
                                               np.ascontiguousarray(dp0.real))
        dx = dx if learn_inputs else None
        if initial_state:
            return StackEchoWithStart(loss, dth, dx, trip, dq0, dp0)
        return StackEcho(loss, dth, dx, trip)

    def bptt_gradient(self, theta, x, y, q0=None, p0=None, dt=None, t0=0.0, initial_state: bool = False,
                      v0=None, steps=None, learn_inputs: bool = True):
        """Reference: BPTT through the stack, :class:`StackBPTT` ``(loss, dtheta, dx)`` and with ``initial_state``
        also ``dq0, dp0`` (:class:`StackBPTTWithStart`, read by name; ``dv0`` with a velocity start); O(K)
        memory. ``learn_inputs`` is taken for the interface of :meth:`gradient` (a call may pass the same
        keywords to both): BPTT always gives ``dx``."""
        th, x, y, q0, p0 = self._args(theta, x, y, q0, p0, v0, t0, steps)
        loss, dth, dx, dq0, dp0 = self.module.bptt_gradient(th, q0, p0, x, y, time_step(dt, self.dt), start_time(t0))
        if not (np.all(np.isfinite(loss)) and np.all(np.isfinite(dth))):
            raise self._diverged("BPTT through the stack")
        dth, dq0, dp0 = self._through_velocity(th, x, q0, v0, t0, dth, dq0, dp0)
        return StackBPTTWithStart(loss, dth, dx, dq0, dp0) if initial_state else StackBPTT(loss, dth, dx)
