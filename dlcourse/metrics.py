r"""Metrics: the classification accuracy of §2.4.1 and the within-tolerance criterion.

A metric used by :func:`dlcourse.fit` maps ``(outputs, targets)`` to one number per
example (:func:`correct`, :func:`within_tolerance`); its mean over a data set is the
reported accuracy.  These are not losses: they are not smooth, hence the cross-entropy
or the quadratic loss for training (§2.4.1).
"""

from __future__ import annotations

import jax.numpy as jnp

from dlcourse._checks import check_batched, check_class_labels
from dlcourse._types import Array

__all__ = ["ADDING_TOLERANCE", "accuracy", "adding_correct", "correct", "within_tolerance"]

ADDING_TOLERANCE = 0.04
"""Hochreiter & Schmidhuber (1997), §5.4: an adding-problem sequence is processed
correctly when the absolute error at its end is below 0.04."""


def correct(outputs: Array, labels: Array) -> Array:
    r"""1.0 where $\arg\max_k z_k = y$, else 0.0, one entry per label (§2.4.1).

    Args:
      outputs: logits or probabilities ``(B, ..., K)``, ``K >= 2`` classes on the last axis.
      labels: integer class indices ``(B, ...)``, or one-hot floats ``(B, ..., K)``
        (their argmax is taken).

    Returns:
      Floats of shape ``(B, ...)``: the default ``metric_fn`` of :func:`dlcourse.fit`,
      whose mean is the accuracy.

    Raises:
      ValueError: if the shapes do not fit as above, or ``K < 2`` (for one binary
        logit, compare ``(logits > 0) == labels``).
    """
    scores, labels = jnp.asarray(outputs), jnp.asarray(labels)
    if scores.ndim >= 2 and scores.shape[-1] < 2:
        raise ValueError(
            f"correct: needs K >= 2 classes on the last axis, got outputs.shape="
            f"{scores.shape}; for one binary logit use jnp.mean((logits > 0) == labels)."
        )
    if not check_class_labels("correct", "outputs", scores, labels):
        labels = jnp.argmax(labels, axis=-1)
    dtype = scores.dtype if jnp.issubdtype(scores.dtype, jnp.floating) else jnp.float32
    return (jnp.argmax(scores, axis=-1) == labels).astype(dtype)


def accuracy(outputs: Array, labels: Array) -> Array:
    r"""Classification accuracy: the fraction of labels with $\arg\max_k z_k = y$ (§2.4.1).

    The classification error of §2.4.1 is one minus it.  Averaged over every label entry
    (over $B$ and $T$ for a sequence); logits and probabilities give the same argmax.
    Shapes as :func:`correct`; returns a float scalar in $[0, 1]$.
    """
    return jnp.mean(correct(outputs, labels))


def within_tolerance(outputs: Array, targets: Array, tolerance: float) -> Array:
    r"""Per example, 1.0 when every output is within ``tolerance`` of its target.

    $\mathbb 1[\max_j |\hat y_{ij} - y_{ij}| < \tau]$: the criterion of regression tasks
    scored as right or wrong, such as the adding problem (:func:`adding_correct`).

    Args:
      outputs, targets: the same shape ``(B, ...)``; nothing is broadcast (``(B, 1)``
        against ``(B,)`` would compare every pair).
      tolerance: $\tau > 0$.

    Returns:
      Floats of shape ``(B,)``.
    """
    outputs, targets = jnp.asarray(outputs), jnp.asarray(targets)
    check_batched("within_tolerance", "outputs", outputs)
    if outputs.shape != targets.shape:
        raise ValueError(
            f"within_tolerance: outputs.shape={outputs.shape} differs from targets.shape="
            f"{targets.shape}; reshape one of them (both (B, 1) or both (B,))."
        )
    close = jnp.abs(outputs - targets) < tolerance
    dtype = outputs.dtype if jnp.issubdtype(outputs.dtype, jnp.floating) else jnp.float32
    return close.reshape(len(close), -1).all(axis=1).astype(dtype)


def adding_correct(outputs: Array, targets: Array) -> Array:
    """Per sequence, 1.0 when the adding problem's output is within 0.04 of its target.

    :func:`within_tolerance` at :data:`ADDING_TOLERANCE`, the criterion of Hochreiter &
    Schmidhuber (1997), §5.4; a ``metric_fn`` for :func:`dlcourse.fit`.
    """
    return within_tolerance(outputs, targets, ADDING_TOLERANCE)
