"""Small symbolic helpers: zero testing by evaluation, and random sample points.

Deciding ``expr ≡ 0`` symbolically means simplifying, which is slow on large
expressions and unreliable with trigonometry. symglep instead evaluates the
expression at a few seeded random points with 30 significant digits: an
expression that is not identically zero is non-zero at random points with
probability one, and an identically zero one evaluates to round-off
(~1e-28) there. A value that small is evaluated again with twice the digits:
round-off shrinks with them, a true value (a mass of 1e-20 kg in SI units)
does not. An expression with a kink or a switch (``Max``, ``Piecewise``,
``Heaviside``, ``Abs``, ...) is also evaluated at points of every scale up to
1e3, so that a switch at ``x = 1/2`` or ``t = 1`` is seen from both sides, and
its :func:`surrogate` (each switch replaced by a polynomial stand-in that reads
the same arguments everywhere) must vanish too: a term confined to a thin band
or a time window, which no sample may hit, still counts (theory §11, "Deciding ≡ 0").
"""

from __future__ import annotations

import math
import random

import sympy as sp
from sympy.core.function import AppliedUndef

PRECISION = 30
ZERO_TOLERANCE = 1e-18
N_SAMPLES = 3
#: extra points of every scale (10^-1 ... 10^3) for expressions with a kink or a switch
WIDE_SAMPLES = 8
#: functions whose value switches where their argument crosses a threshold
SWITCHES = (sp.Piecewise, sp.Max, sp.Min, sp.Heaviside, sp.Abs, sp.sign, sp.floor, sp.ceiling, sp.DiracDelta)
#: a value that shrinks by this factor or more when evaluated with twice the digits is round-off
ROUND_OFF_SHRINKS = 1e-10


def _atoms(exprs) -> list[sp.Basic]:
    atoms: set = set()
    for e in exprs:
        e = sp.sympify(e)
        atoms |= e.atoms(AppliedUndef)
        atoms |= {s for s in e.free_symbols}
    return sorted(atoms, key=sp.default_sort_key)


def sample_values(exprs, seed: int = 0, fixed: dict | None = None, wide: bool = False) -> dict:
    """A random numeric value for every symbol and function of time in ``exprs``.

    Symbols assumed positive (and every symbol whose name starts like a
    physical constant) get values in [0.5, 2]; all others in [-0.45, 0.45],
    small enough to stay inside domains such as ``sqrt(1 - v**2)``.
    ``wide``: magnitudes log-uniform in [0.1, 1000] instead (at the declared
    signs), to reach the far side of a switch. ``fixed`` values (e.g. model
    constants) are kept.
    """
    rng = random.Random(seed)
    fixed = dict(fixed or {})
    values = {}
    for atom in _atoms(exprs):
        positive = getattr(atom, "is_positive", False) or getattr(atom, "is_nonnegative", False)
        negative = getattr(atom, "is_negative", False)
        if atom in fixed:
            values[atom] = sp.Float(fixed[atom], PRECISION)
        elif wide:
            size = 10 ** rng.uniform(-1.0, 3.0)
            sign = 1 if positive else -1 if negative else rng.choice((-1, 1))
            values[atom] = sp.Float(sign * size, PRECISION)
        elif positive:
            values[atom] = sp.Float(rng.uniform(0.5, 2.0), PRECISION)
        elif negative:
            values[atom] = sp.Float(-rng.uniform(0.5, 2.0), PRECISION)
        else:
            values[atom] = sp.Float(rng.uniform(-0.45, 0.45), PRECISION)
    return values


def evaluate(expr, values: dict, digits: int = PRECISION) -> complex:
    """Evaluate ``expr`` at ``values`` with ``digits`` significant digits (the values and the expression's own
    floating-point numbers carried at that precision too)."""
    expr = sp.sympify(expr)
    if digits != PRECISION:
        values = {k: sp.Float(v, digits) for k, v in values.items()}
        expr = expr.xreplace({f: sp.Float(f, digits) for f in expr.atoms(sp.Float)})
    functions = {k: v for k, v in values.items() if isinstance(k, AppliedUndef)}
    number = expr.xreplace(functions).xreplace(values).evalf(digits)
    try:
        return complex(number)
    except (TypeError, OverflowError):
        return complex("nan")


