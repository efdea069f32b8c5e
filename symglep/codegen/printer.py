"""Printing the maths of a :class:`~symglep.discrete.NumericFunction` (DESIGN: printers, not string pasting).

Each function becomes a Numba-compiled Python function that unpacks its
argument vectors into local scalars (named by the sanitiser), evaluates the
common subexpressions of *all* its outputs together (one ``cse`` call), and
writes the outputs into caller-provided arrays.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from ..discrete import NumericFunction
from ..errors import SymglepError
from ..symbolic import tanh_quotients
from .names import Namer, safe_comment

#: functions analytic on the real line (holomorphic in a neighbourhood of it, where the model
#: evaluates them), each with its NumPy ufunc, which Numba evaluates for real and complex
#: arguments alike: the complex-step echo can run through them
ANALYTIC_FUNCTIONS = {"exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin",
                      "acos": "arccos", "atan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
                      "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh"}

# Model functions are called by the kernels only: no CPython entry (it costs about as much to compile
# as a small function). A Python caller gets a twin with one from symglep.kernel_module. The templates
# write the same decorator through the `private` macro of templates/numba/passes.j2 (a Jinja global).
KERNELS_ONLY = "@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True"


class UnprintableError(SymglepError):
    """The model uses a function that a target's code printer cannot write."""


class ReportsUnprintable:
    """Printer mixin: a function the target cannot print (``besselj``, ``zeta``, an unevaluated derivative)
    is a one-line :class:`UnprintableError` naming it and the target, not SymPy's exception."""

    target = "generated"

    def doprint(self, expr, assign_to=None):
        try:
            return super().doprint(expr, assign_to)
        except PrintMethodNotImplementedError as exc:
            what = str(exc).splitlines()[0].split(": ", 1)[-1]
            raise UnprintableError(
                f"the {self.target} kernels cannot evaluate {what} (no printer for it): write the model with "
                "elementary functions (powers, exp, log, trigonometric and hyperbolic functions and their "
                "inverses, erf) and kinks (Max, Min, Abs, sign, Heaviside, Piecewise)") from None
        except ValueError:
            pending = sorted({str(d.expr) for d in sp.sympify(expr).atoms(sp.Derivative)})
            if not pending:
                raise
            raise UnprintableError(f"the {self.target} kernels cannot evaluate the derivative of "
                                   f"{', '.join(pending[:3])}: it has no closed form") from None


class NumbaPrinter(ReportsUnprintable, PythonCodePrinter):
    """Python printer using ``math`` functions and the sanitised local names."""

    target = "Numba"

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


class NotAnalyticError(SymglepError):
    """The model uses a function without a complex extension: no complex-step echo (theory §5)."""


class ComplexPrinter(NumbaPrinter):
    """The printer of the complex-step kernels: NumPy's ufuncs instead of ``math`` (``math`` takes
    real numbers only, ``cmath`` complex ones only), so that every model function accepts real
    and complex arguments (theory §5, complex-step echo)."""

    def __init__(self, names: dict, settings=None):
        super().__init__(names, settings)
        for name, ufunc in ANALYTIC_FUNCTIONS.items():
            self.known_functions[name] = f"np.{ufunc}"

    def _print_Pow(self, expr, rational=False):
        """Integer powers as products: a complex ``z**n`` goes through exp(n log z), whose argument
        near the negative real axis is rounded to pi and loses the tiny imaginary part."""
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 0 < abs(int(exp)) <= 64:
            factor = self.parenthesize(base, PRECEDENCE["Pow"])
            product = "*".join([factor] * abs(int(exp)))
            return f"({product})" if exp > 0 else f"(1.0/({product}))"
        return self._hprint_Pow(expr, rational=rational, sqrt="np.sqrt")


def require_analytic(name: str, exprs) -> None:
    """Refuse (one line) the function ``name`` if its outputs ``exprs`` use something other than
    arithmetic, powers and :data:`ANALYTIC_FUNCTIONS`: abs, max, min, sign, piecewise, floor, ...
    have no complex extension, and erf (GELU) has no complex function in NumPy or Numba, so the
    complex step cannot run through them."""
    allowed = {getattr(sp, f) for f in ANALYTIC_FUNCTIONS}
    for e in exprs:
        for f in sp.preorder_traversal(sp.sympify(e)):
            if not (f.is_Atom or f.is_Add or f.is_Mul or f.is_Pow or f.func in allowed):
                shown = str(f) if len(str(f)) <= 80 else str(f)[:77] + "..."
                raise NotAnalyticError(
                    f"the complex-step echo needs analytic model functions, but {name} uses "
                    f"{f.func.__name__} ({shown}: not analytic, or, like erf, without a complex NumPy/Numba "
                    "function); use echo or echo4")


def common_subexpressions(outputs: list):
    """One ``cse`` over all output expressions of a function (deterministic order), quotients of
    ``sinh`` and ``cosh`` written as ``tanh`` first (:func:`symglep.symbolic.tanh_quotients`)."""
    flat = [tanh_quotients(sp.sympify(e)) for _, exprs in outputs for e in exprs]
    temps = sp.numbered_symbols("w", cls=sp.Symbol)
    replacements, reduced = sp.cse(flat, symbols=temps, order="canonical")
    return replacements, reduced


def op_count(fn: NumericFunction) -> int:
    """Operations after cse: the cost of one call of ``fn``."""
    replacements, reduced = common_subexpressions(fn.outputs)
    return int(sum(sp.count_ops(e) for _, e in replacements) + sum(sp.count_ops(e) for e in reduced))


def python_body(fn: NumericFunction, make_printer) -> tuple:
    """The body every Python-syntax target shares: the used argument entries unpacked into sanitised
    locals, one ``cse`` over all outputs, the temporaries assigned. Returns ``(lines, printer,
    reduced)``: the indented lines so far, the printer (``make_printer(names)``) and the reduced
    output expressions, for the target to write its outputs."""
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
    printer = make_printer(names)
    for w, e in replacements:
        lines.append(f"    {names[w]} = {printer.doprint(e)}")
    return lines, printer, reduced


def python_function(fn: NumericFunction, prefix: str = "f_", complex_step: bool = False) -> str:
    """Source of one ``@njit`` function ``f_<name>(args..., outs...)``; with ``complex_step`` it
    accepts complex arguments (:class:`ComplexPrinter`; refused for non-analytic maths)."""
    if complex_step:
        require_analytic(fn.name, [e for _, exprs in fn.outputs for e in exprs])
    lines, printer, reduced = python_body(fn, ComplexPrinter if complex_step else NumbaPrinter)
    k = 0
    for out, exprs in fn.outputs:
        for i in range(len(exprs)):
            lines.append(f"    out_{out}[{i}] = {printer.doprint(reduced[k])}")
            k += 1
    args = [a for a, _ in fn.args] + [f"out_{o}" for o, _ in fn.outputs]
    head = [KERNELS_ONLY + ")", f"def {prefix}{fn.name}({', '.join(args)}):",
            f'    """{safe_comment(fn.doc)}"""']
    if not lines:
        lines = ["    return"]
    return "\n".join(head + lines) + "\n"
