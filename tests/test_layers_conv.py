"""Convolution and pooling layers (§3.1) under the layer protocol."""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.layers import (
    AdaptiveMeanPool,
    Conv,
    Flatten,
    GlobalMeanPool,
    MaxPool,
    MeanPool,
    ShapeError,
    abstract_init,
    serial,
)
from dlcourse.layers.conv import pooled_conv


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def test_conv_init_shapes_and_output_size(key):
    # Course §3.1: W_o = (W_i - k + 2p)/s + 1 = (7 - 3 + 2)/2 + 1 = 4.
    # Shapes through jax.eval_shape (abstract_init): no weights drawn, nothing compiled.
    shape, params, state = abstract_init(Conv(4, 3, stride=2, padding=1), (7, 7, 2))
    assert shape == (4, 4, 4) and state == {}
    assert _shapes(params) == {"W": (3, 3, 2, 4), "b": (4,)}
    shape, params, _ = abstract_init(Conv(8, (1, 7), padding="SAME", bias=False, groups=2),
                                     (5, 9, 4))
    assert shape == (5, 9, 8) and _shapes(params) == {"W": (1, 7, 2, 8)}
    shape, params, _ = abstract_init(Conv(5, 3), (10, 3))  # 1-D from the input's rank
    assert shape == (8, 5) and _shapes(params) == {"W": (3, 3, 5), "b": (5,)}


def test_conv_hand_value_1d():
    # y[i] = b + sum_t W[t] x[i + t] with W = (1, 2, 3), b = 1, x = 0..4: 1+8, 1+14, 1+20.
    layer = Conv(1, 3, activation="relu")
    params = {"W": jnp.array([1.0, 2.0, 3.0]).reshape(3, 1, 1), "b": jnp.array([1.0])}
    y, _ = layer.apply(params, {}, jnp.arange(5.0).reshape(1, 5, 1))
    np.testing.assert_allclose(y[0, :, 0], [9.0, 15.0, 21.0])


def test_conv_explicit_backprop_matches_autodiff(key):
    shape_in = (6, 6, 3)
    _, params, _ = Conv(4, 3, stride=2, padding=1).init(key, shape_in)
    x = jax.random.normal(key, (2, *shape_in))

    def loss(p, explicit_backprop):
        layer = Conv(4, 3, stride=2, padding=1, explicit_backprop=explicit_backprop)
        y, _ = layer.apply(p, {}, x)
        return jnp.sum(jnp.sin(y))

    chex.assert_trees_all_close(jax.grad(loss)(params, True), jax.grad(loss)(params, False),
                                rtol=1e-5, atol=1e-5)  # float32 sums in another order


@pytest.mark.parametrize("make", [
    lambda e: MaxPool(3, 2, padding=1, explicit_backprop=e),
    lambda e: MeanPool(3, 2, padding="SAME", count_include_pad=False, explicit_backprop=e),
], ids=["max", "mean"])
def test_pool_explicit_backprop_matches_autodiff(key, make):
    with jax.enable_x64(True):
        x = jax.random.normal(key, (2, 7, 7, 3), jnp.float64)

        def loss(x, explicit_backprop):
            y, _ = make(explicit_backprop).apply({}, {}, x)
            return jnp.sum(jnp.sin(y))

        # float64: the explicit backward computes the same sums as autodiff.
        chex.assert_trees_all_close(jax.grad(loss)(x, True), jax.grad(loss)(x, False),
                                    rtol=1e-10)


def test_kernel_larger_than_padded_input_names_layer_and_shapes(key):
    net = serial(("features", serial(Conv(4, 3), ("big", Conv(4, 7, padding=1)))), Flatten())
    with pytest.raises(ShapeError) as err:
        net.init(key, (6, 6, 1))
    message = str(err.value)
    assert "'features.big' (Conv)" in message
    assert "(4, 4, 4)" in message and "kernel=(7, 7)" in message and "padded input" in message
    assert isinstance(err.value, ValueError)


def test_pools_and_global_pool(key):
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    for layer, shape, expected in [
        (MaxPool(2), (2, 2, 1), [[5.0, 7.0], [13.0, 15.0]]),
        (MeanPool(2), (2, 2, 1), [[2.5, 4.5], [10.5, 12.5]]),
        (MaxPool(3, 1, padding=1), (4, 4, 1), None),
    ]:
        out, params, state = layer.init(key, (4, 4, 1))
        assert out == shape and params == {} and state == {}
        y, _ = layer.apply({}, {}, x)
        assert y.shape == (1, *shape)
        if expected is not None:
            np.testing.assert_allclose(y[0, :, :, 0], expected)
    assert MaxPool(3, 2).init(key, (55, 55, 96))[0] == (27, 27, 96)  # AlexNet's pool1
    assert GlobalMeanPool().init(key, (4, 4, 3))[0] == (3,)
    y, _ = GlobalMeanPool().apply({}, {}, x)
    np.testing.assert_allclose(y, [[7.5]])


