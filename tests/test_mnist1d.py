"""Tests of dlcourse.datasets.mnist1d: MNIST-1D generated locally, cached, split, offline."""

from __future__ import annotations

import importlib
import json
import math
import random
import shutil
from collections.abc import Callable
from importlib import metadata

import mnist1d.data
import numpy as np
import pytest
from _dataset_helpers import (
    affine_inverse,
    assert_stratified,
    forbid_network_and_user_cache,
    rows,
    sorted_rows,
)

from dlcourse.datasets import MNIST1D_CONFIG
from dlcourse.datasets import mnist1d as load_mnist1d

# The module, not the function of the same name that dlcourse.datasets exports.
m1d = importlib.import_module("dlcourse.datasets.mnist1d")

PAPER = m1d._generator_args("mnist1d", None, 42)
SMALL = {"num_samples": 500}  # 50 signals per class: a real generation in ~0.1 s


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    forbid_network_and_user_cache(monkeypatch, tmp_path_factory.mktemp("default_cache"))


@pytest.fixture(scope="module")
def mnist1d_reference() -> dict[str, np.ndarray]:
    """What the package itself generates with the paper's defaults."""
    state = np.random.get_state()  # noqa: NPY002 (make_dataset reseeds it)
    raw = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    np.random.set_state(state)  # noqa: NPY002
    return {k: raw[k] for k in ("x", "y", "x_test", "y_test")}


@pytest.fixture(scope="module")
def mnist1d_cached(tmp_path_factory):
    """One real generation through dlcourse, shared: (cache folder, dataset)."""
    folder = tmp_path_factory.mktemp("mnist1d_cache")
    return folder, load_mnist1d(cache_dir=folder)


def _fake_generator(reference: dict[str, np.ndarray], calls: list) -> Callable:
    def make_dataset(args=None, template=None):
        calls.append(args)
        return dict(reference)

    return make_dataset


def test_mnist1d_shapes_dtypes_and_standardization(mnist1d_cached):
    _, ds = mnist1d_cached
    assert ds.x_train.shape == (3600, 40) and ds.y_train.shape == (3600,)
    assert ds.x_val.shape == (400, 40) and ds.y_val.shape == (400,)
    assert ds.x_test.shape == (1000, 40) and ds.y_test.shape == (1000,)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert set(np.unique(y)) == set(range(10))
    assert ds.num_classes == 10 and ds.name == "mnist1d"
    np.testing.assert_allclose(ds.x_train.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(), 1.0, atol=1e-5)


def test_mnist1d_numbers_are_unchanged(mnist1d_cached):
    """A few values of the default split, recorded before the datasets package existed."""
    _, ds = mnist1d_cached
    np.testing.assert_allclose(
        ds.x_train[0, :6],
        [-1.6856845617294312, -1.1937414407730103, -0.13778331875801086, 0.1905999481678009,
         -0.2969183325767517, -0.677952766418457],
        rtol=1e-5,
    )
    np.testing.assert_array_equal(ds.y_train[:10], [9, 2, 4, 2, 5, 7, 7, 3, 7, 1])
    np.testing.assert_array_equal(ds.y_val[:5], [8, 4, 2, 9, 8])
    np.testing.assert_allclose(ds.x_val.mean(dtype=np.float64), -0.005783299039333542, rtol=1e-4)
    np.testing.assert_allclose(ds.x_test.mean(dtype=np.float64), 0.0010403384290231202, rtol=1e-3)


def test_mnist1d_matches_the_package(mnist1d_cached, mnist1d_reference):
    _, ds = mnist1d_cached
    ref = mnist1d_reference
    # The test split is the package's, in its order, up to one affine map.
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    np.testing.assert_allclose(affine_inverse(ds.x_test, ref["x_test"]), ref["x_test"], atol=1e-5)
    # Train and validation together are the package's 4,000 training signals.
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    got_x, got_y = sorted_rows(affine_inverse(x, ref["x"]), y)
    want_x, want_y = sorted_rows(ref["x"], ref["y"])
    np.testing.assert_allclose(got_x, want_x, atol=1e-5)
    np.testing.assert_array_equal(got_y, want_y)
    assert_stratified(ds.y_val, ref["y"], 0.1)


