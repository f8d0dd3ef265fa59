r"""Normalizations of §3.2's networks as pure functions: batch norm and local response norm.

:func:`batch_norm_init` / :func:`batch_norm_apply` (Ioffe & Szegedy 2015; ResNet and the
Inception-v4 family) normalize each channel by batch statistics in training and by
running averages, kept in ``state``, at evaluation.  :func:`local_response_norm`
(Krizhevsky et al. 2012, §3.3; AlexNet and GoogLeNet) divides each activation by the
energy of its neighbouring channels.  Both work on the last (channel) axis of any
batch: ``(B, D)``, ``(B, L, C)`` or NHWC ``(B, H, W, C)``.  Their layer forms are
:func:`dlcourse.layers.BatchNorm` and :func:`dlcourse.layers.LocalResponseNorm`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from dlcourse._checks import check_nonnegative, check_positive, check_positive_int, check_range
from dlcourse._types import Array, Params, State

__all__ = ["batch_norm_apply", "batch_norm_init", "local_response_norm"]


# --- batch normalization ------------------------------------------------------------------


def check_batch_norm(fn: str, momentum: float, eps: float) -> tuple[float, float]:
    """Validate batch norm's ``momentum`` in [0, 1) and ``eps > 0``; return them as floats."""
    momentum = check_range(fn, "momentum", momentum, 0, 1,
                           hint=" PyTorch's momentum=0.1 is momentum=0.9 here.")
    return momentum, check_positive(fn, "eps", eps)


def batch_norm_init(
    channels: int, *, scale: bool = True, center: bool = True, dtype=jnp.float32
) -> tuple[Params, State]:
    r"""Batch norm's parameters and state for ``channels`` channels.

    $\gamma = 1$, $\beta = 0$ (each only if learned: ``scale``, ``center``), and the
    running statistics $\mu_{run} = 0$, $\sigma^2_{run} = 1$.

    Returns:
      ``(params, state)``: ``params = {"gamma": (C,), "beta": (C,)}`` (lower case: no
      weight penalty, §2.4.2) and ``state = {"mean": (C,), "var": (C,)}``.
    """
    c = check_positive_int("batch_norm_init", "channels", channels)
    params = {}
    if scale:
        params["gamma"] = jnp.ones((c,), dtype)
    if center:
        params["beta"] = jnp.zeros((c,), dtype)
    return params, {"mean": jnp.zeros((c,), dtype), "var": jnp.ones((c,), dtype)}


def batch_norm_apply(
    params: Params,
    state: State,
    x: Array,
    *,
    train: bool = False,
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> tuple[Array, State]:
    r"""Batch normalization (Ioffe & Szegedy 2015, Algorithm 1), per channel.

    $$\hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta.$$

    ``train=True``: $\mu$, $\sigma^2$ are the batch's mean and (biased) variance over
    every axis but the last, and the returned state holds the running averages
    $\mu_{run} \leftarrow m\,\mu_{run} + (1 - m)\,\mu$ (same for $\sigma^2$, biased, as
    flax and Keras; PyTorch's running variance is unbiased), outside the gradient.
    ``train=False`` uses the running statistics and returns ``state`` itself.

    Args:
      params: ``{"gamma": (C,), "beta": (C,)}``, either may be absent (not learned).
      state: ``{"mean": (C,), "var": (C,)}``, the running statistics.
      x: a batch ``(B, ..., C)``.
      train: normalize by the batch's statistics and update the running ones.
      momentum: $m$ in [0, 1) (PyTorch's ``momentum=0.1`` is $m = 0.9$).
      eps: $\epsilon > 0$.

    Returns:
      ``(y, new_state)``, ``y`` shaped like ``x``.

    References:
      Ioffe, S. and Szegedy, C., "Batch Normalization: Accelerating Deep Network Training
      by Reducing Internal Covariate Shift", ICML 2015, https://arxiv.org/abs/1502.03167
    """
    momentum, eps = check_batch_norm("batch_norm_apply", momentum, eps)
    if train:
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)  # biased, as the normalization uses
        new_state = {
            "mean": momentum * state["mean"] + (1.0 - momentum) * lax.stop_gradient(mean),
            "var": momentum * state["var"] + (1.0 - momentum) * lax.stop_gradient(var),
        }
    else:
        mean, var, new_state = state["mean"], state["var"], state
    y = (x - mean) * lax.rsqrt(var + eps)
    if "gamma" in params:
        y = y * params["gamma"]
    if "beta" in params:
        y = y + params["beta"]
    return y, new_state


# --- local response normalization ---------------------------------------------------------


def check_local_response_norm(
    fn: str, size: int, alpha: float, beta: float, k: float
) -> tuple[int, float, float, float]:
    """Validate LRN's ``size`` (a positive int) and ``alpha, beta, k >= 0``."""
    return (check_positive_int(fn, "size", size), check_nonnegative(fn, "alpha", alpha),
            check_nonnegative(fn, "beta", beta), check_nonnegative(fn, "k", k))


def local_response_norm(
    x: Array, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> Array:
    r"""Local response normalization across channels (Krizhevsky et al. 2012, §3.3).

    $$b^i = a^i \Big/ \Big(k + \alpha \sum_{j=\max(0, i-n/2)}^{\min(N-1, i+n/2)}
      (a^j)^2\Big)^\beta$$

    over the $N$ channels of the last axis, with $n$ = ``size`` and the paper's $k = 2$,
    $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$.  $\alpha$ is not divided by $n$, unlike
    Caffe's and PyTorch's ``LocalResponseNorm`` (pass ``alpha / n`` for theirs).  For an
    even $n$ the window reaches $n/2$ channels below and $n/2 - 1$ above.

    Args:
      x: a batch ``(B, ..., C)``.
      size: $n$, the number of channels in a window.
      alpha: $\alpha \ge 0$.
      beta: $\beta \ge 0$.
      k: $k \ge 0$.

    Returns:
      $b$, shaped like ``x``.

    References:
      Krizhevsky, A., Sutskever, I. and Hinton, G. E., "ImageNet Classification with Deep
      Convolutional Neural Networks", NeurIPS 2012, §3.3.
    """
    size, alpha, beta, k = check_local_response_norm("local_response_norm", size, alpha,
                                                     beta, k)
    window = (1,) * (x.ndim - 1) + (size,)
    pads = ((0, 0),) * (x.ndim - 1) + ((size // 2, (size - 1) // 2),)
    sums = lax.reduce_window(jnp.square(x), jnp.array(0, x.dtype), lax.add, window,
                             (1,) * x.ndim, pads)
    return x / (k + alpha * sums) ** beta
