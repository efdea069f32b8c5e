"""symglep inside JAX models: a model's generated JAX module as a layer or a loss (docs/jax.md).

``symglep.jax.layer(model, dt=...)`` returns a :class:`Layer`, a function
``(theta, u, q0, p0) -> (r, qT, pT)`` of JAX arrays — the readouts of the free run at every node
and its final state — whose backward pass is the cotangent-driven echo (theory §12): it runs under
``jit``, ``vmap`` and ``grad`` on any JAX device, keeps nothing of length K for the backward pass
but the inputs, and returns the cotangents of θ, of the input sequence and of the initial state.
``estimator="bptt"`` differentiates the same discrete steps with JAX autodiff instead (the
reference). ``symglep.jax.loss`` does the same for the model's own loss (running and terminal cost).

The module is generated from the model (``templates/jax/``, :mod:`symglep.codegen.render_jax`) and
cached on disk by its content hash like the Numba kernels (:mod:`symglep.cache`). This module
imports JAX: install it with ``pip install 'symglep[jax]'``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from . import cache as kernel_cache
from .capabilities import NotSupportedError
from .codegen.render_jax import jax_digest, jax_source
from .errors import SymglepError, listed
from .extras import require
from .network import render_jax as array_jax
from .jax_stack import chain
from .run_arguments import is_positive_number, start_time
from .network.model import ArrayModel, readout_units as checked_readout_units
from .systems import kind_of

jax = require("jax", "jax", "the JAX target")
jnp = require("jax.numpy", "jax", "the JAX target")

ESTIMATORS = ("echo", "bptt")


def module(model, integrator: str = "auto", cache: str | None = None):
    """The generated JAX module of a scalar or array ``model`` (generated on first use, cached on disk);
    an array model's module is bound to a size by :func:`bound`."""
    kind = kind_of(model)
    reason = model.capabilities.reason("target", "jax")
    if reason is not None:
        raise NotSupportedError(f"the JAX target is refused for {kind} systems: {reason}")
    if kind == "array":
        digest = array_jax.jax_digest(model, integrator)
        return kernel_cache.load_module(model.name + "_jax", digest,
                                        lambda: array_jax.array_jax_source(model, integrator), cache)
    digest = jax_digest(model, integrator)
    return kernel_cache.load_module(model.name + "_jax", digest, lambda: jax_source(model, integrator), cache)


def bound(model, integrator: str = "auto", cache: str | None = None, size: int | None = None,
          edges=None, readout_units=None):
    """What :func:`layer` and :func:`loss` build on: a scalar model's module, or an array model's bound
    to ``size`` units (default the model's), its ``edges`` (default the model's graph at that size)
    and its ``readout_units`` (default the last ``sizes["r"]``)."""
    mod = module(model, integrator, cache)
    if not isinstance(model, ArrayModel):
        if (size, edges, readout_units) != (None, None, None):
            raise SymglepError("size, edges and readout_units are for array models")
        return mod
    n = model.size if size is None else size
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise SymglepError(f"size must be a positive integer number of units, got {size!r}")
    n = int(n)
    units = checked_readout_units(n, model.sizes["r"], readout_units, "readout_units")
    return mod.bind(n, model.sizes["m"], model.edge_list(n, edges), units)


def _nudge(beta):
    """β as the generated module takes it: a float, or ``None`` (1e-4 in float64, 1e-2 in float32, chosen
    from the arrays' dtype when the backward pass is traced)."""
    return None if beta is None else float(beta)


def _options(dt, estimator, beta, order, t0=0.0) -> None:
    for name, value in (("dt", dt), ("beta", beta), ("t0", t0)):
        if isinstance(value, jax.core.Tracer):
            raise SymglepError(f"{name} is a traced JAX value (the layer built inside jax.jit, or differentiated "
                               f"in {name}): dt, beta and t0 are fixed settings of a layer, concrete numbers; build "
                               "the layer outside jit and call it inside")
    if not is_positive_number(dt):
        raise SymglepError(f"dt must be a positive number, got {dt!r}")
    start_time(t0)  # a finite number (a NaN start returned NaN states)
    if estimator not in ESTIMATORS:
        raise SymglepError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    if order not in (1, 2, 4):
        raise SymglepError(f"order must be 1 (one-sided), 2 (centred) or 4 (Richardson), got {order!r}")
    if beta is not None and not is_positive_number(beta):
        raise SymglepError(f"beta must be a positive number (or None: by the dtype), got {beta!r}")


