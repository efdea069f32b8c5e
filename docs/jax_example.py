"""A plain JAX model with two symglep HRU layers, a GLU between them and a softmax head, trained with
optax (docs/jax.md). Both layers' backward passes are echoes; JAX autodiff handles the rest.

Task: tell two drive frequencies apart from a noisy series. A linear encoder maps the series onto the
two inputs of layer 1 (examples/network_hru.py at n = 8: eight oscillators coupled through
log cosh(A q + B u + b)); a GLU maps its eight coordinates to the two inputs of layer 2 (another HRU
of eight); the head reads layer 2's coordinates averaged over time.

    python docs/jax_example.py [--steps N]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

import symglep
import symglep.jax as sj

jax.config.update("jax_enable_x64", True)

ROOT = pathlib.Path(__file__).resolve().parents[1]
DT, K, CLASSES, N = 0.1, 60, 2, 8
hru = symglep.load_model(str(ROOT / "examples" / "network_hru.py"))
layer1 = sj.layer(hru, DT, size=N)   # (theta, u (K+1, 2), q0, p0) -> r = q (K+1, 8), qT, pT
layer2 = sj.layer(hru, DT, size=N)


def hru_init(key):
    kA, kB = jax.random.split(key)
    return {"A": 0.3 * jax.random.normal(kA, (N, N)) / jnp.sqrt(N), "B": jax.random.normal(kB, (N, 2)),
            "b": jnp.zeros(N), "log_m": jnp.zeros(N)}


def theta(layer, p):
    """The layer's flat parameters; the masses m = exp(log m) stay positive."""
    return layer.theta({"A": p["A"], "B": p["B"], "b": p["b"], "m": jnp.exp(p["log_m"])})


def init(key):
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    return {"hru1": hru_init(k1), "hru2": hru_init(k2),
            "encoder": jax.random.normal(k3, (2, 1)), "encoder_b": jnp.zeros(2),
            "glu": jax.random.normal(k4, (4, N)) / jnp.sqrt(N), "glu_b": jnp.zeros(4),
            "head": jax.random.normal(k5, (CLASSES, N)) / jnp.sqrt(N), "head_b": jnp.zeros(CLASSES)}


def logits(params, series):
    """One series (K+1,) -> class scores."""
    zero = jnp.zeros(N)
    u1 = series[:, None] @ params["encoder"].T + params["encoder_b"]
    r1, _, _ = layer1(theta(layer1, params["hru1"]), u1, zero, zero)
    a = r1 @ params["glu"].T + params["glu_b"]
    gated = a[:, :2] * jax.nn.sigmoid(a[:, 2:])                  # GLU: 8 -> 2
    r2, _, _ = layer2(theta(layer2, params["hru2"]), gated, zero, zero)
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
