"""Reports of a derivation: JSON, text, Markdown and LaTeX (schema: ``docs/derive-schema.md``).

Expressions are written with the model's names for people (the top-level keys)
and, under ``safe_expressions``, with the safe names of the report's
``symbol_table`` (:mod:`symglep.symbol_table`), which ``sympy.parse_expr``
always reads back whatever the model called its symbols. Text, Markdown and
LaTeX print the readable forms (:mod:`symglep.readable`, theory §11).
"""

from __future__ import annotations

import json
import re
import unicodedata

import numpy as np
import sympy as sp

from . import __version__
from .domain import never_real_zero, random_values, real_domain
from .integrators import auto_integrator_reason
from .learning import describe_locality
from .model import Model, latex_symbol_names
from .symbol_table import SymbolTable, model_symbols
from .symbolic import distinct_factors
from .symmetry import odd_terms_text

FORMATS = ("text", "markdown", "latex", "json")


def expr_str(expr) -> str:
    """A ``parse_expr``-readable string of ``expr`` (terms in the order sympy built them)."""
    return sp.sstr(sp.sympify(expr), order="none")


def readable_str(expr) -> str:
    """A ``parse_expr``-readable string of a readable form, terms in sympy's canonical order
    (``l**2*m``, ``M + m``)."""
    return sp.sstr(sp.sympify(expr))


def symbol_table(d) -> SymbolTable:
    """The safe names of every symbol the report of ``d`` can print."""
    r = d.readable
    extra = [(s, "input rate") for s in d.el.input_rates]
    extra += [(s, "momentum rate") for s in (r.momentum_rates if r is not None else ())]
    return SymbolTable(model_symbols(d.model, extra))


def expressions(d, show, key, show_readable) -> dict:
    """Every expression-valued key of the report, printed by ``show`` (the readable forms by
    ``show_readable``); maps keyed by ``key(symbol)``."""
    m, el = d.model, d.el
    n = m.n
    out = {
        "lagrangian": show(m.lagrangian),
        "cost": show(m.cost),
        "terminal_cost": show(m.terminal_cost),
        "euler_lagrange": [show(r) for r in el.residuals],
        "mass_matrix": [[show(el.mass_matrix[i, j]) for j in range(n)] for i in range(n)],
        "forcing": [show(f) for f in el.forcing],
        "explicit_accelerations": (
            {key(a): show(e) for a, e in zip(m.a, el.accelerations)} if el.accelerations else None),
        "momentum_map": {key(p): show(e) for p, e in zip(m.p, el.momenta)},
        "velocity_map": {key(v): show(e) for v, e in zip(m.v, d.velocity_map)} if d.velocity_map else None,
        "hamiltonian": show(d.hamiltonian) if d.hamiltonian is not None else None,
        "kinetic_energy": show(d.sym.kinetic) if d.sym.kinetic is not None else None,
        "potential_energy": show(d.sym.potential) if d.sym.potential is not None else None,
        "reversibility_breaking_terms": [show(e) for e in d.sym.breaking_terms],
        "learning_rule": {key(th): show(e) for th, e in d.learning_rule.items()},
    }
    r = d.readable
    if r is None:
        return out
    out["readable"] = {
        "mass_matrix": [[show_readable(r.mass_matrix[i, j]) for j in range(n)] for i in range(n)],
        "det_mass_matrix": show_readable(r.det_mass) if r.det_mass is not None else None,
        "adjugate_mass_matrix": ([[show_readable(r.adjugate[i, j]) for j in range(n)] for i in range(n)]
                                 if r.adjugate is not None else None),
        "momentum_map": {key(p): show_readable(e) for p, e in zip(m.p, r.momenta)},
        "hamiltonian": show_readable(r.hamiltonian) if r.hamiltonian is not None else None,
        "hamiltonian_parts": ({k: show_readable(e) for k, e in r.hamiltonian_parts.items()}
                              if r.hamiltonian_parts is not None else None),
        "hamiltonian_implicit": (None if r.hamiltonian_implicit is None else
                                 {"offset": [show_readable(e) for e in r.hamiltonian_implicit["offset"]],
                                  "potential": show_readable(r.hamiltonian_implicit["potential"]),
                                  "time_and_inputs": show_readable(r.hamiltonian_implicit["time_and_inputs"])}),
        "explicit_accelerations": (
            {key(a): show_readable(e) for a, e in zip(m.a, r.accelerations)} if r.accelerations else None),
        "learning_rule": {key(th): show_readable(e) for th, e in r.learning_rule.items()},
        "forcing": [show_readable(e) for e in r.forcing] if r.forcing is not None else None,
        "euler_lagrange": [show_readable(e) for e in r.euler_lagrange] if r.euler_lagrange is not None else None,
    }
    out["hamilton_equations"] = None if r.hamilton_equations is None else {
        "velocities": {key(v): show_readable(qd) for v, (qd, _) in zip(m.v, r.hamilton_equations)},
        "momentum_rates": {key(pr): show_readable(pd) for pr, (_, pd) in zip(r.momentum_rates, r.hamilton_equations)},
    }
    return out


