r"""Real datasets that need no network, and the MNIST IDX reader.

Three classification datasets, each returned as a :class:`Dataset` of plain numpy arrays
on the host (the training loop moves them to the device):

* :func:`digits`: scikit-learn's bundled 8×8 handwritten digits (1,797 images; Alpaydin
  & Kaynak 1998, UCI), flat ``(N, 64)`` or NHWC ``(N, 8, 8, 1)``;
* :func:`mnist1d`: MNIST-1D (Greydanus 2020), 5,000 one-dimensional signals of length 40
  generated locally by the ``mnist1d`` package and cached as an ``.npz``;
* :func:`mnist`: MNIST (LeCun et al. 1998), NHWC ``(N, 28, 28, 1)``, read from the four
  IDX files by :func:`read_idx`, optionally downloaded once into the cache.

Splits. The test split is the dataset's own test set where it has one (MNIST-1D's 1,000,
MNIST's 10,000); for digits it is carved first. The validation split is then carved from
what remains for training. Every carve is *stratified* (each class keeps its proportion)
and seeded by ``seed`` (``sklearn.model_selection.train_test_split(..., stratify=y,
random_state=seed)``), and its size is ``fraction * n`` rounded half up, where ``n`` is
the size of the set it is carved from (for :func:`digits`, both fractions are of all
1,797 images). Carved splits come out shuffled; a dataset's own test set keeps its order.

Standardization. One scalar mean $\mu$ and one scalar standard deviation $\sigma$ are
computed on the training split only and applied to all three splits,
$x \leftarrow (x - \mu) / \sigma$, so ``x_train`` has mean 0 and standard deviation 1 and
nothing about the validation or test examples leaks into training. The statistics are
scalars, not per-pixel: a per-feature standardization would give each position its own
offset and scale, which breaks the translation invariance a convolution relies on (§3.1:
the same kernel must see the same digit the same way wherever it sits, in an image or a
1-D signal), and it divides by a near-zero standard deviation at the border pixels that
are almost always 0 (in MNIST and digits), blowing their rare non-zero values up.

The cache folder is :func:`cache_dir`: ``$DLCOURSE_CACHE`` if set, else
``~/.cache/dlcourse``. Only :func:`mnist` with ``download=True`` ever touches the
network, and only when the files are not already on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import math
import os
import pathlib
import struct
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from importlib import metadata
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Dataset",
    "cache_dir",
    "digits",
    "mnist",
    "mnist1d",
    "read_idx",
    "write_idx",
]

_log = logging.getLogger(__name__)

PathLike = str | os.PathLike


class Dataset(NamedTuple):
    r"""A classification dataset split three ways, as host numpy arrays.

    ``repr(dataset)`` shows the name, the number of classes and each split's dtype and
    shape, never the arrays: ``Dataset(name='digits', num_classes=10,
    train=float32(1258, 64), val=float32(180, 64), test=float32(359, 64))``.

    Attributes:
        x_train: float32 inputs ``(N_train, ...)``, standardized with the training
            split's scalar mean and standard deviation (see the module docstring).
        y_train: int32 labels ``(N_train,)`` in ``[0, num_classes)``.
        x_val: float32 validation inputs, standardized with the training statistics.
        y_val: int32 validation labels.
        x_test: float32 test inputs, standardized with the training statistics.
        y_test: int32 test labels.
        num_classes: the number of classes.
        name: a short name (``"digits"``, ``"mnist1d"``, ``"mnist"``).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The per-example input shape (no batch axis), as a layer's ``init`` takes it."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        def describe(x: np.ndarray) -> str:
            return f"{x.dtype}{tuple(x.shape)}"

        return (
            f"Dataset(name={self.name!r}, num_classes={self.num_classes}, "
            f"train={describe(self.x_train)}, val={describe(self.x_val)}, "
            f"test={describe(self.x_test)})"
        )


# ---------------------------------------------------------------------------------------
# Cache folder, argument checks, splits, standardization.


def _cache_root(path: PathLike | None) -> pathlib.Path:
    if path is None:
        env = os.environ.get("DLCOURSE_CACHE")
        path = env if env else pathlib.Path("~") / ".cache" / "dlcourse"
    root = pathlib.Path(path).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(path: PathLike | None = None) -> pathlib.Path:
    """The folder where dlcourse caches datasets, created if missing.

    Args:
        path: use this folder if given.

    Returns:
        ``path`` if given, else ``$DLCOURSE_CACHE`` if set and non-empty, else
        ``~/.cache/dlcourse`` (``~`` expanded in all three).
    """
    return _cache_root(path)


