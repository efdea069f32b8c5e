"""A damped driven oscillator in the Caldirola–Kanai form (theory §7).

L = exp(γ t) (m ẋ²/2 − k x²/2 + x u(t)) gives ẍ + γ ẋ + (k/m) x = u/m.
Explicitly time-dependent but even in velocity: time-reversible, provided the
echo replays exp(γ t) reversed. Not separable (the kinetic part depends on t).
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

x = dynamicsymbols("x")
u, y = dynamicsymbols("u y")
k, m = sp.symbols("k m", positive=True)
gamma = sp.Symbol("gamma", positive=True)
t = dynamicsymbols._t

model = symglep.Model(
    lagrangian=sp.exp(gamma * t) * (m * x.diff() ** 2 / 2 - k * x**2 / 2 + x * u),
    coordinates=[x],
    parameters=[k, m],
    constants={gamma: 0.1},
    inputs=[u],
    targets=[y],
    cost=(x - y) ** 2 / 2,
    name="damped_oscillator",
)
