"""Parameter values: given by name (the one check every kind of system applies to ``{name: value}``),
or drawn for a seeded instance (``symglep check``, the tasks' teachers)."""

from __future__ import annotations

import itertools

from .errors import SymglepError


def values_by_name(params: dict, names: list) -> dict:
    """``{name: value}`` from a mapping keyed by names or symbols; every name in ``names``, no other."""
    keys = {getattr(k, "name", k): v for k, v in params.items()}
    missing = [n for n in names if n not in keys]
    if missing:
        raise SymglepError(f"missing parameter value(s): {', '.join(missing)}")
    extra = [k for k in keys if k not in names]
    if extra:
        raise SymglepError(f"unknown parameter(s): {', '.join(map(str, extra))}")
    return keys


def draw_parameters(model, rng) -> dict:
    """``{name: value}`` for a scalar model's parameters from the generator ``rng``: positive-declared
    symbols uniform in [0.5, 1.5], negative-declared ones in [-1.5, -0.5], others in [-1, 1]."""
    out = {}
    for s in model.parameters:
        magnitude = rng.uniform(0.5, 1.5) if (s.is_positive or s.is_negative) else rng.uniform(-1.0, 1.0)
        out[s.name] = float(-magnitude if s.is_negative else magnitude)
    return out


def element_names(name: str, shape: tuple) -> list:
    """``name`` for a scalar, ``name[i]`` / ``name[i,j]`` for each element of an array (C order)."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*(range(s) for s in shape))]
