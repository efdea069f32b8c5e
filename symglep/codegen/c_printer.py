"""Printing the maths of a :class:`~symglep.discrete.NumericFunction` as portable C99.

Each function becomes a ``static void f_<name>(args..., outs...)`` that unpacks its
argument vectors into ``const real`` locals (named by the sanitiser), evaluates the
common subexpressions of *all* its outputs together (one ``cse`` call, as the Numba
printer does) and writes the outputs through ``restrict`` pointers. ``real`` is the
model's ``<model>_real`` (``float`` or ``double``, fixed at generation); for ``float``
the printer uses the ``f``-suffixed ``math.h`` functions and ``F`` literals, so no
expression is silently promoted to ``double``. Nothing but ``math.h`` is called.
"""

from __future__ import annotations

import keyword

import sympy as sp
from sympy.codegen.ast import float32, float64, real
from sympy.printing.c import C99CodePrinter

from ..discrete import NumericFunction
from .names import Namer, encode, safe_comment
from .printer import ReportsUnprintable, common_subexpressions

PRECISIONS = ("float64", "float32")

#: C99 keywords and the names ``math.h``/``stddef.h`` use (an API prefix must not be one).
C_RESERVED = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
_Bool _Complex _Imaginary size_t NULL real
""".split())


def c_api_prefix(model_name: str) -> str:
    """The prefix of every public C name of a model (``<prefix>_free``, ``<prefix>_real``, ...).

    It is the sanitiser's :func:`~symglep.codegen.names.encode` of the model name, so it holds
    only ``[A-Za-z0-9_]``; a name that would start with a digit or ``_`` (reserved in C), or
    that is a C keyword, gets the prefix ``m_``. At most 40 characters.
    """
    base = encode(model_name)[:40]
    if not base or not (base[0].isalpha()) or base in C_RESERVED or keyword.iskeyword(base):
        base = "m_" + base
    return base


class CPrinter(ReportsUnprintable, C99CodePrinter):
    """C99 printer writing sanitised local names and literals of the chosen precision."""

    target = "C"

    def __init__(self, names: dict, precision: str = "float64"):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}")
        super().__init__({"type_aliases": {real: float32 if precision == "float32" else float64},
                          "math_macros": {}})
        self._names = names
        self._single = precision == "float32"

    def _print_Symbol(self, expr):
        if expr in self._names:
            return self._names[expr]
        raise KeyError(f"symbol {expr} has no generated name")

    _print_Dummy = _print_Symbol

    def _print_Pow(self, expr):
        """float: small integer powers as products (``powf`` is a slow library call on an MCU).

        double prints ``pow``; :func:`c_function` rewrites its integer powers in Numba's order
        (:func:`numba_powers`), so that float64 results match the Numba kernels bit for bit; for the same
        reason ``x**(1/3)`` is ``pow(x, 1.0/3.0)`` (``cbrt`` rounds differently in half the cases) and
        ``x**(-1/2)`` is ``1.0/sqrt(x)`` (as the Numba printer writes it).
        """
        exp = expr.exp
        if (self._single and exp.is_Integer and 2 <= abs(int(exp)) <= 4
                and not expr.base.atoms(sp.Function)):  # never repeat a call such as sinf
            base = self.parenthesize(expr.base, 100)  # always bracketed: a product of atoms
            product = "*".join([base] * abs(int(exp)))
            return f"({product})" if exp > 0 else f"(1.0F/({product}))"
        if not self._single and exp == sp.Rational(1, 3):  # Numba's x**(1/3) is pow, not cbrt (rounds apart)
            return f"pow({self._print(expr.base)}, 1.0/3.0)"
        if not self._single and exp == sp.Rational(-1, 2):  # as the Numba printer: 1/sqrt(x), not pow(x, -0.5)
            return f"(1.0/sqrt({self._print(expr.base)}))"
        return super()._print_Pow(expr)

    def _print_NumberSymbol(self, expr):
        """π, e, ... as literals of the working precision (``M_PI`` is not C99)."""
        return self._print(sp.Float(expr.evalf(30), 30))

    _print_Pi = _print_NumberSymbol
    _print_Exp1 = _print_NumberSymbol
    _print_EulerGamma = _print_NumberSymbol
    _print_GoldenRatio = _print_NumberSymbol
    _print_Catalan = _print_NumberSymbol


def _bracketed(text: str) -> bool:
    """Whether ``text`` is one bracketed group ``( ... )``."""
    depth = 0
    for k, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return ch == ")" and k == len(text) - 1 and text[0] == "("
    return False


def _int_power(base: str, n: int) -> str:
    """C text of ``base**n`` (``n >= 1``) in Numba's order: ``r *= a`` for each set bit, ``a *= a`` in between."""
    a, r = base if base.isidentifier() or _bracketed(base) else f"({base})", None
    while True:
        if n & 1:
            r = a if r is None else f"{r}*{a}"
        n >>= 1
        if n == 0:
            return r if _bracketed(r) else f"({r})"
        a = f"({a}*{a})"


