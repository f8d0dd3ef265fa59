"""Layers and combinators of §2-§3 under the layer protocol, and parameter counting."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.dropout import dropout
from dlcourse.layers import (
    Activation,
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    LocalResponseNorm,
    MaxPool,
    ShapeError,
    abstract_init,
    conv_bn,
    count_params,
    lecun_tanh,
    parallel,
    param_count,
    residual,
    serial,
    serial_aux,
)


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


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match=f"drop_rate={rate}"):
        dropout(jnp.ones(3), rate, key=jax.random.PRNGKey(0), train=True)
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        Dropout(rate)


def test_dropout_layer_protocol(key):
    layer = Dropout(0.2)
    shape, params, state = layer.init(key, (5, 7))
    assert shape == (5, 7) and params == {} and state == {}
    y, new_state = layer.apply(params, state, jnp.ones((2, 5, 7)), key=key, train=True)
    assert y.shape == (2, 5, 7) and new_state == {}


def test_param_count():
    assert param_count({"a": {"W": jnp.zeros((3, 4)), "b": jnp.zeros(3)}, "c": jnp.zeros(2)}) == 17


# --- layers of §2-§3 under the layer protocol ---------------------------------------------


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


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


def test_conv_explicit_matches_autodiff(key):
    shape_in = (6, 6, 3)
    _, params, _ = Conv(4, 3, stride=2, padding=1).init(key, shape_in)
    x = jax.random.normal(key, (2, *shape_in))

    def loss(p, explicit):
        y, _ = Conv(4, 3, stride=2, padding=1, explicit=explicit).apply(p, {}, x)
        return jnp.sum(jnp.sin(y))

    chex.assert_trees_all_close(jax.grad(loss)(params, True), jax.grad(loss)(params, False),
                                rtol=1e-5, atol=1e-5)  # float32 sums in another order


def test_kernel_larger_than_padded_input_names_layer_and_shapes(key):
    net = serial(("features", serial(Conv(4, 3), ("big", Conv(4, 7, padding=1)))), Flatten())
    with pytest.raises(ShapeError) as err:
        net.init(key, (6, 6, 1))
    message = str(err.value)
    assert "'features.big' (Conv)" in message
    assert "(4, 4, 4)" in message and "kernel=(7, 7)" in message and "padded input" in message
    assert isinstance(err.value, ValueError)


def test_pools_flatten_and_global_pool(key):
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    for layer, shape, expected in [
        (MaxPool(2), (2, 2, 1), [[5.0, 7.0], [13.0, 15.0]]),
        (AvgPool(2), (2, 2, 1), [[2.5, 4.5], [10.5, 12.5]]),
        (MaxPool(3, 1, padding=1), (4, 4, 1), None),
    ]:
        out, params, state = layer.init(key, (4, 4, 1))
        assert out == shape and params == {} and state == {}
        y, _ = layer.apply({}, {}, x)
        assert y.shape == (1, *shape)
        if expected is not None:
            np.testing.assert_allclose(y[0, :, :, 0], expected)
    assert MaxPool(3, 2).init(key, (55, 55, 96))[0] == (27, 27, 96)  # AlexNet's pool1
    assert GlobalAvgPool().init(key, (4, 4, 3))[0] == (3,)
    y, _ = GlobalAvgPool().apply({}, {}, x)
    np.testing.assert_allclose(y, [[7.5]])
    assert Flatten().init(key, (4, 4, 3))[0] == (48,)
    assert Flatten().apply({}, {}, x)[0].shape == (1, 16)


def test_adaptive_avg_pool_uses_pytorch_bins(key):
    x = jnp.arange(25.0).reshape(1, 5, 5, 1)
    assert AdaptiveAvgPool(2).init(key, (5, 5, 1))[0] == (2, 2, 1)
    y, _ = AdaptiveAvgPool(2).apply({}, {}, x)
    # bins of 5 into 2: [0, 3) and [2, 5), overlapping at index 2.
    expected = [[x[0, :3, :3].mean(), x[0, :3, 2:].mean()], [x[0, 2:, :3].mean(),
                                                            x[0, 2:, 2:].mean()]]
    np.testing.assert_allclose(y[0, :, :, 0], expected)


def test_activation_layer(key):
    x = jnp.array([[1.0, 2.0, -3.0]])
    y, _ = Activation("softmax").apply({}, {}, x)
    np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(Activation("relu").apply({}, {}, x)[0], [[1.0, 2.0, 0.0]])
    np.testing.assert_allclose(lecun_tanh(jnp.array([1.0, -1.0])), [1.0, -1.0], atol=2e-4)
    with pytest.raises(ValueError, match="activation='swish'"):
        Activation("swish")


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


def test_local_response_norm_hand_value(key):
    # One channel: b = a / (k + alpha a^2)^beta with the paper's k=2, alpha=1e-4, beta=0.75.
    x = jnp.array([[3.0]])
    y, _ = LocalResponseNorm().apply({}, {}, x)
    np.testing.assert_allclose(y, [[3.0 / (2.0 + 1e-4 * 9.0) ** 0.75]], rtol=1e-6)
    # Three channels, n = 3: channel 1 sums the squares of channels 0, 1, 2.
    x = jnp.array([[1.0, 2.0, 3.0]])
    y, _ = LocalResponseNorm(3, alpha=1.0, beta=1.0, k=0.0).apply({}, {}, x)
    np.testing.assert_allclose(y, [[1.0 / 5.0, 2.0 / 14.0, 3.0 / 13.0]], rtol=1e-6)


def test_serial_auto_names_and_nested_params(key):
    net = serial(Conv(6, 5), MaxPool(2), Conv(16, 5), MaxPool(2), Flatten(),
                 Dense(120), Dropout(0.5), ("out", Dense(10)))
    shape, params, state = abstract_init(net, (32, 32, 1))
    assert shape == (10,) and state == {}
    assert _shapes(params) == {
        "conv1": {"W": (5, 5, 1, 6), "b": (6,)},
        "conv2": {"W": (5, 5, 6, 16), "b": (16,)},
        "fc1": {"W": (120, 400), "b": (120,)},
        "out": {"W": (10, 120), "b": (10,)},
    }  # layers without parameters (pools, flatten, dropout) contribute no entry
    names = [n for n, _ in net.info["children"]]
    assert names == ["conv1", "pool1", "conv2", "pool2", "flatten1", "fc1", "dropout1", "out"]
    # An explicit name is skipped by the automatic numbering; duplicates are refused.
    names = [n for n, _ in serial(("conv1", Conv(2, 1)), Conv(2, 1)).info["children"]]
    assert names == ["conv1", "conv2"]
    with pytest.raises(ValueError, match="unique"):
        serial(("a", Conv(2, 1)), ("a", Conv(2, 1)))
    with pytest.raises(TypeError, match="item 0"):
        serial("conv")
    y, _ = jax.eval_shape(net.apply, params, state, jnp.ones((2, 32, 32, 1)))
    assert y.shape == (2, 10)


def test_serial_gives_each_child_its_own_key(key):
    net = serial(Dropout(0.5), Dropout(0.5))
    x = jnp.ones((1, 1000))
    _, params, state = net.init(key, (1000,))
    y, _ = net.apply(params, state, x, key=key, train=True)
    # Two independent masks keep 1/4 of the units (scaled by 4); one mask used twice: 1/2.
    assert abs(float(jnp.mean(y > 0)) - 0.25) < 0.05
    first = net.info["children"][0][1]
    a, _ = first.apply({}, {}, x, key=jax.random.fold_in(key, 0), train=True)
    b, _ = first.apply({}, {}, x, key=jax.random.fold_in(key, 1), train=True)
    assert not jnp.array_equal(a, b)
    # Parameters of two identical children differ too.
    _, p, _ = serial(Dense(3), Dense(3)).init(key, (3,))
    assert not jnp.allclose(p["fc1"]["W"], p["fc2"]["W"])


def test_parallel_concatenates_channels(key):
    block = parallel(Conv(2, 1), serial(Conv(3, 1), Conv(4, 3, padding=1)),
                     ("pool", MaxPool(3, 1, padding=1)))
    shape, params, _ = abstract_init(block, (5, 5, 3))
    assert shape == (5, 5, 2 + 4 + 3)
    assert set(params) == {"branch1", "branch2"}
    assert _shapes(params["branch2"]) == {"conv1": {"W": (1, 1, 3, 3), "b": (3,)},
                                          "conv2": {"W": (3, 3, 3, 4), "b": (4,)}}
    params = jax.tree.map(lambda p: jnp.full(p.shape, 0.1), params)
    x = jax.random.normal(key, (2, 5, 5, 3))
    y, _ = block.apply(params, {}, x)
    assert y.shape == (2, 5, 5, 9)
    np.testing.assert_allclose(y[..., 6:], MaxPool(3, 1, padding=1).apply({}, {}, x)[0])


def test_parallel_mismatched_spatial_shapes(key):
    block = serial(("mixed", parallel(("a", Conv(2, 3)), ("b", Conv(2, 3, padding=1)))))
    with pytest.raises(ShapeError, match="a: \\(3, 3, 2\\), b: \\(5, 5, 2\\)") as err:
        block.init(key, (5, 5, 1))
    assert "'mixed' (parallel)" in str(err.value)


def test_residual_identity_projection_and_value(key):
    block = residual(Dense(3))
    shape, params, _ = block.init(key, (3,))
    assert shape == (3,) and _shapes(params) == {"main": {"W": (3, 3), "b": (3,)}}
    x = jax.random.normal(key, (2, 3))
    y, _ = block.apply(params, {}, x)
    np.testing.assert_allclose(y, x + x @ params["main"]["W"].T + params["main"]["b"],
                               rtol=1e-6)
    y, _ = residual(Dense(3), scale=0.5, activation="relu").apply(params, {}, x)
    np.testing.assert_allclose(y, jax.nn.relu(x + 0.5 * (x @ params["main"]["W"].T)),
                               rtol=1e-6, atol=1e-7)
    down = residual(conv_bn(8, 3, stride=2, padding=1), serial(Conv(8, 1, stride=2)))
    shape, params, state = abstract_init(down, (6, 6, 4))
    assert shape == (3, 3, 8) and set(params) == {"main", "shortcut"}
    assert _shapes(state) == {"main": {"bn": {"mean": (8,), "var": (8,)}}}
    with pytest.raises(ShapeError, match="projection shortcut"):
        residual(Conv(8, 3, stride=2, padding=1)).init(key, (6, 6, 4))


def test_serial_aux_returns_side_heads_in_training(key):
    net = serial_aux(("trunk", Dense(4)), ("aux", Dense(2)), ("head", Dense(3)), aux=["aux"])
    shape, params, _ = net.init(key, (5,))
    assert shape == (3,) and set(params) == {"trunk", "aux", "head"}
    x = jnp.ones((2, 5))
    y, _ = net.apply(params, {}, x, train=False)
    main, side = net.apply(params, {}, x, train=True)[0]
    assert y.shape == (2, 3) and main.shape == (2, 3) and side.shape == (2, 2)
    np.testing.assert_allclose(main, y)


def test_count_params_allocates_nothing(key):
    net = serial(Conv(4, 3), BatchNorm(), Flatten(), Dense(5))
    out, params, state = abstract_init(net, (6, 6, 2))
    assert out == (5,)
    assert isinstance(params["conv1"]["W"], jax.ShapeDtypeStruct)
    expected = (3 * 3 * 2 + 1) * 4 + 2 * 4 + (4 * 4 * 4 + 1) * 5
    assert count_params(net, (6, 6, 2)) == expected
    assert param_count(net.init(key, (6, 6, 2))[1]) == expected
    assert sum(s.size for s in jax.tree.leaves(state)) == 8  # running statistics: state


def test_hyper_parameters_checked_eagerly(key):
    with pytest.raises(ValueError, match="filters=0"):
        Conv(0, 3)
    with pytest.raises(ValueError, match="groups=3 must divide filters=4"):
        Conv(4, 3, groups=3)
    with pytest.raises(ValueError, match="units=\\(3, 4\\)"):
        Dense((3, 4))
    with pytest.raises(ShapeError, match="image \\(H, W, C\\) or a signal \\(L, C\\)"):
        Conv(4, 3).init(key, (10,))
    with pytest.raises(ShapeError, match="groups=2 must divide the input channels 3"):
        Conv(4, 3, groups=2).init(key, (5, 5, 3))
