"""The dense layer (§2.2) and its explicit backward pass (§2.4.4) against jax.vjp."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.dense import dense_apply, dense_backward, dense_init


def test_dense_init_tree_and_shapes(key):
    params = dense_init(key, 5, 3)
    assert jax.tree.map(jnp.shape, params) == {"W": (3, 5), "b": (3,)}
    assert sum(p.size for p in jax.tree.leaves(params)) == 3 * 5 + 3
    assert params["W"].dtype == jnp.float32
    np.testing.assert_array_equal(params["b"], np.zeros(3))
    assert float(jnp.abs(params["W"]).max()) > 0  # the weights must not start at 0 (§2.4.5)
    with jax.enable_x64(True):
        assert dense_init(key, 2, 4, dtype=jnp.float64)["W"].dtype == jnp.float64


def test_dense_init_glorot_bound(key):
    """Glorot uniform (§2.4.5): W ~ U(-r, r) with r = sqrt(6 / (fan_in + units))."""
    params = dense_init(key, 300, 200)
    bound = np.sqrt(6 / (300 + 200))
    assert float(jnp.abs(params["W"]).max()) <= bound
    assert float(jnp.abs(params["W"]).max()) > 0.9 * bound


def test_dense_apply_hand_computed():
    """a = b + W h: W = [[1, 2], [3, -1], [0, 1]], b = [0.5, 0, -1], h = [2, -1]."""
    params = {"W": jnp.array([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]]),
              "b": jnp.array([0.5, 0.0, -1.0])}
    h = jnp.array([[2.0, -1.0], [0.0, 0.0]])
    # row 1: [0.5 + 2 - 2, 0 + 6 + 1, -1 + 0 - 1] = [0.5, 7, -2]; row 2: the bias
    a = dense_apply(params, h)
    chex.assert_shape(a, (2, 3))
    np.testing.assert_allclose(a, [[0.5, 7.0, -2.0], [0.5, 0.0, -1.0]])


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("batch_shape", [(4,), (2, 3)])
def test_dense_backward_matches_vjp(key, use_jit, batch_shape):
    k_init, k_x, k_da, k_b = jax.random.split(key, 4)
    with jax.enable_x64(True):
        params = dense_init(k_init, 5, 3, dtype=jnp.float64)
        params["b"] = jax.random.normal(k_b, (3,), jnp.float64)
        h = jax.random.normal(k_x, (*batch_shape, 5), jnp.float64)
        da = jax.random.normal(k_da, (*batch_shape, 3), jnp.float64)
        backward = jax.jit(dense_backward) if use_jit else dense_backward
        dparams, dh = backward(params, h, da)
        _, vjp = jax.vjp(dense_apply, params, h)
        expected_dparams, expected_dh = vjp(da)
        chex.assert_trees_all_equal_shapes(dparams, params)
        chex.assert_shape(dh, h.shape)
        chex.assert_trees_all_close(dparams, expected_dparams, rtol=1e-10)
        chex.assert_trees_all_close(dh, expected_dh, rtol=1e-10)


@pytest.mark.parametrize("name", ["fan_in", "units"])
@pytest.mark.parametrize("bad", [True, False, 0, -2, 3.0, None])
def test_dense_init_rejects_bad_sizes(key, name, bad):
    sizes = {"fan_in": 4, "units": 2, name: bad}
    with pytest.raises(ValueError, match=rf"dense_init: {name} must be a positive int, got "
                                         rf"{name}={bad!r}"):
        dense_init(key, sizes["fan_in"], sizes["units"])


def test_dense_apply_feature_mismatch(key):
    params = dense_init(key, 4, 2)
    with pytest.raises(ValueError, match="h has 5 features but W expects 4"):
        dense_apply(params, jnp.ones((3, 5)))