@dataclass(frozen=True)
class Sizes:
    """What one sequence's arrays measure (docs/jax.md): θ ``(n_theta,)``, ``u`` ``(K+1, n_u)``, ``y``
    ``(K+1, n_y)``, ``q0`` and ``p0`` ``(n,)``."""

    n_theta: int
    n: int
    n_u: int
    n_y: int

    @classmethod
    def of(cls, model, mod) -> "Sizes":
        if mod is None:  # a stack: its units' coordinates, the bottom unit's inputs, the top unit's targets
            return cls(len(model.parameter_names), model.n, model.n_inputs, model.n_targets)
        return cls(int(mod.N_THETA), int(mod.N), int(mod.N_U), int(mod.N_Y))

    def checked(self, theta, u, y, q0, p0, needs_targets: bool = False) -> tuple:
        """The arrays of one call, their shapes checked (a one-line :class:`SymglepError` naming the
        expected shape) and cast to one floating dtype (integer starts become the parameters' float);
        ``y`` may be ``None`` unless ``needs_targets`` (a loss reads them, a layer need not)."""
        given = {"theta": theta, "u": u, "y": y, "q0": q0, "p0": p0}
        arrays = {}
        for name, value in given.items():
            if name == "y" and value is None and not needs_targets:
                continue
            if value is None:
                why = {"u": ": a model without inputs takes u of shape (K+1, 0)",
                       "y": f": the loss reads the targets, y of shape (K+1, {self.n_y})"}.get(name, "")
                raise SymglepError(f"{name} is missing{why}")
            if name == "theta" and isinstance(value, dict):
                raise SymglepError("theta is the flat parameter vector: build it from {name: value} with "
                                   "layer.theta({...})")
            try:
                arrays[name] = jnp.asarray(value)
            except (TypeError, ValueError):
                raise SymglepError(f"{name} must be an array of numbers, got {type(value).__name__}") from None
        steps = arrays["u"].shape[0] if arrays["u"].ndim == 2 else "K+1"
        want = {"theta": (self.n_theta,), "u": (steps, self.n_u), "y": (steps, self.n_y), "q0": (self.n,),
                "p0": (self.n,)}
        for name, array in arrays.items():
            if array.shape != want[name]:
                shown = tuple("K+1" if d == "K+1" else int(d) for d in want[name])
                raise SymglepError(f"{name} must have shape {shown} (one sequence; jax.vmap over a batch), got "
                                   f"{tuple(array.shape)}".replace("'", ""))
        if steps < 2:
            raise SymglepError(f"u must hold K+1 >= 2 time nodes, got {steps}")
        dtype = jnp.result_type(*arrays.values(), float)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise SymglepError(f"theta, u, y, q0 and p0 must be real numbers, got {dtype}")
        if dtype not in (jnp.float32, jnp.float64):  # float16, bfloat16: the echo's contrast and Newton fail
            raise SymglepError(f"the layer runs in float32 or float64, got {dtype}: a half-precision echo "
                               "loses its contrast to round-off (β ≥ its 1e-3 resolution) and the midpoint "
                               "rule's Newton solve does not converge; cast the arrays to float32")
        return tuple(None if name not in arrays else arrays[name] if arrays[name].dtype == dtype
                     else arrays[name].astype(dtype) for name in given)


def _make(factory, *args, **kwargs):
    try:
        return factory(*args, **kwargs)
    except ValueError as exc:  # the generated module's refusals (no exact echo, unknown readout)
        raise SymglepError(str(exc)) from None


