r"""Training checkpoints: save and resume a run exactly (§2.4.6, Algorithm 1).

A checkpoint holds everything the training loop needs to carry on as if it had never
stopped: the parameters, the model state, the optimizer state, the epoch reached, the
PRNG key, the history so far, and a small ``meta`` dict (the model and optimizer
configuration) used to refuse a checkpoint written by a different run.

One file, ``checkpoint.msgpack``, in the checkpoint directory: a msgpack envelope
holding the serialized pytrees and their SHA-256 digest, so a truncated or corrupted file
is detected for sure and a round trip is bit-identical (format version
:data:`FORMAT_VERSION`; the layout and the checks are in
:mod:`dlcourse._checkpoint_format`).

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

import json
import os
import pathlib
from typing import Any, NamedTuple

import jax

from dlcourse._checkpoint_format import (
    FIX,
    FORMAT_VERSION,
    check_tree,
    corrupt,
    decode,
    encode,
    is_typed_key,
    place_like,
    restore,
    to_json,
)
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
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(
            f"save_checkpoint: checkpoint must be a dlcourse.checkpoint.Checkpoint, got "
            f"checkpoint of type {type(checkpoint).__name__}; build one with "
            f"Checkpoint(params=..., state=..., opt_state=..., epoch=..., key=..., "
            f"history=..., meta=...)."
        )
    data = encode(checkpoint)
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
    content = decode(file, file.read_bytes())
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
    content = decode(file, file.read_bytes())

    expected_meta = json.loads(to_json("load_checkpoint", "like.meta", like.meta))
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
            f"configuration: meta differs: {diff}; {FIX}, or run with the configuration "
            f"that wrote it."
        )

    params = restore(file, "params", like.params, content["params"])
    state = restore(file, "state", like.state, content["state"])
    opt_state = restore(file, "opt_state", like.opt_state, content["opt_state"])

    typed = is_typed_key(like.key)
    like_key_data = jax.random.key_data(like.key) if typed else like.key
    check_tree(file, like_key_data, content["key"], "key")
    key = place_like(like_key_data, content["key"])
    if typed:
        key = jax.random.wrap_key_data(key, impl=jax.random.key_impl(like.key))

    history = content["history"]
    if not isinstance(history, list):
        raise corrupt(file, f"history is {type(history).__name__}, expected a list")
    return Checkpoint(
        params=params,
        state=state,
        opt_state=opt_state,
        epoch=content["epoch"],
        key=key,
        history=history,
        meta=stored_meta,
    )
