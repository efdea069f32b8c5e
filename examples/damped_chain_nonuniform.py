"""The damped Duffing chain with a different damping rate on each unit (theory §7).

Same Lagrangian as examples/damped_chain.py, Rayleigh dissipation
R = Σ_i γ_i ẋ_i²/2 with γ = (0.1, 0.2, 0.3). No rewriting makes this variational:
symglep reports that no exact echo or PFVP rule applies and uses BPTT as the
reference; the naive echo runs only behind naive_echo=True (--naive-echo),
which also measures its bias.
"""

import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep

N = 3
xs = dynamicsymbols(f"x0:{N}")
ks = sp.symbols(f"k0:{N - 1}", positive=True)
gammas = sp.symbols(f"gamma0:{N}", positive=True)
u, y = dynamicsymbols("u y")
w, a = sp.symbols("w a", positive=True)

kinetic = sum(xi.diff() ** 2 for xi in xs) / 2
onsite = sum(w * xi**2 / 2 + a * xi**4 / 4 for xi in xs)
coupling = sum(k * (xs[i + 1] - xs[i]) ** 2 / 2 for i, k in enumerate(ks))

model = symglep.Model(
    lagrangian=kinetic - onsite - coupling + xs[0] * u,
    coordinates=list(xs),
    parameters=list(ks),
    constants={w: 1.0, a: 0.5, gammas[0]: 0.1, gammas[1]: 0.2, gammas[2]: 0.3},
    inputs=[u],
    targets=[y],
    cost=(xs[-1] - y) ** 2 / 2,
    dissipation=sum(g * xi.diff() ** 2 / 2 for g, xi in zip(gammas, xs)),
    name="damped_chain_nonuniform",
)