def _zero_at(expr, values: dict, small: float) -> bool | None:
    """Whether ``expr`` is zero at ``values``: a value below ``small`` is evaluated again with twice the digits
    and is zero when it shrinks with them (round-off), not when it stays (a true value, however small).
    ``None`` where the value is not a finite number."""
    value = evaluate(expr, values)
    if not (math.isfinite(value.real) and math.isfinite(value.imag)):
        return None
    if value == 0:
        return True
    if not abs(value) < small:
        return False
    again = evaluate(expr, values, 2 * PRECISION)
    return abs(again) <= ROUND_OFF_SHRINKS * abs(value)


def _condition(c) -> sp.Expr:
    """A relational condition as the difference of its sides (a conjunction or disjunction: their sum; True,
    False: 0): a polynomial that reads what the condition reads."""
    if isinstance(c, sp.core.relational.Relational):
        return c.lhs - c.rhs
    if isinstance(c, (sp.And, sp.Or, sp.Not, sp.Xor)):
        return sp.Add(*[_condition(a) for a in c.args])
    return sp.S.Zero


def _pairs(args) -> sp.Expr:
    return sp.Add(*[(a - b) ** 2 for k, a in enumerate(args) for b in args[k + 1:]])


#: each switch's stand-in: it reads the same arguments as the switch, everywhere (no flat region, no threshold),
#: and keeps the parity that matters for time reversal (|v| even, sign(v) odd)
_STAND_INS = {
    sp.Heaviside: lambda a, *rest: a,
    sp.DiracDelta: lambda a, *rest: 1 + a ** 2,  # a switch's derivative: not zero where it acts
    sp.sign: lambda a: a,
    sp.floor: lambda a: a,
    sp.ceiling: lambda a: a,
    sp.Abs: lambda a: a ** 2,
    sp.Max: lambda *args: sp.Add(*args) / len(args) + _pairs(args) / 2,  # max(a, b) = (a + b)/2 + |a - b|/2
    sp.Min: lambda *args: sp.Add(*args) / len(args) - _pairs(args) / 2,
    sp.Piecewise: lambda *pairs: sp.Add(*[e * (1 + _condition(c)) for e, c in pairs]),
}


def surrogate(expr) -> sp.Expr:
    """``expr`` with every switch (:data:`SWITCHES`) replaced by a polynomial stand-in in its arguments: a zero test
    of the stand-in sees a term however thin its band (0.01 < x < 0.02) or late its window, which a test at sampled
    points may miss. Used only to decide ``≡ 0`` (a stand-in may call a true identity of switches non-zero,
    |x|² − x², which only makes a verdict the cautious one); never for the equations."""
    expr = sp.sympify(expr)
    for kind, stand_in in _STAND_INS.items():
        expr = expr.replace(lambda e, kind=kind: isinstance(e, kind), lambda e, stand_in=stand_in: stand_in(*e.args))
    return expr


