r"""The checkpoint file format (§2.4.6, Algorithm 1): how a checkpoint is encoded and
checked, and how a stored tree is restored into a run's structure.

:mod:`dlcourse.checkpoint` saves and loads with these functions (and
:func:`dlcourse.weights.load_params` restores with :func:`restore`); import the public
names from there.

File format (version 1)
-----------------------
One file, ``checkpoint.msgpack``, in the checkpoint directory.  It is a msgpack map (the
*envelope*), written with :mod:`flax.serialization`::

    {"format": "dlcourse-checkpoint", "version": 1,
     "sha256": <32 bytes>, "payload": <bytes>}

``payload`` is itself :func:`flax.serialization.msgpack_serialize` of::

    {"params": ..., "state": ..., "opt_state": ...,   # flax state dicts of the pytrees
     "key": uint32 array, "epoch": int,
     "history": "<JSON>", "meta": "<JSON>"}

and ``sha256`` is the SHA-256 digest of the payload bytes, so a truncated or corrupted
file is detected for sure instead of being decoded into wrong numbers.  Arrays are stored
as raw bytes with their dtype and shape, so a round trip is bit-identical.

The checks of :func:`encode` (an int epoch, a PRNG key, JSON-able ``history`` and
``meta``, no NaN or inf) run before anything is written; :func:`decode` refuses a file of
another format or version, or whose checksum does not match, and :func:`check_tree`
compares the stored tree with the run's leaf by leaf, naming the first difference.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from flax import serialization

if TYPE_CHECKING:
    from dlcourse.checkpoint import Checkpoint

__all__ = [
    "FIX",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "check_tree",
    "corrupt",
    "decode",
    "encode",
    "is_typed_key",
    "path_str",
    "place_like",
    "restore",
    "to_json",
]

FORMAT_VERSION = 1
"""Version of the file format written by :func:`dlcourse.checkpoint.save_checkpoint`."""
FORMAT_NAME = "dlcourse-checkpoint"
"""The envelope's ``"format"`` entry: what marks a file as a dlcourse checkpoint."""
FIX = "delete it or pass a different --checkpoint-dir"
"""The fix every error about a checkpoint file ends with."""


# ----------------------------------------------------------------------------- encoding


def path_str(path: tuple[Any, ...]) -> str:
    """``(DictKey('fc1'), DictKey('W'))`` -> ``'fc1/W'``."""
    parts = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            parts.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(entry.name)
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        else:
            parts.append(str(entry))
    return "/".join(parts)