def test_mean_pool_hand_values(key):
    # x = 0..8 on a 3×3 map.  A 2×2 window of stride 1: the means of the four 2×2 blocks.
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    y, _ = MeanPool(2, 1).apply({}, {}, x)
    np.testing.assert_allclose(y[0, :, :, 0], [[(0 + 1 + 3 + 4) / 4, (1 + 2 + 4 + 5) / 4],
                                               [(3 + 4 + 6 + 7) / 4, (4 + 5 + 7 + 8) / 4]])
    # 3×3 "SAME" of stride 1: the corner (0, 0) window covers 0, 1, 3, 4 and five zeros.
    y, _ = MeanPool(3, 1, "SAME").apply({}, {}, x)
    assert y.shape == (1, 3, 3, 1)
    np.testing.assert_allclose(y[0, 0, 0, 0], (0 + 1 + 3 + 4) / 9)
    np.testing.assert_allclose(y[0, 1, 1, 0], 36 / 9)
    # count_include_pad=False divides by the real positions only (TensorFlow's "SAME").
    y, _ = MeanPool(3, 1, "SAME", count_include_pad=False).apply({}, {}, x)
    np.testing.assert_allclose(y[0, 0, 0, 0], (0 + 1 + 3 + 4) / 4)
    np.testing.assert_allclose(y[0, 0, 1, 0], (0 + 1 + 2 + 3 + 4 + 5) / 6)
    np.testing.assert_allclose(y[0, 1, 1, 0], 36 / 9)
    # 1-D: windows of 2 on a signal (L, C) = (4, 1).
    y, _ = MeanPool(2).apply({}, {}, jnp.array([1.0, 3.0, 5.0, 9.0]).reshape(1, 4, 1))
    np.testing.assert_allclose(y[0, :, 0], [2.0, 7.0])


def test_global_mean_pool_hand_values(key):
    # Two examples, a 2×2 map, two channels: y_c = (1/HW) sum_ij x_ijc per example.
    x = jnp.array([[[[1.0, 10.0], [2.0, 20.0]], [[3.0, 30.0], [4.0, 40.0]]],
                   [[[0.0, -1.0], [0.0, -1.0]], [[0.0, -1.0], [8.0, 3.0]]]])
    y, _ = GlobalMeanPool().apply({}, {}, x)
    np.testing.assert_allclose(y, [[2.5, 25.0], [2.0, 0.0]])
    assert GlobalMeanPool().init(key, (2, 2, 2))[0] == (2,)
    # 1-D signals (L, C): the mean over time.
    y, _ = GlobalMeanPool().apply({}, {}, jnp.array([[[1.0], [2.0], [6.0]]]))
    np.testing.assert_allclose(y, [[3.0]])


def test_adaptive_mean_pool_uses_pytorch_bins(key):
    x = jnp.arange(25.0).reshape(1, 5, 5, 1)
    assert AdaptiveMeanPool(2).init(key, (5, 5, 1))[0] == (2, 2, 1)
    y, _ = AdaptiveMeanPool(2).apply({}, {}, x)
    # bins of 5 into 2: [0, 3) and [2, 5), overlapping at index 2.
    expected = [[x[0, :3, :3].mean(), x[0, :3, 2:].mean()], [x[0, 2:, :3].mean(),
                                                            x[0, 2:, 2:].mean()]]
    np.testing.assert_allclose(y[0, :, :, 0], expected)


def test_conv_hyper_parameters_checked_eagerly(key):
    with pytest.raises(ValueError, match="filters=0"):
        Conv(0, 3)
    with pytest.raises(ValueError, match="groups=3 must divide filters=4"):
        Conv(4, 3, groups=3)
    with pytest.raises(ValueError, match="kernel=\\(3, 0\\)"):
        Conv(4, (3, 0))
    with pytest.raises(ValueError, match="window=0"):
        MeanPool(0)
    with pytest.raises(ShapeError, match="image \\(H, W, C\\) or a signal \\(L, C\\)"):
        Conv(4, 3).init(key, (10,))
    with pytest.raises(ShapeError, match="groups=2 must divide the input channels 3"):
        Conv(4, 3, groups=2).init(key, (5, 5, 3))


