"""A charged particle in a uniform magnetic field B, in a quartic trap.

L = m(ẋ² + ẏ²)/2 + e B (x ẏ − y ẋ)/2 − k(x² + y²)/2 − a(x² + y²)²/4 + x u(t).
The magnetic term is odd in velocity: the model is NOT time-reversible, and
symglep reports that term (flipping B restores the symmetry, theory §4).
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

x, y = dynamicsymbols("x y")
u, target = dynamicsymbols("u target")
B, k = sp.symbols("B k", positive=True)
m, e, a = sp.symbols("m e a", positive=True)

r2 = x**2 + y**2
lagrangian = m * (x.diff() ** 2 + y.diff() ** 2) / 2 + e * B * (x * y.diff() - y * x.diff()) / 2 \
    - k * r2 / 2 - a * r2**2 / 4 + x * u

model = symglep.Model(
    lagrangian=lagrangian,
    coordinates=[x, y],
    parameters=[B, k],
    constants={m: 1.0, e: 1.0, a: 0.1},
    inputs=[u],
    targets=[target],
    cost=(y - target) ** 2 / 2,
    name="charged_particle",
)
