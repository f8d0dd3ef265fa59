r"""The random transformations of data augmentation, §2.4.6: shifts, crops and flips.

Each function maps a key and a batch to a batch of the same kind, drawing one random
transformation per example (the per-example work under :func:`jax.vmap`, the core of
each function itself a :func:`jax.jit`, shapes and hyper-parameters checked from static
values at trace time):

* :func:`random_shift` (with :func:`shift` and :func:`shift_offsets`, the fixed shift
  and the offsets it draws): translate each example by a random integer offset per
  spatial axis (zero filling, wrapping or edge replication);
* :func:`random_crop`: the CIFAR-style pad-and-crop;
* :func:`random_flip`: mirror each example with probability ``flip_prob``.

Import them from :mod:`dlcourse.augment`, which also chains them into the training
loop's ``augment(key, x_batch)`` (:func:`dlcourse.augment.compose`,
:func:`dlcourse.augment.make_augment`) and describes the conventions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from dlcourse._checks import check_choice, check_int_tuple, is_int
from dlcourse._types import Array, PRNGKey

__all__ = [
    "MODES",
    "check_max_shift",
    "random_crop",
    "random_flip",
    "random_shift",
    "shift",
    "shift_offsets",
]

MODES = ("constant", "wrap", "edge")
"""How the positions a shift or a padding leaves empty are filled."""


# --------------------------------------------------------------------------- checks


def _spatial_axes(fn: str, x: Any) -> int:
    """The number of spatial axes of a batch: 2 for NHWC, 1 for NLC."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) not in (3, 4):
        hint = ""
        if len(shape) == 2:
            hint = (
                " A flat batch (B, D) has no spatial axis: reshape it, e.g. "
                "x.reshape(B, 8, 8, 1) for the 8x8 digits, or pass image_shape= to "
                "make_augment."
            )
        raise ValueError(
            f"{fn}: x must be a batch of images (B, H, W, C) or of 1-D signals (B, L, C), "
            f"got x.shape={shape}.{hint}"
        )
    return len(shape) - 2


def _per_axis(fn: str, name: str, value: Any, n: int) -> tuple[int, ...]:
    """An int or a tuple of ``n`` ints (any sign; the callers bound them)."""
    return check_int_tuple(fn, name, value, n, minimum=None)


def check_max_shift(fn: str, max_shift: Any, sizes: Sequence[int] | None = None) -> None:
    """Every ``max_shift`` >= 0 and, once the spatial sizes are known, below them."""
    if sizes is None:
        n = len(max_shift) if isinstance(max_shift, (tuple, list)) else 1
    else:
        n = len(sizes)
    shifts = _per_axis(fn, "max_shift", max_shift, n)
    if any(s < 0 for s in shifts):
        raise ValueError(
            f"{fn}: max_shift must be >= 0, got max_shift={max_shift!r}; 0 leaves the "
            f"input unchanged."
        )
    if sizes is not None and any(s >= size for s, size in zip(shifts, sizes, strict=True)):
        raise ValueError(
            f"{fn}: max_shift={max_shift!r} must be smaller than the spatial size "
            f"{tuple(sizes)} on every axis (a shift by the whole size leaves nothing of "
            f"the example); use a smaller max_shift."
        )


def _check_key(fn: str, key: Any) -> None:
    if key is None:
        raise ValueError(
            f"{fn}: key is None; pass a jax.random key, e.g. jax.random.PRNGKey(0), "
            f"and split it afresh for every batch."
        )


# --------------------------------------------------------------------------- shift


def shift_offsets(key: PRNGKey, x_shape: Sequence[int], max_shift: int | Sequence[int]) -> Array:
    r"""The offsets :func:`random_shift` draws with ``key``: uniform integers in $[-m, m]$.

    Args:
      key: a :func:`jax.random.PRNGKey`; the same key as given to :func:`random_shift`.
      x_shape: the batch's shape, ``(B, H, W, C)`` or ``(B, L, C)``.
      max_shift: $m$, an int or one per spatial axis.

    Returns:
      ``int32`` offsets of shape ``(B, S)``, ``S`` the number of spatial axes; column
      ``s`` is drawn uniformly in ``[-max_shift[s], max_shift[s]]``.

    Raises:
      ValueError: as :func:`random_shift`.
    """
    n = _spatial_axes("shift_offsets", jax.ShapeDtypeStruct(tuple(x_shape), jnp.float32))
    check_max_shift("shift_offsets", max_shift, tuple(x_shape)[1 : 1 + n])
    m = jnp.asarray(_per_axis("shift_offsets", "max_shift", max_shift, n), jnp.int32)
    return _draw_offsets(key, int(x_shape[0]), m)


@partial(jax.jit, static_argnames=("batch",))
def _draw_offsets(key: PRNGKey, batch: int, max_shift: Array) -> Array:
    # max_shift is an argument, not static: one compilation serves every value.
    return jax.random.randint(
        key, (batch, max_shift.shape[0]), -max_shift, max_shift + 1, dtype=jnp.int32
    )