def to_dict(d) -> dict:
    """The JSON-ready content of a derivation."""
    m = d.model
    el = d.el
    table = symbol_table(d)
    ex = expressions(d, expr_str, lambda s: s.name, readable_str)
    safe = expressions(d, lambda e: expr_str(table.safe(e)), table.safe_name, lambda e: readable_str(table.safe(e)))
    r = d.readable
    out = {
        "symglep_version": _version(),
        "model": m.name,
        "time": m.time.name,
        "coordinates": [s.name for s in m.q],
        "velocities": [s.name for s in m.v],
        "accelerations": [s.name for s in m.a],
        "momenta": [s.name for s in m.p],
        "parameters": [s.name for s in m.parameters],
        "constants": {s.name: float(v) for s, v in m.constants.items()},
        "inputs": [s.name for s in m.u],
        "input_rates": [s.name for s in el.input_rates],
        "targets": [s.name for s in m.y],
        **{k: ex[k] for k in ("lagrangian", "cost", "terminal_cost", "euler_lagrange", "mass_matrix", "forcing",
                              "explicit_accelerations")},
        "accelerations_note": el.acceleration_note,
        **{k: ex[k] for k in ("momentum_map", "velocity_map", "hamiltonian")},
        "hamiltonian_note": d.hamiltonian_note,
        "legendre_regular": d.legendre_regular,
        "real_where": [expr_str(_plain_condition(c)) for c in real_domain(m.lagrangian, d.hamiltonian)],
        "separable": d.sym.separable,
        "separability_note": d.sym.separability_note,
        **dict(zip(("integrator", "integrator_note"), auto_integrator_reason(d))),
        **{k: ex[k] for k in ("kinetic_energy", "potential_energy")},
        "time_reversible": d.sym.time_reversible,
        "reversibility_breaking_terms": ex["reversibility_breaking_terms"],
        "explicit_time_dependence": d.sym.explicit_time,
        "time_reversal_flip": [s.name for s in d.sym.flip] if d.sym.flip is not None else None,
        "time_reversal_flip_note": d.sym.flip_note,
        "dissipation": _dissipation(m),
        "learning_routes": [dict(r) for r in d.routes],
        "default_route": d.default_route,
        "learning_rule": ex["learning_rule"],
        "locality": {th.name: entry for th, entry in d.locality.items()},
        "notes": list(d.notes),
    }
    if r is not None:
        out["momentum_rates"] = [s.name for s in r.momentum_rates]
        out["hamilton_equations"] = ex["hamilton_equations"]
        out["hamilton_note"] = r.hamilton_note
        out["readable"] = {**ex["readable"], "hamiltonian_form": r.hamiltonian_form}
        # no wall times here: the same model gives the same report (Readable.seconds has them)
        out["simplification"] = {"mode": r.mode, "attempts_dropped": r.attempts_dropped,
                                 "op_counts": r.op_counts}
    out["symbol_table"] = table.as_json()
    out["safe_expressions"] = safe
    return out


def _dissipation(m: Model) -> dict | None:
    """The declared Rayleigh function and what symglep made of it (theory §7), or None."""
    r = m.rayleigh
    if r is None:
        return None
    return {
        "function": expr_str(r.function),
        "variational": r.rewritable,
        "rewritten": r.rewritable,
        "rate": expr_str(r.rate) if r.rate is not None else None,
        "why": r.why,
        "lagrangian_before_rewrite": expr_str(m.user_lagrangian),
    }


