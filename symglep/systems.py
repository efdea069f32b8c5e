"""The three kinds of learnable physical system, and ``symglep.compile`` for each (docs/architecture.md).

* :class:`~symglep.Model` (``scalar``): a Lagrangian or Hamiltonian in named coordinates;
* :class:`~symglep.network.ArrayModel` (``array``): index sums over units, pairs and edges,
  derived once whatever the number of units;
* :class:`~symglep.Stack` (``stack``): units chained by feed-forward glue (theory §9).

Each declares its :class:`~symglep.capabilities.Capabilities`; :func:`compile` hands it to
its runtime, all of which cache their generated modules through :mod:`symglep.cache`.
"""

from __future__ import annotations

import sympy as sp

from .errors import SymglepError
from .model import Model
from .network.model import ArrayModel
from .network.runtime import compile_array_model
from .runtime import compile_model
from .stack.model import Stack
from .stack.runtime import compile_stack

SYSTEM_TYPES = {Model: "scalar", ArrayModel: "array", Stack: "stack"}


def kind_of(system) -> str:
    """``"scalar"``, ``"array"`` or ``"stack"``; anything else is refused in one line."""
    for cls, kind in SYSTEM_TYPES.items():
        if isinstance(system, cls):
            return kind
    raise SymglepError(f"expected a symglep.Model, symglep.network.ArrayModel or symglep.Stack, "
                       f"got {type(system).__name__}")


def loss_model(system):
    """The model whose costs make the system's loss: the system itself, or a stack's top unit (theory §9)."""
    return system.units[-1] if isinstance(system, Stack) else system


def declares(model, cost: str) -> bool:
    """Whether a scalar or array model declares ``cost`` (``"cost"`` or ``"terminal_cost"``): given and not 0
    (a scalar model's are SymPy expressions, 0 when absent; an array model's ``Sum`` objects or ``None``)."""
    value = getattr(model, cost, None)
    return value is not None and not (isinstance(value, (int, float, sp.Basic)) and sp.sympify(value) == 0)


def compile(system, dt: float | None = None, cache: str | None = None, jit: bool = True, **options):  # noqa: A001
    """Compiled kernels of any system (``symglep.compile``).

    Scalar models take ``target``, ``integrator``, ``warm``, ``newton_tol`` (see
    :func:`symglep.runtime.compile_model`); array models and stacks ``integrator`` (a stack: every unit's, theory §9) and ``warm``. Kernels compile
    on their first call; ``warm=True`` compiles them all now.
    ``dt`` is the kernels' default step (0.01; 0.05 for stacks).
    """
    kind = kind_of(system)
    if kind == "scalar":
        return compile_model(system, dt=0.01 if dt is None else dt, cache=cache, jit=jit, **options)
    allowed = {"warm", "integrator"}
    extra = sorted(set(options) - allowed)
    if extra:
        raise SymglepError(f"compile() of {kind} systems takes no option {', '.join(extra)}")
    if kind == "array":
        return compile_array_model(system, dt=0.01 if dt is None else dt, cache=cache, jit=jit, **options)
    return compile_stack(system, dt=0.05 if dt is None else dt, cache=cache, jit=jit, **options)
