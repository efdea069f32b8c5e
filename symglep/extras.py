"""Optional dependencies: import them on demand, or say which extra installs them."""

from __future__ import annotations

import importlib

from .errors import SymglepError


class MissingExtraError(SymglepError):
    """An optional package needed for the requested feature is not installed."""


def require(module: str, extra: str, feature: str):
    """Import ``module`` or raise a one-line error naming ``pip install 'symglep[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{feature} needs the optional package {module.split('.')[0]}: "
                                f"pip install 'symglep[{extra}]'") from None
