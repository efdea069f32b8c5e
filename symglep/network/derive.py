"""``symglep derive`` of an array model: everything in index notation, independent of n.

Per unit ``i``: the momentum, the Euler–Lagrange equation ``m_i q̈_i = −∂V/∂q_i``
(theory §1) with each term's contribution written as a sum over the partners of
``i``; the Hamiltonian; the reversibility and separability verdicts (theory §4, §6);
for every parameter element the learning rule ``∂L/∂θ`` and what it reads (its
locality); and the boundary residuals of each boundary condition (theory §3).
"""

from __future__ import annotations

import functools
import json
import re

import sympy as sp

from .. import __version__
from ..dissipation import rewrite_note
from ..errors import SymglepError
from ..report import latex_text
from ..simplify import within
from .arrays import Parameter
from .arrays import i as UNIT
from .arrays import j as OTHER
from .elements import kinetic_pieces, readout_pieces, term_pieces
from .terms import Term


#: element expressions below this many operations are printed simplified, each within this many seconds
ELEMENT_SIMPLIFY_OPS = 60
ELEMENT_SIMPLIFY_S = 0.5


@functools.lru_cache(maxsize=4096)
def _plain(expr) -> str:
    """An element expression as text, simplified when small (remembered: a stack reports each of its array
    units, and every report format derives again)."""
    return str(_small_simplified(expr))


def _small_simplified(expr):
    """``sympy.simplify`` of an element expression under :data:`ELEMENT_SIMPLIFY_OPS` operations, given at most
    :data:`ELEMENT_SIMPLIFY_S` seconds (``log cosh(g z)/g`` kept it busy for 74 s); ``expr`` itself otherwise."""
    if sp.count_ops(expr) >= ELEMENT_SIMPLIFY_OPS:
        return expr
    simplified = within(ELEMENT_SIMPLIFY_S, sp.simplify, expr)
    return expr if simplified is None else simplified


def _rename(model, term: Term, node_map: dict) -> dict:
    """Element symbols of ``term`` re-indexed by ``node_map`` (e.g. swap i and j)."""
    out = {}
    for sym in term.phi.free_symbols:
        if getattr(sym, "_array", None) is None:
            continue
        array, (index, suffix) = model.element_info(sym)
        new = tuple(node_map.get(x, x) for x in index)
        out[sym] = array.element(new, suffix) if hasattr(array, "element") else array[new[0]]
    return out


def _dense_force(model, term: Term, qs: list, show) -> str:
    """``∂/∂q_i`` of a dense pair term ``Σ_ij φ(q_i, q_j)`` in index form: the sum over the other unit of φ's
    derivative in its first slot, plus (renamed) in its second; a φ that reads one side only has one sum."""
    first = next((s for s in qs if s.side == 0), None)
    second = next((s for s in qs if s.side == 1), None)
    indices = []
    for sym in sorted(term.phi.free_symbols, key=str):
        if getattr(sym, "_array", None) is not None:
            indices += [x for x in model.element_info(sym)[1][0] if x not in indices]
    unit = model.element_info((first or second).symbol)[1][0][0]
    other = model.element_info(second.symbol)[1][0][0] if first and second else \
        next((x for x in indices if x != unit), sp.Symbol("j"))
    parts = []
    if first is not None:  # the unit as the pair's first member, i = unit: sum over the second
        parts.append(f"Σ_{other} {show(sp.diff(term.phi, first.symbol))}")
    if second is not None:  # as the second member: rename so that the unit is i again
        i_, j_ = (unit, other) if first is not None else (other, unit)
        swapped = sp.diff(term.phi, second.symbol).xreplace(_rename(model, term, {i_: j_, j_: i_}))
        parts.append(f"Σ_{other if first is not None else unit} {show(swapped)}")
    return "  +  ".join(parts)


def _reads(expr) -> list:
    return sorted({str(s) for s in expr.free_symbols})


def _term_text(term: Term, show=_plain) -> str:
    over = ", ".join(str(x) for x in term.user.over)
    return f"Σ_{{{over}}} {show(term.phi)}"


