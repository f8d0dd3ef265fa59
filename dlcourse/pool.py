r"""Pooling, §3.1: max and mean pooling, each with its explicit backward pass.

Images are NHWC, 1-D signals ``(N, L, C)``; the spatial rank is read off the input
(``x.ndim == 4``: 2-D, ``x.ndim == 3``: 1-D).  A window of $k$ moved by the stride $s$
(the window by default: non-overlapping patches) over the input padded by
:data:`~dlcourse._padding.Padding` gives $\lfloor (W_i - k + 2p)/s \rfloor + 1$ outputs
per axis (:func:`~dlcourse._padding.pool_output_size`).

Each forward function has its backward right below it, with ``jax.vjp``'s shape
``(params, x, dy, *, <hyper-parameters>) -> (dparams, dx)``; pooling has no parameters,
so ``params`` and ``dparams`` are ``{}``.  The backward passes are written with strided
slices (never ``jax.grad``), and each ``*_apply_explicit`` twin is the forward function
whose derivative under ``jax.grad`` is that backward pass (``jax.custom_vjp``).
:func:`global_mean_pool` is GoogLeNet's and ResNet's head (§3.2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlcourse._checks import check_int_tuple
from dlcourse._padding import Padding, Pairs, check_window_fits, pool_output_size, resolve_padding
from dlcourse._pool_windows import block_max, block_sum, unwindow, windows
from dlcourse._types import Array, Params

__all__ = [
    "global_mean_pool",
    "max_pool",
    "max_pool_apply_explicit",
    "max_pool_backward",
    "mean_pool",
    "mean_pool_apply_explicit",
    "mean_pool_backward",
]


# --- shared: checks --------------------------------------------------------------------


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
    window = check_int_tuple(fn, "window", window, nd)
    stride = window if stride is None else check_int_tuple(fn, "stride", stride, nd)
    pads = resolve_padding(padding, x.shape[1:-1], window, stride, name=fn)
    check_window_fits(fn, x.shape, window, pads, "window")
    # A window made only of padding would give -inf (max) or 0/0 (mean without the pad).
    if any(lo >= k or hi >= k for (lo, hi), k in zip(pads, window, strict=True)):
        raise ValueError(
            f"{fn}: padding {pads} must be smaller than the window {window} on each side, "
            f"else a window sees only padding; use less padding or padding='SAME'."
        )
    out = tuple(
        pool_output_size(n, k, s, p, name=fn)
        for n, k, s, p in zip(x.shape[1:-1], window, stride, pads, strict=True)
    )
    return nd, window, stride, pads, out


def _check_backward_args(fn: str, params: Params, x: Array, dy: Array, out) -> None:
    """Pooling has no parameters (``params == {}``); ``dy`` has the forward output's shape."""
    if not isinstance(params, Mapping) or params:
        got = f"keys {list(params)}" if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"{fn}: pooling has no parameters, so params must be {{}} (jax.vjp's shape "
            f"(params, x, dy)), got params of {got}; call {fn}({{}}, x, dy, window=...)."
        )
    expected = (x.shape[0], *out, x.shape[-1])
    if dy.shape != expected:
        raise ValueError(
            f"{fn}: dy.shape={dy.shape} must be the forward output shape {expected} "
            f"for x.shape={x.shape}."
        )


# --- max pooling ------------------------------------------------------------------------


def max_pool(
    x: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
) -> Array:
    r"""Max pooling, §3.1: the maximum over each $k \times k$ patch, moved by $s$.

    $$y[n, i, j, c] = \max_{d_i, d_j} x_{\text{pad}}[n, i s + d_i, j s + d_j, c],$$

    padded with $-\infty$ (a padded position never wins).  Non-overlapping windows
    (stride = window, the default) take the maximum of the $k_h k_w$ strided slices, whose
    derivative sends each gradient to the first maximum of its window in row-major order
    (:func:`dlcourse._pool_windows.block_max`: the rule of ``reduce_window``'s gradient
    on CPU and of PyTorch; forward+backward 2–8× faster on a CPU than ``reduce_window``,
    ``benchmarks/conv_speed.py``); overlapping windows use
    ``lax.reduce_window``.

    Args:
      x: ``(N, H, W, C)`` (2-D) or ``(N, L, C)`` (1-D).
      window: $k$, an int or one per spatial axis.
      stride: $s$; defaults to the window.
      padding: a :data:`~dlcourse._padding.Padding`, smaller than the window on each side.

    Returns:
      ``(N, H_o, W_o, C)`` (``(N, L_o, C)``), sizes from
      :func:`~dlcourse._padding.pool_output_size`.

    Raises:
      ValueError: a bad rank, window, stride or padding, or a window larger than the
        padded input.

    References:
      Course §3.1.  Boureau, Y.-L., Ponce, J. and LeCun, Y., "A theoretical analysis of
      feature pooling in visual recognition", ICML 2010.
    """
    _, window, stride, pads, _ = _pool_setup("max_pool", x, window, stride, padding)
    x = jnp.asarray(x)
    if stride == window:
        if any(sum(pads, ())):
            x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
        return block_max(x, window)
    dims, strides, pad_config = (1, *window, 1), (1, *stride, 1), ((0, 0), *pads, (0, 0))
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, dims, strides, pad_config)


