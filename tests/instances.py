"""Reproducible problem instances of the bundled models, and models shared by several test files."""

import zlib

import numpy as np
import sympy as sp

from symglep.check import draw_parameters, smooth_signal
from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, j, r


def scalar_instance(kern, name: str, batch: int = 1, steps: int = 300, dt: float = 0.01) -> tuple:
    """``(theta, q0, p0, u, y)`` for ``batch`` sequences of ``steps`` steps, seeded by ``name``."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    th = kern.theta(draw_parameters(kern.model, rng))
    q0 = rng.uniform(-0.3, 0.3, (batch, kern.n))
    p0 = rng.uniform(-0.3, 0.3, (batch, kern.n))
    times = np.arange(steps + 1) * dt
    u = np.stack([smooth_signal(rng, times, kern.n_u, 0.2) for _ in range(batch)])
    y = np.stack([smooth_signal(rng, times, kern.n_y, 0.3) for _ in range(batch)])
    return th, q0, p0, u, y


def exact_route_kernels(path: str, name: str, dt: float) -> tuple:
    """``(kernels, route)`` of a bundled model with an exact gradient route (theory §4); skips the test
    for a model without one (non-variational damping: BPTT is the only reference)."""
    import pytest

    import symglep
    from symglep.errors import SymglepError

    kern = symglep.compile(symglep.load_model(path), dt=dt)
    try:
        return kern, kern.route("auto", False)
    except SymglepError as exc:
        pytest.skip(f"{name}: {exc}")


def stack_instance(stack, kernels, steps: int = 300) -> tuple:
    """``(theta, x, y, q0, p0)``: the sine task of tests/test_stack.py (two sequences of ``steps`` steps)
    from a seeded random start state."""
    from symglep.stack.training import sine_data

    x, y, theta, _ = sine_data(stack, kernels, seed=1, sequences=2, steps=steps)
    rng = np.random.default_rng(3)
    q0, p0 = rng.uniform(-0.3, 0.3, (2, stack.n)), rng.uniform(-0.2, 0.2, (2, stack.n))
    return theta, x, y, q0, p0


def terminal_cell(size=4, terminal=True, running=True):
    """Duffing units with learned masses and dense couplings; a running and a terminal cost (the array
    cell of tests/test_network_cells.py and tests/test_stack_cells.py: one model, so one kernel module,
    whatever the size)."""
    q = Coordinates("q")
    W = Parameter("W", ("n", "n"))
    B = Parameter("B", ("n", "m"))
    m = Parameter("m", "n", positive=True)
    u = Inputs("u")
    y = Targets("y")
    return ArrayModel(
        lagrangian=(Sum(m[i] * q.dot[i] ** 2 / 2, i) - Sum(q[i] ** 2 / 2 + q[i] ** 4 / 8, i)
                    + Sum(W[i, j] * sp.tanh(q[i]) * sp.tanh(q[j]) / 2, i, j) + Sum(q[i] * (B @ u)[i], i)),
        cost=Sum((q[r] - y[r]) ** 2 / 4 if running else 0 * q[r], r), terminal_cost=Sum(sp.log(sp.cosh(q[r] - y[r])), r) if terminal else None,
        coordinates=q, parameters=[W, B, m], inputs=u, targets=y, name=("terminal_cell" if terminal else "cell") + ("" if running else "_heb"),
        size=size,
        sizes={"m": 2, "r": 2})
