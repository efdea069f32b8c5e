"""``symglep.Stack``: Hamiltonian units stacked by feed-forward glue, trained end to end (theory §9).

Units are scalar models or array models (:mod:`symglep.stack.units`). Unit ``i``'s
readout ``r_i(q_i)`` (declared expressions of its coordinates; an array unit's
picked coordinates) drives unit ``i+1`` through the glue ``u_{i+1} = φ(W_i r_i + b_i)`` with
learnable ``W_i``, ``b_i`` and an optional elementwise ``φ`` (``tanh``...).
Only the top unit has a cost. The gradient runs by chained echoes (RHEL's
deep models): the units' echoes are stepped in lockstep, the un-nudged echo
of each lower unit rebuilds its free trajectory and feeds the unit above, and
each unit's per-node input gradient, pulled back through the glue's Jacobian,
becomes the linear readout cost that nudges the unit below (theory §9). Memory
is O(1) in the sequence length; :meth:`StackKernels.bptt_gradient` is the
BPTT reference (O(K) memory).

Run ``symglep train examples/stack_chain_hru.py --task sine`` (docs/echo-family.md, docs/training.md).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from .. import capabilities as capabilities_table
from ..derivation import derive
from ..dissipation import damping_rate_at
from ..errors import ModelError, SymglepError
from ..model import Model
from ..network.arrays import Coordinates
from ..network.expand import expand
from ..network.model import ArrayModel
from ..parameter_values import draw_parameters, read_parameter_file
from ..symmetry import odd_terms_text
from .units import ArrayUnit


def _identity(e):
    return e


@dataclass
class Link:
    """The glue from unit ``i`` to unit ``i+1``: ``u = φ(W r(q) + b)`` (plain symbols of unit ``i``).

    ``select``: when unit ``i`` is an array unit, the coordinate indices its readout picks
    (``r_j = q[select[j]]``; ``q`` and ``readout`` then hold symbols named ``q[j]``), else ``None``.
    """

    q: tuple
    readout: list
    W: list            # [[Symbol]] (n_out × n_r)
    bias: list         # [Symbol] (n_out)
    activation: object = _identity
    select: list | None = None

    @property
    def weights(self) -> list:
        return [w for row in self.W for w in row]

    def real_weights(self) -> tuple:
        """``(W, b, back)``: the weights and biases as real symbols of the same names, and ``back`` mapping each
        (weights row by row, then biases) to its plain symbol. Differentiated as real numbers, a kink such as
        ``Abs(z)`` gives ``sign(z)`` (SymPy splits a complex argument into re and im parts, which no printer
        writes); mapped back, the results print as before."""
        twin = {s: sp.Symbol(s.name, real=True) for s in self.weights + list(self.bias)}
        return ([[twin[w] for w in row] for row in self.W], [twin[b] for b in self.bias],
                {real: plain for plain, real in twin.items()})


def _plain_map(model: Model) -> dict:
    """User objects (coordinate functions, inputs, targets) → the model's plain symbols."""
    out = {}
    for v in model.variables:
        if v.kind in ("coordinate", "input", "target") and v.user != v.symbol:
            out[v.user] = v.symbol
    return out


def _user_map(model: Model) -> dict:
    """The model's plain symbols → user objects (velocities → derivatives of the coordinates)."""
    out = {}
    for v in model.variables:
        if v.kind == "coordinate":
            out[v.symbol] = v.user
            out[model.v[model.q.index(v.symbol)]] = sp.Derivative(v.user, model.time)
        elif v.kind in ("input", "target") and v.user != v.symbol:
            out[v.symbol] = v.user
    return out


