"""Array (network) models: derive once in index form, run at any n (docs/networks.md)."""

from .model import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, j, k, r
from .runtime import NetworkKernels, NetworkResult, compile  # noqa: A004


def index_form(model) -> dict:
    """The derivation of an array model in index notation (what ``symglep derive`` reports)."""
    from .derive import derive

    return derive(model)


__all__ = ["ArrayModel", "Coordinates", "Edges", "Inputs", "NetworkKernels", "NetworkResult", "Parameter",
           "Sum", "Targets", "compile", "i", "index_form", "j", "k", "r"]
