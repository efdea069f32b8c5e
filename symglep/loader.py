"""Loading a model file: a Python file that defines ``model`` (or ``path.py:NAME``)."""

from __future__ import annotations

import os
import runpy
import sys
import traceback

from .errors import ModelError, ModelFileError, SymglepError
from .model import Model


def split_spec(spec: str) -> tuple[str, str]:
    """``"path.py:NAME"`` -> ``("path.py", "NAME")``; the name defaults to ``model``."""
    path, sep, name = spec.rpartition(":")
    if not sep or not name or os.sep in name or "/" in name or not path:
        return spec, "model"
    return path, name


def load_model(spec: str, allow_stack: bool = False) -> Model:
    """Run the model file and return its :class:`~symglep.Model` (or array model, docs/networks.md).

    With ``allow_stack``, a file that defines no ``model`` but a :class:`~symglep.Stack` named
    ``stack`` returns the stack (``symglep train``; docs/echo-family.md).

    Every failure raises :class:`ModelFileError` (or the model's own
    :class:`ModelError`) with a one-line message naming the file.
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
        raise ModelFileError(f"syntax error in {path}, line {exc.lineno}: {exc.msg}") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from None
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # let a model file import helpers that sit beside it
    try:
        namespace = runpy.run_path(path, run_name="__symglep_model__")
    except SymglepError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    except SystemExit as exc:
        raise ModelFileError(f"{path} called exit({exc.code}) while loading") from None
    except Exception as exc:  # the user's code failed: say where, in one line
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) == os.path.abspath(path)]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise ModelFileError(f"{path}{where} raised {type(exc).__name__}: {exc}") from exc
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
    stack = _stack_instead(namespace, name, path, allow_stack)  # stacks of units (symglep.stack)
    if stack is not None:
        return stack
    if name not in namespace:
        raise ModelFileError(f"{path} defines no object named {name!r}")
    obj = namespace[name]
    from .network.model import ArrayModel

    if not isinstance(obj, (Model, ArrayModel)):
        raise ModelFileError(f"{name!r} in {path} is a {type(obj).__name__}, not a symglep.Model "
                             "or symglep.network.ArrayModel")
    return obj


def _stack_instead(namespace: dict, name: str, path: str, allow_stack: bool):
    """The file's ``stack`` when it defines no ``model`` (only where ``allow_stack``), else ``None``."""
    from .stack.model import Stack

    if name != "model" or name in namespace or not isinstance(namespace.get("stack"), Stack):
        return None
    if not allow_stack:
        raise ModelFileError(f"{path} defines a symglep.Stack, not a model: run it with 'symglep train {path}' "
                             f"or 'python -m symglep.stack train {path}' (docs/echo-family.md)")
    return namespace["stack"]


__all__ = ["load_model", "split_spec", "ModelError"]
