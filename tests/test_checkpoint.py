"""Tests for dlcourse.checkpoint: bit-identical round trips, corruption and mismatch errors,
and atomic writes that never lose the last good checkpoint."""

from __future__ import annotations

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse import checkpoint as ckpt
from dlcourse.checkpoint import (
    CHECKPOINT_FILENAME,
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

META = {"model": {"name": "mlp", "hidden": [4, 2]}, "optimizer": "adam", "lr": 1e-3}


def _params(key: jax.Array, fc1_shape: tuple[int, int] = (3, 4)) -> dict:
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "fc1": {
            "W": jax.random.normal(k1, fc1_shape, jnp.float32),
            "b": jax.random.normal(k2, (fc1_shape[0],), jnp.float32),
        },
        "fc2": {
            "W": jax.random.normal(k3, (2, 3), jnp.float32),
            "b": jax.random.normal(k4, (2,), jnp.float32),
        },
    }


def _optimizer() -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(1e-4), optax.adam(1e-3))


def _trained(key: jax.Array) -> Checkpoint:
    """A checkpoint after two optimizer steps, with non-trivial values everywhere."""
    params = _params(key)
    opt = _optimizer()
    opt_state = opt.init(params)
    for _ in range(2):
        grads = jax.tree_util.tree_map(lambda p: 0.5 * p + 0.1, params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    state = {"bn": {"mean": jnp.arange(3, dtype=jnp.float32), "steps": jnp.array(7, jnp.int32)}}
    history = [
        {"epoch": 1, "loss": 0.6931471805599453, "accuracy": 0.5},
        {"epoch": 2, "loss": 0.1 + 0.2, "accuracy": 1 / 3},
    ]
    return Checkpoint(
        params=params,
        state=state,
        opt_state=opt_state,
        epoch=2,
        key=jax.random.split(jax.random.PRNGKey(42))[1],
        history=history,
        meta=META,
    )


def _fresh(key: jax.Array, /, **changes) -> Checkpoint:
    """What a trainer would pass as `like`: a fresh init with the same structure."""
    params = _params(jax.random.fold_in(key, 1))
    like = Checkpoint(
        params=params,
        state={"bn": {"mean": jnp.zeros(3, jnp.float32), "steps": jnp.array(0, jnp.int32)}},
        opt_state=_optimizer().init(params),
        epoch=0,
        key=jax.random.PRNGKey(0),
        history=[],
        meta=dict(META),
    )
    return like._replace(**changes)


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
    directory = tmp_path / "run"
    original = _trained(key)
    save_checkpoint(directory, original)
    return directory, original


def test_round_trip_is_bit_identical(saved, key) -> None:
    directory, original = saved
    restored = load_checkpoint(directory, _fresh(key))
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
    restored = load_checkpoint(directory, _fresh(key))
    opt = _optimizer()

    def step(params, opt_state):
        grads = jax.tree_util.tree_map(jnp.sin, params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    _assert_trees_identical(
        step(original.params, original.opt_state), step(restored.params, restored.opt_state)
    )


def test_typed_key_round_trip(tmp_path, key) -> None:
    original = _trained(key)._replace(key=jax.random.key(3))
    save_checkpoint(tmp_path, original)
    restored = load_checkpoint(tmp_path, _fresh(key, key=jax.random.key(0)))
    assert restored.key.dtype == original.key.dtype
    np.testing.assert_array_equal(
        np.asarray(jax.random.key_data(restored.key)),
        np.asarray(jax.random.key_data(original.key)),
    )


def test_missing_file_returns_none(tmp_path, key) -> None:
    assert load_checkpoint(tmp_path / "nowhere", _fresh(key)) is None
    assert load_checkpoint(tmp_path, _fresh(key)) is None
    assert latest_checkpoint(tmp_path) is None


def test_save_creates_directory_and_returns_path(tmp_path, key) -> None:
    directory = tmp_path / "a" / "b"
    path = save_checkpoint(str(directory), _trained(key))
    assert path == directory / CHECKPOINT_FILENAME and path.is_file()
    assert latest_checkpoint(directory) == path
    assert os.listdir(directory) == [CHECKPOINT_FILENAME]  # no temporary file left


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
        load_checkpoint(directory, _fresh(key))
    assert "--checkpoint-dir" in str(info.value)


def test_every_flipped_byte_is_detected(saved, key) -> None:
    directory, _ = saved
    path = directory / CHECKPOINT_FILENAME
    data = path.read_bytes()
    like = _fresh(key)
    for i in range(0, len(data), max(1, len(data) // 200)):
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :])
        with pytest.raises(ValueError, match=CHECKPOINT_FILENAME):
            load_checkpoint(directory, like)


def test_unknown_version_raises(tmp_path, key, monkeypatch) -> None:
    monkeypatch.setattr(ckpt, "FORMAT_VERSION", 99)
    save_checkpoint(tmp_path, _trained(key))
    monkeypatch.undo()
    with pytest.raises(ValueError, match=rf"{CHECKPOINT_FILENAME}.*version 99.*reads version 1"):
        load_checkpoint(tmp_path, _fresh(key))


def test_not_a_checkpoint_raises(tmp_path, key) -> None:
    from flax import serialization

    (tmp_path / CHECKPOINT_FILENAME).write_bytes(serialization.msgpack_serialize({"a": 1}))
    with pytest.raises(ValueError, match="not a dlcourse checkpoint"):
        load_checkpoint(tmp_path, _fresh(key))


def test_extra_layer_raises(saved, key) -> None:
    directory, _ = saved
    params = _params(key)
    params["fc3"] = {"W": jnp.zeros((2, 2)), "b": jnp.zeros(2)}
    like = _fresh(key, params=params, opt_state=_optimizer().init(params))
    with pytest.raises(ValueError, match=r"params has keys .*missing from the file: \['fc3'\]"):
        load_checkpoint(directory, like)


def test_shape_mismatch_names_leaf_and_both_shapes(saved, key) -> None:
    directory, _ = saved
    params = _params(key, fc1_shape=(5, 4))
    params["fc2"]["W"] = jnp.zeros((2, 5))
    like = _fresh(key, params=params, opt_state=_optimizer().init(params))
    with pytest.raises(ValueError, match=r"params/fc1/W has shape \(3, 4\) .* \(5, 4\)"):
        load_checkpoint(directory, like)


def test_dtype_mismatch_raises(saved, key) -> None:
    directory, _ = saved
    params = _params(key)
    params["fc2"]["b"] = params["fc2"]["b"].astype(jnp.bfloat16)
    with pytest.raises(ValueError, match=r"params/fc2/b has dtype float32 .* bfloat16"):
        load_checkpoint(directory, _fresh(key, params=params))


def test_opt_state_mismatch_raises(saved, key) -> None:
    directory, _ = saved
    like = _fresh(key)
    like = like._replace(opt_state=optax.sgd(0.1, momentum=0.9).init(like.params))
    with pytest.raises(ValueError, match=r"opt_state"):
        load_checkpoint(directory, like)


def test_key_mismatch_raises(saved, key) -> None:
    directory, _ = saved
    with pytest.raises(ValueError, match=r"key has shape \(2,\) .* \(3,\)"):
        load_checkpoint(directory, _fresh(key, key=jnp.zeros(3, jnp.uint32)))


def test_meta_mismatch_names_key_and_values(saved, key) -> None:
    directory, _ = saved
    meta = dict(META, lr=0.1)
    with pytest.raises(ValueError, match=r"meta differs: lr=0\.001 in the file but 0\.1"):
        load_checkpoint(directory, _fresh(key, meta=meta))
    meta = dict(META, extra=True)
    with pytest.raises(ValueError, match=r"extra='<missing>' in the file but True"):
        load_checkpoint(directory, _fresh(key, meta=meta))


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
    assert load_checkpoint(directory, _fresh(key)).epoch == 2


def test_stray_temporary_files_are_ignored(saved, key) -> None:
    directory, _ = saved
    stray = directory / ".checkpoint.msgpack.123.abc.tmp"
    stray.write_bytes(b"half a checkpoint")
    assert load_checkpoint(directory, _fresh(key)).epoch == 2
    assert stray.read_bytes() == b"half a checkpoint"  # left alone


def test_overwrite_replaces_with_newer_epoch(saved, key) -> None:
    directory, original = saved
    save_checkpoint(directory, original._replace(epoch=5, history=original.history + [{}]))
    restored = load_checkpoint(directory, _fresh(key))
    assert restored.epoch == 5 and restored.history[-1] == {}


def test_numpy_scalars_in_history_are_stored_as_numbers(tmp_path, key) -> None:
    history = [{"loss": np.float32(0.25), "acc": jnp.asarray(0.5), "n": np.int64(3)}]
    save_checkpoint(tmp_path, _trained(key)._replace(history=history))
    assert load_checkpoint(tmp_path, _fresh(key)).history == [{"loss": 0.25, "acc": 0.5, "n": 3}]


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
        save_checkpoint(tmp_path, _trained(key)._replace(**changes))
    assert not (tmp_path / CHECKPOINT_FILENAME).exists()


def test_directory_that_is_a_file_raises(tmp_path, key) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        save_checkpoint(not_a_dir, _trained(key))


# --- what a command line reads before building anything; Ctrl-C and kills (issue 12) ------


def test_mismatch_messages_speak_of_this_run(saved, key) -> None:
    directory, _ = saved
    with pytest.raises(ValueError) as info:
        load_checkpoint(directory, _fresh(key, meta=dict(META, lr=0.1)))
    assert "lr=0.001 in the file but 0.1 in this run" in str(info.value)
    with pytest.raises(ValueError) as info:
        load_checkpoint(directory, _fresh(key, params=_params(key, fc1_shape=(5, 4))))
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
    assert load_checkpoint(directory, _fresh(key)).epoch == 3  # the save finished first
    assert os.listdir(directory) == [CHECKPOINT_FILENAME]  # no temporary left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
