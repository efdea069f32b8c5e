"""Identical units share their compiled functions (issue #17: compile only what differs).

A stack's module defines every unit's functions under its prefix ``u<i>_`` (``u<i>_a_*`` an array
unit's loops and constants, ``u<i>_f_*`` the unit interface). Deep stacks repeat one layer: the force
loops of layer 3 are those of layer 2 under another prefix, and Numba would compile them once per layer.
:func:`share_identical_definitions` rewrites such a definition of unit ``j`` into an alias of unit
``i``'s (``u3_a__force = u2_a__force``): one dispatcher, compiled once.

A definition is shared when its syntax tree (docstring aside) equals the earlier unit's with the
prefix renamed, and every name of its own unit that it reads is shared too (a function reading a
constant that differs between the layers, e.g. the parameter offsets, stays its own). The result
computes exactly what the unshared module does.
"""

from __future__ import annotations

import ast
import copy
import re


def _defined_name(node: ast.stmt) -> str | None:
    """The name a top-level statement defines: a function's, or a single-name assignment's."""
    if isinstance(node, ast.FunctionDef):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def _definitions(source: str) -> dict:
    """Top-level ``name -> (node, names read)`` of a source fragment (functions and assignments)."""
    return {_defined_name(node): (node, {n.id for n in ast.walk(node) if isinstance(n, ast.Name)})
            for node in ast.parse(source).body if _defined_name(node) is not None}


def _shape(node: ast.AST) -> str:
    """The definition's syntax tree without its docstring (which may name the unit)."""
    if isinstance(node, ast.FunctionDef) and node.body and isinstance(node.body[0], ast.Expr) \
            and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str):
        node = copy.copy(node)
        node.body = node.body[1:]
    return ast.dump(node, annotate_fields=False, include_attributes=False)


def _renamed(source: str, j: int, i: int) -> str:
    return re.sub(rf"\bu{j}_", f"u{i}_", source)


def shareable(blocks: dict, j: int, i: int) -> set:
    """Names of unit ``j`` (its source fragments ``blocks[j]``) that equal unit ``i``'s, renamed."""
    mine = _definitions("\n".join(blocks[j]))
    theirs = _definitions(_renamed("\n".join(blocks[i]), i, j))     # unit i's, spelled as unit j's
    equal = {name for name, (node, _) in mine.items()
             if name in theirs and _shape(node) == _shape(theirs[name][0])}
    own = re.compile(rf"u{j}_")
    changed = True
    while changed:  # drop what reads a name of unit j that is not shared
        reads_other = {name for name in equal
                       if any(own.match(r) and r not in equal and r != name for r in mine[name][1])}
        changed = bool(reads_other)
        equal -= reads_other
    return equal


def share_identical_definitions(blocks: dict) -> dict:
    """``blocks``: unit index -> its source fragments, in module order. Returns the same with each
    definition that equals an earlier unit's (:func:`shareable`) replaced by an alias of it."""
    out = {}
    for j in sorted(blocks):
        best, names = None, set()
        for i in sorted(blocks):
            if i >= j:
                break
            found = shareable(blocks, j, i)
            if len(found) > len(names):
                best, names = i, found
        if not names:
            out[j] = list(blocks[j])
            continue
        out[j] = [_aliased(fragment, names, j, best) for fragment in blocks[j]]
    return out


def _aliased(fragment: str, names: set, j: int, i: int) -> str:
    """``fragment`` with the definitions of ``names`` replaced by ``name = <unit i's name>``."""
    lines = fragment.splitlines(keepends=True)
    tree = ast.parse(fragment)
    cuts = []
    for node in tree.body:
        name = _defined_name(node)
        if name in names:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            cuts.append((first - 1, node.end_lineno, f"{name} = {_renamed(name, j, i)}  # the same as unit {i}'s\n"))
    for start, end, alias in sorted(cuts, reverse=True):
        lines[start:end] = [alias]
    return "".join(lines)