def _flip_verdict(d) -> str:
    if d.sym.flip is None:
        return f"none ({d.sym.flip_note})"
    if not d.sym.flip:
        return "not needed"
    return ", ".join(f"{s} → −{s}" for s in d.sym.flip) + " restores it (the echo runs the flipped system)"


def _dissipation_verdict(m: Model) -> str:
    r = m.rayleigh
    if r is None:
        return "none"
    if r.rewritable:
        return f"R = {expr_str(r.function)}: uniform, rewritten as exp({expr_str(r.rate)}·t)·L (Caldirola–Kanai)"
    return f"R = {expr_str(r.function)}: NOT variational ({r.why})"


def _route_line(r: dict) -> str:
    if r["available"] and r["exact"]:
        state = "EXACT"
    elif r["available"]:
        state = "BIASED, behind an explicit flag"
    elif r["exact"]:
        state = "not needed"
    else:
        state = "refused"
    hw = "forward-only" if r["forward_only"] else "not forward-only"
    return f"{r['route']} [{hw}]: {state}: {r['why']}"


def _version() -> str:
    return __version__


def _regular_verdict(d) -> str:
    """``yes``, with the factors of det M that vanish somewhere (the model is singular there: a start on
    that set fails, one near it is stiff; the set may be one of positions, velocities or parameter
    values), or ``NO``."""
    if not d.legendre_regular:
        return "NO"
    r = d.readable
    if r is None or r.det_mass is None:
        return "yes"
    # coordinates, velocities and parameters without a declared sign are real numbers of either sign
    real = {s: sp.Symbol(s.name, real=True) for s in r.det_mass.free_symbols if s.is_real is None}
    names = {getattr(c, "name", str(c)) for c in d.model.q}
    parts = distinct_factors(r.det_mass)

    def may_vanish(f) -> bool:
        """A factor that reads a coordinate, or a polynomial one in velocities or parameters (1 − c², 1 + 2cv),
        that SymPy cannot show to keep its sign."""
        reads_q = any(s.name in names for s in f.free_symbols)
        signed = f.xreplace(real).is_positive or f.xreplace(real).is_negative
        return (bool(f.free_symbols) and (reads_q or f.is_polynomial()) and not signed
                and approaches_zero(f, d.model.constants))

    factors = [f for f in parts if may_vanish(f) and not never_real_zero(f)]
    diverging = _diverges_at_zero(r.det_mass, (*d.model.q, *d.model.v))
    clauses = []
    mm = OWN_SYMBOLS["M"] if "M" in model_names(d.model) else "M"  # a model's own M (a cart's mass) is not this
    if factors:
        clauses.append(" or ".join(f"{readable_str(f)} = 0" for f in factors) + f" ({mm} is singular there)")
    if diverging:
        clauses.append(" or ".join(f"{s} = 0" for s in diverging) + f" ({mm} diverges there: no velocity map)")
    return "yes, except where " + "; and where ".join(clauses) if clauses else "yes"


#: random points at which a factor of det M is sampled, and the relative size below which it counts as reaching 0
SIGN_SAMPLES = 512
NEAR_ZERO = 1e-4


def approaches_zero(factor, constants: dict) -> bool:
    """Whether ``factor`` changes sign, or comes within :data:`NEAR_ZERO` of 0 relative to its largest value,
    over :data:`SIGN_SAMPLES` random points (:func:`~symglep.domain.random_values`: symbols at their declared signs,
    the others in [−3, 3]): a triple pendulum's det M bracket of 80 operations keeps its sign and stays
    away from 0 (SymPy cannot prove it), ``sin θ`` and ``1 − cos θ`` do not. Undecided: True."""
    values = random_values(factor.xreplace(constants), SIGN_SAMPLES)
    if values is None:
        return True
    values = values.astype(float)
    values = values[np.isfinite(values)]
    if values.size < SIGN_SAMPLES // 2:
        return True
    top = np.max(np.abs(values))
    return bool(top == 0 or (values.min() < 0 < values.max()) or np.min(np.abs(values)) <= NEAR_ZERO * top)


def _diverges_at_zero(det, symbols) -> list:
    """The coordinates and velocities at whose zero ``det`` is infinite or undefined (``|v|^(4/3)/…`` has
    ``M ∝ |v|^(-2/3)``; a ``1/r`` potential's kinetic term ``r²θ̇²`` is fine): a start there divides by zero."""
    out = []
    for s in symbols:
        if s not in det.free_symbols:
            continue
        try:
            value = det.subs(s, 0)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            out.append(s)
    return out


