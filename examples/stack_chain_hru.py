"""A stack of three Hamiltonian units (RHEL's deep model), trained end to end (docs/echo-family.md).

    oscillator chain  --(linear glue)-->  HRU-style unit  --(tanh glue)-->  output oscillator

* unit 0: three coupled Duffing oscillators driven at x0 (couplings k0, k1 learned);
  readout (x1, x2);
* unit 1: a two-coordinate Hamiltonian recurrent unit with log cosh projections,
  L = Σ ż²/2 − Σ w z²/2 − Σ_j log cosh(A_j0 z0 + A_j1 z1 + B_j v + c_j); readout (z0, z1);
* unit 2: two coupled oscillators driven at s0, the cost reads s1: c = (s1 − y)²/2.

Glue 0: v = W0 (x1, x2) + b0; glue 1: drive = tanh(W1 (z0, z1) + b1).
Run: symglep train examples/stack_chain_hru.py --task sine --epochs 400
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

# unit 0: oscillator chain
xs = dynamicsymbols("x0:3")
k = sp.symbols("k0:2", positive=True)
drive = dynamicsymbols("drive")
w, a = sp.symbols("w a", positive=True)
chain = symglep.Model(
    lagrangian=(sum(x.diff() ** 2 for x in xs) / 2 - sum(w * x**2 / 2 + a * x**4 / 4 for x in xs)
                - sum(ki * (xs[i + 1] - xs[i]) ** 2 / 2 for i, ki in enumerate(k)) + xs[0] * drive),
    coordinates=list(xs), parameters=list(k), constants={w: 1.0, a: 0.5}, inputs=[drive], name="chain")

# unit 1: HRU-style unit with log cosh projections
zs = dynamicsymbols("z0:2")
v = dynamicsymbols("v")
A = sp.symbols("A0:2_0:2")
B = sp.symbols("B0:2")
c = sp.symbols("c0:2")
w1 = sp.Symbol("w1", positive=True)
proj = [A[2 * j] * zs[0] + A[2 * j + 1] * zs[1] + B[j] * v + c[j] for j in range(2)]
hru = symglep.Model(
    lagrangian=sum(z.diff() ** 2 for z in zs) / 2 - sum(w1 * z**2 / 2 for z in zs) - sum(sp.log(sp.cosh(e)) for e in proj),
    coordinates=list(zs), parameters=list(A) + list(B) + list(c), constants={w1: 1.0}, inputs=[v], name="hru")

# unit 2: output oscillators with the cost
ss = dynamicsymbols("s0:2")
f, y = dynamicsymbols("f y")
kappa, w2 = sp.symbols("kappa w2", positive=True)
out = symglep.Model(
    lagrangian=(sum(s.diff() ** 2 for s in ss) / 2 - w2 * sum(s**2 for s in ss) / 2
                - kappa * (ss[1] - ss[0]) ** 2 / 2 + ss[0] * f),
    coordinates=list(ss), parameters=[kappa, w2], inputs=[f], targets=[y], cost=(ss[1] - y) ** 2 / 2,
    name="output")

stack = symglep.Stack([chain, hru, out], readouts=[[xs[1], xs[2]], [zs[0], zs[1]]],
                      activations=[None, "tanh"], name="stack_chain_hru")