def echo_model(model: Model, name: str, readout: list | None) -> Model:
    """Unit ``model`` with its cost replaced by the linear readout cost ``Σ_j ρ_j r_j(q)`` (theory §9).

    ``ρ_j`` are new targets (the per-node weights of the nudge); ``readout=None`` keeps the
    model's own cost and terminal cost (the top unit).
    """
    back = _user_map(model)
    users = lambda group: [v.user for v in model.variables if v.kind == group]  # noqa: E731
    constants = {v.user: float(model.constants[v.symbol]) for v in model.variables if v.kind == "constant"}
    terminal = 0
    if readout is None:
        targets, cost = users("target"), model.cost.xreplace(back)
        terminal = model.terminal_cost.xreplace(back)
    else:
        taken = {v.name for v in model.variables}
        base = "readout_weight"
        while any(f"{base}{j}" in taken for j in range(len(readout))):
            base = "_" + base
        t = model.time
        targets = [sp.Function(f"{base}{j}")(t) for j in range(len(readout))]
        cost = sum((rho * r.xreplace(back) for rho, r in zip(targets, readout)), sp.S.Zero)
    return Model(lagrangian=model.lagrangian.xreplace(back), coordinates=users("coordinate"),
                 parameters=list(model.parameters), inputs=users("input"), targets=targets, cost=cost,
                 name=name, constants=constants, terminal_cost=terminal)


def declares_terminal_cost(unit) -> bool:
    """Whether a unit (a scalar or an array model) declares a terminal cost (theory §10)."""
    return unit.terminal_cost is not None if isinstance(unit, ArrayModel) else unit.terminal_cost != 0


def _activation(value):
    if value is None:
        return _identity
    if isinstance(value, str):
        funcs = {"tanh": sp.tanh, "sigmoid": lambda e: 1 / (1 + sp.exp(-e)), "identity": _identity,
                 "linear": _identity}
        if value not in funcs:
            raise ModelError(f"unknown activation {value!r}; choose one of {', '.join(funcs)} or give a callable")
        return funcs[value]
    if callable(value):
        return _checked_activation(value)
    raise ModelError(f"an activation must be None, a name or a callable on sympy expressions, got {value!r}")


def _checked_activation(value):
    """A callable activation, tried once on a sympy symbol: it must give a sympy expression of it
    (``sp.tanh``, ``lambda z: sp.Max(z, 0)``), not fail on one (``np.tanh``, Python's ``max``)."""
    z = sp.Symbol("z", real=True)
    name = getattr(value, "__name__", repr(value))
    try:
        out = value(z)
    except Exception as exc:
        raise ModelError(f"activation {name} must map a sympy expression to a sympy expression (use sp.tanh, "
                         f"sp.Max, ..., not numpy or Python functions); on a symbol it raised "
                         f"{type(exc).__name__}: {exc}") from None
    try:
        out = sp.sympify(out)
    except (sp.SympifyError, TypeError, ValueError):
        out = None
    if not isinstance(out, sp.Expr):
        raise ModelError(f"activation {name} must map a sympy expression to a sympy expression, got "
                         f"{type(out).__name__}")

    @functools.wraps(value)
    def activation(e):  # a constant (lambda z: 3) comes back as a Python number: sympify it every time
        return sp.sympify(value(e))

    return activation


#: the most coordinates an array unit run by the midpoint rule may have inside a stack (it is expanded)
EXPANDED_MAX = 16


