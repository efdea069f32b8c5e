"""A particle in an anisotropic trap seen from a frame rotating at a FIXED rate Ω (theory §4).

L = (ẋ² + ẏ²)/2 + Ω (x ẏ − y ẋ) − kx x²/2 − ky y²/2 − a (x² + y²)²/4 + x u(t).
The gyroscopic (Coriolis) term is odd in velocity, and its coefficient Ω is a
constant: constants are fixed knobs that symglep never flips, so no parameter
flip restores time reversal. The exact route is digital PFVP: the nudged system
integrated backward in time on a computer (not forward-only in hardware).
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

x, y = dynamicsymbols("x y")
u, target = dynamicsymbols("u target")
kx, ky = sp.symbols("kx ky", positive=True)
Omega, a = sp.symbols("Omega a", positive=True)

r2 = x**2 + y**2
model = symglep.Model(
    lagrangian=(x.diff() ** 2 + y.diff() ** 2) / 2 + Omega * (x * y.diff() - y * x.diff())
    - kx * x**2 / 2 - ky * y**2 / 2 - a * r2**2 / 4 + x * u,
    coordinates=[x, y],
    parameters=[kx, ky],
    constants={Omega: 0.7, a: 0.1},
    inputs=[u],
    targets=[target],
    cost=(y - target) ** 2 / 2,
    name="gyroscope",
)
