"""The HRU network of examples/network_hru.py with uniform linear damping (array model, theory §7).

    L = Σ_i ½ m_i q̇_i² − Σ_i ½ w q_i² − Σ_k log cosh((A q)_k + (B u)_k + b_k),
    R = γ Σ_i ½ m_i q̇_i²

The damping force γ m_i q̇_i is γ times each unit's momentum, so symglep runs the model as the
Caldirola–Kanai Lagrangian e^{γt} L: the free run is damped, the echo replays e^{γt} reversed
(anti-damped in echo time) and stays exact. A, B, b and the masses m are learned; γ is fixed.
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
w, gamma = sp.symbols("w gamma", positive=True)

model = ArrayModel(
    lagrangian=(Sum(m[i] * q.dot[i] ** 2 / 2, i)
                - Sum(w * q[i] ** 2 / 2, i)
                - Sum(sp.log(sp.cosh((A @ q)[k] + (B @ u)[k] + b[k])), k)),
    dissipation=Sum(gamma * m[i] * q.dot[i] ** 2 / 2, i),
    cost=Sum((q[r] - y[r]) ** 2 / 2, r),
    coordinates=q, parameters=[A, B, b, m], inputs=u, targets=y,
    constants={w: 1.0, gamma: 0.3},
    name="network_damped_hru", size=16, sizes={"m": 2, "r": 2},
)