@dataclass(frozen=True, eq=False)  # hashed by identity: jax.jit(layer) keys its cache on the callable
class Layer:
    """A model's free run as a differentiable JAX function (call it: ``layer(theta, u, q0, p0)``).

    ``theta`` ``(n_theta,)`` in :attr:`parameter_names` order, ``u`` ``(K+1, n_inputs)``, ``q0`` and
    ``p0`` ``(n,)``; returns ``r`` ``(K+1, n_readout)``, ``qT`` and ``pT`` ``(n,)``. One sequence per
    call: ``jax.vmap`` over a batch. Every call starts at the layer's ``t0``."""

    model: object
    module: object
    apply: object
    dt: float
    estimator: str
    readout: str
    sizes: Sizes
    t0: float = 0.0

    def __call__(self, theta, u, q0, p0):
        theta, u, _, q0, p0 = self.sizes.checked(theta, u, None, q0, p0)
        return self.apply(theta, u, q0, p0)

    @property
    def parameter_names(self) -> list:
        if self.module is None:  # a stack (no module of its own): unit<i>.<name>, then the glue's entries
            return list(self.model.parameter_names)
        return [s.name for s in self.model.parameters]

    @property
    def n(self) -> int:
        return self.sizes.n

    @property
    def n_inputs(self) -> int:
        return self.sizes.n_u

    @property
    def n_readout(self) -> int:
        if self.module is None:  # a stack's layer reads its top unit's coordinates
            return self.model.unit_size(len(self.model.units) - 1)
        return self.module.N if self.readout == "coordinates" else self.module.N_Y

    def theta(self, values: dict):
        """θ as a vector in declaration order from ``{name: value}`` (every parameter named once; an
        array model's parameters as arrays of their shapes, flattened in order)."""
        names = self.parameter_names
        unknown = sorted(set(values) - set(names))
        missing = [n for n in names if n not in values]
        if unknown or missing:
            raise SymglepError(f"theta needs exactly the {len(names)} parameters {listed(names)}"
                               + (f"; unknown: {listed(unknown)}" if unknown else "")
                               + (f"; missing: {listed(missing)}" if missing else ""))
        if not hasattr(self.module, "flatten"):
            return jnp.asarray([values[n] for n in names])
        for name, shape in self.module.parameter_shapes:
            if jnp.shape(values[name]) != shape:
                raise SymglepError(f"parameter {name} must have shape {shape}, got {jnp.shape(values[name])}")
        return self.module.flatten(values)

    def parameters(self, theta) -> dict:
        """``{name: value}`` from θ (the inverse of :meth:`theta`)."""
        if hasattr(self.module, "unflatten"):
            return self.module.unflatten(theta)
        return {name: theta[k] for k, name in enumerate(self.parameter_names)}

    def initial_momentum(self, theta, q0, v0, u0, t0: float | None = None):
        """``p0 = ∂L/∂v(q0, v0)`` at the time ``t0`` (by default the layer's): a start given by velocity (theory
        §5; a damped model's momentum carries e^{γ t0}); JAX differentiates it."""
        if self.module is None:  # a stack: a chain of its units' layers, no module of its own
            raise SymglepError("a stack's layer has no initial_momentum of its own: form each unit's p0 with "
                               "symglep.jax.layer(unit, dt).initial_momentum (the stack's kernels: "
                               "symglep.compile(stack).module.momenta)")
        return self.module.initial_momentum(theta, q0, v0, u0, self.t0 if t0 is None else t0)


def layer(model, dt: float, *, integrator: str = "auto", estimator: str = "echo", beta: float | None = None,
          order: int = 2, readout: str | None = None, t0: float = 0.0, cache: str | None = None,
          size: int | None = None, edges=None, readout_units=None) -> Layer:
    """The free run of ``model`` with step ``dt`` as a JAX layer (see :class:`Layer`); an array model
    at ``size`` units with ``edges`` and ``readout_units`` (see :func:`bound`).

    ``readout``: ``"coordinates"`` (``r = q``) or ``"cost"`` (``r = ∂c/∂y`` of a cost linear in its
    targets, theory §12); by default ``"cost"`` where the cost is linear in its targets.
    ``estimator``: ``"echo"`` (the backward pass is the echo: nudge β relative to the total kick of
    the cotangents, contrast ``order`` 2 centred, 4 Richardson or 1 one-sided; β by default 1e-4 in
    float64 and 1e-2 in float32, from the arrays' dtype) or ``"bptt"``.
    A stack's layer returns ``r`` of its top unit and ``qT``, ``pT`` of every unit, bottom first (the layout
    of ``q0`` and ``p0``), so that segments chain."""
    _options(dt, estimator, beta, order, t0)
    if kind_of(model) == "stack":
        model = _stack_options(model, integrator, size, edges, readout_units)
        readout = readout or "coordinates"
        step = _unit_integrators(model)

        def make_top(unit, size):
            apply = layer(unit, dt, integrator=step(unit), estimator=estimator, beta=beta, order=order,
                          readout=readout, t0=t0, cache=cache, size=size)
            return lambda th, u, y, q0, p0: apply(th, u, q0, p0)

        run = chain(model, _unit_layer(dt, estimator, beta, order, t0, cache, step), make_top, every_state=True)
        return Layer(model, None, lambda th, x, q0, p0: run(th, x, None, q0, p0), float(dt), estimator, readout,
                     Sizes.of(model, None), float(t0))
    mod = bound(model, integrator, cache, size, edges, readout_units)
    readout = readout or mod.DEFAULT_READOUT
    apply = _make(mod.make_layer, float(dt), float(t0), _nudge(beta), order, estimator, readout)
    return Layer(model, mod, apply, float(dt), estimator, readout, Sizes.of(model, mod), float(t0))


