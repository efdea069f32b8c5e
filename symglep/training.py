"""``symglep train``: gradient descent on a data set with the echo estimator (or BPTT).

Each epoch visits the ``S`` sequences of a :class:`~symglep.tasks.Dataset` in
batches (one batched kernel call each, so the sequences of a batch run in
parallel on the machine's cores). A batch of ``b`` sequences costs, with the
echo, one free pass and the two echoes of theory §5; its gradient is the mean of
the per-sequence gradients, summed in sequence order, and the optimiser
(:mod:`symglep.optim`) takes one step. The loss of an epoch is the mean
per-sequence loss of the free passes met during the epoch (with one batch per
epoch: the data set's loss at the epoch's starting parameters).

With ``scheduler=ADDRESS`` the batches are cut into contiguous chunks computed
by the workers of a Dask cluster (:mod:`symglep.distributed`); per-sequence
results are the same numbers either way and are reduced here in the same order,
so the two paths give bit-identical parameters.

:meth:`TrainResult.save` writes JSON (docs/training.md): the parameters, the
per-epoch ``loss_history``, the settings and the optimiser state, which
``resume=`` reloads to continue exactly where the run stopped.

With ``learn_initial_state`` the initial state is trainable too (HEB's setting,
docs/echo-family.md): ONE start ``(q0, p0)`` (``v0`` for a data set of velocity
starts) shared by every sequence, initialised from the data set's first sequence,
with its gradient from the echo's end state (theory §5) or from BPTT. The
optimiser works on the vector ``(θ, q0, p0)``; ``freeze_parameters`` drops ``θ``
from it (the parameters keep their start values), so only the start is learned.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .distributed import DaskGradient, connect
from .errors import SymglepError
from .estimators import ESTIMATORS, sequence_gradients
from .check import load_params
from .fileio import read_json_object, write_atomic
from .loader import load_model, split_spec
from .model import Model
from .optim import make_optimizer
from .runtime import compile_model
from .parameter_values import draw_parameters
from .tasks import Dataset, SineTask, TargetTask, load_npz, sine_task, target_task

FORMAT = "symglep-train/1"
DEFAULT_EPOCHS = 100


class LocalGradient:
    """Per-sequence losses and gradients of any subset of the data set, on this machine."""

    def __init__(self, kernels, dataset: Dataset, estimator: str, beta: float):
        self.kernels, self.data, self.estimator, self.beta = kernels, dataset, estimator, beta

    def __call__(self, theta: np.ndarray, index: np.ndarray, start=None):
        """``(loss, dθ)``; with ``start = (q0, x0)`` (one shared start, shape ``(n,)`` each) every
        sequence starts there and ``(loss, dθ, dq0, dx0)`` comes back."""
        d = self.data
        if start is None:
            return sequence_gradients(self.kernels, self.estimator, self.beta, theta, d.u[index], d.y[index],
                                      d.q0[index], d.x0[index], d.start_velocity, d.dt, d.t0)
        q0, x0 = (np.ascontiguousarray(np.broadcast_to(a, (len(index), a.size))) for a in start)
        return sequence_gradients(self.kernels, self.estimator, self.beta, theta, d.u[index], d.y[index],
                                  q0, x0, d.start_velocity, d.dt, d.t0, with_start=True)

    def close(self) -> None:
        pass


@dataclass
class TrainResult:
    """Outcome of :func:`train` (and the content of a ``--save`` file)."""

    model: str
    names: list
    theta: np.ndarray
    loss_history: list
    final_loss: float
    settings: dict
    optimizer_state: dict = field(default_factory=dict)
    seconds: float = 0.0
    initial_state: dict | None = None   # {"q0": [...], "p0" or "v0": [...]} when it was learned


    @property
    def parameters(self) -> dict:
        return dict(zip(self.names, map(float, self.theta)))

    @property
    def epochs(self) -> int:
        return len(self.loss_history)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model,
            "parameters": self.parameters,
            "loss_history": [float(x) for x in self.loss_history],
            "final_loss": float(self.final_loss),
            "epochs": self.epochs,
            "settings": self.settings,
            "optimizer_state": self.optimizer_state,
            **({"initial_state": self.initial_state} if self.initial_state is not None else {}),
        }

    def save(self, path: str) -> None:
        """Write the JSON file (atomically; floats round-trip exactly)."""
        write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str) -> "TrainResult":
        """Read a file written by :meth:`save`."""
        data = _read_json(path)
        if data.get("format") != FORMAT or not isinstance(data.get("parameters"), dict):
            raise SymglepError(f"{path} is not a symglep training file (no \"format\": \"{FORMAT}\")")
        try:
            names = list(data["parameters"])
            theta = np.array([float(data["parameters"][k]) for k in names])
            history = [float(x) for x in data.get("loss_history", [])]
            final = float(data.get("final_loss", math.nan))
            start = data.get("initial_state")
            if start is not None:
                start = {key: [float(x) for x in value] for key, value in dict(start).items()}
        except (TypeError, ValueError):
            raise SymglepError(f"{path}: parameters, losses and the initial state must be numbers") from None
        return cls(str(data.get("model", "")), names, theta, history, final, dict(data.get("settings", {})),
                   dict(data.get("optimizer_state", {})), initial_state=start)


def _read_json(path: str) -> dict:
    return read_json_object(path)


def _resume_state(resume, model: Model) -> TrainResult:
    """A previous run (a :class:`TrainResult`, a ``--save`` file, or a plain ``{name: value}`` file)."""
    if isinstance(resume, TrainResult):
        state = resume
    else:
        data = _read_json(str(resume))
        if data.get("format") == FORMAT:
            state = TrainResult.load(str(resume))
        else:
            params = load_params(str(resume), model)
            names = [s.name for s in model.parameters]
            state = TrainResult(model.name, names, np.array([params[n] for n in names]), [], math.nan, {})
    names = [s.name for s in model.parameters]
    if sorted(state.names) != sorted(names):
        raise SymglepError(f"the resumed parameters ({', '.join(state.names)}) are not those of model "
                           f"{model.name!r} ({', '.join(names)})")
    order = [state.names.index(n) for n in names]
    state.theta, state.names = np.asarray(state.theta, dtype=np.float64)[order], names
    return state


class Progress:
    """One self-rewriting stderr line: epoch, a bar and the running loss (plain lines when not a terminal)."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = max(1, total // 10)

    def update(self, done: int, epoch: int, loss: float) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * done / max(self.total, 1))
        line = f"epoch {epoch:>5} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} loss {loss:.6e}"
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif done % self.every == 0 or done == self.total:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _as_model(model) -> tuple[Model, str | None]:
    if isinstance(model, Model):
        return model, None
    if isinstance(model, str):
        path, name = split_spec(model)
        return load_model(model), f"{os.path.abspath(path)}:{name}"  # workers may run in another folder
    raise SymglepError(f"train() needs a symglep.Model or a model file path, got {type(model).__name__}")


