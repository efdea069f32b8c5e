"""Cart-pole written the sympy.physics.mechanics way: frames, points, particles, ``Lagrangian``.

A cart of mass M slides along the x axis of the inertial frame N; a bob of
mass m hangs from it on a massless rod of length l at angle theta from the
downward vertical. ``Lagrangian(N, cart, bob)`` gives T − V in dynamicsymbols;
symglep takes it as is. A force u(t) pushes the cart; the cost pulls the angle
toward y(t). The mass matrix depends on theta: not separable (midpoint integrator).
"""

import sympy as sp
from sympy.physics.mechanics import Lagrangian, Particle, Point, ReferenceFrame, dynamicsymbols

import symglep

x, theta = dynamicsymbols("x theta")
u, y = dynamicsymbols("u y")
M, m, l = sp.symbols("M m l", positive=True)
g = sp.Symbol("g", positive=True)

N = ReferenceFrame("N")
origin = Point("O")
origin.set_vel(N, 0)
cart_point = origin.locatenew("C", x * N.x)
cart_point.set_vel(N, cart_point.pos_from(origin).dt(N))
bob_point = cart_point.locatenew("B", l * sp.sin(theta) * N.x - l * sp.cos(theta) * N.y)
bob_point.set_vel(N, bob_point.pos_from(origin).dt(N))

cart = Particle("cart", cart_point, M)
bob = Particle("bob", bob_point, m)
bob.potential_energy = m * g * bob_point.pos_from(origin).dot(N.y)

model = symglep.Model(
    lagrangian=Lagrangian(N, cart, bob) + x * u,
    coordinates=[x, theta],
    parameters=[M, m, l],
    constants={g: 9.81},
    inputs=[u],
    targets=[y],
    cost=(theta - y) ** 2 / 2,
    name="cart_pole",
)
