"""What the trainer needs from each kind's compiled kernels (docs/training.md, theory §5, §9).

:func:`learner_for` wraps the kernels of a :class:`~symglep.Model`, an array model or a
:class:`~symglep.Stack` in one interface, so :mod:`symglep.training`, :mod:`symglep.tasks` and
the Dask workers never ask which kind they train:

* ``names`` / ``layout`` — the flat parameter vector θ and its element names (array models:
  every element of every array parameter, ``W[0,1]``, ``k[3]``; stacks ``unit0.k0``, ``glue1.b0``);
  :func:`group_parameters` / :func:`flatten_parameters` turn θ into the JSON of a training file
  (array parameters as nested lists) and back;
* ``draw(rng)`` — start and teacher parameters (scalars as ``symglep check`` draws them, arrays
  as :func:`symglep.network.check.draw_parameters`, stacks :meth:`Stack.draw_parameters`);
* ``readout_run`` — a recorded free pass: the coordinates and inputs of the unit the cost reads
  (the task's teacher runs); ``losses`` — the free pass's per-sequence loss;
* ``gradients`` — per-sequence ``(loss (b,), dθ (b, n_θ)[, dq0, dx0])`` by estimator: ``echo``
  (centred, theory §5; stacks: the stacked echo, §9), ``echo-one-sided``, ``echo4``, ``bptt``.

Every kind takes the same arrays: ``u (b, K+1, n_u)``, ``y (b, K+1, n_y)``, ``q0``, ``x0 (b, n)``
(``x0`` a momentum, or a velocity where ``start_velocity``).
"""

from __future__ import annotations

import numpy as np

from .check import declared_sign, load_params, start_positions
from .check import sign_warnings as scalar_sign_warnings
from .dissipation import damping_rate_at
from .errors import SymglepError
from .estimators import ORDERS, sequence_gradients
from .network.check import draw_parameters as draw_array_parameters
from .network.check import load_array_params
from .network.check import sign_warnings as array_sign_warnings
from .parameter_values import draw_parameters, element_names
from .runtime import NoExactRouteError
from .systems import compile as compile_system
from .systems import kind_of


def compile_kernels(system, integrator: str = "auto", dt: float | None = None, cache: str | None = None):
    """``symglep.compile(system)`` with ``integrator`` (a stack: every unit's, theory §9)."""
    return compile_system(system, dt=dt, cache=cache, integrator=integrator)


def data_sizes(system) -> dict:
    """What a data set for ``system`` holds: ``n_u`` inputs, ``n_y`` targets, the state width ``n``
    (``None`` for array models: their size is a run-time choice, a multiple of ``dim``); every kind
    accepts a velocity start ``v0``."""
    kind = kind_of(system)
    if kind == "scalar":
        return {"n_u": len(system.u), "n_y": len(system.y), "n": system.n, "dim": 1, "default_n": system.n}
    if kind == "array":
        return {"n_u": system.sizes["m"], "n_y": system.sizes["r"], "n": None, "dim": system.dim,
                "default_n": system.n}
    return {"n_u": system.n_inputs, "n_y": system.n_targets, "n": system.n, "dim": 1,
            "default_n": system.n}


def group_parameters(layout: list, theta: np.ndarray) -> dict:
    """``{name: float or nested list}`` of the flat ``theta`` (JSON of a training file)."""
    out, pos = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape)) if shape else 1
        part = np.asarray(theta[pos:pos + size], dtype=np.float64)
        out[name] = float(part[0]) if not shape else part.reshape(shape).tolist()
        pos += size
    return out


def flatten_parameters(values: dict) -> tuple:
    """``(layout, θ)`` of ``{name: number or nested list}`` (:func:`group_parameters` inverted)."""
    layout, parts = [], []
    for name, value in values.items():
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise SymglepError(f"parameter {name} must be a number or a (nested) list of numbers") from None
        layout.append((name, arr.shape))
        parts.append(arr.reshape(-1))
    return layout, (np.concatenate(parts) if parts else np.zeros(0))


def rest_positions(model, size: int | None = None) -> np.ndarray:
    """A model's flat start coordinates: its ``initial_positions`` (one draw, seeded) where it declares them,
    else zeros; ``(size · dim,)`` for an array model (``size`` units), ``(n,)`` for a scalar model."""
    if model.initial_positions is None:
        return np.zeros(model.n if size is None else size * model.dim)
    if size is None:
        return start_positions(model, np.random.default_rng(0))[0]
    return np.asarray(model.initial_positions(size, np.random.default_rng(0)), dtype=np.float64).reshape(-1)


