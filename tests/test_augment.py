"""Tests of dlcourse.augment: chaining the transformations, make_augment, §2.4.6 (the
transformations themselves: tests/test_augment_transforms.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _augment_helpers import IMAGES, normal

from dlcourse.augment import compose, make_augment, random_crop, random_flip, random_shift


def test_compose_and_make_augment(key):
    x = normal(IMAGES)
    k = jax.random.PRNGKey(9)
    np.testing.assert_array_equal(make_augment("none")(k, x), x)
    np.testing.assert_array_equal(compose()(k, x), x)
    # One function: the same as calling random_shift with the key itself.
    np.testing.assert_array_equal(
        make_augment("shift", max_shift=2)(k, x),
        compose(lambda kk, xx: random_shift(kk, xx, 2))(k, x),
    )
    aug = jax.jit(make_augment(["crop", "flip"], padding=1))
    k1, k2 = jax.random.split(k)
    expected = random_flip(k2, random_crop(k1, x, (8, 8), padding=1))
    np.testing.assert_array_equal(aug(k, x), expected)


def test_make_augment_flat_batches(key):
    x = normal((5, 64))
    aug = make_augment("shift", max_shift=1, image_shape=(8, 8, 1))
    y = jax.jit(aug)(key, x)
    assert y.shape == (5, 64)
    k1 = jax.random.split(key, 1)[0]
    np.testing.assert_array_equal(y, random_shift(k1, x.reshape(5, 8, 8, 1), 1).reshape(5, 64))
    signal = make_augment("shift", max_shift=3, mode="wrap", image_shape=(40, 1))
    assert signal(key, jnp.ones((2, 40))).shape == (2, 40)
    with pytest.raises(ValueError, match="image_shape"):
        aug(key, jnp.ones((5, 63)))


def test_augment_inside_scan(key):
    # The training loop calls the augmentation inside a compiled lax.scan step.
    aug = make_augment("shift", max_shift=2)
    x = normal(IMAGES)

    @jax.jit
    def run(k):
        def step(carry, kk):
            return carry + aug(kk, x).sum(), None

        return jax.lax.scan(step, 0.0, jax.random.split(k, 4))[0]

    assert np.isfinite(float(run(key)))


def test_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_augment("rotate")
    with pytest.raises(ValueError, match=r"keyword\(s\) \['padding'\]"):
        make_augment("shift", padding=2)
    with pytest.raises(ValueError, match="make_augment: max_shift must be >= 0"):
        make_augment("shift", max_shift=-2)
    with pytest.raises(TypeError, match="compose: argument 0"):
        compose(3)
