"""``symglep train``: gradient descent on a data set with the echo estimator (or BPTT), for every kind.

One trainer for scalar models, array models and stacks: what it needs from each kind's
kernels (θ and its names, draws, the free pass, per-sequence gradients) comes from the
kind's learner (:mod:`symglep.learners`); what a kind cannot serve is refused by its
capabilities, in one line with the reason (docs/training.md).

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
import shlex
import re
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .beta import AUTO, BIAS_TOLERANCE, PROBES, choose_beta, describe, parse_beta
from .check import rel_err
from .classification import (ClassificationTask, ClassifierLearner, Normalisation, labelled_npz,
                             linear_readout_of, uea_name, uea_task)
from .command_options import TrainOptions, name_list
from .diagnose import NumericalError
from .dissipation import ANTI_DAMPING_AMPLIFICATION, reports_anti_damping
from .distributed import DaskGradient, connect
from .errors import SymglepError, TrainingInterrupted, listed
from .estimators import ESTIMATORS, NO_BETA, ORDERS
from .fileio import read_json_object, write_atomic
from .heads import CLASSIFIER_PREFIXES
from .kernel_module import interrupted_by_user
from .learners import compile_kernels, element_names, flatten_parameters, group_parameters, learner_for
from .loader import load_system, split_spec
from .optim import DEFAULT_LR, make_optimizer
from .routes import short_label
from .run_arguments import positive_number, whole_number
from .systems import kind_of
from .tasks import Dataset, SineTask, TargetTask, load_npz, sine_task, target_task

FORMAT = "symglep-train/1"
DEFAULT_EPOCHS = 100
#: the pilot of ``beta="auto"`` measures the mean gradient of as many sequences as a step averages (a batch),
#: at least PILOT_SEQUENCES and at most PILOT_MAX_SEQUENCES, spread evenly over the data set: near a minimum
#: the bias a β leaves stays while the mean gradient shrinks, so the bias is judged against the step's gradient
PILOT_SEQUENCES = 4
PILOT_MAX_SEQUENCES = 32
#: ``beta="auto"`` is chosen again during training, at the parameters of the time: every epoch whose number
#: is a multiple of :func:`repilot_interval`, so that the pilots cost about this share of the training's work
REPILOT_SHARE = 0.1


def pilot_size(sequences: int, batch: int | None) -> int:
    """Sequences the pilot of ``beta="auto"`` averages over (see PILOT_SEQUENCES)."""
    return min(sequences, max(PILOT_SEQUENCES, min(batch or sequences, PILOT_MAX_SEQUENCES)))


def repilot_interval(sequences: int, size: int) -> int:
    """Epochs between two choices of ``beta="auto"``: a pilot costs ``3 + len(PROBES)`` gradients of ``size``
    sequences (:func:`~symglep.beta.choose_beta`), an epoch ``sequences`` of them."""
    return max(1, math.ceil((3 + len(PROBES)) * size / (REPILOT_SHARE * sequences)))


class LocalGradient:
    """Per-sequence losses and gradients of any subset of the data set, on this machine
    (the kind's :class:`~symglep.learners.Learner`)."""

    def __init__(self, learner, dataset: Dataset, estimator: str, beta: float):
        self.learner, self.data, self.estimator, self.beta = learner, dataset, estimator, beta

    def __call__(self, theta: np.ndarray, index: np.ndarray, start=None):
        """``(loss, dθ)``; with ``start = (q0, x0)`` (one shared start, shape ``(n,)`` each) every
        sequence starts there and ``(loss, dθ, dq0, dx0)`` comes back."""
        d = self.data
        if start is None:
            return self.learner.gradients(self.estimator, self.beta, theta, d.u[index], d.y[index],
                                          d.q0[index], d.x0[index], d.start_velocity, d.dt, d.t0)
        q0, x0 = (np.ascontiguousarray(np.broadcast_to(a, (len(index), a.size))) for a in start)
        return self.learner.gradients(self.estimator, self.beta, theta, d.u[index], d.y[index],
                                      q0, x0, d.start_velocity, d.dt, d.t0, with_start=True)

    def close(self) -> None:
        pass


@dataclass
class TrainResult:
    """Outcome of :func:`train` (and the content of a ``--save`` file).

    ``names``/``theta``: the flat parameter vector by element (``W[0,1]`` for array models);
    ``layout``: ``[(parameter, shape)]``, how the JSON groups them (arrays as nested lists)."""

    model: str
    names: list
    theta: np.ndarray
    loss_history: list
    final_loss: float
    settings: dict
    optimizer_state: dict = field(default_factory=dict)
    seconds: float = 0.0
    initial_state: dict | None = None   # {"q0": [...], "p0" or "v0": [...]} when it was learned
    layout: list | None = None          # [(name, shape)]; None: one scalar per name
    scores: list | None = None          # classification: per epoch {"train": {loss, accuracy}, "test": {...}}
    warnings: list = field(default_factory=list)  # parameters against their declared sign (not saved)
    notes: list = field(default_factory=list)  # steps that kept_signs held (not saved)

    @property
    def parameters(self) -> dict:
        """``{element name: value}``."""
        return dict(zip(self.names, map(float, self.theta)))

    @property
    def grouped(self) -> dict:
        """``{parameter: value or nested list}`` (the JSON's ``parameters``)."""
        return group_parameters(self.layout or [(n, ()) for n in self.names], self.theta)

    @property
    def epochs(self) -> int:
        return len(self.loss_history)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model,
            "parameters": self.grouped,
            "loss_history": [float(x) for x in self.loss_history],
            "final_loss": float(self.final_loss),
            "epochs": self.epochs,
            "settings": self.settings,
            "optimizer_state": self.optimizer_state,
            **({"initial_state": self.initial_state} if self.initial_state is not None else {}),
            **({"scores": self.scores} if self.scores is not None else {}),
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
            layout, theta = flatten_parameters(data["parameters"])
            history = [float(x) for x in data.get("loss_history", [])]
            final = float(data.get("final_loss", math.nan))
            scores = data.get("scores")
            start = data.get("initial_state")
            if start is not None:
                start = {key: [float(x) for x in value] for key, value in dict(start).items()}
        except (TypeError, ValueError, SymglepError):
            raise SymglepError(f"{path}: parameters, losses and the initial state must be numbers") from None
        names = [e for name, shape in layout for e in element_names(name, shape)]
        settings, optimizer_state = data.get("settings", {}), data.get("optimizer_state", {})
        if not isinstance(settings, dict) or not isinstance(optimizer_state, dict):
            raise SymglepError(f"{path}: 'settings' and 'optimizer_state' must be JSON objects (a damaged save)")
        if not isinstance(settings.get("beta_auto"), (dict, type(None))):
            raise SymglepError(f"{path}: settings.beta_auto must be an object or null (a damaged save)")
        return cls(str(data.get("model", "")), names, theta, history, final, dict(settings),
                   dict(optimizer_state), initial_state=start, layout=layout,
                   scores=list(scores) if isinstance(scores, list) else None)


def _read_json(path: str) -> dict:
    return read_json_object(path)


#: Predicted relative error of the echo gradient above which `train` warns (theory §5: bias + round-off).
USABLE_GRADIENT_ERROR = 1e-2


def _beta_history_text(settings: dict) -> str:
    """How often ``beta="auto"`` was chosen during the run, and the range of its choices ('' for one)."""
    history = settings.get("beta_history") or []
    if not history:
        return ""
    measured = f"; echo vs BPTT on the pilot's sequences at most {max(row[2] for row in history):.1e}"
    if len(history) < 2:
        return measured
    # a resumed run measures its saved β again at its start: a row, not a new choice
    choices = [row for k, row in enumerate(history) if k == 0 or row[1] != history[k - 1][1]]
    if len(choices) < 2:
        return measured
    values = [row[1] for row in choices]
    return (f"; chosen {len(choices)} times at the parameters of the time (epochs "
            f"{', '.join(str(row[0] + 1) for row in choices[:6])}{', ...' if len(choices) > 6 else ''}), "
            f"beta {min(values):.3g} to {max(values):.3g}" + measured)


def beta_warning(choice: dict) -> str:
    """A ``warning:`` line when even the best β leaves the echo gradient more than
    :data:`USABLE_GRADIENT_ERROR` off (relative), else ``""``."""
    error = choice["predicted_bias"] + choice["predicted_roundoff"]
    if error <= USABLE_GRADIENT_ERROR:
        return ""
    return (f"warning: the echo gradient is predicted {error:.0e} off (relative) at the best beta: these "
            "sequences amplify round-off (long or chaotic runs); --estimator echo-complex has no round-off, "
            "and shorter sequences or a smaller dt help every estimator")


def _describe(layout: list) -> list:
    return [name if not shape else f"{name} {tuple(shape)}" for name, shape in layout]


def _resumed_settings(resume) -> dict:
    """The settings a resumed run was trained with; ``{}`` without a resume, for a plain ``{name: value}`` file
    or a save without them."""
    if isinstance(resume, TrainResult):
        settings = resume.settings
    elif resume is not None:
        data = _read_json(str(resume))
        settings = data.get("settings", {}) if data.get("format") == FORMAT else {}
    else:
        settings = {}
    return settings if isinstance(settings, dict) else {}


def _resumed_seed(resume) -> int:
    """The seed a resumed run was trained with (its task is drawn from it), or 0."""
    seed = _resumed_settings(resume).get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0


def resumed_task(resume):
    """The task a resumed run was trained on (a resumed run continues on it), or ``"sine"``: no resume, or a file
    that does not say. A task that cannot be named again (a :class:`Dataset` given in Python) is an error."""
    task = _resumed_settings(resume).get("task")
    if task is None:
        return "sine"
    if isinstance(task, str) and (task in ("sine", "target") or uea_name(task) is not None or os.path.isfile(task)):
        return task
    raise SymglepError(f"the resumed run was trained on the task {task!r}, which cannot be loaded here (a data set "
                       "given in Python, or a file moved since): give the task (--task) to continue on")


def require_same_classes(saved, classes) -> None:
    """Refuse to resume a classifier whose head was trained on other classes (or the same in another order):
    each row of the head means one class, by position."""
    if classes is not None and saved is not None and list(saved) != list(classes):
        raise SymglepError(f"the resumed classifier was trained on the classes {listed(saved)} (in that order), this "
                           f"data set has {listed(classes)}: its head's rows would mean other classes; resume on the "
                           "data set it was trained on")


def _saved_settings(resume) -> dict:
    """The ``settings`` of a resumed run (a :class:`TrainResult` or a saved file), ``{}`` for none or a plain
    ``{name: value}`` file (the resume step reports a bad file)."""
    if resume is None:
        return {}
    if isinstance(resume, TrainResult):
        settings = resume.settings
    else:
        try:
            settings = read_json_object(str(resume)).get("settings")
        except SymglepError:
            return {}
    return settings if isinstance(settings, dict) else {}


def _saved_normalisation(resume):
    """A resumed classifier's input normalisation (its training split's mean and std per channel), so that it
    reads the data of this run as it was trained; ``None`` for other runs."""
    saved = _saved_settings(resume).get("normalisation")
    try:
        mean, std = (np.asarray(saved[k], dtype=np.float64).ravel() for k in ("mean", "std"))
    except (TypeError, KeyError, ValueError):
        return None
    return Normalisation(mean, std) if np.all(np.isfinite(mean)) and np.all(std > 0) else None


def _resume_state(resume, learner) -> TrainResult:
    """A previous run (a :class:`TrainResult`, a ``--save`` file, or a plain ``{name: value}`` file)."""
    system = learner.system
    if isinstance(resume, TrainResult):
        state = resume
    else:
        data = _read_json(str(resume))
        if str(data.get("format", "")).startswith("symglep-train") and data.get("format") != FORMAT:
            raise SymglepError(f"{resume} was written in the training-file format {data['format']!r}; this symglep "
                               f"reads {FORMAT!r}: resume from its parameters alone ({{name: value}})")
        if data.get("format") == FORMAT:
            state = TrainResult.load(str(resume))
        else:
            state = TrainResult(system.name, learner.names, learner.load_parameters(str(resume)), [], math.nan, {},
                                layout=learner.layout)
    names = learner.names
    if sorted(state.names) != sorted(names):
        classifier_file = any(n.startswith(CLASSIFIER_PREFIXES) for n in state.names)
        classifier_task = any(n.startswith(CLASSIFIER_PREFIXES) for n in names)
        if classifier_file != classifier_task:
            raise SymglepError("the resumed file is " + ("a classifier's (an encoder and a head around the model)"
                                                          if classifier_file else "not a classifier's")
                               + ", this task " + ("is not classification" if classifier_file else "is classification")
                               + ": resume it on a task of its kind, or resume from its model parameters alone")
        if all(n.startswith(CLASSIFIER_PREFIXES) for n in set(state.names) ^ set(names)):
            raise SymglepError(f"the resumed classifier does not fit this data set: it was trained for "
                               f"{_classifier_shape(state.names)}, this data set needs {_classifier_shape(names)}; "
                               "resume on the data set it was trained on (the model's own parameters match)")
        mine = state.layout or [(n, ()) for n in state.names]
        missing = [n for n in names if n not in state.names]
        unknown = [n for n in state.names if n not in names]
        # a parameter in both with another shape (a scalar k saved, an array k[i] in the model) is not "missing"
        reshaped = sorted({_parameter_head(n) for n in missing} & {_parameter_head(n) for n in unknown})
        missing = [n for n in missing if _parameter_head(n) not in reshaped]
        unknown = [n for n in unknown if _parameter_head(n) not in reshaped]
        raise SymglepError(f"the resumed parameters ({listed(_describe(mine))}) are not those of "
                           f"{KIND_WORDS[learner.kind]} {system.name!r} ({listed(_describe(learner.layout))})"
                           + (f"; of another shape: {listed(reshaped)}" if reshaped else "")
                           + (f"; missing: {listed(missing)}" if missing else "")
                           + (f"; not in the model: {listed(unknown)}" if unknown else ""))
    order = [state.names.index(n) for n in names]
    state.theta, state.names = np.asarray(state.theta, dtype=np.float64)[order], names
    state.layout = learner.layout
    return state


class Progress:
    """One self-rewriting stderr line: epoch, a bar and the running loss (plain lines when not a terminal)."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = max(1, total // 10)

    def update(self, done: int, epoch: int, loss: float, extra: str = "") -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * done / max(self.total, 1))
        line = f"epoch {epoch:>5} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} loss {loss:.6e}{extra}"
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

    def warn(self, text: str | None) -> None:
        """A warning on its own line while the run goes on (the result's warnings repeat it at the end)."""
        if self.enabled and text:
            self.stream.write(("\n" if self.tty else "") + f"warning: {text} (the run goes on)\n")
            self.stream.flush()


def _worker_spec(spec: str) -> str:
    """``spec`` with an absolute path: workers may run in another folder."""
    path, name = split_spec(spec)
    return f"{os.path.abspath(path)}:{name}"


def _as_system(system) -> tuple:
    """``(system, spec or None)`` of a Model, ArrayModel, Stack or a model file path."""
    if isinstance(system, str):
        return load_system(system), _worker_spec(system)
    kind_of(system)  # anything else: one line naming what was given
    return system, None


def make_dataset(model, kernels, task, seed: int, dt: float | None,
                 substeps: int | None = None, norm=None) -> tuple[Dataset, object]:
    """``(dataset, start parameters or None)`` for ``task``: ``"sine"``, ``"target"``, ``"uea:NAME"``,
    a ``.npz`` path (with ``labels``: a classification set) or a Dataset (any kind of system; the start
    as the kind's learner draws it). ``norm``: a resumed classifier's input normalisation."""
    if uea_name(task) is not None:
        return uea_task(uea_name(task), learner_for(model, kernels), dt, substeps, norm), None
    if isinstance(task, str) and task not in ("sine", "target") and os.path.exists(task):
        labelled = labelled_npz(task, learner_for(model, kernels), dt, substeps, norm)
        if labelled is not None:
            return labelled, None
    if substeps is not None:
        raise SymglepError("--substeps is for classification tasks (uea:NAME or a DATA.npz with labels): it sets "
                           "the steps per sample of a series; other tasks step at --dt")
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
        if not os.path.exists(task):
            raise SymglepError(f"task {task!r}: no such data file; a task is 'sine', 'target', 'uea:NAME' or the "
                               "path of a DATA.npz")
        return load_npz(task, model, dt), None
    raise SymglepError(f"task must be 'sine', 'target', 'uea:NAME', a DATA.npz path or a Dataset, got {task!r}")


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
             learn_start, learn_theta, substeps=None, batch=None):
    """Learner, data set, start parameters and initial state, history (losses, and a classifier's
    per-epoch scores), optimiser and gradient evaluator."""
    default_dt = (TargetTask.dt if task == "target" or isinstance(task, TargetTask) else
                  ClassificationTask.dt if uea_name(task) is not None else SineTask.dt)
    kernels = compile_kernels(model, integrator, dt or default_dt, cache)
    learner_for(model, kernels).require_estimator(estimator)
    data, start = make_dataset(model, kernels, task, seed, dt, substeps, _saved_normalisation(resume))
    if batch is not None and not 1 <= batch <= data.size:  # before any run: bad input, not a numerical failure
        raise SymglepError(f"batch must be between 1 and the number of sequences ({data.size}), got {batch}")
    width = data.q0.shape[1]
    learner = learner_for(model, kernels, size=width // getattr(model, "dim", 1))
    if data.classes is not None:
        if client is not None:
            raise SymglepError(CLASSIFICATION_LOCAL)
        learner = ClassifierLearner(learner, linear_readout_of(model), data.u.shape[2], len(data.classes))
    history: list = []
    scores: list = []
    size = (len(learner.names) if learn_theta else 0) + (2 * width if learn_start else 0)
    opt = make_optimizer(optimizer, lr, size)
    initial = (data.q0[0].copy(), data.x0[0].copy()) if learn_start else None
    if resume is not None:
        state = _resume_state(resume, learner)
        require_same_classes(state.settings.get("classes"), data.classes)
        # scores run with the epochs; a file saved after 0 epochs holds the start's score alone
        theta, history = state.theta.copy(), list(state.loss_history)
        scores = list(state.scores or [])[:len(history)]
        if learn_start:
            initial = _resumed_start(state, data, width) or initial
        same = (bool(state.settings.get("learn_initial_state")) == bool(learn_start)
                and (not state.settings.get("freeze_parameters")) == bool(learn_theta))
        if state.optimizer_state and state.settings.get("optimizer") == optimizer and same:
            opt.load(state.optimizer_state)  # else the learned quantities changed: the optimizer starts afresh
    else:
        theta = learner.flat(start if start is not None else learner.draw(np.random.default_rng(seed)))
    choice, row = None, None
    if beta == AUTO:
        saved = state.settings.get("beta") if resume is not None else None
        if estimator in NO_BETA:
            beta = None  # BPTT has no nudge; the complex step's is fixed (iε, ε = 1e-20)
        elif isinstance(saved, (int, float)) and saved > 0:
            # a resumed run continues with the β it was trained with, measured again at its start
            auto = state.settings.get("beta_auto") or {}
            predicted = (auto.get("predicted_bias") or 0.0) + (auto.get("predicted_roundoff") or 0.0)
            _, row = _pilot_beta(learner, data, estimator, theta, initial, learn_theta, batch,
                                 (float(saved), float(predicted) or BIAS_TOLERANCE))
            beta = row[0]
        else:
            choice, row = _pilot_beta(learner, data, estimator, theta, initial, learn_theta, batch)
            beta = row[0]
    if client is not None:
        grad = DaskGradient(client, spec if spec is not None else model, integrator, data, estimator, beta)
    else:
        grad = LocalGradient(learner, data, estimator, beta)
    # [epoch, β, measured error vs BPTT, predicted] of each automatic choice: the resumed run's rows, then (a
    # resumed run) its saved β measured again at this start; train appends this run's choices
    saved = [] if resume is None else state.settings.get("beta_history") or []
    betas = [list(r) for r in saved if isinstance(r, list) and len(r) == 4]
    betas += [] if row is None else [[len(history), *row]]
    return learner, data, theta, initial, (history, scores), opt, grad, (choice, betas)


def _pilot_beta(learner, data: Dataset, estimator: str, theta, initial, learn_theta: bool, batch=None,
                saved=None):
    """``beta="auto"``: :func:`~symglep.beta.choose_beta` on the mean gradient of :func:`pilot_size` sequences
    spread evenly over the data set (the first ones may be unrepresentative, e.g. the shortest series) at
    the parameters ``theta`` (and start, when it is learned). Returns ``(choice, [β, measured, predicted])``:
    ``measured`` the echo's relative error against BPTT on the same sample at β, ``predicted`` the pilot's
    bias + round-off there. With ``saved = (β, predicted)`` (a resumed run's), no pilot: ``choice`` is None
    and only the measurement is made."""
    size = pilot_size(data.size, batch)
    index = np.unique(np.linspace(0, data.size - 1, size).round().astype(np.int64))
    local = LocalGradient(learner, data, estimator, None)

    def contrast(b, gradient=local):
        gradient.beta = b
        if initial is None:
            return [gradient(theta, index)[1].mean(axis=0)]
        parts = gradient(theta, index, initial)[1:]
        return [a.mean(axis=0) for a in (parts if learn_theta else parts[1:])]

    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing run is refused by the first step
        choice = choose_beta(contrast, order=ORDERS[estimator]) if saved is None else None
        beta, predicted = saved or (choice.beta, choice.predicted_bias + choice.predicted_roundoff)
        # the chosen β measured against BPTT on the same sample: the pilot's prediction assumes a smooth,
        # stable run; an unstable one (a mass trained negative) leaves the echo far off, which this shows
        reference = np.concatenate(contrast(None, LocalGradient(learner, data, "bptt", None)))
        measured = float(rel_err(np.concatenate(contrast(beta)), reference))
    return choice, [float(beta), measured, float(predicted)]


def measured_warning(history: list, anti_damped: str | None = None) -> str | None:
    """A warning when a choice of ``beta="auto"`` measured the echo far further from BPTT than its pilot
    predicted (``history``: ``[epoch, β, measured, predicted]`` rows): the run is not the smooth, stable one
    the β^p law assumes (e.g. parameters trained into an unstable region), and the echo's gradient is wrong
    there. ``anti_damped``: :func:`anti_damping`'s text, the cause where a damped echo amplifies round-off."""
    # a resumed run measures its saved β against the saved (older) prediction; where a new choice follows at the
    # same epoch that row is superseded, not judged (a probe: a resumed run warned where the same run unbroken
    # did not)
    current = [row for k, row in enumerate(history) if not (k + 1 < len(history) and history[k + 1][0] == row[0])]
    bad = [row for row in current
           if not row[2] <= max(MEASURED_FLOOR, MEASURED_FACTOR * row[3]) or row[2] > MEASURED_UNUSABLE]
    if not bad:
        return None
    epoch, beta, measured, predicted = bad[0]
    said = (f"at epoch {epoch + 1} the echo gradient (beta {beta:.3g}) was {measured:.1e} off BPTT on the pilot's "
            f"sequences, predicted {predicted:.1e}: ")
    if anti_damped:
        return said + (f"{anti_damped} (theory §7): no beta helps; train with --estimator bptt, or on shorter "
                       "sequences")
    return said + ("the run is not smooth or stable there (a chaotic run, parameters outside their declared signs, "
                   "a growing free run), or its gradient is near zero (a near-perfect fit, where a relative error is "
                   "round-off); compare with --estimator bptt, shorter sequences, or a lower --lr")


def anti_damping(learner, thetas, T: float) -> str | None:
    """Why a damped system's echo is off (theory §7): the part with the largest rate γ over ``thetas`` (the run's
    start and end), when e^{γT} reaches :data:`~symglep.check.ANTI_DAMPING_AMPLIFICATION`; else ``None``."""
    rates = [(label, gamma) for theta in thetas for label, gamma in learner.damping_rates(theta)]
    if not rates:
        return None
    label, gamma = max(rates, key=lambda r: r[1])
    if gamma * T < math.log(ANTI_DAMPING_AMPLIFICATION):
        return None
    return (f"{label} is damped at gamma = {gamma:.3g} over T = {T:g}, so the echo runs anti-damped and amplifies "
            f"round-off by e^(gamma T) = {math.exp(min(gamma * T, 700.0)):.1e}")


def _parameter_head(element: str) -> str:
    """The parameter an element name belongs to: ``unit1.w`` of ``unit1.w[3]`` (a stack lists an array unit's
    parameters element by element), ``glue0.W`` of ``glue0.W2_5`` and ``glue0.b`` of ``glue0.b4``."""
    head = element.split("[")[0]
    glue = re.fullmatch(r"(glue\d+\.[Wb])\d+(_\d+)?", head)
    return glue.group(1) if glue else head


def frozen_entries(learner, freeze, learn_start: bool = False) -> np.ndarray | None:
    """The θ entries ``freeze`` keeps at their start values (a boolean mask in kernel order), or ``None``.

    ``freeze``: names of parameters (every element of an array, ``"B"``; in a stack ``"unit1.w"``, ``"glue0.W"``,
    or a whole unit or glue, ``"unit1"``) or of single elements (``"B[0,1]"``, as the saved files and
    :attr:`Learner.names` spell them), a list or one comma-separated string."""
    if freeze is None or (not isinstance(freeze, str) and len(freeze) == 0):
        return None
    wanted = name_list(freeze) if isinstance(freeze, str) else [w.strip() if isinstance(w, str) else w for w in freeze]
    if not all(isinstance(w, str) and w for w in wanted):
        raise SymglepError(f"freeze must name parameters, got {freeze!r}")
    names = learner.names
    groups = {name: element_names(name, shape) for name, shape in learner.layout}
    fixed = np.zeros(len(names), dtype=bool)
    position = {name: k for k, name in enumerate(names)}
    for w in wanted:
        w = re.sub(r"\s+", "", w) if "[" in w else w  # "A[0, 1]" (numpy's spelling) is A[0,1]
        glue = re.fullmatch(r"(glue\d+\.[Wb])\[(\d+)(?:,(\d+))?\]", w)  # a stack's glue0.W[0,7] is glue0.W0_7
        w = glue.group(1) + glue.group(2) + (f"_{glue.group(3)}" if glue.group(3) else "") if glue else w
        members = groups.get(w) or ([w] if w in position else None) or \
            [name for name in names if _parameter_head(name) == w or name.startswith(w + ".")] or None
        if members is None:
            heads = list(dict.fromkeys(_parameter_head(name) for name in names))
            shown = ", ".join(heads[:40]) + (f", … ({len(heads)} in all)" if len(heads) > 40 else "")
            raise SymglepError(f"freeze: no parameter or element {w!r}; the parameters are {shown} (an element "
                               "is named like A[0,1]; a stack's glue entry like glue0.W[0,7] or glue0.W0_7)")
        for member in members:
            fixed[position[member]] = True
    if fixed.all() and not learn_start:
        raise SymglepError("freeze names every parameter: nothing is left to learn (use --freeze-parameters with "
                           "--learn-initial-state to learn only the initial state)")
    return fixed


def _require_capabilities(system, task, estimator, batch, resume, scheduler, learn_start, freeze) -> None:
    """The capability cells a run asks for (:mod:`symglep.capabilities`): a refusal says why, in one line."""
    caps = system.capabilities
    caps.require("command", "train")
    caps.require("estimator", estimator)
    if isinstance(task, TargetTask) or task == "target":
        caps.require("train option", "--task target")
    elif uea_name(task) is not None:
        caps.require("train option", "--task uea:NAME")
    elif isinstance(task, str) and task != "sine":
        caps.require("train option", "--task DATA.npz")
    for cell, given in (("--batch", batch is not None), ("--resume", resume is not None),
                        ("--scheduler", bool(scheduler)), ("--learn-initial-state", learn_start),
                        ("--freeze-parameters", freeze)):
        if given:
            caps.require("train option", cell)


@reports_anti_damping
def train(system, task=None, *, epochs: int | None = None, lr: float | None = None, optimizer: str = "adam",
          batch: int | None = None, beta="auto", estimator: str = "echo", seed: int | None = None,
          dt: float | None = None, resume=None, save: str | None = None, scheduler: str | None = None,
          progress: bool = False, integrator: str = "auto", cache: str | None = None,
          learn_initial_state: bool = False, freeze_parameters: bool = False, freeze=None,
          source: str | None = None, substeps: int | None = None) -> TrainResult:
    """Train the parameters of ``system`` on ``task`` (module docstring); returns a :class:`TrainResult`.

    ``system``: a :class:`~symglep.Model`, an array model, a :class:`~symglep.Stack`, or a model
    file path (``path.py[:NAME]``, needed by Dask workers in other processes); every kind goes
    through its :class:`~symglep.learners.Learner` and its capabilities (docs/training.md).
    ``task``: ``"sine"``, ``"target"``, a ``DATA.npz`` path or a :class:`~symglep.tasks.Dataset`; by default
    ``"sine"``, or the resumed run's task (a resumed run continues on it). ``batch``: sequences per step (default: all).
    ``estimator``: ``echo`` (centred, theory §5), ``echo-one-sided``, ``echo4``, ``echo-complex`` (the
    complex-step echo: no β) or ``bptt`` (:mod:`symglep.estimators`).
    ``beta``: the nudge, or ``"auto"``: chosen once by :func:`~symglep.beta.choose_beta` on the mean
    gradient of the first sequences at the start parameters (a resumed run keeps its saved β); the
    β used and the pilot's measurements are saved in ``settings`` (``beta``, ``beta_auto``).
    ``resume``: a :class:`TrainResult`, a file saved by ``save=`` or a ``{name: value}`` JSON file.
    ``seed``: draws the task (the sine or target task's instances), the start and the batch order;
    default 0, or a resumed run's own seed, so that a resumed run continues on the same task.
    ``learn_initial_state``: train one shared start ``(q0, p0)`` as well (module docstring);
    ``freeze_parameters``: keep θ fixed (HEB: only the initial state is learned).
    ``freeze``: parameters (``"B"``) or elements (``"B[0,1]"``) kept at their start values while the rest
    learn (a fixed input matrix, a mask of couplings; the start values come from ``resume``).
    ``source``: the model file ``system`` was loaded from (Dask workers in other processes load it).
    ``substeps``: integration steps per sample of a classification series (``uea:NAME`` or a labelled
    ``DATA.npz``, :mod:`symglep.classification`); such a run also scores the train and test splits
    every epoch (``TrainResult.scores``).
    """
    started = time.perf_counter()
    task = resumed_task(resume) if task is None else task
    model, spec = _as_system(system)
    if source is not None:
        spec = _worker_spec(source)
    if estimator not in ESTIMATORS:
        raise SymglepError(f"unknown estimator {estimator!r}; available: {', '.join(ESTIMATORS)}")
    _require_capabilities(model, task, estimator, batch, resume, scheduler, learn_initial_state, freeze_parameters)
    beta = parse_beta(beta, "beta")
    epochs = DEFAULT_EPOCHS if epochs is None else whole_number(epochs, "epochs", 0)
    dt = None if dt is None else positive_number(dt, "dt")
    lr = None if lr is None else positive_number(lr, "the learning rate")
    seed = None if seed is None else whole_number(seed, "seed", 0)
    batch = None if batch is None else whole_number(batch, "batch", 1)
    substeps = None if substeps is None else whole_number(substeps, "substeps", 1)
    if freeze_parameters and freeze:
        raise SymglepError("freeze_parameters (--freeze-parameters) keeps every parameter fixed already; drop "
                           "freeze (--freeze), or keep only it to fix some of them")
    if freeze_parameters and not learn_initial_state:
        raise SymglepError("nothing to learn: freeze_parameters (--freeze-parameters) needs "
                           "learn_initial_state (--learn-initial-state)")
    if learn_initial_state and scheduler:
        raise SymglepError("learning the initial state runs on this machine only; drop --scheduler")
    learn_theta = not freeze_parameters
    if seed is None:
        seed = _resumed_seed(resume)
    client = None
    if scheduler and uea_name(task) is not None:
        raise SymglepError(CLASSIFICATION_LOCAL)
    if scheduler:
        client = connect(scheduler)  # fail fast (missing extra, unreachable address) before compiling
    try:
        learner, data, theta, initial, (history, scores), opt, grad, (choice, betas) = _prepare(
            model, spec, task, client, integrator, dt, cache, seed, estimator, beta, optimizer, lr, resume,
            learn_initial_state, learn_theta, substeps, batch)
    except BaseException:
        if client is not None:
            client.close()
        raise
    S = data.size
    batch = S if batch is None else int(batch)
    start_theta = theta.copy()
    try:
        if not 1 <= batch <= S:
            raise SymglepError(f"batch must be between 1 and the number of sequences ({S}), got {batch}")
        fixed = frozen_entries(learner, freeze, learn_initial_state)
        if not learner.names and not learn_initial_state and epochs:
            raise SymglepError(f"{model.name!r} has no parameters: nothing is left to learn (declare parameters=..., "
                               "or learn the initial state with --learn-initial-state)")
    except SymglepError:
        grad.close()
        raise
    names, width = learner.names, data.q0.shape[1]
    signs = learner.declared_signs()
    stops = np.zeros(theta.size, dtype=np.int64)  # per entry: the steps kept_signs held at a tenth of its value

    def mean_loss(theta, initial) -> float:
        """The loss over the whole data set at ``theta`` (and the learned start ``initial``)."""
        if initial is None:
            q0, x0 = data.q0, next(iter(data.start().values()))
        else:
            q0, x0 = np.broadcast_to(initial[0], data.q0.shape), np.broadcast_to(initial[1], data.x0.shape)
        return float(learner.losses(theta, data.u, data.y, np.ascontiguousarray(q0), np.ascontiguousarray(x0),
                                    data.dt, data.t0, data.start_velocity).mean())

    # the loss before this run's first step (epoch 1's mean over mini-batches is not: θ moves within it)
    start_loss = mean_loss(theta, initial) if epochs else None
    bar = Progress(epochs, progress)
    T = data.steps * data.dt

    def warn_now(rows) -> None:
        """A pilot that measured the echo far off BPTT: said when measured, not only after the run."""
        if rows and epochs:
            bar.warn(measured_warning(rows[-1:], anti_damping(learner, (theta,), T)))

    warn_now(betas)
    first = len(history)
    repilot = repilot_interval(S, pilot_size(S, batch)) if beta == AUTO and estimator not in NO_BETA else 0
    classifier = isinstance(learner, ClassifierLearner)
    scores = scores if classifier else None
    updates = 0  # optimizer steps in this run: a kernel failure after one may be the learning rate's doing
    # the state after the last completed epoch: what a Ctrl-C saves when `save` is given
    kept = (theta.copy(), initial, opt.state(), len(history), len(scores) if scores else 0)
    stopped, failed = False, None
    try:
        for done, epoch in enumerate(range(first, first + epochs), start=1):
            if repilot and epoch > 0 and epoch % repilot == 0 and (epoch > first or choice is None):
                choice, row = _pilot_beta(learner, data, estimator, theta, initial, learn_theta, batch)
                grad.beta = row[0]  # chosen at the current θ
                betas.append([epoch, *row])
                warn_now(betas)
            order = np.arange(S) if batch == S else np.random.default_rng([seed, epoch]).permutation(S)
            total = 0.0
            for lo in range(0, S, batch):
                index = order[lo:lo + batch]
                try:
                    if initial is None:
                        loss, dtheta = grad(theta, index)
                        parts = [dtheta]
                    else:
                        loss, dtheta, dq0, dx0 = grad(theta, index, initial)
                        parts = ([dtheta] if learn_theta else []) + [dq0, dx0]
                except NumericalError as exc:
                    if updates == 0:
                        raise
                    raise _after_updates(exc, f"epoch {epoch + 1}", updates, opt.lr) from None
                total += float(loss.sum())
                g = np.concatenate([a.sum(axis=0) for a in parts]) / len(index)
                if fixed is not None:
                    g[:theta.size][fixed] = 0.0  # a zero gradient leaves an entry where it is (SGD and Adam)
                if not np.all(np.isfinite(g)):
                    raise SymglepError(f"the gradient is not finite at epoch {epoch + 1}; lower --lr or --dt")
                if np.abs(g).max(initial=0.0) > OVERFLOWING:
                    raise SymglepError(
                        f"the gradient reaches {np.abs(g).max():.1e} at epoch {epoch + 1} (loss {float(loss.mean()):.1e}): "
                        "the free run grows without bound at these parameters (an unstable model, e.g. a mass "
                        "matrix that is not positive definite, or dt too large for its fastest mode); lower --dt "
                        f"or --lr{_sign_hint(model)}")
                z = np.concatenate(([theta] if learn_theta else []) + ([*initial] if initial is not None else []))
                z = opt.step(z, g)
                updates += 1
                if learn_theta:
                    stepped, z = z[:theta.size], z[theta.size:]
                    theta, held = kept_signs(theta, stepped, signs)
                    stops += held
                if initial is not None:
                    initial = (z[:width], z[width:])
            history.append(total / S)
            extra = ""
            if classifier:
                scores.append(_scores(learner, theta, data, initial))
                extra = "".join(f" {split} acc {v['accuracy']:.3f}" for split, v in scores[-1].items())
            bar.update(done, epoch + 1, history[-1], extra)
            kept = (theta.copy(), initial, opt.state(), len(history), len(scores) if scores else 0)
    except BaseException as exc:
        by_user = isinstance(exc, KeyboardInterrupt) or interrupted_by_user(exc)
        # a run that fails after updates (the learning rate carried θ where the kernels fail) keeps its epochs too
        if not (save and (by_user or (isinstance(exc, SymglepError) and updates and kept[3] > first))):
            raise
        stopped = True  # save the completed epochs below, then stop as interrupted (or failed)
        failed = None if by_user else exc
        theta, initial = kept[0], kept[1]
        opt.load(kept[2])
        del history[kept[3]:]
        if scores:
            del scores[kept[4]:]
    finally:
        bar.close()
        grad.close()
    requested, epochs = epochs, len(history) - first
    try:
        final = mean_loss(theta, initial)
    except NumericalError as exc:  # the last update carried the parameters where the free run fails
        if failed is not None:  # the kept epochs end where the run fails: nothing worth saving
            raise failed from None
        if not updates:
            raise
        raise _after_updates(exc, f"the loss after the last update (epoch {len(history)})", updates, opt.lr) from None
    settings = {
        "task": data.info.get("task", data.name), "optimizer": optimizer, "lr": opt.lr, "batch": batch,
        "beta": grad.beta, "beta_auto": None if choice is None else choice.to_json(),
        "beta_history": betas,
        "estimator": estimator, "route": learner.route(estimator), "seed": seed, "dt": data.dt, "t0": data.t0,
        "steps": data.steps,
        "sequences": S, "integrator": learner.integrator,
        "learn_initial_state": bool(learn_initial_state), "freeze_parameters": bool(freeze_parameters),
        "frozen": [] if fixed is None else [name for name, f in zip(names, fixed) if f],
        "epochs_run": epochs, "start_loss": final if start_loss is None else start_loss,
    }
    if "teacher" in data.info:
        settings["teacher"] = data.info["teacher"]
    learned = None
    if initial is not None:
        learned = {"q0": [float(x) for x in initial[0]], _start_key(data): [float(x) for x in initial[1]]}
    if learner.kind == "array":
        settings["units"] = width // model.dim
    if classifier:
        settings.update({key: data.info[key] for key in ("classes", "substeps", "channels", "normalisation")
                         if key in data.info})
        if not scores:
            scores.append(_scores(learner, theta, data, initial))
        elif epochs == 0:  # an evaluation of a resumed classifier: its scores on this task, not the saved ones
            scores[-1] = _scores(learner, theta, data, initial)
    result = TrainResult(model.name, names, theta, history, final, settings, opt.state(),
                         time.perf_counter() - started, learned, learner.layout, scores)
    result.warnings = learner.sign_warnings(result.grouped)  # a resumed or trained value against its sign
    result.notes = _sign_stop_notes(names, stops, signs)
    diverged = (_divergence_warning(history[0] if history else final, final, opt.lr)
                or _excursion_warning(history, opt.lr))
    if diverged:
        result.warnings.insert(0, diverged)
    damped = None if estimator == "bptt" else anti_damping(learner, (start_theta, theta), data.steps * data.dt)
    off = measured_warning(betas, damped)
    measured = max((row[2] for row in betas), default=None)
    if off:
        result.warnings.insert(0, off)
    elif damped and (measured is None or measured > MEASURED_FLOOR):  # a fixed beta measures nothing
        seen = "" if measured is None else f" (measured {measured:.1e} off BPTT on the pilot's sequences)"
        result.warnings.insert(0, f"{damped} (theory §7): the echo gradient carries that much more error{seen}; "
                                  "train with --estimator bptt, or on shorter sequences")
    resumed = None if resume is None else _resume_state(resume, learner)
    if resumed is not None and resumed.model and resumed.model != model.name:
        result.warnings.append(f"the resumed file was trained on the model {resumed.model!r}, this is {model.name!r} "
                               "(their parameter names agree, so its values were taken)")
    if resumed is not None and not learn_initial_state and resumed.initial_state is not None:
        result.warnings.append("the resumed file holds a learned initial state, which this run neither uses nor "
                               "saves (it starts from the data set's): add --learn-initial-state to keep it")
    if final == 0 and all(h == 0 for h in history):
        result.warnings.insert(0, "the loss is exactly 0: the model already gives the task's targets (e.g. a "
                                  "readout that stays at rest and a teacher whose does too), so nothing is learned")
    if save:
        result.save(save)
    if failed is not None:
        note = (f" -- the {epochs} epoch(s) completed before it were saved to {save}: continue with --resume {save}"
                f"{_continue_flags(settings, requested - epochs, lr=settings['lr'] / 4)} (a quarter of this run's "
                "learning rate)")
        if isinstance(failed, NumericalError):
            raise NumericalError(f"{failed}{note}", failed.phase, failed.sequence, failed.step, failed.state) from None
        raise type(failed)(f"{failed}{note}") from None
    if stopped:
        raise TrainingInterrupted(f"{epochs} completed epoch(s) of this run saved to {save}: continue with "
                                  f"--resume {save}{_continue_flags(settings, requested - epochs)}")
    return result


def _continue_flags(settings: dict, remaining: int, lr: float | None = None) -> str:
    """The options that continue an interrupted run as it was started (the task and the seed come from the
    resumed file; the rest from the command line); ``lr``: another learning rate, written last whatever it is."""
    flags = [f"--epochs {remaining}"]
    if settings["batch"] != settings["sequences"]:
        flags.append(f"--batch {settings['batch']}")
    if settings["optimizer"] != "adam":
        flags.append(f"--optimizer {settings['optimizer']}")
    if lr is None and settings["lr"] != DEFAULT_LR[settings["optimizer"]]:
        flags.append(f"--lr {settings['lr']!r}")
    if settings["estimator"] != "echo":
        flags.append(f"--estimator {settings['estimator']}")
    if settings["beta_auto"] is None and settings["estimator"] not in NO_BETA:
        flags.append(f"--beta {settings['beta']!r}")
    if settings["learn_initial_state"]:
        flags.append("--learn-initial-state")
    if settings["freeze_parameters"]:
        flags.append("--freeze-parameters")
    elif settings["frozen"]:
        flags += [f"--freeze {shlex.quote(name)}" for name in settings["frozen"]]
    if lr is not None:
        flags.append(f"--lr {lr:g}")
    return " " + " ".join(flags)


def _after_updates(exc: NumericalError, when: str, updates: int, lr: float) -> NumericalError:
    """A kernel failure after ``updates`` optimiser steps: the learning rate may have carried the parameters there."""
    return NumericalError(f"{when}, after {updates} update(s) at lr {lr:g}: {exc} (a learning rate too large can "
                          "carry the parameters there; try a smaller --lr)", exc.phase, exc.sequence, exc.step,
                          exc.state)


def _scores(learner: ClassifierLearner, theta, data: Dataset, initial) -> dict:
    """Loss and accuracy of the train split and, where the data set has one, the test split."""
    out = {"train": learner.scores(theta, data, initial)}
    if data.test is not None:
        out["test"] = learner.scores(theta, data.test, initial)
    return out


KIND_WORDS = {"scalar": "model", "array": "array model", "stack": "stack"}


def _value_text(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_value_text, value)) + "]"
    return f"{value:.10g}"


CLASSIFICATION_LOCAL = ("classification tasks run on this machine only (the head sits between the free pass and "
                        "the echo); drop --scheduler")
#: a choice of beta="auto" whose measured echo-vs-BPTT error exceeds MEASURED_FACTOR x its prediction (and
#: MEASURED_FLOOR) is warned about (:func:`measured_warning`)
MEASURED_FACTOR = 100
MEASURED_FLOOR = 1e-6
#: a measured echo-vs-BPTT error above which the gradient is warned about whatever its prediction (a probe's chaotic
#: network: 87 % off, predicted 1e-2)
MEASURED_UNUSABLE = 0.1


#: a final loss this many times the first is called diverged
DIVERGED = 1e3
#: a gradient entry above this is refused: its square, which Adam and RMSprop keep, would overflow
OVERFLOWING = 1e150


def _divergence_warning(first: float, final: float, lr: float) -> str | None:
    """A warning when training ended with a loss :data:`DIVERGED` times its start or not finite (e.g. a
    learning rate too large for the model's stiffest parameter); ``None`` otherwise."""
    if math.isfinite(final) and not (first > 0 and final > DIVERGED * first):
        return None
    grew = "is not finite" if not math.isfinite(final) else f"grew x{final / first:.3g}"
    return f"the loss {grew}: training diverged; lower the learning rate (--lr, now {lr:g})"


def _sign_hint(system) -> str:
    """``", or declare the parameters' signs"`` (which training keeps, :func:`kept_signs`) where some parameter
    has none; ``""`` where all have one."""
    parameters = getattr(system, "parameters", None) or []
    declared = [any((s.is_positive, s.is_negative, s.is_nonnegative, s.is_nonpositive)) for s in parameters
                if hasattr(s, "is_positive")]
    if declared and all(declared):
        return ""
    return ", or declare the parameters' signs (positive=True: training keeps them)"


#: a step may carry a parameter declared positive (negative) at most this fraction of the way to zero
#: (the fraction-to-the-boundary rule of interior-point methods)
FRACTION_TO_BOUNDARY = 0.9


def kept_signs(theta: np.ndarray, stepped: np.ndarray, signs: np.ndarray) -> tuple:
    """``(θ', held)``: the optimiser's step ``stepped`` with each entry declared positive (``signs`` +1) kept at
    or above a tenth of its value before the step (declared negative: at or below), so no step carries a mass
    or a stiffness across zero, where the derivation's sign assumptions (a mass in a square root, the Legendre
    transform) fail (theory §4), nor shrinks it more than tenfold at once (a stiffness that jumps past the
    integrator's stability limit). ``held`` marks the entries so held. An entry that already contradicts its sign
    (a resumed or given value; ``train`` warns of it) is left to the optimiser."""
    bound = (1 - FRACTION_TO_BOUNDARY) * theta
    held = (((signs > 0) & (theta > 0) & (stepped < bound)) | ((signs < 0) & (theta < 0) & (stepped > bound)))
    return np.where(held, bound, stepped), held.astype(np.int64)


def _sign_stop_notes(names: list, stops: np.ndarray, signs: np.ndarray) -> list:
    """One note naming the parameters whose declared sign :func:`kept_signs` held, and at how many steps."""
    held = [(name, int(n), "positive" if s > 0 else "negative") for name, n, s in zip(names, stops, signs) if n]
    if not held:
        return []
    shown = ", ".join(f"{name} at {n} step{'s' if n > 1 else ''}" for name, n, _ in held[:6])
    more = f" and {len(held) - 6} more" if len(held) > 6 else ""
    return [f"steps that would have taken a parameter of declared sign below a tenth of its value (towards or "
            f"across zero) stopped there: {shown}{more}; if this recurs, the learning rate is large for them (--lr)"]


def _excursion_warning(history: list, lr: float) -> str | None:
    """A warning when an epoch's loss rose :data:`DIVERGED` times above the first (or was not finite) though
    the run ended lower: the parameters went through an unstable region on their way (a probe's masses
    reached 1e99 after an epoch at 1e51 and the run ended x1.3 its start, silently); ``None`` otherwise."""
    if len(history) < 2 or not history[0] > 0:
        return None
    bad = [k for k, h in enumerate(history) if not math.isfinite(h) or h > DIVERGED * history[0]]
    if not bad:
        return None
    k = bad[0]
    return (f"the loss reached {history[k]:.3g} at epoch {k + 1} (x{history[k] / history[0]:.3g} its start): the "
            f"parameters passed through an unstable region; lower the learning rate (--lr, now {lr:g})")


def _change(first: float, final: float) -> str:
    """``(x5.02 lower)``, or ``(x14.1 higher)`` when training raised the loss (not ``x0.0707 lower``); a change
    by less than half (or a half more) as a percentage, ``(33 % lower)``;
    ``(unchanged)`` when no epoch ran (or none moved the loss)."""
    if final == first:
        return "(unchanged)"
    if first <= 0 or final < 0:  # a ratio of losses of either sign says nothing: the difference
        return f"({final - first:+.3g})"
    if final == 0:
        return "(to zero)"
    if first > 0 and final > 0 and 0.5 < final / first < 1.5:  # "x1.01 lower" beside "0.67 % lower": a percentage
        return f"({abs(1 - final / first) * 100:.2g} % {'lower' if final < first else 'higher'})"
    if final < first:
        return f"(x{first / final:.3g} lower)"
    return f"(x{final / first:.3g} higher)" if first > 0 else "(higher)"


def train_command(system, opts: TrainOptions) -> tuple:
    """``symglep train`` for any kind: ``(lines to print, {label: loss history}, plot title)``
    (docs/training.md); the scalar, array and stack command modules all run this."""
    source = opts.spec
    if opts.size is not None:  # an array model at another n (its kernels do not depend on n: no new compile)
        if opts.scheduler is not None:
            raise SymglepError("--size with --scheduler: the workers load the model file, so write the size into it "
                               "(size=...) instead")
        system.size, source = int(opts.size), None
    result = train(system, opts.task, source=source, epochs=opts.epochs, lr=opts.lr, optimizer=opts.optimizer,
                   batch=opts.batch, beta=opts.beta, estimator=opts.estimator, seed=opts.seed, dt=opts.dt,
                   resume=opts.resume_path, save=opts.save_path, scheduler=opts.scheduler,
                   progress=not opts.quiet, integrator=opts.integrator,
                   learn_initial_state=opts.learn_initial_state, freeze_parameters=opts.freeze_parameters,
                   freeze=opts.freeze or None, substeps=opts.substeps)
    history = result.loss_history
    first = result.settings.get("start_loss", history[0] if history else result.final_loss)
    run = result.settings.get("epochs_run", len(history))
    route = result.settings.get("route", "echo")
    by = "" if route in ("echo", "bptt") else f" (route: {short_label(route)})"  # a flipped echo, PFVP
    lines = [f"{KIND_WORDS[kind_of(system)]} {result.model}: {result.settings['estimator']} gradient{by}, "
             f"{result.settings['optimizer']} (lr {result.settings['lr']:g}), {run} "
             f"epoch{'' if run == 1 else 's'}{f' ({len(history)} in all)' if len(history) != run else ''}, "
             f"{result.seconds:.1f} s",
             f"loss {first:.6e} -> {result.final_loss:.6e} " + _change(first, result.final_loss)]
    if result.settings.get("beta_auto"):
        lines.insert(1, describe(result.settings["beta_auto"]) + _beta_history_text(result.settings))
        warning = beta_warning(result.settings["beta_auto"])
        if warning:
            lines.insert(2, warning)
    elif result.settings.get("beta") is not None:
        lines.insert(1, f"beta = {result.settings['beta']:.3g}")
    lines += [f"warning: {w}" for w in result.warnings] + [f"note: {n}" for n in result.notes]
    curves = {result.settings["estimator"]: history}
    if result.scores:
        last = result.scores[-1]
        lines.append("accuracy " + ", ".join(f"{split} {v['accuracy']:.4f} (loss {v['loss']:.4g})"
                                             for split, v in last.items()))
        for split in last:
            curves[f"{split} loss"] = [s[split]["loss"] for s in result.scores]
            curves[f"{split} accuracy"] = [s[split]["accuracy"] for s in result.scores]
        lines += _initial_state_lines(result)
        return lines, curves, f"{result.model}: {result.settings['task']}"
    lines += [f"  {name} = {_value_text(value)}" + _fixed_note(name, result, opts.freeze_parameters)
              for name, value in result.grouped.items()]
    lines += _initial_state_lines(result)
    return lines, curves, f"{result.model}: {result.settings['task']}"


def _fixed_note(name: str, result: TrainResult, all_fixed: bool) -> str:
    """`` (fixed)`` after a parameter kept at its start value, `` (2 of 6 entries fixed)`` after an array
    partly kept (``--freeze``)."""
    shape = dict(result.layout or []).get(name, ())
    members = element_names(name, shape)
    frozen = set(result.settings.get("frozen") or [])
    count = sum(m in frozen for m in members)
    if all_fixed or (count and count == len(members)):
        return " (fixed)"
    return f" ({count} of {len(members)} entries fixed)" if count else ""


def _initial_state_lines(result: TrainResult) -> list:
    """The learned initial state (``--learn-initial-state``), one line per part."""
    return [f"  {key} = [{', '.join(f'{v:.10g}' for v in values)}]"
            for key, values in (result.initial_state or {}).items()]


def _classifier_shape(names) -> str:
    """``"3 classes from 6 channels"``: what a classifier's head and encoder entries (flat names) were built for."""
    classes = sum(n.startswith("head.b") for n in names)
    inputs = sum(n.startswith("encoder.e") for n in names)
    channels = sum(n.startswith("encoder.E") for n in names) // max(inputs, 1)
    return f"{classes} classes from {channels} channel(s)"

