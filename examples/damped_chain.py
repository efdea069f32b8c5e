"""A chain of coupled Duffing oscillators with uniform linear damping (theory §7).

L = Σ_i ẋ_i²/2 − Σ_i (w x_i²/2 + a x_i⁴/4) − Σ_i k_i (x_{i+1} − x_i)²/2 + x_0 u(t),
Rayleigh dissipation R = γ Σ_i ẋ_i²/2. The damping force γ ẋ is γ times the
momentum for every unit, so symglep rewrites the model into the Caldirola–Kanai
Lagrangian exp(γ t) L: the echo stays exact (anti-damped in echo time).
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

N = 3
xs = dynamicsymbols(f"x0:{N}")
ks = sp.symbols(f"k0:{N - 1}", positive=True)
u, y = dynamicsymbols("u y")
w, a, gamma = sp.symbols("w a gamma", positive=True)

kinetic = sum(xi.diff() ** 2 for xi in xs) / 2
onsite = sum(w * xi**2 / 2 + a * xi**4 / 4 for xi in xs)
coupling = sum(k * (xs[i + 1] - xs[i]) ** 2 / 2 for i, k in enumerate(ks))

model = symglep.Model(
    lagrangian=kinetic - onsite - coupling + xs[0] * u,
    coordinates=list(xs),
    parameters=list(ks),
    constants={w: 1.0, a: 0.5, gamma: 0.2},
    inputs=[u],
    targets=[y],
    cost=(xs[-1] - y) ** 2 / 2,
    dissipation=gamma * kinetic,
    name="damped_chain",
)
