"""Tests of dlcourse.data: digits, MNIST-1D, the IDX reader and MNIST, all offline."""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import math
import random
import shutil
import struct
import urllib.error
import urllib.request
from collections.abc import Callable

import mnist1d.data
import numpy as np
import pytest

from dlcourse import data

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """No test may touch the network or the user's cache folder."""

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path_factory.mktemp("default_cache")))


def _rows(x: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in x.reshape(len(x), -1)]


def _affine_inverse(standardized: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Map ``standardized`` back to ``raw``'s scale, assuming it is ``(raw - m) / s``.

    The fit uses only moments, so it is exact when the rows are a permutation of a
    standardized ``raw`` and leaves a visible residual otherwise.
    """
    s = raw.std(dtype=np.float64) / standardized.std(dtype=np.float64)
    m = raw.mean(dtype=np.float64) - s * standardized.mean(dtype=np.float64)
    return standardized.astype(np.float64) * s + m


def _sorted_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = x.reshape(len(x), -1)
    order = np.lexsort(flat.T[::-1])
    return flat[order], y[order]


def _assert_stratified(y_part: np.ndarray, y_all: np.ndarray, fraction: float) -> None:
    """Each class holds its share of the part, to within one example."""
    part = np.bincount(y_part, minlength=10)
    whole = np.bincount(y_all, minlength=10)
    np.testing.assert_array_less(np.abs(part - fraction * whole), 1.0 + 1e-9)


# ---------------------------------------------------------------------------------------
# Dataset and cache_dir.


def test_dataset_repr_shows_shapes_not_values():
    ds = data.digits()
    text = repr(ds)
    assert text == (
        "Dataset(name='digits', num_classes=10, train=float32(1258, 64), "
        "val=float32(180, 64), test=float32(359, 64))"
    )
    assert ds.input_shape == (64,)
    assert data.digits(image=True).input_shape == (8, 8, 1)


def test_cache_dir_explicit_env_and_default(tmp_path, monkeypatch):
    explicit = tmp_path / "a" / "b"
    assert data.cache_dir(explicit) == explicit
    assert explicit.is_dir()

    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "env"))
    assert data.cache_dir() == tmp_path / "env"
    assert (tmp_path / "env").is_dir()

    monkeypatch.delenv("DLCOURSE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "dlcourse"
    assert (tmp_path / "home" / ".cache" / "dlcourse").is_dir()


# ---------------------------------------------------------------------------------------
# digits.


def test_digits_split_sizes():
    # Both fractions are of all 1,797 images, rounded half up:
    # 0.2 * 1797 = 359.4 -> 359 test, 0.1 * 1797 = 179.7 -> 180 validation.
    ds = data.digits()
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1258, 180, 359)
    ds = data.digits(val_fraction=0.25, test_fraction=0.5)  # 449.25 -> 449, 898.5 -> 899
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (449, 449, 899)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797


@pytest.mark.parametrize("image", [False, True])
def test_digits_shapes_dtypes_and_standardization(image):
    ds = data.digits(image=image)
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
    flat, image = data.digits(seed=3), data.digits(seed=3, image=True)
    np.testing.assert_array_equal(image.x_train.reshape(-1, 64), flat.x_train)
    np.testing.assert_array_equal(image.y_test, flat.y_test)


def test_digits_seed_reproducible_and_changes_split():
    a, b, c = data.digits(seed=0), data.digits(seed=0), data.digits(seed=1)
    for u, v in zip(a[:6], b[:6], strict=True):
        np.testing.assert_array_equal(u, v)
    assert set(_rows(a.x_test)) != set(_rows(c.x_test))


def test_digits_splits_are_disjoint_complete_and_stratified():
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = data.digits()
    train, val, test = (set(_rows(x)) for x in (ds.x_train, ds.x_val, ds.x_test))
    assert not train & val and not train & test and not val & test
    # Undo the standardization: the three splits together are exactly the 1,797 images.
    x_all = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    y_all = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    restored = np.rint(_affine_inverse(x_all, raw.data))
    np.testing.assert_allclose(_affine_inverse(x_all, raw.data), restored, atol=1e-4)
    got_x, got_y = _sorted_rows(restored, y_all)
    want_x, want_y = _sorted_rows(raw.data, raw.target)
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_y, want_y)
    _assert_stratified(ds.y_test, raw.target, 359 / 1797)
    _assert_stratified(ds.y_val, raw.target, 180 / 1797)


# ---------------------------------------------------------------------------------------
# MNIST-1D.


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
    return folder, data.mnist1d(cache_dir=folder)


def _fake_generator(reference: dict[str, np.ndarray], calls: list[int]) -> Callable:
    def make_dataset(args=None, template=None):
        calls.append(1)
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


def test_mnist1d_matches_the_package(mnist1d_cached, mnist1d_reference):
    _, ds = mnist1d_cached
    ref = mnist1d_reference
    # The test split is the package's, in its order, up to one affine map.
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    np.testing.assert_allclose(_affine_inverse(ds.x_test, ref["x_test"]), ref["x_test"], atol=1e-5)
    # Train and validation together are the package's 4,000 training signals.
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    got_x, got_y = _sorted_rows(_affine_inverse(x, ref["x"]), y)
    want_x, want_y = _sorted_rows(ref["x"], ref["y"])
    np.testing.assert_allclose(got_x, want_x, atol=1e-5)
    np.testing.assert_array_equal(got_y, want_y)
    _assert_stratified(ds.y_val, ref["y"], 0.1)


def test_mnist1d_writes_then_loads_the_cache(mnist1d_cached, monkeypatch):
    folder, first = mnist1d_cached
    assert (folder / "mnist1d.npz").is_file()
    assert not [p.name for p in folder.iterdir() if p.name != "mnist1d.npz"]  # no temp left

    def must_not_run(*args, **kwargs):
        raise AssertionError("make_dataset ran although the cache exists")

    monkeypatch.setattr(mnist1d.data, "make_dataset", must_not_run)
    second = data.mnist1d(cache_dir=folder)
    for u, v in zip(first[:6], second[:6], strict=True):
        np.testing.assert_array_equal(u, v)


def test_mnist1d_seed_changes_only_the_validation_split(mnist1d_cached):
    folder, a = mnist1d_cached
    b = data.mnist1d(cache_dir=folder, seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert set(_rows(a.x_val)) != set(_rows(b.x_val))


def test_mnist1d_leaves_global_rngs_untouched(tmp_path):
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    np_before, py_before = np.random.get_state(), random.getstate()  # noqa: NPY002
    data.mnist1d(cache_dir=tmp_path)  # a real generation: the cache folder is empty
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
        np.savez(path, meta=np.array(data._mnist1d_meta()), x=np.zeros(3))
    else:
        path.write_bytes(content)
    calls: list[int] = []
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_generator(mnist1d_reference, calls))
    with pytest.warns(RuntimeWarning, match="regenerating"):
        ds = data.mnist1d(cache_dir=tmp_path)
    assert calls == [1]
    assert ds.x_train.shape == (3600, 40)
    with np.load(path) as npz:  # the file was rewritten, valid
        np.testing.assert_array_equal(npz["y_test"], mnist1d_reference["y_test"])
    data.mnist1d(cache_dir=tmp_path)
    assert calls == [1]


def test_mnist1d_regenerates_a_cache_from_another_generator(tmp_path, monkeypatch, mnist1d_cached):
    folder, _ = mnist1d_cached
    shutil.copy(folder / "mnist1d.npz", tmp_path / "mnist1d.npz")
    monkeypatch.setattr(data, "_mnist1d_meta", lambda: '{"mnist1d": "other version"}')
    calls: list[int] = []
    with np.load(tmp_path / "mnist1d.npz") as npz:
        reference = dict(npz)
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_generator(reference, calls))
    data.mnist1d(cache_dir=tmp_path)
    assert calls == [1]


# ---------------------------------------------------------------------------------------
# IDX.

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
IDX_SHAPES = [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2), (0, 3)]


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", IDX_DTYPES)
def test_idx_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    for i, shape in enumerate(IDX_SHAPES):
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        else:
            array = rng.standard_normal(shape).astype(dtype)
        # The reader detects gzip by its magic bytes, so the name says nothing.
        path = tmp_path / f"a{i}.idx"
        data.write_idx(path, array, compress=compress)
        assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
        back = data.read_idx(path)
        assert back.dtype == np.dtype(dtype) and back.shape == shape
        assert back.dtype.isnative and back.flags.writeable
        np.testing.assert_array_equal(back, array)


def test_write_idx_compresses_by_suffix_and_accepts_big_endian(tmp_path):
    array = np.arange(6, dtype=">i4").reshape(2, 3)
    data.write_idx(tmp_path / "a.gz", array)
    data.write_idx(tmp_path / "a", array)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a").read_bytes()[:4] == b"\x00\x00\x0c\x02"
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == (tmp_path / "a").read_bytes()
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), array)


def test_read_idx_decodes_a_hand_written_file(tmp_path):
    # uint8 (0x08), 2 dimensions: 2 x 3, values 0..5.
    (tmp_path / "u8").write_bytes(b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(range(6)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "u8"), [[0, 1, 2], [3, 4, 5]])
    # int16 (0x0B), 1 dimension of 2, big-endian 0x0102 = 258 and 0xFFFE = -2.
    (tmp_path / "i16").write_bytes(b"\x00\x00\x0b\x01\x00\x00\x00\x02\x01\x02\xff\xfe")
    out = data.read_idx(tmp_path / "i16")
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, [258, -2])
    # float32 (0x0D): 1.5 big-endian, gzipped under a name without .gz.
    raw = b"\x00\x00\x0d\x01\x00\x00\x00\x01" + struct.pack(">f", 1.5)
    (tmp_path / "f32").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f32"), np.array([1.5], np.float32))


HEADER_2x3_U8 = b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (HEADER_2x3_U8 + bytes(5), r"expected 6 bytes of data for shape \(2, 3\).*got 5"),
        (HEADER_2x3_U8 + bytes(8), r"2 trailing bytes.*expected 6 bytes.*got 8"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", r"not an IDX file.*0x01000801"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x00", r"not an IDX file.*type code"),
        (b"\x00\x00\x08\x00", r"0 dimensions"),
        (b"\x00\x00", r"truncated header: expected at least 4 bytes.*got 2"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02", r"truncated header: expected 12 bytes.*got 8"),
        (b"\x1f\x8b garbage", r"gzip.*corrupt"),
        (gzip.compress(HEADER_2x3_U8 + bytes(6))[:-6], r"gzip.*corrupt"),
        (gzip.compress(HEADER_2x3_U8 + bytes(5)), r"expected 6 bytes.*got 5"),
    ],
    ids=[
        "truncated-payload",
        "trailing-bytes",
        "nonzero-magic",
        "unknown-dtype",
        "ndim-0",
        "short-magic",
        "truncated-dims",
        "bad-gzip",
        "truncated-gzip",
        "gzip-truncated-payload",
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, content, match):
    path = tmp_path / "bad-file"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        data.read_idx(path)
    assert str(path) in str(info.value) and "read_idx" in str(info.value)


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        data.write_idx(tmp_path / "a", np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="bool"):
        data.write_idx(tmp_path / "a", np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        data.write_idx(tmp_path / "a", np.uint8(3))
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------------------------------
# MNIST.


def _fake_mnist(n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        MNIST_FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        MNIST_FILES[1]: rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        MNIST_FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        MNIST_FILES[3]: rng.permutation(np.arange(n_test) % 10).astype(np.uint8),
    }


def _write_mnist(folder, arrays, gz=(False, False, False, False)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for (stem, array), compress in zip(arrays.items(), gz, strict=True):
        data.write_idx(folder / (stem + (".gz" if compress else "")), array)


@pytest.mark.parametrize(
    "gz", [(False,) * 4, (True,) * 4, (True, False, False, True)], ids=["raw", "gz", "mixed"]
)
def test_mnist_loads_idx_files(tmp_path, gz):
    arrays = _fake_mnist()
    _write_mnist(tmp_path, arrays, gz)
    ds = data.mnist(tmp_path, download=False)
    assert ds.name == "mnist" and ds.num_classes == 10
    # val_fraction = 1/6 of 60 -> 10 validation images, one per class (stratified).
    assert ds.x_train.shape == (50, 28, 28, 1) and ds.y_train.shape == (50,)
    assert ds.x_val.shape == (10, 28, 28, 1) and ds.y_val.shape == (10,)
    assert ds.x_test.shape == (20, 28, 28, 1) and ds.y_test.shape == (20,)
    assert {ds.x_train.dtype, ds.x_val.dtype, ds.x_test.dtype} == {np.dtype(np.float32)}
    assert {ds.y_train.dtype, ds.y_val.dtype, ds.y_test.dtype} == {np.dtype(np.int32)}
    np.testing.assert_allclose(ds.x_train.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(), 1.0, atol=1e-5)
    labels = arrays[MNIST_FILES[1]]
    assert collections.Counter(np.concatenate([ds.y_train, ds.y_val]).tolist()) == (
        collections.Counter(labels.tolist())
    )
    np.testing.assert_array_equal(np.bincount(ds.y_val), np.ones(10))
    # The test images keep their order and their pixels, up to one affine map.
    np.testing.assert_array_equal(ds.y_test, arrays[MNIST_FILES[3]])
    images = arrays[MNIST_FILES[2]][..., None].astype(np.float64)
    np.testing.assert_allclose(_affine_inverse(ds.x_test, images), images, atol=1e-3)
    # Each training image still carries its own label.
    by_image = {img.tobytes(): lab for img, lab in zip(arrays[MNIST_FILES[0]], labels, strict=True)}
    x = np.concatenate([ds.x_train, ds.x_val])[..., 0]
    restored = np.rint(_affine_inverse(x, arrays[MNIST_FILES[0]])).astype(np.uint8)
    for img, lab in zip(restored, np.concatenate([ds.y_train, ds.y_val]), strict=True):
        assert by_image[img.tobytes()] == lab


def test_mnist_reads_the_cache_folder_by_default(tmp_path):
    _write_mnist(tmp_path / "mnist", _fake_mnist(), (True,) * 4)
    ds = data.mnist(cache_dir=tmp_path, download=False, val_fraction=0.5, seed=2)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (30, 30, 20)


def test_mnist_missing_files_without_download(tmp_path):
    arrays = _fake_mnist()
    del arrays[MNIST_FILES[3]]
    _write_mnist(tmp_path, arrays, (False,) * 3)
    with pytest.raises(FileNotFoundError) as info:
        data.mnist(tmp_path, download=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and str(tmp_path) in message
    assert "missing train-images" not in message  # only the missing file is listed
    assert "download=False" in message


def test_mnist_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    urls: list[str] = []

    def unreachable(url, timeout=None):
        urls.append(url)
        assert timeout == 10
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(FileNotFoundError) as info:
        data.mnist(cache_dir=tmp_path)
    message = str(info.value)
    folder = tmp_path / "mnist"
    for stem in MNIST_FILES:
        assert stem in message
    assert str(folder) in message and "download failed" in message
    assert "no network in tests" in message
    assert len(urls) == 4 * len(data._MNIST_MIRRORS)
    assert all(url.endswith(".gz") for url in urls)
    assert not folder.exists() or not any(folder.iterdir())  # nothing half-written


def test_mnist_download_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    arrays = _fake_mnist()
    served = {}
    for stem, array in arrays.items():
        buffer = tmp_path / "served"
        data.write_idx(buffer, array, compress=True)
        served[stem + ".gz"] = buffer.read_bytes()
    monkeypatch.setattr(
        data, "_MNIST_MD5", {name: hashlib.md5(b).hexdigest() for name, b in served.items()}
    )
    first, second = data._MNIST_MIRRORS[:2]
    corrupt_sent = []

    def fake_urlopen(url, timeout=None):
        name = url.rsplit("/", 1)[1]
        if url.startswith(first):
            raise urllib.error.URLError("first mirror down")
        if url.startswith(second) and name == "t10k-images-idx3-ubyte.gz" and not corrupt_sent:
            corrupt_sent.append(url)  # a corrupt body: rejected by the MD5 check
            return io.BytesIO(served[name][:-10])
        return io.BytesIO(served[name])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    ds = data.mnist(cache_dir=tmp_path)
    assert corrupt_sent
    folder = tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(served)  # no temp files left
    np.testing.assert_array_equal(ds.y_test, arrays[MNIST_FILES[3]])
    # The files are now on disk: a second call needs no network.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network"))
    data.mnist(cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({MNIST_FILES[1]: np.arange(59, dtype=np.uint8) % 10}, r"60 images but .* 59 labels"),
        ({MNIST_FILES[2]: np.zeros((20, 27, 28), np.uint8)}, r"\(20, 27, 28\).*\(N, 28, 28\)"),
        ({MNIST_FILES[0]: np.zeros((60, 28, 28), np.float32)}, r"float32.*expected uint8"),
        ({MNIST_FILES[3]: np.full(20, 10, np.uint8)}, r"labels in \[10, 10\]"),
        ({MNIST_FILES[1]: np.zeros((60, 1), np.uint8)}, r"shape \(60, 1\).*\(N,\)"),
    ],
    ids=["mismatched-n", "image-size", "image-dtype", "label-range", "label-shape"],
)
def test_mnist_rejects_inconsistent_files(tmp_path, change, match):
    arrays = _fake_mnist()
    arrays.update(change)
    _write_mnist(tmp_path, arrays)
    with pytest.raises(ValueError, match=match):
        data.mnist(tmp_path, download=False)


def test_mnist_corrupt_file_names_it(tmp_path):
    _write_mnist(tmp_path, _fake_mnist())
    path = tmp_path / MNIST_FILES[0]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated") as info:
        data.mnist(tmp_path, download=False)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------
# Argument checks.

BAD_FRACTIONS = [0, 0.0, 1, 1.0, -0.1, 1.5, math.nan, True, "0.1", None]


@pytest.mark.parametrize("value", BAD_FRACTIONS)
@pytest.mark.parametrize(
    ("loader", "argument"),
    [
        (data.digits, "val_fraction"),
        (data.digits, "test_fraction"),
        (data.mnist1d, "val_fraction"),
        (data.mnist, "val_fraction"),
    ],
)
def test_bad_fractions_are_rejected_eagerly(tmp_path, loader, argument, value):
    kwargs = {argument: value}
    if loader is not data.digits:
        kwargs["cache_dir"] = tmp_path  # empty: the check must come before any work
    with pytest.raises(ValueError, match=rf"{loader.__name__}: {argument}.*{argument}="):
        loader(**kwargs)


def test_bad_fraction_combinations_and_seeds(tmp_path):
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction must be below 1"):
        data.digits(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"val_fraction=0.0001 of 1797 examples rounds to 0"):
        data.digits(val_fraction=1e-4)
    with pytest.raises(ValueError, match=r"seed=-1"):
        data.digits(seed=-1)
    with pytest.raises(ValueError, match=r"seed=1.5"):
        data.mnist1d(seed=1.5, cache_dir=tmp_path)
    _write_mnist(tmp_path, _fake_mnist())
    with pytest.raises(ValueError, match=r"stratified.*val_fraction"):
        data.mnist(tmp_path, download=False, val_fraction=0.05)  # 3 images, 10 classes


def test_digits_resized_for_lenet():
    small = data.digits(image=True)
    big = data.digits(image=True, size=32)
    assert big.x_train.shape == (len(small.x_train), 32, 32, 1)
    np.testing.assert_array_equal(big.y_train, small.y_train)  # same split, same order
    assert abs(float(big.x_train.mean())) < 1e-5 and abs(float(big.x_train.std()) - 1) < 1e-4
    # Upsampling keeps the picture: the 8x8 block means of the 32x32 image track the
    # original pixels closely (correlation, scale-free).
    blocks = big.x_train[:50, :, :, 0].reshape(50, 8, 4, 8, 4).mean(axis=(2, 4))
    r = np.corrcoef(blocks.ravel(), small.x_train[:50, :, :, 0].ravel())[0, 1]
    assert r > 0.95
    with pytest.raises(ValueError, match="size=0"):
        data.digits(size=0)
