"""Training a stack on the ``sine`` task (as ``symglep.tasks``), full batch with Adam."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..command_options import TrainOptions
from ..errors import ModelFileError, SymglepError
from ..fileio import write_atomic
from ..loader import load_system, split_spec
from ..optim import make_optimizer
from ..tasks import readout_map
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
    path, obj = split_spec(spec)
    system = load_system(f"{path}:{obj if ':' in str(spec) else name}")
    if not isinstance(system, Stack):
        raise ModelFileError(f"{path}: {obj if ':' in str(spec) else name!r} is a {type(system).__name__}, "
                             "not a symglep.Stack")
    return system


def train_command(stack: Stack, opts: TrainOptions) -> tuple:
    """``symglep train STACK_FILE``: the sine task, full batch, by the stacked echo or BPTT
    (options a stack does not serve are refused by its capabilities first); returns
    ``(lines to print, {label: loss history}, plot title)`` and writes ``--save``."""
    if opts.epochs < 1:
        raise SymglepError("a stack needs --epochs >= 1")

    def show(epoch, loss):
        if not opts.quiet and (epoch % 20 == 0 or epoch == opts.epochs - 1):
            print(f"epoch {epoch:4d}  loss {loss:.6e}", file=sys.stderr, flush=True)

    result = train_stack(stack, epochs=opts.epochs, lr=opts.lr, optimizer=opts.optimizer, seed=opts.seed,
                         beta=opts.beta, estimator=opts.estimator, dt=opts.dt or 0.05, progress=show)
    first, last = result.losses[0], result.losses[-1]
    how = "stacked echo, theory sec. 9" if opts.estimator == "echo" else "BPTT through the stack"
    lines = [f"stack {stack.name}: {opts.estimator} gradient ({how}), {opts.optimizer}, "
             f"{opts.epochs} epochs, {result.info['seconds']:.1f} s",
             f"loss {first:.6e} -> {last:.6e} (x{first / last:.3g} lower)"]
    lines += [f"  {name} = {value:.10g}" for name, value in zip(result.names, result.theta)]
    if opts.save_path:
        write_atomic(opts.save_path, json.dumps({"stack": stack.name, "parameters": dict(zip(result.names,
                     map(float, result.theta))), "loss_history": result.losses, "settings": result.info},
                     indent=2) + "\n")
    return lines, {opts.estimator: result.losses}, f"{stack.name}: sine"