def force_contributions(model, show=_plain) -> list:
    """``∂V/∂q_i`` term by term, in index form (one string per term and component)."""
    out = []
    for term in model.potential_terms:
        qs = term.q_slots()
        if term.kind == "site":
            for s in qs:
                comp = f"   (component {s.comp})" if model.dim > 1 else ""
                site = model.element_info(s.symbol)[1][0][0]  # the term's own index (Sum(..., k)): unit i here
                direct = sp.diff(term.phi, s.symbol).xreplace(_rename(model, term, {site: UNIT}))
                out.append(f"{show(direct)}{comp}")
            for s in [x for x in term.slots if x.role == "z"]:
                A = s.param.name
                row = model.element_info(s.symbol)[1][0][0]
                out.append(f"Σ_{row} {A}[{row},i] · ({show(sp.diff(term.phi, s.symbol))})")
        elif term.kind == "dense":
            out.append(_dense_force(model, term, qs, show))
        else:
            for s in qs:
                where = "src_e = i" if s.side == 0 else "dst_e = i"
                comp = f"   (component {s.comp})" if model.dim > 1 else ""
                out.append(f"Σ_(e: {where}) {show(sp.diff(term.phi, s.symbol))}{comp}")
    return out


def learning_rules(model, show=_plain) -> list:
    """For each parameter: ``∂L/∂θ`` of a generic element and what it reads."""
    rules = []
    for p in model.parameters:
        pieces, reads, element = [], set(), None
        for s in model.kinetic.parameter_slots:
            if s.param is p:
                v = "|q.dot[i]|²" if model.dim > 1 else "q.dot[i]²"
                dm = sp.diff(model.kinetic.mass, s.symbol) / 2
                total = "Σ_i " if s.role == "scalar" else ""
                text = f"({show(dm)})" if dm.is_Add else show(dm)
                pieces.append(f"{total}{text}·{v}".replace("q.", model.q.name + "."))
                reads |= set(_reads(dm)) | {f"{model.q.name}.dot[i]"}
                element = str(s.symbol)
        for term in model.potential_terms:
            if term.factors is not None and term.factors[0] is p:
                _, a, b = term.factors
                pieces.append(show(-a * b))  # ∂L/∂W_ij = −a(q_i) b(q_j) of φ = W_ij a(q_i) b(q_j)
                reads |= set(_reads(a * b))
                element = str([s.symbol for s in term.slots if s.role == "pair"][0])
                continue
            for s in term.slots:
                if s.param is not p:
                    continue
                g = -sp.diff(term.phi, s.symbol)
                if s.role in ("z", "w"):
                    row = model.element_info(s.symbol)[1][0][0]
                    vec = model.q.name if s.role == "z" else model.u.name
                    pieces.append(f"({show(g)})·{vec}[j]")
                    reads |= set(_reads(g)) | {f"{vec}[j]"}
                    element = f"{p.name}[{row},j]"
                elif s.role == "scalar":
                    over = ", ".join(str(x) for x in term.user.over)
                    pieces.append(f"Σ_{{{over}}} {show(g)}")
                    reads |= set(_reads(g))
                    element = p.name
                elif s.role == "node" and term.kind != "site":
                    piece, g, element = _node_rule(model, term, s, g, show)
                    pieces.append(piece)
                    reads |= set(_reads(g)) - {element}
                elif s.role in ("node", "pair"):
                    pieces.append(show(g))
                    reads |= set(_reads(g)) - {str(s.symbol)}
                    element = str(s.symbol)
        if model.damping_rate and pieces:  # the rewritten L is e^{γt} L: every other piece carries e^{γt} (§7)
            weight = f"exp({model.damping_parameter or format(model.damping_rate, 'g')}·t)"
            joined = "  +  ".join(pieces)
            pieces = [f"{weight}·({joined})" if len(pieces) > 1 or joined.startswith("-") else f"{weight}·{joined}"]
            reads |= {"t"}
        if p is model.damping_parameter:  # ∂(e^{γt} L)/∂γ = t e^{γt} L (theory §7)
            qn = model.q.name
            pieces.append(f"t·exp({p}·t)·(Σ_i ½ m_i |{qn}.dot[i]|² − V)")
            reads |= {f"{qn}[i]", f"{qn}.dot[i]", "t"}
        element = element or p.name
        rules.append({"parameter": p.name, "element": element, "dL": "  +  ".join(pieces) or "0",
                      "reads": sorted(reads), "locality": _locality(p, element, reads)})
    return rules


