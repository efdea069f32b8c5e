"""Parameter values: given by name (the one check every kind of system applies to ``{name: value}``),
or drawn for a seeded instance (``symglep check``, the tasks' teachers)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np

from .errors import SymglepError
from .fileio import read_json_object
from .heads import CLASSIFIER_PREFIXES


def _compare(given, names: list) -> tuple:
    """``(missing, unknown)``: the names of ``names`` not ``given``, and the given names not in ``names``."""
    return [n for n in names if n not in given], [k for k in given if k not in names]


def values_by_name(params: dict, names: list) -> dict:
    """``{name: value}`` from a mapping keyed by names or symbols; every name in ``names``, no other."""
    keys = {getattr(k, "name", k): v for k, v in params.items()}
    missing, extra = _compare(keys, names)
    if missing:
        raise SymglepError(f"missing parameter value(s): {', '.join(missing)}")
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


def read_parameter_file(path: str, names: list) -> dict:
    """The raw ``{name: value}`` of a JSON parameters file (or a training file's ``parameters``), every name
    in ``names`` and no other."""
    data = read_json_object(path, "parameters file")
    if isinstance(data.get("parameters"), dict):  # a training file; a classifier's encoder and head are not the model's
        data = {k: v for k, v in data["parameters"].items() if not k.startswith(CLASSIFIER_PREFIXES)}
    data = _by_element(data, set(names))
    missing, unknown = _compare(data, names)
    if unknown:
        raise SymglepError(f"parameters file {path} names unknown parameter(s): {', '.join(unknown)}")
    if missing:
        raise SymglepError(f"parameters file {path} lacks value(s) for: {', '.join(missing)}")
    for name, value in data.items():
        if not _finite_numbers(value):
            raise SymglepError(f"parameters file {path}: {name} = {json.dumps(value)[:80]} is not a finite number "
                               "(or a nested list of them); write numbers unquoted, e.g. 1.5")
    return data


def trained_run(path: str) -> dict:
    """``{"dt": ..., "steps": ...}`` of the run a training file (``train --save``) records in its ``settings``;
    ``{}`` for a plain ``{name: value}`` file or a setting that is not a valid number."""
    settings = read_json_object(path, "parameters file").get("settings")
    if not isinstance(settings, dict):
        return {}
    out = {}
    dt, steps = settings.get("dt"), settings.get("steps")
    if isinstance(dt, (int, float)) and not isinstance(dt, bool) and math.isfinite(dt) and dt > 0:
        out["dt"] = float(dt)
    if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1:
        out["steps"] = steps
    return out


def _by_element(data: dict, names: set) -> dict:
    """``{"unit1.A": [[...], ...]}`` spelled element by element (``unit1.A[0,0]``, ...) where ``names`` (a stack's)
    name the elements, not the array: the grouped form `--freeze unit1.A` and the docs use is read too."""
    out = {}
    for key, value in data.items():
        if key not in names and isinstance(value, list) and _finite_numbers(value):
            array = np.asarray(value, dtype=float)
            spelled = element_names(key, array.shape)
            if array.ndim and all(name in names for name in spelled):
                out.update(zip(spelled, array.ravel().tolist()))
                continue
        out[key] = value
    return out


def _finite_numbers(value) -> bool:
    """Whether a JSON value is a finite number or a (nested) list of them (``true`` and ``"1.5"`` are not)."""
    if isinstance(value, list):
        return all(_finite_numbers(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