def loss(model, dt: float, *, integrator: str = "auto", estimator: str = "echo", beta: float | None = None,
         order: int = 2, t0: float = 0.0, cache: str | None = None, size: int | None = None, edges=None,
         readout_units=None):
    """``loss(theta, u, y, q0, p0) -> C``: the model's own loss over one sequence (running and terminal
    cost, theory §6, §10) as a JAX function whose backward pass is the echo (``estimator="echo"``,
    nudge β, contrast ``order``; β by default 1e-4 in float64, 1e-2 in float32) or JAX autodiff of the
    same steps (``"bptt"``)."""
    _options(dt, estimator, beta, order, t0)
    if kind_of(model) == "stack":
        model = _stack_options(model, integrator, size, edges, readout_units)
        step = _unit_integrators(model)

        def make_top(unit, size):
            if step(unit) == "midpoint":
                return _node_cost_loss(unit, dt, estimator, beta, order, t0, cache)
            return loss(unit, dt, integrator=step(unit), estimator=estimator, beta=beta, order=order, t0=t0,
                        cache=cache, size=size)

        return _checked_loss(chain(model, _unit_layer(dt, estimator, beta, order, t0, cache, step), make_top),
                             Sizes.of(model, None))
    mod = bound(model, integrator, cache, size, edges, readout_units)
    return _checked_loss(_make(mod.make_loss, float(dt), float(t0), _nudge(beta), order, estimator),
                         Sizes.of(model, mod))


def _checked_loss(run, sizes: Sizes):
    """``run(theta, u, y, q0, p0)`` behind the shape and dtype checks of :meth:`Sizes.checked`."""
    def checked(theta, u, y, q0, p0):
        return run(*sizes.checked(theta, u, y, q0, p0, needs_targets=True))
    return checked


def _stack_options(stack, integrator, size, edges, readout_units):
    """The stack with its units stepped by ``integrator`` (:meth:`Stack.with_integrator`), checked options."""
    if (size, edges, readout_units) != (None, None, None):
        raise SymglepError("size, edges and readout_units are for array models; a stack's array units run at "
                           "their declared size")
    if integrator == "auto":
        return stack
    stack.capabilities.require("integrator", integrator)
    return stack.with_integrator(integrator)


def _node_cost_loss(unit, dt, estimator, beta, order, t0, cache):
    """``top(theta, u, y, q0, p0) -> C`` of a stack's scalar top unit stepped by the midpoint rule, its cost at
    the nodes (theory §9, "Midpoint units"): ``C = h Σ_k w_k c(q_k, t_k, u_k, y_k) + c_T(q_K, y_K)``,
    trapezoid weights ``w_0 = w_K = 1/2``. The coordinates come from the unit's layer, whose backward pass
    is its echo kicked at every node by the cost's cotangents (theory §12); JAX differentiates the sum."""
    apply = layer(unit, dt, integrator="midpoint", estimator=estimator, beta=beta, order=order,
                  readout="coordinates", t0=t0, cache=cache)
    mod = apply.module
    cost = jax.vmap(lambda q, t, u, y: mod.f_cost(q, t, u, y)[0])

    def top(theta, u, y, q0, p0):
        q, qT, _ = apply(theta, u, q0, p0)
        nodes = u.shape[0]
        weights = jnp.full(nodes, dt).at[0].set(0.5 * dt).at[-1].set(0.5 * dt)
        running = jnp.dot(weights, cost(q, t0 + dt * jnp.arange(nodes), u, y))
        return running + mod.f_terminal_cost(qT, y[-1])[0]

    return top


def _unit_integrators(stack):
    """``unit -> its integrator`` in ``stack`` (theory §9: a unit's midpoint layer reads its inputs averaged
    over each step and returns its coordinates at the nodes, as the stack's kernels do)."""
    by_unit = {id(u): name for u, name in zip(stack.units, stack.integrators)}
    return lambda unit: by_unit[id(unit)]


def _unit_layer(dt, estimator, beta, order, t0, cache, step):
    """``(unit, size) -> layer``: a stack's unit below the top, reading all its coordinates, stepped by
    ``step(unit)``."""
    def make(unit, size):
        return layer(unit, dt, integrator=step(unit), estimator=estimator, beta=beta, order=order,
                     readout="coordinates", t0=t0, cache=cache, size=size)
    return make