# --- a convolution and its max pooling, pooled before the bias and the activation ------


def _one_by_one(net, params, x):
    """The chain's children applied in turn: the unfused reference of ``serial``."""
    for name, layer in net.info["children"]:
        x, _ = layer.apply(params.get(name, {}), {}, x)
    return x


@pytest.mark.parametrize("conv, pool, shape", [
    (Conv(6, 5, activation="relu"), MaxPool(2), (16, 16, 1)),       # LeNet-5's C1-S2
    (Conv(4, 3, padding=1), MaxPool(3, 2), (9, 9, 2)),               # no activation, overlapping
    (Conv(3, 3, activation="relu", bias=False), MaxPool(2, padding=1), (8, 8, 2)),
    (Conv(4, 3, activation="relu"), MaxPool(2), (11, 3)),            # 1-D, the floor drops one
])
def test_serial_pools_a_conv_before_its_bias_and_relu(key, conv, pool, shape):
    # max_i relu(z_i + b) = relu(max_i z_i + b): the same values bit for bit (adding b
    # rounds monotonically) and, in float64 where no two window entries tie, the same
    # gradient (1e-12: the bias's sum runs over other positions in another order).
    net = serial(conv, pool, Flatten())
    assert set(net.apply.keywords["pooled"]) == {0}
    with jax.enable_x64():
        _, params, _ = net.init(key, shape)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        if conv.info["bias"]:  # not the zeros of init: a bias that moves the maxima
            params["conv1"]["b"] = jnp.linspace(-0.5, 0.5, conv.info["filters"])
        x = jax.random.normal(jax.random.fold_in(key, 1), (3, *shape), jnp.float64)
        y, _ = net.apply(params, {}, x)
        np.testing.assert_array_equal(y, _one_by_one(net, params, x))

        def loss(f):
            return lambda p, x: jnp.sum(jnp.sin(f(p, x)))

        got = jax.grad(loss(lambda p, x: net.apply(p, {}, x)[0]), (0, 1))(params, x)
        want = jax.grad(loss(partial(_one_by_one, net)), (0, 1))(params, x)
        chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-12)


def test_lenet5_adds_its_conv_biases_after_pooling(key):
    # The pooled pairs are LeNet-5's C1-S2 and C3-S4: its traced step adds conv1's bias on
    # (N, 14, 14, 6) and never on (N, 28, 28, 6).
    from dlcourse.nets import lenet5

    net = lenet5()
    assert set(net.apply.keywords["pooled"]) == {0, 2}
    _, params, _ = net.init(key, (32, 32, 1))
    x = jnp.zeros((2, 32, 32, 1))
    jaxpr = jax.make_jaxpr(lambda p: jax.grad(lambda p: net.apply(p, {}, x)[0].sum())(p))(params)
    adds = {tuple(e.outvars[0].aval.shape) for e in jaxpr.jaxpr.eqns if e.primitive.name == "add"}
    assert (2, 14, 14, 6) in adds and (2, 28, 28, 6) not in adds


@pytest.mark.parametrize("conv, pool", [
    (Conv(4, 3, activation="sigmoid"), MaxPool(2)),   # saturates: rounding ties move the gradient
    (Conv(4, 3, activation="relu"), MeanPool(2)),     # relu does not commute with a mean
    (Conv(4, 3, activation="relu", explicit_backprop=True), MaxPool(2)),
    (Conv(4, 3, activation="relu"), MaxPool(2, explicit_backprop=True)),
])
def test_serial_leaves_other_pairs_as_they_are(conv, pool):
    assert pooled_conv(conv, pool) is None
    assert serial(conv, pool).apply.keywords["pooled"] == {}


def test_pooled_conv_is_exact_in_bfloat16(key):
    # Adding the bias rounds monotonically in any float format: under mixed precision
    # (bfloat16 compute) the pooled chain still equals its children one by one, bit for bit.
    net = serial(Conv(6, 5, activation="relu"), MaxPool(2), Conv(4, 3), MaxPool(2), Flatten())
    assert set(net.apply.keywords["pooled"]) == {0, 2}
    _, params, _ = net.init(key, (16, 16, 1))
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    params["conv1"]["b"] = jnp.linspace(-0.5, 0.5, 6, dtype=jnp.bfloat16)
    x = jax.random.normal(jax.random.fold_in(key, 1), (4, 16, 16, 1), jnp.bfloat16)
    y, _ = net.apply(params, {}, x)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(y, np.float32),
                                  np.asarray(_one_by_one(net, params, x), np.float32))
