"""What a kind of system can do, and why not where it cannot (docs/architecture.md).

Every system class (:class:`~symglep.Model`, :class:`~symglep.network.ArrayModel`,
:class:`~symglep.Stack`) has a ``capabilities`` attribute, its kind's table at the end of
this module (kept here, not in the model modules, so that editing a reason does not
change the content hash of generated kernels): a :class:`Capabilities` naming, for each area (commands, targets, integrators, starts, costs, routes,
estimators, check and train options), the cells its pipeline does not serve, each
with its reason. The command line and the Python API ask it before they run, so a
refusal is said in one place, in one line, with its reason. Refusals that depend
on a model's physics (a term odd in velocity, a non-variational damping) are decided
from its derivation by :mod:`symglep.routes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SymglepError

AREAS = {
    "command": ("derive", "residuals", "generate", "check", "check --bc", "train"),
    "target": ("numba", "c", "jax"),
    "integrator": ("leapfrog", "midpoint"),
    "start": ("momentum", "velocity"),
    "cost": ("running", "terminal"),
    "dissipation": ("uniform damping", "non-uniform damping"),
    "route": ("echo", "flipped_echo", "digital_pfvp", "naive_echo", "bptt"),
    "estimator": ("echo", "echo-one-sided", "echo4", "echo-complex", "bptt"),
    "check option": ("--params", "--size", "--route", "--naive-echo"),
    "train option": ("--task sine", "--task target", "--task DATA.npz", "--task uea:NAME", "--batch", "--resume", "--scheduler",
                     "--learn-initial-state", "--freeze-parameters", "--freeze", "--size"),
}


class NotSupportedError(SymglepError):
    """A capability the system's kind does not have; the message says why."""


@dataclass(frozen=True)
class Capabilities:
    """The capability table of one kind of system: every cell of :data:`AREAS` is served except
    those in ``refused`` (``{(area, name): reason}``)."""

    kind: str
    refused: dict = field(default_factory=dict)

    def __post_init__(self):
        for area, name in self.refused:
            if name not in AREAS.get(area, ()):
                raise ValueError(f"unknown capability {area}: {name}")

    def supports(self, area: str, name: str) -> bool:
        """Whether this kind serves ``name`` in ``area`` (an unknown name is a one-line error)."""
        if name not in AREAS.get(area, ()):
            raise NotSupportedError(f"unknown {area} {name!r}; known: {', '.join(AREAS.get(area, ()))}")
        return (area, name) not in self.refused

    def reason(self, area: str, name: str) -> str | None:
        """Why the cell is refused, or ``None`` when it is served."""
        return None if self.supports(area, name) else self.refused[(area, name)]

    def require(self, area: str, name: str) -> None:
        """Raise :class:`NotSupportedError` with the cell's reason when it is refused."""
        why = self.reason(area, name)
        if why is not None:
            raise NotSupportedError(f"{self.kind} systems: {area} {name} is not supported: {why}")

    def refusing(self, more: dict) -> "Capabilities":
        """This table with the cells of ``more`` (``{(area, name): reason}``) refused too: a system whose
        parts refuse what its kind serves (a stack with an array unit has no C target)."""
        return Capabilities(self.kind, {**self.refused, **more})

    def table(self) -> list:
        """``[(area, name, reason or None)]`` over every cell, in :data:`AREAS` order (docs, tests)."""
        return [(area, name, self.reason(area, name)) for area, names in AREAS.items() for name in names]


SCALAR = Capabilities("scalar", {
    ("check option", "--size"): "a scalar model's size is fixed by its file (--size is for array models)",
    ("train option", "--size"): "a scalar model's size is fixed by its file (--size is for array models)",
})

JAX_NO_STACKS = ("a stack has no JAX module of its own: it runs in JAX as its units' layers chained by its "
                 "glue, built from Python by symglep.jax.loss(stack, dt) or symglep.jax.layer(stack, dt) "
                 "(docs/jax.md); generate each unit with --target jax")

ARRAY = Capabilities("array", {
    ("dissipation", "non-uniform damping"): "damping that differs between units has no exact echo or PFVP rule "
                                            "(theory §7) and array models run the exact echo only: declare "
                                            "uniform damping, gamma times every unit's momentum",
    ("route", "flipped_echo"): "array models are even in velocity: the plain echo is exact (theory §4)",
    ("route", "digital_pfvp"): "array models are even in velocity: the plain echo is exact (theory §4)",
    ("route", "naive_echo"): "array models are even in velocity: the plain echo is exact, never naive",
    ("check option", "--naive-echo"): "array models are even in velocity: the plain echo is exact",
})

# An array model whose mass reads the unit's position (L not separable, theory §6): the implicit midpoint
# rule, on every target.
ARRAY_MIDPOINT = Capabilities("array", {
    **ARRAY.refused,
    ("integrator", "leapfrog"): "the mass reads the unit's position, so L is not separable and the explicit "
                                "leapfrog does not apply: the model runs the implicit midpoint rule (theory §6)",
})

STACK = Capabilities("stack", {
    ("target", "jax"): JAX_NO_STACKS,
    ("command", "check --bc"): "the boundary-condition estimators run on single models; run "
                               "'symglep check FILE.py:UNIT --bc ...' on a unit (UNIT: the variable that holds it "
                               "in the stack's file; each unit's start is fixed in momentum, so the stacked echo "
                               "leaves no residual, theory §9)",
    ("dissipation", "non-uniform damping"): "a Rayleigh force has no exact echo, and the stacked echo needs the "
                                            "exact echo of every unit (theory §7, §9)",
    ("route", "flipped_echo"): "the stacked echo needs the plain echo of every unit (reversible units)",
    ("route", "digital_pfvp"): "the stacked echo needs the plain echo of every unit (reversible units)",
    ("route", "naive_echo"): "stack units are time-reversible: the stacked echo is exact, never naive",
    ("check option", "--size"): "a stack's size is fixed by its units (--size is for array models)",
    ("train option", "--size"): "a stack's size is fixed by its units (--size is for array models)",
    ("check option", "--naive-echo"): "stack units are time-reversible: the stacked echo is exact",
})
