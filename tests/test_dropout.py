"""Dropout (§2.4.6) as a plain function: the rate, the scaling, the identity at evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.dropout import dropout, dropout_mask


def test_dropout_drops_at_rate_and_keeps_the_mean(key):
    x = jnp.ones((200, 500))
    y = dropout(x, 0.5, key=key, train=True)
    dropped = float(jnp.mean(y == 0))
    # 100,000 Bernoulli(0.5) draws: standard error 0.0016, so 0.01 is > 6 sigma.
    assert abs(dropped - 0.5) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 2.0])  # survivors scaled by 1/(1-p)
    assert abs(float(y.mean()) - 1.0) < 0.02


def test_dropout_is_identity_at_evaluation(key):
    x = jax.random.normal(key, (3, 4))
    np.testing.assert_array_equal(dropout(x, 0.5, key=key, train=False), x)
    np.testing.assert_array_equal(dropout(x, 0.0, key=key, train=True), x)


def test_dropout_mask_is_the_scaled_keep_mask(key):
    mask = dropout_mask(key, (1000,), 0.2)
    np.testing.assert_allclose(np.unique(mask), [0.0, 1.25])  # m / (1 - p)
    np.testing.assert_array_equal(dropout(jnp.ones(1000), 0.2, key=key, train=True), mask)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match=f"drop_rate={rate}"):
        dropout(jnp.ones(3), rate, key=jax.random.PRNGKey(0), train=True)


def test_dropout_in_training_needs_a_key():
    with pytest.raises(ValueError, match="needs a PRNG key"):
        dropout(jnp.ones(3), 0.5, train=True)