def _check_fraction(caller: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < value < 1.0:
        raise ValueError(
            f"{caller}: {name} must be a number strictly between 0 and 1, got "
            f"{name}={value!r}; for example {name}=0.1 holds out 10% of the examples."
        )
    return float(value)


def _check_seed(caller: str, seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"{caller}: seed must be an integer in [0, 2**32), got seed={seed!r}.")
    return int(seed)


def _split_size(caller: str, name: str, fraction: float, n: int) -> int:
    """``fraction * n`` rounded half up; it must leave examples on both sides."""
    size = math.floor(fraction * n + 0.5)
    if not 0 < size < n:
        raise ValueError(
            f"{caller}: {name}={fraction!r} of {n} examples rounds to {size}, but the split "
            f"needs between 1 and {n - 1} examples; choose a fraction in "
            f"[{0.5 / n:.3g}, {1 - 0.5 / n:.3g})."
        )
    return size


def _stratified_split(
    caller: str, name: str, y: np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)`` of a seeded stratified split with ``size`` held out."""
    from sklearn.model_selection import train_test_split

    try:
        keep, held = train_test_split(
            np.arange(len(y)), test_size=size, stratify=y, random_state=seed, shuffle=True
        )
    except ValueError as err:
        raise ValueError(
            f"{caller}: cannot hold out a stratified split of {size} examples ({name}) "
            f"from {len(y)} examples with {len(np.unique(y))} classes: {err} Each class "
            f"needs at least 2 examples, and each side at least one per class; change "
            f"{name} or use more data."
        ) from err
    return np.asarray(keep), np.asarray(held)


def _scalar_stats(x: np.ndarray, chunk: int = 1 << 22) -> tuple[float, float]:
    """Mean and standard deviation of all entries, in float64, by chunks (two passes)."""
    flat = x.reshape(-1)
    n = flat.size
    total = 0.0
    for start in range(0, n, chunk):
        total += float(flat[start : start + chunk].sum(dtype=np.float64))
    mean = total / n
    squares = 0.0
    for start in range(0, n, chunk):
        block = flat[start : start + chunk].astype(np.float64) - mean
        squares += float(np.dot(block, block))
    return mean, math.sqrt(squares / n)


def _standardize(caller: str, x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    r"""$x \leftarrow (x - \mu) / \sigma$ with scalar $\mu, \sigma$ of ``x_train``.

    The inputs must be float32 arrays this module owns: they are overwritten in place.
    """
    mean, std = _scalar_stats(x_train)
    if not (math.isfinite(std) and std > 0.0):
        raise ValueError(
            f"{caller}: the training inputs have standard deviation {std!r} (mean "
            f"{mean!r}), so they cannot be standardized; the data are constant or "
            f"not finite."
        )
    mu, sigma = np.float32(mean), np.float32(std)
    out = []
    for x in (x_train, *others):
        np.subtract(x, mu, out=x)
        np.divide(x, sigma, out=x)
        out.append(x)
    return tuple(out)


def _atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------
# scikit-learn digits.


def digits(
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    image: bool = False,
    size: int = 8,
) -> Dataset:
    r"""scikit-learn's bundled 8×8 handwritten digits, split three ways and standardized.

    1,797 grey-level images of the digits 0–9 (values 0–16, by 13 writers: the test part of
    UCI's "Optical Recognition of Handwritten Digits"), shipped inside scikit-learn, so
    no network is needed. The test split is carved first, then the validation split
    from the rest, both stratified and seeded; both sizes are fractions of all 1,797
    images rounded half up (defaults: 359 test, 180 validation, 1,258 training). Inputs
    are standardized with the training split's scalar mean and standard deviation (see
    the module docstring).

    Args:
        val_fraction: fraction of all images held out for validation, in (0, 1).
        test_fraction: fraction of all images held out for testing, in (0, 1);
            ``val_fraction + test_fraction`` must be below 1.
        seed: seeds both stratified splits (``random_state`` of scikit-learn's
            ``train_test_split``); the data themselves are fixed.
        image: return NHWC images ``(N, size, size, 1)`` instead of flat vectors.
        size: side of the returned images; other than 8, the 8×8 images are resized
            bilinearly (``jax.image.resize``, antialiased) before standardization, e.g.
            to the 32×32 input of LeNet-5.

    Returns:
        A :class:`Dataset` named ``"digits"`` with 10 classes, float32 inputs and int32
        labels.

    Raises:
        ValueError: a fraction outside (0, 1), fractions summing to 1 or more, or a seed
            that is not an integer in [0, 2**32).

    References:
        E. Alpaydin and C. Kaynak, "Cascading classifiers", Kybernetika 34(4), 1998;
        the UCI data set https://archive.ics.uci.edu/dataset/80 ;
        https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html
    """
    caller = "digits"
    val_fraction = _check_fraction(caller, "val_fraction", val_fraction)
    test_fraction = _check_fraction(caller, "test_fraction", test_fraction)
    seed = _check_seed(caller, seed)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"{caller}: val_fraction + test_fraction must be below 1 to leave training "
            f"examples, got val_fraction={val_fraction!r} + test_fraction={test_fraction!r}"
            f" = {val_fraction + test_fraction!r}."
        )
    from sklearn.datasets import load_digits

    if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
        raise ValueError(f"{caller}: size must be a positive int, got size={size!r}.")
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int32)
    if size != 8:
        import jax

        images = jax.image.resize(x.reshape(-1, 8, 8), (len(x), size, size), "bilinear")
        x = np.asarray(images, np.float32).reshape(len(x), -1)
    n = len(y)
    n_test = _split_size(caller, "test_fraction", test_fraction, n)
    n_val = _split_size(caller, "val_fraction", val_fraction, n)
    if n_test + n_val >= n:
        raise ValueError(
            f"{caller}: val_fraction={val_fraction!r} and test_fraction={test_fraction!r} "
            f"leave no training example out of {n}; make them smaller."
        )
    rest, test = _stratified_split(caller, "test_fraction", y, n_test, seed)
    keep, val = _stratified_split(caller, "val_fraction", y[rest], n_val, seed)
    train, val = rest[keep], rest[val]
    x_train, x_val, x_test = _standardize(caller, x[train], x[val], x[test])
    if image:
        x_train, x_val, x_test = (
            a.reshape(-1, size, size, 1) for a in (x_train, x_val, x_test)
        )
    return Dataset(x_train, y[train], x_val, y[val], x_test, y[test], 10, "digits")


# ---------------------------------------------------------------------------------------
# MNIST-1D.

_MNIST1D_CACHE_NAME = "mnist1d.npz"
_MNIST1D_KEYS = ("x", "y", "x_test", "y_test")


def _mnist1d_meta() -> str:
    """What identifies a cached MNIST-1D: the generator's version and its arguments."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args = {k: v for k, v in args.items() if k != "url"}
    try:
        version = metadata.version("mnist1d")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return json.dumps({"mnist1d": version, "args": args}, sort_keys=True)


def _generate_mnist1d() -> dict[str, np.ndarray]:
    """Run ``mnist1d.data.make_dataset`` with the paper's defaults, RNG states restored.

    ``make_dataset`` reseeds numpy's and Python's global generators (``set_seed(42)``);
    we save and restore both so the caller's random streams are untouched.
    """
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    # The legacy global state is exactly what make_dataset clobbers, so it is what we keep.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return {k: np.asarray(raw[k]) for k in _MNIST1D_KEYS}


def _load_mnist1d_cache(path: pathlib.Path, meta: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if the file is missing, corrupt or from another setup."""
    if not path.is_file():
        return None
    try:
        # Open the file ourselves: np.load leaks its handle when a zip is corrupt.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            if str(npz["meta"]) != meta:
                return None
            raw = {k: np.asarray(npz[k]) for k in _MNIST1D_KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        warnings.warn(
            f"mnist1d: the cache file {path} is unreadable ({type(err).__name__}: {err}); "
            f"regenerating it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    shapes = {k: v.shape for k, v in raw.items()}
    n, n_test = len(raw["y"]), len(raw["y_test"])
    if shapes != {"x": (n, 40), "y": (n,), "x_test": (n_test, 40), "y_test": (n_test,)}:
        warnings.warn(
            f"mnist1d: the cache file {path} holds arrays of unexpected shapes {shapes}; "
            f"regenerating it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return raw


def _save_mnist1d_cache(path: pathlib.Path, raw: dict[str, np.ndarray], meta: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(meta), **raw)
        os.replace(tmp, path)
    except OSError as err:  # an unwritable cache must not stop the caller
        pathlib.Path(tmp).unlink(missing_ok=True)
        warnings.warn(
            f"mnist1d: could not write the cache file {path} ({err}); the data will be "
            f"generated again next time.",
            RuntimeWarning,
            stacklevel=3,
        )
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def mnist1d(
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: PathLike | None = None,
) -> Dataset:
    r"""MNIST-1D, generated locally with the paper's defaults, cached, and standardized.

    Ten 1-D templates of the digits, padded, translated, scaled, sheared and corrupted
    with correlated and i.i.d. noise, then resampled to 40 points: 5,000 signals, the
    first 4,000 for training and the last 1,000 for testing, exactly as
    ``mnist1d.data.make_dataset(get_dataset_args())`` makes them (generator seed 42).
    The package's ``get_dataset`` is never called: it downloads. The generated arrays
    are cached as ``<cache_dir>/mnist1d.npz`` (written atomically) and loaded from there
    afterwards; a corrupt or stale cache file is regenerated.

    The validation split is carved from the 4,000 training signals (stratified, seeded
    by ``seed``; 400 with the default fraction, leaving 3,600); the 1,000 test signals
    are the package's test split, in its order. Inputs are standardized with the
    training split's scalar mean and standard deviation (see the module docstring).

    Args:
        val_fraction: fraction of the 4,000 training signals held out for validation,
            in (0, 1), rounded half up.
        seed: seeds the validation split only; the signals are always those of the
            paper (its generator seed, 42, is fixed).
        cache_dir: folder of the cache file; default :func:`cache_dir`.

    Returns:
        A :class:`Dataset` named ``"mnist1d"`` with 10 classes, float32 inputs of shape
        ``(N, 40)`` and int32 labels.

    Raises:
        ValueError: ``val_fraction`` outside (0, 1) or a bad seed.

    References:
        S. Greydanus, "Scaling down deep learning", 2020, arXiv:2011.14439,
        https://github.com/greydanus/mnist1d
    """
    caller = "mnist1d"
    val_fraction = _check_fraction(caller, "val_fraction", val_fraction)
    seed = _check_seed(caller, seed)
    path = _cache_root(cache_dir) / _MNIST1D_CACHE_NAME
    meta = _mnist1d_meta()
    raw = _load_mnist1d_cache(path, meta)
    if raw is None:
        raw = _generate_mnist1d()
        _save_mnist1d_cache(path, raw, meta)
    x = raw["x"].astype(np.float32)
    y = raw["y"].astype(np.int32)
    n_val = _split_size(caller, "val_fraction", val_fraction, len(y))
    train, val = _stratified_split(caller, "val_fraction", y, n_val, seed)
    x_test = raw["x_test"].astype(np.float32)
    x_train, x_val, x_test = _standardize(caller, x[train], x[val], x_test)
    y_test = raw["y_test"].astype(np.int32)
    return Dataset(x_train, y[train], x_val, y[val], x_test, y_test, 10, "mnist1d")


# ---------------------------------------------------------------------------------------
# IDX files (MNIST's format).

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
    _atomic_write_bytes(path, data)


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
            _atomic_write_bytes(folder / name, data)
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
    training split's scalar mean and standard deviation (see the module docstring).

    Args:
        path: the folder holding the four files; default ``<cache_dir>/mnist``.
        val_fraction: fraction of the training images held out for validation, in
            (0, 1), rounded half up.
        seed: seeds the validation split.
        download: download missing files (the only network access in this module).
        cache_dir: the cache folder; default :func:`cache_dir`.

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
    caller = "mnist"
    val_fraction = _check_fraction(caller, "val_fraction", val_fraction)
    seed = _check_seed(caller, seed)
    folder = pathlib.Path(path).expanduser() if path is not None else None
    if folder is None:
        folder = _cache_root(cache_dir) / "mnist"
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
        else:
            why = "the download failed: " + "; ".join(failures)
        raise FileNotFoundError(
            f"mnist: missing {', '.join(missing)} (raw or with a .gz suffix) in {folder}; "
            f"{why}. Put the four MNIST files (each raw or .gz) in {folder}, or pass "
            f"path=<the folder holding them>."
        )
    arrays = {stem: read_idx(found[stem]) for stem in _MNIST_FILES}
    images, labels, test_images, test_labels = (arrays[stem] for stem in _MNIST_FILES)
    _check_mnist_pair(images, labels, (str(found[_MNIST_FILES[0]]), str(found[_MNIST_FILES[1]])))
    _check_mnist_pair(
        test_images, test_labels, (str(found[_MNIST_FILES[2]]), str(found[_MNIST_FILES[3]]))
    )
    y = labels.astype(np.int32)
    n_val = _split_size(caller, "val_fraction", val_fraction, len(y))
    train, val = _stratified_split(caller, "val_fraction", y, n_val, seed)

    def to_float(u8: np.ndarray) -> np.ndarray:
        x = u8.astype(np.float32)[..., None]
        np.divide(x, np.float32(255), out=x)
        return x

    x_train, x_val, x_test = _standardize(
        caller, to_float(images[train]), to_float(images[val]), to_float(test_images)
    )
    y_test = test_labels.astype(np.int32)
    return Dataset(x_train, y[train], x_val, y[val], x_test, y_test, 10, "mnist")
