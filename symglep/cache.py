"""The kernel cache: generated modules in real files, keyed by their content hash.

Every kind of system (scalar model, array model, stack) compiles through
:func:`load`: the module lives in ``<cache>/<label>-<hash16>/kernels.py`` (a real
file, so Numba's ``cache=True`` keeps its machine code beside it) with a
``kernels.py.sha256`` checksum. The folder defaults to ``$SYMGLEP_CACHE_DIR``,
else ``$XDG_CACHE_HOME/symglep``, else ``~/.cache/symglep``.

Protections (docs/robustness.md): an entry whose file does not match its hash
line or its checksum (truncated, edited) is rebuilt; Numba cache files that
cannot be loaded are dropped and recompiled; one process at a time builds an
entry or compiles one of its kernels (a lock file beside it), the others wait and
load what it wrote. Kernels compile on first call (``symglep.kernel_module``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import sys
from typing import Callable

from .errors import SymglepError
from .fileio import write_atomic
from .kernel_module import KernelModule

try:  # POSIX advisory locks; elsewhere the lock is a no-op
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

HASH_LINE = re.compile(r"^# symglep-hash: ([0-9a-f]{64})$", re.M)

_LOADED: dict = {}   # (digest, jit) -> imported module, for this process


def cache_dir(override: str | None = None) -> str:
    """Folder of compiled kernels (see module docstring)."""
    if override:
        return os.path.abspath(override)
    if os.environ.get("SYMGLEP_CACHE_DIR"):
        return os.path.abspath(os.environ["SYMGLEP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "symglep")


def _make_entry_folder(folder: str, cache: str | None) -> None:
    """Create a cache entry's folder, or say in one line which cache folder (and which setting) is unusable."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        source = ("the cache= argument" if cache else "$SYMGLEP_CACHE_DIR" if os.environ.get("SYMGLEP_CACHE_DIR")
                  else "$XDG_CACHE_HOME or ~/.cache")
        raise SymglepError(f"cannot use the kernel cache folder {cache_dir(cache)} (from {source}): "
                           f"{exc.strerror or exc}; point {source} at a writable folder") from None


def entry_folder(label: str, digest: str, cache: str | None = None) -> str:
    """``<cache>/<label>-<hash16>``, the label reduced to at most 40 identifier characters."""
    return os.path.join(cache_dir(cache), f"{re.sub(r'[^A-Za-z0-9_]', '_', label)[:40]}-{digest[:16]}")


class FileLock:
    """An exclusive advisory lock on a file (POSIX ``flock``; a no-op where unavailable)."""

    def __init__(self, path: str):
        self.path = path
        self.handle = None

    def __enter__(self):
        self.handle = open(self.path, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
            except OSError:
                pass
        return self

    def __exit__(self, *exc):
        if fcntl is not None:
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            except OSError:
                pass
        self.handle.close()


def file_checksum(path: str) -> str:
    """SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def valid_entry(path: str, digest: str) -> bool:
    """The cached kernel file exists, is the one for ``digest`` and is intact (its checksum file matches)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
        with open(path + ".sha256", encoding="ascii") as f:
            recorded = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return False
    found = HASH_LINE.search(head)
    return bool(found and found.group(1) == digest and recorded == file_checksum(path))


def write_entry(folder: str, path: str, source: str) -> None:
    """Write a cache entry: Numba's files of any older content go, then the source, then its checksum."""
    shutil.rmtree(os.path.join(folder, "__pycache__"), ignore_errors=True)
    write_atomic(path, source)
    write_atomic(path + ".sha256", hashlib.sha256(source.encode("utf-8")).hexdigest() + "\n")


def import_kernels(path: str, digest: str, jit: bool = True):
    """Import a kernel file as a module; ``jit=False`` imports plain Python functions (Numba off)."""
    from numba.core import config as numba_config  # heavy: only when kernels are loaded

    disabled = numba_config.DISABLE_JIT
    numba_config.DISABLE_JIT = disabled or not jit
    try:
        return import_file(path, f"symglep_kernels_{digest[:20]}" + ("" if jit else "_interpreted"))
    finally:
        numba_config.DISABLE_JIT = disabled


def import_file(path: str, name: str):
    """Import the Python file ``path`` as the module ``name`` (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def loaded(digest: str, jit: bool = True):
    """The module of ``digest`` if this process has loaded it, else ``None``."""
    return _LOADED.get((digest, bool(jit)))


def forget_loaded() -> None:
    """Forget the modules loaded by this process (the next :func:`load` reads the cache again)."""
    _LOADED.clear()


@contextlib.contextmanager
def _dropped_when_empty(folder: str):
    """Remove ``folder`` when the block fails and left it empty (a refused integrator or a model error in
    ``render()``): no empty entry stays behind. Its lock file stays: removing a lock another process
    may be waiting on would let two processes hold it."""
    try:
        yield
    except BaseException:
        try:
            os.rmdir(folder)
        except OSError:  # not empty (an entry another process wrote), or already gone
            pass
        raise


def load(label: str, digest: str, render: Callable[[], str], cache: str | None = None, jit: bool = True,
         warm: Callable | None = None) -> tuple:
    """``(module, generated)``: the kernel module of ``digest`` as a :class:`KernelModule`, built with
    ``render()`` when the cache has no intact entry (``generated`` is then True).

    Kernels compile on their first call, under the entry's lock (``symglep.kernel_module``);
    ``warm(module)``, when given, calls them all now. A module this process loaded before is
    returned at once (``generated`` False) and not warmed again.
    """
    key = (digest, bool(jit))
    if key in _LOADED:
        return _LOADED[key], False
    folder = entry_folder(label, digest, cache)
    path = os.path.join(folder, "kernels.py")
    _make_entry_folder(folder, cache)
    with FileLock(folder + ".lock"), _dropped_when_empty(folder):
        generated = not valid_entry(path, digest)
        if generated:
            write_entry(folder, path, render())
        module = import_kernels(path, digest, jit)

    def reimport():  # Numba's cache files of this entry are unreadable: drop them, import again
        shutil.rmtree(os.path.join(folder, "__pycache__"), ignore_errors=True)
        sys.modules.pop(module.__name__, None)
        return import_kernels(path, digest, jit)

    kernels = KernelModule(module, jit, lock=lambda: FileLock(folder + ".lock"), reimport=reimport)
    if warm is not None and jit:
        warm(kernels)
    _LOADED[key] = kernels
    return kernels, generated


def load_module(label: str, digest: str, render: Callable[[], str], cache: str | None = None):
    """The generated module of ``digest`` imported as plain Python (a target Numba does not compile,
    such as JAX), built with ``render()`` when the cache has no intact entry; once per process."""
    key = (digest, "module")
    if key not in _LOADED:
        folder = entry_folder(label, digest, cache)
        path = os.path.join(folder, "kernels.py")
        _make_entry_folder(folder, cache)
        with FileLock(folder + ".lock"), _dropped_when_empty(folder):
            if not valid_entry(path, digest):
                write_entry(folder, path, render())
            _LOADED[key] = import_file(path, f"symglep_module_{digest[:20]}")
    return _LOADED[key]
