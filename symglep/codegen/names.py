"""The one identifier sanitiser for every name that reaches generated code.

A model may call a symbol ``lambda``, ``import os``, ``x.y`` or ``θ``: the
generated name keeps ASCII letters and digits, encodes every other character
as ``_xHH_`` / ``_uHHHH_``, and always carries a prefix, so it can never be a
keyword, a builtin, a dunder or a C reserved identifier. Names are made unique
within one :class:`Namer`.
"""

from __future__ import annotations

import re

_SAFE = re.compile(r"[A-Za-z0-9]")


def encode(name: str) -> str:
    """Encode ``name`` into ``[A-Za-z0-9_]`` reversibly (``_`` itself becomes ``_``)."""
    out = []
    for ch in str(name):
        if _SAFE.fullmatch(ch) or ch == "_":
            out.append(ch)
        elif ord(ch) < 256:
            out.append(f"_x{ord(ch):02x}_")
        else:
            out.append(f"_u{ord(ch):04x}_")
    return "".join(out)


def identifier(name: str, prefix: str = "s_") -> str:
    """A safe identifier for ``name`` in Python and C99: ``prefix`` + :func:`encode`."""
    return prefix + encode(name)


_ASCII = {"∂": "d", "θ": "theta", "β": "beta", "λ": "lam", "μ": "mu", "ᵀ": "^T", "₀": "0", "₁": "1",
          "₂": "2", "½": "1/2", "∇": "grad ", "−": "-", "§": "sec. ", "·": "*", "×": "x", "≡": "==",
          "σ": "sigma", "π": "pi", "τ": "tau", "γ": "gamma", "→": "->", "–": "-", "—": "-"}


def safe_comment(text: str, limit: int = 200) -> str:
    """Text that is inert inside a Python ``#`` comment, a docstring and a C comment.

    Only printable ASCII survives; backslashes, quotes, ``*/`` and line breaks are removed.
    """
    text = "".join(_ASCII.get(ch, ch) for ch in str(text))
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    text = text.replace("\\", "/").replace('"', "'").replace("*/", "* /").replace("/*", "/ *")
    text = text.replace("'''", "'")
    return text[:limit]


class Namer:
    """Hands out unique safe identifiers for symbols."""

    def __init__(self, prefix: str = "s_"):
        self.prefix = prefix
        self.by_key: dict = {}
        self.used: set[str] = set()

    def __call__(self, key, name: str | None = None) -> str:
        if key in self.by_key:
            return self.by_key[key]
        base = identifier(name if name is not None else str(key), self.prefix)
        candidate, i = base, 1
        while candidate in self.used:
            candidate = f"{base}_{i}"
            i += 1
        self.by_key[key] = candidate
        self.used.add(candidate)
        return candidate
