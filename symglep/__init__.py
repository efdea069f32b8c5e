"""symglep: derive, analyse and generate learning code for physical learning systems.

Write a Lagrangian with SymPy, then ``symglep.derive(model)`` gives the
Euler–Lagrange equations, the Legendre transform, the time-reversal and
separability verdicts and the learning rule (see ``docs/theory.md``).
"""

__version__ = "0.1.0"

from .derivation import Derivation, derive
from .errors import DerivationError, ModelError, ModelFileError, SymglepError
from .loader import load_model, load_system
from .model import Model
from .runtime import Kernels, NoExactRouteError, NotReversibleError, NumericalError, Result
from .systems import compile  # noqa: A001 - symglep.compile(system) is the public name
from .tasks import Dataset
from .training import TrainResult, train
from .stack import Stack  # stacks of units (RHEL's deep models), theory §9
from .stack.training import train_stack
from . import network  # noqa: E402 - array (network) models, docs/networks.md
from . import commands  # noqa: E402 - every command's report for any kind (README: symglep.commands.derive_report)

__all__ = [
    "Derivation",
    "Kernels",
    "NoExactRouteError",
    "NotReversibleError",
    "NumericalError",
    "Result",
    "Dataset",
    "TrainResult",
    "commands",
    "compile",
    "DerivationError",
    "Model",
    "ModelError",
    "ModelFileError",
    "SymglepError",
    "Stack",
    "__version__",
    "derive",
    "load_model",
    "load_system",
    "network",
    "train",
    "train_stack",
]
