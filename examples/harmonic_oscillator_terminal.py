"""Driven harmonic oscillator with a cost only at the final time (HEB's setting, theory §10).

L = m ẋ²/2 − k x²/2 + x u(t); no running cost: the terminal cost c_T = (x(T) − y_T)²/2
asks the oscillator to end at the target y_T (the target series read at its final node).
The echo starts from the flipped final momentum kicked by −β ∂c_T/∂x and otherwise runs
un-nudged. Learnable k, m, and (with ``symglep train --learn-initial-state``) the start.
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

x = dynamicsymbols("x")
u, y_T = dynamicsymbols("u y_T")
k, m = sp.symbols("k m", positive=True)

model = symglep.Model(
    lagrangian=m * x.diff() ** 2 / 2 - k * x**2 / 2 + x * u,
    coordinates=[x],
    parameters=[k, m],
    inputs=[u],
    targets=[y_T],
    terminal_cost=(x - y_T) ** 2 / 2,
    name="harmonic_oscillator_terminal",
)
