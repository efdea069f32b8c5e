"""Boundary conditions on the two ends of the discrete flow, solved by shooting (theory §3, §6).

CFVP, the periodic condition and the mixed condition ``q(0) = α, p(T) = π`` each fix ``2n``
relations between the start ``z₀ = (q₀, p₀)`` and the end ``z_K = (q_K, p̃_K)`` of the discrete
integrator, where ``p̃_K = p_K − β ∂c_T/∂q(q_K)`` is the boundary momentum of the nudged action
(theory §10; ``p_K`` without a terminal cost):

* ``cfvp``      unknown ``z₀`` (2n), equations ``z_K − z_K* = 0`` (the end held fixed; with ``q_K`` held, ``c_T``
  is a constant of the problem and its kick is left out: ``p_K`` is held, and the bulk and ``X(0)`` do not
  carry a large c_T term that cancels between them);
* ``periodic``  unknown ``z₀`` (2n), equations ``z_K − z₀ = 0``;
* ``mixed``     unknown ``p₀`` (n, ``q₀ = α`` fixed), equations ``p̃_K − π = 0``.

Each nudged problem is solved by Newton on the unknown part of ``z₀``; one kernel call per
iteration runs the base start and its ``±ε, ±2ε`` perturbations as one batch (the Jacobian by a
five-point stencil). The solution's sensitivity to θ at β = 0 follows from the implicit-function theorem,
``dx/dθ = −(∂E/∂x)⁻¹ ∂E/∂θ``, with ``∂θz_K`` from the generated tangent kernel. Only kernels'
public methods are used; nothing of the trajectory is stored (memory O(n²), independent of K).
"""

from __future__ import annotations

import numpy as np

from .check import central_differences
from .errors import SymglepError
from .diagnose import NumericalError

KINDS = ("cfvp", "periodic", "mixed")
EPS = 1e-4          # finite-difference step of the shooting Jacobian (states are O(0.1–1); O(ε⁴) stencil)
MAX_COND = 1e12     # a Jacobian worse than this has no isolated solution to resolve in float64


class NoSolution(SymglepError):
    """The boundary-value problem has no isolated solution near the guess (one-line reason)."""


