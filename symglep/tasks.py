"""Training data for ``symglep train``: the built-in ``sine`` and ``target`` tasks and ``DATA.npz`` files.

A :class:`Dataset` is ``S`` sequences of ``K`` steps of ``dt`` (shapes as in
``symglep.compile``): inputs ``u (S, K+1, n_u)``, targets ``y (S, K+1, n_y)``,
initial coordinates ``q0 (S, n)`` and initial momenta ``p0 (S, n)`` (or
velocities ``v0``). ``DATA.npz`` holds the same arrays under the keys
``inputs``, ``targets``, optional ``q0`` and one of ``p0``/``v0`` (zeros when
absent) and an optional scalar ``dt`` (docs/training.md).

The ``sine`` task drives every input with one sine wave, ``u(t) = A sin(ωt + φ_s)``
(a random phase ``φ_s`` per sequence), and asks the readout to reproduce what a
*teacher* copy of the model, with parameters ``θ*`` drawn from the seed, puts
on its readout under the same drive: the drive delayed (phase-shifted) and
reshaped by the system. The readout is read off the cost: the target value
that makes the cost stationary, ``∂c/∂y = 0`` (``y = x3`` for
``c = (x3 − y)²/2``). A teacher makes the target reachable: an undamped system
never forgets its transients, and in steady state it can only answer a sine in
phase or in antiphase, so a fixed phase-shifted sine is not a target it can track.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .diagnose import NumericalError, dt_advice
from .errors import SymglepError
from .fileio import read_npz
from .learners import data_sizes, learner_for
from .model import Model
from .network.model import ArrayModel
from .run_arguments import real_array
from .stack.model import Stack


@dataclass
class Dataset:
    """``S`` training sequences (module docstring for the shapes)."""

    u: np.ndarray
    y: np.ndarray
    q0: np.ndarray
    x0: np.ndarray                 # p0, or v0 when start_velocity
    dt: float
    start_velocity: bool = False
    t0: float = 0.0
    name: str = "data"
    info: dict = field(default_factory=dict)
    classes: list | None = None    # a classification task: y holds masked one-hot labels (symglep.classification)
    test: "Dataset | None" = None  # the held-out split, scored every epoch

    def __post_init__(self):
        """Lists and other array-likes as float64 arrays (a list made training an AttributeError on .shape)."""
        for name, label in (("u", "the inputs u"), ("y", "the targets y"), ("q0", "the start q0"),
                            ("x0", "the start momenta or velocities x0")):
            value = getattr(self, name)
            if value is not None and not isinstance(value, np.ndarray):
                setattr(self, name, real_array(value, label).astype(np.float64))

    @property
    def size(self) -> int:
        return self.u.shape[0]

    @property
    def steps(self) -> int:
        return self.u.shape[1] - 1

    def start(self) -> dict:
        """The keyword (``p0`` or ``v0``) and array of the initial momenta or velocities."""
        return {"v0" if self.start_velocity else "p0": self.x0}


def _teacher_run(learner, theta, u, q0, p0, dt: float, task: str, seed: int):
    """The teacher's recorded run; a kernel failure says that it is the teacher's (parameters drawn from
    the seed, not the ones being trained) and what changes it."""
    try:
        return learner.readout_run(theta, u, q0, p0, dt)
    except NumericalError as exc:
        start = ("every sequence starts at rest at q = 0, which may lie where the mass matrix is singular "
                 "(symglep derive names where); " if task == "sine" and exc.step == 0 else "")
        raise NumericalError(f"the teacher run of the {task} task (its parameters drawn from --seed {seed}, not "
                             f"those trained or resumed) failed: {str(exc).rstrip('.')}; {start}try another --seed, "
                             f"{dt_advice(str(exc), 'a smaller --dt, ')}or give your own DATA.npz",
                             exc.phase, exc.sequence, exc.step,
                             exc.state) from None


#: targets above this size mean that the sine task's teacher ran away (its drawn parameters make the model unstable)
RUNAWAY_TARGETS = 1e6


def _brief(values: dict, shown: int = 6) -> str:
    """``k = 0.5, m = 1.2, ...``: the first scalar parameters of a teacher, for a one-line message."""
    items = [(k, v) for k, v in values.items() if isinstance(v, (int, float))]
    text = ", ".join(f"{k} = {v:.3g}" for k, v in items[:shown])
    return text + (", ..." if len(items) > shown or len(items) < len(values) else "")


@dataclass(frozen=True)
class SineTask:
    """Defaults of the ``sine`` task (tuned on examples/oscillator_chain.py, docs/training.md)."""

    sequences: int = 8
    steps: int = 400
    dt: float = 0.05
    omega: float = 0.8
    amplitude: float = 0.5


def readout_map(model: Model, cost=None):
    """``f(q, u, t) -> y``: the targets that make the cost stationary, ``∂c/∂y = 0``.

    ``cost`` defaults to the running cost; the ``target`` task passes the terminal cost. A target
    that ``cost`` does not read is read off the model's other cost (a model with a running target
    ``y`` and a final-time target ``y_T``, examples/oscillator_chain_terminal.py).

    Returns a function of arrays ``q (..., n)``, ``u (..., n_u)``, ``t (...)``
    giving ``(..., n_y)``. Raises :class:`SymglepError` when the equations have
    no unique closed-form solution.
    """
    ys = list(model.y)
    terminal = cost is not None
    costs = [("terminal cost" if terminal else "cost", model.cost if cost is None else cost),
             ("cost" if terminal else "terminal cost", model.cost if terminal else model.terminal_cost)]
    found: dict = {}
    for which, c in costs:
        c = sp.sympify(c).subs(model.constants)
        mine = [y for y in ys if y not in found and c.has(y)]
        if not mine:
            continue
        try:
            solutions = sp.solve([sp.diff(c, y) for y in mine], mine, dict=True)
        except (NotImplementedError, ValueError):
            solutions = []
        if len(solutions) != 1 or set(solutions[0]) != set(mine) or any(
                solutions[0][y].free_symbols & set(ys) for y in mine):
            raise SymglepError(f"the task needs a readout: the {which} of {model.name!r} must fix each target "
                               "by dc/dy = 0 (e.g. c = (x - y)**2/2); give your own DATA.npz instead"
                               + _terminal_hint(model))
        found.update(solutions[0])
    if len(found) != len(ys):
        missing = ", ".join(str(y) for y in ys if y not in found)
        raise SymglepError(f"the task needs a readout: no cost of {model.name!r} reads the target(s) {missing}; "
                           "give your own DATA.npz instead" + _terminal_hint(model))
    return scalar_readout_function(model, [found[y] for y in ys])


def _terminal_hint(model) -> str:
    """For a model with a terminal cost: the task that trains it (its targets at the final node)."""
    terminal = getattr(model, "terminal", None) if hasattr(model, "readout") else getattr(model, "terminal_cost", 0)
    if terminal is None or terminal == 0:
        return ""
    return "; or --task target, which trains the terminal cost c_T (a teacher's final state as its targets)"


def scalar_readout_function(model: Model, exprs: list):
    """``f(q, u, t) -> (..., len(exprs))``: expressions of a scalar model's coordinates, inputs and
    time evaluated on arrays ``q (..., n)``, ``u (..., n_u)``, ``t (...)``."""
    fn = sp.lambdify(list(model.q) + list(model.u) + [model.time], exprs, modules="numpy")

    def readout(q, u, t):
        q, u, t = np.asarray(q), np.asarray(u), np.asarray(t)
        values = fn(*[q[..., i] for i in range(q.shape[-1])], *[u[..., i] for i in range(u.shape[-1])], t)
        shape = np.broadcast_shapes(q.shape[:-1], u.shape[:-1], t.shape)
        return np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for v in values], axis=-1)

    return readout


def array_readout_function(element, expr):
    """``f(q_r, u, t) -> (..., n_y)``: ``expr`` of a cost element's coordinate slots evaluated on the
    readout units' coordinates ``q_r (..., n_y, dim)``."""
    qs = sorted((s for s in element.slots if s.role == "q"), key=lambda s: s.comp)
    fn = sp.lambdify([s.symbol for s in qs], expr, modules="numpy")

    def readout(q, u, t):
        q = np.asarray(q)
        value = fn(*[q[..., s.comp] for s in qs])
        return np.broadcast_to(np.asarray(value, dtype=np.float64), q.shape[:-1]).copy()

    return readout


