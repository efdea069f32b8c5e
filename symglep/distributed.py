"""Data-parallel gradients over a Dask distributed cluster (optional extra ``dask``).

A batch of sequences is cut into contiguous chunks, one per worker thread; each
worker receives the system (a Model, an array model, a Stack, or a model file path),
compiles it once with ``symglep.compile`` (from the kernel cache) and returns the per-sequence losses and gradients of its chunk. The chunks are
concatenated back in sequence order, so the caller reduces exactly the arrays
the local path computes: per-sequence results do not depend on which batch a
sequence shares a kernel call with, and the parameters come out bit-identical.
"""

from __future__ import annotations

import re
import threading

import numpy as np

from .errors import SymglepError
from .extras import require
from .learners import compile_kernels, learner_for
from .loader import load_system

_LEARNERS: dict = {}
_LOCK = threading.Lock()  # one kernel call at a time per worker process (Numba's default threading layer)


#: ``[scheme://]host:port`` (an IPv6 host in brackets), what ``--scheduler`` takes
ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+]*://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")


def checked_address(address) -> str:
    """``address`` when it reads as a scheduler address ``[scheme://]host:port``, else a one-line error
    (before Dask tries it: a malformed address fails inside Dask's client after a 20 s timeout)."""
    match = ADDRESS.match(address) if isinstance(address, str) else None
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise SymglepError(f"--scheduler must be an address like tcp://host:8786, got {address!r}")
    return address


def connect(address: str, timeout: float = 10):
    """A ``dask.distributed.Client`` for the scheduler at ``address`` (e.g. ``tcp://host:8786``)."""
    distributed = require("dask.distributed", "dask", "--scheduler")
    try:
        return distributed.Client(checked_address(address), timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SymglepError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _learner(system, integrator: str):
    """The learner over the compiled kernels of ``system`` (or a model file path), once per worker process."""
    key = (system if isinstance(system, str) else id(system), integrator)
    if key not in _LEARNERS:
        loaded = load_system(system) if isinstance(system, str) else system
        _LEARNERS[key] = learner_for(loaded, compile_kernels(loaded, integrator))
    return _LEARNERS[key]


def chunk_gradients(system, integrator, estimator, beta, theta, u, y, q0, x0, start_velocity, dt, t0):
    """Worker task: per-sequence ``(loss, dθ)`` of one chunk (:meth:`symglep.learners.Learner.gradients`)."""
    with _LOCK:
        return _learner(system, integrator).gradients(estimator, beta, theta, u, y, q0, x0, start_velocity, dt, t0)


class DaskGradient:
    """Same interface as :class:`symglep.training.LocalGradient`, computed by the cluster's workers."""

    def __init__(self, client, model, integrator: str, dataset, estimator: str, beta: float):
        self.client, self.model, self.integrator = client, model, integrator
        self.data, self.estimator, self.beta = dataset, estimator, beta
        self.workers = max(1, sum(client.nthreads().values()))
        [self.model_future] = client.scatter([model], broadcast=True)

    def __call__(self, theta: np.ndarray, index: np.ndarray):
        d = self.data
        chunks = [c for c in np.array_split(index, min(self.workers, len(index))) if len(c)]
        futures = [
            self.client.submit(chunk_gradients, self.model_future, self.integrator, self.estimator, self.beta,
                               theta, d.u[c], d.y[c], d.q0[c], d.x0[c], d.start_velocity, d.dt, d.t0, pure=False)
            for c in chunks
        ]
        results = self.client.gather(futures)
        loss = np.concatenate([r[0] for r in results])
        dtheta = np.concatenate([r[1] for r in results], axis=0)
        return loss, dtheta

    def close(self) -> None:
        self.client.close()
