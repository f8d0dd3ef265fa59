r"""MNIST (LeCun et al. 1998) from its four IDX files, and the IDX reader and writer.

:func:`read_idx` and :func:`write_idx` read and write LeCun's IDX format, raw or gzipped.
:func:`mnist` reads the four MNIST files from a folder, downloading the missing ones once
into the cache (the only network access of dlcourse). To feed the 28×28 digits to
LeNet-5's 32×32 input, pad them: ``pad_images(mnist(), 32)``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import math
import pathlib
import struct
import urllib.error
import urllib.request
import zlib

import numpy as np

from dlcourse._checks import check_positive_int
from dlcourse._io import atomic_write
from dlcourse.datasets._base import Dataset, PathLike, _check_split_args, _from_arrays
from dlcourse.datasets._base import cache_dir as _cache_dir

__all__ = ["mnist", "pad_images", "read_idx", "write_idx"]

_log = logging.getLogger(__name__)

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[np.dtype, int] = {dt.newbyteorder("="): c for c, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode the bytes of an IDX file (gzipped or raw); ``source`` names it in errors."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(
                f"read_idx: {source} starts like a gzip file but is corrupt ({err}); "
                f"expected a complete gzip stream holding an IDX file. Download it again."
            ) from err
    if len(data) < 4:
        raise ValueError(
            f"read_idx: {source} has a truncated header: expected at least 4 bytes "
            f"(magic number), got {len(data)}."
        )
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES:
        raise ValueError(
            f"read_idx: {source} is not an IDX file: its magic number is "
            f"0x{data[:4].hex()}, expected two zero bytes, a type code in "
            f"{{{', '.join(f'0x{c:02X}' for c in _IDX_DTYPES)}}} and the number of "
            f"dimensions (MNIST's images start 0x00000803)."
        )
    if ndim == 0:
        raise ValueError(
            f"read_idx: {source} declares 0 dimensions (magic 0x{data[:4].hex()}); "
            f"expected at least 1."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"read_idx: {source} has a truncated header: expected {header} bytes for "
            f"{ndim} dimensions, got {len(data)}."
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise ValueError(
            f"read_idx: {source} is truncated: expected {expected} bytes of data for "
            f"shape {shape} of {dtype.newbyteorder('=').name}, got {got}."
        )
    if got > expected:
        raise ValueError(
            f"read_idx: {source} has {got - expected} trailing bytes: expected {expected} "
            f"bytes of data for shape {shape} of {dtype.newbyteorder('=').name}, got {got}."
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: PathLike) -> np.ndarray:
    r"""Read an IDX file (the format of LeCun's MNIST files), raw or gzipped.

    Layout: a 4-byte magic number — two zero bytes, a type code (``0x08`` uint8,
    ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64)
    and the number of dimensions $d$ — then $d$ big-endian uint32 sizes, then the
    values, big-endian, in C order. A gzipped file is recognised by its magic bytes
    ``1f 8b``, not by its name.

    Args:
        path: the file.

    Returns:
        A writable array of the file's shape and type, in native byte order.

    Raises:
        ValueError: corrupt gzip, a wrong magic number (non-zero first bytes or an
            unknown type code), 0 dimensions, a truncated header, a truncated payload
            or trailing bytes; the message names the file and what was expected.

    References:
        Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied
        to document recognition", Proc. IEEE 86(11), 1998; the format is described at
        http://yann.lecun.com/exdb/mnist/
    """
    path = pathlib.Path(path)
    return _parse_idx(path.read_bytes(), str(path))


def write_idx(path: PathLike, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (the inverse of :func:`read_idx`), atomically.

    Args:
        path: the file to write.
        array: an array of at least one dimension, of type uint8, int8, int16, int32,
            float32 or float64.
        compress: gzip the file; by default, gzip it if ``path`` ends with ``.gz``.
            The output is deterministic (gzip timestamp 0).

    Raises:
        TypeError: a type IDX cannot hold.
        ValueError: a 0-d array or a dimension of 2**32 or more.
    """
    path = pathlib.Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        names = ", ".join(dt.newbyteorder("=").name for dt in _IDX_DTYPES.values())
        raise TypeError(
            f"write_idx: array has dtype {array.dtype}, which IDX cannot hold; expected one "
            f"of {names} (cast it first, e.g. array.astype(np.uint8))."
        )
    if array.ndim == 0 or any(s >= 2**32 for s in array.shape):
        raise ValueError(
            f"write_idx: array has shape {array.shape}; IDX needs 1 to 255 dimensions, "
            f"each below 2**32."
        )
    code = _IDX_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        data = gzip.compress(data, mtime=0)
    atomic_write(path, data)


# ---------------------------------------------------------------------------------------
# MNIST.

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# MD5 of the original gzipped files (as torchvision checks them).
_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_DOWNLOAD_TIMEOUT_S = 10.0


def _find_mnist_file(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _download_mnist_file(folder: pathlib.Path, stem: str) -> list[str]:
    """Fetch ``stem.gz`` from the first mirror that serves it intact into ``folder``.

    Returns the reasons each mirror failed (empty on success).
    """
    name = stem + ".gz"
    failures = []
    for mirror in _MNIST_MIRRORS:
        url = mirror + name
        try:
            _log.info("mnist: downloading %s", url)
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                data = response.read()
            digest = hashlib.md5(data).hexdigest()
            if digest != _MNIST_MD5[name]:
                raise ValueError(f"MD5 {digest}, expected {_MNIST_MD5[name]}")
            _parse_idx(data, url)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / name, data)
            return []
        except (OSError, ValueError, http.client.HTTPException) as err:
            # URLError, HTTPError and timeouts are OSErrors.
            failures.append(f"{url}: {type(err).__name__}: {err}")
    return failures


def _check_mnist_pair(images: np.ndarray, labels: np.ndarray, files: tuple[str, str]) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"mnist: {files[0]} holds {images.dtype} of shape {images.shape}; expected "
            f"uint8 images of shape (N, 28, 28)."
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"mnist: {files[1]} holds {labels.dtype} of shape {labels.shape}; expected "
            f"integer labels of shape (N,)."
        )
    if len(labels) != len(images):
        raise ValueError(
            f"mnist: {files[0]} has {len(images)} images but {files[1]} has {len(labels)} "
            f"labels; expected the same N (are the files from the same split?)."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"mnist: {files[1]} holds labels in [{labels.min()}, {labels.max()}]; "
            f"expected digits in [0, 9]."
        )