def _domain_verdict(d) -> str:
    """Where L and H are real (their logarithms, roots, inverse trigonometric functions; :mod:`symglep.domain`):
    the equations and the regularity verdict hold there; ``everywhere`` when nothing restricts them."""
    conditions = real_domain(d.model.lagrangian, d.hamiltonian)
    if not conditions:
        return "everywhere"
    return " and ".join(expr_str(_plain_condition(c)) for c in conditions) + " (the equations hold there only)"


def _plain_condition(condition):
    """``c/g ≥ 0`` with a constant ``c`` written ``g > 0`` (``c > 0``) or ``g < 0`` (``c < 0``): the relativistic
    ``−1/(ẋ² − c²) ≥ 0`` reads ``ẋ² − c² < 0``; any other condition as it is."""
    if not isinstance(condition, (sp.GreaterThan, sp.StrictGreaterThan)) or condition.rhs != 0:
        return condition
    numerator, denominator = sp.fraction(sp.together(condition.lhs))
    if not numerator.is_number or numerator == 0 or not denominator.free_symbols:
        return condition
    return sp.StrictGreaterThan(denominator, 0) if numerator > 0 else sp.StrictLessThan(denominator, 0)


def _separable_verdict(d) -> str:
    """Separability, and for a singular mass matrix that the split alone steps nothing (the leapfrog needs
    v = M⁻¹ p, theory §6)."""
    if not d.sym.separable:
        return f"no: {d.sym.separability_note}"
    if not d.legendre_regular:
        return "yes, but M is singular: no velocity map v(p), so no leapfrog (see regular above)"
    return "yes"


def _verdicts(d) -> list[tuple[str, str]]:
    rev = "yes" if d.sym.time_reversible else f"NO (odd in velocity: {odd_terms_text(d.sym.breaking_terms, expr_str)})"
    if d.sym.time_reversible and d.model.rayleigh is not None and not d.model.rayleigh.rewritable:
        rev = "yes, but the Rayleigh force is odd in v: the dynamics are not time-reversible"
    elif d.sym.time_reversible and d.model.rayleigh is not None:  # Caldirola–Kanai: L is e^{γt} L₀
        rev = ("yes, as e^{γt} L: the damped motion itself is not reversible; its weight e^{γt} is replayed "
               "anti-damped by the echo (theory §7)")
    return [
        ("Legendre regular (det M ≢ 0)", _regular_verdict(d)),
        ("L and H real where", _domain_verdict(d)),
        ("separable (L = K(v) − V(q, t))", _separable_verdict(d)),
        ("integrator (auto)", "{}: {}".format(*auto_integrator_reason(d))),
        ("time-reversible (L even in v)", rev),
        ("time-reversing parameter flip", _flip_verdict(d)),
        ("dissipation", _dissipation_verdict(d.model)),
        ("explicit time dependence", ", ".join(
            f"{e['symbol']} ({e['kind']}, in {'/'.join(e['appears_in'])})" for e in d.sym.explicit_time) or "none"),
    ]


def shown(d):
    """The forms the human-readable reports print: the readable ones when built, else the raw ones."""
    r = d.readable
    if r is not None:
        return r.mass_matrix, r.momenta, r.hamiltonian, r.accelerations, r.learning_rule
    return d.el.mass_matrix, d.el.momenta, d.hamiltonian, d.el.accelerations, d.learning_rule


def shown_equations(d) -> tuple:
    """``(f, Euler–Lagrange residuals)`` as the human-readable reports print them (readable when built)."""
    r = d.readable
    if r is not None and r.euler_lagrange is not None:
        return r.forcing, r.euler_lagrange
    return list(d.el.forcing), d.el.residuals


def _op_summary(d) -> str:
    r = d.readable
    labels = {"hamiltonian": "H", "mass_matrix": "M", "accelerations": "a", "momenta": "p", "learning_rule": "∂L/∂θ",
              "forcing": "f", "euler_lagrange": "EL"}
    counts = ", ".join(f"{labels[k]} {v['raw']} → {v['readable']}" for k, v in r.op_counts.items())
    dropped = f", {r.attempts_dropped} attempt(s) stopped by the time budget" if r.attempts_dropped else ""
    return f"simplification {r.mode}{dropped}; op counts raw → shown: {counts}"