def _node_rule(model, term: Term, slot, g, show) -> tuple:
    """``(text, g, element)``: the contribution of a node parameter read in an edge or pair term to ∂L/∂p[i] of a
    generic unit i: over the edges whose source (or destination) is i, or over the other unit of the pair, with
    the element renamed to unit i (a probe: p read at both ends of an edge printed both partials under p[E_src])."""
    if term.kind == "edge":
        where = "src_e = i" if slot.side == 0 else "dst_e = i"
        return f"Σ_(e: {where}) {show(g)}", g, f"{slot.param.name}[{UNIT}]"
    unit = model.element_info(slot.symbol)[1][0][0]
    indices = []
    for sym in sorted(term.phi.free_symbols, key=str):
        if getattr(sym, "_array", None) is not None:
            indices += [x for x in model.element_info(sym)[1][0] if x not in indices]
    other = next((x for x in indices if x != unit), None)
    if other is None:
        return show(g), g, str(slot.symbol)
    renamed = g.xreplace(_rename(model, term, {unit: UNIT, other: OTHER}))  # simultaneous: a swap where needed
    return f"Σ_{OTHER} {show(renamed)}", renamed, f"{slot.param.name}[{UNIT}]"


def _locality(p, element, reads) -> str:
    products = sorted(x for x in reads if x.startswith("("))
    if not isinstance(p, Parameter):
        return f"{element} is shared by every unit: its rule sums over all of them (global)"
    text = f"{element} reads {', '.join(sorted(reads)) or 'nothing'}"
    if products:
        return text + f" ({', '.join(products)}: row sums over the whole state, so the rule is local to the row)"
    return text + " (local)"


def derive(model, show=_plain) -> dict:
    """The index-form derivation as a JSON-ready dict (element expressions written by ``show``)."""
    qn = model.q.name
    m = show(model.kinetic.mass)
    vec = model.dim > 1
    V = [_term_text(t, show) for t in model.potential_terms]
    mass_learnable = bool(model.kinetic.parameter_slots)
    el = force_contributions(model, show)
    out = {
        "symglep_version": __version__,
        "model": model.name,
        "kind": "array",
        "units": f"n (run-time size; default {model.size})",
        "components_per_unit": model.dim,
        "coordinates": f"{qn}[i], i = 0..n-1" + (f" (vectors in R^{model.dim})" if vec else ""),
        "parameters": {p.name: list(getattr(p, "shape", ())) for p in model.parameters},
        "kinetic": f"K = ½ Σ_i m_i |{qn}.dot[i]|²,  m_i = {m}",
        "potential": V,
        "momentum": f"p[i] = m_i {qn}.dot[i] = ({m})·{qn}.dot[i]",
        "hamiltonian": "H = Σ_i |p[i]|² / (2 m_i) + V,   V = " + "  +  ".join(V),
        "hamilton_equations": [f"{qn}.dot[i] = ∂H/∂p[i] = p[i] / m_i",
                               f"p.dot[i] = −∂H/∂{qn}[i] = −∂V/∂{qn}[i]"],
        "euler_lagrange": f"m_i {qn}.ddot[i] = −∂V/∂{qn}[i],   ∂V/∂{qn}[i] = " + "  +  ".join(el),
        "force_terms": el,
        "regular": f"yes, where m_i = {m} ≠ 0 (diagonal mass matrix)",
        "time_reversible": True,
        "time_reversal_note": "L is even in velocity: the kinetic term is quadratic, the potential velocity-free",
        "separable": True,
        "integrator": "leapfrog (Störmer–Verlet), explicit: v = p / m",
        "learning_rule": learning_rules(model, show),
        "residuals": residuals(model, mass_learnable),
        "element_pieces": element_summary(model),
    }
    if model.terminal is not None:
        out["terminal_cost"] = terminal_text(model, show)
    if model.explicit_time:
        _explicit_time(out, model, show)
    if model.damping_rate:
        _damped(out, model, m)
    if model.kinetic.reads_q:
        _position_dependent_mass(out, model, show)
    return out


