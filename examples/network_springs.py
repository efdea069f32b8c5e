"""A 2-D spring network over an edge list (array model with vector coordinates).

    L = Σ_i ½ m |ẋ_i|² − Σ_(s,d)∈E ½ k_e (‖x_s − x_d‖ − l_e)² + Σ_i x_i,0 (B u)_i

x_i ∈ R² are node positions; the stiffnesses k_e and rest lengths l_e of the edges
are learned, and so is the input matrix B. The default graph is a square grid of
side ⌈√n⌉ with horizontal, vertical and one diagonal edge per cell; the cost reads
the horizontal position of the last n_y nodes.
"""

import math

import numpy as np

from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r


def grid_edges(n):
    """Edges of a square grid of side ceil(sqrt(n)) holding nodes 0..n-1 row by row."""
    side = math.ceil(math.sqrt(n))
    out = []
    for a in range(n):
        row, col = divmod(a, side)
        for b in (a + 1 if col + 1 < side else None, a + side, a + side + 1 if col + 1 < side else None):
            if b is not None and b < n:
                out.append((a, b))
    return out


def grid_positions(n, rng, noise=0.05):
    """Initial positions: the grid (unit spacing) plus uniform noise, shape (n, 2)."""
    side = math.ceil(math.sqrt(n))
    pos = np.array([divmod(a, side)[::-1] for a in range(n)], dtype=float)
    return pos + rng.uniform(-noise, noise, pos.shape)


x = Coordinates("x", dim=2)
E = Edges("E", default=grid_edges)
k = Parameter("k", "e", positive=True)
l = Parameter("l", "e", positive=True)
B = Parameter("B", ("n", "m"))
u = Inputs("u")
y = Targets("y")

model = ArrayModel(
    lagrangian=(Sum(x.dot[i].dot(x.dot[i]) / 2, i)
                - Sum(k[E.e] * ((x[E.src] - x[E.dst]).norm() - l[E.e]) ** 2 / 2, E)
                + Sum(x[i, 0] * (B @ u)[i], i)),
    cost=Sum((x[r, 0] - y[r]) ** 2 / 2, r),
    coordinates=x, parameters=[k, l, B], inputs=u, targets=y, edges=E,
    name="network_springs", size=64, sizes={"m": 2, "r": 2},
    initial_positions=grid_positions,
)
