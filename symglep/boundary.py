"""Boundary residuals of Lagrangian Equilibrium Propagation, per boundary condition (theory §2–§3).

For a parameter ``θ`` the general identity reads

    dC/dθ = −d/dβ ∫ ∂L/∂θ dt − R,   R = X(T) − X(0),   X = ∂βp·∂θq − ∂θp·∂βq.

With ``p = ∂L/∂v(q, v, θ, t)`` the momentum sensitivities expand as

    ∂θp = M·∂θv + ∂²L/∂v∂q·∂θq + ∂²L/∂v∂θ,      ∂βp = M·∂βv + ∂²L/∂v∂q·∂βq

(the cost does not read velocities, so ``p`` has no explicit β). A terminal cost
``c_T(q(T))`` (theory §10) adds ``−β c_T`` to the nudged action, so the momentum of the
boundary term at ``T`` is ``p − β ∂c_T/∂q``: its β-variation gains ``−∂c_T/∂q`` there. The
sensitivities are named symbols: ``d<q>_d<θ>_T``, ``d<q>_dot_d<θ>_T``,
``d<q>_dbeta_T`` … at ``t = T`` (suffix ``_0`` at the start ``t = t0``, 0 unless a run is
started later), and the state at an end is ``<q>_T``, ``<q>_dot_T`` (``<q>_0``, ``<q>_dot_0``), an input
there ``<u>_T`` (``<u>_0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from .derivation import Derivation
from .dissipation import caldirola_kanai_rate, growth_text
from .errors import DerivationError, SymglepError
from .report import expr_str
from .simplify import Budget, tidy
from .symbolic import is_zero, node_count
from .symmetry import odd_terms_text

#: a residual of at most this many nodes is expanded (a sum of products reads best); a larger one is left as built
EXPANDED_NODES = 800
BOUNDARY_CONDITIONS = ("civp", "cfvp", "cbvp", "periodic", "pfvp", "mixed")


def condition_names(bc) -> tuple:
    """``"all"``, one condition, a comma-separated list or a tuple of them, as a tuple of known names."""
    if isinstance(bc, str):
        bc = bc.strip().lower()  # as check --bc reads it: CIVP, Civp and civp are one condition
    names = tuple(BOUNDARY_CONDITIONS) if bc == "all" else (
        tuple(b.strip() for b in bc.split(",")) if isinstance(bc, str) else tuple(bc))
    unknown = [b for b in names if b not in BOUNDARY_CONDITIONS]
    if unknown or not names:
        raise SymglepError(f"unknown boundary condition {(unknown or [bc])[0]!r} for --bc; choose from "
                           f"{', '.join(BOUNDARY_CONDITIONS)} (one, a comma-separated list), all")
    return names
TITLES = {
    "civp": "CIVP: constant initial value",
    "cfvp": "CFVP: constant final value",
    "cbvp": "CBVP: constant two-point (boundary value) problem",
    "periodic": "periodic boundary conditions",
    "pfvp": "PFVP: parametric final value (the echo)",
    "mixed": "mixed initial–final: q(0) and p(T) fixed",
}


@dataclass
class EndSymbols:
    """Sensitivity and state symbols at one end (``T`` or ``0``)."""

    suffix: str
    q: list
    v: list
    t: sp.Symbol
    dq_dtheta: dict      # θ -> [symbols]
    dv_dtheta: dict
    dq_dbeta: list
    dv_dbeta: list
    mechanics: tuple | None = None  # (M, ∂²L/∂v∂q) at this end, once computed
    u: list = field(default_factory=list)  # the inputs' values at this end (``u_T``, ``u_0``)


@dataclass
class Residual:
    """What one boundary condition leaves of ``R`` for this model."""

    bc: str
    residual_T: dict | str          # θ -> expression, or "0"
    residual_0: dict | str
    vanishing_terms: list
    needs: str
    forward_only: bool
    memory: str
    tractable: bool
    verdict: str
    extra: dict = field(default_factory=dict)


def shown_residuals(d: Derivation, bcs) -> dict:
    """``{bc: Residual}`` of the conditions ``bcs``, each expression tidied within the budget ``symglep derive
    --simplify fast`` gives this model (theory §11): what ``symglep residuals`` prints."""
    res = residuals(d)
    budget = Budget.for_model("fast", d.model.n, d.raw_seconds)
    return {bc: readable_residual(res[bc], budget) for bc in bcs}


def readable_residual(r: Residual, budget) -> Residual:
    """``r`` with each residual expression in the smallest equal form :func:`symglep.simplify.tidy` finds within
    ``budget`` (H = a cosh p: its CIVP residual 177 operations as expanded, 34 simplified)."""
    def shown(value):
        return value if isinstance(value, str) else {th: tidy(e, budget) for th, e in value.items()}
    return replace(r, residual_T=shown(r.residual_T), residual_0=shown(r.residual_0))


def _model_names(m) -> set:
    """Every symbol name the model uses: an end symbol must not take one of them (a parameter ``beta`` would
    merge ∂x/∂beta with ∂x/∂β, a target ``y_T`` with the state y(T), a parameter ``x_0`` with x(0))."""
    symbols = {m.time, *m.q, *m.v, *m.p, *m.parameters, *m.u, *m.y, *m.constants}
    for expr in (m.lagrangian, m.cost, m.terminal_cost, m.damping):
        symbols |= sp.sympify(expr).free_symbols
    return {s.name for s in symbols}


def end_symbols(d: Derivation, suffix: str) -> EndSymbols:
    """The end's symbols, named ``<stem>_<suffix>`` (module docstring); a name the model or an earlier end symbol
    already uses gets one more underscore before the suffix (``x__0`` beside a parameter ``x_0``) and ``T``,
    ``t0`` a trailing one (``T_``)."""
    m = d.model
    taken = _model_names(m)

    def fresh(stem: str, joined: bool = True) -> sp.Symbol:
        sep = "_"
        name = f"{stem}{sep}{suffix}" if joined else stem
        while name in taken:
            sep += "_"
            name = f"{stem}{sep}{suffix}" if joined else name + "_"
        taken.add(name)
        return sp.Symbol(name)

    return EndSymbols(
        suffix=suffix,
        t=fresh("T" if suffix == "T" else "t0", joined=False),  # the run's start time (0 unless given)
        q=[fresh(s.name) for s in m.q],
        v=[fresh(s.name) for s in m.v],
        dq_dbeta=[fresh(f"d{q.name}_dbeta") for q in m.q],
        dv_dbeta=[fresh(f"d{v.name}_dbeta") for v in m.v],
        dq_dtheta={th: [fresh(f"d{q.name}_d{th.name}") for q in m.q] for th in m.parameters},
        dv_dtheta={th: [fresh(f"d{v.name}_d{th.name}") for v in m.v] for th in m.parameters},
        u=[fresh(s.name) for s in m.u],  # last: the other names stay as they were before inputs were renamed
    )


def _at_end(expr, d: Derivation, e: EndSymbols):
    m = d.model
    subs = {**dict(zip(m.q, e.q)), **dict(zip(m.v, e.v)), **dict(zip(m.u, e.u)), m.time: e.t}
    return sp.sympify(expr).xreplace(subs)


def _end_mechanics(d: Derivation, e: EndSymbols) -> tuple:
    """``(M, ∂²L/∂v∂q)`` at the end ``e``, computed once per end."""
    if e.mechanics is None:
        m = d.model
        momenta, mass = d.compact_mechanics
        e.mechanics = (mass.applyfunc(lambda x: _at_end(x, d, e)),
                       sp.Matrix(m.n, m.n, lambda i, j: _at_end(sp.diff(momenta[i], m.q[j]), d, e)))
    return e.mechanics


def momentum_sensitivities(d: Derivation, e: EndSymbols, theta, fixed: dict | None = None):
    """``(∂θp, ∂βp)`` at one end, expanded through ``p = ∂L/∂v`` (module docstring), with ``fixed``
    sensitivities set before the products are formed (a zero drops its terms)."""
    m = d.model
    n = m.n
    momenta = d.compact_mechanics[0]
    M, Lvq = _end_mechanics(d, e)
    held = lambda symbols: [(fixed or {}).get(s, s) for s in symbols]  # noqa: E731
    dq_th, dv_th, dq_b, dv_b = (held(e.dq_dtheta[theta]), held(e.dv_dtheta[theta]), held(e.dq_dbeta),
                                held(e.dv_dbeta))
    dth_p, dbeta_p = [], []
    for i in range(n):
        a = sum((M[i, j] * dv_th[j] + Lvq[i, j] * dq_th[j] for j in range(n)), sp.S.Zero)
        dth_p.append(a + _at_end(sp.diff(momenta[i], theta), d, e))
        dbeta_p.append(sum((M[i, j] * dv_b[j] + Lvq[i, j] * dq_b[j] for j in range(n)), sp.S.Zero))
    return dth_p, dbeta_p


def symplectic_term(d: Derivation, e: EndSymbols, theta, fixed: dict | None = None,
                    momenta: tuple | None = None) -> sp.Expr:
    """``X = ∂βp·∂θq − ∂θp·∂βq`` at one end, with ``fixed`` sensitivities set (e.g. to zero); ``momenta``:
    the momentum sensitivities ``(∂θp, ∂βp)`` a boundary condition holds, in place of their expansion
    through ``p = ∂L/∂v`` (module docstring)."""
    dth_p, dbeta_p = momenta or momentum_sensitivities(d, e, theta, fixed)
    x = sum((dbeta_p[i] * e.dq_dtheta[theta][i] - dth_p[i] * e.dq_dbeta[i] for i in range(d.model.n)), sp.S.Zero)
    x = sp.sympify(x).xreplace(fixed or {})
    return sp.expand(x) if node_count(x, stop_after=EXPANDED_NODES) <= EXPANDED_NODES else x


def terminal_gradient(d: Derivation, e: EndSymbols) -> list:
    """``∂c_T/∂q`` at the end ``e`` (zeros without a terminal cost; theory §10)."""
    m = d.model
    return [_at_end(sp.diff(m.terminal_cost, q), d, e) for q in m.q]


def _zeros(symbols) -> dict:
    return {s: 0 for s in symbols}


def _per_theta(d: Derivation, fn) -> dict | str:
    out = {th: fn(th) for th in d.model.parameters}
    if all(is_zero(e, fixed=d.model.constants) for e in out.values()):
        return "0"
    return out


def residuals(d: Derivation) -> dict[str, Residual]:
    """The residual left by each boundary condition of :data:`BOUNDARY_CONDITIONS` (theory §3)."""
    m = d.model
    if not d.legendre_regular:
        raise DerivationError("the mass matrix is singular (det M ≡ 0): the velocities at the ends are not "
                              "fixed by the momenta, so the boundary residuals are undefined (theory §3)")
    eT, e0 = end_symbols(d, "T"), end_symbols(d, "0")
    all_T = [*eT.dq_dbeta, *eT.dv_dbeta] + [s for th in m.parameters for s in (*eT.dq_dtheta[th], *eT.dv_dtheta[th])]
    all_0 = [*e0.dq_dbeta, *e0.dv_dbeta] + [s for th in m.parameters for s in (*e0.dq_dtheta[th], *e0.dv_dtheta[th])]
    grad_T = terminal_gradient(d, eT)

    def X_T(th, fixed=None, momenta=None):
        """X(T) with the boundary momentum p − β∂c_T/∂q (theory §10): ∂βp gains −∂c_T/∂q."""
        x = symplectic_term(d, eT, th, fixed, momenta)
        extra = -sum((g * dq for g, dq in zip(grad_T, eT.dq_dtheta[th])), sp.S.Zero)
        return x + extra.xreplace(fixed or {})

    minus_X_0 = lambda th, fixed=None: -symplectic_term(d, e0, th, fixed)  # noqa: E731
    start_fixed = _zeros(all_0)
    end_fixed = _zeros(all_T)
    dim = f"{m.n} × {len(m.parameters)}"
    out = {}
    out["civp"] = Residual(
        "civp", _per_theta(d, X_T), _per_theta(d, lambda th: minus_X_0(th, start_fixed)),
        ["q(0) and v(0) are the same for every θ and β: ∂θq(0) = ∂θv(0) = ∂βq(0) = ∂βv(0) = 0, so X(0) = 0"],
        f"forward sensitivities ∂θq(T), ∂θv(T) (the {dim} tangent propagated along the run, RTRL-like) "
        "and ∂βq(T), ∂βv(T) from the nudged runs",
        True, f"O(n·dim θ) = O({dim}), independent of T", False,
        "forward-only but intractable at scale (the tangent costs dim θ passes); the bulk-only estimate is biased",
    )
    out["cfvp"] = Residual(
        "cfvp", _per_theta(d, lambda th: X_T(th, end_fixed)), _per_theta(d, minus_X_0),
        ["q(T) and p(T) are the same for every θ and β: ∂θq(T) = ∂βq(T) = ∂βp(T) = 0, so X(T) = 0 (holding v(T) "
         "instead also gives X(T) = 0, a different problem when θ sits in the kinetic term; check --bc cfvp holds "
         "p(T))"]
        + (["with only a terminal cost the CFVP gradient is 0: c_T(q(T)) is a constant when q(T) is held, the "
            "nudged runs do not move, and X(0) is 0 at ∂βq(0) = ∂βp(0) = 0"]
           if m.cost == 0 and m.terminal_cost != 0 else []),
        f"backward sensitivities ∂θq(0), ∂θv(0) ({dim}) and the runs integrated backward from T",
        False, f"O(n·dim θ) = O({dim})", False,
        "mirror image of CIVP; inference runs backward in time: useless for causal models",
    )
    out["cbvp"] = Residual(
        "cbvp", _per_theta(d, lambda th: X_T(th, _zeros([*eT.dq_dbeta] + [s for t in m.parameters for s in eT.dq_dtheta[t]]))),
        _per_theta(d, lambda th: minus_X_0(th, _zeros([*e0.dq_dbeta] + [s for t in m.parameters for s in e0.dq_dtheta[t]]))),
        ["q(0) = α and q(T) = b are constants: ∂θq = ∂βq = 0 at both ends, so X(0) = X(T) = 0"],
        "the free trajectory as a boundary value problem (shooting or Newton over the whole trajectory)",
        False, "O(T) (the whole trajectory is solved at once)", True,
        "exact (no residual) but not forward-only: non-causal inference",
    )
    periodic_notes = ["q and p are equal at 0 and T for every θ and β: the sensitivities agree at both ends, "
                      "so X(T) = X(0) and R = X(T) − X(0) = 0"]
    rate = caldirola_kanai_rate(m)
    if rate is not None:  # p is the canonical momentum of e^{γt} L (theory §7)
        periodic_notes.append(f"damped (Caldirola–Kanai, rate {expr_str(rate)}): p = {growth_text(rate, 't')} × the "
                              "physical momentum, so p(T) = p(0) means the physical momentum returns scaled by "
                              f"{growth_text(rate, '-T')}: not a periodic motion of the damped system")
    out["periodic"] = Residual(
        "periodic", "0", "0", periodic_notes,
        "a periodic orbit: boundary value solve over the whole period",
        False, "O(T)", True, "exact (no residual) but not forward-only",
    )
    # the boundary momentum p − β∂c_T/∂q held at T: ∂θp(T) = 0, ∂βp(T) = ∂c_T/∂q
    held_momentum = ([sp.S.Zero] * m.n, grad_T)
    q0_fixed = _zeros([*e0.dq_dbeta] + [s for t in m.parameters for s in e0.dq_dtheta[t]])
    out["mixed"] = Residual(
        "mixed", _per_theta(d, lambda th: X_T(th, momenta=held_momentum)),
        _per_theta(d, lambda th: minus_X_0(th, q0_fixed)),
        ["q(0) = α for every θ and β: ∂θq(0) = ∂βq(0) = 0, so X(0) = 0 (both variations have δq = 0)",
         "the boundary momentum at T is held fixed (p(T) = π, or p(T) − β ∂c_T/∂q = π with a terminal cost, "
         "theory §10): ∂θp(T) = ∂βp(T) = 0, so X(T) = 0 (both variations have δp = 0)",
         "q(0) with q(T) fixed (the other mixed choice) is the constant two-point problem: see cbvp"]
        + ([f"damped (Caldirola–Kanai, rate {expr_str(rate)}): the p(T) held fixed is "
            f"{growth_text(rate, 'T')} × the physical momentum at T"] if rate is not None else []),
        "a two-point solve for the start momentum p(0) of every nudged run (shooting on n unknowns, "
        "or Newton over the whole trajectory)",
        False, "O(n²) for shooting (an n × n Jacobian), O(T) for a whole-trajectory solve", True,
        "exact (no residual) but not forward-only: the start momentum depends on the end condition, so "
        "neither the free nor the nudged run can be played forward by the physical system",
        extra={"q0_qT_is": "cbvp"},
    )
    pfvp_fixed = {**_zeros([*eT.dq_dbeta, *eT.dv_dbeta]),
                  **_zeros([s for t in m.parameters for s in (*e0.dq_dtheta[t], *e0.dv_dtheta[t])])}
    correction = _per_theta(d, lambda th: minus_X_0(th, pfvp_fixed))
    terminal = m.terminal_cost != 0
    if terminal:
        kick = ", ".join(f"∂βp_{q.name}(T) = {expr_str(g)}" for q, g in zip(m.q, grad_T))
        end_terms = [
            f"the terminal cost c_T = {expr_str(m.terminal_cost)} adds −β c_T(q(T)) to the nudged action, so the "
            "momentum of the boundary term at T is p − β ∂c_T/∂q (theory §10)",
            "PFVP pins q_β(T) = q₀(T) and p_β(T) − β ∂c_T/∂q(q_β(T)) = p₀(T) for every β: ∂βq(T) = 0 but the final "
            f"momentum varies with β, {kick}; X(T), built on p − β ∂c_T/∂q, is zero: ∂βp(T)·∂θq(T) is cancelled "
            "by the terminal cost's own boundary term −∂c_T/∂q·∂θq(T)",
            "the echo therefore starts from (q₀(T), −p₀(T) − β ∂c_T/∂q(q₀(T))): a momentum kick at the flip",
        ]
    else:
        end_terms = ["q_β(T) = q₀(T) and p_β(T) = p₀(T) for every β: ∂βq(T) = ∂βp(T) = 0, so X(T) = 0"]
    out["pfvp"] = Residual(
        "pfvp", "0", correction,
        [*end_terms,
         "the start (α, γ) does not move with θ at β = 0: ∂θq(0) = 0 (and ∂θv(0) = 0 for a velocity start)",
         "what remains is −X(0) = ∂θp(0)·∂βq(0) = ∂²L/∂θ∂v(q(0), v(0), t0)·∂βq(0) (0 and t0: the start); "
         "it vanishes when the initial momentum is held fixed"],
        "with time-reversal symmetry: the echo — the same system run forward from the flipped final state",
        True, "O(1) in T (2–3 passes)", True,
        "the practical one (HEL/RHEL): exact up to the finite difference in β, forward-only, O(1) memory",
        extra={"pfvp_correction_vanishes": correction == "0",
               "time_reversible": d.sym.time_reversible,
               **({"terminal_cost": expr_str(m.terminal_cost),
                   "final_momentum_beta_variation": {f"p_{q.name}": expr_str(g) for q, g in zip(m.q, grad_T)}}
                  if terminal else {})},
    )
    odd = odd_terms_text(d.sym.breaking_terms)
    if m.damping != 0:
        out["pfvp"].verdict = ("not exact for this model: the echo above is that of the conservative part; the "
                               "Rayleigh force is not variational, so no echo or PFVP rule is exact (theory §7): "
                               "BPTT is the reference and the naive echo is biased")
    elif not d.sym.time_reversible and d.sym.flip:
        flip = ", ".join(f"{s} -> -{s}" for s in d.sym.flip)
        out["pfvp"].verdict = (f"exact and forward-only with the flipped echo: the model is not time-reversible "
                               f"({odd}), but the echo with {flip} runs forward (theory §4)")
        out["pfvp"].needs = (f"the flipped echo: the system with {flip} run forward from the flipped final state")
    elif not d.sym.time_reversible:
        r = out["pfvp"]
        r.forward_only = False
        r.verdict = (f"exact, but the model is not time-reversible ({odd}) and no parameter flip restores it: the "
                     "echo cannot run forward; PFVP needs a backward integration (digital PFVP: exact on a "
                     "computer, not forward-only in hardware)")
        r.needs = "the digital PFVP: the integrator's step inverted, run backward in time from the final state"
    return {name: out[name] for name in BOUNDARY_CONDITIONS}


def latex_names(d: Derivation) -> dict:
    """LaTeX names of the end symbols: ``dx_dk_T`` → ``\\partial_{k} x_{T}``, ``x_dot_0`` → ``\\dot{x}_{0}``."""
    m = d.model
    names = {}
    for suffix in ("T", "0"):
        e = end_symbols(d, suffix)
        for q, v, qs, vs in zip(m.q, m.v, e.q, e.v):
            base = sp.latex(q)
            names[qs] = f"{base}_{{{suffix}}}"
            names[vs] = rf"\dot{{{base}}}_{{{suffix}}}"
        for th in m.parameters:
            for q, s in zip(m.q, e.dq_dtheta[th]):
                names[s] = rf"\partial_{{{sp.latex(th)}}} {sp.latex(q)}_{{{suffix}}}"
            for q, s in zip(m.q, e.dv_dtheta[th]):
                names[s] = rf"\partial_{{{sp.latex(th)}}} \dot{{{sp.latex(q)}}}_{{{suffix}}}"
        for u, s in zip(m.u, e.u):
            names[s] = f"{sp.latex(u)}_{{{suffix}}}"
        for q, s in zip(m.q, e.dq_dbeta):
            names[s] = rf"\partial_{{\beta}} {sp.latex(q)}_{{{suffix}}}"
        for q, s in zip(m.q, e.dv_dbeta):
            names[s] = rf"\partial_{{\beta}} \dot{{{sp.latex(q)}}}_{{{suffix}}}"
    return names
