"""Training a stack on the ``sine`` task (as ``symglep.tasks``), full batch with Adam."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import SymglepError
from .model import Stack
from .runtime import StackKernels, compile_stack


@dataclass
class StackTrainResult:
    """Loss per epoch (the summed loss of the batch, before each update) and the final parameters."""

    losses: list
    theta: np.ndarray
    names: list
    info: dict = field(default_factory=dict)

    @property
    def factor(self) -> float:
        """Initial loss over final loss."""
        return self.losses[0] / self.losses[-1]


def sine_data(stack: Stack, kernels: StackKernels, seed: int = 0, sequences: int = 8, steps: int = 400,
              dt: float = 0.05, omega: float = 0.8, amplitude: float = 0.5):
    """The ``sine`` task for a stack (as ``symglep.tasks``): a sine drive with a random phase per
    sequence; the targets are what a teacher stack (parameters drawn from the seed) puts on the top
    unit's readout (``∂c/∂y = 0``). Returns ``(x, y, start parameters, teacher parameters)``."""
    from ..tasks import readout_map

    top = stack.units[-1]
    readout = readout_map(top)
    rng = np.random.default_rng(seed)
    teacher = stack.draw_parameters(rng)
    start = stack.draw_parameters(rng)
    phases = rng.uniform(0.0, 2 * np.pi, sequences)
    t = np.arange(steps + 1) * dt
    drive = amplitude * np.sin(omega * t[None, :] + phases[:, None])
    x = np.ascontiguousarray(np.repeat(drive[:, :, None], kernels.n_x, axis=2))
    _, _, _, tq, _, tu = kernels.free(teacher, x, dt=dt, record=True)
    qo = sum(u.n for u in stack.units[:-1])
    uo = sum(len(u.u) for u in stack.units[:-1])
    y = np.ascontiguousarray(readout(tq[:, :, qo:], tu[:, :, uo:], t[None, :]))
    if not np.all(np.isfinite(y)):
        raise SymglepError(f"the teacher run of the sine task diverged for stack {stack.name!r} (dt = {dt})")
    return x, y, start, teacher


def train_stack(stack: Stack, epochs: int = 400, lr: float | None = 0.05, seed: int = 0, beta: float = 1e-4,
                estimator: str = "echo", dt: float = 0.05, steps: int = 400, sequences: int = 8,
                progress=None, cache: str | None = None, optimizer: str = "adam") -> StackTrainResult:
    """Train ``stack`` on the sine task, full batch (Adam by default; ``lr=None``: the optimiser's
    default); ``estimator`` ``echo`` (the stacked echo, theory §9) or ``bptt``."""
    import time

    from ..optim import make_optimizer

    if estimator not in ("echo", "bptt"):
        raise SymglepError(f"unknown estimator {estimator!r}; choose echo or bptt")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise SymglepError(f"epochs must be a positive integer, got {epochs!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise SymglepError(f"dt must be a positive number, got {dt!r}")
    kernels = compile_stack(stack, dt=dt, cache=cache)
    x, y, theta, teacher = sine_data(stack, kernels, seed, sequences, steps, dt)
    opt = make_optimizer(optimizer, lr, theta.size)
    start = time.perf_counter()
    losses = []
    for epoch in range(epochs):
        if estimator == "echo":
            loss, g = kernels.gradient(theta, x, y, beta=beta)[:2]
        else:
            loss, g = kernels.bptt_gradient(theta, x, y)[:2]
        losses.append(float(loss.sum()))
        if progress is not None:
            progress(epoch, losses[-1])
        theta = opt.step(theta, g.sum(axis=0))
    losses.append(float(kernels.free(theta, x, y)[2].sum()))
    return StackTrainResult(losses, theta, stack.parameter_names,
                            {"task": "sine", "estimator": estimator, "beta": beta, "dt": dt, "steps": steps,
                             "sequences": sequences, "seed": seed, "teacher": teacher.tolist(),
                             "optimizer": optimizer, "lr": opt.lr, "seconds": time.perf_counter() - start})


def load_stack(spec: str, name: str = "stack") -> Stack:
    """Run a model file and return its ``stack`` object (``path.py:NAME`` picks another name)."""
    import runpy

    from ..errors import ModelFileError
    from ..loader import split_spec

    path, obj = split_spec(spec)
    obj = obj if ":" in str(spec) else name
    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    try:
        namespace = runpy.run_path(path, run_name="__symglep_model__")
    except SymglepError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    except Exception as exc:
        raise ModelFileError(f"{path} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(namespace.get(obj), Stack):
        raise ModelFileError(f"{path} defines no symglep.Stack named {obj!r}")
    return namespace[obj]