def _explicit_time(out: dict, model, show) -> None:
    """The entries a potential that reads the time t changes (theory §4): H is not conserved, the echo stays
    exact because L is even in velocity at every t."""
    timed = [_term_text(t, show) for t in model.potential_terms if any(s.role == "time" for s in t.slots)]
    out["explicit_time"] = ("V reads the time t in " + "; ".join(timed) + ": H is not conserved; the kernels "
                            "sample t at each node t_k = t0 + k·dt (the midpoint rule at t_k+½), and the echo "
                            "replays them in reverse")
    out["time_reversal_note"] += "; at every fixed t, so the echo, which replays t in reverse, is exact"


def _position_dependent_mass(out: dict, model, show) -> None:
    """The entries a mass ``m_i(q_i)`` changes: L is not separable, the implicit midpoint rule runs it (theory §6)."""
    qn = model.q.name
    grad = [show(sp.diff(model.kinetic.mass, s.symbol)) for s in model.kinetic.slots if s.role == "q"]
    where = "∂m_i/∂" + (f"{qn}[i] = {grad[0]}" if model.dim == 1 else f"{qn}[i] = ({', '.join(grad)})")
    g = "exp(γ·t)·" if model.damping_rate else ""
    out["kinetic"] += f"  (reads the unit's position: {where})"
    out["hamilton_equations"][1] = (f"p.dot[i] = −∂H/∂{qn}[i] = {g}|{qn}.dot[i]|²/2 ∂m_i/∂{qn}[i] "
                                    f"− {g}∂V/∂{qn}[i]   ({qn}.dot[i] from p[i] as above)")
    out["inertia"] = (f"m_i {qn}.ddot[i] + (∂m_i/∂{qn}[i] · {qn}.dot[i]) {qn}.dot[i] − ½ |{qn}.dot[i]|² ∂m_i/∂{qn}[i]"
                      + (f" + γ m_i {qn}.dot[i]" if model.damping_rate else ""))
    out["euler_lagrange"] = f"{out['inertia']} = −∂V/∂{qn}[i],   " + out["euler_lagrange"].split(",   ", 1)[1]
    out["regular"] = f"yes, where m_i ≠ 0 (diagonal mass matrix, each entry reading its unit's position {qn}[i])"
    out["separable"] = False
    out["integrator"] = ("implicit midpoint (theory §6): L_d = h " + ("exp(γ·t_k+½) " if model.damping_rate else "")
                         + "L(q̄, v̄) at the step's midpoint, each step solved to round-off (the unit-diagonal "
                         "mass as its Jacobian); the cost at the midpoints")


def _damped(out: dict, model, m: str) -> None:
    """The entries a uniformly damped model changes: it runs as e^{γt} L (Caldirola–Kanai, theory §7)."""
    qn = model.q.name
    learned = model.damping_parameter
    g = f"{model.damping_rate:g}" if learned is None else str(learned)
    out["dissipation"] = (f"R = γ Σ_i ½ m_i |{qn}.dot[i]|², γ = {g}"
                          + (", a learned parameter" if learned is not None else "")
                          + f": uniform, rewritten as exp(γ·t)·L (Caldirola–Kanai); {rewrite_note('γ')}")
    out["momentum"] = f"p[i] = exp(γ·t) m_i {qn}.dot[i] = exp({g}·t)·({m})·{qn}.dot[i]"
    out["hamiltonian"] = ("H = exp(−γ·t) Σ_i |p[i]|² / (2 m_i) + exp(γ·t) V,   V = " + "  +  ".join(out["potential"]))
    out["hamilton_equations"] = [f"{qn}.dot[i] = ∂H/∂p[i] = exp(−γ·t) p[i] / m_i",
                                 f"p.dot[i] = −∂H/∂{qn}[i] = −exp(γ·t) ∂V/∂{qn}[i]"]
    out["euler_lagrange"] = (f"m_i ({qn}.ddot[i] + γ {qn}.dot[i]) = −∂V/∂{qn}[i],   ∂V/∂{qn}[i] = "
                             + "  +  ".join(out["force_terms"]))
    out["time_reversal_note"] += ("; the explicit factor exp(γ·t) is replayed reversed by the echo "
                                  "(anti-damped in echo time, theory §7)")
    out["integrator"] = ("leapfrog (Störmer–Verlet) of exp(γ·t) L, explicit: kicks weighted exp(γ·t_k), "
                         "drift v = p / (exp(γ·t_k+½) m)")


