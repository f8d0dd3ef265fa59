r"""The :class:`Dataset` of every loader, the cache folder, the splits and the standardization.

Splits. The test split is the dataset's own test set where it has one (MNIST-1D's 1,000,
MNIST's 10,000); otherwise it is carved first, and the validation split from the rest.
Every carve is *stratified* (each class keeps its proportion) and seeded by ``seed``
(``sklearn.model_selection.train_test_split(..., stratify=y, random_state=seed)``); its
size is ``fraction * n`` rounded half up, ``n`` all the examples but the given test set.
Carved splits come out shuffled; a dataset's own test set keeps its order.

Standardization. One scalar mean $\mu$ and one scalar standard deviation $\sigma$ are
computed on the training split only and applied to all three splits,
$x \leftarrow (x - \mu) / \sigma$, so ``x_train`` has mean 0 and standard deviation 1 and
nothing about the validation or test examples leaks into training. The statistics are
scalars, not per-pixel: a per-feature standardization would give each position its own
offset and scale, which breaks the translation invariance a convolution relies on (§3.1:
the same kernel must see the same digit the same way wherever it sits, in an image or a
1-D signal), and it divides by a near-zero standard deviation at the border pixels that
are almost always 0 (in MNIST and digits), blowing their rare non-zero values up.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any, NamedTuple

import numpy as np

from dlcourse._checks import check_positive_int, check_range, check_seed, is_int

__all__ = ["Dataset", "cache_dir", "standardize", "stratified_split"]

PathLike = str | os.PathLike


class Dataset(NamedTuple):
    r"""A dataset split three ways, as host numpy arrays (the training loop moves them).

    ``repr(dataset)`` shows the name, the number of classes and each split's dtype and
    shape, never the arrays: ``Dataset(name='digits', num_classes=10,
    train=float32(1258, 64), val=float32(180, 64), test=float32(359, 64))``.

    Attributes:
        x_train: float32 inputs ``(N_train, ...)``, standardized with the training
            split's scalar mean and standard deviation (see the module docstring).
        y_train: int32 labels ``(N_train,)`` in ``[0, num_classes)``, or float32
            targets ``(N_train, ...)`` for a regression task.
        x_val: float32 validation inputs, standardized with the training statistics.
        y_val: the validation labels or targets.
        x_test: float32 test inputs, standardized with the training statistics.
        y_test: the test labels or targets.
        num_classes: the number of classes; 0 for a regression task.
        name: a short name (``"digits"``, ``"mnist1d"``, ``"mnist"``, ``"adding"``).
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

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        *,
        test: tuple[Any, Any] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        standardize: bool = True,
        seed: int = 0,
        num_classes: int | None = None,
        name: str = "custom",
    ) -> Dataset:
        r"""A :class:`Dataset` from your own arrays, by the rules of the bundled datasets.

        Without ``test``, the test split is carved first and the validation split from
        the rest, both sizes fractions of all ``len(y)`` examples rounded half up (as
        :func:`~dlcourse.datasets.digits`). With ``test=(x_test, y_test)``, that test set
        is kept, in its order, and the validation split is ``val_fraction`` of
        ``len(y)`` (as :func:`~dlcourse.datasets.mnist1d`); ``test_fraction`` is then
        unused. Integer labels are split stratified (:func:`stratified_split`); float
        targets (a regression task) by a seeded shuffle of the same sizes. The inputs
        are then standardized with the training split's scalar statistics
        (:func:`standardize`). Your arrays are never modified.

        Args:
            x: inputs ``(N, ...)``, any real dtype; returned as float32.
            y: integer class labels ``(N,)`` in ``[0, num_classes)``, or float targets
                ``(N, ...)`` (then ``num_classes`` is 0).
            test: an optional ``(x_test, y_test)`` pair, the dataset's own test set.
            val_fraction: fraction held out for validation, in (0, 1).
            test_fraction: fraction held out for testing when ``test`` is None, in
                (0, 1); ``val_fraction + test_fraction`` must be below 1.
            standardize: standardize the inputs (False keeps their values, as float32).
            seed: seeds the splits, an integer in ``[0, 2**32)``.
            num_classes: the number of classes; default ``max(y) + 1`` over all labels.
            name: the dataset's name.

        Returns:
            A :class:`Dataset` with float32 inputs and int32 labels (float32 targets).

        Raises:
            ValueError: inputs and labels of different lengths, labels that are not
                ``(N,)`` integers in ``[0, num_classes)``, a bad fraction or seed, a
                split too small to be stratified, or constant inputs.

        Example:
            >>> ds = Dataset.from_arrays(x, y, val_fraction=0.2, seed=1, name="mine")
        """
        return _from_arrays(
            "Dataset.from_arrays", x, y, test=test, val_fraction=val_fraction,
            test_fraction=test_fraction, standardize=standardize, seed=seed,
            num_classes=num_classes, name=name,
        )


