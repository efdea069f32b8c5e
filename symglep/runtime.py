"""``symglep.compile``: generate, cache, import and call the Numba kernels.

The kernel module of a model lives in a real file (so Numba's ``cache=True``
works) in ``<cache>/<name>-<hash>/kernels.py``; the hash covers the model,
the options, the templates and the generators, so an unchanged model is
neither re-derived nor recompiled. The cache folder defaults to
``$SYMGLEP_CACHE_DIR``, else ``$XDG_CACHE_HOME/symglep``, else ``~/.cache/symglep``.

Array conventions (documented again on :class:`Kernels`): parameters by name
or as a vector in declaration order; ``q0`` and ``p0``/``v0`` ``(B, n)``;
inputs ``(B, K+1, n_u)``; targets ``(B, K+1, n_y)``. Node ``k`` sits at
``t0 + k·dt``. The loss of a batch is the sum of the per-sequence losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cache as kernel_cache
from . import diagnose
from .diagnose import NumericalError, check_retrace
from .errors import SymglepError
from .estimators import complex_nudge, contrast_order
from .codegen.numba_source import content_hash, generate_source, kernel_options
from .derivation import derive
from .dissipation import damping_rate_at, non_variational_note, warn_anti_damping
from .model import Model
from .parameter_values import values_by_name
from .routes import LABELS, ROUTES
from .run_arguments import nudge, real_array, start_time, step_count, time_step
from .symmetry import odd_terms_text


class NotReversibleError(SymglepError):
    """The echo needs time-reversal symmetry that the model lacks (theory §4)."""


class NoExactRouteError(SymglepError):
    """No exact echo or PFVP rule applies (non-variational dissipation, theory §7)."""


def compile_model(model: Model, target: str = "numba", integrator: str = "auto", dt: float = 0.01,
                  cache: str | None = None, warm: bool = False, newton_tol: float | None = None,
                  jit: bool = True) -> "Kernels":
    """Compiled kernels of a scalar ``model`` (free, echo, gradient, bptt_gradient, nudged, tangent, energy).

    ``dt`` is the default step of the returned :class:`Kernels`; every call can override it.
    ``newton_tol`` replaces the midpoint rule's Newton stopping step (default 1e-13, relative to
    ``1 + |q|``, then one polishing iteration); a loose value makes the step map inexact and
    breaks its time reversal, which the failure-mode study measures (docs/experiments).
    Each kernel compiles (or loads from Numba's cache) on its first call, under a lock on the
    cache entry, so concurrent processes never compile the same kernel twice
    (:mod:`symglep.kernel_module`); ``warm=True`` compiles every kernel now. ``jit=False`` runs the same generated code as plain Python (slow; for
    debugging and for the fuzz tests).
    """
    if not isinstance(model, Model):
        raise SymglepError(f"compile() needs a symglep.Model, got {type(model).__name__}")
    digest = content_hash(model, target, kernel_options(integrator, newton_tol))
    module = kernel_cache.loaded(digest, jit)
    if module is not None:
        return Kernels(model, module, dt, digest, (integrator, newton_tol, cache, jit))
    time_step(dt, None)
    module, generated = kernel_cache.load(
        model.name, digest, lambda: generate_source(model, integrator, target, digest, newton_tol)[0], cache=cache,
        jit=jit, warm=(lambda mod: Kernels(model, mod, dt, digest).warm_up()) if warm else None)
    kernels = Kernels(model, module, dt, digest, (integrator, newton_tol, cache, jit))
    kernels.generated_source = generated
    return kernels


def load_complex_step(model: Model, integrator: str, newton_tol, cache, jit: bool):
    """The complex-step kernel module of ``model`` (generated, cached and compiled like the real one,
    on first use only; :class:`~symglep.codegen.printer.NotAnalyticError` for non-analytic maths)."""
    options = kernel_options(integrator, newton_tol, complex_step=True)
    digest = content_hash(model, "numba", options)
    module, _ = kernel_cache.load(
        model.name + "_complex", digest,
        lambda: generate_source(model, integrator, "numba", digest, newton_tol, complex_step=True)[0],
        cache=cache, jit=jit)
    return module


def _first(outputs) -> tuple:
    """The first sequence of each batched output."""
    return tuple(a[0] for a in outputs)


def _one_value(value, name: str) -> float:
    """One parameter's value given by name: a real number."""
    arr = real_array(value, f"parameter {name}")
    if arr.size != 1:
        raise SymglepError(f"parameter {name} takes one number, got shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def _require_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise SymglepError(f"{name} holds a non-finite value (first at index {where})")




@dataclass
class Result:
    """Outputs of a gradient computation (per sequence unless said otherwise)."""

    loss: np.ndarray            # (B,)
    dtheta: np.ndarray          # (B, n_theta)
    dq0: np.ndarray             # (B, n)
    dx0: np.ndarray             # (B, n): dC/dp0, or dC/dv0 for a velocity start
    du: np.ndarray | None       # (B, K+1, n_u) or None
    route: str = "bptt"         # how it was computed: echo, flipped_echo, digital_pfvp, naive_echo, bptt

    @property
    def label(self) -> str:
        """The route in words, e.g. digital PFVP's "exact on a computer, not forward-only in hardware"."""
        return LABELS[self.route]

    @property
    def dtheta_total(self) -> np.ndarray:
        """Gradient of the summed batch loss."""
        return self.dtheta.sum(axis=0)


class Kernels:
    """Compiled kernels of one model.

    Shapes: ``theta`` a mapping name → value or a vector (declaration order);
    ``q0`` and ``p0``/``v0`` ``(B, n)`` (or ``(n,)`` for one sequence);
    ``u`` ``(B, K+1, n_u)``, ``y`` ``(B, K+1, n_y)``; ``K`` steps of ``dt``.
    """

    def __init__(self, model: Model, module, dt: float, digest: str, options: tuple = ("auto", None, None, True)):
        self.model = model
        self.module = module
        self.options = options  # (integrator, newton_tol, cache, jit) it was compiled with
        self._complex = None    # the complex-step module, loaded on first use
        self.dt = time_step(dt, None)
        self.digest = digest
        self.integrator = module.INTEGRATOR
        self.n, self.n_theta, self.n_u, self.n_y = module.N, module.N_THETA, module.N_U, module.N_Y
        self.generated_source = False  # True when this call wrote the kernel file (not found in the cache)

    def warm_up(self) -> None:
        """Compile every kernel once on a tiny problem (results discarded)."""
        mod = self.module
        th = np.ones(self.n_theta)
        q0 = np.full((1, self.n), 0.1)
        x0 = np.zeros((1, self.n))
        u = np.zeros((1, 2, self.n_u))
        y = np.zeros((1, 2, self.n_y))
        try:
            self._warm_calls(mod, th, q0, x0, u, y, 0.01, 0.0)
        except (NumericalError, ValueError):  # compiled already; a tiny problem may still divide by zero
            pass

    def _warm_calls(self, mod, th, q0, x0, u, y, h, t0) -> None:
        for start_velocity in (False, True):
            mod.free(th, q0, x0, start_velocity, u, y, h, t0, False)
            for digital in (False, True):
                mod.gradient(th, q0, x0, start_velocity, u, y, h, t0, 1e-4, 2, False, th, digital)
            mod.bptt_gradient(th, q0, x0, start_velocity, u, y, h, t0)
            mod.nudged(th, q0, x0, start_velocity, u, y, h, t0, np.zeros(2), False)
            mod.tangent(th, q0, x0, start_velocity, u, y, h, t0)
        mod.echo(th, th, q0, x0, u, y, h, t0, np.zeros(2), False)
        mod.pfvp_backward(th, q0, x0, u, y, h, t0, np.zeros(2), False)
        if hasattr(mod, "energy"):
            mod.energy(th, np.zeros((1, 2, self.n)), np.zeros((1, 2, self.n)), u, h, t0)

    # -- argument handling ---------------------------------------------------
    def theta(self, params) -> np.ndarray:
        names = [s.name for s in self.model.parameters]
        if isinstance(params, dict):
            keys = values_by_name(params, names)
            vec = np.array([_one_value(keys[n], n) for n in names], dtype=np.float64)
        else:
            vec = real_array(params, "the parameter values").reshape(-1)
            if vec.shape != (len(names),):
                raise SymglepError(f"expected {len(names)} parameter values ({', '.join(names)}), got {vec.size}")
        if not np.all(np.isfinite(vec)):
            raise SymglepError("parameter values must be finite")
        return vec

    def _state(self, x, name: str, batch: int | None) -> np.ndarray:
        arr = real_array(x, name)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.n:
            raise SymglepError(f"{name} must have shape (B, {self.n}), got {np.shape(x)}")
        if arr.shape[0] == 0:
            raise SymglepError(f"{name} holds no sequence (B = 0): give at least one row")
        if batch is not None and arr.shape[0] != batch:
            raise SymglepError(f"{name} has {arr.shape[0]} sequences, expected {batch}")
        _require_finite(arr, name)
        return np.ascontiguousarray(arr)

    def _series(self, x, name: str, width: int, batch: int, steps: int | None) -> np.ndarray:
        steps = step_count(steps)
        if x is None:
            if steps is None:
                raise SymglepError(f"{name} missing: pass it, or pass steps=K")
            return np.zeros((batch, steps + 1, width))
        arr = real_array(x, name)
        if arr.ndim == 2 and batch == 1:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] != batch or arr.shape[2] != width:
            raise SymglepError(f"{name} must have shape ({batch}, K+1, {width}), got {np.shape(x)}")
        if arr.shape[1] < 2:
            raise SymglepError(f"{name} needs at least 2 time nodes (K >= 1)")
        step_count(steps, arr.shape[1], name)
        _require_finite(arr, name)
        return np.ascontiguousarray(arr)

    def _prepare(self, theta, q0, p0, v0, u, y, steps):
        if (p0 is None) == (v0 is None):
            raise SymglepError("give exactly one of p0 (initial momentum) or v0 (initial velocity)"
                               + ("; a scalar model's kernels take (theta, q0, p0, v0, u, y, ...): pass u= and y= "
                                  "by keyword" if p0 is not None else ""))
        q0 = self._state(q0, "q0", None)
        batch = q0.shape[0]
        x0 = self._state(p0 if p0 is not None else v0, "p0" if p0 is not None else "v0", batch)
        u = self._series(u, "inputs u", self.n_u, batch, steps)
        y = self._series(y, "targets y", self.n_y, batch, u.shape[1] - 1 if y is None else None)
        if y.shape[1] != u.shape[1]:
            raise SymglepError(f"inputs have {u.shape[1]} time nodes but targets {y.shape[1]}")
        return self.theta(theta), q0, x0, v0 is not None, u, y

    def _end_state(self, qT, pT, betas, u, y, steps):
        """Checked arguments of a pass that starts from a final state (the echo, the digital PFVP)."""
        qT = self._state(qT, "qT", None)
        pT = self._state(pT, "pT", qT.shape[0])
        u = self._series(u, "inputs u", self.n_u, qT.shape[0], steps)
        y = self._series(y, "targets y", self.n_y, qT.shape[0], u.shape[1] - 1 if y is None else None)
        if y.shape[1] != u.shape[1]:
            raise SymglepError(f"inputs have {u.shape[1]} time nodes but targets {y.shape[1]}")
        return qT, pT, u, y, np.atleast_1d(np.asarray(betas, dtype=np.float64))

    def _check(self, status, residual, what: str, steps: int | None = None, second: str = "echo"):
        """A :class:`NumericalError` for the first sequence whose Newton solve failed. ``steps``: the kernel ran
        a free pass then a ``second`` one, and its status counts on across both (``K + s``: step s of the second)."""
        bad = np.nonzero(status >= 0)[0]
        if bad.size:
            b = int(bad[0])
            at = int(status[b])
            if steps is None:
                where = f"at step {at}"
            elif at < steps:
                where = f"in the free pass, at step {at} of {steps}"
            elif second == "adjoint":  # the adjoint reports the step it solves, k -> k + 1
                where = f"in the adjoint pass, at the step from node {at - steps} to {at - steps + 1} of {steps}"
            else:  # the echo and backward passes count their steps from the final time
                where = f"in the {second} pass, at its step {at - steps} of {steps} (counted from the final time)"
            detail = (f"residual {residual[b]:.3e}" if residual[b] > 0 else  # it stopped at a singular Jacobian
                      "its Jacobian is singular there: a singular mass matrix, e.g. a coordinate at a singular point")
            start = " (the start itself may sit on such a point)" if at == 0 else ""
            raise NumericalError(
                f"{what}: Newton iteration of the midpoint rule did not converge {where} of sequence {b} "
                f"({detail}); reduce dt, or, where the run meets a point at which the mass matrix is singular "
                f"(symglep derive names them: a pole of the coordinates, a fold of the momentum map, the edge of "
                f"the real domain){start}, move the start or the parameters away from it: a smaller dt does not "
                "cure that", what, b, at)

    def _check_retrace(self, status, miss, what: str, rerun=None, beta: float | None = None) -> None:
        """:func:`check_retrace` of the sequences that completed (status -1); ``rerun(beta)`` the kernel's
        (status, miss) at another nudge."""
        def completed(status, miss):
            return np.where(status < 0, miss, 0.0)

        again = None if rerun is None else (lambda b: completed(*rerun(b)))
        check_retrace(completed(status, miss), self.integrator, what, again, beta)

    # -- locating NaN and overflow (symglep.diagnose) ---------------------------
    @staticmethod
    def _non_finite(*outputs) -> list:
        """Sequences (leading axis) whose outputs hold NaN or infinity."""
        bad = np.zeros(outputs[0].shape[0], dtype=bool)
        for a in outputs:
            if a is not None and a.ndim >= 1:
                bad |= ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
        return [int(b) for b in np.nonzero(bad)[0]]

    def _free_failure(self, phase, th, q0, x0, sv, u, y, h, t0, b):
        """The located error if the free run of sequence ``b`` is not finite, else ``None``; a velocity start whose
        momentum ∂L/∂v is not finite is named as outside the model's domain (a probe: v0 > c of a relativistic
        kinetic term was reported as a NaN at step 1 with "reduce dt")."""
        if sv:
            start = self.module.free(th, q0[b:b + 1], x0[b:b + 1], sv, u[b:b + 1, :1], y[b:b + 1, :1], h, t0, False)[1]
            if not np.all(np.isfinite(start)):
                return NumericalError(
                    f"{phase}: the start of sequence {b} lies outside the model's real domain: the momentum "
                    f"p0 = dL/dv at q0 = {diagnose.vector_text(q0[b])}, v0 = {diagnose.vector_text(x0[b])} is "
                    f"{diagnose.vector_text(start[0])} (e.g. the square root of a negative number); give a start where "
                    "L and its momenta are real (symglep derive prints the model's domain)", phase, b, 0)

        def run(m):
            out = self.module.free(th, q0[b:b + 1], x0[b:b + 1], sv, u[b:b + 1, :m + 1], y[b:b + 1, :m + 1],
                                   h, t0, False)
            return _first(out[:3])

        if diagnose.all_finite(*run(u.shape[1] - 1)):
            return None
        return diagnose.forward_failure(phase, b, u.shape[1] - 1, h, t0, run)

    def _echo_failure(self, phase, th, th_echo, qT, pT, u, y, h, t0, betas, learn_inputs, b, digital=False):
        """The located error if the echo (or, ``digital``, the backward PFVP) from ``(qT, pT)`` of one
        sequence is not finite, else ``None``."""
        K = u.shape[0] - 1
        betas = np.asarray(betas, dtype=np.float64)

        def run(j):
            if digital:
                out = self.module.pfvp_backward(th, qT[None], pT[None], u[None, j:], y[None, j:], h, t0 + j * h,
                                                betas, bool(learn_inputs))
            else:
                out = self.module.echo(th, th_echo, qT[None], pT[None], u[None, j:], y[None, j:], h, t0 + j * h,
                                       betas, bool(learn_inputs))
            return _first(out[:4])

        if diagnose.all_finite(*run(0)):
            return None
        return diagnose.backward_failure(phase, b, K, h, t0, run, lambda j: run(j)[:2])

    def _adjoint_failure(self, th, q0, x0, sv, u, y, h, t0, b):
        """The located error of a BPTT whose forward pass is finite: the adjoint sweep overflowed."""
        K = u.shape[0] - 1
        _, _, _, tq, tp = self.free(th, q0[None], **{"v0" if sv else "p0": x0[None]}, u=u[None], y=y[None],
                                    dt=h, t0=t0, record=True)

        def run(j):
            out = self.module.bptt_gradient(th, tq[:, j].copy(), tp[:, j].copy(), False, u[None, j:], y[None, j:],
                                            h, t0 + j * h)
            return _first(out[:5])

        return diagnose.backward_failure("BPTT, adjoint pass", b, K, h, t0, run, lambda j: (tq[0, j], tp[0, j]))

    def echo_parameters(self, th: np.ndarray) -> np.ndarray:
        """The echo's parameters: ``th`` with the signs of ``ECHO_FLIP`` reversed (theory §4)."""
        out = np.array(th, dtype=np.float64)
        for i in self.module.ECHO_FLIP:
            out[i] = -out[i]
        return out

    def route(self, route: str = "auto", naive_echo: bool = False) -> str:
        """The route a gradient takes (``symglep.routes``); refuses routes that are not exact.

        ``auto`` picks the model's default exact route (echo, flipped echo, or digital PFVP); the
        naive echo runs only with ``naive_echo=True`` (or ``route="naive_echo"`` with it).
        """
        mod = self.module
        if route not in ("auto",) + ROUTES:
            raise SymglepError(f"unknown route {route!r}; choose auto or one of {', '.join(ROUTES)}")
        if naive_echo and route in ("auto", "naive_echo"):
            if mod.TIME_REVERSIBLE and not mod.DAMPED:  # the naive echo would be the exact echo (theory §4)
                raise SymglepError(f"model {self.model.name!r}: the plain echo is exact (L even in the velocities, "
                                   "no Rayleigh force), never naive; drop naive_echo=True (--naive-echo)")
            return "naive_echo"
        if route == "naive_echo":
            raise SymglepError("the naive echo is biased for models without time-reversal symmetry; "
                               "ask for it explicitly with naive_echo=True (--naive-echo)")
        if route == "auto":
            route = mod.DEFAULT_ROUTE
            if route is None:
                raise self._no_route_error()
        if route == "bptt":
            return route
        if mod.DAMPED:
            raise self._no_route_error()
        if route == "echo" and not mod.TIME_REVERSIBLE:
            raise self._not_reversible_error()
        if route == "flipped_echo" and not mod.ECHO_FLIP:
            if mod.TIME_REVERSIBLE:
                raise SymglepError(f"model {self.model.name!r} is time-reversible: it needs no flipped echo; "
                                   "use the plain echo (--route echo; route='echo' from Python)")
            raise self._not_reversible_error()
        return route

    def _derivation(self):
        return derive(self.model, simplify="none")

    def _not_reversible_error(self) -> NotReversibleError:
        d = self._derivation()
        terms = odd_terms_text(d.sym.breaking_terms)
        if d.sym.flip:
            flip = ", ".join(f"{s} -> -{s}" for s in d.sym.flip)
            fix = (f"flipping {flip} restores the symmetry: use route='flipped_echo' (--route flipped_echo: the "
                   f"echo with {flip}, exact), route='auto' or BPTT (bptt_gradient, --estimator bptt)")
        else:
            fix = (f"{d.sym.flip_note}; use route='digital_pfvp' (--route digital_pfvp: exact on a computer, not "
                   "forward-only in hardware) or BPTT (bptt_gradient, --estimator bptt)")
        return NotReversibleError(
            f"model {self.model.name!r} is not time-reversible: the term(s) {terms} are odd in velocity, so the "
            f"plain echo would not retrace the free run (theory §4); {fix}")

    def _no_route_error(self) -> NoExactRouteError:
        return NoExactRouteError(f"model {self.model.name!r}: {non_variational_note(self.model.rayleigh.why)}; "
                                 "use bptt_gradient")

    def _require_reversible(self):
        """Refuse the plain echo on a model that lacks time-reversal symmetry (theory §4)."""
        self.route("echo")

    # -- kernels ---------------------------------------------------------------
    def free(self, theta, q0, p0=None, v0=None, u=None, y=None, steps=None, dt=None, t0=0.0, record=False):
        """Free phase. Returns ``(qT, pT, loss[, traj_q, traj_p])`` (trajectories ``(B, K+1, n)``)."""
        th, q0, x0, sv, u, y = self._prepare(theta, q0, p0, v0, u, y, steps)
        h, t0 = time_step(dt, self.dt), start_time(t0)
        qT, pT, loss, tq, tp, status, res = self.module.free(th, q0, x0, sv, u, y, h, t0, bool(record))
        self._check(status, res, "free phase")
        for b in self._non_finite(qT, pT, loss):
            raise self._free_failure("free phase", th, q0, x0, sv, u, y, h, t0, b)
        return (qT, pT, loss, tq, tp) if record else (qT, pT, loss)

    def echo(self, theta, qT, pT, betas, u=None, y=None, steps=None, dt=None, t0=0.0, learn_inputs=False,
             naive_echo=False):
        """Echo phase from the flipped final state for each β in ``betas`` (theory §4–5); with a
        terminal cost the start is kicked, ``(qT, −pT − β ∂c_T/∂q)`` (theory §10).

        On a model with a reversing flip the echo runs with the flipped parameters (theory §4);
        a model with no exact echo is refused unless ``naive_echo``.
        Returns ``(sigma, pi, G, Gu)``.
        """
        route = self.route("auto", naive_echo)
        if route == "digital_pfvp":
            raise self._not_reversible_error()
        th = self.theta(theta)
        th_echo = self.echo_parameters(th) if route == "flipped_echo" else th
        qT, pT, u, y, betas = self._end_state(qT, pT, betas, u, y, steps)
        h, t0 = time_step(dt, self.dt), start_time(t0)
        out = self.module.echo(th, th_echo, qT, pT, u, y, h, t0, betas, bool(learn_inputs))
        self._check(out[4], out[5], "echo")
        for b in self._non_finite(*out[:4]):
            raise self._echo_failure("echo", th, th_echo, qT[b], pT[b], u[b], y[b], h, t0, betas,
                                     learn_inputs, b)
        return out[:4]

    def pfvp_backward(self, theta, qT, pT, betas, u=None, y=None, steps=None, dt=None, t0=0.0,
                      learn_inputs=False):
        """Digital PFVP (theory §4): the nudged runs integrated backward from the free final state.

        Exact on a computer, not forward-only in hardware. Returns ``(q0, p0, G, Gu)``: the nudged
        runs' initial states ``(B, nb, n)`` and ``G = −Σ ∂θL_d`` along them.
        """
        if self.module.DAMPED:
            raise self._no_route_error()
        th = self.theta(theta)
        qT, pT, u, y, betas = self._end_state(qT, pT, betas, u, y, steps)
        h, t0 = time_step(dt, self.dt), start_time(t0)
        out = self.module.pfvp_backward(th, qT, pT, u, y, h, t0, betas, bool(learn_inputs))
        self._check(out[4], out[5], "digital PFVP")
        for b in self._non_finite(*out[:4]):
            raise self._echo_failure("digital PFVP", th, th, qT[b], pT[b], u[b], y[b], h, t0, betas,
                                     learn_inputs, b, digital=True)
        return out[:4]

    def gradient(self, theta, q0, p0=None, v0=None, u=None, y=None, steps=None, dt=None, t0=0.0,
                 beta=1e-4, centred=True, learn_inputs=False, route="auto", naive_echo=False,
                 order: int | None = None, retrace: bool = True) -> Result:
        """Contrastive estimate of the gradient (theory §5) by an exact route (see :meth:`route`).

        ``order``: 2 the centred contrast (echoes at ±β, error O(β²)), 1 the one-sided one (O(β)),
        4 the Richardson contrast of the echoes at ±β and ±2β (O(β⁴), theory §5); by default 2,
        or 1 when ``centred`` is false.

        ``route``: ``auto`` (the model's exact route), ``echo``, ``flipped_echo`` (theory §4),
        ``digital_pfvp`` (exact on a computer, not forward-only in hardware) or ``bptt``;
        ``naive_echo=True`` runs the plain echo even where it is biased. ``Result.route`` says
        which route ran. ``retrace``: raise a :class:`NumericalError` when the echoes did not come back to the
        start (:meth:`_check_retrace`; ``symglep check`` measures the round trip itself).
        """
        route = self.route(route, naive_echo)
        if route == "bptt":
            return self.bptt_gradient(theta, q0, p0, v0, u, y, steps, dt, t0)
        th, q0, x0, sv, u, y = self._prepare(theta, q0, p0, v0, u, y, steps)
        beta = nudge(beta)
        order = contrast_order(centred, order)
        centred = order != 1
        h, t0 = time_step(dt, self.dt), start_time(t0)
        th_echo = self.echo_parameters(th) if route == "flipped_echo" else th
        digital = route == "digital_pfvp"
        out = self.module.gradient(th, q0, x0, sv, u, y, h, t0, float(beta), int(order), bool(learn_inputs),
                                   th_echo, digital)
        what = "digital PFVP gradient" if digital else "echo gradient"
        self._check(out[5], out[6], what, u.shape[1] - 1, "backward" if digital else "echo")
        if retrace and route != "naive_echo":
            rerun = lambda b: self.module.gradient(th, q0, x0, sv, u, y, h, t0, b, int(order), False,  # noqa: E731
                                                   th_echo, digital)[5:7]
            self._check_retrace(out[5], out[6], what, rerun, beta)
        for b in self._non_finite(*out[:5]):
            free = self._free_failure(f"{what}, free phase", th, q0, x0, sv, u, y, h, t0, b)
            if free is not None:
                raise free
            qT, pT, _ = self.free(th, q0[b:b + 1], **{"v0" if sv else "p0": x0[b:b + 1]}, u=u[b:b + 1],
                                  y=y[b:b + 1], dt=h, t0=t0)
            betas = np.array([beta, -beta if centred else 0.0])
            back = self._echo_failure(f"{what}, {'backward' if digital else 'echo'} phase", th, th_echo, qT[0],
                                      pT[0], u[b], y[b], h, t0, betas, learn_inputs, b, digital)
            raise back or NumericalError(f"{what}: non-finite gradient of sequence {b} although the free "
                                         "and backward passes are finite (the difference quotient overflowed)")
        warn_anti_damping(damping_rate_at(self.model, th), (u.shape[1] - 1) * h)
        return Result(out[0], out[1], out[2], out[3], out[4] if learn_inputs else None, route)

    def complex_step_gradient(self, theta, q0, p0=None, v0=None, u=None, y=None, steps=None, dt=None, t0=0.0,
                              eps: float = 1e-20, learn_inputs=False, route="auto", naive_echo=False,
                              retrace: bool = True) -> Result:
        """The complex-step echo (theory §5; digital only): the echo nudged by β = iε in complex
        arithmetic, ``dC/dθ = Im G(iε) / ε`` -- no difference of nearly equal numbers, so ε can be
        1e-20 and the estimate is the discrete gradient to round-off, in O(1) memory in K.

        The kernels come from a second, complex-safe module (NumPy ufuncs in the model functions,
        complex work arrays), generated and compiled on the first call; a model whose maths is not analytic
        (abs, max, piecewise, ...) is refused with one line. ``route`` and ``retrace`` as in :meth:`gradient`
        (its real part must come back to the start within 1e-6 of the state's size: the round-off that grew
        along a long or chaotic run is in the gradient too, tens of times larger).
        """
        route = self.route(route, naive_echo)
        if route == "bptt":
            return self.bptt_gradient(theta, q0, p0, v0, u, y, steps, dt, t0)
        nudge = complex_nudge(eps)
        th, q0, x0, sv, u, y = self._prepare(theta, q0, p0, v0, u, y, steps)
        if self._complex is None:
            self._complex = load_complex_step(self.model, *self.options)
        h, t0 = time_step(dt, self.dt), start_time(t0)
        th_echo = self.echo_parameters(th) if route == "flipped_echo" else th
        digital = route == "digital_pfvp"
        # order 1 with beta = i eps: (G(i eps) - G(0)) / (i eps), whose real part is Im G(i eps) / eps
        out = self._complex.gradient(th, q0, x0, sv, u, y, h, t0, nudge, 1, bool(learn_inputs), th_echo, digital)
        what = "complex-step echo gradient"
        self._check(out[5], out[6], what, u.shape[1] - 1, "backward" if digital else "echo")
        if retrace and route != "naive_echo":
            self._check_retrace(out[5], out[6], what)
        real = [np.ascontiguousarray(a.real) for a in out[:5]]
        for b in self._non_finite(*real):
            raise NumericalError(f"{what}: non-finite gradient of sequence {b}; run gradient() or "
                                 "bptt_gradient() on it to locate the overflow")
        return Result(real[0], real[1], real[2], real[3], real[4] if learn_inputs else None, route)

    def bptt_gradient(self, theta, q0, p0=None, v0=None, u=None, y=None, steps=None, dt=None, t0=0.0) -> Result:
        """Reference gradient by the discrete adjoint of the same integrator (O(K) memory)."""
        th, q0, x0, sv, u, y = self._prepare(theta, q0, p0, v0, u, y, steps)
        h, t0 = time_step(dt, self.dt), start_time(t0)
        out = self.module.bptt_gradient(th, q0, x0, sv, u, y, h, t0)
        self._check(out[5], out[6], "BPTT", u.shape[1] - 1, "adjoint")
        for b in self._non_finite(*out[:5]):
            raise (self._free_failure("BPTT, forward pass", th, q0, x0, sv, u, y, h, t0, b)
                   or self._adjoint_failure(th, q0[b], x0[b], sv, u[b], y[b], h, t0, b))
        return Result(out[0], out[1], out[2], out[3], out[4], "bptt")

    def energy(self, theta, traj_q, traj_p, u=None, dt=None, t0=0.0):
        """``H`` along recorded trajectories, ``(B, K+1)``; ``None`` without a closed-form Hamiltonian."""
        if not hasattr(self.module, "energy"):
            return None
        tq = np.ascontiguousarray(traj_q, dtype=np.float64)
        tp = np.ascontiguousarray(traj_p, dtype=np.float64)
        if tq.ndim != 3 or tq.shape[2] != self.model.n or tq.shape[1] < 1:
            raise SymglepError(f"traj_q must have shape (B, K+1, {self.model.n}), got {tq.shape}")
        if tp.shape != tq.shape:
            raise SymglepError(f"traj_p must have the shape of traj_q, {tq.shape}, got {tp.shape}")
        u = (np.zeros(tq.shape[:2] + (self.n_u,)) if u is None
             else self._series(u, "inputs u", self.n_u, tq.shape[0], None))
        if u.shape[1] != tq.shape[1]:
            raise SymglepError(f"inputs u have {u.shape[1]} time nodes but the trajectories {tq.shape[1]}")
        return self.module.energy(self.theta(theta), tq, tp, u, time_step(dt, self.dt), start_time(t0))

    def nudged(self, theta, q0, betas, p0=None, v0=None, u=None, y=None, steps=None, dt=None, t0=0.0,
               learn_inputs=False):
        """Nudged runs forward from the same start, one per β (CIVP bulk, theory §3).

        Returns ``(qT, pT, G, Gu)`` with ``qT, pT (B, nb, n)`` and ``G = −Σ ∂θL_d (B, nb, n_θ)``.
        """
        th, q0, x0, sv, u, y = self._prepare(theta, q0, p0, v0, u, y, steps)
        betas = np.atleast_1d(np.asarray(betas, dtype=np.float64))
        h, t0 = time_step(dt, self.dt), start_time(t0)
        out = self.module.nudged(th, q0, x0, sv, u, y, h, t0, betas, bool(learn_inputs))
        self._check(out[4], out[5], "nudged run")
        for b in self._non_finite(*out[:4]):
            run = lambda m: self.module.nudged(th, q0[b:b + 1], x0[b:b + 1], sv, u[b:b + 1, :m + 1],  # noqa: E731
                                               y[b:b + 1, :m + 1], h, t0, betas, bool(learn_inputs))[:4]
            raise diagnose.forward_failure("nudged run", b, u.shape[1] - 1, h, t0, lambda m: _first(run(m)))
        return out[:4]

    def tangent(self, theta, q0, p0=None, v0=None, u=None, y=None, steps=None, dt=None, t0=0.0):
        """Forward sensitivities of the free run: ``(qT, pT, dq_dtheta, dp_dtheta)``, the last two ``(B, n_θ, n)``."""
        th, q0, x0, sv, u, y = self._prepare(theta, q0, p0, v0, u, y, steps)
        h, t0 = time_step(dt, self.dt), start_time(t0)
        out = self.module.tangent(th, q0, x0, sv, u, y, h, t0)
        self._check(out[4], out[5], "tangent run")
        for b in self._non_finite(*out[:4]):
            run = lambda m: self.module.tangent(th, q0[b:b + 1], x0[b:b + 1], sv, u[b:b + 1, :m + 1],  # noqa: E731
                                                y[b:b + 1, :m + 1], h, t0)[:4]
            raise diagnose.forward_failure("tangent run", b, u.shape[1] - 1, h, t0, lambda m: _first(run(m)))
        return out[:4]