class Learner:
    """The common part: θ's layout and names, the free loss (module docstring)."""

    kind = ""
    integrator = "leapfrog"

    def __init__(self, system, kernels):
        self.system, self.kernels = system, kernels

    @property
    def names(self) -> list:
        """Element names of the flat θ, in kernel order."""
        return [e for name, shape in self.layout for e in element_names(name, shape)]

    def parameters_json(self, theta) -> dict:
        return group_parameters(self.layout, np.asarray(theta, dtype=np.float64))

    def require_estimator(self, estimator: str) -> None:
        """Refuse an estimator the kind cannot serve (its capability reason)."""
        self.system.capabilities.require("estimator", estimator)

    def route(self, estimator: str) -> str:
        """The route (``symglep.routes``) the gradients of ``estimator`` take: the plain echo for arrays and stacks
        (every unit even in velocity, theory §4, §9), BPTT for ``bptt``."""
        return "bptt" if estimator == "bptt" else "echo"

    def sign_warnings(self, grouped: dict) -> list:
        """A warning per parameter whose values (``{name: value or nested list}``) contradict its declared
        sign; none for a kind whose parameters declare none (stacks' glue, element-named units)."""
        return []

    def parameter_named(self, name: str):
        """The declared parameter (a SymPy symbol or an array parameter) that θ's group ``name`` holds; ``None``
        for a group no parameter declares (stacks' glue, a classifier's head)."""
        return next((p for p in self.system.parameters if p.name == name), None)

    def declared_signs(self) -> np.ndarray:
        """``+1``, ``−1`` or ``0`` per entry of the flat θ: its parameter declared ``positive=True``,
        ``negative=True``, or neither (what :func:`symglep.training.kept_signs` keeps across a step)."""
        signs = []
        for name, shape in self.layout:
            sign = declared_sign(self.parameter_named(name))
            signs += [{"positive": 1, "negative": -1}.get(sign, 0)] * (int(np.prod(shape)) if shape else 1)
        return np.array(signs, dtype=np.int64)

    def damping_rates(self, theta) -> list:
        """``(label, γ)`` of each part damped uniformly at rate γ > 0 at ``theta`` (its echo runs anti-damped and
        amplifies round-off by e^{γT}, theory §7); none for an undamped system."""
        return []

    def rest(self, sequences: int) -> tuple:
        """``(q0, p0)`` of sequences that start at rest at the origin."""
        return np.zeros((sequences, self.n)), np.zeros((sequences, self.n))

    def readout_run(self, theta, u, q0, x0, dt, t0=0.0, start_velocity=False) -> tuple:
        """A recorded free pass: the coordinates the cost reads and the inputs they saw (the
        first two of the kind's ``readout_states``, which adds the end state ``(qT, pT)``)."""
        return self.readout_states(theta, u, q0, x0, dt, t0, start_velocity)[:2]

    @staticmethod
    def _start(x0, start_velocity: bool) -> dict:
        """The kernels' keyword of the start: ``v0`` (velocities) or ``p0`` (momenta)."""
        return {"v0" if start_velocity else "p0": x0}