class Shooting:
    """One boundary condition of :data:`KINDS` on a seeded instance (theory §3).

    ``z0`` is the instance's start; the targets of ``cfvp`` and ``mixed`` are the end of the free
    run from it, so at the seeded θ the free solution of those two is the instance's free run.
    """

    def __init__(self, kernels, kind: str, theta, q0, p0, u, y, dt: float):
        if kind not in KINDS:
            raise SymglepError(f"unknown shooting condition {kind!r}; choose one of {', '.join(KINDS)}")
        self.k, self.kind = kernels, kind
        self.n = kernels.n
        self.theta = np.asarray(theta, dtype=float)
        self.z0 = np.concatenate([np.ravel(q0), np.ravel(p0)])
        self.u, self.y, self.dt = np.asarray(u), np.asarray(y), float(dt)
        self.terminal = np.asarray(self.y[0, -1], dtype=float)
        qT, pT, _ = kernels.free(self.theta, self.z0[None, :self.n], p0=self.z0[None, self.n:], u=self.u,
                                 y=self.y, dt=self.dt)
        self.target = np.concatenate([qT[0], pT[0]])  # free end at the seeded θ (no kick at β = 0)
        self.m = self.n if kind == "mixed" else 2 * self.n

    # -- the map x ↦ z₀ ↦ z_K ----------------------------------------------------
    def guess(self) -> np.ndarray:
        """The unknowns of the seeded start."""
        return self.z0[self.n:].copy() if self.kind == "mixed" else self.z0.copy()

    def solve_free(self) -> np.ndarray:
        """The free (β = 0) solution: Newton from the seeded start, and for the periodic orbit, failing
        that, from rest at the origin (a driven system's small forced response)."""
        try:
            return self.solve(0.0)
        except NoSolution as first:
            if self.kind != "periodic":
                raise
            try:
                return self.solve(0.0, x=np.zeros(self.m))
            except NoSolution:
                raise first from None

    def start(self, x: np.ndarray) -> np.ndarray:
        """``z₀`` (rows) of unknowns ``x`` (rows)."""
        x = np.atleast_2d(x)
        if self.kind == "mixed":
            return np.concatenate([np.repeat(self.z0[None, :self.n], x.shape[0], 0), x], axis=1)
        return x.copy()

    def run(self, Z0: np.ndarray, beta: float, theta) -> tuple:
        """Nudged runs from the starts ``Z0 (B, 2n)``: ``(z_K (B, 2n) with p̃_K, G (B, n_θ))``."""
        n, B = self.n, Z0.shape[0]
        rep = lambda a: np.repeat(a, B, axis=0)  # noqa: E731
        qT, pT, G, _ = self.k.nudged(theta, Z0[:, :n], [beta], p0=Z0[:, n:], u=rep(self.u), y=rep(self.y),
                                     dt=self.dt)
        qT, pT, G = qT[:, 0], pT[:, 0].copy(), G[:, 0]
        if beta != 0.0 and self.kind != "cfvp":  # CFVP holds q(T): c_T is a constant there, its kick left out
            grad = np.empty(n)
            for b in range(B):  # p̃_K = p_K − β ∂c_T/∂q (theory §10; zero without a terminal cost)
                self.k.module.f_terminal_cost_grad(qT[b], self.terminal, grad)
                pT[b] -= beta * grad
        return np.concatenate([qT, pT], axis=1), G

    def equations(self, Z0: np.ndarray, ZK: np.ndarray) -> np.ndarray:
        """``E(z₀, z_K)`` per row (zero at a solution)."""
        if self.kind == "cfvp":
            return ZK - self.target
        if self.kind == "periodic":
            return ZK - Z0
        return ZK[:, self.n:] - self.target[self.n:]

    def _jacobian(self, x, beta, theta):
        """``(E(x), ∂E/∂x, G(x))`` from one batch of ``4m + 1`` runs: the five-point stencil
        ``(8(E(x+ε) − E(x−ε)) − (E(x+2ε) − E(x−2ε)))/12ε``, error O(ε⁴)."""
        m = self.m
        steps = EPS * np.maximum(1.0, np.abs(x))
        X = np.repeat(x[None], 4 * m + 1, axis=0)
        for j, factor in enumerate((1, -1, 2, -2)):
            X[1 + j * m + np.arange(m), np.arange(m)] += factor * steps
        Z0 = self.start(X)
        ZK, G = self.run(Z0, beta, theta)
        E = self.equations(Z0, ZK)
        p1, m1, p2, m2 = (E[1 + j * m:1 + (j + 1) * m] for j in range(4))
        J = ((8 * (p1 - m1) - (p2 - m2)) / (12 * steps[:, None])).T
        return E[0], J, G[0]

    # -- Newton ------------------------------------------------------------------
    def solve(self, beta: float, theta=None, x=None, maxit: int = 30) -> np.ndarray:
        """Unknowns ``x`` of the β-nudged problem, Newton from ``x`` (default: the seeded start)."""
        theta = self.theta if theta is None else theta
        x = self.guess() if x is None else np.array(x, dtype=float)
        scale, previous = 1.0 + np.max(np.abs(x)), np.inf
        for _ in range(maxit):
            E, J, _ = self._jacobian(x, beta, theta)
            if not (np.all(np.isfinite(J)) and np.all(np.isfinite(E))):
                raise NoSolution("the runs of the Newton iteration overflowed")
            cond = np.linalg.cond(J)
            if not cond < MAX_COND:
                raise NoSolution(f"the shooting Jacobian is singular (condition number {cond:.1e}): "
                                 "no isolated solution near the seeded start")
            dx = np.linalg.solve(J, E)
            step, norm = np.max(np.abs(dx)), np.linalg.norm(E)
            # converged: a step at round-off, or a tiny step that no longer lowers ‖E‖ (round-off floor)
            if step <= 1e-14 * scale * max(1.0, cond ** 0.5) or (step <= 1e-10 * scale and norm > 0.5 * previous):
                return x - dx
            previous = norm
            x = self._line_search(x, dx, norm, beta, theta)
        raise NoSolution(f"Newton did not converge in {maxit} iterations (residual {np.max(np.abs(E)):.1e}): "
                         "no solution found near the seeded start")

    def _line_search(self, x, dx, norm, beta, theta):
        """``x − λ dx`` with the largest ``λ ∈ {1, ½, ¼, …}`` that lowers ``‖E‖`` (full steps near a root)."""
        lam = 1.0
        while lam > 1e-3:
            trial = x - lam * dx
            Z0 = self.start(trial)
            try:
                ZK, _ = self.run(Z0, beta, theta)
                lower = np.linalg.norm(self.equations(Z0, ZK)[0]) < (1 - 1e-4 * lam) * norm
            except NumericalError:  # the trial start is too wild for the midpoint Newton: shorten the step
                lower = False
            if lower or norm < 1e-12:
                return trial
            lam /= 2
        return x - lam * dx

    def gradient_integral(self, x, beta: float, theta=None) -> np.ndarray:
        """``G = −Σ ∂θL_d^β`` along the run from the solution ``x`` (theory §6)."""
        _, G = self.run(self.start(x), beta, self.theta if theta is None else theta)
        return G[0]

    def loss(self, x, theta=None) -> float:
        """The discrete loss of the free run from the solution ``x``."""
        z0 = self.start(x)[0]
        out = self.k.free(self.theta if theta is None else theta, z0[None, :self.n], p0=z0[None, self.n:],
                          u=self.u, y=self.y, dt=self.dt)
        return float(out[2][0]) - self._held_terminal_cost(out[0][0])

    def _held_terminal_cost(self, qK) -> float:
        """CFVP: ``c_T(q_K)``, a constant of the problem (q_K is held), left out of the loss so that its
        differences do not carry the solve's round-off times c_T's slope; 0 for the other conditions."""
        if self.kind != "cfvp":
            return 0.0
        c = np.zeros(1)
        self.k.module.f_terminal_cost(np.ascontiguousarray(qK, dtype=float), self.terminal, c)
        return float(c[0])

    # -- sensitivities at β = 0 --------------------------------------------------------
    def start_sensitivity(self, x) -> np.ndarray:
        """``dz₀/dθ (n_θ, 2n)`` of the free solution ``x`` by the implicit-function theorem."""
        n = self.n
        _, J, _ = self._jacobian(x, 0.0, self.theta)
        z0 = self.start(x)[0]
        _, _, dq, dp = self.k.tangent(self.theta, z0[None, :n], p0=z0[None, n:], u=self.u, y=self.y, dt=self.dt)
        dzK = np.concatenate([dq[0], dp[0]], axis=1)          # ∂θz_K at fixed z₀, (n_θ, 2n)
        dE = dzK[:, n:] if self.kind == "mixed" else dzK       # ∂E/∂θ (the targets do not move)
        dx = -np.linalg.solve(J, dE.T).T                        # (n_θ, m)
        if self.kind == "mixed":
            return np.concatenate([np.zeros((dx.shape[0], n)), dx], axis=1)
        return dx

    def adjoint_gradient(self, x) -> np.ndarray:
        """``dC/dθ`` of the free solution by an independent route: BPTT at the solution's start plus
        ``dC/dz₀ · dz₀/dθ`` (implicit-function theorem with the tangent kernel)."""
        n = self.n
        z0 = self.start(x)[0]
        r = self.k.bptt_gradient(self.theta, z0[None, :n], p0=z0[None, n:], u=self.u, y=self.y, dt=self.dt)
        dz = self.start_sensitivity(x)
        return r.dtheta[0] + dz @ np.concatenate([r.dq0[0], r.dx0[0]])


