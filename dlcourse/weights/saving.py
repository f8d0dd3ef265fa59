r"""Save and load a parameter pytree: flax's msgpack, written atomically.

A params file is exactly what :func:`flax.serialization.to_bytes` writes: the msgpack of
:func:`flax.serialization.to_state_dict` of the tree (nested string-keyed maps, each
array stored as its raw bytes with dtype and shape).  So a round trip is bit-identical,
and flax reads the file as it is (``flax.serialization.from_bytes(target, data)`` or
``msgpack_restore(data)``).  Files go through :func:`dlcourse._io.atomic_write` (a reader
sees the old file or the new one, never half of one); with ``like`` the tree is checked
leaf by leaf by the checks of :mod:`dlcourse.checkpoint` (structure, shape, dtype) and
restored as ``like`` holds it (tuples and NamedTuples, jax arrays on its devices).
Training checkpoints, with the optimizer state and a checksum, are
:func:`dlcourse.checkpoint.save_checkpoint`'s job; these files are for weights alone.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import numpy as np
from flax import serialization

from dlcourse._checkpoint_format import path_str, restore
from dlcourse._io import atomic_write
from dlcourse._types import Params

__all__ = ["load_params", "save_params"]

_ARRAY = (np.ndarray, np.generic, jax.Array, int, float, bool)


def _check_leaves(params: Any) -> None:
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    if not leaves:
        raise ValueError("save_params: params has no arrays; pass the parameter tree "
                         "(e.g. the params of layer.init).")
    for path, leaf in leaves:
        if not isinstance(leaf, _ARRAY):
            raise TypeError(
                f"save_params: leaf {path_str(path)!r} is of type {type(leaf).__name__}, "
                f"not an array; params must hold arrays (numpy or jax) and numbers only.")
        if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise TypeError(f"save_params: leaf {path_str(path)!r} is a typed PRNG key; "
                            f"save jax.random.key_data(key) instead.")


def save_params(path: str | os.PathLike, params: Params) -> pathlib.Path:
    """Write ``params`` (any pytree of arrays) to ``path`` as flax msgpack, atomically.

    The parent directory is created if missing; the file is flushed and ``fsync``-ed
    before it replaces any previous one.

    Args:
      path: the file to write (``.msgpack`` by convention).
      params: a pytree of arrays: nested dicts (dlcourse's params), tuples, NamedTuples.

    Returns:
      The path written.

    Raises:
      TypeError: a leaf that is not an array or a number (the message names it).
      ValueError: an empty tree.
      OSError: the write failed; any previous file is left as it was.
    """
    _check_leaves(params)
    data = serialization.msgpack_serialize(serialization.to_state_dict(jax.device_get(params)))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, data, durable=True)


def _mismatch(file: pathlib.Path, what: str) -> ValueError:
    return ValueError(
        f"load_params: file {str(file)!r} does not fit `like`: {what}; pass as like the "
        f"tree the file was saved from (or like=None to read the file as it is)."
    )


def _copy(tree: Any) -> Any:
    """Writable numpy copies (msgpack's arrays are read-only views of the file's bytes)."""
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    return np.array(tree) if isinstance(tree, np.ndarray) else tree


def load_params(path: str | os.PathLike, like: Any = None) -> Any:
    r"""Read a params file written by :func:`save_params` (or flax's ``to_bytes``).

    Args:
      path: the file.
      like: ``None``, or a tree of the expected structure (arrays or
        ``jax.ShapeDtypeStruct``, e.g. from :func:`dlcourse.layers.abstract_init`).

    Returns:
      Without ``like``: the tree as stored, nested dicts of numpy arrays (a tuple comes
      back as a dict ``{"0": ..., "1": ...}``, flax's state dict).  With ``like``: the
      tree in ``like``'s structure, each leaf bit-identical to the saved one, a jax
      array on the sharding of the matching ``like`` leaf (numpy where ``like`` holds
      numpy).

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not msgpack (corrupt or truncated), or does not fit
        ``like`` (the message names the leaf and both shapes or dtypes).
    """
    file = pathlib.Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"load_params: no file {str(file)!r}; pass the path that "
                                f"save_params wrote.")
    try:
        content = serialization.msgpack_restore(file.read_bytes())
    except Exception as err:  # msgpack raises many types on garbage input.
        raise ValueError(f"load_params: file {str(file)!r} is corrupt or truncated (not "
                         f"valid msgpack: {type(err).__name__}: {err}).") from err
    if not isinstance(content, dict):
        raise ValueError(f"load_params: file {str(file)!r} holds a {type(content).__name__}, "
                         f"not a tree of arrays; it was not written by save_params.")
    if like is None:
        return _copy(content)
    return restore(file, "params", like, content, mismatch=_mismatch)