def terminal_text(model, show=_plain) -> str:
    """The terminal cost in one line (theory §10)."""
    return (f"c_T = Σ_r {show(model.terminal.cost)} at the final node K (targets y_K), added to the loss; "
            f"the echo starts from the kicked flipped momentum −p_K − β ∂c_T/∂q, BPTT's adjoint from "
            f"λ_q(K) = ∂c_T/∂q (theory §10)")


def residuals(model, mass_learnable: bool) -> dict:
    """Boundary residual of each boundary condition (theory §3) in index form."""
    listed = [s.param for s in model.kinetic.parameter_slots]  # m_i(q_i, θ) = m[i]·l²: every parameter, scalars too
    masses = list(dict.fromkeys(p.name for p in listed))
    # the mass is one learned array entry m[i] itself: ∂²L/∂m_i∂v_i = v_i; else the chain rule through m_i(θ)
    bare = not model.kinetic.reads_q and len(masses) == 1 and all(isinstance(p, Parameter) for p in listed)
    terminal = ("; with the terminal cost c_T the nudged runs end at p_β(T) = p(T) + β ∂c_T/∂q, so the "
                "echo starts from −p_K − β ∂c_T/∂q and R stays as above (theory §10)"
                if model.terminal else "")
    g = "exp(γ·t0)·" if model.damping_rate else ""
    mass_rule = (f"R_{{m_i}} = −X(0) = ∂²L/∂m_i∂v_i · ∂βq_i(0) = {g}{model.q.name}.dot[i](0) · ∂βq_i(0)" if bare else
                 f"R_θ = −X(0) = Σ_i ∂²L/∂θ∂v_i · ∂βq_i(0) = Σ_i ∂m_i/∂θ{'(q_i(0))' if model.kinetic.reads_q else ''} "
                 f"{g}{model.q.name}.dot[i](0) · ∂βq_i(0)")
    rate = model.damping_parameter  # e^{γt} m v: ∂²L/∂γ∂v_i = t e^{γt} m_i v_i (theory §7)
    but = "the masses and the learned rate" if rate is not None else "the masses"
    pf = (f"R_θ = 0 for every parameter except {but}: {mass_rule}, from the two echoes' end points; zero "
          f"with a momentum start, added by the kernels with a velocity start ({g}v0_i ∂m_i/∂θ · dC/dp0_i)") \
        if mass_learnable else \
        "R = 0: no parameter enters the kinetic term, so ∂²L/∂θ∂v = 0 (exact, forward-only)" if rate is None else \
        "R_θ = 0 for every parameter but the learned rate (no other enters the kinetic term)"
    if rate is not None:
        pf += (f"; the learned rate {rate}: R_γ = t0·exp(γ·t0) Σ_i m_i {model.q.name}.dot[i](0) · ∂βq_i(0), zero "
               "with a momentum start, added by the kernels with a velocity start (t0·exp(γ·t0) m_i v0_i · dC/dp0_i)")
    return {
        "civp": "R = X(T) = Σ_i ∂βp_i(T)·∂θq_i(T) − ∂θp_i(T)·∂βq_i(T): needs the n × n_θ forward sensitivities "
                "(n_θ grows like n² for a matrix): intractable at scale; dropping it biases the estimate"
                + ("; with the terminal cost c_T, minus Σ_i ∂c_T/∂q_i(T)·∂θq_i(T) (theory §10)"
                   if model.terminal else ""),
        "cfvp": "R = −X(0): mirror of CIVP, inference runs backward; no use for causal networks",
        "cbvp": "R = 0 (q fixed at both ends): exact, but a two-point solve, not forward-only",
        "periodic": "R = 0: exact, not forward-only",
        "pfvp": pf + ("" if not masses else f" (mass parameters: {', '.join(masses)})") + terminal,
        "mixed": "q(0) and p(T) fixed: R = 0 (δq = 0 at the start, δp = 0 at the end); exact, but a two-point "
                 "solve for the start momentum, not forward-only; q(0) with q(T) fixed is CBVP",
    }