# -- the estimators against their true gradients -------------------------------------------
def true_gradient(loss, theta: np.ndarray) -> tuple:
    """``(dC/dθ, uncertainty)`` by central differences of ``loss`` (a solve per evaluation).

    At each step ε the differences at ε and 2ε are combined as ``(4D(ε) − D(2ε))/3`` (error O(ε⁴)).
    ε shrinks tenfold (1e-4 → 1e-7, relative) while the results keep converging: near a fold of the
    solve the loss is strongly curved and 1e-4 is too coarse, while a smaller step than needed only
    adds round-off. Returned: the larger step of the closest successive pair, and their relative
    difference (the uncertainty).
    """
    previous, best, change = None, None, np.inf
    for eps in (1e-4, 1e-5, 1e-6, 1e-7):
        try:
            value = (4 * central_differences(loss, theta, eps) - central_differences(loss, theta, 2 * eps)) / 3
        except NoSolution:  # the step left the solution's branch: take a smaller one
            previous = None
            continue
        if previous is not None:
            now = float(np.linalg.norm(value - previous) / max(np.linalg.norm(value), 1e-300))
            if now >= change:       # round-off has taken over: keep the previous pair's result
                break
            best, change = previous, now
            if change <= 1e-9:
                break
        previous = value
    if best is None:
        raise NoSolution("the free solve does not survive small changes of θ (central differences failed)")
    return best, change


def _is_equilibrium(s: Shooting, x) -> bool:
    """Whether the start of solution ``x`` is a rest point (one free step leaves it where it was)."""
    z0 = s.start(x)[0]
    qT, pT, _ = s.k.free(s.theta, z0[None, :s.n], p0=z0[None, s.n:], u=s.u[:, :2], y=s.y[:, :2], dt=s.dt)
    return bool(np.max(np.abs(np.concatenate([qT[0], pT[0]]) - z0)) <= 1e-12 * (1 + np.max(np.abs(z0))))


