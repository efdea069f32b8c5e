"""A chain of coupled Duffing oscillators with a running cost AND a final-time cost (theory §10).

L = Σ_i ẋ_i²/2 − Σ_i (w x_i²/2 + a x_i⁴/4) − Σ_i k_i (x_{i+1} − x_i)²/2 + x_0 u(t), as in
oscillator_chain.py. The running cost reads the last unit along the way, the terminal
cost asks the whole chain to end at rest at the target y_T of the last unit:
c_T = (x_3 − y_T)² + Σ_{i<3} x_i²/2 at t = T. Separable and time-reversible.
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

N = 4
xs = dynamicsymbols(f"x0:{N}")
ks = sp.symbols(f"k0:{N - 1}", positive=True)
u, y, y_T = dynamicsymbols("u y y_T")
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
    targets=[y, y_T],
    cost=(xs[-1] - y) ** 2 / 2,
    terminal_cost=(xs[-1] - y_T) ** 2 + sum(xi**2 for xi in xs[:-1]) / 2,
    name="oscillator_chain_terminal",
)
