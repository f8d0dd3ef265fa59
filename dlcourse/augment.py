r"""Data augmentation, §2.4.6: "It is also classical to use data augmentation".

Each function maps a key and a batch to a batch of the same kind, drawing one random
transformation per example, so that every epoch sees new versions of the training set:
the training loop calls ``augment(key, x_batch)`` inside its compiled step.

* :func:`random_shift`: translate each example by a random integer offset per spatial
  axis (zero filling, wrapping or edge replication);
* :func:`random_crop`: the CIFAR-style pad-and-crop (Krizhevsky et al. 2012 cropped
  224-pixel patches out of 256-pixel images; He et al. 2016 padded 32-pixel images by 4
  and cropped 32 again);
* :func:`random_flip`: mirror each example with probability ``flip_prob``;
* :func:`compose` chains them, :func:`make_augment` builds one from a name.

Inputs are batch-first: images NHWC ``(B, H, W, C)`` (two spatial axes) or 1-D signals
NLC ``(B, L, C)`` (one).  A flat batch ``(B, D)`` has no spatial axis to shift:
:func:`make_augment` takes ``image_shape=`` to reshape it on the way in and out.

Everything is pure, shape-static and jittable: offsets are drawn with
:func:`jax.random.randint`, the per-example work (a gather, a dynamic slice) runs under
:func:`jax.vmap`, and hyper-parameters and shapes are checked from static values at
trace time.  The core of each function is itself a :func:`jax.jit`, so an eager call
compiles once per shape rather than once per operation.  The same key gives the same
batch.

Zero filling (``mode="constant"``) fills with the value 0: for standardized inputs
(``dlcourse.datasets``) that is the training mean, the neutral value.

The transformations are written in :mod:`dlcourse._augment_transforms`; this module
builds the training loop's function from them and is the one to import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from dlcourse._augment_transforms import (
    MODES,
    check_max_shift,
    random_crop,
    random_flip,
    random_shift,
    shift,
    shift_offsets,
)
from dlcourse._checks import check_choice, check_int_tuple, check_range
from dlcourse._types import Array, PRNGKey

__all__ = [
    "AugmentFn",
    "compose",
    "make_augment",
    "random_crop",
    "random_flip",
    "random_shift",
    "shift",
    "shift_offsets",
]

AugmentFn = Callable[[PRNGKey, Array], Array]
"""``augment(key, x_batch) -> x_batch``: what the training loop calls once per step."""


# --------------------------------------------------------------------------- building


def compose(*fns: AugmentFn) -> AugmentFn:
    r"""Chain augmentations: ``compose(f, g)(key, x) = g(k_2, f(k_1, x))``.

    The key is split into one independent subkey per function.  ``compose()`` is the
    identity.

    Raises:
      TypeError: if an argument is not callable.
    """
    for i, f in enumerate(fns):
        if not callable(f):
            raise TypeError(
                f"compose: argument {i} must be a function augment(key, x) -> x, got {f!r}."
            )

    def augment(key: PRNGKey, x: Array) -> Array:
        if not fns:
            return x
        for f, k in zip(fns, jax.random.split(key, len(fns)), strict=True):
            x = f(k, x)
        return x

    return augment


def make_augment(
    kind: str | Sequence[str] = "shift",
    *,
    image_shape: Sequence[int] | None = None,
    **kw: Any,
) -> AugmentFn:
    r"""One function ``augment(key, x_batch) -> x_batch`` for the training loop.

    ``kind`` names the transformation: ``"none"``, ``"shift"`` (:func:`random_shift`,
    keywords ``max_shift`` (default 1), ``mode``), ``"crop"`` (:func:`random_crop`,
    keywords ``size``, ``padding``, ``mode``; ``size`` defaults to the input's spatial
    size, so that ``make_augment("crop", padding=4)`` is the CIFAR pad-and-crop), or
    ``"flip"`` (:func:`random_flip`, keywords ``axis``, ``flip_prob``).  A sequence of
    names chains them (:func:`compose`); the keywords go to every function that takes
    them.

    Args:
      kind: a name or a sequence of names, as above.
      image_shape: for flat batches ``(B, D)`` (the digits, MNIST-1D): the per-example
        shape to augment in, e.g. ``(8, 8, 1)`` or ``(40, 1)``; the result is flattened
        back to ``(B, D)``.
      **kw: the keywords of the functions named.

    Returns:
      ``augment(key, x) -> x``, pure and jittable.

    Raises:
      ValueError: for an unknown ``kind``, a keyword no named function takes, or a bad
        hyper-parameter (a negative ``max_shift``, a bad ``mode`` ...), checked here
        where possible, the rest when the input's shape is known.

    References:
      Course §2.4.6 (data augmentation).
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    takes = {
        "none": (),
        "shift": ("max_shift", "mode"),
        "crop": ("size", "padding", "mode"),
        "flip": ("axis", "flip_prob"),
    }
    for k in kinds:
        if k not in takes:
            raise ValueError(
                f"make_augment: kind must be one of {tuple(takes)} or a sequence of them, "
                f"got kind={kind!r}."
            )
    unused = set(kw) - {name for k in kinds for name in takes[k]}
    if unused:
        raise ValueError(
            f"make_augment: keyword(s) {sorted(unused)} not taken by kind={kind!r}; "
            f"shift takes {takes['shift']}, crop {takes['crop']}, flip {takes['flip']}."
        )
    if "mode" in kw:
        check_choice("make_augment", "mode", kw["mode"], MODES)
    if "max_shift" in kw:
        check_max_shift("make_augment", kw["max_shift"])
    if "flip_prob" in kw:
        check_range("make_augment", "flip_prob", kw["flip_prob"], 0.0, 1.0, high_open=False)
    if image_shape is not None:
        image_shape = check_int_tuple("make_augment", "image_shape", image_shape)
        if len(image_shape) not in (2, 3):
            raise ValueError(
                f"make_augment: image_shape must be (H, W, C) or (L, C) with positive "
                f"ints, got image_shape={image_shape!r}."
            )

    def pick(names: tuple[str, ...]) -> dict[str, Any]:
        return {name: kw[name] for name in names if name in kw}

    def crop(key: PRNGKey, x: Array) -> Array:
        args = pick(takes["crop"])
        args.setdefault("size", tuple(x.shape[1:-1]))
        return random_crop(key, x, **args)

    def shifted(key: PRNGKey, x: Array) -> Array:
        args = pick(takes["shift"])
        return random_shift(key, x, args.pop("max_shift", 1), **args)

    fns = {
        "shift": shifted,
        "crop": crop,
        "flip": lambda key, x: random_flip(key, x, **pick(takes["flip"])),
    }
    inner = compose(*(fns[k] for k in kinds if k != "none"))
    if image_shape is None:
        return inner

    def augment(key: PRNGKey, x: Array) -> Array:
        size = 1
        for d in image_shape:
            size *= d
        if x.ndim != 2 or x.shape[1] != size:
            raise ValueError(
                f"make_augment: with image_shape={image_shape} the batch must be flat "
                f"(B, {size}), got x.shape={tuple(x.shape)}."
            )
        y = inner(key, x.reshape((x.shape[0], *image_shape)))
        return y.reshape(y.shape[0], -1)

    return augment
