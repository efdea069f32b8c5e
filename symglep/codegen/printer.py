"""Printing the maths of a :class:`~symglep.discrete.NumericFunction` (DESIGN: printers, not string pasting).

Each function becomes a Numba-compiled Python function that unpacks its
argument vectors into local scalars (named by the sanitiser), evaluates the
common subexpressions of *all* its outputs together (one ``cse`` call), and
writes the outputs into caller-provided arrays.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..discrete import NumericFunction
from .names import Namer, safe_comment


class NumbaPrinter(PythonCodePrinter):
    """Python printer using ``math`` functions and the sanitised local names."""

    def __init__(self, names: dict, settings=None):
        super().__init__(settings or {"fully_qualified_modules": True, "standard": "python3"})
        self._names = names

    def _print_Symbol(self, expr):
        if expr in self._names:
            return self._names[expr]
        raise KeyError(f"symbol {expr} has no generated name")

    _print_Dummy = _print_Symbol

    def _print_Float(self, expr):
        return repr(float(expr))


def common_subexpressions(outputs: list):
    """One ``cse`` over all output expressions of a function (deterministic order)."""
    flat = [sp.sympify(e) for _, exprs in outputs for e in exprs]
    temps = sp.numbered_symbols("w", cls=sp.Symbol)
    replacements, reduced = sp.cse(flat, symbols=temps, order="canonical")
    return replacements, reduced


def op_count(fn: NumericFunction) -> int:
    """Operations after cse: the cost of one call of ``fn``."""
    replacements, reduced = common_subexpressions(fn.outputs)
    return int(sum(sp.count_ops(e) for _, e in replacements) + sum(sp.count_ops(e) for e in reduced))


def python_function(fn: NumericFunction, prefix: str = "f_") -> str:
    """Source of one ``@njit`` function ``f_<name>(args..., outs...)``."""
    namer = Namer("s_")
    replacements, reduced = common_subexpressions(fn.outputs)
    used = set()
    for e in [r for _, r in replacements] + list(reduced):
        used |= e.free_symbols
    names = {}
    lines = []
    for arg, symbols in fn.args:
        for i, s in enumerate(symbols):
            if s in used:
                names[s] = namer(s, s.name)
                source = arg if arg in fn.scalars else f"{arg}[{i}]"
                lines.append(f"    {names[s]} = {source}")
    for w, _ in replacements:
        names[w] = namer(w, f"w{w.name[1:]}").replace("s_", "t_", 1)
    printer = NumbaPrinter(names)
    for w, e in replacements:
        lines.append(f"    {names[w]} = {printer.doprint(e)}")
    k = 0
    for out, exprs in fn.outputs:
        for i in range(len(exprs)):
            lines.append(f"    out_{out}[{i}] = {printer.doprint(reduced[k])}")
            k += 1
    args = [a for a, _ in fn.args] + [f"out_{o}" for o, _ in fn.outputs]
    head = ["@njit(cache=True)", f"def {prefix}{fn.name}({', '.join(args)}):",
            f'    """{safe_comment(fn.doc)}"""']
    if not lines:
        lines = ["    return"]
    return "\n".join(head + lines) + "\n"