def max_pool_backward(
    params: Params,
    x: Array,
    dy: Array,
    *,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
) -> tuple[Params, Array]:
    r"""VJP of :func:`max_pool`, §3.1: each $\nabla_y$ goes to the arg-max of its window.

    $$\nabla_x[n, t, c] = \sum_{i:\ t = i s + d^*_i - lo} \nabla_y[n, i, c], \qquad
      d^*_i = \operatorname{arg\,max}_d x_{\text{pad}}[n, i s + d, c],$$

    summed where windows overlap ($k > s$).  On ties the first maximum in row-major
    window order takes it all (``jnp.argmax``), as ``jax.grad`` of :func:`max_pool` does
    on CPU (checked by a test); the maximum is not differentiable there.  The windows
    are strided slices of $x_{\text{pad}}$; the routed gradients are put back by the
    transposed slicing (``lax.pad`` with interior padding $s - 1$).

    Args:
      params: ``{}`` (pooling has no parameters).
      x: the forward input.
      dy: $\nabla_y$, the shape of :func:`max_pool`'s output.
      window, stride, padding: as in the forward pass.

    Returns:
      ``({}, dx)``: no parameter gradients, and $\nabla_x$ of the shape of ``x``.

    Raises:
      ValueError: as :func:`max_pool`, non-empty ``params``, or ``dy`` of the wrong shape.

    References:
      Course §3.1.  Boureau, Ponce and LeCun, ICML 2010.
    """
    _, window, stride, pads, out = _pool_setup("max_pool_backward", x, window, stride, padding)
    _check_backward_args("max_pool_backward", params, x, dy, out)
    x_pad = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    patches = jnp.stack(windows(x_pad, window, stride, out), axis=-2)  # (N, *out, K, C)
    winner = jax.nn.one_hot(
        jnp.argmax(patches, axis=-2), patches.shape[-2], axis=-2, dtype=dy.dtype
    )
    routed = winner * dy[..., None, :]
    parts = [routed[..., k, :] for k in range(routed.shape[-2])]
    return {}, unwindow(parts, x_pad.shape, window, stride, pads)


def max_pool_apply_explicit(
    x: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
) -> Array:
    r""":func:`max_pool` whose derivative under ``jax.grad`` is :func:`max_pool_backward`, §3.1.

    ``window``, ``stride`` and ``padding`` are checked and turned into hashable tuples
    (explicit pairs), the static arguments of a ``jax.custom_vjp``; the residual is ``x``.
    """
    _, window, stride, pads, _ = _pool_setup("max_pool_apply_explicit", x, window, stride, padding)
    return _max_pool_vjp(x, window, stride, pads)


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool_vjp(x, window, stride, pads):
    return max_pool(x, window, stride, pads)


def _max_pool_fwd(x, window, stride, pads):
    return max_pool(x, window, stride, pads), x


def _max_pool_bwd(window, stride, pads, x, dy):
    _, dx = max_pool_backward({}, x, dy, window=window, stride=stride, padding=pads)
    return (dx,)


_max_pool_vjp.defvjp(_max_pool_fwd, _max_pool_bwd)


# --- mean pooling -----------------------------------------------------------------------


