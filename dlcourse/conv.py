r"""Convolution and pooling layers, §3.1, each with its explicit backward pass.

Layout: images are NHWC and kernels HWIO, the course's $(k, k, C_i, C_o)$; 1-D signals
are ``(N, L, C)`` with kernels ``(k, C_i, C_o)``.  The spatial rank is read off the
kernel (``W.ndim == 4``: 2-D, ``W.ndim == 3``: 1-D) and, for pooling, off the input
(``x.ndim == 4``: 2-D, ``x.ndim == 3``: 1-D).

The course's "convolution" $(f * g)(x) = \sum_t f(t)\, g(x + t)$ is a *correlation*
(the kernel is not flipped), as in every deep learning framework; so is
:func:`conv_apply`.  With stride $s$ and $p$ zeros on each side, an input of width
$W_i$ and a kernel of width $k$ give an output of width

$$W_o = \left\lfloor \frac{W_i - k + 2p}{s} \right\rfloor + 1$$

(:func:`conv_output_size`), and a kernel $(k, k, C_i, C_o)$ has $(k k C_i + 1) C_o$
parameters (:func:`conv_param_count`).

Padding (the type :data:`Padding`), for every function of this module:

* an int ``p``: ``p`` zeros on each side of every spatial axis (the course's $p$);
* for 2-D, a pair of ints ``(p_h, p_w)``: ``p_h`` rows on top and bottom, ``p_w``
  columns on the left and right;
* explicit ``(lo, hi)`` pairs, one per spatial axis: ``((1, 2),)`` in 1-D,
  ``((1, 2), (0, 1))`` in 2-D (asymmetric);
* ``"SAME"`` (output ``ceil(W_i / s)``, the extra zero on the high side, as XLA and
  TensorFlow) or ``"VALID"`` (no padding), case-insensitive.

A 1-D pair of ints ``(a, b)`` is refused: it would mean ``(lo, hi)`` for one axis but
``(p_h, p_w)`` for two.  :func:`resolve_padding` turns any of these into explicit pairs.

Each forward function has its backward right below it, with ``jax.vjp``'s shape
``(params, x, dy) -> (dparams, dx)``, written as correlations (never ``jax.grad``), and
an ``*_explicit`` twin whose derivative under ``jax.grad`` is that backward pass
(``jax.custom_vjp``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlcourse import initializers
from dlcourse._types import Array, Params, PRNGKey

__all__ = [
    "Padding",
    "conv_apply",
    "conv_apply_explicit",
    "conv_backward",
    "conv_init",
    "conv_output_size",
    "conv_param_count",
    "global_mean_pool",
    "max_pool",
    "max_pool_backward",
    "max_pool_explicit",
    "mean_pool",
    "mean_pool_backward",
    "mean_pool_explicit",
    "pool_output_size",
    "resolve_padding",
]

Padding = int | tuple[int, ...] | tuple[tuple[int, int], ...] | str
"""An int ``p``, ``(p_h, p_w)`` (one int per axis), ``(lo, hi)`` pairs per axis, "SAME", "VALID"."""

Pairs = tuple[tuple[int, int], ...]

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


# --- argument checks --------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _spatial_tuple(fn: str, name: str, value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """An int or a sequence of ``ndim`` positive ints, as a tuple of ``ndim`` ints."""
    values = (value,) * ndim if _is_int(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != ndim or not all(_is_int(v) and v > 0 for v in values):
        raise ValueError(
            f"{fn}: {name} must be a positive int or a tuple of {ndim} positive ints (one per "
            f"spatial axis), got {name}={value!r}; e.g. {name}=2."
        )
    return tuple(int(v) for v in values)


def _is_pair(p: object) -> bool:
    try:
        return not isinstance(p, str) and len(tuple(p)) == 2
    except TypeError:
        return False


def _padding_pairs(fn: str, padding: Padding, ndim: int) -> Pairs | str:
    """``padding`` as ``(lo, hi)`` pairs, or the upper-case string ``"SAME"``/``"VALID"``."""
    if isinstance(padding, str):
        if padding.upper() in ("SAME", "VALID"):
            return padding.upper()
        raise ValueError(
            f"{fn}: padding={padding!r} is not a padding mode; expected 'SAME' or 'VALID' "
            f"(case-insensitive), an int, or (lo, hi) pairs per spatial axis."
        )
    if _is_int(padding):
        pairs = ((padding, padding),) * ndim
    else:
        try:
            items = tuple(padding)
        except TypeError:
            items = None
        if items is None or len(items) != ndim:
            pairs = None
        elif all(_is_int(p) for p in items):  # one symmetric p per axis: (p_h, p_w)
            pairs = tuple((p, p) for p in items)
        elif all(_is_pair(p) for p in items):
            pairs = tuple(tuple(p) for p in items)
        else:
            pairs = None
        if pairs is None:
            forms = "((lo, hi),) for asymmetric 1-D padding" if ndim == 1 else "(p_h, p_w)"
            raise ValueError(
                f"{fn}: cannot read padding={padding!r} for {ndim} spatial axis(es); expected "
                f"an int, 'SAME', 'VALID', {forms}, or one (lo, hi) pair per spatial axis."
            )
    if not all(_is_int(v) and v >= 0 for pair in pairs for v in pair):
        raise ValueError(
            f"{fn}: padding must be non-negative ints, got padding={padding!r}; to crop, "
            f"slice the input instead."
        )
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def resolve_padding(
    padding: Padding,
    in_spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    *,
    name: str = "resolve_padding",
) -> Pairs:
    r"""Explicit ``(lo, hi)`` zero padding per spatial axis.

    ``"SAME"`` follows XLA and TensorFlow: the output has $\lceil W_i / s \rceil$
    positions, the total padding is $P = \max((\lceil W_i/s \rceil - 1) s + k - W_i, 0)$,
    split as $lo = \lfloor P/2 \rfloor$, $hi = P - lo$ (the odd zero goes to the end).
    ``"VALID"`` is no padding.  See the module docstring for the other forms.

    Args:
      padding: a :data:`Padding`.
      in_spatial: the input's spatial sizes, e.g. ``(H, W)``.
      kernel: the kernel (window) sizes, one per spatial axis.
      stride: the strides, one per spatial axis.
      name: the function named in error messages.

    Returns:
      ``((lo, hi), ...)``, one pair per spatial axis.

    Raises:
      ValueError: an unknown padding string, negative padding, or a form that does not
        match the number of spatial axes.

    References:
      Course §3.1.  Dumoulin, V. and Visin, F., "A guide to convolution arithmetic for
      deep learning", 2016, https://arxiv.org/abs/1603.07285
    """
    ndim = len(in_spatial)
    if not len(kernel) == len(stride) == ndim:
        raise ValueError(
            f"{name}: in_spatial={in_spatial}, kernel={kernel} and stride={stride} must have "
            f"one entry per spatial axis."
        )
    pairs = _padding_pairs(name, padding, ndim)
    if pairs == "VALID":
        return ((0, 0),) * ndim
    if pairs == "SAME":
        out = []
        for w, k, s in zip(in_spatial, kernel, stride, strict=True):
            total = max((-(-w // s) - 1) * s + k - w, 0)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    return pairs


def conv_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    *,
    name: str = "conv",
) -> int:
    r"""Output width of a convolution or pooling along one axis, §3.1.

    $$W_o = \left\lfloor \frac{W_i - k + 2p}{s} \right\rfloor + 1.$$

    The course writes the fraction without the floor; when $W_i - k + 2p$ is not a
    multiple of $s$ the last $(W_i - k + 2p) \bmod s$ rows of the padded input are never
    covered by a window and are dropped, as in every framework (their gradient is 0).
    AlexNet's first layer: $(227 - 11 + 0)/4 + 1 = 55$.

    Args:
      size: $W_i > 0$.
      kernel: $k > 0$.
      stride: $s > 0$.
      padding: $p \ge 0$ on each side, or a pair ``(lo, hi)`` for asymmetric padding
        ($2p$ becomes $lo + hi$).
      name: the function named in error messages (``"conv"``, ``"max_pool"`` …).

    Returns:
      $W_o$.

    Raises:
      ValueError: a non-positive size, kernel or stride, negative padding, or a kernel
        larger than the padded input ($k > W_i + 2p$).

    References:
      Course §3.1.  Dumoulin and Visin 2016, relationship 6,
      https://arxiv.org/abs/1603.07285
    """
    for arg, value in (("size", size), ("kernel", kernel), ("stride", stride)):
        if not _is_int(value) or value <= 0:
            raise ValueError(f"{name}: {arg} must be a positive int, got {arg}={value!r}.")
    lo = hi = padding
    if not _is_int(padding) and not isinstance(padding, str):
        try:
            lo, hi = padding
        except (TypeError, ValueError):
            pass  # not a pair: reported below
    if not (_is_int(lo) and _is_int(hi) and lo >= 0 and hi >= 0):
        raise ValueError(
            f"{name}: padding must be a non-negative int or a (lo, hi) pair, got "
            f"padding={padding!r}."
        )
    if kernel > size + lo + hi:
        raise ValueError(
            f"{name}: kernel={kernel} is larger than the padded input "
            f"(size={size} + padding {lo}+{hi} = {size + lo + hi}); use a smaller kernel, "
            f"more padding, or padding='SAME'."
        )
    return (size + lo + hi - kernel) // stride + 1


def _check_window_fits(
    fn: str, x_shape: tuple[int, ...], window: tuple[int, ...], pads: Pairs, what: str
) -> tuple[int, ...]:
    """Output spatial sizes; a ValueError naming the shapes if a window overhangs."""
    spatial = x_shape[1:-1]
    for w, k, (lo, hi) in zip(spatial, window, pads, strict=True):
        if k > w + lo + hi:
            raise ValueError(
                f"{fn}: {what} {window} is larger than the padded input: x.shape={x_shape} "
                f"has spatial size {spatial}, padded to "
                f"{tuple(s + a + b for s, (a, b) in zip(spatial, pads, strict=True))}; "
                f"use a smaller {what}, more padding, or padding='SAME'."
            )
    return spatial


# --- convolution ------------------------------------------------------------------------


def conv_param_count(
    kernel: int | tuple[int, ...], c_in: int, c_out: int, *, bias: bool = True, groups: int = 1
) -> int:
    r"""Number of parameters of a convolution, §3.1: $(k k C_i / g + 1)\, C_o$.

    With $g$ groups each output channel sees $C_i / g$ input channels (AlexNet's
    two-GPU split); without bias the $+1$ goes.  AlexNet's conv1 $(11, 11, 3, 96)$ has
    $(11 \cdot 11 \cdot 3 + 1) \cdot 96 = 34\,944$.

    Args:
      kernel: $k$ (a square 2-D kernel) or the tuple of kernel sizes (``(k,)`` in 1-D).
      c_in: $C_i$.
      c_out: $C_o$.
      bias: count the $C_o$ biases.
      groups: $g$, dividing both $C_i$ and $C_o$.

    Returns:
      The parameter count.

    Raises:
      ValueError: a non-positive size, or $g$ not dividing $C_i$ and $C_o$.

    References:
      Course §3.1.  Krizhevsky, A., Sutskever, I. and Hinton, G. E., "ImageNet
      Classification with Deep Convolutional Neural Networks", NeurIPS 2012.
    """
    kernel = (kernel, kernel) if _is_int(kernel) else kernel
    kernel = _spatial_tuple("conv_param_count", "kernel", kernel, len(tuple(kernel)))
    _check_channels("conv_param_count", c_in, c_out, groups)
    return (math.prod(kernel) * (c_in // groups) + int(bias)) * c_out


def _check_channels(fn: str, c_in: int, c_out: int, groups: int) -> None:
    for arg, value in (("c_in", c_in), ("c_out", c_out), ("groups", groups)):
        if not _is_int(value) or value <= 0:
            raise ValueError(f"{fn}: {arg} must be a positive int, got {arg}={value!r}.")
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide both c_in={c_in} and c_out={c_out}; "
            f"choose channel counts that are multiples of groups."
        )


def conv_init(
    key: PRNGKey,
    kernel: int | tuple[int, ...],
    c_in: int,
    c_out: int,
    *,
    ndim: int = 2,
    groups: int = 1,
    bias: bool = True,
    w_init: str = "he_normal",
    dtype: jnp.dtype = jnp.float32,
) -> Params:
    r"""Parameters of a convolution: a kernel $(k, k, C_i/g, C_o)$ and $b = 0$ (§3.1, §2.4.5).

    Args:
      key: PRNG key for the kernel.
      kernel: $k$ (``(k,) * ndim``) or a tuple of ``ndim`` kernel sizes.
      c_in: $C_i$.
      c_out: $C_o$, the number of kernels (filters).
      ndim: number of spatial axes, 1 or 2.
      groups: $g$; the kernel's input axis holds $C_i / g$ channels.
      bias: include ``"b"``.
      w_init: a name of :data:`dlcourse.initializers.INITIALIZERS` (He normal by default: conv
        layers are followed by ReLU).  Fans are read from HWIO (:func:`dlcourse.initializers.fans`).
      dtype: parameter dtype.

    Returns:
      ``{"W": (*kernel, c_in // groups, c_out), "b": (c_out,)}`` (no ``"b"`` when
      ``bias=False``).

    Raises:
      ValueError: ``ndim`` not 1 or 2, a non-positive size, or groups not dividing the
        channels.
    """
    if ndim not in (1, 2):
        raise ValueError(f"conv_init: ndim must be 1 or 2 spatial axes, got ndim={ndim!r}.")
    kernel = _spatial_tuple("conv_init", "kernel", kernel, ndim)
    _check_channels("conv_init", c_in, c_out, groups)
    w = initializers.get_initializer(w_init)(key, (*kernel, c_in // groups, c_out), dtype)
    return {"W": w, "b": jnp.zeros((c_out,), dtype)} if bias else {"W": w}


def _conv_setup(
    fn: str, params: Params, x: Array, stride, padding, groups: int
) -> tuple[int, tuple[int, ...], Pairs, tuple[int, ...]]:
    """Static checks of a convolution; returns ``(ndim, stride, pads, out_spatial)``."""
    w = params["W"]
    if w.ndim not in (3, 4):
        raise ValueError(
            f"{fn}: W must be a 1-D kernel (k, C_in, C_out) or a 2-D kernel "
            f"(k_h, k_w, C_in, C_out), got W.shape={w.shape}."
        )
    nd = w.ndim - 2
    if x.ndim != w.ndim:
        layout = "(N, L, C)" if nd == 1 else "(N, H, W, C)"
        fix = "; add the batch axis with x[None]" if x.ndim == w.ndim - 1 else ""
        raise ValueError(
            f"{fn}: a {nd}-D kernel W.shape={w.shape} needs x of shape {layout}, got "
            f"x.shape={x.shape}{fix}."
        )
    if not _is_int(groups) or groups <= 0:
        raise ValueError(f"{fn}: groups must be a positive int, got groups={groups!r}.")
    c_in, c_out = w.shape[-2], w.shape[-1]
    if x.shape[-1] != c_in * groups:
        raise ValueError(
            f"{fn}: x has {x.shape[-1]} channels but W expects C_in*groups = {c_in}*{groups} "
            f"= {c_in * groups} (x.shape={x.shape}, W.shape={w.shape}, groups={groups}); "
            f"x must be channels-last (NHWC / NLC)."
        )
    if c_out % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide the output channels C_out={c_out} "
            f"(W.shape={w.shape})."
        )
    if "b" in params and params["b"].shape != (c_out,):
        raise ValueError(
            f"{fn}: b must have shape ({c_out},) to match W.shape={w.shape}, got "
            f"b.shape={params['b'].shape}."
        )
    stride = _spatial_tuple(fn, "stride", stride, nd)
    kernel = w.shape[:-2]
    pads = resolve_padding(padding, x.shape[1:-1], kernel, stride, name=fn)
    _check_window_fits(fn, x.shape, kernel, pads, f"kernel W.shape={w.shape} with spatial size")
    out = tuple(
        conv_output_size(n, k, s, p, name=fn)
        for n, k, s, p in zip(x.shape[1:-1], kernel, stride, pads, strict=True)
    )
    return nd, stride, pads, out


def conv_apply(
    params: Params,
    x: Array,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: Padding = 0,
    groups: int = 1,
) -> Array:
    r"""Convolution layer of §3.1 (a correlation, as the course and every framework).

    $$y[n, i, j, o] = b_o + \sum_{d_i, d_j, c} x_{\text{pad}}[n, i s + d_i, j s + d_j, c]
      \, W[d_i, d_j, c, o],$$

    the course's $K_l * I(i, j) = \sum_{c, n, m} K_l(n, m, c)\, I(i + n - 2, j + m - 2, c)$
    for $k = 5$, $p = 2$, $s = 1$ (the course prints $i + m - 2$ for the column index: a
    typo for $j + m - 2$).  With $g$ groups the channels are split into $g$
    blocks and output block $t$ only sees input block $t$.  One call of
    ``lax.conv_general_dilated`` (NHWC/HWIO/NHWC; NWC/WIO/NWC in 1-D).

    Args:
      params: ``{"W": (k_h, k_w, C_i/g, C_o), "b": (C_o,)}`` (``"b"`` optional) or, in
        1-D, ``W: (k, C_i/g, C_o)``.
      x: ``(N, H, W, C_i)``, or ``(N, L, C_i)`` in 1-D.
      stride: $s$, an int or one per spatial axis.
      padding: a :data:`Padding` (zeros).
      groups: $g$.

    Returns:
      ``(N, H_o, W_o, C_o)`` (``(N, L_o, C_o)``), sizes from :func:`conv_output_size`.

    Raises:
      ValueError: x's rank does not match the kernel's, a channel mismatch, $g$ not
        dividing $C_o$, a bad stride or padding, or a kernel larger than the padded input.

    References:
      Course §3.1.  LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P., "Gradient-based
      learning applied to document recognition", Proc. IEEE 86(11), 1998.
    """
    nd, stride, pads, _ = _conv_setup("conv_apply", params, x, stride, padding, groups)
    w = params["W"]
    dtype = jnp.result_type(x, w)
    y = lax.conv_general_dilated(
        x.astype(dtype),
        w.astype(dtype),
        window_strides=stride,
        padding=pads,
        dimension_numbers=_DIMENSION_NUMBERS[nd],
        feature_group_count=groups,
    )
    return y + params["b"] if "b" in params else y


def conv_backward(
    params: Params,
    x: Array,
    dy: Array,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: Padding = 0,
    groups: int = 1,
) -> tuple[Params, Array]:
    r"""VJP of :func:`conv_apply`, written as three correlations.

    One spatial axis is shown; $U = (W_o - 1)s + k \le W_i + lo + hi$ is the length of
    the padded input that the windows cover.

    * Kernel: a correlation of the padded input with ``dy`` dilated by the stride,
      the batch axis contracted,

      $$\nabla_W[d, c, o] = \sum_{n, i} x_{\text{pad}}[n, i s + d, c]\, \nabla_y[n, i, o];$$

      ``conv_general_dilated`` with the roles of batch and channel swapped (lhs
      ``CHWN``, rhs ``IHWO``), ``rhs_dilation = s`` and padding $(lo, U - W_i - lo)$, so
      that the rows dropped by the floor are cut off.  Groups: ``batch_group_count = g``
      pairs input-channel block $t$ with output-channel block $t$.
    * Bias: $\nabla_b[o] = \sum_{n, i} \nabla_y[n, i, o]$.
    * Input: the *full* correlation of the stride-dilated ``dy`` with the kernel flipped in
      space and transposed in channels, cropped by the padding,

      $$\nabla_{x_{\text{pad}}}[t, c] = \sum_{d, o} \tilde\nabla_y[t - d, o]\, W[d, c, o],
        \quad \tilde\nabla_y[i s] = \nabla_y[i], \text{ zero between};$$

      ``conv_general_dilated`` with ``lhs_dilation = s`` and padding
      $(k - 1 - lo,\; k - 1 - hi + (W_i + lo + hi - U))$ (negative: crop), which yields
      exactly $\nabla_x = \nabla_{x_{\text{pad}}}[lo : lo + W_i]$, with 0 on the rows the
      floor dropped.  Groups: ``feature_group_count = g`` with the kernel reshaped from
      $(k, C_i/g, g \cdot C_o/g)$ to $(k, C_o/g, g \cdot C_i/g)$.

    Args:
      params: as :func:`conv_apply`.
      x: the forward input.
      dy: $\nabla_y$, the shape of :func:`conv_apply`'s output.
      stride, padding, groups: as in the forward pass.

    Returns:
      ``(dparams, dx)``: ``dparams`` like ``params`` (``{"W", "b"}``), ``dx`` like ``x``.

    Raises:
      ValueError: as :func:`conv_apply`, or ``dy`` of the wrong shape.

    References:
      Course §3.1.  Dumoulin and Visin 2016, §4 (transposed convolution),
      https://arxiv.org/abs/1603.07285
    """
    nd, stride, pads, out = _conv_setup("conv_backward", params, x, stride, padding, groups)
    w = params["W"]
    kernel, c_out = w.shape[:-2], w.shape[-1]
    if dy.shape != (x.shape[0], *out, c_out):
        raise ValueError(
            f"conv_backward: dy.shape={dy.shape} must be the output shape "
            f"{(x.shape[0], *out, c_out)} of conv_apply for x.shape={x.shape}, W.shape={w.shape}."
        )
    x_dtype, dtype = x.dtype, jnp.result_type(x, w, dy)
    x, w, dy = x.astype(dtype), w.astype(dtype), dy.astype(dtype)
    used = [(o - 1) * s + k for o, s, k in zip(out, stride, kernel, strict=True)]
    sp = "WH"[:nd][::-1]  # "W" in 1-D, "HW" in 2-D

    # dW: correlate x_pad[:U] (batch <-> channel swapped) with dy dilated by s.
    dw = lax.conv_general_dilated(
        x,
        dy,
        window_strides=(1,) * nd,
        padding=[(lo, u - n - lo) for (lo, _), u, n in zip(pads, used, x.shape[1:-1], strict=True)],
        rhs_dilation=stride,
        dimension_numbers=(f"C{sp}N", f"I{sp}O", f"{sp}NC"),
        batch_group_count=groups,
    )

    # dx: full correlation of dilated dy with the flipped, channel-transposed kernel.
    c_in_g, c_out_g = w.shape[-2], c_out // groups
    w_t = w.reshape(*kernel, c_in_g, groups, c_out_g)
    w_t = jnp.swapaxes(w_t, -3, -1).reshape(*kernel, c_out_g, groups * c_in_g)
    w_t = jnp.flip(w_t, axis=tuple(range(nd)))
    dx = lax.conv_general_dilated(
        dy,
        w_t,
        window_strides=(1,) * nd,
        padding=[
            (k - 1 - lo, k - 1 - hi + (n + lo + hi - u))
            for k, (lo, hi), n, u in zip(kernel, pads, x.shape[1:-1], used, strict=True)
        ],
        lhs_dilation=stride,
        dimension_numbers=_DIMENSION_NUMBERS[nd],
        feature_group_count=groups,
    )
    grads = {"W": dw.astype(params["W"].dtype)}
    if "b" in params:
        grads["b"] = dy.sum(axis=tuple(range(nd + 1))).astype(params["b"].dtype)
    return grads, dx.astype(x_dtype)


def conv_apply_explicit(
    params: Params,
    x: Array,
    stride: int | tuple[int, ...] = 1,
    padding: Padding = 0,
    groups: int = 1,
) -> Array:
    r""":func:`conv_apply` whose derivative under ``jax.grad`` is :func:`conv_backward`.

    ``stride`` and ``padding`` are turned into hashable tuples (explicit pairs) and passed,
    with ``groups``, as static arguments of a ``jax.custom_vjp``.
    """
    _, stride, pads, _ = _conv_setup("conv_apply_explicit", params, x, stride, padding, groups)
    return _conv_explicit(params, x, stride, pads, groups)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_explicit(params, x, stride, pads, groups):
    return conv_apply(params, x, stride=stride, padding=pads, groups=groups)


def _conv_explicit_fwd(params, x, stride, pads, groups):
    return _conv_explicit(params, x, stride, pads, groups), (params, x)


def _conv_explicit_bwd(stride, pads, groups, residuals, dy):
    params, x = residuals
    return conv_backward(params, x, dy, stride=stride, padding=pads, groups=groups)


_conv_explicit.defvjp(_conv_explicit_fwd, _conv_explicit_bwd)


# --- pooling ----------------------------------------------------------------------------


def pool_output_size(size: int, window: int, stride: int | None = None, padding=0) -> int:
    r"""Output width of a pooling layer, §3.1: $\lfloor (W_i - k + 2p)/s \rfloor + 1$.

    ``stride`` defaults to the window (non-overlapping patches): a $2 \times 2$ max-pool
    of stride 2 halves the width and height, as in the course.  AlexNet's overlapping
    pool, $k = 3$, $s = 2$: $55 \to 27$.  Same arguments and errors as
    :func:`conv_output_size`.
    """
    return conv_output_size(
        size, window, window if stride is None else stride, padding, name="pool"
    )


def _pool_setup(
    fn: str, x: Array, window, stride, padding
) -> tuple[int, tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    """Static checks of a pooling; returns ``(ndim, window, stride, pads, out_spatial)``."""
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{fn}: x must be images (N, H, W, C) or signals (N, L, C), got x.shape={x.shape}; "
            f"add the batch axis with x[None]."
        )
    nd = x.ndim - 2
    window = _spatial_tuple(fn, "window", window, nd)
    stride = window if stride is None else _spatial_tuple(fn, "stride", stride, nd)
    pads = resolve_padding(padding, x.shape[1:-1], window, stride, name=fn)
    _check_window_fits(fn, x.shape, window, pads, "window")
    # A window made only of padding would give -inf (max) or 0/0 (mean without the pad).
    if any(lo >= k or hi >= k for (lo, hi), k in zip(pads, window, strict=True)):
        raise ValueError(
            f"{fn}: padding {pads} must be smaller than the window {window} on each side, "
            f"else a window sees only padding; use less padding or padding='SAME'."
        )
    out = tuple(
        conv_output_size(n, k, s, p, name=fn)
        for n, k, s, p in zip(x.shape[1:-1], window, stride, pads, strict=True)
    )
    return nd, window, stride, pads, out


def _windows(x_pad: Array, window, stride, out) -> list[Array]:
    """The strided slices ``x_pad[:, d_i::s, d_j::s, :]`` (cut to ``out``), one per window
    offset $(d_i, d_j)$ in row-major order: im2col without the copy into a matrix."""
    slices = []
    for offset in np.ndindex(*window):
        start = (0, *offset, 0)
        limit = (
            x_pad.shape[0],
            *((o - 1) * s + d + 1 for o, s, d in zip(out, stride, offset, strict=True)),
            x_pad.shape[-1],
        )
        slices.append(lax.slice(x_pad, start, limit, (1, *stride, 1)))
    return slices


def _unwindow(parts: list[Array], padded_shape, window, stride, pads) -> Array:
    """Transpose of :func:`_windows`: place each part back at its offset, dilated by the
    stride (``lax.pad`` with interior padding), sum, and crop the padding."""
    total = None
    for offset, part in zip(np.ndindex(*window), parts, strict=True):
        config = [(0, 0, 0)]
        for d, s, n_pad, o in zip(
            offset, stride, padded_shape[1:-1], part.shape[1:-1], strict=True
        ):
            config.append((d, n_pad - d - ((o - 1) * s + 1), s - 1))
        config.append((0, 0, 0))
        placed = lax.pad(part, jnp.zeros((), part.dtype), config)
        total = placed if total is None else total + placed
    crop = [(0, 0, 0)] + [(-lo, -hi, 0) for lo, hi in pads] + [(0, 0, 0)]
    return lax.pad(total, jnp.zeros((), total.dtype), crop)


def max_pool(
    x: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
) -> Array:
    r"""Max pooling, §3.1: the maximum over each $k \times k$ patch, moved by $s$.

    $$y[n, i, j, c] = \max_{d_i, d_j} x_{\text{pad}}[n, i s + d_i, j s + d_j, c],$$

    padded with $-\infty$ (a padded position never wins).  ``lax.reduce_window``.

    Args:
      x: ``(N, H, W, C)`` (2-D) or ``(N, L, C)`` (1-D).
      window: $k$, an int or one per spatial axis.
      stride: $s$; defaults to the window.
      padding: a :data:`Padding`, smaller than the window on each side.

    Returns:
      ``(N, H_o, W_o, C)`` (``(N, L_o, C)``), sizes from :func:`pool_output_size`.

    Raises:
      ValueError: a bad rank, window, stride or padding, or a window larger than the
        padded input.

    References:
      Course §3.1.  Boureau, Y.-L., Ponce, J. and LeCun, Y., "A theoretical analysis of
      feature pooling in visual recognition", ICML 2010.
    """
    _, window, stride, pads, _ = _pool_setup("max_pool", x, window, stride, padding)
    return lax.reduce_window(
        x,
        np.array(-np.inf, x.dtype),
        lax.max,
        (1, *window, 1),
        (1, *stride, 1),
        ((0, 0), *pads, (0, 0)),
    )


def max_pool_backward(
    x: Array,
    dy: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
) -> Array:
    r"""VJP of :func:`max_pool`: each $\nabla_y$ goes to the arg-max of its window.

    $$\nabla_x[n, t, c] = \sum_{i:\ t = i s + d^*_i - lo} \nabla_y[n, i, c], \qquad
      d^*_i = \operatorname{arg\,max}_d x_{\text{pad}}[n, i s + d, c],$$

    summed where windows overlap ($k > s$).  On ties the first maximum in row-major
    window order takes it all (``jnp.argmax``), as ``jax.grad`` of :func:`max_pool` does
    on CPU (checked by a test); the maximum is not differentiable there.  The windows
    are strided slices of $x_{\text{pad}}$; the routed gradients are put back by the
    transposed slicing (``lax.pad`` with interior padding $s - 1$).

    Args:
      x: the forward input.
      dy: $\nabla_y$, the shape of :func:`max_pool`'s output.
      window, stride, padding: as in the forward pass.

    Returns:
      $\nabla_x$, the shape of ``x``.

    Raises:
      ValueError: as :func:`max_pool`, or ``dy`` of the wrong shape.
    """
    _, window, stride, pads, out = _pool_setup("max_pool_backward", x, window, stride, padding)
    _check_dy("max_pool_backward", x, dy, out)
    x_pad = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    patches = jnp.stack(_windows(x_pad, window, stride, out), axis=-2)  # (N, *out, K, C)
    winner = jax.nn.one_hot(
        jnp.argmax(patches, axis=-2), patches.shape[-2], axis=-2, dtype=dy.dtype
    )
    routed = winner * dy[..., None, :]
    parts = [routed[..., k, :] for k in range(routed.shape[-2])]
    return _unwindow(parts, x_pad.shape, window, stride, pads)


def _check_dy(fn: str, x: Array, dy: Array, out: tuple[int, ...]) -> None:
    expected = (x.shape[0], *out, x.shape[-1])
    if dy.shape != expected:
        raise ValueError(
            f"{fn}: dy.shape={dy.shape} must be the forward output shape {expected} "
            f"for x.shape={x.shape}."
        )


def _pool_counts(spatial, window, stride, pads, out, count_include_pad: bool) -> np.ndarray:
    """Number of averaged positions per output window, shape ``(1, *out, 1)`` (static)."""
    counts = np.ones((1,) * (len(out) + 2))
    for axis, (n, k, s, (lo, _), o) in enumerate(
        zip(spatial, window, stride, pads, out, strict=True)
    ):
        start = np.arange(o) * s - lo
        c = (
            np.full(o, k)
            if count_include_pad
            else (np.minimum(start + k, n) - np.maximum(start, 0))
        )
        shape = [1] * (len(out) + 2)
        shape[axis + 1] = o
        counts = counts * c.reshape(shape)
    return counts


def mean_pool(
    x: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
    *,
    count_include_pad: bool = True,
) -> Array:
    r"""Mean pooling, §3.1: the average over each $k \times k$ patch, moved by $s$.

    $$y[n, i, j, c] = \frac{1}{|w_{ij}|} \sum_{d_i, d_j} x_{\text{pad}}[n, i s + d_i,
      j s + d_j, c],$$

    with $|w_{ij}| = k^2$ (``count_include_pad=True``: the padded zeros count, as
    PyTorch's default) or the number of real positions in the window (``False``, as
    TensorFlow's ``"SAME"``).

    Args:
      x: ``(N, H, W, C)`` (2-D) or ``(N, L, C)`` (1-D).
      window: $k$, an int or one per spatial axis.
      stride: $s$; defaults to the window.
      padding: a :data:`Padding`, smaller than the window on each side.
      count_include_pad: divide by the full window size.

    Returns:
      ``(N, H_o, W_o, C)`` (``(N, L_o, C)``).

    Raises:
      ValueError: as :func:`max_pool`.

    References:
      Course §3.1.  LeCun et al. 1998 (LeNet-5's subsampling layers average).
    """
    _, window, stride, pads, out = _pool_setup("mean_pool", x, window, stride, padding)
    sums = lax.reduce_window(
        x,
        np.array(0, x.dtype),
        lax.add,
        (1, *window, 1),
        (1, *stride, 1),
        ((0, 0), *pads, (0, 0)),
    )
    counts = _pool_counts(x.shape[1:-1], window, stride, pads, out, count_include_pad)
    return sums / counts.astype(x.dtype)


def mean_pool_backward(
    x: Array,
    dy: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
    *,
    count_include_pad: bool = True,
) -> Array:
    r"""VJP of :func:`mean_pool`: each $\nabla_y / |w_{ij}|$ is spread over its window.

    $$\nabla_x[n, t, c] = \sum_{i:\ 0 \le t + lo - i s < k} \frac{\nabla_y[n, i, c]}{|w_i|},$$

    summed where windows overlap and 0 on the rows the floor dropped; ``x`` only gives
    the shape.

    Returns:
      $\nabla_x$, the shape of ``x``.
    """
    _, window, stride, pads, out = _pool_setup("mean_pool_backward", x, window, stride, padding)
    _check_dy("mean_pool_backward", x, dy, out)
    counts = _pool_counts(x.shape[1:-1], window, stride, pads, out, count_include_pad)
    share = dy / counts.astype(dy.dtype)
    padded = (
        x.shape[0],
        *(n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads, strict=True)),
        x.shape[-1],
    )
    return _unwindow([share] * math.prod(window), padded, window, stride, pads)


def _pool_explicit_args(fn, x, window, stride, padding):
    _, window, stride, pads, _ = _pool_setup(fn, x, window, stride, padding)
    return window, stride, pads


def max_pool_explicit(
    x: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
) -> Array:
    """:func:`max_pool` whose derivative under ``jax.grad`` is :func:`max_pool_backward`."""
    return _max_pool_explicit(
        x, *_pool_explicit_args("max_pool_explicit", x, window, stride, padding)
    )


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool_explicit(x, window, stride, pads):
    return max_pool(x, window, stride, pads)


def _max_pool_fwd(x, window, stride, pads):
    return max_pool(x, window, stride, pads), x


def _max_pool_bwd(window, stride, pads, x, dy):
    return (max_pool_backward(x, dy, window, stride, pads),)


_max_pool_explicit.defvjp(_max_pool_fwd, _max_pool_bwd)


def mean_pool_explicit(
    x: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
    *,
    count_include_pad: bool = True,
) -> Array:
    """:func:`mean_pool` whose derivative under ``jax.grad`` is :func:`mean_pool_backward`."""
    args = _pool_explicit_args("mean_pool_explicit", x, window, stride, padding)
    return _mean_pool_explicit(x, *args, bool(count_include_pad))


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _mean_pool_explicit(x, window, stride, pads, count_include_pad):
    return mean_pool(x, window, stride, pads, count_include_pad=count_include_pad)


def _mean_pool_fwd(x, window, stride, pads, count_include_pad):
    y = mean_pool(x, window, stride, pads, count_include_pad=count_include_pad)
    return y, x  # only x's shape is read by the backward pass


def _mean_pool_bwd(window, stride, pads, count_include_pad, x, dy):
    return (mean_pool_backward(x, dy, window, stride, pads, count_include_pad=count_include_pad),)


_mean_pool_explicit.defvjp(_mean_pool_fwd, _mean_pool_bwd)


def global_mean_pool(x: Array) -> Array:
    r"""Global average pooling: the mean over all spatial positions, ``(N, ..., C) -> (N, C)``.

    $y[n, c] = \frac{1}{HW} \sum_{i, j} x[n, i, j, c]$, the head of GoogLeNet and ResNet
    (§3.2) in place of a flatten and large dense layers.

    Raises:
      ValueError: if ``x`` has no spatial axis (``x.ndim < 3``).

    References:
      Lin, M., Chen, Q. and Yan, S., "Network In Network", ICLR 2014,
      https://arxiv.org/abs/1312.4400
    """
    if x.ndim < 3:
        raise ValueError(
            f"global_mean_pool: x must be (N, ..., C) with at least one spatial axis, got "
            f"x.shape={x.shape}."
        )
    return x.mean(axis=tuple(range(1, x.ndim - 1)))