IMPLICIT_H = "½ (p − b)ᵀ M⁻¹ (p − b) + V + W"


def _implicit_parts(parts: dict, show) -> list:
    """``b = [...]``, ``V = ...``, ``W = ...`` of a Hamiltonian stated with ``M⁻¹`` (theory §11)."""
    return [f"b = [{', '.join(show(e) for e in parts['offset'])}]", f"V = {show(parts['potential'])}",
            f"W = {show(parts['time_and_inputs'])}"]


PART_LABELS = {"kinetic": "kinetic ½ (p − b)ᵀ M⁻¹ (p − b)", "potential": "potential V(q)",
               "time_and_inputs": "time and input terms W(q, t, u)"}


#: the report's own symbols, and what they become where the model names a symbol the same (a pendulum's length L,
#: a cart's mass M, a height H): script and bold letters, as physicists write them
OWN_SYMBOLS = {"L": "ℒ", "H": "ℋ", "M": "𝐌"}
OWN_SYMBOLS_LATEX = {"L": r"\mathcal{L}", "H": r"\mathcal{H}"}


def model_names(m) -> set:
    """Every name a report of the model can print (:func:`symglep.symbol_table.model_symbols`)."""
    return {s.name for s, _ in model_symbols(m)}


def latex_labels(m) -> tuple:
    """``(Lagrangian, Hamiltonian, cost)`` as the LaTeX and Markdown reports write them: ``\\mathcal{L}``,
    ``\\mathcal{H}``, ``\\mathrm{cost}`` where the model declares a symbol ``L``, ``H``, ``c``."""
    names = model_names(m)
    lag, ham = (OWN_SYMBOLS_LATEX[x] if x in names else x for x in ("L", "H"))
    return lag, ham, (r"\mathrm{cost}" if "c" in names else "c")


def own_labels(m):
    """A function that rewrites the report's own letters L, H, M in a line of its wording (never in a printed
    expression) as ℒ, ℋ, 𝐌 where the model declares a symbol of that name (``∂L/∂L`` read as ``∂ℒ/∂L``)."""
    clash = {k: v for k, v in OWN_SYMBOLS.items() if k in model_names(m)}
    if not clash:
        return lambda text: text
    pattern = re.compile(r"(?<![A-Za-z_])(" + "|".join(clash) + r")(?![A-Za-z_0-9])")
    return lambda text: pattern.sub(lambda x: clash[x.group(1)], text)


def cost_label(m) -> str:
    """``"cost c"``, or ``"cost"`` where the model declares a symbol ``c``."""
    return "cost" if "c" in model_names(m) else "cost c"


