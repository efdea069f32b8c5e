"""Reports of a derivation: JSON, text, Markdown and LaTeX (schema: ``docs/derive-schema.md``).

Every expression in JSON is a string that ``sympy.parse_expr`` reads back with
the names listed in the report (coordinates, velocities ``<q>_dot``, momenta
``p_<q>``, accelerations ``<q>_ddot``, parameters, constants, inputs, targets,
``t``) and standard functions.
"""

from __future__ import annotations

import json

import sympy as sp

from .derivation import Derivation
from .learning import describe_locality
from .model import Model, latex_symbol_names

FORMATS = ("text", "markdown", "latex", "json")


def expr_str(expr) -> str:
    """A ``parse_expr``-readable string of ``expr``."""
    return sp.sstr(sp.sympify(expr), order="none")


def to_dict(d: Derivation) -> dict:
    """The JSON-ready content of a derivation."""
    m = d.model
    el = d.el
    return {
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
        "lagrangian": expr_str(m.lagrangian),
        "cost": expr_str(m.cost),
        "terminal_cost": expr_str(m.terminal_cost),
        "euler_lagrange": [expr_str(r) for r in el.residuals],
        "mass_matrix": [[expr_str(el.mass_matrix[i, j]) for j in range(m.n)] for i in range(m.n)],
        "forcing": [expr_str(f) for f in el.forcing],
        "explicit_accelerations": (
            {a.name: expr_str(e) for a, e in zip(m.a, el.accelerations)} if el.accelerations else None
        ),
        "accelerations_note": el.acceleration_note,
        "momentum_map": {p.name: expr_str(e) for p, e in zip(m.p, el.momenta)},
        "velocity_map": (
            {v.name: expr_str(e) for v, e in zip(m.v, d.velocity_map)} if d.velocity_map else None
        ),
        "hamiltonian": expr_str(d.hamiltonian) if d.hamiltonian is not None else None,
        "hamiltonian_note": d.hamiltonian_note,
        "legendre_regular": d.legendre_regular,
        "separable": d.sym.separable,
        "separability_note": d.sym.separability_note,
        "kinetic_energy": expr_str(d.sym.kinetic) if d.sym.kinetic is not None else None,
        "potential_energy": expr_str(d.sym.potential) if d.sym.potential is not None else None,
        "time_reversible": d.sym.time_reversible,
        "reversibility_breaking_terms": [expr_str(e) for e in d.sym.breaking_terms],
        "explicit_time_dependence": d.sym.explicit_time,
        "time_reversal_flip": [s.name for s in d.sym.flip] if d.sym.flip is not None else None,
        "time_reversal_flip_note": d.sym.flip_note,
        "dissipation": _dissipation(m),
        "learning_routes": [dict(r) for r in d.routes],
        "default_route": d.default_route,
        "learning_rule": {th.name: expr_str(e) for th, e in d.learning_rule.items()},
        "locality": {th.name: entry for th, entry in d.locality.items()},
        "notes": list(d.notes),
    }


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


def _flip_verdict(d: Derivation) -> str:
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
    return f"{r['route']}: {state} ({hw} route): {r['why']}"


def _version() -> str:
    from . import __version__

    return __version__


def _verdicts(d: Derivation) -> list[tuple[str, str]]:
    rev = "yes" if d.sym.time_reversible else "NO (odd in velocity: " + ", ".join(
        expr_str(e) for e in d.sym.breaking_terms) + ")"
    return [
        ("Legendre regular (det M ≢ 0)", "yes" if d.legendre_regular else "NO"),
        ("separable (L = K(v) − V(q, t))", "yes" if d.sym.separable else f"no: {d.sym.separability_note}"),
        ("time-reversible (L even in v)", rev),
        ("time-reversing parameter flip", _flip_verdict(d)),
        ("dissipation", _dissipation_verdict(d.model)),
        ("explicit time dependence", ", ".join(
            f"{e['symbol']} ({e['kind']}, in {'/'.join(e['appears_in'])})" for e in d.sym.explicit_time) or "none"),
    ]


