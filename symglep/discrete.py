"""Discretisation: the discrete Lagrangians and the pieces their step maps need (theory §6).

Two variational integrators, both symmetric (so the echo of theory §4 is the
same integrator run forward from the flipped final state):

* ``leapfrog`` (Störmer–Verlet), for separable ``L = K(v) − V(q, t)`` and for
  ``L = K(v, t) − V(q, t)`` (the time-weighted leapfrog of theory §7)::

      L_d(q_k, q_{k+1}) = h K((q_{k+1} − q_k)/h, t_{k+½}) − h/2 [V(q_k, t_k) + V(q_{k+1}, t_{k+1})]

  kick ``p½ = p_k − h/2 ∇V^β(q_k)``, drift ``q_{k+1} = q_k + h W(p½, t_{k+½})`` with
  ``W = ∂T/∂p`` the velocity map, kick ``p_{k+1} = p½ − h/2 ∇V^β(q_{k+1})``,
  where ``V^β = V + βc``. Loss: trapezoid ``C = h Σ' c(q_k, t_k)``.

* ``midpoint``, for every regular model::

      L_d(q_k, q_{k+1}) = h L(q̄, v̄, t_{k+½}),  q̄ = (q_k + q_{k+1})/2,  v̄ = (q_{k+1} − q_k)/h

  ``p_k = −D₁L_d = ∂_vL − h/2 ∂_qL^β`` is solved for ``q_{k+1}`` by Newton, then
  ``p_{k+1} = D₂L_d = ∂_vL + h/2 ∂_qL^β`` with ``L^β = L − βc``. Inputs and
  targets are sampled at ``t_{k+½}`` as the mean of the two nodes.
  Loss: ``C = h Σ c(q̄_k, t_{k+½})``.

Either loss gains ``c_T(q_K)`` when the model declares a terminal cost (theory §10).

A :class:`Scheme` is a list of :class:`NumericFunction` — ordered argument
symbols and output expressions — that the code printers turn into kernels.
It is pure sympy: nothing here knows about numba or C.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import sympy as sp

from .derivation import Derivation
from .errors import DerivationError
from .fastdiff import gradient, gradients
from .integrators import choose_integrator



@dataclass
class NumericFunction:
    """``name(args...) -> outputs``: each argument and output is a named vector of symbols/expressions."""

    name: str
    args: list      # [(arg_name, [symbols])] ; a scalar is a 1-element vector passed as a scalar
    outputs: list   # [(out_name, [expressions])]
    doc: str
    scalars: tuple = ()  # names of args passed as scalars (t, beta, h)


@dataclass
class Scheme:
    """Everything the numeric layer needs for one model and one integrator."""

    name: str
    integrator: str
    n: int
    n_theta: int
    n_u: int
    n_y: int
    coordinate_names: list
    parameter_names: list
    input_names: list
    target_names: list
    functions: list = field(default_factory=list)
    has_energy: bool = False
    velocity_is_momentum: bool = False   # leapfrog with W(p) = p: the drift needs no call
    explicit_time: bool = False
    time_reversible: bool = True
    breaking_terms: list = field(default_factory=list)
    echo_flip: list = field(default_factory=list)  # indices of the parameters the echo flips (theory §4)
    damped: bool = False                           # a non-variational Rayleigh force is in the step (theory §7)
    default_route: str | None = "echo"             # symglep.routes
    has_terminal_cost: bool = False                # a cost c_T(q_K) of the final state (theory §10)
    notes: list = field(default_factory=list)

    def function(self, name: str) -> NumericFunction:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)


def _fresh(name: str, taken: set, n: int | None = None) -> str:
    """``name``, with underscores appended until it (a scalar) or, ``n`` given, none of its entries
    ``name0 … name{n-1}`` is a name of the model: a parameter called ``beta``, ``h`` or ``lam0`` must not
    become the nudge, the step or an adjoint entry (SymEngine identifies symbols by name, and so does the
    printed code)."""
    while (name in taken) if n is None else any(f"{name}{i}" in taken for i in range(n)):
        name += "_"
    return name


def fresh_vector(prefix: str, n: int, taken: set) -> list[sp.Symbol]:
    """``prefix0 … prefix{n-1}``, internal symbols whose names the model does not use (:func:`_fresh`)."""
    prefix = _fresh(prefix, taken, n)
    return [sp.Symbol(f"{prefix}{i}") for i in range(n)]


def _directional(expr, xs, dxs, th, dth) -> sp.Expr:
    """``Σ ∂expr/∂x·dx + Σ ∂expr/∂θ·dθ`` (a Jacobian–vector product)."""
    return sum((g * d for g, d in zip(gradient(expr, list(xs) + list(th)), list(dxs) + list(dth))), sp.S.Zero)


_SCHEMES: OrderedDict = OrderedDict()  # (id(derivation), integrator) -> (derivation, scheme), newest last
_REMEMBER = 16


def discretise(d: Derivation, integrator: str = "auto") -> Scheme:
    """The :class:`Scheme` of ``d`` for the chosen integrator (theory §6), built once per derivation
    object and integrator: the real and complex-step kernels, the C and JAX targets of one model read
    the same scheme (renderers only read it)."""
    key = (id(d), integrator)
    known = _SCHEMES.get(key)
    if known is not None and known[0] is d:
        _SCHEMES.move_to_end(key)
        return known[1]
    scheme = _build(d, integrator)
    _SCHEMES[key] = (d, scheme)
    while len(_SCHEMES) > _REMEMBER:
        _SCHEMES.popitem(last=False)
    return scheme


def _build(d: Derivation, integrator: str) -> Scheme:
    """Build the :class:`Scheme` of ``d`` for the chosen integrator (:func:`discretise`)."""
    if not d.legendre_regular:
        raise DerivationError("the mass matrix is singular (det M ≡ 0): no integrator applies")
    integrator = choose_integrator(d, integrator)
    m = d.model
    fixed = dict(m.constants)
    sub = lambda e: sp.sympify(e).xreplace(fixed)  # noqa: E731
    scheme = Scheme(
        name=m.name, integrator=integrator, n=m.n, n_theta=len(m.parameters), n_u=len(m.u), n_y=len(m.y),
        coordinate_names=[s.name for s in m.q], parameter_names=[s.name for s in m.parameters],
        input_names=[s.name for s in m.u], target_names=[s.name for s in m.y],
        explicit_time=m.time in m.lagrangian.free_symbols or m.time in m.cost.free_symbols,
        time_reversible=d.sym.time_reversible, breaking_terms=[str(b) for b in d.sym.breaking_terms],
        echo_flip=[m.parameters.index(s) for s in (d.sym.flip or [])], damped=m.damping != 0,
        default_route=d.default_route, has_terminal_cost=m.terminal_cost != 0,
    )
    q, v, p, th, u, y, t = list(m.q), list(m.v), list(m.p), list(m.parameters), list(m.u), list(m.y), m.time
    taken = {str(x) for x in (*q, *v, *p, *m.a, *th, *u, *y, t, *m.constants)}
    taken |= {str(x) for e in (m.lagrangian, m.cost, m.terminal_cost, m.damping) for x in sp.sympify(e).free_symbols}
    beta, h = sp.Symbol(_fresh("beta", taken)), sp.Symbol(_fresh("h", taken))
    L, c = sub(m.lagrangian), sub(m.cost)
    lam, mu = fresh_vector("lam", m.n, taken), fresh_vector("mu", m.n, taken)
    state_args = [("q", q), ("v", v), ("t", [t]), ("u", u), ("th", th)]
    fns = scheme.functions

    # Shared by both integrators --------------------------------------------------
    mom = gradient(L, v)
    fns.append(NumericFunction("momentum", state_args, [("p", mom)],
                               "p = ∂L/∂v(q, v, t): start from a velocity (theory §5)", ("t",)))
    gvec = fresh_vector("g", m.n, taken)
    pair = sum((gi * pi for gi, pi in zip(gvec, mom)), sp.S.Zero)
    fns.append(NumericFunction(
        "momentum_vjp", state_args + [("g", gvec)],
        list(zip(("dq", "dv", "dth", "du"), gradients(pair, q, v, th, u))),
        "gᵀ ∂p/∂(q, v, θ, u): converts dC/dp₀ for a start that fixes velocity (theory §5)", ("t",)))
    cost_args = [("q", q), ("t", [t]), ("u", u), ("y", y)]
    fns.append(NumericFunction("cost", cost_args, [("c", [c])], "cost density c(q, t) (theory §1)", ("t",)))
    fns.append(NumericFunction("cost_grad", cost_args,
                               list(zip(("dq", "du"), gradients(c, q, u))),
                               "∂c/∂q and ∂c/∂u", ("t",)))
    terminal = sub(m.terminal_cost)
    fns.append(NumericFunction("terminal_cost", [("q", q), ("y", y)], [("c", [terminal])],
                               "terminal cost c_T(q_K, y_K) of the final state (theory §10)", ()))
    fns.append(NumericFunction("terminal_cost_grad", [("q", q), ("y", y)],
                               [("dq", gradient(terminal, q))],
                               "∂c_T/∂q: the momentum kick at the flip and the adjoint's final value (theory §10)",
                               ()))
    if d.hamiltonian is not None:
        scheme.has_energy = True
        fns.append(NumericFunction("energy", [("q", q), ("p", p), ("t", [t]), ("u", u), ("th", th)],
                                   [("e", [sub(d.hamiltonian)])], "H(q, p, t) (theory §4)", ("t",)))

    if integrator == "leapfrog":
        _leapfrog(scheme, d, sub, q, v, p, th, u, y, t, beta, lam, taken)
    else:
        _midpoint(scheme, d, sub, L, c, sub(m.damping), q, v, th, u, y, t, beta, h, lam, mu, taken)
    return scheme


def _leapfrog(scheme, d, sub, q, v, p, th, u, y, t, beta, lam, taken):
    """Functions of the Störmer–Verlet step (theory §6, separable case)."""
    fns = scheme.functions
    K, V = (sub(e) for e in d.sym.leapfrog_split())
    c = sub(d.model.cost)
    W = [sub(e) for e in d.velocity_map]
    scheme.velocity_is_momentum = all(sp.simplify(w - pi) == 0 for w, pi in zip(W, p))
    grad = [sp.diff(V, s) + beta * sp.diff(c, s) for s in q]
    node = [("q", q), ("t", [t]), ("u", u), ("y", y), ("th", th), ("beta", [beta])]
    fns.append(NumericFunction("force", node, [("f", grad)],
                               "∇_q V^β = ∇_q (V + βc): the kicks of Störmer–Verlet", ("t", "beta")))
    drift = [("p", p), ("t", [t]), ("th", th)]  # t: the drift's time, the middle of its step (theory §7)
    fns.append(NumericFunction("velocity", drift, [("v", W)],
                               "v = W(p, t) = ∂T/∂p: the drift of Störmer–Verlet", ("t",)))
    pot_args = [("q", q), ("t", [t]), ("u", u), ("th", th)]
    fns.append(NumericFunction("potential_partials", pot_args,
                               list(zip(("dth", "du"), gradients(V, th, u))),
                               "∂V/∂θ and ∂V/∂u: learning integrand of the nodes (theory §5)", ("t",)))
    fns.append(NumericFunction("kinetic_partials", [("v", v), ("t", [t]), ("th", th)],
                               [("dth", gradient(K, th))],
                               "∂K/∂θ at fixed velocity: learning integrand of the drift", ("t",)))
    # Vector–Jacobian products for the discrete adjoint (BPTT).
    fl = sum((li * gi for li, gi in zip(lam, grad)), sp.S.Zero)
    fns.append(NumericFunction("force_vjp", node + [("lam", lam)],
                               list(zip(("dq", "dth", "du"), gradients(fl, q, th, u))),
                               "λᵀ ∂(∇V^β)/∂(q, θ, u)", ("t", "beta")))
    dq, dth = fresh_vector("dq", len(q), taken), fresh_vector("dth", len(th), taken)
    dp = fresh_vector("dp", len(q), taken)
    fns.append(NumericFunction("force_jvp", node + [("dq", dq), ("dth", dth)],
                               [("df", [_directional(gi, q, dq, th, dth) for gi in grad])],
                               "d(grad V^beta)/dq . dq + d(grad V^beta)/dtheta . dtheta: tangent (forward sensitivity)",
                               ("t", "beta")))
    fns.append(NumericFunction("velocity_jvp", drift + [("dp", dp), ("dth", dth)],
                               [("dv", [_directional(wi, p, dp, th, dth) for wi in W])],
                               "dW/dp . dp + dW/dtheta . dtheta: tangent of the drift", ("t",)))
    wl = sum((li * wi for li, wi in zip(lam, W)), sp.S.Zero)
    fns.append(NumericFunction("velocity_vjp", drift + [("lam", lam)],
                               list(zip(("dp", "dth"), gradients(wl, p, th))),
                               "λᵀ ∂W/∂(p, θ)", ("t",)))


def _midpoint(scheme, d, sub, L, c, R, q, v, th, u, y, t, beta, h, lam, mu, taken):
    """Functions of the implicit midpoint step (theory §6, general case).

    A Rayleigh force ``−∂R/∂v`` (theory §7) joins ``∂L^β/∂q`` at the midpoint, half to each
    end (the discrete Lagrange–d'Alembert principle); ``R = 0`` for variational models.
    """
    fns = scheme.functions
    n = len(q)
    qa, qb = fresh_vector("qa", n, taken), fresh_vector("qb", n, taken)
    at_mid = {**{qi: (a + b) / 2 for qi, a, b in zip(q, qa, qb)},
              **{vi: (b - a) / h for vi, a, b in zip(v, qa, qb)}}
    Lb = L - beta * c
    pv = [sp.diff(L, s).xreplace(at_mid) for s in v]
    fq = [(sp.diff(Lb, s) - sp.diff(R, w)).xreplace(at_mid) for s, w in zip(q, v)]
    F = [pv[i] - h / 2 * fq[i] for i in range(n)]      # = p_k   (−D₁L_d, nudged)
    P = [pv[i] + h / 2 * fq[i] for i in range(n)]      # = p_{k+1} (D₂L_d, nudged)
    step = [("qa", qa), ("qb", qb), ("t", [t]), ("u", u), ("y", y), ("th", th), ("beta", [beta]), ("h", [h])]
    sc = ("t", "beta", "h")
    fns.append(NumericFunction("midpoint_momenta", step, [("pa", F), ("pb", P)],
                               "−D₁L_d^β and D₂L_d^β of the midpoint rule (theory §6)", sc))
    fns.append(NumericFunction("midpoint_jacobian", step,
                               [("jac", [g for i in range(n) for g in gradient(F[i], qb)])],
                               "∂(−D₁L_d^β)/∂q_{k+1}, row-major n×n: the Newton matrix", sc))
    fns.append(NumericFunction("midpoint_jacobian_prev", step,
                               [("jac", [g for i in range(n) for g in gradient(P[i], qa)])],
                               "∂(D₂L_d^β)/∂q_k, row-major n×n: the Newton matrix of the inverted step "
                               "(digital PFVP, theory §4)", sc))
    learn_args = [("qa", qa), ("qb", qb), ("t", [t]), ("u", u), ("th", th), ("h", [h])]
    Lmid = L.xreplace(at_mid)
    fns.append(NumericFunction("lagrangian_partials", learn_args,
                               list(zip(("dth", "du"), gradients(Lmid, th, u))),
                               "∂L/∂θ and ∂L/∂u at the midpoint: learning integrand (theory §5)", ("t", "h")))
    fl = sum((li * pi for li, pi in zip(lam, P)), sp.S.Zero)
    fns.append(NumericFunction("midpoint_vjp_next", step + [("lam", lam)],
                               list(zip(("dqa", "dqb", "dth", "du"), gradients(fl, qa, qb, th, u))),
                               "λᵀ ∂(D₂L_d^β)/∂(q_k, q_{k+1}, θ, u)", sc))
    dqa, dqb, dth = fresh_vector("dqa", n, taken), fresh_vector("dqb", n, taken), fresh_vector("dth", len(th), taken)
    fns.append(NumericFunction(
        "midpoint_jvp", step + [("dqa", dqa), ("dqb", dqb), ("dth", dth)],
        [("dpa", [_directional(Fi, qa + qb, dqa + dqb, th, dth) for Fi in F]),
         ("dpb", [_directional(Pi, qa + qb, dqa + dqb, th, dth) for Pi in P])],
        "tangents of -D1 L_d and D2 L_d along (dqa, dqb, dtheta): forward sensitivities", sc))
    fm = sum((mi * Fi for mi, Fi in zip(mu, F)), sp.S.Zero)
    fns.append(NumericFunction("midpoint_vjp_implicit", step + [("mu", mu)],
                               list(zip(("dqa", "dth", "du"), gradients(fm, qa, th, u))),
                               "μᵀ ∂(−D₁L_d^β)/∂(q_k, θ, u)", sc))