def array_readout_map(model, element=None):
    """``f(q_r, u, t) -> y``: the element readout of an array model's cost ``Σ_r c(q[r], y[r])``,
    ``∂c/∂y_r = 0`` solved once for ``y_r`` (``y_r = x_r`` for ``c = (x[r] − y[r])²/2``).
    ``element`` defaults to the running cost's; the ``target`` task passes the terminal cost's.

    Returns a function of ``q (..., n_y, dim)`` (the readout units' coordinates) giving ``(..., n_y)``.
    """
    element = model.readout if element is None else element
    ys = [s.symbol for s in element.slots if s.role == "y"]
    cost = element.cost
    solutions = []
    if len(ys) == 1:
        try:
            solutions = sp.solve(sp.diff(cost, ys[0]), ys[0], dict=True)
        except (NotImplementedError, ValueError):
            solutions = []
    if len(solutions) != 1 or ys[0] not in solutions[0] or solutions[0][ys[0]].free_symbols & set(ys):
        which = "cost" if element is model.readout else "terminal cost"
        raise SymglepError(f"the task needs a readout: the {which} element of {model.name!r} must fix y[r] by "
                           "dc/dy = 0 (e.g. Sum((x[r] - y[r])**2/2, r)); give your own DATA.npz instead"
                           + (_terminal_hint(model) if element is model.readout else ""))
    return array_readout_function(element, solutions[0][ys[0]])


