"""Fast differentiation through SymEngine (SymPy's C++ core), with a pure-SymPy fallback.

Deriving the n-link pendulum spends most of its time inside ``sympy.diff`` on
large trees (mostly in SymPy's assumption system). SymEngine differentiates the
same expressions ~20× faster; results are converted back to SymPy with the
model's own symbols (so assumptions such as ``positive=True`` are kept). Any
expression SymEngine cannot represent falls back to ``sympy.diff``.
"""

from __future__ import annotations

import sympy as sp

try:  # pragma: no cover - exercised by the presence or absence of the package
    import symengine as _se
except ImportError:  # pragma: no cover
    _se = None


class Differentiator:
    """Differentiates one expression many times: ``d(wrt)``, ``d2(wrt1, wrt2)``."""

    def __init__(self, expr: sp.Expr):
        self.expr = sp.sympify(expr)
        self.symbols = {s.name: s for s in self.expr.free_symbols}
        self._se_expr = None
        if _se is not None and _smooth(self.expr):
            try:
                self._se_expr = _se.sympify(self.expr)
            except Exception:  # noqa: BLE001 - unsupported function: use sympy
                self._se_expr = None

    def _back(self, e) -> sp.Expr:
        out = sp.sympify(e)
        return out.xreplace({s: self.symbols[s.name] for s in out.free_symbols if s.name in self.symbols})

    def _se_symbol(self, s: sp.Symbol):
        return _se.Symbol(s.name)

    def raw_symbol(self, s: sp.Symbol):
        """``s`` in the differentiator's own representation (SymEngine or SymPy)."""
        return self._se_symbol(s) if self._se_expr is not None else s

    def grad(self, symbols) -> list:
        """``[∂expr/∂s for s in symbols]``."""
        if self._se_expr is None:
            return [sp.diff(self.expr, s) for s in symbols]
        return [self._back(self._se_expr.diff(self._se_symbol(s))) for s in symbols]

    def raw_grad(self, symbols) -> list:
        """Gradient kept in SymEngine form (or SymPy form when unavailable) for further differentiation."""
        if self._se_expr is None:
            return [sp.diff(self.expr, s) for s in symbols]
        return [self._se_expr.diff(self._se_symbol(s)) for s in symbols]

    def diff_raw(self, raw, symbol) -> object:
        if self._se_expr is None:
            return sp.diff(raw, symbol)
        return raw.diff(self._se_symbol(symbol))

    def to_sympy(self, raw) -> sp.Expr:
        return raw if self._se_expr is None else self._back(raw)


#: Functions whose derivatives SymEngine and SymPy agree on (smooth elementary functions). An
#: expression with any other function (Abs, sign, Heaviside, Max, Piecewise, a user's function) is
#: differentiated by SymPy: SymEngine leaves ``Derivative(Abs(x), x)`` unevaluated, and differentiates
#: ``Heaviside(x)`` to 0 where SymPy gives ``DiracDelta(x)``.
SMOOTH_FUNCTIONS = frozenset({
    sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc, sp.exp, sp.log, sp.sinh, sp.cosh, sp.tanh,
    sp.asin, sp.acos, sp.atan, sp.atan2, sp.asinh, sp.acosh, sp.atanh, sp.erf,
})


def _smooth(expr) -> bool:
    """Whether every function in ``expr`` is one of :data:`SMOOTH_FUNCTIONS`: only then does
    :class:`Differentiator` use SymEngine (it leaves other derivatives unevaluated, and differentiating
    ``Mod``, ``re`` or ``im`` crashed the process)."""
    return all(f.func in SMOOTH_FUNCTIONS for f in expr.atoms(sp.Function))


def gradient(expr, symbols) -> list:
    """``[∂expr/∂s for s in symbols]``: through SymEngine when every function in ``expr`` is one of
    :data:`SMOOTH_FUNCTIONS`, else (and for any entry SymEngine leaves unevaluated) by ``sympy.diff``."""
    expr = sp.sympify(expr)
    symbols = list(symbols)
    out = Differentiator(expr).grad(symbols)
    return [sp.diff(expr, s) if g.has(sp.Derivative, sp.Subs) else g for g, s in zip(out, symbols)]


def gradients(expr, *groups) -> list:
    """:func:`gradient` of ``expr`` with respect to each group of symbols, in one pass (one conversion
    to SymEngine): ``gradients(f, q, th)`` is ``[gradient(f, q), gradient(f, th)]``."""
    flat = gradient(expr, [s for group in groups for s in group])
    out, at = [], 0
    for group in groups:
        out.append(flat[at:at + len(group)])
        at += len(group)
    return out
