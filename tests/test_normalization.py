"""The normalization kernels: batch norm (Ioffe & Szegedy 2015) and local response
normalization (Krizhevsky et al. 2012, §3.3), on hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.normalization import batch_norm_apply, batch_norm_init, local_response_norm


def test_batch_norm_init_shapes_and_values():
    params, state = batch_norm_init(3)
    np.testing.assert_array_equal(params["gamma"], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(params["beta"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(state["mean"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(state["var"], [1.0, 1.0, 1.0])
    assert set(batch_norm_init(3, scale=False, center=False)[0]) == set()


def test_batch_norm_hand_value():
    # Channel 0: batch (1, 3), mean 2, biased variance 1; channel 1: (0, 0), mean 0, var 0.
    x = jnp.array([[1.0, 0.0], [3.0, 0.0]])
    params = {"gamma": jnp.array([2.0, 1.0]), "beta": jnp.array([0.5, 0.25])}
    _, state = batch_norm_init(2)
    eps = 1e-5
    y, new_state = batch_norm_apply(params, state, x, train=True, momentum=0.5, eps=eps)
    scale = 1.0 / np.sqrt(1.0 + eps)
    np.testing.assert_allclose(y, [[0.5 - 2.0 * scale, 0.25], [0.5 + 2.0 * scale, 0.25]],
                               rtol=1e-6)
    # Running averages: 0.5 * (0, 0) + 0.5 * (2, 0) and 0.5 * (1, 1) + 0.5 * (1, 0).
    np.testing.assert_allclose(new_state["mean"], [1.0, 0.0])
    np.testing.assert_allclose(new_state["var"], [1.0, 0.5])
    # Evaluation: (x - 1) / sqrt(1 + eps) * 2 + 0.5 on channel 0; the state is returned as is.
    y, same = batch_norm_apply(params, new_state, x, train=False, eps=eps)
    np.testing.assert_allclose(y[:, 0], [0.5, 0.5 + 4.0 * scale], rtol=1e-6)
    assert same is new_state


def test_batch_norm_running_statistics_get_no_gradient():
    x = jnp.array([[1.0], [3.0]])
    params, state = batch_norm_init(1)

    def running_mean(x):
        return batch_norm_apply(params, state, x, train=True)[1]["mean"].sum()

    np.testing.assert_array_equal(jax.grad(running_mean)(x), jnp.zeros_like(x))


def test_batch_norm_checks_momentum_and_eps():
    params, state = batch_norm_init(1)
    with pytest.raises(ValueError, match="batch_norm_apply: momentum.*momentum=1.0"):
        batch_norm_apply(params, state, jnp.ones((2, 1)), momentum=1.0)
    with pytest.raises(ValueError, match="eps=0"):
        batch_norm_apply(params, state, jnp.ones((2, 1)), eps=0)


def test_local_response_norm_hand_value():
    # Four channels, n = 2 (even): channel i sums the squares of channels i - 1 and i.
    x = jnp.array([[1.0, 2.0, 3.0, 4.0]])
    y = local_response_norm(x, size=2, alpha=0.5, beta=1.0, k=1.0)
    sums = np.array([1.0, 1.0 + 4.0, 4.0 + 9.0, 9.0 + 16.0])
    np.testing.assert_allclose(y, x / (1.0 + 0.5 * sums), rtol=1e-6)
    # NHWC: the window runs over the last axis only.
    x = jnp.arange(1.0, 9.0).reshape(2, 1, 1, 4)
    y = local_response_norm(x, size=3, alpha=1.0, beta=0.5, k=2.0)
    b = x[1, 0, 0]
    np.testing.assert_allclose(y[1, 0, 0, 1], b[1] / jnp.sqrt(2.0 + b[0]**2 + b[1]**2 + b[2]**2),
                               rtol=1e-6)


def test_local_response_norm_checks_its_hyper_parameters():
    with pytest.raises(ValueError, match="size=0"):
        local_response_norm(jnp.ones((1, 3)), size=0)
    with pytest.raises(ValueError, match="alpha=-1"):
        local_response_norm(jnp.ones((1, 3)), alpha=-1)
