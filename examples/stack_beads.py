"""A stack whose bottom unit is not separable: two beads on parabolic wires feed an output oscillator pair.

    drive x --> beads on wires (implicit midpoint) --tanh(W0 (x0, x1) + b0)--> output oscillators (leapfrog)

* unit 0: two beads sliding on the wires z = κ x²/2, coupled by a spring and driven at bead 0.
  The arc length makes the mass read the position,
  L = Σ_i ½ m (1 + κ² x_i²) ẋ_i² − Σ_i ½ w x_i² − ½ c (x1 − x0)² + x0 drive,
  so L is not separable and the unit runs the implicit midpoint rule (theory §6) with its
  inputs averaged over each step; m, κ and c are learned. Readout (x0, x1).
* unit 1: two coupled oscillators driven at s0; the cost reads s1: c = (s1 − y)²/2 (leapfrog).

The stacked echo steps the beads by the midpoint rule and the oscillators by the leapfrog,
in lockstep (theory §9, midpoint units); `symglep check` compares it with BPTT through the
stack and with finite differences.

Run: symglep check examples/stack_beads.py
     symglep train examples/stack_beads.py --task sine --epochs 100
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

# unit 0: beads on parabolic wires (position-dependent mass)
xs = dynamicsymbols("x0:2")
drive = dynamicsymbols("drive")
m, kappa, c = sp.symbols("m kappa c", positive=True)
w = sp.Symbol("w", positive=True)
beads = symglep.Model(
    lagrangian=(sum(m * (1 + kappa**2 * x**2) * x.diff() ** 2 / 2 for x in xs)
                - sum(w * x**2 / 2 for x in xs) - c * (xs[1] - xs[0]) ** 2 / 2 + xs[0] * drive),
    coordinates=list(xs), parameters=[m, kappa, c], constants={w: 1.0}, inputs=[drive], name="beads")

# unit 1: output oscillators with the cost
ss = dynamicsymbols("s0:2")
f, y = dynamicsymbols("f y")
k1, w1 = sp.symbols("k1 w1", positive=True)
out = symglep.Model(
    lagrangian=(sum(s.diff() ** 2 for s in ss) / 2 - w1 * sum(s**2 for s in ss) / 2
                - k1 * (ss[1] - ss[0]) ** 2 / 2 + ss[0] * f),
    coordinates=list(ss), parameters=[k1, w1], inputs=[f], targets=[y], cost=(ss[1] - y) ** 2 / 2,
    name="output")

stack = symglep.Stack([beads, out], readouts=[[xs[0], xs[1]]], activations=["tanh"], name="stack_beads")
