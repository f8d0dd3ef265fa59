"""Tests of dlcourse._augment_transforms (public as dlcourse.augment): random shifts,
crops and flips, §2.4.6."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _augment_helpers import IMAGES, normal

from dlcourse.augment import random_crop, random_flip, random_shift, shift, shift_offsets


def pixel_images(batch: int, size: int = 9, channels: int = 2) -> jax.Array:
    """One bright pixel in the middle of every image (both channels)."""
    c = size // 2
    x = np.zeros((batch, size, size, channels), np.float32)
    x[:, c, c, :] = 1.0
    return x


@pytest.mark.parametrize(
    "shape, dtype, mode",
    [
        ((4, 7, 6, 3), jnp.float32, "constant"),
        ((4, 7, 6, 3), jnp.uint8, "wrap"),
        ((5, 11, 2), jnp.bfloat16, "edge"),
        ((5, 11, 2), jnp.int32, "constant"),
    ],
)
def test_random_shift_keeps_shape_and_dtype(key, shape, dtype, mode):
    x = jnp.asarray(np.random.default_rng(0).integers(0, 9, shape), dtype)
    y = random_shift(jax.random.PRNGKey(1), x, 2, mode=mode)
    assert y.shape == x.shape
    assert y.dtype == x.dtype


@pytest.mark.parametrize("mode", ["constant", "wrap", "edge"])
def test_random_shift_zero_is_identity(key, mode):
    x = normal(IMAGES)
    np.testing.assert_array_equal(random_shift(jax.random.PRNGKey(3), x, 0, mode=mode), x)


def test_random_shift_moves_pixel_by_drawn_offset(key):
    x = pixel_images(32)
    y = np.asarray(random_shift(key, x, 3))
    offsets = np.asarray(shift_offsets(key, x.shape, 3))
    assert offsets.shape == (32, 2)
    assert offsets.min() >= -3 and offsets.max() <= 3
    for i in range(32):
        (where,) = [tuple(p) for p in np.argwhere(np.asarray(y[i, :, :, 0]))]
        assert where == (4 + offsets[i, 0], 4 + offsets[i, 1])
        np.testing.assert_array_equal(y[i, :, :, 0], y[i, :, :, 1])
    assert float(y.sum()) == 2 * 32  # nothing lost: |offset| <= 3 keeps the pixel inside


def test_random_shift_1d_matches_offsets(key):
    x = jnp.arange(3 * 10 * 1, dtype=jnp.float32).reshape(3, 10, 1) + 1.0
    y = np.asarray(random_shift(key, x, 4))
    x = np.asarray(x)
    d = np.asarray(shift_offsets(key, x.shape, 4))[:, 0]
    for i in range(3):
        expected = np.zeros(10)
        for p in range(10):
            if 0 <= p - d[i] < 10:
                expected[p] = x[i, p - d[i], 0]
        np.testing.assert_array_equal(y[i, :, 0], expected)


def test_shift_modes_hand_computed():
    x = jnp.arange(1.0, 6.0).reshape(1, 5, 1)
    offsets = jnp.array([[2]])
    row = lambda mode: np.asarray(shift(x, offsets, mode=mode))[0, :, 0]  # noqa: E731
    np.testing.assert_array_equal(row("constant"), [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(row("wrap"), [4, 5, 1, 2, 3])
    np.testing.assert_array_equal(row("edge"), [1, 1, 1, 2, 3])
    np.testing.assert_array_equal(
        np.asarray(shift(x, -offsets, mode="constant"))[0, :, 0], [3, 4, 5, 0, 0]
    )


def test_shift_per_axis_max_shift(key):
    x = pixel_images(64)
    offsets = np.asarray(shift_offsets(key, x.shape, (0, 2)))
    assert np.all(offsets[:, 0] == 0)
    assert set(offsets[:, 1]) == {-2, -1, 0, 1, 2}


def test_random_shift_differs_across_examples_and_keys(key):
    x = pixel_images(16)
    y1 = np.asarray(random_shift(key, x, 2))
    y2 = np.asarray(random_shift(jax.random.PRNGKey(1), x, 2))
    assert len({tuple(np.argwhere(im[..., 0])[0]) for im in y1}) > 3
    assert not np.array_equal(y1, y2)
    np.testing.assert_array_equal(y1, random_shift(key, x, 2))  # same key, same batch


@pytest.mark.parametrize("mode", ["constant", "wrap", "edge"])
def test_random_shift_jit_matches_eager(key, mode):
    x = normal(IMAGES)
    k = jax.random.PRNGKey(7)
    jitted = jax.jit(random_shift, static_argnames=("max_shift", "mode"))
    np.testing.assert_array_equal(
        jitted(k, x, max_shift=3, mode=mode), random_shift(k, x, 3, mode=mode)
    )


def test_random_shift_wrap_is_a_permutation(key):
    x = normal(IMAGES)
    y = np.asarray(random_shift(jax.random.PRNGKey(2), x, 5, mode="wrap"))
    x = np.asarray(x)
    for i in range(4):
        np.testing.assert_array_equal(np.sort(y[i], axis=None), np.sort(x[i], axis=None))


def test_random_crop_true_crop_is_a_window(key):
    x = normal(IMAGES)
    y = np.asarray(random_crop(jax.random.PRNGKey(4), x, (5, 3)))
    x = np.asarray(x)
    assert y.shape == (6, 5, 3, 2)
    corners = []
    for i in range(6):
        found = [
            (a, b)
            for a, b in itertools.product(range(4), range(6))
            if np.array_equal(y[i], x[i, a : a + 5, b : b + 3])
        ]
        assert len(found) == 1
        corners.append(found[0])
    assert len(set(corners)) > 1


def test_random_crop_pad_and_crop_is_a_bounded_shift(key):
    x = pixel_images(32, size=8, channels=1)  # pixel at (4, 4)
    y = np.asarray(random_crop(key, x, 8, padding=2))
    assert y.shape == x.shape and y.dtype == x.dtype
    moves = set()
    for i in range(32):
        ((r, c),) = np.argwhere(y[i, :, :, 0])
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2
        moves.add((r - 4, c - 4))
    assert len(moves) > 3


def test_random_crop_1d_jit_and_full_size_identity(key):
    x = normal((3, 12, 4))
    np.testing.assert_array_equal(random_crop(key, x, 12), x)
    jitted = jax.jit(random_crop, static_argnames=("size", "padding"))
    np.testing.assert_array_equal(
        jitted(key, x, size=9, padding=1), random_crop(key, x, 9, padding=1)
    )


def test_random_flip(key):
    x = normal((64, 4, 5, 1))
    y = np.asarray(random_flip(jax.random.PRNGKey(5), x))
    xn = np.asarray(x)
    flipped = [np.array_equal(y[i], xn[i, :, ::-1]) for i in range(64)]
    kept = [np.array_equal(y[i], xn[i]) for i in range(64)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54
    np.testing.assert_array_equal(random_flip(key, x, flip_prob=0.0), x)
    np.testing.assert_array_equal(random_flip(key, x, axis=1, flip_prob=1.0), x[:, ::-1])


def test_errors(key):
    x = jnp.zeros((2, 5, 5, 1))
    with pytest.raises(ValueError, match=r"random_shift: max_shift must be >= 0.*-1"):
        random_shift(key, x, -1)
    with pytest.raises(ValueError, match=r"random_shift: max_shift=5 must be smaller"):
        random_shift(key, x, 5)
    with pytest.raises(ValueError, match=r"tuple of 2 ints"):
        random_shift(key, x, (1, 1, 1))
    with pytest.raises(ValueError, match=r"flat batch \(B, D\)"):
        random_shift(key, jnp.zeros((2, 25)), 1)
    with pytest.raises(ValueError, match=r"x.shape=\(2, 5, 5, 1, 1\)"):
        random_shift(key, jnp.zeros((2, 5, 5, 1, 1)), 1)
    with pytest.raises(ValueError, match="unknown mode=.*expected one of"):
        random_shift(key, x, 1, mode="reflect-ish")
    with pytest.raises(ValueError, match="key is None"):
        random_shift(None, x, 1)
    with pytest.raises(
        ValueError, match=r"random_crop: size=6 .*padded input's spatial size \(5, 5\)"
    ):
        random_crop(key, x, 6)
    random_crop(key, x, 6, padding=1)  # fits once padded
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        random_crop(key, x, 3, padding=-1)
    with pytest.raises(ValueError, match="axis must be a spatial axis"):
        random_flip(key, x, axis=3)
    with pytest.raises(ValueError, match="flip_prob"):
        random_flip(key, x, flip_prob=1.5)
    with pytest.raises(ValueError, match=r"offsets must be integers of shape \(B, 2\)"):
        shift(x, jnp.zeros((2, 1), jnp.int32))
