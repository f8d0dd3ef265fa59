r"""Training checkpoints: save and resume a run exactly (§2.4.6, Algorithm 1).

A checkpoint holds everything the training loop needs to carry on as if it had never
stopped: the parameters, the model state, the optimizer state, the epoch reached, the
PRNG key, the history so far, and a small ``meta`` dict (the model and optimizer
configuration) used to refuse a checkpoint written by a different run.

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

Writes are atomic: the checkpoint is serialized in memory first, written to a temporary
file in the same directory, flushed and ``fsync``-ed, then moved onto
``checkpoint.msgpack`` with :func:`os.replace`.  A crash at any point leaves the previous
checkpoint intact, and a checkpoint holding NaN is refused, so the last good checkpoint
is never replaced by a diverged one.  A Ctrl-C during a save lets the save finish first
(:func:`dlcourse._io.defer_interrupts`); a kill during a save can leave a temporary
file ``.checkpoint.msgpack.<random>.tmp``, which :func:`dlcourse._io.remove_temporaries`
deletes (the training loop calls it when it starts).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import serialization

from dlcourse._io import atomic_write, defer_interrupts

__all__ = [
    "CHECKPOINT_FILENAME",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointInfo",
    "checkpoint_info",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FILENAME = "checkpoint.msgpack"
"""Name of the checkpoint file inside the checkpoint directory."""
FORMAT_VERSION = 1
"""Version of the file format written by :func:`save_checkpoint`."""
_FORMAT_NAME = "dlcourse-checkpoint"
_FIX = "delete it or pass a different --checkpoint-dir"


class Checkpoint(NamedTuple):
    """Everything needed to resume training exactly where it stopped.

    Attributes:
      params: the parameters, a nested dict of arrays.
      state: the model state (batch-norm statistics …), a nested dict, maybe empty.
      opt_state: the optax optimizer state (tuples and NamedTuples of arrays).
      epoch: the number of epochs completed.
      key: the PRNG key to continue with: a ``jax.random.PRNGKey`` (uint32, shape (2,))
        or a typed key from ``jax.random.key``.
      history: one dict of JSON-able numbers per completed epoch.
      meta: a small dict of JSON-able values (the model/optimizer configuration);
        :func:`load_checkpoint` refuses a file whose ``meta`` differs.
    """

    params: Any
    state: Any
    opt_state: Any
    epoch: int
    key: jax.Array
    history: list[dict[str, Any]]
    meta: dict[str, Any]


# ----------------------------------------------------------------------------- helpers


def _path_str(path: tuple[Any, ...]) -> str:
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


def _is_typed_key(key: Any) -> bool:
    return hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def _json_default(value: Any) -> Any:
    """Turn numpy / jax scalars (a loss logged without ``float()``) into Python numbers."""
    if isinstance(value, (np.generic, np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json(function: str, name: str, value: Any) -> str:
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
            leaf_name = "/".join(p for p in (name, _path_str(path)) if p)
            raise ValueError(
                f"save_checkpoint: checkpoint of epoch {epoch} has {what} in "
                f"{leaf_name} ({int(bad.sum())} of {arr.size} values); refusing to save "
                f"it so that the last good checkpoint is kept. Training diverged: lower "
                f"the learning rate or resume from the previous checkpoint."
            )


def _encode(checkpoint: Checkpoint) -> bytes:
    """Serialize a checkpoint to the bytes of the file (no I/O)."""
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(
            f"save_checkpoint: checkpoint must be a dlcourse.checkpoint.Checkpoint, got "
            f"checkpoint of type {type(checkpoint).__name__}; build one with "
            f"Checkpoint(params=..., state=..., opt_state=..., epoch=..., key=..., "
            f"history=..., meta=...)."
        )
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
    history_json = _to_json("save_checkpoint", "history", list(checkpoint.history))
    meta_json = _to_json("save_checkpoint", "meta", checkpoint.meta)

    key = checkpoint.key
    if _is_typed_key(key):
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
        "format": _FORMAT_NAME,
        "version": FORMAT_VERSION,
        "sha256": hashlib.sha256(payload).digest(),
        "payload": payload,
    }
    return serialization.msgpack_serialize(envelope)


def _corrupt(file: pathlib.Path, what: str) -> ValueError:
    return ValueError(
        f"load_checkpoint: checkpoint file {str(file)!r} is corrupt or truncated ({what}); {_FIX}."
    )


def _decode(file: pathlib.Path, data: bytes) -> dict[str, Any]:
    """Check the envelope of the file's bytes and return the decoded payload dict."""
    try:
        envelope = serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises many types on garbage input.
        raise _corrupt(file, f"not valid msgpack: {type(err).__name__}: {err}") from err
    if not isinstance(envelope, dict) or envelope.get("format") != _FORMAT_NAME:
        raise ValueError(
            f"load_checkpoint: file {str(file)!r} is not a dlcourse checkpoint (no "
            f"'format': {_FORMAT_NAME!r} header); {_FIX}."
        )
    version = envelope.get("version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"load_checkpoint: checkpoint file {str(file)!r} has format version "
            f"{version!r}, but this dlcourse reads version {FORMAT_VERSION}; use the "
            f"dlcourse version that wrote it, or {_FIX}."
        )
    payload, digest = envelope.get("payload"), envelope.get("sha256")
    if not isinstance(payload, bytes) or not isinstance(digest, bytes):
        raise _corrupt(file, "missing payload or checksum")
    if hashlib.sha256(payload).digest() != digest:
        raise _corrupt(file, "SHA-256 checksum mismatch")
    try:
        content = serialization.msgpack_restore(payload)
        content["history"] = json.loads(content["history"])
        content["meta"] = json.loads(content["meta"])
        content["epoch"] = int(content["epoch"])
        missing = [n for n in ("params", "state", "opt_state", "key") if n not in content]
        if missing:
            raise KeyError(f"missing fields {missing}")
    except Exception as err:  # checksum passed, so this is a writer bug or a forged file.
        raise _corrupt(file, f"bad payload: {type(err).__name__}: {err}") from err
    return content


