r"""MNIST-1D (Greydanus 2020): generated locally by the ``mnist1d`` package, then cached.

The generator's seed and every parameter of its configuration are arguments of
:func:`mnist1d`; the paper's configuration is the default. Each configuration is cached
in its own ``.npz`` (the paper's as ``mnist1d.npz``), stamped with the package version and
the configuration, so a stale or corrupt file is regenerated rather than read.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import random
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from importlib import metadata
from types import MappingProxyType
from typing import Any

import numpy as np

from dlcourse._checks import (
    check_int,
    check_nonnegative,
    check_positive_int,
    check_range,
    is_int,
)
from dlcourse._io import atomic_write
from dlcourse.datasets._base import Dataset, PathLike, _check_split_args, _from_arrays
from dlcourse.datasets._base import cache_dir as _cache_dir

__all__ = ["MNIST1D_CONFIG", "mnist1d"]

MNIST1D_CONFIG: Mapping[str, Any] = MappingProxyType({
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": (36, 60),
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
})
"""The paper's generator configuration (``mnist1d.data.get_dataset_args()`` less its
``seed``, 42, and its download ``url``); :func:`mnist1d`'s ``config`` overrides entries."""

_DEFAULT_GENERATOR_SEED = 42
_CACHE_NAME = "mnist1d"
_KEYS = ("x", "y", "x_test", "y_test")


