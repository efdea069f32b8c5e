"""The Legendre transform: momenta, Hamiltonian, and its inverse (theory §4).

``p = ∂L/∂v``; ``H(q, p, t) = p·v(q, p, t) − L`` where ``v(q, p, t)`` inverts
the momentum map. The map is inverted in closed form when it is affine in the
velocities (quadratic kinetic terms, position-dependent mass) with a diagonal
or small matrix, or decoupled per coordinate (e.g. the relativistic
``−m·sqrt(1 − v²)``); otherwise the Hamiltonian is reported as unavailable and
the numeric layer solves for velocities itself.
"""

from __future__ import annotations

import sympy as sp

from .errors import ModelError
from .simplify import as_real, over_shared_denominators, within
from .symbolic import distinct_factors, evaluate, sample_values

#: Largest dense matrix inverted symbolically (DESIGN: never a symbolic inverse of a large M).
MAX_DENSE_INVERSE = 3  # as the accelerations (mechanics.MAX_DENSE_SOLVE): a 3x3 inverse is nine 2x2 minors


def _is_diagonal(matrix: sp.Matrix) -> bool:
    return all(matrix[i, j] == 0 for i in range(matrix.rows) for j in range(matrix.cols) if i != j)


#: the phrase of an inverse whose branch holds for one sign of an undeclared parameter only (_solve_one)
BOTH_SIGNS = "holds for both signs"


def _declared_sign(symbol) -> int:
    """+1 for a symbol declared positive (or nonnegative), -1 declared negative (or nonpositive), 0 undeclared."""
    if symbol.is_positive or symbol.is_nonnegative:
        return 1
    if symbol.is_negative or symbol.is_nonpositive:
        return -1
    return 0


def _verify_root(exprs, xs, ys, root: dict, parameters=()) -> bool:
    """Check ``root`` (xs in terms of ys) inverts ``ys = exprs(xs)`` near random points, the ``parameters`` at
    values of their declared signs; a parameter of undeclared sign at both signs (a branch such as
    ``v = p/√(m² + p²)`` holds for m > 0 only: taken for a negative m it runs other dynamics)."""
    undeclared = any(_declared_sign(s) == 0 for s in parameters)
    for seed, shift in ((0, 1), (1, 1), (2, 1), (3, 0), (4, 0)):
        for side in ((1, -1) if undeclared else (1,)):
            values = sample_values(list(exprs) + list(root.values()), seed=seed)
            for s in parameters:
                if s in values:  # shift 0: parameters also near 0 (a Cardano root of p = (1 + a) v + b v² + v³/3
                    # is real for b² > 1 + a only: one sampled at a, b >= 1.5 held there and was complex elsewhere)
                    values[s] = (_declared_sign(s) or side) * (abs(values[s]) + shift)
            point = {x: values.get(x, sp.Float(0.3)) for x in xs}
            values.update(point)
            image = {y: sp.Float(evaluate(e, values).real, 30) for y, e in zip(ys, exprs)}
            values.update(image)
            for x in xs:
                back = evaluate(root[x], values)
                if not abs(back - complex(point[x])) < 1e-12 * (1 + abs(complex(point[x]))):
                    return False
    return True


def _transcendental_knot(expr, x) -> bool:
    """Whether ``x`` occurs more than once in ``expr``, at least once inside a
    transcendental function or an exponent (e.g. Kepler's ``v − c·sin v``, or
    ``v + c·exp(v)``). ``sympy.solve`` then searches Lambert-W forms, which can
    run for minutes and rarely finds a closed form; such maps are not attempted.
    """
    inside = any(x in f.free_symbols for f in expr.atoms(sp.Function)) or any(
        x in b.exp.free_symbols for b in expr.atoms(sp.Pow))
    return inside and sum(1 for node in sp.preorder_traversal(expr) if node == x) > 1


