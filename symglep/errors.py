"""Errors symglep reports to users.

Every error a user can cause derives from :class:`SymglepError`; the CLI prints
its message on one line and exits with :attr:`SymglepError.exit_code` (no
traceback unless ``--debug``).
"""


#: names a one-line message lists before it says how many more there are
NAMES_SHOWN = 10


def listed(names, limit: int = NAMES_SHOWN) -> str:
    """``a, b, c`` — or the first ``limit`` names and ``… (N more)``: a stack's θ has hundreds of element
    names, and a one-line message should stay one readable line."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, ... ({len(names) - limit} more)"


class SymglepError(Exception):
    """Base class of the errors that users can cause (bad input, bad model)."""

    exit_code = 2


class ModelError(SymglepError):
    """The declared model is invalid (undeclared symbol, name clash, ...)."""


class ModelFileError(SymglepError):
    """A model file could not be loaded (missing, syntax error, wrong object)."""


class DerivationError(SymglepError):
    """A derivation step cannot be carried out for this model."""


class ArgumentError(SymglepError, ValueError):
    """A bad argument to a Python API function (also a ``ValueError``, as Python's own checks raise)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train(save=...)``: the completed epochs were saved; the message says where."""
