"""The options of ``symglep check`` and ``symglep train``, as every kind of system receives them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import SymglepError
from .estimators import NO_BETA


@dataclass(frozen=True)
class CheckOptions:
    """``symglep check`` (see its ``--help``); ``bc`` set means the boundary-condition check."""

    steps: int = 1000
    dt: float = 0.01
    beta: float | str = "auto"      # a positive number or "auto" (symglep.beta)
    seed: int = 0
    params_file: str | None = None
    integrator: str = "auto"
    tolerance: float = 1e-6
    fmt: str = "text"
    bc: str | None = None
    cbvp_steps: int | None = None   # None: 40, or --steps when fewer (an explicit value above --steps is refused)
    route: str = "auto"
    naive_echo: bool = False
    size: int | None = None
    noise: float | None = None      # σ of the noise study (symglep.noise); None: no study

    def __post_init__(self):
        if not (isinstance(self.tolerance, (int, float)) and math.isfinite(self.tolerance) and self.tolerance > 0):
            raise SymglepError(f"--tolerance must be a positive finite number, got {self.tolerance}")


def cbvp_steps(opts: CheckOptions) -> int:
    """The steps of the CBVP and mixed rows of ``check --bc``: ``--cbvp-steps`` as given (``run_bc_check``
    refuses one above ``--steps``), by default 40 or ``--steps`` when fewer."""
    return min(40, opts.steps) if opts.cbvp_steps is None else opts.cbvp_steps


def require_plain_check(opts: CheckOptions, kind: str = "") -> None:
    """``--noise`` belongs to the echo-vs-BPTT check of a scalar model: a one-line refusal elsewhere
    (``kind``: why this kind has no noise study). With ``--bc``, ``--beta auto`` means 1e-4
    (:data:`symglep.beta.FIXED_BETA`): that check compares several estimators at one β."""
    if opts.noise is None:
        return
    if kind:
        raise SymglepError(f"--noise is not measured for {kind}")
    if opts.bc is not None:
        raise SymglepError("--noise studies the echo-vs-BPTT check; drop --bc")


@dataclass(frozen=True)
class TrainOptions:
    """``symglep train`` (see its ``--help``)."""

    spec: str
    task: str = "sine"
    epochs: int = 100
    lr: float | None = None
    optimizer: str = "adam"
    batch: int | None = None
    beta: float | str = "auto"      # a positive number or "auto" (symglep.beta)
    estimator: str = "echo"
    seed: int | None = None     # None: 0, or a resumed run's own seed (its task)
    dt: float | None = None
    integrator: str = "auto"
    plot_path: str | None = None
    save_path: str | None = None
    resume_path: str | None = None
    scheduler: str | None = None
    learn_initial_state: bool = False
    freeze_parameters: bool = False
    freeze: tuple = ()              # parameters or elements kept at their start values (--freeze)
    quiet: bool = False
    substeps: int | None = None     # integration steps per sample of a classification series
    size: int | None = None         # an array model's number of units (--size; default: the file's)

    def __post_init__(self):
        if self.beta != "auto" and self.estimator in NO_BETA:
            nudge = "no nudge" if self.estimator == "bptt" else "an imaginary nudge of its own"
            raise SymglepError(f"--beta is the nudge of the real-arithmetic echoes; --estimator {self.estimator} "
                               f"uses {nudge}: drop --beta")

    def task_kind(self) -> str:
        """``--task sine``, ``--task target``, ``--task uea:NAME`` or ``--task DATA.npz`` (the capability cell)."""
        if self.task in ("sine", "target"):
            return f"--task {self.task}"
        return "--task uea:NAME" if self.task.startswith("uea:") else "--task DATA.npz"

    def options_given(self) -> list:
        """The ``train option`` capability cells this run asks for."""
        given = {"--batch": self.batch is not None, "--resume": self.resume_path is not None,
                 "--scheduler": self.scheduler is not None, "--learn-initial-state": self.learn_initial_state,
                 "--freeze-parameters": self.freeze_parameters, "--size": self.size is not None}
        return [self.task_kind()] + [flag for flag, on in given.items() if on]


def name_list(text: str) -> list:
    """``"A, B[0,1]"`` as ``["A", "B[0,1]"]``: commas split names, except inside an element's brackets or a
    LaTeX-style name's braces (``k_{1,2}``)."""
    names, depth, current = [], 0, ""
    for ch in text:
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += ch
    return [n.strip() for n in names + [current] if n.strip()]