def element_summary(model) -> dict:
    """How many element expressions were derived (independent of n)."""
    count = 0
    for t, term in enumerate(model.potential_terms):
        count += sum(len(p.outputs) for p in term_pieces(t, term).values())
    count += sum(len(p.outputs) for p in kinetic_pieces(model.kinetic, model.dim).values())
    count += sum(len(p.outputs) for p in readout_pieces(model.readout).values())
    if model.terminal is not None:
        count += sum(len(p.outputs) for p in readout_pieces(model.terminal, "ct").values())
    def kind(t) -> str:
        if t.factors is not None:
            return "dense (separable: matrix–vector products)"
        return "projection" if t.kind == "site" and t.matrix_q is not None else t.kind

    return {"terms": [kind(t) for t in model.potential_terms], "element_expressions": count}


def render(d: dict, fmt: str) -> str:
    """The report as text, markdown or json (LaTeX: :func:`render_latex`)."""
    if fmt == "json":
        return json.dumps(d, indent=2, ensure_ascii=False) + "\n"
    if fmt not in ("text", "markdown"):
        raise SymglepError(f"array models are reported as text, markdown, latex or json, not {fmt}")
    md = fmt == "markdown"
    h = (lambda t: f"\n## {t}\n") if md else (lambda t: f"\n{t}\n" + "-" * len(t))
    code = lambda t: f"    {t}"  # noqa: E731 - an indented line (a code block in markdown)
    lines = [f"# {d['model']} (array model)" if md else f"{d['model']} (array model)",
             f"units: {d['units']}; coordinates {d['coordinates']}",
             "parameters: " + ", ".join(f"{k} {tuple(v)}" for k, v in d["parameters"].items())]
    lines += [h("Lagrangian L = K − V"), code(d["kinetic"])] + [code(f"V ⊃ {v}") for v in d["potential"]]
    lines += [h("Momentum and Hamiltonian"), code(d["momentum"]), code(d["hamiltonian"])]
    lines += [h("Hamilton's equations of unit i (theory §11)")] + [code(e) for e in d["hamilton_equations"]]
    qn = d["coordinates"].split("[")[0]
    accel = f"({qn}.ddot[i] + γ {qn}.dot[i])" if "dissipation" in d else f"{qn}.ddot[i]"
    lines += [h("Euler–Lagrange equation of unit i"), code(f"{d.get('inertia', f'm_i {accel}')} = −∂V/∂{qn}[i]"),
              code(f"∂V/∂{qn}[i] =")] + [code(f"    − {t[1:]}" if t.startswith("-") else f"    + {t}")
                                         for t in d["force_terms"]]
    lines += [h("Verdicts"), code(f"regular: {d['regular']}"),
              code(f"time-reversible: yes ({d['time_reversal_note']})"),
              code(f"separable: {'yes' if d['separable'] else 'no'} -> {d['integrator']}")]
    if "explicit_time" in d:
        lines += [h("Explicit time dependence"), code(d["explicit_time"])]
    if "dissipation" in d:
        lines += [h("Dissipation (theory §7)"), code(d["dissipation"])]
    lines += [h("Learning rule (∂L/∂θ of a generic element) and locality")]
    for r in d["learning_rule"]:
        lines += [code(f"∂L/∂{r['element']} = {r['dL']}"), code(f"    {r['locality']}")]
    if "terminal_cost" in d:
        lines += [h("Terminal cost (theory §10)"), code(d["terminal_cost"])]
    lines += [h("Boundary residuals (theory §3)")]
    lines += [code(f"{k.upper():<9} {v}") for k, v in d["residuals"].items()]
    es = d["element_pieces"]
    lines += [h("Derived once"), code(f"{es['element_expressions']} element expressions for the terms "
                                      f"{', '.join(es['terms'])}; none depends on n")]
    return "\n".join(lines) + "\n"


