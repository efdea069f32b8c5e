"""BPTT in JAX of the same discrete integrator as symglep's network kernels (what a user would write).

The user writes the potential V(q; θ, u_k) and the cost c(q, y_k) in ``jax.numpy``, takes the
force with ``jax.grad``, steps Störmer–Verlet (kick–drift–kick, ``v = p/m``, theory §6) with
``lax.scan`` over the K steps, inputs and targets sampled at the nodes, and the trapezoid loss

    C_d = h Σ'_{k=0..K} c(q_k, y_k)        (weight ½ at k = 0 and k = K)

— the discrete loss the generated kernels differentiate. ``jax.jit(jax.vmap(jax.grad(C_d)))``
gives one gradient per sequence (θ, q0, p0), float64 on the CPU.

Models (the same as ``examples/network_chain.py`` and ``examples/network_hru.py``):

* chain: V = Σ (w x²/2 + a x⁴/4) + Σ_i k_i (x_i − x_{i+1})²/2 − Σ_i x_i (B u)_i, m = 1;
* hru:   V = Σ w q²/2 + Σ_k log cosh((A q)_k + (B u)_k + b_k), masses m learned.

The parameters are passed as a dict in the kernels' declaration order; :func:`flat` lays a
JAX gradient out like the generated kernels' flat ``dθ``.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

ORDER = {"chain": ("k", "B"), "hru": ("A", "B", "b", "m")}


def potential(model: str):
    """``V(q, theta, uk)`` and the masses ``mass(theta, n)`` of a model."""
    if model == "chain":
        w, a = 1.0, 0.5

        def V(x, th, uk):
            d = x[:-1] - x[1:]  # edges (i, i+1): edge i joins units i and i+1
            return (jnp.sum(w * x ** 2 / 2 + a * x ** 4 / 4) + jnp.sum(th["k"] * d ** 2) / 2
                    - jnp.dot(x, th["B"] @ uk))

        def mass(th, n):
            return jnp.ones(n)
    elif model == "hru":
        w = 1.0

        def V(q, th, uk):
            z = th["A"] @ q + th["B"] @ uk + th["b"]
            return jnp.sum(w * q ** 2) / 2 + jnp.sum(jnp.log(jnp.cosh(z)))

        def mass(th, n):
            return th["m"]
    else:
        raise ValueError(f"unknown model {model!r}")
    return V, mass


def loss_function(model: str, h: float):
    """``C_d(theta, q0, p0, u, y)`` of one sequence: leapfrog through lax.scan, trapezoid loss."""
    V, mass = potential(model)
    force = jax.grad(V)

    def cost(q, yk):
        r = yk.shape[0]
        return jnp.sum((q[-r:] - yk) ** 2) / 2

    def loss(th, q0, p0, u, y):
        m = mass(th, q0.shape[0])

        def step(carry, node):
            q, p, f = carry
            uk, yk = node
            ph = p - 0.5 * h * f
            q = q + (h / m) * ph
            f = force(q, th, uk)
            p = ph - 0.5 * h * f
            return (q, p, f), cost(q, yk)

        f0 = force(q0, th, u[0])
        _, c = lax.scan(step, (q0, p0, f0), (u[1:], y[1:]))
        return h * (0.5 * cost(q0, y[0]) + jnp.sum(c[:-1]) + 0.5 * c[-1])

    return loss


def gradient_function(model: str, h: float):
    """``jit(vmap(grad))``: (loss, dθ, dq0, dp0) per sequence; θ shared, the rest batched."""
    loss = loss_function(model, h)
    one = jax.value_and_grad(loss, argnums=(0, 1, 2))
    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0, 0, 0)))


def compiled(model: str, h: float, theta: dict, q0, p0, u, y):
    """Ahead-of-time compiled gradient for these shapes (compile time is not part of a call)."""
    fn = gradient_function(model, h)
    args = to_jax(theta, q0, p0, u, y)
    return fn.lower(*args).compile(), args


def to_jax(theta, q0, p0, u, y):
    return ({k: jnp.asarray(v, dtype=jnp.float64) for k, v in theta.items()},
            jnp.asarray(q0), jnp.asarray(p0), jnp.asarray(u), jnp.asarray(y))


def run(fn, args):
    """One call, finished (JAX dispatches asynchronously)."""
    out = fn(*args)
    jax.block_until_ready(out)
    return out


def flat(model: str, out) -> tuple:
    """``(loss, dθ flat (B, n_θ) in the kernels' order, dq0, dp0)`` as NumPy arrays."""
    value, (dth, dq0, dp0) = out
    batch = np.asarray(dq0).shape[0]
    parts = [np.asarray(dth[name]).reshape(batch, -1) for name in ORDER[model]]
    return np.asarray(value), np.concatenate(parts, axis=1), np.asarray(dq0), np.asarray(dp0)


def versions() -> str:
    import jaxlib

    return f"jax {jax.__version__}, jaxlib {jaxlib.__version__}"