def _shift_one(example: Array, offset: Array, mode: str) -> Array:
    """Shift one example ``(*spatial, C)`` by ``offset`` (one int per spatial axis).

    A gather per spatial axis, with source indices ``p - d`` wrapped (``"wrap"``) or
    clipped to the border (``"edge"``, and ``"constant"`` before its mask): no padded
    copy, and the offsets may be traced.
    """
    out = example
    keep = jnp.ones(example.shape[:-1], bool)
    for axis in range(example.ndim - 1):
        size = example.shape[axis]
        src = jnp.arange(size) - offset[axis]
        idx = jnp.mod(src, size) if mode == "wrap" else jnp.clip(src, 0, size - 1)
        out = jnp.take(out, idx, axis=axis)
        inside = ((src >= 0) & (src < size)).reshape(
            [size if a == axis else 1 for a in range(example.ndim - 1)]
        )
        keep = keep & inside
    if mode == "constant":
        out = jnp.where(keep[..., None], out, jnp.zeros((), out.dtype))
    return out


def shift(x: Array, offsets: Array, *, mode: str = "constant") -> Array:
    r"""Translate each example by its own integer offset: $y_i[p] = x_i[p - d_i]$.

    A positive offset moves the content towards higher indices (down and to the right
    for an image).  The positions $p - d_i$ outside the example are filled according to
    ``mode``: ``"constant"`` with zeros, ``"wrap"`` periodically
    ($x_i[(p - d_i) \bmod n]$), ``"edge"`` with the nearest border value.

    Args:
      x: ``(B, H, W, C)`` or ``(B, L, C)``.
      offsets: integers of shape ``(B, S)``, ``S`` the number of spatial axes (2 or 1);
        any values, traced or not.
      mode: ``"constant"``, ``"wrap"`` or ``"edge"``.

    Returns:
      An array of the shape and dtype of ``x``.

    Raises:
      ValueError: for a wrong rank of ``x``, a wrong shape of ``offsets`` or a bad
        ``mode``.

    References:
      Course §2.4.6 (data augmentation).
    """
    n = _spatial_axes("shift", x)
    check_choice("shift", "mode", mode, MODES)
    offsets = jnp.asarray(offsets)
    if offsets.shape != (x.shape[0], n) or not jnp.issubdtype(offsets.dtype, jnp.integer):
        raise ValueError(
            f"shift: offsets must be integers of shape (B, {n}) = {(x.shape[0], n)} (one "
            f"per example and spatial axis), got offsets.shape={offsets.shape}, "
            f"dtype={offsets.dtype}."
        )
    return _shift_batch(jnp.asarray(x), offsets, mode)


@partial(jax.jit, static_argnames=("mode",))
def _shift_batch(x: Array, offsets: Array, mode: str) -> Array:
    # Compiled once per shape and mode: eager callers pay one compilation, not one per op.
    return jax.vmap(partial(_shift_one, mode=mode))(x, offsets)


def random_shift(
    key: PRNGKey,
    x: Array,
    max_shift: int | tuple[int, ...],
    *,
    mode: str = "constant",
) -> Array:
    r"""Translate each example by a random integer offset, drawn independently per example.

    $$y_i[p] = x_i[p - d_i], \qquad d_{i,s} \sim \mathcal U\{-m_s, \dots, m_s\},$$

    for every spatial axis $s$ (two for NHWC images, one for NLC signals), the empty
    positions filled by ``mode`` (see :func:`shift`).  The offsets are
    ``shift_offsets(key, x.shape, max_shift)``: the same key gives the same batch.

    Args:
      key: a :func:`jax.random.PRNGKey`, split afresh for every batch.
      x: ``(B, H, W, C)`` or ``(B, L, C)``.
      max_shift: $m$, an int or a tuple of one int per spatial axis, ``0 <= m < size``.
        ``0`` gives back ``x``.
      mode: ``"constant"`` (zeros), ``"wrap"`` or ``"edge"``.

    Returns:
      An array of the shape and dtype of ``x``.

    Raises:
      ValueError: if ``x`` is not 3-D or 4-D, ``max_shift`` is negative, not smaller
        than the spatial size, or has the wrong length, or ``mode`` is unknown.

    References:
      Course §2.4.6 (data augmentation).  Simard, Steinkraus & Platt, "Best Practices
      for Convolutional Neural Networks Applied to Visual Document Analysis", ICDAR 2003.
    """
    _check_key("random_shift", key)
    n = _spatial_axes("random_shift", x)
    check_max_shift("random_shift", max_shift, x.shape[1 : 1 + n])
    check_choice("random_shift", "mode", mode, MODES)
    return shift(x, shift_offsets(key, x.shape, max_shift), mode=mode)


# --------------------------------------------------------------------------- crop


