r"""Convolution and pooling layers of §3.1 under the layer protocol.

:func:`Conv` (1-D or 2-D, read off the input's rank), :func:`MaxPool`,
:func:`MeanPool`, :func:`GlobalMeanPool` and :func:`AdaptiveMeanPool`, built on the
kernels of :mod:`dlcourse.conv` and :mod:`dlcourse.pool`.  ``explicit_backprop=True``
differentiates through the kernels' ``*_apply_explicit`` twins, whose backward passes
are the explicit ``conv_backward`` / ``max_pool_backward`` / ``mean_pool_backward``.

Output sizes follow the course's $W_o = \lfloor (W_i - k + 2p)/s \rfloor + 1$
(:func:`dlcourse._padding.conv_output_size`); a kernel or window larger than the padded
input raises a :class:`~dlcourse.layers.ShapeError` at ``init``, naming the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax.numpy as jnp

from dlcourse import activations as act
from dlcourse import conv as convlib
from dlcourse import pool as poollib
from dlcourse._checks import check_int_tuple, check_positive_int, is_int
from dlcourse._padding import Padding, conv_output_size, resolve_padding
from dlcourse._types import Array, Layer, Params, Shape
from dlcourse.layers.shapes import ShapeError

__all__ = ["AdaptiveMeanPool", "Conv", "GlobalMeanPool", "MaxPool", "MeanPool", "pooled_conv"]

POOL_COMMUTING = (None, "relu")
r"""Activations :func:`pooled_conv` moves after the maximum: those with
$\max_i \phi(z_i) = \phi(\max_i z_i)$ and the same winner (ReLU, none)."""


def _size(fn: str, name: str, value: Any) -> int | tuple[int, ...]:
    """A positive int, or a tuple of them, kept as given (``3`` stays ``3`` in ``info``)."""
    check_int_tuple(fn, name, value)
    return int(value) if is_int(value) else tuple(int(v) for v in value)


def _check_image(kind: str, input_shape: Shape) -> None:
    if len(input_shape) not in (2, 3):
        raise ShapeError(
            f"needs an image (H, W, C) or a signal (L, C) per example, got input shape "
            f"{tuple(input_shape)}.",
            kind=kind,
        )


def _spatial_out(kind, input_shape, window, stride, padding, *, what: str) -> tuple[int, ...]:
    """Output spatial sizes by the course's formula, with the layer named in errors."""
    spatial = tuple(input_shape[:-1])
    nd = len(spatial)
    window = (window,) * nd if isinstance(window, int) else tuple(window)
    stride = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    if len(window) != nd or len(stride) != nd:
        raise ShapeError(f"{what}={window} and stride={stride} need one size per spatial "
                         f"axis of the input shape {tuple(input_shape)}.", kind=kind)
    try:
        pads = resolve_padding(padding, spatial, window, stride, name=kind)
        return tuple(
            conv_output_size(n, k, s, p, name=kind)
            for n, k, s, p in zip(spatial, window, stride, pads, strict=True)
        )
    except ValueError as err:
        raise ShapeError(
            f"{what}={window}, stride={stride}, padding={padding!r} does not fit the input "
            f"shape {tuple(input_shape)}: {err}",
            kind=kind,
        ) from None


# --- convolution --------------------------------------------------------------------------


def _conv_init(key, input_shape, *, filters, kernel, stride, padding, groups, bias, w_init):
    _check_image("Conv", input_shape)
    c_in = int(input_shape[-1])
    if c_in % groups or filters % groups:
        raise ShapeError(f"groups={groups} must divide the input channels {c_in} and "
                         f"filters={filters}.", kind="Conv")
    out = _spatial_out("Conv", input_shape, kernel, stride, padding, what="kernel")
    params = convlib.conv_init(key, kernel, c_in, filters, ndim=len(input_shape) - 1,
                               groups=groups, bias=bias, w_init=w_init)
    return (*out, filters), params, {}


def _conv_apply(params, state, x, *, key=None, train=False, stride, padding, groups,
                activation, explicit_backprop):
    del key, train
    conv = convlib.conv_apply_explicit if explicit_backprop else convlib.conv_apply
    y = conv(params, x, stride=stride, padding=padding, groups=groups)
    return (y if activation is None else act.output_apply(activation, y)), state


