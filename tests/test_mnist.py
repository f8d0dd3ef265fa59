"""Tests of dlcourse.datasets.mnist: the IDX reader and writer, MNIST, image padding, offline."""

from __future__ import annotations

import collections
import gzip
import hashlib
import importlib
import io
import math
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
from _dataset_helpers import affine_inverse, forbid_network_and_user_cache

from dlcourse.datasets import Dataset, mnist, pad_images, read_idx, write_idx

# The module, not the function of the same name that dlcourse.datasets exports.
mn = importlib.import_module("dlcourse.datasets.mnist")

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    forbid_network_and_user_cache(monkeypatch, tmp_path_factory.mktemp("default_cache"))


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
        write_idx(path, array, compress=compress)
        assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
        back = read_idx(path)
        assert back.dtype == np.dtype(dtype) and back.shape == shape
        assert back.dtype.isnative and back.flags.writeable
        np.testing.assert_array_equal(back, array)


def test_write_idx_compresses_by_suffix_and_accepts_big_endian(tmp_path):
    array = np.arange(6, dtype=">i4").reshape(2, 3)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "a", array)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a").read_bytes()[:4] == b"\x00\x00\x0c\x02"
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == (tmp_path / "a").read_bytes()
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


def test_read_idx_decodes_a_hand_written_file(tmp_path):
    # uint8 (0x08), 2 dimensions: 2 x 3, values 0..5.
    (tmp_path / "u8").write_bytes(b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(range(6)))
    np.testing.assert_array_equal(read_idx(tmp_path / "u8"), [[0, 1, 2], [3, 4, 5]])
    # int16 (0x0B), 1 dimension of 2, big-endian 0x0102 = 258 and 0xFFFE = -2.
    (tmp_path / "i16").write_bytes(b"\x00\x00\x0b\x01\x00\x00\x00\x02\x01\x02\xff\xfe")
    out = read_idx(tmp_path / "i16")
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, [258, -2])
    # float32 (0x0D): 1.5 big-endian, gzipped under a name without .gz.
    raw = b"\x00\x00\x0d\x01\x00\x00\x00\x01" + struct.pack(">f", 1.5)
    (tmp_path / "f32").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "f32"), np.array([1.5], np.float32))


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
        read_idx(path)
    assert str(path) in str(info.value) and "read_idx" in str(info.value)


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "a", np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="bool"):
        write_idx(tmp_path / "a", np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        write_idx(tmp_path / "a", np.uint8(3))
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
        write_idx(folder / (stem + (".gz" if compress else "")), array)


@pytest.mark.parametrize(
    "gz", [(False,) * 4, (True,) * 4, (True, False, False, True)], ids=["raw", "gz", "mixed"]
)
def test_mnist_loads_idx_files(tmp_path, gz):
    arrays = _fake_mnist()
    _write_mnist(tmp_path, arrays, gz)
    ds = mnist(tmp_path, download=False)
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
    np.testing.assert_allclose(affine_inverse(ds.x_test, images), images, atol=1e-3)
    # Each training image still carries its own label.
    by_image = {img.tobytes(): lab for img, lab in zip(arrays[MNIST_FILES[0]], labels, strict=True)}
    x = np.concatenate([ds.x_train, ds.x_val])[..., 0]
    restored = np.rint(affine_inverse(x, arrays[MNIST_FILES[0]])).astype(np.uint8)
    for img, lab in zip(restored, np.concatenate([ds.y_train, ds.y_val]), strict=True):
        assert by_image[img.tobytes()] == lab


def test_mnist_reads_the_cache_folder_by_default(tmp_path):
    _write_mnist(tmp_path / "mnist", _fake_mnist(), (True,) * 4)
    ds = mnist(cache_dir=tmp_path, download=False, val_fraction=0.5, seed=2)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (30, 30, 20)


def test_mnist_missing_files_without_download(tmp_path):
    arrays = _fake_mnist()
    del arrays[MNIST_FILES[3]]
    _write_mnist(tmp_path, arrays, (False,) * 3)
    with pytest.raises(FileNotFoundError) as info:
        mnist(tmp_path, download=False)
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
        mnist(cache_dir=tmp_path)
    message = str(info.value)
    folder = tmp_path / "mnist"
    for stem in MNIST_FILES:
        assert stem in message
    assert str(folder) in message and "download failed" in message
    assert "no network in tests" in message
    assert len(urls) == 4 * len(mn._MNIST_MIRRORS)
    assert all(url.endswith(".gz") for url in urls)
    assert not folder.exists() or not any(folder.iterdir())  # nothing half-written


def test_mnist_download_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    arrays = _fake_mnist()
    served = {}
    for stem, array in arrays.items():
        buffer = tmp_path / "served"
        write_idx(buffer, array, compress=True)
        served[stem + ".gz"] = buffer.read_bytes()
    monkeypatch.setattr(
        mn, "_MNIST_MD5", {name: hashlib.md5(b).hexdigest() for name, b in served.items()}
    )
    first, second = mn._MNIST_MIRRORS[:2]
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
    ds = mnist(cache_dir=tmp_path)
    assert corrupt_sent
    folder = tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(served)  # no temp files left
    np.testing.assert_array_equal(ds.y_test, arrays[MNIST_FILES[3]])
    # The files are now on disk: a second call needs no network.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network"))
    mnist(cache_dir=tmp_path)


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
        mnist(tmp_path, download=False)


def test_mnist_corrupt_file_names_it(tmp_path):
    _write_mnist(tmp_path, _fake_mnist())
    path = tmp_path / MNIST_FILES[0]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated") as info:
        mnist(tmp_path, download=False)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, -0.1, 1.5, math.nan, True, "0.1", None])
