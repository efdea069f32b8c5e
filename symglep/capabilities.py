"""What a kind of system can do, and why not where it cannot (docs/architecture.md).

Every system (:class:`~symglep.Model`, :class:`~symglep.network.ArrayModel`,
:class:`~symglep.Stack`) has a ``capabilities`` attribute: a :class:`Capabilities`
naming, for each area (commands, targets, integrators, starts, costs, routes,
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
    "target": ("numba", "c"),
    "integrator": ("leapfrog", "midpoint"),
    "start": ("momentum", "velocity"),
    "cost": ("running", "terminal"),
    "route": ("echo", "flipped_echo", "digital_pfvp", "naive_echo", "bptt"),
    "estimator": ("echo", "echo-one-sided", "bptt"),
    "check option": ("--params", "--size", "--route", "--naive-echo"),
    "train option": ("--task sine", "--task target", "--task DATA.npz", "--batch", "--resume", "--scheduler",
                     "--learn-initial-state", "--freeze-parameters"),
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

    def table(self) -> list:
        """``[(area, name, reason or None)]`` over every cell, in :data:`AREAS` order (docs, tests)."""
        return [(area, name, self.reason(area, name)) for area, names in AREAS.items() for name in names]