def Conv(  # noqa: N802 - a layer constructor, as stax's
    filters: int,
    kernel: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: Padding = 0,
    groups: int = 1,
    bias: bool = True,
    activation: str | None = None,
    w_init: str = "he_normal",
    explicit_backprop: bool = False,
) -> Layer:
    r"""Convolution layer, §3.1: $z = \phi(K * x + b)$, kernel $(k, k, C_i/g, C_o)$.

    1-D (input ``(L, C)``) or 2-D (input ``(H, W, C)``), read off the input's rank at
    ``init``.  The output size is the course's $W_o = \lfloor (W_i - k + 2p)/s \rfloor + 1$
    (:func:`dlcourse._padding.conv_output_size`); the count is $(k k C_i / g + 1) C_o$.

    Args:
      filters: $C_o$, the number of kernels.
      kernel: $k$, or one size per spatial axis (``(1, 7)``).
      stride: $s$.
      padding: see :data:`dlcourse._padding.Padding` (an int $p$, ``(p_h, p_w)``,
        ``"SAME"``…).
      groups: $g$ (AlexNet's two-GPU split): output block $t$ sees input block $t$ only.
      bias: include $b$ (``False`` in front of a batch norm, whose $\beta$ replaces it).
      activation: $\phi$ by name (see :func:`~dlcourse.layers.Activation`), or ``None``.
      w_init: a name of :data:`dlcourse.initializers.INITIALIZERS` (He normal: ReLU nets).
      explicit_backprop: differentiate through :func:`dlcourse.conv.conv_apply_explicit`,
        whose backward pass is the explicit :func:`dlcourse.conv.conv_backward`.

    Raises:
      ValueError: a size that is not a positive int (or a tuple of them), ``groups`` not
        dividing ``filters``, an unknown ``activation``.
      ShapeError: at ``init``, if the kernel is larger than the padded input or the input
        is not an image or a signal; the message names the layer and the shapes.
    """
    check_positive_int("Conv", "filters", filters)
    kernel, stride = _size("Conv", "kernel", kernel), _size("Conv", "stride", stride)
    check_positive_int("Conv", "groups", groups)
    if filters % groups:
        raise ValueError(f"Conv: groups={groups} must divide filters={filters}.")
    act.check_output(activation, caller="Conv", allow_none=True)
    return Layer(
        partial(_conv_init, filters=filters, kernel=kernel, stride=stride, padding=padding,
                groups=groups, bias=bias, w_init=w_init),
        partial(_conv_apply, stride=stride, padding=padding, groups=groups,
                activation=activation, explicit_backprop=explicit_backprop),
        {"kind": "conv", "filters": filters, "kernel": kernel, "stride": stride,
         "padding": padding, "groups": groups, "bias": bias, "activation": activation},
    )


# --- pooling ------------------------------------------------------------------------------


def _pool_init(key, input_shape, *, kind, window, stride, padding):
    del key
    _check_image(kind, input_shape)
    stride = window if stride is None else stride
    out = _spatial_out(kind, input_shape, window, stride, padding, what="window")
    return (*out, input_shape[-1]), {}, {}


def _max_pool_apply(params, state, x, *, key=None, train=False, window, stride, padding,
                    explicit_backprop):
    del params, key, train
    pool = poollib.max_pool_apply_explicit if explicit_backprop else poollib.max_pool
    return pool(x, window, stride, padding), state


def _mean_pool_apply(params, state, x, *, key=None, train=False, window, stride, padding,
                     count_include_pad, explicit_backprop):
    del params, key, train
    pool = poollib.mean_pool_apply_explicit if explicit_backprop else poollib.mean_pool
    return pool(x, window, stride, padding, count_include_pad=count_include_pad), state


def _pool_sizes(kind: str, window, stride):
    window = _size(kind, "window", window)
    return window, (None if stride is None else _size(kind, "stride", stride))


def MaxPool(  # noqa: N802 - a layer constructor, as stax's
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
    *,
    explicit_backprop: bool = False,
) -> Layer:
    r"""Max pooling, §3.1 (:func:`dlcourse.pool.max_pool`); ``stride`` defaults to ``window``.

    ``explicit_backprop=True`` differentiates through
    :func:`dlcourse.pool.max_pool_apply_explicit` (:func:`dlcourse.pool.max_pool_backward`).
    """
    window, stride = _pool_sizes("MaxPool", window, stride)
    return Layer(
        partial(_pool_init, kind="MaxPool", window=window, stride=stride, padding=padding),
        partial(_max_pool_apply, window=window, stride=stride, padding=padding,
                explicit_backprop=explicit_backprop),
        {"kind": "max_pool", "kernel": window, "stride": window if stride is None else stride,
         "padding": padding},
    )


def pooled_conv(conv: Layer, pool: Layer) -> Callable[[Params, Array], Array] | None:
    r"""``conv`` then ``pool`` as one function of ``(conv's params, x)``, the maximum taken
    before the bias and the activation; ``None`` where that is not the same function.

    For a :func:`Conv` with ReLU or no activation followed by a :func:`MaxPool`,
    $\max_i \phi(z_i + b) = \phi(\max_i z_i + b)$: the bias is the same over a window and
    $\phi$ does not decrease, so pooling first gives the same values (bit for bit: adding
    $b$ rounds monotonically) and the same gradient (it goes to the same first maximum,
    and ReLU's $\mathbf{1}_{z > 0}$ is read at the window's maximum) with the bias, the
    activation and their gradients on $1/k^2$ of the positions.  :func:`serial` runs every
    such pair this way.  LeNet-5's training step on a 2-core Intel Xeon: 5.9 against
    6.4–6.6 ms; its ratio to PyTorch in ``benchmarks/peers.py`` 0.89 → 0.99.  Two
    cases differ: a rounding tie, $z_i < z_j$ with $z_i + b$ and $z_j + b$ rounded to one
    float, sends the gradient to $z_j$ instead of the first; and a NaN, which ReLU turns
    into 0 alone, now turns its whole window's output into 0.  Explicit-backprop layers
    (``explicit_backprop=True``) are left as they are.

    References:
      Course §3.1.  LeCun et al., "Gradient-based learning applied to document
      recognition", 1998 (C1–S2, C3–S4).
    """
    c, p = conv.apply, pool.apply
    if not (isinstance(c, partial) and c.func is _conv_apply
            and isinstance(p, partial) and p.func is _max_pool_apply):
        return None
    ck, pk = c.keywords, p.keywords
    if ck["explicit_backprop"] or pk["explicit_backprop"] or ck["activation"] not in POOL_COMMUTING:
        return None
    return partial(_pooled_conv_apply, conv=ck, pool=pk)


