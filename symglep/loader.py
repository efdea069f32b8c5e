"""Loading a model file: a Python file that defines ``model`` (or ``path.py:NAME``)."""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import traceback

import sympy as sp

from .errors import ModelError, ModelFileError, SymglepError
from .model import Model
from .network.model import ArrayModel
from .stack.model import Stack


def split_spec(spec: str) -> tuple[str, str]:
    """``"path.py:NAME"`` -> ``("path.py", "NAME")``; the name defaults to ``model``. A file whose own name holds
    a colon is taken whole; ``path.py:`` (no NAME) is an error."""
    if os.path.isfile(spec):
        return spec, "model"
    path, sep, name = spec.rpartition(":")
    if sep and not name and os.path.isfile(path):
        raise ModelFileError(f"{spec}: no NAME after ':' (write PATH.py:NAME, NAME the variable that holds the model)")
    if not sep or not name or os.sep in name or "/" in name or not path:
        return spec, "model"
    return path, name


def load_system(spec: str):
    """Run a model file and return the system it defines: a :class:`~symglep.Model`, an array
    model (docs/networks.md) or a :class:`~symglep.Stack` (theory §9).

    ``path.py`` takes the object named ``model``, or, where the file defines none, ``stack``;
    ``path.py:NAME`` takes ``NAME``. Every failure raises :class:`ModelFileError` (or the
    model's own :class:`ModelError`) with a one-line message naming the file.
    """
    path, name = split_spec(str(spec))
    if not os.path.exists(path):
        raise ModelFileError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelFileError(f"model file is a directory: {path}")
    try:
        with open(path, "rb") as handle:
            source = handle.read()
        compile(source, path, "exec")
    except SyntaxError as exc:
        if exc.lineno is None:  # e.g. null bytes: a binary file
            raise ModelFileError(f"{path} is not a Python model file ({exc.msg})") from None
        raise ModelFileError(f"syntax error in {path}, line {exc.lineno}: {exc.msg}") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from None
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # let a model file import helpers that sit beside it
    try:
        with contextlib.redirect_stdout(sys.stderr):  # a print in the model file must not corrupt a JSON report
            namespace = runpy.run_path(path, run_name="__symglep_model__")
    except SymglepError as exc:
        also = (f" (loading {path} builds every object in it, so this stops {name} too: build the refused one "
                "in a function, or in a file of its own)") if str(spec) != path and name != "model" else ""
        raise type(exc)(f"{path}: {exc}{also}") from exc
    except SystemExit as exc:
        raise ModelFileError(f"{path} called exit({exc.code}) while loading") from None
    except Exception as exc:  # the user's code failed: say where, in one line
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) == os.path.abspath(path)]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise ModelFileError(f"{path}{where} raised {type(exc).__name__}: {exc}") from exc
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
    if name == "model" and name not in namespace and "stack" in namespace:
        name = "stack"  # a file that defines only `stack`: that object, whatever it is (checked below)
    if name not in namespace:
        found = sorted(k for k, v in namespace.items() if isinstance(v, (Model, ArrayModel, Stack)) and not k.startswith("_"))
        hint = f"; it defines {', '.join(found)}: choose one with {path}:NAME" if found else ""
        raise ModelFileError(f"{path} defines no object named {name!r}{hint}")
    obj = namespace[name]
    if not isinstance(obj, (Model, ArrayModel, Stack)):
        what = "a SymPy expression" if isinstance(obj, sp.Basic) else f"a {type(obj).__name__}"  # not the class y
        raise ModelFileError(f"{name!r} in {path} is {what}, not a symglep.Model, "
                             "symglep.network.ArrayModel or symglep.Stack")
    return obj


def load_model(spec: str):
    """The :class:`~symglep.Model` or array model of a model file (:func:`load_system`, stacks refused)."""
    system = load_system(spec)
    if isinstance(system, Stack):
        raise ModelFileError(f"{split_spec(str(spec))[0]} defines a symglep.Stack, not a model: load it with "
                             "symglep.load_system")
    return system


__all__ = ["load_model", "load_system", "split_spec", "ModelError"]