def render_text(d) -> str:
    m = d.model
    el = d.el
    r = d.readable
    mass, momenta, h, accelerations, rule = shown(d)
    show = readable_str if r is not None else expr_str
    own = own_labels(m)
    out = [f"model {m.name}: {m.n} coordinate(s) {', '.join(s.name for s in m.q)}; "
           f"parameters {', '.join(s.name for s in m.parameters) or 'none'}", ""]
    out += [f"{own('L')} = {expr_str(m.lagrangian)}", f"{cost_label(m)} = {expr_str(m.cost)}"]
    if m.terminal_cost != 0:
        out.append(f"c_T = {expr_str(m.terminal_cost)}    [terminal cost at t = T; the echo starts from "
                   "(q(T), −p(T) − β ∂c_T/∂q), theory §10]")
    out.append("")
    force = m.rayleigh is not None and not m.rayleigh.rewritable  # kept as a force: it enters the equations
    out.append(own("Euler–Lagrange (d/dt ∂L/∂v − ∂L/∂q + ∂R/∂v = 0, R the Rayleigh function):" if force
                   else "Euler–Lagrange (d/dt ∂L/∂v − ∂L/∂q = 0):"))
    forcing, residuals = shown_equations(d)
    out += [f"  0 = {show(e)}" for e in residuals]
    out.append(own("mass matrix M:"))
    out += ["  [" + ", ".join(show(mass[i, j]) for j in range(m.n)) + "]" for i in range(m.n)]
    if r is not None and r.det_mass is not None:
        out.append(f"  {own('det M')} = {show(r.det_mass)}")
    out.append(own("forcing f (M·a = f):"))
    out += [f"  {show(f)}" for f in forcing]
    if accelerations:
        out.append(own("accelerations (a = M⁻¹ f = adj(M) f / det M):") if r is not None and r.adjugate is not None
                   else "accelerations:")
        out += [f"  {a} = {show(e)}" for a, e in zip(m.a, accelerations)]
    else:
        out.append(f"accelerations: not built symbolically ({el.acceleration_note})")
    out.append("momenta:")
    out += [f"  {p} = {show(e)}" for p, e in zip(m.p, momenta)]
    if h is not None:
        out.append(f"Hamiltonian: {own('H')} = {show(h)}")
        if r is not None and r.hamiltonian_parts is not None:
            out += [f"  {own(PART_LABELS[k])} = {show(e)}" for k, e in r.hamiltonian_parts.items()]
    elif r is not None and r.hamiltonian_implicit is not None:
        out += [own(f"Hamiltonian: H = {IMPLICIT_H} with the M above (M⁻¹ is not written out: ") +
                f"{d.hamiltonian_note})", *[f"  {line}" for line in _implicit_parts(r.hamiltonian_implicit, show)]]
    else:
        out.append(f"Hamiltonian: not available ({d.hamiltonian_note})")
    if r is not None and r.hamilton_equations is not None:
        out.append(own(f"Hamilton's equations ({r.hamilton_note}):"))
        for q, p, v, pr, (qd, pd) in zip(m.q, m.p, m.v, r.momentum_rates, r.hamilton_equations):
            friction = f" − ∂R/∂{v}" if force else ""  # the Rayleigh force kept in the equations
            out += [f"  {v} = ∂{own('H')}/∂{p} = {show(qd)}", f"  {pr} = −∂{own('H')}/∂{q}{friction} = {show(pd)}"]
    if r is not None:
        out.append(own(_op_summary(d)))
    out.append("")
    out += [f"{own(k)}: {own(v) if k.startswith('integrator') else v}" for k, v in _verdicts(d)]
    out.append("")
    out.append(f"learning routes (default: {_default_text(d, '; ')}):")
    out += [f"  {_route_line(x)}" for x in d.routes]
    out.append("")
    out.append(own("learning rule ∂L/∂θ:"))
    damping = d.model.damping
    for th, e in rule.items():
        where = describe_locality(d.locality[th])
        if damping != 0 and str(th) in {s.name for s in damping.free_symbols}:
            where += "; also acts through the Rayleigh force, which no ∂L/∂θ sees: its gradient comes from BPTT"
        out.append(f"  ∂{own('L')}/∂{th} = {show(e)}    [{where}]")
    out += [f"note: {n}" for n in d.notes]
    return "\n".join(out) + "\n"


def latex_names(d) -> dict:
    """:func:`latex_symbol_names` plus the momentum rates ``\\dot{p}_{q}``."""
    names = latex_symbol_names(d.model)
    if d.readable is not None:
        for q, pr in zip(d.model.q, d.readable.momentum_rates):
            names[pr] = rf"\dot{{p}}_{{{sp.latex(q)}}}"
    return names


def hamilton_rows(d, tex) -> list[tuple[str, str]]:
    """``(left, right)`` LaTeX of Hamilton's equations ``q̇ = ∂H/∂p``, ``ṗ = −∂H/∂q`` (theory §11)."""
    r = d.readable
    if r is None or r.hamilton_equations is None:
        return []
    names = latex_names(d)
    rows = []
    for q, v, pr, (qd, pd) in zip(d.model.q, d.model.v, r.momentum_rates, r.hamilton_equations):
        rows += [(names[v], tex(qd)), (names[pr], tex(pd))]
    return rows