def _pooled_conv_apply(params, x, *, conv, pool):
    z = convlib.conv_apply({"W": params["W"]}, x, stride=conv["stride"],
                           padding=conv["padding"], groups=conv["groups"])
    y = poollib.max_pool(z, pool["window"], pool["stride"], pool["padding"])
    y = y + params["b"] if "b" in params else y
    return y if conv["activation"] is None else act.output_apply(conv["activation"], y)


def MeanPool(  # noqa: N802 - a layer constructor, as stax's
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
    *,
    count_include_pad: bool = True,
    explicit_backprop: bool = False,
) -> Layer:
    r"""Mean pooling, §3.1 (:func:`dlcourse.pool.mean_pool`); ``stride`` defaults to ``window``.

    Each output is the mean of its $k \times k$ window.  ``count_include_pad=False``
    divides by the real positions only (TensorFlow's ``"SAME"`` pooling, used by the
    Inception-v4 family).  ``explicit_backprop=True`` differentiates through
    :func:`dlcourse.pool.mean_pool_apply_explicit`
    (:func:`dlcourse.pool.mean_pool_backward`).
    """
    window, stride = _pool_sizes("MeanPool", window, stride)
    return Layer(
        partial(_pool_init, kind="MeanPool", window=window, stride=stride, padding=padding),
        partial(_mean_pool_apply, window=window, stride=stride, padding=padding,
                count_include_pad=count_include_pad, explicit_backprop=explicit_backprop),
        {"kind": "mean_pool", "kernel": window, "stride": window if stride is None else stride,
         "padding": padding},
    )


def _global_pool_init(key, input_shape):
    del key
    _check_image("GlobalMeanPool", input_shape)
    return (input_shape[-1],), {}, {}


def _global_pool_apply(params, state, x, *, key=None, train=False):
    del params, key, train
    return poollib.global_mean_pool(x), state


def GlobalMeanPool() -> Layer:  # noqa: N802 - a layer constructor, as stax's
    r"""Global mean pooling, ``(H, W, C) -> (C,)``: GoogLeNet's and ResNet's head (§3.2).

    $y_c = \frac{1}{HW} \sum_{i,j} x_{ijc}$ (:func:`dlcourse.pool.global_mean_pool`), in
    place of a flatten and large dense layers.
    """
    return Layer(_global_pool_init, _global_pool_apply, {"kind": "global_mean_pool"})


def _adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    # PyTorch's adaptive pooling: bin i covers [floor(i n / m), ceil((i + 1) n / m)).
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive_init(key, input_shape, *, output_size):
    del key
    if len(input_shape) != 3:
        raise ShapeError(f"needs an image (H, W, C) per example, got input shape "
                         f"{tuple(input_shape)}.", kind="AdaptiveMeanPool")
    return (*output_size, input_shape[-1]), {}, {}


def _adaptive_apply(params, state, x, *, key=None, train=False, output_size):
    del params, key, train
    rows = []
    for r0, r1 in _adaptive_bins(x.shape[1], output_size[0]):
        rows.append(jnp.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2))
                               for c0, c1 in _adaptive_bins(x.shape[2], output_size[1])],
                              axis=1))
    return jnp.stack(rows, axis=1), state


def AdaptiveMeanPool(output_size: int | tuple[int, int]) -> Layer:  # noqa: N802
    r"""Mean pooling to a fixed ``(H_o, W_o)`` whatever the input (PyTorch's bins).

    Bin $i$ of an axis of size $n$ covers $[\lfloor i n / m \rfloor,
    \lceil (i+1) n / m \rceil)$ (bins may overlap): torchvision's GoogLeNet auxiliary
    heads pool to $4 \times 4$ this way (torch.nn's adaptive 2-D pooling).
    """
    size = check_int_tuple("AdaptiveMeanPool", "output_size", output_size, 2)
    return Layer(partial(_adaptive_init, output_size=size),
                 partial(_adaptive_apply, output_size=size),
                 {"kind": "adaptive_mean_pool", "kernel": size})
