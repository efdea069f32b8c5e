"""Array (network) models: derive once in index form, run at any n (docs/networks.md)."""

from .derive import derive as index_form
from .arrays import Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, j, k, r
from .model import ArrayModel
from .runtime import NetworkKernels, NetworkResult, compile_array_model

__all__ = ["ArrayModel", "Coordinates", "Edges", "Inputs", "NetworkKernels", "NetworkResult", "Parameter",
           "Sum", "Targets", "compile_array_model", "i", "index_form", "j", "k", "r"]
