"""Hamiltonian Echo Backpropagation (HEB): learn the initial state of a nonlinear oscillator.

A planar anharmonic (Duffing-type) oscillator with a cross coupling k:

    L = (ẋ² + ż²)/2 − w (x² + z²)/2 − a (x² + z²)²/4 − k x z

No running cost: only the terminal cost c_T = ((x − x_goal)² + (z − z_goal)²)/2 at t = T, with the
targets x_goal, z_goal read at the final node. In HEB's setting the parameters stay fixed and the
learning sits in the initial state (q0, p0):

    symglep train examples/heb_nonlinear_oscillator.py --task target \\
        --learn-initial-state --freeze-parameters

The gradient with respect to the start comes from the echo's end state (theory §5), the echo
starting from the final momentum kicked by −β ∂c_T/∂q and flipped (theory §10).
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

x, z = dynamicsymbols("x z")
x_goal, z_goal = dynamicsymbols("x_goal z_goal")
k = sp.symbols("k")
w, a = sp.symbols("w a", positive=True)

r2 = x**2 + z**2
model = symglep.Model(
    lagrangian=(x.diff() ** 2 + z.diff() ** 2) / 2 - w * r2 / 2 - a * r2**2 / 4 - k * x * z,
    coordinates=[x, z],
    parameters=[k],
    constants={w: 1.0, a: 1.0},
    targets=[x_goal, z_goal],
    terminal_cost=((x - x_goal) ** 2 + (z - z_goal) ** 2) / 2,
    name="heb_nonlinear_oscillator",
)