# -- LaTeX -------------------------------------------------------------------------
_ELEMENT = re.compile(r"^(?:\((\w+)@(\w+)\)|(\w+))(\.dot|\.ddot)?(?:\[([\w, ]+)\])?$")
_GLUE = {"Σ_": r"\sum_", "·": r" \cdot ", "−": "-", "½": r"\tfrac{1}{2}", "²": "^{2}", "∂": r"\partial ",
         "≠": r"\neq ", "θ": r"\theta ", "β": r"\beta "}
_TEXT_INDEX = re.compile(r"(?<![\\\w])([A-Za-z]\w*)\[([\w, ]+)\]")


def element_latex(name: str) -> str:
    """LaTeX of an element symbol's name: ``W[i,j]`` → ``W_{i j}``, ``q.dot[i]`` → ``\\dot{q}_{i}``."""
    match = _ELEMENT.match(name)
    if not match:
        return name
    matrix, vector, plain, suffix, index = match.groups()
    base = rf"\left({sp.latex(sp.Symbol(matrix))} {sp.latex(sp.Symbol(vector))}\right)" if matrix \
        else sp.latex(sp.Symbol(plain))
    if suffix:
        base = rf"\{suffix[1:]}{{{base}}}"
    elif index and "_" in base:  # a name with its own subscript (W1 -> W_{1}): one more would be a double subscript
        base = f"{{{base}}}"
    return base + (f"_{{{' '.join(_index_latex(x.strip()) for x in index.split(','))}}}" if index else "")


def _index_latex(token: str) -> str:
    """An index in LaTeX: an edge list's ``E_src``/``E_dst`` → ``s_e``/``d_e``, ``E_e`` → ``e``."""
    edge = re.match(r"^\w+_(src|dst|e)$", token)
    if not edge:
        return token
    return {"src": "s_e", "dst": "d_e", "e": "e"}[edge.group(1)]


def _over_latex(over) -> str:
    return ", ".join(f"e \\in {x.name}" if hasattr(x, "src") else str(x) for x in over)


def _latex_expr(expr) -> str:
    expr = _small_simplified(expr)
    names = {x: element_latex(x.name) for x in expr.free_symbols if isinstance(x, sp.Symbol)}
    return sp.latex(expr, symbol_names=names)


def _latex_glue(line: str) -> str:
    """Text glue around LaTeX element expressions (Σ_, ·, A[k,i]) written as LaTeX."""
    line = re.sub(r"Σ_\(([^)]*)\)", r"Σ_{\1}", line)
    line = re.sub(r"(\w+)\.dot\[([\w, ]+)\]", lambda m: element_latex(f"{m.group(1)}.dot[{m.group(2)}]"), line)
    line = _TEXT_INDEX.sub(lambda m: element_latex(f"{m.group(1)}[{m.group(2)}]"), line)
    for glyph, tex in _GLUE.items():
        line = line.replace(glyph, tex)
    return line


def _force_lines_latex(q: str, accel: str, terms: list, dim: int) -> list:
    """``m_i q̈_i = −∂V/∂q_i``, one line per component of a vector coordinate (the text form tags each
    term ``(component c)``; the components' terms are not summed)."""
    if dim == 1:
        return [rf"m_{{i}} {accel} &= -\frac{{\partial V}}{{\partial {q}_{{i}}}} = "
                rf"-\left({' + '.join(_latex_glue(t) for t in terms)}\right) \\"]
    lines = []
    for c in range(dim):
        tag = f"(component {c})"
        mine = [t[:t.rindex(tag)].rstrip() for t in terms if t.endswith(tag)]
        sub = rf"_{{i {c}}}"
        lines.append(rf"\left(m_{{i}} {accel}\right)_{{{c}}} &= -\frac{{\partial V}}{{\partial {q}{sub}}} = "
                     rf"-\left({' + '.join(_latex_glue(t) for t in mine) or '0'}\right) \\")
    return lines


