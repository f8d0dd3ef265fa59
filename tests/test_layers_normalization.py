"""Normalization layers under the layer protocol: BatchNorm, LocalResponseNorm, conv_bn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.layers import BatchNorm, LocalResponseNorm, abstract_init, conv_bn


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def test_batch_norm_train_eval_and_running_state(key):
    layer = BatchNorm(momentum=0.9, eps=1e-5)
    shape, params, state = layer.init(key, (3, 3, 2))
    assert shape == (3, 3, 2)
    assert _shapes(params) == {"gamma": (2,), "beta": (2,)}
    assert _shapes(state) == {"mean": (2,), "var": (2,)}
    x = 3.0 + 2.0 * jax.random.normal(key, (4, 3, 3, 2))
    params = {"gamma": jnp.array([1.0, 2.0]), "beta": jnp.array([0.0, -1.0])}
    y, new_state = layer.apply(params, state, x, train=True)
    mu, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    # Batch statistics over every axis but the channels: y has mean beta and std gamma.
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), [0.0, -1.0], atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), [1.0, 2.0], rtol=1e-3)
    # Running averages after one step: m * (0, 1) + (1 - m) * (batch mean, biased var).
    np.testing.assert_allclose(new_state["mean"], 0.1 * mu, rtol=1e-5)
    np.testing.assert_allclose(new_state["var"], 0.9 + 0.1 * var, rtol=1e-5)
    # Evaluation uses the running statistics and leaves them alone.
    y_eval, same = layer.apply(params, new_state, x, train=False)
    expected = (x - new_state["mean"]) / jnp.sqrt(new_state["var"] + 1e-5) * params["gamma"]
    np.testing.assert_allclose(y_eval, expected + params["beta"], rtol=1e-5, atol=1e-5)
    assert same is new_state
    assert _shapes(BatchNorm(scale=False).init(key, (4,))[1]) == {"beta": (4,)}
    with pytest.raises(ValueError, match="momentum=0.1 is momentum=0.9"):
        BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match="BatchNorm: eps"):
        BatchNorm(eps=-1.0)


def test_local_response_norm_hand_value(key):
    # One channel: b = a / (k + alpha a^2)^beta with the paper's k=2, alpha=1e-4, beta=0.75.
    x = jnp.array([[3.0]])
    y, _ = LocalResponseNorm().apply({}, {}, x)
    np.testing.assert_allclose(y, [[3.0 / (2.0 + 1e-4 * 9.0) ** 0.75]], rtol=1e-6)
    # Three channels, n = 3: channel 1 sums the squares of channels 0, 1, 2.
    x = jnp.array([[1.0, 2.0, 3.0]])
    y, _ = LocalResponseNorm(3, alpha=1.0, beta=1.0, k=0.0).apply({}, {}, x)
    np.testing.assert_allclose(y, [[1.0 / 5.0, 2.0 / 14.0, 3.0 / 13.0]], rtol=1e-6)
    assert LocalResponseNorm().init(key, (5, 5, 8)) == ((5, 5, 8), {}, {})
    with pytest.raises(ValueError, match="LocalResponseNorm: size"):
        LocalResponseNorm(0)


def test_conv_bn_is_a_bias_free_conv_then_bn_then_relu():
    shape, params, state = abstract_init(conv_bn(8, 3, stride=2, padding=1), (6, 6, 4))
    assert shape == (3, 3, 8)
    assert _shapes(params) == {"conv": {"W": (3, 3, 4, 8)}, "bn": {"gamma": (8,), "beta": (8,)}}
    assert _shapes(state) == {"bn": {"mean": (8,), "var": (8,)}}
    names = [n for n, _ in conv_bn(8, 3, activation=None).info["children"]]
    assert names == ["conv", "bn"]