def _contrast(f, beta: float):
    """``(d/dβ by ±β, ±2β, d/dβ by ±β)``: ``(8(f(β) − f(−β)) − (f(2β) − f(−2β)))/12β`` (error O(β⁴)) and
    the centred ``(f(β) − f(−β))/2β`` (error O(β²)); ``f`` maps a nudge to an array."""
    v = {b: f(b) for b in (beta, -beta, 2 * beta, -2 * beta)}
    centred = (v[beta] - v[-beta]) / (2 * beta)
    return (8 * (v[beta] - v[-beta]) - (v[2 * beta] - v[-2 * beta])) / (12 * beta), centred


def measure(kernels, kind: str, theta, q0, p0, u, y, dt: float, beta: float) -> dict:
    """The estimator of ``kind`` against its true gradient on one instance (theory §3).

    * ``cfvp``: ``bulk + X(0)``, ``X(0) = ∂βp(0)·∂θq(0) − ∂θp(0)·∂βq(0)`` (``X(T) = 0``: the end is
      fixed); the bulk alone is biased.
    * ``periodic``, ``mixed``: the bulk ``d/dβ G`` alone (``R = 0``).

    ``G = −Σ ∂θL_d^β`` along the runs from the nudged solutions. The problems are solved on a
    computer, so four nudges ±β, ±2β cost little: ``d/dβ`` is their O(β⁴) contrast (``centred_error``:
    the error of the ±β contrast alone, O(β²); ``beta``: the nudge used, β or smaller when the two
    contrasts differ by more than 1e-4, ``unresolved_gap`` that difference at β). The true gradient is central differences of the free
    solve (:func:`true_gradient`); ``adjoint`` is the same gradient by BPTT and the implicit-function
    theorem (an independent route). Raises :class:`NoSolution` when a problem has no isolated
    solution near the seeded start.
    """
    s = Shooting(kernels, kind, theta, q0, p0, u, y, dt)
    x0 = s.solve_free()
    solutions = {}

    def solution(b):
        if b not in solutions:
            solutions[b] = s.solve(b, x=x0)
        return solutions[b]

    true, uncertainty = true_gradient(lambda th: s.loss(s.solve(0.0, theta=th, x=x0), theta=th), s.theta)
    bulk_of = lambda b: _contrast(lambda c: s.gradient_integral(solution(c), c), b)  # noqa: E731
    bulk, bulk_centred = bulk_of(beta)
    # a loss that does not depend on θ (CFVP with only a terminal cost: q(T) is held fixed; a rest
    # point) has a zero gradient: errors are then relative to the bulk term it cancels, or absolute
    zero = np.linalg.norm(true) <= 1e-8 * max(np.linalg.norm(bulk), 1.0)
    scale = (np.linalg.norm(bulk) if np.linalg.norm(bulk) > 1e-6 else 1.0) if zero else np.linalg.norm(true)
    # a strongly curved solve (near a fold) leaves even the ±β, ±2β contrast unresolved: when the ±β one
    # differs from it by more than 1e-4 (its own error being ~ the square of that), β shrinks tenfold
    used, unresolved = beta, None
    for used in (beta, beta / 10, beta / 100):
        if used != beta:
            bulk, bulk_centred = bulk_of(used)
        gap = float(np.linalg.norm(bulk - bulk_centred) / scale)
        if gap <= 1e-4:
            break
        unresolved = unresolved or gap
    estimate, centred, residual = bulk, bulk_centred, None
    if kind == "cfvp":
        n = s.n
        dz = s.start_sensitivity(x0)                                    # ∂θ(q(0), p(0)), (n_θ, 2n)
        x0_of = lambda db: dz[:, :n] @ db[n:] - dz[:, n:] @ db[:n]     # noqa: E731  X(0) of ∂β(q(0), p(0))
        db, db_centred = _contrast(lambda b: s.start(solution(b))[0], used)
        residual = x0_of(db)
        estimate = bulk + residual                                       # dC/dθ = bulk − R, R = −X(0)
        centred = bulk_centred + x0_of(db_centred)
    adjoint = s.adjoint_gradient(x0)
    err = lambda a: float(np.linalg.norm(a - true) / scale)  # noqa: E731
    return {
        "true": true, "true_uncertainty": uncertainty, "beta": used, "unresolved_gap": unresolved,
        "bulk": bulk, "estimate": estimate, "adjoint": adjoint, "residual": residual, "error": err(estimate), "centred_error": err(centred), "bulk_error": err(bulk),
        "reference_error": err(adjoint), "zero_gradient": bool(zero), "absolute": bool(zero and scale == 1.0),
        "equilibrium": kind == "periodic" and _is_equilibrium(s, x0),
        "start_shift": float(np.max(np.abs(s.start(x0)[0] - s.z0))),
    }
