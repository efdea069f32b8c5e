"""Optimisers for ``symglep train``: plain gradient descent and Adam, as small numpy classes.

Each optimiser maps ``(θ, g)`` to the next ``θ`` and keeps its own state, which
:meth:`state` returns as JSON-ready lists (floats round-trip exactly through
JSON) and :meth:`load` restores, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import numpy as np

from .errors import SymglepError

DEFAULT_LR = {"sgd": 0.01, "adam": 0.05}


class SGD:
    """``θ ← θ − lr·g``."""

    name = "sgd"

    def __init__(self, lr: float, n: int):
        self.lr = float(lr)
        self.n = n

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return theta - self.lr * grad

    def state(self) -> dict:
        return {}

    def load(self, state: dict) -> None:
        pass


class Adam:
    """Adam (Kingma & Ba 2015): moment estimates ``m``, ``v`` with bias correction."""

    name = "adam"

    def __init__(self, lr: float, n: int, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps
        self.n = n
        self.m = np.zeros(n)
        self.v = np.zeros(n)
        self.t = 0

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        return theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict:
        return {"m": self.m.tolist(), "v": self.v.tolist(), "t": self.t}

    def load(self, state: dict) -> None:
        try:
            m = np.asarray(state["m"], dtype=np.float64)
            v = np.asarray(state["v"], dtype=np.float64)
            t = int(state["t"])
        except (KeyError, TypeError, ValueError):
            raise SymglepError("the saved Adam state needs lists 'm', 'v' and a step count 't'") from None
        if m.shape != (self.n,) or v.shape != (self.n,):
            raise SymglepError(f"the saved Adam state has {m.size} moments, the model {self.n} parameters")
        self.m, self.v, self.t = m, v, t


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float | None, n: int):
    """The optimiser ``name`` for ``n`` parameters (``lr`` defaults per optimiser, :data:`DEFAULT_LR`)."""
    if name not in OPTIMIZERS:
        raise SymglepError(f"unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else lr
    if not (np.isfinite(lr) and lr > 0):
        raise SymglepError(f"the learning rate must be a positive number, got {lr}")
    return OPTIMIZERS[name](lr, n)