def render_latex(model) -> str:
    """The index-form derivation as a LaTeX ``align`` block, prose in ``\\intertext`` (theory §1–§6)."""
    d = derive(model, _latex_expr)
    q = element_latex(model.q.name)
    mass = _latex_expr(model.kinetic.mass)
    V = [rf"\sum_{{{_over_latex(t.user.over)}}} {_latex_expr(t.phi)}" for t in model.potential_terms]
    g, ig = (r"e^{\gamma t} ", r"e^{-\gamma t} ") if model.damping_rate else ("", "")
    accel = (rf"(\ddot{{{q}}}_{{i}} + \gamma \dot{{{q}}}_{{i}})" if model.damping_rate else rf"\ddot{{{q}}}_{{i}}")
    if model.kinetic.reads_q:  # m_i(q_i): the velocity-squared terms of the Euler-Lagrange equation (theory §6)
        accel += (rf" + (\nabla m_{{i}} \cdot \dot{{{q}}}_{{i}}) \dot{{{q}}}_{{i}}"
                  rf" - \tfrac{{1}}{{2}} |\dot{{{q}}}_{{i}}|^{{2}} \nabla m_{{i}}")
    lines = [r"\begin{align}", rf"\intertext{{{latex_text(d['model'])} (array model): {latex_text(d['units'])}}}",
             rf"L &= \frac{{1}}{{2}} \sum_{{i}} m_{{i}} \dot{{{q}}}_{{i}}^{{2}} - V, \qquad m_{{i}} = {mass} \\",
             rf"V &= {' + '.join(V)} \\",
             rf"p_{{i}} &= {g}m_{{i}} \dot{{{q}}}_{{i}}, \qquad H = {ig}\sum_{{i}} \frac{{p_{{i}}^{{2}}}}{{2 m_{{i}}}} + {g}V \\",
             r"\intertext{Hamilton's equations of unit $i$ (theory \S{}11)}",
             rf"\dot{{{q}}}_{{i}} &= \frac{{\partial H}}{{\partial p_{{i}}}} = {ig}\frac{{p_{{i}}}}{{m_{{i}}}}, \qquad "
             rf"\dot{{p}}_{{i}} = -\frac{{\partial H}}{{\partial {q}_{{i}}}} = -{g}\frac{{\partial V}}{{\partial {q}_{{i}}}} \\",
             *_force_lines_latex(q, accel, d["force_terms"], model.dim),
             rf"\intertext{{regular: {latex_text(d['regular'])}; time-reversible: yes "
             rf"({latex_text(d['time_reversal_note'])}); separable: {'yes' if d['separable'] else 'no'}, "
             rf"{latex_text(d['integrator'])}}}"]
    if "dissipation" in d:
        lines.append(rf"\intertext{{{latex_text(d['dissipation'])}}}")
    for r in d["learning_rule"]:
        lines.append(rf"\frac{{\partial L}}{{\partial {element_latex(r['element'])}}} &= {_latex_glue(r['dL'])} \\")
        lines.append(rf"\intertext{{{latex_text(r['locality'])}}}")
    lines.append(r"\end{align}")
    return "\n".join(lines) + "\n" + residuals_latex(d["residuals"])


def residuals_latex(res: dict, title: str | None = None) -> str:
    """The boundary residuals (theory §3), one ``\\intertext`` each."""
    lines = [r"\begin{align}"] + ([rf"\intertext{{{latex_text(title)}}}"] if title else [])
    lines += [rf"\intertext{{{k.upper()}: {latex_text(v)}}}" for k, v in res.items()]
    lines.append(r"\end{align}")
    return "\n".join(lines) + "\n"
