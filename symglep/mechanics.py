"""Euler–Lagrange equations in the form ``M(q, v, t)·a = f(q, v, t)`` (theory §1).

With ``p = ∂L/∂v`` the total time derivative along a trajectory is

    d/dt p_i = Σ_j ∂p_i/∂v_j a_j + Σ_j ∂p_i/∂q_j v_j + ∂p_i/∂t + Σ_k ∂p_i/∂u_k u̇_k

so ``M_ij = ∂²L/∂v_i∂v_j`` and
``f_i = ∂L/∂q_i − Σ_j ∂p_i/∂q_j v_j − ∂p_i/∂t − Σ_k ∂p_i/∂u_k u̇_k − ∂R/∂v_i``,
the last term being the force of a non-variational Rayleigh dissipation
function ``R`` that the model keeps (theory §7; zero for most models).
Only plain symbols are differentiated (through SymEngine when available,
``symglep.fastdiff``); nothing is simplified.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .fastdiff import Differentiator
from .model import Model, velocity_name

#: Explicit accelerations are built for dense mass matrices up to this size.
MAX_DENSE_SOLVE = 3


@dataclass
class EulerLagrange:
    """``M·a = f`` and the residual ``M·a − f = d/dt ∂L/∂v − ∂L/∂q``."""

    momenta: list            # p_i(q, v, t)
    mass_matrix: sp.Matrix   # M_ij
    forcing: sp.Matrix       # f_i
    residuals: list          # M·a − f, each ≡ 0 on solutions
    accelerations: list | None   # a_i(q, v, t) or None when not built
    acceleration_note: str
    input_rates: tuple       # symbols u̇ that appear in f (inputs coupled to velocities)


def input_rate_symbol(u: sp.Symbol) -> sp.Symbol:
    """Symbol for the time derivative of input ``u`` (``u_dot``)."""
    return sp.Symbol(velocity_name(u.name))


def euler_lagrange(model: Model, lagrangian: sp.Expr | None = None) -> EulerLagrange:
    """Mass matrix, forcing and Euler–Lagrange residuals of ``model`` (of ``lagrangian`` in its place when
    given: an equal form of the model's L, for the reports)."""
    L = model.lagrangian if lagrangian is None else lagrangian
    q, v, a, t = model.q, model.v, model.a, model.time
    n = model.n
    dl = Differentiator(L)
    p_raw = dl.raw_grad(v)
    p = [dl.to_sympy(e) for e in p_raw]
    upper = {(i, j): dl.to_sympy(dl.diff_raw(p_raw[i], v[j])) for i in range(n) for j in range(i, n)}  # M = Mᵀ
    mass = sp.Matrix(n, n, lambda i, j: upper[(min(i, j), max(i, j))])
    dldq = dl.grad(q)
    rates = []
    forcing = []
    for i in range(n):
        along = dl.diff_raw(p_raw[i], t)  # ∂p_i/∂t + Σ_j ∂p_i/∂q_j v_j
        for j in range(n):
            along = along + dl.diff_raw(p_raw[i], q[j]) * dl.raw_symbol(v[j])
        fi = dldq[i] - dl.to_sympy(along)
        for u in model.u:
            dpdu = sp.diff(p[i], u)
            if dpdu != 0:
                rate = input_rate_symbol(u)
                rates.append(rate)
                fi -= dpdu * rate
        if model.damping != 0:
            fi -= sp.diff(model.damping, v[i])
        forcing.append(fi)
    forcing = sp.Matrix(forcing)
    residuals = [sum((mass[i, j] * a[j] for j in range(n)), sp.S.Zero) - forcing[i] for i in range(n)]
    accelerations, note = explicit_accelerations(mass, forcing)
    return EulerLagrange(p, mass, forcing, residuals, accelerations, note,
                         tuple(dict.fromkeys(rates)))


def explicit_accelerations(mass: sp.Matrix, forcing: sp.Matrix):
    """``a = M⁻¹ f`` when cheap: diagonal ``M`` of any size, dense ``M`` up to :data:`MAX_DENSE_SOLVE` as
    ``adj(M) f / det M`` (theory §11)."""
    n = mass.rows
    diagonal = all(mass[i, j] == 0 for i in range(n) for j in range(n) if i != j)
    if diagonal:
        if any(mass[i, i] == 0 for i in range(n)):
            return None, "the mass matrix has a zero on its diagonal"
        return [forcing[i] / mass[i, i] for i in range(n)], "diagonal mass matrix"
    if n > MAX_DENSE_SOLVE:
        return None, (f"dense {n}x{n} mass matrix: accelerations are solved numerically, "
                      f"not built symbolically above n = {MAX_DENSE_SOLVE}")
    det = mass.det(method="berkowitz")
    if det == 0:
        return None, "the mass matrix is singular"
    adjugate = mass.adjugate(method="berkowitz")  # a = adj(M) f / det M: every row in one form (theory §11)
    return ([sp.Add(*[adjugate[i, j] * forcing[j] for j in range(n)]) / det for i in range(n)],
            "dense mass matrix, adj(M) f / det M")