def _check_config(fn: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The paper's configuration updated with ``config``, each entry checked."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(MNIST1D_CONFIG))
    if unknown:
        hint = " (the generator's seed is the argument generator_seed)" if "seed" in unknown else ""
        raise ValueError(
            f"{fn}: unknown config key(s) {unknown}{hint}; expected some of "
            f"{sorted(MNIST1D_CONFIG)}."
        )
    args = {**MNIST1D_CONFIG, **config}
    for name in ("num_samples", "template_len", "final_seq_length"):
        args[name] = check_positive_int(fn, f"config['{name}']", args[name])
    args["max_translation"] = check_int(fn, "config['max_translation']", args["max_translation"],
                                        minimum=0)
    args["train_split"] = check_range(fn, "config['train_split']", args["train_split"], 0, 1,
                                      low_open=True)
    for name in ("scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale"):
        args[name] = check_nonnegative(fn, f"config['{name}']", args[name])
    padding = args["padding"]
    if (not isinstance(padding, (tuple, list)) or len(padding) != 2
            or not all(is_int(p) and p >= 0 for p in padding) or padding[0] > padding[1]):
        raise ValueError(
            f"{fn}: config['padding'] must be a pair (low, high) of ints with "
            f"0 <= low <= high, got {padding!r}."
        )
    args["padding"] = [int(p) for p in padding]
    if not isinstance(args["shuffle_seq"], bool):
        raise ValueError(
            f"{fn}: config['shuffle_seq'] must be a bool, got {args['shuffle_seq']!r}."
        )
    return args


def _generator_args(fn: str, config: Mapping[str, Any] | None, generator_seed: Any) -> dict:
    """The arguments of ``make_dataset``: the configuration and the generator's seed."""
    if not is_int(generator_seed) or not 0 <= generator_seed < 2**32:
        raise ValueError(
            f"{fn}: generator_seed must be an integer in [0, 2**32), got "
            f"generator_seed={generator_seed!r}."
        )
    return _check_config(fn, config) | {"seed": int(generator_seed)}


def _meta(args: dict[str, Any]) -> str:
    """What identifies a cached MNIST-1D: the generator's version and its arguments."""
    try:
        version = metadata.version("mnist1d")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return json.dumps({"mnist1d": version, "args": args}, sort_keys=True)


def _cache_path(root: pathlib.Path, args: dict[str, Any]) -> pathlib.Path:
    """``mnist1d.npz`` for the paper's configuration, ``mnist1d-<hash>.npz`` for others."""
    if args == _generator_args("mnist1d", None, _DEFAULT_GENERATOR_SEED):
        return root / f"{_CACHE_NAME}.npz"
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
    return root / f"{_CACHE_NAME}-{digest}.npz"


def _generate(args: dict[str, Any]) -> dict[str, np.ndarray]:
    """Run ``mnist1d.data.make_dataset(args)``, the global RNG states restored.

    ``make_dataset`` reseeds numpy's and Python's global generators (``set_seed``);
    we save and restore both so the caller's random streams are untouched.
    """
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    # The legacy global state is exactly what make_dataset clobbers, so it is what we keep.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        raw = make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return {k: np.asarray(raw[k]) for k in _KEYS}


def _load_cache(path: pathlib.Path, meta: str, length: int) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if the file is missing, corrupt or from another setup."""
    if not path.is_file():
        return None
    try:
        # Open the file ourselves: np.load leaks its handle when a zip is corrupt.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            if str(npz["meta"]) != meta:
                return None
            raw = {k: np.asarray(npz[k]) for k in _KEYS}
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
    expected = {"x": (n, length), "y": (n,), "x_test": (n_test, length), "y_test": (n_test,)}
    if shapes != expected:
        warnings.warn(
            f"mnist1d: the cache file {path} holds arrays of unexpected shapes {shapes}; "
            f"regenerating it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return raw


def _save_cache(path: pathlib.Path, raw: dict[str, np.ndarray], meta: str) -> None:
    try:
        atomic_write(path, lambda f: np.savez(f, meta=np.array(meta), **raw))
    except OSError as err:  # an unwritable cache must not stop the caller
        warnings.warn(
            f"mnist1d: could not write the cache file {path} ({err}); the data will be "
            f"generated again next time.",
            RuntimeWarning,
            stacklevel=3,
        )


def mnist1d(
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    generator_seed: int = _DEFAULT_GENERATOR_SEED,
    config: Mapping[str, Any] | None = None,
    cache_dir: PathLike | None = None,
) -> Dataset:
    r"""MNIST-1D, generated locally (the paper's configuration by default), cached, standardized.

    Ten 1-D templates of the digits, padded, translated, scaled, sheared and corrupted
    with correlated and i.i.d. noise, then resampled to 40 points: 5,000 signals, the
    first 4,000 for training and the last 1,000 for testing, exactly as
    ``mnist1d.data.make_dataset(get_dataset_args())`` makes them (generator seed 42).
    The package's ``get_dataset`` is never called: it downloads. The generated arrays
    are cached as ``<cache_dir>/mnist1d.npz`` (``mnist1d-<hash>.npz`` for another
    ``generator_seed`` or ``config``; written atomically) and loaded from there
    afterwards; a corrupt or stale cache file is regenerated.

    The validation split is carved from the 4,000 training signals (stratified, seeded
    by ``seed``; 400 with the default fraction, leaving 3,600); the 1,000 test signals
    are the package's test split, in its order. Inputs are standardized with the
    training split's scalar mean and standard deviation
    (:func:`~dlcourse.datasets.standardize`), as :meth:`Dataset.from_arrays` does with
    a ``test`` set.

    Args:
        val_fraction: fraction of the training signals held out for validation, in
            (0, 1), rounded half up.
        seed: seeds the validation split only; the signals depend on
            ``generator_seed`` and ``config`` alone.
        generator_seed: the generator's seed (``make_dataset``'s ``args.seed``); the
            paper's is 42.
        config: entries of :data:`MNIST1D_CONFIG` to change, e.g.
            ``{"num_samples": 10_000}`` or ``{"iid_noise_scale": 0.1}``; the generator
            reads ``num_samples // 10`` signals per class, of ``final_seq_length``
            points, and ``train_split`` of them for training.
        cache_dir: folder of the cache file; default :func:`~dlcourse.datasets.cache_dir`.

    Returns:
        A :class:`Dataset` named ``"mnist1d"`` with 10 classes, float32 inputs of shape
        ``(N, 40)`` (``final_seq_length``) and int32 labels.

    Raises:
        ValueError: ``val_fraction`` outside (0, 1), a bad seed or generator seed, or an
            unknown or invalid ``config`` entry.

    References:
        S. Greydanus, "Scaling down deep learning", 2020, arXiv:2011.14439,
        https://github.com/greydanus/mnist1d
    """
    fn = "mnist1d"
    val_fraction, _, seed = _check_split_args(fn, val_fraction, None, seed, carve_test=False)
    args = _generator_args(fn, config, generator_seed)
    path = _cache_path(_cache_dir(cache_dir), args)
    meta = _meta(args)
    raw = _load_cache(path, meta, args["final_seq_length"])
    if raw is None:
        raw = _generate(args)
        _save_cache(path, raw, meta)
    return _from_arrays(
        fn, raw["x"], raw["y"].astype(np.int32), test=(raw["x_test"], raw["y_test"]),
        val_fraction=val_fraction, test_fraction=None, standardize=True, seed=seed,
        num_classes=10, name="mnist1d",
    )

