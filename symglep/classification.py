"""Sequence classification with any physical model: encoder → model → mean-pool head (theory §12).

A classification data set (``--task uea:NAME``, or a ``DATA.npz`` with integer ``labels``) holds
series of ``C`` channels, each sample held for ``substeps`` integration steps. The model is
driven through a learned linear encoder ``u_k = E x_k + e`` and read by the softmax head of
:mod:`symglep.heads`; its own cost must be linear in its targets, ``c = Σ_j y_j r_j(q)``, which
defines the readout ``r`` the head pools and is the slot the head's cotangents ride on (the
cotangent-driven echo, theory §12). :class:`ClassifierLearner` puts encoder, model and head
behind the trainer's learner interface (:mod:`symglep.learners`), so every estimator trains a
classifier: the echo, BPTT, the complex step, with mini-batches and a learned start.

A :class:`~symglep.tasks.Dataset` of a classification task stores the series in ``u``
``(S, K+1, C)`` and its labels in ``y`` ``(S, K+1, classes)``: ``y[s, k] = m_sk e_label(s)``,
the one-hot label on the nodes ``m_sk = 1`` that sequence ``s`` covers (variable-length series
are padded with zeros past their end and masked there: nothing is truncated). ``Dataset.test``
holds the held-out split, scored every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import uea
from .errors import SymglepError
from .fileio import read_npz
from .heads import head_pass
from .learners import Learner
from .network.model import ArrayModel
from .stack.model import Stack, declares_terminal_cost
from .symbolic import linear_coefficients
from .tasks import Dataset, array_readout_function, scalar_readout_function

#: nodes per free pass when the head's readouts are pooled: memory stays O(1) in the sequence length
CHUNK = 256


@dataclass(frozen=True)
class ClassificationTask:
    """Defaults of classification tasks (docs/classification.md)."""

    dt: float = 0.2
    substeps: int = 1


# -- the readout a head pools ------------------------------------------------------------------

def _linear_error(name: str, what: str) -> SymglepError:
    return SymglepError(f"a classification task needs a cost linear in the targets, c = sum_j y_j r_j(q) (the "
                        f"head's cotangents ride on the targets, theory §12); the {what} of {name!r} is not: e.g. "
                        "Sum(y[r] * q[r], r) for an array model, y1*x1 + y2*x2 for a scalar one (examples/stack_hssm.py "
                        "is a classifier)")


def scalar_linear_readout(model):
    """``f(q, u, t) -> r (..., n_y)``: ``r_j = ∂c/∂y_j`` of a scalar model's cost linear in ``y``."""
    readout = linear_coefficients(model.cost.subs(model.constants), model.y)
    if readout is None:
        raise _linear_error(model.name, "cost")
    return scalar_readout_function(model, readout)


def array_linear_readout(model):
    """``f(q_r, u, t) -> r (..., n_y)`` of an array model whose cost element is linear in ``y[r]``
    (``q_r (..., n_y, dim)``: the readout units' coordinates)."""
    element = model.readout
    ys = [s.symbol for s in element.slots if s.role == "y"]
    readout = linear_coefficients(element.cost, ys)
    if len(ys) != 1 or readout is None or {s.role for s in element.slots} - {"q", "y"}:
        raise _linear_error(model.name, "cost element")
    return array_readout_function(element, readout[0])


def linear_readout_of(system):
    """The readout ``r(q)`` a head pools, for any kind (the top unit's, for a stack); a one-line
    error when the cost is not linear in the targets or a terminal cost would add to the loss."""
    model = system.units[-1] if isinstance(system, Stack) else system
    if declares_terminal_cost(model):
        raise SymglepError(f"{model.name!r} declares a terminal cost: a classification head is the whole loss "
                           "(theory §12); drop the terminal cost")
    return array_linear_readout(model) if isinstance(model, ArrayModel) else scalar_linear_readout(model)