def test_mnist_rejects_bad_fractions_before_reading(tmp_path, value):
    # The cache folder is empty: the check must come before any work.
    with pytest.raises(ValueError, match=r"mnist: val_fraction.*val_fraction="):
        mnist(val_fraction=value, cache_dir=tmp_path)


def test_mnist_rejects_a_split_too_small_to_stratify(tmp_path):
    _write_mnist(tmp_path, _fake_mnist())
    with pytest.raises(ValueError, match=r"mnist: cannot hold out a stratified.*val_fraction"):
        mnist(tmp_path, download=False, val_fraction=0.05)  # 3 images, 10 classes
    with pytest.raises(ValueError, match=r"mnist: seed must be an integer.*seed=-1"):
        mnist(tmp_path, download=False, seed=-1)


# ---------------------------------------------------------------------------------------
# pad_images.


def _images(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    return Dataset(x, np.arange(len(x)), x[:2] - 1.0, np.arange(2), x[:3] + 1.0, np.arange(3),
                   10, "images")


def test_pad_images_centres_with_the_training_background():
    ds = _images((4, 28, 28, 1))
    out = pad_images(ds, 32)
    background = ds.x_train.min()
    for name in ("x_train", "x_val", "x_test"):
        x, padded = getattr(ds, name), getattr(out, name)
        assert padded.shape == (len(x), 32, 32, 1) and padded.dtype == np.float32
        np.testing.assert_array_equal(padded[:, 2:30, 2:30], x)  # centred: 2 on each side
        border = np.ones((32, 32), bool)
        border[2:30, 2:30] = False
        np.testing.assert_array_equal(padded[:, border], background)
    assert (out.y_train is ds.y_train) and out.name == "images" and out.num_classes == 10


def test_pad_images_odd_margins_and_rectangles():
    ds = _images((2, 5, 4, 3))
    out = pad_images(ds, 8)
    assert out.x_train.shape == (2, 8, 8, 3)
    # 3 rows of margin: 1 above, 2 below; 4 columns: 2 on each side.
    np.testing.assert_array_equal(out.x_train[:, 1:6, 2:6], ds.x_train)
    np.testing.assert_array_equal(pad_images(ds, 5).x_train[:, :, :4], ds.x_train[:, :, :4])


def test_pad_images_rejects_what_it_cannot_pad():
    with pytest.raises(ValueError, match=r"pad_images: size=27 is smaller than the 28x28"):
        pad_images(_images((2, 28, 28, 1)), 27)
    with pytest.raises(ValueError, match=r"pad_images: needs NHWC images.*\(2, 40\)"):
        pad_images(_images((2, 40)), 32)
    with pytest.raises(ValueError, match=r"pad_images: size must be a positive int"):
        pad_images(_images((2, 28, 28, 1)), 0)
