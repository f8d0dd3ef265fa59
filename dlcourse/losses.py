r"""Data losses of §2.4.1, averaged into the empirical risk of §2.4.2.

The empirical risk of §2.4.2 is $\tilde L_n(\theta) = \frac1n \sum_{i=1}^n
\ell(f(X_i, \theta), Y_i)$.  Every loss here follows one rule: **sum over every axis
but the first, average over the first (the batch)**, and return a scalar.  For the
usual shapes ``(B,)`` and ``(B, K)`` this is the course's $\frac1n\sum_i \ell_i$ with
$\ell_i$ the loss of one example; for a sequence ``(B, T, K)`` it is the loss of a whole
sequence averaged over the batch.  The penalties $\Omega(\theta)$ of §2.4.2 are in
:mod:`dlcourse.penalties`: ``loss + lam * penalties.l2_penalty(params)``.

Shapes are checked statically (free under :func:`jax.jit`) and a mismatch raises
``ValueError``: nothing is broadcast, because a ``(B, 1)`` prediction against ``(B,)``
targets would otherwise silently become a ``(B, B)`` matrix of every pair.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from dlcourse._checks import check_batched, check_class_labels
from dlcourse._types import Array

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_from_probs",
    "cross_entropy_from_probs",
    "quadratic",
    "softmax_cross_entropy",
]


# --------------------------------------------------------------------------- helpers


def _batch_mean(per_entry: Array) -> Array:
    """Sum over all axes but the first, then average over the first (the batch)."""
    return jnp.sum(per_entry) / per_entry.shape[0]


def _float(x: Any) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _check_same_shape(fn: str, a_name: str, a: Array, b_name: str, b: Array) -> None:
    check_batched(fn, a_name, a)
    if a.shape == b.shape:
        return
    hint = ""
    if a.shape == b.shape + (1,):
        hint = f" The (B, 1) vs (B,) mistake: pass {a_name}.squeeze(-1) (or {b_name}[..., None])."
    elif b.shape == a.shape + (1,):
        hint = f" The (B, 1) vs (B,) mistake: pass {b_name}.squeeze(-1) (or {a_name}[..., None])."
    raise ValueError(
        f"{fn}: {a_name}.shape={a.shape} and {b_name}.shape={b.shape} must be equal; "
        f"losses never broadcast.{hint}"
    )


def _check_eps(fn: str, eps: float | None, dtype: Any) -> float:
    if eps is None:
        # Machine epsilon, the spacing of floats at 1: 1 - eps is still a number below 1
        # (under about eps/2 it rounds to 1 and log(1 - p) is -inf again), and nothing
        # the dtype resolves away from 0 and 1 is changed.
        return float(jnp.finfo(dtype).eps)
    if not 0.0 < eps < 0.5:
        raise ValueError(f"{fn}: eps must satisfy 0 < eps < 0.5, got eps={eps!r}.")
    return float(eps)



def _check_values(fn: str, name: str, x: Array, bad: Array, expect: str) -> Array:
    """Refuse values ``bad`` marks when ``x`` is concrete; under jit they make the loss NaN.

    Values are not known at trace time, so a traced call cannot raise: the entries of the
    loss that ``bad`` marks become NaN, which :func:`dlcourse.fit` reports.
    """
    if not isinstance(x, jax.core.Tracer) and not isinstance(bad, jax.core.Tracer):
        count = int(jnp.sum(bad))
        if count:
            raise ValueError(
                f"{fn}: {name} must be {expect}, got {count} value(s) that are not (e.g. "
                f"{x[bad].ravel()[0].item()!r}); check the model's output and the labels."
            )
    return bad


def _pick(log_p: Array, labels: Array) -> Array:
    """``log_p[..., labels]``; NaN where a label is outside ``[0, K)``."""
    num_classes = log_p.shape[-1]
    idx = jnp.clip(labels, 0, num_classes - 1)[..., None]
    picked = jnp.take_along_axis(log_p, idx, axis=-1)[..., 0]
    valid = (labels >= 0) & (labels < num_classes)
    return jnp.where(valid, picked, jnp.nan)


# --------------------------------------------------------------------------- regression


def quadratic(pred: Array, target: Array) -> Array:
    r"""Empirical quadratic loss, §2.4.1 and §2.4.3.

    $$\tilde L_n = \frac1n \sum_{i=1}^n \sum_{k=1}^K \bigl(Y_{i,k} - f_k(X_i)\bigr)^2,$$

    summed over the outputs, averaged over the batch; no factor $\tfrac12$.  Its gradient
    with respect to ``pred`` is $\frac2n (f(X_i) - Y_i)$.

    Args:
      pred: predictions $f(X_i)$, shape ``(B, ...)``.
      target: targets $Y_i$, the same shape.

    Returns:
      A scalar.

    Raises:
      ValueError: if the shapes differ (e.g. ``(B, 1)`` vs ``(B,)``) or there is no batch
        axis.

    References:
      Course §2.4.1 (Gaussian likelihood gives the quadratic loss), §2.4.3.
    """
    pred, target = _float(pred), _float(target)
    _check_same_shape("quadratic", "pred", pred, "target", target)
    return _batch_mean(jnp.square(target - pred))


# --------------------------------------------------------------------------- binary


def binary_cross_entropy(logits: Array, labels: Array) -> Array:
    r"""Binary cross-entropy from logits $z$ (so $f = \sigma(z)$), §2.4.1, stable.

    $$-\bigl[y \log \sigma(z) + (1-y)\log(1-\sigma(z))\bigr]
      = \max(z, 0) - z y + \log(1 + e^{-|z|}) = \operatorname{softplus}(z) - z y,$$

    finite for every finite $z$; summed over non-batch axes, averaged over the batch.
    Its gradient is $\partial/\partial z = (\sigma(z) - y)/B$ per entry.

    Written with :func:`jax.nn.softplus`, which computes exactly
    $\max(z,0) + \log1p(e^{-|z|})$ but carries its own derivative $\sigma(z)$: jax
    differentiates $\max$ and $|\cdot|$ at $z = 0$ as $\tfrac12$ and $1$, which would
    give $-y$ instead of $\tfrac12 - y$ there.

    Args:
      logits: $z$, shape ``(B, ...)``, typically ``(B,)``.
      labels: $y \in \{0, 1\}$ (or soft targets in $[0, 1]$), the same shape.

    Returns:
      A scalar.

    Raises:
      ValueError: if the shapes differ (e.g. ``(B, 1)`` vs ``(B,)``), there is no batch
        axis, or (outside :func:`jax.jit`, where the values are known) a label is outside
        $[0, 1]$; under jit such an entry makes the loss NaN.

    References:
      Course §2.4.1 (cross-entropy for binary classification, with the sigmoid).
    """
    logits = _float(logits)
    labels = jnp.asarray(labels)
    _check_same_shape("binary_cross_entropy", "logits", logits, "labels", labels)
    labels = labels.astype(logits.dtype)
    bad = _check_values("binary_cross_entropy", "labels", labels,
                        ~((labels >= 0) & (labels <= 1)), "in [0, 1]")
    per_entry = jax.nn.softplus(logits) - logits * labels
    return _batch_mean(jnp.where(bad, jnp.nan, per_entry))


def binary_cross_entropy_from_probs(
    probs: Array, labels: Array, *, eps: float | None = None
) -> Array:
    r"""Binary cross-entropy from probabilities $p = f(X)$, §2.4.1.

    $$-\frac1n\sum_i \bigl[y_i \log p_i + (1-y_i)\log(1-p_i)\bigr],
      \qquad p_i \leftarrow \operatorname{clip}(p_i, \varepsilon, 1-\varepsilon).$$

    Why the clip: a saturated sigmoid returns exactly 0 or 1, and then $\log 0 = -\infty$
    and $0 \cdot \log 0 = $ NaN.  The default $\varepsilon$ is the machine epsilon of
    ``probs.dtype`` (1.2e-7 in float32, 2.2e-16 in float64), the spacing of floats at 1:
    $1 - \varepsilon$ is still a number below 1 (a clip under about $\varepsilon/2$
    would round to 1 and give $\log 0$ again), so both logs stay finite, and only
    probabilities within $\varepsilon$ of 0 or 1 are changed (near 1, the last two
    float steps).  The price:
    the loss of one entry is capped at $-\log\varepsilon$ (15.9 in float32) and its
    gradient is 0 where the clip acts.  Prefer :func:`binary_cross_entropy` from logits.

    Args:
      probs: $p \in [0, 1]$, shape ``(B, ...)``.
      labels: $y \in \{0, 1\}$ or soft targets, the same shape.
      eps: clip, ``0 < eps < 0.5``; ``None`` is the machine epsilon of ``probs.dtype``.

    Returns:
      A scalar.

    Raises:
      ValueError: if the shapes differ, there is no batch axis, ``eps`` is out of
        range, or (outside :func:`jax.jit`) a label or a probability is outside
        $[0, 1]$; under jit such an entry makes the loss NaN.

    References:
      Course §2.4.1.
    """
    fn = "binary_cross_entropy_from_probs"
    probs = _float(probs)
    labels = jnp.asarray(labels)
    _check_same_shape(fn, "probs", probs, "labels", labels)
    eps = _check_eps(fn, eps, probs.dtype)
    labels = labels.astype(probs.dtype)
    bad = _check_values(fn, "labels", labels, ~((labels >= 0) & (labels <= 1)), "in [0, 1]")
    bad = bad | _check_values(fn, "probs", probs, ~((probs >= 0) & (probs <= 1)), "in [0, 1]")
    p = jnp.clip(probs, eps, 1.0 - eps)
    per_entry = labels * jnp.log(p) + (1.0 - labels) * jnp.log1p(-p)
    return -_batch_mean(jnp.where(bad, jnp.nan, per_entry))


# --------------------------------------------------------------------------- multiclass


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    r"""Multiclass cross-entropy from logits $z$ (so $f = \operatorname{softmax}(z)$).

    $$\ell(f(x), y) = -\log \operatorname{softmax}(z)_y
      = -z_y + \log \sum_{k=1}^K e^{z_k},$$

    §2.4.1 and §2.4.4, computed with :func:`jax.nn.log_softmax` (log-sum-exp shifted by
    $\max_k z_k$), finite for every finite $z$.  Its gradient is the course's
    $\nabla_{a^{(L+1)}} \ell = f(x) - e(y)$, divided by $B$ for the batch average.

    ``labels`` are either integer class indices of shape ``logits.shape[:-1]``, or float
    targets (one-hot or soft) of shape ``logits.shape``, for which the loss is
    $-\sum_k y_k \log\operatorname{softmax}(z)_k$.  Integer labels outside $[0, K)$
    cannot be checked under :func:`jax.jit` (their values are not known at trace time):
    they make the loss NaN rather than pick a wrong class silently (:func:`dlcourse.fit`
    checks the labels of its dataset before training).

    Args:
      logits: $z$, shape ``(B, ..., K)``, classes on the last axis.
      labels: ``(B, ...)`` integers in ``[0, K)``, or ``(B, ..., K)`` floats.

    Returns:
      A scalar.

    Raises:
      ValueError: if ``logits`` is not at least 2-D, or ``labels`` has another shape or
        a dtype that is neither integer nor floating.

    References:
      Course §2.4.1, §2.4.4.
    """
    logits = _float(logits)
    labels = jnp.asarray(labels)
    fn = "softmax_cross_entropy"
    is_index = check_class_labels(fn, "logits", logits, labels)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    if is_index:
        return -_batch_mean(_pick(log_p, labels))
    return -_batch_mean(labels.astype(log_p.dtype) * log_p)


def cross_entropy_from_probs(probs: Array, labels: Array, *, eps: float | None = None) -> Array:
    r"""Multiclass cross-entropy from probabilities: the course's $-\log f(x)_y$, §2.4.4.

    $$\ell(f(x), y) = -\sum_{k=1}^K \mathbf 1_{y=k} \log f(x)_k = -\log f(x)_y,
      \qquad f(x)_k \leftarrow \max(f(x)_k, \varepsilon).$$

    Only the lower clip is needed ($\log 1 = 0$); it keeps the loss finite when a
    softmax underflows to 0, at the price of a cap $-\log\varepsilon$ and a zero gradient
    there (see :func:`binary_cross_entropy_from_probs` for the default $\varepsilon$).
    Prefer :func:`softmax_cross_entropy` from logits.

    Args:
      probs: $f(x)$, shape ``(B, ..., K)``, rows summing to 1.
      labels: ``(B, ...)`` integers in ``[0, K)`` (NaN loss outside, unchecked under jit),
        or ``(B, ..., K)`` float targets.
      eps: clip, ``0 < eps < 0.5``; ``None`` is the machine epsilon of ``probs.dtype``.

    Returns:
      A scalar.

    Raises:
      ValueError: as :func:`softmax_cross_entropy`, if ``eps`` is out of range, or
        (outside :func:`jax.jit`) if a row of ``probs`` is not a distribution: a
        negative entry, or a sum off 1 by more than $\sqrt{\varepsilon}$ of the dtype
        (logits passed by mistake); under jit such a row makes the loss NaN.

    References:
      Course §2.4.1, §2.4.4.
    """
    fn = "cross_entropy_from_probs"
    probs = _float(probs)
    labels = jnp.asarray(labels)
    is_index = check_class_labels(fn, "probs", probs, labels)
    eps = _check_eps(fn, eps, probs.dtype)
    # A distribution per row: no negative entry, a sum of 1 to within the dtype's
    # sqrt(eps) (3.5e-4 in float32; a float32 softmax is off by ~1e-7 per class).
    tol = math.sqrt(float(jnp.finfo(probs.dtype).eps))
    _check_values(fn, "probs", probs, probs < 0, "non-negative (a softmax output)")
    off = jnp.abs(jnp.sum(probs, axis=-1) - 1) > tol
    _check_values(fn, "the sum of each row of probs", jnp.sum(probs, axis=-1), off,
                  f"1 to within {tol:.2g} (a softmax output, not logits)")
    probs = jnp.where((off | jnp.any(probs < 0, axis=-1))[..., None], jnp.nan, probs)
    log_p = jnp.log(jnp.maximum(probs, eps))
    if is_index:
        return -_batch_mean(_pick(log_p, labels))
    return -_batch_mean(labels.astype(log_p.dtype) * log_p)
