"""Array (network) models: derive once in index form, run at any n (docs/networks.md)."""

from .model import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, j, k, r
from .runtime import NetworkKernels, NetworkResult, compile  # noqa: A004

__all__ = ["ArrayModel", "Coordinates", "Edges", "Inputs", "NetworkKernels", "NetworkResult", "Parameter",
           "Sum", "Targets", "compile", "i", "j", "k", "r"]
