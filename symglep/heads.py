"""The classification head of a physical model: time-mean of the readout, linear map, softmax (theory §12).

A head is not a running cost: the softmax of a time-mean couples every step of a sequence.
Its loss is differentiated here in plain NumPy, after the free pass; what the physical model
needs from it is the cotangent of each node's readout, ``a_k = ∂loss/∂r_k``. The echo nudged
by the linear cost ``Σ_k a_k · r(q_k)`` then returns the exact gradient of the head's loss
with respect to the model's parameters (theory §12).

The head averages the readout over the nodes ``m_k = 1`` a sequence covers (variable-length
series are padded and masked, so padding changes nothing):

    r̄ = Σ_k m_k r_k / T,   T = Σ_k m_k,
    z = W r̄ + b,   loss = −log softmax(z)[label],

so ``a_k = m_k Wᵀ(softmax(z) − e_label) / T``. The leapfrog's discrete loss is the trapezoid sum
``h Σ'_k c(q_k)`` (theory §6), node ``k`` weighted ``ω_k = h w_k`` (``w_k = ½`` at the end
nodes), so the targets that carry the cotangents into the linear cost ``c = y · r(q)`` are
``y_k = a_k / ω_k`` (theory §9's ``ρ_k``): constant inside a sequence, zero off its mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the names a classifier's own parameters take in a training file beside the model's (``encoder.E``,
#: ``head.W``: symglep.classification); a check of the model alone reads past them
CLASSIFIER_PREFIXES = ("encoder.", "head.")


def node_weights(nodes: int, dt: float) -> np.ndarray:
    """``ω_k = h w_k`` of the trapezoid sum over ``nodes`` nodes (theory §6)."""
    w = np.full(nodes, float(dt))
    w[0] = w[-1] = dt / 2
    return w


def cotangent_targets(cotangents: np.ndarray, dt: float) -> np.ndarray:
    """The targets ``y_k = a_k / ω_k`` of the linear readout cost ``c = y · r(q)`` that carry the
    cotangents ``a_k = ∂ℓ/∂r_k`` ``(b, K+1, n_r)`` of ANY head into the echo (theory §12): pass them
    as ``y`` to a model's (or a learner's) gradient and it returns ``dℓ/dθ`` and ``dℓ/du``."""
    return np.ascontiguousarray(cotangents / node_weights(cotangents.shape[1], dt)[None, :, None])


def pool(readouts: np.ndarray, mask: np.ndarray) -> tuple:
    """``(r̄ (b, n_r), T (b,))``: the mean of readouts ``(b, K+1, n_r)`` over the nodes of ``mask (b, K+1)``."""
    total = mask.sum(axis=1)
    return np.einsum("bk,bkr->br", mask, readouts) / total[:, None], total


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass
class HeadPass:
    """One batch through the head: per-sequence loss and predictions, and every gradient."""

    loss: np.ndarray        # (b,) cross-entropy
    predicted: np.ndarray   # (b,) class index
    dW: np.ndarray          # (b, classes, n_r)
    db: np.ndarray          # (b, classes)
    cotangent: np.ndarray   # (b, K+1, n_r): the targets y_k = a_k / ω_k of the linear readout cost


def head_pass(W: np.ndarray, b: np.ndarray, r_bar: np.ndarray, total: np.ndarray, mask: np.ndarray,
              labels: np.ndarray, dt: float) -> HeadPass:
    """The head's loss and gradients (module docstring) from the pooled readouts ``r̄ (b, n_r)`` and
    their node counts ``T (b,)`` (:func:`pool`); ``mask (b, K+1)`` and the step ``dt`` shape the
    cotangent targets."""
    z = r_bar @ W.T + b
    logp = log_softmax(z)
    rows = np.arange(len(labels))
    dz = np.exp(logp)
    dz[rows, labels] -= 1.0
    g = dz @ W                                              # ∂loss/∂r̄, (b, n_r)
    cot = cotangent_targets(mask[:, :, None] * (g / total[:, None])[:, None, :], dt)
    return HeadPass(-logp[rows, labels], z.argmax(axis=1), dz[:, :, None] * r_bar[:, None, :], dz,
                    cot)
