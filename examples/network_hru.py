"""A Hamiltonian recurrent unit network with a log-cosh projection (array model).

    L = Σ_i ½ m_i q̇_i² − Σ_i ½ w q_i² − Σ_k log cosh((A q)_k + (B u)_k + b_k)

the nonlinear HRU of RHEL: A (n × n), B (n × m), b (n) and the masses m (n) are
learned; the cost reads the last n_y units.
"""

import sympy as sp

from symglep.network import ArrayModel, Coordinates, Inputs, Parameter, Sum, Targets, i, k, r

q = Coordinates("q")
A = Parameter("A", ("n", "n"))
B = Parameter("B", ("n", "m"))
b = Parameter("b", "n")
m = Parameter("m", "n", positive=True)
u = Inputs("u")
y = Targets("y")
w = sp.Symbol("w", positive=True)

model = ArrayModel(
    lagrangian=(Sum(m[i] * q.dot[i] ** 2 / 2, i)
                - Sum(w * q[i] ** 2 / 2, i)
                - Sum(sp.log(sp.cosh((A @ q)[k] + (B @ u)[k] + b[k])), k)),
    cost=Sum((q[r] - y[r]) ** 2 / 2, r),
    coordinates=q, parameters=[A, B, b, m], inputs=u, targets=y,
    constants={w: 1.0},
    name="network_hru", size=64, sizes={"m": 2, "r": 2},
)
