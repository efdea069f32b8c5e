"""Planar double pendulum (absolute angles) with learnable lengths and masses.

A torque u(t) drives the first joint; the cost pulls the second angle toward y(t).
The mass matrix depends on th1 − th2: not separable (midpoint integrator).
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

th1, th2 = dynamicsymbols("th1 th2")
u, y = dynamicsymbols("u y")
l1, l2, m1, m2 = sp.symbols("l1 l2 m1 m2", positive=True)
g = sp.Symbol("g", positive=True)

w1, w2 = th1.diff(), th2.diff()
kinetic = (m1 + m2) * l1**2 * w1**2 / 2 + m2 * l2**2 * w2**2 / 2 \
    + m2 * l1 * l2 * w1 * w2 * sp.cos(th1 - th2)
potential = -(m1 + m2) * g * l1 * sp.cos(th1) - m2 * g * l2 * sp.cos(th2)

model = symglep.Model(
    lagrangian=kinetic - potential + th1 * u,
    coordinates=[th1, th2],
    parameters=[l1, l2, m1, m2],
    constants={g: 9.81},
    inputs=[u],
    targets=[y],
    cost=(th2 - y) ** 2 / 2,
    name="double_pendulum",
)
