"""The HSSM of docs/classification.md trained through the JAX layer (docs/jax.md, "The HSSM in JAX").

examples/stack_hssm.py (two diagonal nonlinear HRU layers of 16 oscillators, a dense GELU glue) as one
``symglep.jax.layer(stack)``: a linear encoder in front, a mean-pool softmax head behind, trained on
BasicMotions (sktime's copy, the same data, normalisation, start parameters, batches, Adam and step as
``symglep train examples/stack_hssm.py --task uea:BasicMotions --epochs 40 --batch 8 --lr 0.01``). The
layer's backward pass is every unit's echo driven by the cotangents JAX pulls back through the head and
the glue; JAX autodiff does the encoder, the head and the chain. Prints the test accuracy per seed, and
their mean and standard deviation (docs/classification.md: 96.0 ± 2.5 % with the Numba trainer).

    python docs/jax_hssm.py [--seeds 5] [--epochs 40] [--estimator echo|bptt]
"""

from __future__ import annotations

import argparse
import pathlib
import runpy
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symglep  # noqa: E402
import symglep.jax as sj  # noqa: E402
from symglep.classification import ClassifierLearner, linear_readout_of, uea_task  # noqa: E402
from symglep.learners import learner_for  # noqa: E402

DT, BATCH, LR = 0.2, 8, 0.01


def setup(estimator: str):
    """The stack, its JAX layer, the data set and the classifier (start parameters, layout)."""
    stack = runpy.run_path(str(ROOT / "examples" / "stack_hssm.py"))["stack"]
    learner = learner_for(stack, symglep.compile(stack, dt=DT))
    data = uea_task("BasicMotions", learner)
    classifier = ClassifierLearner(learner, linear_readout_of(stack), data.u.shape[2], len(data.classes))
    layer = sj.layer(stack, DT, estimator=estimator)
    return stack, layer, data, classifier


def make_step(layer, classifier, readout_units, q0, p0):
    n_model = classifier.n_model
    shapes = [shape for _, shape in classifier.layout[-4:]]

    def split(theta):
        parts, at = [theta[:n_model]], n_model
        for shape in shapes:
            size = int(np.prod(shape))
            parts.append(theta[at:at + size].reshape(shape))
            at += size
        return parts

    def logits(theta, x, mask):
        th, E, e, W, b = split(theta)
        r, _, _ = layer(th, x @ E.T + e, q0, p0)
        r = r[:, readout_units]
        pooled = (mask @ r) / jnp.sum(mask)
        return W @ pooled + b

    def loss(theta, x, mask, label):
        return -jax.nn.log_softmax(logits(theta, x, mask))[label]

    def batch_loss(theta, x, mask, labels):
        return jnp.mean(jax.vmap(loss, (None, 0, 0, 0))(theta, x, mask, labels))

    predict = jax.jit(jax.vmap(lambda theta, x, mask: jnp.argmax(logits(theta, x, mask)), (None, 0, 0)))
    return jax.jit(jax.value_and_grad(batch_loss)), predict


def run(seed: int, epochs: int, estimator: str, parts=None) -> float:
    stack, layer, data, classifier = parts or setup(estimator)
    mask, labels = classifier.decode(data.y)
    test_mask, test_labels = classifier.decode(data.test.y)
    top = stack.arrays[-1]
    assert not data.start_velocity  # the stack starts at rest: q0 = p0 = 0
    step, predict = make_step(layer, classifier, jnp.asarray(top.readout_units()), jnp.asarray(data.q0[0]),
                              jnp.asarray(data.x0[0]))
    theta = jnp.asarray(classifier.flat(classifier.draw(np.random.default_rng(seed))))
    opt = optax.adam(LR)
    state = opt.init(theta)
    S = data.u.shape[0]
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(S)
        for lo in range(0, S, BATCH):
            index = order[lo:lo + BATCH]
            _, grad = step(theta, data.u[index], mask[index], labels[index])
            updates, state = opt.update(grad, state)
            theta = optax.apply_updates(theta, updates)
    predicted = np.asarray(predict(theta, data.test.u, test_mask))
    return 100.0 * float(np.mean(predicted == test_labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description="the HSSM of BasicMotions trained through symglep.jax")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--estimator", choices=("echo", "bptt"), default="echo")
    args = parser.parse_args(argv)
    parts = setup(args.estimator)
    accuracies = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        accuracies.append(run(seed, args.epochs, args.estimator, parts))
        print(f"seed {seed}: test accuracy {accuracies[-1]:.1f} % ({time.perf_counter() - start:.1f} s)", flush=True)
    mean, spread = np.mean(accuracies), np.std(accuracies)
    print(f"BasicMotions, {args.estimator} through symglep.jax: {mean:.1f} ± {spread:.1f} % "
          f"over {args.seeds} seeds ({args.epochs} epochs, batch {BATCH}, lr {LR})")


if __name__ == "__main__":
    main()