class ScalarLearner(Learner):
    """A :class:`~symglep.Model`'s :class:`~symglep.runtime.Kernels`."""

    kind = "scalar"

    def __init__(self, model, kernels, size=None):
        super().__init__(model, kernels)
        self.n, self.n_inputs, self.n_targets = model.n, len(model.u), len(model.y)
        self.layout = [(s.name, ()) for s in model.parameters]
        self.integrator = kernels.integrator

    def sign_warnings(self, grouped: dict) -> list:
        return scalar_sign_warnings(self.system, [grouped[s.name] for s in self.system.parameters])

    def damping_rates(self, theta) -> list:
        gamma = damping_rate_at(self.system, theta)
        return [("the model", gamma)] if gamma > 0 else []

    def rest(self, sequences: int) -> tuple:
        """At rest; at the model's ``initial_positions`` (one draw, seeded) where it declares them (a start
        away from a singular set, e.g. Euler angles at sin θ = 0)."""
        return np.repeat(rest_positions(self.system)[None], sequences, axis=0), np.zeros((sequences, self.n))

    def require_estimator(self, estimator: str) -> None:
        super().require_estimator(estimator)
        if estimator != "bptt":
            # the model's exact route (echo, flipped echo or digital PFVP, theory §4), which the gradient
            # calls take by default; only a model with none (a non-uniform Rayleigh force) is refused
            try:
                self.kernels.route("auto")
            except NoExactRouteError:
                why = self.system.rayleigh.why if self.system.rayleigh is not None else "no exact route"
                raise NoExactRouteError(
                    f"model {self.system.name!r}: the Rayleigh dissipation is kept as a non-variational force "
                    f"({why}): no echo is exact for it (theory §7), so the echo estimators are refused; train with "
                    "--estimator bptt (BPTT of the same steps)") from None

    def route(self, estimator: str) -> str:
        """The model's exact route for the contrastive estimators: echo, flipped echo or digital PFVP (theory §4)."""
        return "bptt" if estimator == "bptt" else self.kernels.route("auto")

    def draw(self, rng) -> dict:
        return draw_parameters(self.system, rng)

    def flat(self, params) -> np.ndarray:
        return self.kernels.theta(params)

    def load_parameters(self, path: str) -> np.ndarray:
        return self.flat(load_params(path, self.system))

    def readout_states(self, theta, u, q0, x0, dt, t0=0.0, start_velocity=False) -> tuple:
        placeholder = np.zeros(u.shape[:2] + (self.n_targets,))
        out = self.kernels.free(theta, q0, u=u, y=placeholder, dt=dt, t0=t0, record=True,
                                **self._start(x0, start_velocity))
        return out[3], u, out[0], out[1]

    def losses(self, theta, u, y, q0, x0, dt, t0=0.0, start_velocity=False) -> np.ndarray:
        return self.kernels.free(theta, q0, u=u, y=y, dt=dt, t0=t0, **self._start(x0, start_velocity))[2]

    def gradients(self, estimator, beta, theta, u, y, q0, x0, start_velocity, dt, t0=0.0, with_start=False,
                  with_inputs=False):
        return sequence_gradients(self.kernels, estimator, beta, theta, u, y, q0, x0, start_velocity, dt, t0,
                                  with_start=with_start, with_inputs=with_inputs)