def mnist(
    path: PathLike | None = None,
    *,
    val_fraction: float = 1 / 6,
    seed: int = 0,
    download: bool = True,
    cache_dir: PathLike | None = None,
) -> Dataset:
    r"""MNIST from its four IDX files, as NHWC images, split and standardized.

    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or gzipped with a
    ``.gz`` suffix, from ``path`` if given, else from ``<cache_dir>/mnist``. Files still
    missing are downloaded, when ``download=True``, as ``.gz`` into that same folder
    from the first of a few public mirrors that answers within 10 s with the original
    file (MD5-checked, parsed by :func:`read_idx`, written atomically).

    The validation split is carved from the 60,000 training images (stratified, seeded
    by ``seed``; 10,000 with the default fraction, leaving 50,000); the 10,000 test
    images keep their order. Pixels are scaled to [0, 1], then standardized with the
    training split's scalar mean and standard deviation
    (:func:`~dlcourse.datasets.standardize`), as :meth:`Dataset.from_arrays` does with
    a ``test`` set. For LeNet-5's 32×32 input, ``pad_images(mnist(), 32)``.

    Args:
        path: the folder holding the four files; default ``<cache_dir>/mnist``.
        val_fraction: fraction of the training images held out for validation, in
            (0, 1), rounded half up.
        seed: seeds the validation split.
        download: download missing files (the only network access in this module).
        cache_dir: the cache folder; default :func:`~dlcourse.datasets.cache_dir`.

    Returns:
        A :class:`Dataset` named ``"mnist"`` with 10 classes, float32 images of shape
        ``(N, 28, 28, 1)`` and int32 labels.

    Raises:
        FileNotFoundError: files still missing after the download (or with
            ``download=False``); the message names them and the folder to put them in.
        ValueError: a corrupt file (see :func:`read_idx`), images that are not uint8
            ``(N, 28, 28)``, labels that are not ``(N,)`` digits with the same ``N``, or
            a bad ``val_fraction`` or ``seed``.

    References:
        Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied
        to document recognition", Proc. IEEE 86(11), 1998; http://yann.lecun.com/exdb/mnist/
    """
    fn = "mnist"
    val_fraction, _, seed = _check_split_args(fn, val_fraction, None, seed, carve_test=False)
    folder = pathlib.Path(path).expanduser() if path is not None else None
    if folder is None:
        folder = _cache_dir(cache_dir) / "mnist"
    found = {stem: _find_mnist_file(folder, stem) for stem in _MNIST_FILES}
    failures: list[str] = []
    if download:
        for stem in _MNIST_FILES:
            if found[stem] is None:
                failures += _download_mnist_file(folder, stem)
                found[stem] = _find_mnist_file(folder, stem)
    missing = [stem for stem in _MNIST_FILES if found[stem] is None]
    if missing:
        if not download:
            why = "download=False, so nothing was downloaded"
        else:  # one reason per kind of failure, not one line per URL
            reasons = sorted({f.split(": ", 1)[1] for f in failures})
            why = (f"the download failed from each of {len(_MNIST_MIRRORS)} mirrors: "
                   f"{'; '.join(reasons)[:300]}")
        raise FileNotFoundError(
            f"mnist: missing {', '.join(missing)} (raw or .gz) in {folder}.\n"
            f"  {why}.\n"
            f"  Put the four MNIST files (each raw or .gz) in {folder}, or pass "
            f"path=<the folder holding them>."
        )
    arrays = {stem: read_idx(found[stem]) for stem in _MNIST_FILES}
    images, labels, test_images, test_labels = (arrays[stem] for stem in _MNIST_FILES)
    _check_mnist_pair(images, labels, (str(found[_MNIST_FILES[0]]), str(found[_MNIST_FILES[1]])))
    _check_mnist_pair(
        test_images, test_labels, (str(found[_MNIST_FILES[2]]), str(found[_MNIST_FILES[3]]))
    )

    def to_float(u8: np.ndarray) -> np.ndarray:
        x = u8.astype(np.float32)[..., None]
        np.divide(x, np.float32(255), out=x)
        return x

    return _from_arrays(
        fn, to_float(images), labels, test=(to_float(test_images), test_labels),
        val_fraction=val_fraction, test_fraction=None, standardize=True, seed=seed,
        num_classes=10, name="mnist",
    )


