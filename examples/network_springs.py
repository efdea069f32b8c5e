"""A 2-D spring network over an edge list (array model with vector coordinates).

    L = Σ_i ½ |ẋ_i|² − Σ_(s,d)∈E ½ k_e (‖x_s − x_d‖ − l_e)² + Σ_i x_i,0 (B u)_i

x_i ∈ R² are node positions; the stiffnesses k_e and rest lengths l_e of the edges
are learned, and so is the input matrix B (forces along the first axis). The
default graph is a triangular lattice of rows of ⌈√n⌉ nodes (every edge of unit
length); the cost reads the horizontal position of the last n_y nodes.
"""

import math

import numpy as np

from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r


def lattice_edges(n):
    """Edges of a triangular lattice holding nodes 0..n-1 in rows of ceil(sqrt(n))."""
    side = math.ceil(math.sqrt(n))
    out = []
    for a in range(n):
        row, col = divmod(a, side)
        shift = row % 2  # odd rows sit half a spacing to the right
        ups = (a + side - 1 + shift, a + side + shift)  # the two neighbours in the next row
        if col + 1 < side and a + 1 < n:
            out.append((a, a + 1))
        for b in ups:
            b_col = b - (row + 1) * side
            if 0 <= b_col < side and b < n:
                out.append((a, b))
    return out


def lattice_positions(n, rng, noise=0.05):
    """Initial positions: the lattice (unit spacing, last node at the origin) plus noise, (n, 2)."""
    side = math.ceil(math.sqrt(n))
    rows, cols = np.divmod(np.arange(n), side)
    pos = np.stack([cols + 0.5 * (rows % 2), rows * math.sqrt(3) / 2], axis=1)
    return pos - pos[-1] + rng.uniform(-noise, noise, pos.shape)


x = Coordinates("x", dim=2)
E = Edges("E", default=lattice_edges)
k = Parameter("k", "e", positive=True, init=(0.5, 1.5))
l = Parameter("l", "e", positive=True, init=(0.95, 1.05))
B = Parameter("B", ("n", "m"), init=(-0.1, 0.1))
u = Inputs("u")
y = Targets("y")

model = ArrayModel(
    lagrangian=(Sum(x.dot[i].dot(x.dot[i]) / 2, i)
                - Sum(k[E.e] * ((x[E.src] - x[E.dst]).norm() - l[E.e]) ** 2 / 2, E)
                + Sum(x[i, 0] * (B @ u)[i], i)),
    cost=Sum((x[r, 0] - y[r]) ** 2 / 2, r),
    coordinates=x, parameters=[k, l, B], inputs=u, targets=y, edges=E,
    name="network_springs", size=64, sizes={"m": 2, "r": 2},
    initial_positions=lattice_positions,
)
