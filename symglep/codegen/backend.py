"""The code-generation backends: one per target, shared by every kind of system.

A backend is a template folder, ``templates/<target>/``, holding one template per kind of system
(``scalar``, ``array``, ``stack``) and the passes those templates share (``passes.j2``), a printer
(:mod:`symglep.codegen.printer` for Numba, :mod:`symglep.codegen.c_printer` for C) and the
generator modules whose source shapes what it writes (:data:`GENERATORS`).

:func:`content_hash` is the one cache key of every generated module or file: the symglep
version, the target, the kind and its fingerprint of the system, the options, and the digest of
the target's template folder and generator modules — so editing any template or generator of a
target invalidates every cached and committed kernel of that target.
"""

from __future__ import annotations

import functools
import hashlib
import os

import jinja2

from .. import __version__
from .digest import sources_digest
from .printer import KERNELS_ONLY

_NUMBA = ("discrete.py", "mechanics.py", "legendre.py", "symmetry.py",
          "codegen/printer.py", "codegen/names.py", "codegen/render.py",
          "network/arrays.py", "network/model.py", "network/terms.py", "network/elements.py", "network/render.py",
          "stack/model.py", "stack/units.py", "stack/codegen.py", "stack/sharing.py")

#: target -> the generator modules (paths in the package) its content hash covers with its templates
GENERATORS = {
    "numba": _NUMBA,
    "c": _NUMBA + ("codegen/c_printer.py", "codegen/render_c.py", "network/render_c.py", "stack/codegen_c.py"),
    "jax": _NUMBA + ("codegen/jax_printer.py", "codegen/render_jax.py", "symbolic.py",
            "network/render_jax.py"),
}


def template_dir() -> str:
    """The templates folder: ``templates/`` of a source checkout, or the copy inside the wheel."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.path.join(os.path.dirname(here), "templates"), os.path.join(here, "_templates")):
        if os.path.isdir(os.path.join(candidate, "numba")):
            return candidate
    raise FileNotFoundError("symglep templates folder not found (broken installation)")


@functools.lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    """The Jinja environment of every target (DESIGN: ``StrictUndefined``, ``trim_blocks``,
    ``lstrip_blocks``); output is deterministic: the same inputs give the same bytes.

    Templates see ``KERNELS_ONLY``, the decorator the Numba printer writes on functions only the
    kernels call. One per process: Jinja keeps each template compiled in its environment (and recompiles one whose
    file changed), so a template is parsed once, not at every render (about 0.1 s each).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["KERNELS_ONLY"] = KERNELS_ONLY  # the Numba templates' `private` decorator (passes.j2)
    return env


def target_digest(target: str) -> str:
    """Digest of ``templates/<target>/`` and the target's generator modules."""
    return sources_digest(os.path.join(template_dir(), target), GENERATORS[target])


def content_hash(target: str, kind: str, fingerprint: str, options: dict) -> str:
    """The cache key of a generated module or file set: sha256 of (version, target, kind, the kind's
    fingerprint of the system, the options, the target's templates and generators)."""
    h = hashlib.sha256()
    h.update(f"symglep {__version__}\ntarget={target};kind={kind}\n".encode())
    h.update(fingerprint.encode())
    h.update(("\n" + ";".join(f"{k}={options[k]}" for k in sorted(options))).encode())
    h.update(("\n" + target_digest(target)).encode())
    return h.hexdigest()