class ArrayLearner(Learner):
    """An array model's :class:`~symglep.network.runtime.NetworkKernels` at ``size`` units (docs/networks.md).

    θ is every element of every parameter in declaration order (the kernels' flat layout);
    the number of units of a call is read off ``q0``, so one learner serves any size.
    """

    kind = "array"

    def __init__(self, model, kernels, size=None):
        super().__init__(model, kernels)
        self.integrator = kernels.module.INTEGRATOR
        self.size = int(size or model.size)
        self.n = self.size * model.dim
        self.n_inputs, self.n_targets = model.sizes["m"], model.sizes["r"]
        self.layout = self._layout(self.size)

    def _layout(self, units: int) -> list:
        ne = len(self.kernels.edges(units))
        return [(p.name, self.system.parameter_shape(p, units, self.n_inputs, ne)) for p in self.system.parameters]

    def _as_dict(self, theta, q0) -> dict:
        """``{name: array}`` of the flat ``theta`` at the size of ``q0``."""
        units = np.shape(q0)[-1] // self.system.dim
        layout = self.layout if units == self.size else self._layout(units)
        theta = np.asarray(theta, dtype=np.float64)
        total = sum(int(np.prod(s)) if s else 1 for _, s in layout)
        if theta.shape != (total,):
            raise SymglepError(f"array model {self.system.name!r} at {units} units has {total} parameter "
                               f"values, got {theta.size}")
        out, pos = {}, 0
        for name, shape in layout:
            size = int(np.prod(shape)) if shape else 1
            out[name] = theta[pos:pos + size].reshape(shape)
            pos += size
        return out

    def draw(self, rng) -> dict:
        ne = len(self.kernels.edges(self.size))
        return draw_array_parameters(self.system, self.size, self.n_inputs, ne, rng)

    def flat(self, params) -> np.ndarray:
        ne = len(self.kernels.edges(self.size))
        return self.kernels.pack(params, self.size, self.n_inputs, ne)[0].copy()

    def load_parameters(self, path: str) -> np.ndarray:
        return self.flat(load_array_params(path, self.system))

    def sign_warnings(self, grouped: dict) -> list:
        return array_sign_warnings(self.system, {p.name: grouped[p.name] for p in self.system.parameters})

    def damping_rates(self, theta) -> list:
        gamma = self.system.rate_at(self._as_dict(theta, np.zeros((1, self.n))))
        return [("the model", gamma)] if gamma > 0 else []

    def rest(self, sequences: int) -> tuple:
        """At rest; at the model's ``initial_positions`` (one draw, seeded) where it declares them."""
        q0 = np.repeat(rest_positions(self.system, self.size)[None], sequences, axis=0)
        return q0, np.zeros((sequences, self.n))

    def readout_states(self, theta, u, q0, x0, dt, t0=0.0, start_velocity=False) -> tuple:
        """The readout units' coordinates ``(b, K+1, n_y, dim)``, the inputs and the end state."""
        placeholder = np.zeros(u.shape[:2] + (self.n_targets,))
        qT, pT, _, tq, _ = self.kernels.free(self._as_dict(theta, q0), q0, u=u, y=placeholder, dt=dt, t0=t0,
                                             record=True, **self._start(x0, start_velocity))
        units = q0.shape[1] // self.system.dim
        tq = tq.reshape(tq.shape[:2] + (units, self.system.dim))
        return tq[:, :, units - self.n_targets:, :], u, qT, pT

    def losses(self, theta, u, y, q0, x0, dt, t0=0.0, start_velocity=False) -> np.ndarray:
        return self.kernels.free(self._as_dict(theta, q0), q0, u=u, y=y, dt=dt, t0=t0,
                                 **self._start(x0, start_velocity))[2]

    def gradients(self, estimator, beta, theta, u, y, q0, x0, start_velocity, dt, t0=0.0, with_start=False,
                  with_inputs=False):
        """Per-sequence gradients (theory §5); with a velocity start ``dx0`` is ``dC/dv0`` and θ's
        gradient carries the PFVP correction of a learned mass (theory §3); ``with_inputs`` adds
        ``dC/du (b, K+1, m)``."""
        params = self._as_dict(theta, q0)
        start = dict(self._start(x0, start_velocity), learn_inputs=with_inputs, t0=t0)  # the clock: a chunk's start
        if estimator == "bptt":
            r = self.kernels.bptt_gradient(params, q0, u=u, y=y, dt=dt, **start)
        elif estimator == "echo-complex":
            r = self.kernels.complex_step_gradient(params, q0, u=u, y=y, dt=dt, **start)
        else:
            r = self.kernels.gradient(params, q0, u=u, y=y, dt=dt, beta=beta, order=ORDERS[estimator], **start)
        out = (r.loss, r.flat)
        if with_start:
            b = q0.shape[0]
            out += (r.dq0.reshape(b, -1), (r.dv0 if start_velocity else r.dp0).reshape(b, -1))
        return out + (r.du,) if with_inputs else out


