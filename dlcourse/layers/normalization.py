r"""Normalization layers under the layer protocol, and the conv → BN → ReLU unit.

:func:`BatchNorm` and :func:`LocalResponseNorm` wrap the kernels of
:mod:`dlcourse.normalization`; :func:`conv_bn` is the bias-free convolution, batch
norm and $\phi$ that ResNet-style and Inception-v4-style networks are made of.
"""

from __future__ import annotations

from functools import partial

from dlcourse._padding import Padding
from dlcourse._types import Layer
from dlcourse.layers.combinators import serial
from dlcourse.layers.conv import Conv
from dlcourse.layers.core import Activation, identity_init
from dlcourse.normalization import (
    batch_norm_apply,
    batch_norm_init,
    check_batch_norm,
    check_local_response_norm,
    local_response_norm,
)

__all__ = ["BatchNorm", "LocalResponseNorm", "conv_bn"]


def _bn_init(key, input_shape, *, scale: bool, center: bool):
    del key
    params, state = batch_norm_init(int(input_shape[-1]), scale=scale, center=center)
    return tuple(input_shape), params, state


def _bn_apply(params, state, x, *, key=None, train=False, momentum: float, eps: float):
    del key
    return batch_norm_apply(params, state, x, train=train, momentum=momentum, eps=eps)


def BatchNorm(  # noqa: N802 - a layer constructor, as stax's
    momentum: float = 0.9, eps: float = 1e-5, *, scale: bool = True, center: bool = True
) -> Layer:
    r"""Batch normalization (Ioffe & Szegedy 2015) per channel (the last axis).

    $$\hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta,$$

    with the batch's statistics and an update of the running ones when ``train=True``,
    the running ones otherwise (:func:`dlcourse.normalization.batch_norm_apply`).

    Args:
      momentum: $m$ of the running averages (PyTorch's ``momentum=0.1`` is $m = 0.9$).
      eps: $\epsilon$.
      scale: learn $\gamma$ (Keras' and TF-slim's Inception nets use ``scale=False``).
      center: learn $\beta$.

    Returns:
      A layer with ``params = {"gamma": (C,), "beta": (C,)}`` and
      ``state = {"mean": (C,), "var": (C,)}``.

    References:
      Ioffe, S. and Szegedy, C., "Batch Normalization: Accelerating Deep Network Training
      by Reducing Internal Covariate Shift", ICML 2015, https://arxiv.org/abs/1502.03167
    """
    momentum, eps = check_batch_norm("BatchNorm", momentum, eps)
    return Layer(partial(_bn_init, scale=scale, center=center),
                 partial(_bn_apply, momentum=momentum, eps=eps),
                 {"kind": "batch_norm", "momentum": momentum, "eps": eps, "scale": scale,
                  "center": center})


def _lrn_apply(params, state, x, *, key=None, train=False, size, alpha, beta, k):
    del params, key, train
    return local_response_norm(x, size=size, alpha=alpha, beta=beta, k=k), state


def LocalResponseNorm(  # noqa: N802 - a layer constructor, as stax's
    size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> Layer:
    r"""Local response normalization across channels (Krizhevsky et al. 2012, §3.3).

    $b^i = a^i / (k + \alpha \sum_j (a^j)^2)^\beta$ over the ``size`` channels around
    $i$ (:func:`dlcourse.normalization.local_response_norm`), with the paper's $k = 2$,
    $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$ ($\alpha$ not divided by $n$).  No
    parameters.
    """
    size, alpha, beta, k = check_local_response_norm("LocalResponseNorm", size, alpha,
                                                     beta, k)
    return Layer(identity_init,
                 partial(_lrn_apply, size=size, alpha=alpha, beta=beta, k=k),
                 {"kind": "lrn", "size": size, "alpha": alpha, "beta": beta, "k": k})


def conv_bn(
    filters: int,
    kernel: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: Padding = 0,
    activation: str | None = "relu",
    momentum: float = 0.9,
    eps: float = 1e-5,
    scale: bool = True,
) -> Layer:
    r"""``serial(conv, bn[, act])``: a bias-free convolution, batch norm, then $\phi$.

    The unit of ResNet-style networks and of the Inception-v4 family (TF-slim's and
    torchvision's ``BasicConv2d``): the convolution has no bias because batch norm's
    $\beta$ plays its role.  Children: ``conv``, ``bn`` (and ``act``); an unnamed
    ``conv_bn`` in a combinator is named ``conv1``, ``conv2`` …
    """
    items = [("conv", Conv(filters, kernel, stride=stride, padding=padding, bias=False)),
             ("bn", BatchNorm(momentum, eps, scale=scale))]
    if activation is not None:
        items.append(("act", Activation(activation)))
    layer = serial(*items)
    return layer._replace(info={**layer.info, "auto_name": "conv"})
