"""Per-sequence losses and gradients of one batch by a named estimator (theory §5, §8).

``echo`` is the centred contrast (3 passes, O(β²) bias), ``echo-one-sided`` the one-sided
one (2 passes, O(β)), ``echo4`` the Richardson contrast of the echoes at ±β and ±2β (run
together in one pass, O(β⁴)), ``echo-complex`` the complex-step echo (β = iε in complex
arithmetic, exact to round-off; digital only, no β to choose), ``bptt`` the discrete adjoint
of the same integrator (the reference).
Training and the Dask workers both call :func:`sequence_gradients`.
"""

from __future__ import annotations

import numpy as np

from .errors import SymglepError

ESTIMATORS = ("echo", "echo-one-sided", "echo4", "echo-complex", "bptt")
# order of each contrast (Kernels.gradient's ``order``): its bias is O(β^order)
ORDERS = {"echo": 2, "echo-one-sided": 1, "echo4": 4}
# estimators without a nudge strength β to choose
NO_BETA = ("echo-complex", "bptt")


def contrast_order(centred: bool, order: int | None) -> int:
    """The ``order`` a gradient kernel takes: ``order`` when given (1, 2 or 4), else 2 (centred) or
    1 (one-sided) from ``centred``; one-line error for any other order."""
    order = (2 if centred else 1) if order is None else order
    if order not in (1, 2, 4):
        raise SymglepError(f"the contrast's order must be 1 (one-sided), 2 (centred) or 4 (Richardson), got {order!r}")
    return order


def complex_nudge(eps: float) -> complex:
    """The imaginary nudge ``iε`` of the complex-step echo (theory §5); one-line error unless
    ``0 < ε ≤ 1e-6`` (a larger ε brings back an O(ε²) bias)."""
    if not (np.isfinite(eps) and 0 < eps <= 1e-6):
        raise SymglepError(f"the complex step eps must be in (0, 1e-6], got {eps}")
    return 1j * float(eps)


def sequence_gradients(kernels, estimator: str, beta: float, theta, u, y, q0, x0, start_velocity: bool,
                       dt: float, t0: float = 0.0, with_start: bool = False, with_inputs: bool = False) -> tuple:
    """Per-sequence ``(loss (b,), dθ (b, n_θ))`` of one batch by ``estimator`` (theory §5, §8);
    ``with_start`` adds ``dC/dq0`` and ``dC/dp0`` (or ``dC/dv0``), each ``(b, n)``; ``with_inputs``
    then ``dC/du (b, K+1, n_u)``, the same contrast of ``∂V/∂u``."""
    start = {"v0" if start_velocity else "p0": x0}
    if estimator == "bptt":
        r = kernels.bptt_gradient(theta, q0, u=u, y=y, dt=dt, t0=t0, **start)
    elif estimator == "echo-complex":
        r = kernels.complex_step_gradient(theta, q0, u=u, y=y, dt=dt, t0=t0, learn_inputs=with_inputs, **start)
    else:
        r = kernels.gradient(theta, q0, u=u, y=y, dt=dt, t0=t0, beta=beta, order=ORDERS[estimator],
                             learn_inputs=with_inputs, **start)
    out = (r.loss, r.dtheta) + ((r.dq0, r.dx0) if with_start else ())
    return out + (r.du,) if with_inputs else out