class StackLearner(Learner):
    """A stack's :class:`~symglep.stack.runtime.StackKernels` (theory §9): the stacked echo is
    centred (or Richardson) and returns θ's gradient and every unit's start gradient."""

    kind = "stack"

    def __init__(self, stack, kernels, size=None):
        super().__init__(stack, kernels)
        self.integrator = kernels.integrator
        self.n, self.n_inputs, self.n_targets = kernels.nq, kernels.n_x, kernels.n_y
        self.layout = [(name, ()) for name in stack.parameter_names]

    def draw(self, rng) -> np.ndarray:
        return self.system.draw_parameters(rng)

    def damping_rates(self, theta) -> list:
        return [(f"unit {i} ({self.system.units[i].name})", gamma) for i, gamma in self.system.damping_rates(theta)]

    def parameter_named(self, name: str):
        """``unit<i>.<name>`` or ``unit<i>.<name>[j]``: unit i's parameter; ``None`` for the glue's."""
        unit, dot, rest = name.partition(".")
        if not (dot and unit.startswith("unit") and unit[4:].isdigit() and int(unit[4:]) < len(self.system.units)):
            return None
        base = rest.split("[")[0]
        return next((p for p in self.system.units[int(unit[4:])].parameters if p.name == base), None)

    def sign_warnings(self, grouped: dict) -> list:
        """Each unit's parameters against their declared signs (``unit<i>.<name>``; the glue declares none)."""
        out = []
        for i, unit in enumerate(self.system.units):
            prefix = f"unit{i}."
            if kind_of(unit) == "array":
                values = {p.name: [v for k, v in grouped.items() if k == prefix + p.name
                                   or k.startswith(f"{prefix}{p.name}[")] for p in unit.parameters}
                found = array_sign_warnings(unit, values)
            else:
                found = scalar_sign_warnings(unit, [grouped[prefix + s.name] for s in unit.parameters])
            out += [f"unit {i}: {w}" for w in found]
        return out

    def rest(self, sequences: int) -> tuple:
        """At rest; an array unit at its model's ``initial_positions`` where it declares them (as
        :meth:`ArrayLearner.rest`)."""
        q0, p0 = super().rest(sequences)
        start = 0
        for i, array in enumerate(self.system.arrays):
            size = self.system.unit_size(i)
            q0[:, start:start + size] = (rest_positions(array.model, array.size) if array is not None
                                         else rest_positions(self.system.units[i]))
            start += size
        return q0, p0

    def flat(self, params) -> np.ndarray:
        return np.asarray(params, dtype=np.float64).reshape(-1)

    def load_parameters(self, path: str) -> np.ndarray:
        return self.system.read_parameters(path)

    def readout_states(self, theta, u, q0, x0, dt, t0=0.0, start_velocity=False) -> tuple:
        """The top unit's coordinates and its inputs (the glue's drive), and every unit's end state;
        an array top unit's as :class:`ArrayLearner` gives them, ``(b, K+1, n_y, dim)`` of its readout units."""
        qT, pT, _, tq, _, tu = self.kernels.free(theta, u, None, q0, dt=dt, t0=t0, record=True,
                                                 **self._start(x0, start_velocity))
        stack, top = self.system, len(self.system.units) - 1
        q = tq[:, :, sum(stack.unit_size(i) for i in range(top)):]
        seen = tu[:, :, sum(stack.unit_inputs(i) for i in range(top)):]
        array = stack.arrays[top]
        if array is not None:
            q = q.reshape(q.shape[:2] + (array.size, array.dim))[:, :, array.readout_units(), :]
        return q, seen, qT, pT

    def losses(self, theta, u, y, q0, x0, dt, t0=0.0, start_velocity=False) -> np.ndarray:
        return self.kernels.free(theta, u, y, q0, dt=dt, t0=t0, **self._start(x0, start_velocity))[2]

    def gradients(self, estimator, beta, theta, u, y, q0, x0, start_velocity, dt, t0=0.0, with_start=False,
                  with_inputs=False):
        """Per-sequence ``(loss, dθ)``; ``with_start``: also every unit's ``dC/dq0``, ``dC/dp0`` (the
        stacked echo's end points, theory §5, §9), ``dC/dv0`` for a velocity start; ``with_inputs``
        then the stack's input gradient ``dC/dx (b, K+1, n_x)`` (the bottom unit's, theory §9)."""
        start = self._start(x0, start_velocity)
        if estimator == "bptt":
            out = self.kernels.bptt_gradient(theta, u, y, q0, dt=dt, t0=t0, initial_state=True, **start)
            start = out[3:5]
        elif estimator == "echo-complex":
            out = self.kernels.complex_step_gradient(theta, u, y, q0, dt=dt, t0=t0, initial_state=True,
                                                     learn_inputs=with_inputs, **start)
            start = out[4:6]
        else:
            out = self.kernels.gradient(theta, u, y, q0, dt=dt, t0=t0, beta=beta, order=ORDERS[estimator],
                                        initial_state=True, learn_inputs=with_inputs, **start)
            start = out[4:6]
        result = (out[0], out[1], *start) if with_start else (out[0], out[1])
        return result + (out[2],) if with_inputs else result


LEARNERS = {"scalar": ScalarLearner, "array": ArrayLearner, "stack": StackLearner}


def learner_for(system, kernels, size: int | None = None) -> Learner:
    """The learner of ``system``'s kind over its compiled ``kernels``; ``size``: units of an array model."""
    return LEARNERS[kind_of(system)](system, kernels, size)


__all__ = ["ArrayLearner", "Learner", "ScalarLearner", "StackLearner", "compile_kernels", "data_sizes",
           "element_names", "flatten_parameters", "group_parameters", "learner_for"]
