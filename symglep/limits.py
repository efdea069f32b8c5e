"""How large a model the scalar (element-by-element) method accepts before it refuses.

Every step of symglep's scalar method works on the expanded Lagrangian: each
Euler–Lagrange equation differentiates the whole of ``L``, the generated code
has one line per term, and Numba compiles all of it. The cost grows with
``size = n × (number of nodes of the expression tree of L)``; measured on this
project's reference machine (docs/robustness.md, ``benchmarks/model_size.py``),
derive + generate take 3 CPU seconds at size 2.6·10⁴ and 28 s at 4.2·10⁵, and
Numba's compilation of the result takes minutes more.
Past :data:`MAX_MODEL_SIZE` symglep stops at once with a message instead of
running silently for many minutes; ``SYMGLEP_MAX_MODEL_SIZE`` raises the limit.
"""

from __future__ import annotations

import os

from .errors import ModelError
from .model import Model
from .symbolic import node_count

MAX_MODEL_SIZE = 200_000
ENV_VAR = "SYMGLEP_MAX_MODEL_SIZE"


def max_model_size() -> int:
    """The limit in force: ``$SYMGLEP_MAX_MODEL_SIZE`` if set, else :data:`MAX_MODEL_SIZE`."""
    raw = os.environ.get(ENV_VAR)
    if raw is None or not raw.strip():
        return MAX_MODEL_SIZE
    try:
        value = int(raw)
    except ValueError:
        raise ModelError(f"{ENV_VAR} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ModelError(f"{ENV_VAR} must be positive, got {value}")
    return value


def model_size(model: Model, stop_after: int | None = None) -> int:
    """``n × nodes(L)``; counting stops once it passes ``stop_after`` (huge trees are not walked to the end)."""
    n = max(model.n, 1)
    return n * node_count(model.lagrangian, None if stop_after is None else stop_after // n)


def check_size(model: Model) -> None:
    """Raise :class:`ModelError` when ``model`` is past the size limit (module docstring)."""
    limit = max_model_size()
    size = model_size(model, stop_after=limit)
    if size > limit:
        raise ModelError(
            f"model {model.name!r} is too large for the scalar method: n × nodes(L) exceeds {limit} "
            f"(n = {model.n}); deriving, generating and compiling it element by element would take many "
            "minutes to hours. Write a network this large as an array model (symglep.network.ArrayModel: one "
            f"derivation for any n, docs/networks.md); to go on anyway, raise the limit with {ENV_VAR}=N")
