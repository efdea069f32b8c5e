"""A relativistic particle (c = 1) in a driven harmonic well.

L = −m sqrt(1 − ẋ²) − k x²/2 + x u(t). The kinetic term is not quadratic;
the Legendre transform still inverts in closed form (H = sqrt(m² + p²) + k x²/2 − x u).
Separable, time-reversible.
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

x = dynamicsymbols("x")
u, y = dynamicsymbols("u y")
m, k = sp.symbols("m k", positive=True)

model = symglep.Model(
    lagrangian=-m * sp.sqrt(1 - x.diff() ** 2) - k * x**2 / 2 + x * u,
    coordinates=[x],
    parameters=[m, k],
    inputs=[u],
    targets=[y],
    cost=(x - y) ** 2 / 2,
    name="relativistic_particle",
)