# -- data sets ---------------------------------------------------------------------------------
@dataclass
class Normalisation:
    """Per-channel ``(x − mean) / std``, measured on the training split only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, series: list) -> "Normalisation":
        stacked = np.concatenate(series, axis=0)
        std = stacked.std(axis=0)
        return cls(stacked.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def checked_normalisation(norm: Normalisation | None, series: list, name: str) -> Normalisation:
    """``norm`` (a resumed classifier's: it reads new data as it was trained), checked against the channels of
    ``series``; without one, measured on ``series`` (the training split)."""
    if norm is None:
        return Normalisation.of(series)
    channels = series[0].shape[1]
    if norm.mean.shape != (channels,) or norm.std.shape != (channels,):
        raise SymglepError(f"{name} has {channels} channel(s); the resumed classifier's input normalisation holds "
                           f"{norm.mean.size}: it was trained on other data")
    return norm


def series_dataset(series: list, labels: np.ndarray, classes: list, norm: Normalisation, learner,
                   dt: float, substeps: int, name: str, nodes: int | None = None) -> Dataset:
    """A classification :class:`~symglep.tasks.Dataset` (module docstring) of ``series`` (each
    ``(L_s, C)``): sample ``t`` drives the steps ``t·s .. (t+1)·s − 1`` (zero-order hold), the
    head pools the nodes ``1 .. L_s·s``; all sequences run ``nodes`` nodes (default: the longest)."""
    if substeps < 1:
        raise SymglepError(f"substeps must be >= 1, got {substeps}")
    lengths = np.array([len(x) for x in series])
    if np.any(lengths < 1):
        raise SymglepError(f"{name}: a series has no samples")
    nodes = nodes or int(lengths.max()) * substeps + 1
    S, C = len(series), series[0].shape[1]
    u = np.zeros((S, nodes, C))
    mask = np.zeros((S, nodes))
    for s, x in enumerate(series):
        covered = len(x) * substeps
        held = np.repeat(norm(np.asarray(x, dtype=np.float64)), substeps, axis=0)
        u[s, :covered] = held
        u[s, covered] = held[-1]
        mask[s, 1:covered + 1] = 1.0
    y = mask[:, :, None] * np.eye(len(classes))[np.asarray(labels)][:, None, :]
    q0, p0 = learner.rest(S)
    info = {"task": name, "classes": list(classes), "substeps": substeps, "channels": C,
            "lengths": [int(v) for v in lengths]}
    return Dataset(u, np.ascontiguousarray(y), q0, p0, float(dt), name=name, info=info, classes=list(classes))


def uea_name(task) -> str | None:
    """The data set of a ``uea:NAME`` task, else ``None``."""
    return task[4:] if isinstance(task, str) and task.startswith("uea:") else None


def uea_task(name: str, learner, dt: float | None = None, substeps: int | None = None,
             norm: Normalisation | None = None) -> Dataset:
    """``--task uea:NAME``: the set as shipped (:mod:`symglep.uea`), normalised per channel from
    its training split (or by ``norm``, a resumed classifier's); ``Dataset.test`` holds the test split."""
    data = uea.load(name)
    dt = float(dt or ClassificationTask.dt)
    substeps = int(substeps or ClassificationTask.substeps)
    require_classes(f"uea:{name}", data.train.labels, data.test.labels, data.classes)
    norm = checked_normalisation(norm, data.train.series, f"uea:{name}")
    longest = max(int(data.train.lengths.max()), int(data.test.lengths.max())) * substeps + 1
    train = series_dataset(data.train.series, data.train.labels, data.classes, norm, learner, dt, substeps,
                           f"uea:{name}", longest)
    train.test = series_dataset(data.test.series, data.test.labels, data.classes, norm, learner, dt, substeps,
                                f"uea:{name} (test)", longest)
    train.info["normalisation"] = {"mean": norm.mean.tolist(), "std": norm.std.tolist()}
    return train


LABELLED_KEYS = ("inputs", "labels", "lengths", "test_inputs", "test_labels", "test_lengths", "dt", "classes")


def _class_indices(path, key: str, labels: np.ndarray) -> np.ndarray:
    """Labels as int64 class indices: integers >= 0, also stored as floats (0.0, 1.0) or booleans."""
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        sample = labels.ravel()[:3].tolist()
        raise SymglepError(f"{path}: '{key}' must hold class indices, integers >= 0; got {labels.dtype} values "
                           f"such as {sample}")
    if labels.size and labels.min() < 0:
        raise SymglepError(f"{path}: '{key}' must hold class indices, integers >= 0; got {labels.min()}")
    return labels.astype(np.int64)


def _class_names(path, names, present: np.ndarray) -> list:
    """The names of the classes that occur (``present``, label indices): the labels themselves as text, or, with
    a ``classes`` array, ``classes[label]`` (so that an npz copy of a ``uea:`` set keeps its class names and
    order, and a classifier trained on one resumes on the other)."""
    if names is None:
        return [str(c) for c in present]
    names = np.asarray(names)
    if names.ndim != 1 or names.dtype.kind not in "US" or len(set(names.tolist())) != names.size:
        raise SymglepError(f"{path}: 'classes' must be a 1-D array of distinct class names (strings), got "
                           f"{names.dtype} of shape {names.shape}")
    if present.size and present.max() >= names.size:
        raise SymglepError(f"{path}: label {int(present.max())} has no name: 'classes' holds {names.size}")
    return [str(names[c]) for c in present]


def require_classes(name: str, train_labels, test_labels, classes: list) -> None:
    """One-line refusals of a class set no head can learn (``uea:`` sets and labelled npz files alike): one
    training class only, or test classes that no training series has (labels are indices into ``classes``)."""
    present = sorted(set(np.asarray(train_labels).tolist()))
    if len(present) < 2:
        raise SymglepError(f"{name}: the training series hold one class only ({classes[present[0]] if present else '-'}); "
                           "a classifier needs two or more")
    if test_labels is not None:
        unseen = sorted(set(np.asarray(test_labels).tolist()) - set(present))
        if unseen:
            raise SymglepError(f"{name}: test series hold class(es) {', '.join(str(classes[c]) for c in unseen)} that "
                               "no training series has: the head cannot learn them")


def _dt_of(path: str, arrays: dict) -> float | None:
    """The ``dt`` a data file stores (a finite positive scalar), or ``None``."""
    if "dt" not in arrays:
        return None
    stored = np.asarray(arrays["dt"])
    if stored.shape != () or not np.issubdtype(stored.dtype, np.number) or np.iscomplexobj(stored):
        got = f"shape {stored.shape}" if stored.shape != () else f"a {stored.dtype} value {stored.item()!r}"
        raise SymglepError(f"{path}: 'dt' must be a scalar number, got {got}")
    if not (np.isfinite(stored) and stored > 0):
        raise SymglepError(f"{path}: 'dt' must be a positive number, got {stored.item()}")
    return float(stored)


def _text_labels(path: str, arrays: dict) -> dict:
    """``arrays`` with text labels (``["walk", "run", ...]``, as ``.ts`` files spell them) turned into indices
    into ``classes`` (the file's, or the sorted distinct labels of both splits); integer labels pass as they are."""
    keys = [k for k in ("labels", "test_labels") if k in arrays]
    text = [k for k in keys if np.asarray(arrays[k]).dtype.kind in "US"]
    if not text:
        return arrays
    if len(text) != len(keys):
        raise SymglepError(f"{path}: 'labels' and 'test_labels' must both be class names or both class indices")
    names = (np.asarray(arrays["classes"]) if "classes" in arrays
             else np.unique(np.concatenate([np.asarray(arrays[k]).astype(str) for k in keys])))
    if names.dtype.kind not in "US":
        raise SymglepError(f"{path}: text labels need 'classes' of text too, got {names.dtype}")
    index = {str(name): i for i, name in enumerate(names.tolist())}
    out = dict(arrays, classes=names)
    for k in keys:
        values = np.asarray(arrays[k]).astype(str)
        unknown = sorted(set(values.tolist()) - set(index))
        if unknown:
            raise SymglepError(f"{path}: '{k}' holds {', '.join(map(repr, unknown[:3]))}, not among 'classes'")
        out[k] = np.array([index[v] for v in values.tolist()], dtype=np.int64)
    return out


def labelled_npz(path: str, learner, dt: float | None, substeps: int | None,
                 norm: Normalisation | None = None) -> Dataset | None:
    """A ``DATA.npz`` with integer ``labels (S,)`` and ``inputs (S, L, C)`` (optional ``lengths (S,)``;
    optional ``test_inputs``, ``test_labels``, ``test_lengths``): a classification data set, normalised
    as :func:`uea_task`; ``None`` when the file holds no ``labels`` (a regression data set,
    :func:`symglep.tasks.load_npz`)."""
    arrays = read_npz(path)
    if "labels" not in arrays:
        return None
    unknown = sorted(set(arrays) - set(LABELLED_KEYS))
    if unknown or "inputs" not in arrays:
        raise SymglepError(f"{path} holds labels: a classification data set has the keys "
                           f"{', '.join(LABELLED_KEYS)} ('inputs' and 'labels' required)"
                           + (f"; unknown: {', '.join(unknown)}" if unknown else ""))

    arrays = _text_labels(path, arrays)

    def split(prefix: str):
        raw = np.asarray(arrays[prefix + "inputs"])
        if not np.issubdtype(raw.dtype, np.number) or np.iscomplexobj(raw):
            raise SymglepError(f"{path}: '{prefix}inputs' must hold real numbers, got dtype {raw.dtype}")
        x = raw.astype(np.float64)
        if prefix + "labels" not in arrays:
            raise SymglepError(f"{path}: '{prefix}inputs' needs '{prefix}labels'")
        labels = np.asarray(arrays[prefix + "labels"])
        if x.ndim != 3 or labels.shape != (x.shape[0],):
            raise SymglepError(f"{path}: '{prefix}inputs' must be (S, L, C) and '{prefix}labels' (S,), got "
                               f"{x.shape} and {labels.shape}")
        if 0 in x.shape:
            what = ("no series" if x.shape[0] == 0 else "series of no samples" if x.shape[1] == 0 else
                    "no channels")
            raise SymglepError(f"{path}: '{prefix}inputs' of shape {x.shape} holds {what}")
        labels = _class_indices(path, prefix + "labels", labels)
        lengths = np.asarray(arrays.get(prefix + "lengths", np.full(x.shape[0], x.shape[1])))
        if (lengths.shape != labels.shape or lengths.min() < 1 or lengths.max() > x.shape[1]
                or not np.all(lengths == np.round(lengths))):
            raise SymglepError(f"{path}: '{prefix}lengths' must be (S,) integers in 1..{x.shape[1]}")
        series = [x[s, :int(n)] for s, n in enumerate(lengths)]  # past its length a series may hold NaN padding
        bad = next((s for s, z in enumerate(series) if not np.all(np.isfinite(z))), None)
        if bad is not None:
            if prefix + "lengths" in arrays:
                raise SymglepError(f"{path}: '{prefix}inputs' contains NaN or infinite values within "
                                   f"'{prefix}lengths' (series {bad})")
            raise SymglepError(f"{path}: '{prefix}inputs' contains NaN or infinite values (series {bad}) and there "
                               f"is no '{prefix}lengths': for series padded with NaN to a common length, give "
                               f"'{prefix}lengths', each series' number of samples (docs/training.md, labelled data files)")
        return series, labels

    series, labels = split("")
    orphans = sorted(key for key in ("test_labels", "test_lengths") if key in arrays and "test_inputs" not in arrays)
    if orphans:
        verb = "needs" if len(orphans) == 1 else "need"
        raise SymglepError(f"{path}: {' and '.join(repr(k) for k in orphans)} {verb} 'test_inputs'")
    test = split("test_") if "test_inputs" in arrays else None
    if test and test[0][0].shape[1] != series[0].shape[1]:
        raise SymglepError(f"{path}: 'test_inputs' has {test[0][0].shape[1]} channel(s), 'inputs' has "
                           f"{series[0].shape[1]}")
    # the classes are the labels that occur: {1, 2} or {0, 2} make two, not three
    present = np.unique(np.concatenate([labels] + ([test[1]] if test else [])))
    classes = _class_names(path, arrays.get("classes"), present)
    labels = np.searchsorted(present, labels)
    if test:
        test = (test[0], np.searchsorted(present, test[1]))
    require_classes(path, labels, test[1] if test else None, classes)
    dt = float(dt or _dt_of(path, arrays) or ClassificationTask.dt)
    substeps = int(substeps or ClassificationTask.substeps)
    norm = checked_normalisation(norm, series, path)
    longest = max(len(x) for x in series + (test[0] if test else [])) * substeps + 1
    data = series_dataset(series, labels, classes, norm, learner, dt, substeps, path, longest)
    if test:
        data.test = series_dataset(*test, classes, norm, learner, dt, substeps, f"{path} (test)", longest)
    data.info["normalisation"] = {"mean": norm.mean.tolist(), "std": norm.std.tolist()}
    return data


# -- the learner -------------------------------------------------------------------------------
@dataclass
class ClassifierStart:
    """Start parameters: the model's (as its learner draws them) and encoder + head (flat)."""

    model: object
    extra: np.ndarray


class ClassifierLearner(Learner):
    """Encoder, physical model and head behind the learner interface (module docstring).

    θ is the model's parameters, then ``encoder.E (n_u, C)``, ``encoder.e (n_u,)``,
    ``head.W (classes, n_r)``, ``head.b (classes,)``.
    """

    def __init__(self, inner, readout, channels: int, classes: int):
        if inner.integrator != "leapfrog":
            raise SymglepError("a classification head pools the readout with the leapfrog's node weights "
                               f"(theory §12); the {inner.integrator} integrator is not built for it yet")
        if not inner.n_inputs:
            raise SymglepError(f"{inner.system.name!r} has no inputs: a classification task drives the model "
                               "with the series")
        super().__init__(inner.system, inner.kernels)
        self.inner, self.readout = inner, readout
        self.channels, self.classes = int(channels), int(classes)
        self.kind, self.integrator = inner.kind, inner.integrator
        self.n, self.n_inputs, self.n_targets = inner.n, inner.n_inputs, inner.n_targets
        self.layout = list(inner.layout) + [
            ("encoder.E", (self.n_inputs, self.channels)), ("encoder.e", (self.n_inputs,)),
            ("head.W", (self.classes, self.n_targets)), ("head.b", (self.classes,))]
        self.sizes = [int(np.prod(shape)) for _, shape in self.layout[-4:]]
        self.n_model = sum(int(np.prod(s)) if s else 1 for _, s in inner.layout)

    def require_estimator(self, estimator: str) -> None:
        self.inner.require_estimator(estimator)

    def route(self, estimator: str) -> str:
        return self.inner.route(estimator)

    def sign_warnings(self, grouped: dict) -> list:
        return self.inner.sign_warnings(grouped)

    def parameter_named(self, name: str):
        return self.inner.parameter_named(name)  # the head's groups: none

    def damping_rates(self, theta) -> list:
        return self.inner.damping_rates(np.asarray(theta)[:self.n_model])

    def rest(self, sequences: int) -> tuple:
        return self.inner.rest(sequences)

    def draw(self, rng) -> ClassifierStart:
        """The model as its learner draws it; ``E``, ``W`` uniform in ±1/√(fan-in), zero biases."""
        E = rng.uniform(-1, 1, (self.n_inputs, self.channels)) / np.sqrt(self.channels)
        W = rng.uniform(-1, 1, (self.classes, self.n_targets)) / np.sqrt(self.n_targets)
        return ClassifierStart(self.inner.draw(rng), np.concatenate(
            [E.ravel(), np.zeros(self.n_inputs), W.ravel(), np.zeros(self.classes)]))

    def flat(self, params) -> np.ndarray:
        if isinstance(params, ClassifierStart):
            return np.concatenate([self.inner.flat(params.model), params.extra])
        return np.asarray(params, dtype=np.float64).reshape(-1)

    def load_parameters(self, path: str) -> np.ndarray:
        raise SymglepError(f"{path}: a classifier resumes from its own --save file (it holds the encoder and "
                           "head as well)")

    def split(self, theta) -> tuple:
        """``(model θ, E, e, W, b)`` of the flat θ."""
        theta = np.asarray(theta, dtype=np.float64)
        parts, pos = [theta[:self.n_model]], self.n_model
        for (_, shape), size in zip(self.layout[-4:], self.sizes):
            parts.append(theta[pos:pos + size].reshape(shape))
            pos += size
        return tuple(parts)

    def encode(self, E, e, x) -> np.ndarray:
        return np.ascontiguousarray(x @ E.T + e)

    def pooled(self, theta, u, mask, q0, x0, dt, t0=0.0, start_velocity=False) -> tuple:
        """``(r̄, T)`` of the model driven by ``u``: free passes of :data:`CHUNK` nodes, each
        continuing from the last one's end state, so nothing of length K is recorded."""
        nodes = u.shape[1]
        acc, q, x, velocity = 0.0, q0, x0, start_velocity
        for lo in range(0, nodes - 1, CHUNK):
            hi = min(lo + CHUNK, nodes - 1)
            times = t0 + np.arange(lo, hi + 1) * dt
            qr, seen, qT, pT = self.inner.readout_states(theta, np.ascontiguousarray(u[:, lo:hi + 1]), q, x, dt,
                                                         t0 + lo * dt, velocity)
            w = mask[:, lo:hi + 1].copy()
            if lo:
                w[:, 0] = 0.0  # node lo closed the previous chunk
            acc = acc + np.einsum("bk,bkr->br", w, self.readout(qr, seen, times[None, :]))
            q, x, velocity = qT, pT, False
        total = mask.sum(axis=1)
        return acc / total[:, None], total

    @staticmethod
    def decode(y) -> tuple:
        """``(mask (b, K+1), labels (b,))`` of a classification ``y`` (module docstring)."""
        return y.sum(axis=2), y.sum(axis=1).argmax(axis=1)

    def forward(self, theta, u, y, q0, x0, dt, t0=0.0, start_velocity=False) -> tuple:
        th, E, e, W, b = self.split(theta)
        mask, labels = self.decode(y)
        inputs = self.encode(E, e, u)
        r_bar, total = self.pooled(th, inputs, mask, q0, x0, dt, t0, start_velocity)
        return head_pass(W, b, r_bar, total, mask, labels, dt), labels, inputs

    def losses(self, theta, u, y, q0, x0, dt, t0=0.0, start_velocity=False) -> np.ndarray:
        return self.forward(theta, u, y, q0, x0, dt, t0, start_velocity)[0].loss

    def scores(self, theta, data: Dataset, start=None) -> dict:
        """``{"loss", "accuracy"}`` of a whole split at ``theta`` (``start``: a learned shared start)."""
        q0, x0 = data.q0, data.x0
        if start is not None:
            q0, x0 = (np.ascontiguousarray(np.broadcast_to(a, (data.size, a.size))) for a in start)
        hp, labels, _ = self.forward(theta, data.u, data.y, q0, x0, data.dt, data.t0, data.start_velocity)
        return {"loss": float(hp.loss.mean()), "accuracy": float(np.mean(hp.predicted == labels))}

    def gradients(self, estimator, beta, theta, u, y, q0, x0, start_velocity, dt, t0=0.0, with_start=False):
        """Per-sequence ``(loss, dθ[, dq0, dx0])``: the head's loss, and the model's gradient from its
        estimator driven by the head's cotangents (theory §12), chained through the encoder."""
        hp, _, inputs = self.forward(theta, u, y, q0, x0, dt, t0, start_velocity)
        th = self.split(theta)[0]
        out = self.inner.gradients(estimator, beta, th, inputs, hp.cotangent, q0, x0, start_velocity, dt, t0,
                                   with_start=with_start, with_inputs=True)
        du = out[-1]
        b = len(hp.loss)
        dE = np.einsum("bkm,bkc->bmc", du, u).reshape(b, -1)
        grad = np.concatenate([out[1], dE, du.sum(axis=1), hp.dW.reshape(b, -1), hp.db], axis=1)
        return (hp.loss, grad, *out[2:-1])
