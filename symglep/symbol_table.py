"""The symbol table of a JSON report: safe names that ``sympy.parse_expr`` always reads back.

A model may name a symbol ``lambda``, ``return``, ``a b``, ``x+y``, ``θ₁`` or
``__import__``; written verbatim, such names make expression strings that no
parser can read (Python normalises ``θ₁`` to ``θ1``, ``a b`` is two tokens).
Every symbol gets a *safe name*: its own name when that is a plain ASCII
Python identifier that is not a keyword and does not start with ``_``,
otherwise the name through the one identifier sanitiser
(:func:`symglep.codegen.names.identifier`, e.g. ``lambda`` → ``s_lambda``),
made unique. The table lists the safe name, the model's name, the kind and
the sympy assumptions of every symbol (docs/derive-schema.md).
"""

from __future__ import annotations

import keyword

import sympy as sp

from .codegen.names import identifier
from .model import Model


#: names of the functions a report's expressions can call: a symbol of the same name (a parameter ``exp``) would
#: shadow the function in ``parse_expr``'s ``local_dict`` (``2*x*exp*exp(-x**2)`` did not parse back)
FUNCTION_NAMES = frozenset({
    "exp", "log", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "sinh", "cosh", "tanh", "coth", "asin", "acos",
    "atan", "atan2", "acot", "asinh", "acosh", "atanh", "Abs", "sign", "Heaviside", "Piecewise", "Max", "Min",
    "erf", "re", "im", "floor", "ceiling", "Mod", "ITE", "And", "Or", "Not"})


def is_plain_name(name: str) -> bool:
    """Whether ``name`` is usable verbatim in a ``parse_expr`` string (an identifier, not a keyword, not a
    function the expressions may call)."""
    return (name.isascii() and name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
            and name not in FUNCTION_NAMES)


def model_symbols(model: Model, extra=()) -> list[tuple[sp.Symbol, str]]:
    """``(symbol, kind)`` for every symbol a report of ``model`` can print, in a fixed order."""
    out = [(model.time, "time")]
    out += [(s, "coordinate") for s in model.q]
    out += [(s, "velocity") for s in model.v]
    out += [(s, "acceleration") for s in model.a]
    out += [(s, "momentum") for s in model.p]
    out += [(s, "parameter") for s in model.parameters]
    out += [(s, "constant") for s in model.constants]
    out += [(s, "input") for s in model.u]
    out += [(s, "target") for s in model.y]
    out += list(extra)
    seen, unique = set(), []
    for s, kind in out:
        if s not in seen:
            seen.add(s)
            unique.append((s, kind))
    return unique


class SymbolTable:
    """Safe name ↔ model name for each symbol, with the renaming of expressions to safe names."""

    def __init__(self, symbols: list[tuple[sp.Symbol, str]]):
        self.entries = []
        self.to_safe: dict = {}
        used: set[str] = set()
        plain = {s.name for s, _ in symbols if is_plain_name(s.name)}
        for s, kind in symbols:
            name = s.name if is_plain_name(s.name) else identifier(s.name)
            base, k = name, 1
            while name in used or (name != s.name and name in plain):
                k += 1
                name = f"{base}_{k}"
            used.add(name)
            assumptions = {key: value for key, value in sorted(s.assumptions0.items()) if value is not None}
            self.entries.append({"safe": name, "name": s.name, "kind": kind, "assumptions": assumptions})
            self.to_safe[s] = sp.Symbol(name, **s.assumptions0)

    def safe(self, expr):
        """``expr`` with every listed symbol replaced by its safe-named twin (same assumptions)."""
        return sp.sympify(expr).xreplace(self.to_safe)

    def safe_name(self, symbol: sp.Symbol) -> str:
        return self.to_safe[symbol].name if symbol in self.to_safe else symbol.name

    def local_dict(self) -> dict:
        """``{safe name: Symbol}``: the ``local_dict`` that ``sympy.parse_expr`` needs."""
        return {e["safe"]: sp.Symbol(e["safe"], **e["assumptions"]) for e in self.entries}

    def as_json(self) -> list[dict]:
        return [dict(e) for e in self.entries]