def _odd_cubic_root(form, x, y):
    """The real root of ``form = y`` when that is ``c3 x³ + c1 x + c0 = 0`` (no ``x²``; e.g. ``p = C0 v + C2 v³``,
    a weakly nonlinear capacitor or spring) in the hyperbolic form ``x = 2√(a/3) sinh(asinh((c/2)(3/a)^{3/2})/3)``,
    ``a = c1/c3``, ``c = −c0/c3``: the same root as Cardano's where ``a > 0``, but Cardano's two cube roots cancel
    as ``a`` grows (C2 → 0: a probe's C2 = 1e-6 gave v(0) = 3e-13 and a crash), where this form tends to
    ``c/a`` to round-off. ``None`` for any other form (the caller verifies the root)."""
    try:
        poly = sp.Poly(sp.expand(form - y), x)
    except sp.PolynomialError:
        return None
    if poly.degree() != 3:
        return None
    c3, c2, c1, c0 = poly.all_coeffs()
    if c2 != 0 or c1 == 0:
        return None
    a, c = c1 / c3, -c0 / c3
    return 2 * sp.sqrt(a / 3) * sp.sinh(sp.asinh(c / 2 * (3 / a) ** sp.Rational(3, 2)) / 3)


def _solve_one(form, expr, x, y, parameters=()):
    """Solve ``form = y`` for ``x``; return ``(root, why)`` with a root verified on ``expr`` (an odd cubic's in
    the hyperbolic form, :func:`_odd_cubic_root`, where it holds)."""
    if _transcendental_knot(form, x):
        return None, f"the momentum map is transcendental in {x}: no closed form attempted"
    cubic = _odd_cubic_root(form, x, y)
    if cubic is not None and _verify_root([expr], [x], [y], {x: cubic}, parameters):
        return cubic, ""
    try:
        roots = sp.solve(sp.Eq(form, y), x, dict=True)
    except (NotImplementedError, ValueError):
        return None, f"could not solve for {x} in closed form"
    good = [r for r in roots if _verify_root([expr], [x], [y], r, parameters)]
    if not good:
        undeclared = [p for p in parameters if _declared_sign(p) == 0 and p in expr.free_symbols]
        signed = [sp.Symbol(p.name, positive=True) for p in undeclared]
        if undeclared and any(_verify_root([expr.xreplace(dict(zip(undeclared, signed)))], [x], [y],
                                           {k: v.xreplace(dict(zip(undeclared, signed))) for k, v in r.items()},
                                           signed) for r in roots):
            names = ", ".join(map(str, undeclared))
            return None, (f"no closed-form branch of the inverse for {x} {BOTH_SIGNS} of {names} "
                          f"(undeclared): declare the sign (e.g. sp.Symbol('{undeclared[0]}', positive=True)) "
                          "for a closed form")
        if roots:  # closed-form roots exist, but none is the inverse everywhere: the map folds (p = v + c v²)
            return None, (f"no single closed-form branch of the inverse for {x}: the momentum map has {len(roots)} "
                          "roots, none of which inverts it at every sampled value of the velocities and parameters "
                          "(where the map folds, ∂p/∂v = 0, it has no single inverse; elsewhere its real inverse "
                          "may be a different root in different regions)")
        return None, f"no closed-form branch of the inverse for {x}"
    return good[0][x], ""


