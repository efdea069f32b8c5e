"""``derive(model)``: everything the numeric layer and the reports need (pure sympy).

A :class:`Derivation` collects the Euler–Lagrange equations (theory §1), the
Legendre transform and regularity, the time-reversal and separability
verdicts (theory §4, §6) and the learning rule with its locality (theory §5).
This module never imports numba.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import report
from .dissipation import non_variational_note, rewrite_note
from .errors import ModelError
from .legendre import hamiltonian as legendre_hamiltonian
from .legendre import tidy
from .learning import learning_rule, locality
from .limits import check_size
from .mechanics import EulerLagrange, euler_lagrange
from .model import Model
from .readable import Readable, compact_mechanics, readable_forms
from .routes import default_route, learning_routes
from .simplify import Budget
from .symbolic import canonical_srepr, evaluate, sample_values, surrogate
from .symmetry import Symmetries, gauge_note, symmetries


@dataclass
class Derivation:
    """The symbolic derivation of one model (see ``docs/derive-schema.md``)."""

    model: Model
    el: EulerLagrange
    hamiltonian: sp.Expr | None
    velocity_map: list | None          # v_i(q, p, t), when the momentum map inverts
    hamiltonian_note: str
    legendre_regular: bool
    sym: Symmetries
    learning_rule: dict                # θ -> ∂L/∂θ
    locality: dict                     # θ -> {coordinates, velocities, inputs, parameters, time}
    notes: list = field(default_factory=list)
    routes: list = field(default_factory=list)    # learning routes: exact? forward-only? why (symglep.routes)
    default_route: str | None = None               # the route Kernels.gradient takes by default
    simplify: str = "fast"                         # the readable forms' time budget (theory §11)
    raw_seconds: float = 0.0                       # time of the raw derivation (sets the "fast" budget)
    readable_cache: list = field(default_factory=list, repr=False)   # [Readable] once computed
    compact_cache: list = field(default_factory=list, repr=False)    # [(momenta, M)] once computed

    @property
    def readable(self) -> Readable:
        """The simplified/structured forms the reports print (theory §11), computed on first use so
        that the numeric layer (which reads only the raw fields) never pays for them."""
        if not self.readable_cache:
            budget = Budget.for_model(self.simplify, self.model.n, self.raw_seconds)
            self.readable_cache.append(readable_forms(self.model, self.el, self.hamiltonian, self.learning_rule,
                                                      budget, declared_hamiltonian=self.model.hamiltonian is not None,
                                                      regular=self.legendre_regular))
        return self.readable_cache[0]

    @property
    def compact_mechanics(self) -> tuple:
        """``(momenta, M)`` in the compact forms the boundary residuals differentiate (equal to the raw ones;
        :func:`symglep.readable.compact_mechanics`), computed on first use."""
        if not self.compact_cache:
            self.compact_cache.append(compact_mechanics(self.model, self.el))
        return self.compact_cache[0]

    # Shortcuts used by reports and later stages.
    @property
    def mass_matrix(self) -> sp.Matrix:
        return self.el.mass_matrix

    @property
    def forcing(self) -> sp.Matrix:
        return self.el.forcing

    @property
    def momenta(self) -> list:
        return self.el.momenta

    @property
    def time_reversible(self) -> bool:
        return self.sym.time_reversible

    @property
    def separable(self) -> bool:
        return self.sym.separable

    def _repr_latex_(self) -> str:
        """Jupyter: the LaTeX report (readable forms, Hamilton's equations)."""
        return report.render(self, "latex")

    def _repr_markdown_(self) -> str:
        """Jupyter: the Markdown report."""
        return report.render(self, "markdown")


def unused_parameters(model: Model) -> list:
    """The declared parameters that no part of the model reads (their gradient is identically zero)."""
    read = set()
    for part in (model.lagrangian, model.damping, model.cost, model.terminal_cost):
        if isinstance(part, sp.Basic):
            read |= part.free_symbols
    return [p for p in model.parameters if p not in read]


def legendre_regularity(model: Model, mass: sp.Matrix, samples: int = 3) -> bool:
    """``det M ≢ 0``: the mass matrix is evaluated at random points and its determinant taken numerically,
    relative to the product of its rows' lengths (Hadamard's bound: a mass of 1e-20 kg in SI units is regular)."""
    entries = [surrogate(e) for e in mass]  # a mass switched on in part of the domain is not zero everywhere
    mass = sp.Matrix(mass.rows, mass.cols, entries)
    for seed in range(samples):
        values = sample_values(entries, seed=seed, fixed=model.constants)
        for s in model.parameters:
            if s in values:
                values[s] = abs(values[s]) * 2 + sp.Float(0.5)
        numeric = np.array([[evaluate(mass[i, j], values) for j in range(mass.cols)]
                            for i in range(mass.rows)], dtype=complex)
        if not np.all(np.isfinite(numeric)):
            continue
        scale = float(np.prod(np.linalg.norm(numeric, axis=1)))
        if scale > 0 and abs(np.linalg.det(numeric)) > 1e-12 * scale:
            return True
    return False


# Derivations of the models this process derived last: id(model) -> (model, its attributes then,
# {simplify mode: Derivation}). One command derives a model several times (a stack checks its units when
# built and reports them later; `check` generates code and reports): the raw derivation is done once.
# _BY_CONTENT: the same derivations keyed by the model's content (every attribute, symbols with their
# assumptions), so a model built again from the same file (a notebook cell run twice, each CLI command of
# a test session) reuses the raw derivation and the readable forms already computed.
_REMEMBERED: OrderedDict = OrderedDict()
_BY_CONTENT: OrderedDict = OrderedDict()
_REMEMBER = 32


def forget_derivations() -> None:
    """Drop the remembered derivations (a benchmark timing ``derive`` from scratch calls this)."""
    _REMEMBERED.clear()
    _BY_CONTENT.clear()


def _content_key(model: Model) -> str:
    """Every attribute of ``model`` as text: SymPy values by :func:`~symglep.symbolic.canonical_srepr`
    (symbols with their full assumptions, whatever the process asked of them before), others by ``repr``."""
    def text(value):
        if isinstance(value, (sp.Basic, tuple, list, dict)):
            try:
                return canonical_srepr(value)
            except (sp.SympifyError, TypeError, AttributeError):  # e.g. a tuple of Variable records
                pass
        return repr(value)
    return "\n".join([type(model).__qualname__] + [f"{k}={text(v)}" for k, v in sorted(vars(model).items())])


def _same_content(key: str, model: Model, simplify: str) -> Derivation | None:
    """The derivation of another model object with the content ``key``, pointed at ``model`` (the readable
    forms, computed once, are shared)."""
    modes = _BY_CONTENT.get(key)
    if modes is None:
        return None
    return dataclasses.replace(_in_mode(modes, simplify), model=model)


def _in_mode(modes: dict, simplify: str) -> Derivation:
    """The derivation in mode ``simplify`` from ``{mode: Derivation}``: another mode's raw fields with the
    readable forms left to compute, when that mode is new."""
    if simplify not in modes:
        modes[simplify] = dataclasses.replace(next(iter(modes.values())), simplify=simplify, readable_cache=[])
    return modes[simplify]


def _remembered(model: Model, simplify: str) -> Derivation | None:
    """The derivation of this very ``model`` object in mode ``simplify``, when its attributes are the same
    objects as when it was derived (a reassigned attribute derives again); another mode's raw fields are
    reused with the readable forms left to compute."""
    entry = _REMEMBERED.get(id(model))
    if entry is None or entry[0] is not model or entry[1].keys() != vars(model).keys() \
            or any(vars(model)[k] is not v for k, v in entry[1].items()):
        return None
    _REMEMBERED.move_to_end(id(model))
    return _in_mode(entry[2], simplify)


def derive(model: Model, simplify: str = "fast") -> Derivation:
    """Derive the equations of motion, Legendre transform, symmetries and learning rule of ``model``.

    ``simplify`` (``none``, ``fast``, ``full``) sets the time budget of the readable forms the
    reports print (:mod:`symglep.readable`, theory §11); the raw fields are the same in every mode.
    The same model object is derived once per process (:func:`forget_derivations`).
    """
    Budget.for_model(simplify, 0, 0.0)  # reject a bad mode before the work
    if not isinstance(model, Model):
        if getattr(getattr(model, "capabilities", None), "kind", None) == "array":
            raise ModelError(f"{model.name!r} is an array model: its derivation is in index form, "
                             "symglep.network.index_form(model) (docs/networks.md)")
        raise ModelError(f"derive() needs a symglep.Model, got {type(model).__name__}")
    known = _remembered(model, simplify)
    if known is not None:
        return known
    key = _content_key(model)  # before deriving: the derivation caches on the model (e.g. its sizes)
    derivation = _same_content(key, model, simplify)
    if derivation is None:
        derivation = _derive(model, simplify)
        _BY_CONTENT[key] = {simplify: derivation}
        while len(_BY_CONTENT) > _REMEMBER:
            _BY_CONTENT.popitem(last=False)
    _REMEMBERED[id(model)] = (model, dict(vars(model)), {simplify: derivation})
    while len(_REMEMBERED) > _REMEMBER:
        _REMEMBERED.popitem(last=False)
    return derivation


def _require_closed_form_derivatives(model: Model, el) -> None:
    """Refuse a Lagrangian with a function whose derivative SymPy leaves unevaluated (``Mod``, ``floor``,
    ``re``, a user's undefined function): no equation of motion or kernel can be written from it."""
    pending = {d.expr for e in (*el.forcing, *el.mass_matrix) for d in sp.sympify(e).atoms(sp.Derivative)}
    if pending:
        names = ", ".join(sorted(str(f) for f in pending)[:3])
        raise ModelError(f"model {model.name!r}: the derivative of {names} has no closed form (SymPy leaves it "
                         "unevaluated), so no equation of motion can be written from it; use functions with "
                         "known derivatives (a kink such as Max, Abs or Piecewise is fine)")


def _derive(model: Model, simplify: str) -> Derivation:
    """The derivation itself (:func:`derive`)."""
    started = time.perf_counter()
    check_size(model)
    el = euler_lagrange(model)
    _require_closed_form_derivatives(model, el)
    regular = legendre_regularity(model, el.mass_matrix)
    notes = []
    if regular and model.hamiltonian is not None:
        # Keep the user's own H; its velocity map is v = ∂H/∂p. (Inverting the momentum
        # map of the rebuilt L again would only be thrown away, and is slow on the
        # unsimplified L that from_hamiltonian produces.)
        h = model.hamiltonian
        vmap = [tidy(sp.diff(h, p)) for p in model.p]
        note = "declared Hamiltonian; velocity map v = dH/dp"
    elif regular:
        h, vmap, how = legendre_hamiltonian(model.lagrangian, model.v, model.p, parameters=model.parameters,
                                            p_of_v=el.momenta, mass=el.mass_matrix)
        note = f"velocity map inverted ({how})" if vmap is not None else how
    else:
        h, vmap, note = None, None, "the mass matrix is singular (det M ≡ 0): no Hamiltonian"
        notes.append("Legendre transform is singular: the model is degenerate (constrained)")
    sym = symmetries(model, el.momenta)
    gauge = None if sym.time_reversible else gauge_note(model, sym.breaking_terms)
    if gauge:
        notes.append(gauge)
    rule = learning_rule(model)
    unused = unused_parameters(model)
    if unused:
        notes.append(f"parameter(s) {', '.join(map(str, unused))} appear nowhere in the model (Lagrangian, "
                     "dissipation, costs): their gradient is zero (a misspelt name?)")
    if model.rayleigh is not None:
        notes.append(rewrite_note(model.rayleigh.rate) if model.rayleigh.rewritable
                     else non_variational_note(model.rayleigh.why))
    routes = learning_routes(model, sym, regular)
    return Derivation(model, el, h, vmap, note, regular, sym, rule, locality(model, rule), notes,
                      routes, default_route(routes), simplify, time.perf_counter() - started)