def is_typed_key(key: Any) -> bool:
    return hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def _json_default(value: Any) -> Any:
    """Turn numpy / jax scalars (a loss logged without ``float()``) into Python numbers."""
    if isinstance(value, (np.generic, np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(function: str, name: str, value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{function}: {name} must hold only JSON-able values (dicts, lists, str, "
            f"int, float, bool, None), got {name}={value!r} ({err}); convert the "
            f"offending values, e.g. with float() or str()."
        ) from err


def _check_finite(epoch: int, name: str, tree: Any, *, allow_inf: bool) -> None:
    """Raise if a floating leaf of ``tree`` holds NaN (or inf, unless ``allow_inf``)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    for path, leaf in leaves:
        arr = np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.inexact):
            continue
        bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
        if bad.any():
            what = "NaN" if allow_inf else "NaN or inf"
            leaf_name = "/".join(p for p in (name, path_str(path)) if p)
            raise ValueError(
                f"save_checkpoint: checkpoint of epoch {epoch} has {what} in "
                f"{leaf_name} ({int(bad.sum())} of {arr.size} values); refusing to save "
                f"it so that the last good checkpoint is kept. Training diverged: lower "
                f"the learning rate or resume from the previous checkpoint."
            )


def encode(checkpoint: Checkpoint) -> bytes:
    """Serialize a checkpoint to the bytes of the file (no I/O).

    :func:`dlcourse.checkpoint.save_checkpoint` has checked that ``checkpoint`` is a
    :class:`~dlcourse.checkpoint.Checkpoint`; the fields are checked here.
    """
    epoch = checkpoint.epoch
    if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)):
        raise TypeError(
            f"save_checkpoint: epoch must be an int, got epoch={epoch!r} of type "
            f"{type(epoch).__name__}; pass the number of completed epochs."
        )
    epoch = int(epoch)
    if epoch < 0:
        raise ValueError(
            f"save_checkpoint: epoch must be >= 0, got epoch={epoch}; pass the number of "
            f"completed epochs."
        )
    if not isinstance(checkpoint.meta, dict):
        raise TypeError(
            f"save_checkpoint: meta must be a dict, got meta={checkpoint.meta!r}; pass "
            f"e.g. meta={{'model': ..., 'optimizer': ...}} or meta={{}}."
        )
    history_json = to_json("save_checkpoint", "history", list(checkpoint.history))
    meta_json = to_json("save_checkpoint", "meta", checkpoint.meta)

    key = checkpoint.key
    if is_typed_key(key):
        key = jax.random.key_data(key)
    key = np.asarray(jax.device_get(key))
    if key.dtype != np.uint32:
        raise TypeError(
            f"save_checkpoint: key must be a jax.random.PRNGKey (uint32) or a typed "
            f"jax.random.key, got key of dtype {key.dtype} and shape {key.shape}; pass "
            f"the training loop's current PRNG key."
        )

    # One device -> host transfer; the finiteness checks and msgpack then read numpy.
    params, state, opt_state = jax.device_get(
        (checkpoint.params, checkpoint.state, checkpoint.opt_state)
    )
    _check_finite(epoch, "params", params, allow_inf=False)
    _check_finite(epoch, "state", state, allow_inf=False)
    # The optimizer state may hold a legitimate inf (optax.contrib.reduce_on_plateau
    # starts its best value at +inf), so only NaN is refused there.
    _check_finite(epoch, "opt_state", opt_state, allow_inf=True)

    payload = serialization.msgpack_serialize(
        {
            "params": serialization.to_state_dict(params),
            "state": serialization.to_state_dict(state),
            "opt_state": serialization.to_state_dict(opt_state),
            "key": key,
            "epoch": epoch,
            "history": history_json,
            "meta": meta_json,
        }
    )
    envelope = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "sha256": hashlib.sha256(payload).digest(),
        "payload": payload,
    }
    return serialization.msgpack_serialize(envelope)


def corrupt(file: pathlib.Path, what: str) -> ValueError:
    return ValueError(
        f"load_checkpoint: checkpoint file {str(file)!r} is corrupt or truncated ({what}); {FIX}."
    )


def decode(file: pathlib.Path, data: bytes) -> dict[str, Any]:
    """Check the envelope of the file's bytes and return the decoded payload dict."""
    try:
        envelope = serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises many types on garbage input.
        raise corrupt(file, f"not valid msgpack: {type(err).__name__}: {err}") from err
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT_NAME:
        raise ValueError(
            f"load_checkpoint: file {str(file)!r} is not a dlcourse checkpoint (no "
            f"'format': {FORMAT_NAME!r} header); {FIX}."
        )
    version = envelope.get("version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"load_checkpoint: checkpoint file {str(file)!r} has format version "
            f"{version!r}, but this dlcourse reads version {FORMAT_VERSION}; use the "
            f"dlcourse version that wrote it, or {FIX}."
        )
    payload, digest = envelope.get("payload"), envelope.get("sha256")
    if not isinstance(payload, bytes) or not isinstance(digest, bytes):
        raise corrupt(file, "missing payload or checksum")
    if hashlib.sha256(payload).digest() != digest:
        raise corrupt(file, "SHA-256 checksum mismatch")
    try:
        content = serialization.msgpack_restore(payload)
        content["history"] = json.loads(content["history"])
        content["meta"] = json.loads(content["meta"])
        content["epoch"] = int(content["epoch"])
        missing = [n for n in ("params", "state", "opt_state", "key") if n not in content]
        if missing:
            raise KeyError(f"missing fields {missing}")
    except Exception as err:  # checksum passed, so this is a writer bug or a forged file.
        raise corrupt(file, f"bad payload: {type(err).__name__}: {err}") from err
    return content


def _mismatch(file: pathlib.Path, what: str) -> ValueError:
    return ValueError(
        f"load_checkpoint: checkpoint file {str(file)!r} does not match the model being "
        f"trained: {what}; {FIX}."
    )


def check_tree(file: pathlib.Path, expected: Any, got: Any, path: str, *,
                mismatch=_mismatch) -> None:
    """Compare a state dict from ``like`` with the one read from the file, leaf by leaf;
    ``mismatch(file, what)`` makes the error (``dlcourse.weights.load_params`` has its own)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            raise mismatch(file, f"{path} is a leaf in the file but a subtree in this run")
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        if missing or extra:
            raise mismatch(
                file,
                f"{path} has keys {sorted(got)} in the file but {sorted(expected)} in "
                f"this run (missing from the file: {missing}, only in the file: {extra})",
            )
        for name in expected:
            check_tree(file, expected[name], got[name], f"{path}/{name}", mismatch=mismatch)
    elif isinstance(got, dict):
        raise mismatch(file, f"{path} is a subtree in the file but a leaf in this run")
    elif hasattr(expected, "shape") and hasattr(expected, "dtype"):
        if not (hasattr(got, "shape") and hasattr(got, "dtype")):
            raise mismatch(file, f"{path} is {got!r} in the file but an array in this run")
        if tuple(got.shape) != tuple(expected.shape):
            raise mismatch(
                file,
                f"{path} has shape {tuple(got.shape)} in the file but "
                f"{tuple(expected.shape)} in this run",
            )
        if np.dtype(got.dtype) != np.dtype(expected.dtype):
            raise mismatch(
                file,
                f"{path} has dtype {np.dtype(got.dtype)} in the file but "
                f"{np.dtype(expected.dtype)} in this run",
            )
    elif (expected is None) != (got is None):
        raise mismatch(file, f"{path} is {got!r} in the file but {expected!r} in this run")


def place_like(like_leaf: Any, value: Any) -> Any:
    """Put a restored numpy leaf where (and as what) the matching ``like`` leaf lives."""
    if isinstance(like_leaf, jax.Array):
        return jax.device_put(value, like_leaf.sharding)
    if isinstance(like_leaf, jax.ShapeDtypeStruct):  # `like` built with jax.eval_shape
        return jax.device_put(value, getattr(like_leaf, "sharding", None))
    if isinstance(like_leaf, np.ndarray):
        return np.array(value)  # a writable copy: np.frombuffer arrays are read-only.
    return value


def restore(file: pathlib.Path, name: str, like: Any, got: Any, *, mismatch=_mismatch) -> Any:
    expected = serialization.to_state_dict(like)
    check_tree(file, expected, got, name, mismatch=mismatch)
    restored = serialization.from_state_dict(like, got)
    return jax.tree_util.tree_map(place_like, like, restored)
