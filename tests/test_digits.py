"""Tests of dlcourse.datasets.digits: scikit-learn's 8x8 digits, split and standardized."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _dataset_helpers import affine_inverse, assert_stratified, rows, sorted_rows

from dlcourse.datasets import digits


def test_digits_split_sizes():
    # Both fractions are of all 1,797 images, rounded half up:
    # 0.2 * 1797 = 359.4 -> 359 test, 0.1 * 1797 = 179.7 -> 180 validation.
    ds = digits()
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1258, 180, 359)
    ds = digits(val_fraction=0.25, test_fraction=0.5)  # 449.25 -> 449, 898.5 -> 899
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (449, 449, 899)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797


def test_digits_numbers_are_unchanged():
    """A few values of the default split, recorded before the datasets package existed."""
    ds = digits()
    np.testing.assert_allclose(
        ds.x_train[0, :6],
        [-0.811835527420044, -0.811835527420044, 0.6840792298316956, 1.1827175617218018,
         1.3489302396774292, 0.18544098734855652],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(ds.y_train[:10], [9, 1, 7, 5, 5, 2, 9, 4, 2, 8])
    np.testing.assert_array_equal(ds.y_val[:5], [7, 4, 7, 6, 0])
    np.testing.assert_allclose(ds.x_val.mean(dtype=np.float64), 0.0020586898424274597, rtol=1e-5)
    np.testing.assert_allclose(ds.x_test.mean(dtype=np.float64), -0.001157710850864654, rtol=1e-5)
    big = digits(image=True, size=32)
    np.testing.assert_allclose(big.x_train[0, 0, 0, 0], -0.9434669017791748, rtol=1e-6)
    np.testing.assert_allclose(big.x_val.mean(dtype=np.float64), 0.002392485732036044, rtol=1e-4)


@pytest.mark.parametrize("image", [False, True])
def test_digits_shapes_dtypes_and_standardization(image):
    ds = digits(image=image)
    shape = (8, 8, 1) if image else (64,)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.shape == (len(y), *shape)
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert y.min() >= 0 and y.max() < 10
        assert set(np.unique(y)) == set(range(10))
    assert ds.num_classes == 10 and ds.name == "digits"
    np.testing.assert_allclose(ds.x_train.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(), 1.0, atol=1e-5)
    # The validation and test splits use the training statistics, not their own.
    assert abs(float(ds.x_test.mean())) > 1e-4


def test_digits_image_is_the_flat_data_reshaped():
    flat, image = digits(seed=3), digits(seed=3, image=True)
    np.testing.assert_array_equal(image.x_train.reshape(-1, 64), flat.x_train)
    np.testing.assert_array_equal(image.y_test, flat.y_test)


def test_digits_seed_reproducible_and_changes_split():
    a, b, c = digits(seed=0), digits(seed=0), digits(seed=1)
    for u, v in zip(a[:6], b[:6], strict=True):
        np.testing.assert_array_equal(u, v)
    assert set(rows(a.x_test)) != set(rows(c.x_test))


def test_digits_splits_are_disjoint_complete_and_stratified():
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = digits()
    train, val, test = (set(rows(x)) for x in (ds.x_train, ds.x_val, ds.x_test))
    assert not train & val and not train & test and not val & test
    # Undo the standardization: the three splits together are exactly the 1,797 images.
    x_all = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    y_all = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    restored = np.rint(affine_inverse(x_all, raw.data))
    np.testing.assert_allclose(affine_inverse(x_all, raw.data), restored, atol=1e-4)
    got_x, got_y = sorted_rows(restored, y_all)
    want_x, want_y = sorted_rows(raw.data, raw.target)
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_y, want_y)
    assert_stratified(ds.y_test, raw.target, 359 / 1797)
    assert_stratified(ds.y_val, raw.target, 180 / 1797)


def test_digits_resized_for_lenet():
    small = digits(image=True)
    big = digits(image=True, size=32)
    assert big.x_train.shape == (len(small.x_train), 32, 32, 1)
    np.testing.assert_array_equal(big.y_train, small.y_train)  # same split, same order
    assert abs(float(big.x_train.mean())) < 1e-5 and abs(float(big.x_train.std()) - 1) < 1e-4
    # Upsampling keeps the picture: the 8x8 block means of the 32x32 image track the
    # original pixels closely (correlation, scale-free).
    blocks = big.x_train[:50, :, :, 0].reshape(50, 8, 4, 8, 4).mean(axis=(2, 4))
    r = np.corrcoef(blocks.ravel(), small.x_train[:50, :, :, 0].ravel())[0, 1]
    assert r > 0.95


BAD_FRACTIONS = [0, 0.0, 1, 1.0, -0.1, 1.5, math.nan, True, "0.1", None]


@pytest.mark.parametrize("value", BAD_FRACTIONS)
@pytest.mark.parametrize("argument", ["val_fraction", "test_fraction"])
def test_digits_rejects_bad_fractions(argument, value):
    with pytest.raises(ValueError, match=rf"digits: {argument}.*{argument}="):
        digits(**{argument: value})


def test_digits_rejects_bad_combinations_seeds_and_sizes():
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction must be below 1"):
        digits(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"val_fraction=0.0001 of 1797 examples rounds to 0"):
        digits(val_fraction=1e-4)
    with pytest.raises(ValueError, match=r"digits: seed must be an integer.*seed=-1"):
        digits(seed=-1)
    with pytest.raises(ValueError, match="digits: size must be a positive int, got size=0"):
        digits(size=0)