def readout_of(system):
    """The readout ``f(q, u, t) -> y`` that the task's targets are read with, for any kind:
    the cost's (scalar models), the cost element's (array models), the top unit's (stacks)."""
    if isinstance(system, ArrayModel):
        return array_readout_map(system)
    if isinstance(system, Stack):
        top = system.units[-1]
        return array_readout_map(top) if isinstance(top, ArrayModel) else readout_map(top)
    return readout_map(system)


def sine_task(system, kernels, seed: int = 0, dt: float | None = None,
              config: SineTask = SineTask()) -> tuple[Dataset, object]:
    """The ``sine`` data set and the student's start parameters (module docstring), for any kind.

    The seed draws, in order: the teacher's parameters, the start parameters,
    the phases of the sequences. Every sequence starts at rest (array models: at their
    ``initial_positions``). Returns ``(dataset, start_parameters)``, the start as the
    kind's learner draws it (:mod:`symglep.learners`).
    """
    learner = learner_for(system, kernels)
    if not learner.n_inputs or not learner.n_targets:
        raise SymglepError(f"the sine task drives the model's inputs and tracks its targets; "
                           f"{system.name!r} has {learner.n_inputs} input(s) and {learner.n_targets} target(s)")
    readout = readout_of(system)
    dt = float(dt or config.dt)
    rng = np.random.default_rng(seed)
    teacher = learner.flat(learner.draw(rng))
    start = learner.draw(rng)
    phases = rng.uniform(0.0, 2 * np.pi, config.sequences)
    S, K = config.sequences, config.steps
    t = np.arange(K + 1) * dt
    drive = config.amplitude * np.sin(config.omega * t[None, :] + phases[:, None])
    u = np.repeat(drive[:, :, None], learner.n_inputs, axis=2)
    q0, p0 = learner.rest(S)
    q, seen = _teacher_run(learner, teacher, u, q0, p0, dt, "sine", seed)
    y = np.ascontiguousarray(readout(q, seen, t[None, :]))
    if not np.all(np.isfinite(y)):
        raise SymglepError(f"the teacher run of the sine task diverged for {system.name!r} (dt = {dt}); "
                           "try a smaller --dt or give your own DATA.npz")
    if np.max(np.abs(y)) > RUNAWAY_TARGETS:  # finite, but no task to learn: the teacher's run grew without bound
        raise SymglepError(f"the teacher of the sine task (its parameters drawn from --seed {seed}: "
                           f"{_brief(learner.parameters_json(teacher))}) runs away: its targets reach "
                           f"{np.max(np.abs(y)):.1e} (an unstable model at those parameters, e.g. a spring of the wrong "
                           "sign); try another --seed, declare the parameters' signs, or give your own DATA.npz")
    info = {"task": "sine", "omega": config.omega, "amplitude": config.amplitude,
            "teacher": learner.parameters_json(teacher)}
    return Dataset(u, y, q0, p0, dt, name="sine", info=info), start


