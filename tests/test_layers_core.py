"""The core layers under the layer protocol: Dense, Activation, Dropout, Flatten."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.activations import lecun_tanh
from dlcourse.layers import Activation, Conv, Dense, Dropout, Flatten, ShapeError, serial


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_layer_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        Dropout(rate)


def test_dropout_layer_protocol(key):
    layer = Dropout(0.2)
    shape, params, state = layer.init(key, (5, 7))
    assert shape == (5, 7) and params == {} and state == {}
    y, new_state = layer.apply(params, state, jnp.ones((2, 5, 7)), key=key, train=True)
    assert y.shape == (2, 5, 7) and new_state == {}


def test_dense_init_apply_and_value(key):
    layer = Dense(2, activation="relu")
    shape, params, state = layer.init(key, (3,))
    assert shape == (2,) and state == {}
    assert _shapes(params) == {"W": (2, 3), "b": (2,)}
    params = {"W": jnp.array([[1.0, -1.0, 0.0], [0.0, 1.0, 2.0]]), "b": jnp.array([0.5, -10.0])}
    y, _ = layer.apply(params, {}, jnp.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(y, [[0.0, 0.0]])  # relu(0.5 - 1) = 0, relu(-10 + 8) = 0
    y, _ = Dense(2).apply(params, {}, jnp.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(y, [[-0.5, -2.0]])


def test_dense_on_an_image_suggests_flatten(key):
    with pytest.raises(ShapeError, match=r"Flatten\(\)") as err:
        serial(Conv(4, 3), Dense(10)).init(key, (8, 8, 1))
    assert "'fc1' (Dense)" in str(err.value) and "(6, 6, 4)" in str(err.value)


def test_activation_layer(key):
    x = jnp.array([[1.0, 2.0, -3.0]])
    y, _ = Activation("softmax").apply({}, {}, x)
    np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(Activation("relu").apply({}, {}, x)[0], [[1.0, 2.0, 0.0]])
    np.testing.assert_allclose(lecun_tanh(jnp.array([1.0, -1.0])), [1.0, -1.0], atol=2e-4)
    np.testing.assert_allclose(Activation("lecun_tanh").apply({}, {}, x)[0], lecun_tanh(x))
    with pytest.raises(ValueError, match="activation='swish'"):
        Activation("swish")
    with pytest.raises(ValueError, match="activation='swish'"):
        Dense(3, activation="swish")


def test_flatten(key):
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    assert Flatten().init(key, (4, 4, 3))[0] == (48,)
    assert Flatten().apply({}, {}, x)[0].shape == (1, 16)


def test_dense_hyper_parameters_checked_eagerly():
    with pytest.raises(ValueError, match="units=\\(3, 4\\)"):
        Dense((3, 4))