def make_dataset(model: Model, kernels, task, seed: int, dt: float | None) -> tuple[Dataset, dict | None]:
    """``(dataset, start parameters or None)`` for ``task``: ``"sine"``, a ``.npz`` path or a Dataset."""
    if isinstance(task, Dataset):
        return task, None
    if isinstance(task, SineTask):
        return sine_task(model, kernels, seed, dt, task)
    if isinstance(task, TargetTask):
        return target_task(model, kernels, seed, dt, task)
    if task == "sine":
        return sine_task(model, kernels, seed, dt)
    if task == "target":
        return target_task(model, kernels, seed, dt)
    if isinstance(task, str):
        return load_npz(task, model, dt), None
    raise SymglepError(f"task must be 'sine', 'target', a DATA.npz path or a Dataset, got {task!r}")


def _start_key(data: Dataset) -> str:
    return "v0" if data.start_velocity else "p0"


def _resumed_start(state: "TrainResult", data: Dataset, n: int):
    """The learned initial state of a resumed run, ``(q0, x0)``; ``None`` when it holds none."""
    saved = state.initial_state
    if saved is None:
        return None
    key = _start_key(data)
    if set(saved) != {"q0", key} or any(len(saved[k]) != n for k in saved):
        raise SymglepError(f"the resumed initial state must hold 'q0' and '{key}' of {n} values each, "
                           f"got {', '.join(f'{k} ({len(v)})' for k, v in saved.items())}")
    return np.array(saved["q0"], dtype=np.float64), np.array(saved[key], dtype=np.float64)


