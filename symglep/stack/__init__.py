"""Stacks of Hamiltonian units (RHEL's deep models), theory §9 and docs/echo-family.md.

``Stack`` declares the composition (:mod:`.model`), :mod:`.codegen` and
:mod:`.codegen_c` render its Numba and C modules, :mod:`.runtime` compiles and
calls them (``symglep.compile(stack)``), :mod:`.training` trains it on the sine task.
"""

from .model import Link, Stack, echo_model

__all__ = ["Link", "Stack", "echo_model"]
