"""A chain of coupled nonlinear (Duffing) oscillators driven at one end.

L = Σ_i ẋ_i²/2 − Σ_i (w x_i²/2 + a x_i⁴/4) − Σ_i k_i (x_{i+1} − x_i)²/2 + x_0 u(t).
The couplings k_i are learned; the cost reads the last unit. Separable and
time-reversible: the system of the paper's first experiments.
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

N = 4
xs = dynamicsymbols(f"x0:{N}")
ks = sp.symbols(f"k0:{N - 1}", positive=True)
u, y = dynamicsymbols("u y")
w, a = sp.symbols("w a", positive=True)

kinetic = sum(xi.diff() ** 2 for xi in xs) / 2
onsite = sum(w * xi**2 / 2 + a * xi**4 / 4 for xi in xs)
coupling = sum(k * (xs[i + 1] - xs[i]) ** 2 / 2 for i, k in enumerate(ks))

model = symglep.Model(
    lagrangian=kinetic - onsite - coupling + xs[0] * u,
    coordinates=list(xs),
    parameters=list(ks),
    constants={w: 1.0, a: 0.5},
    inputs=[u],
    targets=[y],
    cost=(xs[-1] - y) ** 2 / 2,
    name="oscillator_chain",
)
