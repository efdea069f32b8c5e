"""Errors symglep reports to users.

Every error a user can cause derives from :class:`SymglepError`; the CLI prints
its message on one line and exits with :attr:`SymglepError.exit_code` (no
traceback unless ``--debug``).
"""


class SymglepError(Exception):
    """Base class of the errors that users can cause (bad input, bad model)."""

    exit_code = 2


class ModelError(SymglepError):
    """The declared model is invalid (undeclared symbol, name clash, ...)."""


class ModelFileError(SymglepError):
    """A model file could not be loaded (missing, syntax error, wrong object)."""


class DerivationError(SymglepError):
    """A derivation step cannot be carried out for this model."""
