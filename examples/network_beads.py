"""Beads on parabolic wires, coupled by learned springs (array model with a position-dependent mass).

    L = Σ_i ½ m_i (1 + κ² x_i²) ẋ_i² − Σ_i ½ g κ m_i x_i² − Σ_(i,i+1)∈E ½ k_e (x_i − x_{i+1})² + Σ_i x_i (B u)_i

Bead i slides without friction on a wire z = κ x²/2 in a vertical plane: its speed² is
(1 + κ² x_i²) ẋ_i², so the kinetic term reads the bead's position and L is not separable. symglep
runs it with the implicit midpoint rule (theory §6). The masses m_i, the wires' curvature κ,
the spring constants k_e and the input matrix B are learned; the cost reads the last bead.
"""

import sympy as sp

from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r


def chain_edges(n):
    """Nearest neighbours (i, i + 1) of a chain of n beads."""
    return [(a, a + 1) for a in range(n - 1)]


x = Coordinates("x")
E = Edges("E", default=chain_edges)
m = Parameter("m", "n", positive=True, init=(0.8, 1.2))
k = Parameter("k", "e", positive=True, init=(0.5, 1.5))
B = Parameter("B", ("n", "m"), init=(-0.5, 0.5))
kappa = sp.Symbol("kappa", positive=True)
u = Inputs("u")
y = Targets("y")
g = sp.Symbol("g", positive=True)

model = ArrayModel(
    lagrangian=(Sum(m[i] * (1 + kappa ** 2 * x[i] ** 2) * x.dot[i] ** 2 / 2, i)
                - Sum(g * kappa * m[i] * x[i] ** 2 / 2, i)
                - Sum(k[E.e] * (x[E.src] - x[E.dst]) ** 2 / 2, E)
                + Sum(x[i] * (B @ u)[i], i)),
    cost=Sum((x[r] - y[r]) ** 2 / 2, r),
    coordinates=x, parameters=[m, k, B, kappa], inputs=u, targets=y, edges=E,
    constants={g: 1.0},
    name="network_beads", size=8, sizes={"m": 1, "r": 1},
)