class Stack:
    """A composition of units, bottom first (module docstring; theory §9).

    Parameters
    ----------
    units:
        :class:`~symglep.Model` or :class:`~symglep.network.ArrayModel` objects, bottom first. A
        scalar unit must be separable (leapfrog; a kinetic part weighted in time, ``L = K(v, t) − V(q, t)``,
        as uniform damping in Caldirola–Kanai form, takes the time-weighted leapfrog, theory §7) and
        time-reversible; an array unit is both by construction (uniformly damped or not) and runs at its
        declared ``size`` (:mod:`symglep.stack.units`). The bottom
        unit's inputs are the stack's inputs, unit ``i+1``'s inputs are fed by the glue, only the
        top unit's cost is used (its targets are the stack's targets): a scalar unit below the top
        declares no cost, an array unit's cost is ignored there. The top unit may add a terminal
        cost ``c_T(q_K, y_K)`` (theory §10); no unit below it may.
    readouts:
        For each unit but the top one: a scalar unit's list of expressions of its coordinates
        ``r_i(q_i)``; an array unit's ``"all"`` (or its ``Coordinates``) or a list of flat coordinate
        indices.
    activations:
        For each link, ``None`` (linear), ``"tanh"``, ``"sigmoid"`` or a callable on sympy expressions.
    name:
        Used for the generated files and the kernel cache.
    """

    capabilities = capabilities_table.STACK  # what this kind serves, and why not (docs/architecture.md)

    def __init__(self, units, readouts, activations=None, name: str = "stack", integrator: str = "auto"):
        units = list(units)
        if len(units) < 2:
            raise ModelError("a stack needs at least two units")
        for u in units:
            if not isinstance(u, (Model, ArrayModel)):
                raise ModelError(f"stack units must be symglep.Model or symglep.network.ArrayModel objects, "
                                 f"got {type(u).__name__}")
        readouts = [r if isinstance(r, (str, Coordinates)) else list(r) for r in readouts]
        if len(readouts) != len(units) - 1:
            raise ModelError(f"a stack of {len(units)} units needs {len(units) - 1} readouts, got {len(readouts)}")
        activations = list(activations) if activations is not None else [None] * (len(units) - 1)
        if len(activations) != len(units) - 1:
            raise ModelError(f"a stack of {len(units)} units needs {len(units) - 1} activations")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise ModelError(f"the stack name must be an identifier, got {name!r}")
        if integrator not in ("auto", "leapfrog", "midpoint"):
            raise ModelError(f"unknown integrator {integrator!r}; choose one of auto, leapfrog, midpoint")
        for i, u in enumerate(units):
            clash = sorted(n for n in (u.symbol_by_name() if isinstance(u, Model) else ())
                           if re.fullmatch(r"glue\d+_(W\d+_\d+|b\d+)", n))
            if clash:
                raise ModelError(f"unit {i} ({u.name!r}) names {', '.join(clash)}, a name the stack gives its glue "
                                 "weights (glue<i>_W<m>_<j>, glue<i>_b<m>); rename it")
        self.name = name
        self._declared = (list(units), list(readouts), activations)  # for with_integrator
        #: units given as array models and run expanded element by element (the midpoint rule, below)
        self.expanded = []
        units, readouts = self._expand_midpoint_arrays(units, readouts, integrator)
        self.units = units
        self.integrator = integrator
        #: per unit, its :class:`~symglep.stack.units.ArrayUnit` view, or ``None`` for a scalar unit
        self.arrays = [ArrayUnit(u, i) if isinstance(u, ArrayModel) else None for i, u in enumerate(units)]
        for i, u in enumerate(units[:-1]):
            if self.arrays[i] is None and u.cost != 0:
                raise ModelError(f"unit {i} ({u.name!r}) is not the top unit: it must declare no cost "
                                 "(the stack's cost sits on the top unit)")
        for i, u in enumerate(units[:-1]):
            if declares_terminal_cost(u):
                raise ModelError(f"unit {i} ({u.name!r}) declares a terminal cost: only the top unit's cost is "
                                 "used (a running cost and a terminal cost, theory §9, §10)")
        for i in range(1, len(units)):
            if not self.unit_inputs(i):
                raise ModelError(f"unit {i} ({units[i].name!r}) has no inputs: the unit below cannot drive it")
        if not self.unit_inputs(0):
            raise ModelError(f"the bottom unit ({units[0].name!r}) needs inputs: the stack's drive")
        self.links = [self._link(i, r, a) for i, (r, a) in enumerate(zip(readouts, activations))]
        self.echo_models = [None if self.arrays[i] is not None else
                            echo_model(u, f"{name}_unit{i}", lk.readout if i < len(self.links) else None)
                            for i, (u, lk) in enumerate(zip(units, self.links + [None]))]
        self._check_units()

    def _expand_midpoint_arrays(self, units, readouts, integrator):
        """An array unit stepped by the implicit midpoint rule (its mass reads its position, so L is not
        separable, or the stack asks for the rule) becomes its element-by-element scalar model
        (:func:`symglep.network.expand.expand`): the scalar midpoint unit of theory §9 with its dense Newton
        solve. Its parameters keep the array kernels' flat order, named ``A_0_1`` for ``A[0,1]``; a readout
        ``"all"`` or of flat coordinate indices becomes those coordinates. At most EXPANDED_MAX coordinates:
        the expanded code grows with n² (a dense Jacobian), where the array model's loops do not."""
        units, readouts = list(units), list(readouts)
        for i, u in enumerate(units):
            if not isinstance(u, ArrayModel) or not (u.kinetic.reads_q or integrator == "midpoint"):
                continue
            why = "its mass reads its position, so L is not separable" if u.kinetic.reads_q else "--integrator midpoint"
            if u.size * u.dim > EXPANDED_MAX:
                raise ModelError(f"unit {i} ({u.name!r}) steps by the midpoint rule ({why}): inside a stack an array "
                                 f"unit then runs expanded element by element, at most {EXPANDED_MAX} coordinates "
                                 f"(it has {u.size * u.dim}); lower its size, or keep its mass off its position "
                                 "for the leapfrog")
            top = i == len(units) - 1
            scalar = expand(u, u.size, costs=top, name=u.name)
            if not top:
                select = ArrayUnit(u, i).select(readouts[i])
                readouts[i] = [scalar.q[j] for j in select]
            units[i] = scalar
            self.expanded.append(i)
        return units, readouts

    def _link(self, i: int, readout, activation) -> Link:
        """The glue from unit ``i`` to unit ``i+1`` with its readout checked (class docstring)."""
        u, n_out = self.units[i], self.unit_inputs(i + 1)
        array = self.arrays[i]
        if array is not None:
            select = array.select(readout)
            names = array.coordinate_names
            plain = [sp.Symbol(names[j]) for j in select]
            q = tuple(plain)
        else:
            if isinstance(readout, str) or not readout:
                raise ModelError(f"the readout of unit {i} ({u.name!r}) must be a non-empty list of expressions "
                                 "of its coordinates")
            select, plain, q = None, [], tuple(u.q)
            to_plain = _plain_map(u)
            for e in readout:
                e = sp.sympify(e)
                if e.atoms(sp.Derivative):
                    raise ModelError(f"readout {e} of unit {i} depends on a velocity; a readout is a "
                                     "function of the coordinates only")
                e = e.xreplace(to_plain).xreplace(u.constants)
                stray = e.free_symbols - set(u.q)
                stray |= {a for a in e.atoms(AppliedUndef)}
                if stray:
                    raise ModelError(f"readout {e} of unit {i} ({u.name!r}) uses {', '.join(map(str, stray))}, "
                                     "not coordinates of that unit")
                plain.append(e)
        W = [[sp.Symbol(f"glue{i}_W{m}_{j}") for j in range(len(plain))] for m in range(n_out)]
        b = [sp.Symbol(f"glue{i}_b{m}") for m in range(n_out)]
        return Link(q, plain, W, b, _activation(activation), select)

    def _check_units(self):
        """Each unit's integrator (:attr:`integrators`): the leapfrog where ``L = K(v, t) − V(q, t)``, else (or
        when the stack asks for it) the implicit midpoint rule with node costs (theory §6, §9)."""
        self.integrators = []
        #: units whose momentum ∂L/∂v reads their inputs (a velocity start is refused for them)
        self.momentum_reads_inputs = []
        for i, m in enumerate(self.echo_models):
            unit = self.units[i]
            if m is None:  # an array unit: even in velocity by construction; separable unless its mass reads
                # the position (uniform damping: the time-weighted leapfrog, theory §7)
                self.integrators.append("leapfrog")  # a midpoint array unit was expanded (_expand_midpoint_arrays)
                continue
            d = derive(m, simplify="none")
            if m.damping != 0:
                raise ModelError(f"unit {i} ({unit.name!r}) has a Rayleigh dissipation force, which has no exact "
                                 "echo; the stacked echo needs the exact echo of every unit (theory §7, §9): "
                                 "declare uniform damping in Caldirola-Kanai form instead")
            if not d.sym.time_reversible:
                flip = (f"; its flip {', '.join(f'{s} -> -{s}' for s in d.sym.flip)} serves it alone "
                        f"(symglep derive on the unit)" if d.sym.flip else "")
                raise ModelError(f"unit {i} ({unit.name!r}) is not time-reversible (odd in the velocities: "
                                 f"{odd_terms_text(d.sym.breaking_terms)}): the stacked echo needs the plain echo "
                                 f"of every unit (theory sec. 4, 9){flip}")
            if not d.legendre_regular:
                raise ModelError(f"unit {i} ({unit.name!r}): the mass matrix is singular (det M = 0), so no "
                                 "integrator applies")
            separable = d.sym.leapfrog_split() is not None and d.velocity_map is not None
            if self.integrator == "leapfrog" and not separable:
                why = d.sym.separability_note if d.sym.leapfrog_split() is None else d.hamiltonian_note
                raise ModelError(f"unit {i} ({unit.name!r}): the leapfrog needs L = K(v, t) - V(q, t) with a "
                                 f"closed-form velocity map ({why}); use --integrator midpoint or auto")
            self.integrators.append("leapfrog" if separable and self.integrator != "midpoint" else "midpoint")
            if any(sp.diff(m.lagrangian, v).free_symbols & set(m.u) for v in m.v):
                self.momentum_reads_inputs.append(i)

    def with_integrator(self, integrator: str) -> "Stack":
        """This stack with its units stepped by ``integrator`` (``auto``: per unit, theory §9)."""
        if integrator == self.integrator:
            return self
        units, readouts, activations = self._declared
        return Stack(units, readouts, activations, self.name, integrator)

    @property
    def integrator_summary(self) -> str:
        """``leapfrog``, ``midpoint``, or ``mixed (leapfrog, midpoint, …)`` unit by unit (reports)."""
        names = set(self.integrators)
        return self.integrators[0] if len(names) == 1 else f"mixed ({', '.join(self.integrators)})"

    @property
    def midpoint_units(self) -> list:
        """Indices of the units stepped by the implicit midpoint rule (theory §9, midpoint units)."""
        return [i for i, name in enumerate(self.integrators) if name == "midpoint"]

    # -- sizes -------------------------------------------------------------------
    def unit_size(self, i: int) -> int:
        """Coordinates of unit ``i``."""
        return self.arrays[i].n if self.arrays[i] is not None else self.units[i].n

    def unit_inputs(self, i: int) -> int:
        return self.arrays[i].m if self.arrays[i] is not None else len(self.units[i].u)

    def unit_theta(self, i: int) -> int:
        """Entries of θ that unit ``i`` holds."""
        return self.arrays[i].n_theta if self.arrays[i] is not None else len(self.units[i].parameters)

    def unit_parameter_names(self, i: int) -> list:
        return self.arrays[i].parameter_names() if self.arrays[i] is not None else \
            [s.name for s in self.units[i].parameters]

    def unit_input_symbols(self, i: int) -> list:
        """Unit ``i``'s inputs as symbols: a scalar unit's own, an array unit's ``u[m]``."""
        if self.arrays[i] is None:
            return list(self.units[i].u)
        return [sp.Symbol(f"{self.units[i].u.name}[{m}]") for m in range(self.arrays[i].m)]

    @property
    def n_inputs(self) -> int:
        """The stack's inputs x: the bottom unit's."""
        return self.unit_inputs(0)

    @property
    def n_targets(self) -> int:
        """The stack's targets y: the top unit's (an array unit's readout units)."""
        top = len(self.units) - 1
        return self.arrays[top].r if self.arrays[top] is not None else len(self.units[top].y)

    @property
    def has_terminal_cost(self) -> bool:
        """Whether the top unit adds a terminal cost ``c_T(q_K, y_K)`` to the loss (theory §10)."""
        return declares_terminal_cost(self.units[-1])

    @property
    def has_array_units(self) -> bool:
        return any(a is not None for a in self.arrays)

    # -- parameters ------------------------------------------------------------
    @property
    def parameter_names(self) -> list:
        """Names of the packed parameter vector: ``unit<i>.<name>``, then ``glue<i>.W<m>_<j>``, ``glue<i>.b<m>``."""
        names = [f"unit{i}.{name}" for i in range(len(self.units)) for name in self.unit_parameter_names(i)]
        for i, lk in enumerate(self.links):
            names += [f"glue{i}.{s.name.split('_', 1)[1]}" for s in lk.weights + lk.bias]
        return names

    @property
    def n(self) -> int:
        return sum(self.unit_size(i) for i in range(len(self.units)))

    def unit_slices(self) -> list:
        """The slice of each unit's parameters in the packed vector."""
        out, o = [], 0
        for i in range(len(self.units)):
            out.append(slice(o, o + self.unit_theta(i)))
            o += self.unit_theta(i)
        return out

    def damping_rates(self, theta) -> list:
        """``(i, γ)`` for each unit with uniform damping at rate γ > 0 at the packed parameters ``theta`` (a learned
        rate read from them, theory §7): its echo runs anti-damped."""
        out = []
        for i, sl in enumerate(self.unit_slices()):
            a, th = self.arrays[i], np.asarray(theta, dtype=np.float64)[sl]
            if a is None:
                gamma = damping_rate_at(self.units[i], th)
            else:  # each parameter's first entry: a rate is a scalar
                gamma = a.model.rate_at({name: th[o] for (name, _), o in zip(a.layout, a.offsets)})
            if gamma > 0:
                out.append((i, gamma))
        return out

    def glue_slices(self) -> list:
        out, o = [], sum(self.unit_theta(i) for i in range(len(self.units)))
        for lk in self.links:
            k = len(lk.weights) + len(lk.bias)
            out.append(slice(o, o + k))
            o += k
        return out

    def read_parameters(self, path: str) -> np.ndarray:
        """θ from a JSON file ``{name: value}`` (or a training file's ``parameters``): every element by name
        (``unit1.A[0,1]``), or a unit's array whole (``"unit1.A": [[...]]``)."""
        data = read_parameter_file(path, self.parameter_names)
        try:
            return np.array([float(data[name]) for name in self.parameter_names])
        except (TypeError, ValueError):
            raise SymglepError(f"parameters file {path}: every value must be a number") from None

    def draw_parameters(self, rng: np.random.Generator) -> np.ndarray:
        """Units as ``symglep check`` draws them; glue weights N(0, 1/n_r), biases N(0, 0.1²)."""
        parts = []
        for u, array in zip(self.units, self.arrays):
            if array is not None:
                parts.append(list(array.draw(rng)))
                continue
            values = draw_parameters(u, rng)
            keys = {getattr(k, "name", k): v for k, v in values.items()}
            parts.append([float(keys[s.name]) for s in u.parameters])
        for lk in self.links:
            nr = len(lk.readout)
            parts.append(list(rng.normal(0.0, 1.0 / np.sqrt(nr), len(lk.weights))))
            parts.append(list(rng.normal(0.0, 0.1, len(lk.bias))))
        return np.array([v for p in parts for v in p], dtype=np.float64)

    def __repr__(self) -> str:
        return f"Stack({self.name!r}: {' -> '.join(u.name for u in self.units)})"
