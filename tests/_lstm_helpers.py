"""Shared data for the LSTM's tests (tests/test_lstm.py, tests/test_lstm_bptt.py)."""

import jax
import jax.numpy as jnp
import numpy as np

from dlcourse.rnn import lstm_init

B, T, D, H = 3, 6, 4, 5


def seeded_rng(key, salt=0):
    """A numpy generator seeded by the test's key: test data without compiling jax.random."""
    return np.random.default_rng([*np.asarray(key).ravel().tolist(), salt])


def random_params(key, variant, dtype=jnp.float64):
    """Parameters with every leaf perturbed, so zero biases or peepholes hide nothing."""
    params = lstm_init(key, D, H, variant=variant, dtype=dtype)
    rng = seeded_rng(key, 100)
    return jax.tree.map(lambda p: p + jnp.asarray(0.4 * rng.normal(size=p.shape), dtype), params)


def lstm_data(key, dtype=jnp.float64, salt=0):
    rng = seeded_rng(key, salt)
    xs = jnp.asarray(rng.normal(size=(B, T, D)), dtype)
    carry0 = {"h": jnp.asarray(0.5 * rng.normal(size=(B, H)), dtype),
              "C": jnp.asarray(rng.normal(size=(B, H)), dtype)}
    dhs = jnp.asarray(rng.normal(size=(B, T, H)), dtype)
    return xs, carry0, dhs