def _prepare(model, spec, task, client, integrator, dt, cache, seed, estimator, beta, optimizer, lr, resume,
             learn_start, learn_theta):
    """Kernels, data set, start parameters and initial state, history, optimiser and gradient evaluator."""
    default_dt = TargetTask.dt if task == "target" or isinstance(task, TargetTask) else SineTask.dt
    kernels = compile_model(model, integrator=integrator, dt=dt or default_dt, cache=cache)
    if estimator != "bptt":
        kernels._require_reversible()
    data, start = make_dataset(model, kernels, task, seed, dt)
    history: list = []
    size = (len(model.parameters) if learn_theta else 0) + (2 * model.n if learn_start else 0)
    opt = make_optimizer(optimizer, lr, size)
    initial = (data.q0[0].copy(), data.x0[0].copy()) if learn_start else None
    if resume is not None:
        state = _resume_state(resume, model)
        theta, history = state.theta.copy(), list(state.loss_history)
        if learn_start:
            initial = _resumed_start(state, data, model.n) or initial
        if state.optimizer_state and state.settings.get("optimizer") == optimizer:
            opt.load(state.optimizer_state)
    else:
        theta = kernels.theta(start if start is not None else draw_parameters(model, np.random.default_rng(seed)))
    if client is not None:
        grad = DaskGradient(client, spec if spec is not None else model, integrator, data, estimator, beta)
    else:
        grad = LocalGradient(kernels, data, estimator, beta)
    return kernels, data, theta, initial, history, opt, grad


