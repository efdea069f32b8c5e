"""A dense network of Duffing units with learnable all-to-all couplings (array model).

    L = Σ_i ½ q̇_i² − Σ_i (w q_i²/2 + a q_i⁴/4) + ½ Σ_ij W_ij tanh(q_i) tanh(q_j) + Σ_i q_i (B u)_i

W (n × n, not symmetric) and B (n × m) are learned; the cost reads the last n_y units.
n is a run-time size: `size` is only the default of the commands.
"""

import sympy as sp

from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, j, r

q = Coordinates("q")
W = Parameter("W", ("n", "n"))
B = Parameter("B", ("n", "m"))
u = Inputs("u")
y = Targets("y")
w, a = sp.symbols("w a", positive=True)

model = ArrayModel(
    lagrangian=(Sum(q.dot[i] ** 2 / 2, i)
                - Sum(w * q[i] ** 2 / 2 + a * q[i] ** 4 / 4, i)
                + Sum(W[i, j] * sp.tanh(q[i]) * sp.tanh(q[j]) / 2, i, j)
                + Sum(q[i] * (B @ u)[i], i)),
    cost=Sum((q[r] - y[r]) ** 2 / 2, r),
    coordinates=q, parameters=[W, B], inputs=u, targets=y,
    constants={w: 1.0, a: 0.5},
    name="network_dense", size=64, sizes={"m": 2, "r": 2},
)
