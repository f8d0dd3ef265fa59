"""Tests for dlcourse.checkpoint: bit-identical round trips, resuming, a changed
configuration refused, and atomic writes that never lose the last good checkpoint (the
file format's checks: tests/test_checkpoint_format.py)."""

from __future__ import annotations

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _checkpoint_helpers import META, fresh, optimizer, params_tree, save_trained, trained

from dlcourse import checkpoint as ckpt
from dlcourse.checkpoint import (
    CHECKPOINT_FILENAME,
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def _assert_trees_identical(a, b) -> None:
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert isinstance(y, jax.Array)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture
def saved(tmp_path: pathlib.Path, key: jax.Array) -> tuple[pathlib.Path, Checkpoint]:
    return save_trained(tmp_path, key)


def test_round_trip_is_bit_identical(saved, key) -> None:
    directory, original = saved
    restored = load_checkpoint(directory, fresh(key))
    assert isinstance(restored, Checkpoint)
    _assert_trees_identical(original.params, restored.params)
    _assert_trees_identical(original.state, restored.state)
    _assert_trees_identical(original.opt_state, restored.opt_state)
    # The optax state keeps its tuple / NamedTuple types, field by field.
    assert type(restored.opt_state) is tuple and len(restored.opt_state) == 2
    assert type(restored.opt_state[0]) is type(original.opt_state[0])
    adam_state = restored.opt_state[1]
    assert type(adam_state) is tuple
    assert type(adam_state[0]) is optax.ScaleByAdamState
    assert adam_state[0].count.dtype == jnp.int32 and int(adam_state[0].count) == 2
    assert restored.epoch == 2 and type(restored.epoch) is int
    assert restored.key.dtype == jnp.uint32 and restored.key.shape == (2,)
    np.testing.assert_array_equal(np.asarray(restored.key), np.asarray(original.key))
    assert restored.history == original.history  # floats survive JSON exactly
    assert restored.meta == META


def test_resumed_update_matches_uninterrupted(saved, key) -> None:
    directory, original = saved
    restored = load_checkpoint(directory, fresh(key))
    opt = optimizer()

    def step(params, opt_state):
        grads = jax.tree_util.tree_map(jnp.sin, params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    _assert_trees_identical(
        step(original.params, original.opt_state), step(restored.params, restored.opt_state)
    )


def test_typed_key_round_trip(tmp_path, key) -> None:
    original = trained(key)._replace(key=jax.random.key(3))
    save_checkpoint(tmp_path, original)
    restored = load_checkpoint(tmp_path, fresh(key, key=jax.random.key(0)))
    assert restored.key.dtype == original.key.dtype
    np.testing.assert_array_equal(
        np.asarray(jax.random.key_data(restored.key)),
        np.asarray(jax.random.key_data(original.key)),
    )


def test_missing_file_returns_none(tmp_path, key) -> None:
    assert load_checkpoint(tmp_path / "nowhere", fresh(key)) is None
    assert load_checkpoint(tmp_path, fresh(key)) is None
    assert latest_checkpoint(tmp_path) is None


def test_save_creates_directory_and_returns_path(tmp_path, key) -> None:
    directory = tmp_path / "a" / "b"
    path = save_checkpoint(str(directory), trained(key))
    assert path == directory / CHECKPOINT_FILENAME and path.is_file()
    assert latest_checkpoint(directory) == path
    assert os.listdir(directory) == [CHECKPOINT_FILENAME]  # no temporary file left


def test_meta_mismatch_names_key_and_values(saved, key) -> None:
    directory, _ = saved
    meta = dict(META, lr=0.1)
    with pytest.raises(ValueError, match=r"meta differs: lr=0\.001 in the file but 0\.1"):
        load_checkpoint(directory, fresh(key, meta=meta))
    meta = dict(META, extra=True)
    with pytest.raises(ValueError, match=r"extra='<missing>' in the file but True"):
        load_checkpoint(directory, fresh(key, meta=meta))


@pytest.mark.parametrize("target", ["replace", "fsync"])
def test_crash_during_write_keeps_previous_checkpoint(saved, key, monkeypatch, target) -> None:
    directory, original = saved
    before = (directory / CHECKPOINT_FILENAME).read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, target, crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(directory, original._replace(epoch=3))
    monkeypatch.undo()
    assert (directory / CHECKPOINT_FILENAME).read_bytes() == before
    assert os.listdir(directory) == [CHECKPOINT_FILENAME]
    assert load_checkpoint(directory, fresh(key)).epoch == 2


def test_stray_temporary_files_are_ignored(saved, key) -> None:
    directory, _ = saved
    stray = directory / ".checkpoint.msgpack.123.abc.tmp"
    stray.write_bytes(b"half a checkpoint")
    assert load_checkpoint(directory, fresh(key)).epoch == 2
    assert stray.read_bytes() == b"half a checkpoint"  # left alone


def test_overwrite_replaces_with_newer_epoch(saved, key) -> None:
    directory, original = saved
    save_checkpoint(directory, original._replace(epoch=5, history=original.history + [{}]))
    restored = load_checkpoint(directory, fresh(key))
    assert restored.epoch == 5 and restored.history[-1] == {}


def test_directory_that_is_a_file_raises(tmp_path, key) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        save_checkpoint(not_a_dir, trained(key))


# --- what a command line reads before building anything; Ctrl-C and kills (issue 12) ------


def test_mismatch_messages_speak_of_this_run(saved, key) -> None:
    directory, _ = saved
    with pytest.raises(ValueError) as info:
        load_checkpoint(directory, fresh(key, meta=dict(META, lr=0.1)))
    assert "lr=0.001 in the file but 0.1 in this run" in str(info.value)
    with pytest.raises(ValueError) as info:
        load_checkpoint(directory, fresh(key, params=params_tree(key, fc1_shape=(5, 4))))
    assert "(3, 4) in the file but (5, 4) in this run" in str(info.value)
    assert "like" not in str(info.value)


def test_checkpoint_info_reads_epoch_meta_and_history(saved, tmp_path) -> None:
    directory, original = saved
    info = ckpt.checkpoint_info(directory)
    assert info.path == directory / CHECKPOINT_FILENAME
    assert (info.epoch, info.meta, info.history) == (2, META, original.history)
    assert ckpt.checkpoint_info(tmp_path / "empty") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / CHECKPOINT_FILENAME).write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="is corrupt or truncated|not a dlcourse checkpoint"):
        ckpt.checkpoint_info(tmp_path / "bad")


def test_remove_temporaries_takes_only_the_strays(saved) -> None:
    from dlcourse._io import remove_temporaries

    directory, _ = saved
    strays = [directory / ".checkpoint.msgpack.k3j2.tmp", directory / ".history.json.1.tmp"]
    keep = [directory / "checkpoint.tmp", directory / ".other.json.1.tmp"]
    for path in strays + keep:
        path.write_bytes(b"x")
    assert sorted(remove_temporaries(directory)) == sorted(strays)
    assert all(p.exists() for p in keep) and (directory / CHECKPOINT_FILENAME).exists()
    assert remove_temporaries(directory / "missing") == []


def test_ctrl_c_during_a_save_is_held_until_the_file_is_in_place(saved, key, monkeypatch):
    import signal

    directory, original = saved
    fsync = os.fsync

    def interrupted_fsync(fd):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the new file is being written
        fsync(fd)

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(directory, original._replace(epoch=3))
    monkeypatch.undo()
    assert load_checkpoint(directory, fresh(key)).epoch == 3  # the save finished first
    assert os.listdir(directory) == [CHECKPOINT_FILENAME]  # no temporary left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
