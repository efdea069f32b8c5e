"""A damped chain of Duffing oscillators that learns its damping rate (array model, theory §7).

    L = Σ_i ½ m_i ẋ_i² − Σ_i (w x_i²/2 + a x_i⁴/4) − Σ_(i,i+1)∈E ½ k_e (x_i − x_{i+1})² + Σ_i x_i (B u)_i,
    R = γ Σ_i ½ m_i ẋ_i²

examples/network_chain.py with learned masses and uniform linear damping whose rate γ is a
parameter: symglep runs the Caldirola–Kanai Lagrangian e^{γt} L (the echo stays exact) and learns
γ with the springs k_e, the masses m_i and the input matrix B. The learning rule of γ is
∂(e^{γt} L)/∂γ = t e^{γt} (K − V): it reads every unit (a global parameter, like a shared gain).
"""

import sympy as sp

from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r


def chain_edges(n):
    """Nearest neighbours (i, i + 1) of a chain of n units."""
    return [(a, a + 1) for a in range(n - 1)]


x = Coordinates("x")
E = Edges("E", default=chain_edges)
k = Parameter("k", "e", positive=True, init=(0.5, 1.5))
m = Parameter("m", "n", positive=True, init=(0.8, 1.2))
B = Parameter("B", ("n", "m"), init=(-0.5, 0.5))
gamma = sp.Symbol("gamma", positive=True)  # the damping rate, learned
u = Inputs("u")
y = Targets("y")
w, a = sp.symbols("w a", positive=True)

model = ArrayModel(
    lagrangian=(Sum(m[i] * x.dot[i] ** 2 / 2, i)
                - Sum(w * x[i] ** 2 / 2 + a * x[i] ** 4 / 4, i)
                - Sum(k[E.e] * (x[E.src] - x[E.dst]) ** 2 / 2, E)
                + Sum(x[i] * (B @ u)[i], i)),
    dissipation=Sum(gamma * m[i] * x.dot[i] ** 2 / 2, i),
    cost=Sum((x[r] - y[r]) ** 2 / 2, r),
    coordinates=x, parameters=[k, m, B, gamma], inputs=u, targets=y, edges=E,
    constants={w: 1.0, a: 0.5},
    name="network_learned_damping", size=8, sizes={"m": 1, "r": 1},
)