@dataclass(frozen=True)
class TargetTask:
    """Defaults of the ``target`` task (HEB's setting, docs/echo-family.md)."""

    sequences: int = 1
    steps: int = 200
    dt: float = 0.02
    spread: float = 1.0


def terminal_readout_of(system):
    """The readout ``f(q, u, t) -> y`` of the terminal cost (``∂c_T/∂y = 0``, theory §10) for any kind:
    a scalar model's, an array model's terminal cost element, a stack's top unit's."""
    model = system.units[-1] if isinstance(system, Stack) else system
    if isinstance(model, ArrayModel):
        if model.terminal is None:
            raise SymglepError(f"the target task needs a terminal cost (theory §10); {model.name!r} has none")
        return array_readout_map(model, model.terminal)
    if model.terminal_cost == 0 or not model.y:
        raise SymglepError(f"the target task needs a terminal cost with targets (theory §10); {model.name!r} has "
                           f"{'no terminal cost' if model.terminal_cost == 0 else 'no targets'}")
    return readout_map(model, model.terminal_cost)


def _running_only_targets(system) -> list:
    """Indices of a scalar model's targets that its terminal cost does not read (the running cost's)."""
    if not isinstance(system, Model):
        return []
    return [i for i, y in enumerate(system.y) if not system.terminal_cost.has(y)]


def target_task(system, kernels, seed: int = 0, dt: float | None = None,
                config: TargetTask = TargetTask()) -> tuple[Dataset, object]:
    """The ``target`` data set: reach a final state (HEB, theory §10), for any kind whose (top unit's)
    cost has a terminal part. Returns ``(dataset, start parameters)``.

    The seed draws, in order: the parameters (the teacher's, and the start of training), a
    teacher's initial state ``(q0*, p0*)`` uniform in ``[−spread, spread]``, and the student's
    initial state likewise. The targets are constant in time: the readout of the terminal cost
    (``∂c_T/∂y = 0``) at the teacher's final state (a target only the running cost reads follows
    the teacher's run instead), so the task is reachable with the parameters
    fixed, by learning the initial state alone. Inputs are zero.
    """
    readout = terminal_readout_of(system)
    learner = learner_for(system, kernels)
    dt = float(dt or config.dt)
    rng = np.random.default_rng(seed)
    params = learner.draw(rng)
    S, K, n = config.sequences, config.steps, learner.n
    teacher_q, teacher_p = (rng.uniform(-config.spread, config.spread, (S, n)) for _ in range(2))
    q0, p0 = (rng.uniform(-config.spread, config.spread, (S, n)) for _ in range(2))
    u = np.zeros((S, K + 1, learner.n_inputs))
    q, seen = _teacher_run(learner, learner.flat(params), u, teacher_q, teacher_p, dt, "target", seed)
    final = readout(q[:, -1], seen[:, -1], np.full(S, K * dt))
    y = np.repeat(final[:, None, :], K + 1, axis=1)
    running = _running_only_targets(system)
    if running:  # targets only the running cost reads follow the teacher's run: the task stays reachable
        y[..., running] = readout(q, seen, np.arange(K + 1)[None, :] * dt)[..., running]
    if not np.all(np.isfinite(y)):
        raise SymglepError(f"the teacher run of the target task diverged for {system.name!r} (dt = {dt})")
    y = np.ascontiguousarray(y)
    info = {"task": "target", "teacher_q0": teacher_q.tolist(), "teacher_p0": teacher_p.tolist()}
    return Dataset(u, y, q0, p0, dt, name="target", info=info), params


NPZ_KEYS = ("inputs", "targets", "q0", "p0", "v0", "dt")


