"""Tests of dlcourse.datasets' shared rules: Dataset, cache_dir, the splits, standardization."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _dataset_helpers import assert_stratified, forbid_network_and_user_cache

from dlcourse.datasets import Dataset, cache_dir, digits, standardize, stratified_split


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    forbid_network_and_user_cache(monkeypatch, tmp_path_factory.mktemp("default_cache"))


def _classes(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random inputs (n, 3, 2) of mean 5, with balanced labels 0..9 in random order."""
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 2.0, size=(n, 3, 2))
    return x, rng.permutation(np.arange(n) % 10)


# ---------------------------------------------------------------------------------------
# Dataset and cache_dir.


def test_dataset_repr_shows_shapes_not_values():
    ds = digits()
    assert repr(ds) == (
        "Dataset(name='digits', num_classes=10, train=float32(1258, 64), "
        "val=float32(180, 64), test=float32(359, 64))"
    )
    assert ds.input_shape == (64,)
    assert digits(image=True).input_shape == (8, 8, 1)


def test_cache_dir_explicit_env_and_default(tmp_path, monkeypatch):
    explicit = tmp_path / "a" / "b"
    assert cache_dir(explicit) == explicit
    assert explicit.is_dir()

    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert (tmp_path / "env").is_dir()

    monkeypatch.delenv("DLCOURSE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "dlcourse"
    assert (tmp_path / "home" / ".cache" / "dlcourse").is_dir()


# ---------------------------------------------------------------------------------------
# stratified_split.


def test_stratified_split_sizes_strata_and_seed():
    _, y = _classes(200)
    keep, held = stratified_split(y, 0.25, seed=3)
    assert len(held) == 50 and len(keep) == 150
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(200))
    np.testing.assert_array_equal(np.bincount(y[held]), np.full(10, 5))  # 5 of each 20
    again = stratified_split(y, 0.25, seed=3)
    np.testing.assert_array_equal(again[1], held)
    assert set(stratified_split(y, 0.25, seed=4)[1]) != set(held)
    # A count instead of a fraction; a fraction rounds half up: 0.1025 * 200 = 20.5 -> 21.
    assert len(stratified_split(y, 30)[1]) == 30
    assert len(stratified_split(y, 0.1025)[1]) == 21


@pytest.mark.parametrize(
    ("y", "held_out", "match"),
    [
        (np.arange(20) % 2, 0, r"held_out=0 examples out of 20"),
        (np.arange(20) % 2, 20, r"held_out=20 examples out of 20; a count must be in \[1, 19\]"),
        (np.arange(20) % 2, 1.0, r"held_out must be in \(0, 1\)"),
        (np.arange(20) % 2, True, r"held_out must be in \(0, 1\), got held_out=True"),
        (np.arange(20) % 2, 0.01, r"held_out=0.01 of 20 examples rounds to 0"),
        (np.arange(20) % 10, 3, r"cannot hold out a stratified split of 3 examples"),
        (np.ones(20), 0.5, r"y must be integer class labels of shape \(N,\)"),
        (np.ones((20, 1), int), 0.5, r"y.shape=\(20, 1\)"),
    ],
)
def test_stratified_split_rejects(y, held_out, match):
    with pytest.raises(ValueError, match=rf"stratified_split: .*{match}"):
        stratified_split(y, held_out)


# ---------------------------------------------------------------------------------------
# standardize.


def test_standardize_by_hand_and_leaves_inputs_alone():
    x_train = np.array([[1.0, 2.0], [3.0, 6.0]])  # mean 3, variance (4 + 1 + 0 + 9) / 4
    x_test = np.array([3.0, 6.5])
    before = x_train.copy()
    a, b = standardize(x_train, x_test)
    sigma = math.sqrt(14 / 4)
    np.testing.assert_allclose(a, (before - 3.0) / sigma, rtol=1e-6)
    np.testing.assert_allclose(b, [0.0, 3.5 / sigma], rtol=1e-6)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(x_train, before)  # not modified
    (only,) = standardize(np.arange(5, dtype=np.int16))
    np.testing.assert_allclose(only, (np.arange(5) - 2) / math.sqrt(2), rtol=1e-6)


