"""A plain JAX model with two symglep layers, a GLU between them and a softmax head, trained with optax
(docs/jax.md). Both layers' backward passes are echoes; JAX autodiff handles the rest.

Task: tell two drive frequencies apart from a noisy series. The series drives layer 1 (two coupled
oscillators, examples in tests/test_jax.py's ``coupled_model``); a GLU maps its coordinates to the
input of layer 2 (a harmonic oscillator); the head reads layer 2's mean coordinate.

    python docs/jax_example.py [--steps N]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy as sp
from sympy.physics.mechanics import dynamicsymbols

import symglep
import symglep.jax as sj

jax.config.update("jax_enable_x64", True)


def coupled():
    x, z = dynamicsymbols("x z")
    u, y = dynamicsymbols("u y")
    k, m, c = sp.symbols("k m c", positive=True)
    L = m * x.diff() ** 2 / 2 + z.diff() ** 2 / 2 - k * x ** 2 / 2 - z ** 2 / 2 - c * sp.cos(x - z) + x * u
    return symglep.Model(lagrangian=L, coordinates=[x, z], parameters=[k, m, c], inputs=[u], targets=[y],
                         cost=(z - y) ** 2 / 2, name="coupled")


def oscillator():
    x = dynamicsymbols("x")
    u, y = dynamicsymbols("u y")
    k, m = sp.symbols("k m", positive=True)
    return symglep.Model(lagrangian=m * x.diff() ** 2 / 2 - k * x ** 2 / 2 + x * u, coordinates=[x],
                         parameters=[k, m], inputs=[u], targets=[y], cost=(x - y) ** 2 / 2, name="oscillator")


DT, K, CLASSES = 0.1, 60, 2
layer1 = sj.layer(coupled(), DT, readout="coordinates")      # (theta, u (K+1, 1), q0, p0) -> r (K+1, 2)
layer2 = sj.layer(oscillator(), DT, readout="coordinates")   # (theta, u (K+1, 1), q0, p0) -> r (K+1, 1)


def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {"theta1": jnp.zeros(3), "theta2": jnp.zeros(2),
            "glu": 0.5 * jax.random.normal(k1, (2, 2)), "glu_b": jnp.zeros(2),
            "head": 0.5 * jax.random.normal(k2, (CLASSES, 1)), "head_b": jnp.zeros(CLASSES),
            "gain": 1.0 + 0.1 * jax.random.normal(k3, ())}


def logits(params, series):
    """One series (K+1,) -> class scores."""
    zero2, zero1 = jnp.zeros(2), jnp.zeros(1)
    r1, _, _ = layer1(jnp.exp(params["theta1"]), params["gain"] * series[:, None], zero2, zero2)
    a = r1 @ params["glu"].T + params["glu_b"]
    gated = a[:, :1] * jax.nn.sigmoid(a[:, 1:])                  # GLU: 2 -> 1
    r2, _, _ = layer2(jnp.exp(params["theta2"]), gated, zero1, zero1)
    return params["head"] @ jnp.mean(r2, axis=0) + params["head_b"]


def loss(params, series, labels):
    scores = jax.vmap(logits, (None, 0))(params, series)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(scores, labels))


def data(key, n):
    """Noisy sines of frequency 0.6 (class 0) or 1.4 (class 1), random phases."""
    k1, k2, k3 = jax.random.split(key, 3)
    labels = jax.random.randint(k1, (n,), 0, CLASSES)
    omega = jnp.where(labels == 0, 0.6, 1.4)
    t = jnp.arange(K + 1) * DT
    phase = jax.random.uniform(k2, (n, 1), maxval=2 * jnp.pi)
    series = jnp.sin(omega[:, None] * t + phase) + 0.1 * jax.random.normal(k3, (n, K + 1))
    return series, labels


def main(argv=None):
    parser = argparse.ArgumentParser(description="two symglep layers + GLU + softmax head, trained with optax")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    params = init(jax.random.PRNGKey(0))
    series, labels = data(jax.random.PRNGKey(1), 64)
    opt = optax.adam(0.03)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(loss)(params, series, labels)
        updates, state = opt.update(grad, state)
        return optax.apply_updates(params, updates), state, value

    first = float(loss(params, series, labels))
    for i in range(args.steps):
        params, state, value = step(params, state)
        if i % 50 == 0:
            print(f"step {i:4d}  loss {float(value):.4f}")
    test_series, test_labels = data(jax.random.PRNGKey(2), 256)
    scores = jax.vmap(logits, (None, 0))(params, test_series)
    accuracy = float(jnp.mean(jnp.argmax(scores, axis=1) == test_labels))
    print(f"loss {first:.4f} -> {float(loss(params, series, labels)):.4f}; test accuracy {accuracy:.3f}")
    return first, float(loss(params, series, labels)), accuracy


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
