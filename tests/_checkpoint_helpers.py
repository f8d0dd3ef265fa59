"""Shared checkpoints for tests/test_checkpoint.py and tests/test_checkpoint_format.py."""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import optax

from dlcourse.checkpoint import Checkpoint, save_checkpoint

META = {"model": {"name": "mlp", "hidden": [4, 2]}, "optimizer": "adam", "lr": 1e-3}


def params_tree(key: jax.Array, fc1_shape: tuple[int, int] = (3, 4)) -> dict:
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


def optimizer() -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(1e-4), optax.adam(1e-3))


def trained(key: jax.Array) -> Checkpoint:
    """A checkpoint after two optimizer steps, with non-trivial values everywhere."""
    params = params_tree(key)
    opt = optimizer()
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


def fresh(key: jax.Array, /, **changes) -> Checkpoint:
    """What a trainer would pass as `like`: a fresh init with the same structure."""
    params = params_tree(jax.random.fold_in(key, 1))
    like = Checkpoint(
        params=params,
        state={"bn": {"mean": jnp.zeros(3, jnp.float32), "steps": jnp.array(0, jnp.int32)}},
        opt_state=optimizer().init(params),
        epoch=0,
        key=jax.random.PRNGKey(0),
        history=[],
        meta=dict(META),
    )
    return like._replace(**changes)


def save_trained(tmp_path: pathlib.Path, key: jax.Array) -> tuple[pathlib.Path, Checkpoint]:
    """The ``saved`` fixture of both test files: a trained checkpoint written to disk."""
    directory = tmp_path / "run"
    original = trained(key)
    save_checkpoint(directory, original)
    return directory, original