def random_crop(
    key: PRNGKey,
    x: Array,
    size: int | tuple[int, ...],
    *,
    padding: int = 0,
    mode: str = "constant",
) -> Array:
    r"""Pad each example by ``padding`` and cut a random window of ``size`` out of it.

    With $n$ the spatial size, $p$ the padding and $s$ the crop size, the window's
    corner is drawn uniformly in $\{0, \dots, n + 2p - s\}$ per spatial axis and per
    example.  ``padding=4, size=n`` is the CIFAR recipe of He et al. (a random shift by
    at most 4 pixels, zero-filled); ``padding=0, size < n`` is a true crop.

    Args:
      key: a :func:`jax.random.PRNGKey`.
      x: ``(B, H, W, C)`` or ``(B, L, C)``.
      size: the crop's spatial size, an int or one per spatial axis.
      padding: pixels added on both sides of each spatial axis, ``>= 0``.
      mode: how the padding is filled, ``"constant"`` (zeros), ``"wrap"`` or ``"edge"``.

    Returns:
      ``(B, *size, C)``, the dtype of ``x``.

    Raises:
      ValueError: for a wrong rank, a negative ``padding``, a ``size`` below 1 or larger
        than the padded input, or an unknown ``mode``.

    References:
      Course §2.4.6 (data augmentation).  Krizhevsky, Sutskever & Hinton, "ImageNet
      Classification with Deep Convolutional Neural Networks", NeurIPS 2012.  He, Zhang,
      Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, §4.2,
      https://arxiv.org/abs/1512.03385.
    """
    fn = "random_crop"
    _check_key(fn, key)
    n = _spatial_axes(fn, x)
    check_choice(fn, "mode", mode, MODES)
    sizes = _per_axis(fn, "size", size, n)
    if not is_int(padding) or padding < 0:
        raise ValueError(f"{fn}: padding must be an int >= 0, got padding={padding!r}.")
    padded = tuple(d + 2 * padding for d in x.shape[1 : 1 + n])
    if any(s < 1 or s > d for s, d in zip(sizes, padded, strict=True)):
        raise ValueError(
            f"{fn}: size={size!r} must be >= 1 and at most the padded input's spatial size "
            f"{padded} (x.shape={tuple(x.shape)}, padding={padding}); use a smaller size "
            f"or a larger padding."
        )
    return _crop_batch(key, jnp.asarray(x), sizes, int(padding), mode)


@partial(jax.jit, static_argnames=("sizes", "padding", "mode"))
def _crop_batch(key: PRNGKey, x: Array, sizes: tuple[int, ...], padding: int, mode: str) -> Array:
    n = len(sizes)
    xp = jnp.pad(x, [(0, 0)] + [(padding, padding)] * n + [(0, 0)], mode=mode)
    high = jnp.asarray([d - s + 1 for s, d in zip(sizes, xp.shape[1:-1], strict=True)])
    corners = jax.random.randint(key, (x.shape[0], n), 0, high, dtype=jnp.int32)

    def crop_one(example: Array, corner: Array) -> Array:
        start = (*corner, jnp.zeros((), jnp.int32))
        return jax.lax.dynamic_slice(example, start, (*sizes, example.shape[-1]))

    return jax.vmap(crop_one)(xp, corners)


# --------------------------------------------------------------------------- flip


def random_flip(key: PRNGKey, x: Array, *, axis: int = -2, flip_prob: float = 0.5) -> Array:
    r"""Mirror each example along one spatial axis with probability ``flip_prob``.

    The default ``axis=-2`` is the width of an NHWC image (a horizontal flip) and the
    length of an NLC signal.  Mirror symmetry is a property of the data, not a given:
    it suits natural images, not digits (a flipped 2 is no digit).

    Args:
      key: a :func:`jax.random.PRNGKey`.
      x: ``(B, H, W, C)`` or ``(B, L, C)``.
      axis: the spatial axis to flip, as an axis of ``x`` (``1`` or ``2`` for NHWC,
        ``1`` for NLC; negative values count from the end).
      flip_prob: the probability to flip each example, in ``[0, 1]``.

    Returns:
      An array of the shape and dtype of ``x``.

    Raises:
      ValueError: for a wrong rank, an axis that is not spatial, or ``flip_prob``
        outside ``[0, 1]``.

    References:
      Course §2.4.6 (data augmentation).  Krizhevsky, Sutskever & Hinton (2012).
    """
    fn = "random_flip"
    _check_key(fn, key)
    n = _spatial_axes(fn, x)
    ndim = n + 2
    ax = int(axis) + ndim if is_int(axis) and axis < 0 else axis
    if not is_int(axis) or not 1 <= ax <= n:
        raise ValueError(
            f"{fn}: axis must be a spatial axis of x.shape={tuple(x.shape)}, i.e. one of "
            f"{list(range(1, n + 1))} (or {list(range(-ndim + 1, -1))}), got axis={axis!r}."
        )
    if not isinstance(flip_prob, jax.core.Tracer) and not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"{fn}: flip_prob must be in [0, 1], got flip_prob={flip_prob!r}.")
    return _flip_batch(key, jnp.asarray(x), int(ax), flip_prob)


@partial(jax.jit, static_argnames=("axis",))
def _flip_batch(key: PRNGKey, x: Array, axis: int, flip_prob: float) -> Array:
    flip = jax.random.bernoulli(key, flip_prob, (x.shape[0],))
    return jnp.where(flip.reshape((-1,) + (1,) * (x.ndim - 1)), jnp.flip(x, axis=axis), x)
