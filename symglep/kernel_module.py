"""A loaded kernel module as the runtime calls it: compile on first call, batches on threads.

Every generated Numba module (scalar model, array model, stack) declares ``BATCHED``: its public
kernels and the positions of their arguments that run over the batch (axis 0). Each of those
kernels is a plain loop over sequences compiled with ``nogil=True``. :class:`KernelModule`
wraps such a module so that

* a read-only array argument is copied first (Numba would compile a read-only array's own
  signature: one compiled signature per kernel);
* a kernel is compiled the first time it is called, and only then ("compile only what runs"):
  that first call holds the cache entry's lock, so concurrent processes never compile the same
  kernel twice (the second one loads Numba's cache file the first one wrote);
* if that first call fails on Numba cache files that cannot be loaded (truncated, foreign),
  they are dropped, the module is imported again and the call retried once
  (docs/robustness.md);
* a batch of B > 1 sequences is cut into contiguous slices, one per thread, run at once (the
  kernels release the GIL) and joined; each sequence is computed exactly as alone, so results do
  not depend on the number of threads;
* a function the kernels call (a model function, a unit's force) is compiled for them without a
  CPython entry: Numba's argument-unboxing wrapper costs about as much to compile as the function
  itself, and nothing but the kernels calls it. A Python caller (``check --bc``, a test) asking
  the module for such a function gets its *Python entry* instead: a twin of the same source,
  compiled with the wrapper on its first call and cached on disk under a name of its own
  (calling the kernels' copy from Python would crash the interpreter).

Threads: ``$SYMGLEP_NUM_THREADS``, else ``$NUMBA_NUM_THREADS``, else the machine's cores;
:func:`set_threads` changes it for this process.
"""

from __future__ import annotations

import os
import threading
import types
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Callable

import numpy as np

from .diagnose import NumericalError
from .errors import SymglepError

_THREADS: list = [None]      # the number set by set_threads, else None (read the environment)
_POOL: dict = {}             # threads -> ThreadPoolExecutor, shared by every kernel module


def threads() -> int:
    """Threads a batched kernel call uses (see the module docstring)."""
    if _THREADS[0] is not None:
        return _THREADS[0]
    for name in ("SYMGLEP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def set_threads(count: int | None) -> None:
    """Use ``count`` threads for batched kernel calls in this process (``None``: the environment's)."""
    if count is not None and (not isinstance(count, int) or count < 1):
        raise SymglepError(f"the number of threads must be a positive integer, got {count!r}")
    _THREADS[0] = count


def _pool(count: int) -> ThreadPoolExecutor:
    if count not in _POOL:
        _POOL[count] = ThreadPoolExecutor(max_workers=count, thread_name_prefix="symglep-kernel")
    return _POOL[count]


def _slices(batch: int, count: int) -> list:
    """``count`` contiguous, nearly equal slices of ``range(batch)``."""
    bounds = [batch * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _writable(args: tuple) -> tuple:
    """``args`` with each read-only array replaced by a writable C-contiguous copy: Numba types a
    read-only array as a type of its own, so one would compile the kernel a second time."""
    if not any(isinstance(a, np.ndarray) and not a.flags.writeable for a in args):
        return args
    return tuple(np.array(a, order="C") if isinstance(a, np.ndarray) and not a.flags.writeable else a
                 for a in args)


def _join(parts: list):
    """Concatenate the per-slice outputs of a kernel along the batch axis (a tuple or one array)."""
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(parts[0])))
    return np.concatenate(parts)


@contextmanager
def _compiler_settings(module):
    """Numba settings a module asks for while its kernels compile: ``SLP_VECTORIZE = True``
    vectorises straight-line generated maths (same IEEE results, no reassociation)."""
    if not getattr(module, "SLP_VECTORIZE", False):
        yield
        return
    from numba.core import config as numba_config  # heavy: only when a kernel compiles

    before = numba_config.SLP_VECTORIZE
    numba_config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba_config.SLP_VECTORIZE = before