def is_zero(expr, fixed: dict | None = None, samples: int = N_SAMPLES) -> bool:
    """Whether ``expr`` vanishes identically, judged at ``samples`` random points (:func:`sample_values`:
    symbols at their declared signs, the others of either sign), and for an expression with a switch
    (:data:`SWITCHES`) also at :data:`WIDE_SAMPLES` points of every scale, where only a finite non-zero
    value counts (a wide point may leave a domain such as ``sqrt(1 - v**2)``)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    if not expr.free_symbols and not expr.atoms(AppliedUndef):
        return abs(complex(expr.evalf(PRECISION))) < ZERO_TOLERANCE
    for seed in range(samples):
        if not _zero_at(expr, sample_values([expr], seed=seed, fixed=fixed), ZERO_TOLERANCE):  # also catches nan
            return False
    if expr.has(*SWITCHES):
        for seed in range(WIDE_SAMPLES):
            if _zero_at(expr, sample_values([expr], seed=seed, fixed=fixed, wide=True), math.inf) is False:
                return False
        return is_zero(surrogate(expr), fixed, samples)
    return True


#: numbers no physical model holds: complex, infinite or undefined
NOT_REAL_NUMBERS = (sp.I, sp.zoo, sp.nan, sp.oo, sp.S.NegativeInfinity)


def not_real_number(expr) -> sp.Basic | None:
    """The first of :data:`NOT_REAL_NUMBERS` that ``expr`` holds, or ``None`` (a model refuses them: SymPy folds
    ``oo*k`` into ``oo`` and ``nan*k*x`` into ``nan``, so the symbols they hide are lost too)."""
    expr = sp.sympify(expr)
    return next((n for n in NOT_REAL_NUMBERS if expr.has(n)), None)


def node_count(expr, stop_after: int | None = None) -> int:
    """Nodes of the expression tree of ``expr``; counting stops once it passes ``stop_after`` (a cheap size
    test: a huge tree is not walked to the end, unlike ``count_ops``)."""
    nodes = 0
    for _ in sp.preorder_traversal(expr):
        nodes += 1
        if stop_after is not None and nodes > stop_after:
            break
    return nodes


def op_count(exprs) -> int:
    """Total number of operations of a list (or matrix) of expressions, without sharing."""
    if isinstance(exprs, sp.MatrixBase):
        exprs = list(exprs)
    return int(sum(sp.count_ops(e) for e in exprs))


def canonical_srepr(expr) -> str:
    """``srepr`` with every plain Symbol spelled by its name and its full, sorted assumptions.

    SymPy's ``srepr`` prints the assumptions a Symbol was *created* with, and its caches may hand
    back an equal expression built from an equal Symbol spelled another way (``Symbol('l',
    positive=True)`` or the same symbol with every derived assumption written out), depending on
    what the process did before; the fingerprint must not depend on that history.

    The re-spelled expression is not re-evaluated: its terms keep the canonical order of ``expr``,
    and SymPy asks no assumptions of the renamed symbols (log cosh of a sum of many assumption-free
    symbols costs seconds to evaluate).
    """
    expr = sp.sympify(expr)
    spelled = {s: sp.Symbol(f"{s.name}|" + ",".join(f"{k}={v}" for k, v in sorted(s.assumptions0.items())))
               for s in expr.atoms(sp.Symbol) if type(s) is sp.Symbol}
    with sp.evaluate(False):
        return sp.srepr(expr.xreplace(spelled))


def linear_coefficients(expr, symbols) -> list | None:
    """``[∂expr/∂s for s in symbols]`` when ``expr = Σ_j s_j r_j`` is linear and homogeneous in
    ``symbols`` (no term without them, no product of two of them), else ``None``: a cost linear in its
    targets, whose coefficients are the readout (theory §12)."""
    symbols = list(symbols)
    expr = sp.expand(sp.sympify(expr))
    if not symbols or expr.subs({s: 0 for s in symbols}) != 0 or \
            any(sp.diff(expr, a, b) != 0 for a in symbols for b in symbols):
        return None
    return [sp.diff(expr, s) for s in symbols]


def tanh_quotients(expr):
    """``sinh(x)^a cosh(x)^-b`` → ``tanh(x)^min(a,b) …``: the same function, finite for every x.

    ``d/dx log cosh x`` comes out of SymPy as ``sinh(x)/cosh(x)``: evaluated as written it is
    ``inf/inf = NaN`` once ``|x|`` passes ~710 (float64), and it costs two libm calls where
    ``tanh`` costs one. Every printed expression passes through here (codegen.printer).
    """
    if not expr.has(sp.sinh):
        return expr

    def merge(term):
        powers = term.as_powers_dict()
        changed = False
        for base in [b for b in powers if isinstance(b, sp.sinh)]:
            cosh = sp.cosh(base.args[0])
            a, b = sp.S(powers[base]), -sp.S(powers.get(cosh, 0))  # a plain 0 when no cosh(x) is there
            if a.is_positive and b.is_positive:
                k = sp.Min(a, b)
                powers[base] -= k
                powers[cosh] = -(b - k)
                powers[sp.tanh(base.args[0])] = powers.get(sp.tanh(base.args[0]), 0) + k
                changed = True
        return sp.Mul(*[bb**e for bb, e in powers.items()]) if changed else term

    return expr.replace(lambda e: e.is_Mul, merge)


def distinct_factors(expr) -> list:
    """The distinct factors of ``expr``'s numerator (``sympy.factor_list``'s, without multiplicities), or its
    product's arguments when it is not a polynomial in its atoms (a det M with sines): where ``expr`` may
    vanish. A denominator's factors are where it is infinite, not zero, and are left out."""
    numerator = sp.fraction(expr)[0]
    try:
        return [f for f, k in sp.factor_list(numerator)[1] if k > 0]
    except (sp.PolynomialError, sp.GeneratorsNeeded, NotImplementedError):
        factors = [f.base if f.is_Pow and f.exp.is_positive else f for f in sp.Mul.make_args(numerator)
                   if not (f.is_Pow and f.exp.is_negative)]
        return list(dict.fromkeys(factors))