def cache_dir(path: PathLike | None = None) -> pathlib.Path:
    """The folder where dlcourse caches datasets, created if missing.

    Args:
        path: use this folder if given.

    Returns:
        ``path`` if given, else ``$DLCOURSE_CACHE`` if set and non-empty, else
        ``~/.cache/dlcourse`` (``~`` expanded in all three).
    """
    if path is None:
        env = os.environ.get("DLCOURSE_CACHE")
        path = env if env else pathlib.Path("~") / ".cache" / "dlcourse"
    root = pathlib.Path(path).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


# ---------------------------------------------------------------------------------------
# Splits.


def _check_fraction(fn: str, name: str, value: Any) -> float:
    hint = f" For example {name}=0.1 holds out 10% of the examples."
    return check_range(fn, name, value, 0, 1, low_open=True, high_open=True, hint=hint)


def _split_size(fn: str, name: str, fraction: float, n: int) -> int:
    """``fraction * n`` rounded half up; it must leave examples on both sides."""
    size = math.floor(fraction * n + 0.5)
    if not 0 < size < n:
        raise ValueError(
            f"{fn}: {name}={fraction!r} of {n} examples rounds to {size}, but the split "
            f"needs between 1 and {n - 1} examples; choose a fraction in "
            f"[{0.5 / n:.3g}, {1 - 0.5 / n:.3g})."
        )
    return size


def _split(
    fn: str, name: str, y: np.ndarray, size: int, seed: int, *, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)`` of a seeded (stratified) split with ``size`` held out."""
    from sklearn.model_selection import train_test_split

    try:
        keep, held = train_test_split(
            np.arange(len(y)), test_size=size, stratify=y if stratify else None,
            random_state=seed, shuffle=True,
        )
    except ValueError as err:
        raise ValueError(
            f"{fn}: cannot hold out a stratified split of {size} examples ({name}) "
            f"from {len(y)} examples with {len(np.unique(y))} classes: {err} Each class "
            f"needs at least 2 examples, and each side at least one per class; change "
            f"{name} or use more data."
        ) from err
    return np.asarray(keep), np.asarray(held)


def stratified_split(
    y: Any, held_out: float | int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Seeded stratified split of the examples labelled ``y``: indices ``(keep, held)``.

    Each class keeps its proportion on both sides (to within one example); the same
    ``seed`` gives the same split. This is the carve of every bundled dataset:
    ``sklearn.model_selection.train_test_split(arange(N), test_size=size, stratify=y,
    random_state=seed)``, where a fraction's size is ``held_out * N`` rounded half up.

    Args:
        y: integer class labels ``(N,)``.
        held_out: how many examples to hold out: a float fraction in (0, 1), or an int
            count in ``[1, N - 1]`` (scikit-learn's ``test_size`` convention).
        seed: an integer in ``[0, 2**32)``.

    Returns:
        ``(keep, held)``: two int arrays of indices into ``y``, disjoint, together all of
        ``range(N)``, each in shuffled order; ``x[held]`` is the held-out part.

    Raises:
        ValueError: labels that are not ``(N,)`` integers, a fraction outside (0, 1) or a
            count outside ``[1, N - 1]``, a bad seed, or a class too small to be split.

    Example:
        >>> train, val = stratified_split(y, 0.1, seed=0)
        >>> x_train, x_val = x[train], x[val]
    """
    fn = "stratified_split"
    y = _check_labels(fn, "y", y)
    seed = check_seed(fn, seed)
    n = len(y)
    if is_int(held_out):
        if not 1 <= held_out < n:
            raise ValueError(
                f"{fn}: held_out={held_out!r} examples out of {n}; a count must be in "
                f"[1, {n - 1}] (or pass a float fraction in (0, 1))."
            )
        size = int(held_out)
    else:
        size = _split_size(fn, "held_out", _check_fraction(fn, "held_out", held_out), n)
    return _split(fn, "held_out", y, size, seed)


# ---------------------------------------------------------------------------------------
# Standardization.


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


def _standardize_inplace(
    fn: str, x_train: np.ndarray, *others: np.ndarray
) -> tuple[np.ndarray, ...]:
    """:func:`standardize` on float32 arrays this package owns: overwritten in place."""
    mean, std = _scalar_stats(x_train) if x_train.size else (math.nan, math.nan)
    if not (math.isfinite(std) and std > 0.0):
        raise ValueError(
            f"{fn}: the training inputs have standard deviation {std!r} (mean "
            f"{mean!r}), so they cannot be standardized; the data are constant, empty "
            f"or not finite."
        )
    mu, sigma = np.float32(mean), np.float32(std)
    for x in (x_train, *others):
        np.subtract(x, mu, out=x)
        np.divide(x, sigma, out=x)
    return (x_train, *others)