def coupled_blocks(matrix: sp.Matrix) -> list:
    """The index blocks of a square matrix's coupling pattern (``i`` and ``j`` coupled when ``M_ij`` or
    ``M_ji`` is non-zero), each sorted, in order of their first index: the diagonal blocks of ``M`` up to
    a permutation."""
    n = matrix.rows
    block_of = list(range(n))

    def root(i):
        while block_of[i] != i:
            i = block_of[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if matrix[i, j] != 0 or matrix[j, i] != 0:
                block_of[root(j)] = root(i)
    blocks: dict = {}
    for i in range(n):
        blocks.setdefault(root(i), []).append(i)
    return sorted(blocks.values())


def invert_map(exprs, xs, ys, parameters=(), jacobian: sp.Matrix | None = None) -> tuple[list | None, str]:
    """Solve ``ys = exprs(xs)`` for ``xs`` in closed form.

    Returns ``(solution, how)``; ``solution`` is ``None`` when no closed form
    is attempted or found, and ``how`` says why.
    """
    n = len(xs)
    jac = jacobian if jacobian is not None else sp.Matrix(exprs).jacobian(list(xs))
    if not (jac.free_symbols & set(xs)):
        offset = sp.Matrix(exprs).xreplace({x: 0 for x in xs})
        rhs = sp.Matrix(ys) - offset
        if _is_diagonal(jac):
            if any(jac[i, i] == 0 for i in range(n)):
                return None, "the momentum map is singular"
            return [rhs[i] / jac[i, i] for i in range(n)], "affine, diagonal"
        blocks = coupled_blocks(jac)
        largest = max(len(b) for b in blocks)
        if largest > MAX_DENSE_INVERSE:
            return None, (f"the velocity map is affine with a coupled {largest}x{largest} block; "
                          f"its inverse is not built symbolically above {MAX_DENSE_INVERSE}x{MAX_DENSE_INVERSE}")
        solution = [None] * n
        for block in blocks:  # M is block-diagonal: each block inverted on its own (Euler angles: 1 + 2)
            part = jac.extract(block, block)
            det = part.det()
            if det == 0:
                return None, "the momentum map is singular"
            adjugate = part.adjugate()  # M⁻¹ = adj(M) / det M: minors of at most 2x2, no nested fractions
            for row, i in enumerate(block):
                solution[i] = sp.together(sum(adjugate[row, col] * rhs[j] for col, j in enumerate(block)) / det)
        return solution, ("affine, dense (adj M / det M)" if len(blocks) == 1 else
                          f"affine, block-diagonal ({' + '.join(str(len(b)) for b in blocks)}, adj / det per block)")
    if _is_diagonal(jac):
        solution = []
        for x, y, e in zip(xs, ys, exprs):
            root, why = _solve_one(e, e, x, y, parameters)
            if root is None:
                # Unsimplified forms such as m**2*sqrt(1/(m**2 + p**2)) + ... solve only
                # onto branches like m*sqrt(v**2/(1 - v**2)) = m*|v|/sqrt(1 - v**2),
                # valid for one sign of v; the simplified form gives the global branch.
                tidied = tidy(e)
                if tidied != e:
                    root, why = _solve_one(tidied, e, x, y, parameters)
            if root is None:
                return None, why
            solution.append(root)
        return solution, "decoupled, solved per coordinate"
    isotropic = _isotropic_inverse(exprs, xs, ys, parameters)
    if isotropic is not None:
        return isotropic, "isotropic: y = b + (x − a) g(|x − a|²), solved for |x − a|² once"
    return None, "the momentum map is coupled and non-linear in the velocities"


def _reciprocal_roots(expr):
    """``√B`` written ``1/√(1/B)`` where ``1/B`` is the shorter (``√(−1/(w − 1))`` → ``1/√(1 − w)``): equal
    where ``B > 0``."""
    def flipped(power):
        inverse = sp.factor(1 / power.base)
        return 1 / sp.sqrt(inverse) if sp.count_ops(inverse) <= sp.count_ops(power.base) and not (
            sp.fraction(sp.together(inverse))[1].free_symbols) else power
    return expr.replace(lambda e: e.is_Pow and e.exp == sp.S.Half, flipped)


#: seconds each step of :func:`_isotropic_inverse` may take (a map that is not isotropic costs a few of them)
ISOTROPIC_SECONDS = 0.5


def _over_common_roots(expr):
    """The terms of ``expr`` multiplied out and grouped by denominator, each group's numerator factored against its
    root: ``(m w − m)/√(1 − w) − k x²/2`` becomes ``−m √(1 − w) − k x²/2`` (the relativistic L, whose
    mass matrix and det then stay small; built raw, a 3-D one made SymPy's det run for minutes)."""
    grouped = over_shared_denominators(sp.expand(expr))
    terms = []
    for term in sp.Add.make_args(grouped):
        numerator, denominator = sp.fraction(term)
        rooted = any(p.is_Pow and p.exp.is_Rational and not p.exp.is_integer for p in sp.Mul.make_args(denominator))
        terms.append(sp.powsimp(sp.factor(numerator) / denominator) if rooted else term)
    return sp.Add(*terms)


def _isotropic_inverse(exprs, xs, ys, parameters=()) -> list | None:
    """``xs`` from ``ys = b + (xs − a)·g(|xs − a|²)`` with ``a``, ``b`` and the scalar ``g`` free of the other
    directions (a relativistic particle in the plane or in space: ``H = √(m² + |p − e A|²)`` gives
    ``v = (p − e A)/√(m² + |p − e A|²)``, ``L = −m √(1 − |v|²) + e A·v`` gives ``p = e A + m v/√(1 − |v|²)``):
    ``|y − b|² = s g(s)²`` is one scalar equation for ``s = |x − a|²``, and ``x = a + (y − b)/g(s)`` (theory §4).
    ``None`` when the map is not of that form or no root inverts it at random points."""
    n = len(xs)
    if n < 2 or n > 3:
        return None
    at_rest = {x: 0 for x in xs}

    def shifted():  # a: where each component of the map vanishes, when that point is free of every x
        shifts = []
        for x, e in zip(xs, exprs):
            roots = within(ISOTROPIC_SECONDS, sp.solve, sp.numer(sp.together(e)), x)
            free = [r for r in (roots or []) if not (r.free_symbols & set(xs))]
            if len(free) != 1:
                return None
            shifts.append(free[0])
        return [sp.S.Zero] * n, shifts

    us = [sp.Dummy(f"u{i}", real=True) for i in range(n)]
    s, w = sp.Dummy("s", positive=True), sp.Dummy("w", positive=True)
    for form in (lambda: ([e.xreplace(at_rest) for e in exprs], [sp.S.Zero] * n), shifted):
        b_a = form()
        if b_a is None:
            continue
        b, a = b_a
        moved = {x: ai + u for x, ai, u in zip(xs, a, us)}
        ratios = [within(ISOTROPIC_SECONDS, sp.simplify, ((e - bi) / u).xreplace(moved))
                  for e, bi, u in zip(exprs, b, us)]
        if any(r is None for r in ratios) or any(within(ISOTROPIC_SECONDS, sp.simplify, r - ratios[0]) != 0
                                                 for r in ratios[1:]):
            continue
        g = ratios[0]
        if any(within(ISOTROPIC_SECONDS, sp.simplify, us[0] * sp.diff(g, u) - u * sp.diff(g, us[0])) != 0
               for u in us[1:]):
            continue  # g reads a direction, not only |x − a|²
        g_of_s = g.xreplace({us[0]: sp.sqrt(s), **{u: 0 for u in us[1:]}})
        roots = within(ISOTROPIC_SECONDS, sp.solve, sp.Eq(s * g_of_s**2, w), s) or []
        norm = sum(((y - bi) ** 2 for y, bi in zip(ys, b)), sp.S.Zero)
        for root in roots:
            scale = g_of_s.xreplace({s: root}).xreplace({w: norm})
            plain = {x: ai + (y - bi) / scale for x, ai, y, bi in zip(xs, a, ys, b)}
            # √(−1/(w − 1)) as 1/√(1 − w): the same inside the real domain |v| < 1, which the check below samples
            denested = {x: tidy(_reciprocal_roots(e)) for x, e in plain.items()}
            for candidate in (denested, {x: tidy(e) for x, e in plain.items()}):
                if _verify_root(exprs, xs, ys, candidate, parameters):
                    return [candidate[x] for x in xs]
    return None


def momenta(lagrangian, velocities) -> list[sp.Expr]:
    """Canonical momenta ``p_i = ∂L/∂v_i`` (theory §1)."""
    return [sp.diff(lagrangian, v) for v in velocities]


#: seconds :func:`tidy` gives ``sp.simplify`` (ten nested sines of 30 ops ran for minutes)
TIDY_SECONDS = 2.0


def tidy(expr: sp.Expr, budget: int = 150) -> sp.Expr:
    """Simplify small expressions only, within :data:`TIDY_SECONDS` (DESIGN: never simplify big ones by
    default)."""
    if sp.count_ops(expr) > budget:
        return expr
    simpler = within(TIDY_SECONDS, sp.simplify, expr)
    return simpler if simpler is not None and sp.count_ops(simpler) <= sp.count_ops(expr) else expr


def hamiltonian(lagrangian, velocities, momentum_symbols, parameters=(), p_of_v=None, mass=None):
    """``H = p·v − L`` with ``v(q, p, t)`` from :func:`invert_map`.

    Returns ``(H, velocity_map, how)``; ``H`` and the map are ``None`` when the
    velocities cannot be solved for in closed form.
    """
    p_of_v = p_of_v if p_of_v is not None else momenta(lagrangian, velocities)
    v_of_p, how = invert_map(p_of_v, velocities, momentum_symbols, parameters, mass)
    if v_of_p is None:
        return None, None, how
    subs = dict(zip(velocities, v_of_p))
    h = sum(p * v for p, v in zip(momentum_symbols, v_of_p)) - lagrangian.xreplace(subs)
    h = tidy(sp.expand(h) if sp.count_ops(h) < 150 else h)
    if how.startswith("affine"):
        h = min((h, _affine_transform(lagrangian, velocities, p_of_v, momentum_symbols, v_of_p)), key=sp.count_ops)
    return h, [tidy(v) for v in v_of_p], how


def _affine_transform(f, xs, y_of_x, ys, x_of_y):
    """The Legendre transform ``y·x − f`` of an ``f`` quadratic in ``xs``, whose map ``y = A x + c`` is affine:
    ``½ (y − c)·x(y) − f|x=0`` (theory §11), with no product of inverses. Both ways: H of L (x = v, y = p) and
    L of H (x = p, y = v)."""
    at_rest = {x: 0 for x in xs}
    quadratic = sum((y - yx.xreplace(at_rest)) * x for y, yx, x in zip(ys, y_of_x, x_of_y)) / 2
    return quadratic - f.xreplace(at_rest)


def _singular_hessian_note(h, ps, names: dict) -> str:
    """``": det ∂²H/∂p² = … vanishes where p = 0 …"`` when the Hessian of ``H`` in the momenta has a factor that
    reads them (e.g. ``H = p⁴/4``: ``3 p²``), the physical obstacle to ``v(p)``; ``""`` otherwise (theory §11)."""
    if len(ps) > 3:
        return ""
    det = sp.factor(sp.hessian(h, ps).det(method="berkowitz"))
    numerator, denominator = sp.fraction(det)
    def vanishes_somewhere(f):  # m² + p² with m > 0 is never 0 for real momenta: no obstacle there
        return bool(f.free_symbols & set(ps)) and as_real(f)[0].is_zero is not False
    zeros, poles = ([f for f in distinct_factors(part) if vanishes_somewhere(f)] for part in (numerator, denominator))
    if not zeros and not poles:
        return ""
    shown = lambda e: str(e.xreplace(names))  # noqa: E731
    where = lambda factors: " or ".join(f"{shown(f)} = 0" for f in factors)  # noqa: E731
    if zeros:
        return (f": det ∂²H/∂p² = {shown(det)} vanishes where {where(zeros)}, so the Legendre transform is singular "
                "there and v(p) has no differentiable inverse")
    # only poles: the Hessian blows up at the edge of H's domain (a saturating element), not a singular transform
    return f": det ∂²H/∂p² = {shown(det)} is infinite where {where(poles)}, the edge of the momenta H is defined for"


def _asinh_form(expr: sp.Expr) -> sp.Expr:
    """``log(z + √(z² + 1))`` written ``asinh(z)`` and ``log((1 + z)/(1 − z))`` written ``2 atanh(z)`` (sums of
    logs combined first): how ``solve`` inverts the velocity map of a ``cosh`` kinetic energy (``v = sinh(p/m)``)
    or a ``log cosh`` one (``v = a tanh p``). With ``asinh`` in the momentum, ``cosh(asinh z)`` and
    ``sinh(asinh z)`` evaluate to ``√(z² + 1)`` and ``z``, so L, M and the learning rule read as a physicist writes
    them (theory §4); the caller keeps the form only where it inverts the map at random points."""
    if not expr.has(sp.log):
        return expr

    def named(log):
        arg = log.args[0]
        z = within(TIDY_SECONDS, sp.simplify, (arg - 1 / arg) / 2)  # arg = z + √(z² + 1) ⇔ arg − 1/arg = 2z
        if z is not None and not z.has(sp.log) and sp.count_ops(z) < sp.count_ops(arg):
            return sp.asinh(z)
        z = within(TIDY_SECONDS, sp.simplify, (arg - 1) / (arg + 1))  # arg = (1 + z)/(1 − z): log arg = 2 atanh z
        if z is not None and not z.has(sp.log) and sp.count_ops(z) < sp.count_ops(arg):
            return 2 * sp.atanh(z)
        return log

    def combined(add):  # log(z + √(a² + z²)) − log(a): the logs of a sum, with coefficients ±1, as one
        logs = [t for t in add.args if isinstance(t, sp.log) or (t.is_Mul and len(t.args) == 2 and t.args[0] == -1
                                                                 and isinstance(t.args[1], sp.log))]
        if len(logs) < 2:
            return add
        one = sp.log(sp.Mul(*[t.args[0] if isinstance(t, sp.log) else 1 / t.args[1].args[0] for t in logs]))
        return add.func(*[t for t in add.args if t not in logs]) + named(one)

    rewritten = expr.replace(  # log √X = ½ log X on the principal branches, for every X ≠ 0
        lambda e: isinstance(e, sp.log) and e.args[0].is_Pow and e.args[0].exp == sp.S.Half,
        lambda e: sp.log(e.args[0].base) / 2)
    rewritten = rewritten.replace(lambda e: isinstance(e, sp.Add) and e.has(sp.log), combined)
    rewritten = rewritten.replace(lambda e: isinstance(e, sp.log), named)
    return rewritten if rewritten.has(sp.asinh, sp.atanh) and sp.count_ops(rewritten) < sp.count_ops(expr) else expr


def lagrangian_from_hamiltonian(h, momentum_objects, velocity_objects, parameters=()):
    """Inverse transform ``L = p·v − H`` with ``p(q, v, t)`` solved from ``v = ∂H/∂p``."""
    ps = [sp.Dummy(f"p{i}") for i in range(len(momentum_objects))]
    vs = [sp.Dummy(f"v{i}") for i in range(len(velocity_objects))]
    h_d = h.xreplace(dict(zip(momentum_objects, ps)))
    v_of_p = [sp.diff(h_d, p) for p in ps]
    if all(e == 0 for e in v_of_p):
        raise ModelError("the Hamiltonian does not depend on the momenta")
    if all(sp.diff(e, p) == 0 for e in v_of_p for p in ps):  # H = a(q)·p + V: v = a(q) names no p at all
        raise ModelError("the Hamiltonian is linear in the momenta (v = ∂H/∂p does not depend on p): a first-order "
                         "system, q̇ = f(q), with no mass; its Lagrangian is degenerate (det M ≡ 0), and symglep "
                         "steps second-order systems only")
    p_of_v, how = invert_map(v_of_p, ps, vs, parameters)
    if p_of_v is None:
        names = {d: sp.Symbol(getattr(m, "name", None) or str(m)) for d, m in zip(ps, momentum_objects)}
        for dummy, user in names.items():
            how = how.replace(str(dummy), str(user))
        if BOTH_SIGNS in how:  # a branch exists for a declared sign: say that alone
            raise ModelError(f"cannot invert v = ∂H/∂p in closed form: {how}")
        raise ModelError(f"cannot invert v = ∂H/∂p in closed form ({how}){_singular_hessian_note(h_d, ps, names)}; "
                         "declare the Lagrangian instead")
    named = [_asinh_form(p) for p in p_of_v]
    if named != list(p_of_v) and _verify_root(v_of_p, ps, vs, dict(zip(ps, named)), parameters):
        p_of_v = named
    subs = dict(zip(ps, p_of_v))
    lag = sum(p * v for p, v in zip(p_of_v, vs)) - h_d.xreplace(subs)
    lag = tidy(sp.expand(lag) if sp.count_ops(lag) < 150 else lag)
    if how.startswith("isotropic"):  # H(p(v)) holds √(m² + m² w/(1 − w)) = m √(−1/(w − 1)): one root of 1 − w
        lag = tidy(_over_common_roots(_reciprocal_roots(lag)))
    if how.startswith("affine"):
        lag = min((lag, tidy(_affine_transform(h_d, ps, v_of_p, vs, p_of_v))), key=sp.count_ops)
    return lag.xreplace(dict(zip(vs, velocity_objects))), how
