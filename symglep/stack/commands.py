"""What each ``symglep`` command does with a :class:`~symglep.Stack` (dispatched by :mod:`symglep.commands`)."""

from __future__ import annotations

from .training import train_command as train

__all__ = ["train"]
