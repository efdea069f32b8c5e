"""A chain of Duffing oscillators coupled by learned springs (array model over an edge list).

    L = Σ_i ½ ẋ_i² − Σ_i (w x_i²/2 + a x_i⁴/4) − Σ_(i,i+1)∈E ½ k_e (x_i − x_{i+1})² + Σ_i x_i (B u)_i

the n-unit version of examples/oscillator_chain.py (which spells out N = 4 units one
symbol each): the spring constants k_e of the n − 1 nearest-neighbour edges and the
input matrix B (n × 1; B = e_0 drives the first unit only, x_0 u) are learned; the
cost reads the last unit. benchmarks/run.py times it at n = 16, 64 and 256. The default size
is 16: in T = 10 (symglep check's 1000 steps of 0.01) a disturbance crosses ~10 springs, so in a
longer chain most parameters have gradients near zero, and a finite-difference check of a few
drawn entries compares round-off.
"""

import sympy as sp

from symglep.network import ArrayModel, Coordinates, Edges, Inputs, Parameter, Sum, Targets, i, r


def chain_edges(n):
    """Nearest neighbours (i, i + 1) of a chain of n units."""
    return [(a, a + 1) for a in range(n - 1)]


x = Coordinates("x")
E = Edges("E", default=chain_edges)
k = Parameter("k", "e", positive=True, init=(0.5, 1.5))
B = Parameter("B", ("n", "m"), init=(-0.5, 0.5))
u = Inputs("u")
y = Targets("y")
w, a = sp.symbols("w a", positive=True)

model = ArrayModel(
    lagrangian=(Sum(x.dot[i] ** 2 / 2, i)
                - Sum(w * x[i] ** 2 / 2 + a * x[i] ** 4 / 4, i)
                - Sum(k[E.e] * (x[E.src] - x[E.dst]) ** 2 / 2, E)
                + Sum(x[i] * (B @ u)[i], i)),
    cost=Sum((x[r] - y[r]) ** 2 / 2, r),
    coordinates=x, parameters=[k, B], inputs=u, targets=y, edges=E,
    constants={w: 1.0, a: 0.5},
    name="network_chain", size=16, sizes={"m": 1, "r": 1},
)
