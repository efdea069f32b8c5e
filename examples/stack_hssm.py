"""A deep Hamiltonian state-space model (HSSM) for time-series classification: RHEL's model, in symglep.

    series x --linear encoder--> HRU layer 0 --GELU(W0 q + b0)--> HRU layer 1 --mean over time--> softmax head

Each layer is RHEL's diagonal nonlinear HRU (its NonlinHRU), an array model of n oscillators

    H = Σ_i ½ p_i² + Σ_i ½ α q_i² + Σ_i c_i log cosh(w_i q_i + (B u)_i + b_i) / w_i

(unit masses, α fixed; B (n × m), b, c and w learned, w > 0): each oscillator is coupled to the
others only through the input matrix B of the layer above. Layer 1 reads all n coordinates of layer 0
through the dense glue u = GELU(W0 q + b0). The top layer's cost is linear in its targets,
c = Σ_r y_r q_r: a classification head is not a running cost, so the trainer puts the head's
cotangents into y (the cotangent-driven echo, theory §12) and the echo returns the exact gradient
of the head's loss.

Train and print the test accuracy (docs/classification.md):

    symglep train examples/stack_hssm.py --task uea:BasicMotions --epochs 60 --batch 8 --lr 0.01

``dense_hssm`` is the variant whose layers are the dense-coupled HRU of examples/network_hru.py.
"""

import sympy as sp

import symglep
from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, k, r

N = 16       # oscillators per layer
M = 8        # inputs of the bottom layer (the encoder maps the data's channels onto them)
ALPHA = 1.0  # the oscillators' stiffness α


def gelu(z):
    """GELU, ``z Φ(z)`` with the exact normal CDF."""
    return z * (1 + sp.erf(z / sp.sqrt(2))) / 2


def diagonal_hru(name: str, inputs: int) -> ArrayModel:
    """RHEL's nonlinear HRU layer of N oscillators driven by ``inputs`` inputs; linear readout cost."""
    q = Coordinates("q")
    B = Parameter("B", ("n", "m"))
    b = Parameter("b", "n")
    c = Parameter("c", "n", init=(0.5, 1.5))
    w = Parameter("w", "n", positive=True)
    u = Inputs("u")
    y = Targets("y")
    alpha = sp.Symbol("alpha", positive=True)
    return ArrayModel(
        lagrangian=(Sum(q.dot[i] ** 2 / 2, i) - Sum(alpha * q[i] ** 2 / 2, i)
                    - Sum(c[k] * sp.log(sp.cosh(w[k] * q[k] + (B @ u)[k] + b[k])) / w[k], k)),
        cost=Sum(y[r] * q[r], r),
        coordinates=q, parameters=[B, b, c, w], inputs=u, targets=y, constants={alpha: ALPHA},
        name=name, size=N, sizes={"m": inputs, "r": N},
    )


def dense_hru(name: str, inputs: int) -> ArrayModel:
    """The dense-coupled HRU of examples/network_hru.py (unit masses), with the linear readout cost."""
    q = Coordinates("q")
    A = Parameter("A", ("n", "n"))
    B = Parameter("B", ("n", "m"))
    b = Parameter("b", "n")
    u = Inputs("u")
    y = Targets("y")
    alpha = sp.Symbol("alpha", positive=True)
    return ArrayModel(
        lagrangian=(Sum(q.dot[i] ** 2 / 2, i) - Sum(alpha * q[i] ** 2 / 2, i)
                    - Sum(sp.log(sp.cosh((A @ q)[k] + (B @ u)[k] + b[k])), k)),
        cost=Sum(y[r] * q[r], r),
        coordinates=q, parameters=[A, B, b], inputs=u, targets=y, constants={alpha: ALPHA},
        name=name, size=N, sizes={"m": inputs, "r": N},
    )


stack = symglep.Stack([diagonal_hru("hssm_layer0", M), diagonal_hru("hssm_layer1", N)],
                      readouts=["all"], activations=[gelu], name="stack_hssm")

dense_hssm = symglep.Stack([dense_hru("dense_hssm_layer0", M), dense_hru("dense_hssm_layer1", N)],
                           readouts=["all"], activations=[gelu], name="dense_hssm")