def _mismatch(file: pathlib.Path, what: str) -> ValueError:
    return ValueError(
        f"load_checkpoint: checkpoint file {str(file)!r} does not match the model being "
        f"trained: {what}; {_FIX}."
    )


def _check_tree(file: pathlib.Path, expected: Any, got: Any, path: str, *,
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
            _check_tree(file, expected[name], got[name], f"{path}/{name}", mismatch=mismatch)
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


def _place_like(like_leaf: Any, value: Any) -> Any:
    """Put a restored numpy leaf where (and as what) the matching ``like`` leaf lives."""
    if isinstance(like_leaf, jax.Array):
        return jax.device_put(value, like_leaf.sharding)
    if isinstance(like_leaf, jax.ShapeDtypeStruct):  # `like` built with jax.eval_shape
        return jax.device_put(value, getattr(like_leaf, "sharding", None))
    if isinstance(like_leaf, np.ndarray):
        return np.array(value)  # a writable copy: np.frombuffer arrays are read-only.
    return value


def _restore(file: pathlib.Path, name: str, like: Any, got: Any, *, mismatch=_mismatch) -> Any:
    expected = serialization.to_state_dict(like)
    _check_tree(file, expected, got, name, mismatch=mismatch)
    restored = serialization.from_state_dict(like, got)
    return jax.tree_util.tree_map(_place_like, like, restored)


# ----------------------------------------------------------------------------- public API


def save_checkpoint(directory: str | os.PathLike, checkpoint: Checkpoint) -> pathlib.Path:
    r"""Write ``checkpoint`` atomically to ``directory/checkpoint.msgpack``.

    The checkpoint is serialized in memory first (if that fails, nothing on disk
    changes), written to a temporary file in the same directory, flushed and fsync-ed,
    then moved onto ``checkpoint.msgpack`` with :func:`os.replace`, so a crash at any
    moment leaves either the previous checkpoint or the new one, never a mix.  The
    directory is created if missing.  A Ctrl-C during the write is held until the new
    checkpoint is in place (:func:`dlcourse._io.defer_interrupts`), then raised.

    Args:
      directory: the checkpoint directory.
      checkpoint: what to save; ``history`` and ``meta`` must be JSON-able.

    Returns:
      The path of the written file.

    Raises:
      ValueError: ``params`` or ``state`` hold NaN or inf, or ``opt_state`` holds NaN
        (the message names the epoch and the leaf); ``epoch`` is negative; ``directory``
        is an existing file.  The previous checkpoint is left untouched.
      TypeError: ``checkpoint`` is not a :class:`Checkpoint`, ``epoch`` is not an int,
        ``key`` is not a PRNG key, or ``history``/``meta`` are not JSON-able.
      OSError: writing failed; the previous checkpoint is left untouched.
    """
    data = _encode(checkpoint)
    directory = pathlib.Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"save_checkpoint: directory={str(directory)!r} is a file, not a directory; "
            f"pass a directory path for the checkpoints."
        )
    directory.mkdir(parents=True, exist_ok=True)
    with defer_interrupts():
        return atomic_write(directory / CHECKPOINT_FILENAME, data, durable=True)


