"""A stack of two Hamiltonian recurrent layers (array models): RHEL's deep HRU model, in small.

    drive x --> HRU layer 0 (n units) --tanh(W0 q + b0)--> HRU layer 1 (n units) --> cost on its last unit

Each layer is the nonlinear HRU of examples/network_hru.py, an array model of n units

    L = Σ_i ½ m_i q̇_i² − Σ_i ½ w q_i² − Σ_k log cosh((A q)_k + (B u)_k + b_k)

with A (n × n), B (n × m), b and the masses m learned. Layer 1 reads all n coordinates of
layer 0 through the dense glue u = tanh(W0 q + b0) (W0: n × n); its cost reads its last unit.
The stacked echo trains every layer and the glue (theory §9); change N for wider layers (RHEL
uses 64 units per layer: the generated loops do not grow with n).

Run: symglep train examples/stack_hru.py --task sine --epochs 200 --lr 0.01
"""

import sympy as sp

import symglep
from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, k, r

N = 8  # units per layer


def hru_layer(name: str, inputs: int) -> ArrayModel:
    """One HRU layer of N units driven by `inputs` inputs through B; its cost reads the last unit."""
    q = Coordinates("q")
    A = Parameter("A", ("n", "n"))
    B = Parameter("B", ("n", "m"))
    b = Parameter("b", "n")
    m = Parameter("m", "n", positive=True)
    u = Inputs("u")
    y = Targets("y")
    w = sp.Symbol("w", positive=True)
    return ArrayModel(
        lagrangian=(Sum(m[i] * q.dot[i] ** 2 / 2, i)
                    - Sum(w * q[i] ** 2 / 2, i)
                    - Sum(sp.log(sp.cosh((A @ q)[k] + (B @ u)[k] + b[k])), k)),
        cost=Sum((q[r] - y[r]) ** 2 / 2, r),
        coordinates=q, parameters=[A, B, b, m], inputs=u, targets=y, constants={w: 1.0},
        name=name, size=N, sizes={"m": inputs, "r": 1},
    )


layer0 = hru_layer("hru_layer0", inputs=1)
layer1 = hru_layer("hru_layer1", inputs=N)

stack = symglep.Stack([layer0, layer1], readouts=["all"], activations=["tanh"], name="stack_hru")