def test_mnist1d_default_config_is_the_papers():
    args = mnist1d.data.get_dataset_args(as_dict=True)
    del args["url"]
    assert PAPER == args
    assert dict(MNIST1D_CONFIG, padding=list(MNIST1D_CONFIG["padding"]), seed=42) == args
    # The cache stamp is the one written before the generator took arguments, so the
    # caches already on disk stay valid.
    stamp = json.dumps({"mnist1d": metadata.version("mnist1d"), "args": args}, sort_keys=True)
    assert m1d._meta(PAPER) == stamp


def test_mnist1d_writes_then_loads_the_cache(mnist1d_cached, monkeypatch):
    folder, first = mnist1d_cached
    assert (folder / "mnist1d.npz").is_file()
    assert not [p.name for p in folder.iterdir() if p.name != "mnist1d.npz"]  # no temp left

    def must_not_run(*args, **kwargs):
        raise AssertionError("make_dataset ran although the cache exists")

    monkeypatch.setattr(mnist1d.data, "make_dataset", must_not_run)
    second = load_mnist1d(cache_dir=folder)
    for u, v in zip(first[:6], second[:6], strict=True):
        np.testing.assert_array_equal(u, v)
    # The paper's configuration spelled out is the same cache entry.
    load_mnist1d(cache_dir=folder, generator_seed=42, config={"num_samples": 5000})


def test_mnist1d_seed_changes_only_the_validation_split(mnist1d_cached):
    folder, a = mnist1d_cached
    b = load_mnist1d(cache_dir=folder, seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert set(rows(a.x_val)) != set(rows(b.x_val))


def test_mnist1d_generator_seed_and_config_are_arguments(tmp_path, monkeypatch):
    a = load_mnist1d(cache_dir=tmp_path, config=SMALL)
    b = load_mnist1d(cache_dir=tmp_path, config=SMALL, generator_seed=7)
    c = load_mnist1d(cache_dir=tmp_path, config=SMALL | {"final_seq_length": 30})
    # 500 signals: 400 for training (40 of them validation), 100 for testing.
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (360, 40, 100)
    assert b.x_train.shape == a.x_train.shape and not np.array_equal(a.x_test, b.x_test)
    assert c.input_shape == (30,)
    # One cache file per configuration, none of them the paper's.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and "mnist1d.npz" not in names
    assert all(n.startswith("mnist1d-") and n.endswith(".npz") for n in names)
    # Each is read back, not regenerated; what reaches the generator is the configuration.
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda *a, **k: pytest.fail("ran"))
    np.testing.assert_array_equal(
        load_mnist1d(cache_dir=tmp_path, config=SMALL, generator_seed=7).x_test, b.x_test
    )
    calls: list = []
    reference = {"x": np.zeros((8, 40)), "y": np.arange(8) % 2, "x_test": np.ones((2, 40)),
                 "y_test": np.arange(2)}
    reference["x"][:, 0] = np.arange(8)  # not constant: it can be standardized
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_generator(reference, calls))
    load_mnist1d(cache_dir=tmp_path, val_fraction=0.25, generator_seed=3,
                 config={"iid_noise_scale": 0.1, "padding": (10, 20)})
    (args,) = calls
    assert args.seed == 3 and args.iid_noise_scale == 0.1 and args.padding == [10, 20]
    assert args.num_samples == 5000 and args.final_seq_length == 40


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"config": {"seed": 1}}, r"unknown config key\(s\) \['seed'\].*generator_seed"),
        ({"config": {"samples": 10}}, r"unknown config key\(s\) \['samples'\]"),
        ({"config": {"num_samples": 0}}, r"config\['num_samples'\] must be a positive int"),
        ({"config": {"train_split": 1.0}}, r"config\['train_split'\] must be in \(0, 1\)"),
        ({"config": {"iid_noise_scale": -1}}, r"config\['iid_noise_scale'\] must be a finite"),
        ({"config": {"padding": (5, 2)}}, r"config\['padding'\] must be a pair"),
        ({"config": {"shuffle_seq": 1}}, r"config\['shuffle_seq'\] must be a bool"),
        ({"generator_seed": -1}, r"generator_seed must be an integer in \[0, 2\*\*32\)"),
        ({"generator_seed": 2**32}, r"generator_seed=4294967296"),
        ({"seed": 1.5}, r"seed must be an integer.*seed=1.5"),
    ],
)
def test_mnist1d_rejects_bad_arguments_before_any_work(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(ValueError, match=rf"mnist1d: .*{match}"):
        load_mnist1d(cache_dir=tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, -0.1, 1.5, math.nan, True, "0.1", None])