@pytest.mark.parametrize("x", [np.ones((3, 2)), np.zeros((0, 2)), np.array([1.0, np.nan])])
def test_standardize_rejects_constant_empty_or_nonfinite_data(x):
    with pytest.raises(ValueError, match="standardize: the training inputs have standard dev"):
        standardize(x)


# ---------------------------------------------------------------------------------------
# Dataset.from_arrays.


def test_from_arrays_is_what_digits_does():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    mine = Dataset.from_arrays(bunch.data, bunch.target, seed=2, name="digits")
    ref = digits(seed=2)
    for u, v in zip(mine, ref, strict=True):
        np.testing.assert_array_equal(u, v)
    assert mine.num_classes == 10  # inferred as max(y) + 1


def test_from_arrays_with_a_test_set_keeps_it_and_carves_validation():
    x, y = _classes(200)
    x_test, y_test = _classes(30, seed=1)
    ds = Dataset.from_arrays(x, y, test=(x_test, y_test), val_fraction=0.2, seed=5, name="t")
    train, val = stratified_split(y, 0.2, seed=5)
    mu, sigma = x[train].mean(), x[train].std()
    np.testing.assert_allclose(ds.x_train, (x[train] - mu) / sigma, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.x_val, (x[val] - mu) / sigma, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.x_test, (x_test - mu) / sigma, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, y_test)  # in its order
    np.testing.assert_array_equal(ds.y_train, y[train])
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.input_shape == (3, 2) and ds.name == "t" and ds.num_classes == 10
    assert_stratified(ds.y_val, y, 0.2)


def test_from_arrays_carves_a_test_set_and_never_modifies_the_inputs():
    x, y = _classes(200)
    x = x.astype(np.float32)
    x_copy, y_copy = x.copy(), y.copy()
    ds = Dataset.from_arrays(x, y, val_fraction=0.1, test_fraction=0.25, num_classes=12)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (130, 20, 50)
    assert ds.num_classes == 12 and ds.name == "custom"
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)
    x_test = x[:10].copy()
    Dataset.from_arrays(x, y, test=(x_test, y[:10]))
    np.testing.assert_array_equal(x_test, x[:10])


def test_from_arrays_unstandardized_and_regression_targets():
    x, _ = _classes(100)
    raw = Dataset.from_arrays(x, np.arange(100) % 5, standardize=False)
    assert raw.x_train.mean() > 4  # the raw values, as float32
    assert set(np.round(raw.x_train.ravel(), 4)) <= set(np.round(x.astype(np.float32).ravel(), 4))
    targets = x.sum(axis=(1, 2))[:, None]  # float targets: a regression task
    reg = Dataset.from_arrays(x, targets, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert reg.num_classes == 0 and reg.y_train.dtype == np.float32
    assert reg.y_train.shape == (60, 1) and reg.y_test.shape == (20, 1)
    # Each input still carries its own target.
    np.testing.assert_allclose(
        np.sort(np.concatenate([reg.y_train, reg.y_val, reg.y_test]).ravel()),
        np.sort(targets.ravel()).astype(np.float32),
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.arange(99) % 10}, r"x and y must hold the same number of examples"),
        ({"test": (np.ones((5, 3, 2)), np.arange(4))}, r"x_test and y_test must hold the same"),
        ({"y": np.arange(100) % 10 - 1}, r"num_classes=9\), got .*\[-1, 8\]"),
        ({"num_classes": 5}, r"labels must be in \[0, num_classes=5\), got labels in \[0, 9\]"),
        ({"y": (np.arange(100) % 10).astype(bool)}, r"y must be integer class labels"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \(0, 1\).*For example"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"val_fraction \+ test_fraction"),
        ({"seed": 2**32}, r"seed must be an integer in \[0, 2\*\*32\)"),
        ({"test_fraction": 0.05}, r"cannot hold out a stratified split of 5 examples"),
    ],
)
def test_from_arrays_rejects(kwargs, match):
    x, y = _classes(100)
    kwargs = {"y": y} | kwargs
    with pytest.raises(ValueError, match=rf"Dataset.from_arrays: .*{match}"):
        Dataset.from_arrays(x, **kwargs)