def render_markdown(d) -> str:
    m = d.model
    r = d.readable
    mass, momenta, h, accelerations, rule = shown(d)
    names = latex_names(d)
    tex = lambda e: sp.latex(e, symbol_names=names)  # noqa: E731
    lag, ham, cost = latex_labels(m)
    out = [f"# Derivation of `{m.name}`", "", f"$${lag} = {tex(m.lagrangian)}$$", "",
           f"$${cost} = {tex(m.cost)}$$", ""]
    if m.terminal_cost != 0:
        out += [f"$$c_T = {tex(m.terminal_cost)}$$", "",
                "Terminal cost at $t = T$: the echo starts from $(q(T), -p(T) - \\beta\\,\\partial c_T/\\partial q)$ "
                "(theory §10).", ""]
    out += ["## Euler–Lagrange equations", ""]
    out += [f"$$0 = {tex(e)}$$" for e in shown_equations(d)[1]]
    mm = r"\mathbf{M}" if "M" in model_names(m) else "M"
    out += ["", "## Mass matrix", "", f"$${mm} = {tex(mass)}$$", ""]
    if r is not None and r.det_mass is not None:
        out += [f"$$\\det {mm} = {tex(r.det_mass)}$$", ""]
    if accelerations:
        out += ["## Accelerations", ""]
        out += [f"$${names[a]} = {tex(e)}$$" for a, e in zip(m.a, accelerations)]
        out.append("")
    out += ["## Legendre transform", ""]
    out += [f"- ${names[p]} = {tex(e)}$" for p, e in zip(m.p, momenta)]
    if h is not None:
        out += ["", f"$${ham} = {tex(h)}$$"]
    elif r is not None and r.hamiltonian_implicit is not None:
        out += ["", "$$H = \\frac{1}{2} (p - b)^T M^{-1} (p - b) + V + W$$", "",
                f"with the M above (M⁻¹ is not written out: {d.hamiltonian_note}):", ""]
        out += [f"- ${line}$" for line in _implicit_parts(r.hamiltonian_implicit, tex)]
    else:
        out += ["", f"Hamiltonian not available: {d.hamiltonian_note}."]
    rows = hamilton_rows(d, tex)
    if rows:
        out += ["", "## Hamilton's equations", "", f"{r.hamilton_note}.", ""]
        out += [f"$${left} = {right}$$" for left, right in rows]
    if r is not None:
        out += ["", _op_summary(d) + "."]
    out += ["", "## Verdicts", "", "| property | verdict |", "|---|---|"]
    out += [f"| {own_labels(m)(k)} | {v} |" for k, v in _verdicts(d)]
    out += ["", "## Learning routes", "", f"Default: `{_default_text(d, ': ')}`.", "",
            "| route | available | exact | forward-only | why |", "|---|---|---|---|---|"]
    yn = lambda b: "yes" if b else "no"  # noqa: E731
    out += [f"| {x['route']} | {yn(x['available'])} | {yn(x['exact'])} | {yn(x['forward_only'])} | "
            f"{x['why'].replace('|', '/')} |" for x in d.routes]
    out += ["", "## Learning rule", "", own_labels(m)("| parameter | ∂L/∂θ | locality |"), "|---|---|---|"]
    out += [f"| `{th}` | ${tex(e)}$ | {describe_locality(d.locality[th])} |" for th, e in rule.items()]
    return "\n".join(out) + "\n"


def render_latex(d) -> str:
    """The derivation as one LaTeX ``align`` block (a notebook's display too): L, the costs, a Rayleigh function
    kept as a force, the equations, the mass matrix, momenta, H, Hamilton's equations, the learning rule, and
    the verdicts and learning routes as ``\\intertext``, all pdfLaTeX-safe."""
    m = d.model
    mass, momenta, h, _, rule = shown(d)
    names = latex_names(d)
    for s in (*m.parameters, *m.u, *m.y, *m.constants):  # "target" is one name, not t·a·r·g·e·t
        if s not in names and sp.latex(s).isalpha() and len(sp.latex(s)) > 1:
            names[s] = rf"\mathrm{{{sp.latex(s)}}}"
    tex = lambda e: sp.latex(e, symbol_names=names)  # noqa: E731
    lag, ham, cost = latex_labels(m)
    lines = [r"\begin{align}", rf"{lag} &= {tex(m.lagrangian)} \\", rf"{cost} &= {tex(m.cost)} \\"]
    if m.terminal_cost != 0:
        lines.append(rf"c_T &= {tex(m.terminal_cost)} \\")
    if m.rayleigh is not None and not m.rayleigh.rewritable:  # its force is in the equations below
        lines.append(rf"R &= {tex(m.rayleigh.function)} \\")
    lines += [rf"0 &= {tex(e)} \\" for e in shown_equations(d)[1]]
    lines.append(rf"\mathbf{{M}} &= {tex(mass)} \\")  # bold: a parameter may be named M (cart_pole)
    lines += [rf"{names[p]} &= {tex(e)} \\" for p, e in zip(m.p, momenta)]
    if h is not None:
        lines.append(rf"{ham} &= {tex(h)} \\")
    lines += [rf"{left} &= {right} \\" for left, right in hamilton_rows(d, tex)]
    lines += [rf"\frac{{\partial {lag}}}{{\partial {tex(th)}}} &= {tex(e)} \\" for th, e in rule.items()]
    lines += [rf"\intertext{{{latex_text(f'{k}: {v}')}}}" for k, v in _verdicts(d)]
    lines += [rf"\intertext{{{latex_text(_route_line(x))}}}" for x in d.routes]
    lines[-1] = lines[-1].rstrip(" \\")
    lines.append(r"\end{align}")
    return "\n".join(lines) + "\n"