def load_npz(path: str, model, dt: float | None = None) -> Dataset:
    """Read ``DATA.npz`` (module docstring) for any kind of system; every shape problem is a one-line
    :class:`SymglepError`. An array model's size is read off ``q0`` (or ``p0``), else its default size;
    every kind starts from momenta ``p0`` or velocities ``v0``."""
    arrays = read_npz(path)
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    if unknown:
        raise SymglepError(f"{path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(NPZ_KEYS)}")
    sizes = data_sizes(model)
    n_u, n_y, n = sizes["n_u"], sizes["n_y"], sizes["n"]
    if "targets" not in arrays:
        raise SymglepError(f"{path} has no 'targets' array of shape (S, K+1, {n_y})")
    y = _float_array(path, "targets", arrays["targets"], 3)
    S, nodes = y.shape[0], y.shape[1]
    if y.shape[2] != n_y:
        raise SymglepError(f"{path}: 'targets' has shape {y.shape}; model {model.name!r} has {n_y} target(s): "
                           f"expected (S, K+1, {n_y})")
    if S < 1 or nodes < 2:
        raise SymglepError(f"{path}: 'targets' has shape {y.shape}; need S >= 1 sequences of K+1 >= 2 nodes")
    if "inputs" in arrays:
        u = _float_array(path, "inputs", arrays["inputs"], 3)
        if u.shape[2] != n_u:
            raise SymglepError(f"{path}: 'inputs' has shape {u.shape}; model {model.name!r} has {n_u} input(s): "
                               f"expected (S, K+1, {n_u})")
        if u.shape[:2] != (S, nodes):
            raise SymglepError(f"{path}: 'inputs' hold {u.shape[0]} sequence(s) of {u.shape[1]} nodes, 'targets' "
                               f"{S} of {nodes}: they must agree (one row of each per node k = 0..K)")
    elif n_u:
        raise SymglepError(f"{path} has no 'inputs' array; model {model.name!r} has {n_u} input(s): "
                           f"expected shape (S, K+1, {n_u})")
    else:
        u = np.zeros((S, nodes, 0))
    if "p0" in arrays and "v0" in arrays:
        raise SymglepError(f"{path} holds both 'p0' and 'v0'; give the initial momenta or the velocities")
    if n is None:  # an array model: as many units as the start has, else its default size
        given = [arrays[k] for k in ("q0", "p0", "v0") if k in arrays and np.ndim(arrays[k]) == 2]
        n = given[0].shape[1] if given else sizes["default_n"]
        if n % sizes["dim"] or n // sizes["dim"] < 2:
            need = ("one per unit, at least 2" if sizes["dim"] == 1 else
                    f"{sizes['dim']} per unit (a multiple of {sizes['dim']}), at least 2 units")
            raise SymglepError(f"{path}: its start (q0, p0 or v0) has {n} coordinate(s) per sequence, which sets the "
                               f"array model {model.name!r}'s number of units; it needs {need}")
    start = {}
    for key in ("q0", "p0", "v0"):
        if key in arrays:
            arr = _float_array(path, key, arrays[key], 2)
            if arr.shape != (S, n):
                raise SymglepError(f"{path}: '{key}' has shape {arr.shape}, expected {(S, n)}")
            start[key] = arr
    if "dt" in arrays:
        stored = arrays["dt"]
        if stored.shape != () or not np.issubdtype(stored.dtype, np.number):
            got = f"shape {stored.shape}" if stored.shape != () else f"a {stored.dtype} value {stored.item()!r}"
            raise SymglepError(f"{path}: 'dt' must be a scalar number, got {got}")
        dt = dt or float(stored)
    if dt is None:
        raise SymglepError(f"{path} has no 'dt'; store one in the file or pass --dt")
    if not (np.isfinite(dt) and dt > 0):
        raise SymglepError(f"dt must be a positive number, got {dt}")
    velocity = "v0" in start
    return Dataset(
        u=np.ascontiguousarray(u), y=np.ascontiguousarray(y),
        q0=start.get("q0", np.zeros((S, n))), x0=start.get("v0", start.get("p0", np.zeros((S, n)))),
        dt=float(dt), start_velocity=velocity, name=os.path.basename(path), info={"task": path},
    )


def _float_array(path: str, key: str, arr: np.ndarray, ndim: int) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise SymglepError(f"{path}: '{key}' must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise SymglepError(f"{path}: '{key}' must have {ndim} dimensions, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise SymglepError(f"{path}: '{key}' contains NaN or infinite values")
    return arr