def pad_images(ds: Dataset, size: int) -> Dataset:
    r"""Pad every split's NHWC images to ``size``×``size`` with the background.

    The images are centred (a side with an odd margin gets the extra row or column at
    the bottom or right), and the border takes the background value: the minimum of
    ``x_train``, the standardized 0 of MNIST and digits. LeNet-5 was designed for
    LeCun's 28×28 MNIST digits centred in a 32×32 field (LeCun et al. 1998, §II-B):
    ``pad_images(mnist(), 32)``.

    Args:
        ds: a :class:`Dataset` of images ``(N, H, W, C)``.
        size: the side of the padded images, at least ``H`` and ``W``.

    Returns:
        A new :class:`Dataset` with images ``(N, size, size, C)``; labels, name and
        number of classes as ``ds``'s.

    Raises:
        ValueError: inputs that are not NHWC, or ``size`` smaller than the images.
    """
    fn = "pad_images"
    size = check_positive_int(fn, "size", size)
    if ds.x_train.ndim != 4:
        raise ValueError(
            f"{fn}: needs NHWC images (N, H, W, C), got x_train.shape={ds.x_train.shape}."
        )
    height, width = ds.x_train.shape[1:3]
    if size < height or size < width:
        raise ValueError(
            f"{fn}: size={size} is smaller than the {height}x{width} images; pass a size "
            f">= {max(height, width)}."
        )
    top, left = (size - height) // 2, (size - width) // 2
    widths = ((0, 0), (top, size - height - top), (left, size - width - left), (0, 0))
    background = float(ds.x_train.min())
    return ds._replace(**{
        k: np.pad(getattr(ds, k), widths, constant_values=background)
        for k in ("x_train", "x_val", "x_test")
    })