class _Kernel:
    """One public kernel of a :class:`KernelModule` (see the module docstring)."""

    def __init__(self, owner: "KernelModule", name: str, batched: tuple):
        self.owner = owner
        self.name = name
        self.batched = batched
        self.compiled = False
        self.guard = threading.Lock()

    @property
    def function(self) -> Callable:
        return getattr(self.owner.module, self.name)

    def __getattr__(self, attr):        # Numba's dispatcher attributes (stats, signatures, ...)
        return getattr(self.function, attr)

    def __call__(self, *args):
        args = _writable(args)
        try:
            if not self.compiled:
                with self.guard:
                    if not self.compiled:
                        return self._first_call(args)
            return self._run(args)
        except Exception as exc:
            if interrupted_by_user(exc):  # Ctrl-C inside a Numba call surfaces as a SystemError around it
                raise KeyboardInterrupt from None
            if not isinstance(exc, ArithmeticError):  # Python's error model: a division by zero, an overflow
                raise                                     # in math.exp
            raise NumericalError(
                f"{self.name}: {exc} inside the kernel: a denominator of the model's equations vanished or a "
                "value overflowed on this run: a force term that divides by a quantity that reached 0 (a distance "
                "between coinciding units, a coordinate at a singular point) or, where derive's 'Legendre regular' "
                "verdict names one, a singular mass matrix (det M = 0)", phase=self.name) from None

    def _first_call(self, args):
        """Compile (or load from Numba's cache) under the entry's lock: on one slice of the batch
        when threads will run the rest, so every thread then finds the kernel compiled."""
        parts = self._parts(args)
        with self.owner.lock(), _compiler_settings(self.owner.module):
            try:
                first = self.function(*parts[0])
            except Exception as exc:  # a damaged cache entry: reload it once (never for a Ctrl-C: the entry is fine)
                if isinstance(exc, (SymglepError, ArithmeticError)) or interrupted_by_user(exc) \
                        or not self.owner.reload():
                    raise
                first = self.function(*parts[0])
        self.compiled = True
        return first if len(parts) == 1 else _join([first] + self._on_threads(parts[1:]))

    def _run(self, args):
        parts = self._parts(args)
        return self.function(*parts[0]) if len(parts) == 1 else _join(self._on_threads(parts))

    def _on_threads(self, parts: list) -> list:
        """The kernel's outputs for each argument tuple, run at once on the shared pool."""
        return list(_pool(len(parts)).map(lambda a: self.function(*a), parts))

    def _parts(self, args) -> list:
        """The argument tuples of the slices of the batch (one tuple when no split pays)."""
        if not self.batched or not self.owner.jit:
            return [args]
        batch = np.shape(args[self.batched[0]])[0] if np.ndim(args[self.batched[0]]) else 1
        count = min(threads(), batch)
        if count < 2:
            return [args]
        parts = []
        for part in _slices(batch, count):
            sliced = list(args)
            for i in self.batched:
                sliced[i] = args[i][part]
            parts.append(tuple(sliced))
        return parts


def interrupted_by_user(exc: BaseException) -> bool:
    """Whether ``exc`` wraps a KeyboardInterrupt (as ``__cause__`` or ``__context__``, at any depth): Ctrl-C
    during a compiled call or a cache load reaches Python as a ``SystemError`` ("returned a result with an
    exception set") around it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _kernels_only(value) -> bool:
    """Is ``value`` a Numba function compiled without a CPython entry (callable from kernels only)?"""
    return bool(getattr(value, "targetoptions", {}).get("no_cpython_wrapper"))


def _python_entry(dispatcher):
    """A twin of a kernels-only Numba function that Python can call (see the module docstring).

    The twin has the same code and globals under the qualified name ``<name>__python``, so Numba's
    disk cache keeps it apart from the kernels' copy (the cache index is named after the function).
    It is disk-cached like every generated function (the templates write ``cache=True`` on each): the
    same source file, so the same cache locator that served the original.
    """
    from numba import njit  # heavy: only when a Python caller asks for such a function

    fn = dispatcher.py_func
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    twin.__qualname__ = f"{fn.__qualname__}__python"
    options = {key: value for key, value in dispatcher.targetoptions.items()
               if key not in ("no_cpython_wrapper", "no_cfunc_wrapper", "nopython")}
    return njit(cache=True, **options)(twin)


class KernelModule:
    """A generated kernel module, its public kernels wrapped (see the module docstring).

    Every other attribute (constants such as ``N``, model functions) is the module's own, except
    that a kernels-only function is returned as its Python entry.
    """

    def __init__(self, module, jit: bool = True, lock: Callable | None = None, reimport: Callable | None = None):
        """``lock()`` returns the cache entry's lock (a context manager); ``reimport()`` drops the entry's
        Numba cache files and imports the module again (both absent for a module outside the cache)."""
        self.__dict__.update(module=module, jit=jit, lock_factory=lock, reimport=reimport, kernels={},
                             python_entries={})
        for name, positions in getattr(module, "BATCHED", {}).items():
            self.kernels[name] = _Kernel(self, name, tuple(positions))

    def __getattr__(self, name):
        kernels = self.__dict__["kernels"]
        if name in kernels:
            return kernels[name]
        value = getattr(self.__dict__["module"], name)
        if not _kernels_only(value):
            return value
        entries = self.__dict__["python_entries"]
        if name not in entries:
            entries[name] = _python_entry(value)
        return entries[name]

    def lock(self):
        """The cache entry's lock (nothing to lock for a module outside the cache)."""
        return self.lock_factory() if self.lock_factory is not None else nullcontext()

    def reload(self) -> bool:
        """Drop this entry's Numba cache files and import the module again; False if it cannot."""
        if self.reimport is None:
            return False
        self.__dict__["module"] = self.reimport()
        self.python_entries.clear()
        for kernel in self.kernels.values():
            kernel.compiled = False
        return True