def test_mnist1d_rejects_bad_fractions(tmp_path, value):
    # The cache folder is empty: the check must come before any work.
    with pytest.raises(ValueError, match=r"mnist1d: val_fraction.*val_fraction="):
        load_mnist1d(val_fraction=value, cache_dir=tmp_path)


def test_mnist1d_leaves_global_rngs_untouched(tmp_path):
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    np_before, py_before = np.random.get_state(), random.getstate()  # noqa: NPY002
    load_mnist1d(cache_dir=tmp_path, config=SMALL)  # a real generation: the folder is empty
    np_after = np.random.get_state()  # noqa: NPY002
    assert np_after[0] == np_before[0]
    np.testing.assert_array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]
    assert random.getstate() == py_before


@pytest.mark.parametrize(
    "content",
    [b"not a zip file", b"PK\x03\x04 truncated zip", None],
    ids=["garbage", "truncated-zip", "wrong-arrays"],
)
def test_mnist1d_regenerates_a_corrupt_cache(tmp_path, monkeypatch, mnist1d_reference, content):
    path = tmp_path / "mnist1d.npz"
    if content is None:
        np.savez(path, meta=np.array(m1d._meta(PAPER)), x=np.zeros(3))
    else:
        path.write_bytes(content)
    calls: list = []
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_generator(mnist1d_reference, calls))
    with pytest.warns(RuntimeWarning, match="regenerating"):
        ds = load_mnist1d(cache_dir=tmp_path)
    assert len(calls) == 1
    assert ds.x_train.shape == (3600, 40)
    with np.load(path) as npz:  # the file was rewritten, valid
        np.testing.assert_array_equal(npz["y_test"], mnist1d_reference["y_test"])
    load_mnist1d(cache_dir=tmp_path)
    assert len(calls) == 1


def test_mnist1d_regenerates_a_cache_from_another_generator(tmp_path, monkeypatch, mnist1d_cached):
    folder, _ = mnist1d_cached
    shutil.copy(folder / "mnist1d.npz", tmp_path / "mnist1d.npz")
    monkeypatch.setattr(m1d, "_meta", lambda args: '{"mnist1d": "other version"}')
    calls: list = []
    with np.load(tmp_path / "mnist1d.npz") as npz:
        reference = dict(npz)
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_generator(reference, calls))
    load_mnist1d(cache_dir=tmp_path)
    assert len(calls) == 1


def test_mnist1d_unwritable_cache_warns_and_still_returns(tmp_path, monkeypatch):
    def refuse(path, data, **kwargs):
        raise PermissionError(f"read-only: {path}")

    monkeypatch.setattr(m1d, "atomic_write", refuse)
    with pytest.warns(RuntimeWarning, match="could not write the cache file"):
        ds = load_mnist1d(cache_dir=tmp_path, config=SMALL)
    assert len(ds.y_test) == 100 and not list(tmp_path.iterdir())
