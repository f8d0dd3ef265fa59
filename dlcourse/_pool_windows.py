r"""Pooling windows as strided slices, and the fast path of non-overlapping pooling, §3.1.

:func:`windows` and its transpose :func:`unwindow` are im2col without the copy into a
matrix: the explicit backward passes of :mod:`dlcourse.pool` are written with them.

Non-overlapping windows (stride = window, the course's default and LeNet-5's
$2 \times 2$) need no ``lax.reduce_window``: :func:`block_max` is the elementwise maximum
of the $k_h k_w$ strided slices, and its derivative (``jax.custom_jvp``) sends each
tangent of the output to the first maximum of its window in row-major order, the rule
of ``jax.grad`` through ``reduce_window`` on CPU and of PyTorch; its transpose (the
backward pass) is a broadcast and a select, where XLA's CPU ``reduce_window`` gradient
is an index reduction and a scatter (5–8× slower on LeNet-5's first pooling).
:func:`block_sum` adds the strided slices, and its derivative sums a reshape, whose
transpose is a broadcast.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlcourse._types import Array

__all__ = ["block_max", "block_sum", "unwindow", "windows"]


def windows(x_pad: Array, window, stride, out) -> list[Array]:
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


def unwindow(parts: list[Array], padded_shape, window, stride, pads) -> Array:
    """Transpose of :func:`windows`: place each part back at its offset, dilated by the
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


# --- non-overlapping windows ------------------------------------------------------------


def _out(x: Array, window) -> tuple[int, ...]:
    return tuple(n // k for n, k in zip(x.shape[1:-1], window, strict=True))


def _blocks(x: Array, window) -> tuple[Array, tuple[int, ...]]:
    """``x`` cut to whole windows (the floor) and reshaped to ``(N, o_1, k_1, ..., C)``;
    returns it and the window axes."""
    out = _out(x, window)
    if any(o * k != n for o, k, n in zip(out, window, x.shape[1:-1], strict=True)):
        x = x[(slice(None), *(slice(0, o * k) for o, k in zip(out, window, strict=True)),
              slice(None))]
    shape = [x.shape[0]]
    for o, k in zip(out, window, strict=True):
        shape += [o, k]
    axes = tuple(2 + 2 * a for a in range(len(window)))
    return x.reshape(*shape, x.shape[-1]), axes


def _reshape_sum(x: Array, window) -> Array:
    blocks, axes = _blocks(x, window)
    return blocks.sum(axis=axes)


def _slices_sum(x: Array, window) -> Array:
    parts = windows(x, window, window, _out(x, window))
    y = parts[0]
    for part in parts[1:]:
        y = y + part
    return y


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def block_sum(x: Array, window: tuple[int, ...]) -> Array:
    """The sum over each non-overlapping window (stride = window, no padding; the rows
    and columns left over by the floor are dropped).

    The value adds the strided slices (fast on CPU); the tangent sums a reshape, whose
    transpose, the backward pass, is a broadcast (a strided slice's is a dilating pad).
    """
    return _slices_sum(x, window)


@block_sum.defjvp
def _block_sum_jvp(window, primals, tangents):
    return _slices_sum(primals[0], window), _reshape_sum(tangents[0], window)


def _upsample(a: Array, window, spatial) -> Array:
    """Each entry of ``a (N, *out, C)`` repeated over its window, zero-padded to ``spatial``."""
    n, *out, c = a.shape
    split, tiled = [n], [n]
    for o, k in zip(out, window, strict=True):
        split += [o, 1]
        tiled += [o, k]
    a = jnp.broadcast_to(a.reshape(*split, c), (*tiled, c))
    a = a.reshape(n, *(o * k for o, k in zip(out, window, strict=True)), c)
    extra = [n_ - o * k for n_, o, k in zip(spatial, out, window, strict=True)]
    if any(extra):
        a = jnp.pad(a, ((0, 0), *((0, e) for e in extra), (0, 0)))
    return a


def _first_winner(x: Array, window) -> Array:
    """Boolean mask of ``x``'s shape: True at the first maximum of each window
    (row-major order; a NaN counts as the maximum: the first NaN, where PyTorch picks the
    last), False elsewhere in the windows (the rows the floor dropped are the caller's
    to crop).

    The window's offset of its winner is an ``argmax`` over the window, a reduction,
    which XLA computes once and stores; written as comparisons of the strided slices
    with the maximum, XLA fused it into the gradient's spreading and computed it again at
    each of the window's positions (LeNet-5's step: 5.2 against 4.7 ms)."""
    blocks, axes = _blocks(x, window)  # (N, o_1, k_1, ..., C)
    rest = [a for a in range(blocks.ndim) if a not in axes]
    blocks = jnp.transpose(blocks, (*rest, *axes))
    first = jnp.argmax(blocks.reshape(*blocks.shape[:len(rest)], -1), axis=-1)
    first = first.astype(np.int32)  # (N, o_1, ..., C): the row-major offset of the winner
    spatial = x.shape[1:-1]
    rank = np.zeros(spatial, np.int32)  # row-major rank of each position in its window
    for grid, k in zip(np.meshgrid(*map(np.arange, spatial), indexing="ij"), window,
                       strict=True):
        rank = rank * k + grid % k
    return rank[None, ..., None] == _upsample(first, window, spatial)


def _slices_max(x: Array, window) -> Array:
    parts = windows(x, window, window, _out(x, window))
    y = parts[0]
    for part in parts[1:]:
        y = jnp.maximum(y, part)
    return y


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def block_max(x: Array, window: tuple[int, ...]) -> Array:
    """The maximum over each non-overlapping window (stride = window, no padding);
    its derivative goes to the first maximum of each window (module docstring)."""
    return _slices_max(x, window)


@block_max.defjvp
def _block_max_jvp(window, primals, tangents):
    (x,), (dx,) = primals, tangents
    y = _slices_max(x, window)
    winner = _first_winner(x, window)
    return y, _reshape_sum(jnp.where(winner, dx, jnp.zeros((), dx.dtype)), window)
