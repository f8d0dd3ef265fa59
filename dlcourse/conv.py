r"""Convolution, §3.1: ``conv_init``, ``conv_apply`` and its explicit backward pass.

Layout: images are NHWC and kernels HWIO, the course's $(k, k, C_i, C_o)$; 1-D signals
are ``(N, L, C)`` with kernels ``(k, C_i, C_o)``.  The spatial rank is read off the
kernel (``W.ndim == 4``: 2-D, ``W.ndim == 3``: 1-D).

The course's "convolution" $(f * g)(x) = \sum_t f(t)\, g(x + t)$ is a *correlation*
(the kernel is not flipped), as in every deep learning framework; so is
:func:`conv_apply`.  With stride $s$ and $p$ zeros on each side, an input of width
$W_i$ and a kernel of width $k$ give an output of width

$$W_o = \left\lfloor \frac{W_i - k + 2p}{s} \right\rfloor + 1$$

(:func:`dlcourse._padding.conv_output_size`; the padding forms are
:data:`dlcourse._padding.Padding`), and a kernel $(k, k, C_i, C_o)$ has
$(k k C_i + 1) C_o$ parameters (:func:`conv_param_count`).

:func:`conv_backward` sits right below :func:`conv_apply`, with ``jax.vjp``'s shape
``(params, x, dy, *, stride, padding, groups) -> (dparams, dx)``, written as
correlations (never ``jax.grad``), and :func:`conv_apply_explicit` is the twin whose
derivative under ``jax.grad`` is that backward pass (``jax.custom_vjp``).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from dlcourse import initializers
from dlcourse._checks import check_int_tuple, check_positive_int, is_int
from dlcourse._conv_banded import banded_conv, use_banded
from dlcourse._padding import Padding, Pairs, check_window_fits, conv_output_size, resolve_padding
from dlcourse._types import Array, Params, PRNGKey

__all__ = [
    "conv_apply",
    "conv_apply_explicit",
    "conv_backward",
    "conv_init",
    "conv_param_count",
]

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


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
    kernel = check_int_tuple("conv_param_count", "kernel", kernel, 2 if is_int(kernel) else None)
    _check_channels("conv_param_count", c_in, c_out, groups)
    return (math.prod(kernel) * (c_in // groups) + int(bias)) * c_out


def _check_channels(fn: str, c_in: int, c_out: int, groups: int) -> None:
    for arg, value in (("c_in", c_in), ("c_out", c_out), ("groups", groups)):
        check_positive_int(fn, arg, value)
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
    kernel = check_int_tuple("conv_init", "kernel", kernel, ndim)
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
    check_positive_int(fn, "groups", groups)
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
    stride = check_int_tuple(fn, "stride", stride, nd)
    kernel = w.shape[:-2]
    pads = resolve_padding(padding, x.shape[1:-1], kernel, stride, name=fn)
    check_window_fits(fn, x.shape, kernel, pads, f"kernel W.shape={w.shape} with spatial size")
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
    ``lax.conv_general_dilated`` (NHWC/HWIO/NHWC; NWC/WIO/NWC in 1-D), except for 2-D
    layers with few input channels on narrow inputs (LeNet-5's), where XLA's CPU
    convolution is slow: there, on a CPU, the same sum is one matrix product with a
    banded kernel matrix (:mod:`dlcourse._conv_banded`, chosen per shape at trace time;
    per platform at trace time too where the default backend is the CPU, and otherwise
    at lowering, ``lax.platform_dependent``, so that a GPU machine's ``jit`` onto its
    CPU still gets it: tracing both branches under ``jax.grad`` added 0.03 s to
    LeNet-5's 0.14 s trace; LeNet-5's conv1 and conv2 run forward+backward 2.5–3.7× and
    1.4–2× faster, ``benchmarks/conv_speed.py``).

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
    nd, stride, pads, out = _conv_setup("conv_apply", params, x, stride, padding, groups)
    w = params["W"]
    dtype = jnp.result_type(x, w)
    x, w = jnp.asarray(x, dtype), jnp.asarray(w, dtype)

    def xla_conv(x, w):
        return lax.conv_general_dilated(
            x,
            w,
            window_strides=stride,
            padding=pads,
            dimension_numbers=_DIMENSION_NUMBERS[nd],
            feature_group_count=groups,
        )

    if use_banded(x.shape, w.shape, groups, out[-1]):  # on CPU only: GPUs convolve well
        banded = partial(banded_conv, stride=stride, pads=pads, out=out)
        y = (banded(x, w) if jax.default_backend() == "cpu"
             else lax.platform_dependent(x, w, cpu=banded, default=xla_conv))
    else:
        y = xla_conv(x, w)
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
    r"""VJP of :func:`conv_apply`, §3.1, written as three correlations.

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
    *,
    stride: int | tuple[int, ...] = 1,
    padding: Padding = 0,
    groups: int = 1,
) -> Array:
    r""":func:`conv_apply` whose derivative under ``jax.grad`` is :func:`conv_backward`, §3.1.

    The same $y = b + K * x$ as :func:`conv_apply`, same arguments and errors.
    ``stride`` and ``padding`` are turned into hashable tuples (explicit pairs) and passed,
    with ``groups``, as static arguments of a ``jax.custom_vjp``; the residuals are
    ``(params, x)``.
    """
    _, stride, pads, _ = _conv_setup("conv_apply_explicit", params, x, stride, padding, groups)
    return _conv_vjp(params, x, stride, pads, groups)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_vjp(params, x, stride, pads, groups):
    return conv_apply(params, x, stride=stride, padding=pads, groups=groups)


def _conv_vjp_fwd(params, x, stride, pads, groups):
    return _conv_vjp(params, x, stride, pads, groups), (params, x)


def _conv_vjp_bwd(stride, pads, groups, residuals, dy):
    params, x = residuals
    return conv_backward(params, x, dy, stride=stride, padding=pads, groups=groups)


_conv_vjp.defvjp(_conv_vjp_fwd, _conv_vjp_bwd)

