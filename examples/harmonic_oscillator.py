"""Driven harmonic oscillator with learnable stiffness k and mass m.

L = m ẋ²/2 − k x²/2 + x u(t); the cost pulls x toward the target y(t).
Separable, time-reversible, regular: the simplest system to learn with.
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

x = dynamicsymbols("x")
u, y = dynamicsymbols("u y")
k, m = sp.symbols("k m", positive=True)

model = symglep.Model(
    lagrangian=m * x.diff() ** 2 / 2 - k * x**2 / 2 + x * u,
    coordinates=[x],
    parameters=[k, m],
    inputs=[u],
    targets=[y],
    cost=(x - y) ** 2 / 2,
    name="harmonic_oscillator",
)
