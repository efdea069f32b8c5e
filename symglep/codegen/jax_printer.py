"""Printing a :class:`~symglep.discrete.NumericFunction` as a ``jax.numpy`` function (the JAX target).

Each function becomes a plain Python function of JAX arrays: it unpacks its argument vectors into
local scalars (named by the sanitiser), evaluates the common subexpressions of all its outputs
together (one ``cse`` call, as the Numba printer does) and returns its output vectors, built in
the dtype of its first argument. Nothing is compiled here: the functions are traced by
``jax.jit`` inside the passes that call them, so they run on any JAX device.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import JaxPrinter

from ..discrete import NumericFunction
from .names import safe_comment
from .printer import ReportsUnprintable, python_body


class JaxFunctionPrinter(ReportsUnprintable, JaxPrinter):
    """``jax.numpy`` printer over the sanitised local names; floats exactly, Piecewise as nested
    ``jnp.where`` (element-wise and traceable), ``erf`` from ``jax.scipy.special``."""

    target = "JAX"

    def __init__(self, names: dict):
        super().__init__({"fully_qualified_modules": True})
        self._names = names

    def _print_Symbol(self, expr):
        if expr in self._names:
            return self._names[expr]
        raise KeyError(f"symbol {expr} has no generated name")

    _print_Dummy = _print_Symbol

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Pow(self, expr, rational=False):
        """Powers as the Numba printer writes them (``1/x``, ``x**(-2)`` with an integer exponent, which
        JAX evaluates by multiplication): NumPy's printer would write ``x**(-1.0)``, a float power."""
        return self._hprint_Pow(expr, rational=rational, sqrt="jax.numpy.sqrt")

    def _print_erf(self, expr):
        return f"jax.scipy.special.erf({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        """``(e1, c1), (e2, c2), …`` → ``where(c1, e1, where(c2, e2, …))``; the last condition must be
        True (SymPy's rewrites of kinks always end with it)."""
        *branches, (last, cond) = expr.args
        if cond != sp.true:
            raise ValueError(f"a Piecewise without a default branch cannot be printed: {expr}")
        out = self._print(last)
        for e, c in reversed(branches):
            out = f"jax.numpy.where({self._print(c)}, {self._print(e)}, {out})"
        return out


def jax_function(fn: NumericFunction, prefix: str = "f_") -> str:
    """Source of ``def f_<name>(args...)`` returning its outputs (one vector, or a tuple of them),
    each a ``jnp`` vector of the dtype of the function's first argument."""
    lines, printer, reduced = python_body(fn, JaxFunctionPrinter)
    ref = fn.args[0][0]
    outs, k = [], 0
    for _, exprs in fn.outputs:
        entries = [printer.doprint(reduced[k + i]) for i in range(len(exprs))]
        k += len(exprs)
        outs.append(f"_vec({ref}, [{', '.join(entries)}])")
    lines.append(f"    return {outs[0]}" if len(outs) == 1 else f"    return ({', '.join(outs)})")
    head = [f"def {prefix}{fn.name}({', '.join(a for a, _ in fn.args)}):",
            f'    """{safe_comment(fn.doc)}"""']
    return "\n".join(head + lines) + "\n"