def latest_checkpoint(directory: str | os.PathLike) -> pathlib.Path | None:
    """The path of the checkpoint file in ``directory``, or None if there is none.

    Stray temporary files left by an interrupted :func:`save_checkpoint` are ignored
    (:func:`dlcourse._io.remove_temporaries` deletes them).
    """
    target = pathlib.Path(directory) / CHECKPOINT_FILENAME
    return target if target.is_file() else None


class CheckpointInfo(NamedTuple):
    """What a checkpoint file says about its run, read without a model (:func:`checkpoint_info`).

    Attributes:
      path: the checkpoint file.
      epoch: the number of epochs it completed.
      meta: the configuration it was written with.
      history: one dict per completed epoch.
    """

    path: pathlib.Path
    epoch: int
    meta: dict[str, Any]
    history: list[dict[str, Any]]


def checkpoint_info(directory: str | os.PathLike) -> CheckpointInfo | None:
    """The epoch, ``meta`` and history of the checkpoint in ``directory``; None if none.

    The file is checked as :func:`load_checkpoint` checks it (format, version, SHA-256),
    but no array is restored: a command line can tell whose run a folder holds, and
    whether it can continue it, before building anything.

    Raises:
      ValueError: the file is corrupt, truncated, or of an unknown version.
    """
    file = latest_checkpoint(directory)
    if file is None:
        return None
    content = _decode(file, file.read_bytes())
    return CheckpointInfo(file, content["epoch"], content["meta"], list(content["history"]))



def load_checkpoint(directory: str | os.PathLike, like: Checkpoint) -> Checkpoint | None:
    r"""Read the checkpoint in ``directory``, restored into the structure of ``like``.

    ``like`` is typically built from a fresh initialisation: its ``params``, ``state``,
    ``opt_state`` and ``key`` give the tree structure (dicts, tuples and NamedTuples
    come back with their types), the shapes, the dtypes and the devices; its ``meta``
    must equal the stored one.  Its ``epoch`` and ``history`` are not used.  Arrays come
    back bit-identical, as ``jax.Array`` on the sharding of the matching ``like`` leaf
    (numpy where ``like`` holds numpy).

    Args:
      directory: the checkpoint directory.
      like: a checkpoint with the expected structure and ``meta``.

    Returns:
      The restored checkpoint, or None if ``directory`` holds no checkpoint file.

    Raises:
      ValueError: the file is corrupt or truncated, has an unknown format version, or
        does not match ``like`` (tree structure, a leaf's shape or dtype, or ``meta``);
        the message names the file, the leaf path or meta key, and both values.
    """
    file = latest_checkpoint(directory)
    if file is None:
        return None
    content = _decode(file, file.read_bytes())

    expected_meta = json.loads(_to_json("load_checkpoint", "like.meta", like.meta))
    stored_meta = content["meta"]
    if stored_meta != expected_meta:
        if isinstance(stored_meta, dict) and isinstance(expected_meta, dict):
            keys = sorted(
                k
                for k in set(stored_meta) | set(expected_meta)
                if stored_meta.get(k, "<missing>") != expected_meta.get(k, "<missing>")
            )
            diff = "; ".join(
                f"{k}={stored_meta.get(k, '<missing>')!r} in the file but "
                f"{expected_meta.get(k, '<missing>')!r} in this run"
                for k in keys
            )
        else:
            diff = f"{stored_meta!r} in the file but {expected_meta!r} in this run"
        raise ValueError(
            f"load_checkpoint: checkpoint file {str(file)!r} was written by a different "
            f"configuration: meta differs: {diff}; {_FIX}, or run with the configuration "
            f"that wrote it."
        )

    params = _restore(file, "params", like.params, content["params"])
    state = _restore(file, "state", like.state, content["state"])
    opt_state = _restore(file, "opt_state", like.opt_state, content["opt_state"])

    typed = _is_typed_key(like.key)
    like_key_data = jax.random.key_data(like.key) if typed else like.key
    _check_tree(file, like_key_data, content["key"], "key")
    key = _place_like(like_key_data, content["key"])
    if typed:
        key = jax.random.wrap_key_data(key, impl=jax.random.key_impl(like.key))

    history = content["history"]
    if not isinstance(history, list):
        raise _corrupt(file, f"history is {type(history).__name__}, expected a list")
    return Checkpoint(
        params=params,
        state=state,
        opt_state=opt_state,
        epoch=content["epoch"],
        key=key,
        history=history,
        meta=stored_meta,
    )
