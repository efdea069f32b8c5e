"""Training a stack: the one trainer of :mod:`symglep.training` on the ``sine`` task (theory §9).

:func:`train_stack` and :func:`sine_data` are the stack's Python entry points of before;
both run the kind-generic code (:mod:`symglep.tasks`, :mod:`symglep.learners`), so a stack
trains exactly as ``symglep train STACK_FILE`` does (docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFileError
from ..loader import load_system, split_spec
from ..tasks import SineTask, sine_task
from ..training import train
from .model import Stack
from .runtime import StackKernels


@dataclass
class StackTrainResult:
    """Loss per epoch (the mean loss of the data set before each epoch's update, then the final
    loss) and the final parameters."""

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
    """The ``sine`` task of a stack (:func:`symglep.tasks.sine_task`): returns
    ``(x, y, start parameters, teacher parameters)``."""
    data, start = sine_task(stack, kernels, seed, dt, SineTask(sequences, steps, dt, omega, amplitude))
    teacher = np.array([data.info["teacher"][name] for name in stack.parameter_names])
    return data.u, data.y, np.asarray(start, dtype=np.float64), teacher


def train_stack(stack: Stack, epochs: int = 400, lr: float | None = 0.05, seed: int = 0, beta: float = 1e-4,
                estimator: str = "echo", dt: float = 0.05, steps: int = 400, sequences: int = 8,
                progress: bool = False, cache: str | None = None, optimizer: str = "adam") -> StackTrainResult:
    """Train ``stack`` on the sine task, full batch (:func:`symglep.training.train`); ``estimator``
    ``echo`` (the stacked echo, theory §9) or ``bptt``."""
    result = train(stack, SineTask(sequences, steps, dt), epochs=epochs, lr=lr, optimizer=optimizer, seed=seed,
                   beta=beta, estimator=estimator, dt=dt, cache=cache, progress=bool(progress))
    info = dict(result.settings, seconds=result.seconds)
    return StackTrainResult(result.loss_history + [result.final_loss], result.theta, result.names, info)


def load_stack(spec: str, name: str = "stack") -> Stack:
    """Run a model file and return its ``stack`` object (``path.py:NAME`` picks another name)."""
    path, obj = split_spec(spec)
    system = load_system(f"{path}:{obj if ':' in str(spec) else name}")
    if not isinstance(system, Stack):
        raise ModelFileError(f"{path}: {obj if ':' in str(spec) else name!r} is a {type(system).__name__}, "
                             "not a symglep.Stack")
    return system