def _pool_counts(spatial, window, stride, pads, out, count_include_pad: bool) -> np.ndarray:
    """Number of averaged positions per output window, shape ``(1, *out, 1)`` (static)."""
    counts = np.ones((1,) * (len(out) + 2))
    for axis, (n, k, s, (lo, _), o) in enumerate(
        zip(spatial, window, stride, pads, out, strict=True)
    ):
        start = np.arange(o) * s - lo
        real = np.minimum(start + k, n) - np.maximum(start, 0)
        c = np.full(o, k) if count_include_pad else real
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
    TensorFlow's ``"SAME"``).  Non-overlapping windows (stride = window) are summed by a
    reshape (:func:`dlcourse._pool_windows.block_sum`, whose transpose is a broadcast),
    overlapping ones by ``lax.reduce_window``.

    Args:
      x: ``(N, H, W, C)`` (2-D) or ``(N, L, C)`` (1-D).
      window: $k$, an int or one per spatial axis.
      stride: $s$; defaults to the window.
      padding: a :data:`~dlcourse._padding.Padding`, smaller than the window on each side.
      count_include_pad: divide by the full window size.

    Returns:
      ``(N, H_o, W_o, C)`` (``(N, L_o, C)``).

    Raises:
      ValueError: as :func:`max_pool`.

    References:
      Course §3.1.  LeCun et al. 1998 (LeNet-5's subsampling layers average).
    """
    _, window, stride, pads, out = _pool_setup("mean_pool", x, window, stride, padding)
    x = jnp.asarray(x)
    if stride == window:
        sums = block_sum(jnp.pad(x, ((0, 0), *pads, (0, 0))) if any(sum(pads, ())) else x, window)
    else:
        dims, strides, pad_config = (1, *window, 1), (1, *stride, 1), ((0, 0), *pads, (0, 0))
        sums = lax.reduce_window(x, np.array(0, x.dtype), lax.add, dims, strides, pad_config)
    counts = _pool_counts(x.shape[1:-1], window, stride, pads, out, count_include_pad)
    return sums / counts.astype(x.dtype)


def mean_pool_backward(
    params: Params,
    x: Array,
    dy: Array,
    *,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
    count_include_pad: bool = True,
) -> tuple[Params, Array]:
    r"""VJP of :func:`mean_pool`, §3.1: each $\nabla_y / |w_i|$ is spread over its window.

    $$\nabla_x[n, t, c] = \sum_{i:\ 0 \le t + lo - i s < k} \frac{\nabla_y[n, i, c]}{|w_i|},$$

    summed where windows overlap and 0 on the rows the floor dropped; ``x`` only gives
    the shape.  Each window's share is placed back by the transposed strided slicing.

    Args:
      params: ``{}`` (pooling has no parameters).
      x: the forward input (only its shape is read).
      dy: $\nabla_y$, the shape of :func:`mean_pool`'s output.
      window, stride, padding, count_include_pad: as in the forward pass.

    Returns:
      ``({}, dx)``: no parameter gradients, and $\nabla_x$ of the shape of ``x``.

    Raises:
      ValueError: as :func:`mean_pool`, non-empty ``params``, or ``dy`` of the wrong shape.

    References:
      Course §3.1.  LeCun et al. 1998.
    """
    _, window, stride, pads, out = _pool_setup("mean_pool_backward", x, window, stride, padding)
    _check_backward_args("mean_pool_backward", params, x, dy, out)
    counts = _pool_counts(x.shape[1:-1], window, stride, pads, out, count_include_pad)
    share = dy / counts.astype(dy.dtype)
    padded_spatial = (n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads, strict=True))
    padded = (x.shape[0], *padded_spatial, x.shape[-1])
    return {}, unwindow([share] * math.prod(window), padded, window, stride, pads)


def mean_pool_apply_explicit(
    x: Array,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: Padding = 0,
    *,
    count_include_pad: bool = True,
) -> Array:
    r""":func:`mean_pool` whose derivative under ``jax.grad`` is :func:`mean_pool_backward`, §3.1.

    As :func:`max_pool_apply_explicit`: the hyper-parameters are the static arguments
    of a ``jax.custom_vjp`` and ``x`` (for its shape) the residual.
    """
    fn = "mean_pool_apply_explicit"
    _, window, stride, pads, _ = _pool_setup(fn, x, window, stride, padding)
    return _mean_pool_vjp(x, window, stride, pads, bool(count_include_pad))


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _mean_pool_vjp(x, window, stride, pads, count_include_pad):
    return mean_pool(x, window, stride, pads, count_include_pad=count_include_pad)


def _mean_pool_fwd(x, window, stride, pads, count_include_pad):
    y = mean_pool(x, window, stride, pads, count_include_pad=count_include_pad)
    return y, x  # only x's shape is read by the backward pass


def _mean_pool_bwd(window, stride, pads, count_include_pad, x, dy):
    kw = {"window": window, "stride": stride, "padding": pads}
    return (mean_pool_backward({}, x, dy, **kw, count_include_pad=count_include_pad)[1],)


_mean_pool_vjp.defvjp(_mean_pool_fwd, _mean_pool_bwd)


# --- global pooling ---------------------------------------------------------------------


def global_mean_pool(x: Array) -> Array:
    r"""Global average pooling, §3.2: the mean over all positions, ``(N, ..., C) -> (N, C)``.

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