def train(model, task="sine", *, epochs: int | None = None, lr: float | None = None, optimizer: str = "adam",
          batch: int | None = None, beta: float = 1e-4, estimator: str = "echo", seed: int = 0,
          dt: float | None = None, resume=None, save: str | None = None, scheduler: str | None = None,
          progress: bool = False, integrator: str = "auto", cache: str | None = None,
          learn_initial_state: bool = False, freeze_parameters: bool = False) -> TrainResult:
    """Train the parameters of ``model`` on ``task`` (module docstring); returns a :class:`TrainResult`.

    ``model``: a :class:`~symglep.Model` or a model file path (``path.py[:NAME]``, needed by
    Dask workers in other processes). ``task``: ``"sine"``, a ``DATA.npz`` path or a
    :class:`~symglep.tasks.Dataset`. ``batch``: sequences per step (default: all).
    ``estimator``: ``echo`` (centred, theory §5), ``echo-one-sided`` or ``bptt``.
    ``resume``: a :class:`TrainResult`, a file saved by ``save=`` or a ``{name: value}`` JSON file.
    ``learn_initial_state``: train one shared start ``(q0, p0)`` as well (module docstring);
    ``freeze_parameters``: keep θ fixed (HEB: only the initial state is learned).
    """
    started = time.perf_counter()
    model, spec = _as_model(model)
    if estimator not in ESTIMATORS:
        raise SymglepError(f"unknown estimator {estimator!r}; available: {', '.join(ESTIMATORS)}")
    if not (math.isfinite(beta) and beta != 0):
        raise SymglepError(f"beta must be a finite non-zero number, got {beta}")
    epochs = DEFAULT_EPOCHS if epochs is None else int(epochs)
    if epochs < 0:
        raise SymglepError(f"epochs must be >= 0, got {epochs}")
    if dt is not None and not (math.isfinite(dt) and dt > 0):
        raise SymglepError(f"dt must be a positive number, got {dt}")
    if freeze_parameters and not learn_initial_state:
        raise SymglepError("nothing to learn: freeze_parameters (--freeze-parameters) needs "
                           "learn_initial_state (--learn-initial-state)")
    if learn_initial_state and scheduler:
        raise SymglepError("learning the initial state runs on this machine only; drop --scheduler")
    learn_theta = not freeze_parameters
    client = None
    if scheduler:
        client = connect(scheduler)  # fail fast (missing extra, unreachable address) before compiling
    try:
        kernels, data, theta, initial, history, opt, grad = _prepare(
            model, spec, task, client, integrator, dt, cache, seed, estimator, beta, optimizer, lr, resume,
            learn_initial_state, learn_theta)
    except BaseException:
        if client is not None:
            client.close()
        raise
    S = data.size
    batch = S if batch is None else int(batch)
    if not 1 <= batch <= S:
        grad.close()
        raise SymglepError(f"batch must be between 1 and the number of sequences ({S}), got {batch}")
    names = [s.name for s in model.parameters]
    bar = Progress(epochs, progress)
    first = len(history)
    try:
        for done, epoch in enumerate(range(first, first + epochs), start=1):
            order = np.arange(S) if batch == S else np.random.default_rng([seed, epoch]).permutation(S)
            total = 0.0
            for lo in range(0, S, batch):
                index = order[lo:lo + batch]
                if initial is None:
                    loss, dtheta = grad(theta, index)
                    parts = [dtheta]
                else:
                    loss, dtheta, dq0, dx0 = grad(theta, index, initial)
                    parts = ([dtheta] if learn_theta else []) + [dq0, dx0]
                total += float(loss.sum())
                g = np.concatenate([a.sum(axis=0) for a in parts]) / len(index)
                if not np.all(np.isfinite(g)):
                    raise SymglepError(f"the gradient is not finite at epoch {epoch}; lower --lr or --dt")
                z = np.concatenate(([theta] if learn_theta else []) + ([*initial] if initial is not None else []))
                z = opt.step(z, g)
                if learn_theta:
                    theta, z = z[:theta.size], z[theta.size:]
                if initial is not None:
                    initial = (z[:model.n], z[model.n:])
            history.append(total / S)
            bar.update(done, epoch + 1, history[-1])
    finally:
        bar.close()
        grad.close()
    if initial is None:
        q0, start = data.q0, data.start()
    else:
        q0 = np.broadcast_to(initial[0], data.q0.shape)
        start = {_start_key(data): np.broadcast_to(initial[1], data.x0.shape)}
    final = float(kernels.free(theta, q0, u=data.u, y=data.y, dt=data.dt, t0=data.t0, **start)[2].mean())
    settings = {
        "task": data.info.get("task", data.name), "optimizer": optimizer, "lr": opt.lr, "batch": batch,
        "beta": beta, "estimator": estimator, "seed": seed, "dt": data.dt, "steps": data.steps,
        "sequences": S, "integrator": kernels.integrator,
        "learn_initial_state": bool(learn_initial_state), "freeze_parameters": bool(freeze_parameters),
    }
    if "teacher" in data.info:
        settings["teacher"] = data.info["teacher"]
    learned = None
    if initial is not None:
        learned = {"q0": [float(x) for x in initial[0]], _start_key(data): [float(x) for x in initial[1]]}
    result = TrainResult(model.name, names, theta, history, final, settings, opt.state(),
                         time.perf_counter() - started, learned)
    if save:
        result.save(save)
    return result