def numba_powers(source: str) -> str:
    """``source`` (C text of a function body) with ``pow(b, n)`` for integers ``|n| >= 3`` and ``n = -2`` as products.

    Numba computes ``x**3`` as ``x*(x*x)`` (binary powering; ``x**-3`` as ``1/(x*(x*x))``), while
    ``pow(x, 3)`` in C rounds differently in about a quarter of the cases, and the echo's ``1/beta``
    amplifies that last-bit difference to ~1e-11 of the gradient. Rewriting the printed calls keeps
    the expression tree (and SymPy's order of the additions) as the Numba printer sees it, so the
    float64 C kernels equal the Numba kernels bit for bit (docs/c-kernels.md).
    ``pow(x, 2)`` is left alone: it equals ``x*x`` (glibc rounds it exactly; gcc folds it); ``pow(x, -2)`` is
    not: Numba computes ``1/(x*x)``, two roundings, where ``pow`` rounds once.
    """
    out, i = [], 0
    while True:
        j = source.find("pow(", i)
        if j < 0:
            return "".join(out) + source[i:]
        if j > 0 and (source[j - 1].isalnum() or source[j - 1] == "_"):
            out.append(source[i:j + 4])
            i = j + 4
            continue
        depth, k = 0, j + 4
        while not (depth == 0 and source[k] == ","):  # the comma that ends the base
            depth += {"(": 1, ")": -1}.get(source[k], 0)
            k += 1
        end = source.index(")", k)
        exponent = source[k + 1:end].strip()
        base = numba_powers(source[j + 4:k])
        out.append(source[i:j])
        if exponent.lstrip("-").isdigit() and (abs(int(exponent)) >= 3 or int(exponent) == -2):
            n = int(exponent)
            out.append(_int_power(base, n) if n > 0 else f"(1.0/{_int_power(base, -n)})")
        else:
            out.append(f"pow({base},{source[k + 1:end + 1]}")
        i = end + 1


def c_function(fn: NumericFunction, precision: str = "float64", prefix: str = "f_") -> str:
    """Source of one ``static void f_<name>(args..., outs...)`` (argument order as in ``fn.args``); in float64
    its integer powers are evaluated as Numba evaluates them (:func:`numba_powers`)."""
    namer = Namer("s_")
    replacements, reduced = common_subexpressions(fn.outputs)
    used = set()
    for e in [r for _, r in replacements] + list(reduced):
        used |= e.free_symbols
    names = {}
    params, lines, unused = [], [], []
    for arg, symbols in fn.args:
        scalar = arg in fn.scalars
        params.append(f"real {arg}" if scalar else f"const real *restrict {arg}")
        touched = False
        for i, s in enumerate(symbols):
            if s in used:
                names[s] = namer(s, s.name)
                touched = True
                lines.append(f"    const real {names[s]} = {arg if scalar else f'{arg}[{i}]'};")
        if not touched:
            unused.append(arg)
    for w, _ in replacements:
        names[w] = namer(w, f"w{w.name[1:]}").replace("s_", "t_", 1)
    printer = CPrinter(names, precision)
    for w, e in replacements:
        lines.append(f"    const real {names[w]} = {printer.doprint(e)};")
    lines += [f"    (void){a};" for a in unused]  # after the declarations: C89-clean too
    k = 0
    for out, exprs in fn.outputs:
        params.append(f"real *restrict out_{out}")
        if not exprs:
            lines.append(f"    (void)out_{out};  /* size 0 for this model */")
        for i in range(len(exprs)):
            lines.append(f"    out_{out}[{i}] = {printer.doprint(reduced[k])};")
            k += 1
    head = [f"/* {safe_comment(fn.doc)} */", f"static void {prefix}{fn.name}({', '.join(params)})", "{"]
    text = "\n".join(head + lines + ["}"]) + "\n"
    return numba_powers(text) if precision == "float64" else text  # float32: CPrinter writes products itself


def literal(text: str, precision: str) -> str:
    """A floating literal of the working precision (``0.5`` or ``0.5F``)."""
    float(text)
    return text + ("F" if precision == "float32" else "")