#: characters of the reports' prose that pdfLaTeX's default input does not know, as LaTeX
LATEX_SYMBOLS = {"Σ": r"$\Sigma$", "∂": r"$\partial$", "·": r"$\cdot$", "≠": r"$\neq$", "≤": r"$\leq$",
                 "≥": r"$\geq$", "→": r"$\to$", "×": r"$\times$", "±": r"$\pm$", "≡": r"$\equiv$",
                 "≢": r"$\not\equiv$", "∈": r"$\in$", "…": r"\ldots{}", "−": "-", "–": "--", "—": "---",
                 "√": r"$\surd$", "∞": r"$\infty$", "≈": r"$\approx$", "∇": r"$\nabla$", "½": r"$\frac{1}{2}$",
                 "§": r"\S{}", "’": "'", "‘": "`", "“": "``", "”": "''", "⋛": r"$\gtreqless$", "ε": r"$\epsilon$"}
GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def _latex_char(ch: str) -> str:
    """One non-ASCII character of prose as LaTeX: a symbol, a Greek letter, a super- or subscript digit, or
    (anything else) its unaccented letters, never a character pdfLaTeX stops at."""
    if ch in LATEX_SYMBOLS:
        return LATEX_SYMBOLS[ch]
    name = unicodedata.name(ch, "")
    for prefix, capital in (("GREEK SMALL LETTER ", False), ("GREEK CAPITAL LETTER ", True)):
        if name.startswith(prefix) and " " not in name[len(prefix):]:
            letter = name[len(prefix):].capitalize() if capital else name[len(prefix):].lower()
            if letter.lower() == "omicron":
                return "O" if capital else "o"
            if capital and letter not in GREEK_CAPITALS:
                return unicodedata.lookup(f"LATIN CAPITAL LETTER {name[len(prefix)]}")
            return rf"$\{'lambda' if letter == 'lamda' else 'Lambda' if letter == 'Lamda' else letter}$"
    for prefix, mark in (("SUPERSCRIPT ", "^"), ("SUBSCRIPT ", "_")):
        digits = {"ZERO": 0, "ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5, "SIX": 6, "SEVEN": 7, "EIGHT": 8,
                  "NINE": 9}
        if name.startswith(prefix) and name[len(prefix):] in digits:
            return f"${mark}{{{digits[name[len(prefix):]]}}}$"
    parts = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in parts if c.isascii())
    accents = {"\u0307": ".", "\u0308": '"', "\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0303": "~"}
    for mark in (c for c in parts if c in accents):  # ẋ: x with a dot above, a velocity
        base = f"\\{accents[mark]}{{{base}}}"
    return base or f"[U+{ord(ch):04X}]"


def latex_text(text: str) -> str:
    """Plain text made safe inside ``\\intertext{}`` (pdfLaTeX: no character outside ASCII is left)."""
    out = text.replace("\\", " ")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    out = out.replace("^", r"\^{}").replace("~", r"\~{}")
    return "".join(ch if ch.isascii() else _latex_char(ch) for ch in out)


def render(d, fmt: str) -> str:
    """The report of ``d`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(to_dict(d), indent=2, ensure_ascii=False) + "\n"
    return {"text": render_text, "markdown": render_markdown, "latex": render_latex}[fmt](d)


def _default_text(d, sep: str) -> str:
    """The default route; BPTT when no exact route applies; none for a singular mass matrix."""
    if d.default_route:
        return d.default_route
    return f"none exact{sep}BPTT" if d.legendre_regular else "none: the mass matrix is singular"
