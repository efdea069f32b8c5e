"""Compiling and calling the kernels of an array model (docs/networks.md).

The kernel module is cached exactly like a scalar model's (``symglep.runtime``:
cache folder, atomic write, checksum, lock); n, the inputs, the readout units and
the edge list are run-time sizes, so one compiled module serves every n.

Shapes: ``theta`` a mapping name → array of the parameter's shape (``W`` (n, n),
``b`` (n,), edge values (n_e,), scalars); ``q0``, ``p0`` ``(B, n)`` (``(B, n, D)`` for
vector coordinates); ``u`` ``(B, K+1, m)``, ``y`` ``(B, K+1, n_y)``. The start is a momentum
``p0`` or a velocity ``v0`` (exactly one): ``p0 = m v0``, and with learned masses the gradient
takes the PFVP correction of theory §3, §5 (``(∂p0/∂θ)ᵀ dC/dp0``); ``dC/dv0 = m dC/dp0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import cache as kernel_cache
from ..diagnose import NumericalError, check_retrace, dt_advice, where_not_finite
from ..dissipation import warn_anti_damping
from ..errors import SymglepError
from ..estimators import complex_nudge, contrast_order
from ..parameter_values import values_by_name
from ..run_arguments import nudge, real_array, start_time, step_count, time_step
from .model import ArrayModel, readout_units
from .render import content_hash, render_network

def kernel_options(complex_step: bool = False, integrator: str = "leapfrog") -> dict:
    options = {"integrator": integrator, "target": "numba-network"}
    if complex_step:
        options["complex_step"] = 1
    return options


def generate_source(model: ArrayModel, digest: str | None = None, complex_step: bool = False,
                    integrator: str = "auto") -> str:
    """The kernel module of ``model`` (derive once, print, render); ``complex_step``: the complex-safe
    variant of the complex-step echo (theory §5); ``integrator``: ``auto`` (the model's own) or one its
    capability table serves (theory §6)."""
    integrator = model.integrator_for(integrator)
    digest = digest or content_hash(model, kernel_options(complex_step, integrator))
    return render_network(model, digest, complex_step, integrator)


def compile_array_model(model: ArrayModel, dt: float = 0.01, cache: str | None = None, warm: bool = False,
                        jit: bool = True, integrator: str = "auto") -> "NetworkKernels":
    """Compiled kernels of an array model, cached on disk (:func:`symglep.cache.load`, as scalar models);
    each kernel compiles on its first call, or all of them now with ``warm``. ``integrator``: ``auto``
    (leapfrog, or the midpoint rule of a mass that reads the position) or ``midpoint`` (theory §6)."""
    if not isinstance(model, ArrayModel):
        raise SymglepError(f"expected a symglep.network.ArrayModel, got {type(model).__name__}")
    time_step(dt, None)
    integrator = model.integrator_for(integrator)
    digest = content_hash(model, kernel_options(False, integrator))
    module, generated = kernel_cache.load(model.name, digest,
                                          lambda: generate_source(model, digest, integrator=integrator),
                                          cache=cache, jit=jit,
                                          warm=(lambda mod: NetworkKernels(model, mod, dt).warm_up()) if warm else None)
    kernels = NetworkKernels(model, module, dt, (cache, jit))
    kernels.generated_source = generated
    return kernels


@dataclass
class NetworkResult:
    """Gradients of one batch (per sequence): ``dtheta[name]`` ``(B, *shape)``; ``dq0``, ``dp0`` like ``q0``.

    ``dv0``: ``dC/dv0`` for a velocity start (else ``None``; ``dp0`` is then ``dC/dp0`` at ``p0 = m v0``);
    ``du``: ``dC/du`` ``(B, K+1, m)`` when asked (``learn_inputs=True``), else ``None``.
    """

    loss: np.ndarray
    dtheta: dict
    dq0: np.ndarray
    dp0: np.ndarray
    flat: np.ndarray  # (B, n_theta) in the kernel's flat layout
    dv0: np.ndarray | None = None
    du: np.ndarray | None = None

    def total(self, name: str) -> np.ndarray:
        """Gradient of the summed batch loss with respect to parameter ``name``."""
        return self.dtheta[name].sum(axis=0)


class NetworkKernels:
    """Compiled kernels of one array model; n, m, n_y and the edges come from the arrays passed."""

    def __init__(self, model: ArrayModel, module, dt: float, options: tuple = (None, True)):
        self.model, self.module, self.dt = model, module, time_step(dt, None)
        self.D = module.D
        self.generated_source = False
        self.options = options  # (cache, jit) it was compiled with
        self._complex = None    # the complex-step module, loaded on first use

    # -- arguments -------------------------------------------------------------
    def edges(self, n: int, edges=None) -> np.ndarray:
        return self.model.edge_list(n, edges)

    def pack(self, theta, n: int, m: int, ne: int):
        """``(th, off)``: the parameters flattened in declaration order, and their offsets."""
        if not isinstance(theta, dict):
            raise SymglepError("parameters of an array model are given as {name: array}")
        keys = values_by_name(theta, [p.name for p in self.model.parameters])
        parts, off, pos = [], [], 0
        for p in self.model.parameters:
            shape = self.model.parameter_shape(p, n, m, ne)
            arr = real_array(keys[p.name], f"parameter {p.name}")
            if arr.shape != shape:
                sizes = f"n = {n} units (from q0), m = {m} input channels (from u), {ne} edges"
                raise SymglepError(f"parameter {p.name} must have shape {shape} at {sizes}, got {arr.shape}: "
                                   "the parameters or the arrays they act on have the wrong size")
            if not np.all(np.isfinite(arr)):
                raise SymglepError(f"parameter {p.name} holds a non-finite value")
            parts.append(arr.reshape(-1))
            off.append(pos)
            pos += arr.size
        th = np.concatenate(parts) if parts else np.zeros(0)
        return np.ascontiguousarray(th), np.asarray(off, dtype=np.int64)

    def unpack(self, flat: np.ndarray, n: int, m: int, ne: int) -> dict:
        out, pos = {}, 0
        for p in self.model.parameters:
            shape = self.model.parameter_shape(p, n, m, ne)
            size = int(np.prod(shape)) if shape else 1
            out[p.name] = flat[:, pos:pos + size].reshape((flat.shape[0],) + shape)
            pos += size
        return out

    def _state(self, x, name):
        arr = real_array(x, name)
        if self.D > 1 and arr.ndim == 3:
            arr = arr.reshape(arr.shape[0], -1)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] % self.D:
            raise SymglepError(f"{name} must have shape (B, n)" + (f" or (B, n, {self.D})" if self.D > 1 else ""))
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise SymglepError(f"{name} holds no sequence or no unit (shape {arr.shape}): give at least one of each")
        if not np.all(np.isfinite(arr)):
            raise SymglepError(f"{name} holds a non-finite value")
        return np.ascontiguousarray(arr)

    def _series(self, x, name, batch, steps, width):
        steps = step_count(steps)
        if x is None:
            if steps is None:
                raise SymglepError(f"{name} missing: pass it, or pass steps=K")
            return np.zeros((batch, steps + 1, width))
        arr = real_array(x, name)
        if arr.ndim != 3 or arr.shape[0] != batch or arr.shape[1] < 2:
            raise SymglepError(f"{name} must have shape ({batch}, K+1, channels) with K >= 1, got {arr.shape}")
        step_count(steps, arr.shape[1], name)
        if not np.all(np.isfinite(arr)):
            raise SymglepError(f"{name} holds a non-finite value")
        return np.ascontiguousarray(arr)

    def rate(self, th, off) -> float:
        """The damping rate γ at the flat parameters ``th`` (learned, or the module's constant; theory §7)."""
        k = self.module.RATE_PARAM
        return float(th[off[k]]) if k >= 0 else float(self.module.RATE)

    def start_weight(self, t0: float, th, off) -> float:
        """``∂p/∂v`` per unit mass at the start: ``e^{γ t0}`` for a damped model (theory §7), else 1."""
        return float(np.exp(self.rate(th, off) * start_time(t0)))

    def prepare(self, theta, q0, p0=None, u=None, y=None, steps=None, edges=None, readout=None, v0=None, t0=0.0):
        """Checked kernel arguments ``(th, off, E, ro, q0, p0, u, y)`` and the sizes ``(n, m, ne)``.

        With ``v0`` instead of ``p0`` the momentum is ``p0 = m v0`` (theory §5; damped, ``e^{γ t0} m v0``).
        """
        t0 = start_time(t0)  # a string or NaN: one line, as every kind says it
        if (p0 is None) == (v0 is None):
            raise SymglepError("give exactly one of p0 (initial momentum) or v0 (initial velocity)")
        q0 = self._state(q0, "q0")
        x0 = self._state(p0 if v0 is None else v0, "p0" if v0 is None else "v0")
        if x0.shape != q0.shape:
            raise SymglepError(f"{'p0' if v0 is None else 'v0'} has shape {x0.shape}, q0 {q0.shape}")
        B, n = q0.shape[0], q0.shape[1] // self.D
        if u is None and steps is None and y is not None and np.ndim(y) == 3:
            steps = np.shape(y)[1] - 1  # the targets fix K: the inputs (none, or not given) are zero
        u = self._series(u, "inputs u", B, steps, self.model.sizes["m"])
        y = self._series(y, "targets y", B, u.shape[1] - 1 if y is None else None, self.model.sizes["r"])
        if y.shape[1] != u.shape[1]:
            raise SymglepError(f"inputs have {u.shape[1]} time nodes but targets {y.shape[1]}")
        E = self.edges(n, edges)
        ro = readout_units(n, y.shape[2], readout)
        th, off = self.pack(theta, n, u.shape[2], E.shape[0])
        if v0 is not None:
            p0 = np.ascontiguousarray(x0 * self.start_masses(th, off, q0)[0] * self.start_weight(t0, th, off))
        else:
            p0 = x0
        return (th, off, E, ro, q0, p0, u, y), (n, u.shape[2], E.shape[0])

    def start_masses(self, th, off, q0):
        """``(m, dm/dq)`` per coordinate ``(B, n·D)`` at the start: the masses of every unit repeated over its
        components, and their position derivative (zero unless the mass reads the position)."""
        n = q0.shape[1] // self.D
        if self.module.INTEGRATOR == "midpoint":
            mu, dmu = self.module.masses_at(th, off, q0)
            return np.repeat(mu, self.D, axis=1), dmu
        mass = np.repeat(self.module.masses(th, off, n), self.D)[None]
        return np.broadcast_to(mass, q0.shape), np.zeros_like(q0)

    def _mass_vjp(self, th, off, q0, coef):
        if self.module.INTEGRATOR == "midpoint":
            return self.module.mass_vjp_at(th, off, q0, coef)
        return self.module.mass_vjp(th, off, coef)

    def _shape_state(self, a, n):
        return a.reshape(a.shape[0], n, self.D) if self.D > 1 else a

    # -- kernels ---------------------------------------------------------------
    def free(self, theta, q0, p0=None, u=None, y=None, steps=None, dt=None, record=False, edges=None, readout=None,
             v0=None, t0=0.0):
        """Free phase: ``(qT, pT, loss[, traj_q, traj_p])`` (flat trajectories ``(B, K+1, n·D)``);
        the loss includes a terminal cost (theory §10). Node k sits at ``t0 + k dt``."""
        args, (n, m, ne) = self.prepare(theta, q0, p0, u, y, steps, edges, readout, v0, t0)
        out = self.module.free(*args, time_step(dt, self.dt), start_time(t0), bool(record))
        _finite(out[:3], "free phase", self.module.INTEGRATOR, lambda: self._where(args, dt, t0))
        return out if record else out[:3]

    def gradient(self, theta, q0, p0=None, u=None, y=None, steps=None, dt=None, beta=1e-4, centred=True,
                 edges=None, readout=None, v0=None, learn_inputs=False, order: int | None = None,
                 t0=0.0, retrace: bool = True) -> NetworkResult:
        """Echo estimate (theory §5): 3 passes (centred) or 2 (one-sided), O(1) memory in K.

        ``order`` (as :meth:`symglep.runtime.Kernels.gradient`): 2 centred, 1 one-sided, 4 the
        Richardson contrast of the echoes at ±β and ±2β; by default 2, or 1 when not ``centred``.
        ``learn_inputs``: also ``du = dC/du`` ``(B, K+1, m)``, the same contrast of ``∂V/∂u``.
        ``retrace``: raise a :class:`NumericalError` when the echoes did not come back to the start
        (:func:`symglep.diagnose.check_retrace`; ``symglep check`` measures the round trip itself).
        """
        beta = nudge(beta)
        order = contrast_order(centred, order)
        args, sizes = self.prepare(theta, q0, p0, u, y, steps, edges, readout, v0, t0)
        h = time_step(dt, self.dt)
        out = self.module.gradient(*args, h, start_time(t0), float(beta), int(order), bool(learn_inputs))
        _finite(out[:5], "echo gradient", self.module.INTEGRATOR, lambda: self._where(args, dt, t0))
        if retrace:
            rerun = lambda b: self.module.gradient(*args, h, start_time(t0), b, int(order), False)[5]  # noqa: E731
            check_retrace(out[5], self.module.INTEGRATOR, "echo gradient", rerun, float(beta))
        warn_anti_damping(self.rate(args[0], args[1]), (args[6].shape[1] - 1) * h)
        return self._result(out[:5], sizes, args, v0, learn_inputs, t0)

    def complex_step_gradient(self, theta, q0, p0=None, u=None, y=None, steps=None, dt=None, eps: float = 1e-20,
                              edges=None, readout=None, v0=None, learn_inputs=False, t0=0.0,
                              retrace: bool = True) -> NetworkResult:
        """The complex-step echo (theory §5; digital only), as :meth:`symglep.runtime.Kernels.complex_step_gradient`:
        the echo nudged by β = iε in complex arithmetic, ``Im G(iε) / ε``, exact to round-off."""
        nudge = complex_nudge(eps)
        args, sizes = self.prepare(theta, q0, p0, u, y, steps, edges, readout, v0, t0)
        if self._complex is None:
            cache, jit = self.options
            integrator = self.module.INTEGRATOR
            digest = content_hash(self.model, kernel_options(True, integrator))
            self._complex, _ = kernel_cache.load(self.model.name + "_complex", digest,
                                                 lambda: generate_source(self.model, digest, True, integrator),
                                                 cache=cache, jit=jit)
        # order 1 with beta = i eps: (G(i eps) - G(0)) / (i eps), whose real part is Im G(i eps) / eps
        out = self._complex.gradient(*args, time_step(dt, self.dt), start_time(t0), nudge, 1, bool(learn_inputs))
        out = tuple(np.ascontiguousarray(a.real) for a in out)
        _finite(out[:5], "complex-step echo gradient", self.module.INTEGRATOR)
        if retrace:
            check_retrace(out[5], self.module.INTEGRATOR, "complex-step echo gradient")
        return self._result(out[:5], sizes, args, v0, learn_inputs, t0)

    def bptt_gradient(self, theta, q0, p0=None, u=None, y=None, steps=None, dt=None, edges=None,
                      readout=None, v0=None, learn_inputs=False, t0=0.0) -> NetworkResult:
        """Reference gradient: discrete adjoint of the same leapfrog (O(K) memory); ``du`` as in
        :meth:`gradient`."""
        args, sizes = self.prepare(theta, q0, p0, u, y, steps, edges, readout, v0, t0)
        out = self.module.bptt_gradient(*args, time_step(dt, self.dt), start_time(t0), bool(learn_inputs))
        _finite(out, "BPTT", self.module.INTEGRATOR, lambda: self._where(args, dt, t0))
        return self._result(out, sizes, args, v0, learn_inputs, t0)

    def echo(self, theta, qT, pT, betas, u=None, y=None, steps=None, dt=None, edges=None, readout=None, t0=0.0):
        """Echo phase from ``(qT, −pT − β ∂c_T/∂q)`` for each β (theory §4, §10): ``(sigma, pi, G)``,
        G flat ``(B, nb, n_θ)``; ``t0`` is the time of the free run's first node (the echo replays time
        reversed)."""
        args, _ = self.prepare(theta, qT, pT, u, y, steps, edges, readout, t0=t0)
        betas = np.atleast_1d(np.asarray(betas, dtype=np.float64))
        out = self.module.echo(*args, time_step(dt, self.dt), start_time(t0), betas)
        _finite(out, "echo", self.module.INTEGRATOR)
        return out

    def _where(self, args, dt, t0) -> str:
        """Where the free run from these arguments first leaves the finite numbers (the first NaN or infinity
        in its recorded states: the midpoint kernels leave NaN from a step that did not converge), with the
        state's size just before; empty when the free run stays finite (the failure is then in an echo)."""
        dt = time_step(dt, self.dt)
        _, _, _, tq, tp = self.module.free(*args, dt, start_time(t0), True)
        return where_not_finite(tq, tp, start_time(t0), dt)

    def _result(self, out, sizes, args, v0, learn_inputs, t0=0.0) -> NetworkResult:
        n = sizes[0]
        loss, flat, dq0, dp0, du = out
        dv0 = None
        if v0 is not None:  # p0 = g m(q0) v0: dC/dv0 = g m dC/dp0, dC/dtheta += (dp0/dtheta)^T dC/dp0,
            # dC/dq0 += (dp0/dq0)^T dC/dp0 when the mass reads the position (theory §3, §5, §7)
            th, off, q0 = args[0], args[1], args[4]
            g = self.start_weight(t0, th, off)
            v = self._state(v0, "v0").reshape(-1, n, self.D)
            coef = np.ascontiguousarray(g * (v * dp0.reshape(v.shape)).sum(axis=2))
            flat = flat + self._mass_vjp(th, off, q0, coef)
            mass, dmass = self.start_masses(th, off, q0)
            if self.module.RATE_PARAM >= 0:  # p0 = e^{γ t0} m v0: dp0/dγ = t0 p0
                flat[:, off[self.module.RATE_PARAM]] += start_time(t0) * (mass[:, ::self.D] * coef).sum(axis=1)
            dq0 = dq0 + dmass * np.repeat(coef, self.D, axis=1)
            dv0 = self._shape_state(dp0 * mass * g, n)
        return NetworkResult(loss, self.unpack(flat, *sizes), self._shape_state(dq0, n), self._shape_state(dp0, n),
                             flat, dv0, du if learn_inputs else None)

    def warm_up(self) -> None:
        """Compile every kernel once on a tiny problem (results discarded)."""
        n = 3
        theta = {p.name: np.full(self.model.parameter_shape(p, n, self.model.sizes["m"],
                                                            len(self.edges(n))), 0.1)
                 for p in self.model.parameters}
        q0 = (0.1 + 0.37 * np.arange(n * self.D, dtype=float))[None]  # distinct positions (no zero length)
        args, _ = self.prepare(theta, q0, np.zeros_like(q0), steps=1)
        mod = self.module
        mod.free(*args, 0.01, 0.0, False)
        mod.gradient(*args, 0.01, 0.0, 1e-4, True, False)
        mod.bptt_gradient(*args, 0.01, 0.0, False)
        mod.echo(*args, 0.01, 0.0, np.zeros(2))
        # energy, force and potential_partials (checks and reports only) compile on first use


def _finite(outputs, what: str, integrator: str = "leapfrog", where=None) -> None:
    """A one-line NumericalError when an output is not finite (overflow, or a midpoint step that did not
    converge: the midpoint kernels leave NaN in its sequence); ``where()`` says where the free run failed."""
    for a in outputs:
        if not np.all(np.isfinite(a)):
            cause = ("a midpoint step did not converge or a value overflowed" if integrator == "midpoint"
                     else "a non-finite value appeared")
            place = where() if where is not None else ""
            advice = dt_advice(place, " (reduce dt, or check the parameters, inputs and initial state)")
            raise NumericalError(f"{what}: {cause}{place}{advice}")
