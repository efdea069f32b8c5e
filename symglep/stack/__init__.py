"""Stacks of Hamiltonian units (RHEL's deep models), theory §9 and docs/echo-family.md.

``Stack`` declares the composition (:mod:`.model`), :mod:`.codegen` renders its
Numba module from ``templates/stack/kernels.py.j2``, :mod:`.runtime` compiles
and calls it, :mod:`.training` trains it on the sine task.
"""

from .model import Link, Stack, echo_model
from .runtime import StackKernels, compile_stack
from .training import StackTrainResult, load_stack, sine_data, train_stack

__all__ = ["Link", "Stack", "StackKernels", "StackTrainResult", "compile_stack", "echo_model", "load_stack",
           "sine_data", "train_stack"]