def render_text(d: Derivation) -> str:
    m = d.model
    el = d.el
    out = [f"model {m.name}: {m.n} coordinate(s) {', '.join(s.name for s in m.q)}; "
           f"parameters {', '.join(s.name for s in m.parameters) or 'none'}", ""]
    out += [f"L = {expr_str(m.lagrangian)}", f"c = {expr_str(m.cost)}"]
    if m.terminal_cost != 0:
        out.append(f"c_T = {expr_str(m.terminal_cost)}    [terminal cost at t = T; the echo starts from "
                   "(q(T), −p(T) − β ∂c_T/∂q), theory §10]")
    out.append("")
    out.append("Euler–Lagrange (d/dt ∂L/∂v − ∂L/∂q = 0):")
    out += [f"  0 = {expr_str(r)}" for r in el.residuals]
    out.append("mass matrix M:")
    out += ["  [" + ", ".join(expr_str(el.mass_matrix[i, j]) for j in range(m.n)) + "]" for i in range(m.n)]
    out.append("forcing f (M·a = f):")
    out += [f"  {expr_str(f)}" for f in el.forcing]
    if el.accelerations:
        out.append("accelerations:")
        out += [f"  {a} = {expr_str(e)}" for a, e in zip(m.a, el.accelerations)]
    else:
        out.append(f"accelerations: not built symbolically ({el.acceleration_note})")
    out.append("momenta:")
    out += [f"  {p} = {expr_str(e)}" for p, e in zip(m.p, el.momenta)]
    if d.hamiltonian is not None:
        out.append(f"Hamiltonian: H = {expr_str(d.hamiltonian)}")
    else:
        out.append(f"Hamiltonian: not available ({d.hamiltonian_note})")
    out.append("")
    out += [f"{k}: {v}" for k, v in _verdicts(d)]
    out.append("")
    out.append(f"learning routes (default: {d.default_route or 'none exact; BPTT'}):")
    out += [f"  {_route_line(r)}" for r in d.routes]
    out.append("")
    out.append("learning rule ∂L/∂θ:")
    for th, e in d.learning_rule.items():
        out.append(f"  ∂L/∂{th} = {expr_str(e)}    [{describe_locality(d.locality[th])}]")
    out += [f"note: {n}" for n in d.notes]
    return "\n".join(out) + "\n"


def render_markdown(d: Derivation) -> str:
    m = d.model
    el = d.el
    names = latex_symbol_names(m)
    tex = lambda e: sp.latex(e, symbol_names=names)  # noqa: E731
    out = [f"# Derivation of `{m.name}`", "", f"$$L = {tex(m.lagrangian)}$$", "",
           f"$$c = {tex(m.cost)}$$", ""]
    if m.terminal_cost != 0:
        out += [f"$$c_T = {tex(m.terminal_cost)}$$", "",
                "Terminal cost at $t = T$: the echo starts from $(q(T), -p(T) - \\beta\\,\\partial c_T/\\partial q)$ "
                "(theory §10).", ""]
    out += ["## Euler–Lagrange equations", ""]
    out += [f"$$0 = {tex(r)}$$" for r in el.residuals]
    out += ["", "## Mass matrix", "", f"$$M = {tex(el.mass_matrix)}$$", "", "## Legendre transform", ""]
    out += [f"- ${names[p]} = {tex(e)}$" for p, e in zip(m.p, el.momenta)]
    if d.hamiltonian is not None:
        out += ["", f"$$H = {tex(d.hamiltonian)}$$"]
    else:
        out += ["", f"Hamiltonian not available: {d.hamiltonian_note}."]
    out += ["", "## Verdicts", "", "| property | verdict |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in _verdicts(d)]
    out += ["", "## Learning routes", "", f"Default: `{d.default_route or 'none exact: BPTT'}`.", "",
            "| route | available | exact | forward-only | why |", "|---|---|---|---|---|"]
    yn = lambda b: "yes" if b else "no"  # noqa: E731
    out += [f"| {r['route']} | {yn(r['available'])} | {yn(r['exact'])} | {yn(r['forward_only'])} | "
            f"{r['why'].replace('|', '/')} |" for r in d.routes]
    out += ["", "## Learning rule", "", "| parameter | ∂L/∂θ | locality |", "|---|---|---|"]
    out += [f"| `{th}` | ${tex(e)}$ | {describe_locality(d.locality[th])} |" for th, e in d.learning_rule.items()]
    return "\n".join(out) + "\n"


def render_latex(d: Derivation) -> str:
    m = d.model
    el = d.el
    names = latex_symbol_names(m)
    tex = lambda e: sp.latex(e, symbol_names=names)  # noqa: E731
    lines = [r"\begin{align}", rf"L &= {tex(m.lagrangian)} \\", rf"c &= {tex(m.cost)} \\"]
    if m.terminal_cost != 0:
        lines.append(rf"c_T &= {tex(m.terminal_cost)} \\")
    lines += [rf"0 &= {tex(r)} \\" for r in el.residuals]
    lines += [rf"{names[p]} &= {tex(e)} \\" for p, e in zip(m.p, el.momenta)]
    if d.hamiltonian is not None:
        lines.append(rf"H &= {tex(d.hamiltonian)} \\")
    lines += [rf"\frac{{\partial L}}{{\partial {sp.latex(th)}}} &= {tex(e)} \\" for th, e in d.learning_rule.items()]
    lines += [rf"\intertext{{{_latex_text(_route_line(r))}}}" for r in d.routes]
    lines[-1] = lines[-1].rstrip(" \\")
    lines.append(r"\end{align}")
    return "\n".join(lines) + "\n"


def _latex_text(text: str) -> str:
    """Plain text made safe inside ``\\intertext{}``."""
    out = text.replace("\\", " ")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    return out.replace("^", r"\^{}").replace("~", r"\~{}")


def render(d: Derivation, fmt: str) -> str:
    """The report of ``d`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(to_dict(d), indent=2, ensure_ascii=False) + "\n"
    return {"text": render_text, "markdown": render_markdown, "latex": render_latex}[fmt](d)