def standardize(x_train: Any, *others: Any) -> tuple[np.ndarray, ...]:
    r"""$x \leftarrow (x - \mu) / \sigma$ with the scalar $\mu, \sigma$ of ``x_train``.

    $\mu$ and $\sigma$ are the mean and the (population) standard deviation of all the
    entries of ``x_train``, accumulated in float64. The same two numbers map every array,
    so ``x_train`` comes out with mean 0 and standard deviation 1 and the validation and
    test data are mapped as the training data are (scalars: see the module docstring).

    Args:
        x_train: the training inputs, any shape and real dtype.
        *others: more arrays (validation, test) to map with the training statistics.

    Returns:
        A tuple of float32 arrays, ``x_train``'s first, then one per ``others``; the
        inputs are not modified.

    Raises:
        ValueError: ``x_train`` is empty, constant or not finite.
    """
    arrays = [np.array(x, dtype=np.float32, copy=True) for x in (x_train, *others)]
    return _standardize_inplace("standardize", *arrays)


# ---------------------------------------------------------------------------------------
# A Dataset from arrays.


def _check_split_args(
    fn: str, val_fraction: Any, test_fraction: Any, seed: Any, *, carve_test: bool
) -> tuple[float, float | None, int]:
    """The split arguments, checked; ``test_fraction`` only when the test split is carved.

    The loaders call this first, so that a bad argument fails before any work.
    """
    val_fraction = _check_fraction(fn, "val_fraction", val_fraction)
    if not carve_test:
        return val_fraction, None, check_seed(fn, seed)
    test_fraction = _check_fraction(fn, "test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"{fn}: val_fraction + test_fraction must be below 1 to leave training "
            f"examples, got val_fraction={val_fraction!r} + test_fraction="
            f"{test_fraction!r} = {val_fraction + test_fraction!r}."
        )
    return val_fraction, test_fraction, check_seed(fn, seed)


def _check_labels(fn: str, name: str, y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"{fn}: {name} must be integer class labels of shape (N,), got {name}.dtype="
            f"{y.dtype}, {name}.shape={y.shape}."
        )
    return y


def _from_arrays(
    fn: str,
    x: Any,
    y: Any,
    *,
    test: tuple[Any, Any] | None,
    val_fraction: float,
    test_fraction: float | None,
    standardize: bool,
    seed: int,
    num_classes: int | None,
    name: str,
) -> Dataset:
    """:meth:`Dataset.from_arrays`, with errors naming ``fn`` (the bundled loaders')."""
    val_fraction, test_fraction, seed = _check_split_args(
        fn, val_fraction, test_fraction, seed, carve_test=test is None
    )
    x, y = np.asarray(x), np.asarray(y)
    x_test, y_test = (None, None) if test is None else (np.asarray(test[0]), np.asarray(test[1]))
    for x_name, y_name, xs, ys in (("x", "y", x, y), ("x_test", "y_test", x_test, y_test)):
        if xs is not None and (xs.ndim == 0 or ys.ndim == 0 or len(xs) != len(ys)):
            raise ValueError(
                f"{fn}: {x_name} and {y_name} must hold the same number of examples on "
                f"their first axis, got {x_name}.shape={xs.shape}, {y_name}.shape={ys.shape}."
            )
    regression = bool(np.issubdtype(y.dtype, np.floating))
    if regression:
        num_classes, dtype = 0, np.float32
    else:
        y = _check_labels(fn, "y", y)
        every = y if y_test is None else np.concatenate([y, _check_labels(fn, "y_test", y_test)])
        low, high = (int(every.min()), int(every.max()) + 1) if every.size else (0, 0)
        if num_classes is None:
            num_classes = high
        num_classes = check_positive_int(fn, "num_classes", num_classes)
        if low < 0 or high > num_classes:
            raise ValueError(
                f"{fn}: labels must be in [0, num_classes={num_classes}), got labels in "
                f"[{low}, {high - 1}]."
            )
        dtype = np.int32
    y = y.astype(dtype)
    x = x.astype(np.float32, copy=False)
    n = len(y)
    if test is None:
        n_test = _split_size(fn, "test_fraction", test_fraction, n)
        n_val = _split_size(fn, "val_fraction", val_fraction, n)
        if n_test + n_val >= n:
            raise ValueError(
                f"{fn}: val_fraction={val_fraction!r} and test_fraction={test_fraction!r} "
                f"leave no training example out of {n}; make them smaller."
            )
        rest, held = _split(fn, "test_fraction", y, n_test, seed, stratify=not regression)
        keep, val = _split(fn, "val_fraction", y[rest], n_val, seed, stratify=not regression)
        train, val, x_test, y_test = rest[keep], rest[val], x[held], y[held]
    else:
        n_val = _split_size(fn, "val_fraction", val_fraction, n)
        train, val = _split(fn, "val_fraction", y, n_val, seed, stratify=not regression)
        # A copy: the caller's test inputs are standardized in place below.
        x_test, y_test = np.array(x_test, dtype=np.float32, copy=True), y_test.astype(dtype)
    x_train, x_val = x[train], x[val]  # fancy indexing copies
    if standardize:
        x_train, x_val, x_test = _standardize_inplace(fn, x_train, x_val, x_test)
    return Dataset(x_train, y[train], x_val, y[val], x_test, y_test, num_classes, name)
