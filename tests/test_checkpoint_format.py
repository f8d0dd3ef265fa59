"""Tests for dlcourse._checkpoint_format, through save_checkpoint and load_checkpoint:
corrupt, truncated and foreign files, the stored tree against the run's, and what is
refused before anything is written."""

from __future__ import annotations

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _checkpoint_helpers import fresh, optimizer, params_tree, save_trained, trained

from dlcourse import _checkpoint_format
from dlcourse.checkpoint import CHECKPOINT_FILENAME, Checkpoint, load_checkpoint, save_checkpoint


@pytest.fixture
def saved(tmp_path: pathlib.Path, key: jax.Array) -> tuple[pathlib.Path, Checkpoint]:
    return save_trained(tmp_path, key)


def _corrupt(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "flipped_byte":
        i = len(data) - 100  # inside the payload (the arrays), well past the header
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    if how == "garbage":
        return np.random.default_rng(0).bytes(len(data))
    if how == "empty":
        return b""
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncated", "flipped_byte", "garbage", "empty"])
def test_corrupt_file_raises(saved, key, how) -> None:
    directory, _ = saved
    path = directory / CHECKPOINT_FILENAME
    path.write_bytes(_corrupt(path.read_bytes(), how))
    with pytest.raises(ValueError, match=CHECKPOINT_FILENAME) as info:
        load_checkpoint(directory, fresh(key))
    assert "--checkpoint-dir" in str(info.value)


def test_every_flipped_byte_is_detected(saved, key) -> None:
    directory, _ = saved
    path = directory / CHECKPOINT_FILENAME
    data = path.read_bytes()
    like = fresh(key)
    for i in range(0, len(data), max(1, len(data) // 200)):
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :])
        with pytest.raises(ValueError, match=CHECKPOINT_FILENAME):
            load_checkpoint(directory, like)


def test_unknown_version_raises(tmp_path, key, monkeypatch) -> None:
    monkeypatch.setattr(_checkpoint_format, "FORMAT_VERSION", 99)
    save_checkpoint(tmp_path, trained(key))
    monkeypatch.undo()
    with pytest.raises(ValueError, match=rf"{CHECKPOINT_FILENAME}.*version 99.*reads version 1"):
        load_checkpoint(tmp_path, fresh(key))


def test_not_a_checkpoint_raises(tmp_path, key) -> None:
    from flax import serialization

    (tmp_path / CHECKPOINT_FILENAME).write_bytes(serialization.msgpack_serialize({"a": 1}))
    with pytest.raises(ValueError, match="not a dlcourse checkpoint"):
        load_checkpoint(tmp_path, fresh(key))


def test_extra_layer_raises(saved, key) -> None:
    directory, _ = saved
    params = params_tree(key)
    params["fc3"] = {"W": jnp.zeros((2, 2)), "b": jnp.zeros(2)}
    like = fresh(key, params=params, opt_state=optimizer().init(params))
    with pytest.raises(ValueError, match=r"params has keys .*missing from the file: \['fc3'\]"):
        load_checkpoint(directory, like)


def test_shape_mismatch_names_leaf_and_both_shapes(saved, key) -> None:
    directory, _ = saved
    params = params_tree(key, fc1_shape=(5, 4))
    params["fc2"]["W"] = jnp.zeros((2, 5))
    like = fresh(key, params=params, opt_state=optimizer().init(params))
    with pytest.raises(ValueError, match=r"params/fc1/W has shape \(3, 4\) .* \(5, 4\)"):
        load_checkpoint(directory, like)


def test_dtype_mismatch_raises(saved, key) -> None:
    directory, _ = saved
    params = params_tree(key)
    params["fc2"]["b"] = params["fc2"]["b"].astype(jnp.bfloat16)
    with pytest.raises(ValueError, match=r"params/fc2/b has dtype float32 .* bfloat16"):
        load_checkpoint(directory, fresh(key, params=params))


def test_opt_state_mismatch_raises(saved, key) -> None:
    directory, _ = saved
    like = fresh(key)
    like = like._replace(opt_state=optax.sgd(0.1, momentum=0.9).init(like.params))
    with pytest.raises(ValueError, match=r"opt_state"):
        load_checkpoint(directory, like)


def test_key_mismatch_raises(saved, key) -> None:
    directory, _ = saved
    with pytest.raises(ValueError, match=r"key has shape \(2,\) .* \(3,\)"):
        load_checkpoint(directory, fresh(key, key=jnp.zeros(3, jnp.uint32)))


@pytest.mark.parametrize("where", ["params", "state", "opt_state"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_checkpoint_is_refused(saved, key, where, bad) -> None:
    directory, original = saved
    before = (directory / CHECKPOINT_FILENAME).read_bytes()
    tree = getattr(original, where)
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    i = next(j for j, x in enumerate(leaves) if jnp.issubdtype(x.dtype, jnp.floating))
    leaves[i] = leaves[i].at[0].set(bad)
    broken = original._replace(epoch=3, **{where: jax.tree_util.tree_unflatten(treedef, leaves)})
    if where == "opt_state" and np.isinf(bad):
        save_checkpoint(directory, broken)  # optax may hold +inf (reduce_on_plateau)
        return
    with pytest.raises(ValueError, match=rf"epoch 3 .*{where}/"):
        save_checkpoint(directory, broken)
    assert (directory / CHECKPOINT_FILENAME).read_bytes() == before
    assert os.listdir(directory) == [CHECKPOINT_FILENAME]


def test_unserializable_meta_leaves_previous_file(saved, key) -> None:
    directory, original = saved
    before = (directory / CHECKPOINT_FILENAME).read_bytes()
    with pytest.raises(TypeError, match="meta must hold only JSON-able values"):
        save_checkpoint(directory, original._replace(epoch=3, meta={"f": object()}))
    assert (directory / CHECKPOINT_FILENAME).read_bytes() == before


def test_numpy_scalars_in_history_are_stored_as_numbers(tmp_path, key) -> None:
    history = [{"loss": np.float32(0.25), "acc": jnp.asarray(0.5), "n": np.int64(3)}]
    save_checkpoint(tmp_path, trained(key)._replace(history=history))
    assert load_checkpoint(tmp_path, fresh(key)).history == [{"loss": 0.25, "acc": 0.5, "n": 3}]


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"epoch": -1}, ValueError, "epoch must be >= 0"),
        ({"epoch": 1.5}, TypeError, "epoch must be an int"),
        ({"key": jnp.zeros(2, jnp.float32)}, TypeError, "key must be"),
        ({"meta": [1]}, TypeError, "meta must be a dict"),
    ],
)
def test_bad_arguments_raise(tmp_path, key, changes, error, match) -> None:
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path, trained(key)._replace(**changes))
    assert not (tmp_path / CHECKPOINT_FILENAME).exists()
